"""Run the smoke suite (package data: vllm_fleet/smoke/suite) in-process against one instance,
collect one result per check and summarise them on one screen."""

from __future__ import annotations

import os
import sys
import time
from dataclasses import dataclass, field
from importlib.resources import as_file, files
from pathlib import Path
from typing import Any

EXIT_OK, EXIT_FAILED, EXIT_USAGE = 0, 1, 2


class SmokeError(Exception):
    """A problem with the command's input; the message says what to change."""


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


@dataclass
class Target:
    """Everything the suite's options need, from flags or from the inventory."""

    url: str
    model: str | None
    max_model_len: int | None
    vllm_version: str | None = None
    api_key_file: str | None = None
    ca_file: str | None = None
    metrics_url: str | None = None
    expect_tools: bool = False
    expect_spec_decode: bool = False
    expect_proxy: bool = False
    long_prompt_ratio: float | None = None
    timeout: float | None = None
    host: str | None = None
    unit: str | None = None
    container: str | None = None
    image_digest: str | None = None
    expected_args_file: str | None = None
    # The host-side checks' skip reason when they were not asked for, naming this command's own
    # flag for them (--host-checks with -i or --manifest); None keeps the suite's (--host).
    host_hint: str | None = None
    # Files this command wrote (the API key, the expected args); removed after the run.
    temp_files: list[str] = field(default_factory=list)


CALLERS_PYTEST_ENV = ("PYTEST_ADDOPTS", "PYTEST_PLUGINS")


def pytest_args(t: Target, junit: str | None, suite: Path) -> list[str]:
    # The suite's own ini file and rootdir: a pytest configuration in the directory it is run
    # from (a user's project) must not change how the suite runs.
    args = [str(suite), "-c", str(suite / "pytest.ini"), "--rootdir", str(suite), "-p", "no:cacheprovider",
            "-p", "no:warnings", "-q", "--no-header", "--tb=no", "-rN", "--url", t.url]
    valued = (("--model", t.model), ("--max-model-len", t.max_model_len), ("--vllm-version", t.vllm_version),
              ("--api-key-file", t.api_key_file), ("--ca-file", t.ca_file), ("--metrics-url", t.metrics_url),
              ("--long-prompt-ratio", t.long_prompt_ratio),
              ("--timeout", t.timeout), ("--host", t.host), ("--unit", t.unit), ("--container", t.container),
              ("--image-digest", t.image_digest), ("--expected-args-file", t.expected_args_file),
              ("--host-checks-hint", t.host_hint))
    for flag, value in valued:
        if value is not None:
            args += [flag, str(value)]
    args += ["--expect-tools"] if t.expect_tools else []
    args += ["--expect-spec-decode"] if t.expect_spec_decode else []
    args += ["--expect-proxy"] if t.expect_proxy else []
    if junit:
        args.append(f"--junitxml={junit}")
    return args


def run_suite(t: Target, junit: str | None = None) -> tuple[int, Collector, float]:
    import pytest

    collector = Collector()
    start = time.perf_counter()
    # testinfra's ansible backend runs ansible-inventory/ansible: those beside this interpreter.
    bindir = str(Path(sys.executable).parent)
    if bindir not in os.environ.get("PATH", "").split(os.pathsep):
        os.environ["PATH"] = bindir + os.pathsep + os.environ.get("PATH", "")
    # Nor may the caller's pytest environment: a CI job that runs this command from its own
    # pytest session has PYTEST_ADDOPTS or PYTEST_PLUGINS set for that session, naming plugins
    # or options this suite does not have.
    callers = {name: os.environ.pop(name) for name in CALLERS_PYTEST_ENV if name in os.environ}
    try:
        with as_file(files("vllm_fleet.smoke") / "suite") as suite:
            rc = pytest.main(pytest_args(t, junit, Path(suite)), plugins=[collector])
    finally:
        os.environ.update(callers)
    return int(rc), collector, time.perf_counter() - start


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


# --- several instances (vllm-fleet smoke -i INV -l PATTERN) ----------------------------------

@dataclass
class TargetRun:
    """One inventory instance's run: its summary document, or why it could not be checked."""

    host: str
    instance: str
    passed: bool = False
    doc: dict[str, Any] | None = None
    error: str | None = None
    junit: str | None = None  # pytest's own JUnit file of this run, merged afterwards

    @property
    def label(self) -> str:
        return f"{self.host}/{self.instance}"

    def as_dict(self) -> dict[str, Any]:
        if self.doc is not None:
            return {"host": self.host, "instance": self.instance, **self.doc}
        return {"host": self.host, "instance": self.instance, "passed": False, "error": self.error}


def merge_junit(runs: list[TargetRun], out: str) -> None:
    """One JUnit file for several instances: one <testsuite> each, named HOST/INSTANCE, and each
    test case named `check[HOST/INSTANCE]` (pytest's parametrised-name style) so that CI views
    that key on class and name keep the instances apart. An instance that could not be checked
    is a suite with one errored case, so CI sees it too."""
    import xml.etree.ElementTree as ET

    root = ET.Element("testsuites", name="vllm-fleet smoke")
    totals = {"tests": 0, "failures": 0, "errors": 0, "skipped": 0}
    for run in runs:
        suites: list[ET.Element] = []
        if run.junit and Path(run.junit).exists():
            try:
                parsed = ET.parse(run.junit).getroot()
                suites = [parsed] if parsed.tag == "testsuite" else list(parsed.iter("testsuite"))
            except ET.ParseError:
                suites = []
        if not suites:
            suite = ET.Element("testsuite", tests="1", failures="0", errors="1", skipped="0", time="0")
            case = ET.SubElement(suite, "testcase", classname="vllm-fleet smoke", name=f"setup[{run.label}]")
            ET.SubElement(case, "error", message=run.error or "the smoke suite did not run").text = run.error or ""
            suites = [suite]
        for suite in suites:
            suite.set("name", run.label)
            for case in suite.iter("testcase"):
                case.set("name", f"{case.get('name', '')}[{run.label}]")
            for key in totals:
                totals[key] += int(suite.get(key, "0") or 0)
            root.append(suite)
    for key, value in totals.items():
        root.set(key, str(value))
    ET.ElementTree(root).write(out, encoding="utf-8", xml_declaration=True)


def fleet_plan(labels: list[str], skipped: list[tuple[str, str]]) -> str:
    """The opening lines of a run over several instances: what will be checked, what will not."""
    lines = [f"{len(labels)} instance(s) to check, one after another: {', '.join(labels)}"]
    lines += [f"skipped {host}: {reason}" for host, reason in skipped]
    return "\n".join(lines)


def fleet_summary(runs: list[TargetRun], skipped: list[tuple[str, str]]) -> tuple[str, bool]:
    """The closing lines of a run over several instances, and whether every instance passed."""
    passed = sum(r.passed for r in runs)
    lines = []
    not_passed = [r.label + (" (not checked)" if r.error else "") for r in runs if not r.passed]
    if not_passed:
        lines.append(f"not passed: {', '.join(not_passed)}")
    tail = f" ({len(skipped)} host(s) skipped: {', '.join(h for h, _ in skipped)})" if skipped else ""
    lines.append(f"{passed} of {len(runs)} instances passed{tail}")
    return "\n".join(lines), bool(runs) and passed == len(runs)
