"""The only place where raw bytes become pixels.

Every front end (CLI, app, dataset loader, tests) decodes through
:func:`decode`, so an upload and a training image get the same treatment:
restricted decoders, a pixel limit against decompression bombs, EXIF
orientation applied, any mode turned into 8-bit RGB, metadata dropped.
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import threading
import time
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import ExifTags, Image, UnidentifiedImageError

from skin_model.config import skin_home
from skin_model.errors import ImageError

# The one list of accepted images: Pillow's decoder, the name people know, the file extensions.
# The decoder, the upload widget, the dataset scan and the messages all derive from it.
# MPO (multi-picture JPEG) is opened by the JPEG opener; naming it here raised KeyError.
ACCEPTED = (
    ("JPEG", "JPEG", (".jpg", ".jpeg")),
    ("PNG", "PNG", (".png",)),
    ("BMP", "BMP", (".bmp",)),
    ("TIFF", "TIFF", (".tif", ".tiff")),
    ("WEBP", "WebP", (".webp",)),
    ("GIF", "GIF", (".gif",)),
)
FORMATS = tuple(decoder for decoder, _, _ in ACCEPTED)
EXTENSIONS = tuple(extension for _, _, extensions in ACCEPTED for extension in extensions)
UPLOAD_TYPES = [extension.lstrip(".") for extension in EXTENSIONS]  # what st.file_uploader's ``type`` takes
FORMAT_NAMES = ", ".join(name for _, name, _ in ACCEPTED[:-1]) + f" or {ACCEPTED[-1][1]}"
MAX_PIXELS = 50_000_000  # a 50-megapixel camera frame; bombs claim far more
MAX_BYTES = 50 * 1024 * 1024
MAX_SIDE = 1024  # larger images are reduced at decode time to bound memory
LOW_RESOLUTION = 100  # shortest side below this gets a warning
BAND_ROWS = 256  # rows converted at a time when a large image is reduced (a few MB per band)
HIGH_BIT_MODES = ("I;16", "I;16L", "I;16B", "I;16N", "I", "F")
# A large image without a reduced-scale decoder (PNG, TIFF, WebP, GIF) is one full-size copy while it is
# reduced: up to 200 MB for 49 MP RGBA. Ten sessions uploading one each would hold 2 GB at once, so the
# process decodes at most two such images at a time; the others wait a second or two.
LARGE_PIXELS = (2 * MAX_SIDE) ** 2
LARGE_DECODES = threading.BoundedSemaphore(2)
# Pillow allocates an image in blocks (16 MB by default). glibc serves freed blocks of that size again
# from each thread's own heap and keeps them: ten sessions' decodes left 2.4 GB resident after they
# ended. Blocks over glibc's 32 MB mmap ceiling are mapped and unmapped, so the memory goes back.
Image.core.set_block_size(64 * 1024 * 1024)


@dataclass(frozen=True)
class Quality:
    """Cheap image statistics behind the acquisition warnings."""

    width: int
    height: int
    brightness: float
    sharpness: float

    def warnings(self) -> list[str]:
        found = []
        if min(self.width, self.height) < LOW_RESOLUTION:
            found.append(f"low resolution ({self.width}x{self.height} pixels)")
        if self.brightness < 40:
            found.append("image too dark")
        elif self.brightness > 225:
            found.append("image overexposed")
        if self.sharpness < 15:
            found.append("image looks blurry")
        return found


def read_bytes(path: Path) -> bytes:
    """Read a file with a size cap, so a huge file is refused before decoding."""
    try:
        size = path.stat().st_size
        if size > MAX_BYTES:
            raise ImageError(f"{path.name}: file is {size / 1e6:.0f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB")
        return path.read_bytes()
    except OSError as error:
        raise ImageError(f"{path}: cannot be read ({error.strerror or error})") from None


def decode(data: bytes | Path, name: str | None = None, max_side: int | None = MAX_SIDE) -> np.ndarray:
    """Decode an image into an ``(H, W, 3)`` uint8 RGB array, or raise ImageError."""
    if isinstance(data, Path):
        name = name or data.name
        data = read_bytes(data)
    name = name or "image"
    if not data:
        raise ImageError(f"{name}: the file is empty")
    if len(data) > MAX_BYTES:
        raise ImageError(f"{name}: file is {len(data) / 1e6:.0f} MB; the limit is {MAX_BYTES / 1e6:.0f} MB")
    with warnings.catch_warnings():
        warnings.simplefilter("error", Image.DecompressionBombWarning)
        try:
            image = Image.open(io.BytesIO(data), formats=FORMATS)
            width, height = image.size
            if width * height > MAX_PIXELS:
                raise ImageError(
                    f"{name}: {width}x{height} pixels is over the {MAX_PIXELS // 1_000_000}-megapixel limit"
                )
            if max_side and image.format == "JPEG" and max(width, height) > 2 * max_side:
                image.draft("RGB", (max_side, max_side))  # decode at reduced scale: less memory
            image.seek(0)  # first frame of an animation
        except ImageError:
            raise
        except (Image.DecompressionBombError, Image.DecompressionBombWarning):
            raise ImageError(f"{name}: the image claims too many pixels (possible decompression bomb)") from None
        except UnidentifiedImageError:
            raise ImageError(f"{name}: not a supported image ({FORMAT_NAMES})") from None
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise ImageError(f"{name}: the image is corrupt or truncated ({error})") from None
    large = image.width * image.height > LARGE_PIXELS  # after draft: a JPEG decoded at reduced scale is not
    with LARGE_DECODES if large else contextlib.nullcontext():
        try:
            image.load()
        except (OSError, ValueError, SyntaxError, EOFError) as error:
            raise ImageError(f"{name}: the image is corrupt or truncated ({error})") from None
        try:
            orientation = image.getexif().get(ExifTags.Base.Orientation, 1)  # read now: a reduced copy loses it
            rgb = upright(reduced_rgb(image, max_side), orientation)
        except (OSError, ValueError) as error:
            raise ImageError(f"{name}: the image could not be converted to RGB ({error})") from None
        image.close()  # the full-size pixels go before the next waiting decode starts
    if max_side and max(rgb.size) > max_side:
        rgb.thumbnail((max_side, max_side), Image.Resampling.LANCZOS)
    return np.asarray(rgb, dtype=np.uint8).copy()


def reduced_rgb(image: Image.Image, max_side: int | None) -> Image.Image:
    """8-bit RGB; an image over twice ``max_side`` is box-reduced by a whole factor on the way.

    Only JPEG decodes at a smaller scale (``draft``); PNG, TIFF, WebP and GIF arrive at full size.
    Converting such an image whole (RGBA composite, palette, 16-bit) would make several full-size
    copies, so it is converted and reduced a band of rows at a time: the decoded image is the only
    full-size copy. Bands hold whole blocks of rows, so the result equals reducing the whole image.
    """
    factor = max(image.size) // max_side if max_side else 1
    if factor < 2:
        return to_rgb(image)
    top = white_level(image) if image.mode in HIGH_BIT_MODES else None  # one scale for every band
    width, height = image.size
    rows = factor * max(1, BAND_ROWS // factor)
    reduced = Image.new("RGB", (-(-width // factor), -(-height // factor)))
    for y in range(0, height, rows):
        band = to_rgb(image.crop((0, y, width, min(y + rows, height))), top)
        reduced.paste(band.reduce(factor), (0, y // factor))
    return reduced


def upright(image: Image.Image, orientation: int) -> Image.Image:
    """Apply an EXIF orientation (as ``ImageOps.exif_transpose`` does) to an already reduced image."""
    method = {
        2: Image.Transpose.FLIP_LEFT_RIGHT,
        3: Image.Transpose.ROTATE_180,
        4: Image.Transpose.FLIP_TOP_BOTTOM,
        5: Image.Transpose.TRANSPOSE,
        6: Image.Transpose.ROTATE_270,
        7: Image.Transpose.TRANSVERSE,
        8: Image.Transpose.ROTATE_90,
    }.get(orientation)
    return image.transpose(method) if method else image


def white_level(image: Image.Image) -> float:
    """The value shown as white for a 16-bit or 32-bit image: its full range, or 255 when its values fit 8 bits."""
    return 65535.0 if image.mode.startswith("I;16") or image.getextrema()[1] > 255 else 255.0


def to_rgb(image: Image.Image, top: float | None = None) -> Image.Image:
    """Any Pillow mode to 8-bit RGB, keeping what the clinician would see (``top``: see :func:`white_level`)."""
    if image.mode in HIGH_BIT_MODES:
        values = np.asarray(image, dtype=np.float64)
        top = top or white_level(image)
        grey = np.clip(values / top * 255.0, 0, 255).astype(np.uint8)
        return Image.fromarray(grey, "L").convert("RGB")
    if image.mode == "P":
        image = image.convert("RGBA" if "transparency" in image.info else "RGB")
    if image.mode in ("RGBA", "LA", "PA", "RGBa", "La"):
        rgba = image.convert("RGBA")
        background = Image.new("RGBA", rgba.size, (255, 255, 255, 255))
        return Image.alpha_composite(background, rgba).convert("RGB")
    return image.convert("RGB")


def quality(pixels: np.ndarray) -> Quality:
    """Brightness and a Laplacian-variance sharpness score on a 256-px grey copy."""
    height, width = pixels.shape[:2]
    grey = Image.fromarray(pixels).convert("L")
    grey.thumbnail((256, 256))
    g = np.asarray(grey, dtype=np.float32)
    if min(g.shape) < 3:  # 1x1, or a strip: no pixel has four neighbours, so no detail can be measured (0, blurry)
        return Quality(width=width, height=height, brightness=float(g.mean()), sharpness=0.0)
    lap = -4 * g[1:-1, 1:-1] + g[:-2, 1:-1] + g[2:, 1:-1] + g[1:-1, :-2] + g[1:-1, 2:]
    return Quality(width=width, height=height, brightness=float(g.mean()), sharpness=float(lap.var()))


def pixel_hash(pixels: np.ndarray) -> str:
    """The identity of an image by its decoded pixels: the same picture in another file or format matches."""
    return hashlib.sha256(pixels.tobytes() + str(pixels.shape).encode()).hexdigest()


def to_png(pixels: np.ndarray) -> bytes:
    """Encode pixels as PNG with no metadata (for anything the app saves)."""
    buffer = io.BytesIO()
    Image.fromarray(pixels).save(buffer, format="PNG")
    return buffer.getvalue()


def thumbnail_url(pixels: np.ndarray, side: int = 72) -> str:
    """A small PNG of the pixels as a ``data:`` URL, for a table's image column (no metadata, nothing stored)."""
    import base64

    image = Image.fromarray(np.ascontiguousarray(pixels[..., :3]))
    image.thumbnail((side, side), Image.Resampling.BILINEAR)
    return "data:image/png;base64," + base64.b64encode(to_png(np.asarray(image))).decode("ascii")


def review_folder() -> Path:
    return skin_home() / "saved"


def save_for_review(pixels: np.ndarray) -> Path:
    """Store one image a user explicitly chose to keep: a new PNG from pixels only, under a generated name.

    Nothing of the upload survives but its pixels: no EXIF (GPS, camera, dates), ICC profile,
    comments, or file name (names often carry patient identifiers). Written atomically.
    """
    from skin_model.registry import write_atomic

    folder = review_folder()
    name = time.strftime("%Y%m%d-%H%M%S", time.gmtime()) + f"-{secrets.token_hex(4)}.png"
    try:
        write_atomic(folder / name, to_png(pixels))
    except OSError as error:
        raise ImageError(f"could not save the image to {folder} ({error.strerror or error})") from None
    return folder / name
