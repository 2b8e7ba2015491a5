"""Incremental inference: every edit's result equals full inference.

The reference is always a plain ONNX Runtime run of the whole edited input.
"""

from __future__ import annotations

import cv2
import numpy as np
import onnx
import onnxruntime as ort
import pytest

from common.errors import InvalidInput
from services.classifier.edits import ImageEdit
from services.classifier.incremental import ActivationCache, IncrementalEngine, edit_patches
from services.classifier.incremental.steps import input_reach, propagate
from services.classifier.model_graph import PreparedModel, prepare_model
from services.classifier.preprocess import Preprocessor
from services.explainer.grid import WindowGrid, axis_positions, default_stride, default_window
from tests.support.served_models import EFFICIENTNET, SQUEEZENET, builtin_card
from tests.support.synthetic_models import (
    broadcast_add,
    efficientnet_like,
    inception_like,
    pooling_zoo,
    with_sigmoid,
)

GALLERY = [
    "baseball",
    "sailboat",
    "lighthouse",
    "beach",
    "soccer",
    "hockey",
    "hockey2",
    "skiing",
    "bank",
]
TOLERANCE = 1e-4  # largest difference of any class probability


def softmax(scores: np.ndarray) -> np.ndarray:
    exp = np.exp(scores - scores.max(axis=-1, keepdims=True), dtype=np.float64)
    return exp / exp.sum(axis=-1, keepdims=True)


def session(model: onnx.ModelProto) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    return ort.InferenceSession(
        model.SerializeToString(), options, providers=["CPUExecutionProvider"]
    )


# SqueezeNet 1.1's card: shorter side to 256, nothing cropped, NCHW.
SQUEEZENET_INPUT = Preprocessor(builtin_card(SQUEEZENET).input)


def served_graph(name: str, onnx_path=None) -> PreparedModel:
    """The graph as the classifier serves it (its card's rewrites; the CAM
    features a second output the engine leaves aside)."""
    card = builtin_card(name, onnx_path)
    return prepare_model(card.onnx, card.input, card.max_pool_ceil)


def engine_of(prepared: PreparedModel, threads: int = 1, **options) -> IncrementalEngine:
    return IncrementalEngine(
        prepared.model, prepared.input.name, prepared.scores_output, threads, **options
    )


@pytest.fixture(scope="module")
def squeezenet(model_path):
    prepared = served_graph(SQUEEZENET, model_path)
    full = session(prepared.model)

    def full_scores(batch: np.ndarray) -> np.ndarray:
        return np.concatenate(
            [
                full.run([prepared.scores_output], {prepared.input.name: batch[i : i + 16]})[0]
                for i in range(0, len(batch), 16)
            ]
        )

    return engine_of(prepared), full_scores


def to_tensor(rgb: np.ndarray) -> np.ndarray:
    return SQUEEZENET_INPUT(rgb)


def geometry_of(rgb: np.ndarray):
    return SQUEEZENET_INPUT.geometry(rgb.shape[1], rgb.shape[0])


def telea_edits(rgb: np.ndarray, rects) -> list[tuple[int, int, np.ndarray]]:
    """Each rectangle's pixels as the telea engine fills them (cv2.inpaint, radius 3)."""
    edits = []
    for x, y, w, h in rects:
        mask = np.zeros(rgb.shape[:2], np.uint8)
        mask[y : y + h, x : x + w] = 255
        filled = cv2.inpaint(rgb, mask, 3, cv2.INPAINT_TELEA)
        edits.append((x, y, filled[y : y + h, x : x + w].copy()))
    return edits


