"""How every package turns an exception into the one line a user reads."""

from __future__ import annotations

import re

# Characters that would break a line or drive the terminal: C0/C1 controls, DEL, line and paragraph separators.
_CONTROL = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")


def first_line(exc: BaseException) -> str:
    """The first line of an exception's message, or its type name when it has none."""
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def printable(text: str) -> str:
    """``text`` kept on one line: control characters (a newline in an entry name, a terminal escape) are
    shown escaped (``\\n``, ``\\x1b``), so a name can neither split an error line nor drive the terminal."""
    return _CONTROL.sub(lambda m: m.group().encode("unicode_escape").decode("ascii"), text)
