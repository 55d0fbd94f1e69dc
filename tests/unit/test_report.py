"""What the PDF report says about the threshold an image was held to."""

from __future__ import annotations

from skin_model import report

METADATA = {
    "alert_threshold": 0.103,
    "alert_threshold_unusual": 0.0618,
    "alert_threshold_by_warning": {"cool (blue) colour cast": 0.0618, "dark vignette at the corners": 0.1022},
    "metrics": {"test": {"melanoma_sensitivity": 0.931, "melanoma_specificity": 0.619, "images": 307}},
    "operating_curve": [{"threshold": 0.2, "sensitivity": 0.8, "specificity": 0.7}],
}


def test_a_warnings_own_threshold_is_reported_as_the_versions_own():
    for threshold in (0.103, 0.0618, 0.1022):
        assert "This is the version's own threshold" in report._validated(METADATA, threshold)
    assert "a stricter one for unusual imaging conditions" in report._validated(METADATA, 0.1022)


def test_a_threshold_the_user_chose_is_reported_as_chosen():
    assert "Chosen by an admin (the version's own is 10.3 %)" in report._validated(METADATA, 0.2)


# -- `report -o FILE` never destroys anything (issue 32, item 5) -------------------------------------------


def write_report(tmp_path, live_tiny_model, encode, blob, output, *extra):
    from skin_model.cli import main

    image = tmp_path / "X.png"
    if not image.exists():
        image.write_bytes(encode(blob("melanoma", 3, size=96), "PNG"))
    return main(["report", str(image), "-o", str(output), "--similar", "0", *extra])


def test_report_refuses_to_overwrite_its_own_input_even_with_force(tmp_path, live_tiny_model, encode, blob, capsys):
    image = tmp_path / "X.png"
    image.write_bytes(encode(blob("melanoma", 3, size=96), "PNG"))
    before = image.read_bytes()
    for extra in ((), ("--force",)):
        assert write_report(tmp_path, live_tiny_model, encode, blob, image, *extra) == 2
        assert "one of the images to report on" in capsys.readouterr().err
    assert image.read_bytes() == before


def test_report_refuses_an_existing_file_unless_forced_and_then_replaces_it_whole(
    tmp_path, live_tiny_model, encode, blob, capsys
):
    target = tmp_path / "old.pdf"
    target.write_bytes(b"keep me")
    assert write_report(tmp_path, live_tiny_model, encode, blob, target) == 2
    assert "already exists" in capsys.readouterr().err and target.read_bytes() == b"keep me"
    assert write_report(tmp_path, live_tiny_model, encode, blob, target, "--force") == 0
    assert target.read_bytes().startswith(b"%PDF")
    assert [p.name for p in tmp_path.iterdir() if p.name.startswith(".")] == []  # no temporary file left


def test_report_never_writes_through_a_symbolic_link(tmp_path, live_tiny_model, encode, blob, capsys):
    victim = tmp_path / "victim.txt"
    victim.write_text("precious")
    link = tmp_path / "report.pdf"
    link.symlink_to(victim)
    dangling = tmp_path / "dangling.pdf"
    dangling.symlink_to(tmp_path / "nowhere" / "x.pdf")
    for target in (link, dangling):
        assert write_report(tmp_path, live_tiny_model, encode, blob, target, "--force") == 2
        assert "symbolic link" in capsys.readouterr().err
    assert victim.read_text() == "precious" and link.is_symlink()


# -- one headline, the alert's cost, classes not predicted, the batch summary (issue 30) --------------------


def pdf_text(data: bytes) -> str:
    import shutil
    import subprocess

    import pytest

    if shutil.which("pdftotext") is None:
        pytest.skip("pdftotext (poppler-utils) is installed by `make test`")
    return subprocess.run(
        ["pdftotext", "-layout", "-", "-"], input=data, capture_output=True, check=True
    ).stdout.decode()


def prediction(p_mel: float, name: str = "x.png", lesion: bool = True):
    from skin_model import CLASSES
    from skin_model.predict import Prediction

    if not lesion:
        return Prediction(name, {}, None, None, None, None, None, 0.0618, ["not a lesion"], lesion_like=False)
    probs = {c: 0.0 for c in CLASSES} | {"nevus": 0.927 - p_mel, "melanoma": p_mel, "dermatofibroma": 0.073}
    return Prediction(
        file=name,
        probabilities=probs,
        top_class="nevus",
        top_probability=probs["nevus"],
        risk_group="low",
        melanoma_probability=p_mel,
        melanoma_alert=p_mel >= 0.0618,
        alert_threshold=0.0618,
        alert_probability=p_mel,
        malignant_probability=p_mel,
        unpredictable=("seborrheic keratosis",),
    )


def pixels():
    import numpy as np

    return np.full((64, 64, 3), 120, np.uint8)


def test_an_alerted_page_leads_with_the_alert_its_cost_and_why_a_nevus_first_result_alerts():
    text = pdf_text(report.render([report.Page(pixels(), prediction(0.07))], METADATA))

    assert text.index("MELANOMA ALERT: CONSIDER EXCISION OR BIOPSY") < text.index("Most likely diagnoses")
    assert "Top diagnosis" not in text
    assert "P(melanoma) 7.0 % reaches the alert threshold 6.2 %." in text
    assert "raised on 38 of 100 benign lesions and catches 93 of 100 melanomas" in " ".join(text.split())
    assert "miss few melanomas" in text and "Risk group: low" in text
    assert "not predicted" in text and "seborrheic keratosis" in text
    assert "0.0 %" not in text.split("seborrheic keratosis")[1].splitlines()[0]


def test_a_batch_report_starts_with_a_summary_page_alerts_and_refusals_first():
    batch = [prediction(0.01, "calm.png"), prediction(0, "photo.png", lesion=False), prediction(0.2, "alert.png")]
    pdf = report.render([report.Page(pixels(), p) for p in batch], METADATA, "ward 3 / 17")

    summary = pdf_text(pdf).split("\f")[0]
    assert "Summary of 3 images, most urgent first" in summary and "ward 3 / 17" in summary
    rows = [
        line.split()[0]
        for line in summary.splitlines()
        if line.split() and line.split()[0].isdigit() and ("%" in line or "No diag" in line)
    ]
    assert rows == ["3", "2", "1"]
    assert "calm.png" not in summary and "Image 1 of 3" in pdf_text(pdf).split("\f")[1]


def test_the_report_file_is_named_after_the_case_reference_or_the_day():
    assert report.file_name("ward 3 / 17") == "skin-report-ward-3-17.pdf"
    assert report.file_name("../../etc/passwd") == "skin-report-etc-passwd.pdf"
    assert report.file_name("", when=0) == report.file_name(None, when=0) == "skin-report-1970-01-01.pdf"
