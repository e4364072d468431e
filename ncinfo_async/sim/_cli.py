"""`ncinfo-sim`: run the simulated vovserver as its own process.

The first line of stdout is the base URL (flushed before serving), so a parent
process can read it; logs go to stderr; SIGINT and SIGTERM stop it with exit 0.
"""

from __future__ import annotations

import argparse
import asyncio
import logging
import signal
import sys
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

from ._config import ERROR_STATUSES, FaultConfig, SimConfig
from ._server import Simulator

if TYPE_CHECKING:
    from collections.abc import Callable, Sequence

__all__ = ["build_parser", "config_from_args", "main"]

logger = logging.getLogger("ncinfo_async.sim")
_T = TypeVar("_T", int, float)


def _bounded(kind: Callable[[str], _T], low: _T, high: _T | None = None) -> Callable[[str], _T]:
    def convert(text: str) -> _T:
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
        if not (value >= low and (high is None or value <= high)) or value != value:
            upper = f" and <= {high}" if high is not None else ""
            raise argparse.ArgumentTypeError(f"must be >= {low}{upper}, got {text}")
        return value

    return convert


def _user(text: str) -> tuple[str, str]:
    name, sep, password = text.partition(":")
    if not sep or not name:
        raise argparse.ArgumentTypeError("expected NAME:PASSWORD")
    return name, password


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser; option names are a contract other tools rely on."""
    rate = _bounded(float, 0.0, 1.0)
    # Options spelled whole: a test that misspells a fault flag must fail, not run without it.
    parser = argparse.ArgumentParser(
        allow_abbrev=False,
        prog="ncinfo-sim",
        description="Simulated Altair Accelerator vovserver (REST API v3) for tests and "
        "benchmarks. Prints its base URL as the first line of stdout.",
    )
    add = parser.add_argument
    add("--host", default="127.0.0.1", help="address to bind (default: %(default)s)")
    add("--port", type=_bounded(int, 0, 65535), default=0, help="port; 0 picks a free one")
    add("--jobs", type=_bounded(int, 0), default=1000, metavar="N", help="serve jobs 1..N")
    add(
        "--seed",
        type=int,
        default=0,
        help="seed of the job generator and fault RNG (default: %(default)s)",
    )
    add(
        "--user",
        type=_user,
        action="append",
        metavar="NAME:PASSWORD",
        help="accepted credentials, repeatable (default: demo:demo)",
    )
    add(
        "--token-ttl",
        type=_bounded(float, 0.001),
        default=14400.0,
        metavar="SECONDS",
        help="lifetime of issued tokens, their JWT 'exp' (default: %(default)s)",
    )
    add(
        "--latency",
        type=_bounded(float, 0.0),
        default=0.0,
        metavar="MS",
        help="delay added before each /api/v3 response (default: 0)",
    )
    add("--tls", action="store_true", help="serve HTTPS with a freshly generated CA")
    add("--ca-out", type=Path, metavar="PATH", help="write the CA certificate PEM (with --tls)")
    add(
        "--unknown-job",
        choices=("404", "empty"),
        default="404",
        help="answer for an unknown job ID: 404 + error, or 200 with no rows",
    )
    add(
        "--time-scale",
        type=_bounded(float, 1e-6),
        default=1.0,
        help="speed of simulated time (e.g. 100 ends running jobs within seconds); "
        "Idle, Suspended and Withdrawn jobs never change",
    )
    add("--start-time", type=float, metavar="EPOCH", help="simulated 'now' at start")
    add("--reject-query", action="store_true", help="answer /api/v3/query with 400")
    add(
        "--id-lists",
        choices=("all", "first", "ignore"),
        default="all",
        help="how /api/v3/query reads 'idint==a,b,c': every value (default), only the first, "
        "or it ignores the rule and returns every job up to the limit",
    )
    add(
        "--capacity",
        type=_bounded(int, 1),
        metavar="N",
        help="answer 503 to an /api/v3 request arriving while N are being served",
    )
    add("--no-bearer", action="store_true", help="reject 'Authorization: Bearer <jwt>'")
    add("--error-rate", type=rate, default=0.0, help="fraction answered with --error-status")
    add(
        "--error-status",
        type=int,
        choices=sorted(ERROR_STATUSES),
        default=503,
        help="HTTP status of injected errors (default: %(default)s)",
    )
    add(
        "--retry-after",
        type=_bounded(int, 0),
        metavar="SECONDS",
        help="Retry-After sent with injected errors",
    )
    add("--drop-rate", type=rate, default=0.0, help="fraction of connections aborted, no reply")
    add("--close-after-response", action="store_true", help="Connection: close every response")
    add("--slow-rate", type=rate, default=0.0, help="fraction of requests delayed by --slow-ms")
    add(
        "--slow-ms",
        type=_bounded(float, 0.0),
        default=0.0,
        metavar="MS",
        help="delay of the requests picked by --slow-rate",
    )
    add("--fault-token", action="store_true", help="also inject faults into /api/v3/token")
    add(
        "--max-line-size",
        type=_bounded(int, 1024),
        default=262_144,
        metavar="BYTES",
        help="longest request line accepted (default: %(default)s)",
    )
    add("-v", "--verbose", action="store_true", help="debug logging")
    return parser


def config_from_args(args: argparse.Namespace) -> SimConfig:
    """Build the `SimConfig` the parsed arguments describe."""
    faults = FaultConfig(
        error_rate=args.error_rate,
        error_status=args.error_status,
        retry_after=args.retry_after,
        drop_rate=args.drop_rate,
        close_after_response=args.close_after_response,
        slow_rate=args.slow_rate,
        slow_ms=args.slow_ms,
        include_token=args.fault_token,
    )
    return SimConfig(
        host=args.host,
        port=args.port,
        jobs=args.jobs,
        seed=args.seed,
        users=dict(args.user) if args.user else {"demo": "demo"},
        token_ttl=args.token_ttl,
        latency_ms=args.latency,
        tls=args.tls,
        unknown_job=args.unknown_job,
        time_scale=args.time_scale,
        accept_bearer=not args.no_bearer,
        reject_query=args.reject_query,
        id_lists=args.id_lists,
        capacity=args.capacity,
        faults=faults,
        start_time=args.start_time,
        max_line_size=args.max_line_size,
    )


async def _serve(config: SimConfig, ca_out: Path | None) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    async with Simulator(config) as sim:
        if ca_out is not None:
            sim.write_ca(ca_out)
            logger.info("wrote CA certificate to %s", ca_out)
        sys.stdout.write(sim.url + "\n")
        sys.stdout.flush()
        await stop.wait()
        logger.info("signal received, stopping")


def main(argv: Sequence[str] | None = None) -> int:
    """Run the simulator until SIGINT or SIGTERM; return the exit code."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.ca_out is not None and not args.tls:
        parser.error("--ca-out needs --tls")
    try:
        config = config_from_args(args)
    except (ValueError, TypeError) as exc:
        parser.error(str(exc))
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        stream=sys.stderr,
        format="ncinfo-sim: %(levelname)s %(message)s",
    )
    if not args.user:
        # Documented default so a fresh checkout can log in (README, `--user`).
        logger.info("no --user given: accepting the default user demo:demo")
    else:
        logger.info("accepting users: %s", ", ".join(name for name, _ in args.user))
    try:
        import uvloop
    except ImportError:
        loop_factory = None
    else:
        loop_factory = uvloop.new_event_loop
    try:
        with asyncio.Runner(loop_factory=loop_factory) as runner:
            runner.run(_serve(config, args.ca_out))
    except OSError as exc:
        logger.error("cannot serve on %s port %d: %s", config.host, config.port, exc)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
