"""``ncinfo demo``: the whole client path against an in-process simulator, no server needed.

It starts the simulator on a free loopback port (HTTPS with a fresh CA by default), inspects
every job through the normal client (half-way through it revokes every token, as a server
restart would, so the single-flight re-authentication runs too), and prints what it cost.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from collections.abc import Sequence

from ._inspection import Console
from ._render import Summary
from ._run import run_async
from ._settings import DEFAULT_CONCURRENCY, Settings

#: The help text: plain words, as a terminal shows them (the module docstring is for readers
#: of the code).
DESCRIPTION = """\
Run the whole client against a simulator started in this process: no server needed.

The simulator listens on a free loopback port (HTTPS with a freshly made CA, unless --http).
Every job is inspected through the normal client; half-way through, every token is revoked,
as at a server restart, so the shared re-authentication runs too. At the end the demo prints
what the run cost: time, requests, TCP connections, TLS handshakes and token requests."""

DEMO_USER = "demo"
DEMO_PASSWORD = "demo"  # the simulator's documented demo account, not a secret


def _parser() -> argparse.ArgumentParser:
    from ._cli import UsageParser

    parser = UsageParser(
        prog="ncinfo demo",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--jobs", type=int, default=3000, help="jobs in the simulator (default 3000)"
    )
    parser.add_argument(
        "--concurrency",
        type=int,
        default=DEFAULT_CONCURRENCY,
        help=f"requests in flight (default {DEFAULT_CONCURRENCY})",
    )
    parser.add_argument("--http", action="store_true", help="plain HTTP instead of verified HTTPS")
    parser.add_argument("--no-keepalive", action="store_true", help="a new connection per request")
    parser.add_argument("--show", type=int, default=2, help="jobs to print in full (default 2)")
    parser.add_argument("--asyncio", action="store_true", help="plain asyncio instead of uvloop")
    return parser


async def _demo(options: argparse.Namespace, console: Console) -> int:
    from ._client import Client
    from ._render import make_renderer
    from .sim import SimConfig, Simulator

    config = SimConfig(
        jobs=options.jobs, users={DEMO_USER: DEMO_PASSWORD}, tls=not options.http, token_ttl=600.0
    )
    with tempfile.TemporaryDirectory(prefix="ncinfo-demo-") as workdir:
        async with Simulator(config) as sim:
            cafile = str(sim.write_ca(os.path.join(workdir, "ca.pem"))) if sim.ca_pem else None
            settings = Settings(
                url=sim.url,
                user=DEMO_USER,
                password=DEMO_PASSWORD,
                cafile=cafile,
                concurrency=options.concurrency,
                keepalive=not options.no_keepalive,
                order="input",
            )
            console.out.write(
                f"simulator: {sim.url} with {options.jobs} jobs "
                f"({'HTTPS verified against its own CA' if cafile else 'plain HTTP'})\n\n"
            )
            text = make_renderer("text", None)
            shown = 0
            revoked = False

            def watch(done: int) -> None:
                nonlocal revoked
                if not revoked and done >= options.jobs // 2:
                    sim.revoke()  # every token dies now; the next requests get 401
                    revoked = True

            started = time.perf_counter()
            summary = Summary()
            async with Client(settings) as client:
                async with client.fan_out(range(1, options.jobs + 1)).run() as results:
                    async for result in results:
                        summary.add(result)
                        if shown < options.show and result.fields is not None:
                            console.out.write(text.result(result))
                            shown += 1
                        watch(summary.requested)
                elapsed = time.perf_counter() - started
                stats = sim.stats()
                rate = summary.requested / elapsed if elapsed else 0.0
                console.out.write(
                    f"{summary.found} jobs inspected, {summary.requested - summary.found} failed, "
                    f"in {elapsed:.2f} s ({rate:,.0f} jobs/s)\n"
                    f"job requests sent:     {client.stats.requests}\n"
                    f"TCP connections:       {stats['connections']}\n"
                    f"TLS handshakes:        {stats['tls_handshakes']}\n"
                    f"token requests:        {client.stats.token_requests} "
                    "(one at start, one after the mid-run revocation)\n"
                    f"401s answered:         {stats['unauthorized']}\n"
                )
    return 0 if summary.found == summary.requested else 1


def demo_main(argv: Sequence[str]) -> int:
    """Run the demo; returns the exit status."""
    options = _parser().parse_args(list(argv))
    console = Console()
    try:
        return run_async(_demo, options, console, force_asyncio=options.asyncio)
    except KeyboardInterrupt:
        sys.stderr.write("ncinfo demo: interrupted\n")
        return 130
