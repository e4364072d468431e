"""The exit statuses of ``ncinfo``, documented in its ``--help`` and the README."""

from __future__ import annotations

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
