"""Shared plumbing of the benchmark scripts: processes, measurement, servers and tables.

Every benchmark runs each client as its own process and each server in another, so that
client and server CPU are measured apart: a client's CPU time and peak RSS come from
``os.wait4`` on that child alone, the server's from ``psutil`` (or ``/proc``) on the
server's process.

Only `announce` (progress, on stderr), `skip`, `tool_missing` and `Report.emit` print; the
scripts decide what goes to stdout.

Two kinds of result: *targets* (speed, reported, never failing: CI machines are noisy) and
*checks* (functional counts that do not depend on speed: connections within the pool, one
token POST per revocation, each requested ID printed once).  A failed check makes the script
exit 1, so the CI smoke (`run_all.py --quick`) fails on it.
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import hashlib
import http.client
import importlib.util
import json
import os
import platform
import re
import select
import shutil
import signal
import socket
import ssl
import statistics
import subprocess
import sys
import sysconfig
import tempfile
import threading
import time
from dataclasses import asdict, dataclass, field
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO
from urllib.parse import urlsplit

try:
    import psutil
except ImportError:  # the bench extra is not installed: read /proc instead (Linux only)
    psutil = None

if TYPE_CHECKING:
    from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence

BENCH_DIR = Path(__file__).resolve().parent
REPO_DIR = BENCH_DIR.parent
RESULTS_DIR = BENCH_DIR / "results"
#: Console scripts live beside the interpreter that runs the benchmarks (the project's venv).
BIN_DIR = Path(sys.executable).parent

USER = "demo"
PASSWORD = "demo"

#: Upper bound on any single client run; a run that takes longer is killed and reported.
DEFAULT_RUN_TIMEOUT = 900.0


# --- Versions and arguments --------------------------------------------------------------------


def _dist_version(name: str) -> str:
    try:
        return version(name)
    except PackageNotFoundError:
        return "absent"


def tool_version(argv: Sequence[str]) -> str:
    """First line of a tool's version output, or ``absent`` when it is not installed."""
    if shutil.which(argv[0]) is None:
        return "absent"
    proc = subprocess.run(argv, capture_output=True, text=True, timeout=10, check=False)
    text = (proc.stdout or proc.stderr).strip().splitlines()
    return text[0] if text else "unknown"


def versions_line() -> str:
    """One line naming what the figures depend on: interpreter, libraries, CPUs, machine."""
    cpus = os.cpu_count() or 0
    try:
        usable = len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        usable = cpus
    return (
        f"Python {platform.python_version()} ({platform.python_implementation()})"
        f" | aiohttp {_dist_version('aiohttp')} | uvloop {_dist_version('uvloop')}"
        f" | requests {_dist_version('requests')} | ncinfo-async {_dist_version('ncinfo-async')}"
        f" | CPUs {cpus} (usable {usable}) | {platform.system()} {platform.machine()}"
    )


