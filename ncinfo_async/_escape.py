"""Making untrusted text safe to print on a terminal: one pure function, no I/O.

Text from the server (error bodies, ``errormsg``, field values) may hold control characters
that move the cursor, recolour, retitle the window (OSC ``ESC ] 0 ; ... BEL``) or rewrite the
current line (CR), and bidirectional overrides that reorder what is shown ("Trojan Source",
CVE-2021-42574).  ``escape_text`` shows each as a Python-style escape (``\\x1b``, ``\\r``,
``\\u202e``), as git, less and ssh do with untrusted text; everything else is left as is.
"""

from __future__ import annotations

from typing import Final

__all__ = ["UNSAFE", "escape_text"]

_NAMED: Final = {"\t": "\\t", "\n": "\\n", "\r": "\\r"}

#: The characters ``escape_text`` replaces: C0 controls, DEL, C1 controls, bidi controls.
UNSAFE: Final = frozenset(
    [chr(c) for c in range(0x20)]
    + ["\x7f"]
    + [chr(c) for c in range(0x80, 0xA0)]
    + [chr(c) for c in range(0x202A, 0x202F)]
    + [chr(c) for c in range(0x2066, 0x206A)]
)

_TABLE: Final = {
    ord(char): _NAMED.get(char)
    or (f"\\x{ord(char):02x}" if ord(char) < 0x100 else f"\\u{ord(char):04x}")
    for char in UNSAFE
}


def escape_text(text: str) -> str:
    """``text`` with every character of ``UNSAFE`` shown as an escape; the rest unchanged.

    The result holds none of ``UNSAFE``, so escaping twice changes nothing more.
    """
    return text.translate(_TABLE)
