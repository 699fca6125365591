"""Uploaded image bytes -> the 28x28 uint8 MNIST form a model expects (white digit on black, 0..255).

Pure numpy + Pillow (no TensorFlow): `decode_image` turns PNG/JPEG/BMP/GIF bytes into a float grey
array, refusing anything else, anything corrupt, and anything that declares more than `MAX_PIXELS`
pixels (checked from the header, before a single pixel is decoded). `to_mnist` then repeats the
preparation described for the MNIST data set itself: make the digit light on dark, drop background
and noise, crop to the ink, scale the longer side to 20 pixels keeping the aspect ratio (with
anti-aliasing, so the ink keeps grey levels) and place it in a 28x28 field so that its centre of mass
lies at the centre. A clean MNIST digit comes back (nearly) unchanged; a photo of a dark digit on
paper comes out looking like one.
"""

from __future__ import annotations

import io
import struct
import warnings

import numpy as np
from PIL import Image, ImageOps

__all__ = ["ALLOWED_FORMATS", "MAX_PIXELS", "ImageError", "decode_image", "image_to_mnist", "to_mnist"]

MAX_PIXELS: int = 40_000_000
ALLOWED_FORMATS = {"PNG", "JPEG", "BMP", "GIF"}

SIZE = 28  # the field
BOX = 20  # the longer side of the digit inside it
CENTRE = SIZE / 2  # where the centre of mass goes (MNIST digits' centres of mass lie in 13.5..14.5)

# Pillow names multi-picture JPEGs (what many phone cameras write) "MPO": still a JPEG.
_FORMAT_ALIASES = {"MPO": "JPEG"}
_EXIF_ORIENTATION = 0x0112
_ALLOWED_TEXT = "a PNG, JPEG, BMP or GIF image"
# What Pillow's decoders raise on malformed input (UnidentifiedImageError is an OSError).
_DECODE_ERRORS = (OSError, SyntaxError, ValueError, EOFError, IndexError, KeyError, TypeError,
                  struct.error, ZeroDivisionError)

# to_mnist's thresholds, all relative (to the noise level or to the ink's contrast), so the result does
# not depend on the scale of the input values.
_NOISE_K = 3.0  # a pixel is ink when it is this many noise deviations above the background ...
_FLOOR = 0.02  # ... and above this fraction of the ink's contrast (JPEG ringing, faint smudges)
_BLOCK_K = 5.0  # a block (see _block_factor) holds ink when its mean is this far above the background
_BLOCK_FLOOR = 0.1  # ... and above this fraction of the contrast
_SEED = 0.4  # only blocks connected to one above this fraction of the contrast count (specks do not)
_Q80_TO_SIGMA = 1.2816  # the 80th percentile of |normal noise|, in standard deviations


class ImageError(ValueError):
    """The upload is not an image this service can read; the message says what was wrong."""


# -- decoding ---------------------------------------------------------------------------------------


def decode_image(data: bytes) -> np.ndarray:
    """PNG, JPEG, BMP or GIF bytes -> a 2-D float32 grey array, 0 (black) .. 255 (white).

    The first frame of an animation; transparency is laid on a background that contrasts with the
    visible pixels (white behind a dark drawing); EXIF orientation is applied. Raises ImageError.
    """
    if not data:
        raise ImageError("image is empty")
    try:
        with warnings.catch_warnings():
            # Pillow warns (not raises) for images a little over its own limit; refuse those too.
            # (catch_warnings is process-wide, not per thread, before Python 3.14: at worst this one
            # narrow filter outlives a race between threads, which is harmless.)
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            img = _open_checked(data)
            img.load()
    except ImageError:
        raise
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        # Pillow's own, larger limit tripped inside Image.open, before _open_checked saw the size.
        raise ImageError(_too_large(_declared_size(data))) from None
    except _DECODE_ERRORS as exc:
        raise ImageError(f"image could not be decoded (corrupt or truncated?): {exc}") from None
    return _to_grey(_upright(img))


def _open_checked(data: bytes) -> Image.Image:
    """Open (reads the header only) and check format and declared size before anything is decoded."""
    try:
        img = Image.open(io.BytesIO(data), formats=sorted(ALLOWED_FORMATS))
    except Image.UnidentifiedImageError:
        raise ImageError(f"not {_ALLOWED_TEXT}") from None
    fmt = _FORMAT_ALIASES.get(img.format or "", img.format)
    if fmt not in ALLOWED_FORMATS:
        raise ImageError(f"not {_ALLOWED_TEXT} (found {img.format})")
    width, height = img.size
    if width * height > MAX_PIXELS:
        raise ImageError(_too_large(img.size))
    if width < 1 or height < 1:
        raise ImageError(f"image declares {width}x{height} pixels: nothing to read")
    img.seek(0)  # the first frame of an animation (already current after open; explicit for clarity)
    return img


