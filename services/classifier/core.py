"""The classifier's pure core: SqueezeNet 1.1 on ONNX Runtime, no gRPC.

`SqueezeNetClassifier.classify` takes a batch of same-size RGB images and
returns, per image, the top-k classes, the pinned classes with their ranks,
class activation maps for the classes asked, and optionally all 1000
probabilities. The batch is one ONNX Runtime run, and all the CAMs of an image
come from that same forward pass.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import onnxruntime as ort
from PIL import Image

from common.errors import InvalidInput
from common.images import ImageLimits
from services.classifier import preprocess
from services.classifier.edits import ImageEdit, edited_batches
from services.classifier.model_graph import prepare_model

LABELS_PATH = Path(__file__).with_name("imagenet_classes.txt")
MODEL_NAME = "squeezenet1.1"


@dataclass(frozen=True)
class ClassScore:
    class_id: int
    label: str
    probability: float
    rank: int  # 1 = most probable


@dataclass(frozen=True)
class ClassActivationMap:
    class_id: int
    # HxW uint8 at the request image's size; 255 = most activated.
    image: np.ndarray
    raw_min: float
    raw_max: float


@dataclass
class ImageClassification:
    top: list[ClassScore]
    pinned: list[ClassScore]
    cams: list[ClassActivationMap]
    probabilities: np.ndarray | None = None


@dataclass
class BatchClassification:
    results: list[ImageClassification]
    timing_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class EditsClassification:
    """One base image and its edits: one result per edit, and the base's own if asked."""

    results: list[ImageClassification]
    base: ImageClassification | None = None
    # True when only each edit's projective field was recomputed.
    incremental: bool = False
    timing_ms: dict[str, float] = field(default_factory=dict)


def load_labels(path: Path = LABELS_PATH) -> list[str]:
    return path.read_text(encoding="utf-8").splitlines()


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float64)
    return exp / exp.sum(axis=-1, keepdims=True)


def normalise_map(class_map: np.ndarray) -> tuple[np.ndarray, float, float]:
    """A float map -> (0..1 map, raw min, raw max); a flat map becomes all zeros."""
    low, high = float(class_map.min()), float(class_map.max())
    span = high - low
    if span <= 1e-12:
        return np.zeros_like(class_map, dtype=np.float32), low, high
    return ((class_map - low) / span).astype(np.float32), low, high


def cam_image(class_map: np.ndarray, width: int, height: int) -> tuple[np.ndarray, float, float]:
    """A class map on the network's grid -> (HxW uint8 at the image's size, raw min, raw max).

    Resized first and scaled to 0..255 after, so that 255 marks the most
    activated region exactly, whatever the interpolation did to the peak.
    """
    class_map = np.ascontiguousarray(class_map, dtype=np.float32)
    map_height, map_width = class_map.shape
    if width >= map_width and height >= map_height:
        # Enlarging (the usual case: a 15x15 grid to the photo) is plain
        # bilinear in both libraries, equal to 1e-6; OpenCV's takes 0.02 ms
        # against Pillow's 0.7 ms with its float-image round trip.
        big = cv2.resize(class_map, (width, height), interpolation=cv2.INTER_LINEAR)
    else:
        small = Image.fromarray(class_map)  # float32 -> mode "F"
        big = np.asarray(small.resize((width, height), Image.Resampling.BILINEAR))
    unit, low, high = normalise_map(big)
    return np.rint(unit * 255.0).astype(np.uint8), low, high


