"""`crop_to_mask` of the Inpainter contract, against both real services: the
answer is the mask's bounding box of the very image the full answer gives, and
`box` says where it lies (the explainer sends each window on this way)."""

from __future__ import annotations

import numpy as np
import pytest

from common.images import raw_image, raw_mask
from ic.v1 import inpainter_pb2
from tests.support.inpainting import TIMEOUT, decode, inpaint, rect_mask, stub_for

SERVICES = ["inpainter_service", "patchmatch_service"]


@pytest.fixture(params=SERVICES)
def stub(request):
    return stub_for(request.getfixturevalue(request.param).address)


def box_of(message) -> tuple[int, int, int, int]:
    return message.x, message.y, message.width, message.height


def brush(shape) -> np.ndarray:
    """A diagonal stroke whose bounding box is x 30..79, y 40..64."""
    mask = np.zeros(shape[:2], dtype=bool)
    for step in range(25):
        mask[40 + step, 30 + 2 * step : 32 + 2 * step] = True
    return mask


def test_inpaint_answers_the_mask_box_of_the_full_answer(stub, photo_rgb):
    image = photo_rgb("soccer")
    mask = brush(image.shape)
    full, _ = inpaint(stub, image, mask, seed=5)
    response = stub.Inpaint(
        inpainter_pb2.InpaintRequest(
            image=raw_image(image), mask=raw_mask(mask), seed=5, crop_to_mask=True
        ),
        timeout=TIMEOUT,
    )
    assert box_of(response.box) == (30, 40, 50, 25)
    assert np.array_equal(decode(response.image), full[40:65, 30:80])


def test_inpaint_many_crops_each_result_to_its_own_mask(stub, photo_rgb):
    image = photo_rgb("beach")
    height, width = image.shape[:2]
    masks = [
        rect_mask(16, 32, 48, 48),
        rect_mask(width - 20, height - 10, 50, 50),  # clipped to the image
        raw_mask(brush(image.shape)),
    ]
    expected_boxes = [(16, 32, 48, 48), (width - 20, height - 10, 20, 10), (30, 40, 50, 25)]
    cropped = stub.InpaintMany(
        inpainter_pb2.InpaintManyRequest(
            image=raw_image(image), masks=masks, seed=9, crop_to_mask=True
        ),
        timeout=TIMEOUT,
    )
    results = {result.index: result for result in cropped}
    assert sorted(results) == [0, 1, 2]
    full = stub.InpaintMany(
        inpainter_pb2.InpaintManyRequest(image=raw_image(image), masks=masks, seed=9),
        timeout=TIMEOUT,
    )
    whole = {result.index: decode(result.image) for result in full}
    for index, (x, y, w, h) in enumerate(expected_boxes):
        result = results[index]
        assert box_of(result.box) == (x, y, w, h)
        assert result.image.raw.width == w and result.image.raw.height == h
        assert np.array_equal(decode(result.image), whole[index][y : y + h, x : x + w])
    # The point of it: a 48 px window travels as 7 KB, not as the whole photo.
    assert len(results[0].image.raw.rgb) == 48 * 48 * 3


def test_an_empty_mask_answers_the_whole_image_unchanged(stub, photo_rgb):
    image = photo_rgb("lighthouse")
    response = stub.Inpaint(
        inpainter_pb2.InpaintRequest(
            image=raw_image(image),
            mask=raw_mask(np.zeros(image.shape[:2], dtype=bool)),
            crop_to_mask=True,
        ),
        timeout=TIMEOUT,
    )
    assert box_of(response.box) == (0, 0, image.shape[1], image.shape[0])
    assert np.array_equal(decode(response.image), image)


def test_without_crop_to_mask_there_is_no_box(stub, photo_rgb):
    image = photo_rgb("soccer")
    _, response = inpaint(stub, image, brush(image.shape))
    assert not response.HasField("box")
    assert (response.image.raw.width, response.image.raw.height) == image.shape[1::-1]
