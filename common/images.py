"""Decoding the images and masks of proto/ic/v1/image.proto, with limits.

Every check raises InvalidInput (or a subclass) naming the problem, before any
large allocation: the header of an encoded file is read for its size first, so
a decompression bomb is refused without being decoded.
"""

from __future__ import annotations

import io
from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
from PIL import Image as PILImage
from PIL import ImageOps

from common.errors import InvalidInput, TooLarge, UnsupportedImageType
from ic.v1 import image_pb2

ACCEPTED_FORMATS = ("PNG", "JPEG", "WEBP")
EXIF_ORIENTATION = 0x0112
# Pillow's own bomb check would raise before ours on absurd sizes; ours is stricter.
PILImage.MAX_IMAGE_PIXELS = None


@dataclass(frozen=True)
class ImageLimits:
    max_side: int = 4096
    max_pixels: int = 4096 * 4096

    def check(self, width: int, height: int, what: str = "image") -> None:
        if width <= 0 or height <= 0:
            raise InvalidInput(f"{what} has zero size ({width}x{height})")
        if max(width, height) > self.max_side:
            raise TooLarge(
                f"{what} is {width}x{height}; the longest side allowed is {self.max_side} px"
            )
        if width * height > self.max_pixels:
            raise TooLarge(
                f"{what} is {width}x{height} = {width * height} pixels; "
                f"at most {self.max_pixels} are allowed"
            )


def decode_encoded_rgb(
    data: bytes,
    limits: ImageLimits,
    what: str = "image",
    before_decode: Callable[[int, int], None] | None = None,
) -> np.ndarray:
    """PNG, JPEG or WebP bytes -> HxWx3 uint8 RGB (EXIF orientation applied).

    `before_decode(width, height)` runs once the header has passed the limits
    and before any pixel is decoded (e.g. to reserve a PixelBudget)."""
    if not data:
        raise InvalidInput(f"{what} is empty")
    try:
        pil = PILImage.open(io.BytesIO(data))
    except Exception as exc:  # Pillow raises several types for garbage
        raise InvalidInput(f"{what} could not be decoded: not a PNG, JPEG or WebP file") from exc
    if pil.format not in ACCEPTED_FORMATS:
        raise UnsupportedImageType(f"{what} is {pil.format}; accepted types are PNG, JPEG and WebP")
    limits.check(*pil.size, what=what)
    if before_decode is not None:
        before_decode(*pil.size)
    try:
        # Phone photos say which way is up in EXIF. exif_transpose always copies the
        # decoded image (1.4 ms at 227 px), so it only runs when there is a turn to make.
        if pil.getexif().get(EXIF_ORIENTATION, 1) != 1:
            pil = ImageOps.exif_transpose(pil)
        if pil.mode != "RGB":
            pil = pil.convert("RGB")
        rgb = np.asarray(pil, dtype=np.uint8)
    except Exception as exc:
        raise InvalidInput(f"{what} could not be decoded: the file is damaged") from exc
    return np.ascontiguousarray(rgb)


def decode_image(msg: image_pb2.Image, limits: ImageLimits, what: str = "image") -> np.ndarray:
    """An Image message -> HxWx3 uint8 RGB array."""
    kind = msg.WhichOneof("pixels")
    if kind == "encoded":
        return decode_encoded_rgb(msg.encoded, limits, what)
    if kind == "raw":
        raw = msg.raw
        limits.check(raw.width, raw.height, what=what)
        expected = raw.width * raw.height * 3
        if len(raw.rgb) != expected:
            raise InvalidInput(
                f"{what}: {len(raw.rgb)} bytes of RGB do not match {raw.width}x{raw.height}x3 "
                f"= {expected}"
            )
        return np.frombuffer(raw.rgb, dtype=np.uint8).reshape(raw.height, raw.width, 3)
    raise InvalidInput(f"{what} is empty: set raw or encoded pixels")


def raw_image(rgb: np.ndarray) -> image_pb2.Image:
    """HxWx3 uint8 array -> Image message with raw pixels."""
    height, width = rgb.shape[:2]
    return image_pb2.Image(
        raw=image_pb2.RawImage(width=width, height=height, rgb=np.ascontiguousarray(rgb).tobytes())
    )


def mask_from_encoded(data: bytes, width: int, height: int, what: str = "mask") -> np.ndarray:
    """A PNG mask -> HxW bool, True where any channel (alpha included) is non-zero."""
    if not data:
        raise InvalidInput(f"{what} is empty")
    try:
        pil = PILImage.open(io.BytesIO(data))
    except Exception as exc:
        raise InvalidInput(f"{what} could not be decoded: not an image file") from exc
    if pil.format not in ACCEPTED_FORMATS:
        raise UnsupportedImageType(f"{what} is {pil.format}; send the mask as a PNG")
    if pil.size != (width, height):
        raise InvalidInput(
            f"{what} is {pil.size[0]}x{pil.size[1]} but the image is {width}x{height}; "
            "they must have the same size"
        )
    try:
        if pil.mode not in ("1", "L", "LA", "RGB", "RGBA", "I", "I;16", "F"):
            pil = pil.convert("RGBA")
        arr = np.asarray(pil)
    except Exception as exc:
        raise InvalidInput(f"{what} could not be decoded: the file is damaged") from exc
    return arr.any(axis=2) if arr.ndim == 3 else arr != 0


def decode_mask(msg: image_pb2.Mask, width: int, height: int, what: str = "mask") -> np.ndarray:
    """A Mask message -> HxW bool array for an image of width x height."""
    kind = msg.WhichOneof("pixels")
    if kind == "raw":
        raw = msg.raw
        if (raw.width, raw.height) != (width, height):
            raise InvalidInput(
                f"{what} is {raw.width}x{raw.height} but the image is {width}x{height}; "
                "they must have the same size"
            )
        if len(raw.data) != width * height:
            raise InvalidInput(
                f"{what}: {len(raw.data)} bytes do not match {width}x{height} = {width * height}"
            )
        return np.frombuffer(raw.data, dtype=np.uint8).reshape(height, width) != 0
    if kind == "encoded":
        return mask_from_encoded(msg.encoded, width, height, what)
    if kind == "rect":
        rect = msg.rect
        x1, y1 = min(rect.x + rect.width, width), min(rect.y + rect.height, height)
        if rect.x >= width or rect.y >= height or x1 <= rect.x or y1 <= rect.y:
            raise InvalidInput(
                f"{what}: rectangle x={rect.x} y={rect.y} {rect.width}x{rect.height} "
                f"lies outside the {width}x{height} image"
            )
        mask = np.zeros((height, width), dtype=bool)
        mask[rect.y : y1, rect.x : x1] = True
        return mask
    raise InvalidInput(f"{what} is empty: set raw, encoded or rect")


def raw_mask(mask: np.ndarray) -> image_pb2.Mask:
    """HxW bool/uint8 array -> Mask message with raw bytes (255 = remove)."""
    height, width = mask.shape
    data = (np.asarray(mask) != 0).astype(np.uint8) * 255
    return image_pb2.Mask(raw=image_pb2.RawMask(width=width, height=height, data=data.tobytes()))


def encode_png(array: np.ndarray) -> bytes:
    """HxW (grayscale) or HxWx3 uint8 array -> PNG bytes."""
    buf = io.BytesIO()
    PILImage.fromarray(np.ascontiguousarray(array)).save(buf, format="PNG", compress_level=1)
    return buf.getvalue()
