"""Every path a run will write, known and checked before the first evaluation.

A run writes -o, its snapshots (--save-every), the checkpoint and the report's files, each
through a short temporary name beside it (nst.io.assets.atomic_path). `plan` lists them;
`check` refuses (RunRefused, one line naming the option) any that is an input, that equals
another destination, that cannot be written, or that exists and is not a file nst wrote (images
carry nst's mark, checkpoints and reports are recognised by their content), so that nothing of
the user's is ever overwritten, -o included (a rerun replaces its own picture), and no run is lost
to a path that fails at the end.
"""
import errno
import json
import os
import zipfile
from pathlib import Path

from nst.io import image
from nst.io.assets import link_text, probe_write, remove_stale_parts, why_not_written
from nst.library import counted

REPORT_FILES = ("losses.png", "strip.png", "settings.json", "losses.json")
NAMED_BY = {"--save-every": "-o", "--report": "--report DIR"}   # the files whose names nst makes, from what
MAX_SNAPSHOTS = 10_000          # --save-every: more files than anyone can look at is a mistake


class RunRefused(Exception):
    """A destination or an option the run cannot use; the message names it and what would do."""


def snapshot_path(out, it):
    # --save-every: OUT_0050.png beside OUT.png
    out = Path(out)
    return out.with_name(f"{out.stem}_{it:04d}{out.suffix}")


def plan(output, total_iterations, save_every=0, checkpoint=None, report=None):
    # -> [(option, Path)] of every file the run writes, -o first
    dests = [("-o", Path(output))]
    if save_every and total_iterations // save_every > MAX_SNAPSHOTS:
        raise RunRefused(f"--save-every {save_every} with {total_iterations} iterations would write "
                         f"{total_iterations // save_every} snapshots; at most {MAX_SNAPSHOTS}: use a larger N")
    if save_every > total_iterations:
        raise RunRefused(f"--save-every {save_every} with {counted(total_iterations, 'iteration')} would write "
                         f"no snapshot: use N ≤ {total_iterations}, or leave --save-every out")
    if save_every:
        dests += [("--save-every", snapshot_path(output, it))
                  for it in range(save_every, total_iterations + 1, save_every)]
    if checkpoint:
        dests.append(("--checkpoint", Path(checkpoint)))
    if report:
        dests += [("--report", Path(report) / name) for name in REPORT_FILES]
    return dests


def exists(path):
    # os.path.exists, also False for a name the file system refuses (too long, ...)
    try:
        os.stat(path)
        return True
    except (OSError, ValueError):
        return False


def check_regular(inputs):
    # inputs: [(what, path)]: none is a symbolic link that leads nowhere (said as such, not "no such
    # file"), and none that exists is a pipe (`<(curl …)`) or a device: nst reads each input more than
    # once (its sha256, its checks, its pixels), and a pipe with no writer is waited on forever.
    # Folders pass (where a command takes one); None and arrays are no files
    for what, path in inputs:
        if not isinstance(path, (str, os.PathLike)):
            continue
        if os.path.islink(path) and not exists(path):
            raise RunRefused(f"{what} {path}: {link_text(path)}")
        if exists(path) and not (os.path.isfile(path) or os.path.isdir(path)):
            raise RunRefused(f"{what} {path}: not a regular file (a pipe or a device); nst reads each input "
                             "more than once: save it to a file first")


def same_file(a, b):
    # one file under two names (hard or symbolic links, relative or absolute paths)?
    if exists(a) and exists(b):
        return os.path.samefile(a, b)
    return os.path.realpath(a) == os.path.realpath(b)


def existing_ancestor(path):
    # the nearest folder above `path` that exists (where the first file or folder gets created)
    p = Path(os.path.abspath(path)).parent
    while not exists(p):
        p = p.parent
    return p


def check_name_length(option, path):
    # each part of the path that does not exist yet fits the file system's name limit
    where = existing_ancestor(path)
    name_max = os.pathconf(where, "PC_NAME_MAX") if where.is_dir() else 255
    for part in Path(os.path.relpath(os.path.abspath(path), where)).parts:
        if len(os.fsencode(part)) > name_max:
            raise RunRefused(f"{option} {path}: the name {part[:20]}… is {len(os.fsencode(part))} bytes, "
                             f"longer than this file system allows ({name_max}); choose a shorter name")


def check_writable(option, path, named=None):
    # one destination: its names fit the file system, its folder can be made and written, and it
    # is not a folder; the test leaves nothing behind. `named`: what a refusal of its folder names,
    # where `path` is a file nst makes for what the user typed (OUTDIR/manifest.jsonl for -o), else `path`
    check_name_length(option, path)
    if path.is_dir():
        if option in NAMED_BY or named:             # a name nst makes: the user cannot give another one
            raise RunRefused(f"{option} {path} is a folder, where nst writes a file: move it or choose "
                             f"another {NAMED_BY.get(option, option)}")
        raise RunRefused(f"{option} {path} is a folder; give a file name")
    check_no_dangling_link(option, path.parent, named or path)
    check_writable_in(option, existing_ancestor(path), named or path)
    check_replaceable(option, path)


def check_writable_folder(option, folder, named=None):
    # a folder nst makes its own files in (made if missing): its name fits, and a file can be made in
    # it, or, not made yet, in the nearest folder above it that exists; `named` as check_writable's
    check_name_length(option, folder)
    folder = Path(folder)
    check_no_dangling_link(option, folder, named or folder)
    check_writable_in(option, folder if exists(folder) else existing_ancestor(folder), named or folder)


