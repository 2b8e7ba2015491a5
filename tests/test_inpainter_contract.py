"""The Inpainter contract (proto/ic/v1/inpainter.proto), checked over gRPC against
both real services: every engine fills a hole, only masked pixels change, bad
input is refused with INVALID_ARGUMENT naming the problem and the service goes
on serving."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from common.images import raw_image, raw_mask
from ic.v1 import image_pb2, inpainter_pb2
from tests.support.inpainting import (
    TIMEOUT,
    assert_only_mask_changed,
    assert_sky_fill,
    engines_info,
    expect_status,
    inpaint,
    inpaint_many,
    kite_mask,
    png_mask,
    rect_mask,
    stub_for,
)

SERVICES = ["inpainter_service", "patchmatch_service"]

# (service fixture, engine, params that make its fill of the kite hole sky-coloured)
ENGINE_CASES = [
    ("inpainter_service", "telea", {}),
    ("inpainter_service", "navier-stokes", {}),
    ("inpainter_service", "blur", {}),
    ("inpainter_service", "mean", {"ring": 8}),
    ("patchmatch_service", "patchmatch", {}),
    ("patchmatch_service", "resynthesizer", {}),
]
INVALID = grpc.StatusCode.INVALID_ARGUMENT


@pytest.fixture(params=SERVICES)
def stub(request):
    return stub_for(request.getfixturevalue(request.param).address)


def _engine_stub(request, service: str, engine: str):
    stub = stub_for(request.getfixturevalue(service).address)
    info = engines_info(stub)[engine]
    assert info.available, f"{engine} is unavailable: {info.unavailable_reason}"
    return stub


@pytest.mark.parametrize(("service", "engine", "params"), ENGINE_CASES)
def test_inpaint_fills_the_kite_with_sky_and_keeps_the_rest(
    request, photo_rgb, service, engine, params
):
    stub = _engine_stub(request, service, engine)
    image = photo_rgb("lighthouse")
    mask = kite_mask(image.shape)
    output, response = inpaint(stub, image, mask, engine=engine, seed=7, **params)
    assert response.engine == engine
    assert response.served_by
    assert_only_mask_changed(image, output, mask)
    assert_sky_fill(image, output, mask)


@pytest.mark.parametrize(("service", "engine", "params"), ENGINE_CASES)
def test_inpaint_many_streams_one_result_per_mask_equal_to_inpaint(
    request, photo_rgb, service, engine, params
):
    stub = _engine_stub(request, service, engine)
    image = np.ascontiguousarray(photo_rgb("soccer")[40:140, 60:180])
    brush = np.zeros(image.shape[:2], dtype=bool)
    brush[30:50, 20:45] = True
    masks = [
        raw_mask(brush),
        png_mask(brush),
        rect_mask(70, 60, 30, 25),
        rect_mask(100, 90, 50, 50),
    ]
    results = inpaint_many(stub, image, masks, engine=engine, seed=3, **params)
    assert sorted(results) == [0, 1, 2, 3]
    # The raw and the PNG form of the same mask give the same picture.
    assert np.array_equal(results[0], results[1])
    rect = np.zeros_like(brush)
    rect[60:85, 70:100] = True
    clipped = np.zeros_like(brush)
    clipped[90:, 100:] = True  # the last rectangle is clipped to the image
    for index, mask in [(0, brush), (2, rect), (3, clipped)]:
        assert_only_mask_changed(image, results[index], mask)
        single, _ = inpaint(stub, image, mask, engine=engine, seed=3, **params)
        assert np.array_equal(results[index], single), f"mask {index} differs from Inpaint"


def test_randomized_engines_repeat_with_the_same_seed(stub, photo_rgb):
    image = np.ascontiguousarray(photo_rgb("lighthouse")[0:100, 100:227])
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[20:60, 40:90] = True
    for name, info in engines_info(stub).items():
        if not info.available:
            continue
        first, _ = inpaint(stub, image, mask, engine=name, seed=11)
        again, _ = inpaint(stub, image, mask, engine=name, seed=11)
        assert np.array_equal(first, again), f"{name} is not repeatable"
        if info.randomized:
            other, _ = inpaint(stub, image, mask, engine=name, seed=12)
            assert not np.array_equal(first, other), f"{name} ignores the seed"


def test_empty_mask_returns_the_image_unchanged(stub, photo_rgb):
    image = photo_rgb("beach")
    output, _ = inpaint(stub, image, np.zeros(image.shape[:2], dtype=bool))
    assert np.array_equal(output, image)


def test_encoded_image_is_accepted(stub, photo_bytes, photo_rgb):
    image = photo_rgb("beach")
    mask = np.zeros(image.shape[:2], dtype=bool)
    mask[100:120, 100:130] = True
    response = stub.Inpaint(
        inpainter_pb2.InpaintRequest(
            image=image_pb2.Image(encoded=photo_bytes("beach")), mask=raw_mask(mask)
        ),
        timeout=TIMEOUT,
    )
    output, _ = inpaint(stub, image, mask)
    assert response.image.raw.rgb == output.tobytes()


def _request(image=None, mask=None, engine="", params=None):
    return inpainter_pb2.InpaintRequest(image=image, mask=mask, engine=engine, params=params or {})


# Noise, so that no engine can rebuild the hole exactly (a two-tone picture can be).
SMALL = np.random.default_rng(5).integers(0, 256, (20, 30, 3), dtype=np.uint8)
SMALL_HOLE = np.zeros((20, 30), dtype=bool)
SMALL_HOLE[5:10, 10:20] = True

BAD_REQUESTS = {
    "mask size mismatch": (
        _request(raw_image(SMALL), raw_mask(np.ones((21, 30), dtype=bool))),
        ["is 30x21 but the image is 30x20"],
    ),
    "unknown engine": (
        _request(raw_image(SMALL), raw_mask(SMALL_HOLE), engine="photoshop"),
        ["unknown engine 'photoshop'"],
    ),
    "odd image byte count": (
        _request(
            image_pb2.Image(raw=image_pb2.RawImage(width=30, height=20, rgb=b"\0" * 1799)),
            raw_mask(SMALL_HOLE),
        ),
        ["1799 bytes", "30x20x3"],
    ),
    "odd mask byte count": (
        _request(
            raw_image(SMALL),
            image_pb2.Mask(raw=image_pb2.RawMask(width=30, height=20, data=b"\1" * 599)),
        ),
        ["599 bytes", "30x20"],
    ),
    "no image": (_request(None, raw_mask(SMALL_HOLE)), ["image is empty"]),
    "zero-size image": (
        _request(image_pb2.Image(raw=image_pb2.RawImage(width=0, height=0, rgb=b""))),
        ["zero size"],
    ),
    "garbage encoded image": (
        _request(image_pb2.Image(encoded=b"not a picture"), raw_mask(SMALL_HOLE)),
        ["could not be decoded"],
    ),
    "no mask": (_request(raw_image(SMALL)), ["is empty: set raw, encoded or rect"]),
    "rectangle outside": (
        _request(raw_image(SMALL), rect_mask(40, 0, 5, 5)),
        ["lies outside the 30x20 image"],
    ),
    "mask covers everything": (
        _request(raw_image(SMALL), raw_mask(np.ones((20, 30), dtype=bool))),
        ["nothing to sample from"],
    ),
    "unknown parameter": (
        _request(raw_image(SMALL), raw_mask(SMALL_HOLE), params={"strength": 1.0}),
        ["no parameter 'strength'"],
    ),
}


@pytest.mark.parametrize("case", list(BAD_REQUESTS))
def test_bad_input_is_invalid_argument_and_the_service_goes_on(stub, case):
    request, fragments = BAD_REQUESTS[case]
    expect_status(lambda: stub.Inpaint(request, timeout=TIMEOUT), INVALID, *fragments)
    # The same request through InpaintMany is refused the same way.
    many = inpainter_pb2.InpaintManyRequest(
        image=request.image, masks=[request.mask], engine=request.engine, params=request.params
    )
    if not request.HasField("image"):
        many.ClearField("image")
    expect_status(lambda: list(stub.InpaintMany(many, timeout=TIMEOUT)), INVALID, *fragments)
    output, _ = inpaint(stub, SMALL, SMALL_HOLE)
    assert_only_mask_changed(SMALL, output, SMALL_HOLE)


def test_out_of_range_parameters_name_the_parameter_and_range(stub):
    for name, info in engines_info(stub).items():
        for param in info.params:
            too_big = param.max_value + 1
            details = expect_status(
                lambda name=name, param=param, too_big=too_big: stub.Inpaint(
                    _request(raw_image(SMALL), raw_mask(SMALL_HOLE), name, {param.name: too_big}),
                    timeout=TIMEOUT,
                ),
                INVALID,
                repr(param.name),
            )
            assert f"{param.max_value:g}" in details


def test_too_many_masks_is_refused(stub):
    limit = stub.GetInfo(inpainter_pb2.GetInfoRequest(), timeout=TIMEOUT).max_masks
    request = inpainter_pb2.InpaintManyRequest(
        image=raw_image(SMALL), masks=[rect_mask(0, 0, 2, 2)] * (limit + 1)
    )
    expect_status(
        lambda: list(stub.InpaintMany(request, timeout=TIMEOUT)),
        INVALID,
        f"{limit + 1} masks",
        f"at most {limit}",
    )


def test_a_bad_mask_late_in_the_list_is_refused_before_any_result(stub):
    masks = [rect_mask(0, 0, 5, 5)] * 3 + [rect_mask(99, 99, 5, 5)]
    request = inpainter_pb2.InpaintManyRequest(image=raw_image(SMALL), masks=masks)
    stream = stub.InpaintMany(request, timeout=TIMEOUT)
    received = []
    with pytest.raises(grpc.RpcError) as err:
        for result in stream:
            received.append(result.index)
    assert err.value.code() == INVALID and "masks[3]" in err.value.details()
    assert received == []
