"""Helpers for the tests of the two Inpainter services: a stub per address, the
gallery photo with a hole around the kite in the sky, and request builders."""

from __future__ import annotations

import grpc
import numpy as np

from common.images import ImageLimits, decode_image, encode_png, raw_image, raw_mask
from ic.v1 import image_pb2, inpainter_pb2, inpainter_pb2_grpc

TIMEOUT = 60.0

# lighthouse.jpg has a dark kite in a clear sky at x 147..183, y 26..60; this
# hole covers it with a margin, so a good fill is sky-coloured throughout.
KITE_HOLE = (slice(20, 67), slice(142, 191))
# The sky around the hole (the hole itself excluded by the caller).
SKY_AROUND = (slice(8, 80), slice(130, 210))


def stub_for(address: str) -> inpainter_pb2_grpc.InpainterStub:
    channel = grpc.insecure_channel(
        address,
        options=[
            ("grpc.max_receive_message_length", 64 * 1024 * 1024),
            ("grpc.max_send_message_length", 64 * 1024 * 1024),
        ],
    )
    return inpainter_pb2_grpc.InpainterStub(channel)


def kite_mask(shape: tuple[int, ...]) -> np.ndarray:
    mask = np.zeros(shape[:2], dtype=bool)
    mask[KITE_HOLE] = True
    return mask


def sky_colour_around(image: np.ndarray, mask: np.ndarray) -> np.ndarray:
    region = image[SKY_AROUND]
    return region[~mask[SKY_AROUND]].astype(float).mean(axis=0)


def assert_sky_fill(image: np.ndarray, output: np.ndarray, mask: np.ndarray, tolerance=25.0):
    """The hole is filled with sky: no dark kite left, mean colour near the sky's."""
    fill = output[mask].astype(float)
    sky = sky_colour_around(image, mask)
    assert (image[mask].astype(int).sum(axis=1) < 450).sum() > 100  # the kite was there
    dark = (fill.sum(axis=1) < 450).mean()
    assert dark < 0.02, f"{dark:.1%} of the filled pixels are dark (kite left over)"
    assert np.all(np.abs(fill.mean(axis=0) - sky) < tolerance), (fill.mean(axis=0), sky)
    assert fill.mean(axis=0)[2] > fill.mean(axis=0)[0]  # blue sky, not grey or red


def assert_only_mask_changed(image: np.ndarray, output: np.ndarray, mask: np.ndarray) -> None:
    assert output.shape == image.shape and output.dtype == np.uint8
    assert np.array_equal(output[~mask], image[~mask]), "pixels outside the mask changed"
    assert not np.array_equal(output[mask], image[mask]), "the masked pixels were not filled"


def inpaint(stub, image: np.ndarray, mask, engine: str = "", seed: int = 0, **params):
    """Inpaint -> (HxWx3 array, response). `mask` is an array or a Mask message."""
    mask_msg = mask if isinstance(mask, image_pb2.Mask) else raw_mask(mask)
    response = stub.Inpaint(
        inpainter_pb2.InpaintRequest(
            image=raw_image(image), mask=mask_msg, engine=engine, params=params, seed=seed
        ),
        timeout=TIMEOUT,
    )
    return decode(response.image), response


def inpaint_many(stub, image: np.ndarray, masks: list, engine: str = "", seed: int = 0, **params):
    """InpaintMany -> {index: HxWx3 array}; `masks` are arrays or Mask messages."""
    messages = [m if isinstance(m, image_pb2.Mask) else raw_mask(m) for m in masks]
    results = stub.InpaintMany(
        inpainter_pb2.InpaintManyRequest(
            image=raw_image(image), masks=messages, engine=engine, params=params, seed=seed
        ),
        timeout=TIMEOUT,
    )
    out = {}
    for result in results:
        assert result.index not in out, f"index {result.index} came back twice"
        out[result.index] = decode(result.image)
    return out


def decode(message: image_pb2.Image) -> np.ndarray:
    return decode_image(message, ImageLimits())


def png_mask(mask: np.ndarray) -> image_pb2.Mask:
    return image_pb2.Mask(encoded=encode_png(mask.astype(np.uint8) * 255))


def rect_mask(x: int, y: int, width: int, height: int) -> image_pb2.Mask:
    return image_pb2.Mask(rect=image_pb2.MaskRect(x=x, y=y, width=width, height=height))


def expect_status(call, code: grpc.StatusCode, *fragments: str) -> str:
    """Run call(); it must fail with `code` and a message containing every fragment."""
    try:
        call()
    except grpc.RpcError as err:
        assert err.code() == code, (err.code(), err.details())
        for fragment in fragments:
            assert fragment in err.details(), (fragment, err.details())
        return err.details()
    raise AssertionError(f"expected {code.name}, the call succeeded")


def engines_info(stub) -> dict[str, inpainter_pb2.EngineInfo]:
    info = stub.GetInfo(inpainter_pb2.GetInfoRequest(), timeout=TIMEOUT)
    return {engine.name: engine for engine in info.engines}
