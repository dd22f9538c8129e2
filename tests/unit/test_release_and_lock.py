"""Verified releases and the upgrade lock (vllm_fleet.serving.release, .runlock): the decisions the
vllm role's verify-mark.yml, previous.yml, restore.yml and lock.yml make through the
vllm_fleet.fleet filters, on the loop results those tasks gather on a host."""

from __future__ import annotations

import base64
import json
import multiprocessing
import os
import subprocess
import sys

import pytest

from tests.collection import plugin
from vllm_fleet.serving import release, runlock

UNIT, WRAPPER, ENTRY, ETC = "/etc/systemd/system/vllm@.service", "/usr/local/libexec/vllm-fleet/vllm-run", \
    "/usr/local/libexec/vllm-fleet/container-entrypoint", "/etc/vllm-fleet"
REF = "registry.example/vllm/vllm-openai@sha256:" + "a" * 64


def _files(names=("main",)):
    return release.release_files(list(names), unit=UNIT, wrapper=WRAPPER, entrypoint=ENTRY, config_dir=ETC)


def _stats(files, sums: dict[str, str | None]):
    """The checksums the role reads from one find on the host: sha256 per file name (None: missing)."""
    found = {"files": [{"path": f["path"], "isreg": True, "checksum": sums[f["name"]]}
                       for f in files if sums.get(f["name"]) is not None]}
    return release.release_checksums(found, files)


def test_checksums_come_from_one_find_of_the_copies_or_the_host_files():
    files = _files(["a"])
    kept = "/etc/vllm-fleet/verified/files"
    found = {"files": [
        {"path": f"{kept}/a.args", "isreg": True, "checksum": "1" * 64},
        {"path": "/etc/vllm-fleet/a.args", "isreg": True, "checksum": "2" * 64},
        {"path": "/etc/vllm-fleet/a.env", "isreg": False, "checksum": "3" * 64},  # not a regular file
        {"path": "/usr/local/libexec/vllm-fleet/a.args", "isreg": True, "checksum": "4" * 64},  # another dir
    ]}
    host = {s["name"]: s["checksum"] for s in release.release_checksums(found, files)}
    copies = {s["name"]: s["checksum"] for s in release.release_checksums(found, files, kept)}
    assert host["a.args"] == "2" * 64 and copies["a.args"] == "1" * 64
    assert host["a.env"] is None and copies["a.env"] is None and host["vllm-run"] is None
    assert [s["name"] for s in release.release_checksums({}, files)] == [f["name"] for f in files]
    assert release.release_checksums(found, files)[3] == {"name": "a.args", "instance": "a", "checksum": "2" * 64}


def _sums(files, salt=""):
    return {f["name"]: f"{f['name']}{salt}".encode().hex().ljust(64, "0")[:64] for f in files}


def _manifest(name="main"):
    return {"instance": name, "config_sha256": "c" * 64, "image": {"ref": REF, "digest": "sha256:" + "a" * 64},
            "model": {"served_name": "m"}}


def _slurp(name, marker):
    return {"item": name, "content": base64.b64encode(json.dumps(marker).encode()).decode()}


def _inspect(name, label, running=True, rc=0):
    doc = [{"Config": {"Labels": {release.FILES_LABEL: label}}, "State": {"Running": running}}]
    return {"item": name, "rc": rc, "stdout": json.dumps(doc) if rc == 0 else ""}


def _release(names=("main",)):
    """Markers, kept stats and a host that serves exactly that release."""
    files = _files(names)
    sums = _sums(files)
    stats = _stats(files, sums)
    markers = [_slurp(n, release.release_marker(n, _manifest(n), stats, "sha256:id", "2026-11-29T00:00:00Z"))
               for n in names]
    return files, sums, markers, stats


def test_release_files_name_path_mode_and_owner():
    files = _files(["a", "b"])
    by_name = {f["name"]: f for f in files}
    assert list(by_name) == ["vllm@.service", "vllm-run", "container-entrypoint",
                             "a.args", "a.env", "a.json", "b.args", "b.env", "b.json"]
    assert by_name["a.env"] == {"name": "a.env", "path": "/etc/vllm-fleet/a.env", "mode": "0600", "instance": "a"}
    assert by_name["vllm-run"]["mode"] == "0755" and by_name["vllm-run"]["instance"] is None
    # No secrets: a rollback must not undo a key rotation.
    assert not [f for f in files if "secret" in f["path"] or "api-key" in f["path"]]
    with pytest.raises(release.ReleaseError, match="same file name"):
        release.release_files(["a"], unit=UNIT, wrapper="/x/run", entrypoint="/y/run", config_dir=ETC)