def make_parser(description: str) -> argparse.ArgumentParser:
    """An argument parser with the options every benchmark shares.

    ``--quick`` is the CI smoke (each script well under 60 s), ``--versions`` prints the
    versions line and exits, ``--out DIR`` saves the table and the raw figures.
    """
    parser = argparse.ArgumentParser(
        description=description, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument(
        "--quick", action="store_true", help="small sizes for a CI smoke run (< 60 s)"
    )
    parser.add_argument("--versions", action="store_true", help="print the versions line and exit")
    parser.add_argument(
        "--out",
        type=Path,
        metavar="DIR",
        help="also write <name>.md and <name>.json with the results into DIR",
    )
    return parser


def _exit_on_sigterm(signum: int, frame: object) -> None:
    raise SystemExit(128 + signum)


def parse_args(parser: argparse.ArgumentParser, argv: Sequence[str] | None) -> argparse.Namespace:
    """Parse arguments; handle ``--versions`` by printing the line and exiting 0.

    Also turns SIGTERM into ``SystemExit`` so that the ``with`` blocks that own servers
    stop them when the script itself is stopped.
    """
    args = parser.parse_args(argv)
    signal.signal(signal.SIGTERM, _exit_on_sigterm)
    if args.versions:
        print(versions_line())
        raise SystemExit(0)
    return args


def announce(message: str) -> None:
    """Progress on stderr, so stdout stays the report."""
    print(f"[bench] {message}", file=sys.stderr, flush=True)


# --- What is installed ------------------------------------------------------------------------


def import_problem(name: str) -> str | None:
    """Why a module cannot be imported (absent, or its package fails to import), or None.

    The module itself is not imported; its parent package is, as ``find_spec`` must.
    """
    try:
        found = importlib.util.find_spec(name) is not None
    except ImportError as exc:
        return f"{name} cannot be imported: {exc}"
    return None if found else f"{name} is not in the tree yet"


def console_script(name: str, module: str) -> list[str]:
    """Command that starts a console script: the venv's wrapper, else ``python -m``."""
    script = BIN_DIR / name
    if script.exists():
        return [str(script)]
    return [sys.executable, "-m", module]


def make_venv(path: Path) -> Path:
    """A venv at ``path`` with the project installed from the work tree, not editable.

    Its dependencies are those of the running venv (a ``.pth`` line adds its site-packages
    after the new venv's own), so the install is quick, needs no index, and times the same
    aiohttp, anyio and requests as the rest of the benchmarks.  Returns its python.
    """
    python = path / "bin" / "python"
    if not python.exists():
        base = getattr(sys, "_base_executable", sys.executable)
        announce(f"creating {path} (pip install --no-deps {REPO_DIR})")
        subprocess.run([base, "-m", "venv", str(path)], check=True, timeout=300)
        purelib = subprocess.run(
            [str(python), "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"],
            capture_output=True,
            text=True,
            check=True,
        ).stdout.strip()
        deps = sysconfig.get_paths()["purelib"]
        (Path(purelib) / "_ncbench_deps.pth").write_text(deps + "\n")
        subprocess.run(
            [str(python), "-m", "pip", "install", "-q", "--no-deps", str(REPO_DIR)],
            check=True,
            timeout=600,
        )
    probe = subprocess.run(
        [str(python), "-c", "import ncinfo_async; print(ncinfo_async.__file__)"],
        capture_output=True,
        text=True,
        check=True,
        cwd=path,  # not the work tree, which `python -c` would put first on sys.path
    )
    if str(REPO_DIR) in probe.stdout:
        raise BenchFailure(f"{path} imports ncinfo_async from the work tree, not an install")
    return python


#: The bin directory of the install ``ncinfo_cmd`` starts (see ``use_install``).
_ncinfo_bin: Path | None = None


def use_install(path: Path) -> Path:
    """Start ``ncinfo`` from a regular install at ``path`` (``make_venv``) from now on.

    An editable install under ``PYTHONDONTWRITEBYTECODE`` (set on this machine) compiles
    the package anew at every start, about 0.2 s that a user's install never pays; the
    benchmarks that count whole-process time run the installed, compiled package instead.
    """
    global _ncinfo_bin
    _ncinfo_bin = make_venv(path).parent
    return _ncinfo_bin


def client_missing() -> str | None:
    """Why the ``ncinfo`` client cannot be benchmarked, or None when it can."""
    return import_problem("ncinfo_async._cli")


def sim_missing() -> str | None:
    """Why the simulator cannot be started, or None when it can."""
    return import_problem("ncinfo_async.sim._cli")


def ncinfo_cmd() -> list[str]:
    """Command that starts the ``ncinfo`` client (from ``use_install``'s install, if any)."""
    if _ncinfo_bin is not None:
        return [str(_ncinfo_bin / "ncinfo")]
    return console_script("ncinfo", "ncinfo_async")


def ncinfo(*flags: str, token_cache: bool = False) -> list[str]:
    """An ``ncinfo`` command line as the benchmarks run it: quiet, and by default without
    the token cache, so that every run makes its token POST as the seed client does.
    """
    cache = [] if token_cache else ["--no-token-cache"]
    return [*ncinfo_cmd(), "-q", *cache, *flags]


def find_tool(name: str) -> str | None:
    """Path of a system tool, also looking in sbin directories that root's PATH may lack."""
    found = shutil.which(name)
    if found:
        return found
    for folder in ("/usr/sbin", "/usr/local/sbin", "/sbin"):
        candidate = Path(folder) / name
        if candidate.exists():
            return str(candidate)
    return None


# --- Measuring a child process ------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class RunResult:
    """What one measured child process did.

    Attributes:
        wall_s: wall time from spawn to reaping.
        cpu_s: user + system CPU of the child (from ``wait4``: that child only).
        maxrss_mib: ``ru_maxrss`` of the child.  On Linux this also covers the spawning
            parent's resident set at exec time, so it is an upper bound.
        hwm_mib: the child's own ``VmHWM`` (peak RSS of its exec'ed image) as last sampled
            before it exited; a lower bound on the true peak, within ``sample_s``.
        returncode: exit status (negative: killed by that signal).
        stdout_lines: newline count of what the child wrote on stdout.
        stderr_tail: last lines of the child's stderr, for error messages.
        timed_out: the run hit its time limit and was killed.
        stdout_text: what the child printed, when asked for (``keep_stdout``), else empty.
    """

    wall_s: float
    cpu_s: float
    maxrss_mib: float
    hwm_mib: float
    returncode: int
    stdout_lines: int
    stderr_tail: str
    timed_out: bool
    stdout_text: str = ""

    @property
    def ok(self) -> bool:
        """The child exited 0 within its time limit."""
        return self.returncode == 0 and not self.timed_out


def replace_run(run: RunResult, **changes: Any) -> RunResult:
    """A copy of ``run`` with some fields changed (e.g. its kept output dropped)."""
    return dataclasses.replace(run, **changes)


def _read_hwm_kib(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmHWM:"):
                    return int(line.split()[1])
    except (OSError, ValueError):
        pass
    return 0


def run_measured(
    cmd: Sequence[str],
    *,
    env: Mapping[str, str] | None = None,
    stdin_path: Path | None = None,
    timeout: float = DEFAULT_RUN_TIMEOUT,
    sample_s: float = 0.02,
    on_start: Callable[[threading.Event], None] | None = None,
    keep_stdout: bool = False,
) -> RunResult:
    """Run ``cmd`` to completion and measure its wall time, CPU time and peak memory.

    Stdout is counted (newlines) on the fly and dropped, so even a million-job run costs no
    disk; stderr is kept in a temporary file for error messages.  ``on_start`` runs in a
    thread right after spawning (for example to revoke tokens mid-run); the event it gets
    is set once the child has exited, and the thread must return soon after.
    """
    full_env = dict(os.environ)
    if env:
        full_env.update(env)
    stdin_file = open(stdin_path, "rb") if stdin_path else subprocess.DEVNULL  # noqa: SIM115
    lines = 0
    kept: list[bytes] = []
    hwm_kib = 0
    done = threading.Event()
    timed_out = threading.Event()
    with tempfile.TemporaryFile() as err:
        start = time.perf_counter()
        proc = subprocess.Popen(
            list(cmd),
            stdin=stdin_file,
            stdout=subprocess.PIPE,
            stderr=err,
            env=full_env,
        )
        assert proc.stdout is not None

        def count_stdout() -> None:
            nonlocal lines
            assert proc.stdout is not None
            fd = proc.stdout.fileno()
            while chunk := os.read(fd, 1 << 16):
                lines += chunk.count(b"\n")
                if keep_stdout:
                    kept.append(chunk)

        def sample_memory() -> None:
            nonlocal hwm_kib
            deadline = time.monotonic() + timeout
            while not done.wait(sample_s):
                hwm_kib = max(hwm_kib, _read_hwm_kib(proc.pid))
                if time.monotonic() > deadline:
                    timed_out.set()
                    with contextlib.suppress(ProcessLookupError):
                        proc.kill()
                    return

        threads = [
            threading.Thread(target=count_stdout, daemon=True),
            threading.Thread(target=sample_memory, daemon=True),
        ]
        if on_start is not None:
            threads.append(threading.Thread(target=on_start, args=(done,), daemon=True))
        for thread in threads:
            thread.start()
        try:
            # wait4 gives this child's own rusage; Popen.wait would only give the status.
            _, status, usage = os.wait4(proc.pid, 0)
            wall = time.perf_counter() - start
            proc.returncode = os.waitstatus_to_exitcode(status)
        except BaseException:
            proc.kill()
            proc.wait()
            raise
        finally:
            done.set()
            for thread in threads:
                thread.join(timeout=10)
            proc.stdout.close()
            if stdin_path:
                stdin_file.close()  # type: ignore[union-attr]
        err.seek(0)
        tail = b"\n".join(err.read().splitlines()[-8:]).decode(errors="replace")
    return RunResult(
        wall_s=wall,
        cpu_s=usage.ru_utime + usage.ru_stime,
        maxrss_mib=usage.ru_maxrss / 1024,
        hwm_mib=hwm_kib / 1024,
        returncode=proc.returncode,
        stdout_lines=lines,
        stderr_tail=tail,
        timed_out=timed_out.is_set(),
        stdout_text=b"".join(kept).decode(errors="replace"),
    )


class BenchFailure(RuntimeError):
    """A measured run failed (non-zero exit, timeout or missing output): the figures are void."""


@dataclass(frozen=True, slots=True)
class Measurement:
    """One measured client run against one server.

    Attributes:
        label: what ran (a row of a table).
        jobs: job IDs the client was given.
        run: the client process's figures.
        server_cpu_s: CPU the server process used during the run.
        stats: the simulator's counters for the run (None for other servers).
    """

    label: str
    jobs: int
    run: RunResult
    server_cpu_s: float
    stats: SimStats | None = None

    @property
    def jobs_per_s(self) -> float:
        """Throughput over the client's whole life, start-up included."""
        return self.jobs / self.run.wall_s

    @property
    def client_us_per_job(self) -> float:
        """Client CPU (user + system, start-up included) per job, in microseconds."""
        return self.run.cpu_s / self.jobs * 1e6

    @property
    def server_us_per_job(self) -> float:
        """Server CPU per job, in microseconds."""
        return self.server_cpu_s / self.jobs * 1e6


def measure(
    label: str,
    cmd: Sequence[str],
    *,
    server: SimServer | NginxServer,
    jobs: int,
    env: Mapping[str, str] | None = None,
    stdin_path: Path | None = None,
    expect_lines: int | None = None,
    expect_ids: Sequence[int] | None = None,
    timeout: float = DEFAULT_RUN_TIMEOUT,
    on_start: Callable[[threading.Event], None] | None = None,
    keep_stdout: bool = False,
    allow_exit: Sequence[int] = (0,),
) -> Measurement:
    """Run one client against ``server`` with fresh counters and measure both sides.

    ``expect_ids``: the client prints ndjson, one line per ID; each of these IDs must appear
    exactly once (keeping the output costs memory, not client time).
    ``keep_stdout`` keeps what the client printed in ``run.stdout_text``; ``allow_exit``
    lists the exit statuses that still make a valid run (a run that counts its failures).

    Raises:
        BenchFailure: the client failed, timed out, printed other than ``expect_lines``
            lines, or missed or repeated an ID, so its figures would mean nothing.
    """
    sim = server if isinstance(server, SimServer) else None
    if sim is not None:
        sim.reset_stats()
    before = process_cpu_s(server.pid)
    run = run_measured(
        cmd,
        env=env,
        stdin_path=stdin_path,
        timeout=timeout,
        on_start=on_start,
        keep_stdout=keep_stdout or expect_ids is not None,
    )
    server_cpu = process_cpu_s(server.pid) - before
    stats = sim.stats() if sim is not None else None
    failed = run.timed_out or run.returncode not in allow_exit
    if failed or (expect_lines is not None and run.stdout_lines != expect_lines):
        raise BenchFailure(
            f"{label}: exit {run.returncode}, timed out {run.timed_out}, "
            f"{run.stdout_lines} lines (expected {expect_lines}): {run.stderr_tail}"
        )
    if expect_ids is not None:
        problem = ids_problem(run.stdout_text, expect_ids)
        if problem is not None:
            raise BenchFailure(f"{label}: {problem}")
    return Measurement(label, jobs, run, server_cpu, stats)


def ids_problem(ndjson: str, expected: Sequence[int]) -> str | None:
    """What is wrong with the IDs of an ndjson output (missing, repeated, unasked), or None."""
    seen: dict[int, int] = {}
    for line in ndjson.splitlines():
        job_id = json.loads(line)["id"]
        seen[job_id] = seen.get(job_id, 0) + 1
    wanted = set(expected)
    missing = sorted(wanted - seen.keys())
    repeated = sorted(job_id for job_id, n in seen.items() if n > 1)
    unasked = sorted(seen.keys() - wanted)
    if not (missing or repeated or unasked):
        return None
    return (
        f"{len(missing)} ID(s) missing {missing[:5]}, {len(repeated)} repeated {repeated[:5]},"
        f" {len(unasked)} not asked for {unasked[:5]}"
    )


def rounds(repeat: int, *, warmup: bool) -> Iterator[tuple[int, bool]]:
    """Round numbers of a repeated benchmark and whether each one counts.

    With ``warmup`` an extra first round warms the page cache, the ``.pyc`` files and the
    server, and is discarded.  Scripts interleave their configurations inside each round,
    so that a slow spell on this shared machine hits every configuration alike.
    """
    extra = 1 if warmup else 0
    for index in range(repeat + extra):
        yield index, index >= extra


def median_of(runs: Sequence[Measurement]) -> Measurement:
    """The run with the median wall time (the lower middle one for an even count)."""
    ordered = sorted(runs, key=lambda m: m.run.wall_s)
    return ordered[(len(ordered) - 1) // 2]


def walls(runs: Sequence[Measurement]) -> str:
    """The spread of wall times of repeated runs, for a table cell (``1.23-1.40``)."""
    if len(runs) == 1:
        return "1 run"
    return spread([m.run.wall_s for m in runs])


def process_cpu_s(pid: int) -> float:
    """User + system CPU seconds used so far by a running process (the server)."""
    if psutil is not None:
        times = psutil.Process(pid).cpu_times()
        return float(times.user + times.system)
    # Fields 14 and 15 of /proc/PID/stat, after the parenthesised command name.
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def process_rss_mib(pid: int) -> float:
    """Current resident set size of a running process, in MiB."""
    if psutil is not None:
        return float(psutil.Process(pid).memory_info().rss) / (1 << 20)
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def child_pids(pid: int) -> list[int]:
    """Process IDs of the direct children of a process."""
    if psutil is not None:
        return [child.pid for child in psutil.Process(pid).children()]
    children: list[int] = []
    for task in Path(f"/proc/{pid}/task").iterdir():
        with contextlib.suppress(OSError):
            children += [int(c) for c in (task / "children").read_text().split()]
    return children


# --- Servers ----------------------------------------------------------------------------------


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _stop(proc: subprocess.Popen[bytes], grace: float = 5.0) -> None:
    """SIGTERM, then SIGKILL after ``grace`` seconds; always reaps."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout=grace)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


class _Control:
    """One persistent connection for the simulator's ``/sim/*`` routes.

    Keeping it open means the control calls add at most one TCP connection (and one TLS
    handshake), made before the stats are reset, so they do not pollute the counts of the
    client under test.  When the server drops it anyway, the reconnections since the last
    reset are counted and subtracted.
    """

    def __init__(self, url: str, context: ssl.SSLContext | None) -> None:
        parts = urlsplit(url)
        self._host = parts.hostname or "127.0.0.1"
        self._port = parts.port or (443 if parts.scheme == "https" else 80)
        self._context = context
        self._conn: http.client.HTTPConnection | None = None
        self.reconnects = 0

    def _connect(self) -> http.client.HTTPConnection:
        if self._context is not None:
            return http.client.HTTPSConnection(
                self._host, self._port, timeout=30, context=self._context
            )
        return http.client.HTTPConnection(self._host, self._port, timeout=30)

    def call(self, method: str, path: str) -> bytes:
        for attempt in range(2):
            if self._conn is None:
                self._conn = self._connect()
                self._conn.connect()
                self.reconnects += 1
            try:
                self._conn.request(method, path, headers={"Content-Length": "0"})
                response = self._conn.getresponse()
                body = response.read()
            except (OSError, http.client.HTTPException):
                self.close()
                if attempt:
                    raise
                continue
            if response.status >= 400:
                raise RuntimeError(f"{method} {path} -> {response.status}: {body[:200]!r}")
            if response.will_close:
                self.close()
            return body
        raise AssertionError("unreachable")

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None


@dataclass(frozen=True, slots=True)
class SimStats:
    """The simulator's counters (``GET /sim/stats``), net of the harness's own calls."""

    connections: int
    tls_handshakes: int
    requests: dict[str, int]
    tokens_issued: int
    unauthorized: int
    responses: dict[str, int] = field(default_factory=dict)
    over_capacity: int = 0
    peak_rps: int = 0
    max_inflight: int = 0

    @property
    def job_requests(self) -> int:
        """``GET /api/v3/jobs/<id>`` requests served."""
        return int(self.requests.get("job", 0))


class SimServer:
    """The ``ncinfo-sim`` simulator in its own process, for the length of a ``with`` block.

    Started with ``--port 0``; its base URL is the first line it prints.  With ``tls`` it
    writes its CA to a temporary file (``ca_path``) that clients pass as ``--cacert``.
    """

    def __init__(
        self,
        *,
        jobs: int,
        latency_ms: float = 0.0,
        tls: bool = False,
        extra_args: Sequence[str] = (),
        start_timeout: float = 120.0,
    ) -> None:
        self.jobs = jobs
        self.latency_ms = latency_ms
        self.tls = tls
        self._extra = list(extra_args)
        self._start_timeout = start_timeout
        self._tmp = tempfile.TemporaryDirectory(prefix="ncbench-sim-")
        self.ca_path: Path | None = Path(self._tmp.name) / "ca.pem" if tls else None
        self._proc: subprocess.Popen[bytes] | None = None
        self._control: _Control | None = None
        self.url = ""
        self.startup_s = 0.0

    @property
    def pid(self) -> int:
        """Process ID of the server."""
        assert self._proc is not None
        return self._proc.pid

    def __enter__(self) -> SimServer:
        cmd = [
            *console_script("ncinfo-sim", "ncinfo_async.sim"),
            "--host",
            "127.0.0.1",
            "--port",
            "0",
            "--jobs",
            str(self.jobs),
            "--latency",
            str(self.latency_ms),
            "--user",
            f"{USER}:{PASSWORD}",
            *self._extra,
        ]
        if self.ca_path is not None:
            cmd += ["--tls", "--ca-out", str(self.ca_path)]
        log = open(Path(self._tmp.name) / "sim.log", "wb")
        start = time.perf_counter()
        self._proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=log)
        log.close()
        try:
            self.url = self._first_line()
            self.startup_s = time.perf_counter() - start
            # Anything the server prints later must not fill the pipe and stall it.
            threading.Thread(target=self._drain, daemon=True).start()
            context = None
            if self.ca_path is not None:
                context = ssl.create_default_context(cafile=str(self.ca_path))
            self._control = _Control(self.url, context)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def _first_line(self) -> str:
        assert self._proc is not None
        assert self._proc.stdout is not None
        fd = self._proc.stdout.fileno()
        deadline = time.monotonic() + self._start_timeout
        buf = b""
        while b"\n" not in buf:
            left = deadline - time.monotonic()
            if left <= 0:
                raise RuntimeError(f"ncinfo-sim printed no URL within {self._start_timeout} s")
            ready, _, _ = select.select([fd], [], [], min(left, 1.0))
            if ready:
                chunk = os.read(fd, 4096)
                if not chunk:
                    raise RuntimeError(f"ncinfo-sim exited early: {self.log_tail()}")
                buf += chunk
        url = buf.split(b"\n", 1)[0].decode().strip()
        if not url.startswith(("http://", "https://")):
            raise RuntimeError(f"ncinfo-sim's first line is not a URL: {url!r}")
        return url.rstrip("/")

    def _drain(self) -> None:
        assert self._proc is not None
        assert self._proc.stdout is not None
        with contextlib.suppress(OSError, ValueError):
            while self._proc.stdout.read(4096):
                pass

    def log_tail(self) -> str:
        """The last lines of the server's stderr."""
        path = Path(self._tmp.name) / "sim.log"
        if not path.exists():
            return ""
        return "\n".join(path.read_text(errors="replace").splitlines()[-8:])

    def __exit__(self, *exc: object) -> None:
        if self._control is not None:
            self._control.close()
        if self._proc is not None:
            _stop(self._proc)
            if self._proc.stdout is not None:
                self._proc.stdout.close()
        self._tmp.cleanup()

    def _call(self, method: str, path: str) -> bytes:
        assert self._control is not None
        return self._control.call(method, path)

    def reset_stats(self) -> None:
        """Zero the server's counters (``POST /sim/reset-stats``)."""
        assert self._control is not None
        self._call("POST", "/sim/reset-stats")
        self._control.reconnects = 0

    def stats(self) -> SimStats:
        """The server's counters since the last reset, without the harness's own connection."""
        assert self._control is not None
        raw = json.loads(self._call("GET", "/sim/stats"))
        own = self._control.reconnects
        return SimStats(
            connections=int(raw.get("connections", 0)) - own,
            tls_handshakes=int(raw.get("tls_handshakes", 0)) - (own if self.tls else 0),
            requests={str(k): int(v) for k, v in dict(raw.get("requests", {})).items()},
            tokens_issued=int(raw.get("tokens_issued", 0)),
            unauthorized=int(raw.get("unauthorized", 0)),
            responses={str(k): int(v) for k, v in dict(raw.get("responses", {})).items()},
            over_capacity=int(raw.get("over_capacity", 0)),
            peak_rps=int(raw.get("peak_rps", 0)),
            max_inflight=int(raw.get("max_inflight", 0)),
        )

    def revoke(self) -> None:
        """Invalidate every token the server has issued (``POST /sim/revoke``)."""
        self._call("POST", "/sim/revoke")

    def client_env(self) -> dict[str, str]:
        """Environment that points ``ncinfo`` at this server.

        The token cache, where it is used, lives in this server's temporary directory: it
        never touches the user's, and never outlives the server whose tokens it holds.
        """
        return {
            "NC_URL": self.url,
            "NC_USER": USER,
            "NC_PASSWORD": PASSWORD,
            "NCINFO_CACHE_DIR": str(Path(self._tmp.name) / "token-cache"),
        }

    def client_args(self) -> list[str]:
        """Extra ``ncinfo`` flags this server needs (the CA for HTTPS)."""
        return ["--cacert", str(self.ca_path)] if self.ca_path is not None else []


# --- Job IDs and pre-rendered jobs ------------------------------------------------------------


def job_id_text(idint: int) -> str:
    """A job ID as ``nc`` prints it: nine digits, zero padded."""
    return f"{idint:09d}"


def write_ids(path: Path, count: int, *, first: int = 1) -> Path:
    """Write ``count`` job IDs, one a line, to ``path`` (the client's stdin)."""
    with open(path, "w", encoding="ascii") as out:
        step = 50_000
        for start in range(first, first + count, step):
            stop = min(start + step, first + count)
            out.write("".join(f"{i:09d}\n" for i in range(start, stop)))
    return path


def median(values: Iterable[float]) -> float:
    """Median of the values (which must not be empty)."""
    return statistics.median(list(values))


def spread(values: Sequence[float]) -> str:
    """``min-max`` of the values, for a table cell."""
    return f"{min(values):.3g}-{max(values):.3g}"


# --- Tables and results -----------------------------------------------------------------------


#: A cell that reads as a number: ``1,234``, ``-0.5``, ``1.23x``, ``+12``, ``12.5%``, ``1.2-3.4``.
_NUMERIC = re.compile(r"^[-+]?[\d,.]+(x|%|-[\d,.]+)?$")


def markdown_table(headers: Sequence[str], rows: Iterable[Sequence[object]]) -> str:
    """A GitHub Markdown table; numeric columns (by their first row) are right-aligned."""
    cells = [[str(cell) for cell in row] for row in rows]
    aligns = []
    for index in range(len(headers)):
        sample = cells[0][index] if cells else ""
        numeric = bool(_NUMERIC.match(sample))
        aligns.append("---:" if numeric else "---")
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(aligns) + "|"]
    lines += ["| " + " | ".join(row) + " |" for row in cells]
    return "\n".join(lines)


def fmt_int(value: float) -> str:
    """A count with thousands separators."""
    return f"{value:,.0f}"


def fmt_ratio(value: float | None) -> str:
    """A ratio like ``1.00x``; ``-`` when it cannot be computed."""
    return "-" if value is None else f"{value:.2f}x"


def ratio(value: float, baseline: float) -> float | None:
    """``value / baseline``, or None when the baseline is zero."""
    return value / baseline if baseline else None


@dataclass
class Report:
    """Accumulates a benchmark's output: title, versions, tables, notes and target checks."""

    name: str
    title: str
    command: str
    sections: list[str] = field(default_factory=list)
    targets: list[dict[str, Any]] = field(default_factory=list)
    checks: list[dict[str, Any]] = field(default_factory=list)
    data: dict[str, Any] = field(default_factory=dict)

    def add(self, text: str) -> None:
        """Append a block of Markdown (a table, a note)."""
        self.sections.append(text)

    def target(self, name: str, met: bool, detail: str) -> None:
        """Record whether a target from the issue is met, with the measured figures."""
        self.targets.append({"target": name, "met": met, "detail": detail})

    def check(self, name: str, ok: bool, detail: str) -> None:
        """Record a functional check (a count independent of speed); a failed one fails the run."""
        self.checks.append({"check": name, "ok": ok, "detail": detail})

    def exit_status(self) -> int:
        """1 if a functional check failed (each is named on stderr), else 0."""
        failed = [c for c in self.checks if not c["ok"]]
        for c in failed:
            print(f"FUNCTIONAL CHECK FAILED: {c['check']}: {c['detail']}", file=sys.stderr)
        return 1 if failed else 0

    def markdown(self) -> str:
        """The whole report as Markdown."""
        parts = [f"### {self.title}", "", f"`{self.command}`", "", versions_line(), ""]
        for section in self.sections:
            parts += [section, ""]
        if self.targets:
            # A --quick smoke runs small sizes on a busy CI machine: its figures say nothing
            # about the targets, so its table is labelled informational and never alarms.
            quick = "--quick" in self.command.split()
            if quick:
                parts += [
                    "Targets (informational only: --quick sizes; a full run measures them):",
                    "",
                ]
            missed = "not met (informational)" if quick else "**no**"
            parts.append(
                markdown_table(
                    ["target", "met", "measured"],
                    [
                        [t["target"], "yes" if t["met"] else missed, t["detail"]]
                        for t in self.targets
                    ],
                )
            )
            parts.append("")
        if self.checks:
            parts.append(
                markdown_table(
                    ["functional check", "ok", "measured"],
                    [
                        [c["check"], "yes" if c["ok"] else "**FAILED**", c["detail"]]
                        for c in self.checks
                    ],
                )
            )
            parts.append("")
        return "\n".join(parts)

    def emit(self, out_dir: Path | None, stream: TextIO = sys.stdout) -> None:
        """Print the report; with ``out_dir``, also save it as ``.md`` and ``.json``."""
        text = self.markdown()
        stream.write(text + "\n")
        stream.flush()
        if out_dir is not None:
            out_dir.mkdir(parents=True, exist_ok=True)
            (out_dir / f"{self.name}.md").write_text(text + "\n", encoding="utf-8")
            payload = {
                "name": self.name,
                "command": self.command,
                "versions": versions_line(),
                "when": time.strftime("%Y-%m-%dT%H:%M:%S%z"),
                "tree": tree_state(),
                "targets": self.targets,
                "checks": self.checks,
                "data": self.data,
            }
            (out_dir / f"{self.name}.json").write_text(
                json.dumps(payload, indent=1, default=_json_default) + "\n",
                encoding="utf-8",
            )


def _json_default(value: object) -> object:
    if hasattr(value, "__dataclass_fields__"):
        return _without_output(asdict(value))  # type: ignore[call-overload]
    if isinstance(value, Path):
        return str(value)
    raise TypeError(f"cannot serialise {type(value).__name__}")


def _without_output(data: object) -> object:
    """``data`` without the clients' kept stdout (``stdout_text``): a 20,000-job run prints
    about 10 MB, which the comparisons need in memory but the saved report must not carry
    (``stdout_lines`` stays)."""
    if isinstance(data, dict):
        return {key: _without_output(value) for key, value in data.items() if key != "stdout_text"}
    if isinstance(data, list):
        return [_without_output(value) for value in data]
    return data


def tree_state() -> str:
    """The commit the figures were measured on, and whether the package had local changes."""
    try:
        head = subprocess.run(
            ["git", "-C", str(REPO_DIR), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
        dirty = subprocess.run(
            ["git", "-C", str(REPO_DIR), "status", "--porcelain", "--", "ncinfo_async"],
            capture_output=True,
            text=True,
            timeout=10,
            check=True,
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError):
        return "unknown"
    if not dirty:
        return head
    # Identify the uncommitted client by content, so runs on the same code can be matched.
    digest = hashlib.sha256()
    for path in sorted((REPO_DIR / "ncinfo_async").rglob("*.py")):
        digest.update(path.read_bytes())
    return f"{head} + uncommitted ncinfo_async (sources sha256 {digest.hexdigest()[:12]})"


def command_line(argv: Sequence[str] | None) -> str:
    """The command that produced a report, as it would be typed from the repo root."""
    args = sys.argv[1:] if argv is None else list(argv)
    script = Path(sys.argv[0]).resolve()
    with contextlib.suppress(ValueError):
        script = script.relative_to(REPO_DIR)
    return " ".join([".venv/bin/python", str(script), *args])


#: Where `run_all.py` collects what was skipped, for its summary (one line per skip).
SKIP_LOG_ENV = "NCINFO_BENCH_SKIP_LOG"


def _record_skip(line: str) -> None:
    """Print a skip where CI output shows it (stderr) and log it for run_all's summary."""
    print(f"BENCHMARK SKIPPED: {line}", file=sys.stderr, flush=True)
    log = os.environ.get(SKIP_LOG_ENV)
    if log:
        with open(log, "a", encoding="utf-8") as stream:
            stream.write(line + "\n")


def skip(report_name: str, reason: str) -> int:
    """Say why a benchmark is skipped (stdout, stderr and run_all's summary); return 0."""
    print(f"### {report_name}\n\nSKIPPED: {reason}\n\n{versions_line()}\n")
    _record_skip(f"{report_name}: {reason}")
    return 0


def tool_missing(report_name: str, tool: str, part: str) -> None:
    """Say that one part of a benchmark is skipped because ``tool`` is not installed."""
    _record_skip(
        f"{report_name}: {part} skipped, {tool} is not installed (bash scripts/bench-deps)"
    )


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A temporary directory that is removed afterwards, even on error."""
    with tempfile.TemporaryDirectory(prefix=prefix) as name:
        yield Path(name)


# --- nginx: a server that costs almost nothing per request -------------------------------------

#: The fields of a job row, as the simulator and ``select *`` return them.
JOB_FIELDS = (
    "ID", "IDINT", "USER", "GROUP", "COMMAND", "JOBNAME", "JOBCLASS", "PRIORITY", "STATUS",
    "STATUSNC", "HOST", "SUBMITHOST", "SUBMITTIME", "STARTTIME", "ENDTIME", "DURATION",
    "DURATIONPP", "EXIT", "RESOURCES", "DIR", "MAXRAM", "CPUTIME",
)  # fmt: skip
_COLUMNS_JSON = json.dumps(
    [{"col": pos, "field": name} for pos, name in enumerate(JOB_FIELDS)],
    separators=(",", ":"),
)


def render_job_json(idint: int) -> bytes:
    """A finished job as ``GET /api/v3/jobs/<id>`` returns it, deterministic in ``idint``.

    The shape and sizes follow the simulator (22 columns, about 700 bytes), so a static
    server hands the client the same parsing work.
    """
    user = f"user{idint % 40 + 1:02d}"
    duration = 5 + idint * 7919 % 40000
    start = 1_760_000_000 + idint * 13
    pretty = (
        f"{duration}s"
        if duration < 60
        else f"{duration // 60}m{duration % 60:02d}s"
        if duration < 3600
        else f"{duration // 3600}h{duration % 3600 // 60:02d}m"
    )
    log = f"vnc_logs/20251009/1{idint % 100000:05d}.{100000 + idint % 900000}"
    row = [
        f"{idint:09d}", idint, user, f"/time/users.{user}",
        f"vw python3 run_sim.py --block b{idint % 1000:03d} > {log}",
        "sim", "regress", 4, "VALID", "Done", f"lnx{idint % 12 + 1:02d}a", "login1",
        start - 60, start, start + duration, duration, pretty, 0, "linux64 RAM/4000",
        f"/work/{user}/alpha", 1234, duration * 850,
    ]  # fmt: skip
    return (
        f'{{"startrow":1,"endrow":1,"query":"SELECT * FROM jobs WHERE idint=={idint}",'
        f'"errormsg":"","columns":{_COLUMNS_JSON},"rows":[{_compact(row)}]}}'
    ).encode()


def _compact(value: object) -> str:
    return json.dumps(value, separators=(",", ":"))


def fixed_token() -> str:
    """The JSON answer of ``POST /api/v3/token`` on the static server: a JWT valid for a day.

    The JWT is unsigned-looking but well formed (header.payload.signature, base64url), so a
    client that reads ``exp`` from it finds a sensible expiry.
    """
    import base64

    def b64(data: dict[str, object]) -> str:
        raw = json.dumps(data, separators=(",", ":")).encode()
        return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()

    now = int(time.time())
    jwt = ".".join(
        [
            b64({"alg": "HS256", "typ": "JWT"}),
            b64({"sub": USER, "iat": now, "exp": now + 86400}),
            "c3RhdGljLXNpZ25hdHVyZQ",
        ]
    )
    return json.dumps(
        {"token_type": "Bearer", "access_token": jwt, "expires_in": 86400},
        separators=(",", ":"),
    )


_NGINX_CONF = """\
daemon off;
master_process on;
worker_processes {workers};
pid {root}/nginx.pid;
error_log {root}/error.log warn;
events {{ worker_connections 4096; }}
http {{
    access_log off;
    client_body_temp_path {root}/tmp/body;
    proxy_temp_path {root}/tmp/proxy;
    fastcgi_temp_path {root}/tmp/fastcgi;
    uwsgi_temp_path {root}/tmp/uwsgi;
    scgi_temp_path {root}/tmp/scgi;
    # The ceiling is about the client, not about reconnecting every 1,000 requests (the
    # nginx default since 1.19.10).
    keepalive_requests 1000000;
    keepalive_timeout 75s;
    server {{
        listen 127.0.0.1:{port};
        root {root}/www;
        location /api/v3/jobs/ {{
            default_type application/json;
            # Files are named by the integer ID; accept the zero-padded form nc prints too.
            rewrite "^/api/v3/jobs/0+(\\d+)$" /api/v3/jobs/$1 break;
            try_files $uri =404;
        }}
        location = /api/v3/token {{
            default_type application/json;
            return 200 '{token}';
        }}
    }}
}}
"""


class NginxServer:
    """nginx serving ``count`` pre-rendered jobs from a temporary directory, in its own process.

    ``GET /api/v3/jobs/<id>`` serves the job's file as application/json (the ID plain or
    zero padded);
    ``POST /api/v3/token`` answers a fixed token.  One worker process, so that one of the two
    cores is left to the client.
    """

    def __init__(self, count: int, *, workers: int = 1) -> None:
        self.count = count
        self.workers = workers
        self.port = 0
        self._tmp: tempfile.TemporaryDirectory[str] | None = None
        self._proc: subprocess.Popen[bytes] | None = None

    @staticmethod
    def missing() -> str | None:
        """Why nginx cannot be used here, or None when it can."""
        if find_tool("nginx") is None:
            return "nginx is not installed (run: bash scripts/bench-deps)"
        return None

    @property
    def url(self) -> str:
        """Base URL of the server."""
        return f"http://127.0.0.1:{self.port}"

    @property
    def pid(self) -> int:
        """Process ID of the nginx worker (the one that does the work)."""
        assert self._proc is not None
        children = child_pids(self._proc.pid)
        return children[0] if children else self._proc.pid

    def __enter__(self) -> NginxServer:
        nginx = find_tool("nginx")
        if nginx is None:
            raise RuntimeError("nginx is not installed")
        self._tmp = tempfile.TemporaryDirectory(prefix="ncbench-nginx-")
        root = Path(self._tmp.name)
        # Workers run as an unprivileged user when the master is root: let them read.
        root.chmod(0o755)
        jobs = root / "www" / "api" / "v3" / "jobs"
        jobs.mkdir(parents=True)
        (root / "tmp").mkdir()
        for idint in range(1, self.count + 1):
            (jobs / str(idint)).write_bytes(render_job_json(idint))
        for attempt in range(5):
            self.port = free_port()
            conf = root / "nginx.conf"
            conf.write_text(
                _NGINX_CONF.format(
                    workers=self.workers, root=root, port=self.port, token=fixed_token()
                )
            )
            self._proc = subprocess.Popen(
                [
                    nginx,
                    "-p",
                    str(root),
                    "-c",
                    str(conf),
                    "-e",
                    str(root / "error.log"),
                ],
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
            )
            if self._wait_listening(5.0):
                return self
            _stop(self._proc)
            if attempt == 4:
                error = (root / "error.log").read_text(errors="replace")[-500:]
                self.__exit__(None, None, None)
                raise RuntimeError(f"nginx did not start: {error}")
        raise AssertionError("unreachable")

    def _wait_listening(self, timeout: float) -> bool:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            assert self._proc is not None
            if self._proc.poll() is not None:
                return False
            with (
                contextlib.suppress(OSError),
                socket.create_connection(("127.0.0.1", self.port), timeout=0.5),
            ):
                return True
            time.sleep(0.05)
        return False

    def __exit__(self, *exc: object) -> None:
        if self._proc is not None:
            # SIGQUIT is nginx's graceful stop; _stop follows up with SIGKILL if needed.
            with contextlib.suppress(ProcessLookupError):
                self._proc.send_signal(signal.SIGQUIT)
            _stop(self._proc)
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def client_env(self) -> dict[str, str]:
        """Environment that points ``ncinfo`` at this server (token cache in its temp dir)."""
        assert self._tmp is not None
        return {
            "NC_URL": self.url,
            "NC_USER": USER,
            "NC_PASSWORD": PASSWORD,
            "NCINFO_CACHE_DIR": str(Path(self._tmp.name) / "token-cache"),
        }
