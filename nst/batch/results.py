"""A batch's results in OUTDIR: the pictures, manifest.jsonl and contact_sheet.png.

manifest.jsonl has one JSON row per task: output, inputs, settings, sweep point, digest, status
(done, failed, cancelled), error, final loss terms, iterations, seconds, worker. Rows are appended
as tasks end (a crash keeps them) and the file is rewritten atomically at the end with one row per
task, older rows of tasks not in this batch kept. A picture is written after its row; a picture
whose row is missing or different is made again; a file nst did not write is never replaced.
"""
import json
import os
import time
from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

from nst.io.assets import atomic_path
from nst.io.image import load_image, resize_longest, save_image, written_by_nst

MANIFEST = "manifest.jsonl"
SHEET = "contact_sheet.png"


def read_manifest(outdir):
    # -> {output name: its last row}; a line cut short by a crash is ignored
    rows = {}
    path = Path(outdir) / MANIFEST
    if path.exists():
        for line in path.read_text(encoding="utf-8").splitlines():
            try:
                row = json.loads(line)
                rows[row["output"]] = row
            except (ValueError, KeyError, TypeError):
                continue
    return rows


def partition(tasks, previous, outdir):
    # -> (to run, done before, blocked: {output: reason}) against the manifest and OUTDIR's files;
    # a file nst did not write (no nst mark, nst.io.image.written_by_nst) is never replaced
    todo, done, blocked = [], [], {}
    for t in tasks:
        path = Path(outdir) / t.output
        row, exists = previous.get(t.output), path.exists()
        if exists and not written_by_nst(path):
            blocked[t.output] = f"{path} exists and nst did not write it: not replaced; move it away to make it"
        elif exists and row and row.get("status") == "done" and row.get("digest") == t.digest:
            done.append(t)
        else:
            todo.append(t)
    return todo, done, blocked


def row_of(task, result):
    # the manifest row of a task that ended (result: what run_task returned, minus the image)
    return {"output": task.output, "content": task.content, "style": list(task.styles), "init": task.init,
            "sweep": dict(task.sweep), "settings": task.settings, "digest": task.digest, "status": "failed",
            "error": None, **result, "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}


class Manifest:
    def __init__(self, outdir):
        self.path = Path(outdir) / MANIFEST
        self.previous = read_manifest(outdir)
        self.rows = {}

    def append(self, row):
        self.rows[row["output"]] = row
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.path, "a", encoding="utf-8") as f:
            f.write(json.dumps(row, default=str) + "\n")
            f.flush()
            os.fsync(f.fileno())

    def finish(self, tasks):
        # one row per task: this run's, else the earlier one, else "cancelled" (also a "done" whose
        # picture is missing: stopped between its row and its picture); other tasks' rows kept
        rows = dict(self.previous)
        for t in tasks:
            row = self.rows.get(t.output) or self.previous.get(t.output)
            if not row or (row["status"] == "done" and not (self.path.parent / t.output).exists()):
                row = row_of(t, {"status": "cancelled", "error": "not run, or stopped before its picture was written"})
            rows[t.output] = row
        with atomic_path(self.path) as tmp:
            tmp.write_text("".join(json.dumps(r, default=str) + "\n" for r in rows.values()), encoding="utf-8")
        return rows


def sheet_layout(tasks):
    # -> (row labels, column labels, {output: (row, col)}): the last axis that varies across the
    # batch runs across (styles, or a swept option), the other varying axes down
    axes = [t.axes() for t in tasks]
    varying = [i for i in range(len(axes[0])) if len({a[i][1] for a in axes}) > 1] or [0]
    across, down = varying[-1], varying[:-1]
    row_key = lambda a: " ".join(f"{a[i][1]}" if a[i][0] in ("content", "style") else f"{a[i][0]} {a[i][1]}"
                                 for i in down) or a[0][1]
    col_key = lambda a: a[across][1] if a[across][0] in ("content", "style") else f"{a[across][0]} {a[across][1]}"
    rows = list(dict.fromkeys(row_key(a) for a in axes))
    cols = list(dict.fromkeys(col_key(a) for a in axes))
    return rows, cols, {t.output: (rows.index(row_key(a)), cols.index(col_key(a))) for t, a in zip(tasks, axes)}


def contact_sheet(outdir, tasks, status, cell=192, label_w=160, label_h=24):
    # every task's picture as a thumbnail in a grid with labels; a failed or missing one is grey
    rows, cols, where = sheet_layout(tasks)
    sheet = Image.new("RGB", (label_w + cell * len(cols), label_h + cell * len(rows)), (255, 255, 255))
    draw = ImageDraw.Draw(sheet)
    for j, c in enumerate(cols):
        draw.text((label_w + j * cell + 4, 6), c[: cell // 7], fill=(0, 0, 0))
    for i, r in enumerate(rows):
        draw.text((4, label_h + i * cell + cell // 2 - 6), r[: label_w // 7], fill=(0, 0, 0))
    for t in tasks:
        i, j = where[t.output]
        x, y = label_w + j * cell, label_h + i * cell
        path = Path(outdir) / t.output
        if status.get(t.output) == "done" and path.exists():
            thumb = Image.fromarray(np.rint(resize_longest(load_image(path), cell - 4)).astype(np.uint8))
            sheet.paste(thumb, (x + (cell - thumb.width) // 2, y + (cell - thumb.height) // 2))
        else:
            draw.rectangle((x + 2, y + 2, x + cell - 3, y + cell - 3), fill=(200, 200, 200))
            draw.text((x + 8, y + cell // 2 - 6), status.get(t.output, "missing"), fill=(120, 0, 0))
    return save_image(np.asarray(sheet, np.float32), Path(outdir) / SHEET)
