"""Read a plain state_dict saved by `torch.save` in the legacy format, without torch.

The legacy format (torch before 1.6, or `_use_new_zipfile_serialization=False`)
is five pickles and the raw bytes of the storages, one after the other:

1. the magic number 0x1950a86a20f9469cfc6c;
2. the protocol version, 1001;
3. the system info: `{"protocol_version", "little_endian", "type_sizes"}`;
4. the object itself, where every storage is a persistent id
   `("storage", torch.FloatStorage, key, location, numel, view_metadata)` and every
   tensor the call `torch._utils._rebuild_tensor_v2(storage, offset, size, stride, ...)`;
5. the list of storage keys in the order their bytes follow;

then, for each key, its element count as a little-endian int64 and its bytes.

A pickle can call any importable function, so loading one from the internet is
running its author's code. Every pickle here goes through `RestrictedUnpickler`,
whose `find_class` knows only the handful of names a state_dict needs and maps
them to our own harmless stand-ins (torch is never imported); any other global
is refused with `UnsafePickleError` before anything is imported or called.
"""

from __future__ import annotations

import collections
import io
import math
import pickle
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import numpy as np

MAGIC_NUMBER = 0x1950A86A20F9469CFC6C
PROTOCOL_VERSION = 1001
ZIP_SIGNATURE = b"PK\x03\x04"

# torch.<Name>Storage -> the little-endian dtype of its elements. BFloat16 and the
# complex and quantized storages have no numpy twin and are refused by name.
STORAGE_DTYPES = {
    "DoubleStorage": "<f8",
    "FloatStorage": "<f4",
    "HalfStorage": "<f2",
    "LongStorage": "<i8",
    "IntStorage": "<i4",
    "ShortStorage": "<i2",
    "CharStorage": "i1",
    "ByteStorage": "u1",
    "BoolStorage": "?",
}


class UnsafePickleError(pickle.UnpicklingError):
    """The pickle names a global that a plain state_dict never needs."""


class TorchFormatError(ValueError):
    """The bytes are not a legacy-format state_dict this reader understands."""


def _refuse_setstate(self: object, state: object) -> None:
    """Pickle's BUILD opcode sets attributes through __setstate__, which frozen
    slotted dataclasses get unless they define their own: a hostile file could
    otherwise enlarge a checked tensor's shape after the fact."""
    raise TorchFormatError(f"the pickle tries to change a {type(self).__name__} after building it")


@dataclass(frozen=True, slots=True)
class StorageType:
    """Stands in for `torch.FloatStorage` and its siblings."""

    name: str
    dtype: np.dtype
    __setstate__ = _refuse_setstate


@dataclass(frozen=True, slots=True)
class StorageRef:
    """A storage (or a view of one) whose bytes come after the pickles."""

    root_key: str
    dtype: np.dtype
    root_numel: int
    offset: int  # elements into the root storage where this view starts
    numel: int
    __setstate__ = _refuse_setstate


@dataclass(frozen=True, slots=True)
class TensorRef:
    """What `_rebuild_tensor_v2` would have built: a strided view of a storage."""

    storage: StorageRef
    offset: int
    shape: tuple[int, ...]
    stride: tuple[int, ...]
    __setstate__ = _refuse_setstate


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int_tuple(value: object, what: str) -> tuple[int, ...]:
    if not isinstance(value, tuple) or not all(_is_int(v) and v >= 0 for v in value):
        raise TorchFormatError(f"tensor {what} must be a tuple of non-negative ints, got {value!r}")
    return value


def _rebuild_tensor(storage: object, storage_offset: object, size: object, stride: object):
    if not isinstance(storage, StorageRef):
        raise TorchFormatError(f"a tensor's storage must be a persistent storage, got {storage!r}")
    if not _is_int(storage_offset) or storage_offset < 0:
        raise TorchFormatError(f"bad tensor storage offset {storage_offset!r}")
    shape, strides = _int_tuple(size, "size"), _int_tuple(stride, "stride")
    if len(shape) != len(strides):
        raise TorchFormatError(f"tensor size {shape} and stride {strides} differ in length")
    _check_fits(shape, strides, storage_offset, storage.numel)
    return TensorRef(storage, storage_offset, shape, strides)


