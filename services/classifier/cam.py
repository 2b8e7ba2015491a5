"""Class activation maps laid back over the request image.

The CAM of class c is sum_k w_ck f_k over the last feature map f (Zhou et al.
2016; the weights come from services/classifier/cam_head.py). It lives on the
network's grid, which covers the part of the image the network saw: all of it,
or, for a card with a centre crop, the crop. `cams_for_image` maps it back:
- the map's size is the request image's, or smaller when `max_side` caps the
  longer side (aspect kept): the map's own resolution is a few dozen cells, so
  512 px carry all of it, and a client scales the PNG up to the image;
- the grid is resized onto the box the network saw (`seen`, in map pixels);
  outside it the map is 0 and means "not seen", never a stretched guess;
- values are scaled so 255 marks the most activated place inside the box; the
  raw range is returned so maps can be compared.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import cv2
import numpy as np
from PIL import Image

from services.classifier.cam_head import CamHead
from services.classifier.preprocess import Geometry


@dataclass(frozen=True)
class ClassActivationMap:
    class_id: int
    # map_height x map_width uint8; 255 = most activated.
    image: np.ndarray
    raw_min: float
    raw_max: float
    # The request image's size: the map covers all of it.
    image_width: int
    image_height: int
    # (x, y, width, height) in map pixels of what the network saw; None = everything.
    seen: tuple[int, int, int, int] | None = None


def normalise_map(class_map: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A float map -> (0..1 map, raw min, raw max); a flat map becomes all zeros."""
    low, high = float(class_map.min()), float(class_map.max())
    span = high - low
    if span <= 1e-12:
        return np.zeros_like(class_map, dtype=np.float32), low, high
    return ((class_map - low) / span).astype(np.float32), low, high


def cam_image(class_map: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, float]:
    """A class map on the network's grid -> (HxW uint8 of the given size, raw min, raw max).

    Resized first and scaled to 0..255 after, so that 255 marks the most
    activated region exactly, whatever the interpolation did to the peak.
    """
    class_map = np.ascontiguousarray(class_map, dtype=np.float32)
    map_height, map_width = class_map.shape
    if width >= map_width and height >= map_height:
        # Enlarging (the usual case: a 15x15 grid to the photo) is plain
        # bilinear in both libraries, equal to 1e-6; OpenCV's takes 0.02 ms
        # against Pillow's 0.7 ms with its float-image round trip.
        big = cv2.resize(class_map, (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        small = Image.fromarray(class_map)  # float32 -> mode "F"
        big = np.asarray(small.resize((width, height), Image.Resampling.BILINEAR))
    unit, low, high = normalise_map(big)
    return np.rint(unit * 255.0).astype(np.uint8), low, high


def map_size(width: int, height: int, max_side: int = 0) -> tuple[int, int]:
    """(width, height) of a CAM for a width x height image, the longer side at most max_side."""
    if max_side <= 0 or max(width, height) <= max_side:
        return width, height
    factor = max_side / max(width, height)
    return max(1, round(width * factor)), max(1, round(height * factor))


def seen_box(geometry: Geometry, map_width: int, map_height: int) -> tuple[int, int, int, int]:
    """The crop the network saw, in the pixels of a map_width x map_height map."""
    x, y, width, height = geometry.crop
    sx = map_width / geometry.resized_width
    sy = map_height / geometry.resized_height
    x0, y0 = round(x * sx), round(y * sy)
    x1 = max(x0 + 1, min(map_width, round((x + width) * sx)))
    y1 = max(y0 + 1, min(map_height, round((y + height) * sy)))
    return x0, y0, x1 - x0, y1 - y0


def class_maps(features: np.ndarray, head: CamHead, class_ids: Sequence[int]) -> np.ndarray:
    """[len(class_ids), h, w] = sum_k w_ck f_k for one image's feature map."""
    channel_axis = head.channel_axis - 1  # one image: the batch axis is gone
    rows = head.weights[list(class_ids)]
    return np.tensordot(rows, features, axes=([1], [channel_axis])).astype(np.float32)


def cams_for_image(
    features: np.ndarray,
    head: CamHead,
    class_ids: Sequence[int],
    geometry: Geometry,
    max_side: int = 0,
) -> list[ClassActivationMap]:
    """The CAMs of `class_ids` for one image, from its feature map."""
    if not class_ids:
        return []
    maps = class_maps(features, head, class_ids)
    width, height = map_size(geometry.width, geometry.height, max_side)
    seen = seen_box(geometry, width, height) if geometry.cropped else None
    cams = []
    for class_id, raw in zip(class_ids, maps, strict=True):
        if seen is None:
            image, low, high = cam_image(raw, width, height)
        else:
            x, y, box_width, box_height = seen
            inside, low, high = cam_image(raw, box_width, box_height)
            image = np.zeros((height, width), np.uint8)
            image[y : y + box_height, x : x + box_width] = inside
        cams.append(
            ClassActivationMap(class_id, image, low, high, geometry.width, geometry.height, seen)
        )
    return cams
