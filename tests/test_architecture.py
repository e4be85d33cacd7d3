"""The package's shape (ARCHITECTURE.md): imports run one way, and the wheel installs only `nst`.

Every import statement of every module counts, those inside functions included (a lazy import
is still a dependency). Each module belongs to one layer; a layer may import only the layers
listed for it, and no set of modules may import each other in a cycle.
"""
import ast
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
SOURCES = {"nst": ROOT / "nst", "nst.kernels": ROOT / "kernels", "nst.weights": ROOT / "weights"}

# layer -> the modules in it (a name, or a prefix ending in "."), bottom first
LAYERS = {
    "base": ["nst.spec", "nst.library", "nst.tolerance", "nst.ops", "nst.losses", "nst.memory", "nst.flow"],
    "io": ["nst.io", "nst.io."],
    "kernels": ["nst.kernels", "nst.kernels."],
    "weights": ["nst.weights", "nst.weights."],
    "backends": ["nst.backends", "nst.backends."],
    "model": ["nst.vgg", "nst.objective", "nst.tiled", "nst.optim", "nst.lbfgs", "nst.color", "nst.gradcheck",
              "nst.compare", "nst.testing"],
    "run": ["nst.run", "nst.run."],
    "app": ["nst.cli", "nst.cli.", "nst.batch", "nst.batch.", "nst.video", "nst.video.", "nst.web", "nst.web.",
            "nst.__main__"],
}
MAY_IMPORT = {
    "base": {"base"},
    "io": {"base", "io"},
    "kernels": {"base", "kernels"},
    "weights": {"base", "io", "weights"},
    "backends": {"base", "kernels", "backends"},
    "model": {"base", "io", "weights", "backends", "model"},
    "run": {"base", "io", "weights", "backends", "model", "run"},
    "app": set(LAYERS),
}


def modules():
    # -> {dotted name: path} for every .py of the three source folders, named as installed
    out = {}
    for package, folder in SOURCES.items():
        for path in folder.rglob("*.py"):
            parts = list(path.relative_to(folder).with_suffix("").parts)
            if parts[-1] == "__init__":
                parts.pop()
            if "kernels" in path.relative_to(ROOT).parts[:1] and package == "nst":
                continue
            out[".".join([package, *parts])] = path
    return {k: v for k, v in out.items() if not any(p in ("__pycache__",) for p in v.parts)}


