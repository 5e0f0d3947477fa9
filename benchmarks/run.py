"""Benchmark harness: this package, snowplow-tracker 1.1.0 and Segment, side by side.

    .venv/bin/python benchmarks/run.py            # full run; writes results and the docs
    .venv/bin/python benchmarks/run.py --quick    # under a minute; results only

Every implementation runs in its own interpreter and virtual environment (see ``envs.py``),
one scenario per child process (``child.py``), against one loopback collector process
(``bench_collector.py``) whose own capacity is measured first (``blaster.py``). Each
measurement is repeated and the medians are reported, with ratios against 1.1.0 from the same
run. Results go to ``benchmarks/results/latest.json`` (``latest-quick.json`` with
``--quick``) and, for a full run, into ``docs/benchmarks.md`` with a chart
(``docs/benchmarks.png``). See docs/benchmarks.md for the method.
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import os
import platform
import resource
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Sequence, Tuple, TypeVar

REPO_ROOT = Path(__file__).resolve().parents[1]
if str(REPO_ROOT) not in sys.path:
    sys.path.insert(0, str(REPO_ROOT))

from benchmarks import envs, report  # noqa: E402

BENCH_DIR = Path(__file__).resolve().parent
CHILD = BENCH_DIR / "child.py"
COLLECTOR = BENCH_DIR / "bench_collector.py"
BLASTER = BENCH_DIR / "blaster.py"
RESULTS_DIR = BENCH_DIR / "results"
DOCS = REPO_ROOT / "docs" / "benchmarks.md"
CHART = REPO_ROOT / "docs" / "benchmarks.png"

KINDS = ("structured", "page_view", "self_describing")
BATCHES = (10, 100)
EMITTERS = ("sync", "async")
OURS, REFERENCE, SEGMENT = "ours", "v1_1_0", "segment"
SECTIONS = (
    "collector",
    "floor",
    "machine_stalls",
    "latency",
    "sqlite",
    "throughput",
    "blocked",
    "memory",
    "targets",
)


@dataclasses.dataclass
class Settings:
    """How much work each measurement does."""

    mode: str
    repeats: int
    latency_repeats: int
    throughput_repeats: int
    latency_rounds: int
    latency_warmup: int
    throughput_events: int
    blocked_calls_sync: int
    blocked_calls_async: int
    memory_events: int
    memory_repeats: int
    collector_seconds: float
    collector_repeats: int
    stall_seconds: float = 1.0
    delay_s: float = 0.05
    wait_timeout_s: float = 120.0
    #: Before each timed child, wait (up to settle_max_s) until other processes use less
    #: than settle_threshold of the machine's CPU; at most settle_budget_s per run.
    settle_threshold: float = 0.25
    settle_max_s: float = 0.0
    settle_budget_s: float = 0.0


QUICK = Settings(
    mode="quick",
    repeats=2,
    latency_repeats=2,
    throughput_repeats=2,
    latency_rounds=2_000,
    latency_warmup=200,
    throughput_events=2_000,
    blocked_calls_sync=100,
    blocked_calls_async=1_000,
    memory_events=50_000,
    memory_repeats=1,
    collector_seconds=0.5,
    collector_repeats=1,
    stall_seconds=0.3,
)
FULL = Settings(
    mode="full",
    repeats=5,
    # End-to-end runs of ours take 0.1-0.3 s, 1.1.0's 1-2 s: ours land in one spell of this
    # machine's bimodal speed while 1.1.0's average over several, so ours need more runs
    # for a stable median (5 runs once gave 49.8k-76.9k events/s, median 60.0k).
    throughput_repeats=11,
    # Many short tracking-call runs rather than a few long ones: the machine's speed drifts
    # (up to 1.5x) over fractions of a second, and 10 runs of 10,000 rounds once put 8 of
    # one implementation's runs in slow spells and 9 of the other's in fast ones.
    latency_repeats=30,
    latency_rounds=4_000,
    latency_warmup=1_000,
    throughput_events=10_000,
    blocked_calls_sync=1_000,
    blocked_calls_async=1_000,
    memory_events=1_000_000,
    memory_repeats=3,
    collector_seconds=3.0,
    collector_repeats=3,
    settle_max_s=15.0,
    settle_budget_s=300.0,
)


@dataclasses.dataclass
class Impl:
    """One implementation under test and the interpreter that has it."""

    key: str
    label: str
    api: str  # "snowplow" or "segment": which client code the child uses
    python: Optional[Path] = None
    error: Optional[str] = None
    version: Optional[str] = None
    #: A directory the child puts first on ``sys.path`` (ours: a snapshot of the package).
    src: Optional[Path] = None

    @property
    def available(self) -> bool:
        return self.python is not None


class ChildError(RuntimeError):
    """A benchmark child failed or produced no result."""


def _die_with_parent() -> None:  # pragma: no cover - runs in the forked child
    """Ask Linux to end this child if the harness dies, so nothing is left behind."""
    if sys.platform.startswith("linux"):
        try:
            import ctypes

            ctypes.CDLL(None).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG
        except Exception:
            pass


def _median(values: Sequence[float]) -> Optional[float]:
    return statistics.median(values) if values else None


def _ratio(value: Optional[float], base: Optional[float]) -> Optional[float]:
    if value is None or base is None or base == 0:
        return None
    return value / base


def _git(*args: str) -> str:
    try:
        result = subprocess.run(
            ["git", *args], cwd=REPO_ROOT, capture_output=True, text=True, timeout=30
        )
    except (OSError, subprocess.SubprocessError):
        return ""
    return result.stdout.strip() if result.returncode == 0 else ""


def _cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            for line in cpuinfo:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _loadavg() -> Optional[List[float]]:
    try:
        return [round(x, 2) for x in os.getloadavg()]
    except (OSError, AttributeError):
        return None


def _cpu_jiffies() -> Optional[Tuple[int, int]]:
    """(busy, total) CPU time of the whole machine since boot, in clock ticks (Linux)."""
    try:
        with open("/proc/stat") as stat:
            fields = [int(v) for v in stat.readline().split()[1:9]]
    except (OSError, ValueError):
        return None
    idle = fields[3] + fields[4]  # idle + iowait
    return sum(fields) - idle, sum(fields)


def _children_cpu_s() -> float:
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _closed_port_endpoint() -> str:
    """An endpoint where nothing listens (the collector is "down")."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    return f"http://127.0.0.1:{port}"


