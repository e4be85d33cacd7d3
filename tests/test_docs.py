"""docs/maths.md stays true: its ```python snippets run, in order, in one namespace (tiny random
weights and small random images only: no network, seconds), what each prints matches the ```output
block under it, every section that shows a formula also runs a snippet, its links, anchors and
figures exist, the figures were drawn with nst's current DEFAULTS (docs/figures/figures.json), and
its generated tables are the ones docs/make_figures.py writes from that file."""
import contextlib
import importlib.util
import io
import json
import math
import re
import traceback
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
MATHS = DOCS / "maths.md"
RECORD = DOCS / "figures" / "figures.json"
NUMBER = re.compile(r"[-+]?\d+(?:\.\d+)?(?:e[-+]?\d+)?")


def python_blocks(text):
    # -> [(line number, source, the ```output block right under it or None)] of every ```python block
    blocks = []
    for m in re.finditer(r"^```python\n(.*?)^```\n(?:\n```output\n(.*?)^```)?", text, re.S | re.M):
        blocks.append((text[:m.start()].count("\n") + 2, m.group(1), m.group(2)))
    return blocks


def last_digit(text):
    # the value of one unit in the last printed digit: "1.2e-05" -> 1e-06, "0.125" -> 0.001, "7" -> 1
    mantissa, _, exponent = text.lower().partition("e")
    decimals = len(mantissa.partition(".")[2])
    return 10.0 ** (int(exponent or 0) - decimals)


def same_output(want, got):
    # the text must match; each number to 1.5 units of its last printed digit (what another CPU's
    # rounding can move), and below 1e-6 (rounding noise of float64 checks) only to the decade
    if NUMBER.sub("#", want).split() != NUMBER.sub("#", got).split():
        return False
    for a, b in zip(NUMBER.findall(want), NUMBER.findall(got)):
        x, y = float(a), float(b)
        if x == y:
            continue
        if max(abs(x), abs(y)) < 1e-6:
            if x == 0 or y == 0 or abs(math.log10(abs(x)) - math.log10(abs(y))) > 1:
                return False
        elif abs(x - y) > 1.5 * last_digit(a):
            return False
    return True


