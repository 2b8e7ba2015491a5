"""The engine core without gRPC: the shared interface (parameters, registry,
run_engine's guarantees) and the OpenCV engines called directly."""

from __future__ import annotations

import sys
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest

from common.errors import EngineUnavailable, InvalidInput
from services.inpainter.engines import ENGINES, BlurEngine, MeanEngine, build_registry
from services.patchmatch import native
from services.patchmatch.engines import PatchMatchEngine
from services.patchmatch.resynthesizer_engine import ResynthesizerEngine
from services.runtime.inpaint_engine import (
    EngineParam,
    EngineRegistry,
    EngineStopped,
    InpaintEngine,
    StopSignal,
    run_engine,
)
from tests.support.inpainting import assert_only_mask_changed, assert_sky_fill, kite_mask


class ScribbleEngine(InpaintEngine):
    """Writes everywhere, so the test sees run_engine restore the kept pixels."""

    name = "scribble"
    description = "paints the whole picture one grey"
    params = (
        EngineParam("level", "grey level", default=128, min=0, max=255, integer=True),
        EngineParam("gain", "a float", default=0.5, min=0.0, max=1.0),
    )

    def inpaint(self, image, mask, params, seed, stop=None):
        return np.full_like(image, int(params["level"]))


class BrokenEngine(ScribbleEngine):
    name = "broken"

    def inpaint(self, image, mask, params, seed, stop=None):
        return image[:-1]


class MissingLibraryEngine(ScribbleEngine):
    name = "missing"

    def availability(self):
        return False, "libfoo.so is not installed"


IMAGE = np.arange(12 * 16 * 3, dtype=np.uint8).reshape(12, 16, 3)
HOLE = np.zeros((12, 16), dtype=bool)
HOLE[3:7, 4:9] = True


def test_params_default_and_validated_by_name_and_range():
    engine = ScribbleEngine()
    assert engine.resolve_params({}) == {"level": 128.0, "gain": 0.5}
    assert engine.resolve_params({"gain": 1.0}) == {"level": 128.0, "gain": 1.0}
    with pytest.raises(InvalidInput, match=r"no parameter 'strength' \(accepted: gain, level\)"):
        engine.resolve_params({"strength": 1})
    with pytest.raises(InvalidInput, match=r"'gain' .* is 1.5; it must be between 0 and 1"):
        engine.resolve_params({"gain": 1.5})
    with pytest.raises(InvalidInput, match=r"'level' .* is -1"):
        engine.resolve_params({"level": -1})
    with pytest.raises(InvalidInput, match=r"'gain' .* is nan"):
        engine.resolve_params({"gain": float("nan")})
    with pytest.raises(InvalidInput, match=r"'level' .* must be a whole number"):
        engine.resolve_params({"level": 3.5})


def test_run_engine_restores_every_kept_pixel():
    output = run_engine(ScribbleEngine(), IMAGE, HOLE, {"level": 7, "gain": 0.5}, seed=0)
    assert np.array_equal(output[~HOLE], IMAGE[~HOLE])
    assert np.all(output[HOLE] == 7)


def test_run_engine_empty_full_and_mismatched_masks():
    engine = ScribbleEngine()
    params = engine.resolve_params({})
    unchanged = run_engine(engine, IMAGE, np.zeros_like(HOLE), params, seed=0)
    assert np.array_equal(unchanged, IMAGE) and unchanged is not IMAGE
    with pytest.raises(InvalidInput, match="covers the whole image: nothing to sample from"):
        run_engine(engine, IMAGE, np.ones_like(HOLE), params, seed=0)
    with pytest.raises(InvalidInput, match="mask is 16x13 but the image is 16x12"):
        run_engine(engine, IMAGE, np.zeros((13, 16), dtype=bool), params, seed=0)
    with pytest.raises(RuntimeError, match="returned"):
        run_engine(BrokenEngine(), IMAGE, HOLE, params, seed=0)


def test_registry_lookup_default_and_disabled():
    registry = EngineRegistry(
        "test", [ScribbleEngine(), MissingLibraryEngine()], "scribble", disabled=["scribble"]
    )
    assert registry.get("").name == "scribble"
    with pytest.raises(InvalidInput, match="unknown engine 'nope'; this service offers"):
        registry.get("nope")
    assert registry.availability(registry.get("scribble")) == (
        False,
        "disabled by the operator (IC_DISABLE_ENGINES)",
    )
    with pytest.raises(EngineUnavailable, match=r"libfoo\.so is not installed"):
        registry.require_available(registry.get("missing"))
    with pytest.raises(SystemExit, match="default engine 'nope'"):
        EngineRegistry("test", [ScribbleEngine()], "nope")
    # Another service's engine names (one shared IC_DISABLE_ENGINES) are ignored.
    shared = EngineRegistry("test", [ScribbleEngine()], "scribble", disabled=["resynthesizer"])
    assert shared.availability(shared.get("scribble")) == (True, "")


def test_opencv_registry_lists_every_engine_with_telea_default():
    registry = build_registry()
    assert registry.names() == ["telea", "navier-stokes", "blur", "mean"]
    assert registry.default == "telea"
    for engine in registry.engines():
        assert registry.availability(engine) == (True, "")
        assert engine.description and not engine.randomized


@pytest.mark.parametrize("engine_class", ENGINES, ids=lambda cls: cls.name)
def test_opencv_engines_fill_the_kite_hole_from_the_sky_only(engine_class, photo_rgb):
    engine = engine_class()
    image = photo_rgb("lighthouse")
    mask = kite_mask(image.shape)
    params = engine.resolve_params({"ring": 8} if engine.name == "mean" else {})
    output = run_engine(engine, image, mask, params, seed=0)
    assert_only_mask_changed(image, output, mask)
    assert_sky_fill(image, output, mask)
    # The removed pixels themselves never leak into the fill.
    painted = image.copy()
    painted[mask] = (255, 0, 0)
    assert np.array_equal(run_engine(engine, painted, mask, params, seed=0), output)


