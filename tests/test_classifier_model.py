"""The fetch step of SqueezeNet 1.1 and cards with a url, and the graph loader on
both SqueezeNet graphs (the Model Zoo file and the project's rebuilt one)."""

from __future__ import annotations

import dataclasses
import hashlib
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import onnx
import onnxruntime as ort
import pytest
from onnx import helper, numpy_helper

from services.classifier import fetch_model
from services.classifier.cam_head import CamHead
from services.classifier.model_graph import prepare_model
from services.classifier.onnx_model import load_model
from services.classifier.preprocess import Preprocessor
from tests.support.http_files import serve_directory
from tests.support.processes import REPO, free_port
from tests.support.served_models import BUILTIN_CARDS, SQUEEZENET, builtin_card, write_card

SQUEEZENET_INPUT = builtin_card(SQUEEZENET).input


@pytest.fixture
def file_server(tmp_path):
    """A local HTTP server over tmp_path/www -> (directory, base URL)."""
    root = tmp_path / "www"
    root.mkdir()
    with serve_directory(root) as base:
        yield root, base


def test_download_verifies_checksum_and_lands_the_file(file_server, tmp_path, model_path):
    root, base = file_server
    data = model_path.read_bytes()
    (root / "model.onnx").write_bytes(data)
    source = fetch_model.ModelSource(
        "squeezenet1.1-7.onnx", f"{base}/model.onnx", hashlib.sha256(data).hexdigest()
    )
    dest = tmp_path / "models"
    path = fetch_model.download(source, dest)
    assert path == dest / "squeezenet1.1-7.onnx"
    assert path.read_bytes() == data
    assert [p.name for p in dest.iterdir()] == ["squeezenet1.1-7.onnx"]


def test_corrupted_download_is_refused_and_leaves_nothing(file_server, tmp_path, model_path):
    root, base = file_server
    data = bytearray(model_path.read_bytes())
    expected = hashlib.sha256(data).hexdigest()
    data[1000] ^= 0xFF
    (root / "model.onnx").write_bytes(bytes(data))
    source = fetch_model.ModelSource("squeezenet1.1-7.onnx", f"{base}/model.onnx", expected)
    dest = tmp_path / "models"
    with pytest.raises(fetch_model.ModelFetchError, match="checksum mismatch"):
        fetch_model.download(source, dest)
    assert list(dest.iterdir()) == []


def test_unreachable_download_is_a_clear_error(file_server, tmp_path):
    _, base = file_server
    source = fetch_model.ModelSource("m.onnx", f"{base}/missing.onnx", "0" * 64)
    with pytest.raises(fetch_model.ModelFetchError, match="could not download"):
        fetch_model.download(source, tmp_path / "models")