def test_marker_records_the_instances_files_and_image():
    files = _files(["a", "b"])
    stats = _stats(files, _sums(files))
    marker = release.release_marker("a", _manifest("a"), stats, "sha256:local", "T")
    assert marker["schema"] == release.MARKER_SCHEMA and marker["instance"] == "a"
    assert sorted(marker["files"]) == ["a.args", "a.env", "a.json", "container-entrypoint", "vllm-run", "vllm@.service"]
    assert marker["image"] == {"ref": REF, "digest": "sha256:" + "a" * 64, "id": "sha256:local"}
    assert (marker["config_sha256"], marker["verified_at"], marker["verified_by"]) == ("c" * 64, "T", "smoke")
    with pytest.raises(release.ReleaseError, match="is 'b''s"):
        release.release_marker("a", _manifest("b"), stats, "", "T")
    with pytest.raises(release.ReleaseError, match="no checksum of a.env"):
        release.release_marker("a", _manifest("a"), _stats(files, {**_sums(files), "a.env": None}), "", "T")


def test_a_host_that_serves_the_release_has_no_changes():
    files, sums, markers, stats = _release(["a", "b"])
    review = release.review_release(["a", "b"], markers, stats, _stats(files, sums),
                                    [_inspect("a", "fa"), _inspect("b", "fb")],
                                    [{"item": "a", "rc": 0, "stdout": "fa\n"}, {"item": "b", "rc": 0, "stdout": "fb"}],
                                    [{"item": "a", "stdout": "no"}, {"item": "b", "stdout": "no"}], ["a", "b"])
    assert (review["problems"], review["files"], review["changes"], review["drifted"]) == ([], [], [], [])
    assert sorted(review["markers"]) == ["a", "b"]


def test_changed_files_and_containers_are_changes():
    files, sums, markers, stats = _release()
    now = {**sums, "main.args": "f" * 64}
    now.pop("vllm-run")
    review = release.review_release(["main"], markers, stats, _stats(files, now),
                                    [_inspect("main", "old")], [{"item": "main", "rc": 0, "stdout": "new"}],
                                    [{"item": "main", "stdout": "yes"}])
    assert review["problems"] == []
    assert review["files"] == ["vllm-run", "main.args"]
    assert review["changes"] == ["vllm-run is missing", "main.args differs from the release",
                                 "main: its container runs other files than those on the host",
                                 "main: systemd runs an older definition of its unit"]
    assert review["drifted"] == ["main"]


@pytest.mark.parametrize(("inspect", "said"), [
    (_inspect("main", "x", running=False), "its container is not running"),
    (_inspect("main", "x", rc=1), "no container"),
])
def test_a_stopped_or_missing_container_is_a_change(inspect, said):
    files, sums, markers, stats = _release()
    review = release.review_release(["main"], markers, stats, _stats(files, sums), [inspect],
                                    [{"item": "main", "rc": 0, "stdout": "x"}], [])
    assert review["containers"] == [f"main: {said}"] and review["drifted"] == ["main"]


def test_a_release_without_verified_markers_cannot_be_restored():
    files, sums, _, stats = _release()
    # No marker at all (never smoked), and the manifest copies an older upgrade.yml kept.
    for slurped, said in (([{"item": "main", "failed": False, "msg": "file not found"}], "main: no marker"),
                          ([_slurp("main", _manifest())], "not a verified-release marker"),
                          ([{"item": "main", "content": base64.b64encode(b"{half").decode()}], "not JSON")):
        review = release.review_release(["main"], slurped, stats, _stats(files, sums))
        assert any(said in p for p in review["problems"]), review["problems"]
    assert release.review_release([], [], [], [])["problems"] == ["no instance has a marker"]


def test_a_damaged_kept_copy_is_a_problem():
    files, sums, markers, _ = _release()
    tampered = _stats(files, {**sums, "main.env": "0" * 64, "vllm-run": None})
    review = release.review_release(["main"], markers, tampered, _stats(files, sums))
    assert review["problems"] == ["main.env: the kept copy is not the file that passed smoke",
                                  "vllm-run: missing from the kept files"]


def test_instances_outside_the_release_make_the_host_differ():
    files, sums, markers, stats = _release(["main"])
    review = release.review_release(["main"], markers, stats, _stats(files, sums), found=["main", "gone"])
    assert review["files"] == ["instances"]
    assert review["changes"] == ["the release has instances that are not configured now: gone"]
    # A configured instance without a marker differs too (its files are recorded nowhere).
    files2 = _files(["main", "new"])
    review = release.review_release(["main", "new"], markers + [{"item": "new", "failed": False}],
                                    _stats(files2, _sums(files2)), _stats(files2, _sums(files2)))
    assert "new: no marker" in review["problems"] and {"new.args", "new.env", "new.json"} <= set(review["files"])


