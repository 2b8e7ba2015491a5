"""EfficientNet-Lite0 made by our own converter, no torch: the legacy torch reader
(and what it refuses), the ONNX graph, batch norm folding against an unfolded
numpy reference, and the gallery's top-1s with the model card's preprocessing."""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import shutil
import struct
import subprocess
import sys
import zipfile
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from numpy.lib.stride_tricks import sliding_window_view
from onnx.utils import Extractor

from services.classifier.converters import efficientnet_lite as lite
from services.classifier.converters.torch_legacy import (
    TorchFormatError,
    UnsafePickleError,
    load_state_dict,
    read_state_dict,
)
from tests.conftest import GALLERY_TOP1, SHARED
from tests.support.legacy_torch import (
    MAGIC_NUMBER,
    Build,
    Call,
    Global,
    Persistent,
    TensorEntry,
    contiguous_state_dict_bytes,
    legacy_file_bytes,
    ordered_dict,
    pickle_bytes,
    tensor_call,
)
from tests.support.model_cards import card_input
from tests.support.processes import REPO

CARD_PATH = REPO / "models" / "efficientnet-lite0.json"
BREAKWATER = "breakwater, groin, groyne, mole, bulwark, seawall, jetty"
# SqueezeNet's top-1 on eight photos; on the lighthouse EfficientNet-Lite0 sees
# the breakwater first and the beacon (SqueezeNet's answer) second.
EXPECTED_TOP1 = {**GALLERY_TOP1, "lighthouse": BREAKWATER}


# --- the legacy reader: what it refuses ---------------------------------------


def _hostile_payloads(marker: Path) -> dict[str, Call]:
    """Globals a malicious .pth would call; each one creates `marker` if it runs."""
    return {
        "os.system": Call(Global("os", "system"), (f"touch {marker}",)),
        "builtins.eval": Call(Global("builtins", "eval"), (f"open({str(marker)!r}, 'w').close()",)),
        "subprocess.check_call": Call(
            Global("subprocess", "check_call"), (["touch", str(marker)],)
        ),
    }


@pytest.mark.parametrize("global_name", ["os.system", "builtins.eval", "subprocess.check_call"])
def test_a_hostile_global_is_refused_by_name_and_never_runs(tmp_path, global_name):
    marker = tmp_path / "pwned"
    payload = _hostile_payloads(marker)[global_name]
    pth = tmp_path / "hostile.pth"
    pth.write_bytes(legacy_file_bytes(ordered_dict([("weight", payload)]), {}))

    with pytest.raises(UnsafePickleError, match=rf"refusing the global {global_name}\b"):
        load_state_dict(pth)
    assert not marker.exists()

    # The payload is live: the standard unpickler, reading the same four pickles,
    # runs it. (That is what the restricted one prevents.)
    with pth.open("rb") as fh:
        for _ in range(4):
            pickle.load(fh)
    assert marker.exists()


def test_hostile_globals_are_refused_wherever_they_hide(tmp_path):
    marker = tmp_path / "pwned"
    payload = _hostile_payloads(marker)["os.system"]
    storage = np.zeros(4, dtype=np.float32)
    tensor = tensor_call(TensorEntry("0", 0, (4,), (1,)), storage)
    hidden_in = {
        # Instead of the magic number, the first thing read.
        "magic number": pickle_bytes(payload),
        # As the storage type of a persistent id.
        "storage type": legacy_file_bytes(
            ordered_dict(
                [("w", Call(tensor.func, (Persistent(("storage", payload, "0", "cpu", 4, None)),)))]
            ),
            {"0": storage},
        ),
        # Among the arguments of a tensor rebuild.
        "rebuild arguments": legacy_file_bytes(
            ordered_dict([("w", Call(tensor.func, (*tensor.args[:5], payload)))]), {"0": storage}
        ),
        # In the storage key list read after the state_dict.
        "storage keys": legacy_file_bytes(ordered_dict([("w", tensor)]), {"0": storage}).replace(
            pickle_bytes(["0"]), pickle_bytes([payload])
        ),
    }
    for where, data in hidden_in.items():
        with pytest.raises(UnsafePickleError, match=r"os\.system"):
            read_state_dict(io.BytesIO(data))
        assert not marker.exists(), where


def _zip_checkpoint() -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        archive.writestr("archive/data.pkl", pickle_bytes({}))
        archive.writestr("archive/version", "3\n")
    return buffer.getvalue()


