#!/usr/bin/env python3
"""Peak memory of the ncinfo process against the number of job IDs fed on stdin.

ncinfo reads 10k, 100k and 1M job IDs on stdin and fetches every one from the simulator
(its own process, started with ``--jobs`` equal to the largest count, so every ID is a real
job: no cheap 404s).  The client's peak RSS is its ``VmHWM``, sampled every 20 ms from
``/proc`` (a lower bound within one sample), next to ``ru_maxrss`` from ``wait4`` (an upper
bound: on Linux it also counts the spawning parent's resident set at exec).  Ratios are
against the smallest count.  For contrast it also runs the naive aiohttp loop
(``_naive_aiohttp.py``, which gathers every result before printing) up to ``--naive-max``.

The simulator's own start-up time and memory for the largest ``--jobs`` are reported too.

Examples:
    .venv/bin/python benchmarks/bench_memory.py            # 10k, 100k, 1M (about 10 min)
    .venv/bin/python benchmarks/bench_memory.py --quick    # 1k, 5k
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "memory"
TITLE = "Peak memory against the number of IDs (bench_memory.py)"
NAIVE_SCRIPT = h.BENCH_DIR / "_naive_aiohttp.py"
#: Targets from the issue.
MAX_GROWTH = 1.5
MAX_MIB = 150.0


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; return the exit status."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument(
        "--sizes",
        type=int,
        nargs="+",
        help="ID counts (default 10000 100000 1000000, quick 1000 5000)",
    )
    parser.add_argument(
        "--naive-max",
        type=int,
        help="largest count also run with the naive loop (default 100000, quick 1000)",
    )
    parser.add_argument("--concurrency", type=int, default=32, help="ncinfo --concurrency")
    args = h.parse_args(parser, argv)
    sizes = sorted(args.sizes or ([1000, 5000] if args.quick else [10000, 100000, 1000000]))
    naive_max = args.naive_max if args.naive_max is not None else (1000 if args.quick else 100000)
    missing = h.client_missing() or h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)

    report = h.Report(NAME, TITLE, h.command_line(argv))
    largest = sizes[-1]
    ncinfo: list[h.Measurement] = []
    naive: list[h.Measurement] = []
    with h.temp_dir("ncbench-memory-") as tmp:
        h.announce(f"starting the simulator with --jobs {largest:,}")
        with h.SimServer(jobs=largest, start_timeout=600) as sim:
            sim_rss = h.process_rss_mib(sim.pid)
            env = sim.client_env()
            for size in sizes:
                ids = h.write_ids(tmp / f"ids-{size}.txt", size)
                h.announce(f"ncinfo with {size:,} IDs")
                ncinfo.append(
                    h.measure(
                        f"ncinfo -c {args.concurrency}",
                        h.ncinfo(
                            "--no-batch",
                            "--format",
                            "ndjson",
                            "--concurrency",
                            str(args.concurrency),
                        ),
                        server=sim,
                        jobs=size,
                        env=env,
                        stdin_path=ids,
                        expect_lines=size,
                        timeout=3600,
                    )
                )
                if size <= naive_max:
                    h.announce(f"naive aiohttp loop with {size:,} IDs")
                    naive.append(
                        h.measure(
                            "naive aiohttp gather",
                            [sys.executable, str(NAIVE_SCRIPT)],
                            server=sim,
                            jobs=size,
                            env=env,
                            stdin_path=ids,
                            expect_lines=size,
                            timeout=3600,
                        )
                    )
            sim_rss_after = h.process_rss_mib(sim.pid)

    rows = []
    for series in (ncinfo, naive):
        if not series:
            continue
        base = series[0]
        for m in series:
            rows.append(
                [
                    m.label,
                    h.fmt_int(m.jobs),
                    f"{m.run.hwm_mib:.1f}",
                    h.fmt_ratio(h.ratio(m.run.hwm_mib, base.run.hwm_mib)),
                    f"{m.run.maxrss_mib:.1f}",
                    f"{m.run.wall_s:.1f}",
                    h.fmt_int(m.jobs_per_s),
                    f"{m.client_us_per_job:.0f}",
                ]
            )
    report.data["ncinfo"] = ncinfo
    report.data["naive"] = naive
    report.data["sim"] = {
        "jobs": largest,
        "startup_s": sim.startup_s,
        "rss_mib_at_start": sim_rss,
        "rss_mib_at_end": sim_rss_after,
    }
    report.add(
        f"Every ID is a real job of the simulator (`ncinfo-sim --jobs {largest:,}`), fetched"
        f" with `ncinfo --format ndjson --concurrency {args.concurrency}` in input order"
        " (the default); output is counted and discarded. Peak RSS = sampled VmHWM;"
        " ru_maxrss is an upper bound. Ratios are against the smallest count of the same"
        f" client. The simulator took {sim.startup_s:.1f} s to start with"
        f" {largest:,} jobs and used {sim_rss:.0f} MiB RSS then, {sim_rss_after:.0f} MiB"
        " at the end."
    )
    report.add(
        h.markdown_table(
            [
                "client",
                "IDs",
                "peak RSS MiB",
                "vs smallest",
                "ru_maxrss MiB",
                "wall s",
                "jobs/s",
                "client CPU µs/job",
            ],
            rows,
        )
    )
    small, big = ncinfo[0], ncinfo[-1]
    growth = big.run.hwm_mib / small.run.hwm_mib
    report.target(
        f"flat: peak RSS at {big.jobs:,} IDs <= {MAX_GROWTH}x at {small.jobs:,}",
        growth <= MAX_GROWTH,
        f"{big.run.hwm_mib:.1f} MiB vs {small.run.hwm_mib:.1f} MiB ({growth:.2f}x)",
    )
    peak = max(m.run.hwm_mib for m in ncinfo)
    report.target(
        f"peak RSS under {MAX_MIB:g} MB",
        peak * 1.048576 < MAX_MIB,
        f"{peak:.1f} MiB = {peak * 1.048576:.1f} MB",
    )
    report.emit(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
