"""A batch in a real browser (issue 30): the triage table first, one detail opened, the batch PDF's summary page."""

from __future__ import annotations

import re
import shutil
import subprocess

import pytest
from e2e_support import download_report, lesion, open_page, wait_idle
from PIL import Image

from skin_model import explain
from skin_model.config import data_dirs
from skin_model.registry import Registry

pytestmark = [
    pytest.mark.e2e,
    pytest.mark.skipif(shutil.which("pdftotext") is None, reason="pdftotext (poppler-utils): `make browser`"),
]
VALIDATION = next((root / "Validation" for root in data_dirs() if (root / "Validation").is_dir()), None)
RESULT = re.compile(
    r"(Melanoma alert: consider excision or biopsy|No melanoma alert\. Most likely: .+|No diagnosis: .+)"
)


def test_a_batch_of_four_reads_as_a_triage_table_a_detail_and_a_pdf_summary(app_server, page, tmp_path):
    paths = []
    for seed in range(4):  # generated lesion-like pictures: the repository holds no patient image
        paths.append(tmp_path / f"lesion-{seed}.png")
        Image.fromarray(lesion(20 + seed, 220)).save(paths[-1])
    triage_a_batch(app_server, page, tmp_path, paths)


@pytest.mark.integration
@pytest.mark.skipif(VALIDATION is None, reason="SKIN_DATA_DIR does not name isic2017: runs in CI")
def test_four_real_lesions_the_model_never_saw_read_as_a_triage_table_a_detail_and_a_pdf_summary(
    app_server, page, tmp_path
):
    picked = {"melanoma": 2, "nevus": 1, "seborrheic keratosis": 1}  # ISIC 2017 validation: scored on, never trained
    paths = []
    for label, n in picked.items():
        for source in sorted((VALIDATION / label).glob("*.jpg"))[:n]:
            paths.append(tmp_path / f"lesion-{len(paths)}.jpg")  # the names the checks expect; the pixels as found
            shutil.copyfile(source, paths[-1])
    registry = Registry(app_server["home"] / "models")
    earlier = registry.live_number()
    registry.activate(1)  # the committed default: an earlier test may have made a quick trial version live
    try:
        refused = triage_a_batch(app_server, page, tmp_path, paths)
    finally:
        registry.activate(earlier)
    assert refused == 0  # real dermoscopy is answered (the gate refuses at most 0.5 % of ISIC 2017)


def triage_a_batch(app_server, page, tmp_path, paths) -> int:
    """Upload ``paths`` (named lesion-0... lesion-3) as one batch and check the triage table, the most urgent
    image's detail and the batch PDF's summary page; returns how many the app refused."""
    open_page(page, app_server["url"] + "/classify")
    page.locator("[data-testid='stFileUploaderDropzoneInput']").set_input_files([str(p) for p in paths])
    wait_idle(page)

    page.get_by_text("4 images, most urgent first").wait_for()
    table = page.locator("[data-testid='stDataFrame']")
    table.wait_for()  # a lazily loaded component: drawn after the rest
    page.locator("[data-testid='stDataFrame'] table").first.wait_for(state="attached")
    grid = table.locator("table").first.text_content() or ""  # the grid's hidden accessible copy of its cells
    for column in ("image", "result", "P(melanoma)", "risk group", "warnings"):
        assert column in grid
    expanders = page.locator("[data-testid='stExpander'] summary").filter(has_text=re.compile(r"\d\. lesion-"))
    labels = [re.search(r"\d\. .*", t, re.S).group(0).replace("\n", " ") for t in expanders.all_inner_texts()]
    assert len(labels) == 4 and {re.sub(r"^\d\. ", "", t).split(":")[0].strip() for t in labels} == {
        p.name for p in paths
    }
    ranks = [0 if "Melanoma alert" in t else 1 if "No diagnosis" in t else 2 for t in labels]
    assert ranks == sorted(ranks)  # alerts, then refusals, then the rest
    assert all(RESULT.search(t) for t in labels)

    expanders.first.click()  # the most urgent image's detail
    detail = page.locator("[data-testid='stExpanderDetails']").first
    detail.wait_for()
    first = labels[0]
    if "No diagnosis" in first:
        assert detail.get_by_text("No diagnosis").count() >= 1
    else:
        assert detail.get_by_text("Risk group:").count() == 1
        assert detail.locator(".skin-probabilities").count() == 1
        live = Registry(app_server["home"] / "models").live()  # an earlier test may have made a retrained CNN live
        shown = int(explain.cheap(live.record.config))
        assert detail.get_by_text("Grad-CAM: where the network looked").count() == shown  # on when under 0.3 s
        assert detail.locator(".skin-cam-legend").count() == shown

    pdf = tmp_path / "batch.pdf"
    assert download_report(page, "ward 3 / 17", pdf).suggested_filename == "skin-report-ward-3-17.pdf"
    summary = subprocess.run(
        ["pdftotext", "-layout", "-f", "1", "-l", "1", str(pdf), "-"], capture_output=True, text=True, check=True
    ).stdout
    assert "Summary of 4 images, most urgent first" in summary and "ward 3 / 17" in summary
    rows = [line for line in summary.splitlines() if re.match(r"^\s*[1-4]\s{2,}", line)]
    assert len(rows) == 4 and all(RESULT.search(row) for row in rows)
    assert "lesion-0" not in summary  # file names stay out of the PDF
    return sum(1 for t in labels if "No diagnosis" in t)
