"""A batch worked out on the client before anything runs: the input files (folders and globs
expanded), the sweep grid, and one Task per content × style × sweep point.

Each task has a stable, readable output name (`{content}__{style}__sw1e3`) and a digest: sha256
of its inputs' bytes, the weights' bytes and its settings. A rerun skips a task whose picture
exists with the same digest, so changing an input or an option redoes exactly the tasks it touches.
"""
import argparse
import glob
import hashlib
import itertools
import json
import os
import re
import unicodedata
from dataclasses import dataclass
from decimal import Decimal
from pathlib import Path

from nst.io.assets import sha256_file
from nst.io.destinations import RunRefused, check_name_length, check_regular
from nst.io.image import SAVE_FORMATS
from nst.run.checks import check_init_exists, read_init
from nst.library import counted
from nst.run.progress import log
from nst.run.settings import FIELDS, Settings, items

IMAGE_SUFFIXES = sorted(set(SAVE_FORMATS) | {".gif"})
# short tags of swept options in output names; any other option is tagged by its name
TAGS = {"size": "px", "iterations": "it", "scales": "sc", "start_size": "st", "lr": "lr",
        "history": "hist", "content_weight": "cw", "style_weight": "sw", "tv_weight": "tv",
        "style_scale": "ss", "average": "avg", "seed": "seed"}


@dataclass
class Task:
    """One picture: a content in the look of a style, with these settings. The unit of work a
    worker runs; paths are as the user gave them, their bytes travel with the task."""
    key: str              # output name without .png: {content}__{style}[__{tag}{value}...]
    content: str
    styles: tuple
    settings: dict        # Settings.as_dict(), this task's sweep point applied
    sweep: tuple          # ((option, value), ...): this task's sweep point, () without --sweep
    digest: str           # sha256 of input bytes, weights bytes and settings
    init: str = None      # an --init FILE (its bytes travel too)

    @property
    def output(self):
        return self.key + ".png"

    @property
    def files(self):
        # every input file the worker needs, as given
        return [self.content, *self.styles] + ([self.init] if self.init else [])

    def axes(self):
        # [(axis, label)] for the contact sheet: content, style, each swept option
        return [("content", stem(self.content)), ("style", "+".join(stem(s) for s in self.styles))] + \
               [(TAGS.get(k, k), fmt_value(v)) for k, v in self.sweep]


def stem(path):
    # file name without suffix, reduced to characters safe in any file system: letters and digits
    # of any script (Москва, 東京: each its own name, not all "_"), "." "-" "_"; NFC, so a name a Mac
    # decomposed (u + ¨) is the one typed elsewhere
    return re.sub(r"[^\w.-]+", "_", unicodedata.normalize("NFC", Path(path).stem)) or "image"


def fmt_value(v):
    # 512 -> "512", 1000.0 -> "1e3", 0.001 -> "1e-3", 2500.0 -> "2.5e3", 0.5 -> "0.5",
    # 0.0010000001 -> "1.0000001e-3", 1e-320 -> "1e-320": every digit of the shortest repr, so two
    # different values never share a tag; a keyword an option takes instead of a number ("auto") as is
    if isinstance(v, str):
        return v
    if isinstance(v, int) or v == 0:
        return str(int(v))
    d = Decimal(repr(float(v))).normalize()
    sign, digits, exponent = d.as_tuple()
    e = len(digits) - 1 + exponent                       # the leading digit's power of ten
    if abs(e) < 2:
        return format(d, "f")
    mantissa = "".join(map(str, digits))
    return f"{'-' if sign else ''}{mantissa[0]}{'.' + mantissa[1:] if len(mantissa) > 1 else ''}e{e}"


def expand(arguments, what):
    # CONTENT or STYLE arguments -> image paths: a file as given, a folder's or a glob's pictures
    # (pictures_in: sorted, the others skipped and said); the same file twice counts once. A pipe
    # (`<(curl …)`) or a device is refused: its bytes are read more than once (their sha256, the
    # check, the task)
    found = []
    for a in arguments:
        if glob.has_magic(a):
            matches = [p for p in glob.glob(a) if os.path.isfile(p)]
            if not matches:
                raise RunRefused(f"{what} {a}: no files match")
            found += pictures_in(matches, f"{what} {a}")
        elif os.path.isdir(a):
            found += pictures_in([str(p) for p in Path(a).iterdir() if p.is_file() and not p.name.startswith(".")],
                                 f"{what} {a}")
        elif os.path.isfile(a):
            found.append(a)
        else:
            check_regular([(what, a)])                      # a pipe, a device, a link that leads nowhere
            raise RunRefused(f"{what} {a}: no such file or folder")
    seen = set()
    return [p for p in found if not (os.path.realpath(p) in seen or seen.add(os.path.realpath(p)))]


def pictures_in(files, given):
    # a folder's files (hidden ones left out) or a glob's matches -> those named as pictures
    # (IMAGE_SUFFIXES), sorted; the others (a README, notes) skipped, said in one line; none: refused
    pictures = sorted(p for p in files if Path(p).suffix.lower() in IMAGE_SUFFIXES)
    skipped = sorted(Path(p).name for p in files if Path(p).suffix.lower() not in IMAGE_SUFFIXES)
    if not pictures:
        among = f" among its {counted(len(files), 'file')}" if files else ""
        raise RunRefused(f"{given}: no pictures{among} ({' '.join(IMAGE_SUFFIXES)})")
    if skipped:
        what = "pictures by their names" if len(skipped) > 1 else "a picture by its name"
        log(f"nst: {given}: {counted(len(skipped), 'file')} skipped, not {what} ({', '.join(skipped[:3])}"
            f"{', …' if len(skipped) > 3 else ''})")
    return pictures