def check_no_dangling_link(option, first, named):
    # none of the folders nst would make, `first` and those above it up to one that exists, is a link
    # to nothing: mkdir cannot make it, and the run would fail at its first write, after the work
    p = Path(os.path.abspath(first))
    while not exists(p):
        if os.path.islink(p):
            raise RunRefused(f"{option} {named}: {p} is a link to {os.readlink(p)}, which does not exist; "
                             "make that folder or choose another path")
        p = p.parent


def check_writable_in(option, where, named):
    # a file can be made in the existing folder `where` (RunRefused naming `named` if not); the test
    # leaves nothing behind
    if not where.is_dir():
        raise RunRefused(f"{option} {named}: {where} is a file, not a folder; choose a path in a folder")
    try:
        probe_write(where)
    except OSError as e:                  # /proc answers "No such file or directory" of itself
        why = "files cannot be made there" if e.errno == errno.ENOENT else why_not_written(e)
        raise RunRefused(f"{option} {named}: cannot write in {where} ({why}); "
                         "choose a folder you can write to") from None


def check_replaceable(option, path):
    # an existing file at `path` can be replaced (replace_error), so the run's last rename over it
    # will not fail after all the work: a read-only, immutable or append-only file is refused now
    error = replace_error(path)
    if error:
        raise RunRefused(f"{option} {path} exists and cannot be replaced ({error}); "
                         "make it writable or choose another name")


def replace_error(path):
    # why an existing regular file at `path` cannot be replaced (read-only, chattr +i or +a), or None
    # (also for no file, or a link: the rename replaces the link). Opening it for writing changes
    # nothing (no O_TRUNC; O_NONBLOCK in case it became a FIFO)
    path = Path(path)
    if path.is_symlink() or not path.is_file():
        return None
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_NONBLOCK | os.O_CLOEXEC))
    except OSError as e:
        return why_not_written(e)
    return None


def is_checkpoint(path):
    # a file nst wrote as a checkpoint: an .npz (zip) holding meta.npy
    try:
        with zipfile.ZipFile(path) as z:
            return "meta.npy" in z.namelist()
    except (OSError, zipfile.BadZipFile):
        return False


def report_of_nst(folder):
    # a --report folder nst wrote: its settings.json is nst's (the settings, the inputs, the output)
    try:
        settings = json.loads((Path(folder) / "settings.json").read_text())
        return isinstance(settings, dict) and {"inputs", "output", "style_weight"} <= set(settings)
    except (OSError, ValueError):
        return False


def losses_of_nst(path):
    # a --report losses.json nst wrote: a list of each iteration's terms
    try:
        rows = json.loads(Path(path).read_text())
        return isinstance(rows, list) and all(isinstance(r, dict) for r in rows)
    except (OSError, ValueError):
        return False


def written_by_nst(option, path):
    # may this existing file be replaced? Only the files an earlier nst run wrote: a report's file
    # in a folder whose settings.json is nst's, and itself nst's (a picture by its mark, losses.json
    # by its content)
    if option == "--checkpoint":
        return is_checkpoint(path)
    if option == "--report":
        own = {"settings.json": lambda p: True, "losses.json": losses_of_nst}.get(path.name, image.written_by_nst)
        return report_of_nst(path.parent) and own(path)
    return image.written_by_nst(path)


def not_nsts(option, path):
    # something is at path that nst may not replace (save_image's rule, nst.io.image.not_nsts), with
    # the option's own idea of nst's files
    return image.not_nsts(path, lambda p: written_by_nst(option, Path(p)))


def check_folders(dests):
    # no destination lies in a folder whose name is another destination's file (--report DIR = -o,
    # or a snapshot's name): that file and that folder cannot both be written
    files = {os.path.abspath(p): option for option, p in dests}
    for option, path in dests:
        for folder in Path(os.path.abspath(path)).parents:
            if str(folder) in files:
                what = f"--report {folder}" if option == "--report" else f"{option} {path} lies in {folder}, which"
                raise RunRefused(f"{what} is also the {files[str(folder)]} destination; give them different names")


def check(dests, inputs, resume=None):
    # dests: plan(...); inputs: [(what, path)] every file the run reads. Raises RunRefused.
    for option, path in dests:
        check_name_length(option, path)
    for option, path in dests:
        for what, inp in inputs:
            if inp and same_file(path, inp) and not (option == "--checkpoint" and what == "--resume"):
                raise RunRefused(f"{option} {path} is an input ({what}); nst never overwrites an input: "
                                 "choose another name")
    for i, (option, path) in enumerate(dests):
        for other, path2 in dests[:i]:
            if same_file(path, path2):
                raise RunRefused(f"{option} {path} is also the {other} destination; give them different names")
    check_folders(dests)
    for option, path in dests:
        check_writable(option, path)
    for option, path in dests:
        if not_nsts(option, path):
            raise RunRefused(f"{option} {path} exists and nst did not write it; nst replaces only its own "
                             f"files: move it or choose another name{image.unmarked(path)}")


def clear_stale(dests, log):
    # remove the temporary files that a run killed while writing (kill -9 mid-checkpoint) left in the
    # destinations' folders: hidden, and as large as a checkpoint, one more each time
    for folder in sorted({Path(os.path.abspath(p)).parent for _, p in dests if exists(Path(p).parent)}):
        removed = remove_stale_parts(folder)
        if removed:
            log(f"nst: removed {counted(len(removed), 'temporary file')} ({sum(removed) / 2**20:.1f} MiB) in {folder} "
                "that a killed run left half-written")