def _check_fits(shape: tuple[int, ...], strides: tuple[int, ...], offset: int, numel: int) -> None:
    """The last element addressed must lie inside the storage (as_strided would
    otherwise read past it), and a tensor never has more elements than its
    storage (no stride-0 memory bombs). Python ints: no overflow."""
    count = math.prod(shape)
    if count == 0:
        return
    last = offset + sum((n - 1) * s for n, s in zip(shape, strides, strict=True))
    if last >= numel or count > numel:
        raise TorchFormatError(
            f"tensor of size {shape}, stride {strides}, offset {offset} "
            f"does not fit its storage of {numel} elements"
        )


def _rebuild_tensor_v2(
    storage, storage_offset, size, stride, requires_grad=False, backward_hooks=None, metadata=None
):
    return _rebuild_tensor(storage, storage_offset, size, stride)


def _rebuild_parameter(data, requires_grad=False, backward_hooks=None):
    if not isinstance(data, TensorRef):
        raise TorchFormatError(f"a parameter must wrap a tensor, got {data!r}")
    return data


_ALLOWED_GLOBALS: dict[tuple[str, str], object] = {
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("torch._utils", "_rebuild_tensor"): _rebuild_tensor,
    ("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    **{("torch", name): StorageType(name, np.dtype(code)) for name, code in STORAGE_DTYPES.items()},
}


class RestrictedUnpickler(pickle.Unpickler):
    """An unpickler for state_dicts: our stand-ins for a few names, nothing else."""

    def __init__(self, stream: BinaryIO, storages: dict[str, StorageRef] | None = None):
        super().__init__(stream)
        self.storages = storages if storages is not None else {}

    def find_class(self, module: str, name: str) -> object:
        try:
            return _ALLOWED_GLOBALS[(module, name)]
        except KeyError:
            raise UnsafePickleError(
                f"refusing the global {module}.{name}: a plain state_dict only needs "
                "collections.OrderedDict, torch._utils._rebuild_tensor(_v2), "
                "torch._utils._rebuild_parameter and torch.*Storage"
            ) from None

    def persistent_load(self, pid: object) -> StorageRef:
        if isinstance(pid, tuple) and pid and pid[0] == "module":
            raise TorchFormatError("the file holds a pickled nn.Module, not a state_dict")
        if not (isinstance(pid, tuple) and len(pid) == 6 and pid[0] == "storage"):
            raise TorchFormatError(f"unexpected persistent id {pid!r}")
        _, storage_type, root_key, _location, numel, view = pid
        if not isinstance(storage_type, StorageType):
            raise TorchFormatError(f"unexpected storage type {storage_type!r}")
        if not isinstance(root_key, str) or not _is_int(numel) or numel < 0:
            raise TorchFormatError(f"bad storage key or size in {pid!r}")
        root = self.storages.get(root_key)
        if root is None:
            root = StorageRef(root_key, storage_type.dtype, numel, 0, numel)
            self.storages[root_key] = root
        elif root.dtype != storage_type.dtype or root.root_numel != numel:
            raise TorchFormatError(f"storage {root_key} is declared twice, differently")
        if view is None:
            return root
        if not (isinstance(view, tuple) and len(view) == 3):
            raise TorchFormatError(f"bad storage view {view!r}")
        _view_key, offset, size = view
        if not (
            _is_int(offset) and _is_int(size) and min(offset, size) >= 0 and offset + size <= numel
        ):
            raise TorchFormatError(f"storage view {view!r} lies outside storage {root_key}")
        return StorageRef(root_key, root.dtype, numel, offset, size)


def _load_pickle(stream: BinaryIO, what: str, storages: dict[str, StorageRef] | None = None):
    try:
        return RestrictedUnpickler(stream, storages).load()
    except (UnsafePickleError, TorchFormatError):
        raise
    except Exception as exc:  # any malformed pickle: EOFError, TypeError, ...
        raise TorchFormatError(f"cannot read the {what} pickle: {exc}") from exc


def _read_storages(stream: BinaryIO, keys: object, storages: dict[str, StorageRef]):
    # The sizes come from the file: check them against what is left of it
    # before reading, so a lying header cannot make us allocate gigabytes.
    position = stream.tell()
    remaining = stream.seek(0, io.SEEK_END) - position
    stream.seek(position)
    if not isinstance(keys, list) or not all(isinstance(k, str) for k in keys):
        raise TorchFormatError("the storage key list is not a list of strings")
    if set(keys) != set(storages) or len(keys) != len(storages):
        raise TorchFormatError("the storage key list does not match the storages in the pickle")
    arrays: dict[str, np.ndarray] = {}
    for key in keys:
        ref = storages[key]
        header = stream.read(8)
        if len(header) != 8:
            raise TorchFormatError(f"the file ends before storage {key}")
        numel = int.from_bytes(header, "little", signed=True)
        if numel != ref.root_numel:
            raise TorchFormatError(
                f"storage {key} holds {numel} elements, the pickle says {ref.root_numel}"
            )
        nbytes = numel * ref.dtype.itemsize
        remaining -= 8 + nbytes
        if remaining < 0:
            raise TorchFormatError(f"the file ends inside storage {key}")
        data = stream.read(nbytes)
        arrays[key] = np.frombuffer(data, dtype=ref.dtype).astype(ref.dtype.newbyteorder("="))
    return arrays


def _materialise(tensor: TensorRef, storages: dict[str, np.ndarray]) -> np.ndarray:
    ref = tensor.storage
    flat = storages[ref.root_key][ref.offset : ref.offset + ref.numel]
    # Checked when built; checked again against the bytes actually read.
    _check_fits(tensor.shape, tensor.stride, tensor.offset, flat.size)
    if 0 in tensor.shape:
        return np.zeros(tensor.shape, dtype=flat.dtype)
    view = np.lib.stride_tricks.as_strided(
        flat[tensor.offset :],
        shape=tensor.shape,
        strides=tuple(s * flat.itemsize for s in tensor.stride),
        writeable=False,
    )
    return np.array(view, order="C")  # a copy (ascontiguousarray would make 0-d 1-d)


def read_state_dict(stream: BinaryIO) -> dict[str, np.ndarray]:
    """A legacy-format state_dict from a seekable binary stream -> {name: array}."""
    if stream.read(4) == ZIP_SIGNATURE:
        raise TorchFormatError(
            "this is the zip-based format of torch >= 1.6, which this reader does not "
            "support; only the legacy format (torch < 1.6, or "
            "_use_new_zipfile_serialization=False) is read"
        )
    stream.seek(0)
    if _load_pickle(stream, "magic number") != MAGIC_NUMBER:
        raise TorchFormatError("not a legacy torch file (wrong magic number)")
    if _load_pickle(stream, "protocol version") != PROTOCOL_VERSION:
        raise TorchFormatError("unsupported legacy torch protocol version")
    sys_info = _load_pickle(stream, "system info")
    if not isinstance(sys_info, dict) or sys_info.get("little_endian") is not True:
        raise TorchFormatError("only little-endian files are supported")
    storages: dict[str, StorageRef] = {}
    state = _load_pickle(stream, "state_dict", storages)
    if not isinstance(state, Mapping):
        raise TorchFormatError(f"expected a state_dict (a mapping), got {type(state).__name__}")
    for name, value in state.items():
        if not isinstance(name, str) or not isinstance(value, TensorRef):
            raise TorchFormatError(f"entry {name!r} of the state_dict is not a named tensor")
    keys = _load_pickle(stream, "storage keys")
    arrays = _read_storages(stream, keys, storages)
    return {name: _materialise(tensor, arrays) for name, tensor in state.items()}


def load_state_dict(path: str | Path) -> dict[str, np.ndarray]:
    """A legacy-format .pth file holding a plain state_dict -> {name: array}."""
    with Path(path).open("rb") as fh:
        return read_state_dict(fh)
