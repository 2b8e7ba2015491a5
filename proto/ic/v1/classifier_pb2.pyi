from ic.v1 import image_pb2 as _image_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ClassifyRequest(_message.Message):
    __slots__ = ("images", "top_k", "pinned_class_ids", "cam_class_ids", "cam_top_k", "all_probabilities", "model", "cam_max_side")
    IMAGES_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    PINNED_CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    CAM_CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    CAM_TOP_K_FIELD_NUMBER: _ClassVar[int]
    ALL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    CAM_MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    images: _containers.RepeatedCompositeFieldContainer[_image_pb2.Image]
    top_k: int
    pinned_class_ids: _containers.RepeatedScalarFieldContainer[int]
    cam_class_ids: _containers.RepeatedScalarFieldContainer[int]
    cam_top_k: bool
    all_probabilities: bool
    model: str
    cam_max_side: int
    def __init__(self, images: _Optional[_Iterable[_Union[_image_pb2.Image, _Mapping]]] = ..., top_k: _Optional[int] = ..., pinned_class_ids: _Optional[_Iterable[int]] = ..., cam_class_ids: _Optional[_Iterable[int]] = ..., cam_top_k: _Optional[bool] = ..., all_probabilities: _Optional[bool] = ..., model: _Optional[str] = ..., cam_max_side: _Optional[int] = ...) -> None: ...

class ClassProbability(_message.Message):
    __slots__ = ("class_id", "label", "probability", "rank")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    LABEL_FIELD_NUMBER: _ClassVar[int]
    PROBABILITY_FIELD_NUMBER: _ClassVar[int]
    RANK_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    label: str
    probability: float
    rank: int
    def __init__(self, class_id: _Optional[int] = ..., label: _Optional[str] = ..., probability: _Optional[float] = ..., rank: _Optional[int] = ...) -> None: ...

class ClassActivationMap(_message.Message):
    __slots__ = ("class_id", "width", "height", "data", "raw_min", "raw_max", "image_width", "image_height", "seen")
    CLASS_ID_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    RAW_MIN_FIELD_NUMBER: _ClassVar[int]
    RAW_MAX_FIELD_NUMBER: _ClassVar[int]
    IMAGE_WIDTH_FIELD_NUMBER: _ClassVar[int]
    IMAGE_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    SEEN_FIELD_NUMBER: _ClassVar[int]
    class_id: int
    width: int
    height: int
    data: bytes
    raw_min: float
    raw_max: float
    image_width: int
    image_height: int
    seen: _image_pb2.MaskRect
    def __init__(self, class_id: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., data: _Optional[bytes] = ..., raw_min: _Optional[float] = ..., raw_max: _Optional[float] = ..., image_width: _Optional[int] = ..., image_height: _Optional[int] = ..., seen: _Optional[_Union[_image_pb2.MaskRect, _Mapping]] = ...) -> None: ...

class ImageResult(_message.Message):
    __slots__ = ("top", "pinned", "cams", "probabilities")
    TOP_FIELD_NUMBER: _ClassVar[int]
    PINNED_FIELD_NUMBER: _ClassVar[int]
    CAMS_FIELD_NUMBER: _ClassVar[int]
    PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    top: _containers.RepeatedCompositeFieldContainer[ClassProbability]
    pinned: _containers.RepeatedCompositeFieldContainer[ClassProbability]
    cams: _containers.RepeatedCompositeFieldContainer[ClassActivationMap]
    probabilities: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, top: _Optional[_Iterable[_Union[ClassProbability, _Mapping]]] = ..., pinned: _Optional[_Iterable[_Union[ClassProbability, _Mapping]]] = ..., cams: _Optional[_Iterable[_Union[ClassActivationMap, _Mapping]]] = ..., probabilities: _Optional[_Iterable[float]] = ...) -> None: ...