def _malformed_files() -> dict[str, tuple[bytes, str]]:
    storage = np.arange(6, dtype=np.float32)
    good = contiguous_state_dict_bytes({"w": storage})
    overrun = ordered_dict([("w", tensor_call(TensorEntry("0", 4, (3,), (1,)), storage))])
    # A storage whose pickle and header both claim 10**12 floats (4 TB) in a tiny file.
    huge = Persistent(("storage", Global("torch", "FloatStorage"), "0", "cpu", 10**12, None))
    lying = ordered_dict(
        [("w", Call(Global("torch._utils", "_rebuild_tensor"), (huge, 0, (6,), (1,))))]
    )
    lying_bytes = legacy_file_bytes(lying, {"0": storage}).replace(
        struct.pack("<q", 6), struct.pack("<q", 10**12)
    )
    # A checked tensor whose shape a BUILD then tries to enlarge past its storage.
    checked = tensor_call(TensorEntry("0", 0, (6,), (1,)), storage)
    enlarged = Build(checked, (None, {"shape": (10**9,)}))
    return {
        "zip format": (_zip_checkpoint(), "zip-based format of torch >= 1.6"),
        "tensor changed after its check": (
            legacy_file_bytes(ordered_dict([("w", enlarged)]), {"0": storage}),
            "tries to change a TensorRef",
        ),
        "wrong magic": (
            pickle_bytes(12345) + good[len(pickle_bytes(MAGIC_NUMBER)) :],
            "wrong magic",
        ),
        "truncated": (good[:-8], "ends inside storage"),
        "storage larger than the file": (lying_bytes, "ends inside storage 0"),
        "tensor beyond its storage": (legacy_file_bytes(overrun, {"0": storage}), "does not fit"),
        "not a mapping": (legacy_file_bytes([1, 2], {}), "expected a state_dict"),
        "big-endian": (
            legacy_file_bytes(ordered_dict([]), {}, sys_info={"little_endian": False}),
            "little-endian",
        ),
        "not a pickle at all": (b"\x00" * 64, "cannot read the magic number"),
    }


@pytest.mark.parametrize("case", list(_malformed_files()))
def test_malformed_files_get_a_clear_error(case):
    data, message = _malformed_files()[case]
    with pytest.raises(TorchFormatError, match=message):
        read_state_dict(io.BytesIO(data))


# --- the legacy reader: what it reads -----------------------------------------


def test_a_state_dict_written_here_round_trips_arrays_dtypes_and_shapes(tmp_path):
    rng = np.random.default_rng(7)
    tensors = {
        "conv.weight": rng.standard_normal((8, 3, 3, 3)).astype(np.float32),
        "bn.running_var": rng.random(8),  # float64
        "bn.num_batches_tracked": np.array(12_345_678_901, dtype=np.int64),  # 0-d
        "half": rng.standard_normal((2, 5)).astype(np.float16),
        "ids": np.array([-3, 0, 2**31 - 1], dtype=np.int32),
        "pixels": np.array([[0, 128, 255]], dtype=np.uint8),
        "mask": np.array([True, False, True]),
        "empty": np.zeros((0, 4), dtype=np.float32),
    }
    pth = tmp_path / "small.pth"
    pth.write_bytes(contiguous_state_dict_bytes(tensors))

    loaded = load_state_dict(pth)

    assert list(loaded) == list(tensors)
    for name, expected in tensors.items():
        assert loaded[name].dtype == expected.dtype, name
        assert loaded[name].shape == expected.shape, name
        np.testing.assert_array_equal(loaded[name], expected, err_msg=name)


def test_strided_views_and_shared_storages_read_as_torch_shows_them():
    # The packaged weights keep TF's HWIO layout underneath: each conv weight is
    # an OIHW view with strides like (1, 32, 288, 96). Two tensors may also
    # share one storage at different offsets.
    hwio = np.arange(3 * 3 * 2 * 4, dtype=np.float32).reshape(3, 3, 2, 4)
    shared = np.arange(10, dtype=np.float64) * 0.5
    state = ordered_dict(
        [
            ("conv.weight", tensor_call(TensorEntry("hwio", 0, (4, 2, 3, 3), (1, 4, 24, 8)), hwio)),
            ("a", tensor_call(TensorEntry("shared", 2, (2, 3), (3, 1)), shared)),
            ("b", tensor_call(TensorEntry("shared", 8, (2,), (1,)), shared)),
        ]
    )
    loaded = read_state_dict(io.BytesIO(legacy_file_bytes(state, {"hwio": hwio, "shared": shared})))

    np.testing.assert_array_equal(loaded["conv.weight"], hwio.transpose(3, 2, 0, 1))
    np.testing.assert_array_equal(loaded["a"], shared[2:8].reshape(2, 3))
    np.testing.assert_array_equal(loaded["b"], shared[8:10])
    assert all(a.flags.c_contiguous and a.flags.writeable for a in loaded.values())