def run_snippets(text):
    # -> [(line, printed output, documented output)]; fails on the first snippet that raises
    namespace, outputs = {"__name__": "docs_maths"}, []
    for line, source, want in python_blocks(text):
        printed = io.StringIO()
        try:
            with contextlib.redirect_stdout(printed):
                exec(compile(source, f"{MATHS}:{line}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - say which snippet broke
            where = [f.lineno for f in traceback.extract_tb(e.__traceback__) if f.filename == f"{MATHS}:{line}"]
            at = line + where[-1] - 1 if where else line
            pytest.fail(f"the snippet at docs/maths.md line {line} fails at line {at}: {type(e).__name__}: {e}")
        outputs.append((line, printed.getvalue(), want))
    return outputs


def test_maths_snippets_run_and_print_what_the_page_shows():
    outputs = run_snippets(MATHS.read_text(encoding="utf-8"))
    assert len(outputs) >= 20, "docs/maths.md lost its snippets"
    assert sum(want is not None for _, _, want in outputs) >= 8, "docs/maths.md lost its output blocks"
    for line, got, want in outputs:
        if want is not None:
            assert same_output(want, got), \
                f"the snippet at docs/maths.md line {line} prints\n{got}\nbut the page shows\n{want}"


def test_same_output_can_fail():
    assert same_output("J = 0.125, err 4.6e-11", "J = 0.126, err 9.1e-11")
    assert same_output("max 1.2e-05", "max 1.3e-05") and not same_output("max 1.2e-05", "max 1.4e-05")
    assert not same_output("J = 0.125", "J = 0.25") and not same_output("J = 0.125", "J = 0.127")
    assert not same_output("err 4.6e-11", "err 4.6e-09")
    assert not same_output("J_s = 0.125", "J_c = 0.125")
    assert same_output("[0.0, -0.25]", "[0.0, -0.25]") and not same_output("[0.0]", "[1e-9]")


def sections(text):
    # -> [(title, body)] of the ## sections (### subsections stay in their section's body)
    parts = re.split(r"^## (.+)$", text, flags=re.M)
    return list(zip(parts[1::2], parts[2::2]))


def test_every_section_with_a_formula_runs_a_snippet():
    # a plain ``` block is a formula (or a shell command); its section must check it with Python
    unchecked = [title for title, body in sections(MATHS.read_text(encoding="utf-8"))
                 if re.search(r"^```\n", body, re.M) and "```python" not in body
                 and not title.startswith("Intuition")]
    assert not unchecked, f"sections of docs/maths.md with formulas and no snippet: {unchecked}"


def slug(title):
    # GitHub's heading anchors: lower case, punctuation dropped, spaces to hyphens
    return re.sub(r"[^\w\- ]", "", title.strip().lower()).replace(" ", "-")


def test_maths_anchors_exist():
    text = MATHS.read_text(encoding="utf-8")
    anchors = {slug(t) for t in re.findall(r"^#{1,4} (.+)$", text, re.M)}
    missing = [a for a in re.findall(r"\]\(#([^)]+)\)", text) if a not in anchors]
    assert not missing, f"docs/maths.md links to missing headings: {missing}"
    readme = (DOCS.parent / "README.md").read_text(encoding="utf-8")
    missing = [a for a in re.findall(r"\]\(docs/maths\.md#([^)]+)\)", readme) if a not in anchors]
    assert not missing, f"README.md links to missing headings of docs/maths.md: {missing}"


def make_figures():
    spec = importlib.util.spec_from_file_location("make_figures", DOCS / "make_figures.py")
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def stale_settings(mf, record, defaults, schedule=None):
    # -> {setting: (used, default)} for every setting the figures used that is not the default, and
    # "schedule" when --iterations auto's (nst.run.schedule.auto_rule, or `schedule`) is not the one
    # the run used: the iteration count it records would be stale (not what a run today does: the
    # count's other cause, the kernels' rounding, only a 256 px run can check)
    from nst.run.schedule import auto_rule
    schedule = mf.jsonable(auto_rule() if schedule is None else schedule)
    overrides = record["settings"]["overrides"]
    used = {k: v for k, v in record["settings"]["run"].items() if k != "tile"}    # tiling never changes
    defaults = {k: v for k, v in defaults.items() if k != "tile"}                 # the picture
    stale = {k: (used.get(k), v) for k, v in mf.jsonable(defaults).items()
             if k not in overrides and k != "backend" and used.get(k) != v}
    stale.update({k: (used[k], "not a setting") for k in set(used) - set(defaults)})
    stale.update({k: ("not recorded", defaults[k]) for k in set(defaults) - set(used)})
    if record["settings"]["numbers_size"] != defaults["size"]:
        stale["numbers_size"] = (record["settings"]["numbers_size"], defaults["size"])
    if record["settings"].get("schedule") != schedule:
        stale["schedule"] = (record["settings"].get("schedule", "not recorded"), schedule)
    return stale


def test_figures_were_drawn_with_the_current_defaults():
    # docs/make_figures.py records its settings; any default changed since: rerun it
    from nst.run.settings import DEFAULTS
    mf = make_figures()
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    overrides = record["settings"]["overrides"]
    assert overrides == mf.jsonable(mf.FIGURE_OVERRIDES), "FIGURE_OVERRIDES changed: rerun docs/make_figures.py"
    assert set(overrides) <= {"size"}, "the figures may differ from DEFAULTS only in their size"
    assert f"except the size, {overrides['size']} px" in MATHS.read_text(encoding="utf-8"), \
        "docs/maths.md's caption of the run names another size than FIGURE_OVERRIDES"
    stale = stale_settings(mf, record, DEFAULTS.as_dict())
    assert not stale, ("docs/figures were drawn with other settings than nst's DEFAULTS "
                       f"(setting: (used, default)) {stale}: rerun `python docs/make_figures.py`")


def test_stale_settings_are_found():
    from nst.run.settings import DEFAULTS
    mf = make_figures()
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    defaults = DEFAULTS.as_dict()
    changed = {**defaults, "style_weight": defaults["style_weight"] * 2, "iterations": 7}   # a default of "auto" or N
    assert set(stale_settings(mf, record, changed)) >= {"style_weight", "iterations"}
    assert "new_option" in stale_settings(mf, record, {**defaults, "new_option": 1})
    # --iterations auto's schedule changed (a cap, the stopping rule's tolerance): the recorded count is stale
    from nst.run.schedule import auto_rule
    assert not stale_settings(mf, record, defaults)
    assert set(stale_settings(mf, record, defaults, {**auto_rule(), "tol": auto_rule()["tol"] / 2})) == {"schedule"}


def test_generated_tables_match_the_record():
    mf = make_figures()
    text = MATHS.read_text(encoding="utf-8")
    record = json.loads(RECORD.read_text(encoding="utf-8"))
    assert mf.write_tables(text, mf.tables(record)) == text, \
        "docs/maths.md's generated tables differ from docs/figures/figures.json: rerun docs/make_figures.py"


def test_maths_links_exist():
    text = MATHS.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert any(t.startswith("../nst/") for t in local)
    missing = [t for t in local if not (DOCS / t).exists()]
    assert not missing, f"docs/maths.md links to missing files: {missing}"


def test_figures_small():
    figures = re.findall(r"\]\((figures/[^)]+\.(?:png|jpg))\)", MATHS.read_text(encoding="utf-8"))
    assert len(figures) >= 3
    for f in figures:
        assert (DOCS / f).stat().st_size < 300 * 1024, f"{f} is over 300 KB"


def test_readme_links_exist():
    readme = DOCS.parent / "README.md"
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", readme.read_text(encoding="utf-8"))
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert "docs/SPEC.md" in local and "ARCHITECTURE.md" in local
    missing = [t for t in local if not (readme.parent / t).exists()]
    assert not missing, f"README.md links to missing files: {missing}"


def test_spec_copy_is_the_shared_contract():
    # docs/SPEC.md is what a reader of the repository sees; the workplace's shared SPEC.md rules
    for shared in (DOCS.parent.parent / "shared" / "SPEC.md", Path("/work/shared/SPEC.md")):
        if shared.exists():
            assert (DOCS / "SPEC.md").read_bytes() == shared.read_bytes(), \
                f"docs/SPEC.md differs from {shared}: copy it over"
            return
    pytest.skip("no shared SPEC.md beside this checkout")


def test_bench_scripts_answer_help_without_running():
    # bench/RESULTS.md quotes these scripts' command lines; `--help` must print the options and
    # exit at once (bench_kernels_cpu.py ignored it and ran its whole benchmark)
    import subprocess
    import sys
    scripts = [p for p in sorted((DOCS.parent / "bench").glob("*.py")) if '__name__ == "__main__"' in p.read_text()]
    assert len(scripts) >= 10
    for script in scripts:
        r = subprocess.run([sys.executable, str(script), "--help"], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0 and "usage:" in r.stdout, f"{script.name} --help: {r.returncode} {r.stderr[-500:]}"


def test_cuda_cpu_page_commands_parse():
    # docs/cuda_cpu.md's command block: each `nst` line parses with nst's own parser and each
    # `python -c` program compiles (it showed `loss_and_grad(..., backend=...)`, an Ellipsis call)
    import shlex
    from nst.cli.parser import build_parser
    text = (DOCS / "cuda_cpu.md").read_text(encoding="utf-8")
    block = re.search(r"^```bash\n(.*?)^```", text, re.S | re.M).group(1)
    lines = [shlex.split(line, comments=True) for line in block.splitlines() if line.strip()]
    assert {tokens[0] for tokens in lines} == {"nst", "python"}
    for tokens in lines:
        if tokens[0] == "nst":
            build_parser().parse_args(tokens[1:])
        else:
            assert tokens[1] == "-c"
            source = tokens[2]
            compile(source, "cuda_cpu.md", "exec")
            assert "..." not in source, f"a placeholder in {source!r}"


def test_sections_cited_elsewhere_exist():
    # `docs/maths.md "Tiled evaluation"` in a docstring or a page names the start of a heading, or
    # of a paragraph's bold lead ("**The compact form: …**"): nst/tiled.py cited "Any size", none
    text = MATHS.read_text(encoding="utf-8")
    starts = [t for t in re.findall(r"^#{1,4} (.+)$", text, re.M)] + re.findall(r"\*\*([^*]+)\*\*", text)
    root = DOCS.parent
    files = [p for p in (*root.glob("*.md"), *root.glob("*/*.md"), *root.glob("*/**/*.py"))
             if ".egg-info" not in str(p)]
    cited = {(p.relative_to(root).as_posix(), re.sub(r"\s*\n[\s#]*", " ", name)) for p in files
             for name in re.findall(r'maths\.md,?\s+"([^"]{1,80})"', p.read_text(encoding="utf-8"))}
    assert len(cited) >= 10
    missing = sorted((where, name) for where, name in cited if not any(s.startswith(name) for s in starts))
    assert not missing, f"citations of docs/maths.md sections that it has no heading for: {missing}"


def missing_code_names(text):
    # -> (names checked, ["path name", ...]): each `name` right after a [`path.py`](…) link (the path
    # from the repository's root, as both pages show it) that the file does not define (def, class
    # or a module-level assignment; `A.b`: a def b in the file), and each `nst.a.b` that is not there
    missing, checked = [], 0
    link = r"\[`([\w/.]+\.py)`\]\([^)]*\)[`:\s]*((?:`[\w.]+`(?:,\s*|\s+and\s+|\s*)?)+)"
    for m in re.finditer(link, text):
        source = (DOCS.parent / m.group(1)).read_text(encoding="utf-8")
        for name in re.findall(r"`([\w.]+)`", m.group(2)):
            last, checked = name.rsplit(".", 1)[-1], checked + 1
            if not re.search(rf"^\s*(?:def|class)\s+{last}\b|^{last}\b[\w, ]*=", source, re.M):
                missing.append(f"{m.group(1)} {name}")
    for dotted in sorted(set(re.findall(r"`(nst(?:\.\w+)+)`", text))):
        parts, checked = dotted.split("."), checked + 1
        for i in range(len(parts), 0, -1):
            with contextlib.suppress(ImportError):
                obj = importlib.import_module(".".join(parts[:i]))
                break
        absent = object()
        for attr in parts[i:]:
            obj = getattr(obj, attr, absent)
        if obj is absent:
            missing.append(dotted)
    return checked, missing


def test_code_names_in_the_docs_exist():
    # a renamed function leaves the course and the README pointing at nothing
    for doc in (MATHS, DOCS.parent / "README.md"):
        checked, missing = missing_code_names(doc.read_text(encoding="utf-8"))
        assert checked >= 20 and not missing, f"{doc.name} names code that is not there: {missing}"


def test_missing_code_names_can_fail():
    text = "[`nst/losses.py`](../nst/losses.py): `gram` and `no_such_loss`; `nst.losses.gone`"
    assert missing_code_names(text) == (3, ["nst/losses.py no_such_loss", "nst.losses.gone"])
