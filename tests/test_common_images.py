"""common/images: decoding images and masks, and refusing bad ones by name."""

from __future__ import annotations

import io
import struct
import zlib

import numpy as np
import pytest
from PIL import Image

from common.errors import InvalidInput, TooLarge, UnsupportedImageType
from common.images import (
    ImageLimits,
    decode_encoded_rgb,
    decode_mask,
    encode_png,
    mask_from_encoded,
)
from ic.v1 import image_pb2

LIMITS = ImageLimits(max_side=1024, max_pixels=1024 * 768)


def encoded(image: Image.Image, fmt: str, **kwargs) -> bytes:
    buffer = io.BytesIO()
    image.save(buffer, format=fmt, **kwargs)
    return buffer.getvalue()


def test_exif_orientation_is_applied(photo_rgb):
    wide = photo_rgb("soccer")[:100]  # 227 x 100
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90° clockwise to display"
    data = encoded(Image.fromarray(wide), "JPEG", exif=exif.tobytes(), quality=95)
    assert decode_encoded_rgb(data, LIMITS).shape == (227, 100, 3)
    plain = encoded(Image.fromarray(wide), "JPEG", quality=95)
    assert decode_encoded_rgb(plain, LIMITS).shape == (100, 227, 3)


@pytest.mark.parametrize("mode", ["L", "LA", "P", "RGBA", "1"])
def test_every_png_mode_becomes_rgb(photo_rgb, mode):
    source = Image.fromarray(photo_rgb("beach")).convert(mode)
    rgb = decode_encoded_rgb(encoded(source, "PNG"), LIMITS)
    assert rgb.shape == (227, 227, 3) and rgb.dtype == np.uint8
    np.testing.assert_array_equal(rgb, np.asarray(source.convert("RGB")))


def test_webp_is_accepted_gif_and_bmp_are_not(photo_rgb):
    image = Image.fromarray(photo_rgb("beach"))
    assert decode_encoded_rgb(encoded(image, "WEBP"), LIMITS).shape == (227, 227, 3)
    for fmt in ("GIF", "BMP"):
        with pytest.raises(UnsupportedImageType, match=f"image is {fmt}"):
            decode_encoded_rgb(encoded(image, fmt), LIMITS)


def test_damaged_and_empty_files_are_refused(photo_bytes):
    jpeg = photo_bytes("soccer")
    with pytest.raises(InvalidInput, match="damaged"):
        decode_encoded_rgb(jpeg[: len(jpeg) // 3], LIMITS)
    with pytest.raises(InvalidInput, match="image is empty"):
        decode_encoded_rgb(b"", LIMITS)
    with pytest.raises(InvalidInput, match="not a PNG, JPEG or WebP"):
        decode_encoded_rgb(b"%PDF-1.4 not an image", LIMITS)


def png_header_only(width: int, height: int) -> bytes:
    """A PNG that declares a size but carries almost no pixels: a decompression bomb's shape."""

    def chunk(kind: bytes, body: bytes) -> bytes:
        return (
            struct.pack(">I", len(body)) + kind + body + struct.pack(">I", zlib.crc32(kind + body))
        )

    header = struct.pack(">IIBBBBB", width, height, 8, 2, 0, 0, 0)
    return (
        b"\x89PNG\r\n\x1a\n"
        + chunk(b"IHDR", header)
        + chunk(b"IDAT", zlib.compress(b""))
        + chunk(b"IEND", b"")
    )


def test_size_limits_are_checked_before_decoding():
    with pytest.raises(TooLarge, match="longest side allowed is 1024"):
        decode_encoded_rgb(png_header_only(60000, 10), LIMITS)
    with pytest.raises(TooLarge, match="at most 786432 are allowed"):
        decode_encoded_rgb(png_header_only(1000, 1000), LIMITS)


def test_masks_count_any_channel_and_alpha():
    rgba = np.zeros((4, 5, 4), np.uint8)
    rgba[0, 0, 3] = 1  # alpha only
    rgba[1, 1, 2] = 7  # blue only
    mask = mask_from_encoded(encoded(Image.fromarray(rgba), "PNG"), 5, 4)
    assert mask.sum() == 2 and mask[0, 0] and mask[1, 1]
    with pytest.raises(InvalidInput, match="mask is 5x4 but the image is 4x5"):
        mask_from_encoded(encode_png(rgba[..., 0]), 4, 5)


def test_rectangle_masks_are_clipped_and_must_touch_the_image():
    rect = image_pb2.Mask(rect=image_pb2.MaskRect(x=8, y=2, width=10, height=3))
    mask = decode_mask(rect, 10, 6)
    assert mask.sum() == 2 * 3 and mask[2:5, 8:10].all()
    outside = image_pb2.Mask(rect=image_pb2.MaskRect(x=10, y=0, width=3, height=3))
    with pytest.raises(InvalidInput, match="lies outside the 10x6 image"):
        decode_mask(outside, 10, 6)
    with pytest.raises(InvalidInput, match="mask is empty"):
        decode_mask(image_pb2.Mask(), 10, 6)
