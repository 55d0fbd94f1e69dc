"""What the PDF report says about the threshold an image was held to."""

from __future__ import annotations

import pytest

from skin_model import report
from skin_model.record import VersionRecord

METADATA = {
    "alert_threshold": 0.103,
    "alert_threshold_unusual": 0.0618,
    "alert_threshold_by_warning": {"cool (blue) colour cast": 0.0618, "dark vignette at the corners": 0.1022},
    "metrics": {"test": {"melanoma_sensitivity": 0.931, "melanoma_specificity": 0.619, "images": 307}},
    "operating_curve": [{"threshold": 0.2, "sensitivity": 0.8, "specificity": 0.7}],
}


def test_a_warnings_own_threshold_is_reported_as_the_versions_own():
    for threshold in (0.103, 0.0618, 0.1022):
        assert "This is the version's own threshold" in report._validated(VersionRecord.from_dict(METADATA), threshold)
    assert "a stricter one for unusual imaging conditions" in report._validated(
        VersionRecord.from_dict(METADATA), 0.1022
    )


def test_a_threshold_the_user_chose_is_reported_as_chosen():
    assert "Chosen by an admin (the version's own is 10.3 %)" in report._validated(
        VersionRecord.from_dict(METADATA), 0.2
    )


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


# -- the PDF prints what was typed, wraps it, and never runs over its footer (issue 32, item 10) -------------

PAGE_HEIGHT_PT = 841.89
FOOTER_RULE_PT = (297 - 272) / 25.4 * 72  # the footer's rule, 272 mm from the top


def pdf_lines(data: bytes) -> list[tuple[int, float, str]]:
    """(page, baseline height in pt from the bottom, text) of every line the PDF draws, through each font's
    ToUnicode map: what a reader copying from the PDF gets."""
    import re
    import zlib

    objects = {}
    for match in re.finditer(rb"(\d+) 0 obj(.*?)endobj", data, re.S):
        body = match.group(2)
        stream = re.search(rb"stream\r?\n", body)
        # Exactly /Length bytes: a compressed stream may end in a CR, which a "\r?\nendstream" pattern
        # would take for the line break and cut (about one stream in 256).
        length = re.search(rb"/Length (\d+)", body[: stream.start()]) if stream else None
        raw = body[stream.end() : stream.end() + int(length.group(1))] if length else b""
        if stream and b"/FlateDecode" in body[: stream.start()]:
            raw = zlib.decompress(raw)
        objects[int(match.group(1))] = (body.decode("latin-1"), raw.decode("latin-1"))

    def cmap(ref: int) -> dict[str, str]:
        text = objects[ref][1]
        pairs = dict(re.findall(r"<([0-9A-Fa-f]{4})> <([0-9A-Fa-f]+)>", text.split("endcodespacerange")[-1]))
        return {
            chr(int(k, 16)): "".join(chr(int(v[i : i + 4], 16)) for i in range(0, len(v), 4)) for k, v in pairs.items()
        }

    fonts = {}
    for body, _ in objects.values():
        for name, ref in re.findall(r"/(F\d+) (\d+) 0 R", body):
            font = objects[int(ref)][0]
            unicode_map = re.search(r"/ToUnicode (\d+) 0 R", font)
            fonts[name] = cmap(int(unicode_map.group(1))) if unicode_map else None

    def unescape(literal: str) -> str:
        simple = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f"}
        return re.sub(
            r"\\([0-7]{1,3}|.)",
            lambda m: chr(int(m[1], 8)) if m[1].isdigit() else simple.get(m[1], m[1]),
            literal,
            flags=re.S,
        )

    pages = [
        re.search(r"/Contents (\d+) 0 R", body) for body, _ in objects.values() if re.search(r"/Type /Page\b", body)
    ]
    lines = []
    for number, contents in enumerate(pages, 1):
        font, y = None, 0.0
        string = r"\((?:\\.|[^\\)])*\)"
        ops = rf"/(F\d+) [\d.]+ Tf|([\d.-]+) ([\d.-]+) Td|({string})\s*Tj|\[((?:{string}|[^\]\(])*)\]\s*TJ"
        for m in re.finditer(ops, objects[int(contents.group(1))][1], re.S):
            if m[1]:
                font = m[1]
            elif m[2]:
                y = float(m[3])
            else:  # Tj: one string; TJ (justified): strings between spacing numbers
                raw = "".join(unescape(part[1:-1]) for part in re.findall(string, m[4] or m[5], re.S))
                codes = fonts.get(font)
                if codes is None:
                    text = raw
                else:
                    pairs = (raw[i : i + 2].encode("latin-1").decode("utf-16-be") for i in range(0, len(raw), 2))
                    text = "".join(codes.get(code, "?") for code in pairs)
                lines.append((number, y, text))
    return lines


