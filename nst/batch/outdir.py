"""Who wrote each file in OUTDIR: nst replaces only its own, and never follows a link.

OUTDIR's names are the tasks' pictures, manifest.jsonl and contact_sheet.png. A name that holds a
symbolic link, a folder or anything but a regular file is never written through or replaced.
  manifest.jsonl    nst's when its first line is a manifest row (output, digest, status)
  contact_sheet.png nst's when it carries nst's image mark and SHEET_DESCRIPTION (a picture
                    `nst transfer` made carries the mark alone)
  a task's picture  nst's when it carries the mark AND manifest.jsonl records it: the row's sha256
                    is the file's (or, for a row written before the picture was recorded, the row
                    says done). A picture nst made elsewhere (`nst transfer`) and saved under a
                    task's name is the user's: not replaced, its task fails with the reason.
The manifest and contact sheet are checked before the first task (RunRefused), pictures task by
task (nst.batch.results.partition). Rows are appended through O_NOFOLLOW, under OUTDIR's lock
(`locked`: an flock on the folder itself, so no lock file joins the user's names).
"""
import contextlib
import fcntl
import json
import os
import stat
from pathlib import Path

from PIL import Image

from nst.io.assets import link_text, sha256_file
from nst.io.destinations import RunRefused, check_writable, replace_error, why_not_written
from nst.io.image import written_by_nst

MANIFEST = "manifest.jsonl"
SHEET = "contact_sheet.png"
ROW_KEYS = {"output", "digest", "status"}
SHEET_DESCRIPTION = "nst batch contact sheet"      # its EXIF ImageDescription (0x010E)


def kind(path):
    # "missing", "file", "link", "folder" or "other" (a FIFO, a socket, ...), links not followed
    try:
        mode = os.lstat(path).st_mode
    except FileNotFoundError:
        return "missing"
    return ("link" if stat.S_ISLNK(mode) else "file" if stat.S_ISREG(mode)
            else "folder" if stat.S_ISDIR(mode) else "other")


def not_a_file(path, k):
    # what is at `path` in place of a regular file, by its kind(): "link", "folder" or "other"
    return {"link": f"{path} is {link_text(path)}", "folder": f"{path} is a folder",
            "other": f"{path} is not a regular file"}[k]


def is_manifest(path):
    # a regular file whose first line is a manifest row nst wrote
    return manifest_flaw(path) is None


def manifest_flaw(path):
    # -> why `path` is no manifest nst wrote (its first line is no row: a hand edit's typo shows
    # here), or None
    try:
        with open(path, "rb") as f:
            first = f.readline(1 << 20)
    except OSError as e:
        return f"unreadable: {e.strerror}"
    try:
        row = json.loads(first)
    except ValueError:
        row = None
    if not isinstance(row, dict):
        return "it is empty" if not first.strip() else "its first line is not a JSON row"
    missing = sorted(ROW_KEYS - set(row))
    return f"its first line has no {' or '.join(map(json.dumps, missing))}" if missing else None


def is_sheet(path):
    # a contact sheet nst batch wrote: nst's mark and the sheet's description
    try:
        with Image.open(path) as im:
            return written_by_nst(path) and im.getexif().get(0x010E) == SHEET_DESCRIPTION
    except (OSError, ValueError, SyntaxError, Image.DecompressionBombError):
        return False


def check_folder(outdir, option="-o"):
    # OUTDIR (nst batch's -o, nst serve's --outdir) is a folder, or none yet, where the manifest can
    # be written: not a file, not a link that leads nowhere
    out = Path(outdir)                      # os.path's tests: False for a name too long (Path's raise)
    if os.path.islink(out) and not os.path.exists(out):
        raise RunRefused(f"{option} {out}: {link_text(out)}")
    if os.path.exists(out) and not os.path.isdir(out):
        raise RunRefused(f"{option} {out}: exists and is not a folder; give a folder for the pictures")
    check_writable(option, out / MANIFEST, named=out)


def check_own_files(outdir):
    # manifest.jsonl and contact_sheet.png are absent or nst's, and the manifest can be appended to
    check_manifest(outdir)
    check_own(Path(outdir) / SHEET, is_sheet)


def check_manifest(outdir, option="-o"):
    # OUTDIR/manifest.jsonl (nst batch, video, serve) is absent, or nst's and can be appended to
    manifest = Path(outdir) / MANIFEST
    check_own(manifest, is_manifest, option, why=manifest_flaw)
    if kind(manifest) == "file":
        try:
            os.close(open_for_append(manifest, create=False))
        except OSError as e:
            raise RunRefused(f"{option}: cannot write {manifest} ({why_not_written(e)}); make it writable, or choose "
                             f"another {option}") from None


def check_own(path, ours, option="-o", why=None):
    # `path` is absent or a regular file nst wrote (ours(path)): never a link, a folder, another's
    # file; why(path): what tells it from nst's, said in the refusal
    k, move = kind(path), f"nst replaces only its own files: move it away, or choose another {option}"
    if k in ("link", "folder", "other"):
        raise RunRefused(f"{option}: {not_a_file(path, k)}; {move}")
    if k == "file" and not ours(path):
        because = f" ({why(path)})" if why else ""
        raise RunRefused(f"{option}: {path} exists and nst did not write it{because}; {move}")


def open_for_append(path, create=True):
    # a file descriptor to append to `path` (and read its last row's end), never through a symbolic link
    flags = os.O_RDWR | os.O_APPEND | os.O_NOFOLLOW | (os.O_CREAT if create else 0)
    return os.open(path, flags, 0o666)


@contextlib.contextmanager
def locked(outdir):
    # holds OUTDIR's manifest lock, an exclusive flock on the folder itself (its inode outlives every
    # atomic rewrite of the manifest, and no lock file is left among the user's names): one process
    # or thread at a time appends to or rewrites the manifest
    fd = os.open(outdir, os.O_RDONLY | os.O_DIRECTORY | os.O_CLOEXEC)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)
        yield
    finally:
        os.close(fd)


def unreplaceable(path):
    # the reason an existing picture a task would replace cannot be (read-only, chattr +i), or None:
    # found before the task runs, not at its last rename
    error = replace_error(path)
    return f"{path} cannot be replaced ({error}): make it writable or move it away" if error else None


def picture_blocked(path, row):
    # None when `path` may be written (missing, or nst's picture of this task), else the reason
    k = kind(path)
    if k == "missing":
        return None
    why = not_nsts_file(path, k) or not_its_row(path, row)
    return f"{why}: not replaced; move it away to make it" if why else None


def not_nsts_file(path, k):
    # why what is at `path` (kind() k, not "missing") is no file nst wrote: a link (never followed),
    # a folder, another's file; None for nst's. nst video's frames are replaced on this alone
    if k != "file":
        return not_a_file(path, k)
    return None if written_by_nst(path) else f"{path} exists and nst did not write it"


def not_the_picture(path, row):
    # None when the file at `path` is nst's picture of the task `row` (its manifest row, or None),
    # else why not ("PATH changed since nst wrote it"); nst serve's Download serves only the first
    return not_nsts_file(path, "file") or not_its_row(path, row)


def not_its_row(path, row):
    # None when nst's picture at `path` is the one its manifest row records, else why not
    if not row:
        return f"{path} is not in {MANIFEST} (an image you saved there?)"
    if row.get("sha256", None) not in (None, sha256_file(path)):
        return f"{path} changed since nst wrote it"
    if "sha256" not in row and row.get("status") != "done":
        return f"{path} is not in {MANIFEST} as made (an image you saved there?)"
    return None