class ClassifyResponse(_message.Message):
    __slots__ = ("results", "model", "served_by", "timing_ms")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    results: _containers.RepeatedCompositeFieldContainer[ImageResult]
    model: str
    served_by: str
    timing_ms: _containers.ScalarMap[str, float]
    def __init__(self, results: _Optional[_Iterable[_Union[ImageResult, _Mapping]]] = ..., model: _Optional[str] = ..., served_by: _Optional[str] = ..., timing_ms: _Optional[_Mapping[str, float]] = ...) -> None: ...

class ImageEdit(_message.Message):
    __slots__ = ("rect", "rgb")
    RECT_FIELD_NUMBER: _ClassVar[int]
    RGB_FIELD_NUMBER: _ClassVar[int]
    rect: _image_pb2.MaskRect
    rgb: bytes
    def __init__(self, rect: _Optional[_Union[_image_pb2.MaskRect, _Mapping]] = ..., rgb: _Optional[bytes] = ...) -> None: ...

class ClassifyEditsRequest(_message.Message):
    __slots__ = ("model", "base", "edits", "top_k", "pinned_class_ids", "all_probabilities", "include_base", "cam_class_ids", "cam_top_k", "cam_max_side")
    MODEL_FIELD_NUMBER: _ClassVar[int]
    BASE_FIELD_NUMBER: _ClassVar[int]
    EDITS_FIELD_NUMBER: _ClassVar[int]
    TOP_K_FIELD_NUMBER: _ClassVar[int]
    PINNED_CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    ALL_PROBABILITIES_FIELD_NUMBER: _ClassVar[int]
    INCLUDE_BASE_FIELD_NUMBER: _ClassVar[int]
    CAM_CLASS_IDS_FIELD_NUMBER: _ClassVar[int]
    CAM_TOP_K_FIELD_NUMBER: _ClassVar[int]
    CAM_MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    model: str
    base: _image_pb2.Image
    edits: _containers.RepeatedCompositeFieldContainer[ImageEdit]
    top_k: int
    pinned_class_ids: _containers.RepeatedScalarFieldContainer[int]
    all_probabilities: bool
    include_base: bool
    cam_class_ids: _containers.RepeatedScalarFieldContainer[int]
    cam_top_k: bool
    cam_max_side: int
    def __init__(self, model: _Optional[str] = ..., base: _Optional[_Union[_image_pb2.Image, _Mapping]] = ..., edits: _Optional[_Iterable[_Union[ImageEdit, _Mapping]]] = ..., top_k: _Optional[int] = ..., pinned_class_ids: _Optional[_Iterable[int]] = ..., all_probabilities: _Optional[bool] = ..., include_base: _Optional[bool] = ..., cam_class_ids: _Optional[_Iterable[int]] = ..., cam_top_k: _Optional[bool] = ..., cam_max_side: _Optional[int] = ...) -> None: ...

class ClassifyEditsResponse(_message.Message):
    __slots__ = ("base", "results", "model", "served_by", "timing_ms", "incremental")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    BASE_FIELD_NUMBER: _ClassVar[int]
    RESULTS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_FIELD_NUMBER: _ClassVar[int]
    base: ImageResult
    results: _containers.RepeatedCompositeFieldContainer[ImageResult]
    model: str
    served_by: str
    timing_ms: _containers.ScalarMap[str, float]
    incremental: bool
    def __init__(self, base: _Optional[_Union[ImageResult, _Mapping]] = ..., results: _Optional[_Iterable[_Union[ImageResult, _Mapping]]] = ..., model: _Optional[str] = ..., served_by: _Optional[str] = ..., timing_ms: _Optional[_Mapping[str, float]] = ..., incremental: _Optional[bool] = ...) -> None: ...

class GetModelInfoRequest(_message.Message):
    __slots__ = ("model",)
    MODEL_FIELD_NUMBER: _ClassVar[int]
    model: str
    def __init__(self, model: _Optional[str] = ...) -> None: ...

