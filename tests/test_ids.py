"""Tier 1: job IDs from arguments and from real-looking ``nc list`` / ``nc run`` output."""

from __future__ import annotations

import pytest

from ncinfo_async._exceptions import InputError
from ncinfo_async._ids import MAX_LINE_BYTES, LineParser, Malformed, parse_job_id


@pytest.mark.parametrize(
    ("token", "expected"),
    [("1138", 1138), ("000001138", 1138), (" 42\n", 42), ("999999999999999999", 10**18 - 1)],
)
def test_job_ids_padded_or_not(token: str, expected: int) -> None:
    """IDs are decimal, zero-padded or not, as Accelerator prints them."""
    assert parse_job_id(token) == expected


@pytest.mark.parametrize(
    ("token", "fragment"),
    [
        ("0", "job ID 0"),
        ("000", "job ID 0"),
        ("-5", "expected digits"),
        ("12a", "expected digits"),
        ("1.5", "expected digits"),
        ("", "expected digits"),
        ("１２", "expected digits"),  # full-width digits are digits to str.isdigit, not to us
        ("1" * 19, "too long"),
        ("x" * 500, "..."),
    ],
)
def test_bad_job_ids_are_input_errors(token: str, fragment: str) -> None:
    """Anything but a positive decimal integer is refused with a short, quoted reason."""
    with pytest.raises(InputError, match=fragment) as info:
        parse_job_id(token)
    assert len(str(info.value)) < 120


LINES: list[tuple[bytes, int | Malformed | None]] = [
    (b"ID        STATUS   COMMAND\n", None),  # header (first line of words)
    (b"--------- -------- -------\n", None),  # rule
    (b"000001138 Running  vw sleep 123\n", 1138),
    (b"1143 Queued sleep 456\n", 1143),
    (b"\n", None),
    (b"   \t  \n", None),
    (b"# a comment\n", None),
    (b"Job <000001150> is submitted\n", 1150),
    (b"  000001151  Done\r\n", 1151),
    (b"Total: 4 jobs\n", Malformed(10, "not a job ID (expected digits): 'Total:'")),
    (b"abc\n", Malformed(11, "not a job ID (expected digits): 'abc'")),
    (b"\xff\xfe1138\n", Malformed(12, "line is not valid UTF-8")),
    (b"0 Done\n", Malformed(13, "job ID 0 is not a job")),
    (b"7" * (MAX_LINE_BYTES + 1), Malformed(14, f"line longer than {MAX_LINE_BYTES} bytes")),
    (b"1" * 19 + b"\n", Malformed(15, "job ID too long (19 digits): '1111111111111111111'")),
    (b"000000007", 7),  # last line without a newline
]


def test_line_parser_on_real_looking_input() -> None:
    """Headers, rules, blanks and comments are skipped; IDs kept; the rest reported by line."""
    parser = LineParser()
    assert [parser.feed(line) for line, _ in LINES] == [expected for _, expected in LINES]


def test_words_after_the_first_line_are_malformed() -> None:
    """Only the first content line may be a header; later word lines are reported."""
    parser = LineParser()
    assert parser.feed(b"12\n") == 12
    assert isinstance(parser.feed(b"STATUS\n"), Malformed)
    # A malformed ID of digits (0, or too long) is content too: no header may follow it.
    for first in (b"0\n", b"1" * 19 + b"\n"):
        parser = LineParser()
        assert isinstance(parser.feed(first), Malformed)
        assert isinstance(parser.feed(b"STATUS\n"), Malformed)


@pytest.mark.parametrize(
    "line",
    [b"1138\n", b"000001138\r\n", b"  42  \n", b"1138", b"9" * 18, b"0", b"0000\n", b"1" * 19,
     b"1" + b"0" * 18, b"0" * 30 + b"5", "\u0661\u0662".encode(), b"12a"],
)  # fmt: skip
def test_bare_id_lines_read_without_decoding_as_the_general_path(line: bytes) -> None:
    """A bare-digits line gets the same answer from the byte fast path as from parse_job_id."""
    try:
        expected: int | Malformed = parse_job_id(line.decode("utf-8", "replace"))
    except InputError as exc:
        expected = Malformed(1, exc.message)
    assert LineParser().feed(line) == expected
