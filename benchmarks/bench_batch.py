#!/usr/bin/env python3
"""Batched queries against per-job requests: ``ncinfo --batch`` vs one GET per job.

``ncinfo --batch`` fetches jobs through ``GET /api/v3/query?select=...&from=jobs&where=
idint==a,b,c`` in chunks whose URL stays under ``--url-budget`` bytes (default 8,000);
without it, ncinfo makes one ``GET /api/v3/jobs/<id>`` per job at ``--concurrency 32`` (the
baseline).  Both print ``--format ndjson`` against the simulator in its own process, with
2 ms of latency added to every ``/api/v3`` response; a third row runs ``--batch`` with
``--url-budget 2000`` to show the effect of the chunk size.  Configurations are interleaved
within each round; ratios are jobs/s against the per-job run of the same rounds.

Each round also runs every configuration with a single job ID, so the table can split a
run into its fixed cost (interpreter start-up, imports, the token POST, one request) and
its per-row cost: marginal CPU = (CPU of the N-job run - CPU of a 1-job run) / (N-1).
The request, token and connection counts are the simulator's (``/sim/stats``).

Examples:
    .venv/bin/python benchmarks/bench_batch.py            # 20,000 IDs, 3 repeats + warm-up
    .venv/bin/python benchmarks/bench_batch.py --quick    # 2,000 IDs, 1 run, no warm-up
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "batch"
TITLE = "Batched queries against per-job requests (bench_batch.py)"
#: The issue's target: --batch at least this many times the jobs/s of per-job mode.
MIN_VS_PER_JOB = 10.0
BASELINE = "per job (-c 32)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; return the exit status."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument("--jobs", type=int, help="job IDs per run (default 20000, quick 2000)")
    parser.add_argument(
        "--repeat", type=int, help="counted runs per configuration (default 3, quick 1)"
    )
    parser.add_argument("--latency", type=float, default=2.0, help="simulator latency, ms")
    parser.add_argument(
        "--small-budget",
        type=int,
        default=2000,
        metavar="BYTES",
        help="--url-budget of the extra --batch row (default 2000; 0 drops the row)",
    )
    args = h.parse_args(parser, argv)
    jobs = args.jobs or (2000 if args.quick else 20000)
    repeat = args.repeat or (1 if args.quick else 3)
    missing = h.client_missing() or h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)

    report = h.Report(NAME, TITLE, h.command_line(argv))
    configs: list[tuple[str, list[str]]] = [
        (BASELINE, ["--concurrency", "32"]),
        ("--batch (--url-budget 8000)", ["--batch"]),
    ]
    if args.small_budget:
        configs.append(
            (
                f"--batch --url-budget {args.small_budget}",
                ["--batch", "--url-budget", str(args.small_budget)],
            )
        )
    runs: dict[str, list[h.Measurement]] = {label: [] for label, _ in configs}
    singles: dict[str, list[h.Measurement]] = {label: [] for label, _ in configs}
    with (
        h.temp_dir("ncbench-batch-") as tmp,
        h.SimServer(jobs=jobs, latency_ms=args.latency) as sim,
    ):
        ids = h.write_ids(tmp / "ids.txt", jobs)
        one = h.write_ids(tmp / "one.txt", 1, first=jobs // 2)
        env = sim.client_env()
        for rep, counts in h.rounds(repeat, warmup=not args.quick):
            for label, flags in configs:
                cmd = h.ncinfo("--format", "ndjson", *flags)
                h.announce(f"round {rep}: {label}, {jobs:,} IDs")
                full = h.measure(
                    label,
                    cmd,
                    server=sim,
                    jobs=jobs,
                    env=env,
                    stdin_path=ids,
                    expect_lines=jobs,
                    expect_ids=range(1, jobs + 1),
                )
                # At least three 1-job runs in all, so the fixed cost that the marginal CPU
                # subtracts is a median, not one noisy sample.
                h.announce(f"round {rep}: {label}, 1 ID")
                one_job = [
                    h.measure(
                        label, cmd, server=sim, jobs=1, env=env, stdin_path=one, expect_lines=1
                    )
                    for _ in range(1 if repeat >= 3 else 3)
                ]
                if counts:
                    runs[label].append(full)
                    singles[label].extend(one_job)

    base = h.median_of(runs[BASELINE])
    rows = []
    summary: dict[str, dict[str, float]] = {}
    for label, _ in configs:
        m = h.median_of(runs[label])
        assert m.stats is not None
        one_wall = h.median([s.run.wall_s for s in singles[label]])
        one_cpu = h.median([s.run.cpu_s for s in singles[label]])
        marginal = (m.run.cpu_s - one_cpu) / (jobs - 1) * 1e6
        queries = m.stats.requests.get("query", 0)
        summary[label] = {
            "jobs_per_s": m.jobs_per_s,
            "wall_s": m.run.wall_s,
            "one_job_wall_s": one_wall,
            "one_job_cpu_s": one_cpu,
            "cpu_s": m.run.cpu_s,
            "marginal_cpu_us": marginal,
            "queries": queries,
        }
        rows.append(
            [
                label,
                f"{m.run.wall_s:.2f}",
                h.walls(runs[label]),
                h.fmt_int(m.jobs_per_s),
                h.fmt_ratio(h.ratio(m.jobs_per_s, base.jobs_per_s)),
                f"{m.client_us_per_job:.0f}",
                f"{marginal:.0f}",
                f"{one_wall:.2f}",
                f"{m.server_us_per_job:.0f}",
                h.fmt_int(m.stats.job_requests),
                h.fmt_int(queries),
                f"{jobs / queries:,.0f}" if queries else "-",
                h.fmt_int(m.stats.requests.get("token", 0)),
                h.fmt_int(m.stats.connections),
            ]
        )
        report.data.setdefault("runs", []).append(
            {
                "label": label,
                "median": m,
                "runs": runs[label],
                "one_job_runs": singles[label],
                **summary[label],
            }
        )
    report.data["jobs"] = jobs
    report.data["latency_ms"] = args.latency

    report.add(
        f"{jobs:,} job IDs on stdin, `ncinfo --format ndjson`, simulator latency"
        f" {args.latency:g} ms per `/api/v3` response; median of {repeat} run(s)"
        f"{'' if args.quick else ' after a warm-up round'}, configurations interleaved."
        f" Ratios are jobs/s against the per-job run. Client CPU includes start-up;"
        " marginal CPU = (CPU of the N-job run - median CPU of its 1-job runs) / (N-1);"
        " '1-job wall s' is the median wall time of the same command with one ID (start-up,"
        " token POST, one request). Requests, token POSTs and TCP connections are what the"
        " simulator counted in the median run; IDs/query = IDs / query requests."
    )
    report.add(
        h.markdown_table(
            [
                "mode",
                "wall s",
                "wall spread",
                "jobs/s",
                "vs per job",
                "client CPU µs/job",
                "marginal CPU µs/job",
                "1-job wall s",
                "server CPU µs/job",
                "job GETs",
                "queries",
                "IDs/query",
                "token POSTs",
                "TCP conns",
            ],
            rows,
        )
    )
    batch = summary[configs[1][0]]
    per_job = summary[BASELINE]
    got = batch["jobs_per_s"] / per_job["jobs_per_s"]
    fixed_share = batch["one_job_wall_s"] / batch["wall_s"]
    # Jobs/s if the fixed cost were paid once and only the per-row time counted.
    rows_s = max(batch["wall_s"] - batch["one_job_wall_s"], 1e-9)
    report.add(
        f"Where the time goes in batch mode: of its {batch['wall_s']:.2f} s median wall, a"
        f" 1-job run of the same command takes {batch['one_job_wall_s']:.2f} s"
        f" ({fixed_share:.0%}); the other {jobs - 1:,} rows add {rows_s:.2f} s"
        f" ({batch['marginal_cpu_us']:.0f} µs of client CPU per row, marginal, against"
        f" {per_job['marginal_cpu_us']:.0f} µs per job in per-job mode). Without the fixed"
        f" cost batch mode would fetch about {jobs / rows_s:,.0f} rows/s"
        f" ({jobs / rows_s / per_job['jobs_per_s']:.1f}x the per-job run's jobs/s)."
    )
    need_s = per_job["wall_s"] / MIN_VS_PER_JOB
    limit = ""
    if got < MIN_VS_PER_JOB:
        limit = f"; {MIN_VS_PER_JOB:g}x needs the {jobs:,}-ID batch run in {need_s:.2f} s"
        if need_s < batch["one_job_wall_s"]:
            limit += f", less than a 1-job run takes ({batch['one_job_wall_s']:.2f} s)"
    report.target(
        f"--batch >= {MIN_VS_PER_JOB:g}x the jobs/s of per-job mode ({jobs:,} IDs,"
        f" {args.latency:g} ms)",
        got >= MIN_VS_PER_JOB,
        f"{got:.2f}x ({batch['jobs_per_s']:,.0f} vs {per_job['jobs_per_s']:,.0f} jobs/s;"
        f" {batch['wall_s']:.2f} s vs {per_job['wall_s']:.2f} s){limit}",
    )
    for label, _ in configs:
        for m in runs[label]:
            assert m.stats is not None
            report.check(
                f"{label}: one token POST",
                m.stats.requests.get("token", 0) == 1,
                f"{m.stats.requests.get('token', 0)} token POSTs",
            )
    report.emit(args.out)
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
