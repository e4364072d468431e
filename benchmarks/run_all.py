#!/usr/bin/env python3
"""Run every benchmark script, one after the other, each in its own process.

``--quick`` is the CI smoke: every scenario's quick mode, a few minutes in all.  It exits 1
if a script crashed or failed a functional check (counts that do not depend on speed:
connections within the pool, one token POST per revocation, every requested ID printed
exactly once); a missed performance target is reported but never fails the run, since CI
machines are noisy.  Scripts whose tools are missing (nginx, wrk, hyperfine) skip those
parts, and say so: a BENCHMARK SKIPPED line on stderr and a row in the summary here.

Examples:
    .venv/bin/python benchmarks/run_all.py --quick
    .venv/bin/python benchmarks/run_all.py --out benchmarks/results   # the full runs
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence

SCRIPTS = (
    "bench_keepalive.py",
    "bench_seed.py",
    "bench_ceiling.py",
    "bench_memory.py",
    "bench_startup.py",
    "bench_refresh.py",
    "bench_batch.py",
    "bench_load.py",
)


def run_script(cmd: list[str], timeout: float, env: dict[str, str] | None = None) -> int:
    """Run one script in its own process group; return its exit status, -1 on timeout.

    On timeout or interruption the whole group is stopped, so the servers the script
    started (its children) go with it even though its own clean-up cannot run.
    """
    proc = subprocess.Popen(cmd, start_new_session=True, env=env)
    try:
        return proc.wait(timeout=timeout)
    except subprocess.TimeoutExpired:
        return -1
    finally:
        if proc.poll() is None:
            for sig, grace in ((signal.SIGTERM, 5.0), (signal.SIGKILL, None)):
                with contextlib.suppress(ProcessLookupError):
                    os.killpg(proc.pid, sig)
                try:
                    proc.wait(timeout=grace)
                    break
                except subprocess.TimeoutExpired:
                    continue


def main(argv: Sequence[str] | None = None) -> int:
    """Run the scripts; return 1 if any of them failed, else 0."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument(
        "--only", nargs="+", metavar="SCRIPT", help="run only these scripts (e.g. bench_seed.py)"
    )
    parser.add_argument(
        "--timeout",
        type=float,
        help="seconds allowed per script (default 150 with --quick, 3600 otherwise)",
    )
    args = h.parse_args(parser, argv)
    timeout = args.timeout or (150.0 if args.quick else 3600.0)
    scripts = [s for s in SCRIPTS if not args.only or s in args.only]
    print(h.versions_line(), flush=True)
    summary = []
    failed = False
    skipped: list[str] = []
    for script in scripts:
        with tempfile.NamedTemporaryFile("r", prefix="ncbench-skips-", delete=False) as log:
            log_path = Path(log.name)
        env = {**os.environ, h.SKIP_LOG_ENV: str(log_path)}
        cmd = [sys.executable, str(h.BENCH_DIR / script)]
        if args.quick:
            cmd.append("--quick")
        if args.out:
            cmd += ["--out", str(args.out)]
        print(f"\n$ {' '.join(cmd)}", flush=True)
        start = time.perf_counter()
        code = run_script(cmd, timeout, env)
        status = {0: "ok", -1: f"FAILED (over {timeout:.0f} s)"}.get(code, f"FAILED (exit {code})")
        failed |= code != 0
        skips = log_path.read_text(encoding="utf-8").splitlines()
        log_path.unlink()
        if skips:
            status += f"; {len(skips)} part(s) SKIPPED (a tool is missing)"
            skipped += skips
        summary.append([script, f"{time.perf_counter() - start:.1f}", status])
    print()
    print(h.markdown_table(["script", "seconds", "status"], summary))
    for line in skipped:
        print(f"SKIPPED: {line}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
