"""POST /api/v1/explain through the real gateway and explainer, in front of the
real classifier and inpainters: map semantics on a constructed image, fix-it,
faithfulness, bad input, streaming progress with a coarse preview, and
cancellation reaching the inpainter and the classifier when the client goes
away."""

from __future__ import annotations

import base64
import io
import json
import socket
import time
from urllib.parse import urlparse

import numpy as np
import pytest
import requests
from PIL import Image

from tests.explainer_fixtures import ExplainerProcess
from tests.gateway_fixtures import GatewayProcess, png_bytes

SOCCER_BALL = 805
RUGBY_BALL = 768
BEACON = 437


def gray(text: str) -> np.ndarray:
    image = Image.open(io.BytesIO(base64.b64decode(text, validate=True)))
    assert image.format == "PNG"
    return np.asarray(image)


def explain(gateway, image: bytes, **fields) -> requests.Response:
    data = {k: str(v) for k, v in fields.items()}
    return gateway.post("/api/v1/explain", files={"image": ("x.png", image)}, data=data)


def ndjson(gateway, image: bytes, **fields) -> list[dict]:
    reply = gateway.post(
        "/api/v1/explain",
        files={"image": ("x.jpg", image)},
        data={k: str(v) for k, v in fields.items()},
        headers={"Accept": "application/x-ndjson"},
        stream=True,
    )
    assert reply.status_code == 200, reply.text
    assert reply.headers["Content-Type"].startswith("application/x-ndjson")
    return [json.loads(line) for line in reply.iter_lines() if line]


def settled(read, quiet_s: float = 1.5, timeout_s: float = 30.0) -> float:
    """read()'s value once it has not changed for quiet_s seconds."""
    deadline = time.monotonic() + timeout_s
    value, since = read(), time.monotonic()
    while time.monotonic() - since < quiet_s:
        assert time.monotonic() < deadline, f"still changing after {timeout_s} s: {value}"
        time.sleep(0.25)
        now = read()
        if now != value:
            value, since = now, time.monotonic()
    return value


def rpc_count(service, method: str) -> int:
    """How many `method` calls the service has logged as finished."""
    return service.log_path.read_text(errors="replace").count(f'"method": "{method}"')


def test_default_grid_gives_maps_at_the_image_size(gateway_service, photo_bytes):
    reply = explain(gateway_service, photo_bytes("soccer"))
    assert reply.status_code == 200, reply.text
    body = reply.json()
    assert (body["windows"], body["window"], body["stride"]) == (169, 48, 16)
    assert body["target"]["class_id"] == SOCCER_BALL and body["target"]["rank"] == 1
    assert len(body["competitors"]) == 3
    assert SOCCER_BALL not in [c["class_id"] for c in body["competitors"]]
    for item in [body["hinder"], body["support"], *body["competitors"]]:
        image = gray(item["png"])
        assert image.shape == (227, 227) and image.dtype == np.uint8
        assert 0 <= item["min"] <= item["max"]
        if item["max"] > item["min"]:
            assert image.max() == 255 and image.min() == 0
        assert (item["width"], item["height"]) == (227, 227)
    # Inpainting windows over the ball removes evidence for "soccer ball".
    assert body["support"]["max"] > 0.5
    assert body["backend"] == "telea" and body["fallback"] is False
    assert body["backends_used"] == [{"backend": "telea", "windows": 169}]
    assert body["work_size"] == [227, 227]  # no larger than the model's input: as it is
    assert (body["pass"], body["final"]) == ("full", True)
    assert body["served_by"]["explainer"]


def lighthouse_in_the_corner(photo_rgb) -> tuple[np.ndarray, np.ndarray]:
    """The soccer photo with the lighthouse tower pasted into its top-right corner."""
    soccer = photo_rgb("soccer").copy()
    tower = Image.fromarray(photo_rgb("lighthouse")).crop((85, 60, 160, 200))
    patch = np.asarray(tower.resize((100, 140), Image.Resampling.BILINEAR))
    soccer[:140, -100:] = patch
    inside = np.zeros(soccer.shape[:2], dtype=bool)
    inside[:140, -100:] = True
    return soccer, inside


