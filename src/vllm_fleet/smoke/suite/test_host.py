"""Host-side smoke checks (testinfra), run only when `--host` is given.

They look behind the endpoint: the systemd unit, the container's image and arguments, the GPUs
the container sees, and the journal since the unit last started.
"""

from __future__ import annotations

import json
import shlex

import pytest

from vllm_fleet.smoke.parsers import args_difference, engine_error_lines, image_digest_matches


@pytest.fixture(scope="module")
def target(settings):
    if not settings.host:
        # `vllm-fleet smoke -i`/`--manifest` ask for these with --host-checks and say so.
        pytest.skip(settings.host_hint or "host-side checks need --host (e.g. local:// or ssh://root@ADDRESS)")
    import testinfra  # only needed for host-side checks

    return testinfra.get_host(settings.host)


def _run(target, command: str):
    return target.run(command)


def test_unit_active_enabled(target, settings) -> None:
    service = target.service(settings.unit)
    assert service.is_running, (
        f"{settings.unit} is not active on the host; see `journalctl -u {settings.unit}`")
    assert service.is_enabled, f"{settings.unit} is not enabled: it will not come back after a reboot"


def _inspect(target, container: str) -> dict:
    out = _run(target, f"docker inspect {shlex.quote(container)}")
    assert out.rc == 0, f"`docker inspect {container}` failed: {out.stderr.strip() or out.stdout.strip()}"
    return json.loads(out.stdout)[0]


def test_container_runs_pinned_digest_and_args(target, settings) -> None:
    info = _inspect(target, settings.container)
    assert info.get("State", {}).get("Running"), f"container {settings.container} is not running"
    if settings.image_digest:
        image_ref = info.get("Config", {}).get("Image", "")
        repo_digests: list[str] = []
        if not image_digest_matches(image_ref, [], settings.image_digest):
            out = _run(target, f"docker image inspect --format '{{{{json .RepoDigests}}}}' {shlex.quote(info['Image'])}")
            repo_digests = json.loads(out.stdout or "[]") if out.rc == 0 else []
        assert image_digest_matches(image_ref, repo_digests, settings.image_digest), (
            f"container {settings.container} runs {image_ref!r}, not the pinned digest {settings.image_digest}")
    if settings.expected_args is not None:
        actual = [info.get("Path", "")] + list(info.get("Args") or [])
        problem = args_difference(settings.expected_args, actual)
        assert problem is None, f"container {settings.container} runs other vllm serve arguments: {problem}"


def test_gpus_visible_in_container(target, settings) -> None:
    out = _run(target, f"docker exec {shlex.quote(settings.container)} nvidia-smi -L")
    assert out.rc == 0, (f"`nvidia-smi -L` failed inside {settings.container}: "
                         f"{(out.stderr or out.stdout).strip()[:200]}; is the NVIDIA runtime configured?")
    gpus = [line for line in out.stdout.splitlines() if line.startswith("GPU ")]
    assert gpus, f"no GPU visible inside {settings.container}"


def test_no_engine_errors_in_journal(target, settings) -> None:
    unit = shlex.quote(settings.unit)
    since = _run(target, f"systemctl show -p ActiveEnterTimestamp --value {unit}").stdout.strip()
    assert since and since != "n/a", f"{settings.unit} has never become active (no ActiveEnterTimestamp)"
    out = _run(target, f"journalctl -u {unit} --since {shlex.quote(since)} --no-pager -o cat")
    assert out.rc == 0, f"cannot read the journal of {settings.unit}: {out.stderr.strip()}"
    errors = engine_error_lines(out.stdout.splitlines())
    assert not errors, (f"{len(errors)} engine error line(s) in the journal since {since}, first: "
                        f"{errors[0][:200]}")
