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
