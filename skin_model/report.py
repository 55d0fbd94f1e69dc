"""The printable report: one PDF page per image, for the patient record.

Drawn with fpdf2, bar chart included, so it needs no browser or Chrome at run
time (Plotly's static export would). Text is set in DejaVu Sans, the TrueType
font matplotlib ships (pinned in requirements.txt), so names in any Latin,
Greek or Cyrillic script print as typed; a character it has no glyph for
prints as its code point (``[U+60A3]``), never as a silent '?'. A page that
runs long (warnings, similar cases) continues on the next page, under the
same header and above the same footer. What goes in is chosen, never copied:
the pixels are re-encoded from the decoded array (no EXIF, GPS, colour
profile or comment of the upload survives), the file name is left out (it
may name the patient), and the optional case reference typed by the
clinician is printed and nowhere kept.
"""

from __future__ import annotations

import functools
import importlib.util
import os
import re
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fpdf import FPDF, FontFace
from PIL import Image

from skin_model import CLASSES
from skin_model.config import MELANOMA
from skin_model.errors import SkinModelError
from skin_model.headline import WHY_ALERT, alert_cost, alert_line, headline, risk_line, triage_order
from skin_model.predict import Prediction, percent
from skin_model.record import VersionRecord
from skin_model.similar import REPORT_K, summary
from skin_model.text import printable

DISCLAIMER = (
    "Decision support only, not a diagnosis. The probabilities come from a convolutional network trained on "
    "dermoscopic images of 9 ISIC diagnoses; every result must be interpreted by a dermatologist together with "
    "the clinical context. Biopsy when in doubt."
)
IMAGE_SIDE = 512  # pixels kept in the PDF: enough to recognise the lesion, small enough to print fast
SIMILAR_LIMIT = REPORT_K  # similar training images a report lists (the CLI refuses more)
REFERENCE_LIMIT = 240  # characters of the case reference printed (wrapped, its newlines kept)
FONT = "DejaVu"
FACES = {"": "DejaVuSans.ttf", "B": "DejaVuSans-Bold.ttf", "I": "DejaVuSans-Oblique.ttf"}
BODY_BOTTOM = 268  # mm from the top: text stops here; the footer's rule is at 272
RED, BLUE, GREY, DARK = (192, 57, 43), (11, 110, 138), (110, 110, 110), (30, 30, 30)


@dataclass(frozen=True)
class Page:
    """One image's page: the pixels as decoded, its result, and the Grad-CAM overlay when it was shown."""

    pixels: np.ndarray
    prediction: Prediction
    overlay: np.ndarray | None = None


def render(
    pages: list[Page], record: VersionRecord, case_reference: str | None = None, when: float | None = None
) -> bytes:
    """The PDF bytes: for a batch a summary page first (most urgent first), then each image's pages, in order.

    ``record``: the served version's, whose thresholds and figures the pages quote.
    """
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() if when is None else when))
    pdf = _Report(record, case_reference, stamp, len(pages))
    if len(pages) > 1:
        pdf.start_summary()
        _summary(pdf, pages)
    for number, page in enumerate(pages, 1):
        pdf.start_image(number)
        _images(pdf, page)
        if page.prediction.lesion_like:
            _result(pdf, page.prediction, record)
        else:
            _refused(pdf)
    return bytes(pdf.output())


def file_name(case_reference: str | None, when: float | None = None) -> str:
    """``skin-report-<case reference>.pdf`` (letters, digits, dots and dashes only) or ``skin-report-<date>.pdf``."""
    safe = re.sub(r"[^A-Za-z0-9.-]+", "-", (case_reference or "").strip()).strip(".-")[:60]
    day = time.strftime("%Y-%m-%d", time.gmtime(time.time() if when is None else when))
    return f"skin-report-{safe or day}.pdf"