def imports_of(name, path, known):
    # -> the nst modules `name` imports anywhere in its file
    is_package = path.name == "__init__.py"
    here = name if is_package else name.rpartition(".")[0]
    found = set()
    for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
        if isinstance(node, ast.Import):
            found |= {a.name for a in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = here
            for _ in range(node.level - 1):
                base = base.rpartition(".")[0]
            mod = (f"{base}.{node.module}" if node.module else base) if node.level else node.module
            submodules = {f"{mod}.{a.name}" for a in node.names if f"{mod}.{a.name}" in known}
            # `from pkg import module` depends on that module; any other name, on pkg itself
            found |= submodules if len(submodules) == len(node.names) else submodules | {mod}
    return {m for m in found if m in known and m != "nst" and m != name}


def layer_of(module):
    for layer, members in LAYERS.items():
        if any(module == m or (m.endswith(".") and module.startswith(m)) for m in members):
            return layer
    return None


def graph():
    known = modules()
    return {name: imports_of(name, path, known) for name, path in known.items()}


def test_every_module_has_a_layer():
    unplaced = sorted(m for m in modules() if m != "nst" and layer_of(m) is None)
    assert not unplaced, f"place these in LAYERS here and in ARCHITECTURE.md: {unplaced}"


def wrong_way(g):
    # -> one line per edge that goes against MAY_IMPORT
    return [f"{a} ({layer_of(a)}) imports {b} ({layer_of(b)})"
            for a, targets in sorted(g.items()) if a != "nst" for b in sorted(targets)
            if layer_of(b) not in MAY_IMPORT.get(layer_of(a), set())]


def test_imports_run_one_way():
    # over the real graph: every layer holds modules, and they import (a walk that found no module
    # or no import passed)
    g = graph()
    assert {layer_of(m) for m in g} >= set(LAYERS) and sum(map(len, g.values())) > len(g), len(g)
    wrong = wrong_way(g)
    assert not wrong, "imports against the layering:\n" + "\n".join(wrong)


def test_no_import_cycles():
    cycles = cycles_in(graph())
    assert not cycles, f"import cycles: {cycles}"


def test_the_cycle_finder_sees_a_cycle():
    # a → b → c → a, d → a, and e → e is no cycle of several modules
    g = {"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}, "e": {"e"}}
    assert cycles_in(g) == [["a", "b", "c"]]


def cycles_in(g):
    # -> the import cycles of g {module: modules it imports}: its strongly connected components of
    # more than one module (Tarjan)
    index, low, stack, on_stack, cycles = {}, {}, [], set(), []

    def visit(v):                                     # Tarjan's strongly connected components
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in g.get(v, ()):
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            component = set()
            while True:
                w = stack.pop()
                on_stack.discard(w)
                component.add(w)
                if w == v:
                    break
            if len(component) > 1:
                cycles.append(sorted(component))

    for v in g:
        if v not in index:
            visit(v)
    return cycles


def test_the_checker_sees_a_wrong_way_edge(tmp_path):
    # the walk finds an import inside a function, resolved from a relative name
    src = tmp_path / "m.py"
    src.write_text("def f():\n    from ..cli import main\n    from . import losses\n")
    found = imports_of("nst.kernels.m", src, {"nst.kernels.cli", "nst.cli", "nst.kernels.losses"})
    assert found == {"nst.cli", "nst.kernels.losses"}
    assert wrong_way({"nst.kernels.m": found}) == ["nst.kernels.m (kernels) imports nst.cli (app)"]


def test_wheel_installs_one_top_level_package(tmp_path):
    # build the wheel, install it (no dependencies) into a bare folder, import it from there
    wheels = tmp_path / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(ROOT)],
                   check=True, capture_output=True, cwd=tmp_path)
    wheel, = wheels.glob("nst-*.whl")
    names = zipfile.ZipFile(wheel).namelist()
    tops = {n.split("/")[0] for n in names}
    for page in ("live.html", "app.html", "common.js", "live.js", "app.js", "style.css"):   # the web pages
        assert f"nst/web/static/{page}" in names, page
    assert tops == {"nst", wheel.name.split("-")[0] + "-" + wheel.name.split("-")[1] + ".dist-info"}
    target = tmp_path / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--target", str(target), str(wheel)],
                   check=True, capture_output=True)
    installed = {p.name for p in target.iterdir() if not p.name.endswith(".dist-info") and p.name != "bin"}
    assert installed == {"nst"}, installed
    probe = ("import nst.kernels.cuda, nst.weights.torch_legacy, nst.spec, importlib.resources as r;"
             "assert nst.kernels.cuda.__file__.startswith(%r);"
             "assert any(p.name.endswith('.cu') for p in r.files(nst.kernels.cuda).iterdir())") % str(target)
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=tmp_path,
                   env={"PYTHONPATH": str(target), "PATH": "/usr/bin:/bin"})


def test_checkout_serves_only_kernels_and_weights():
    # in a source checkout the root serves nst.kernels and nst.weights, and nothing else of it
    probe = ("import importlib.util as u, nst.kernels, nst.weights;"
             "assert nst.kernels.__file__.startswith(%r);"
             "assert all(u.find_spec(m) is None for m in ('nst.setup', 'nst.tests', 'nst.bench', 'nst.docs'))"
             ) % str(ROOT / "kernels")
    subprocess.run([sys.executable, "-c", probe], check=True, cwd=ROOT)
