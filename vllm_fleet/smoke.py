"""`vllm-fleet smoke`: run the post-deploy smoke suite (tests/smoke) against one instance.

The suite is plain pytest; this module picks its options (from flags or from a host of the
inventory), runs it in-process, collects one result per check and prints a one-screen summary.
It also holds the small parsers the suite and `vllm-fleet bench` share, so that they are
tested once, outside a live server.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import vllm_fleet

SUITE_DIR = Path(vllm_fleet.__file__).resolve().parents[1] / "tests" / "smoke"
SPEC_ACCEPTED = "vllm:spec_decode_num_accepted_tokens_total"
SPEC_DRAFTED = "vllm:spec_decode_num_draft_tokens_total"
STANDIN_MARKER = "STAND-IN"
# Journal lines that mean the engine failed. Plain "EngineCore" is not enough: vLLM prefixes
# every log line of its engine process with "(EngineCore_DP0 pid=N)", errors or not.
ENGINE_ERROR_PATTERNS = ("EngineCore encountered", "EngineCore failed", "Engine core proc",
                         "Traceback (most recent call last)", "CUDA out of memory", "OutOfMemoryError")
EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


# --- helpers shared with the suite and the benchmark ------------------------------------------

def describe_response(resp: Any) -> str:
    """`HTTP 500: <the server's error message>`, for messages a user reads."""
    try:
        body = resp.json()
    except ValueError:
        return f"HTTP {resp.status_code}: {resp.text[:200]!r}"
    err = body.get("error") if isinstance(body, dict) else None
    if isinstance(err, dict):
        return f"HTTP {resp.status_code}: {err.get('message')}"
    if err:
        return f"HTTP {resp.status_code}: {err}"
    return f"HTTP {resp.status_code}: {json.dumps(body)[:200]}"


def counter_samples(metrics_text: str) -> dict[str, float]:
    """Prometheus text -> {sample name: value summed over label sets}."""
    from prometheus_client.parser import text_string_to_metric_families

    totals: dict[str, float] = {}
    for family in text_string_to_metric_families(metrics_text):
        for sample in family.samples:
            totals[sample.name] = totals.get(sample.name, 0.0) + float(sample.value)
    return totals


def spec_counters(metrics_text: str) -> tuple[float, float] | None:
    """(accepted, draft) speculative-decoding token counters, or None when the server has none."""
    totals = counter_samples(metrics_text)
    if SPEC_DRAFTED not in totals:
        return None
    return totals.get(SPEC_ACCEPTED, 0.0), totals[SPEC_DRAFTED]


def is_standin_metrics(metrics_text: str) -> bool:
    """The lab's vLLM stand-in starts its /metrics with a comment naming itself."""
    head = metrics_text[:300]
    return head.startswith("#") and STANDIN_MARKER in head


def engine_error_lines(lines: list[str]) -> list[str]:
    """Journal lines that show an engine failure (see ENGINE_ERROR_PATTERNS)."""
    return [line for line in lines
            if any(p in line for p in ENGINE_ERROR_PATTERNS)
            or ("EngineCore" in line and " ERROR " in f" {line} ")]


def image_digest_matches(image_ref: str, repo_digests: list[str], digest: str) -> bool:
    """Whether a container's image reference or its image's RepoDigests carry `digest`."""
    return image_ref.endswith("@" + digest) or any(d.endswith("@" + digest) for d in repo_digests)


def args_difference(expected: list[str], actual: list[str]) -> str | None:
    """None when `expected` appears, in order and contiguous, in the container's command line.

    Otherwise a sentence naming the flags that are missing or unexpected.
    """
    n = len(expected)
    if any(actual[i:i + n] == expected for i in range(len(actual) - n + 1)):
        return None
    exp_flags = {a.split("=", 1)[0] for a in expected if a.startswith("--")}
    act_flags = {a.split("=", 1)[0] for a in actual if a.startswith("--")}
    missing, extra = sorted(exp_flags - act_flags), sorted(act_flags - exp_flags)
    parts = []
    if missing:
        parts.append(f"missing {', '.join(missing)}")
    if extra:
        parts.append(f"unexpected {', '.join(extra)}")
    if not parts:
        parts.append("same flags but other values or order")
    return "; ".join(parts) + f" (runs: {' '.join(actual)[:300]})"


