"""A PNG writer for the gateway's answers, and how hard to compress each one.

Pillow spends most of its PNG time choosing row filters per row. The pictures
the gateway returns are of two kinds:
- the page's working copies (227-512 px) and their CAMs: written stored (zlib
  level 0, no filter), which costs a tenth of a millisecond; compressing a
  227 px photo saves 15-30% for 2-4 ms to write and 1 ms to read back, on a
  path the page takes at every stroke (the page sends each answer back);
- large pictures (a 12 MP photo, its CAMs at up to 512 px): stored, a 12 MP
  photo is 36 MB (and 360 ms of adler32 and copying); with the Sub filter
  (each byte minus its left neighbour's) and zlib level 1 it is 11 MB in
  about the same time. There compressing makes the answer smaller than it
  costs to write.
`png_level("auto", pixels)` picks by size; IC_PNG_COMPRESSION=0..9 forces a
level. The files are ordinary 8-bit grayscale, gray+alpha or RGB PNGs.
"""

from __future__ import annotations

import struct
import zlib

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
# Above this many pixels an answer's PNG is compressed ("auto"): a 512x512
# working copy is stored, anything larger is compressed.
AUTO_STORED_MAX_PIXELS = 512 * 512
AUTO_LEVEL = 1
COLOR_TYPES = {1: 0, 2: 4, 3: 2}  # channels -> PNG colour type: gray, gray+alpha, RGB


def png_level(setting: str | int, pixels: int) -> int:
    """The zlib level for a picture of `pixels` pixels under IC_PNG_COMPRESSION."""
    if setting == "auto":
        return 0 if pixels <= AUTO_STORED_MAX_PIXELS else AUTO_LEVEL
    return int(setting)


def _chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def encode_png_fast(array: np.ndarray, level: int = 1) -> bytes:
    """HxW (gray), HxWx2 (gray+alpha) or HxWx3 (RGB) uint8 array -> PNG bytes.

    Level 0 stores the rows unfiltered; higher levels use the Sub filter, which
    turns a photo's smooth rows into small numbers that zlib packs well.
    """
    if array.dtype != np.uint8 or array.ndim not in (2, 3):
        raise ValueError(f"expected an 8-bit gray or RGB array, got {array.dtype} {array.shape}")
    height, width = array.shape[:2]
    channels = 1 if array.ndim == 2 else array.shape[2]
    if channels not in COLOR_TYPES:
        raise ValueError(f"expected 1, 2 or 3 channels, got {channels}")
    flat = np.ascontiguousarray(array).reshape(height, width * channels)
    # Each row starts with its filter type byte: 0 none, 1 Sub.
    rows = np.empty((height, width * channels + 1), dtype=np.uint8)
    if level == 0:
        rows[:, 0] = 0
        rows[:, 1:] = flat
        compressor = zlib.compressobj(0)
    else:
        rows[:, 0] = 1
        rows[:, 1 : 1 + channels] = flat[:, :channels]
        np.subtract(flat[:, channels:], flat[:, :-channels], out=rows[:, 1 + channels :])
        compressor = zlib.compressobj(level, zlib.DEFLATED, 15, 9, zlib.Z_DEFAULT_STRATEGY)
    idat = compressor.compress(rows.data) + compressor.flush()
    header = struct.pack(">IIBBBBB", width, height, 8, COLOR_TYPES[channels], 0, 0, 0)
    return SIGNATURE + _chunk(b"IHDR", header) + _chunk(b"IDAT", idat) + _chunk(b"IEND", b"")