class Harness:
    """Owns the collector process, runs children, and collects their results."""

    def __init__(self, settings: Settings, impls: Dict[str, Impl], workdir: Path) -> None:
        self.settings = settings
        self.impls = impls
        self.workdir = workdir
        self.collector: Optional[subprocess.Popen[str]] = None
        self.collector_url = ""
        self.collector_generation = 0
        self.collector_stderr = workdir / "collector.stderr"
        self.collector_deaths: List[Dict[str, Any]] = []
        self.dead_endpoint = _closed_port_endpoint()
        self.started = time.monotonic()
        self.errors: List[Dict[str, Any]] = []
        self.counter = 0
        #: Share of the machine's CPU used by other processes during each timed child run.
        self.background: Dict[str, List[float]] = {}
        self.settle_spent = 0.0
        self.settle_waits = 0

    # -- logging -----------------------------------------------------------------------

    def log(self, message: str) -> None:
        elapsed = time.monotonic() - self.started
        sys.stderr.write(f"[{elapsed:7.1f}s] {message}\n")
        sys.stderr.flush()

    # -- collector ---------------------------------------------------------------------

    def start_collector(self, port: int = 0) -> None:
        self.collector_generation += 1
        self.collector_stderr = self.workdir / f"collector-{self.collector_generation}.stderr"
        stderr = open(self.collector_stderr, "w")  # noqa: SIM115
        self.collector = subprocess.Popen(
            [str(envs.our_python()), "-I", str(COLLECTOR), "--port", str(port)],
            stdout=subprocess.PIPE,
            stderr=stderr,
            text=True,
            cwd=self.workdir,
            preexec_fn=_die_with_parent if os.name == "posix" else None,
        )
        stderr.close()
        assert self.collector.stdout is not None
        deadline = time.monotonic() + 30
        line = ""
        while time.monotonic() < deadline and not line:
            line = self.collector.stdout.readline()
            if self.collector.poll() is not None:
                break
        if not line:
            self.stop_collector()
            raise RuntimeError("the benchmark collector did not start")
        port = json.loads(line)["port"]
        self.collector_url = f"http://127.0.0.1:{port}"
        self.control("health")

    def ensure_collector(self) -> None:
        """Restart the collector if it died (it never should; the event is recorded)."""
        process = self.collector
        if process is not None and process.poll() is None:
            return
        try:
            tail = self.collector_stderr.read_text(errors="replace")[-2000:]
        except OSError:
            tail = ""
        code = process.returncode if process is not None else None
        self.collector_deaths.append(
            {"at_s": round(time.monotonic() - self.started, 1), "returncode": code, "stderr": tail}
        )
        self.log(f"  ! the collector exited (status {code}); restarting it")
        self.collector = None
        old_port = int(self.collector_url.rsplit(":", 1)[1]) if self.collector_url else 0
        try:
            self.start_collector(old_port)  # same port: children in flight can reconnect
        except (RuntimeError, OSError, ValueError):
            self.start_collector(0)

    def stop_collector(self) -> None:
        process = self.collector
        if process is None:
            return
        self.collector = None
        if process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=10)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if process.stdout is not None:
            process.stdout.close()

    def control(self, action: str, **query: Any) -> Dict[str, Any]:
        args = "&".join(f"{key}={value}" for key, value in query.items())
        for attempt in range(2):
            url = f"{self.collector_url}/_bench/{action}?{args}"
            try:
                with urllib.request.urlopen(url, timeout=30) as response:
                    result: Dict[str, Any] = json.loads(response.read())
                    return result
            except OSError:  # URLError and connection errors
                if attempt:
                    raise
                self.ensure_collector()
                time.sleep(0.2)
        raise AssertionError("unreachable")

    def new_tag(self, prefix: str) -> str:
        self.counter += 1
        return f"{prefix}-{self.counter}-{uuid.uuid4().hex[:6]}"

    # -- children ----------------------------------------------------------------------

    def _child_command(self, impl: Impl, spec: Dict[str, Any]) -> List[str]:
        assert impl.python is not None
        full = {"impl": impl.api, "collector": self.collector_url, **spec}
        if impl.src is not None:
            full["src"] = str(impl.src)
        return [str(impl.python), "-I", str(CHILD), json.dumps(full)]

    def _child_env(self) -> Dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("PYTHON")}
        env["PYTHONDONTWRITEBYTECODE"] = "1"
        env["PYTHONHASHSEED"] = "0"
        return env

    def _stderr_path(self) -> Path:
        self.counter += 1
        return self.workdir / f"child-{self.counter}.stderr"

    @staticmethod
    def _parse(stdout: str, returncode: int, stderr_path: Path) -> Dict[str, Any]:
        lines = [line for line in stdout.splitlines() if line.strip()]
        result: Dict[str, Any] = {}
        if lines:
            try:
                result = json.loads(lines[-1])
            except json.JSONDecodeError:
                result = {}
        if returncode != 0 or not result or "error" in result:
            try:
                tail = stderr_path.read_text(errors="replace")[-2000:]
            except OSError:
                tail = ""
            message = result.get("error") or f"exit status {returncode}"
            raise ChildError(f"{message}\n{result.get('traceback', '')}{tail}".strip())
        return result

    def settle(self) -> None:
        """Wait a little for a quiet moment: the machine is shared with other work."""
        s = self.settings
        began = time.monotonic()
        while (
            time.monotonic() - began < s.settle_max_s
            and self.settle_spent + time.monotonic() - began < s.settle_budget_s
        ):
            before = _cpu_jiffies()
            time.sleep(0.3)
            after = _cpu_jiffies()
            if before is None or after is None or after[1] <= before[1]:
                break
            # Our collector is idle and the harness asleep: whatever is busy is other work.
            if (after[0] - before[0]) / (after[1] - before[1]) < s.settle_threshold:
                break
        waited = time.monotonic() - began
        self.settle_spent += waited
        if waited > 0.5:
            self.settle_waits += 1

    def run_child(self, impl: Impl, spec: Dict[str, Any], timeout: float) -> Dict[str, Any]:
        if self.settings.settle_max_s > 0:
            self.settle()
        self.ensure_collector()
        generation = self.collector_generation
        stderr_path = self._stderr_path()
        machine0 = _cpu_jiffies()
        children0 = _children_cpu_s()
        collector0 = self.control("health")["collector_cpu_s"]
        self0 = time.process_time()
        with open(stderr_path, "w") as stderr:
            try:
                completed = subprocess.run(
                    self._child_command(impl, spec),
                    stdout=subprocess.PIPE,
                    stderr=stderr,
                    text=True,
                    cwd=self.workdir,
                    env=self._child_env(),
                    timeout=timeout,
                    check=False,
                    preexec_fn=_die_with_parent if os.name == "posix" else None,
                )
            except subprocess.TimeoutExpired as exc:
                raise ChildError(f"timed out after {timeout:.0f} s") from exc
        machine1 = _cpu_jiffies()
        collector1 = self.control("health")["collector_cpu_s"]
        if (
            machine0 is not None
            and machine1 is not None
            and machine1[1] > machine0[1]
            and generation == self.collector_generation
        ):
            ticks = os.sysconf("SC_CLK_TCK")
            ours = (
                _children_cpu_s()
                - children0
                + collector1
                - collector0
                + time.process_time()
                - self0
            )
            busy = (machine1[0] - machine0[0]) / ticks
            total = (machine1[1] - machine0[1]) / ticks
            share = min(1.0, max(0.0, (busy - ours) / total))
            self.background.setdefault(str(spec.get("scenario")), []).append(share)
        return self._parse(completed.stdout, completed.returncode, stderr_path)

    def run_children_parallel(
        self, jobs: List[Tuple[Impl, Dict[str, Any]]], timeout: float, concurrency: int
    ) -> List[Any]:
        """Run children ``concurrency`` at a time; a result dict or a ChildError per job."""
        results: List[Any] = [None] * len(jobs)
        running: List[Tuple[int, subprocess.Popen[str], Path, Any, float]] = []
        pending = list(enumerate(jobs))
        try:
            while pending or running:
                while pending and len(running) < concurrency:
                    index, (impl, spec) = pending.pop(0)
                    stderr_path = self._stderr_path()
                    stderr = open(stderr_path, "w")  # noqa: SIM115
                    process = subprocess.Popen(
                        self._child_command(impl, spec),
                        stdout=subprocess.PIPE,
                        stderr=stderr,
                        text=True,
                        cwd=self.workdir,
                        env=self._child_env(),
                        preexec_fn=_die_with_parent if os.name == "posix" else None,
                    )
                    deadline = time.monotonic() + timeout
                    running.append((index, process, stderr_path, stderr, deadline))
                time.sleep(0.05)
                still: List[Tuple[int, subprocess.Popen[str], Path, Any, float]] = []
                for index, process, stderr_path, stderr, deadline in running:
                    if process.poll() is None and time.monotonic() < deadline:
                        still.append((index, process, stderr_path, stderr, deadline))
                        continue
                    if process.poll() is None:
                        process.kill()
                        process.communicate(timeout=10)
                        results[index] = ChildError(f"timed out after {timeout:.0f} s")
                    else:
                        stdout, _ = process.communicate(timeout=10)
                        try:
                            results[index] = self._parse(stdout, process.returncode, stderr_path)
                        except ChildError as exc:
                            results[index] = exc
                    stderr.close()
                running = still
        finally:
            for _, process, _, stderr, _ in running:  # interrupted: leave nothing behind
                if process.poll() is None:
                    process.kill()
                    process.wait(timeout=10)
                stderr.close()
        return results

    def record_error(self, section: str, impl: Impl, detail: str, error: BaseException) -> None:
        message = str(error)
        self.errors.append(
            {"section": section, "impl": impl.key, "detail": detail, "error": message[:4000]}
        )
        self.log(f"  ! {section} {impl.key} {detail}: {message.splitlines()[0][:200]}")

    def rotated(self, keys: Sequence[str], repeat: int) -> List[Impl]:
        """The available implementations, in an order that changes with each repeat."""
        return _in_turn([self.impls[key] for key in keys if self.impls[key].available], repeat)

    # -- sections ----------------------------------------------------------------------

    def collector_alone(self) -> Dict[str, Any]:
        """Events/s the collector absorbs from a lean blaster, and its CPU per event.

        Each repeat blasts over 2 and over 8 connections; the better of the two counts.
        """
        s = self.settings
        out: Dict[str, Any] = {"runs": {}, "events_per_s": {}, "cpu_us_per_event": {}}
        for batch in BATCHES:
            runs = []
            for _ in range(s.collector_repeats):
                attempts = []
                for connections in (2, 8):
                    try:
                        attempts.append(self._blast(batch, connections))
                    except (RuntimeError, OSError, ValueError, subprocess.SubprocessError) as exc:
                        collector = Impl("collector", "benchmark collector", "none")
                        self.record_error("collector", collector, f"blast b{batch}", exc)
                if attempts:
                    runs.append(max(attempts, key=lambda run: float(run["events_per_s"])))
            out["runs"][str(batch)] = runs
            out["events_per_s"][str(batch)] = _median([r["events_per_s"] for r in runs])
            out["cpu_us_per_event"][str(batch)] = _median([r["cpu_us_per_event"] for r in runs])
        out["capacity_one_core_events_per_s"] = {
            batch: (1e6 / cpu if cpu else None) for batch, cpu in out["cpu_us_per_event"].items()
        }
        return out

    def local_collector(self) -> Optional[Dict[str, Any]]:
        """The package's LocalCollector with its own benchmark (quick mode), for reference.

        Informational only: the benchmark collector is a LocalCollector with validation off
        (``bench_collector.py``); this adds the in-process figures with validation on.
        """
        self.log("LocalCollector, for comparison (benchmarks/collector_throughput.py --quick)")
        try:
            completed = subprocess.run(
                [str(envs.our_python()), str(BENCH_DIR / "collector_throughput.py"), "--quick"],
                capture_output=True,
                text=True,
                timeout=300,
                check=False,
                cwd=REPO_ROOT,
            )
            report_doc = json.loads(completed.stdout)
        except (OSError, subprocess.SubprocessError, ValueError) as exc:
            self.log(f"  ! LocalCollector measurement failed: {exc}")
            return None
        return {
            "events_per_s": {
                ("validating" if row["validate"] else "not_validating")
                + f"_batch_{row['batch']}": row["events_per_s"]
                for row in report_doc.get("http", [])
            },
            "client_threads": report_doc.get("http", [{}])[0].get("threads"),
        }

    def _blast(self, batch: int, connections: int) -> Dict[str, Any]:
        """One blaster run against the collector; its rate and the collector's CPU."""
        s = self.settings
        tag = self.new_tag(f"blast{batch}")
        self.log(f"collector alone, batch {batch}, {connections} connections")
        self.ensure_collector()
        generation = self.collector_generation
        before = self.control("health")["collector_cpu_s"]
        command = [
            str(envs.our_python()),
            "-I",
            str(BLASTER),
            "--port",
            self.collector_url.rsplit(":", 1)[1],
            "--tag",
            tag,
            "--batch",
            str(batch),
            "--seconds",
            str(s.collector_seconds),
            "--connections",
            str(connections),
        ]
        completed = subprocess.run(
            command,
            capture_output=True,
            text=True,
            timeout=s.collector_seconds + 60,
            check=False,
            cwd=self.workdir,
        )
        stats = self.control("stats", tag=tag)
        self.control("forget", tag=tag)
        if completed.returncode != 0:
            raise RuntimeError(f"blaster failed: {completed.stderr[-2000:]}")
        blast = json.loads(completed.stdout.splitlines()[-1])
        if generation != self.collector_generation:
            raise RuntimeError("the collector restarted during the run")
        cpu = stats["collector_cpu_s"] - before
        return {
            "connections": connections,
            "events": stats["unique"],
            "duplicates": stats["duplicates"],
            "seconds": blast["seconds"],
            "events_per_s": stats["unique"] / blast["seconds"],
            "collector_cpu_s": cpu,
            "cpu_us_per_event": cpu / max(1, stats["unique"]) * 1e6,
            "utilization": cpu / blast["seconds"],
        }

    def _runs_without_library(
        self, section: str, specs: Dict[str, Callable[[], Dict[str, Any]]], timeout: float
    ) -> Dict[str, List[Dict[str, Any]]]:
        """Run children without a library (the floors, the stall census) ``repeats`` times.

        ``specs`` maps a label to the spec of one child; the labels take turns in each
        repeat, so that they share the machine's changes of speed. Returns the runs by label.
        """
        floor_impl = Impl("floor", "CPython floor", "floor", python=envs.our_python())
        runs: Dict[str, List[Dict[str, Any]]] = {label: [] for label in specs}
        for repeat in range(self.settings.repeats):
            for label in _in_turn(list(specs), repeat):
                self.log(f"{label}, run {repeat + 1}")
                try:
                    runs[label].append(self.run_child(floor_impl, specs[label](), timeout=timeout))
                except ChildError as exc:
                    self.record_error(section, floor_impl, f"{label} run {repeat + 1}", exc)
        return runs

    def floor(self) -> Dict[str, Any]:
        """The CPython floor (uuid4 + dict + json.dumps of one event) per kind, and under
        ``"wire"`` the wire floor (the same events in the default wire form, base64 and all).
        """
        s = self.settings

        def spec_of(wire: bool) -> Callable[[], Dict[str, Any]]:
            def spec() -> Dict[str, Any]:
                return {
                    "scenario": "latency",
                    "tag": self.new_tag("floor"),
                    "rounds": s.latency_rounds,
                    "warmup": s.latency_warmup,
                    "modes": ["idle"],
                    "dead_endpoint": self.dead_endpoint,
                    "wire": wire,
                }

            return spec

        runs = self._runs_without_library(
            "floor", {"floor": spec_of(False), "wire floor": spec_of(True)}, 300
        )
        return {
            "python": platform.python_version(),
            **_latency_summary([run["idle"] for run in runs["floor"]]),
            "wire": _latency_summary([run["idle"] for run in runs["wire floor"]]),
        }

    def stalls(self) -> Dict[str, Any]:
        """How often the machine itself interrupts a running thread (median of runs)."""
        seconds = self.settings.stall_seconds
        runs = self._runs_without_library(
            "machine_stalls",
            {"machine stalls": lambda: {"scenario": "stalls", "seconds": seconds}},
            120,
        )["machine stalls"]
        keys = runs[0].keys() if runs else ()
        return {
            "runs": runs,
            **{key: _median([run[key] for run in runs]) for key in keys if key != "seconds"},
        }

    def latency(self) -> Tuple[Dict[str, Any], Dict[str, Any]]:
        """Tracking-call cost: idle and while an AsyncEmitter delivers (and SQLite, ours)."""
        s = self.settings
        runs: Dict[str, Dict[str, List[Dict[str, Any]]]] = {}
        for repeat in range(s.latency_repeats):
            for mode in ("idle", "async", "sqlite"):
                keys = (OURS,) if mode == "sqlite" else (OURS, REFERENCE, SEGMENT)
                for impl in self.rotated(keys, repeat):
                    self.log(f"latency {mode} {impl.key}, run {repeat + 1}")
                    spec = {
                        "scenario": "latency",
                        "tag": self.new_tag(f"lat-{impl.key}"),
                        "rounds": s.latency_rounds,
                        "warmup": s.latency_warmup,
                        "modes": [mode],
                        "dead_endpoint": self.dead_endpoint,
                    }
                    try:
                        result = self.run_child(impl, spec, timeout=600)
                    except ChildError as exc:
                        self.record_error("latency", impl, f"{mode} run {repeat + 1}", exc)
                        continue
                    finally:
                        self.control("forget", tag=f"{spec['tag']}-{mode}")
                    impl.version = result.get("version", impl.version)
                    buffered = result[mode].get("buffered")
                    expected = (s.latency_rounds + s.latency_warmup) * len(KINDS)
                    if impl.api == "snowplow" and mode != "async" and buffered != expected:
                        # Something was sent or dropped: not the "nothing sending" case.
                        error = ChildError(f"{buffered} events buffered, expected {expected}")
                        self.record_error("latency", impl, f"{mode} run {repeat + 1}", error)
                        continue
                    runs.setdefault(mode, {}).setdefault(impl.key, []).append(result[mode])
        latency: Dict[str, Any] = {}
        for mode in ("idle", "async"):
            latency[mode] = {
                key: _latency_summary(mode_runs) for key, mode_runs in runs.get(mode, {}).items()
            }
        sqlite: Dict[str, Any] = {}
        sqlite_runs = runs.get("sqlite", {}).get(OURS, [])
        if sqlite_runs:
            sqlite[OURS] = _latency_summary(sqlite_runs)
            in_memory = latency["idle"].get(OURS, {})
            sqlite["ratio_to_in_memory"] = {
                kind: _ratio(
                    sqlite[OURS][kind]["median_us"], in_memory.get(kind, {}).get("median_us")
                )
                for kind in KINDS
            }
        return latency, sqlite

    def throughput(self) -> Dict[str, Any]:
        """End-to-end events/s and client CPU per event until every event was counted."""
        s = self.settings
        runs: Dict[Tuple[str, int, str], List[Dict[str, Any]]] = {}
        for repeat in range(s.throughput_repeats):
            for emitter in EMITTERS:
                for batch in BATCHES:
                    keys = (OURS, REFERENCE) if emitter == "sync" else (OURS, REFERENCE, SEGMENT)
                    for impl in self.rotated(keys, repeat):
                        self.log(f"throughput {emitter} batch {batch} {impl.key}, run {repeat + 1}")
                        tag = self.new_tag(f"tp-{impl.key}")
                        spec = {
                            "scenario": "throughput",
                            "tag": tag,
                            "emitter": emitter,
                            "batch_size": batch,
                            "events": s.throughput_events,
                            "timeout": s.wait_timeout_s,
                        }
                        cpu_before = self.control("health")["collector_cpu_s"]
                        generation = self.collector_generation
                        try:
                            result = self.run_child(impl, spec, timeout=s.wait_timeout_s + 120)
                            _verify_counted(result, s.throughput_events)
                        except ChildError as exc:
                            self.record_error(
                                "throughput", impl, f"{emitter} b{batch} run {repeat + 1}", exc
                            )
                            continue
                        finally:
                            cpu_after = self.control("health")["collector_cpu_s"]
                            self.control("forget", tag=tag)
                        result["collector_utilization"] = (
                            (cpu_after - cpu_before) / max(1e-9, result["wall_s"])
                            if generation == self.collector_generation
                            else None
                        )
                        result.pop("emitter_stats", None)
                        runs.setdefault((emitter, batch, impl.key), []).append(result)
        out: Dict[str, Any] = {}
        for (emitter, batch, key), row_runs in runs.items():
            row = {
                "events_per_s": _median([r["events_per_s"] for r in row_runs]),
                "cpu_us_per_event": _median([r["cpu_us_per_event"] for r in row_runs]),
                "tracking_loop_us_per_event": _median(
                    [r["tracking_loop_s"] / r["events"] * 1e6 for r in row_runs]
                ),
                "collector_utilization_max": max(
                    (r["collector_utilization"] or 0.0 for r in row_runs), default=None
                ),
                "verified_runs": len(row_runs),
                "runs": [
                    {
                        k: r[k]
                        for k in (
                            "events",
                            "wall_s",
                            "cpu_s",
                            "events_per_s",
                            "cpu_us_per_event",
                            "tracking_loop_s",
                            "collector_utilization",
                        )
                    }
                    for r in row_runs
                ],
            }
            out.setdefault(emitter, {}).setdefault(str(batch), {})[key] = row
        for rows in out.values():
            for batch_rows in rows.values():
                base = batch_rows.get(REFERENCE)
                for key, row in batch_rows.items():
                    if key != REFERENCE and base:
                        row["events_per_s_vs_1_1_0"] = _ratio(
                            row["events_per_s"], base["events_per_s"]
                        )
                        row["cpu_per_event_vs_1_1_0"] = _ratio(
                            row["cpu_us_per_event"], base["cpu_us_per_event"]
                        )
        return out

    def blocked(self) -> Dict[str, Any]:
        """Caller time per 1,000 tracking calls while the collector takes 50 ms a request."""
        s = self.settings
        runs: Dict[Tuple[str, str], List[Dict[str, Any]]] = {}
        for repeat in range(s.repeats):
            for emitter in EMITTERS:
                keys = (OURS, REFERENCE) if emitter == "sync" else (OURS, REFERENCE, SEGMENT)
                for impl in self.rotated(keys, repeat):
                    calls = s.blocked_calls_sync if emitter == "sync" else s.blocked_calls_async
                    self.log(f"blocked {emitter} {impl.key} ({calls} calls), run {repeat + 1}")
                    tag = self.new_tag(f"blk-{impl.key}")
                    self.control("config", tag=tag, delay=s.delay_s)
                    spec = {
                        "scenario": "blocked",
                        "tag": tag,
                        "emitter": emitter,
                        "calls": calls,
                        "timeout": s.wait_timeout_s,
                    }
                    try:
                        result = self.run_child(impl, spec, timeout=s.wait_timeout_s + 120)
                    except ChildError as exc:
                        self.record_error("blocked", impl, f"{emitter} run {repeat + 1}", exc)
                        continue
                    finally:
                        self.control("forget", tag=tag)
                    runs.setdefault((emitter, impl.key), []).append(result)
        out: Dict[str, Any] = {"collector_delay_ms": s.delay_s * 1000, "batch_size": 10}
        for (emitter, key), row_runs in runs.items():
            out.setdefault(emitter, {})[key] = {
                "ms_per_1000_calls": _median([r["blocked_ms_per_1000"] for r in row_runs]),
                "calls_per_run": row_runs[0]["calls"],
                "call_p99_us": _median([r["call_p99_us"] for r in row_runs]),
                "call_max_us": _median([r["call_max_us"] for r in row_runs]),
                "runs": [r["blocked_ms_per_1000"] for r in row_runs],
            }
        return out

    def memory(self) -> Dict[str, Any]:
        """Resident bytes per buffered event with the collector down (run two at a time)."""
        s = self.settings
        jobs: List[Tuple[Impl, Dict[str, Any]]] = []
        for repeat in range(s.memory_repeats):
            for impl in self.rotated((OURS, REFERENCE, SEGMENT), repeat):
                spec = {
                    "scenario": "memory",
                    "tag": self.new_tag(f"mem-{impl.key}"),
                    "events": s.memory_events,
                    "kinds": ["structured"],
                    "dead_endpoint": self.dead_endpoint,
                }
                jobs.append((impl, spec))
        self.log(f"memory: {len(jobs)} runs of {s.memory_events:,} events, two at a time")
        results = self.run_children_parallel(jobs, timeout=1800, concurrency=2)
        runs: Dict[str, List[Dict[str, Any]]] = {}
        for (impl, _), result in zip(jobs, results):
            if isinstance(result, ChildError):
                self.record_error("memory", impl, "run", result)
                continue
            expected = s.memory_events + result.get("warmup_events", 0)
            if impl.api == "snowplow" and result.get("buffered") != expected:
                error = ChildError(f"{result.get('buffered')} events buffered, not {expected}")
                self.record_error("memory", impl, "run", error)
                continue
            runs.setdefault(impl.key, []).append(result)
        out: Dict[str, Any] = {"events": s.memory_events, "kind": "structured"}
        for key, row_runs in runs.items():
            out[key] = {
                "bytes_per_event": _median([r["bytes_per_event"] for r in row_runs]),
                "runs": [r["bytes_per_event"] for r in row_runs],
                "buffered": row_runs[0]["buffered"],
            }
        base = out.get(REFERENCE, {}).get("bytes_per_event")
        for key in (OURS, SEGMENT):
            if key in out:
                out[key]["vs_1_1_0"] = _ratio(out[key]["bytes_per_event"], base)
        return out


