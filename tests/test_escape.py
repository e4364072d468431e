"""Tier 1: escaping untrusted text for a terminal, and the process edge's pure decisions."""

from __future__ import annotations

import errno

import pytest
from hypothesis import given
from hypothesis import strategies as st

from ncinfo_async._entry import guarded, output_error
from ncinfo_async._escape import UNSAFE, escape_text


@pytest.mark.parametrize(
    ("raw", "shown"),
    [
        ("plain text, é ☃ 日本", "plain text, é ☃ 日本"),
        ("\x1b]0;title\x07", "\\x1b]0;title\\x07"),
        ("\x1b[31mred\x1b[0m", "\\x1b[31mred\\x1b[0m"),
        ("a\r\nncinfo: job 9: forged", "a\\r\\nncinfo: job 9: forged"),
        ("tab\there", "tab\\there"),
        ("\x00\x7f", "\\x00\\x7f"),
        ("\x9b2J\x85", "\\x9b2J\\x85"),
        ("abc\u202edcba\u202c", "abc\\u202edcba\\u202c"),
        ("\u2066\u2067\u2068\u2069\u202a", "\\u2066\\u2067\\u2068\\u2069\\u202a"),
        ("already \\x1b escaped", "already \\x1b escaped"),
        ("\u200f\u00a0\u2028", "\u200f\u00a0\u2028"),
    ],
    ids=[
        "printable",
        "osc-title",
        "sgr",
        "cr-lf-forged-line",
        "tab",
        "nul-del",
        "c1",
        "bidi-override",
        "bidi-isolates",
        "backslashes-kept",
        "other-format-chars-kept",
    ],
)
def test_escape_text_table(raw: str, shown: str) -> None:
    """Each control and bidi override is shown as its escape; everything else is untouched."""
    assert escape_text(raw) == shown


def test_unsafe_set_is_c0_del_c1_and_bidi_controls() -> None:
    """UNSAFE holds exactly the 32 C0, DEL, 32 C1 and 9 bidi embedding/override/isolate codes."""
    codes = {ord(char) for char in UNSAFE}
    expected = {
        *range(0x20),
        0x7F,
        *range(0x80, 0xA0),
        *range(0x202A, 0x202F),
        *range(0x2066, 0x206A),
    }
    assert codes == expected


@given(st.text())
def test_escaped_text_holds_no_unsafe_character(text: str) -> None:
    """Whatever the input, the output has no control or bidi character, and escaping is stable."""
    shown = escape_text(text)
    assert not UNSAFE.intersection(shown)
    assert escape_text(shown) == shown


@given(st.text(alphabet=st.characters(exclude_characters=sorted(UNSAFE))))
def test_escape_is_identity_on_printable_text(text: str) -> None:
    """Text without unsafe characters (backslashes included) comes back unchanged."""
    assert escape_text(text) == text


def test_output_error_is_found_inside_task_group_wrappers() -> None:
    """A closed pipe or full disk is found through nested exception groups; others are not."""
    pipe = BrokenPipeError(errno.EPIPE, "Broken pipe")
    full = OSError(errno.ENOSPC, "No space left on device")
    nested = BaseExceptionGroup("outer", [ValueError("x"), ExceptionGroup("inner", [full])])
    assert output_error(pipe) is pipe
    assert output_error(nested) is full
    assert output_error(OSError(errno.ECONNRESET, "reset")) is None
    assert output_error(ExceptionGroup("g", [ValueError("x")])) is None


def _raise(exc: BaseException) -> int:
    raise exc


def test_guarded_maps_keyboard_interrupt_to_130() -> None:
    """A KeyboardInterrupt before the run's own handlers exist is exit 130, not a traceback."""
    assert guarded(lambda: _raise(KeyboardInterrupt())) == 130


def test_guarded_lets_other_errors_through() -> None:
    """An error that is not about the output is not disguised as one."""
    with pytest.raises(ValueError, match="bug"):
        guarded(lambda: _raise(ValueError("bug")))
