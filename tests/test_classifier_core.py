"""The classifier's pure core, on SqueezeNet 1.1's card: preprocessing, known answers, CAMs."""

from __future__ import annotations

import numpy as np
import pytest

from common.errors import InvalidInput, TooLarge
from common.images import ImageLimits
from services.classifier.cam import cam_image
from services.classifier.core import ClassifierModel, ModelSettings, softmax
from services.classifier.onnx_model import load_model
from services.classifier.preprocess import Preprocessor
from tests.conftest import GALLERY_TOP1
from tests.support.served_models import SQUEEZENET, builtin_card

SOCCER_BALL = 805
BALLPLAYER = 981
# Where the ball lies in soccer.jpg (x0, y0, x1, y1), and the grass below the players.
BALL_BOX = (28, 132, 52, 156)
GRASS_BOX = (0, 190, 227, 227)


@pytest.fixture(scope="module")
def classifier(model_path) -> ClassifierModel:
    settings = ModelSettings(limits=ImageLimits(max_side=2048, max_pixels=2048**2))
    core = load_model(builtin_card(SQUEEZENET, model_path), settings)
    core.warm_up()
    return core


@pytest.fixture(scope="module")
def preprocess() -> Preprocessor:
    """SqueezeNet's preprocessing, as its card describes it."""
    return Preprocessor(builtin_card(SQUEEZENET).input)


@pytest.mark.parametrize(
    ("size", "expected"),
    [
        ((227, 227), (256, 256)),
        ((512, 256), (512, 256)),
        ((300, 600), (256, 512)),
        ((80, 60), (341, 256)),
    ],
)
def test_network_size_keeps_aspect_with_short_side_256(preprocess, size, expected):
    assert preprocess.geometry(*size).network_size == expected
    assert not preprocess.geometry(*size).cropped


def test_preprocess_normalises_with_imagenet_statistics(preprocess):
    grey = np.full((10, 20, 3), 255, np.uint8)
    tensor = preprocess.to_tensor([grey])
    assert tensor.shape == (1, 3, 256, 512)
    mean = np.array([0.485, 0.456, 0.406])
    std = np.array([0.229, 0.224, 0.225])
    np.testing.assert_allclose(tensor[0, :, 0, 0], (1 - mean) / std, rtol=1e-5)


def test_every_gallery_photo_gets_its_known_top1(classifier, photo_rgb):
    for name, label in GALLERY_TOP1.items():
        result = classifier.classify([photo_rgb(name)], top_k=5).results[0]
        assert result.top[0].label == label, name
        assert [s.rank for s in result.top] == [1, 2, 3, 4, 5]
        probs = [s.probability for s in result.top]
        assert probs == sorted(probs, reverse=True)


def test_probabilities_sum_to_one_and_ranks_are_consistent(classifier, photo_rgb):
    result = classifier.classify(
        [photo_rgb("bank")], top_k=3, pinned_class_ids=[1, 480], all_probabilities=True
    ).results[0]
    assert result.probabilities.shape == (1000,)
    assert result.probabilities.sum() == pytest.approx(1.0, abs=1e-5)
    for pinned in result.pinned:
        expected_rank = 1 + int((result.probabilities > pinned.probability).sum())
        assert pinned.rank == expected_rank
        assert pinned.probability == pytest.approx(result.probabilities[pinned.class_id])
    assert [p.class_id for p in result.pinned] == [1, 480]


def test_softmax_is_stable_on_large_scores():
    probs = softmax(np.array([[1000.0, 0.0, 1000.0]]))
    np.testing.assert_allclose(probs, [[0.5, 0.0, 0.5]])


def test_batch_gives_the_same_answers_as_single_calls(classifier, photo_rgb):
    names = ["soccer", "beach", "hockey", "bank"]
    batch = classifier.classify([photo_rgb(n) for n in names], top_k=5, cam_class_ids=[805])
    for name, batched in zip(names, batch.results, strict=True):
        single = classifier.classify([photo_rgb(name)], top_k=5, cam_class_ids=[805]).results[0]
        assert [s.class_id for s in batched.top] == [s.class_id for s in single.top]
        for a, b in zip(batched.top, single.top, strict=True):
            assert a.probability == pytest.approx(b.probability, abs=1e-5)
        assert np.abs(batched.cams[0].image.astype(int) - single.cams[0].image).max() <= 1


def box_mean(image: np.ndarray, box) -> float:
    x0, y0, x1, y1 = box
    return float(image[y0:y1, x0:x1].mean())


