"""Job IDs from arguments and from ``nc list`` / ``nc run`` output: pure parsing, no I/O.

Accelerator prints job IDs zero-padded to nine digits (``000001138``) and the REST API accepts
them padded or not (REST ref §4.1, §5.3).  The column layout of ``nc list`` is not documented,
so a line is read by its first token: a number is a job ID, a first line of words is a header,
a line of dashes is a rule, ``#`` starts a comment; anything else is reported as malformed.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final

from ._exceptions import InputError

#: Accelerator IDs fit in 9-10 digits; 18 digits keeps every valid ID within a signed
#: 64-bit integer and rejects absurd tokens early.
MAX_ID_DIGITS: Final = 18
#: A line longer than this is not ``nc list`` output; it is reported, not parsed.
MAX_LINE_BYTES: Final = 4096
#: IDs below this have at most ``MAX_ID_DIGITS`` significant digits.
_ID_LIMIT: Final = 10**MAX_ID_DIGITS

_SUBMITTED = re.compile(r"^Job <(\d+)> is submitted\b")
_RULE = re.compile(r"^[\s\-=+|_~*]+$")


def parse_job_id(token: str) -> int:
    """Parse one job ID as typed by a user: decimal digits, optionally zero-padded.

    Raises:
        InputError: the token is not a positive integer of at most 18 digits.
    """
    text = token.strip()
    if not text.isascii() or not text.isdigit():
        raise InputError(f"not a job ID (expected digits): {_show(text)}")
    if len(text.lstrip("0")) > MAX_ID_DIGITS:
        raise InputError(f"job ID too long ({len(text)} digits): {_show(text)}")
    value = int(text)
    if value == 0:
        raise InputError("job ID 0 is not a job")
    return value


def _show(text: str) -> str:
    """Quote a bad token for a message, shortened so one huge line cannot flood stderr."""
    return repr(text if len(text) <= 40 else text[:37] + "...")


@dataclass(frozen=True, slots=True)
class Malformed:
    """A line that holds no job ID and is not a header, rule, comment or blank.

    Attributes:
        line_number: 1-based position in the input.
        reason: what is wrong with it, safe to print.
    """

    line_number: int
    reason: str


class LineParser:
    """Reads ``nc list`` / ``nc run`` output one line at a time.

    The parser is stateful only to tell a header (the first non-blank line, made of words)
    from a malformed line later on.
    """

    def __init__(self) -> None:
        self.line_number = 0
        self._seen_content = False

    def feed(self, raw: bytes) -> int | Malformed | None:
        """Parse one raw line (without or with its newline).

        Returns:
            the job ID, a ``Malformed`` record, or None for a line to skip.
        """
        self.line_number += 1
        if len(raw) > MAX_LINE_BYTES:
            return Malformed(self.line_number, f"line longer than {MAX_LINE_BYTES} bytes")
        # The common case, a bare ID (padded or not), read without decoding: ``bytes.isdigit``
        # is ASCII digits only, as ``parse_job_id`` requires; the slow path says the same.
        bare = raw.strip()
        if bare.isdigit():
            value = int(bare)  # at most MAX_LINE_BYTES digits: within int()'s digit limit
            if 0 < value < _ID_LIMIT:
                self._seen_content = True
                return value
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeDecodeError:
            return Malformed(self.line_number, "line is not valid UTF-8")
        if line.isascii() and line.isdigit():  # digits the fast path left: 0, or too long
            self._seen_content = True
            try:
                return parse_job_id(line)
            except InputError as exc:
                return Malformed(self.line_number, exc.message)
        if not line or line.startswith("#") or _RULE.match(line):
            return None
        first_content = not self._seen_content
        self._seen_content = True
        submitted = _SUBMITTED.match(line)
        token = submitted.group(1) if submitted else line.split(None, 1)[0]
        try:
            return parse_job_id(token)
        except InputError as exc:
            if first_content and _looks_like_header(line):
                return None
            return Malformed(self.line_number, exc.message)


def _looks_like_header(line: str) -> bool:
    """A header is made of words only (``ID STATUS COMMAND``): no digits at all."""
    return not any(char.isdigit() for char in line) and line[0].isalpha()
