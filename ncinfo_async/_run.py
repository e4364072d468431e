"""What ``ncinfo`` does once its arguments are parsed: settings, the run, the exit status."""

from __future__ import annotations

import argparse
import logging
import signal
import sys
from collections.abc import AsyncIterable, AsyncIterator, Iterable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO

import anyio

from ._cli import EXIT_FAILED, EXIT_OK, EXIT_USAGE
from ._exceptions import ConfigError, ConnectError, InputError, NcInfoError
from ._fanout import FanOut, JobResult
from ._ids import LineParser, Malformed, parse_job_id
from ._input import MalformedLog, read_ids
from ._password import prompt_from_tty, read_password_file
from ._protocol import is_loopback_host
from ._render import Renderer, Summary, make_renderer
from ._settings import Settings

if TYPE_CHECKING:
    from ._client import Client

__all__ = ["Console", "Inspection", "run_cli"]

_SIGNAL_EXIT = {signal.SIGINT: 130, signal.SIGTERM: 143}


@dataclass(slots=True)
class Console:
    """Where the CLI writes: results to ``out``, errors and notices to ``err``."""

    out: TextIO = field(default_factory=lambda: sys.stdout)
    err: TextIO = field(default_factory=lambda: sys.stderr)
    quiet: bool = False

    def error(self, message: str) -> None:
        """An error that decides the exit status; printed even with ``-q``."""
        self.err.write(f"ncinfo: error: {message}\n")
        self.err.flush()

    def notice(self, message: str) -> None:
        """A warning or notice; silenced by ``-q``."""
        if not self.quiet:
            self.err.write(f"ncinfo: {message}\n")
            self.err.flush()


def build_settings(
    options: argparse.Namespace, environ: Mapping[str, str], console: Console
) -> Settings:
    """Flags over environment over defaults; the password is resolved later, lazily.

    Raises:
        ConfigError: a missing or invalid setting.
    """
    password = None
    if options.password_file:
        password = read_password_file(options.password_file, console.notice)
    settings = Settings.from_env(
        environ,
        url=options.url,
        user=options.user,
        password=password,
        cafile=options.cacert,
        insecure=options.insecure or None,
        concurrency=options.concurrency,
        keepalive=False if options.no_keepalive else None,
        connect_timeout=options.connect_timeout,
        read_timeout=options.timeout,
        attempts=options.attempts,
        job_budget=options.job_budget,
        deadline=options.deadline,
        order=options.order,
    )
    if settings.insecure:
        console.notice(
            "WARNING: TLS certificate verification is OFF (--insecure); anyone on the path "
            "can read your password and answers. Use --cacert with the server's CA instead."
        )
    if not settings.is_https and not is_loopback_host(settings.url):
        console.notice(
            f"WARNING: {settings.url} is plain http: the password crosses the network unencrypted"
        )
    return settings


def parse_fields(text: str | None, fmt: str) -> list[str] | None:
    """The ``--fields`` list; ``*`` means every field the server sends.

    Raises:
        ConfigError: an empty list, or ``*`` with a format that needs fixed columns.
    """
    if text is None:
        return None
    names = [name.strip().upper() for name in text.split(",") if name.strip()]
    if not names:
        raise ConfigError("--fields needs at least one field name")
    if names == ["*"]:
        if fmt in ("csv", "table"):
            raise ConfigError(
                "--fields '*' works with text, json and ndjson; name the columns for csv/table"
            )
        return None if fmt != "text" else ["*"]
    return names


def strict_ids(stream: Iterable[bytes]) -> list[int]:
    """Read every line first and refuse the run if any is malformed (``--strict``).

    Raises:
        InputError: naming the first malformed lines.
    """
    parser = LineParser()
    ids: list[int] = []
    bad: list[Malformed] = []
    for line in stream:
        parsed = parser.feed(line)
        if isinstance(parsed, Malformed):
            bad.append(parsed)
        elif parsed is not None:
            ids.append(parsed)
    if bad:
        shown = "; ".join(f"line {m.line_number}: {m.reason}" for m in bad[:5])
        raise InputError(f"{len(bad)} malformed input line(s), nothing sent: {shown}")
    return ids


async def _chain(first: int, rest: AsyncIterator[int]) -> AsyncIterator[int]:
    yield first
    async for job_id in rest:
        yield job_id


async def _as_async(ids: Iterable[int]) -> AsyncIterator[int]:
    for job_id in ids:
        yield job_id


def _use_uvloop(options: argparse.Namespace) -> bool:
    if options.asyncio:
        return False
    try:
        import uvloop  # noqa: F401
    except ImportError:
        return False
    return True


