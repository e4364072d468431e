#!/usr/bin/env python3
"""Token refresh under load: every token revoked in the middle of a run.

ncinfo fetches jobs from the simulator (its own process, 2 ms added latency so the run
lasts long enough to be cut in two): ``--jobs`` IDs (2,000), and at least three per
request in flight, so that requests sent after the revocation meet it.  A watcher thread
polls ``/sim/stats`` and, once half of the jobs have been served, calls
``POST /sim/revoke``: every request in flight or sent afterwards with the old token gets
401.  A correct single-flight refresh makes exactly one new token POST however many
requests fail at once.  The functional check counts the revocation by what requests met:
one token POST at the start, plus one if any request got a 401 (a revocation that came
after the last request passed the token check costs none).  The baseline is the same run
with the same watcher polling but no revocation, interleaved with it; the table gives the
token POSTs and 401s the server counted and the wall time the revocation added.  It runs
at the default ``--concurrency 32`` and at 2,000 (with 6,000 IDs).

Examples:
    .venv/bin/python benchmarks/bench_refresh.py            # 2,000 IDs, 7 repeats
    .venv/bin/python benchmarks/bench_refresh.py --quick    # 2,000 IDs, 1 run, no warm-up
"""

from __future__ import annotations

import sys
import time
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    import threading
    from collections.abc import Callable, Sequence

NAME = "refresh"
#: IDs per request in flight, at least.
IDS_PER_REQUEST = 3
TITLE = "Token refresh across a forced revocation (bench_refresh.py)"


def watcher(
    sim: h.SimServer, jobs: int, *, revoke: bool, log: list[float]
) -> Callable[[threading.Event], None]:
    """A callback that waits for half the jobs to be served, then revokes (or not).

    It appends the time it acted (or gave up) to ``log``, and never outlives the client
    process or 120 s.
    """

    def watch(done: threading.Event) -> None:
        deadline = time.monotonic() + 120
        while not done.is_set() and time.monotonic() < deadline:
            if sim.stats().job_requests >= jobs // 2:
                if revoke:
                    sim.revoke()
                log.append(time.monotonic())
                return
            done.wait(0.002)

    return watch


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; return the exit status."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument(
        "--jobs",
        type=int,
        default=2000,
        help="job IDs per run (default 2000; at least 3 per request in flight)",
    )
    parser.add_argument("--repeat", type=int, help="runs per configuration (default 7, quick 1)")
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        default=[32, 2000],
        help="ncinfo --concurrency values (default: 32 2000)",
    )
    parser.add_argument("--latency", type=float, default=2.0, help="simulator latency, ms")
    args = h.parse_args(parser, argv)
    repeat = args.repeat or (1 if args.quick else 7)
    # More IDs than requests in flight: with one ID per request, every request can pass the
    # token check before the revocation lands, and the run never meets it.
    jobs_at = {c: max(args.jobs, IDS_PER_REQUEST * c) for c in args.concurrency}
    missing = h.client_missing() or h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)

    report = h.Report(NAME, TITLE, h.command_line(argv))
    configs = [(c, revoke) for c in args.concurrency for revoke in (False, True)]
    runs: dict[tuple[int, bool], list[h.Measurement]] = {c: [] for c in configs}
    acted: dict[tuple[int, bool], int] = dict.fromkeys(configs, 0)
    with (
        h.temp_dir("ncbench-refresh-") as tmp,
        h.SimServer(jobs=max(jobs_at.values()), latency_ms=args.latency) as sim,
    ):
        ids = {jobs: h.write_ids(tmp / f"ids-{jobs}.txt", jobs) for jobs in set(jobs_at.values())}
        for rep, counts in h.rounds(repeat, warmup=not args.quick):
            for concurrency, revoke in configs:
                jobs = jobs_at[concurrency]
                log: list[float] = []
                label = (
                    f"-c {concurrency}, {jobs:,} IDs,"
                    f" {'revoked mid-run' if revoke else 'no revocation'}"
                )
                h.announce(f"round {rep}: {label}")
                m = h.measure(
                    label,
                    h.ncinfo("--no-batch", "--format", "ndjson", "--concurrency", str(concurrency)),
                    server=sim,
                    jobs=jobs,
                    env=sim.client_env(),
                    stdin_path=ids[jobs],
                    expect_lines=jobs,
                    expect_ids=range(1, jobs + 1),
                    on_start=watcher(sim, jobs, revoke=revoke, log=log),
                )
                if counts:
                    runs[(concurrency, revoke)].append(m)
                    acted[(concurrency, revoke)] += bool(log)
                # Whether requests meet the revocation depends on speed; what it costs does
                # not: one token POST at start, one more if any request met it (got a 401),
                # never more.  A revocation no request met costs none.
                assert m.stats is not None
                tokens = m.stats.requests.get("token", 0)
                met = m.stats.unauthorized > 0
                what = "no revocation"
                if revoke:
                    what = (
                        f"revoked mid-run, met by {m.stats.unauthorized} request(s)"
                        if met
                        else "revoked, but no request met it"
                        if log
                        else "the revocation came after the run"
                    )
                report.check(
                    f"round {rep}, {label}: token POSTs",
                    tokens == 1 + met and (revoke or not met),
                    f"{tokens} token POSTs ({what})",
                )

    rows = []
    for concurrency, revoke in configs:
        series = runs[(concurrency, revoke)]
        m = h.median_of(series)
        base = h.median_of(runs[(concurrency, False)])
        tokens = [r.stats.requests.get("token", 0) for r in series if r.stats is not None]
        unauthorized = [r.stats.unauthorized for r in series if r.stats is not None]
        rows.append(
            [
                str(concurrency),
                f"{jobs_at[concurrency]:,}",
                "revoked mid-run" if revoke else "no revocation",
                f"{m.run.wall_s:.3f}",
                h.walls(series),
                f"{(m.run.wall_s - base.run.wall_s) * 1000:+.0f}",
                h.fmt_ratio(h.ratio(m.run.wall_s, base.run.wall_s)),
                "/".join(map(str, tokens)),
                "/".join(map(str, unauthorized)),
                f"{acted[(concurrency, revoke)]}/{len(series)}",
            ]
        )
        report.data.setdefault("runs", []).append(
            {"concurrency": concurrency, "revoke": revoke, "runs": series}
        )
        if revoke:
            extra = [t - 1 for t in tokens]
            report.target(
                f"-c {concurrency}: exactly 1 token POST after the initial one",
                all(e == 1 for e in extra) and acted[(concurrency, revoke)] == len(series),
                f"token POSTs per run {'/'.join(map(str, tokens))}; 401s"
                f" {'/'.join(map(str, unauthorized))}; added"
                f" {(m.run.wall_s - base.run.wall_s) * 1000:+.0f} ms (median)",
            )
    report.add(
        f"{args.jobs:,} job IDs, at least {IDS_PER_REQUEST} per request in flight;"
        f" simulator latency {args.latency:g} ms, {repeat} run(s) per row"
        f"{'' if args.quick else ' after a warm-up round'}; wall time is the median,"
        " ratios against the run without revocation at the same concurrency."
        " Token POSTs and 401s are per run, as the server counted them (the initial POST"
        " included). 'revoked' counts the runs in which the revocation landed while jobs"
        " were still being served."
    )
    report.add(
        h.markdown_table(
            [
                "concurrency",
                "IDs",
                "run",
                "wall s",
                "wall spread",
                "added ms",
                "vs no revocation",
                "token POSTs",
                "401s",
                "revoked",
            ],
            rows,
        )
    )
    report.emit(args.out)
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
