"""The Explainer service over gRPC, in front of the real classifier and
inpainters: the order of its events, maps equal to the brute-force computation
(every window inpainted whole and classified whole), bad input refused before
any work, a 12 MP photo explained at the model's resolution, and batches split
by bytes rather than failing."""

from __future__ import annotations

import grpc
import numpy as np
import pytest
from PIL import Image

from common.channels import open_channel
from common.images import raw_image
from ic.v1 import classifier_pb2, classifier_pb2_grpc, explainer_pb2, inpainter_pb2
from services.explainer import core, grid
from tests.explainer_fixtures import ExplainerProcess
from tests.support.inpainting import rect_mask, stub_for

SOCCER_BALL = 805
TIMEOUT = 120


def events(stub, rgb: np.ndarray, **options) -> list[explainer_pb2.ExplainEvent]:
    request = explainer_pb2.ExplainRequest(image=raw_image(rgb), **options)
    return list(stub.Explain(request, timeout=TIMEOUT))


def result_of(stream: list[explainer_pb2.ExplainEvent]) -> explainer_pb2.ExplainResult:
    assert stream[-1].WhichOneof("event") == "result"
    return stream[-1].result


def gray(message: explainer_pb2.EvidenceMap) -> np.ndarray:
    return np.frombuffer(message.data, np.uint8).reshape(message.height, message.width)


def brute_force_maps(classifier_address, inpainter_address, rgb, windows, class_ids):
    """What the gateway computed before the explainer existed: every window
    inpainted over the whole image, every result classified whole, 16 at a time."""
    classifier = classifier_pb2_grpc.ClassifierStub(open_channel(classifier_address))
    inpainter = stub_for(inpainter_address)
    original = classifier.Classify(
        classifier_pb2.ClassifyRequest(images=[raw_image(rgb)], pinned_class_ids=class_ids),
        timeout=TIMEOUT,
    ).results[0]
    p_original = np.array([p.probability for p in original.pinned])
    filled = {
        result.index: result.image
        for result in inpainter.InpaintMany(
            inpainter_pb2.InpaintManyRequest(
                image=raw_image(rgb), masks=[rect_mask(*r) for r in windows.rects()]
            ),
            timeout=TIMEOUT,
        )
    }
    p_windows = []
    for start in range(0, windows.count, 16):
        batch = [filled[i] for i in range(start, min(start + 16, windows.count))]
        answer = classifier.Classify(
            classifier_pb2.ClassifyRequest(images=batch, top_k=1, pinned_class_ids=class_ids),
            timeout=TIMEOUT,
        )
        p_windows += [[p.probability for p in r.pinned] for r in answer.results]
    return core.evidence_maps(windows.layout(), p_original, np.array(p_windows))


def test_events_come_in_order_progress_preview_result(explainer_service, photo_rgb):
    stream = events(explainer_service.stub(), photo_rgb("soccer"), preview=True)
    kinds = [event.WhichOneof("event") for event in stream]
    assert kinds[0] == "progress" and stream[0].progress.done == 0
    assert kinds.count("preview") == 1 and kinds[-1] == "result" and kinds.count("result") == 1
    done = [event.progress.done for event in stream if event.HasField("progress")]
    assert done == sorted(done) and done[-1] == 169
    preview = stream[kinds.index("preview")].preview
    assert (getattr(preview, "pass"), preview.windows) == ("coarse", 25)
    result = result_of(stream)
    assert (getattr(result.maps, "pass"), result.maps.windows) == ("full", 169)
    assert result.target.class_id == SOCCER_BALL
    assert "first_preview" in result.timing_ms
    assert result.timing_ms["first_preview"] < result.timing_ms["total"]
    # Without preview=true, no preview.
    quiet = events(explainer_service.stub(), photo_rgb("soccer"), window=64, stride=32)
    assert "preview" not in [event.WhichOneof("event") for event in quiet]


def test_maps_equal_the_brute_force_computation(
    explainer_service, classifier_service, inpainter_service, photo_rgb
):
    rgb = photo_rgb("soccer")
    stream = events(
        explainer_service.stub(), rgb, window=64, stride=32, competitors=2, preview=True
    )
    result = result_of(stream)
    windows = grid.make_grid(227, 227, 64, 32)
    class_ids = [result.target.class_id] + [c.competitor.class_id for c in result.maps.competitors]
    expected = brute_force_maps(
        classifier_service.address, inpainter_service.address, rgb, windows, class_ids
    )
    pairs = [(result.maps.hinder, expected.hinder), (result.maps.support, expected.support)]
    pairs += [
        (item.map, raw)
        for item, raw in zip(result.maps.competitors, expected.competitors, strict=True)
    ]
    # The explainer's windows go through ClassifyEdits, incremental for SqueezeNet:
    # its probabilities equal full inference's within 1e-4 (4.7e-6 measured),
    # a few millionths of a bit of log-odds here.
    for message, raw in pairs:
        levels, low, high = core.to_gray8(raw)
        assert message.min == pytest.approx(low, abs=1e-4)
        assert message.max == pytest.approx(high, rel=1e-4, abs=1e-4)
        assert np.abs(gray(message).astype(int) - levels.astype(int)).max() <= 1


def test_the_explainer_uses_incremental_inference_when_the_model_has_it(
    explainer_service, classifier_service, photo_rgb
):
    classifier = classifier_pb2_grpc.ClassifierStub(open_channel(classifier_service.address))
    info = classifier.GetModelInfo(classifier_pb2.GetModelInfoRequest(), timeout=TIMEOUT)
    result = result_of(events(explainer_service.stub(), photo_rgb("soccer"), window=113, stride=57))
    assert result.incremental == info.incremental