def test_mean_engine_uses_the_image_mean_or_each_hole_surroundings():
    image = np.zeros((40, 60, 3), dtype=np.uint8)
    image[:, :30] = (200, 0, 0)
    image[:, 30:] = (0, 0, 100)
    mask = np.zeros((40, 60), dtype=bool)
    mask[10:20, 5:15] = True  # in the red half
    mask[10:20, 45:55] = True  # in the blue half
    engine = MeanEngine()
    flat = run_engine(engine, image, mask, engine.resolve_params({}), seed=0)
    expected = np.rint(image[~mask].mean(axis=0)).astype(np.uint8)
    assert np.all(flat[mask] == expected)
    local = run_engine(engine, image, mask, engine.resolve_params({"ring": 3}), seed=0)
    assert np.all(local[10:20, 5:15] == (200, 0, 0))
    assert np.all(local[10:20, 45:55] == (0, 0, 100))


def test_blur_engine_widens_until_a_huge_hole_is_filled():
    image = np.zeros((200, 200, 3), dtype=np.uint8)
    image[0, :] = (0, 200, 0)  # the only known pixels: the top row
    mask = np.ones((200, 200), dtype=bool)
    mask[0, :] = False
    engine = BlurEngine()
    output = run_engine(engine, image, mask, engine.resolve_params({"sigma": 1}), seed=0)
    assert np.all(output[mask] == (0, 200, 0))


# -- the patchmatch service's engines, called directly --------------------------


def _kite(photo_rgb):
    image = photo_rgb("lighthouse")
    return image, kite_mask(image.shape)


def test_patchmatch_engine_fills_the_kite_and_repeats_with_its_seed(photo_rgb):
    engine = PatchMatchEngine()
    assert engine.availability() == (True, ""), "run `make native`"
    image, mask = _kite(photo_rgb)
    params = engine.resolve_params({})
    first = run_engine(engine, image, mask, params, seed=1)
    assert_only_mask_changed(image, first, mask)
    assert_sky_fill(image, first, mask)
    assert np.array_equal(run_engine(engine, image, mask, params, seed=1), first)
    assert not np.array_equal(run_engine(engine, image, mask, params, seed=2), first)


def test_patchmatch_engine_params_and_stopping(photo_rgb):
    engine = PatchMatchEngine()
    assert [p.name for p in engine.params] == [p.name for p in native.PARAMS]
    with pytest.raises(InvalidInput, match="patch_size must be an odd integer"):
        engine.resolve_params({"patch_size": 8})
    image, mask = _kite(photo_rgb)
    stop = StopSignal()
    stop.event.set()
    with pytest.raises(EngineStopped):
        run_engine(engine, image, mask, engine.resolve_params({}), seed=0, stop=stop)


def test_patchmatch_engine_reports_an_unbuilt_library(monkeypatch, tmp_path):
    monkeypatch.setattr(native, "LIBRARY_PATH", tmp_path / "libpatchmatch.so")
    monkeypatch.setattr(native, "_library", None)
    available, reason = PatchMatchEngine().availability()
    assert not available and "make native" in reason


def test_resynthesizer_engine_is_deterministic_and_safe_from_threads(photo_rgb):
    engine = ResynthesizerEngine()
    assert engine.availability() == (True, "")
    image = np.ascontiguousarray(photo_rgb("hockey")[:100, :120])
    masks = []
    for i in range(4):
        mask = np.zeros(image.shape[:2], dtype=bool)
        mask[10 + 15 * i : 30 + 15 * i, 20 + 18 * i : 45 + 18 * i] = True
        masks.append(mask)
    params = engine.resolve_params({})
    serial = [run_engine(engine, image, mask, params, seed=0) for mask in masks]
    # The seed does not matter: the library reseeds itself with a constant.
    assert np.array_equal(run_engine(engine, image, masks[0], params, seed=99), serial[0])
    with ThreadPoolExecutor(max_workers=4) as pool:
        parallel = list(pool.map(lambda m: run_engine(engine, image, m, params, seed=0), masks))
    for one, other in zip(serial, parallel, strict=True):
        assert np.array_equal(one, other)


def test_resynthesizer_engine_fills_the_kite_with_sky(photo_rgb):
    engine = ResynthesizerEngine()
    image, mask = _kite(photo_rgb)
    output = run_engine(engine, image, mask, engine.resolve_params({"order": 2}), seed=0)
    assert_only_mask_changed(image, output, mask)
    assert_sky_fill(image, output, mask)


def test_resynthesizer_engine_unavailable_when_the_library_cannot_load(monkeypatch):
    # A None entry in sys.modules makes the import fail as a missing package would.
    monkeypatch.setitem(sys.modules, "resynthesizer", None)
    monkeypatch.delitem(sys.modules, "resynthesizer.resynthesizer", raising=False)
    engine = ResynthesizerEngine()
    available, reason = engine.availability()
    assert not available
    assert "cannot be loaded" in reason and "pip install resynthesizer" in reason
    image = np.zeros((10, 10, 3), dtype=np.uint8)
    mask = np.zeros((10, 10), dtype=bool)
    mask[2:4, 2:4] = True
    with pytest.raises(EngineUnavailable, match="cannot be loaded"):
        run_engine(engine, image, mask, engine.resolve_params({}), seed=0)
