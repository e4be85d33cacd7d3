"""The `nst` command end to end on tiny images with the tiny random-weight VGG19."""
import subprocess
import sys

import numpy as np
import pytest
from PIL import Image

from nst.cli import main
from nst.io.image import load_image


@pytest.fixture
def images(tmp_path, rng):
    paths = {}
    for name, shape in (("content.png", (30, 40, 3)), ("style.jpg", (36, 28, 3))):
        paths[name.split(".")[0]] = tmp_path / name
        Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(paths[name.split(".")[0]])
    return paths


def cli(argv):
    # main(argv)'s exit status, also when argparse refuses an option (SystemExit)
    try:
        return main(argv)
    except SystemExit as e:
        return e.code


def transfer(images, weights, *extra):
    return cli(["transfer", str(images["content"]), str(images["style"]), "--weights", str(weights),
                 "--backend", "numpy", "--iterations", "4", "--size", "32", *extra])


def one_line_error(capsys, *needles):
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err.startswith("nst: error: "), err
    for n in needles:
        assert n in err, err


def test_transfer_writes_output(images, tiny_weights_h5, tmp_path, capsys):
    out = tmp_path / "out.png"
    assert transfer(images, tiny_weights_h5, "-o", str(out), "--save-every", "2") == 0
    assert load_image(out).shape == (24, 32, 3)                 # longest side 32, aspect kept
    assert (tmp_path / "out_0002.png").exists() and (tmp_path / "out_0004.png").exists()
    assert "4/4" in capsys.readouterr().err                      # the progress bar


def test_the_progress_bar_says_the_auto_schedule_s_total_is_at_most(images, tiny_weights_h5, tmp_path, capsys):
    # --iterations auto: a scale may end before its cap (nst.run.schedule), so the bar's total and
    # ETA are at most, as the live page says ("37 / at most 114"); it said "3/70"
    out = tmp_path / "out.png"
    assert transfer(images, tiny_weights_h5, "-o", str(out), "--iterations", "auto", "--scales", "1") == 0
    bars = [line for line in capsys.readouterr().err.splitlines() if line.startswith("[")]
    assert bars and all("/at most 70 " in b and ("| ETA at most " in b or b.endswith("| ETA -")) for b in bars)


@pytest.mark.parametrize("options", [["--optimizer", "adam", "--init", "random", "--seed", "3"],
                                     ["--optimizer", "gd", "--lr", "1e-6", "--init", "style"],
                                     ["--content-layers", "conv4_2", "--style-layers", "conv1_1,conv2_1",
                                      "--style-layer-weights", "0.3,0.7", "--pooling", "avg"]])
def test_transfer_options(images, tiny_weights_h5, tmp_path, options):
    out = tmp_path / "o.jpg"
    assert transfer(images, tiny_weights_h5, "-o", str(out), *options) == 0
    assert load_image(out).shape == (24, 32, 3)


# each option alone, and what it differs from: the default run's picture, or the run of `against`
# (a run with the option read but not passed on, e.g. --pooling parsed and the default used, passed
# the test above, which checks that the run finishes)
ONE_OPTION = [(["--optimizer", "adam"], []), (["--optimizer", "gd", "--lr", "1e-3"], []),
              (["--optimizer", "adam", "--lr", "1"], ["--optimizer", "adam"]), (["--history", "1"], []),
              (["--content-weight", "100"], []), (["--style-weight", "1"], []), (["--tv-weight", "10"], []),
              (["--content-layers", "conv2_2"], []), (["--style-layers", "conv1_1,conv2_1"], []),
              (["--style-layer-weights", "5,0,0,0,1"], []), (["--style-scale", "2"], []),
              (["--keep-colors", "luminance"], []), (["--pooling", "avg"], []), (["--average", "0.9"], []),
              (["--init", "content"], []), (["--init", "style"], []), (["--init", "random"], []),
              (["--init", "random", "--seed", "3"], ["--init", "random"]), (["--scales", "2"], []),
              (["--scales", "2", "--start-size", "24"], ["--scales", "2"])]