def _summary(pdf: FPDF, pages: list[Page]) -> None:
    """One row per image, alerts and refusals first: the batch table of the Classify page, without file names."""
    order = sorted(range(len(pages)), key=lambda i: triage_order(pages[i].prediction))
    columns = (("image", 16), ("", 14), ("result", 82), ("P(melanoma)", 22), ("risk group", 22), ("warnings", 24))
    y = pdf.get_y() + 6
    pdf.set_font(FONT, "B", 9)
    pdf.set_text_color(*DARK)
    x = 15
    for title, width in columns:
        pdf.set_xy(x, y)
        pdf.cell(width, 5, title)
        x += width
    y += 6
    pdf.set_font(FONT, "", 8.5)
    for i in order:
        if y > 258:
            break  # a batch too long for one page: the per-image pages follow anyway
        p = pages[i].prediction
        shown = headline(p)
        pdf.set_text_color(*(RED if shown.kind in ("alert", "refused") else DARK))
        cells = [
            f"{i + 1}",
            "",
            shown.title,
            percent(p.melanoma_probability) if p.lesion_like else "-",
            p.risk_group or "-",
            str(len([w for w in p.warnings if p.lesion_like]) or "-"),
        ]
        x = 15
        for (_, width), text in zip(columns, cells, strict=True):
            pdf.set_xy(x, y + 3)
            pdf.cell(width, 5, _text(text))
            x += width
        pdf.image(_png(pages[i].pixels), x=31, y=y, w=11, h=11, keep_aspect_ratio=True)
        y += 13
    pdf.set_text_color(*GREY)
    pdf.set_xy(15, y + 2)
    pdf.multi_cell(180, 4, "Image numbers are the pages that follow; each page holds the image's full result.")


def _text(value: object) -> str:
    """Text that is not ours, as printed: controls replaced (``text.printable``); the core PDF fonts speak
    Latin-1, so anything else prints as '?', never fails the report."""
    return printable(value).encode("latin-1", "replace").decode("latin-1")


@functools.cache
def _font_files() -> dict[str, Path]:
    """DejaVu Sans from matplotlib's package data (found without importing matplotlib)."""
    spec = importlib.util.find_spec("matplotlib")
    folder = Path(next(iter(spec.submodule_search_locations))) / "mpl-data" / "fonts" / "ttf" if spec else None
    files = {style: folder / name for style, name in FACES.items()} if folder else {}
    if not files or not all(f.is_file() for f in files.values()):
        raise SkinModelError(
            "the report's font (DejaVu Sans, shipped by matplotlib) is missing; reinstall requirements.txt"
        )
    return files


@functools.cache
def _glyphs() -> frozenset[int]:
    """The characters every face of the font can draw."""
    from fontTools.ttLib import TTFont

    maps = [set(TTFont(path, lazy=True)["cmap"].getBestCmap()) for path in _font_files().values()]
    return frozenset(set.intersection(*maps))


def _text(value: object, keep_newlines: bool = False) -> str:
    """Text that is not ours, as printed: controls replaced (``text.printable``), and a character the font has
    no glyph for (CJK, emoji) as its code point, so nothing typed is lost or printed as '?'."""
    glyphs = _glyphs()
    return "".join(c if ord(c) in glyphs or c == "\n" else f"[U+{ord(c):04X}]" for c in printable(value, keep_newlines))


def _reference(reference: str | None) -> str:
    """The case reference as printed: at most REFERENCE_LIMIT characters, its line breaks kept, blank lines not."""
    lines = [" ".join(line.split()) for line in (reference or "").splitlines()]
    return "\n".join(line for line in lines if line)[:REFERENCE_LIMIT]


class _Report(FPDF):
    """An A4 report whose pages all carry the header (which image, version, time, reference) and the disclaimer
    footer; fpdf2 starts a new page when a line would cross BODY_BOTTOM."""

    def __init__(self, record: VersionRecord, reference: str | None, stamp: str, total: int) -> None:
        super().__init__(format="A4")
        for style, path in _font_files().items():
            self.add_font(FONT, style, path)
        self.set_margins(15, 12, 15)
        self.set_auto_page_break(True, margin=297 - BODY_BOTTOM)
        self.set_title("Skin lesion decision-support report")
        self.set_creator("skin_model")
        self.about = f"model version {record.number or '?'} ({record.created[:10]})  |  {stamp}"
        self.reference = _reference(reference)
        self.total, self.number, self.first_page, self.label = total, 0, 0, ""

    def start_image(self, number: int) -> None:
        self.number, self.first_page = number, self.page + 1
        self.label = f"Image {number} of {self.total}"
        self.add_page()

    def start_summary(self) -> None:
        self.first_page, self.label = self.page + 1, f"Summary of {self.total} images, most urgent first"
        self.add_page()

    def header(self) -> None:
        continued = " (continued)" if self.page != self.first_page else ""
        self.set_xy(15, 12)
        self.set_font(FONT, "B", 15)
        self.set_text_color(*DARK)
        self.cell(0, 8, "Skin lesion decision-support report", new_x="LMARGIN", new_y="NEXT")
        self.set_font(FONT, "", 9)
        self.set_text_color(*GREY)
        self.cell(0, 5, f"{self.label}{continued}  |  {self.about}", new_x="LMARGIN", new_y="NEXT")
        if self.reference:
            self.set_text_color(*DARK)
            self.multi_cell(180, 4.5, _text(f"Case reference: {self.reference}", keep_newlines=True), align="L")
        self.set_draw_color(200, 200, 200)
        self.line(15, self.get_y() + 2, 195, self.get_y() + 2)
        self.set_y(self.get_y() + 5)

    def footer(self) -> None:
        self.set_draw_color(200, 200, 200)
        self.line(15, 272, 195, 272)
        self.set_xy(15, 274)
        self.set_font(FONT, "I", 8)
        self.set_text_color(*GREY)
        self.multi_cell(180, 3.8, DISCLAIMER)


