#!/usr/bin/env python3
"""Load control: adaptive concurrency against a server at capacity, and ``--max-rate``.

The simulator runs with ``--capacity 8 --latency 20``: it serves 8 requests at once, 20 ms
each, and answers 503 at once to a request arriving while 8 are in progress.  ``ncinfo
--no-batch --concurrency 64`` then fetches every job one request at a time, with the
default adaptive concurrency (AIMD: halve the requests in flight on each 503, grow back by
one per window of successes) and with ``--no-adapt`` (64 in flight whatever the server
says; the baseline).  Each 503 costs the server a request and the client a retry; the
table counts them (the simulator's ``over_capacity``), the jobs answered and the time.

A last row runs ``--max-rate 200`` against a simulator with no capacity limit and reports
the most requests the simulator saw begin within any one second (``peak_rps``).

Examples:
    .venv/bin/python benchmarks/bench_load.py            # 3,000 IDs, 3 repeats + warm-up
    .venv/bin/python benchmarks/bench_load.py --quick    # 1,000 IDs, 1 run, no warm-up
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "load"
TITLE = "Adaptive concurrency against a server at capacity; --max-rate (bench_load.py)"
#: The issue's targets: at least this many times fewer 503s than --no-adapt,
MIN_FEWER_503 = 5.0
#: and --max-rate 200 never letting the server see more than 220 requests in a second.
RATE = 200
MAX_PEAK_RPS = 220
BASELINE = "--no-adapt"
ADAPTIVE = "adaptive (default)"


def answered(text: str) -> int:
    """Results in ndjson output that carry a job's fields."""
    return text.count('"ok":true')


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; return the exit status."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument("--jobs", type=int, help="job IDs per run (default 3000, quick 1000)")
    parser.add_argument(
        "--repeat", type=int, help="counted runs per configuration (default 3, quick 1)"
    )
    parser.add_argument("--capacity", type=int, default=8, help="simulator --capacity")
    parser.add_argument("--latency", type=float, default=20.0, help="simulator latency, ms")
    parser.add_argument("--concurrency", type=int, default=64, help="ncinfo --concurrency")
    args = h.parse_args(parser, argv)
    jobs = args.jobs or (1000 if args.quick else 3000)
    repeat = args.repeat or (1 if args.quick else 3)
    missing = h.client_missing() or h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)

    report = h.Report(NAME, TITLE, h.command_line(argv))
    common = ["--no-batch", "--concurrency", str(args.concurrency), "--format", "ndjson", "-q"]
    configs = [(BASELINE, [*common, "--no-adapt"]), (ADAPTIVE, common)]
    runs: dict[str, list[h.Measurement]] = {label: [] for label, _ in configs}
    found: dict[str, list[int]] = {label: [] for label, _ in configs}
    rate_runs: list[h.Measurement] = []
    with (
        h.temp_dir("ncbench-load-") as tmp,
        h.SimServer(
            jobs=jobs, latency_ms=args.latency, extra_args=["--capacity", str(args.capacity)]
        ) as sim,
        h.SimServer(jobs=jobs) as open_sim,
    ):
        ids = h.write_ids(tmp / "ids.txt", jobs)
        for rep, counts in h.rounds(repeat, warmup=not args.quick):
            for label, flags in configs:
                h.announce(f"round {rep}: {label}, {jobs:,} IDs")
                # --no-adapt may exhaust a job's attempts on 503s: exit 1 is a valid run,
                # and the jobs it did answer are counted.
                m = h.measure(label, h.ncinfo(*flags), server=sim, jobs=jobs,
                              env=sim.client_env(), stdin_path=ids, expect_lines=jobs,
                              keep_stdout=True, allow_exit=(0, 1))  # fmt: skip
                if counts:
                    found[label].append(answered(m.run.stdout_text))
                    runs[label].append(
                        h.Measurement(
                            m.label,
                            m.jobs,
                            h.replace_run(m.run, stdout_text=""),
                            m.server_cpu_s,
                            m.stats,
                        )
                    )
            h.announce(f"round {rep}: --max-rate {RATE}, {jobs:,} IDs")
            m = h.measure(f"--max-rate {RATE}", h.ncinfo(*common, "--max-rate", str(RATE)),
                          server=open_sim, jobs=jobs, env=open_sim.client_env(),
                          stdin_path=ids, expect_lines=jobs)  # fmt: skip
            if counts:
                rate_runs.append(m)

    def refused(m: h.Measurement) -> int:
        assert m.stats is not None
        return m.stats.over_capacity

    base = h.median_of(runs[BASELINE])
    rows = []
    for label, _ in configs:
        m = h.median_of(runs[label])
        assert m.stats is not None
        index = runs[label].index(m)
        rows.append(
            [
                label,
                f"{m.run.wall_s:.2f}",
                h.walls(runs[label]),
                h.fmt_int(m.jobs_per_s),
                f"{found[label][index]:,} / {jobs:,}",
                h.fmt_int(refused(m)),
                ", ".join(h.fmt_int(refused(r)) for r in runs[label]),
                h.fmt_ratio(h.ratio(refused(base), refused(m))),
                h.fmt_int(m.stats.job_requests),
                str(m.stats.max_inflight),
                h.fmt_int(m.stats.peak_rps),
            ]
        )
        report.data.setdefault("runs", []).append(
            {"label": label, "median": m, "runs": runs[label], "answered": found[label]}
        )
    report.data.update(jobs=jobs, capacity=args.capacity, latency_ms=args.latency)
    report.add(
        f"{jobs:,} job IDs on stdin, `ncinfo --no-batch --concurrency {args.concurrency}"
        f" --format ndjson` against `ncinfo-sim --capacity {args.capacity} --latency"
        f" {args.latency:g}`; median run (by wall time) of {repeat}"
        f"{'' if args.quick else ' after a warm-up round'}, configurations interleaved."
        " '503s' is the simulator's over_capacity count; 'fewer 503s' is the --no-adapt"
        " run's count over this row's. 'answered' counts results with the job's fields"
        " (the rest ran out of attempts). max in flight and peak req/s are the simulator's."
    )
    report.add(
        h.markdown_table(
            [
                "mode",
                "wall s",
                "wall spread",
                "jobs/s",
                "answered",
                "503s",
                "503s per run",
                "fewer 503s",
                "job GETs",
                "max in flight",
                "peak req/s",
            ],
            rows,
        )
    )
    rate = h.median_of(rate_runs)
    assert rate.stats is not None
    peaks = [r.stats.peak_rps for r in rate_runs if r.stats is not None]
    report.add(
        f"`--max-rate {RATE}` against `ncinfo-sim` without a capacity limit (same flags"
        f" otherwise): {rate.run.wall_s:.2f} s, {rate.jobs_per_s:,.0f} jobs/s; the"
        f" simulator saw at most {max(peaks)} requests begin within one second"
        f" (per run: {', '.join(map(str, peaks))})."
    )
    adaptive = h.median_of(runs[ADAPTIVE])
    fewer = h.ratio(refused(base), refused(adaptive))
    all_answered = all(count == jobs for count in found[ADAPTIVE])
    report.target(
        f">= {MIN_FEWER_503:g}x fewer 503s than --no-adapt, every job answered"
        f" ({jobs:,} IDs, capacity {args.capacity})",
        fewer is not None and fewer >= MIN_FEWER_503 and all_answered,
        f"{h.fmt_ratio(fewer)} ({refused(adaptive):,} vs {refused(base):,});"
        f" answered in every adaptive run: {'yes' if all_answered else 'no'}",
    )
    report.target(
        f"--max-rate {RATE}: no second with more than {MAX_PEAK_RPS} requests",
        max(peaks) <= MAX_PEAK_RPS,
        f"peak {max(peaks)} requests in one second",
    )
    report.emit(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
