#!/usr/bin/env python3
"""Keep-alive against a new connection per request, over HTTP and HTTPS.

``ncinfo`` fetches the same job IDs from the simulator (its own process) with its pooled
keep-alive session and with ``--no-keepalive`` (aiohttp ``force_close``: one TCP
connection, and over HTTPS one full TLS handshake, per request).  For each run it reports
wall time, jobs/s, the client's CPU per job (``wait4`` on the client process), the
server's CPU per job, and the TCP connections and TLS handshakes the server counted
(``/sim/stats``, reset before each run).  Ratios are against the keep-alive run of the same
scheme in the same invocation.

Examples:
    .venv/bin/python benchmarks/bench_keepalive.py            # 5,000 IDs, 3 repeats
    .venv/bin/python benchmarks/bench_keepalive.py --quick    # 500 IDs, 1 repeat
"""

from __future__ import annotations

import sys
from contextlib import ExitStack
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "keepalive"
TITLE = "Keep-alive vs a new connection per request (bench_keepalive.py)"


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; return the exit status."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument("--jobs", type=int, help="job IDs per run (default 5000, quick 500)")
    parser.add_argument("--repeat", type=int, help="runs per configuration (default 3, quick 1)")
    parser.add_argument("--concurrency", type=int, default=32, help="ncinfo --concurrency")
    args = h.parse_args(parser, argv)
    jobs = args.jobs or (500 if args.quick else 5000)
    repeat = args.repeat or (1 if args.quick else 3)
    missing = h.client_missing() or h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)

    report = h.Report(NAME, TITLE, h.command_line(argv))
    configs = [(scheme, keepalive) for scheme in ("http", "https") for keepalive in (True, False)]
    runs: dict[tuple[str, bool], list[h.Measurement]] = {c: [] for c in configs}
    with ExitStack() as stack:
        tmp = stack.enter_context(h.temp_dir("ncbench-keepalive-"))
        ids = h.write_ids(tmp / "ids.txt", jobs)
        servers = {
            scheme: stack.enter_context(h.SimServer(jobs=jobs, tls=scheme == "https"))
            for scheme in ("http", "https")
        }
        for rep, counts in h.rounds(repeat, warmup=not args.quick):
            for scheme, keepalive in configs:
                server = servers[scheme]
                flags = ["--no-batch", "--format", "ndjson", "--concurrency", str(args.concurrency)]
                if not keepalive:
                    flags.append("--no-keepalive")
                label = f"{scheme} {'keep-alive' if keepalive else 'new connection'}"
                h.announce(f"round {rep}: {label}")
                measured = h.measure(
                    label,
                    h.ncinfo(*flags, *server.client_args()),
                    server=server,
                    jobs=jobs,
                    env=server.client_env(),
                    stdin_path=ids,
                    expect_lines=jobs,
                    expect_ids=range(1, jobs + 1),
                )
                if counts:
                    runs[(scheme, keepalive)].append(measured)

    rows = []
    for scheme, keepalive in configs:
        m = h.median_of(runs[(scheme, keepalive)])
        base = h.median_of(runs[(scheme, True)])
        assert m.stats is not None
        rows.append(
            [
                scheme.upper(),
                "keep-alive pool" if keepalive else "new per request",
                f"{m.run.wall_s:.2f}",
                h.walls(runs[(scheme, keepalive)]),
                h.fmt_int(m.jobs_per_s),
                h.fmt_ratio(h.ratio(m.jobs_per_s, base.jobs_per_s)),
                f"{m.client_us_per_job:.0f}",
                h.fmt_ratio(h.ratio(m.client_us_per_job, base.client_us_per_job)),
                f"{m.server_us_per_job:.0f}",
                h.fmt_int(m.stats.connections),
                h.fmt_int(m.stats.tls_handshakes),
                str(m.stats.requests.get("token", 0)),
            ]
        )
        report.data.setdefault("runs", []).append(
            {
                "scheme": scheme,
                "keepalive": keepalive,
                "jobs": jobs,
                "concurrency": args.concurrency,
                "wall_s": [r.run.wall_s for r in runs[(scheme, keepalive)]],
                "median": m,
            }
        )
    warm = "" if args.quick else " after a warm-up round"
    report.add(
        f"{jobs:,} job IDs, `ncinfo --concurrency {args.concurrency}`, simulator with no"
        f" added latency; median of {repeat} run(s){warm}. Ratios are against"
        " keep-alive on the same scheme. Client CPU includes interpreter start-up."
    )
    report.add(
        h.markdown_table(
            [
                "scheme",
                "connections",
                "wall s",
                "wall spread",
                "jobs/s",
                "jobs/s vs keep-alive",
                "client CPU µs/job",
                "client CPU vs keep-alive",
                "server CPU µs/job",
                "TCP conns",
                "TLS handshakes",
                "token POSTs",
            ],
            rows,
        )
    )
    for scheme in ("http", "https"):
        m = h.median_of(runs[(scheme, True)])
        assert m.stats is not None
        report.target(
            f"{scheme.upper()} keep-alive opens at most --concurrency connections",
            m.stats.connections <= args.concurrency,
            f"{m.stats.connections} connections, {m.stats.tls_handshakes} TLS handshakes"
            f" for {jobs:,} jobs (pool {args.concurrency})",
        )
    # Counts that do not depend on speed: they fail the smoke when wrong.
    for (scheme, keepalive), series in runs.items():
        for m in series:
            assert m.stats is not None
            label = f"{scheme.upper()} {'keep-alive' if keepalive else 'new connection'}"
            if keepalive:
                # The pool: one connection per worker plus one for the token request.
                report.check(
                    f"{label}: connections within the pool (--concurrency + 1)",
                    m.stats.connections <= args.concurrency + 1,
                    f"{m.stats.connections} connections, pool {args.concurrency} + 1",
                )
            report.check(
                f"{label}: one token POST",
                m.stats.requests.get("token", 0) == 1,
                f"{m.stats.requests.get('token', 0)} token POSTs",
            )
            report.check(
                f"{label}: one job request per ID",
                m.stats.requests.get("job", 0) == jobs,
                f"{m.stats.requests.get('job', 0)} job requests for {jobs:,} IDs",
            )
    report.emit(args.out)
    return report.exit_status()


if __name__ == "__main__":
    sys.exit(main())