def _png(pixels: np.ndarray) -> Image.Image:
    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3]).astype(np.uint8), "RGB")
    image.thumbnail((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.LANCZOS)
    return image  # a new image from the array: nothing of the uploaded file's metadata


def _images(pdf: FPDF, page: Page) -> None:
    top, side = pdf.get_y() + 1, 60
    pdf.image(_png(page.pixels), x=15, y=top, w=side, h=side, keep_aspect_ratio=True)
    pdf.set_font(FONT, "", 8)
    pdf.set_text_color(*GREY)
    pdf.set_xy(15, top + side + 1)
    pdf.cell(side, 4, "the image as classified", align="C")
    if page.overlay is not None:
        pdf.image(_png(page.overlay), x=80, y=top, w=side, h=side, keep_aspect_ratio=True)
        pdf.set_xy(80, top + side + 1)
        pdf.cell(side, 4, "Grad-CAM: where the network looked", align="C")
    pdf.set_y(top + side + 8)


def _result(pdf: FPDF, p: Prediction, record: VersionRecord) -> None:
    """The headline first (the alert and what to do, when it fires), then the diagnoses as most likely ones."""
    y = pdf.get_y()
    shown = headline(p)
    pdf.set_xy(15, y)
    if shown.kind == "alert":
        pdf.set_fill_color(*RED)
        pdf.set_text_color(255, 255, 255)
        pdf.set_font(FONT, "B", 12)
        pdf.cell(180, 8, f"  {shown.title.upper()}", fill=True, new_x="LMARGIN", new_y="NEXT")
    else:
        pdf.set_text_color(*DARK)
        pdf.set_font(FONT, "B", 13)
        pdf.cell(0, 7, _text(shown.title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_text_color(*DARK)
    pdf.set_font(FONT, "", 10)
    lines = [alert_line(p) + _validated(record, p.alert_threshold)]
    if p.melanoma_alert:
        cost = alert_cost(record)
        lines += [WHY_ALERT] + ([cost.sentence()] if cost else [])
    lines.append(risk_line(p))
    if p.pictures > 1:
        lines.append(f"Combined from {p.pictures} pictures of one lesion (their calibrated logits averaged).")
    for line in lines:
        pdf.set_x(15)
        pdf.multi_cell(180, 5, _text(line), new_x="LMARGIN", new_y="NEXT")
    _chart(pdf, p.probabilities, pdf.get_y() + 3, p.unpredictable)
    _warnings(pdf, p.warnings)
    _similar(pdf, p)


def _validated(record: VersionRecord, threshold: float) -> str:
    """What the version's own threshold did on held-out test images; another one chosen, on validation."""
    policy, test = record.policy, record.metrics.test
    sens, spec = (None, None) if test is None else (test.melanoma_sensitivity, test.melanoma_specificity)
    own = [policy.threshold, policy.strict, *(policy.by_warning or {}).values()]
    if min(abs(threshold - t) for t in own) < 1e-9 and None not in (sens, spec):
        which = "" if abs(threshold - policy.threshold) < 1e-9 else ", a stricter one for unusual imaging conditions"
        return (
            f" This is the version's own threshold{which}: with its thresholds the version found {sens:.0%} of "
            f"melanomas with {spec:.0%} specificity on its held-out test images ({test.images or '?'}, "
            "split by lesion)."
        )
    point = policy.point(threshold)
    if point:
        return (
            f" Chosen by an admin (the version's own is {percent(policy.threshold)}); on validation it "
            f"found {point.sensitivity:.0%} of melanomas with {point.specificity:.0%} specificity."
        )
    return ""


def _chart(pdf: FPDF, probabilities: dict[str, float], top: float, unpredictable: tuple[str, ...] = ()) -> None:
    """The diagnoses as horizontal bars, largest first, melanoma in red: the same picture as the Classify page.

    A class the version cannot predict gets no bar and no number, only that it is not predicted.
    """
    pdf.set_font(FONT, "B", 10)
    pdf.set_xy(15, top)
    pdf.cell(0, 5, "Most likely diagnoses", new_x="LMARGIN", new_y="NEXT")
    left, width, row = 75, 100, 5.2
    pdf.set_font(FONT, "", 9)
    shown = sorted((c for c in CLASSES if c not in unpredictable), key=lambda c: -probabilities.get(c, 0.0))
    for i, name in enumerate([*shown, *unpredictable]):
        y = top + 7 + i * row
        share = probabilities.get(name, 0.0)
        pdf.set_text_color(*DARK)
        pdf.set_xy(15, y)
        pdf.cell(left - 17, row - 1, name, align="R")
        if name in unpredictable:
            pdf.set_text_color(*GREY)
            pdf.set_xy(left, y)
            pdf.cell(width, row - 1, "not predicted: this version had (almost) no training images of it")
            continue
        pdf.set_fill_color(235, 235, 235)
        pdf.rect(left, y + 0.6, width, row - 2, style="F")
        pdf.set_fill_color(*(RED if name == MELANOMA else BLUE))
        if share > 0:
            pdf.rect(left, y + 0.6, max(width * share, 0.3), row - 2, style="F")
        pdf.set_xy(left + width + 2, y)
        pdf.cell(18, row - 1, percent(share))
    pdf.set_y(top + 7 + len(CLASSES) * row + 2)


def _warnings(pdf: FPDF, warnings: list[str]) -> None:
    if not warnings:
        return
    pdf.set_font(FONT, "B", 10)
    pdf.set_text_color(*DARK)
    pdf.set_x(15)
    pdf.cell(0, 5, "Warnings", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 9)
    for warning in warnings:
        pdf.set_x(15)
        pdf.multi_cell(180, 4.5, _text(f"- {warning}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _similar(pdf: FPDF, p: Prediction) -> None:
    """The nearest SIMILAR_LIMIT training images as a table: long names wrap, a page break repeats the heading."""
    if not p.similar:
        return
    shown = p.similar[:SIMILAR_LIMIT]
    more = f" (the {len(shown)} nearest of {len(p.similar)})" if len(p.similar) > len(shown) else ""
    pdf.set_font(FONT, "B", 10)
    pdf.set_text_color(*DARK)
    pdf.set_x(15)
    pdf.multi_cell(180, 5, _text(f"Similar training images{more}: {summary(p.similar)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 9)
    with pdf.table(
        col_widths=(55, 45, 30, 50),
        width=180,
        align="LEFT",
        line_height=4.5,
        borders_layout="NONE",
        text_align="LEFT",
        headings_style=FontFace(emphasis="BOLD"),
    ) as table:
        table.row(["image", "diagnosis", "distance", "source"])
        for n in shown:
            table.row([_text(n.image), _text(n.diagnosis), f"{n.distance:.3f}", _text(n.source)])


def _refused(pdf: FPDF) -> None:
    pdf.set_x(15)
    pdf.set_font(FONT, "B", 13)
    pdf.set_text_color(*RED)
    pdf.cell(0, 7, "No diagnosis: not a dermoscopic lesion image", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(FONT, "", 10)
    pdf.set_text_color(*DARK)
    pdf.set_x(15)
    pdf.multi_cell(
        180,
        5,
        "The image looks unlike the dermoscopic images the model was trained on (a photo, a document, a chart, a "
        "blank or noisy frame?). No probabilities, alert or risk group are given for it.",
    )


def check_target(output: Path, inputs: Sequence[Path], force: bool = False) -> None:
    """Refuse a PDF target that would destroy something: a link, an input, a folder, or (without ``force``)
    any existing file. Checked before any work; :func:`save` writes atomically."""
    if output.is_symlink():
        raise SkinModelError(f"{output} is a symbolic link; the report is never written through one")
    if output.exists():
        if not output.is_file():
            raise SkinModelError(f"{output} exists and is not a file; choose a new file name")
        if any(Path(i).exists() and os.path.samefile(output, i) for i in inputs):
            raise SkinModelError(f"{output} is one of the images to report on; choose another file name")
        if not force:
            raise SkinModelError(f"{output} already exists; choose a new file name or pass --force to replace it")
    if not output.parent.is_dir():
        raise SkinModelError(f"{output.parent} is not a folder; the report cannot be written there")


def save(output: Path, data: bytes, inputs: Sequence[Path], force: bool = False) -> None:
    """Write the PDF atomically (a temporary file beside it, then a rename), after :func:`check_target`."""
    from skin_model.registry import write_atomic

    check_target(output, inputs, force)
    try:
        write_atomic(output, data)
    except OSError as error:
        raise SkinModelError(f"could not write {output} ({error.strerror or error})") from None
