"""Write legacy-format (pre-1.6) torch files without torch, for the reader's tests.

`pickle` cannot name `torch._utils._rebuild_tensor_v2` without importing torch, so
the pickles are assembled from opcodes (protocol 2): small, explicit, and able to
name any global, including the hostile ones the reader must refuse.
"""

from __future__ import annotations

import struct
from dataclasses import dataclass

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
STORAGE_TYPES = {
    np.dtype(np.float32): "FloatStorage",
    np.dtype(np.float64): "DoubleStorage",
    np.dtype(np.float16): "HalfStorage",
    np.dtype(np.int64): "LongStorage",
    np.dtype(np.int32): "IntStorage",
    np.dtype(np.uint8): "ByteStorage",
    np.dtype(np.bool_): "BoolStorage",
}


@dataclass(frozen=True)
class Global:
    module: str
    name: str


@dataclass(frozen=True)
class Call:
    """`func(*args)` when unpickled (a REDUCE)."""

    func: object
    args: tuple


@dataclass(frozen=True)
class Build:
    """`obj` with `state` applied when unpickled (a BUILD: __setstate__ or __dict__)."""

    obj: object
    state: object


@dataclass(frozen=True)
class Persistent:
    """A persistent id, resolved by the unpickler's persistent_load."""

    pid: tuple


def _encode(obj: object, out: bytearray) -> None:
    if obj is None:
        out += b"N"
    elif obj is True or obj is False:
        out += b"\x88" if obj else b"\x89"
    elif isinstance(obj, int):
        body = obj.to_bytes((obj.bit_length() + 8) // 8, "little", signed=True) if obj else b""
        out += b"\x8a" + bytes([len(body)]) + body  # LONG1
    elif isinstance(obj, str):
        data = obj.encode()
        out += b"X" + struct.pack("<I", len(data)) + data  # BINUNICODE
    elif isinstance(obj, tuple):
        out += b"("
        for item in obj:
            _encode(item, out)
        out += b"t"
    elif isinstance(obj, list):
        out += b"]("
        for item in obj:
            _encode(item, out)
        out += b"e"
    elif isinstance(obj, dict):
        out += b"}("
        for key, value in obj.items():
            _encode(key, out)
            _encode(value, out)
        out += b"u"
    elif isinstance(obj, Global):
        out += f"c{obj.module}\n{obj.name}\n".encode()
    elif isinstance(obj, Call):
        _encode(obj.func, out)
        _encode(obj.args, out)
        out += b"R"
    elif isinstance(obj, Build):
        _encode(obj.obj, out)
        _encode(obj.state, out)
        out += b"b"
    elif isinstance(obj, Persistent):
        _encode(obj.pid, out)
        out += b"Q"  # BINPERSID
    else:
        raise TypeError(f"cannot encode {obj!r}")


def pickle_bytes(obj: object) -> bytes:
    out = bytearray(b"\x80\x02")
    _encode(obj, out)
    return bytes(out + b".")


def ordered_dict(items: list[tuple[object, object]]) -> Call:
    return Call(Global("collections", "OrderedDict"), (items,))


@dataclass(frozen=True)
class TensorEntry:
    """A tensor as torch saves it: a strided view of (part of) a storage."""

    storage_key: str
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]


def tensor_call(entry: TensorEntry, storage: np.ndarray) -> Call:
    storage_type = Global("torch", STORAGE_TYPES[storage.dtype])
    pid = Persistent(("storage", storage_type, entry.storage_key, "cpu", storage.size, None))
    args = (pid, entry.offset, entry.shape, entry.stride, False, ordered_dict([]))
    return Call(Global("torch._utils", "_rebuild_tensor_v2"), args)


def legacy_file_bytes(
    state: object, storages: dict[str, np.ndarray], sys_info: object | None = None
) -> bytes:
    """The five pickles and the storages' bytes, as torch's legacy save writes them."""
    if sys_info is None:
        sys_info = {
            "protocol_version": 1001,
            "little_endian": True,
            "type_sizes": {"short": 2, "int": 4, "long": 8},
        }
    parts = [pickle_bytes(MAGIC_NUMBER), pickle_bytes(1001), pickle_bytes(sys_info)]
    parts += [pickle_bytes(state), pickle_bytes(sorted(storages))]
    for key in sorted(storages):
        flat = storages[key].reshape(-1)
        parts.append(struct.pack("<q", flat.size))
        parts.append(flat.astype(flat.dtype.newbyteorder("<")).tobytes())
    return b"".join(parts)


def contiguous_state_dict_bytes(tensors: dict[str, np.ndarray]) -> bytes:
    """A plain state_dict: one contiguous storage per tensor."""
    storages, items = {}, []
    for index, (name, array) in enumerate(tensors.items()):
        key = str(1000 + index)
        storages[key] = np.array(array, order="C")  # (ascontiguousarray makes 0-d 1-d)
        stride = tuple(s // array.itemsize for s in storages[key].strides)
        items.append((name, tensor_call(TensorEntry(key, 0, array.shape, stride), storages[key])))
    return legacy_file_bytes(ordered_dict(items), storages)