def test_the_packaged_weights_read_as_efficientnet_lite0():
    weights = load_state_dict(lite.packaged_pth_path())
    assert len(weights) == 296
    assert weights["_conv_stem.weight"].shape == (32, 3, 3, 3)
    assert weights["_blocks.15._depthwise_conv.weight"].shape == (1152, 1, 3, 3)
    assert weights["_fc.weight"].shape == (1000, 1280)
    assert not any("_se_" in name for name in weights)  # Lite: no squeeze-and-excite
    assert {a.dtype for a in weights.values()} == {np.dtype(np.float32), np.dtype(np.int64)}


# --- the conversion -----------------------------------------------------------


@pytest.fixture(scope="session")
def lite0_onnx(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("lite0") / "efficientnet-lite0.onnx"
    return lite.build_efficientnet_lite0(out)


@pytest.fixture(scope="session")
def lite0_model(lite0_onnx) -> onnx.ModelProto:
    return onnx.load(str(lite0_onnx))


@pytest.fixture(scope="session")
def lite0_weights() -> dict[str, np.ndarray]:
    return load_state_dict(lite.packaged_pth_path())


@pytest.fixture(scope="session")
def card() -> dict:
    return json.loads(CARD_PATH.read_text())


def _session(model: onnx.ModelProto | Path) -> ort.InferenceSession:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1
    source = str(model) if isinstance(model, Path) else model.SerializeToString()
    return ort.InferenceSession(source, options, providers=["CPUExecutionProvider"])


def test_the_output_is_the_pinned_file_the_card_names(lite0_onnx, card):
    digest = hashlib.sha256(lite0_onnx.read_bytes()).hexdigest()
    assert digest == lite.ONNX_SHA256 == card["sha256"]
    assert lite0_onnx.name == card["onnx"]
    assert [p.name for p in lite0_onnx.parent.iterdir()] == [lite0_onnx.name]  # no temp files


def test_a_good_cached_model_is_kept_and_a_damaged_one_rebuilt(lite0_onnx, tmp_path):
    cached = tmp_path / "efficientnet-lite0.onnx"
    shutil.copy2(lite0_onnx, cached)
    before = cached.stat()
    assert lite.build_efficientnet_lite0(cached) == cached
    after = cached.stat()
    assert (after.st_ino, after.st_mtime_ns) == (before.st_ino, before.st_mtime_ns)

    cached.write_bytes(b"half a download")
    lite.build_efficientnet_lite0(cached)
    assert cached.read_bytes() == lite0_onnx.read_bytes()


def test_weights_with_another_checksum_are_refused_and_nothing_is_written(tmp_path):
    other = tmp_path / "other.pth"
    other.write_bytes(contiguous_state_dict_bytes({"w": np.ones(3, dtype=np.float32)}))
    out = tmp_path / "out" / "efficientnet-lite0.onnx"
    with pytest.raises(lite.ConversionError, match=f"expected {lite.PTH_SHA256}"):
        lite.build_efficientnet_lite0(out, other)
    assert not out.exists()


def test_weights_of_another_model_are_refused_by_shape(lite0_weights):
    wider = dict(lite0_weights, **{"_conv_head.weight": np.zeros((1280, 384, 1, 1), np.float32)})
    with pytest.raises(lite.ConversionError, match=r"_conv_head.weight has shape \(1280, 384"):
        lite.convert_state_dict(wider)
    with_se = dict(lite0_weights, **{"_blocks.1._se_reduce.weight": np.zeros((4, 96, 1, 1))})
    with pytest.raises(lite.ConversionError, match=r"does not use.*_se_reduce"):
        lite.convert_state_dict(with_se)


def test_the_command_line_prints_the_path_or_says_what_is_wrong(lite0_onnx, tmp_path):
    command = [sys.executable, "-m", "services.classifier.converters.efficientnet_lite"]
    cached = tmp_path / "models" / "efficientnet-lite0.onnx"
    cached.parent.mkdir()
    shutil.copy2(lite0_onnx, cached)
    done = subprocess.run([*command, "--out", str(cached)], capture_output=True, text=True)
    assert (done.returncode, done.stdout.strip()) == (0, str(cached))

    missing = tmp_path / "nowhere.pth"
    out = tmp_path / "fresh.onnx"
    done = subprocess.run(
        [*command, "--pth", str(missing), "--out", str(out)], capture_output=True, text=True
    )
    assert done.returncode == 1
    assert f"no such weights file: {missing}" in done.stderr
    assert not out.exists()


def test_the_graph_checks_and_uses_only_what_the_incremental_engine_runs(lite0_model):
    onnx.checker.check_model(lite0_model, full_check=True)
    assert [(o.domain, o.version) for o in lite0_model.opset_import] == [("", 13)]
    ops = [node.op_type for node in lite0_model.graph.node]
    assert set(ops) == {"Conv", "Clip", "Add", "GlobalAveragePool", "Flatten", "Gemm"}
    # stem + 16 depthwise + 15 expansions (not block 0) + 16 projections + head
    assert ops.count("Conv") == 49
    assert ops.count("Add") == 9  # stride-1 blocks of equal width

    (graph_input,) = lite0_model.graph.input
    dims = graph_input.type.tensor_type.shape.dim
    assert graph_input.name == "input"
    assert dims[0].dim_param and [d.dim_value for d in dims[1:]] == [3, 224, 224]
    (graph_output,) = lite0_model.graph.output
    assert graph_output.name == "logits"
    assert graph_output.type.tensor_type.shape.dim[1].dim_value == 1000


def test_tf_same_padding_is_each_convs_own_pads(lite0_model):
    pads = {
        node.name: list(onnx.helper.get_attribute_value(a))
        for node in lite0_model.graph.node
        for a in node.attribute
        if a.name == "pads"
    }
    # TF SAME: output ceil(n / s), total padding (out - 1) * s + k - n, the odd
    # pixel after (bottom/right). ONNX pads: [top, left, bottom, right].
    assert pads["stem.conv"] == [0, 0, 1, 1]  # k3 s2 on 224: total 1
    assert pads["block1.depthwise.conv"] == [0, 0, 1, 1]  # k3 s2 on 112: total 1
    assert pads["block3.depthwise.conv"] == [1, 1, 2, 2]  # k5 s2 on 56: total 3
    assert pads["block4.depthwise.conv"] == [2, 2, 2, 2]  # k5 s1 on 28: total 4
    assert pads["block2.depthwise.conv"] == [1, 1, 1, 1]  # k3 s1
    assert pads["block2.expand.conv"] == [0, 0, 0, 0]


# --- batch norm folding, against the unfolded computation ---------------------


def _conv_bn(x, weights, conv, bn, stride=1, pad=(0, 0), depthwise=False, relu6=True):
    """Conv then batch norm as the checkpoint defines them, in float64, for one image."""
    w = weights[f"{conv}.weight"].astype(np.float64)
    x = np.pad(x, ((0, 0), pad, pad))
    windows = sliding_window_view(x, w.shape[-2:], axis=(1, 2))[:, ::stride, ::stride]
    if depthwise:
        y = np.einsum("chwij,cij->chw", windows, w[:, 0])
    else:
        y = np.einsum("chwij,ocij->ohw", windows, w)
    gamma, beta, mean, var = (
        weights[f"{bn}.{p}"].astype(np.float64)[:, None, None]
        for p in ("weight", "bias", "running_mean", "running_var")
    )
    y = (y - mean) / np.sqrt(var + 1e-3) * gamma + beta
    return np.clip(y, 0.0, 6.0) if relu6 else y


def _block(x, weights, index, kernel_pad, stride, residual):
    p = f"_blocks.{index}"
    h = _conv_bn(x, weights, f"{p}._expand_conv", f"{p}._bn0")
    h = _conv_bn(h, weights, f"{p}._depthwise_conv", f"{p}._bn1", stride, kernel_pad, True)
    h = _conv_bn(h, weights, f"{p}._project_conv", f"{p}._bn2", relu6=False)
    return h + x if residual else h


SEGMENTS = {
    # name: (graph input, graph output, input shape, reference)
    "stem": (
        "input",
        "stem.relu6",
        (3, 224, 224),
        lambda x, w: _conv_bn(x, w, "_conv_stem", "_bn0", stride=2, pad=(0, 1)),
    ),
    "block3 (k5, stride 2)": (
        "block2.add",
        "block3.project.conv",
        (24, 56, 56),
        lambda x, w: _block(x, w, 3, (1, 2), 2, residual=False),
    ),
    "block4 (k5, residual)": (
        "block3.project.conv",
        "block4.add",
        (40, 28, 28),
        lambda x, w: _block(x, w, 4, (2, 2), 1, residual=True),
    ),
}


@pytest.mark.parametrize("segment", list(SEGMENTS))
def test_folded_convolutions_equal_conv_then_batch_norm(lite0_model, lite0_weights, segment):
    graph_input, graph_output, shape, reference = SEGMENTS[segment]
    inferred = onnx.shape_inference.infer_shapes(lite0_model)
    part = Extractor(inferred).extract_model([graph_input], [graph_output])
    x = np.random.default_rng(3).uniform(-2.0, 2.0, size=shape)
    (actual,) = _session(part).run(None, {graph_input: x[None].astype(np.float32)})
    expected = reference(x, lite0_weights)
    assert actual[0].shape == expected.shape
    scale = np.abs(expected).max()
    assert scale > 1.0  # a real signal, not a block of zeros
    np.testing.assert_allclose(actual[0], expected, rtol=0, atol=2e-5 * scale)


# --- the gallery, with the card's preprocessing -------------------------------


def _labels(card: dict) -> list[str]:
    # The labels file the card names is committed beside the cards; the shared
    # copy is the same list.
    path = CARD_PATH.parent / card["labels"]
    if not path.exists():
        path = SHARED / "models" / "imagenet_classes.txt"
    return path.read_text().splitlines()


@pytest.fixture(scope="session")
def gallery_logits(lite0_onnx, card, photo_rgb) -> dict[str, np.ndarray]:
    session = _session(lite0_onnx)
    return {
        name: session.run(None, {"input": card_input(photo_rgb(name), card["input"])})[0][0]
        for name in GALLERY_TOP1
    }


def _softmax(logits: np.ndarray) -> np.ndarray:
    e = np.exp(logits.astype(np.float64) - logits.max())
    return e / e.sum()


def test_the_card_describes_the_graph(card, lite0_model):
    assert card["name"] == "efficientnet-lite0"
    assert card["outputs"] == "logits" and card["licence"] == "Apache-2.0"
    assert card["input"]["crop"] == [224, 224]  # what the fixed graph takes
    assert (card["input"]["layout"], card["input"]["color"]) == ("NCHW", "RGB")
    assert len(_labels(card)) == 1000


def test_gallery_top1s_agree_with_squeezenet_but_for_the_lighthouse(gallery_logits, card):
    labels = _labels(card)
    top1 = {name: labels[int(np.argmax(z))] for name, z in gallery_logits.items()}
    assert top1 == EXPECTED_TOP1
    lighthouse = np.argsort(-gallery_logits["lighthouse"])
    assert labels[lighthouse[1]] == GALLERY_TOP1["lighthouse"]


def test_gallery_probabilities_are_sane(gallery_logits):
    for name, logits in gallery_logits.items():
        assert np.isfinite(logits).all(), name
        probabilities = _softmax(logits)
        assert probabilities.sum() == pytest.approx(1.0, abs=1e-9)
        # Confident but not saturated (measured: 0.49 bank .. 0.99 hockey).
        assert 0.3 < probabilities.max() < 0.999, name
        # The rest of the mass is spread, not dumped on one runner-up.
        assert np.sort(probabilities)[-2] < probabilities.max() / 2, name


def test_a_batch_gives_what_single_images_give(lite0_onnx, card, photo_rgb, gallery_logits):
    batch = np.concatenate([card_input(photo_rgb(n), card["input"]) for n in GALLERY_TOP1])
    (logits,) = _session(lite0_onnx).run(None, {"input": batch})
    assert logits.shape == (len(GALLERY_TOP1), 1000)
    for row, name in zip(logits, GALLERY_TOP1, strict=True):
        np.testing.assert_allclose(row, gallery_logits[name], rtol=0, atol=1e-4)
