"""Shared test helpers. The one tolerance rule is nst.tolerance's; the shared fixtures are nst.testing's."""
import os
import signal

import numpy as np
import pytest

from nst.tolerance import ATOL_SCALE, RTOL, mismatch

# pytest run as a shell's background job (`cmd &`) starts with SIGINT ignored, and its children would
# inherit that: the Ctrl-C tests' nst would never see their SIGINT. Python's handler resets on exec.
if signal.getsignal(signal.SIGINT) == signal.SIG_IGN:
    signal.signal(signal.SIGINT, signal.default_int_handler)


def assert_close(a, ref, rtol=RTOL, atol_scale=ATOL_SCALE, what="array"):
    # |a − ref| ≤ atol_scale·max|ref| + rtol·|ref| elementwise; NaN/inf must sit where the reference's do
    message = mismatch(a, ref, rtol, atol_scale, what)
    if message:
        pytest.fail(message)


def no_cpp_compiler():
    # True where cuda-cpu cannot build: no C++ compiler on this machine (its tests skip, saying so)
    from nst.kernels.cuda.host import build
    try:
        build.compiler()
        return False
    except build.HostCompilerMissing:
        return True


@pytest.fixture
def rng():
    return np.random.default_rng(1234)


# The tiny VGG19 (the real 16-layer graph, a few channels per block) lives in nst.testing.
from nst import testing  # noqa: E402
from nst.testing import tiny_params  # noqa: E402


@pytest.fixture
def tiny_weights():
    return tiny_params()


@pytest.fixture
def tiny_weights_h5(tmp_path):
    from nst.weights import keras_h5
    path = tmp_path / "tiny_vgg19.h5"
    keras_h5.write(path, tiny_params(), source="random test weights")
    return path


@pytest.fixture(scope="module")
def weights_file(tmp_path_factory):
    # tiny_weights_h5, written once for a whole test module
    from nst.weights import keras_h5
    path = tmp_path_factory.mktemp("w") / "tiny.h5"
    keras_h5.write(path, tiny_params(), source="random test weights")
    return path


def random_image(rng, h, w):
    return testing.random_image(rng, h, w, np.float32)


@pytest.fixture(scope="module")
def shared_cluster():
    # one in-process Dask worker for a test module (what its tasks call can be monkeypatched): its address
    from distributed import LocalCluster
    with LocalCluster(n_workers=1, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=":0") as cluster:
        yield cluster.scheduler.address


@pytest.fixture
def unreplaceable():
    # make(path): the existing file cannot be replaced: read-only for a user, immutable (chattr +i)
    # for root, who writes any read-only file; skipped where neither is possible
    import shutil
    import subprocess
    made = []

    def make(path):
        if os.geteuid() != 0:
            path.chmod(0o444)
        elif not shutil.which("chattr") or subprocess.run(["chattr", "+i", str(path)], capture_output=True).returncode:
            pytest.skip("root, and no chattr +i here: no file root cannot replace")
        made.append(path)
    yield make
    for path in made:
        if os.geteuid() == 0:
            subprocess.run(["chattr", "-i", str(path)], capture_output=True)
        path.chmod(0o644)


LISTENERS = []          # lists that get the real path of each file Python opens (opened_files)


@pytest.fixture
def opened_files(monkeypatch):
    # -> a list that gets the real path of every file opened during the test: by Python (an audit
    # hook, installed once: hooks stay for the process) and by HDF5 (h5py.File)
    import sys

    import h5py
    if not getattr(opened_files, "hooked", False):
        sys.addaudithook(lambda event, args: [found.append(os.path.realpath(args[0])) for found in LISTENERS]
                         if event == "open" and isinstance(args[0], (str, os.PathLike)) else None)
        opened_files.hooked = True
    found, real = [], h5py.File

    def h5_file(name, *a, **k):
        if isinstance(name, (str, os.PathLike)):
            found.append(os.path.realpath(name))
        return real(name, *a, **k)
    monkeypatch.setattr(h5py, "File", h5_file)
    monkeypatch.setattr(sys.modules[__name__], "LISTENERS", [found])
    return found


@pytest.fixture
def failing_save(monkeypatch):
    # -> fail(name, errno, outdir_refuses=False): from then on saving a picture named `name` fails
    # with that errno; outdir_refuses: the folder then takes no file either (nst.io.assets.probe_write)
    import nst.io.assets
    import nst.io.image
    save, probe = nst.io.image.save_image, nst.io.assets.probe_write

    def fail(name, errno_, outdir_refuses=False):
        def fake_save(image, path, *a, **k):
            if os.path.basename(path) == name:
                raise OSError(errno_, os.strerror(errno_))
            return save(image, path, *a, **k)

        def fake_probe(folder):
            if outdir_refuses:
                raise OSError(errno_, os.strerror(errno_))
            return probe(folder)
        monkeypatch.setattr(nst.io.image, "save_image", fake_save)
        monkeypatch.setattr(nst.io.assets, "probe_write", fake_probe)
    return fail


def assert_pipe_refused(main, argv, what, pipe, capsys):
    # main(argv) with a FIFO as input `what` exits 2 with the one line saying so; it runs in a thread
    # the test stops waiting for after 60 s (a FIFO input waited for a writer forever), so a
    # regression fails instead of hanging
    import threading
    status = []
    run = threading.Thread(target=lambda: status.append(main(argv)), daemon=True)
    run.start()
    run.join(60)
    assert status == [2], f"{argv[0]} waited on the pipe ({what})"
    assert capsys.readouterr().err == (f"nst: error: {what} {pipe}: not a regular file (a pipe or a device); nst "
                                       "reads each input more than once: save it to a file first\n")


def second_run_during(monkeypatch, capsys, module, name, main, argv):
    # -> a list that gets, when module.name is first called (inside a first main(argv)), one tuple:
    # (main(argv)'s status, main(argv + ["--dry-run"])'s, their stderr): a second run started meanwhile
    original, got = getattr(module, name), []

    def meanwhile(*a, **k):
        if not got:                              # the first run's (without a refusal: the second's too)
            capsys.readouterr()
            got.append(None)
            got[0] = (main(argv), main(argv + ["--dry-run"]), capsys.readouterr().err)
        return original(*a, **k)
    monkeypatch.setattr(module, name, meanwhile)
    return got