@pytest.mark.parametrize("option, against", ONE_OPTION, ids=[" ".join(o) for o, _ in ONE_OPTION])
def test_each_transfer_option_changes_the_picture(images, tiny_weights_h5, tmp_path, option, against):
    pictures = []
    for extra in (against, option):
        out = tmp_path / f"{len(pictures)}.png"
        assert transfer(images, tiny_weights_h5, "-o", str(out), "--bits", "16", *extra) == 0
        pictures.append(load_image(out))
    assert np.abs(pictures[1] - pictures[0]).max() > 0.05, "the option changed nothing"     # 16 bits: 1/257 a step


@pytest.mark.parametrize("shape, size, warned", [((3, 4, 3), 32, True), ((1, 1, 3), 32, True),
                                                 ((8, 6, 3), 32, False),     # 4×: a thumbnail-sized photo
                                                 ((30, 40, 3), 32, False)])  # downscaled
def test_a_tiny_content_upscaled_a_lot_is_said_once(tmp_path, tiny_weights_h5, rng, capsys, shape, size, warned):
    # a thumbnail given by mistake was enlarged to --size without a word
    images = {"content": tmp_path / "c.png", "style": tmp_path / "s.png"}
    Image.fromarray(rng.integers(0, 256, shape, dtype=np.uint8)).save(images["content"])
    Image.fromarray(rng.integers(0, 256, (36, 28, 3), dtype=np.uint8)).save(images["style"])
    assert transfer(images, tiny_weights_h5, "-o", str(tmp_path / "o.png"), "--size", str(size), "--dry-run") == 0
    lines = [line for line in capsys.readouterr().err.splitlines() if "upscaled" in line]
    h, w = shape[:2]
    assert lines == ([f"nst: warning: the content is {w}×{h} px, upscaled {size / max(h, w):g}× to "
                      f"{size}×{round(size * h / w)} px by --size {size}: is it the picture you meant?"]
                     if warned else [])


def test_a_library_job_says_the_upscale_on_the_nst_logger(tiny_weights_h5, rng, caplog):
    # nst.run.job.Job's default log: the "nst" logger, as the library's other messages
    import logging
    from nst.run.job import Job
    from nst.run.settings import Settings
    tiny = rng.integers(0, 256, (3, 4, 3)).astype(np.float32)
    with caplog.at_level(logging.INFO, logger="nst"):
        Job(tiny, [tiny], Settings(size=32, weights=str(tiny_weights_h5), backend="numpy")).prepare()
    assert [r.getMessage() for r in caplog.records if "upscaled" in r.getMessage()] == [
        "nst: warning: the content is 4×3 px, upscaled 8× to 32×24 px by --size 32: is it the picture you meant?"]


def test_never_overwrites_an_input(images, tiny_weights_h5, capsys):
    before = images["content"].read_bytes()
    assert transfer(images, tiny_weights_h5, "-o", str(images["content"])) == 2
    one_line_error(capsys, "-o", "is an input (content)", "choose another name")
    assert images["content"].read_bytes() == before


@pytest.mark.parametrize("change, needles", [
    (lambda i, t: i.update(content=t / "missing.png"), ["missing.png", "no such file"]),
    (lambda i, t: ((t / "text.png").write_text("hi"), i.update(style=t / "text.png")), ["text.png", "not an image"]),
])
def test_bad_inputs(images, tiny_weights_h5, tmp_path, capsys, change, needles):
    change(images, tmp_path)
    assert transfer(images, tiny_weights_h5, "-o", str(tmp_path / "o.png")) == 2
    one_line_error(capsys, *needles)
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("extra, needle", [(["--size", "0"], "--size: must be a whole number from 16 to 16384"),
                                           (["--size", "999999"], "from 16 to 16384, got '999999'"),
                                           (["--content-layers", "conv7_1"], "unknown layer 'conv7_1'"),
                                           (["--style-layers", "conv1_1,conv1_1"],          # counted twice in J
                                            "--style-layers: block1_conv1 is given twice: give each layer once"),
                                           (["--style-layers", "conv1_1,block1_conv1"],
                                            "--style-layers: block1_conv1 is given as 'conv1_1' and 'block1_conv1'"),
                                           (["--content-layers", "relu4_2,conv4_2"],
                                            "--content-layers: block4_conv2 is given as 'relu4_2' and 'conv4_2'")])
