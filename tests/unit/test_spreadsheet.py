"""CSV cells a spreadsheet would run as formulas are written as text; numbers stay numbers."""

from __future__ import annotations

import csv
import io

import pytest

from skin_model.spreadsheet import safe_cell, to_csv


@pytest.mark.parametrize(
    "text",
    ['=HYPERLINK("http://127.0.0.1:9/x","open")', "+1+cmd|' /C calc'!A0", "-2+3", "@SUM(A1:A9)", "\t=1", "\r=1"],
)
def test_text_that_a_spreadsheet_would_run_gets_a_leading_quote(text):
    assert safe_cell(text) == "'" + text


@pytest.mark.parametrize("value", [-0.25, -3, 0.5, True, False, None, "lesion.png", "ISIC_0001=copy.jpg", ""])
def test_numbers_booleans_and_ordinary_text_are_unchanged(value):
    assert safe_cell(value) is value


def test_to_csv_writes_a_header_and_safe_cells_that_read_back():
    rows = [
        {"file": "=1+1.png", "melanoma_probability": -0.0, "delta": -2.5, "alert": True, "note": None},
        {"file": "plain, with comma.png", "melanoma_probability": 0.75, "delta": 1, "alert": False, "note": "-x"},
    ]

    back = list(csv.DictReader(io.StringIO(to_csv(rows))))

    assert [r["file"] for r in back] == ["'=1+1.png", "plain, with comma.png"]
    assert [r["delta"] for r in back] == ["-2.5", "1"]  # numbers: no quote
    assert [r["alert"] for r in back] == ["True", "False"]
    assert [r["note"] for r in back] == ["", "'-x"]
    assert to_csv([]) == ""


def test_a_frame_shown_in_a_table_has_its_formula_cells_quoted_as_its_toolbar_would_export_them():
    import pandas as pd

    from skin_model.spreadsheet import safe_frame

    frame = pd.DataFrame(
        {"file": ["+cmd|' /C calc'!A0.jpg", "ok.png"], "p": [-0.5, 0.25], "@SUM(1+1)": [True, False]},
        index=["=source", "isic"],
    )
    shown = safe_frame(frame)

    assert list(shown["file"]) == ["'+cmd|' /C calc'!A0.jpg", "ok.png"]
    assert list(shown["p"]) == [-0.5, 0.25]  # numbers stay numbers
    assert list(shown.columns) == ["file", "p", "'@SUM(1+1)"] and list(shown.index) == ["'=source", "isic"]
    assert frame.loc["=source", "file"].startswith("+")  # the caller's frame is untouched