# --- collecting results -------------------------------------------------------------------------

@dataclass
class CheckResult:
    check: str
    module: str
    outcome: str = "passed"
    message: str = ""
    duration_s: float = 0.0
    properties: dict[str, Any] = field(default_factory=dict)

    def as_dict(self) -> dict[str, Any]:
        return {"check": self.check, "module": self.module, "outcome": self.outcome,
                "message": self.message, "duration_s": round(self.duration_s, 3),
                "properties": self.properties}


def _first_line(text: str) -> str:
    for prefix in ("AssertionError: ", "Failed: ", "Skipped: ", "UsageError: "):
        if text.startswith(prefix):
            text = text[len(prefix):]
    return text.strip().splitlines()[0] if text.strip() else ""


def _report_message(report: Any) -> str:
    longrepr = report.longrepr
    if isinstance(longrepr, tuple):  # skip: (path, lineno, "Skipped: reason")
        return _first_line(str(longrepr[2]))
    crash = getattr(longrepr, "reprcrash", None)
    if crash is not None:
        return _first_line(crash.message)
    return _first_line(str(longrepr or ""))


class Collector:
    """A pytest plugin object: one CheckResult per test, plus collection errors."""

    def __init__(self) -> None:
        self.results: dict[str, CheckResult] = {}
        self.collection_errors: list[str] = []

    def pytest_runtest_logreport(self, report: Any) -> None:
        module, _, name = report.nodeid.rpartition("::")
        result = self.results.setdefault(report.nodeid, CheckResult(name, Path(module).stem))
        result.duration_s += report.duration
        result.properties.update(dict(report.user_properties))
        if report.failed and result.outcome not in ("failed", "error"):
            result.outcome = "failed" if report.when == "call" else "error"
            result.message = _report_message(report)
        elif report.skipped and result.outcome == "passed":
            result.outcome = "skipped"
            result.message = _report_message(report)

    def pytest_collectreport(self, report: Any) -> None:
        if report.failed:
            self.collection_errors.append(f"{report.nodeid or 'suite'}: {_report_message(report)}")


# --- running the suite ------------------------------------------------------------------------

@dataclass
class Target:
    """Everything the suite's options need, from flags or from the inventory."""

    url: str
    model: str | None
    max_model_len: int | None
    vllm_version: str | None = None
    api_key_file: str | None = None
    expect_tools: bool = False
    expect_spec_decode: bool = False
    long_prompt_ratio: float | None = None
    timeout: float | None = None
    host: str | None = None
    unit: str | None = None
    container: str | None = None
    image_digest: str | None = None
    expected_args_file: str | None = None
    # Files this command wrote (the API key, the expected args); removed after the run.
    temp_files: list[str] = field(default_factory=list)


