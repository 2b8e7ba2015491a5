"""A model card's ONNX file on ONNX Runtime: the `forward` of a ClassifierModel.

`load_model(card, settings)` reads the graph (services/classifier/model_graph.py),
opens one ONNX Runtime session, and runs it once on an image of a shape the
card allows before anything is served: what the graph says statically and what
it really does can differ (a Reshape fixed at export, a pool that only fits one
size), and the trial run turns every such surprise into a clear reason at
start-up instead of an error on a user's request. It also settles the number of
classes against the card's labels, and checks the CAM head against the real
feature map. Last, it builds the model's incremental engine for ClassifyEdits
and decides whether to use it (services/classifier/incremental_edits.py).
"""

from __future__ import annotations

import logging
from collections.abc import Sequence

import numpy as np
import onnxruntime as ort

from services.classifier.cam_head import CamHead
from services.classifier.cards import ModelCard
from services.classifier.core import ClassifierModel, EditScores, ModelSettings
from services.classifier.edits import ImageEdit
from services.classifier.incremental_edits import IncrementalEdits
from services.classifier.model_graph import (
    ModelFormatError,
    PreparedModel,
    load_model_file,
    prepare_model,
)
from services.classifier.preprocess import Preprocessor

log = logging.getLogger("classifier")

# The trial image: 4:3, so a "fully convolutional" graph must really take any shape.
TRIAL_WIDTH, TRIAL_HEIGHT = 320, 240


def session_options(intra_op_threads: int) -> ort.SessionOptions:
    options = ort.SessionOptions()
    # ONNX Runtime sizes its pool from the host, not the container: set it.
    options.intra_op_num_threads = intra_op_threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    options.log_severity_level = 3  # ORT's warnings about unused initializers are noise here
    return options


class OnnxModel(ClassifierModel):
    def __init__(
        self,
        card: ModelCard,
        prepared: PreparedModel,
        session: ort.InferenceSession,
        num_classes: int,
        cam_head: CamHead | None,
        cam_reason: str,
        settings: ModelSettings,
    ) -> None:
        preprocessor = Preprocessor(card.input, prepared.input.channels)
        super().__init__(card, preprocessor, num_classes, cam_head, cam_reason, settings)
        self.prepared = prepared
        self.session = session
        self.input_name = prepared.input.name
        self.scores_output = prepared.scores_output
        self.incremental_edits = _incremental_edits(card.name, prepared, preprocessor, settings)
        self.incremental_reason = self.incremental_edits.reason

    @property
    def incremental(self) -> bool:
        return self.incremental_edits.enabled

    def edit_scores(self, base: np.ndarray, edits: Sequence[ImageEdit]) -> EditScores | None:
        return self.incremental_edits.scores(base, edits, self.max_batch)

    def warm_up(self) -> None:
        super().warm_up()
        self.incremental_edits.warm_up()

    def forward(
        self, batch: np.ndarray, with_features: bool
    ) -> tuple[np.ndarray, np.ndarray | None]:
        outputs = [self.scores_output]
        if with_features and self.cam_head is not None:
            outputs.append(self.cam_head.features)
        result = self.session.run(outputs, {self.input_name: batch})
        return result[0], (result[1] if len(result) > 1 else None)


def _incremental_edits(
    name: str, prepared: PreparedModel, preprocessor: Preprocessor, settings: ModelSettings
) -> IncrementalEdits:
    """The model's incremental ClassifyEdits; if the engine itself fails on this
    graph, the model still serves, running its edits in full."""
    try:
        return IncrementalEdits.for_model(prepared, preprocessor, settings)
    except Exception as exc:  # an engine bug must not take a working model down
        log.exception("incremental engine failed", extra={"model": name})
        return IncrementalEdits(
            preprocessor, None, f"the incremental engine failed on this graph: {exc}"
        )


def _trial_run(
    session: ort.InferenceSession, prepared: PreparedModel, preprocessor: Preprocessor
) -> tuple[np.ndarray, np.ndarray | None]:
    image = np.random.default_rng(0).integers(0, 256, (TRIAL_HEIGHT, TRIAL_WIDTH, 3), np.uint8)
    tensor = preprocessor.to_tensor([image, image])  # a batch of two: N must be dynamic
    outputs = [prepared.scores_output]
    if prepared.cam is not None:
        outputs.append(prepared.cam.features)
    try:
        result = session.run(outputs, {prepared.input.name: tensor})
    except Exception as exc:  # ORT's errors have no common base class
        raise ModelFormatError(
            f"the model does not run on the card's input (shape {list(tensor.shape)}): "
            f"{str(exc).splitlines()[0][:300]}"
        ) from None
    return result[0], (result[1] if len(result) > 1 else None)


def _checked_cam(
    prepared: PreparedModel, features: np.ndarray | None, num_classes: int
) -> tuple[CamHead | None, str]:
    head = prepared.cam
    if head is None:
        return None, prepared.cam_reason
    if features is None or features.ndim != 4:
        shape = None if features is None else list(features.shape)
        return None, f"the feature map before the global pool has shape {shape}, not 4-D"
    channels = features.shape[head.channel_axis]
    if head.weights.shape != (num_classes, channels):
        return None, (
            f"the class weights are {list(head.weights.shape)} but the model has "
            f"{num_classes} classes and {channels} feature channels"
        )
    return head, ""


def load_model(card: ModelCard, settings: ModelSettings | None = None) -> OnnxModel:
    """The card's model, ready to serve; ModelFormatError (or ValueError) saying why not."""
    settings = settings or ModelSettings()
    graph = load_model_file(card.onnx, settings.max_model_bytes)
    prepared = prepare_model(graph, card.input, card.max_pool_ceil)
    try:
        session = ort.InferenceSession(
            prepared.model.SerializeToString(),
            session_options(settings.intra_op_threads),
            providers=["CPUExecutionProvider"],
        )
    except Exception as exc:
        raise ModelFormatError(
            f"ONNX Runtime cannot load the model: {str(exc).splitlines()[0][:300]}"
        ) from None
    preprocessor = Preprocessor(card.input, prepared.input.channels)
    scores, features = _trial_run(session, prepared, preprocessor)
    if scores.ndim != 2 or scores.shape[0] != 2:
        raise ModelFormatError(
            f"the scores have shape {list(scores.shape)} for a batch of 2; an image "
            "classifier's are [N, classes]"
        )
    num_classes = int(scores.shape[1])
    if len(card.labels) != num_classes:
        raise ModelFormatError(
            f"the card has {len(card.labels)} labels but the model outputs {num_classes} classes"
        )
    cam_head, cam_reason = _checked_cam(prepared, features, num_classes)
    return OnnxModel(card, prepared, session, num_classes, cam_head, cam_reason, settings)
