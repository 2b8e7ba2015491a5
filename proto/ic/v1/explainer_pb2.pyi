from ic.v1 import classifier_pb2 as _classifier_pb2
from ic.v1 import image_pb2 as _image_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ExplainRequest(_message.Message):
    __slots__ = ("image", "target", "backend", "window", "stride", "competitors", "fix", "fix_fraction", "faithfulness", "model", "preview")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    COMPETITORS_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    FIX_FRACTION_FIELD_NUMBER: _ClassVar[int]
    FAITHFULNESS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    image: _image_pb2.Image
    target: int
    backend: str
    window: int
    stride: int
    competitors: int
    fix: bool
    fix_fraction: float
    faithfulness: bool
    model: str
    preview: bool
    def __init__(self, image: _Optional[_Union[_image_pb2.Image, _Mapping]] = ..., target: _Optional[int] = ..., backend: _Optional[str] = ..., window: _Optional[int] = ..., stride: _Optional[int] = ..., competitors: _Optional[int] = ..., fix: _Optional[bool] = ..., fix_fraction: _Optional[float] = ..., faithfulness: _Optional[bool] = ..., model: _Optional[str] = ..., preview: _Optional[bool] = ...) -> None: ...

class ExplainEvent(_message.Message):
    __slots__ = ("progress", "preview", "result")
    PROGRESS_FIELD_NUMBER: _ClassVar[int]
    PREVIEW_FIELD_NUMBER: _ClassVar[int]
    RESULT_FIELD_NUMBER: _ClassVar[int]
    progress: Progress
    preview: ExplainMaps
    result: ExplainResult
    def __init__(self, progress: _Optional[_Union[Progress, _Mapping]] = ..., preview: _Optional[_Union[ExplainMaps, _Mapping]] = ..., result: _Optional[_Union[ExplainResult, _Mapping]] = ...) -> None: ...

class Progress(_message.Message):
    __slots__ = ("done", "total")
    DONE_FIELD_NUMBER: _ClassVar[int]
    TOTAL_FIELD_NUMBER: _ClassVar[int]
    done: int
    total: int
    def __init__(self, done: _Optional[int] = ..., total: _Optional[int] = ...) -> None: ...

class EvidenceMap(_message.Message):
    __slots__ = ("width", "height", "data", "min", "max")
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    DATA_FIELD_NUMBER: _ClassVar[int]
    MIN_FIELD_NUMBER: _ClassVar[int]
    MAX_FIELD_NUMBER: _ClassVar[int]
    width: int
    height: int
    data: bytes
    min: float
    max: float
    def __init__(self, width: _Optional[int] = ..., height: _Optional[int] = ..., data: _Optional[bytes] = ..., min: _Optional[float] = ..., max: _Optional[float] = ...) -> None: ...

class CompetitorMap(_message.Message):
    __slots__ = ("competitor", "map")
    COMPETITOR_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    competitor: _classifier_pb2.ClassProbability
    map: EvidenceMap
    def __init__(self, competitor: _Optional[_Union[_classifier_pb2.ClassProbability, _Mapping]] = ..., map: _Optional[_Union[EvidenceMap, _Mapping]] = ...) -> None: ...

class ExplainMaps(_message.Message):
    __slots__ = ("windows", "hinder", "support", "competitors", "target")
    PASS_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    HINDER_FIELD_NUMBER: _ClassVar[int]
    SUPPORT_FIELD_NUMBER: _ClassVar[int]
    COMPETITORS_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    windows: int
    hinder: EvidenceMap
    support: EvidenceMap
    competitors: _containers.RepeatedCompositeFieldContainer[CompetitorMap]
    target: _classifier_pb2.ClassProbability
    def __init__(self, windows: _Optional[int] = ..., hinder: _Optional[_Union[EvidenceMap, _Mapping]] = ..., support: _Optional[_Union[EvidenceMap, _Mapping]] = ..., competitors: _Optional[_Iterable[_Union[CompetitorMap, _Mapping]]] = ..., target: _Optional[_Union[_classifier_pb2.ClassProbability, _Mapping]] = ..., **kwargs) -> None: ...