def test_a_pasted_patch_hinders_the_photo_class_and_supports_its_own(gateway_service, photo_rgb):
    composite, inside = lighthouse_in_the_corner(photo_rgb)
    reply = explain(gateway_service, png_bytes(composite), target=SOCCER_BALL, competitors=5)
    assert reply.status_code == 200, reply.text
    body = reply.json()
    hinder = gray(body["hinder"]["png"]).astype(float)
    beacon = [c for c in body["competitors"] if c["class_id"] == BEACON]
    assert beacon, (
        f"the lighthouse is not a competitor: {[c['label'] for c in body['competitors']]}"
    )
    lighthouse = gray(beacon[0]["png"]).astype(float)
    for name, image in (("hinder", hinder), ("beacon", lighthouse)):
        peak = np.unravel_index(np.argmax(image), image.shape)
        assert inside[peak], f"{name} peaks outside the pasted patch, at {peak}"
        assert image[inside].mean() > 2 * image[~inside].mean(), name


def test_fix_it_removes_what_hinders_and_raises_the_target(gateway_service, photo_bytes):
    reply = explain(gateway_service, photo_bytes("soccer"), target=RUGBY_BALL, fix="true")
    assert reply.status_code == 200, reply.text
    body = reply.json()
    fix = body["fix"]
    assert fix["applied"] is True
    assert 0 < fix["fraction"] <= 0.05
    mask = gray(fix["mask"]) > 0
    assert mask.mean() == pytest.approx(fix["fraction"])
    fixed = np.asarray(Image.open(io.BytesIO(base64.b64decode(fix["image"]))).convert("RGB"))
    original = np.asarray(Image.open(io.BytesIO(photo_bytes("soccer"))).convert("RGB"))
    assert np.array_equal(fixed[~mask], original[~mask])
    assert not np.array_equal(fixed[mask], original[mask])
    assert fix["target"]["class_id"] == RUGBY_BALL
    assert fix["target"]["probability"] > fix["probability_before"]
    assert fix["became_top1"] == (fix["target"]["rank"] == 1)
    assert fix["top1"]["rank"] == 1


def test_faithfulness_compares_the_maps_with_baselines(gateway_service, photo_bytes):
    reply = explain(gateway_service, photo_bytes("soccer"), target=RUGBY_BALL, faithfulness="true")
    assert reply.status_code == 200, reply.text
    score = reply.json()["faithfulness"]
    assert set(score["removal"]) == {"hinder", "random", "cam_least"}
    for rows in score["removal"].values():
        assert [row["fraction"] for row in rows] == [0.01, 0.02, 0.05, 0.1, 0.2]
    for curves in (score["deletion"], score["insertion"]):
        assert set(curves) == {"support", "cam", "random"}
        for curve in curves.values():
            assert len(curve["p_target"]) == len(score["curve_fractions"]) == 11
            assert 0 <= curve["auc"] <= 1
    # Removing the most hindering 5% helps the target more than a random 5%.
    rise = {m: rows[2]["rise"] for m, rows in score["removal"].items()}
    assert rise["hinder"] > rise["random"]


@pytest.mark.parametrize(
    "fields,words",
    [
        ({"window": 300}, "larger than the 227x227 image"),
        ({"stride": 0}, "stride must be at least 1"),
        ({"window": 16, "stride": 20}, "larger than the window"),
        ({"target": 1000}, "target 1000 is not a class id"),
        ({"target": "ball"}, "not an integer"),
        ({"window": 8, "stride": 1}, "at most 1024 are allowed"),
        ({"competitors": 11}, "competitors=11 is out of range"),
        ({"competitors": -1}, "competitors=-1 is out of range"),
        ({"fix": "true", "fix_fraction": 0.5}, "fix_fraction=0.5 is out of range"),
        ({"fix": "perhaps"}, "not a boolean"),
    ],
)
def test_bad_input_is_a_400_naming_the_problem(
    gateway_service, explainer_service, photo_bytes, fields, words
):
    before = explainer_service.metric("ic_explain_windows_classified_total")
    reply = explain(gateway_service, photo_bytes("soccer"), **fields)
    assert reply.status_code == 400, reply.text
    assert words in reply.json()["error"]["message"]
    assert explainer_service.metric("ic_explain_windows_classified_total") == before


def test_unknown_backend_is_a_404(gateway_service, photo_bytes):
    reply = explain(gateway_service, photo_bytes("soccer"), backend="nonesuch")
    assert reply.status_code == 404
    assert "unknown backend" in reply.json()["error"]["message"]


def test_streaming_progress_reaches_the_total(gateway_service, photo_bytes):
    lines = ndjson(gateway_service, photo_bytes("soccer"), window=64, stride=32)
    progress = [line for line in lines if "done" in line]
    final = lines[-1]
    assert progress[0] == {"done": 0, "total": 49}
    done = [p["done"] for p in progress]
    assert done == sorted(done) and done[-1] == 49
    assert {p["total"] for p in progress} == {49}
    assert final["windows"] == 49 and "hinder" in final and final["final"] is True


