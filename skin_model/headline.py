"""What a clinician reads first about one result: one headline, the alert's cost, the triage order.

The page, the PDF and the downloads all take their words from here, so the three cannot disagree. When the
melanoma alert fires, the headline is the alert and what to do; the diagnoses follow as "most likely
diagnoses". Every threshold a clinician reads is a percentage, as the probability it is compared with.
"""

from __future__ import annotations

from dataclasses import dataclass

from skin_model.card import benign_alerted, caught
from skin_model.predict import RISK_GROUPS, Prediction, percent
from skin_model.record import VersionRecord
from skin_model.text import printable

WHY_ALERT = (
    "The alert is tuned to miss few melanomas, so it fires well before melanoma is the most likely diagnosis: "
    "a result where another diagnosis comes first can still raise it."
)
ALERT_ACTION = "consider excision or biopsy"
REFUSED = "No diagnosis: not a dermoscopic lesion image"


@dataclass(frozen=True)
class Headline:
    """One line to read first (``title``), what it rests on (``detail``), and its kind for colour and order."""

    kind: str  # "alert", "refused" or "result"
    title: str
    detail: str


def percent_pair(p: float, threshold: float) -> tuple[str, str]:
    """``p`` and ``threshold`` as percentages with just enough decimals that unequal values never read the same."""
    for digits in (1, 2, 3):
        shown = f"{100 * p:.{digits}f} %", f"{100 * threshold:.{digits}f} %"
        if shown[0] != shown[1] or p == threshold:
            return shown
    return shown


def alert_line(p: Prediction) -> str:
    """The comparison behind the alert, in one unit: "P(melanoma) 7.0 % reaches the alert threshold 6.2 %"."""
    shown, threshold = percent_pair(p.alert_probability, p.alert_threshold)
    verb = "reaches" if p.melanoma_alert else "is below"
    return f"P(melanoma) {shown} {verb} the alert threshold {threshold}."


def risk_line(p: Prediction) -> str:
    """The risk group and what sets it, e.g. "Risk group: low (malignant diagnoses together 7.1 %)"."""
    bounds = ", ".join(f"{name} from {bound:.0%}" for name, bound in RISK_GROUPS[:-1])
    return f"Risk group: {p.risk_group} (the malignant diagnoses together {percent(p.malignant_probability)}; {bounds})"


def headline(p: Prediction) -> Headline:
    """The one line to read first; it names the top diagnosis only when no alert overrides it."""
    if not p.lesion_like:
        return Headline("refused", REFUSED, "Upload a picture taken through a dermatoscope.")
    if p.melanoma_alert:
        return Headline("alert", f"Melanoma alert: {ALERT_ACTION}", f"{alert_line(p)} {WHY_ALERT}")
    return Headline(
        "result",
        f"No melanoma alert. Most likely: {p.top_class} ({percent(p.top_probability)})",
        alert_line(p),
    )


@dataclass(frozen=True)
class AlertCost:
    """How often the live version's alert is raised on benign lesions and how many melanomas it catches."""

    benign: str  # "38 of 100"
    melanomas: str  # "93 of 100"
    measured_on: str

    def sentence(self) -> str:
        return (
            f"This alert is raised on {self.benign} benign lesions and catches {self.melanomas} melanomas "
            f"({self.measured_on})."
        )


def alert_cost(record: VersionRecord) -> AlertCost | None:
    """The alert's cost from images from elsewhere when the version was measured on some, else its held-out split."""
    for name, m in record.external.items():
        if m.melanoma_sensitivity is not None and m.melanoma_specificity is not None:
            where = f"measured on {_count(m.images)} images from elsewhere, {printable(name)}"
            return AlertCost(benign_alerted(m.melanoma_specificity), caught(m.melanoma_sensitivity), where)
    held = record.metrics.headline
    if held is None or held.scores.melanoma_sensitivity is None or held.scores.melanoma_specificity is None:
        return None
    m = held.scores
    where = f"measured on the held-out {held.name} split, {_count(m.images)} images from the training sources"
    return AlertCost(benign_alerted(m.melanoma_specificity), caught(m.melanoma_sensitivity), where)


def _count(images: int | None) -> object:
    return "?" if images is None else images


def triage_order(p: Prediction) -> tuple:
    """Alerts first, then refusals, then the rest; within each, the higher P(melanoma) first."""
    rank = 0 if p.melanoma_alert else 1 if not p.lesion_like else 2
    return rank, -(p.melanoma_probability or 0.0)


def triage_rows(predictions: list[Prediction]) -> list[tuple[int, dict[str, object]]]:
    """The batch table, most urgent first: (index in ``predictions``, row with readable column names)."""
    order = sorted(range(len(predictions)), key=lambda i: triage_order(predictions[i]))
    rows = []
    for i in order:
        p = predictions[i]
        rows.append(
            (
                i,
                {
                    "image": p.file,
                    "result": headline(p).title,
                    "P(melanoma)": percent(p.melanoma_probability) if p.lesion_like else "",
                    "risk group": p.risk_group or "",
                    "warnings": "; ".join(w for w in p.warnings if p.lesion_like),
                },
            )
        )
    return rows
