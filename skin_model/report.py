"""The printable report: one PDF page per image, for the patient record.

Drawn with fpdf2, bar chart included, so it needs no browser or Chrome at run
time (Plotly's static export would). What goes in is chosen, never copied:
the pixels are re-encoded from the decoded array (no EXIF, GPS, colour
profile or comment of the upload survives), the file name is left out (it
may name the patient), and the optional case reference typed by the
clinician is printed and nowhere kept.
"""

from __future__ import annotations

import os
import time
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from fpdf import FPDF
from PIL import Image

from skin_model import CLASSES
from skin_model.config import MELANOMA
from skin_model.errors import SkinModelError
from skin_model.predict import Prediction, operating_point
from skin_model.similar import summary
from skin_model.text import printable

DISCLAIMER = (
    "Decision support only, not a diagnosis. The probabilities come from a convolutional network trained on "
    "dermoscopic images of 9 ISIC diagnoses; every result must be interpreted by a dermatologist together with "
    "the clinical context. Biopsy when in doubt."
)
IMAGE_SIDE = 512  # pixels kept in the PDF: enough to recognise the lesion, small enough to print fast
RED, BLUE, GREY, DARK = (192, 57, 43), (11, 110, 138), (110, 110, 110), (30, 30, 30)


@dataclass(frozen=True)
class Page:
    """One image's page: the pixels as decoded, its result, and the Grad-CAM overlay when it was shown."""

    pixels: np.ndarray
    prediction: Prediction
    overlay: np.ndarray | None = None


def render(pages: list[Page], metadata: dict, case_reference: str | None = None, when: float | None = None) -> bytes:
    """The PDF bytes: one page per image, in order. ``metadata``: the version's registry metadata."""
    pdf = FPDF(format="A4")
    pdf.set_auto_page_break(False)
    pdf.set_title("Skin lesion decision-support report")
    pdf.set_creator("skin_model")
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime(time.time() if when is None else when))
    for number, page in enumerate(pages, 1):
        pdf.add_page()
        _header(pdf, metadata, case_reference, stamp, number, len(pages))
        _images(pdf, page)
        if page.prediction.lesion_like:
            _result(pdf, page.prediction, metadata)
        else:
            _refused(pdf)
        _footer(pdf)
    return bytes(pdf.output())


def _text(value: object) -> str:
    """Text that is not ours, as printed: controls replaced (``text.printable``); the core PDF fonts speak
    Latin-1, so anything else prints as '?', never fails the report."""
    return printable(value).encode("latin-1", "replace").decode("latin-1")


def _header(pdf: FPDF, metadata: dict, reference: str | None, stamp: str, number: int, total: int) -> None:
    pdf.set_xy(15, 12)
    pdf.set_font("Helvetica", "B", 15)
    pdf.set_text_color(*DARK)
    pdf.cell(0, 8, "Skin lesion decision-support report", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    pdf.set_text_color(*GREY)
    created = str(metadata.get("created", ""))[:10]
    line = f"Image {number} of {total}  |  model version {metadata.get('version', '?')} ({created})  |  {stamp}"
    pdf.set_x(15)
    pdf.cell(0, 5, line, new_x="LMARGIN", new_y="NEXT")
    if reference and reference.strip():
        pdf.set_x(15)
        pdf.set_text_color(*DARK)
        pdf.cell(0, 5, _text(f"Case reference: {reference.strip()[:120]}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_draw_color(200, 200, 200)
    pdf.line(15, pdf.get_y() + 2, 195, pdf.get_y() + 2)


def _png(pixels: np.ndarray) -> Image.Image:
    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3]).astype(np.uint8), "RGB")
    image.thumbnail((IMAGE_SIDE, IMAGE_SIDE), Image.Resampling.LANCZOS)
    return image  # a new image from the array: nothing of the uploaded file's metadata


def _images(pdf: FPDF, page: Page) -> None:
    top, side = 36, 60
    pdf.image(_png(page.pixels), x=15, y=top, w=side, h=side, keep_aspect_ratio=True)
    pdf.set_font("Helvetica", "", 8)
    pdf.set_text_color(*GREY)
    pdf.set_xy(15, top + side + 1)
    pdf.cell(side, 4, "the image as classified", align="C")
    if page.overlay is not None:
        pdf.image(_png(page.overlay), x=80, y=top, w=side, h=side, keep_aspect_ratio=True)
        pdf.set_xy(80, top + side + 1)
        pdf.cell(side, 4, "Grad-CAM: where the network looked", align="C")