def test_bad_options(images, tiny_weights_h5, tmp_path, capsys, extra, needle):
    assert transfer(images, tiny_weights_h5, "-o", str(tmp_path / "o.png"), *extra) == 2
    one_line_error(capsys, needle)


@pytest.mark.parametrize("option, value, item", [("--style-layers", "conv1_1,,conv2_1", 2),
                                                 ("--content-layers", "conv4_2,", 2),
                                                 ("--style-layer-weights", "1,2,,3,4", 3),
                                                 ("--style-blend", ",1", 1)])
def test_an_empty_item_in_a_list_is_refused(images, tiny_weights_h5, tmp_path, capsys, option, value, item):
    # "a,,b" or "a,": the user meant something there; it was dropped without a word
    assert transfer(images, tiny_weights_h5, "-o", str(tmp_path / "o.png"), f"{option}={value}") == 2
    one_line_error(capsys, f"{option}: item {item} is empty")
    assert not (tmp_path / "o.png").exists()


@pytest.mark.parametrize("field, value", [("style_layers", "conv1_1,,conv2_1"), ("style_blend", "1,2,")])
def test_the_api_refuses_an_empty_item_naming_the_option(field, value):
    from nst.run.settings import Settings, SettingsError
    with pytest.raises(SettingsError, match=f"^--{field.replace('_', '-')}: item [23] is empty$"):
        Settings(**{field: value})


@pytest.mark.parametrize("command", ["transfer", "batch"])
def test_checkpoint_every_needs_where_to_save(images, tiny_weights_h5, tmp_path, capsys, command):
    # --checkpoint-every alone would save nothing (it was silently ignored): refused, nothing made
    out, where = tmp_path / "out", {"transfer": "--checkpoint", "batch": "--checkpoint-dir"}[command]
    common = ["--weights", str(tiny_weights_h5), "--backend", "numpy", "--iterations", "2", "--size", "32",
              "-o", str(out), "--checkpoint-every", "1"]
    inputs = [str(images["content"]), *(["--style"] if command == "batch" else []), str(images["style"])]
    assert cli([command, *inputs, *common]) == 2
    one_line_error(capsys, f"--checkpoint-every 1 without {where}: nothing would be saved")
    assert not out.exists()


@pytest.mark.parametrize("optimizer", ["adam", "gd"])
def test_history_with_another_optimizer_is_refused(images, tiny_weights_h5, tmp_path, capsys, optimizer):
    # --history is L-BFGS's: with adam or gd it was silently ignored; refused in one line, nothing made
    # (the default, as the web page sends it, is taken with any optimiser)
    out = tmp_path / "o.png"
    assert transfer(images, tiny_weights_h5, "-o", str(out), "--optimizer", optimizer, "--history", "5") == 2
    one_line_error(capsys, f"--history 5 applies to --optimizer lbfgs only (the steps L-BFGS keeps), not {optimizer}")
    assert not out.exists()
    assert transfer(images, tiny_weights_h5, "-o", str(out), "--optimizer", optimizer, "--history", "20",
                    "--dry-run") == 0


def test_checkpoint_every_with_checkpoint_saves(images, tiny_weights_h5, tmp_path, monkeypatch):
    # one checkpoint after each of the 4 iterations, then the finished run's (that last one alone
    # made the file exist: a --checkpoint-every the run ignored passed)
    from nst.io import checkpoint
    ckpt, saved_at, save = tmp_path / "run.npz", [], checkpoint.save
    monkeypatch.setattr(checkpoint, "save", lambda path, run, *a: saved_at.append(len(run.history))
                        or save(path, run, *a))
    assert transfer(images, tiny_weights_h5, "-o", str(tmp_path / "o.png"), "--checkpoint", str(ckpt),
                    "--checkpoint-every", "1") == 0
    assert ckpt.exists() and saved_at == [1, 2, 3, 4, 4], saved_at


