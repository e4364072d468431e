"""Accelerator's NC job statuses and checking names against them: pure, no I/O.

A typo in ``--fail-on Faild`` would otherwise turn a CI check off without a word, so every
status name the user gives is checked here, and every unknown name gets the closest valid one.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Final

from ._exceptions import ConfigError

__all__ = ["NC_STATUSES", "closest", "parse_statuses"]

#: The values of ``STATUSNC`` (REST ref §4.3, Accelerator's job status table), in the order
#: a job normally goes through them.
NC_STATUSES: Final = (
    "Idle",
    "Queued",
    "Running",
    "Done",
    "Failed",
    "Transfer",
    "Suspended",
    "Sleeping",
    "Withdrawn",
)
_BY_LOWER: Final = {name.lower(): name for name in NC_STATUSES}


def closest(name: str, candidates: Iterable[str]) -> str | None:
    """The candidate most like ``name`` ignoring case (difflib), or None when none is close."""
    import difflib  # only a typo needs it: kept off the start-up of every run

    by_lower = {candidate.lower(): candidate for candidate in candidates}
    match = difflib.get_close_matches(name.lower(), list(by_lower), n=1, cutoff=0.6)
    return by_lower[match[0]] if match else None


def parse_statuses(text: str, option: str) -> list[str]:
    """The NC statuses in a comma list, any case, spelled as Accelerator spells them.

    Raises:
        ConfigError: a name that is not an NC status (naming the valid ones and the
            closest), or an empty list.
    """
    names = [part.strip() for part in text.split(",") if part.strip()]
    if not names:
        raise ConfigError(f"{option} needs at least one NC status: {', '.join(NC_STATUSES)}")
    statuses: list[str] = []
    for name in names:
        status = _BY_LOWER.get(name.lower())
        if status is None:
            guess = closest(name, NC_STATUSES)
            hint = f" (did you mean {guess}?)" if guess else ""
            raise ConfigError(
                f"{option}: unknown NC status {name!r}{hint}; valid: {', '.join(NC_STATUSES)}"
            )
        statuses.append(status)
    return list(dict.fromkeys(statuses))