T = TypeVar("T")


def _in_turn(items: List[T], repeat: int) -> List[T]:
    """``items`` rotated by ``repeat``: who goes first changes from one repeat to the next."""
    if not items:
        return items
    shift = repeat % len(items)
    return items[shift:] + items[:shift]


def _latency_summary(runs: List[Dict[str, Any]]) -> Dict[str, Any]:
    """Per kind: the median over runs of each run's median and p99."""
    out: Dict[str, Any] = {}
    for kind in KINDS:
        kind_runs = [run[kind] for run in runs if kind in run]
        out[kind] = {
            "median_us": _median([r["median_us"] for r in kind_runs]),
            "p99_us": _median([r["p99_us"] for r in kind_runs]),
            "runs": [{"median_us": r["median_us"], "p99_us": r["p99_us"]} for r in kind_runs],
        }
    delivered = [
        r["delivered_during_measurement"] for r in runs if "delivered_during_measurement" in r
    ]
    if delivered:
        out["delivered_during_measurement"] = _median(delivered)
        out["tracked_during_measurement"] = runs[0].get("tracked_during_measurement")
    out["runs"] = len(runs)
    return out


def _verify_counted(result: Dict[str, Any], events: int) -> None:
    """Every event arrived exactly once (unique ids), or the run does not count."""
    collector = result.get("collector", {})
    expected = events + result.get("warmup_events", 0)
    problems = []
    if result.get("timed_out"):
        problems.append("timed out waiting for the collector")
    if collector.get("unique") != expected:
        problems.append(f"collector counted {collector.get('unique')} unique ids, not {expected}")
    if collector.get("duplicates"):
        problems.append(f"{collector['duplicates']} duplicate ids")
    if collector.get("bad_requests"):
        problems.append(f"{collector['bad_requests']} bad requests")
    if problems:
        raise ChildError("; ".join(problems))


