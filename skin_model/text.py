"""The one escaping path for text that did not come from our code: file names, notes, sources, typed paths.

Markdown (every page) gets :func:`literal`: a code span, never parsed. Plain-text sinks (the terminal, the
PDF, CSV cells shown in a table) get :func:`printable`: control and bidirectional-override characters
replaced, so a note cannot clear a terminal (``ESC[2J``) or reverse the order of what is printed.
"""

from __future__ import annotations

import re
import unicodedata

REPLACEMENT = "\ufffd"  # what a removed control character reads as: visible, never silent


def literal(text: object) -> str:
    """Text exactly as given, for markdown (the card, the pages' errors and captions): a code span, never parsed.

    File names, typed paths and messages quoting them come from users. As markdown, a name like
    ``![t](http://host/x.png)`` becomes an image the browser fetches, a link or bold text; escaping
    every mark is not enough, as a bare ``http://`` or ``www.`` still becomes a link (GFM autolinks).
    Control characters are replaced first (see :func:`printable`); a newline would end the code span's line.
    """
    text = printable(text)
    fence = "`" * (max(map(len, re.findall("`+", text)), default=0) + 1)  # longer than any run of backticks inside
    return f"{fence} {text} {fence}"  # CommonMark drops one space on each side


def is_control(char: str) -> bool:
    """C0/C1 controls (NUL, ESC, DEL...) and format characters (RTL override, zero-width joiners' kin)."""
    return unicodedata.category(char) in ("Cc", "Cf")


def printable(text: object, keep_newlines: bool = False) -> str:
    """``text`` with every control or format character replaced by U+FFFD (newlines kept when asked)."""
    keep = "\n" if keep_newlines else ""
    return "".join(REPLACEMENT if is_control(c) and c not in keep else c for c in str(text))


def controls_in(text: str) -> list[str]:
    """The control or format characters ``text`` holds, as code points (``U+001B``), for a refusal that names them."""
    return sorted({f"U+{ord(c):04X}" for c in text if is_control(c)})