class BackendUse(_message.Message):
    __slots__ = ("engine", "windows")
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    WINDOWS_FIELD_NUMBER: _ClassVar[int]
    engine: str
    windows: int
    def __init__(self, engine: _Optional[str] = ..., windows: _Optional[int] = ...) -> None: ...

class FixResult(_message.Message):
    __slots__ = ("applied", "fraction", "mask", "image", "target", "top1", "backend")
    APPLIED_FIELD_NUMBER: _ClassVar[int]
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TOP1_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    applied: bool
    fraction: float
    mask: _image_pb2.RawMask
    image: _image_pb2.RawImage
    target: _classifier_pb2.ClassProbability
    top1: _classifier_pb2.ClassProbability
    backend: str
    def __init__(self, applied: _Optional[bool] = ..., fraction: _Optional[float] = ..., mask: _Optional[_Union[_image_pb2.RawMask, _Mapping]] = ..., image: _Optional[_Union[_image_pb2.RawImage, _Mapping]] = ..., target: _Optional[_Union[_classifier_pb2.ClassProbability, _Mapping]] = ..., top1: _Optional[_Union[_classifier_pb2.ClassProbability, _Mapping]] = ..., backend: _Optional[str] = ...) -> None: ...

class RemovalStep(_message.Message):
    __slots__ = ("fraction", "p_target", "rise", "top1_is_target")
    FRACTION_FIELD_NUMBER: _ClassVar[int]
    P_TARGET_FIELD_NUMBER: _ClassVar[int]
    RISE_FIELD_NUMBER: _ClassVar[int]
    TOP1_IS_TARGET_FIELD_NUMBER: _ClassVar[int]
    fraction: float
    p_target: float
    rise: float
    top1_is_target: bool
    def __init__(self, fraction: _Optional[float] = ..., p_target: _Optional[float] = ..., rise: _Optional[float] = ..., top1_is_target: _Optional[bool] = ...) -> None: ...

class Removal(_message.Message):
    __slots__ = ("method", "steps")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    STEPS_FIELD_NUMBER: _ClassVar[int]
    method: str
    steps: _containers.RepeatedCompositeFieldContainer[RemovalStep]
    def __init__(self, method: _Optional[str] = ..., steps: _Optional[_Iterable[_Union[RemovalStep, _Mapping]]] = ...) -> None: ...

class Curve(_message.Message):
    __slots__ = ("method", "p_target", "auc")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    P_TARGET_FIELD_NUMBER: _ClassVar[int]
    AUC_FIELD_NUMBER: _ClassVar[int]
    method: str
    p_target: _containers.RepeatedScalarFieldContainer[float]
    auc: float
    def __init__(self, method: _Optional[str] = ..., p_target: _Optional[_Iterable[float]] = ..., auc: _Optional[float] = ...) -> None: ...

class Faithfulness(_message.Message):
    __slots__ = ("target_id", "p_target", "removal", "curve_fractions", "deletion", "insertion")
    TARGET_ID_FIELD_NUMBER: _ClassVar[int]
    P_TARGET_FIELD_NUMBER: _ClassVar[int]
    REMOVAL_FIELD_NUMBER: _ClassVar[int]
    CURVE_FRACTIONS_FIELD_NUMBER: _ClassVar[int]
    DELETION_FIELD_NUMBER: _ClassVar[int]
    INSERTION_FIELD_NUMBER: _ClassVar[int]
    target_id: int
    p_target: float
    removal: _containers.RepeatedCompositeFieldContainer[Removal]
    curve_fractions: _containers.RepeatedScalarFieldContainer[float]
    deletion: _containers.RepeatedCompositeFieldContainer[Curve]
    insertion: _containers.RepeatedCompositeFieldContainer[Curve]
    def __init__(self, target_id: _Optional[int] = ..., p_target: _Optional[float] = ..., removal: _Optional[_Iterable[_Union[Removal, _Mapping]]] = ..., curve_fractions: _Optional[_Iterable[float]] = ..., deletion: _Optional[_Iterable[_Union[Curve, _Mapping]]] = ..., insertion: _Optional[_Iterable[_Union[Curve, _Mapping]]] = ...) -> None: ...

