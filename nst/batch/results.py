"""A batch's results in OUTDIR: the pictures, manifest.jsonl and contact_sheet.png.

manifest.jsonl has one JSON row per task: output, inputs, settings, sweep point, digest, status
(done, failed, cancelled), error, final loss terms, iterations, seconds, worker. Rows are appended
as tasks end (a crash keeps them) and the file is rewritten atomically at the end with one row per
task, the rows of tasks not in this batch kept as the file holds them then. Several processes may
share OUTDIR (two batches, `nst serve` and a batch): each append and each rewrite holds OUTDIR's
manifest lock (nst.batch.outdir.locked), and a rewrite reads the file afresh under it, so no
process's rows are lost. A picture is written after its row, and its
sha256 joins the row; a picture whose row is different is made again; a file nst did not write is
never replaced (nst.batch.outdir says which are nst's). The contact sheet's cells fit the
pictures (their --size and aspect: a column as wide as its widest, a row as tall as its
tallest), up to SHEET_MAX_CELL long and no narrower than SHEET_LABELLED_CELL (a column's label
still fits); the sheet is at most SHEET_MAX_SIDE pixels a side: thumbnails shrink to fit, down to SHEET_MIN_CELL,
then the sheet shows the first rows and columns that fit and says how many it left out.
"""
import itertools
import json
import os
import time
from pathlib import Path

from PIL import Image, ImageDraw

from nst.io.assets import atomic_path, sha256_file
from nst.io.destinations import why_not_written
from nst.io.image import MARK, longest_shape
from nst.io.report import fitted, font

from .outdir import (MANIFEST, SHEET, SHEET_DESCRIPTION, kind, locked, open_for_append, picture_blocked,
                     unreplaceable)

SHEET_MAX_SIDE = 4096          # pixels: 48 MiB as RGB at most, whatever the grid
SHEET_MAX_CELL = 192           # a cell's longest side at most: larger pictures are shown shrunk
SHEET_LABELLED_CELL = 88       # a cell's width at least while the grid fits: 80 px of label, 13 letters
SHEET_MIN_CELL = 32            # thumbnails no smaller than this; beyond, the sheet shows a part
CELL_MARGIN = 4                # pixels around a thumbnail in its cell
LABEL_PX = 12                  # the labels' font size


def read_manifest(outdir):
    # -> {output name: its last row}; a line cut short by a crash is ignored
    rows = {}
    path = Path(outdir) / MANIFEST
    if kind(path) == "file":                    # nst.batch.outdir.check_own_files: nst's manifest
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                rows[row["output"]] = with_absolute_inputs(row, path.parent)
            except (ValueError, KeyError, TypeError, AttributeError):
                continue
    return rows


def with_absolute_inputs(row, outdir):
    # the row with absolute input paths (rows store them so since; an older row's relative ones, as
    # typed where its batch ran, are taken from OUTDIR's parent when the file is there: the usual
    # `nst batch in/x.jpg -o out`), so a reader in any working directory finds them
    base = Path(os.path.abspath(outdir)).parent
    found = {k: absolute_input(row[k], base) for k in ("content", "init") if row.get(k)}
    if isinstance(row.get("style"), list):
        found["style"] = [absolute_input(s, base) for s in row["style"]]
    return {**row, **found}


def absolute_input(p, base):
    # a row's input path `p` -> base/p when p is relative and that file is there, else p as it is
    return str(base / p) if isinstance(p, str) and not os.path.isabs(p) and (base / p).is_file() else p


def append_row(path, row):
    # one JSON line appended to the manifest at `path` and fsynced (a crash keeps it), never
    # through a symbolic link (nst.batch.outdir.open_for_append), under OUTDIR's manifest lock
    path.parent.mkdir(parents=True, exist_ok=True)
    with locked(path.parent), os.fdopen(open_for_append(path), "a", encoding="utf-8") as f:
        f.write(("" if ends_a_line(f.fileno()) else "\n") + json.dumps(row, default=str) + "\n")
        f.flush()
        os.fsync(f.fileno())


def ends_a_line(fd):
    # the file open at fd (read and append) is empty or ends in a newline; not after a crash cut its
    # last row short, whose rest the next row must not join (read_manifest would lose that row too)
    size = os.fstat(fd).st_size
    return size == 0 or os.pread(fd, 1, size - 1) == b"\n"


def partition(tasks, previous, outdir):
    # -> (to run, done before, blocked: {output: reason}) against the manifest and OUTDIR's files;
    # a file that is not nst's picture of that task (nst.batch.outdir.picture_blocked) is never replaced;
    # one that cannot be replaced (read-only) blocks its task before it runs
    todo, done, blocked = [], [], {}
    for t in tasks:
        path = Path(outdir) / t.output
        row = previous.get(t.output)
        reason = picture_blocked(path, row)
        if not reason and kind(path) == "file" and row.get("status") == "done" and row.get("digest") == t.digest:
            done.append(t)
            continue
        reason = reason or unreplaceable(path)
        if reason:
            blocked[t.output] = reason
        else:
            todo.append(t)
    return todo, done, blocked


