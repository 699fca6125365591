"""api.imaging: uploaded image bytes -> the 28x28 MNIST form, on real MNIST test digits.

What callers rely on: a clean MNIST digit comes back as itself; a photo of a digit (dark on light
paper, off-centre, large, noisy, JPEG or colour PNG) comes out in MNIST form (digit 20 pixels on its
longer side, centre of mass at the centre, looking like the clean digit); the common formats and
modes decode; anything else, corrupt, or too large is refused with an ImageError saying why.
"""

from __future__ import annotations

import io
import struct
import time
import zlib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image, ImageFile

from api.imaging import (
    ALLOWED_FORMATS,
    MAX_PIXELS,
    ImageError,
    decode_image,
    image_to_mnist,
    to_mnist,
)

MNIST = Path(__file__).resolve().parents[1] / "data" / "mnist.npz"


@pytest.fixture(scope="module")
def digits() -> tuple[np.ndarray, np.ndarray]:
    with np.load(MNIST) as data:
        return data["x_test"], data["y_test"]


@pytest.fixture(scope="module")
def one_per_class(digits) -> list[np.ndarray]:
    """The first test digit of each class 0..9."""
    x, y = digits
    return [x[int(np.flatnonzero(y == label)[0])] for label in range(10)]


# -- helpers ----------------------------------------------------------------------------------------


def encode(image: Image.Image | np.ndarray, fmt: str, **options) -> bytes:
    if isinstance(image, np.ndarray):
        image = Image.fromarray(image)
    buffer = io.BytesIO()
    image.save(buffer, fmt, **options)
    return buffer.getvalue()


def centre_of_mass(a: np.ndarray) -> tuple[float, float]:
    a = a.astype(np.float64)
    ys, xs = np.indices(a.shape)
    return float((a * ys).sum() / a.sum()), float((a * xs).sum() / a.sum())


def ink_sides(a: np.ndarray) -> tuple[int, int]:
    rows, cols = np.flatnonzero(a.any(axis=1)), np.flatnonzero(a.any(axis=0))
    return int(rows[-1] - rows[0] + 1), int(cols[-1] - cols[0] + 1)


