#!/usr/bin/env python3
"""Draw the curves that say more than a table, from saved benchmark results.

Reads ``ceiling.json`` (the concurrency sweep of ``bench_ceiling.py --out DIR``) and
``memory.json`` (``bench_memory.py --out DIR``) from the results directory and writes:

- ``throughput_vs_concurrency.png``: ncinfo's jobs/s against ``--concurrency``, against
  nginx and against the simulator with 2 ms latency, with the Little's-law bound;
- ``memory_vs_ids.png``: peak RSS against the number of IDs, ncinfo and the naive loop.

A missing input file skips its plot with a message.  Needs matplotlib (the bench extra).

Example:
    .venv/bin/python benchmarks/plot.py --results benchmarks/results --dest benchmarks
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import TYPE_CHECKING, Any

import _harness as h

if TYPE_CHECKING:
    from collections.abc import Sequence


def _load(path: Path) -> dict[str, Any] | None:
    if not path.exists():
        print(f"plot: {path} not found, skipping its plot", file=sys.stderr)
        return None
    data: dict[str, Any] = json.loads(path.read_text())
    return data


def plot_throughput(results: dict[str, Any], dest: Path) -> Path | None:
    """Jobs/s against concurrency (log-2 x axis), one line per server."""
    import matplotlib.pyplot as plt

    sweep = results["data"].get("sweep")
    if not sweep:
        print("plot: ceiling.json has no sweep (run without --quick)", file=sys.stderr)
        return None
    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    series = (("nginx", "nginx (static files)", "o-"), ("sim_2ms", "simulator, 2 ms", "s-"))
    for key, label, style in series:
        points = sweep.get(key) or []
        if points:
            xs = [p["concurrency"] for p in points]
            ax.plot(xs, [p["jobs_per_s"] for p in points], style, label=f"ncinfo vs {label}")
    if sweep.get("sim_2ms"):
        xs = [p["concurrency"] for p in sweep["sim_2ms"]]
        ax.plot(xs, [c / 0.002 for c in xs], ":", color="grey", label="bound: concurrency / 2 ms")
    wrk = results["data"].get("wrk")
    if wrk:
        ax.axhline(wrk["requests_per_s"], color="tab:red", ls="--", lw=1, label="wrk vs nginx")
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel("ncinfo --concurrency (pool size)")
    ax.set_ylabel("jobs/s (whole process, start-up included)")
    ax.set_title("Throughput against concurrency")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, results["versions"], fontsize=6, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out = dest / "throughput_vs_concurrency.png"
    fig.savefig(out)
    plt.close(fig)
    return out


def plot_memory(results: dict[str, Any], dest: Path) -> Path | None:
    """Peak RSS against the number of IDs (log x axis), ncinfo and the naive loop."""
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 4.2), dpi=120)
    for key, label, style in (("ncinfo", "ncinfo", "o-"), ("naive", "naive aiohttp gather", "s--")):
        runs = results["data"].get(key) or []
        if runs:
            xs = [r["jobs"] for r in runs]
            ax.plot(xs, [r["run"]["hwm_mib"] for r in runs], style, label=label)
    ax.axhline(150 / 1.048576, color="tab:red", ls=":", lw=1, label="target: 150 MB")
    ax.set_xscale("log")
    ax.set_ylim(bottom=0)
    ax.set_xlabel("job IDs on stdin")
    ax.set_ylabel("peak RSS, MiB (VmHWM)")
    ax.set_title("Peak memory against the number of IDs")
    ax.grid(True, which="both", alpha=0.3)
    ax.legend(fontsize=8)
    fig.text(0.01, 0.01, results["versions"], fontsize=6, color="grey")
    fig.tight_layout(rect=(0, 0.03, 1, 1))
    out = dest / "memory_vs_ids.png"
    fig.savefig(out)
    plt.close(fig)
    return out


def main(argv: Sequence[str] | None = None) -> int:
    """Draw every plot whose input exists; return 0 (1 without matplotlib)."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--results", type=Path, default=h.RESULTS_DIR, help="saved results")
    parser.add_argument("--dest", type=Path, default=h.BENCH_DIR, help="where the PNGs go")
    parser.add_argument("--versions", action="store_true", help="print the versions line")
    args = parser.parse_args(argv)
    if args.versions:
        print(h.versions_line())
        return 0
    try:
        import matplotlib
    except ImportError:
        print("plot: matplotlib is missing (bash scripts/bench-deps)", file=sys.stderr)
        return 1
    matplotlib.use("Agg")
    written = []
    ceiling = _load(args.results / "ceiling.json")
    if ceiling is not None:
        written.append(plot_throughput(ceiling, args.dest))
    memory = _load(args.results / "memory.json")
    if memory is not None:
        written.append(plot_memory(memory, args.dest))
    for path in written:
        if path is not None:
            print(f"wrote {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