def _too_large(size: tuple[int, int] | None) -> str:
    declared = f"{size[0]}x{size[1]} pixels" if size else "more pixels"
    return f"image declares {declared}, more than the {MAX_PIXELS} allowed"


def _declared_size(data: bytes) -> tuple[int, int] | None:
    """The size in the header, read by the format's own class (which, unlike Image.open, has no limit)."""
    from PIL import BmpImagePlugin, GifImagePlugin, JpegImagePlugin, PngImagePlugin

    for reader in (PngImagePlugin.PngImageFile, JpegImagePlugin.JpegImageFile,
                   GifImagePlugin.GifImageFile, BmpImagePlugin.BmpImageFile):
        try:
            return reader(io.BytesIO(data)).size
        except _DECODE_ERRORS:
            continue
    return None


def _upright(img: Image.Image) -> Image.Image:
    """Apply the EXIF orientation (phone photos are often stored sideways); a bad EXIF block is ignored."""
    try:
        if img.getexif().get(_EXIF_ORIENTATION, 1) in (1, None):
            return img
        return ImageOps.exif_transpose(img)
    except _DECODE_ERRORS:
        return img


def _to_grey(img: Image.Image) -> np.ndarray:
    mode = img.mode
    if mode.startswith("I") or mode == "F":
        return _wide_to_grey(img)
    if mode in ("RGBA", "LA", "PA", "RGBa", "La") or "transparency" in img.info:
        la = np.asarray(img.convert("RGBA").convert("LA"), dtype=np.float32)
        return _flatten_alpha(la[..., 0], la[..., 1] / 255.0)
    if mode != "L":
        try:
            img = img.convert("L")
        except ValueError:  # a mode with no direct conversion to L
            img = img.convert("RGB").convert("L")
    return np.asarray(img, dtype=np.float32)


def _wide_to_grey(img: Image.Image) -> np.ndarray:
    """16- or 32-bit grey (Pillow's own conversion to L clips at 255 instead of scaling)."""
    values = np.asarray(img).astype(np.float32)
    if img.mode.startswith("I;16"):
        top = 65535.0
    else:
        finite = values[np.isfinite(values)]
        high = float(finite.max()) if finite.size else 0.0
        top = 255.0 if high <= 255.0 else 65535.0 if high <= 65535.0 else high
        values = np.nan_to_num(values, nan=0.0, posinf=top, neginf=0.0)
    return np.clip(values * np.float32(255.0 / top), 0.0, 255.0).astype(np.float32)


def _flatten_alpha(grey: np.ndarray, alpha: np.ndarray) -> np.ndarray:
    """Lay a grey+alpha image on white, or on black when what is visible is mostly light."""
    weight = float(alpha.sum())
    visible_mean = float((grey * alpha).sum()) / weight if weight > 0 else 0.0
    background = 0.0 if visible_mean > 127.5 else 255.0
    return (grey * alpha + background * (1.0 - alpha)).astype(np.float32)


# -- the MNIST preparation ----------------------------------------------------------------------------


def image_to_mnist(data: bytes) -> np.ndarray:
    """Image bytes -> (28, 28) uint8, white digit on black. Raises ImageError."""
    return to_mnist(decode_image(data))


def to_mnist(grey: np.ndarray) -> np.ndarray:
    """A 2-D grey image (either polarity, any size) -> (28, 28) uint8 in MNIST form; zeros if blank."""
    grey = np.asarray(grey)
    if grey.ndim == 3 and grey.shape[2] == 1:
        grey = grey[..., 0]
    if grey.ndim != 2 or grey.size == 0:
        raise ImageError(f"expected a non-empty 2-D grey image, got shape {list(grey.shape)}")
    grey = np.nan_to_num(grey.astype(np.float32, copy=False))
    blank = np.zeros((SIZE, SIZE), dtype=np.uint8)

    ink = _ink(grey)
    if ink is None:
        return blank
    rows = np.flatnonzero(ink.any(axis=1))
    cols = np.flatnonzero(ink.any(axis=0))
    if rows.size == 0:
        return blank
    ink = ink[rows[0]:rows[-1] + 1, cols[0]:cols[-1] + 1]

    digit = _scale_to_box(ink)
    total = float(digit.sum())
    if not total > 0:
        return blank
    ys = np.arange(digit.shape[0], dtype=np.float64)
    xs = np.arange(digit.shape[1], dtype=np.float64)
    cy = float(digit.sum(axis=1) @ ys) / total
    cx = float(digit.sum(axis=0) @ xs) / total
    top = min(max(int(np.floor(CENTRE - cy + 0.5)), 0), SIZE - digit.shape[0])
    left = min(max(int(np.floor(CENTRE - cx + 0.5)), 0), SIZE - digit.shape[1])

    field = np.zeros((SIZE, SIZE), dtype=np.float32)
    field[top:top + digit.shape[0], left:left + digit.shape[1]] = digit
    field *= 255.0 / float(field.max())
    return np.clip(np.floor(field + 0.5), 0, 255).astype(np.uint8)