# The suite's own options, declared once: tests/smoke/conftest.py gives them to pytest (with
# SUITE_DEFAULTS) and `vllm-fleet smoke` to argparse, which passes them on.
SUITE_OPTIONS: tuple[tuple[str, dict[str, Any]], ...] = (
    ("--url", {"help": "base URL of the server, e.g. http://gpu1:8000 (with -i: overrides the inventory's)"}),
    ("--model", {"help": "model id the server must serve"}),
    ("--max-model-len", {"type": int, "help": "max_model_len the server must report"}),
    ("--vllm-version", {"help": "vLLM version the server must report (/version)"}),
    ("--api-key-file", {"help": "file holding the API key (sent as a Bearer token)"}),
    ("--expect-tools", {"action": "store_true", "help": "check tool calling (the server has auto tool choice)"}),
    ("--expect-spec-decode", {"action": "store_true", "help": "check speculative-decoding metrics"}),
    ("--long-prompt-ratio", {"type": float, "help": "long-prompt check length as a fraction of max_model_len (default 0.9)"}),
    ("--timeout", {"type": float, "help": "seconds per request (default 120)"}),
    ("--host", {"help": "testinfra host for host-side checks, e.g. local:// or ssh://root@addr"}),
    ("--unit", {"help": "systemd unit of the instance (default vllm@main.service)"}),
    ("--container", {"help": "docker container of the instance (default vllm-main)"}),
    ("--image-digest", {"help": "sha256:... digest the container must run"}),
    ("--expected-args-file", {"help": "JSON list of the `vllm serve` args the container must have"}),
)
SUITE_DEFAULTS: dict[str, Any] = {"--long-prompt-ratio": 0.9, "--timeout": 120.0,
                                  "--unit": "vllm@main.service", "--container": "vllm-main"}


def pytest_args(t: Target, junit: str | None) -> list[str]:
    args = [str(SUITE_DIR), "-p", "no:cacheprovider", "-p", "no:warnings", "-q", "--no-header",
            "--tb=no", "-rN", "--url", t.url]
    valued = (("--model", t.model), ("--max-model-len", t.max_model_len), ("--vllm-version", t.vllm_version),
              ("--api-key-file", t.api_key_file), ("--long-prompt-ratio", t.long_prompt_ratio),
              ("--timeout", t.timeout), ("--host", t.host), ("--unit", t.unit), ("--container", t.container),
              ("--image-digest", t.image_digest), ("--expected-args-file", t.expected_args_file))
    for flag, value in valued:
        if value is not None:
            args += [flag, str(value)]
    args += ["--expect-tools"] if t.expect_tools else []
    args += ["--expect-spec-decode"] if t.expect_spec_decode else []
    if junit:
        args.append(f"--junitxml={junit}")
    return args


def run_suite(t: Target, junit: str | None = None) -> tuple[int, Collector, float]:
    import pytest

    if not SUITE_DIR.is_dir():
        raise SmokeError(f"the smoke suite is not at {SUITE_DIR}; run vllm-fleet from a checkout of the repository")
    collector = Collector()
    start = time.perf_counter()
    # testinfra's ansible backend runs ansible-inventory/ansible: those beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    rc = pytest.main(pytest_args(t, junit), plugins=[collector])
    return int(rc), collector, time.perf_counter() - start


class SmokeError(Exception):
    """A problem with the command's input; the message says what to change."""


# --- from the inventory -----------------------------------------------------------------------

def _instance(vars_: dict[str, Any], tp: int, name: str | None) -> dict[str, Any]:
    from vllm_fleet.checks import default_instances

    instances = vars_.get("vllm_fleet_instances") or default_instances(tp)
    if name is None:
        return instances[0]
    for inst in instances:
        if inst.get("name") == name:
            return inst
    raise SmokeError(f"the host has no instance {name!r}; its instances are "
                     f"{', '.join(str(i.get('name')) for i in instances)}")


def _secret_file(key: str) -> str:
    fd, path = tempfile.mkstemp(prefix="vllm-fleet-key-")
    with os.fdopen(fd, "w", encoding="utf-8") as handle:
        handle.write(key)
    return path


def _render(value: Any, vars_: dict[str, Any], depth: int = 5) -> Any:
    """Resolve `{{ var }}` indirections (e.g. vllm_fleet_api_key: "{{ vault_key }}") the way a
    play would see them, from the host's own variables. Vault values stay opaque."""
    import jinja2

    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    while isinstance(value, str) and "{{" in value and depth > 0:
        try:
            value = env.from_string(value).render(vars_)
        except jinja2.TemplateError as exc:
            raise SmokeError(f"cannot resolve {value!r} from the inventory ({exc}); pass --api-key-file") from None
        depth -= 1
    return value