def numeric_options(parser):
    # -> {dest: action} of the transfer options whose values are numbers: their own type turns
    # their default (or "1") into an int or a float
    found = {}
    for a in parser._actions:
        if a.dest in FIELDS and a.type is not None:
            try:
                value = a.type("1" if a.default is None else str(a.default))
                value = a.type("1") if isinstance(value, str) else value   # "auto" or N (--iterations)
            except (ValueError, TypeError, argparse.ArgumentTypeError):
                continue
            if isinstance(value, (int, float)) and not isinstance(value, bool):
                found[a.dest] = a
    return found


def sweep_type(parser):
    # -> the `type` of --sweep: "style-weight=1e2,1e3" -> ("style_weight", (100.0, 1000.0)), each
    # value parsed by that option's own type; any numeric transfer option may be swept
    def parse(text):
        numeric = numeric_options(parser)
        name, _, values = text.partition("=")
        dest = name.strip().lstrip("-").replace("-", "_")
        if dest not in numeric:
            raise argparse.ArgumentTypeError(
                f"{text!r}: sweep one of {', '.join(sorted(d.replace('_', '-') for d in numeric))} as OPTION=V1,V2,...")
        try:
            parsed = tuple(dict.fromkeys(numeric[dest].type(v) for v in items(values)))
        except (ValueError, argparse.ArgumentTypeError) as e:
            raise argparse.ArgumentTypeError(f"{text!r}: {name} {e}") from None
        if not parsed:
            raise argparse.ArgumentTypeError(f"{text!r}: give the values, e.g. {name}=1e2,1e3")
        return dest, parsed
    return parse


class FileHashes(dict):
    # path -> sha256 of its bytes, each file read once
    def __missing__(self, path):
        try:
            self[path] = sha256_file(path)
        except OSError as e:
            raise RunRefused(f"{path}: cannot read it ({e.strerror})") from None
        return self[path]


def digest_of(shas, settings):
    # sha256 of the input files' hashes (content, styles, init, weights) and the other settings
    text = json.dumps({"files": shas, "settings": settings}, sort_keys=True, default=str)
    return hashlib.sha256(text.encode()).hexdigest()


def inputs(contents, styles, settings):
    # CONTENT and --style arguments -> (content files, style files), checked with --init's file, a
    # picture decoded here (as nst transfer reads and refuses it): before the weights are read
    # (fetched, if missing: nst.batch.command), so a mistyped folder costs no download
    found = expand(contents, "content"), expand(styles, "style")
    check_regular([("--init", settings.init_file)])
    check_init_exists(settings)
    if settings.init_file:
        read_init(settings.init_file)
    return found


def plan(content_files, style_files, settings, sweeps=(), weights_sha=None):
    # -> [Task] for every content × style × sweep point (files: `inputs`; sweeps: [(option, values)],
    # a grid); weights_sha: the --weights file's sha256 (nst.batch.checks.read_weights), None for the default
    init = settings.init_file
    settings = settings.as_dict()
    sha = FileHashes()
    side = {"init": sha[init] if init else settings["init"], "weights": weights_sha}
    points = list(itertools.product(*[[(dest, v) for v in values] for dest, values in sweeps]))
    tasks = []
    for c, s, point in itertools.product(content_files, style_files, points):
        task_settings = Settings.from_dict({**settings, **dict(point)}).as_dict()
        key = "__".join([stem(c), stem(s)] + [f"{TAGS.get(k, k)}{fmt_value(v)}" for k, v in point])
        shas = {"content": sha[c], "styles": [sha[s]], **side}
        digest = digest_of(shas, {k: v for k, v in task_settings.items() if k not in side})
        tasks.append(Task(key, c, (s,), task_settings, point, digest, init))
    check_unique(tasks)
    return tasks


def check_sweeps(sweeps):
    # [(option, values)] from --sweep: each option once (a second --sweep of it would silently win)
    seen = set()
    for dest, _ in sweeps:
        if dest in seen:
            name = dest.replace("_", "-")
            raise RunRefused(f"--sweep {name} is given twice; give all its values in one: --sweep {name}=V1,V2,...")
        seen.add(dest)


def check_unique(tasks):
    # two inputs with the same name in different folders would write the same picture; so would two
    # sweep points with the same tag (fmt_value keeps every digit, so this is a safety net)
    seen = {}
    for t in tasks:
        if t.key in seen and seen[t.key] != (t.content, t.styles, t.sweep):
            other = seen[t.key]
            raise RunRefused(f"{t.content} / {', '.join(t.styles)} and {other[0]} / {', '.join(other[1])} "
                             f"would both be {t.output}: rename one of the inputs")
        seen[t.key] = (t.content, t.styles, t.sweep)


def check_outdir(outdir, tasks):
    # outputs only ever go into OUTDIR (a folder we can write, its own files nst's: checked before
    # the weights, nst.batch.checks.check_destinations): holding no input, every output's name fitting
    out = Path(outdir)
    real = os.path.realpath(out)
    for path in {p for t in tasks for p in t.files + [t.settings["weights"]] if p}:
        if os.path.commonpath([os.path.realpath(path), real]) == real:
            raise RunRefused(f"-o {out}: holds the input {path}; choose a folder for outputs only")
    for t in tasks:
        check_name_length("-o", out / t.output)
    return out
