#!/usr/bin/env python3
"""The default, batched mode against one request per job (``--no-batch``).

With more than one ID, ``ncinfo`` fetches jobs through ``GET /api/v3/query?select=...&from=
jobs&where=idint==a,b,c`` in chunks whose URL stays under ``--url-budget`` bytes (default
8,000), and confirms each ID missing from a chunk's rows with its own GET; ``--no-batch``
makes one ``GET /api/v3/jobs/<id>`` per job at ``--concurrency 32`` (the baseline).  All
print ``--format ndjson`` against the simulator in its own process, with 2 ms of latency
added to every ``/api/v3`` response; a third row runs the default mode with ``--url-budget
2000`` to show the effect of the chunk size.

A second simulator runs with ``--id-lists first``: it reads only the first ID of each list,
so every chunk comes back with one row, the first confirmation finds a job, and the client
fetches the rest one job per request.  There the default mode's output is compared byte for
byte with ``--no-batch``'s (both simulators' clocks stand still) and its time is reported
against ``--no-batch`` on the same server.  Configurations are interleaved within each round;
ratios are against the ``--no-batch`` run of the same server and rounds.

Each round also runs the first server's configurations with a single job ID, so the table
can split a run into its fixed cost (interpreter start-up, imports, the token POST, one
request) and its per-row cost: marginal CPU = (CPU of the N-job run - CPU of a 1-job run) /
(N-1).  Request, token and connection counts are the simulator's (``/sim/stats``).

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
TITLE = "The default (batched) mode against per-job requests (bench_batch.py)"
#: The issue's targets: the default mode at least this many times the jobs/s of --no-batch,
MIN_VS_PER_JOB = 10.0
#: in at most this many requests for 20,000 IDs,
MAX_REQUESTS = 25
#: and against a server that reads only the first ID of a list, within this factor of
#: --no-batch's time on that server.
MAX_VS_PER_JOB_MISREAD = 1.2
BASELINE = "--no-batch (-c 32)"
DEFAULT = "default (batched, --url-budget 8000)"
#: Both simulators' clocks stand still, so running jobs print the same in every run.
FROZEN = ["--start-time", "1790000000", "--time-scale", "1e-6"]


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
        help="--url-budget of the extra default-mode row (default 2000; 0 drops the row)",
    )
    args = h.parse_args(parser, argv)
    jobs = args.jobs or (2000 if args.quick else 20000)
    repeat = args.repeat or (1 if args.quick else 3)
    missing = h.client_missing() or h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)

    report = h.Report(NAME, TITLE, h.command_line(argv))
    configs: list[tuple[str, list[str]]] = [
        (BASELINE, ["--no-batch", "--concurrency", "32"]),
        (DEFAULT, []),
    ]
    if args.small_budget:
        configs.append(
            (f"default, --url-budget {args.small_budget}", ["--url-budget", str(args.small_budget)])
        )
    misread = [
        (f"{BASELINE}, --id-lists first", configs[0][1]),
        (f"{DEFAULT[:7]}, --id-lists first", []),
    ]
    runs: dict[str, list[h.Measurement]] = {label: [] for label, _ in [*configs, *misread]}
    singles: dict[str, list[h.Measurement]] = {label: [] for label, _ in configs}
    same_output: list[bool] = []
    with (
        h.temp_dir("ncbench-batch-") as tmp,
        h.SimServer(jobs=jobs, latency_ms=args.latency, extra_args=FROZEN) as sim,
        h.SimServer(
            jobs=jobs, latency_ms=args.latency, extra_args=[*FROZEN, "--id-lists", "first"]
        ) as first,
    ):
        h.use_install(tmp / "venv")  # whole-process times: a compiled install, as users run
        ids = h.write_ids(tmp / "ids.txt", jobs)
        one = h.write_ids(tmp / "one.txt", 1, first=jobs // 2)
        for rep, counts in h.rounds(repeat, warmup=not args.quick):
            for label, flags in configs:
                cmd = h.ncinfo("--format", "ndjson", *flags)
                h.announce(f"round {rep}: {label}, {jobs:,} IDs")
                full = h.measure(
                    label,
                    cmd,
                    server=sim,
                    jobs=jobs,
                    env=sim.client_env(),
                    stdin_path=ids,
                    expect_lines=jobs,
                    expect_ids=range(1, jobs + 1),
                )
                # At least three 1-job runs in all, so the fixed cost that the marginal CPU
                # subtracts is a median, not one noisy sample.
                h.announce(f"round {rep}: {label}, 1 ID")
                one_job = [
                    h.measure(
                        label,
                        cmd,
                        server=sim,
                        jobs=1,
                        env=sim.client_env(),
                        stdin_path=one,
                        expect_lines=1,
                    )
                    for _ in range(1 if repeat >= 3 else 3)
                ]
                if counts:
                    runs[label].append(full)
                    singles[label].extend(one_job)
            outputs = []
            for label, flags in misread:
                cmd = h.ncinfo("--format", "ndjson", *flags)
                h.announce(f"round {rep}: {label}, {jobs:,} IDs")
                m = h.measure(label, cmd, server=first, jobs=jobs, env=first.client_env(),
                              stdin_path=ids, expect_lines=jobs, keep_stdout=True)  # fmt: skip
                outputs.append(m.run.stdout_text)
                if counts:
                    # The outputs are compared here; the table keeps the figures only.
                    runs[label].append(h.Measurement(m.label, m.jobs,
                                       h.replace_run(m.run, stdout_text=""), m.server_cpu_s,
                                       m.stats))  # fmt: skip
            same_output.append(outputs[0] == outputs[1])

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
        api_requests = queries + m.stats.job_requests
        summary[label] = {
            "jobs_per_s": m.jobs_per_s,
            "wall_s": m.run.wall_s,
            "one_job_wall_s": one_wall,
            "one_job_cpu_s": one_cpu,
            "cpu_s": m.run.cpu_s,
            "marginal_cpu_us": marginal,
            "queries": queries,
            "requests": api_requests,
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
        " Ratios are jobs/s against the `--no-batch` run. Client CPU includes start-up;"
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
                "vs --no-batch",
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
    mis_base = h.median_of(runs[misread[0][0]])
    mis_rows = []
    for label, _ in misread:
        m = h.median_of(runs[label])
        assert m.stats is not None
        mis_rows.append(
            [
                label,
                f"{m.run.wall_s:.2f}",
                h.walls(runs[label]),
                h.fmt_int(m.jobs_per_s),
                h.fmt_ratio(h.ratio(m.run.wall_s, mis_base.run.wall_s)),
                h.fmt_int(m.stats.job_requests),
                h.fmt_int(m.stats.requests.get("query", 0)),
            ]
        )
    report.add(
        "Against a server that reads only the first ID of an `idint==a,b,c` list"
        " (`ncinfo-sim --id-lists first`), same IDs and latency. The ratio here is wall time"
        " against `--no-batch` on that server (lower is better). Output of the default mode"
        f" byte-identical to `--no-batch`'s: {sum(same_output)} of {len(same_output)} rounds."
    )
    report.add(
        h.markdown_table(
            [
                "mode",
                "wall s",
                "wall spread",
                "jobs/s",
                "wall vs --no-batch",
                "job GETs",
                "queries",
            ],
            mis_rows,
        )
    )
    batch = summary[DEFAULT]
    per_job = summary[BASELINE]
    got = batch["jobs_per_s"] / per_job["jobs_per_s"]
    fixed_share = batch["one_job_wall_s"] / batch["wall_s"]
    # Jobs/s if the fixed cost were paid once and only the per-row time counted.
    rows_s = max(batch["wall_s"] - batch["one_job_wall_s"], 1e-9)
    report.add(
        f"Where the time goes in the default mode: of its {batch['wall_s']:.2f} s median"
        f" wall, a 1-job run of the same command takes {batch['one_job_wall_s']:.2f} s"
        f" ({fixed_share:.0%}); the other {jobs - 1:,} rows add {rows_s:.2f} s"
        f" ({batch['marginal_cpu_us']:.0f} µs of client CPU per row, marginal, against"
        f" {per_job['marginal_cpu_us']:.0f} µs per job in per-job mode). Without the fixed"
        f" cost it would fetch about {jobs / rows_s:,.0f} rows/s"
        f" ({jobs / rows_s / per_job['jobs_per_s']:.1f}x the per-job run's jobs/s)."
    )
    need_s = per_job["wall_s"] / MIN_VS_PER_JOB
    limit = ""
    if got < MIN_VS_PER_JOB:
        limit = f"; {MIN_VS_PER_JOB:g}x needs the {jobs:,}-ID run in {need_s:.2f} s"
        if need_s < batch["one_job_wall_s"]:
            limit += f", less than a 1-job run takes ({batch['one_job_wall_s']:.2f} s)"
    report.target(
        f"default mode >= {MIN_VS_PER_JOB:g}x the jobs/s of --no-batch ({jobs:,} IDs,"
        f" {args.latency:g} ms)",
        got >= MIN_VS_PER_JOB,
        f"{got:.2f}x ({batch['jobs_per_s']:,.0f} vs {per_job['jobs_per_s']:,.0f} jobs/s;"
        f" {batch['wall_s']:.2f} s vs {per_job['wall_s']:.2f} s){limit}",
    )
    report.target(
        f"default mode: <= {MAX_REQUESTS} requests for {jobs:,} IDs",
        batch["requests"] <= MAX_REQUESTS,
        f"{batch['requests']:.0f} ({batch['queries']:.0f} queries,"
        f" {batch['requests'] - batch['queries']:.0f} job GETs)",
    )
    mis = h.median_of(runs[misread[1][0]])
    slower = mis.run.wall_s / mis_base.run.wall_s
    report.target(
        f"--id-lists first: every result right, wall <= {MAX_VS_PER_JOB_MISREAD:g}x --no-batch's",
        all(same_output) and slower <= MAX_VS_PER_JOB_MISREAD,
        f"output identical in {sum(same_output)}/{len(same_output)} rounds;"
        f" {slower:.2f}x ({mis.run.wall_s:.2f} s vs {mis_base.run.wall_s:.2f} s)",
    )
    for label, _ in configs:
        for m in runs[label]:
            assert m.stats is not None
            report.check(
                f"{label}: one token POST",
                m.stats.requests.get("token", 0) == 1,
                f"{m.stats.requests.get('token', 0)} token POSTs",
            )
    report.check(
        "--id-lists first: default output byte-identical to --no-batch's",
        all(same_output),
        f"identical in {sum(same_output)}/{len(same_output)} rounds",
    )
    report.emit(args.out)
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
