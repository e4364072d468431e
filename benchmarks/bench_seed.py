#!/usr/bin/env python3
"""ncinfo against the seed's approach: a sequential ``requests`` loop, one GET per job.

The baselines are the seed client itself (``tests/seed/nc_info.py``: one token POST, then a
``requests.Session`` GET per job ID, ``find()`` over the columns, printed as text) and the
same loop with plain ``requests.get`` and no session (``benchmarks/_seed_nosession.py``).
``ncinfo --format text`` prints the same text, one GET per job at several
``--concurrency`` values; ``ncinfo --batch`` (``/api/v3/query`` in chunks) is shown apart.
Every client runs as its own process against the simulator (another process) with
``--latency`` 0, 2 and 10 ms added to each response.
Ratios are jobs/s against the seed's session loop at the same latency, in the same run.

Examples:
    .venv/bin/python benchmarks/bench_seed.py            # 5,000 IDs, every loop run fully
    .venv/bin/python benchmarks/bench_seed.py --quick    # 100 IDs
"""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "seed"
TITLE = "ncinfo vs the seed's sequential requests loop (bench_seed.py)"
SEED_SCRIPT = h.REPO_DIR / "tests" / "seed" / "nc_info.py"
NOSESSION_SCRIPT = h.BENCH_DIR / "_seed_nosession.py"
#: Ratio targets from the issue, by added latency in ms: ncinfo vs the session loop.
TARGETS = {2.0: 20.0, 10.0: 50.0}


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; return the exit status."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument("--jobs", type=int, help="job IDs per run (default 5000, quick 100)")
    parser.add_argument(
        "--latency",
        type=float,
        nargs="+",
        default=[0.0, 2.0, 10.0],
        metavar="MS",
        help="simulator latencies to run (default: 0 2 10)",
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        nargs="+",
        help="ncinfo --concurrency values, the CLI default first (default: 32 64 128,"
        " quick 32 128)",
    )
    parser.add_argument(
        "--repeat", type=int, help="runs of each ncinfo configuration (default 3, quick 1)"
    )
    args = h.parse_args(parser, argv)
    jobs = args.jobs or (100 if args.quick else 5000)
    concurrencies = args.concurrency or ([32, 128] if args.quick else [32, 64, 128])
    repeat = args.repeat or (1 if args.quick else 3)
    missing = h.client_missing() or h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)
    if not SEED_SCRIPT.exists():
        return h.skip(TITLE, f"{SEED_SCRIPT} is missing")

    report = h.Report(NAME, TITLE, h.command_line(argv))
    ids = [h.job_id_text(i) for i in range(1, jobs + 1)]
    rows = []
    for latency in args.latency:
        with h.temp_dir("ncbench-seed-") as tmp, h.SimServer(jobs=jobs, latency_ms=latency) as sim:
            id_file = h.write_ids(tmp / "ids.txt", jobs)
            # The seed reads the user name from USER (its getJWT call), the password from
            # NC_PASSWORD in the transcription.
            env = sim.client_env() | {"USER": h.USER}
            # The sequential loops are slow and steady (sleep-bound): one run each.
            h.announce(f"{latency} ms: seed session loop")
            session = h.measure(
                "seed requests.Session loop",
                [sys.executable, str(SEED_SCRIPT), *ids],
                server=sim,
                jobs=jobs,
                env=env,
            )
            h.announce(f"{latency} ms: seed loop without session")
            nosession = h.measure(
                "requests.get, no session",
                [sys.executable, str(NOSESSION_SCRIPT), *ids],
                server=sim,
                jobs=jobs,
                env=env,
            )
            variants = [
                (f"ncinfo --concurrency {c}", ["--no-batch", "--concurrency", str(c)])
                for c in concurrencies
            ]
            # Not the per-job GETs the targets are about: /api/v3/query in chunks.
            variants.append(("ncinfo --batch", ["--batch"]))
            ncinfo: dict[str, list[h.Measurement]] = {label: [] for label, _ in variants}
            for rep in range(repeat):
                for label, flags in variants:
                    h.announce(f"{latency} ms: {label} (run {rep + 1})")
                    ncinfo[label].append(
                        h.measure(
                            label,
                            h.ncinfo("--format", "text", *flags),
                            server=sim,
                            jobs=jobs,
                            env=env,
                            stdin_path=id_file,
                        )
                    )
        measured: list[tuple[h.Measurement, str]] = [(session, "1 run"), (nosession, "1 run")]
        measured += [(h.median_of(ncinfo[label]), h.walls(ncinfo[label])) for label, _ in variants]
        for m, spread in measured:
            assert m.stats is not None
            rows.append(
                [
                    f"{latency:g}",
                    m.label,
                    f"{m.run.wall_s:.2f}",
                    spread,
                    h.fmt_int(m.jobs_per_s),
                    h.fmt_ratio(h.ratio(m.jobs_per_s, session.jobs_per_s)),
                    f"{m.client_us_per_job:.0f}",
                    f"{m.server_us_per_job:.0f}",
                    h.fmt_int(m.stats.connections),
                ]
            )
            report.data.setdefault("runs", []).append({"latency_ms": latency, "median": m})
        if latency in TARGETS:
            per_job = [h.median_of(ncinfo[label]) for label, _ in variants[:-1]]
            default, best = per_job[0], max(per_job, key=_speed)
            batch = h.median_of(ncinfo["ncinfo --batch"])
            want = TARGETS[latency]
            got = default.jobs_per_s / session.jobs_per_s
            report.target(
                f"ncinfo >= {want:g}x the session loop at {latency:g} ms ({jobs:,} IDs)",
                got >= want,
                f"{got:.1f}x with {default.label} ({default.jobs_per_s:,.0f} vs"
                f" {session.jobs_per_s:,.0f} jobs/s); best per-job"
                f" {best.jobs_per_s / session.jobs_per_s:.1f}x with {best.label};"
                f" --batch {batch.jobs_per_s / session.jobs_per_s:.1f}x",
            )
    report.add(
        f"{jobs:,} job IDs; the simulator adds the latency before each response. Ratios are"
        " jobs/s against the seed's `requests.Session` loop at the same latency. The"
        f" sequential loops run once, ncinfo {repeat} time(s) (median)."
        " Wall time includes each process's start-up; all IDs are fetched, none subsampled."
    )
    report.add(
        h.markdown_table(
            [
                "latency ms",
                "client",
                "wall s",
                "wall spread",
                "jobs/s",
                "vs session loop",
                "client CPU µs/job",
                "server CPU µs/job",
                "TCP conns",
            ],
            rows,
        )
    )
    report.emit(args.out)
    return 0


def _speed(m: h.Measurement) -> float:
    return m.jobs_per_s


if __name__ == "__main__":
    sys.exit(main())