def run_cli(
    options: argparse.Namespace, environ: Mapping[str, str], console: Console | None = None
) -> int:
    """Run an inspection from parsed options; returns the exit status."""
    console = console or Console(quiet=options.quiet)
    if options.verbose:
        logging.basicConfig(
            stream=console.err,
            format="ncinfo: %(message)s",
            level=logging.DEBUG if options.verbose > 1 else logging.INFO,
        )
    malformed = MalformedLog()
    try:
        settings = build_settings(options, environ, console)
        fields = parse_fields(options.fields, options.format)
        ids: AsyncIterable[int]
        explicit = [arg for arg in options.job_ids if arg != "-"]
        if explicit:
            if "-" in options.job_ids:
                raise ConfigError("give job IDs as arguments or '-' for stdin, not both")
            ids = _as_async([parse_job_id(arg) for arg in explicit])
            total: int | None = len(explicit)
        elif options.strict:
            listed = strict_ids(sys.stdin.buffer)
            ids, total = _as_async(listed), len(listed)
        else:
            ids, total = read_ids(sys.stdin.buffer, malformed), None
    except NcInfoError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    renderer = make_renderer(options.format, fields)
    run = Inspection(
        settings,
        renderer,
        console,
        summary=options.summary,
        total=total,
        progress=options.progress,
        malformed=malformed,
    )
    return anyio.run(
        run.main, ids, backend="asyncio", backend_options={"use_uvloop": _use_uvloop(options)}
    )


class Inspection:
    """One run of the CLI: authenticate, fan out, render, settle the exit status."""

    def __init__(
        self,
        settings: Settings,
        renderer: Renderer,
        console: Console,
        *,
        summary: bool = False,
        total: int | None = None,
        progress: bool | None = None,
        malformed: MalformedLog | None = None,
    ) -> None:
        self.settings = settings
        self.renderer = renderer
        self.console = console
        self.summary = Summary()
        self.show_summary = summary
        self.total = total
        self.progress = progress
        self.malformed = malformed or MalformedLog()
        self.signal_exit: int | None = None
        self.connect_failures = 0

    async def main(self, ids: AsyncIterable[int]) -> int:
        """The whole run, with SIGINT/SIGTERM stopping it cleanly."""
        from ._client import Client

        status = EXIT_OK
        try:
            async with Client(self.settings, password=prompt_from_tty) as client:
                status = await self._inspect(client, ids)
        except NcInfoError as exc:
            self.console.error(str(exc))
            status = EXIT_USAGE
        report = self.malformed.report()
        if report:
            self.console.notice(report.removeprefix("ncinfo: ").rstrip("\n"))
        return self.signal_exit if self.signal_exit is not None else status

    async def _inspect(self, client: Client, ids: AsyncIterable[int]) -> int:
        iterator = aiter(ids)
        first = await anext(iterator, None)
        if first is None:
            self.console.error("no job IDs given (arguments or stdin)")
            return EXIT_USAGE
        # Authenticate before fanning out: a wrong password or an unreachable server is one
        # clear error, not one per job.
        await client.authenticate()
        fan = client.fan_out(_chain(first, iterator))
        async with anyio.create_task_group() as group:
            group.start_soon(self._watch_signals, fan, group.cancel_scope)
            await self._render(fan)
            group.cancel_scope.cancel()
        self.summary.duplicates = fan.duplicates
        self.summary.malformed = self.malformed.count
        if self.summary.requested and self.connect_failures == self.summary.requested:
            self.console.error(f"could not reach {self.settings.url}")
            return EXIT_USAGE
        return EXIT_FAILED if self.summary.found < self.summary.requested else EXIT_OK

    async def _render(self, fan: FanOut) -> None:
        out = self.console.out
        bar = self._progress_bar()
        try:
            out.write(self.renderer.start())
            async with fan.run() as results:
                async for result in results:
                    self._account(result)
                    out.write(self.renderer.result(result))
                    if bar is not None:
                        bar.update()
            self.summary.duplicates = fan.duplicates
            self.summary.malformed = self.malformed.count
            tail = self.renderer.finish(self.summary if self.show_summary else None)
            out.write(tail)
            if self.show_summary and not tail and not self.console.quiet:
                self.console.err.write(self.summary.lines())
            out.flush()
        finally:
            if bar is not None:
                bar.close()

    def _account(self, result: JobResult) -> None:
        self.summary.add(result)
        error = result.error
        if error is None:
            return
        if isinstance(error, ConnectError):
            self.connect_failures += 1
        if not self.console.quiet:
            self.console.err.write(f"ncinfo: job {result.job_id}: {error.message}\n")

    def _progress_bar(self) -> _Progress | None:
        show = self.progress if self.progress is not None else self.console.err.isatty()
        if not show or self.console.quiet:
            return None
        from tqdm import tqdm

        # delay: only runs longer than a second get a bar at all.
        bar: _Progress = tqdm(
            total=self.total,
            file=self.console.err,
            unit="job",
            delay=1.0,
            dynamic_ncols=True,
            leave=False,
        )
        return bar

    async def _watch_signals(self, fan: FanOut, scope: anyio.CancelScope) -> None:
        """First SIGINT/SIGTERM: stop and flush what arrived; a second one: stop at once."""
        with anyio.open_signal_receiver(signal.SIGINT, signal.SIGTERM) as signals:
            async for signum in signals:
                if self.signal_exit is None:
                    name = signal.Signals(signum).name
                    self.signal_exit = _SIGNAL_EXIT.get(signal.Signals(signum), 130)
                    fan.stop(f"interrupted by {name}")
                    self.console.notice(
                        f"{name}: stopping; unanswered jobs are reported as interrupted"
                    )
                else:
                    scope.cancel()


class _Progress(Protocol):
    """The part of tqdm's progress bar used here."""

    def update(self, n: float = 1) -> bool | None: ...

    def close(self) -> None: ...