# --------------------------------------------------------------------------- targets


def _get(data: Dict[str, Any], *path: str) -> Optional[float]:
    node: Any = data
    for key in path:
        if not isinstance(node, dict) or key not in node:
            return None
        node = node[key]
    return node if isinstance(node, (int, float)) else None


def evaluate_targets(results: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The issue's targets, each with our figure, 1.1.0's, the ratio and pass/miss."""
    targets: List[Dict[str, Any]] = []

    def add(
        name: str,
        ours: Optional[float],
        base: Optional[float],
        op: str,
        threshold: float,
        unit: str,
        text: str,
        **extra: str,
    ) -> None:
        ratio = _ratio(ours, base)
        passed: Optional[bool] = None
        if ratio is not None:
            passed = ratio >= threshold if op == ">=" else ratio <= threshold
        targets.append(
            {
                "name": name,
                "target": text,
                "ours": ours,
                "v1_1_0": base,
                "unit": unit,
                "ratio": ratio,
                "op": op,
                "threshold": threshold,
                "pass": passed,
                **extra,
            }
        )

    tp = results.get("throughput", {})
    for batch, factor in (("10", 5.0), ("100", 3.0)):
        add(
            f"AsyncEmitter end-to-end, batch {batch}",
            _get(tp, "async", batch, OURS, "events_per_s"),
            _get(tp, "async", batch, REFERENCE, "events_per_s"),
            ">=",
            factor,
            "events/s",
            f">= {factor:g}x 1.1.0",
        )
    for emitter, label in (("async", "AsyncEmitter"), ("sync", "Emitter")):
        add(
            f"Client CPU per event, {label}, batch 10",
            _get(tp, emitter, "10", OURS, "cpu_us_per_event"),
            _get(tp, emitter, "10", REFERENCE, "cpu_us_per_event"),
            "<=",
            0.2,
            "µs/event",
            "<= 1/5 of 1.1.0",
        )
    for batch in ("10", "100"):
        add(
            f"Emitter (sync) end-to-end, batch {batch}",
            _get(tp, "sync", batch, OURS, "events_per_s"),
            _get(tp, "sync", batch, REFERENCE, "events_per_s"),
            ">=",
            2.0,
            "events/s",
            ">= 2x 1.1.0",
        )
    latency = results.get("latency", {})
    mode_labels = {"idle": "nothing sending", "async": "AsyncEmitter delivering"}
    for mode in ("idle", "async"):
        for kind in KINDS:
            add(
                f"Tracking-call median, {kind}, {mode_labels[mode]}",
                _get(latency, mode, OURS, kind, "median_us"),
                _get(latency, mode, REFERENCE, kind, "median_us"),
                "<=",
                1.0,
                "µs",
                "no slower than 1.1.0",
            )
    for kind in KINDS:
        add(
            f"Tracking-call p99 while AsyncEmitter sends, {kind}",
            _get(latency, "async", OURS, kind, "p99_us"),
            _get(latency, "async", REFERENCE, kind, "p99_us"),
            "<=",
            0.25,
            "µs",
            "<= 1/4 of 1.1.0",
            metric="p99_async",
            kind=kind,
        )
    memory = results.get("memory", {})
    add(
        "Memory per buffered event",
        _get(memory, OURS, "bytes_per_event"),
        _get(memory, REFERENCE, "bytes_per_event"),
        "<=",
        0.5,
        "bytes",
        "<= 1/2 of 1.1.0",
    )
    sqlite = results.get("sqlite", {})
    for kind in KINDS:
        entry = {
            "name": f"Tracking call with SQLiteEventStore, {kind}",
            "target": "<= 4x our in-memory tracking call",
            "ours": _get(sqlite, OURS, kind, "median_us"),
            "v1_1_0": None,
            "baseline": _get(latency, "idle", OURS, kind, "median_us"),
            "baseline_label": "ours, in-memory",
            "unit": "µs",
            "op": "<=",
            "threshold": 4.0,
        }
        ratio = _ratio(entry["ours"], entry["baseline"])
        entry["ratio"] = ratio
        entry["pass"] = None if ratio is None else ratio <= 4.0
        targets.append(entry)
    return targets


# --------------------------------------------------------------------------- main


def resolve_impls(log: Callable[[str], None], with_segment: bool) -> Dict[str, Impl]:
    impls = {
        OURS: Impl(OURS, "this package", "snowplow", python=envs.our_python()),
        REFERENCE: Impl(REFERENCE, "snowplow-tracker 1.1.0", "snowplow"),
        SEGMENT: Impl(SEGMENT, f"segment-analytics-python {envs.SEGMENT_VERSION}", "segment"),
    }
    log("preparing the 1.1.0 environment (cached under .cache/)")
    try:
        impls[REFERENCE].python = envs.reference_python()
    except Exception as exc:
        impls[REFERENCE].error = f"{type(exc).__name__}: {exc}"
    if with_segment:
        log("preparing the segment-analytics-python environment (cached under .cache/)")
        try:
            impls[SEGMENT].python = envs.segment_python()
        except Exception as exc:
            impls[SEGMENT].error = f"{type(exc).__name__}: {exc}"
    else:
        impls[SEGMENT].error = "skipped (--no-segment)"
    for impl in impls.values():
        if impl.error:
            log(f"  ! {impl.label} unavailable: {impl.error.splitlines()[0][:200]}")
    return impls


def snapshot_package(target: Path) -> Path:
    """Copy the working tree's ``snowplow_tracker`` to ``target``; children import this copy."""
    shutil.copytree(
        REPO_ROOT / "snowplow_tracker",
        target / "snowplow_tracker",
        ignore=shutil.ignore_patterns("__pycache__", "*.pyc"),
    )
    return target


def machine_facts() -> Dict[str, Any]:
    try:
        nproc = subprocess.run(["nproc"], capture_output=True, text=True, timeout=10).stdout
    except (OSError, subprocess.SubprocessError):
        nproc = ""
    return {
        "nproc": int(nproc.strip()) if nproc.strip().isdigit() else os.cpu_count(),
        "cpu_model": _cpu_model(),
        "platform": platform.platform(),
        "python": platform.python_version(),
        "python_implementation": platform.python_implementation(),
    }


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--quick", action="store_true", help="a short run (under a minute)")
    parser.add_argument("--no-docs", action="store_true", help="do not write docs/benchmarks.*")
    parser.add_argument("--no-segment", action="store_true", help="skip the Segment peer row")
    parser.add_argument("--repeats", type=int, default=None, help="override the repeat count")
    parser.add_argument("--output", type=Path, default=None, help="where to write the JSON")
    parser.add_argument(
        "--render",
        type=Path,
        default=None,
        metavar="JSON",
        help="measure nothing: rewrite docs/benchmarks.md and the chart from a results file",
    )
    args = parser.parse_args(argv)
    if args.render is not None:
        document = json.loads(args.render.read_text())
        report.write_docs(document, DOCS, CHART, lambda message: sys.stderr.write(message + "\n"))
        return 0

    settings = dataclasses.replace(QUICK if args.quick else FULL)
    if args.repeats is not None:
        settings.repeats = max(1, args.repeats)
        settings.latency_repeats = settings.repeats
        settings.throughput_repeats = settings.repeats
        settings.memory_repeats = min(settings.memory_repeats, settings.repeats)
    output = args.output or RESULTS_DIR / ("latest-quick.json" if args.quick else "latest.json")
    write_docs = not args.quick and not args.no_docs

    started = time.monotonic()
    started_utc = time.strftime("%Y-%m-%d %H:%M:%S", time.gmtime())
    with tempfile.TemporaryDirectory(prefix="snowplow-bench-") as tmp:
        harness = Harness(settings, {}, Path(tmp))
        harness.log(f"{settings.mode} run; results go to {output}")
        harness.impls = resolve_impls(harness.log, with_segment=not args.no_segment)
        # Others may edit or commit the package during a run: measure a snapshot of it.
        commit = _git("rev-parse", "HEAD")
        dirty = _git("status", "--porcelain", "--", "snowplow_tracker")
        harness.impls[OURS].src = snapshot_package(Path(tmp) / "ours-src")
        load_before = _loadavg()
        harness.start_collector()
        try:
            results: Dict[str, Any] = {"collector": harness.collector_alone()}
            if not args.quick:
                results["collector"]["local_collector"] = harness.local_collector()
            results["floor"] = harness.floor()
            results["machine_stalls"] = harness.stalls()
            results["latency"], results["sqlite"] = harness.latency()
            results["throughput"] = harness.throughput()
            results["blocked"] = harness.blocked()
            results["memory"] = harness.memory()
        finally:
            harness.stop_collector()

    best = {}
    for batch in BATCHES:
        rates = [
            row["events_per_s"]
            for emitter in EMITTERS
            for row in results["throughput"].get(emitter, {}).get(str(batch), {}).values()
            if row.get("events_per_s")
        ]
        best[str(batch)] = max(rates) if rates else None
    collector = results["collector"]
    collector["best_client_events_per_s"] = best
    collector["headroom"] = {
        batch: _ratio(collector["events_per_s"].get(batch), best[batch]) for batch in best
    }
    utilizations = [
        row["collector_utilization_max"]
        for emitter in results["throughput"].values()
        for batch_rows in emitter.values()
        for row in batch_rows.values()
    ]
    collector["max_utilization_during_client_runs"] = max(utilizations) if utilizations else None
    results["targets"] = evaluate_targets(results)

    document: Dict[str, Any] = {
        "schema_version": 1,
        "mode": settings.mode,
        "meta": {
            "date_utc": started_utc,
            "commit": commit,
            "commit_short": commit[:10],
            "library_uncommitted_changes": bool(dirty),
            "library_uncommitted_files": [line[3:] for line in dirty.splitlines()],
            "machine": machine_facts(),
            "load_average_before": load_before,
            "load_average_after": _loadavg(),
            "collector_restarts": harness.collector_deaths,
            "settle": {
                "threshold": settings.settle_threshold,
                "seconds_waited": harness.settle_spent,
                "children_delayed": harness.settle_waits,
            },
            "background_cpu_share": {
                section: {"median": _median(values), "max": max(values), "runs": len(values)}
                for section, values in harness.background.items()
                if values
            },
            "duration_s": time.monotonic() - started,
            "command": "benchmarks/run.py" + (" --quick" if args.quick else ""),
        },
        "settings": dataclasses.asdict(settings),
        "implementations": {
            key: {
                "label": impl.label,
                "version": impl.version,
                "python": str(impl.python) if impl.python else None,
                "available": impl.available,
                "error": impl.error,
            }
            for key, impl in harness.impls.items()
        },
        **{section: results[section] for section in SECTIONS},
        "errors": harness.errors,
    }
    output.parent.mkdir(parents=True, exist_ok=True)
    tmp_output = output.with_suffix(".json.tmp")
    tmp_output.write_text(json.dumps(document, indent=2, sort_keys=False) + "\n")
    tmp_output.replace(output)
    harness.log(f"wrote {output}")
    if write_docs:
        report.write_docs(document, DOCS, CHART, harness.log)
    sys.stdout.write(report.summary_text(document))
    failed = [e for e in harness.errors if e["impl"] in (OURS, REFERENCE, "floor")]
    missing = [k for k in (OURS, REFERENCE) if not harness.impls[k].available]
    if failed or missing:
        harness.log(f"{len(failed)} failed runs, unavailable: {missing or 'none'}")
        return 2
    return 0


if __name__ == "__main__":
    sys.exit(main())