class SqueezeNetClassifier:
    def __init__(
        self,
        model_path: Path,
        labels: list[str] | None = None,
        intra_op_threads: int = 1,
        max_batch: int = 64,
        limits: ImageLimits | None = None,
        max_edits: int = 1024,
    ) -> None:
        prepared = prepare_model(model_path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = intra_op_threads
        options.inter_op_num_threads = 1
        options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
        options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
        self.session = ort.InferenceSession(
            prepared.model.SerializeToString(), options, providers=["CPUExecutionProvider"]
        )
        self.input_name = prepared.input_name
        self.scores_output = prepared.scores_output
        self.class_map_output = prepared.class_map_output
        self.class_bias = prepared.class_bias
        self.num_classes = prepared.num_classes
        self.labels = labels if labels is not None else load_labels()
        if len(self.labels) != self.num_classes:
            raise ValueError(
                f"{len(self.labels)} labels for a model with {self.num_classes} classes"
            )
        self.max_batch = max_batch
        self.max_edits = max_edits
        self.limits = limits or ImageLimits()
        self.name = MODEL_NAME

    def warm_up(self) -> None:
        """One run at the usual size, so the first request does not pay for planning."""
        image = np.full((227, 227, 3), 128, np.uint8)
        self.classify([image], top_k=5, cam_class_ids=[0])

    def run(self, batch: np.ndarray, with_class_maps: bool) -> tuple[np.ndarray, np.ndarray | None]:
        """The bare ONNX Runtime call: network input -> (scores, class maps or None)."""
        outputs = [self.scores_output] + ([self.class_map_output] if with_class_maps else [])
        result = self.session.run(outputs, {self.input_name: batch})
        return result[0], (result[1] if with_class_maps else None)

    def validate(
        self,
        images: Sequence[np.ndarray],
        top_k: int,
        pinned_class_ids: Sequence[int],
        cam_class_ids: Sequence[int],
    ) -> None:
        if not images:
            raise InvalidInput("no images: send at least one")
        if len(images) > self.max_batch:
            raise InvalidInput(f"{len(images)} images in one batch; at most {self.max_batch}")
        if not 1 <= top_k <= self.num_classes:
            raise InvalidInput(f"top_k={top_k} is out of range 1..{self.num_classes}")
        for what, ids in (("pinned class id", pinned_class_ids), ("CAM class id", cam_class_ids)):
            for class_id in ids:
                if not 0 <= class_id < self.num_classes:
                    raise InvalidInput(
                        f"{what} {class_id} is out of range 0..{self.num_classes - 1}"
                    )
        first = images[0].shape
        for index, image in enumerate(images):
            if image.ndim != 3 or image.shape[2] != 3 or image.dtype != np.uint8:
                raise InvalidInput(f"image {index} is not 8-bit RGB")
            self.limits.check(image.shape[1], image.shape[0], what=f"image {index}")
            if image.shape != first:
                raise InvalidInput(
                    f"image {index} is {image.shape[1]}x{image.shape[0]} but image 0 is "
                    f"{first[1]}x{first[0]}: all images of a batch must have one size"
                )

    def classify(
        self,
        images: Sequence[np.ndarray],
        top_k: int = 5,
        pinned_class_ids: Sequence[int] = (),
        cam_class_ids: Sequence[int] = (),
        cam_top_k: bool = False,
        all_probabilities: bool = False,
    ) -> BatchClassification:
        self.validate(images, top_k, pinned_class_ids, cam_class_ids)
        timing: dict[str, float] = {}
        started = time.perf_counter()
        batch = preprocess.to_tensor(list(images))
        timing["preprocess"] = (time.perf_counter() - started) * 1e3

        started = time.perf_counter()
        want_cams = bool(cam_class_ids) or cam_top_k
        scores, class_maps = self.run(batch, with_class_maps=want_cams)
        timing["inference"] = (time.perf_counter() - started) * 1e3

        started = time.perf_counter()
        probabilities = softmax(scores)
        height, width = images[0].shape[:2]
        results = []
        for index, probs in enumerate(probabilities):
            # Rank of every class by descending probability (stable on ties).
            order = np.argsort(-probs, kind="stable")
            ranks = np.empty(self.num_classes, dtype=np.int64)
            ranks[order] = np.arange(1, self.num_classes + 1)
            top = [self._score(int(c), probs, ranks) for c in order[:top_k]]
            pinned = [self._score(int(c), probs, ranks) for c in pinned_class_ids]
            cam_ids = list(dict.fromkeys(cam_class_ids))
            if cam_top_k:
                cam_ids += [s.class_id for s in top if s.class_id not in cam_ids]
            cams = (
                self.cams_from_maps(class_maps[index], cam_ids, width, height)
                if class_maps is not None
                else []
            )
            results.append(
                ImageClassification(
                    top=top,
                    pinned=pinned,
                    cams=cams,
                    probabilities=probs.astype(np.float32) if all_probabilities else None,
                )
            )
        timing["postprocess"] = (time.perf_counter() - started) * 1e3
        return BatchClassification(results=results, timing_ms=timing)

    def classify_edits(
        self,
        base: np.ndarray,
        edits: Sequence[ImageEdit],
        top_k: int = 5,
        pinned_class_ids: Sequence[int] = (),
        all_probabilities: bool = False,
        include_base: bool = False,
    ) -> EditsClassification:
        """The classification of every edited image (and of the base, if asked).

        Every edited image runs through the whole network, `max_batch` at a
        time, so memory stays bounded whatever the number of edits.
        """
        self.validate([base], top_k, pinned_class_ids, ())
        if not edits and not include_base:
            raise InvalidInput("no edits: send at least one (or ask for the base image)")
        if len(edits) > self.max_edits:
            raise InvalidInput(f"{len(edits)} edits in one call; at most {self.max_edits}")
        options = {
            "top_k": top_k,
            "pinned_class_ids": pinned_class_ids,
            "all_probabilities": all_probabilities,
        }
        timing: dict[str, float] = {}
        answer = EditsClassification(results=[])
        batches = edited_batches(base, edits, self.max_batch)
        if include_base:
            batches = itertools.chain([[base]], batches)
        for index, images in enumerate(batches):
            batch = self.classify(images, **options)
            for key, value in batch.timing_ms.items():
                timing[key] = timing.get(key, 0.0) + value
            if include_base and index == 0:
                answer.base = batch.results[0]
            else:
                answer.results.extend(batch.results)
        answer.timing_ms = timing
        return answer

    def cams_from_maps(
        self, class_maps: np.ndarray, class_ids: Sequence[int], width: int, height: int
    ) -> list[ClassActivationMap]:
        """CAMs of several classes from one image's [1000, h, w] last-conv map.

        The map before ReLU minus the bias is sum_k w_ck f_k over the fire9
        features f: the class activation map of Zhou et al. (2016).
        """
        cams = []
        for class_id in class_ids:
            raw = class_maps[class_id] - self.class_bias[class_id]
            image, low, high = cam_image(raw, width, height)
            cams.append(ClassActivationMap(class_id, image, low, high))
        return cams

    def _score(self, class_id: int, probs: np.ndarray, ranks: np.ndarray) -> ClassScore:
        return ClassScore(
            class_id=class_id,
            label=self.labels[class_id],
            probability=float(probs[class_id]),
            rank=int(ranks[class_id]),
        )
