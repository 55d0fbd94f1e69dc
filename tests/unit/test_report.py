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
    assert "Chosen by the user" in report._validated(METADATA, 0.2)


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
