"""The classifier's pure core (no gRPC): one served model behind its card.

`ClassifierModel` owns the call, whatever runs the network: it checks the
request, preprocesses as the card says, calls `forward`, turns scores into
probabilities, ranks the classes and builds the CAMs, so a subclass only
implements `forward(tensor, with_features)` (services/classifier/onnx_model.py
is the one that runs ONNX Runtime). `classify` takes a batch of same-size RGB
images and returns, per image, the top-k classes, the pinned classes with their
ranks, class activation maps for the classes asked, and optionally all
probabilities. The batch is one forward pass, and all the CAMs of an image come
from that same pass.
"""

from __future__ import annotations

import itertools
import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass, field

import numpy as np

from common.errors import InvalidInput
from common.images import ImageLimits
from services.classifier.cam import ClassActivationMap, cams_for_image
from services.classifier.cam_head import CamHead
from services.classifier.cards import ModelCard
from services.classifier.edits import ImageEdit, edited_batches
from services.classifier.incremental.cache import ActivationCache
from services.classifier.model_graph import DEFAULT_MAX_MODEL_BYTES
from services.classifier.preprocess import Preprocessor


class CamUnsupported(InvalidInput):
    """CAMs asked of a model that has none (the reason says why)."""


DEFAULT_BASE_CACHE_BYTES = 256 << 20
# Incremental ClassifyEdits is used by a model whose engine does at most
# 1 / DEFAULT_MIN_SAVING of full inference's multiply-adds on the reference
# windows (services/classifier/incremental_edits.py says why 2).
DEFAULT_MIN_SAVING = 2.0


@dataclass(frozen=True)
class ModelSettings:
    """What the service configuration sets for every model alike."""

    intra_op_threads: int = 1
    max_batch: int = 64
    max_edits: int = 1024
    limits: ImageLimits = field(default_factory=ImageLimits)
    max_model_bytes: int = DEFAULT_MAX_MODEL_BYTES
    # The base images' activations kept for incremental ClassifyEdits, all
    # models together (one cache, least recently used out first).
    base_cache: ActivationCache = field(
        default_factory=lambda: ActivationCache(DEFAULT_BASE_CACHE_BYTES), compare=False
    )
    incremental_min_saving: float = DEFAULT_MIN_SAVING


@dataclass(frozen=True)
class ClassScore:
    class_id: int
    label: str
    probability: float
    rank: int  # 1 = most probable


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
class EditScores:
    """The network's scores for a base image and its edits, computed incrementally."""

    base: np.ndarray  # [classes]
    edits: np.ndarray  # [edits, classes]
    # Whether the base image's activations came from the cache (an earlier call).
    base_cached: bool
    timing_ms: dict[str, float] = field(default_factory=dict)


@dataclass
class EditsClassification:
    """One base image and its edits: one result per edit, and the base's own if asked."""

    results: list[ImageClassification]
    base: ImageClassification | None = None
    # True when only each edit's projective field was recomputed.
    incremental: bool = False
    # When incremental: whether the base's activations came from the cache.
    base_cached: bool = False
    timing_ms: dict[str, float] = field(default_factory=dict)


def softmax(scores: np.ndarray) -> np.ndarray:
    shifted = scores - scores.max(axis=-1, keepdims=True)
    exp = np.exp(shifted, dtype=np.float64)
    return exp / exp.sum(axis=-1, keepdims=True)