def row_of(task, result):
    # the manifest row of a task that ended (result: what run_task returned, minus the image); its
    # input paths absolute, so `nst serve` in another working directory finds them
    return {"output": task.output, "content": os.path.abspath(task.content),
            "style": [os.path.abspath(s) for s in task.styles], "init": task.init and os.path.abspath(task.init),
            "sweep": dict(task.sweep), "settings": task.settings, "digest": task.digest, "status": "failed",
            "error": None, **result, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class Manifest:
    def __init__(self, outdir):
        self.path = Path(outdir) / MANIFEST
        self.previous = read_manifest(outdir)
        self.rows = {}
        self.unwritable = None      # why appending failed (disk full): rows then wait for finish()

    def append(self, row):
        self.rows[row["output"]] = row
        if self.unwritable:
            return
        try:
            append_row(self.path, row)
        except OSError as e:
            self.unwritable = why_not_written(e)

    def record_picture(self, output):
        # the picture nst just wrote: its sha256 in its row tells it from any other file later
        self.rows[output] = {**self.rows[output], "sha256": sha256_file(self.path.parent / output)}

    def finish(self, tasks):
        # -> every row: the manifest read afresh under the lock (other processes' rows as they are
        # now), with one row per task of ours (final_row), rewritten atomically
        with locked(self.path.parent):
            rows = read_manifest(self.path.parent)
            for t in tasks:
                rows[t.output] = self.final_row(t, rows.get(t.output))
            with atomic_path(self.path) as tmp:
                tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows.values()), encoding="utf-8")
        return rows

    def final_row(self, task, now):
        # this run's row, else the manifest's now (`now`), else "cancelled" (also a "done" whose
        # picture is missing: stopped between its row and its picture)
        row = self.rows.get(task.output) or now
        picture = self.path.parent / task.output
        if not row or (row["status"] == "done" and not picture.exists()):
            row = row_of(task, {"status": "cancelled", "error": "not run, or stopped before its picture was written"})
        earlier = self.previous.get(task.output) or {}
        if "sha256" not in row and earlier.get("sha256") and kind(picture) == "file" \
                and sha256_file(picture) == earlier["sha256"]:
            row = {**row, "sha256": earlier["sha256"]}       # nst's earlier picture is still there
        return row


def sheet_layout(tasks):
    # -> (row labels, column labels, {output: (row, col)}): the last axis that varies across the
    # batch runs across (styles, or a swept option), the other varying axes down; the contents
    # alone varying (a folder of photos, one style) run down, a column under the style, not a
    # diagonal of a contents × contents grid
    axes = [t.axes() for t in tasks]
    varying = [i for i in range(len(axes[0])) if len({a[i][1] for a in axes}) > 1] or [0]
    across, down = (1, [0]) if varying == [0] else (varying[-1], varying[:-1])
    row_key = lambda a: " ".join(f"{a[i][1]}" if a[i][0] in ("content", "style") else f"{a[i][0]} {a[i][1]}"
                                 for i in down) or a[0][1]
    col_key = lambda a: a[across][1] if a[across][0] in ("content", "style") else f"{a[across][0]} {a[across][1]}"
    rows = list(dict.fromkeys(row_key(a) for a in axes))
    cols = list(dict.fromkeys(col_key(a) for a in axes))
    return rows, cols, {t.output: (rows.index(row_key(a)), cols.index(col_key(a))) for t, a in zip(tasks, axes)}


def largest_side(tasks):
    # -> the longest side of the largest picture the tasks make (their --size, swept or not)
    return max(t.settings["size"] for t in tasks)


def sheet_geometry(n_rows, n_cols, side, shapes=None, label_w=160, label_h=24):
    # -> ([column width px], [row height px]) of the columns and rows shown: each cell holds its
    # pictures whole (shapes: {(row, col): (H, W)} of those known, longest side `side`; a row or
    # column with none: square), a column as wide as its widest picture and a row as tall as its
    # tallest (landscape rows are short, portrait columns narrow: square cells left gaps), up to
    # SHEET_MAX_CELL long and no narrower than SHEET_LABELLED_CELL (its label); shrunk so the
    # sheet is ≤ SHEET_MAX_SIDE a side, down to SHEET_MIN_CELL, then the first that fit
    down, across = SHEET_MAX_SIDE - label_h, SHEET_MAX_SIDE - label_w        # pixels for the thumbnails
    thumb = min(side, SHEET_MAX_CELL - CELL_MARGIN)
    thumbs = {rc: longest_shape(hw, thumb) for rc, hw in (shapes or {}).items()}
    widths = [max(SHEET_LABELLED_CELL, CELL_MARGIN + max((w for (_, j), (_, w) in thumbs.items() if j == col),
                                                         default=thumb)) for col in range(n_cols)]
    heights = [max(SHEET_MIN_CELL, CELL_MARGIN + max((h for (i, _), (h, _) in thumbs.items() if i == row),
                                                     default=thumb)) for row in range(n_rows)]
    shrink = min(1, down / max(sum(heights), 1), across / max(sum(widths), 1))
    return fitting([max(SHEET_MIN_CELL, int(w * shrink)) for w in widths], across), \
        fitting([max(SHEET_MIN_CELL, int(h * shrink)) for h in heights], down)