def test_soccer_ball_cam_is_bright_on_the_ball_not_on_the_grass(classifier, photo_rgb):
    image = photo_rgb("soccer")
    result = classifier.classify([image], top_k=2, cam_class_ids=[SOCCER_BALL, BALLPLAYER])
    ball_cam, player_cam = result.results[0].cams
    assert ball_cam.image.shape == image.shape[:2]
    assert ball_cam.image.dtype == np.uint8 and ball_cam.image.max() == 255
    on_ball = box_mean(ball_cam.image, BALL_BOX)
    assert on_ball > 1.5 * box_mean(ball_cam.image, GRASS_BOX)
    assert on_ball > 1.4 * ball_cam.image.mean()
    # A different class gives a different map.
    diff = np.abs(ball_cam.image.astype(int) - player_cam.image.astype(int))
    assert diff.mean() > 10


def test_cams_for_several_classes_come_from_one_forward_pass(classifier, photo_rgb, monkeypatch):
    calls = []
    original = classifier.forward
    monkeypatch.setattr(classifier, "forward", lambda *a, **k: calls.append(1) or original(*a, **k))
    result = classifier.classify([photo_rgb("soccer")], top_k=3, cam_class_ids=[1], cam_top_k=True)
    assert len(calls) == 1
    assert [c.class_id for c in result.results[0].cams] == [1] + [
        s.class_id for s in result.results[0].top
    ]


@pytest.mark.parametrize(("width", "height"), [(227, 227), (512, 300), (15, 15), (8, 40), (6, 6)])
def test_cam_resizing_is_pillows_bilinear_whichever_library_does_it(width, height):
    """Enlarging goes through OpenCV (faster), shrinking through Pillow (antialiased):
    the maps equal Pillow's bilinear either way."""
    from PIL import Image

    class_map = np.random.default_rng(width).normal(0, 3, (15, 15)).astype(np.float32)
    image, low, high = cam_image(class_map, width, height)
    reference = np.asarray(
        Image.fromarray(class_map).resize((width, height), Image.Resampling.BILINEAR)
    )
    assert image.shape == (height, width) and image.dtype == np.uint8
    assert low == pytest.approx(reference.min(), abs=1e-4)
    assert high == pytest.approx(reference.max(), abs=1e-4)
    expected = np.rint((reference - reference.min()) / (reference.max() - reference.min()) * 255)
    assert np.abs(image.astype(int) - expected.astype(int)).max() <= 1


def test_cam_has_the_request_image_size_for_non_square_images(classifier, photo_rgb):
    wide = np.concatenate([photo_rgb("soccer"), photo_rgb("beach")], axis=1)  # 454 x 227
    cam = classifier.classify([wide], cam_class_ids=[SOCCER_BALL]).results[0].cams[0]
    assert cam.image.shape == (227, 454)
    # The ball is in the left half: its map is brighter there than in the beach half.
    assert cam.image[:, :227].mean() > cam.image[:, 227:].mean()


@pytest.mark.parametrize(
    ("kwargs", "message"),
    [
        ({"images": []}, "no images"),
        ({"top_k": 0}, "top_k=0 is out of range"),
        ({"top_k": 1001}, "top_k=1001 is out of range"),
        ({"pinned_class_ids": [1000]}, "pinned class id 1000 is out of range"),
        ({"cam_class_ids": [-1]}, "CAM class id -1 is out of range"),
    ],
)
def test_bad_arguments_are_refused_by_name(classifier, photo_rgb, kwargs, message):
    args = {"images": [photo_rgb("soccer")], **kwargs}
    with pytest.raises(InvalidInput, match=message):
        classifier.classify(**args)


def test_mixed_sizes_and_huge_images_are_refused(classifier, photo_rgb):
    with pytest.raises(InvalidInput, match="all images of a batch must have one size"):
        classifier.classify([photo_rgb("soccer"), photo_rgb("soccer")[:100]])
    with pytest.raises(TooLarge, match="longest side"):
        classifier.classify([np.zeros((10, 4000, 3), np.uint8)])


def test_enlarging_and_shrinking_both_see_the_same_photo(classifier, preprocess, photo_rgb):
    """227 px photos are enlarged to 256 (OpenCV bilinear); a 454 px copy is shrunk
    to 256 (Pillow bilinear, antialiased): both paths give the same answer."""
    from PIL import Image

    small = photo_rgb("lighthouse")
    large = np.asarray(Image.fromarray(small).resize((454, 454), Image.Resampling.BICUBIC))
    enlarged = preprocess.network_image(small)
    shrunk = preprocess.network_image(large)
    assert enlarged.shape == shrunk.shape == (256, 256, 3)
    assert np.abs(enlarged.astype(int) - shrunk.astype(int)).mean() < 4
    top_small = classifier.classify([small], top_k=1).results[0].top[0]
    top_large = classifier.classify([large], top_k=1).results[0].top[0]
    assert top_small.class_id == top_large.class_id
    assert top_small.probability == pytest.approx(top_large.probability, abs=0.05)
