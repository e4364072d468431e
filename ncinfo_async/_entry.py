"""The edge of the ``ncinfo`` process: a Ctrl-C during start-up, output that cannot be written.

Kept to the standard library: it is the console script's target (``main``), and wraps the
whole command, imports included.

Python ignores SIGPIPE, so writing to a closed pipe (``ncinfo ... | head -1``) raises
``BrokenPipeError``; SIGPIPE is deliberately not set back to its default action, which would
also kill the process when a *socket* write meets a closed connection, a normal event the
client retries (Python's ``signal`` documentation, "Note on SIGPIPE").
"""

from __future__ import annotations

import errno
import os
import sys

from ._exitcodes import EXIT_BROKEN_PIPE, EXIT_SIGINT, EXIT_USAGE

# Not `typing.TYPE_CHECKING`: this module runs before everything else, so it imports little.
TYPE_CHECKING = False
if TYPE_CHECKING:
    from collections.abc import Callable
    from typing import Final

__all__ = ["guarded", "main", "output_error"]

#: Errors of a write to stdout that are the output's fault, not the program's.
_OUTPUT_ERRNOS: Final = frozenset({errno.EPIPE, errno.ENOSPC, errno.EDQUOT, errno.EFBIG, errno.EIO})


def output_error(exc: BaseException) -> OSError | None:
    """The output error behind ``exc``, also when task groups wrapped it; else None."""
    if isinstance(exc, OSError) and exc.errno in _OUTPUT_ERRNOS:
        return exc
    if isinstance(exc, BaseExceptionGroup):
        for inner in exc.exceptions:
            if (found := output_error(inner)) is not None:
                return found
    return None


def _silence_stdout() -> None:
    """Point stdout at /dev/null: the interpreter's final flush would fail again."""
    with open(os.devnull, "wb") as devnull:
        os.dup2(devnull.fileno(), sys.stdout.fileno())


def guarded(run: Callable[[], int]) -> int:
    """``run()``'s exit status, its last output flushed; never a traceback for the cases above.

    A closed pipe ends the run quietly with 141 (128 + SIGPIPE, what a shell reports for a C
    filter killed by it); any other write error (a full disk) is one line and exit 2; a
    KeyboardInterrupt before the run's own handlers are in place (imports) is exit 130.
    """
    try:
        status = run()
        sys.stdout.flush()
    except KeyboardInterrupt:
        return EXIT_SIGINT
    except BaseException as exc:
        found = output_error(exc)
        if found is None:
            raise
        _silence_stdout()
        if found.errno == errno.EPIPE:
            return EXIT_BROKEN_PIPE
        try:
            sys.stderr.write(f"ncinfo: error: cannot write output: {found.strerror}\n")
            sys.stderr.flush()
        except OSError:
            pass  # stderr is gone too: the status still says it
        return EXIT_USAGE
    return status


def main() -> int:
    """The ``ncinfo`` console script: guarded from before its first heavy import on.

    The script's own ``from ncinfo_async._entry import main`` loads only this module and the
    package's lazy ``__init__``; everything else is imported inside ``guarded``.
    """

    def run() -> int:
        from ._cli import main as cli_main

        return cli_main()

    return guarded(run)
