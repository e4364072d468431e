#!/usr/bin/env python3
"""Start-up: a one-job query over HTTP and HTTPS, against ``import aiohttp`` and the seed.

Each command is a fresh process, timed end to end (interpreter start, imports, token POST
or cached token, one GET, output, exit) against the simulator (its own processes, one for
HTTP and one for HTTPS with a CA file, no added latency).  ncinfo runs from a regular,
non-editable install (``pip install <repo>`` into a throwaway venv, or ``--venv`` to reuse
one), as users run it: an editable install imports through a path hook, which costs extra
(its dependencies come from the running venv, so the versions are those of the other
benchmarks).
The floor is ``python -c "import aiohttp"`` in that venv (what any aiohttp client pays
before its first request); the other baseline is the seed client (``tests/seed/nc_info.py``,
``requests``, verified HTTPS through ``REQUESTS_CA_BUNDLE``) fetching the same job.

Commands run in interleaved rounds (one run of each command per round, the order rotated
from round to round, after one warm-up round), so that the load of a shared machine falls
on all of them alike; the tables give medians.

Examples:
    .venv/bin/python benchmarks/bench_startup.py            # 30 rounds
    .venv/bin/python benchmarks/bench_startup.py --quick    # 3 rounds, fewer commands
    .venv/bin/python benchmarks/bench_startup.py --venv /tmp/ncinfo-venv   # reuse a venv
"""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import TYPE_CHECKING

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence

NAME = "startup"
TITLE = "Start-up: a one-job query vs import aiohttp and the seed (bench_startup.py)"
SEED_SCRIPT = h.REPO_DIR / "tests" / "seed" / "nc_info.py"
JOB = "000000001"
FLOOR = "python -c 'import aiohttp'"
TARGET_LABEL = "ncinfo https --cacert, cached token"
#: Target from the issue: the everyday verified-HTTPS call with a cached token.
MAX_VS_FLOOR = 1.3


def interleaved(
    commands: list[tuple[str, list[str], dict[str, str]]], rounds: int
) -> dict[str, dict[str, list[float]]]:
    """Run every command once per round, rotating the order; one warm-up round first."""
    out: dict[str, dict[str, list[float]]] = {
        label: {"wall": [], "cpu": []} for label, _, _ in commands
    }
    for rep in range(rounds + 1):
        shift = rep % len(commands)
        for label, argv, env in commands[shift:] + commands[:shift]:
            run = h.run_measured(argv, env=env, timeout=60)
            if not run.ok:
                raise h.BenchFailure(f"{label} exited with {run.returncode}: {run.stderr_tail}")
            if rep:
                out[label]["wall"].append(run.wall_s)
                out[label]["cpu"].append(run.cpu_s)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Run the benchmark and print its table; return the exit status."""
    parser = h.make_parser(__doc__ or "")
    parser.add_argument("--runs", type=int, help="rounds (default 30, quick 3)")
    parser.add_argument("--venv", type=Path, help="venv to install into / reuse (default: temp)")
    args = h.parse_args(parser, argv)
    rounds = args.runs or (3 if args.quick else 30)
    missing = h.sim_missing()
    if missing:
        return h.skip(TITLE, missing)

    report = h.Report(NAME, TITLE, h.command_line(argv))
    with (
        h.temp_dir("ncbench-startup-") as tmp,
        h.SimServer(jobs=10) as plain,
        h.SimServer(jobs=10, tls=True) as tls,
    ):
        python = h.make_venv(args.venv or tmp / "venv")
        ncinfo = [str(python.parent / "ncinfo"), "-q"]
        http_env = plain.client_env() | {"USER": h.USER}
        https_env = tls.client_env() | {"USER": h.USER}
        assert tls.ca_path is not None
        ca = ["--cacert", str(tls.ca_path)]
        seed_https_env = https_env | {"REQUESTS_CA_BUNDLE": str(tls.ca_path)}
        commands: list[tuple[str, list[str], dict[str, str]]] = [
            ("python -c pass", [str(python), "-c", "pass"], {}),
            (FLOOR, [str(python), "-c", "import aiohttp"], {}),
            ("ncinfo --version", [*ncinfo, "--version"], {}),
            ("ncinfo http", [*ncinfo, "--no-token-cache", JOB], http_env),
            ("ncinfo http, cached token", [*ncinfo, JOB], http_env),
            ("ncinfo https --cacert", [*ncinfo, "--no-token-cache", *ca, JOB], https_env),
            (TARGET_LABEL, [*ncinfo, *ca, JOB], https_env),
            ("seed nc_info.py http", [str(python), str(SEED_SCRIPT), JOB], http_env),
            ("seed nc_info.py https", [str(python), str(SEED_SCRIPT), JOB], seed_https_env),
        ]
        if args.quick:  # the smoke needs only the floor and the target
            keep = (FLOOR, TARGET_LABEL, "seed nc_info.py https")
            commands = [c for c in commands if c[0] in keep]
        # Prime the token caches: the "cached token" runs then make no token POST.
        for env, extra in ((http_env, []), (https_env, ca)):
            h.run_measured([*ncinfo, *extra, JOB], env=env, timeout=60)
        h.announce(f"timing {len(commands)} commands x {rounds} interleaved rounds")
        results = interleaved([(lbl, cmd, os.environ | env) for lbl, cmd, env in commands], rounds)

    floor = h.median(results[FLOOR]["wall"])
    seed = "seed nc_info.py https" if "seed nc_info.py https" in results else None
    seed_mid = h.median(results[seed]["wall"]) if seed else None
    rows = []
    for label, _, _ in commands:
        walls = results[label]["wall"]
        mid = h.median(walls)
        rows.append(
            [
                label,
                f"{mid * 1000:.0f}",
                f"{min(walls) * 1000:.0f}-{max(walls) * 1000:.0f}",
                f"{h.median(results[label]['cpu']) * 1000:.0f}",
                h.fmt_ratio(h.ratio(mid, floor)),
                h.fmt_ratio(h.ratio(mid, seed_mid)) if seed_mid else "-",
            ]
        )
    report.data["results"] = results
    report.add(
        f"{rounds} interleaved rounds (one run of each command per round, order rotated, after"
        " a warm-up round); ncinfo and the seed run from a non-editable install in a fresh venv;"
        " the simulators run in their own processes with no added latency. Ratios are median"
        f" wall time against `{FLOOR}` and against the seed's verified HTTPS one-job query in"
        " the same run (lower is faster)."
    )
    report.add(
        h.markdown_table(
            ["command", "median ms", "min-max ms", "CPU ms", "vs import aiohttp", "vs seed https"],
            rows,
        )
    )
    target = h.median(results[TARGET_LABEL]["wall"])
    report.target(
        f"one job over verified HTTPS, cached token, <= {MAX_VS_FLOOR}x `{FLOOR}`",
        target <= MAX_VS_FLOOR * floor,
        f"{target * 1000:.0f} ms vs {floor * 1000:.0f} ms median ({target / floor:.2f}x)",
    )
    report.emit(args.out)
    return 0


if __name__ == "__main__":
    sys.exit(main())