def target_from_inventory(paths: list[str], host: str, instance: str | None, host_checks: bool) -> Target:
    from vllm_fleet import profiles
    from vllm_fleet.serve_args import CONTAINER_PORT, serve_args

    try:
        from vllm_fleet.inventory import load_inventory
    except ImportError:
        raise SmokeError("this vllm-fleet has no inventory reader yet; pass --url, --model and --max-model-len") from None
    inventory = load_inventory(paths)
    if host not in inventory.hosts:
        raise SmokeError(f"host {host!r} is not in the inventory {', '.join(paths)}")
    vars_ = inventory.hosts[host].vars
    if not vars_.get("vllm_fleet_profile"):
        raise SmokeError(f"host {host!r} has no vllm_fleet_profile; it is not a fleet host")
    cfg = profiles.resolve_serving(vars_["vllm_fleet_profile"], vars_.get("vllm_fleet_overrides") or {})
    serving, smoke_cfg = cfg["serving"], cfg.get("smoke") or {}
    inst = _instance(vars_, int(serving.get("tensor_parallel_size") or 1), instance)
    address = vars_.get("ansible_host") or host
    key = _render(vars_.get("vllm_fleet_api_key"), vars_)
    if key is not None and not isinstance(key, str):
        print("vllm-fleet: vllm_fleet_api_key is vault-encrypted here; pass --api-key-file to check the key",
              file=sys.stderr)
    t = Target(
        url=f"http://{address}:{inst['port']}", model=cfg["model"]["id"],
        max_model_len=int(serving["max_model_len"]), vllm_version=str(cfg["image"]["vllm_version"]),
        api_key_file=None,
        expect_tools=bool(serving.get("enable_auto_tool_choice")),
        expect_spec_decode=serving.get("speculative_config") is not None,
        long_prompt_ratio=smoke_cfg.get("long_prompt_ratio"), timeout=smoke_cfg.get("request_timeout_s"),
    )
    if isinstance(key, str) and key:
        t.api_key_file = _secret_file(key)
        t.temp_files.append(t.api_key_file)
    if host_checks:
        # Through Ansible itself, so the checks reach the host exactly as the play did (user,
        # key, port, ssh arguments and host-key policy all come from the inventory and config).
        t.host = f"ansible://{host}?ansible_inventory={os.path.abspath(paths[0])}"
        t.unit, t.container = f"vllm@{inst['name']}.service", f"vllm-{inst['name']}"
        t.image_digest = cfg["image"]["digest"]
        fd, args_path = tempfile.mkstemp(prefix="vllm-fleet-args-", suffix=".json")
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            json.dump(serve_args(cfg, CONTAINER_PORT), handle)
        t.expected_args_file = args_path
        t.temp_files.append(args_path)
    return t


# --- output -------------------------------------------------------------------------------------

MARK = {"passed": "PASS", "failed": "FAIL", "error": "ERROR", "skipped": "skip"}


def summarize(t: Target, collector: Collector, rc: int, seconds: float) -> tuple[dict[str, Any], str, bool]:
    """(JSON document, printed summary, all passed)."""
    results = list(collector.results.values())
    counts = {k: sum(r.outcome == k for r in results) for k in ("passed", "failed", "error", "skipped")}
    ok = not collector.collection_errors and counts["failed"] == counts["error"] == 0 and counts["passed"] > 0
    doc = {"url": t.url, "model": t.model, "passed": ok, "pytest_exit_code": rc, "counts": counts,
           "duration_s": round(seconds, 3), "checks": [r.as_dict() for r in results],
           "collection_errors": collector.collection_errors}
    lines = [f"vLLM smoke checks against {t.url}: {counts['passed']} passed, "
             f"{counts['failed'] + counts['error']} failed, {counts['skipped']} skipped ({seconds:.1f} s)"]
    for r in results:
        extra = f": {r.message}" if r.message and r.outcome != "passed" else ""
        props = ", ".join(f"{k}={v}" for k, v in r.properties.items() if k != "reasoning_field")
        lines.append(f"  {MARK[r.outcome]:5} {r.check}{extra}" + (f"  [{props}]" if props and r.outcome == "passed" else ""))
    lines += [f"  ERROR collecting {e}" for e in collector.collection_errors]
    if counts["passed"] == 0 and not collector.collection_errors:
        lines.append("  no check passed; is the suite installed and the URL right?")
    lines.append("all checks passed" if ok else "SMOKE FAILED")
    return doc, "\n".join(lines), ok