@pytest.mark.parametrize("extra, needle", [
    (["--style-blend", "-1,2"], "expected one argument; a value starting with '-' is written --style-blend=-1,2"),
    (["--lr", "-1e3"], "a value starting with '-' is written --lr=-1e3"),
    (["--style-blend=-1,2"], "--style-blend: must be comma-separated finite numbers ≥ 0"),   # then refused
    (["--lr"], "argument --lr: expected one argument (see"),                                 # no value: no hint
])
def test_a_value_starting_with_a_dash_says_how_to_give_it(images, tiny_weights_h5, tmp_path, capsys, extra, needle):
    # argparse reads `-1,2` as an option: the error says to write --style-blend=-1,2
    assert transfer(images, tiny_weights_h5, "-o", str(tmp_path / "o.png"), *extra) == 2
    one_line_error(capsys, needle)


@pytest.mark.parametrize("argv, line", [
    (["transfer", "c.png", "s.png", "-o", "o.png", "--sizee", "64"],       # was: (see `nst --help`), no hint
     "unrecognized arguments: --sizee 64; did you mean --size? (see `nst transfer --help`)"),
    (["batch", "in/", "--style", "s.png", "-o", "out", "--stlye-weight=3"],
     "unrecognized arguments: --stlye-weight=3; did you mean --style-weight? (see `nst batch --help`)"),
    (["weights", "info", "--wieghts", "w.h5"],
     "unrecognized arguments: --wieghts w.h5; did you mean --weights? (see `nst weights info --help`)"),
    (["transfer", "c.png", "s.png", "-o", "o.png", "--zzz"],
     "unrecognized arguments: --zzz (see `nst transfer --help`)"),
    (["weights"], "the following arguments are required: {fetch,info} (see `nst weights --help`)"),   # was: action
])
def test_a_mistyped_command_line_names_its_commands_help(capsys, argv, line):
    # an unknown option is refused by `nst` itself, after the subcommand parsed what it knows: the
    # line names the subcommand's --help, and the option a typo was near
    assert cli(argv) == 2
    assert capsys.readouterr().err == f"nst: error: {line}\n"


def test_unknown_output_suffix(images, tiny_weights_h5, tmp_path, capsys):
    assert transfer(images, tiny_weights_h5, "-o", str(tmp_path / "o.xyz")) == 2
    one_line_error(capsys, "unknown image suffix")


def test_wrong_weights_file(images, tmp_path, capsys):
    bad = tmp_path / "bad.h5"
    import h5py
    with h5py.File(bad, "w") as f:
        f["block1_conv1/block1_conv1_W_1:0"] = np.zeros((3, 3, 3, 4), np.float32)
        f["block1_conv1/block1_conv1_b_1:0"] = np.zeros(4, np.float32)
    assert transfer(images, bad, "-o", str(tmp_path / "o.png")) == 2
    one_line_error(capsys, "block1_conv2 is missing")


def test_weights_info(tiny_weights_h5, capsys):
    assert main(["weights", "info", "--weights", str(tiny_weights_h5)]) == 0
    out = capsys.readouterr().out
    assert "block5_conv4" in out and "(7, 7, 3, 3)" in out and "random test weights" in out


def test_console_entry_point_runs(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "nst.cli", "transfer", "--help"],
                          capture_output=True, text=True)
    assert proc.returncode == 0 and "--style-weight" in proc.stdout


def every_parser(parser, name="nst"):
    # (command, its argparse parser) for nst and each subcommand, nested ones included
    import argparse
    yield name, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for sub, p in action.choices.items():
                yield from every_parser(p, f"{name} {sub}")


def test_every_command_and_option_is_explained():
    # each command's --help says what it does, and every option what it is (nst demo, nst weights
    # fetch|info, nst gradcheck and nst compare's --help began with their options; compare's PICTURE
    # and --backend had no text)
    from nst.cli.parser import build_parser
    for name, parser in every_parser(build_parser()):
        assert parser.description, name
        assert all(a.help for a in parser._actions if a.dest != "command" and a.dest != "action"), name
    helps = {a.dest: a.help for a in build_parser()._subparsers._group_actions[0].choices["transfer"]._actions}
    for weight, term in [("content_weight", "J_content"), ("style_weight", "J_style"), ("tv_weight", "J_tv")]:
        assert term in helps[weight], helps[weight]                 # they said only "α ≥ 0", "β ≥ 0", "γ ≥ 0"
    assert "repeat the original command" in helps["resume"]          # README's rule: it said "continue the run"


