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


class UnsafePickle(ValueError):
    """The file asks for a global that a plain tensor file never needs."""


class _Storage:
    def __init__(self, dtype, key, numel):
        self.dtype, self.key, self.numel, self.data = dtype, key, numel, None


class _LazyTensor:
    # A tensor view of a storage, resolved to a numpy array once the storage bytes are read.
    def __init__(self, storage, offset, size, stride):
        self.storage, self.offset, self.size, self.stride = storage, offset, tuple(size), tuple(stride)

    def to_numpy(self):
        base = self.storage.data
        itemsize = base.itemsize
        view = np.lib.stride_tricks.as_strided(
            base[self.offset:], shape=self.size, strides=[s * itemsize for s in self.stride])
        return np.array(view)          # own the memory, C-contiguous


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


def load_tensors(data: bytes) -> dict:
    # bytes of a legacy torch.save file of {name: tensor} -> {name: numpy array}
    f = io.BytesIO(data)
    if _safe_load(f) != MAGIC:
        raise ValueError("not a legacy torch.save file (wrong magic number)")
    if _safe_load(f) != PROTOCOL:
        raise ValueError("unsupported torch.save protocol version")
    _safe_load(f)                                          # system info: endianness, type sizes
    storages = {}
    obj = _RestrictedUnpickler(f, storages).load()
    keys = _safe_load(f)
    for key in keys:
        st = storages[key]
        (numel,) = struct.unpack("<q", f.read(8))
        raw = f.read(numel * np.dtype(st.dtype).itemsize)
        if numel != st.numel or len(raw) != numel * np.dtype(st.dtype).itemsize:
            raise ValueError(f"storage {key}: truncated or inconsistent size")
        st.data = np.frombuffer(raw, dtype=np.dtype(st.dtype).newbyteorder("<"))
    if not isinstance(obj, dict):
        raise ValueError("the file does not hold a dict of tensors")
    out = {}
    for name, value in obj.items():
        if not isinstance(value, _LazyTensor):
            raise ValueError(f"entry {name!r} is not a tensor")
        out[name] = value.to_numpy()
    return out