class ModelInput(_message.Message):
    __slots__ = ("height", "width", "short_side", "crop_height", "crop_width", "layout", "color", "scale", "mean", "std")
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    SHORT_SIDE_FIELD_NUMBER: _ClassVar[int]
    CROP_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    CROP_WIDTH_FIELD_NUMBER: _ClassVar[int]
    LAYOUT_FIELD_NUMBER: _ClassVar[int]
    COLOR_FIELD_NUMBER: _ClassVar[int]
    SCALE_FIELD_NUMBER: _ClassVar[int]
    MEAN_FIELD_NUMBER: _ClassVar[int]
    STD_FIELD_NUMBER: _ClassVar[int]
    height: int
    width: int
    short_side: int
    crop_height: int
    crop_width: int
    layout: str
    color: str
    scale: float
    mean: _containers.RepeatedScalarFieldContainer[float]
    std: _containers.RepeatedScalarFieldContainer[float]
    def __init__(self, height: _Optional[int] = ..., width: _Optional[int] = ..., short_side: _Optional[int] = ..., crop_height: _Optional[int] = ..., crop_width: _Optional[int] = ..., layout: _Optional[str] = ..., color: _Optional[str] = ..., scale: _Optional[float] = ..., mean: _Optional[_Iterable[float]] = ..., std: _Optional[_Iterable[float]] = ...) -> None: ...

class ModelInfo(_message.Message):
    __slots__ = ("name", "labels", "num_classes", "input_short_side", "train_height", "train_width", "cam", "max_batch", "max_side", "max_pixels", "served_by", "title", "default", "available", "unavailable_reason", "cam_reason", "input", "licence", "outputs", "incremental", "incremental_reason", "max_edits")
    NAME_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    NUM_CLASSES_FIELD_NUMBER: _ClassVar[int]
    INPUT_SHORT_SIDE_FIELD_NUMBER: _ClassVar[int]
    TRAIN_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    TRAIN_WIDTH_FIELD_NUMBER: _ClassVar[int]
    CAM_FIELD_NUMBER: _ClassVar[int]
    MAX_BATCH_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    MAX_PIXELS_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    TITLE_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    CAM_REASON_FIELD_NUMBER: _ClassVar[int]
    INPUT_FIELD_NUMBER: _ClassVar[int]
    LICENCE_FIELD_NUMBER: _ClassVar[int]
    OUTPUTS_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_REASON_FIELD_NUMBER: _ClassVar[int]
    MAX_EDITS_FIELD_NUMBER: _ClassVar[int]
    name: str
    labels: _containers.RepeatedScalarFieldContainer[str]
    num_classes: int
    input_short_side: int
    train_height: int
    train_width: int
    cam: bool
    max_batch: int
    max_side: int
    max_pixels: int
    served_by: str
    title: str
    default: bool
    available: bool
    unavailable_reason: str
    cam_reason: str
    input: ModelInput
    licence: str
    outputs: str
    incremental: bool
    incremental_reason: str
    max_edits: int
    def __init__(self, name: _Optional[str] = ..., labels: _Optional[_Iterable[str]] = ..., num_classes: _Optional[int] = ..., input_short_side: _Optional[int] = ..., train_height: _Optional[int] = ..., train_width: _Optional[int] = ..., cam: _Optional[bool] = ..., max_batch: _Optional[int] = ..., max_side: _Optional[int] = ..., max_pixels: _Optional[int] = ..., served_by: _Optional[str] = ..., title: _Optional[str] = ..., default: _Optional[bool] = ..., available: _Optional[bool] = ..., unavailable_reason: _Optional[str] = ..., cam_reason: _Optional[str] = ..., input: _Optional[_Union[ModelInput, _Mapping]] = ..., licence: _Optional[str] = ..., outputs: _Optional[str] = ..., incremental: _Optional[bool] = ..., incremental_reason: _Optional[str] = ..., max_edits: _Optional[int] = ...) -> None: ...

class ListModelsRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class ModelList(_message.Message):
    __slots__ = ("models", "default_model")
    MODELS_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_MODEL_FIELD_NUMBER: _ClassVar[int]
    models: _containers.RepeatedCompositeFieldContainer[ModelInfo]
    default_model: str
    def __init__(self, models: _Optional[_Iterable[_Union[ModelInfo, _Mapping]]] = ..., default_model: _Optional[str] = ...) -> None: ...
