"""Many edits of one image: the core of ClassifyEdits.

An explanation removes one window of an image after another and asks for the
probabilities of every result. Sending each edited image whole would move the
same pixels again and again; an edit is only its rectangle and the new pixels
there. `EditedImages` checks the edits against the base image and rebuilds
edited images a batch at a time, so memory stays bounded by the batch size
whatever the number of edits.

How the probabilities are computed is the classifier's business: by running
every edited image through the whole network (`classify_edits_in_full`), or
incrementally from the base image's cached activations where the model allows
it (services/classifier/incremental/).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass

import numpy as np

from common.errors import InvalidInput


@dataclass(frozen=True)
class ImageEdit:
    """New pixels for the rectangle x <= u < x + width, y <= v < y + height."""

    x: int
    y: int
    width: int
    height: int
    rgb: np.ndarray  # height x width x 3, uint8

    def apply(self, image: np.ndarray) -> np.ndarray:
        """A copy of `image` with this edit's pixels in place."""
        edited = image.copy()
        edited[self.y : self.y + self.height, self.x : self.x + self.width] = self.rgb
        return edited


def edit_from_bytes(
    index: int,
    x: int,
    y: int,
    width: int,
    height: int,
    rgb: bytes,
    image_width: int,
    image_height: int,
) -> ImageEdit:
    """An edit as it arrives over gRPC, checked against the base image's size."""
    what = f"edit {index}"
    if width <= 0 or height <= 0:
        raise InvalidInput(f"{what}: the rectangle is empty ({width}x{height})")
    if x + width > image_width or y + height > image_height:
        raise InvalidInput(
            f"{what}: rectangle x={x} y={y} {width}x{height} does not fit in the "
            f"{image_width}x{image_height} image"
        )
    expected = width * height * 3
    if len(rgb) != expected:
        raise InvalidInput(
            f"{what}: {len(rgb)} bytes of RGB do not match {width}x{height}x3 = {expected}"
        )
    pixels = np.frombuffer(rgb, dtype=np.uint8).reshape(height, width, 3)
    return ImageEdit(x, y, width, height, pixels)


def edited_batches(
    base: np.ndarray, edits: Sequence[ImageEdit], batch_size: int
) -> Iterator[list[np.ndarray]]:
    """The edited images, `batch_size` at a time."""
    for start in range(0, len(edits), batch_size):
        yield [edit.apply(base) for edit in edits[start : start + batch_size]]