def with_edit(rgb: np.ndarray, edit: tuple[int, int, np.ndarray]) -> np.ndarray:
    x, y, pixels = edit
    edited = rgb.copy()
    edited[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
    return edited


def full_inference(rgb, edits, full_scores) -> np.ndarray:
    return full_scores(np.stack([to_tensor(with_edit(rgb, edit))[0] for edit in edits]))


def incremental(engine, rgb, edits) -> np.ndarray:
    base = engine.prepare(to_tensor(rgb))
    return engine.run(base, edit_patches(rgb, edits, geometry_of(rgb), to_tensor))


def max_probability_difference(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.abs(softmax(a) - softmax(b)).max())


@pytest.mark.slow
@pytest.mark.parametrize("photo", GALLERY)
def test_default_grid_equals_full_inference(photo, photo_rgb, squeezenet):
    engine, full_scores = squeezenet
    rgb = photo_rgb(photo)
    height, width = rgb.shape[:2]
    window = default_window(width, height)
    stride = default_stride(window)
    grid = WindowGrid(
        width, height, window, stride,
        tuple(axis_positions(width, window, stride)), tuple(axis_positions(height, window, stride)),
    )  # fmt: skip
    assert (window, stride, grid.count) == (48, 16, 169)
    edits = telea_edits(rgb, grid.rects())
    got, expected = incremental(engine, rgb, edits), full_inference(rgb, edits, full_scores)
    assert got.shape == expected.shape == (169, 1000)
    assert max_probability_difference(got, expected) <= TOLERANCE
    # Not vacuous: the windows do move the probabilities.
    assert np.abs(softmax(expected) - softmax(expected).mean(axis=0)).max() > 0.01


@pytest.mark.parametrize(
    "rects",
    [
        # Corners and borders of the 227x227 photo, flush with its edges.
        [(0, 0, 48, 48), (179, 0, 48, 48), (0, 179, 48, 48), (179, 179, 48, 48)],
        [(0, 90, 227, 20), (100, 0, 15, 227), (0, 0, 227, 1), (226, 0, 1, 227)],
        # Larger than half the image; the whole image; single pixels.
        [(10, 5, 200, 150), (0, 0, 227, 227), (30, 60, 120, 167)],
        [(113, 113, 1, 1), (0, 0, 1, 1), (226, 226, 1, 1), (0, 226, 1, 1)],
    ],
    ids=["corners", "border-strips", "large", "one-pixel"],
)
def test_edits_of_any_size_and_place_equal_full_inference(rects, photo_rgb, squeezenet):
    engine, full_scores = squeezenet
    rgb = photo_rgb("soccer")
    edits = telea_edits(rgb, rects)
    # Telea leaves a 1-pixel hole almost unchanged: use a visible colour there.
    edits = [(x, y, np.full_like(p, 255) if p.size == 3 else p) for x, y, p in edits]
    got, expected = incremental(engine, rgb, edits), full_inference(rgb, edits, full_scores)
    assert max_probability_difference(got, expected) <= TOLERANCE
    assert np.abs(got - engine.prepare(to_tensor(rgb)).output).max() > 1e-3


def test_edits_of_the_classify_edits_core_are_accepted(photo_rgb, squeezenet):
    engine, full_scores = squeezenet
    rgb = photo_rgb("sailboat")
    edits = telea_edits(rgb, [(60, 70, 40, 30)])
    x, y, pixels = edits[0]
    image_edit = ImageEdit(x, y, pixels.shape[1], pixels.shape[0], pixels)
    base = engine.prepare(to_tensor(rgb))
    got = engine.run(base, edit_patches(rgb, [image_edit], geometry_of(rgb), to_tensor))
    assert max_probability_difference(got, full_inference(rgb, edits, full_scores)) <= TOLERANCE


def test_results_keep_the_order_of_the_patches(photo_rgb, squeezenet):
    engine, full_scores = squeezenet
    rgb = photo_rgb("bank")
    rects = [
        (150, 150, 60, 40),
        (0, 0, 30, 30),
        (40, 100, 48, 48),
        (5, 5, 200, 200),
        (100, 20, 8, 90),
    ]
    edits = telea_edits(rgb, rects)
    expected = full_inference(rgb, edits, full_scores)
    for order in ([4, 3, 2, 1, 0], [2, 0, 4, 1, 3]):
        got = incremental(engine, rgb, [edits[i] for i in order])
        assert max_probability_difference(got, expected[order]) <= TOLERANCE


@pytest.mark.parametrize(
    ("y", "x", "rows", "cols"),
    [(128, 128, 1, 1), (0, 0, 56, 56), (200, 0, 56, 256), (101, 37, 3, 60)],
)
def test_reach_holds_every_changed_activation_and_little_more(
    y, x, rows, cols, squeezenet, photo_rgb
):
    """The projective field computed from the graph against what really changes:
    every activation that differs between the base and the edited input lies in
    the reach, and the reach is at most 2 positions taller or wider than that
    (ReLU and max pooling can hide a change at its edge)."""
    engine, _ = squeezenet
    assert engine.supported and engine.reason == ""
    tensor = to_tensor(photo_rgb("lighthouse"))
    edited = tensor.copy()
    noise = np.random.default_rng(5).normal(0, 2, (3, rows, cols))
    edited[0, :, y : y + rows, x : x + cols] = noise
    base, changed = engine.prepare(tensor), engine.prepare(edited)
    patch = [(y, x, edited[0, :, y : y + rows, x : x + cols])]
    reaches = propagate(
        engine.steps, engine.plan.input_name, input_reach(patch, [0]), base.geometry
    )
    checked = 0
    for name, values in base.tensors.items():
        if values.ndim != 3 or name not in reaches:
            continue
        moved = np.nonzero(np.abs(changed.tensors[name] - values).max(axis=2) > 0)
        reach = reaches[name]
        y0, y1, x0, x1 = (int(v[0]) for v in (reach.y0, reach.y1, reach.x0, reach.x1))
        assert moved[0].min() >= y0 and moved[0].max() < y1, name
        assert moved[1].min() >= x0 and moved[1].max() < x1, name
        assert (y1 - y0) - (moved[0].max() + 1 - moved[0].min()) <= 2, name
        assert (x1 - x0) - (moved[1].max() + 1 - moved[1].min()) <= 2, name
        checked += 1
    assert checked >= 20  # every map the engine keeps


def test_batches_do_little_more_work_than_the_windows_need(squeezenet, photo_rgb):
    """A batch computes its largest region for all its patches: the patches are
    grouped so that this costs at most `tolerance` more than their own regions,
    and the whole grid far less than whole-network inference."""
    engine, _ = squeezenet
    rgb = photo_rgb("skiing")
    rects = [
        (x, y, 48, 48) for y in axis_positions(227, 48, 16) for x in axis_positions(227, 48, 16)
    ]
    patches = edit_patches(rgb, telea_edits(rgb, rects), geometry_of(rgb), to_tensor)
    whole, exact, batched = engine.multiply_adds(engine.prepare(to_tensor(rgb)), patches)
    assert exact <= batched <= (1 + engine.tolerance) * exact
    assert whole / exact > 2.5  # SqueezeNet, 48 px windows on 227 px photos: 2.77


@pytest.mark.parametrize(
    "build",
    [efficientnet_like, pooling_zoo, inception_like],
    ids=["efficientnet-like", "pooling-zoo", "inception-like"],
)
def test_synthetic_graphs_equal_full_inference(build):
    model = build()
    output = model.graph.output[0].name
    engine = IncrementalEngine(model, "input", output, batch_size=7)
    assert engine.supported, engine.reason
    if build is inception_like:  # both blocks run as one kernel each
        assert [s.kind for s in engine.steps].count("branches") == 2
    full = session(model)
    _, channels, height, width = (
        d.dim_value for d in model.graph.input[0].type.tensor_type.shape.dim
    )
    rng = np.random.default_rng(7)
    tensor = rng.normal(0, 1, (1, channels, height, width)).astype(np.float32)
    base = engine.prepare(tensor)
    patches, expected = [], []
    sizes = [(1, 1), (3, 2), (height, width), (height // 2 + 1, width // 3)]
    sizes += [tuple(rng.integers(1, (height + 1, width + 1))) for _ in range(30)]
    for rows, cols in sizes:
        for y, x in (
            (0, 0),
            (height - rows, width - cols),
            tuple(rng.integers(0, (height - rows + 1, width - cols + 1))),
        ):
            values = rng.normal(0, 1, (channels, rows, cols)).astype(np.float32)
            patches.append((int(y), int(x), values))
            edited = tensor.copy()
            edited[0, :, y : y + rows, x : x + cols] = values
            expected.append(full.run([output], {"input": edited})[0][0])
    got = engine.run(base, patches)
    assert got.shape == (len(patches), *expected[0].shape)
    assert np.abs(got - np.stack(expected)).max() <= 1e-4 * max(1.0, np.abs(expected).max())


@pytest.fixture(scope="module")
def lite0():
    """EfficientNet-Lite0 as served (the file `make model` builds) and its card's
    preprocessing: shorter side to 256, centre crop 224x224, (x - 127) / 128."""
    card = builtin_card(EFFICIENTNET)
    if not card.onnx.exists():
        pytest.fail(f"{card.onnx} is missing: run `make model`")
    return served_graph(EFFICIENTNET), Preprocessor(card.input)


@pytest.mark.slow
@pytest.mark.parametrize("photo", ["lighthouse", "hockey"])
def test_efficientnet_lite0_equals_full_inference(photo, lite0, photo_rgb):
    prepared, lite0_input = lite0
    engine = engine_of(prepared)
    assert engine.supported, engine.reason
    rgb = photo_rgb(photo)
    grid = [
        (x, y, 48, 48) for y in axis_positions(227, 48, 16) for x in axis_positions(227, 48, 16)
    ]
    # Two strips the centre crop hides: they change nothing the network sees.
    edits = telea_edits(rgb, [*grid, (0, 0, 10, 227), (220, 30, 7, 100)])
    geometry = lite0_input.geometry(227, 227)
    assert (geometry.resized_width, geometry.crop) == (256, (16, 16, 224, 224))
    patches = edit_patches(rgb, edits, geometry, lite0_input)
    assert patches[-1] is None and patches[-2] is None
    got = engine.run(engine.prepare(lite0_input(rgb)), patches)
    full = session(prepared.model)
    expected = []
    for start in range(0, len(edits), 16):
        batch = lite0_input.to_tensor([with_edit(rgb, e) for e in edits[start : start + 16]])
        expected.append(full.run([prepared.scores_output], {prepared.input.name: batch})[0])
    expected = np.concatenate(expected)
    assert max_probability_difference(got, expected) <= TOLERANCE
    assert np.array_equal(got[-1], engine.prepare(lite0_input(rgb)).output)


def test_unsupported_operator_falls_back_to_full_inference():
    model = with_sigmoid()
    output = model.graph.output[0].name
    engine = IncrementalEngine(model, "input", output)
    assert not engine.supported
    assert engine.reason == "operator Sigmoid is not supported"
    tensor = np.random.default_rng(3).normal(0, 1, (1, 3, 24, 24)).astype(np.float32)
    patch = np.zeros((3, 5, 7), np.float32)
    got = engine.run(engine.prepare(tensor), [(2, 3, patch), None])
    edited = tensor.copy()
    edited[0, :, 2:7, 3:10] = 0
    full = session(model)
    assert np.allclose(got[0], full.run([output], {"input": edited})[0][0], atol=1e-6)
    assert np.allclose(got[1], full.run([output], {"input": tensor})[0][0], atol=1e-6)


def test_two_threads_give_the_same_probabilities(model_path, photo_rgb, squeezenet):
    _, full_scores = squeezenet
    engine = engine_of(served_graph(SQUEEZENET, model_path), threads=2)
    rgb = photo_rgb("baseball")
    edits = telea_edits(rgb, [(0, 0, 48, 48), (96, 96, 48, 48), (179, 32, 48, 48)])
    got, expected = incremental(engine, rgb, edits), full_inference(rgb, edits, full_scores)
    assert max_probability_difference(got, expected) <= TOLERANCE


def test_a_shape_that_rules_incremental_out_falls_back_and_says_why():
    model = broadcast_add()
    output = model.graph.output[0].name
    engine = IncrementalEngine(model, "input", output)
    assert engine.supported  # every operator is known ...
    tensor = np.random.default_rng(4).normal(0, 1, (1, 3, 24, 24)).astype(np.float32)
    base = engine.prepare(tensor)
    assert not base.incremental  # ... but the Add broadcasts a [1, 4, 1, 1] term over the map
    assert "Add broadcasts one map over another" in base.reason
    patch = np.ones((3, 2, 2), np.float32)
    edited = tensor.copy()
    edited[0, :, 20:22, 0:2] = 1
    expected = session(model).run([output], {"input": edited})[0][0]
    assert np.allclose(engine.run(base, [(20, 0, patch)])[0], expected, atol=1e-6)


def test_a_none_patch_is_the_base_image(squeezenet, photo_rgb):
    engine, _ = squeezenet
    base = engine.prepare(to_tensor(photo_rgb("beach")))
    got = engine.run(base, [None, (10, 10, np.zeros((3, 4, 4), np.float32)), None])
    assert np.array_equal(got[0], base.output) and np.array_equal(got[2], base.output)
    assert not np.array_equal(got[1], base.output)


@pytest.mark.parametrize(
    ("patch", "message"),
    [
        ((250, 10, np.zeros((3, 10, 10), np.float32)), "reaches outside the 256x256 network input"),
        ((-1, 0, np.zeros((3, 4, 4), np.float32)), "reaches outside"),
        (
            (0, 0, np.zeros((4, 4, 4), np.float32)),
            "patch 0 has 4 channels; the network input has 3",
        ),
        ((0, 0, np.zeros((3, 4, 4), np.float64)), "float32"),
        ((0, 0, np.zeros((3, 0, 4), np.float32)), "empty"),
        ((0, 0), "not (y, x, values)"),
        ((1.5, 0, np.zeros((3, 4, 4), np.float32)), "y and x must be integers"),
    ],
)
def test_bad_patches_are_refused_with_the_reason(patch, message, squeezenet, photo_rgb):
    engine, _ = squeezenet
    base = engine.prepare(to_tensor(photo_rgb("soccer")))
    with pytest.raises(InvalidInput, match=message.replace("(", r"\(").replace(")", r"\)")):
        engine.run(base, [patch])


def test_bad_base_inputs_are_refused(squeezenet):
    engine, _ = squeezenet
    with pytest.raises(InvalidInput, match="float32 array"):
        engine.prepare(np.zeros((1, 3, 32, 32), np.float64))
    with pytest.raises(InvalidInput, match="holds 2 images"):
        engine.prepare(np.zeros((2, 3, 32, 32), np.float32))
    with pytest.raises(InvalidInput, match="4 as channels; the model takes 3"):
        engine.prepare(np.zeros((1, 4, 32, 32), np.float32))
    fixed = IncrementalEngine(
        efficientnet_like(), "input", efficientnet_like().graph.output[0].name
    )
    with pytest.raises(InvalidInput, match="64 as height; the model takes 48"):
        fixed.prepare(np.zeros((1, 3, 64, 48), np.float32))


def test_warm_up_builds_the_tails_and_leaves_the_cache_alone(model_path):
    engine = engine_of(served_graph(SQUEEZENET, model_path))
    engine.warm_up(256, 256)
    assert len(engine.tails._sessions) >= 1 and len(engine.cache) == 0


def test_base_activations_are_cached_by_content(squeezenet, photo_rgb):
    engine, _ = squeezenet
    tensor = to_tensor(photo_rgb("hockey"))
    first = engine.prepare(tensor)
    hits = engine.cache.hits
    assert engine.prepare(tensor.copy()) is first
    assert engine.cache.hits == hits + 1
    assert engine.prepare(to_tensor(photo_rgb("hockey2"))) is not first


def test_engines_sharing_one_cache_keep_their_own_bases(model_path, photo_rgb):
    """The classifier's models share one cache (IC_INCREMENTAL_CACHE_MB): one
    model's base is never another's, even for the very same network input."""
    cache = ActivationCache(256 << 20)
    prepared = served_graph(SQUEEZENET, model_path)
    one, two = engine_of(prepared, cache=cache), engine_of(prepared, cache=cache)
    tensor = to_tensor(photo_rgb("hockey"))
    first, cached = one.prepare_base(tensor)
    assert not cached
    second, cached = two.prepare_base(tensor)
    assert not cached and second is not first
    again, cached = one.prepare_base(tensor.copy())
    assert cached and again is first
    assert len(cache) == 2 and cache.nbytes == first.nbytes + second.nbytes
