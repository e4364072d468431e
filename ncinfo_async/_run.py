"""What ``ncinfo`` does once its arguments are parsed: settings, the run, the exit status."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections.abc import AsyncIterable, AsyncIterator, Awaitable, Callable, Mapping
from typing import TYPE_CHECKING, TypeVarTuple, Unpack

import anyio

from ._exceptions import ConfigError, InputError, NcInfoError
from ._exitcodes import EXIT_OK, EXIT_USAGE
from ._ids import LineParser, parse_job_id
from ._input import InputIds, LineReader, MalformedLog, parse_lines, read_ids, restore_blocking
from ._inspection import Console, Inspection, Plan
from ._password import read_password_file
from ._protocol import SEED_FIELDS, Token, is_loopback_host
from ._render import make_renderer
from ._settings import Settings
from ._stderr import StderrStream
from ._where import DEFAULT_PAGE_SIZE, check_rule

if TYPE_CHECKING:
    from ._tokencache import TokenCache

Args = TypeVarTuple("Args")

__all__ = ["build_settings", "parse_fields", "run_async", "run_cli", "strict_ids"]


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
    url = options.url
    if not url and not environ.get("NC_URL"):
        # The seed's users export NC_URL from `nc cmd vovbrowser`; ask it ourselves.
        from ._discover import discover_url

        url = discover_url(path=environ.get("PATH"))
    settings = Settings.from_env(
        environ,
        url=url,
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
        url_budget=options.url_budget,
        adapt=False if options.no_adapt else None,
        max_rate=options.max_rate,
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
        if fmt in ("csv", "table", "markdown"):
            raise ConfigError(
                f"--fields '*' works with text, json, ndjson and junit; name the columns for {fmt}"
            )
        return None if fmt != "text" else ["*"]
    return names


def strict_ids(fd: int) -> list[int]:
    """Read every line first and refuse the run if any is malformed (``--strict``).

    Raises:
        InputError: naming the first malformed lines.
    """
    parser = LineParser()
    malformed = MalformedLog()
    ids: list[int] = []
    reader = LineReader(fd)
    while lines := reader.read():
        ids.extend(parse_lines(lines, parser, malformed))
    if malformed.count:
        raise InputError(f"nothing sent: {malformed.describe()}")
    return ids


async def _as_chunks(ids: list[int]) -> AsyncIterator[list[int]]:
    """The IDs as one chunk (none when there are none), as the run reads its input."""
    if ids:
        yield ids


def run_async(
    func: Callable[[Unpack[Args]], Awaitable[int]], *args: *Args, force_asyncio: bool
) -> int:
    """Run ``func`` on uvloop when it is installed (anyio's ``use_uvloop``), else on asyncio."""
    use_uvloop = not force_asyncio
    if use_uvloop:
        try:
            import uvloop  # noqa: F401
        except ImportError:
            use_uvloop = False
    status: int = anyio.run(
        func, *args, backend="asyncio", backend_options={"use_uvloop": use_uvloop}
    )
    return status


def _select(fields: list[str] | None, fmt: str) -> list[str]:
    """The fields a batched query asks for: what is shown, plus STATUSNC to wait and check."""
    if fields is None:
        if fmt in ("json", "ndjson", "junit"):
            return ["*"]
        return [*SEED_FIELDS, "JOBNAME"] if fmt == "markdown" else [*SEED_FIELDS]
    if "*" in fields:
        return ["*"]
    # junit names its testcases' classes after USER and JOBNAME and times them by DURATION.
    extra = ["USER", "JOBNAME", "DURATION"] if fmt == "junit" else []
    return list(dict.fromkeys([*fields, "STATUSNC", *extra]))


def _asked_fields(text: str | None) -> list[str]:
    """The ``--fields`` names as spelled (for messages), without ``*``."""
    if text is None:
        return []
    return [name.strip() for name in text.split(",") if name.strip() and name.strip() != "*"]


def run_cli(
    options: argparse.Namespace, environ: Mapping[str, str], console: Console | None = None
) -> int:
    """Run an inspection from parsed options; returns the exit status."""
    console = console or Console(quiet=options.quiet)
    if options.verbose:
        logging.basicConfig(
            # Through the console, so log lines go through the progress bar when it shows.
            stream=StderrStream(console.write_err),
            format="ncinfo: %(message)s",
            level=logging.DEBUG if options.verbose > 1 else logging.INFO,
        )
    malformed = MalformedLog()
    try:
        settings = build_settings(options, environ, console)
        cache = _token_cache(options, environ, console)
        if options.logout:
            removed = cache is not None and cache.remove(settings.url, settings.user)
            console.notice("cached token removed" if removed else "no cached token to remove")
            return EXIT_OK
        fields = parse_fields(options.fields, options.format)
        ids: InputIds | AsyncIterable[list[int]]
        explicit = [arg for arg in options.job_ids if arg != "-"]
        where = None
        if options.where is not None:
            where = check_rule(options.where)
            ids, total = _as_chunks([]), None
        elif explicit:
            if "-" in options.job_ids:
                raise ConfigError("give job IDs as arguments or '-' for stdin, not both")
            listed = [parse_job_id(arg) for arg in explicit]
            ids, total = _as_chunks(listed), len(listed)
        else:
            if os.isatty(sys.stdin.fileno()):
                # Otherwise `ncinfo` alone on a terminal seems to hang.
                console.notice("reading job IDs from the terminal; end with Ctrl-D")
            if options.strict:
                listed = strict_ids(sys.stdin.fileno())
                ids, total = _as_chunks(listed), len(listed)
            else:
                ids, total = read_ids(sys.stdin.fileno(), malformed), None
    except NcInfoError as exc:
        console.error(str(exc))
        return EXIT_USAGE
    plan = Plan(
        summary=options.summary,
        total=total,
        progress=options.progress,
        batch=options.batch,
        wait=options.wait,
        terminal=options.terminal,
        poll_interval=options.poll_interval,
        wait_timeout=options.wait_timeout,
        fail_on=options.fail_on,
        select=_select(fields, options.format),
        fields=_asked_fields(options.fields),
        strict=options.strict,
        all_errors=options.verbose > 0,
        where=where,
        page_size=options.page_size or DEFAULT_PAGE_SIZE,
    )
    token = None
    if cache is not None:
        token = cache.load(settings.url, settings.user, margin=settings.refresh_margin)

    def save(new_token: Token) -> None:
        if cache is not None and new_token is not token:
            cache.save(settings.url, settings.user, new_token)

    kind = Inspection
    if where is not None:
        from ._where_run import RuleInspection

        kind = RuleInspection
    run = kind(
        settings,
        make_renderer(options.format, fields, fail_on=options.fail_on),
        console,
        plan,
        malformed=malformed,
        token=token,
        on_token=save,
        on_token_refused=lambda: cache is not None and cache.remove(settings.url, settings.user),
    )
    try:
        return run_async(run.main, ids, force_asyncio=options.asyncio)
    finally:
        restore_blocking()  # stdin's flags, if the run ended before its reader did


def _token_cache(
    options: argparse.Namespace, environ: Mapping[str, str], console: Console
) -> TokenCache | None:
    """The token cache ($NCINFO_CACHE_DIR, else the user's cache directory), or None."""
    if options.no_token_cache:
        return None
    from ._tokencache import TokenCache

    return TokenCache.from_env(environ, warn=console.notice)
