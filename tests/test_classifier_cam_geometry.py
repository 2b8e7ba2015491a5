"""CAMs laid back over the request image: their size (capped for big photos), and
for a model that crops, the box it saw, with nothing guessed outside it."""

from __future__ import annotations

import cv2
import numpy as np
import pytest
from PIL import Image

from services.classifier.core import ClassifierModel
from services.classifier.onnx_model import load_model
from tests.support.served_models import EFFICIENTNET, SQUEEZENET, builtin_card

SOCCER_BALL = 805
# Where the ball lies in soccer.jpg (x0, y0, x1, y1), and the grass below the players.
BALL_BOX = (28, 132, 52, 156)
GRASS_BOX = (0, 190, 227, 227)


@pytest.fixture(scope="module")
def squeezenet(model_path) -> ClassifierModel:
    return load_model(builtin_card(SQUEEZENET, model_path))


@pytest.fixture(scope="module")
def effnet() -> ClassifierModel:
    card = builtin_card(EFFICIENTNET)
    if not card.onnx.is_file():
        pytest.fail(f"{card.onnx} is missing: run `make model`")
    return load_model(card)


@pytest.fixture(scope="module")
def big_photo(photo_rgb) -> np.ndarray:
    """The soccer photo as a 1000x600 picture (the ball left of centre)."""
    return np.asarray(Image.fromarray(photo_rgb("soccer")).resize((1000, 600), Image.BICUBIC))


def peak(image: np.ndarray) -> np.ndarray:
    """The centre of the map's brightest pixels, (x, y)."""
    ys, xs = np.nonzero(image >= image.max() - 3)
    return np.array([xs.mean(), ys.mean()])


def test_a_capped_cam_of_a_big_photo_scales_up_onto_the_full_one(squeezenet, big_photo):
    capped, full = (
        squeezenet.classify([big_photo], top_k=1, cam_class_ids=[SOCCER_BALL], cam_max_side=side)
        .results[0]
        .cams[0]
        for side in (512, 0)
    )
    assert capped.image.shape == (307, 512) and full.image.shape == (600, 1000)
    assert (
        (capped.image_width, capped.image_height)
        == (1000, 600)
        == (full.image_width, full.image_height)
    )
    assert capped.seen is None and capped.image.max() == 255
    scaled = cv2.resize(capped.image, (1000, 600), interpolation=cv2.INTER_LINEAR)
    assert np.linalg.norm(peak(scaled) - peak(full.image)) < 4
    assert np.abs(scaled.astype(int) - full.image).mean() < 2
    # A map never grows past the image: a 227 px photo keeps its size.
    small = squeezenet.classify([big_photo[:227, :227]], cam_class_ids=[1], cam_max_side=512)
    assert small.results[0].cams[0].image.shape == (227, 227)


def test_a_cropping_model_says_what_it_saw_and_leaves_the_rest_blank(effnet, big_photo):
    capped, full = (
        effnet.classify([big_photo], top_k=1, cam_class_ids=[SOCCER_BALL], cam_max_side=side)
        .results[0]
        .cams[0]
        for side in (512, 0)
    )
    # Resized to 427x256, the centre 224x224 (x 101..325, y 16..240) is what the
    # network saw: in the 512x307 map that is 121..390 by 19..288.
    assert capped.image.shape == (307, 512)
    assert capped.seen == (121, 19, 269, 269)
    x, y, width, height = capped.seen
    inside = capped.image[y : y + height, x : x + width]
    assert inside.max() == 255
    outside = capped.image.copy()
    outside[y : y + height, x : x + width] = 0
    assert outside.max() == 0
    # The full-size map's box is the same box at the image's scale.
    scale = 1000 / 512
    assert np.allclose(np.array(full.seen), np.array(capped.seen) * scale, atol=2.5)


def test_both_models_find_the_ball(squeezenet, effnet, photo_rgb):
    soccer = photo_rgb("soccer")
    for model in (squeezenet, effnet):
        cam = model.classify([soccer], top_k=1, cam_class_ids=[SOCCER_BALL]).results[0].cams[0]
        x0, y0, x1, y1 = BALL_BOX
        gx0, gy0, gx1, gy1 = GRASS_BOX
        on_ball = cam.image[y0:y1, x0:x1].mean()
        assert on_ball > 1.5 * cam.image[gy0:gy1, gx0:gx1].mean(), model.name
        assert on_ball > 1.4 * cam.image.mean(), model.name
    assert cam.seen == (14, 14, 199, 199)  # EfficientNet-Lite0's centre crop of a 227 px photo