def _ink(grey: np.ndarray) -> np.ndarray | None:
    """The ink, light on dark, background 0, noise and specks away from the strokes removed."""
    border = _border(grey)
    level = float(np.median(border))
    # Polarity: the ink is whatever departs most from the background, darker or lighter.
    sample = grey[:: max(1, grey.shape[0] // 256), :: max(1, grey.shape[1] // 256)]
    darker = float(np.clip(level - sample, 0, None).sum())
    lighter = float(np.clip(sample - level, 0, None).sum())
    if darker > lighter:
        grey = -grey
        border = -border
        level = -level
    values = grey - np.float32(level)
    sigma = _noise(border - level)

    # Where the ink is, judged on block means: averaging silences pixel noise, so lone specks of noise
    # or paper texture fall away while strokes (many pixels wide in a photo) stay.
    factor = _block_factor(grey.shape)
    blocks = _block_means(values, factor)
    contrast = float(blocks.max())
    if not contrast > 0:
        return None
    block_sigma = sigma if factor == 1 else _noise(_border(blocks))
    present = _connected_to(blocks > max(_BLOCK_K * block_sigma, _BLOCK_FLOOR * contrast),
                            blocks > max(_BLOCK_K * block_sigma, _SEED * contrast))
    if not present.any():
        return None

    # Keep the pixels well above the noise (with their grey levels), within a block of a stroke.
    threshold = max(_NOISE_K * sigma, _FLOOR * contrast)
    ink = np.where(values > threshold, values, np.float32(0))
    mask = _dilate(present)
    if factor > 1:
        mask = np.repeat(np.repeat(mask, factor, axis=0), factor, axis=1)
        pad = (grey.shape[0] - mask.shape[0], grey.shape[1] - mask.shape[1])
        mask = np.pad(mask, ((0, pad[0]), (0, pad[1])), mode="edge")
    ink *= mask
    return ink


def _noise(deviations: np.ndarray) -> float:
    """The background's noise level (a standard deviation) from its deviations from the background
    level: the 80th percentile of their size, which for normal noise is 1.28 standard deviations, and
    which (unlike the median) also sees sparse departures such as JPEG ringing, while up to a fifth of
    the border may be ink without inflating it."""
    return float(np.percentile(np.abs(deviations), 80)) / _Q80_TO_SIGMA


def _border(a: np.ndarray) -> np.ndarray:
    if a.shape[0] <= 2 or a.shape[1] <= 2:
        return a.ravel()
    return np.concatenate([a[0], a[-1], a[1:-1, 0], a[1:-1, -1]])


def _block_factor(shape: tuple[int, ...]) -> int:
    """Block side for the ink map: at most 100 blocks along the longer side (1 up to 100 pixels)."""
    return max(1, min(-(-max(shape) // 100), min(shape) // 8))


def _block_means(a: np.ndarray, factor: int) -> np.ndarray:
    if factor == 1:
        return a
    h, w = (a.shape[0] // factor) * factor, (a.shape[1] // factor) * factor
    return a[:h, :w].reshape(h // factor, factor, w // factor, factor).mean(axis=(1, 3))


def _connected_to(mask: np.ndarray, seeds: np.ndarray) -> np.ndarray:
    """The cells of `mask` 8-connected (within it) to a cell of `seeds`: hysteresis thresholding."""
    region = seeds & mask
    while True:
        grown = _dilate(region) & mask
        if np.array_equal(grown, region):
            return region
        region = grown


def _dilate(mask: np.ndarray) -> np.ndarray:
    """Grow a boolean map by one cell in all eight directions."""
    grown = np.pad(mask, 1)
    grown = grown[:-2] | grown[1:-1] | grown[2:]
    return grown[:, :-2] | grown[:, 1:-1] | grown[:, 2:]


def _scale_to_box(ink: np.ndarray) -> np.ndarray:
    """Scale so the longer side is BOX pixels, keeping the aspect ratio (Pillow's BILINEAR widens its
    support when it shrinks, so it averages: anti-aliased, and without LANCZOS's ringing)."""
    h, w = ink.shape
    scale = BOX / max(h, w)
    size = (max(1, min(BOX, round(w * scale))), max(1, min(BOX, round(h * scale))))
    if size == (w, h):
        return ink
    resized = Image.fromarray(np.ascontiguousarray(ink, dtype=np.float32)).resize(
        size, Image.Resampling.BILINEAR)
    return np.clip(np.asarray(resized, dtype=np.float32), 0, None)
