"""Read a legacy (pre-zip) `torch.save` file of plain tensors without torch, safely.

The file is a run of pickles: magic number, protocol version, system info, the object itself
(tensors refer to storages by persistent id), the list of storage keys, then each storage's raw
bytes (an int64 element count followed by the data). The unpickler below resolves only the few
globals such a file needs and refuses every other, so a crafted file cannot run code.
"""
import collections
import io
import pickle
import struct

import numpy as np

MAGIC = 0x1950A86A20F9469CFC6C
PROTOCOL = 1001
STORAGE_DTYPES = {"ByteStorage": np.uint8, "CharStorage": np.int8, "ShortStorage": np.int16,
                  "IntStorage": np.int32, "LongStorage": np.int64, "HalfStorage": np.float16,
                  "FloatStorage": np.float32, "DoubleStorage": np.float64}


class TorchFileError(ValueError):
    """A malformed tensor file: truncated, inconsistent, or a tensor outside its storage."""


class UnsafePickle(TorchFileError):
    """The file asks for a global that a plain tensor file never needs."""


class _Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel, self.data = dtype, key, numel, None


class _LazyTensor:
    # A tensor view of a storage, resolved to a numpy array once the storage bytes are read.
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self):
        self.check()
        base = self.storage.data
        itemsize = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.array(view)          # own the memory, C-contiguous

    def check(self):
        # every element the view reaches lies in its storage, strides ≥ 1, and the tensor holds no
        # more elements than the storage (so a small file never becomes a large array)
        n = None if self.storage.data is None else len(self.storage.data)
        ints = lambda t: all(isinstance(v, int) and not isinstance(v, bool) for v in t)
        if n is None:
            raise TorchFileError(f"storage {self.storage.key!r} has no data")
        if not (isinstance(self.offset, int) and ints(self.size) and ints(self.stride)
                and len(self.size) == len(self.stride)):
            raise TorchFileError(f"a tensor has a malformed offset, size or stride ({self.offset!r}, "
                                 f"{self.size!r}, {self.stride!r})")
        if self.offset < 0 or any(d < 0 for d in self.size) or any(s < 1 for s in self.stride):
            raise TorchFileError(f"a tensor has offset {self.offset}, size {self.size}, stride {self.stride}: "
                                 "negative, or a stride below 1")
        if 0 in self.size:
            return
        last = self.offset + sum((d - 1) * s for d, s in zip(self.size, self.stride))
        if last >= n or int(np.prod(self.size, dtype=object)) > n:
            raise TorchFileError(f"a tensor of size {self.size} (offset {self.offset}, stride {self.stride}) "
                                 f"reaches past its storage of {n} elements")


def _rebuild_tensor_v2(storage, offset, size, stride, requires_grad=False, hooks=None, *meta):
    return _LazyTensor(storage, offset, size, stride)


class _StorageType:
    def __init__(self, name):
        self.name = name


class _RestrictedUnpickler(pickle.Unpickler):
    ALLOWED = {("torch._utils", "_rebuild_tensor_v2"): _rebuild_tensor_v2,
               ("collections", "OrderedDict"): collections.OrderedDict}

    def __init__(self, file, storages):
        super().__init__(file)
        self.storages = storages

    def find_class(self, module, name):
        if (module, name) in self.ALLOWED:
            return self.ALLOWED[(module, name)]
        if module == "torch" and name in STORAGE_DTYPES:
            return _StorageType(name)
        raise UnsafePickle(f"refusing to load global {module}.{name}: not part of a tensor file")

    def persistent_load(self, pid):
        # pid = ('storage', storage_type, key, location, numel[, view_metadata])
        if not (isinstance(pid, tuple) and pid and pid[0] == "storage"
                and isinstance(pid[1], _StorageType)):
            raise UnsafePickle(f"unexpected persistent id {pid!r}")
        if len(pid) < 5 or not isinstance(pid[4], int) or pid[4] < 0:
            raise TorchFileError(f"malformed storage id {pid!r}")
        kind, stype, key, _location, numel = pid[:5]
        if key not in self.storages:
            self.storages[key] = _Storage(STORAGE_DTYPES[stype.name], key, numel)
        return self.storages[key]


def _safe_load(f):
    # A plain value pickle (header parts, key list): no globals allowed at all.
    class NoGlobals(pickle.Unpickler):
        def find_class(self, module, name):
            raise UnsafePickle(f"refusing to load global {module}.{name} in a file header")
    return NoGlobals(f).load()


def load_tensors(data: bytes, name="tensor file") -> dict:
    # bytes of a legacy torch.save file of {name: tensor} -> {name: numpy array}; TorchFileError
    # naming the file (`name`) if it is malformed in any way
    try:
        return _load_tensors(data)
    except TorchFileError as e:
        raise e.__class__(f"{name}: {e}") from None
    except (pickle.UnpicklingError, EOFError, struct.error, ValueError, TypeError, KeyError,
            IndexError, AttributeError, RecursionError) as e:
        raise TorchFileError(f"{name}: malformed tensor file ({e.__class__.__name__}: {e})") from None


def _load_tensors(data):
    f = io.BytesIO(data)
    if _safe_load(f) != MAGIC:
        raise TorchFileError("not a legacy torch.save file (wrong magic number)")
    if _safe_load(f) != PROTOCOL:
        raise TorchFileError("unsupported torch.save protocol version")
    _safe_load(f)                                          # system info: endianness, type sizes
    storages = {}
    obj = _RestrictedUnpickler(f, storages).load()
    keys = _safe_load(f)
    if not isinstance(keys, list) or set(keys) != set(storages):
        raise TorchFileError("its storage list does not match the tensors")
    for key in keys:
        st = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        size = numel * np.dtype(st.dtype).itemsize
        raw = f.read(size) if 0 <= numel else b""
        if numel != st.numel or len(raw) != size:
            raise TorchFileError(f"storage {key}: truncated or inconsistent size")
        st.data = np.frombuffer(raw, dtype=np.dtype(st.dtype).newbyteorder("<"))
    if not isinstance(obj, dict):
        raise TorchFileError("the file does not hold a dict of tensors")
    out = {}
    for name, value in obj.items():
        if not isinstance(value, _LazyTensor):
            raise TorchFileError(f"entry {name!r} is not a tensor")
        out[name] = value.to_numpy()
    return out