def test_a_coarse_preview_arrives_before_the_final_maps(gateway_service, photo_bytes):
    lines = ndjson(gateway_service, photo_bytes("soccer"))
    kinds = ["preview" if line.get("final") is False else "final" if "final" in line else "done"
             for line in lines]  # fmt: skip
    assert kinds.count("preview") == 1 and kinds[-1] == "final" and kinds.count("final") == 1
    at = kinds.index("preview")
    preview, final = lines[at], lines[-1]
    # It came while most of the windows were still to do.
    done_before = max(line["done"] for line in lines[:at] if "done" in line)
    assert done_before < 169 / 2
    assert (preview["pass"], preview["windows"]) == ("coarse", 25)
    assert preview["target"] == final["target"]
    assert [c["class_id"] for c in preview["competitors"]] == [
        c["class_id"] for c in final["competitors"]
    ]
    for name in ("hinder", "support"):
        coarse, full = gray(preview[name]["png"]), gray(final[name]["png"])
        assert coarse.shape == full.shape == (227, 227)
        # The same picture, less detailed: where the final map is strong, so is the preview.
        strong = full > 128
        assert coarse[strong].mean() > coarse[~strong].mean() + 40, name


def test_the_preview_is_the_coarse_windows_alone(gateway_service, photo_bytes):
    """The coarse pass of the default grid (48 px windows) is the grid of 48 px
    windows 48 px apart: its preview maps are that explanation's final maps."""
    lines = ndjson(gateway_service, photo_bytes("soccer"))
    preview = next(line for line in lines if line.get("final") is False)
    coarse_grid = explain(gateway_service, photo_bytes("soccer"), window=48, stride=48).json()
    assert coarse_grid["windows"] == preview["windows"] == 25
    for name in ("hinder", "support"):
        assert preview[name]["min"] == pytest.approx(coarse_grid[name]["min"], abs=1e-6)
        assert preview[name]["max"] == pytest.approx(coarse_grid[name]["max"], rel=1e-5)
        difference = np.abs(
            gray(preview[name]["png"]).astype(int) - gray(coarse_grid[name]["png"]).astype(int)
        )
        assert difference.max() <= 1, name


def test_a_plain_json_answer_has_no_preview_and_the_same_maps(gateway_service, photo_bytes):
    streamed = ndjson(gateway_service, photo_bytes("soccer"), window=64, stride=32)[-1]
    plain = explain(gateway_service, photo_bytes("soccer"), window=64, stride=32).json()
    for name in ("hinder", "support"):
        assert plain[name]["max"] == pytest.approx(streamed[name]["max"], rel=1e-5)
        difference = np.abs(
            gray(plain[name]["png"]).astype(int) - gray(streamed[name]["png"]).astype(int)
        )
        assert difference.max() <= 1, name


