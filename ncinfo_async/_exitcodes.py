"""The exit statuses of ``ncinfo``, documented in its ``--help`` and the README."""

from __future__ import annotations

# Not `typing.TYPE_CHECKING`: the console script imports this module before anything else.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from typing import Final

EXIT_OK: Final = 0
#: Some IDs were not found or failed.
EXIT_FAILED: Final = 1
#: Usage, configuration, authentication or connection error: nothing reliable was inspected.
EXIT_USAGE: Final = 2
#: ``--fail-on`` matched: some job is in a status the caller treats as failure.
EXIT_FAIL_ON: Final = 3
#: ``--wait-timeout`` passed with some jobs still unfinished.
EXIT_WAIT_TIMEOUT: Final = 4
#: Interrupted by SIGINT (128 + 2) or terminated by SIGTERM (128 + 15).
EXIT_SIGINT: Final = 130
EXIT_SIGTERM: Final = 143
#: Standard output is a pipe whose reader went away (128 + SIGPIPE): ended quietly.
EXIT_BROKEN_PIPE: Final = 141


def exit_status(
    *,
    signal_exit: int | None = None,
    run_error: bool = False,
    fail_on: bool = False,
    unfinished: bool = False,
    missing: bool = False,
) -> int:
    """The exit status of a run from what happened in it: the first that applies.

    Order (README, ``ncinfo --help``): a signal (130/143), then a run-level error (2), then
    a ``--fail-on`` match (3), then ``--wait-timeout`` with unfinished jobs (4), then IDs
    not found or failed (1), else 0.

    Args:
        signal_exit: 130 or 143 when SIGINT or SIGTERM stopped the run, else None.
        run_error: a usage, configuration, authentication or connection error.
        fail_on: some job is in a ``--fail-on`` status.
        unfinished: ``--wait-timeout`` passed with some jobs still unfinished.
        missing: some IDs were not found or failed.
    """
    if signal_exit is not None:
        return signal_exit
    if run_error:
        return EXIT_USAGE
    if fail_on:
        return EXIT_FAIL_ON
    if unfinished:
        return EXIT_WAIT_TIMEOUT
    return EXIT_FAILED if missing else EXIT_OK