def pearson(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def best_pearson(a: np.ndarray, b: np.ndarray) -> float:
    """Pearson r allowing a shift of one pixel: centring on the centre of mass rounds to whole pixels,
    so the same digit drawn at another scale may land one pixel over."""
    return max(pearson(a, np.roll(b, (dy, dx), axis=(0, 1))) for dy in (-1, 0, 1) for dx in (-1, 0, 1))


def assert_mnist_form(out: np.ndarray) -> None:
    """What MNIST promises about every digit: uint8 28x28, full contrast, the ink's longer side
    20 pixels (19 where a faint edge row rounds away), centre of mass within half a pixel of (14, 14)."""
    assert out.shape == (28, 28)
    assert out.dtype == np.uint8
    assert out.max() == 255
    assert max(ink_sides(out)) in (19, 20)
    cy, cx = centre_of_mass(out)
    assert abs(cy - 14) <= 0.5 + 1e-6
    assert abs(cx - 14) <= 0.5 + 1e-6


def photo_of(digit: np.ndarray, seed: int, size: tuple[int, int] = (420, 300),
             at: tuple[int, int] = (160, 40)) -> np.ndarray:
    """An MNIST digit as a phone photo of pen on paper: dark on light grey, 8x larger (224 px),
    off-centre on a larger sheet, with sensor noise and a slight colour cast. RGB uint8."""
    rng = np.random.default_rng(seed)
    big = np.asarray(Image.fromarray(digit).resize((224, 224), Image.Resampling.BICUBIC), np.float32)
    ink = np.zeros((size[1], size[0]), np.float32)
    ink[at[1]:at[1] + 224, at[0]:at[0] + 224] = big / 255
    paper, pen = 225.0, 35.0
    grey = paper - ink * (paper - pen) + rng.normal(0, 12, ink.shape)
    rgb = np.stack([grey + 4, grey, grey - 8], axis=-1)
    return np.clip(rgb, 0, 255).astype(np.uint8)


def png_declaring(width: int, height: int) -> bytes:
    """A tiny valid PNG whose IHDR is rewritten to declare width x height (CRC fixed)."""
    data = bytearray(encode(Image.new("L", (8, 8)), "PNG"))
    assert data[12:16] == b"IHDR"
    data[16:24] = struct.pack(">II", width, height)
    data[29:33] = struct.pack(">I", zlib.crc32(bytes(data[12:29])))
    return bytes(data)


# -- clean digits -----------------------------------------------------------------------------------


def test_clean_mnist_png_round_trips_to_itself(digits):
    x, _ = digits
    for digit in x[:60]:
        out = image_to_mnist(encode(digit, "PNG"))
        assert_mnist_form(out)
        assert np.abs(out.astype(np.float64) - digit).mean() < 1.0  # of 255


def test_to_mnist_takes_arrays_of_any_numeric_range(digits):
    digit = digits[0][7]
    reference = to_mnist(digit)
    assert np.array_equal(to_mnist(digit.astype(np.float32)), reference)
    # The thresholds are relative, so values 0..1 (or dark-on-light) give the same digit.
    assert np.array_equal(to_mnist(digit.astype(np.float64) / 255), reference)
    assert pearson(to_mnist(255 - digit.astype(np.float32)), reference) > 0.99


def test_small_digit_in_a_corner_is_scaled_up_and_centred(digits):
    digit = digits[0][1]
    sheet = np.zeros((120, 90), np.uint8)
    sheet[3:17, 70:84] = np.asarray(Image.fromarray(digit).resize((14, 14), Image.Resampling.BILINEAR))
    out = image_to_mnist(encode(sheet, "PNG"))
    assert_mnist_form(out)
    assert best_pearson(out, to_mnist(digit)) > 0.85


# -- photos -----------------------------------------------------------------------------------------


@pytest.mark.parametrize("fmt", ["JPEG", "PNG"])
def test_photo_of_a_digit_comes_out_like_the_mnist_digit(one_per_class, fmt):
    plain = []
    for label, digit in enumerate(one_per_class):
        photo = photo_of(digit, seed=label)
        data = encode(photo, fmt, **({"quality": 85} if fmt == "JPEG" else {}))
        out = image_to_mnist(data)
        assert_mnist_form(out)
        expected = to_mnist(digit)
        assert best_pearson(out, expected) > 0.8, f"digit {label}"
        plain.append(pearson(out, expected))
    assert np.mean(plain) > 0.85


def test_photo_decodes_at_full_size_in_grey(one_per_class):
    grey = decode_image(encode(photo_of(one_per_class[3], seed=3), "PNG"))
    assert grey.shape == (300, 420)
    assert grey.dtype == np.float32
    assert grey.min() >= 0 and grey.max() <= 255


def test_noise_and_specks_away_from_the_digit_are_ignored(one_per_class):
    photo = photo_of(one_per_class[7], seed=7)
    clean = image_to_mnist(encode(photo, "PNG"))
    specked = photo.copy()
    for y, x in [(5, 5), (280, 20), (150, 400), (10, 410), (290, 300)]:  # pen dots far from the digit
        specked[y:y + 3, x:x + 3] = 20
    out = image_to_mnist(encode(specked, "PNG"))
    assert_mnist_form(out)
    assert pearson(out, clean) > 0.99


@pytest.mark.parametrize("background", [255, 0, 128])
def test_blank_image_gives_zeros(background):
    out = image_to_mnist(encode(np.full((64, 48), background, np.uint8), "PNG"))
    assert out.shape == (28, 28) and out.dtype == np.uint8
    assert not out.any()


def test_blank_noisy_photo_gives_zeros():
    paper = np.clip(np.random.default_rng(0).normal(225, 12, (300, 400)), 0, 255).astype(np.uint8)
    assert not image_to_mnist(encode(paper, "JPEG", quality=85)).any()


def test_large_photo_is_fast(one_per_class):
    sheet = Image.new("L", (1000, 1000), 230)
    sheet.paste(Image.fromarray(255 - one_per_class[5]).resize((600, 600)), (250, 150))
    noisy = np.asarray(sheet, np.float32) + np.random.default_rng(5).normal(0, 10, (1000, 1000))
    data = encode(np.clip(noisy, 0, 255).astype(np.uint8), "JPEG", quality=85)
    image_to_mnist(data)
    start = time.perf_counter()
    for _ in range(3):
        out = image_to_mnist(data)
    assert (time.perf_counter() - start) / 3 < 0.25  # typically ~10 ms; generous for slow CI machines
    assert_mnist_form(out)
    assert best_pearson(out, to_mnist(one_per_class[5])) > 0.8


# -- formats and modes ------------------------------------------------------------------------------


def test_bmp_and_gif_decode(one_per_class):
    digit = one_per_class[2]
    expected = to_mnist(digit)
    for data in (encode(digit, "BMP"), encode(Image.fromarray(digit).convert("RGB"), "BMP"),
                 encode(digit, "GIF")):
        assert np.array_equal(image_to_mnist(data), expected)


def test_animated_gif_uses_the_first_frame(one_per_class):
    first, second = (Image.fromarray(one_per_class[i]).convert("P") for i in (4, 9))
    data = encode(first, "GIF", save_all=True, append_images=[second], duration=100, loop=0)
    with Image.open(io.BytesIO(data)) as img:
        assert img.n_frames == 2
    assert np.array_equal(image_to_mnist(data), to_mnist(one_per_class[4]))


def test_transparent_png_of_a_dark_digit_is_laid_on_white(one_per_class):
    digit = one_per_class[6]
    rgba = np.zeros((28, 28, 4), np.uint8)  # black pen, opaque only where the ink is
    rgba[..., 3] = digit
    grey = decode_image(encode(rgba, "PNG"))
    assert grey[0, 0] == 255  # the transparent background became white paper
    assert pearson(image_to_mnist(encode(rgba, "PNG")), to_mnist(digit)) > 0.99


def test_transparent_png_of_a_light_digit_is_laid_on_black(one_per_class):
    digit = one_per_class[6]
    rgba = np.full((28, 28, 4), 255, np.uint8)  # white chalk, opaque only where the ink is
    rgba[..., 3] = digit
    assert pearson(image_to_mnist(encode(rgba, "PNG")), to_mnist(digit)) > 0.99


def test_sixteen_bit_png_is_scaled_not_clipped(one_per_class):
    digit = one_per_class[8]
    data = encode(Image.fromarray(digit.astype(np.uint16) * 257), "PNG")
    with Image.open(io.BytesIO(data)) as img:
        assert img.mode.startswith("I")
    grey = decode_image(data)
    assert np.allclose(grey, digit, atol=0.5)
    assert np.array_equal(image_to_mnist(data), to_mnist(digit))


@pytest.mark.parametrize("mode,fmt", [("P", "PNG"), ("LA", "PNG"), ("1", "PNG"), ("RGB", "JPEG"),
                                      ("CMYK", "JPEG"), ("L", "JPEG"), ("RGBA", "PNG")])
def test_other_modes_decode(one_per_class, mode, fmt):
    digit = one_per_class[0]
    # Dark on light. JPEG at high quality: at 28x28 the ringing of a low-quality JPEG is as strong as
    # a digit's anti-aliased edge, and widens the ink's box by a pixel.
    options = {"quality": 95} if fmt == "JPEG" else {}
    data = encode(Image.fromarray(255 - digit).convert(mode), fmt, **options)
    grey = decode_image(data)
    assert grey.shape == (28, 28) and grey.dtype == np.float32
    out = image_to_mnist(data)
    assert out.max() == 255
    assert pearson(out, to_mnist(digit)) > 0.9


def test_exif_orientation_is_applied(one_per_class):
    digit = one_per_class[7]
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 degrees clockwise to display"
    stored = Image.fromarray(255 - digit).transpose(Image.Transpose.ROTATE_90)
    out = image_to_mnist(encode(stored, "JPEG", quality=95, exif=exif.tobytes()))
    assert pearson(out, to_mnist(digit)) > 0.9


# -- refusals ---------------------------------------------------------------------------------------


def test_empty_bytes_are_refused():
    with pytest.raises(ImageError, match="image is empty"):
        decode_image(b"")


@pytest.mark.parametrize("data", [
    np.random.default_rng(0).integers(0, 256, 4096, dtype=np.uint8).tobytes(),
    b"7,2,1,0,4\nThis is a CSV file renamed to digit.png\n",
    b"\x89PNG\r\n\x1a\n",  # the signature, then nothing
])
def test_non_images_are_refused(data):
    with pytest.raises(ImageError, match="not a PNG, JPEG, BMP or GIF image"):
        image_to_mnist(data)


@pytest.mark.parametrize("fmt", ["TIFF", "WEBP"])
def test_other_image_formats_are_refused_naming_the_allowed_ones(one_per_class, fmt):
    data = encode(one_per_class[1], fmt)
    with Image.open(io.BytesIO(data)) as img:  # a perfectly good image ...
        assert img.format == fmt
    with pytest.raises(ImageError) as caught:  # ... that the service does not take
        image_to_mnist(data)
    assert all(name in str(caught.value) for name in ALLOWED_FORMATS)


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "GIF", "BMP"])
def test_truncated_images_are_refused(one_per_class, fmt):
    photo = Image.fromarray(photo_of(one_per_class[3], seed=3)).convert("L" if fmt == "GIF" else "RGB")
    data = encode(photo, fmt)
    with pytest.raises(ImageError):
        image_to_mnist(data[: len(data) // 2])


def test_corrupt_png_is_refused(one_per_class):
    data = bytearray(encode(one_per_class[3], "PNG"))
    data[60:80] = bytes(20)  # inside the compressed pixels
    with pytest.raises(ImageError):
        image_to_mnist(bytes(data))


# 20000x20000 trips Pillow's own error inside Image.open, 10000x10000 its warning, the others only ours.
@pytest.mark.parametrize("width,height", [(20000, 20000), (10000, 10000), (8000, 6000), (1, MAX_PIXELS + 1)])
def test_decompression_bombs_are_refused_before_decoding(monkeypatch, width, height):
    data = png_declaring(width, height)
    assert len(data) < 100

    def no_decoding(*_args, **_kwargs):
        raise AssertionError("pixels were decoded")

    monkeypatch.setattr(ImageFile.ImageFile, "load", no_decoding)
    monkeypatch.setattr(Image.Image, "load", no_decoding)
    with pytest.raises(ImageError) as caught:
        decode_image(data)
    assert f"{width}x{height}" in str(caught.value)
    assert str(MAX_PIXELS) in str(caught.value)


def test_image_at_the_pixel_limit_header_is_accepted_by_the_check():
    """The limit is on width x height: a header just inside it passes the size check (and, being a
    fake, then fails as corrupt rather than as too large)."""
    with pytest.raises(ImageError) as caught:
        decode_image(png_declaring(MAX_PIXELS, 1))
    assert "declares" not in str(caught.value)


def test_to_mnist_refuses_arrays_that_are_not_grey_images():
    with pytest.raises(ImageError, match="2-D"):
        to_mnist(np.zeros((28, 28, 3)))
    with pytest.raises(ImageError, match="2-D"):
        to_mnist(np.zeros((0, 5)))
