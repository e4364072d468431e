#!/usr/bin/env python3
"""Start-up: ``ncinfo --version`` and a one-job query, against the seed's ``nc_info.py``.

Each command is a fresh process, timed end to end (interpreter start, imports, token POST,
one GET, output) against the simulator (its own process, no added latency).  The baseline is
the seed client transcribed in ``tests/seed/nc_info.py`` fetching the same job in the same
run.  With hyperfine installed (``bash scripts/bench-deps``) it does the timing (``-N``: no
shell, warm-up runs first); otherwise the script runs its own interleaved loop.  Both report
the median and the min-max spread.

Examples:
    .venv/bin/python benchmarks/bench_startup.py            # 30 runs per command
    .venv/bin/python benchmarks/bench_startup.py --quick    # 3 runs per command
"""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys
from typing import TYPE_CHECKING, Any

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence
    from pathlib import Path

NAME = "startup"
TITLE = "Start-up and a one-job query vs the seed client (bench_startup.py)"
SEED_SCRIPT = h.REPO_DIR / "tests" / "seed" / "nc_info.py"
JOB = "000000001"


def with_hyperfine(
    commands: list[tuple[str, list[str]]],
    env: dict[str, str],
    runs: int,
    tmp: Path,
    warmup: int,
) -> dict[str, dict[str, Any]]:
    """Time the commands with hyperfine; return per label: times (s), user and system (s)."""
    hyperfine = h.find_tool("hyperfine")
    assert hyperfine is not None
    export = tmp / "hyperfine.json"
    cmd = [hyperfine, "-N", "--warmup", str(warmup), "--runs", str(runs)]
    cmd += ["--export-json", str(export)]
    # -i: keep timing a command that fails; its exit codes are checked afterwards.
    cmd += ["--style", "none", "-i"]
    for label, argv in commands:
        cmd += ["--command-name", label, shlex.join(argv)]
    subprocess.run(cmd, env=os.environ | env, check=True, timeout=600, stdout=subprocess.DEVNULL)
    results = json.loads(export.read_text())["results"]
    return {
        r["command"]: {
            "times": r["times"],
            "cpu_s": r["user"] + r["system"],
            "codes": r["exit_codes"],
        }
        for r in results
    }


def with_own_loop(
    commands: list[tuple[str, list[str]]], env: dict[str, str], runs: int
) -> dict[str, dict[str, Any]]:
    """Time the commands in an interleaved loop (after one warm-up round of each)."""
    times: dict[str, list[float]] = {label: [] for label, _ in commands}
    cpu: dict[str, list[float]] = {label: [] for label, _ in commands}
    codes: dict[str, list[int]] = {label: [] for label, _ in commands}
    for rep in range(runs + 1):
        for label, argv in commands:
            run = h.run_measured(argv, env=env, timeout=60)
            if rep:
                times[label].append(run.wall_s)
                cpu[label].append(run.cpu_s)
                codes[label].append(run.returncode)
    return {
        label: {"times": times[label], "cpu_s": h.median(cpu[label]), "codes": codes[label]}
        for label, _ in commands
    }


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; return the exit status."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument("--runs", type=int, help="runs per command (default 30, quick 3)")
    parser.add_argument(
        "--no-hyperfine", action="store_true", help="use the built-in loop even with hyperfine"
    )
    args = h.parse_args(parser, argv)
    runs = args.runs or (3 if args.quick else 30)
    warmup = 1 if args.quick else 3
    missing = h.client_missing() or h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)
    if not SEED_SCRIPT.exists():
        return h.skip(TITLE, f"{SEED_SCRIPT} is missing")

    report = h.Report(NAME, TITLE, h.command_line(argv))
    seed_label = "seed nc_info.py, 1 job"
    commands = [
        ("python -c pass", [sys.executable, "-c", "pass"]),
        # What each client must import before its first request: the floor under each.
        ("python -c 'import requests'", [sys.executable, "-c", "import requests"]),
        ("python -c 'import aiohttp'", [sys.executable, "-c", "import aiohttp"]),
        ("ncinfo --version", [*h.ncinfo_cmd(), "--version"]),
        ("ncinfo, 1 job", h.ncinfo(JOB)),
        ("ncinfo --asyncio, 1 job", h.ncinfo("--asyncio", JOB)),
        # The token cache (on by default) saves the token POST after the first run.
        ("ncinfo, 1 job, cached token", h.ncinfo(JOB, token_cache=True)),
        (seed_label, [sys.executable, str(SEED_SCRIPT), JOB]),
    ]
    if args.quick:  # the smoke needs only the compared pair and the floor
        keep = ("python -c pass", "ncinfo, 1 job", seed_label)
        commands = [(label, argv) for label, argv in commands if label in keep]
    use_hyperfine = h.find_tool("hyperfine") is not None and not args.no_hyperfine
    if h.find_tool("hyperfine") is None and not args.no_hyperfine:
        h.tool_missing(TITLE, "hyperfine", "hyperfine timing (the built-in loop times instead)")
    with h.temp_dir("ncbench-startup-") as tmp, h.SimServer(jobs=10) as sim:
        env = sim.client_env() | {"USER": h.USER}
        h.announce(f"timing {len(commands)} commands x {runs} runs")
        if use_hyperfine:
            results = with_hyperfine(commands, env, runs, tmp, warmup)
        else:
            results = with_own_loop(commands, env, runs)
        for label, argv in commands:
            if any(results[label]["codes"]):
                again = h.run_measured(argv, env=env, timeout=60)
                raise h.BenchFailure(
                    f"{label} exited with {results[label]['codes']}: {again.stderr_tail}"
                )

    base = h.median(results[seed_label]["times"])
    rows = []
    for label, _ in commands:
        times = results[label]["times"]
        mid = h.median(times)
        rows.append(
            [
                label,
                f"{mid * 1000:.0f}",
                f"{min(times) * 1000:.0f}-{max(times) * 1000:.0f}",
                f"{results[label]['cpu_s'] * 1000:.0f}",
                h.fmt_ratio(h.ratio(mid, base)),
            ]
        )
    report.data["results"] = results
    report.data["timer"] = "hyperfine" if use_hyperfine else "own loop"
    timer = (
        h.tool_version(["hyperfine", "--version"]) + f" -N --warmup {warmup}"
        if use_hyperfine
        else "the built-in loop (1 warm-up round)"
    )
    report.add(
        f"{runs} runs per command, timed by {timer}; the simulator runs in its own process"
        " with no added latency. Ratios are median wall time against the seed client's"
        " one-job query in the same run (lower is faster)."
    )
    report.add(
        h.markdown_table(["command", "median ms", "min-max ms", "CPU ms", "vs seed 1 job"], rows)
    )
    one = h.median(results["ncinfo, 1 job"]["times"])
    report.target(
        "a one-job query is no slower than the seed's",
        one <= base,
        f"{one * 1000:.0f} ms vs {base * 1000:.0f} ms median ({one / base:.2f}x)",
    )
    report.emit(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