class ClassifierModel(ABC):
    """A served model: its card, preprocessing and CAM head; subclasses run the network."""

    def __init__(
        self,
        card: ModelCard,
        preprocessor: Preprocessor,
        num_classes: int,
        cam_head: CamHead | None,
        cam_reason: str,
        settings: ModelSettings,
    ) -> None:
        if len(card.labels) != num_classes:
            raise ValueError(
                f"the card lists {len(card.labels)} labels but the model has {num_classes} classes"
            )
        self.card = card
        self.name = card.name
        self.labels = list(card.labels)
        self.num_classes = num_classes
        self.preprocessor = preprocessor
        self.cam_head = cam_head
        self.cam_reason = "" if cam_head is not None else cam_reason
        self.settings = settings
        self.max_batch = settings.max_batch
        self.max_edits = settings.max_edits
        self.limits = settings.limits
        self.incremental_reason = "every edited image runs through the whole network"

    @property
    def cam(self) -> bool:
        return self.cam_head is not None

    @property
    def incremental(self) -> bool:
        """Whether classify_edits computes edits incrementally (when the base allows)."""
        return False

    def edit_scores(self, base: np.ndarray, edits: Sequence[ImageEdit]) -> EditScores | None:
        """The scores of the base image and of every edit computed incrementally,
        or None when this model (or this base image) runs the edits in full.
        A subclass with an incremental engine overrides it."""
        return None

    def preprocess(self, rgb: np.ndarray) -> np.ndarray:
        """One HxWx3 uint8 image -> its network input [1, ...] (the card's preprocessing)."""
        return self.preprocessor(rgb)

    @abstractmethod
    def forward(
        self, batch: np.ndarray, with_features: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        """Network input -> (scores [N, classes], the CAM head's feature map or None)."""

    def warm_up(self) -> None:
        """One run at the usual size, so the first request does not pay for planning."""
        image = np.full((227, 227, 3), 128, np.uint8)
        top_k = min(5, self.num_classes)
        self.classify([image], top_k=top_k, cam_class_ids=[0] if self.cam else ())

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

    def require_cam(self) -> CamHead:
        if self.cam_head is None:
            raise CamUnsupported(
                f"model {self.name!r} has no class activation maps: {self.cam_reason}"
            )
        return self.cam_head

    def probabilities(self, scores: np.ndarray) -> np.ndarray:
        if self.card.outputs == "probabilities":
            return scores.astype(np.float64)
        return softmax(scores)

    def classify(
        self,
        images: Sequence[np.ndarray],
        top_k: int = 5,
        pinned_class_ids: Sequence[int] = (),
        cam_class_ids: Sequence[int] = (),
        cam_top_k: bool = False,
        all_probabilities: bool = False,
        cam_max_side: int = 0,
    ) -> BatchClassification:
        self.validate(images, top_k, pinned_class_ids, cam_class_ids)
        want_cams = bool(cam_class_ids) or cam_top_k
        head = self.require_cam() if want_cams else None
        timing: dict[str, float] = {}
        started = time.perf_counter()
        batch = self.preprocessor.to_tensor(list(images))
        timing["preprocess"] = (time.perf_counter() - started) * 1e3

        started = time.perf_counter()
        scores, features = self.forward(batch, with_features=want_cams)
        timing["inference"] = (time.perf_counter() - started) * 1e3

        started = time.perf_counter()
        probabilities = self.probabilities(scores)
        height, width = images[0].shape[:2]
        geometry = self.preprocessor.geometry(width, height)
        results = []
        for index, probs in enumerate(probabilities):
            result = self._ranked(probs, top_k, pinned_class_ids, all_probabilities)
            cam_ids = list(dict.fromkeys(cam_class_ids))
            if cam_top_k:
                cam_ids += [s.class_id for s in result.top if s.class_id not in cam_ids]
            if head is not None and features is not None:
                result.cams = cams_for_image(features[index], head, cam_ids, geometry, cam_max_side)
            results.append(result)
        timing["postprocess"] = (time.perf_counter() - started) * 1e3
        return BatchClassification(results=results, timing_ms=timing)

    def _ranked(
        self,
        probs: np.ndarray,
        top_k: int,
        pinned_class_ids: Sequence[int],
        all_probabilities: bool,
    ) -> ImageClassification:
        """One image's top-k and pinned classes with their ranks (no CAMs)."""
        # Rank of every class by descending probability (stable on ties).
        order = np.argsort(-probs, kind="stable")
        ranks = np.empty(self.num_classes, dtype=np.int64)
        ranks[order] = np.arange(1, self.num_classes + 1)
        return ImageClassification(
            top=[self._score(int(c), probs, ranks) for c in order[:top_k]],
            pinned=[self._score(int(c), probs, ranks) for c in pinned_class_ids],
            cams=[],
            probabilities=probs.astype(np.float32) if all_probabilities else None,
        )

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

        Incrementally when the model allows it for this base (`edit_scores`),
        else every edited image runs through the whole network, `max_batch` at
        a time, so memory stays bounded whatever the number of edits.
        """
        self.validate([base], top_k, pinned_class_ids, ())
        if not edits and not include_base:
            raise InvalidInput("no edits: send at least one (or ask for the base image)")
        if len(edits) > self.max_edits:
            raise InvalidInput(f"{len(edits)} edits in one call; at most {self.max_edits}")
        scores = self.edit_scores(base, edits)
        if scores is not None:
            return self._edits_from_scores(
                scores, top_k, pinned_class_ids, all_probabilities, include_base
            )
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

    def _edits_from_scores(
        self,
        scores: EditScores,
        top_k: int,
        pinned_class_ids: Sequence[int],
        all_probabilities: bool,
        include_base: bool,
    ) -> EditsClassification:
        started = time.perf_counter()
        options = (top_k, pinned_class_ids, all_probabilities)
        answer = EditsClassification(results=[], incremental=True, base_cached=scores.base_cached)
        if include_base:
            answer.base = self._ranked(self.probabilities(scores.base[None])[0], *options)
        if len(scores.edits):
            answer.results = [self._ranked(p, *options) for p in self.probabilities(scores.edits)]
        answer.timing_ms = dict(scores.timing_ms)
        answer.timing_ms["postprocess"] = (time.perf_counter() - started) * 1e3
        return answer

    def _score(self, class_id: int, probs: np.ndarray, ranks: np.ndarray) -> ClassScore:
        return ClassScore(
            class_id=class_id,
            label=self.labels[class_id],
            probability=float(probs[class_id]),
            rank=int(ranks[class_id]),
        )