def run_fetch_step(models_dir: Path, *args: str) -> subprocess.CompletedProcess:
    """The fetch step as the classifier image's build runs it (a models directory
    holding SqueezeNet's card but not its file, no local copy to take), with the
    model's host unreachable: a loopback port nobody listens on."""
    shutil.copy(BUILTIN_CARDS / "squeezenet1.1.json", models_dir)
    shutil.copy(BUILTIN_CARDS / "imagenet_classes.txt", models_dir)
    env = {
        **os.environ,
        "IC_MODELS_DIR": str(models_dir),
        "IC_MODEL_SOURCE_DIR": str(models_dir / "no-local-copies"),
        "IC_MODEL_URL": f"http://127.0.0.1:{free_port()}/squeezenet1.1-7.onnx",
        "IC_MODEL_SHA256": "0" * 64,
    }
    env.pop("IC_MODEL_PATH", None)
    return subprocess.run(
        [sys.executable, "-m", "services.classifier.fetch_model", *args],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def test_an_unreachable_host_in_an_image_build_says_to_use_make_docker_build(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    done = run_fetch_step(models, "--docker-build")
    assert done.returncode == 1
    assert done.stdout == ""
    first, advice = done.stderr.strip().split("\n")
    assert first.startswith(f"fetch_model: {models / 'squeezenet1.1.json'}: could not download")
    assert "squeezenet1.1-7.onnx from http://127.0.0.1:" in first
    assert "Connection refused" in first
    assert "no model in models/ of the build context" in advice
    assert "Build with `make docker-build` instead of a plain `docker compose build`" in advice
    assert "put the file there yourself (squeezenet1.1.onnx or squeezenet1.1-7.onnx)" in advice
    # No half-downloaded file left behind: only what was there before.
    assert sorted(p.name for p in models.iterdir()) == [
        "imagenet_classes.txt",
        "squeezenet1.1.json",
    ]


def test_an_unreachable_host_says_where_to_put_the_model(tmp_path):
    models = tmp_path / "models"
    models.mkdir()
    done = run_fetch_step(models)
    assert done.returncode == 1
    assert "could not download squeezenet1.1-7.onnx" in done.stderr
    assert f"put the model file in {models} (as squeezenet1.1.onnx or" in done.stderr
    assert "set IC_MODEL_PATH to the file" in done.stderr
    assert "IC_MODEL_URL and IC_MODEL_SHA256 to a mirror" in done.stderr
    assert "make docker-build" not in done.stderr


def test_squeezenet_is_copied_from_a_local_folder_before_any_download(
    monkeypatch, tmp_path, model_path
):
    monkeypatch.delenv("IC_MODEL_PATH", raising=False)
    monkeypatch.setenv("IC_MODEL_SOURCE_DIR", str(model_path.parent))
    monkeypatch.setenv("IC_MODEL_URL", "http://127.0.0.1:9/never-fetched")
    monkeypatch.setenv("IC_MODEL_SHA256", "0" * 64)
    card = builtin_card(SQUEEZENET, tmp_path / "models" / "squeezenet1.1.onnx")
    assert fetch_model.ensure_card_model(card) == card.onnx
    assert card.onnx.read_bytes() == model_path.read_bytes()
    monkeypatch.setenv("IC_MODEL_PATH", str(tmp_path / "absent.onnx"))
    card.onnx.unlink()
    with pytest.raises(fetch_model.ModelFetchError, match="does not exist"):
        fetch_model.ensure_card_model(card)


def test_squeezenet_is_downloaded_from_a_mirror_when_nothing_is_local(
    monkeypatch, file_server, tmp_path, model_path
):
    root, base = file_server
    data = model_path.read_bytes()
    (root / "zoo.onnx").write_bytes(data)
    monkeypatch.delenv("IC_MODEL_PATH", raising=False)
    monkeypatch.setenv("IC_MODEL_SOURCE_DIR", str(tmp_path / "nothing-here"))
    monkeypatch.setenv("IC_MODEL_URL", f"{base}/zoo.onnx")
    monkeypatch.setenv("IC_MODEL_SHA256", "abc")
    card = builtin_card(SQUEEZENET, tmp_path / "models" / "squeezenet1.1.onnx")
    with pytest.raises(fetch_model.ModelFetchError, match="IC_MODEL_SHA256"):
        fetch_model.ensure_card_model(card)
    monkeypatch.setenv("IC_MODEL_SHA256", hashlib.sha256(data).hexdigest())
    assert fetch_model.ensure_card_model(card) == card.onnx
    assert card.onnx.read_bytes() == data
    assert [p.name for p in card.onnx.parent.iterdir()] == ["squeezenet1.1.onnx"]
    # A second call finds the file and does not download again.
    (root / "zoo.onnx").unlink()
    assert fetch_model.ensure_card_model(card) == card.onnx


def test_a_cards_url_is_downloaded_and_its_sha256_checked(file_server, tmp_path, model_path):
    root, base = file_server
    data = model_path.read_bytes()
    (root / "mine.onnx").write_bytes(data)
    good = hashlib.sha256(data).hexdigest()
    card = builtin_card(SQUEEZENET, tmp_path / "mine.onnx")
    with_url = dataclasses.replace(card, name="mine", url=f"{base}/mine.onnx", sha256="0" * 64)
    with pytest.raises(fetch_model.ModelFetchError, match="checksum mismatch"):
        fetch_model.ensure_card_model(with_url)
    assert not card.onnx.exists()
    with_url = dataclasses.replace(with_url, sha256=good)
    assert fetch_model.ensure_card_model(with_url).read_bytes() == data
    # A file present is checked too: changed, it is refused.
    card.onnx.write_bytes(data[:-1] + b"x")
    with pytest.raises(fetch_model.ModelFetchError, match="but the card says"):
        fetch_model.ensure_card_model(with_url)
    no_url = dataclasses.replace(card, name="mine", onnx=tmp_path / "absent.onnx")
    with pytest.raises(fetch_model.ModelFetchError, match="missing and the card has no url"):
        fetch_model.ensure_card_model(no_url)


def zoo_shaped(model_path: Path) -> onnx.ModelProto:
    """Our model rebuilt the way the ONNX Model Zoo file is: opset 7, input fixed at
    1x3x224x224, Dropout before the last conv, a 13x13 AveragePool, a Reshape,
    MaxPool without ceil_mode, initializers listed as graph inputs."""
    model = onnx.load(str(model_path))
    graph = model.graph
    nodes = []
    for node in graph.node:
        if node.op_type == "Conv" and node.input[1] == "squeezenet0_conv25_weight":
            nodes.append(
                helper.make_node(
                    "Dropout", [node.input[0]], ["squeezenet0_dropout0_fwd"], ratio=0.5
                )
            )
            node.input[0] = "squeezenet0_dropout0_fwd"
        if node.op_type == "MaxPool":
            kept = [a for a in node.attribute if a.name != "ceil_mode"]
            del node.attribute[:]
            node.attribute.extend(kept)
        if node.op_type == "GlobalAveragePool":
            node.op_type = "AveragePool"
            node.attribute.extend([helper.make_attribute("kernel_shape", [13, 13])])
        if node.op_type == "Flatten":
            node.op_type = "Reshape"
            del node.attribute[:]
            node.input.append("reshape_attr_tensor")
            graph.initializer.append(
                numpy_helper.from_array(np.array([1, -1], np.int64), "reshape_attr_tensor")
            )
        nodes.append(node)
    del graph.node[:]
    graph.node.extend(nodes)
    data = graph.input[0]
    data.type.tensor_type.shape.dim[0].ClearField("dim_param")
    data.type.tensor_type.shape.dim[0].dim_value = 1
    out = graph.output[0].type.tensor_type.shape.dim[0]
    out.ClearField("dim_param")
    out.dim_value = 1
    del graph.value_info[:]
    graph.input.extend(
        helper.make_tensor_value_info(i.name, i.data_type, list(i.dims)) for i in graph.initializer
    )
    del model.opset_import[:]
    model.opset_import.append(helper.make_opsetid("", 7))
    model.ir_version = 3
    onnx.checker.check_model(model)
    return model


def run(model: onnx.ModelProto, batch: np.ndarray, outputs=None):
    session = ort.InferenceSession(model.SerializeToString(), providers=["CPUExecutionProvider"])
    return session.run(outputs, {"data": batch})


def class_maps(head: CamHead, features: np.ndarray) -> np.ndarray:
    """sum_k w_ck f_k for every class: [N, classes, h, w]."""
    return np.einsum("kc,nchw->nkhw", head.weights, features)


def test_loader_turns_a_zoo_shaped_file_into_the_served_form(model_path, photo_rgb):
    zoo = zoo_shaped(model_path)
    at_224 = Preprocessor(dataclasses.replace(SQUEEZENET_INPUT, short_side=224))
    square = at_224.to_tensor([photo_rgb("soccer")])
    # The Zoo-shaped variant really is the same network at its fixed size.
    (ours_224,) = run(onnx.load(str(model_path)), square, ["squeezenet0_flatten0_reshape0"])
    (zoo_224,) = run(zoo, square)
    np.testing.assert_allclose(zoo_224, ours_224, rtol=1e-4, atol=1e-3)

    prepared_zoo = prepare_model(zoo, SQUEEZENET_INPUT, max_pool_ceil=True)
    prepared_ours = prepare_model(model_path, SQUEEZENET_INPUT, max_pool_ceil=True)
    assert prepared_zoo.model.opset_import[0].version == 13
    assert {n.op_type for n in prepared_zoo.model.graph.node}.isdisjoint(
        {"Dropout", "AveragePool", "Reshape"}
    )
    shape = prepared_zoo.model.graph.input[0].type.tensor_type.shape
    assert [d.dim_param or d.dim_value for d in shape.dim] == ["N", 3, "H", "W"]
    # The CAM head, found by graph analysis in both: the 1x1 class convolution
    # over the fire9 features, before the global pool.
    for prepared in (prepared_zoo, prepared_ours):
        assert prepared.cam.structure == "1x1 Conv -> GlobalAveragePool"
        assert prepared.cam.weights.shape == (1000, 512) and prepared.num_classes == 1000

    # Both now run at any size and agree, feature maps included.
    wide = Preprocessor(SQUEEZENET_INPUT).to_tensor([photo_rgb("beach")[:, :180]] * 2)
    assert wide.shape == (2, 3, 323, 256)  # 227 x 180: portrait
    zoo_scores, zoo_features = run(prepared_zoo.model, wide)
    our_scores, our_features = run(prepared_ours.model, wide)
    np.testing.assert_allclose(zoo_scores, our_scores, rtol=1e-4, atol=1e-3)
    np.testing.assert_allclose(zoo_features, our_features, rtol=1e-4, atol=1e-3)
    assert our_features.shape[:2] == (2, 512)
    # The scores are the global average of the ReLU of the class maps plus the bias.
    bias = numpy_helper.to_array(
        next(
            i
            for i in onnx.load(str(model_path)).graph.initializer
            if i.name.endswith("conv25_bias")
        )
    )
    maps = class_maps(prepared_ours.cam, our_features) + bias[None, :, None, None]
    np.testing.assert_allclose(
        np.maximum(maps, 0).mean(axis=(2, 3)), our_scores, rtol=1e-4, atol=1e-4
    )


def test_classifier_core_runs_the_zoo_shaped_file(model_path, photo_rgb, tmp_path):
    path = tmp_path / "squeezenet1.1-7.onnx"
    onnx.save(zoo_shaped(model_path), str(path))
    classifier = load_model(builtin_card(SQUEEZENET, path))
    result = classifier.classify([photo_rgb("soccer")], top_k=1, cam_class_ids=[805]).results[0]
    assert result.top[0].label == "soccer ball"
    ours = load_model(builtin_card(SQUEEZENET, model_path))
    same = ours.classify([photo_rgb("soccer")], top_k=1, cam_class_ids=[805]).results[0]
    assert result.top[0].probability == pytest.approx(same.top[0].probability, abs=1e-5)
    assert np.abs(result.cams[0].image.astype(int) - same.cams[0].image).max() <= 1


def test_make_model_fills_every_builtin_card_and_reports_broken_extra_ones(
    monkeypatch, tmp_path, model_path, capsys
):
    """`make model` over a models folder: each built-in card's file is made; an extra
    card that cannot be satisfied is reported without failing the step."""
    models = tmp_path / "models"
    models.mkdir()
    card = json.loads((BUILTIN_CARDS / "squeezenet1.1.json").read_text())
    card["labels"] = str(BUILTIN_CARDS / card["labels"])
    (models / "squeezenet1.1.json").write_text(json.dumps(card))
    broken = write_card(tmp_path / "broken.json")  # names broken.onnx, absent, no url
    monkeypatch.setenv("IC_MODELS_DIR", str(models))
    monkeypatch.setenv("IC_EXTRA_MODELS", str(broken))
    monkeypatch.setenv("IC_MODEL_SOURCE_DIR", str(model_path.parent))
    monkeypatch.delenv("IC_MODEL_PATH", raising=False)
    assert fetch_model.main([]) == 0
    out, err = capsys.readouterr()
    assert out == f"squeezenet1.1: {models / 'squeezenet1.1.onnx'}\n"
    assert (models / "squeezenet1.1.onnx").read_bytes() == model_path.read_bytes()
    assert f"{broken}: the ONNX file" in err and "missing and the card has no url" in err
    # A built-in card that cannot be satisfied fails the step.
    (models / "squeezenet1.1.onnx").unlink()
    monkeypatch.setenv("IC_MODEL_SOURCE_DIR", str(tmp_path / "nothing"))
    monkeypatch.setenv("IC_MODEL_URL", "http://127.0.0.1:9/unreachable.onnx")
    monkeypatch.setenv("IC_MODEL_SHA256", "0" * 64)
    assert fetch_model.main([]) == 1
    assert "could not download" in capsys.readouterr().err
