"""docs/maths.md stays true: its ```python snippets run, in order, in one namespace (tiny random
weights and small random images only: no network, a few seconds), and its relative links and
figures exist."""
import re
from pathlib import Path

import pytest

DOCS = Path(__file__).resolve().parent.parent / "docs"
MATHS = DOCS / "maths.md"


def python_blocks(text):
    # -> [(line number, source)] of every ```python fenced block
    return [(text[:m.start()].count("\n") + 2, m.group(1))
            for m in re.finditer(r"^```python\n(.*?)^```", text, re.S | re.M)]


def test_maths_snippets_run(capsys):
    text = MATHS.read_text(encoding="utf-8")
    blocks = python_blocks(text)
    assert len(blocks) >= 5, "docs/maths.md lost its snippets"
    namespace = {"__name__": "docs_maths"}
    for line, source in blocks:
        try:
            exec(compile(source, f"{MATHS}:{line}", "exec"), namespace)
        except Exception as e:  # noqa: BLE001 - say which snippet broke
            pytest.fail(f"the snippet at docs/maths.md line {line} fails: {type(e).__name__}: {e}")


def test_maths_links_exist():
    text = MATHS.read_text(encoding="utf-8")
    targets = re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", text)
    local = [t for t in targets if not re.match(r"[a-z]+:", t)]
    assert any(t.startswith("../nst/") for t in local)
    missing = [t for t in local if not (DOCS / t).exists()]
    assert not missing, f"docs/maths.md links to missing files: {missing}"


def test_figures_small():
    figures = re.findall(r"\]\((figures/[^)]+\.png)\)", MATHS.read_text(encoding="utf-8"))
    assert len(figures) >= 3
    for f in figures:
        assert (DOCS / f).stat().st_size < 300 * 1024, f"{f} is over 300 KB"
