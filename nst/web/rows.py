"""`nst serve`'s gallery rows (manifest.jsonl) back into runs: their inputs, their settings, their
pictures' scores (nst compare)."""
from pathlib import Path

from nst.run.settings import FIELDS, Settings, SettingsError, init_file
from nst.web.uploads import Refused


def inputs_of(row):
    # a row's input files, which must still be there
    files = [row["content"], *row["style"]]
    missing = [f for f in files if not Path(f).is_file()]
    if missing or init_file(row.get("init")):
        raise Refused(409, "its input images are no longer where the run found them")
    return files, {"content": row.get("names", {}).get("content") or Path(files[0]).name,
                   "style": row.get("names", {}).get("style") or [Path(f).name for f in files[1:]]}


def shown_files(row, outdir):
    # a row as the pages get it: its input files and weights named relative to OUTDIR
    # ("uploads/ab12….png"), or by their names when elsewhere: the server's folders stay its own
    def shown(path):
        if not init_file(path):                        # None, a keyword, an array
            return path
        inside = Path(path).is_relative_to(outdir)
        return Path(path).relative_to(outdir).as_posix() if inside else Path(path).name
    settings = dict(row.get("settings") or {})
    for key in {"weights", "init"} & set(settings):
        settings[key] = shown(settings[key])
    return {**row, "content": shown(row.get("content")), "style": [shown(s) for s in row.get("style") or []],
            "init": shown(row.get("init")), "settings": settings}


def settings_of_row(row):
    # a manifest row's settings as a Settings (refused when they no longer validate)
    try:
        return Settings.from_dict({k: v for k, v in row["settings"].items() if k in FIELDS})
    except (SettingsError, TypeError) as e:
        raise Refused(409, f"its settings are no longer valid ({e})") from None


def sha_of(path):
    from nst.io.assets import sha256_file
    return sha256_file(path)


def score(pictures, names, content, style, weights, backend):
    # nst compare's scoring of the pictures (backend "auto" resolved as a run resolves it) ->
    # (scores, its line saying they differ in size or are stretched, or "")
    from nst.compare import score as nst_score, size_note
    from nst.io.image import load_image
    from nst.run.selfcheck import choose_backend
    read, content = [load_image(p) for p in pictures], load_image(content)
    return (nst_score(read, content, str(style), weights=weights, backend=choose_backend(backend)),
            size_note(names, [pic.shape[:2] for pic in read], ("the content", content.shape[:2])))


def unresumable(ckpt, row):
    # -> why nst's checkpoint of a stopped run cannot be resumed (the worker would start the run over,
    # saying so only in its log), or None: damaged, or made for other settings or automatic rules (a
    # newer nst's). A run of nst serve is known by its digest (nst.batch.task) and those rules; its
    # metadata only is read (a large run's optimiser state is not loaded into the server)
    from nst.io import checkpoint
    from nst.run.job import automatic_rules
    saved = checkpoint.saved_identity(ckpt)
    if saved is None:
        return "cannot be read back (damaged or incomplete)"
    diff = checkpoint.differences(saved, {"digest": row["digest"],
                                          "automatic_rules": automatic_rules(settings_of_row(row))})
    if diff == ["automatic_rules"]:
        return "was made by an nst whose automatic rules differ from this one's"
    return f"was made for other settings or inputs ({', '.join(diff)})" if diff else None