def test_every_help_example_runs_as_written(capsys):
    # the examples a --help ends with are command lines nst takes as they are printed: each parses
    # (options and values valid) and names the command it is under; nst serve and nst video had none
    import shlex
    from nst.cli.parser import build_parser
    shown, with_examples = [], set()
    for name, parser in every_parser(build_parser()):
        lines = (parser.epilog or "").splitlines()
        for line in lines[lines.index("examples:") + 1:] if lines else []:
            argv = shlex.split(line, comments=True)
            assert argv[0] == "nst" and (name == "nst" or line.strip().startswith(name)), (name, line)
            try:
                build_parser().parse_args(argv[1:])
            except SystemExit as e:                                     # only --help exits, with 0
                assert e.code == 0 and "--help" in argv, (line, capsys.readouterr().err)
            shown.append(line)
            with_examples.add(name)
    assert len(shown) >= 12, shown
    assert {"nst transfer", "nst demo", "nst batch", "nst video", "nst serve", "nst compare",
            "nst gradcheck"} <= with_examples, with_examples


def test_version(capsys):
    # `nst --version` says which nst this is (it was "required: command")
    import nst
    assert cli(["--version"]) == 0
    assert capsys.readouterr().out == f"nst {nst.__version__}\n"


@pytest.mark.parametrize("output, needle", [("mine.png", "mine.png exists and nst did not write it"),
                                            ("folder", "folder is a folder"), ("out.xyz", "unknown image suffix")])
def test_demo_checks_its_output_before_fetching_anything(tmp_path, monkeypatch, capsys, output, needle):
    # a -o nst would refuse is refused before the demo's images are downloaded (they were fetched first)
    monkeypatch.setenv("NST_HOME", str(tmp_path / "home"))
    monkeypatch.setattr("nst.io.assets.pip_download", lambda *a, **k: pytest.fail("fetched"))
    Image.new("RGB", (4, 4)).save(tmp_path / "mine.png")
    (tmp_path / "folder").mkdir()
    assert cli(["demo", "-o", str(tmp_path / output)]) == 2
    one_line_error(capsys, needle)
    assert not (tmp_path / "home").exists()


def test_stdout_and_stderr_merged_come_in_the_order_written(images, tiny_weights_h5, tmp_path):
    # `nst transfer … --dry-run 2>&1 | cat`: stdout (the memory table) was block-buffered into the pipe
    # and came out at exit, after the refusal on stderr that it explains
    import os
    from pathlib import Path
    child = ("import sys; from nst import memory; memory.available = lambda backend: 2**20; "
             "from nst.cli import main; sys.exit(main(sys.argv[1:]))")
    argv = ["transfer", images["content"], images["style"], "-o", tmp_path / "o.png", "--weights", tiny_weights_h5,
            "--backend", "numpy", "--size", "32", "--dry-run"]
    env = {k: v for k, v in os.environ.items() if k != "PYTHONUNBUFFERED"}
    out = subprocess.run([sys.executable, "-c", child, *map(str, argv)], stdout=subprocess.PIPE,
                         stderr=subprocess.STDOUT, text=True, env={**env, "PYTHONPATH": str(Path(__file__).parents[1])})
    lines = out.stdout.splitlines()
    assert out.returncode == 2 and lines[0].startswith("32×24 on numpy") and "(does NOT fit)" in lines[0], out.stdout
    assert lines[-1].startswith("nst: error: a 32×24 run needs about"), out.stdout