def neighbour(i: int):
    from skin_model.similar import Neighbour

    return Neighbour(image=f"ISIC_{i:07d}", diagnosis="nevus", distance=0.01 * i, source=f"source-{i}", path="")


def alerted_prediction(similar=None, warnings=()):
    from skin_model import CLASSES
    from skin_model.predict import Prediction

    probabilities = {c: 1 / len(CLASSES) for c in CLASSES} | {"melanoma": 0.4}
    return Prediction(
        file="x",
        probabilities=probabilities,
        top_class="melanoma",
        top_probability=0.4,
        risk_group="high",
        melanoma_probability=0.4,
        melanoma_alert=True,
        alert_threshold=0.103,
        warnings=list(warnings),
        alert_probability=0.4,
        similar=similar,
    )


def rendered(reference=None, similar=None, warnings=()):
    import numpy as np

    page = report.Page(np.full((64, 64, 3), 120, np.uint8), alerted_prediction(similar, warnings))
    return pdf_lines(report.render([page], VersionRecord.from_dict(METADATA | {"version": 1}), reference))


def test_a_reference_in_any_script_prints_as_typed_and_what_the_font_lacks_is_named_not_lost():
    text = " ".join(line for _, _, line in rendered("Dvořák Łódź 患者 🙂"))
    assert "Dvořák Łódź" in text
    assert "U+60A3" in text and "U+8005" in text and "U+1F642" in text  # no glyph: its code point, never '?'


def test_a_long_reference_wraps_inside_the_page_and_newlines_are_kept():
    long = "ward 3 / bed 17 / " + "x" * 60 + " / referred by the general practitioner on the third visit END"
    assert len(long) >= 117
    lines = [line for _, _, line in rendered(long + "\nline1\nline2")]
    start = next(line for line in lines if "ward 3" in line)
    assert "END" not in start and any("END" in line for line in lines)  # wrapped, nothing cut
    assert "line1" in lines and "line2" in lines and not any("line1line2" in line for line in lines)


def test_many_similar_cases_are_capped_and_paginated_and_nothing_prints_over_the_footer():
    warnings = [f"warning number {i}: " + "a long explanation of the imaging condition " * 3 for i in range(6)]
    lines = rendered("a reference\non two lines", [neighbour(i) for i in range(40)], warnings)
    text = " ".join(line for _, _, line in lines)
    shown = [i for i in range(40) if f"ISIC_{i:07d}" in text]
    assert shown == list(range(report.SIMILAR_LIMIT))  # the nearest ones, none lost in the middle
    assert all(f"warning number {i}" in text for i in range(6))
    disclaimer = " ".join(report.DISCLAIMER.split())
    for page, y, line in lines:
        if y < FOOTER_RULE_PT + 2:  # in the footer band: only the footer itself
            assert line.strip() in disclaimer, (page, y, line)


def test_the_cli_refuses_more_similar_cases_than_it_shows(tmp_path, capsys):
    from skin_model.cli import main

    for argv in (["report", "x.png", "-o", str(tmp_path / "r.pdf")], ["predict", "x.png"]):
        with pytest.raises(SystemExit) as stop:
            main([*argv, "--similar", "1000"])
        assert stop.value.code == 2 and "at most" in capsys.readouterr().err


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
    text = pdf_text(report.render([report.Page(pixels(), prediction(0.07))], VersionRecord.from_dict(METADATA)))

    assert text.index("MELANOMA ALERT: CONSIDER EXCISION OR BIOPSY") < text.index("Most likely diagnoses")
    assert "Top diagnosis" not in text
    assert "P(melanoma) 7.0 % reaches the alert threshold 6.2 %." in text
    assert "raised on 38 of 100 benign lesions and catches 93 of 100 melanomas" in " ".join(text.split())
    assert "miss few melanomas" in text and "Risk group: low" in text
    assert "not predicted" in text and "seborrheic keratosis" in text
    assert "0.0 %" not in text.split("seborrheic keratosis")[1].splitlines()[0]


def test_a_batch_report_starts_with_a_summary_page_alerts_and_refusals_first():
    batch = [prediction(0.01, "calm.png"), prediction(0, "photo.png", lesion=False), prediction(0.2, "alert.png")]
    pdf = report.render([report.Page(pixels(), p) for p in batch], VersionRecord.from_dict(METADATA), "ward 3 / 17")

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