class ExplainResult(_message.Message):
    __slots__ = ("target", "top", "maps", "window", "stride", "width", "height", "work_width", "work_height", "backend", "fallback", "backends_used", "fix", "faithfulness", "model", "incremental", "laplace_n", "laplace_k", "served_by", "timing_ms", "classify_calls")
    class TimingMsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    TARGET_FIELD_NUMBER: _ClassVar[int]
    TOP_FIELD_NUMBER: _ClassVar[int]
    MAPS_FIELD_NUMBER: _ClassVar[int]
    WINDOW_FIELD_NUMBER: _ClassVar[int]
    STRIDE_FIELD_NUMBER: _ClassVar[int]
    WIDTH_FIELD_NUMBER: _ClassVar[int]
    HEIGHT_FIELD_NUMBER: _ClassVar[int]
    WORK_WIDTH_FIELD_NUMBER: _ClassVar[int]
    WORK_HEIGHT_FIELD_NUMBER: _ClassVar[int]
    BACKEND_FIELD_NUMBER: _ClassVar[int]
    FALLBACK_FIELD_NUMBER: _ClassVar[int]
    BACKENDS_USED_FIELD_NUMBER: _ClassVar[int]
    FIX_FIELD_NUMBER: _ClassVar[int]
    FAITHFULNESS_FIELD_NUMBER: _ClassVar[int]
    MODEL_FIELD_NUMBER: _ClassVar[int]
    INCREMENTAL_FIELD_NUMBER: _ClassVar[int]
    LAPLACE_N_FIELD_NUMBER: _ClassVar[int]
    LAPLACE_K_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    TIMING_MS_FIELD_NUMBER: _ClassVar[int]
    CLASSIFY_CALLS_FIELD_NUMBER: _ClassVar[int]
    target: _classifier_pb2.ClassProbability
    top: _containers.RepeatedCompositeFieldContainer[_classifier_pb2.ClassProbability]
    maps: ExplainMaps
    window: int
    stride: int
    width: int
    height: int
    work_width: int
    work_height: int
    backend: str
    fallback: bool
    backends_used: _containers.RepeatedCompositeFieldContainer[BackendUse]
    fix: FixResult
    faithfulness: Faithfulness
    model: str
    incremental: bool
    laplace_n: int
    laplace_k: int
    served_by: str
    timing_ms: _containers.ScalarMap[str, float]
    classify_calls: int
    def __init__(self, target: _Optional[_Union[_classifier_pb2.ClassProbability, _Mapping]] = ..., top: _Optional[_Iterable[_Union[_classifier_pb2.ClassProbability, _Mapping]]] = ..., maps: _Optional[_Union[ExplainMaps, _Mapping]] = ..., window: _Optional[int] = ..., stride: _Optional[int] = ..., width: _Optional[int] = ..., height: _Optional[int] = ..., work_width: _Optional[int] = ..., work_height: _Optional[int] = ..., backend: _Optional[str] = ..., fallback: _Optional[bool] = ..., backends_used: _Optional[_Iterable[_Union[BackendUse, _Mapping]]] = ..., fix: _Optional[_Union[FixResult, _Mapping]] = ..., faithfulness: _Optional[_Union[Faithfulness, _Mapping]] = ..., model: _Optional[str] = ..., incremental: _Optional[bool] = ..., laplace_n: _Optional[int] = ..., laplace_k: _Optional[int] = ..., served_by: _Optional[str] = ..., timing_ms: _Optional[_Mapping[str, float]] = ..., classify_calls: _Optional[int] = ...) -> None: ...
