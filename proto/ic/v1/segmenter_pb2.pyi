from ic.v1 import image_pb2 as _image_pb2
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class Point(_message.Message):
    __slots__ = ("x", "y")
    X_FIELD_NUMBER: _ClassVar[int]
    Y_FIELD_NUMBER: _ClassVar[int]
    x: int
    y: int
    def __init__(self, x: _Optional[int] = ..., y: _Optional[int] = ...) -> None: ...

class SegmentRequest(_message.Message):
    __slots__ = ("image", "point", "box", "iterations", "grow")
    IMAGE_FIELD_NUMBER: _ClassVar[int]
    POINT_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    ITERATIONS_FIELD_NUMBER: _ClassVar[int]
    GROW_FIELD_NUMBER: _ClassVar[int]
    image: _image_pb2.Image
    point: Point
    box: _image_pb2.MaskRect
    iterations: int
    grow: int
    def __init__(self, image: _Optional[_Union[_image_pb2.Image, _Mapping]] = ..., point: _Optional[_Union[Point, _Mapping]] = ..., box: _Optional[_Union[_image_pb2.MaskRect, _Mapping]] = ..., iterations: _Optional[int] = ..., grow: _Optional[int] = ...) -> None: ...

class SegmentResponse(_message.Message):
    __slots__ = ("mask", "box", "pixels", "elapsed_ms", "served_by")
    MASK_FIELD_NUMBER: _ClassVar[int]
    BOX_FIELD_NUMBER: _ClassVar[int]
    PIXELS_FIELD_NUMBER: _ClassVar[int]
    ELAPSED_MS_FIELD_NUMBER: _ClassVar[int]
    SERVED_BY_FIELD_NUMBER: _ClassVar[int]
    mask: _image_pb2.Mask
    box: _image_pb2.MaskRect
    pixels: int
    elapsed_ms: float
    served_by: str
    def __init__(self, mask: _Optional[_Union[_image_pb2.Mask, _Mapping]] = ..., box: _Optional[_Union[_image_pb2.MaskRect, _Mapping]] = ..., pixels: _Optional[int] = ..., elapsed_ms: _Optional[float] = ..., served_by: _Optional[str] = ...) -> None: ...