def _result(pdf: FPDF, p: Prediction, metadata: dict) -> None:
    y = 104
    if p.melanoma_alert:
        pdf.set_fill_color(*RED)
        pdf.set_text_color(255, 255, 255)
        pdf.set_font("Helvetica", "B", 11)
        pdf.set_xy(15, y)
        pdf.cell(180, 8, "  MELANOMA ALERT: consider excision or biopsy", fill=True, new_x="LMARGIN", new_y="NEXT")
        y += 10
    pdf.set_text_color(*DARK)
    pdf.set_font("Helvetica", "B", 13)
    pdf.set_xy(15, y)
    pdf.cell(0, 7, f"Top diagnosis: {p.top_class} ({p.top_probability:.1%})", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    validated = _validated(metadata, p.alert_threshold)
    state = "ON" if p.melanoma_alert else "off"
    lines = [
        f"Risk group: {p.risk_group}",
        f"Melanoma alert: {state}. P(melanoma) {p.alert_probability:.1%}; the alert threshold is "
        f"{p.alert_threshold:.3g}.{validated}",
    ]
    for line in lines:
        pdf.set_x(15)
        pdf.multi_cell(180, 5, _text(line), new_x="LMARGIN", new_y="NEXT")
    _chart(pdf, p.probabilities, pdf.get_y() + 3)
    _warnings(pdf, p.warnings)
    _similar(pdf, p)


def _validated(metadata: dict, threshold: float) -> str:
    """What the version's own threshold did on held-out test images; another one chosen, on validation."""
    test = metadata.get("metrics", {}).get("test", {})
    sens, spec = test.get("melanoma_sensitivity"), test.get("melanoma_specificity")
    usual = float(metadata.get("alert_threshold", -1))
    stricter = [float(metadata.get("alert_threshold_unusual", usual))]
    stricter += [float(t) for t in (metadata.get("alert_threshold_by_warning") or {}).values()]
    if min(abs(threshold - t) for t in [usual, *stricter]) < 1e-9 and None not in (sens, spec):
        which = "" if abs(threshold - usual) < 1e-9 else ", a stricter one for unusual imaging conditions"
        return (
            f" This is the version's own threshold{which}: with its thresholds the version found {sens:.0%} of "
            f"melanomas with {spec:.0%} specificity on its held-out test images ({test.get('images', '?')}, "
            "split by lesion)."
        )
    point = operating_point(metadata, threshold)
    if point:
        return (
            f" Chosen by the user (the version's own is {metadata.get('alert_threshold')}); on validation it "
            f"found {point['sensitivity']:.0%} of melanomas with {point['specificity']:.0%} specificity."
        )
    return ""


def _chart(pdf: FPDF, probabilities: dict[str, float], top: float) -> None:
    """Nine horizontal bars, largest first, melanoma in red: the same picture as the Classify page."""
    pdf.set_font("Helvetica", "B", 10)
    pdf.set_xy(15, top)
    pdf.cell(0, 5, "Probability of each diagnosis", new_x="LMARGIN", new_y="NEXT")
    left, width, row = 75, 100, 5.2
    pdf.set_font("Helvetica", "", 9)
    for i, name in enumerate(sorted(CLASSES, key=lambda c: -probabilities.get(c, 0.0))):
        y = top + 7 + i * row
        share = probabilities.get(name, 0.0)
        pdf.set_text_color(*DARK)
        pdf.set_xy(15, y)
        pdf.cell(left - 17, row - 1, name, align="R")
        pdf.set_fill_color(235, 235, 235)
        pdf.rect(left, y + 0.6, width, row - 2, style="F")
        pdf.set_fill_color(*(RED if name == MELANOMA else BLUE))
        if share > 0:
            pdf.rect(left, y + 0.6, max(width * share, 0.3), row - 2, style="F")
        pdf.set_xy(left + width + 2, y)
        pdf.cell(18, row - 1, f"{share:.1%}")
    pdf.set_y(top + 7 + len(CLASSES) * row + 2)


def _warnings(pdf: FPDF, warnings: list[str]) -> None:
    if not warnings:
        return
    pdf.set_font("Helvetica", "B", 10)
    pdf.set_text_color(*DARK)
    pdf.set_x(15)
    pdf.cell(0, 5, "Warnings", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for warning in warnings:
        pdf.set_x(15)
        pdf.multi_cell(180, 4.5, _text(f"- {warning}"), new_x="LMARGIN", new_y="NEXT")
    pdf.ln(1)


def _similar(pdf: FPDF, p: Prediction) -> None:
    if not p.similar:
        return
    pdf.set_font("Helvetica", "B", 10)
    pdf.set_text_color(*DARK)
    pdf.set_x(15)
    pdf.cell(0, 5, _text(f"Similar training images: {summary(p.similar)}"), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 9)
    for n in p.similar:
        pdf.set_x(15)
        pdf.cell(30, 4.5, _text(n.image))
        pdf.cell(55, 4.5, _text(n.diagnosis))
        pdf.cell(30, 4.5, f"distance {n.distance:.3f}")
        pdf.cell(0, 4.5, _text(n.source), new_x="LMARGIN", new_y="NEXT")


def _refused(pdf: FPDF) -> None:
    pdf.set_xy(15, 104)
    pdf.set_font("Helvetica", "B", 13)
    pdf.set_text_color(*RED)
    pdf.cell(0, 7, "No diagnosis: not a dermoscopic lesion image", new_x="LMARGIN", new_y="NEXT")
    pdf.set_font("Helvetica", "", 10)
    pdf.set_text_color(*DARK)
    pdf.set_x(15)
    pdf.multi_cell(
        180,
        5,
        "The image looks unlike the dermoscopic images the model was trained on (a photo, a document, a chart, a "
        "blank or noisy frame?). No probabilities, alert or risk group are given for it.",
    )


def _footer(pdf: FPDF) -> None:
    pdf.set_draw_color(200, 200, 200)
    pdf.line(15, 272, 195, 272)
    pdf.set_xy(15, 274)
    pdf.set_font("Helvetica", "I", 8)
    pdf.set_text_color(*GREY)
    pdf.multi_cell(180, 3.8, DISCLAIMER)


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