def open_request(url: str, image: bytes, fields: dict[str, str], accept: str) -> socket.socket:
    """Send an explain request by hand, so the test can hang up mid-answer."""
    boundary = "explaintestboundary"
    parts = [
        f'--{boundary}\r\nContent-Disposition: form-data; name="{k}"\r\n\r\n{v}\r\n'.encode()
        for k, v in fields.items()
    ]
    parts.append(
        f'--{boundary}\r\nContent-Disposition: form-data; name="image"; filename="a.jpg"\r\n'
        "Content-Type: image/jpeg\r\n\r\n".encode()
        + image
        + b"\r\n"
    )
    body = b"".join(parts) + f"--{boundary}--\r\n".encode()
    where = urlparse(url)
    sock = socket.create_connection((where.hostname, where.port), timeout=30)
    head = (
        f"POST /api/v1/explain HTTP/1.1\r\nHost: {where.netloc}\r\n"
        f"Accept: {accept}\r\n"
        f"Content-Type: multipart/form-data; boundary={boundary}\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    sock.sendall(head.encode() + body)
    return sock


@pytest.mark.parametrize("accept", ["application/x-ndjson", "application/json"])
def test_a_client_that_hangs_up_stops_the_work_everywhere(
    gateway_service, explainer_service, classifier_service, inpainter_service, photo_bytes, accept
):
    cancelled_before = explainer_service.metric("ic_explain_cancelled_total")
    start = explainer_service.metric("ic_explain_windows_classified_total")
    calls_before = rpc_count(classifier_service, "ClassifyEdits")
    # 961 windows: several seconds of work, far more than happens before the hang-up.
    sock = open_request(
        gateway_service.url, photo_bytes("soccer"), {"window": "48", "stride": "6"}, accept
    )
    if accept == "application/x-ndjson":
        received = b""
        while received.count(b'"done"') < 3:  # the headers, then a few progress lines
            chunk = sock.recv(65536)
            assert chunk, "the gateway closed the stream early"
            received += chunk
    else:  # nothing arrives before the answer: wait until the work is under way
        deadline = time.monotonic() + 20
        while explainer_service.metric("ic_explain_windows_classified_total") < start + 32:
            assert time.monotonic() < deadline, "the explanation did not start"
            time.sleep(0.1)
    sock.close()

    deadline = time.monotonic() + 20
    while explainer_service.metric("ic_explain_cancelled_total") <= cancelled_before:
        assert time.monotonic() < deadline, "the explanation was not cancelled"
        time.sleep(0.2)
    # Calls already under way finish (a unary call runs to its end on the
    # server); then nothing more is classified and the classifier is asked
    # nothing more: far fewer calls than the 61 batches of a whole run.
    stopped_at = settled(lambda: explainer_service.metric("ic_explain_windows_classified_total"))
    assert stopped_at - start < 961
    assert settled(lambda: rpc_count(classifier_service, "ClassifyEdits")) - calls_before < 61
    # The inpainter saw its streams cancelled.
    log = inpainter_service.log_path.read_text(errors="replace")
    assert "InpaintMany ended early" in log or '"code": "CANCELLED"' in log


def test_a_12_megapixel_photo_is_explained_with_a_bounded_answer(gateway_service, photo_rgb):
    """A phone-sized photo within the limits never fails ("message larger than
    max" used to), costs about what the small one does, and the answer stays small."""
    big = Image.fromarray(photo_rgb("soccer")).resize((4000, 3000), Image.Resampling.BICUBIC)
    upload = io.BytesIO()
    big.save(upload, format="JPEG", quality=90)
    reply = explain(gateway_service, upload.getvalue(), fix="true")
    assert reply.status_code == 200, reply.text[:300]
    assert len(reply.content) < 1_500_000
    body = reply.json()
    assert (body["width"], body["height"], body["windows"]) == (4000, 3000, 234)
    assert body["work_size"] == [341, 256]
    assert body["target"]["class_id"] == SOCCER_BALL
    for item in [body["hinder"], body["support"], *body["competitors"]]:
        assert gray(item["png"]).shape == (384, 512)
    assert gray(body["fix"]["mask"]).shape == (384, 512)


def test_openapi_describes_explain(gateway_service):
    document = gateway_service.get("/api/v1/openapi.json").json()
    post = document["paths"]["/api/v1/explain"]["post"]
    assert "application/x-ndjson" in post["responses"]["200"]["content"]
    assert "ExplainResult" in document["components"]["schemas"]


def test_too_many_explanations_at_once_get_a_429(
    classifier_service, inpainter_service, photo_bytes
):
    with (
        ExplainerProcess(
            classifier_service.address, [inpainter_service.address], IC_EXPLAIN_MAX_CONCURRENT="1"
        ) as explainer,
        GatewayProcess(
            classifier_service.address, [inpainter_service.address], explainer=explainer.address
        ) as gateway,
    ):
        sock = open_request(
            gateway.url, photo_bytes("soccer"), {"window": "48", "stride": "6"},
            "application/x-ndjson",
        )  # fmt: skip
        received = b""
        while b'"done"' not in received:  # the first explanation is under way
            chunk = sock.recv(65536)
            assert chunk, "the gateway closed the stream early"
            received += chunk
        busy = explain(gateway, photo_bytes("soccer"), window=113, stride=57)
        assert busy.status_code == 429
        assert "already running" in busy.json()["error"]["message"]
        sock.close()  # the running one is cancelled and frees its slot
        deadline = time.monotonic() + 20
        while (
            reply := explain(gateway, photo_bytes("soccer"), window=113, stride=57)
        ).status_code == 429:
            assert time.monotonic() < deadline, "the slot was never freed"
            time.sleep(0.2)
        assert reply.status_code == 200 and reply.json()["windows"] == 9


def test_the_request_id_reaches_every_service_of_an_explanation(
    gateway_service, explainer_service, classifier_service, inpainter_service, photo_bytes
):
    request_id = f"explain-trace-{time.time_ns()}"
    reply = gateway_service.post(
        "/api/v1/explain",
        files={"image": ("soccer.jpg", photo_bytes("soccer"))},
        data={"window": "113", "stride": "57"},
        headers={"X-Request-ID": request_id},
    )
    assert reply.status_code == 200 and reply.headers["X-Request-ID"] == request_id
    for service in (explainer_service, classifier_service, inpainter_service):
        assert f'"request_id": "{request_id}"' in service.log_path.read_text(errors="replace")
