from ic.v1 import image_pb2 as _image_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class InpaintRequest(_message.Message):
    __slots__ = ("image", "mask", "engine", "params", "seed", "crop_to_mask")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MASK_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CROP_TO_MASK_FIELD_NUMBER: _ClassVar[int]
    image: _image_pb2.Image
    mask: _image_pb2.Mask
    engine: str
    params: _containers.ScalarMap[str, float]
    seed: int
    crop_to_mask: bool
    def __init__(self, image: _Optional[_Union[_image_pb2.Image, _Mapping]] = ..., mask: _Optional[_Union[_image_pb2.Mask, _Mapping]] = ..., engine: _Optional[str] = ..., params: _Optional[_Mapping[str, float]] = ..., seed: _Optional[int] = ..., crop_to_mask: _Optional[bool] = ...) -> None: ...

class InpaintResponse(_message.Message):
    __slots__ = ("image", "engine", "served_by", "elapsed_ms", "box")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    image: _image_pb2.Image
    engine: str
    served_by: str
    elapsed_ms: float
    box: _image_pb2.MaskRect
    def __init__(self, image: _Optional[_Union[_image_pb2.Image, _Mapping]] = ..., engine: _Optional[str] = ..., served_by: _Optional[str] = ..., elapsed_ms: _Optional[float] = ..., box: _Optional[_Union[_image_pb2.MaskRect, _Mapping]] = ...) -> None: ...

class InpaintManyRequest(_message.Message):
    __slots__ = ("image", "masks", "engine", "params", "seed", "crop_to_mask")
    class ParamsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: float
        def __init__(self, key: _Optional[str] = ..., value: _Optional[float] = ...) -> None: ...
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    MASKS_FIELD_NUMBER: _ClassVar[int]
    ENGINE_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    SEED_FIELD_NUMBER: _ClassVar[int]
    CROP_TO_MASK_FIELD_NUMBER: _ClassVar[int]
    image: _image_pb2.Image
    masks: _containers.RepeatedCompositeFieldContainer[_image_pb2.Mask]
    engine: str
    params: _containers.ScalarMap[str, float]
    seed: int
    crop_to_mask: bool
    def __init__(self, image: _Optional[_Union[_image_pb2.Image, _Mapping]] = ..., masks: _Optional[_Iterable[_Union[_image_pb2.Mask, _Mapping]]] = ..., engine: _Optional[str] = ..., params: _Optional[_Mapping[str, float]] = ..., seed: _Optional[int] = ..., crop_to_mask: _Optional[bool] = ...) -> None: ...

class InpaintManyResult(_message.Message):
    __slots__ = ("index", "image", "served_by", "elapsed_ms", "box")
    INDEX_FIELD_NUMBER: _ClassVar[int]
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    index: int
    image: _image_pb2.Image
    served_by: str
    elapsed_ms: float
    box: _image_pb2.MaskRect
    def __init__(self, index: _Optional[int] = ..., image: _Optional[_Union[_image_pb2.Image, _Mapping]] = ..., served_by: _Optional[str] = ..., elapsed_ms: _Optional[float] = ..., box: _Optional[_Union[_image_pb2.MaskRect, _Mapping]] = ...) -> None: ...

class GetInfoRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class EngineParam(_message.Message):
    __slots__ = ("name", "description", "default_value", "min_value", "max_value")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_VALUE_FIELD_NUMBER: _ClassVar[int]
    MIN_VALUE_FIELD_NUMBER: _ClassVar[int]
    MAX_VALUE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    default_value: float
    min_value: float
    max_value: float
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., default_value: _Optional[float] = ..., min_value: _Optional[float] = ..., max_value: _Optional[float] = ...) -> None: ...

class EngineInfo(_message.Message):
    __slots__ = ("name", "description", "available", "unavailable_reason", "params", "randomized", "reach_px", "reach_factor", "reads_whole_image")
    NAME_FIELD_NUMBER: _ClassVar[int]
    DESCRIPTION_FIELD_NUMBER: _ClassVar[int]
    AVAILABLE_FIELD_NUMBER: _ClassVar[int]
    UNAVAILABLE_REASON_FIELD_NUMBER: _ClassVar[int]
    PARAMS_FIELD_NUMBER: _ClassVar[int]
    RANDOMIZED_FIELD_NUMBER: _ClassVar[int]
    REACH_PX_FIELD_NUMBER: _ClassVar[int]
    REACH_FACTOR_FIELD_NUMBER: _ClassVar[int]
    READS_WHOLE_IMAGE_FIELD_NUMBER: _ClassVar[int]
    name: str
    description: str
    available: bool
    unavailable_reason: str
    params: _containers.RepeatedCompositeFieldContainer[EngineParam]
    randomized: bool
    reach_px: int
    reach_factor: float
    reads_whole_image: bool
    def __init__(self, name: _Optional[str] = ..., description: _Optional[str] = ..., available: _Optional[bool] = ..., unavailable_reason: _Optional[str] = ..., params: _Optional[_Iterable[_Union[EngineParam, _Mapping]]] = ..., randomized: _Optional[bool] = ..., reach_px: _Optional[int] = ..., reach_factor: _Optional[float] = ..., reads_whole_image: _Optional[bool] = ...) -> None: ...

class InpainterInfo(_message.Message):
    __slots__ = ("service", "engines", "default_engine", "served_by", "max_side", "max_pixels", "max_masks")
    SERVICE_FIELD_NUMBER: _ClassVar[int]
    ENGINES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_ENGINE_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    MAX_SIDE_FIELD_NUMBER: _ClassVar[int]
    MAX_PIXELS_FIELD_NUMBER: _ClassVar[int]
    MAX_MASKS_FIELD_NUMBER: _ClassVar[int]
    service: str
    engines: _containers.RepeatedCompositeFieldContainer[EngineInfo]
    default_engine: str
    served_by: str
    max_side: int
    max_pixels: int
    max_masks: int
    def __init__(self, service: _Optional[str] = ..., engines: _Optional[_Iterable[_Union[EngineInfo, _Mapping]]] = ..., default_engine: _Optional[str] = ..., served_by: _Optional[str] = ..., max_side: _Optional[int] = ..., max_pixels: _Optional[int] = ..., max_masks: _Optional[int] = ...) -> None: ...