def _target_from_args(args: argparse.Namespace) -> Target:
    if args.inventory:
        if not args.limit:
            raise SmokeError("with -i INVENTORY, name the host to check with -l HOST")
        t = target_from_inventory(args.inventory, args.limit, args.instance, args.host_checks)
        t.url = args.url or t.url
        t.api_key_file = args.api_key_file or t.api_key_file
        return t
    missing = [f for f, v in (("--url", args.url), ("--model", args.model), ("--max-model-len", args.max_model_len)) if not v]
    if missing:
        raise SmokeError(f"give {', '.join(missing)} (or -i INVENTORY -l HOST to take them from the inventory)")
    return Target(url=args.url, model=args.model, max_model_len=args.max_model_len, vllm_version=args.vllm_version,
                  api_key_file=args.api_key_file, expect_tools=args.expect_tools,
                  expect_spec_decode=args.expect_spec_decode, long_prompt_ratio=args.long_prompt_ratio,
                  timeout=args.timeout, host=args.host, unit=args.unit, container=args.container,
                  image_digest=args.image_digest, expected_args_file=args.expected_args_file)


def cmd_smoke(args: argparse.Namespace) -> int:
    target: Target | None = None
    try:
        target = _target_from_args(args)
        rc, collector, seconds = run_suite(target, args.junit)
    except SmokeError as exc:
        print(f"vllm-fleet: {exc}", file=sys.stderr)
        return EXIT_USAGE
    finally:
        for path in target.temp_files if target else []:
            Path(path).unlink(missing_ok=True)
    if rc in (3, 4):  # pytest: internal error / usage error (e.g. an unreadable key file)
        print(f"vllm-fleet: the smoke suite could not run (pytest exit code {rc}); see the message above",
              file=sys.stderr)
        return EXIT_USAGE
    doc, text, ok = summarize(target, collector, rc, seconds)
    print(text)
    if args.json:
        Path(args.json).write_text(json.dumps(doc, indent=2) + "\n", encoding="utf-8")
    return EXIT_OK if ok else EXIT_FAILED


def register(subparsers: Any) -> None:
    p = subparsers.add_parser(
        "smoke", help="post-deploy smoke checks against a running vLLM instance",
        description="Exit 0 when every check passed (skips allowed), 1 when one failed, 2 on unusable input.")
    for name, options in SUITE_OPTIONS:
        p.add_argument(name, **options)
    p.add_argument("-i", "--inventory", action="append", metavar="INVENTORY", help="inventory file or directory")
    p.add_argument("-l", "--limit", metavar="HOST", help="the inventory host to check")
    p.add_argument("--instance", metavar="NAME", help="the host's instance (default: its first, `main`)")
    p.add_argument("--host-checks", action="store_true",
                   help="with -i: also check the host over ssh (unit, container, GPUs, journal)")
    p.add_argument("--junit", metavar="FILE", help="write JUnit XML")
    p.add_argument("--json", metavar="FILE", help="write the results as JSON")
    p.set_defaults(func=cmd_smoke)


if __name__ == "__main__":
    from vllm_fleet.cli import main

    sys.exit(main())