@pytest.mark.parametrize("style", ["a still picture", "the same animation", "the same animation, and --init"])
def test_nst_s_own_warnings_print_as_one_line(tmp_path, tiny_weights_h5, rng, capsys, style):
    # an animated content was read as its first frame without a word; Python warnings showed as
    # "…/image.py:198: UserWarning: …" and the source line: now one "nst: warning:" line, once a file
    # (the same animation as content and style was warned of twice, with --init three times)
    images = {"content": tmp_path / "c.gif", "style": tmp_path / "s.png"}
    frames = [Image.fromarray(rng.integers(0, 256, (30, 40, 3), dtype=np.uint8)) for _ in range(2)]
    frames[0].save(images["content"], save_all=True, append_images=frames[1:], duration=100)
    Image.fromarray(rng.integers(0, 256, (36, 28, 3), dtype=np.uint8)).save(images["style"])
    if style != "a still picture":
        images["style"] = images["content"]
    init = ["--init", str(images["content"])] if "--init" in style else []
    assert transfer(images, tiny_weights_h5, "-o", str(tmp_path / "o.png"), "--dry-run", *init) == 0
    err = capsys.readouterr().err.splitlines()
    assert [line for line in err if "animation" in line] == [
        f"nst: warning: {images['content']} is an animation of 2 frames: nst reads its first frame only "
        "(nst video styles every frame)"]


def test_a_warning_on_a_terminal_clears_the_progress_line_first(monkeypatch):
    # nst batch's tasks' warnings come as its progress bar runs: on a terminal they were written at
    # the end of the bar's line
    import io
    import warnings

    from nst.cli import warnings_as_lines
    from nst.run.progress import Progress

    class Terminal(io.StringIO):
        def isatty(self):
            return True
    monkeypatch.setattr(sys, "stderr", Terminal())
    with warnings_as_lines("batch", debug=False):
        progress = Progress(2, unit="task")
        progress.update(1)
        warnings.warn("a task's warning")
    painted = sys.stderr.getvalue()
    assert painted.endswith("\r\x1b[Knst batch: warning: a task's warning\n"), repr(painted)


def test_a_warning_from_one_place_is_said_in_each_scope_not_once_a_process():
    # Python's default action shows a warning once per code location for the whole process: a
    # second served run (or a task on a worker that ran another) raising it from the same line got
    # nothing unless something in between happened to reset Python's registry (an image read)
    import warnings

    from nst.cli import warnings_as_lines
    from nst.run.warned import warning_scope

    def warn():
        warnings.warn("the same line")
    with warnings.catch_warnings():
        warnings.resetwarnings()                     # Python's own: no filter, the default action
        with warnings_as_lines("serve", debug=False):
            said = []
            for _ in range(2):
                with warning_scope(said.append):
                    warn()
                    warn()                           # once a scope
    assert said == ["the same line", "the same line"]


def test_tasks_on_threads_of_one_worker_each_keep_their_warnings():
    # a worker running two tasks at once on threads of one process (`dask worker --nthreads 2`, dask's
    # default is one a core): each task swapped the process's warnings state for its run and put it
    # back as it ended, so the first to end undid the other's for the rest of its run: the second's
    # warnings went to the worker's stderr (not its row) and its NumPy overflow warnings were said
    import threading
    import warnings

    from nst.run.warned import task_warnings
    rows, shown = {}, []
    began, ended = {name: threading.Event() for name in ("first", "second")}, threading.Event()

    def task(name):
        if name == "second":
            began["first"].wait(10)
        with task_warnings() as said:
            began[name].set()
            if name == "first":
                began["second"].wait(10)
            else:
                ended.wait(10)                                      # the first has ended: this one goes on
                np.full(2, 3e38, np.float32) * np.float32(10)       # overflow: not said, as by nst transfer
            warnings.warn(f"from the {name}")
        rows[name] = said.messages
        ended.set()
    with warnings.catch_warnings():                     # what a task sets for its process, put back here
        warnings.resetwarnings()
        warnings.showwarning = lambda message, *_, **__: shown.append(str(message))    # the worker's stderr
        threads = [threading.Thread(target=task, args=(name,)) for name in ("second", "first")]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        warnings.warn("from the worker itself")                 # in no task: shown as before
    assert rows == {"first": ["from the first"], "second": ["from the second"]}
    assert shown == ["from the worker itself"]