def test_the_filters_hand_loop_results_through():
    filters = plugin("filter", "fleet").FilterModule().filters()
    files = filters["release_files"](["main"], UNIT, WRAPPER, ENTRY, ETC)
    stats = _stats(files, _sums(files))
    marker = filters["release_marker"](_manifest(), "main", stats, "sha256:id", "T")
    review = filters["release_review"](["main"], [_slurp("main", marker)], stats, stats)
    assert (review["problems"], review["changes"]) == ([], [])


# --- the upgrade lock -------------------------------------------------------------------------

ME = {"run": "ctl:100:5", "purpose": "upgrade.yml", "controller": "ctl", "controller_id": "ctl/boot/1",
      "pid": 100, "started": "5", "user": "ops"}


def _read(record, age=12):
    return f"{age}\n{runlock.lock_text(record)}"


def test_a_free_lock_is_taken():
    assert runlock.lock_verdict("", ME, 3600) == {"take": True, "state": "free", "holder": "", "why": "", "expect": ""}


def test_this_runs_own_lock_is_kept():
    v = runlock.lock_verdict(_read(ME), ME, 3600, alive=lambda *_: pytest.fail("no liveness check for our own lock"))
    assert (v["take"], v["state"]) == (True, "ours")


def test_a_live_run_on_this_controller_holds_the_lock():
    other = {**ME, "run": "ctl:200:9", "pid": 200, "started": "9", "purpose": "rollback.yml"}
    seen = []
    v = runlock.lock_verdict(_read(other), ME, 3600, alive=lambda pid, started: seen.append((pid, started)) or True)
    assert seen == [(200, "9")]
    assert (v["take"], v["state"]) == (False, "busy")
    assert v["holder"] == "rollback.yml run by ops from ctl (ansible-playbook pid 200, run ctl:200:9) for 12 s"


def test_a_run_gone_from_this_controller_left_its_lock_behind():
    other = {**ME, "run": "ctl:200:9", "pid": 200, "started": "9"}
    v = runlock.lock_verdict(_read(other), ME, 3600, alive=lambda *_: False)
    assert (v["take"], v["state"], v["expect"]) == (True, "stale", "ctl:200:9")
    assert "that ansible-playbook process is gone from this controller" in v["why"]


def test_another_controllers_lock_goes_stale_only_with_age():
    other = {**ME, "run": "ci-2:7:1", "controller": "ci-2", "controller_id": "ci-2/boot/1", "pid": 7}
    never = lambda *_: pytest.fail("another controller's process cannot be looked at here")
    assert runlock.lock_verdict(_read(other, age=60), ME, 3600, alive=never)["state"] == "busy"
    v = runlock.lock_verdict(_read(other, age=7200), ME, 3600, alive=never)
    assert (v["take"], v["state"]) == (True, "stale") and "vllm_upgrade_lock_stale_sec (3600 s)" in v["why"]
    # One host name, another machine (a container): not this controller.
    same_name = {**other, "controller": "ctl", "controller_id": "ctl/other-boot/2"}
    assert runlock.lock_verdict(_read(same_name, age=60), ME, 3600, alive=never)["state"] == "busy"


def test_an_unreadable_lock_is_stale():
    v = runlock.lock_verdict("3\ngarbage\n", ME, 3600)
    assert (v["take"], v["state"], v["expect"]) == (True, "stale", "garbage")
    v = runlock.lock_verdict("3\n", ME, 3600)
    assert (v["state"], v["expect"]) == ("stale", "")


def test_the_lock_text_is_the_run_then_the_record():
    text = runlock.lock_text(ME)
    assert text.splitlines()[0] == "ctl:100:5"
    assert runlock.parse_lock("5\n" + text) == (5.0, "ctl:100:5", ME)


def test_process_liveness_checks_the_start_time():
    me = os.getpid()
    started = runlock.process_start(me)
    assert started and runlock.process_alive(me, started) and runlock.process_alive(me, "")
    assert not runlock.process_alive(me, started + "0")  # a reused pid is another process
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    assert not runlock.process_alive(gone.pid, "")
    assert not runlock.process_alive(0, "")


def _owner_in_child(queue):
    queue.put(runlock.run_owner("upgrade.yml"))


def test_run_owner_names_the_parent_of_a_worker_process():
    """ansible-playbook runs filters in worker processes forked from it: the run is the parent."""
    ctx = multiprocessing.get_context("fork")
    queue = ctx.Queue()
    child = ctx.Process(target=_owner_in_child, args=(queue,))
    child.start()
    owner = queue.get(timeout=30)
    child.join(30)
    assert owner["pid"] == os.getpid() and owner["purpose"] == "upgrade.yml"
    assert owner["run"] == f"{owner['controller']}:{os.getpid()}:{owner['started']}"
    assert owner == runlock.run_owner("upgrade.yml") | {"pid": os.getpid()}
    v = runlock.lock_verdict(_read(owner), {**owner, "run": "x"}, 3600)
    assert v["state"] == "busy", "this live process must hold the lock"
