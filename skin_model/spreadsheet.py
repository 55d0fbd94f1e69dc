"""CSV for people who open it in a spreadsheet: no cell runs as a formula.

A file named ``=HYPERLINK("http://...")`` must reach the spreadsheet as text, not
as a live formula. OWASP's rule: a text cell that starts with ``=``, ``+``, ``-``,
``@``, a tab or a carriage return gets a leading single quote. Numbers (negative
ones included) and booleans are values, not text, and are written unchanged.
Every CSV the app or the command line writes goes through :func:`to_csv`; every
table a page shows goes through :func:`safe_frame`, since Streamlit's table
toolbar ("Download as CSV") exports the cells exactly as shown.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Mapping, Sequence

FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> object:
    """``value``, or for text a spreadsheet would run as a formula, that text behind a single quote."""
    if isinstance(value, str) and value.startswith(FORMULA_START):
        return "'" + value
    return value


def to_csv(rows: Sequence[Mapping[str, object]]) -> str:
    """Rows with the same keys as CSV text with a header line; every text cell (header included) made safe."""
    if not rows:
        return ""
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    columns = list(rows[0])
    writer.writerow([safe_cell(name) for name in columns])
    for row in rows:
        writer.writerow([safe_cell(row[name]) for name in columns])
    return buffer.getvalue()


def safe_frame(frame):
    """A copy of a pandas DataFrame for ``st.dataframe``: text cells, column names and index labels made safe.

    The table's own toolbar exports what is shown, so a formula-like file name or note is quoted in the
    frame itself (``'=...``), as in the app's own CSV.
    """
    out = frame.map(safe_cell)
    out.index = out.index.map(safe_cell)
    out.columns = out.columns.map(safe_cell)
    return out
