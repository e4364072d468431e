"""The ``ncinfo`` command line: parse, build settings, run, return an exit code.

Kept free of heavy imports: ``ncinfo --help`` and ``--version`` never import aiohttp.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from typing import Any, NoReturn

from ._exceptions import ConfigError
from ._render import FORMATS
from ._statuses import parse_statuses
from ._version import __version__

__all__ = ["UsageParser", "build_parser", "check_options", "main", "option_guess"]

DESCRIPTION = """\
Inspect Altair Accelerator (NetworkComputer) jobs over REST API v3, many at once.

Job IDs come from the arguments, or from standard input when there are none (or '-'):
'nc list' lines (the ID first, padded or not) and 'nc run' lines ('Job <000001138> is
submitted') are understood; blank lines, headers and '#' comments are skipped."""

EPILOG = """\
environment:
  NC_URL            server URL (or --url; when neither is set and an 'nc' command is on
                    PATH, its 'nc cmd vovbrowser' answer is used)
  NC_USER           user name (else USER)
  NC_PASSWORD       password (else --password-file, else a prompt on the terminal)
  NC_CACERT         CA bundle to verify the server with (or --cacert)
  NCINFO_CACHE_DIR  where tokens are cached (default: the user's cache dir, ncinfo/)

exit status (the first that applies, in this order):
  130  interrupted (SIGINT); 143 terminated (SIGTERM)
  2    usage, configuration, authentication or connection error (also a --fields name
       no answer carried, with --strict); output that cannot be written (a full disk)
  3    --fail-on matched a job's status
  4    --wait-timeout passed with jobs still unfinished
  1    some IDs were not found or failed (each is reported on stderr)
  0    every job was found
  141  stdout is a pipe whose reader left (ncinfo ... | head -1): quiet stop

short options: -o --format, -f --fields, -s --summary, -u --user, -c --concurrency,
  -w --wait, -q --quiet, -v --verbose (flags win over environment variables)

examples:
  ncinfo 1138 1143
  nc list | ncinfo --format table
  seq 1 5000 | ncinfo --format ndjson > jobs.ndjson
  seq 1 20000 | ncinfo --format csv --fields id,statusnc   (batched queries)
  ncinfo -w --wait-timeout 3600 --fail-on Failed 1138 1143   (CI: wait, fail if any failed)
  ncinfo --where 'jobname~regress_42' --wait --fail-on Failed --format junit > report.xml
  ncinfo --where 'statusnc==Failed' --format markdown >> "$GITHUB_STEP_SUMMARY"
  ncinfo demo          (an in-process simulator, no server needed)"""


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a whole number: {text!r}") from None
    if value <= 0:
        raise argparse.ArgumentTypeError(f"must be a positive integer, got {text}")
    return value


def _positive_float(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a number: {text!r}") from None
    if not value > 0:
        raise argparse.ArgumentTypeError(f"must be a positive number, got {text}")
    return value


class UsageParser(argparse.ArgumentParser):
    """An argument parser whose usage errors are one line and a pointer to ``--help``.

    argparse's own prints the whole usage (13 lines here) before the one line that matters.
    Options must be spelled whole: argparse's default takes any unique prefix, so a typo
    such as ``--max-rat 5`` would run as ``--max-rate 5``, and a CI script that relies on
    an abbreviation changes meaning the day an option sharing that prefix is added.  An
    unknown option is named with the closest real one instead.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        kwargs.setdefault("allow_abbrev", False)
        super().__init__(*args, **kwargs)

    def error(self, message: str) -> NoReturn:
        """Print ``<prog>: error: <message>`` and the hint, then exit 2."""
        if message.startswith(_UNRECOGNIZED):
            message += self._guesses(message[len(_UNRECOGNIZED) :].split())
        self.exit(2, f"{self.prog}: error: {message}\ntry '{self.prog} --help'\n")

    def _guesses(self, words: Sequence[str]) -> str:
        """`` (did you mean --x?)`` for each unknown long option that resembles a real one."""
        known = [name for name in self._option_string_actions if name.startswith("--")]
        guesses: dict[str, str] = {}
        for word in words:
            name = word.partition("=")[0]
            guess = option_guess(name, known) if name.startswith("--") else None
            if guess is not None:
                guesses[name] = guess
        if len(guesses) == 1:
            return f" (did you mean {next(iter(guesses.values()))}?)"
        hints = ", ".join(f"{guess} for {name}" for name, guess in guesses.items())
        return f" (did you mean {hints}?)" if hints else ""


_UNRECOGNIZED = "unrecognized arguments: "


def option_guess(name: str, known: Sequence[str]) -> str | None:
    """The option ``name`` most likely meant: the one it is a unique prefix of, else the
    closest spelling (difflib), else None."""
    starting = [option for option in known if option.startswith(name)]
    if len(starting) == 1:
        return starting[0]
    from ._statuses import closest

    # Compared without the dashes every option shares, which would make any two look alike.
    guess = closest(name.removeprefix("--"), [option[2:] for option in known])
    return None if guess is None else f"--{guess}"


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``ncinfo``."""
    parser = UsageParser(
        prog="ncinfo",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "job_ids", nargs="*", metavar="JOBID", help="job IDs; none or '-' reads stdin"
    )
    parser.add_argument("--version", action="version", version=f"%(prog)s {__version__}")

    server = parser.add_argument_group("server and credentials")
    server.add_argument("--url", help="server URL (default: $NC_URL)")
    server.add_argument("-u", "--user", help="user name (default: $NC_USER, else $USER)")
    server.add_argument("--password-file", metavar="PATH", help="read the password from this file")
    server.add_argument("--cacert", metavar="PATH", help="verify HTTPS against this CA bundle")
    server.add_argument(
        "--insecure",
        action="store_true",
        help="do not verify the server certificate (self-signed servers only)",
    )

    output = parser.add_argument_group("output")
    output.add_argument(
        "-o",
        "--format",
        type=str.lower,
        choices=FORMATS,
        default="text",
        help="text (the nc_info.py layout), json, ndjson, csv, table, "
        "junit (JUnit XML for CI) or markdown (a CI summary)",
    )
    output.add_argument(
        "-f",
        "--fields",
        metavar="F1,F2",
        help="job fields to show, case-insensitive; '*' for all (text, json, ndjson); "
        "a field no answer carried is named at the end (an error with --strict)",
    )
    output.add_argument(
        "--order",
        choices=("input", "completion"),
        default="input",
        help="print in input order (default) or as answers arrive",
    )
    output.add_argument(
        "-s", "--summary", action="store_true", help="print counts per status at the end"
    )
    output.add_argument(
        "-q",
        "--quiet",
        action="store_true",
        help="no per-job errors, notices or wait status lines on stderr",
    )
    output.add_argument(
        "-v",
        "--verbose",
        action="count",
        default=0,
        help="log requests on stderr (credentials redacted); list every per-job error",
    )
    output.add_argument(
        "--progress",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="progress bar on stderr (default: when stderr is a terminal and without -q)",
    )

    tuning = parser.add_argument_group("speed, timeouts and retries")
    tuning.add_argument(
        "-c",
        "--concurrency",
        type=_positive_int,
        default=None,
        help="requests in flight and pooled connections (default: 32)",
    )
    tuning.add_argument(
        "--no-adapt",
        action="store_true",
        help="keep --concurrency requests in flight even when the server signals overload "
        "(default: halve them on 429, 503 or refused connections, grow back one at a time)",
    )
    tuning.add_argument(
        "--max-rate",
        type=_positive_float,
        default=None,
        metavar="N",
        help="start at most N requests per second, with at most N/20 in flight (default: no cap)",
    )
    tuning.add_argument(
        "--timeout",
        type=_positive_float,
        default=None,
        help="seconds of silence allowed while reading one answer (default: 30)",
    )
    tuning.add_argument(
        "--connect-timeout",
        type=_positive_float,
        default=None,
        help="seconds for one connect and TLS handshake (default: 10)",
    )
    tuning.add_argument(
        "--attempts",
        type=_positive_int,
        default=None,
        help="tries per request for connection errors, 429 and 5xx (default: 8)",
    )
    tuning.add_argument(
        "--job-budget",
        type=_positive_float,
        default=None,
        help="seconds one job may take across all its attempts (default: 120)",
    )
    tuning.add_argument(
        "--deadline",
        type=_positive_float,
        default=None,
        help="seconds for the whole run; unanswered jobs then time out",
    )
    tuning.add_argument(
        "--no-keepalive",
        action="store_true",
        help="open a new connection per request (for comparison only)",
    )
    tuning.add_argument(
        "--asyncio", action="store_true", help="use the plain asyncio loop, not uvloop"
    )

    select = parser.add_argument_group("selecting jobs by rule instead of ID")
    select.add_argument(
        "--where",
        metavar="RULE",
        help="the jobs an Accelerator selection rule selects, e.g. 'user==ci statusnc==Failed' "
        "(through /api/v3/query; not with job IDs)",
    )
    select.add_argument(
        "--page-size",
        metavar="N",
        type=_positive_int,
        default=None,
        help="jobs per /api/v3/query page with --where (default: 1000)",
    )

    checks = parser.add_argument_group("input checks")
    checks.add_argument(
        "--strict",
        action="store_true",
        help="any malformed input line is an error, before any request is sent; "
        "a --fields name no answer carried is an error too (exit 2)",
    )

    bulk = parser.add_argument_group("batches, waiting and CI checks")
    bulk.add_argument(
        "--batch",
        action=argparse.BooleanOptionalAction,
        default=None,
        help="--batch: always fetch through batched /api/v3/query requests; --no-batch: one "
        "/api/v3/jobs/<id> request per job (default: batches for many IDs, verified, falling "
        "back to one request per job if the server refuses or misreads them)",
    )
    bulk.add_argument(
        "--url-budget",
        type=_positive_int,
        default=None,
        help="longest batched query URL in bytes (default: 8000)",
    )
    bulk.add_argument(
        "-w",
        "--wait",
        action="store_true",
        help="poll until every job is finished (Idle and Suspended jobs are waited for too: "
        "give --wait-timeout); a status line on stderr after each poll, at least every minute",
    )
    bulk.add_argument(
        "--terminal",
        metavar="S1,S2",
        default=None,
        help="with --wait: NC statuses that count as finished (default: Done,Failed,Withdrawn)",
    )
    bulk.add_argument(
        "--poll-interval",
        type=_positive_float,
        default=None,
        help="with --wait: seconds between polls (default: 10, the server's cache time)",
    )
    bulk.add_argument(
        "--wait-timeout",
        type=_positive_float,
        default=None,
        help="with --wait: stop after this many seconds, with a last poll then "
        "(exit 4 if jobs are unfinished)",
    )
    bulk.add_argument(
        "--fail-on",
        metavar="S1,S2",
        default=None,
        help="exit 3 when any job is in one of these NC statuses (e.g. Failed)",
    )

    cache = parser.add_argument_group("token cache")
    cache.add_argument(
        "--no-token-cache",
        action="store_true",
        help="neither read nor write the cached token",
    )
    cache.add_argument(
        "--logout",
        action="store_true",
        help="remove the cached token for this server and user, then exit",
    )
    return parser


#: Options that mean something only while waiting, with the flag that names each.
_WAIT_ONLY = (
    ("wait_timeout", "--wait-timeout"),
    ("poll_interval", "--poll-interval"),
    ("terminal", "--terminal"),
)
_DEFAULT_TERMINAL = "Done,Failed,Withdrawn"
_DEFAULT_POLL_INTERVAL = 10.0


def check_options(options: argparse.Namespace) -> None:
    """Check what argparse cannot, and fill in the wait defaults.

    ``terminal`` and ``fail_on`` become lists of NC statuses spelled as Accelerator does.

    Raises:
        ConfigError: an unknown NC status, a wait-only option without ``--wait``, or
            ``--where`` with job IDs, or ``--page-size`` without it.
    """
    if options.where is not None:
        if options.job_ids:
            raise ConfigError("give job IDs or --where RULE, not both")
    elif options.page_size is not None:
        raise ConfigError("--page-size only applies with --where")
    if not options.wait:
        given = [flag for name, flag in _WAIT_ONLY if getattr(options, name) is not None]
        if given:
            raise ConfigError(f"{', '.join(given)} only applies with --wait")
    terminal = _DEFAULT_TERMINAL if options.terminal is None else options.terminal
    options.terminal = parse_statuses(terminal, "--terminal")
    if options.poll_interval is None:
        options.poll_interval = _DEFAULT_POLL_INTERVAL
    options.fail_on = (
        parse_statuses(options.fail_on, "--fail-on") if options.fail_on is not None else []
    )


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``ncinfo`` and return its exit status (see ``_entry.guarded`` for the edges)."""
    from ._entry import guarded

    return guarded(lambda: _main(list(sys.argv[1:] if argv is None else argv)))


def _main(args: list[str]) -> int:
    if args[:1] == ["demo"]:
        from ._demo import demo_main

        return demo_main(args[1:])
    parser = build_parser()
    options = parser.parse_args(args)
    try:
        check_options(options)
    except ConfigError as exc:
        parser.error(str(exc))
    from ._run import run_cli

    return run_cli(options, os.environ)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