def fitting(sides, room):
    # -> the first of `sides` (px) whose sum is ≤ room
    ends = itertools.accumulate(sides)
    return [s for s, end in zip(sides, ends) if end <= room]


def planned_shapes(tasks, content_shapes, where):
    # -> {(row, col): (H, W)} of the pictures the tasks will make (where: sheet_layout's cells), from
    # their contents' {path: (H, W)} (those known)
    shape = lambda t: content_shapes[t.content]                             # noqa: E731
    return {where[t.output]: longest_shape(shape(t), t.settings["size"] or max(shape(t)))
            for t in tasks if t.content in content_shapes}


def made_shapes(outdir, tasks, status, where):
    # -> {(row, col): (H, W)} of the pictures made (their headers, nothing decoded)
    shapes = {}
    for t in tasks:
        path = Path(outdir) / t.output
        if status.get(t.output) == "done" and kind(path) == "file":
            with Image.open(path) as im:
                shapes[where[t.output]] = im.size[::-1]
    return shapes


def sheet_memory(tasks, content_shapes=None, label_w=160, label_h=24):
    # -> "W×H px, about X" : the sheet's pixels and one decoded picture (content_shapes: {path: (H, W)})
    rows, cols, where = sheet_layout(tasks)
    size = largest_side(tasks)
    widths, heights = sheet_geometry(len(rows), len(cols), size, planned_shapes(tasks, content_shapes or {}, where),
                                     label_w, label_h)
    w, h = label_w + sum(widths), label_h + sum(heights)
    need = 2 * w * h * 3 + size * size * 4 * 2          # the sheet and its PNG encoding, one picture
    shown = "" if (len(heights), len(widths)) == (len(rows), len(cols)) else \
        f", showing {len(heights)} of {len(rows)} rows × {len(widths)} of {len(cols)} columns"
    return f"{w}×{h} px{shown}, about {need / 2**20:.0f} MiB"


def draw_label(draw, xy, text, width):
    # text at xy (its top left), cut to `width` px, in a font that has its script (東京, Ελλάδα)
    label_font = font(LABEL_PX, text)
    draw.text(xy, fitted(text, label_font, width), fill=(0, 0, 0), font=label_font)


def contact_sheet(outdir, tasks, status, log=None, label_w=160, label_h=24):
    # every task's picture as a thumbnail in a grid with labels; a failed or missing one is grey.
    # At most SHEET_MAX_SIDE a side (sheet_geometry); written with nst's mark, atomically
    rows, cols, where = sheet_layout(tasks)
    widths, heights = sheet_geometry(len(rows), len(cols), largest_side(tasks),
                                     made_shapes(outdir, tasks, status, where), label_w, label_h)
    if (len(heights), len(widths)) != (len(rows), len(cols)) and log:
        log(f"nst batch: the contact sheet shows the first {len(heights)} of {len(rows)} rows and {len(widths)} of "
            f"{len(cols)} columns (at most {SHEET_MAX_SIDE} px a side)")
    xs = [label_w + x for x in itertools.accumulate(widths, initial=0)]       # each column's left edge
    ys = [label_h + y for y in itertools.accumulate(heights, initial=0)]      # each row's top edge
    sheet = Image.new("RGB", (xs[-1], ys[-1]), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, c in enumerate(cols[:len(widths)]):
        draw_label(draw, (xs[j] + 4, 6), c, widths[j] - 8)
    for i, r in enumerate(rows[:len(heights)]):
        draw_label(draw, (4, ys[i] + heights[i] // 2 - 6), r, label_w - 8)
    for t in tasks:
        i, j = where[t.output]
        if i >= len(heights) or j >= len(widths):
            continue
        (x, y), cell_w, cell_h = (xs[j], ys[i]), widths[j], heights[i]
        path = Path(outdir) / t.output
        if status.get(t.output) == "done" and kind(path) == "file":
            with Image.open(path) as im:
                im.thumbnail((cell_w - CELL_MARGIN, cell_h - CELL_MARGIN), Image.LANCZOS)
                thumb = im.convert("RGB")
            sheet.paste(thumb, (x + (cell_w - thumb.width) // 2, y + (cell_h - thumb.height) // 2))
        else:
            draw.rectangle((x + 2, y + 2, x + cell_w - 3, y + cell_h - 3), fill=(200, 200, 200))
            draw.text((x + 8, y + cell_h // 2 - 6), status.get(t.output, "missing"), fill=(120, 0, 0))
    path = Path(outdir) / SHEET
    exif = Image.Exif()
    exif[0x0131] = MARK                                  # nst's mark (nst.image.written_by_nst)
    exif[0x010E] = SHEET_DESCRIPTION                     # and the sheet's (nst.batch.outdir.is_sheet)
    with atomic_path(path) as tmp:
        sheet.save(tmp, format="PNG", exif=exif.tobytes())
    return path
