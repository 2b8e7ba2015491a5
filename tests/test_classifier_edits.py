"""ClassifyEdits over gRPC: one base image and many edited rectangles, each
answered as Classify answers the edited image sent whole (SqueezeNet computes
them incrementally: equal up to float rounding, within 1e-4; see also
test_classifier_incremental_service.py)."""

from __future__ import annotations

import grpc
import numpy as np
import pytest

from common.images import raw_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc, image_pb2


@pytest.fixture(scope="module")
def stub(classifier_service):
    channel = grpc.insecure_channel(classifier_service.address)
    yield classifier_pb2_grpc.ClassifierStub(channel)
    channel.close()


def edit(x: int, y: int, pixels: np.ndarray) -> classifier_pb2.ImageEdit:
    height, width = pixels.shape[:2]
    return classifier_pb2.ImageEdit(
        rect=image_pb2.MaskRect(x=x, y=y, width=width, height=height),
        rgb=np.ascontiguousarray(pixels).tobytes(),
    )


def grey_square(side: int) -> np.ndarray:
    return np.full((side, side, 3), 128, np.uint8)


def test_each_edit_is_answered_as_the_edited_image_itself(stub, photo_rgb):
    soccer = photo_rgb("soccer")
    # Grey out the ball (centre), a corner, and the whole bottom row of pixels.
    edits = [(70, 60, grey_square(90)), (0, 0, grey_square(40)), (0, 226, soccer[:1] // 2)]
    reply = stub.ClassifyEdits(
        classifier_pb2.ClassifyEditsRequest(
            base=raw_image(soccer),
            edits=[edit(x, y, pixels) for x, y, pixels in edits],
            top_k=3,
            pinned_class_ids=[805],
            include_base=True,
        ),
        timeout=30,
    )
    assert len(reply.results) == 3
    assert reply.base.top[0].label == "soccer ball"
    for (x, y, pixels), result in zip(edits, reply.results, strict=True):
        edited = soccer.copy()
        edited[y : y + pixels.shape[0], x : x + pixels.shape[1]] = pixels
        whole = stub.Classify(
            classifier_pb2.ClassifyRequest(
                images=[raw_image(edited)], top_k=3, pinned_class_ids=[805]
            ),
            timeout=30,
        ).results[0]
        assert [c.class_id for c in result.top] == [c.class_id for c in whole.top]
        assert result.pinned[0].probability == pytest.approx(whole.pinned[0].probability, abs=1e-4)
    # Removing the ball costs "soccer ball" most of its probability; a corner does not.
    ball_gone, corner_gone = reply.results[0].pinned[0], reply.results[1].pinned[0]
    assert ball_gone.probability < 0.5 * reply.base.top[0].probability < corner_gone.probability


def test_more_edits_than_a_batch_keep_their_order(stub, photo_rgb):
    soccer = photo_rgb("soccer")
    edits = [edit(x, 100, grey_square(20)) for x in range(0, 200, 3)]  # 67 > max batch 64
    reply = stub.ClassifyEdits(
        classifier_pb2.ClassifyEditsRequest(
            base=raw_image(soccer), edits=edits, all_probabilities=True
        ),
        timeout=60,
    )
    assert len(reply.results) == len(edits)
    last = soccer.copy()
    last[100:120, 198:218] = 128
    whole = stub.Classify(
        classifier_pb2.ClassifyRequest(images=[raw_image(last)], all_probabilities=True),
        timeout=30,
    ).results[0]
    np.testing.assert_allclose(reply.results[-1].probabilities, whole.probabilities, atol=1e-4)


@pytest.mark.parametrize(
    ("edits", "message"),
    [
        ([edit(200, 200, grey_square(40))], "does not fit in the 227x227 image"),
        (
            [classifier_pb2.ImageEdit(rect=image_pb2.MaskRect(x=0, y=0, width=4, height=4))],
            "0 bytes of RGB do not match 4x4x3 = 48",
        ),
        (
            [classifier_pb2.ImageEdit(rect=image_pb2.MaskRect(x=3, y=3, width=0, height=5))],
            "the rectangle is empty",
        ),
        ([], "no edits"),
        ([edit(0, 0, grey_square(2))] * 1025, "1025 edits in one call; at most 1024"),
    ],
)
def test_bad_edits_are_invalid_argument(stub, photo_rgb, edits, message):
    with pytest.raises(grpc.RpcError) as err:
        stub.ClassifyEdits(
            classifier_pb2.ClassifyEditsRequest(base=raw_image(photo_rgb("soccer")), edits=edits),
            timeout=30,
        )
    assert err.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert message in err.value.details()


def test_model_info_says_how_edits_are_computed(stub):
    info = stub.GetModelInfo(classifier_pb2.GetModelInfoRequest(), timeout=10)
    assert info.max_edits == 1024
    assert info.incremental is True and info.incremental_reason == ""
