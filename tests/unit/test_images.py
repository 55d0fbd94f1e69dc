"""images.decode turns any acceptable upload into 8-bit RGB, and refuses the rest in one line."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from skin_model import images
from skin_model.errors import ImageError


def save(image: Image.Image, fmt: str, **options) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **options)
    return buffer.getvalue()


def png_claiming(width: int, height: int) -> bytes:
    """A tiny valid PNG whose header claims ``width`` x ``height`` (CRC fixed, so Pillow trusts it)."""
    data = bytearray(save(Image.new("RGB", (1, 1)), "PNG"))
    data[16:24] = struct.pack(">II", width, height)  # IHDR data starts after signature, length, type
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


def noise(height: int, width: int, low: int = 0, high: int = 256, seed: int = 0) -> np.ndarray:
    return np.random.default_rng(seed).integers(low, high, size=(height, width, 3), dtype=np.uint8)


def assert_one_line_naming(error: pytest.ExceptionInfo, name: str) -> None:
    message = str(error.value)
    assert "\n" not in message
    assert message.startswith(f"{name}: ")


# -- accepted inputs --------------------------------------------------------------
def test_jpeg_decodes_to_uint8_rgb_of_the_same_size(blob, encode):
    pixels = images.decode(encode(blob(seed=1, size=48), "JPEG", quality=95))

    assert pixels.shape == (48, 48, 3)
    assert pixels.dtype == np.uint8


def test_png_decodes_losslessly(blob, encode):
    original = blob(seed=2)

    assert np.array_equal(images.decode(encode(original, "PNG")), original)


def test_rgba_is_composited_on_white_into_three_channels():
    rgba = np.zeros((20, 20, 4), dtype=np.uint8)
    rgba[:, :10] = (0, 0, 255, 0)  # fully transparent blue
    rgba[:, 10:] = (0, 200, 0, 255)  # opaque green

    pixels = images.decode(save(Image.fromarray(rgba, "RGBA"), "PNG"))

    assert pixels.shape == (20, 20, 3)
    assert (pixels[:, :10] == 255).all()
    assert (pixels[:, 10:] == (0, 200, 0)).all()


def test_palette_image_with_transparency_shows_white_where_transparent():
    image = Image.new("P", (20, 20), 1)
    image.putpalette([0, 0, 0, 255, 0, 0] + [0] * (256 * 3 - 6))
    image.paste(0, (0, 0, 10, 20))  # left half uses the transparent index

    pixels = images.decode(save(image, "PNG", transparency=0))

    assert (pixels[:, :10] == 255).all()
    assert (pixels[:, 10:] == (255, 0, 0)).all()


def test_16_bit_greyscale_is_scaled_not_clipped_to_white():
    values = np.tile(np.linspace(0, 65535, 64).astype(np.uint16), (16, 1))
    values[:, :8] = 1000  # dark in 16-bit terms: must stay dark
    image = Image.fromarray(values)
    assert image.mode.startswith("I;16")

    pixels = images.decode(save(image, "PNG"))

    assert pixels.shape == (16, 64, 3)
    assert pixels[:, :8].max() <= 5
    assert pixels[0, -1, 0] == 255
    row = pixels[0, 8:, 0].astype(int)
    assert (np.diff(row) >= 0).all() and 100 < row[len(row) // 2] < 155


def test_cmyk_jpeg_becomes_rgb_with_the_same_colour():
    red_in_cmyk = Image.new("CMYK", (32, 32), (0, 255, 255, 0))

    pixels = images.decode(save(red_in_cmyk, "JPEG", quality=95))

    assert pixels.shape == (32, 32, 3)
    red, green, blue = pixels[16, 16].astype(int)
    assert red > 200 and green < 60 and blue < 60


def test_greyscale_becomes_three_equal_channels():
    grey = np.tile(np.arange(0, 256, 8, dtype=np.uint8), (10, 1))

    pixels = images.decode(save(Image.fromarray(grey, "L"), "PNG"))

    assert pixels.shape == (10, 32, 3)
    assert (pixels[..., 0] == grey).all() and (pixels[..., 1] == grey).all() and (pixels[..., 2] == grey).all()


def test_animated_gif_gives_its_first_frame():
    frames = [Image.new("RGB", (24, 24), colour) for colour in ((255, 0, 0), (0, 0, 255), (0, 255, 0))]
    gif = save(frames[0], "GIF", save_all=True, append_images=frames[1:], duration=100, loop=0)

    pixels = images.decode(gif)

    assert pixels.shape == (24, 24, 3)
    assert (pixels == (255, 0, 0)).all()


def test_multi_picture_jpeg_from_a_phone_gives_its_first_picture():
    first, second = Image.new("RGB", (24, 24), (250, 0, 0)), Image.new("RGB", (24, 24), (0, 0, 250))
    mpo = save(first, "MPO", save_all=True, append_images=[second], quality=95)
    assert Image.open(io.BytesIO(mpo)).format == "MPO"

    pixels = images.decode(mpo)

    red, green, blue = pixels[12, 12].astype(int)
    assert red > 230 and green < 20 and blue < 20


def test_exif_orientation_6_is_applied_so_width_and_height_swap():
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to display"
    landscape = Image.fromarray(noise(40, 60))  # 60 wide, 40 high as stored

    pixels = images.decode(save(landscape, "JPEG", exif=exif))

    assert pixels.shape == (60, 40, 3)


def test_png_bytes_in_a_file_named_jpg_are_decoded_by_content(tmp_path, blob, encode):
    path = tmp_path / "photo.jpg"
    original = blob(seed=3)
    path.write_bytes(encode(original, "PNG"))

    assert np.array_equal(images.decode(path), original)


def test_an_image_larger_than_max_side_is_reduced_keeping_its_aspect():
    big = save(Image.new("RGB", (3000, 2000), (120, 80, 60)), "JPEG")

    pixels = images.decode(big, max_side=1024)

    assert max(pixels.shape[:2]) == 1024
    assert abs(pixels.shape[1] / pixels.shape[0] - 1.5) < 0.01


# -- refused inputs -------------------------------------------------------------
def truncated_jpeg() -> bytes:
    whole = save(Image.fromarray(noise(200, 200)), "JPEG", quality=95)
    return whole[: len(whole) // 2]


@pytest.mark.parametrize(
    "data",
    [
        pytest.param(b"", id="empty"),
        pytest.param(b"notes about the mole on the left shoulder\n", id="text"),
        pytest.param(b"<!DOCTYPE html><html><body><img src='x.jpg'></body></html>", id="html"),
        pytest.param(np.random.default_rng(0).bytes(4096), id="random-bytes"),
        pytest.param(truncated_jpeg(), id="truncated-jpeg"),
    ],
)
def test_unusable_bytes_raise_image_error_in_one_line_naming_the_file(data):
    with pytest.raises(ImageError) as error:
        images.decode(data, name="upload.jpg")

    assert_one_line_naming(error, "upload.jpg")


@pytest.mark.parametrize(
    ("width", "height"),
    [
        pytest.param(50_000, 50_000, id="far-over-pillow-limit"),
        pytest.param(10_000, 10_000, id="over-pillow-warning-limit"),
        pytest.param(8_000, 8_000, id="over-our-50-megapixel-limit"),
    ],
)
def test_a_decompression_bomb_is_refused_before_pixels_are_allocated(width, height):
    bomb = png_claiming(width, height)
    assert len(bomb) < 100

    with pytest.raises(ImageError, match="pixels") as error:
        images.decode(bomb, name="bomb.png")

    assert_one_line_naming(error, "bomb.png")


def test_a_file_over_max_bytes_is_refused_before_reading(tmp_path):
    path = tmp_path / "huge.jpg"
    with path.open("wb") as handle:  # sparse: costs no disk
        handle.truncate(images.MAX_BYTES + 1)

    with pytest.raises(ImageError, match="limit") as error:
        images.decode(path)

    assert_one_line_naming(error, "huge.jpg")


def test_bytes_over_max_bytes_are_refused():
    with pytest.raises(ImageError, match="limit"):
        images.decode(b"\xff" * (images.MAX_BYTES + 1), name="upload.jpg")


def test_a_missing_file_raises_image_error_naming_it(tmp_path):
    with pytest.raises(ImageError, match="cannot be read") as error:
        images.decode(tmp_path / "gone.jpg")

    assert str(tmp_path / "gone.jpg") in str(error.value)


# -- acquisition warnings -------------------------------------------------------
def test_a_sharp_well_exposed_image_gets_no_warnings():
    assert images.quality(noise(200, 200)).warnings() == []


def test_a_dark_image_is_flagged_too_dark():
    assert images.quality(noise(200, 200, 0, 30)).warnings() == ["image too dark"]


def test_an_overexposed_image_is_flagged():
    assert images.quality(noise(200, 200, 230, 256)).warnings() == ["image overexposed"]


def test_a_small_image_is_flagged_low_resolution_with_its_size():
    assert images.quality(noise(40, 60)).warnings() == ["low resolution (60x40 pixels)"]


def test_a_smooth_image_is_flagged_blurry_and_noise_is_not():
    gradient = np.tile(np.linspace(60, 200, 200).astype(np.uint8)[None, :, None], (200, 1, 3))

    blurry, sharp = images.quality(gradient), images.quality(noise(200, 200))

    assert "image looks blurry" in blurry.warnings()
    assert sharp.sharpness > 100 * max(blurry.sharpness, 1e-3)


def test_to_png_round_trips_pixels_and_carries_no_exif():
    exif = Image.Exif()
    exif[0x010F] = "PhoneMaker"  # camera make: metadata that must not be saved again
    exif[0x0112] = 1
    pixels = images.decode(save(Image.fromarray(noise(30, 40)), "JPEG", exif=exif))

    png = Image.open(io.BytesIO(images.to_png(pixels)))

    assert png.format == "PNG"
    assert "exif" not in png.info
    assert len(png.getexif()) == 0
    assert np.array_equal(np.asarray(png), pixels)


def test_save_for_review_writes_only_a_generated_name_and_explains_a_failure(skin_home):
    pixels = noise(20, 30)
    first, second = images.save_for_review(pixels), images.save_for_review(pixels)
    assert first != second and first.parent == skin_home / "saved"
    assert sorted(p.name for p in first.parent.iterdir()) == sorted([first.name, second.name])  # no temp left
    assert np.array_equal(np.asarray(Image.open(first)), pixels)
    for path in (first, second):
        path.unlink()
    first.parent.rmdir()
    first.parent.write_text("a file where the folder should be")
    with pytest.raises(images.ImageError, match="could not save the image to"):
        images.save_for_review(pixels)