@pytest.mark.parametrize(
    "options,code,words",
    [
        ({"target": 1000}, grpc.StatusCode.INVALID_ARGUMENT, "target 1000 is not a class id"),
        ({"window": 0}, grpc.StatusCode.INVALID_ARGUMENT, "window must be at least 1"),
        ({"window": 300}, grpc.StatusCode.INVALID_ARGUMENT, "larger than the 227x227 image"),
        ({"competitors": 11}, grpc.StatusCode.INVALID_ARGUMENT, "competitors=11"),
        ({"fix_fraction": 0.0}, grpc.StatusCode.INVALID_ARGUMENT, "fix_fraction=0"),
        ({"backend": "nonesuch"}, grpc.StatusCode.NOT_FOUND, "unknown backend 'nonesuch'"),
    ],
)
def test_bad_requests_end_before_the_first_event(
    explainer_service, photo_rgb, options, code, words
):
    before = explainer_service.metric("ic_explain_windows_classified_total")
    stream = explainer_service.stub().Explain(
        explainer_pb2.ExplainRequest(image=raw_image(photo_rgb("soccer")), **options),
        timeout=TIMEOUT,
    )
    with pytest.raises(grpc.RpcError) as failure:
        next(stream)
    assert failure.value.code() == code
    assert words in failure.value.details()
    assert explainer_service.metric("ic_explain_windows_classified_total") == before


def test_an_image_that_is_not_one_is_refused(explainer_service):
    stream = explainer_service.stub().Explain(
        explainer_pb2.ExplainRequest(image={"encoded": b"not a picture"}), timeout=TIMEOUT
    )
    with pytest.raises(grpc.RpcError) as failure:
        next(stream)
    assert failure.value.code() == grpc.StatusCode.INVALID_ARGUMENT
    assert "could not be decoded" in failure.value.details()


def test_a_12_megapixel_photo_is_explained_at_the_model_resolution(explainer_service, photo_rgb):
    """4000x3000: the windows are the photo's, the work is at 341x256 (what the
    classifier sees of it anyway), the maps come back at 512x384."""
    small = photo_rgb("soccer")
    big = np.asarray(Image.fromarray(small).resize((4000, 3000), Image.Resampling.BICUBIC))
    result = result_of(events(explainer_service.stub(), big, fix=True))
    assert (result.width, result.height) == (4000, 3000)
    assert (result.window, result.stride) == (600, 200)  # a fifth and a third, of the photo
    assert result.maps.windows == 13 * 18
    assert (result.work_width, result.work_height) == (341, 256)
    maps = [result.maps.hinder, result.maps.support, *(c.map for c in result.maps.competitors)]
    assert {(m.width, m.height) for m in maps} == {(512, 384)}
    assert result.target.class_id == SOCCER_BALL
    assert result.maps.support.max > 0.5  # the ball still matters
    assert result.fix.applied and (result.fix.mask.width, result.fix.mask.height) == (512, 384)
    assert result.ByteSize() < 2_500_000  # bounded, whatever the photo's size


def test_a_batch_too_large_for_the_byte_limit_is_split_with_the_same_result(
    classifier_service, inpainter_service, photo_rgb
):
    """A 700x256 photo (not shrunk: its short side is the model's) with 128 px
    windows: 525 KB of base image and 48 KB per window. Sixteen windows would
    pass a 1 MiB limit; the batches are cut by bytes instead, and nothing changes."""
    panorama = np.asarray(
        Image.fromarray(photo_rgb("beach")).resize((700, 256), Image.Resampling.BILINEAR)
    )
    backends = [inpainter_service.address]
    answers = {}
    for limit in ("33554432", "1048576"):
        with ExplainerProcess(
            classifier_service.address,
            backends,
            IC_EXPLAIN_BATCH_BYTES=limit,
            IC_EXPLAIN_BATCH="16",
        ) as explainer:
            answers[limit] = result_of(events(explainer.stub(), panorama, window=128, stride=64))
    wide, narrow = answers["33554432"], answers["1048576"]
    assert wide.maps.windows == narrow.maps.windows == 30
    assert wide.classify_calls == 2  # 16 + 14
    assert narrow.classify_calls >= 3  # at most 10 windows per call
    for a, b in [(wide.maps.hinder, narrow.maps.hinder), (wide.maps.support, narrow.maps.support)]:
        assert a.max == pytest.approx(b.max, rel=1e-5, abs=1e-6)
        assert np.abs(gray(a).astype(int) - gray(b).astype(int)).max() <= 1


def test_the_explainer_is_healthy_and_lists_its_service(explainer_service):
    from grpc_reflection.v1alpha import reflection_pb2, reflection_pb2_grpc

    from tests.support.processes import grpc_health_status

    assert grpc_health_status(explainer_service.address, "ic.v1.Explainer") == 1  # SERVING
    stub = reflection_pb2_grpc.ServerReflectionStub(open_channel(explainer_service.address))
    answers = stub.ServerReflectionInfo(
        iter([reflection_pb2.ServerReflectionRequest(list_services="")]), timeout=TIMEOUT
    )
    names = [s.name for answer in answers for s in answer.list_services_response.service]
    assert "ic.v1.Explainer" in names and "grpc.health.v1.Health" in names
