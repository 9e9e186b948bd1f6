"""robstudy's modules form layers that import only downward (DESIGN.md): a module imports from its own
layer or lower ones, never from a higher one, at top level or inside a function, and nothing imports
in a cycle. The only upward references are the one-release shims for moved names (`_MOVED`, resolved
lazily by `robstudy.core.moved`), which this test checks resolve."""
import ast
import importlib
import warnings
from pathlib import Path

import pytest

PKG = Path(__file__).resolve().parents[1] / "robstudy"
NBS = PKG.parent / "nbs"

# layer of every module, in the order of the notebooks (00 foundation ... 10 cli)
LAYERS = {
    "core": 0, "tables": 0,
    "data": 1, "readers": 1, "subpopulation": 1, "attributes": 1, "datasets": 1, "sources": 1,
    "shifts": 2, "corruptions": 2, "label_shift": 2, "adversarial": 2, "text": 2, "mnist_c": 2, "distribution": 2,
    "models": 3, "checkpoints": 3, "recipes": 3, "training": 3, "batched": 3, "external": 3, "pretrained": 3, "zoo": 3,
    "store": 4,
    "evaluate": 5,
    "ingest": 6, "published": 6, "results": 6,
    "fits": 7,
    "correlation": 8, "agreement": 8, "summary": 8,
    "plots": 9,
    "reports": 10,
    "config": 11, "cli": 11, "fit_cli": 11, "__main__": 11,
}


def modules():
    return sorted(p.stem for p in PKG.glob("*.py") if p.stem not in ("__init__", "_modidx"))


def imports(mod: str) -> list:
    "Every robstudy module `mod` imports (top level and inside functions), with the line."
    tree = ast.parse((PKG / f"{mod}.py").read_text())
    out = []
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom):
            if node.level == 1:   # from .x import y / from . import x
                names = [node.module] if node.module else [a.name for a in node.names]
            elif node.module and (node.module == "robstudy" or node.module.startswith("robstudy.")):
                names = [node.module.split(".")[1]] if "." in node.module else [a.name for a in node.names]
            else: continue
            out += [(n.split(".")[0], node.lineno) for n in names]
        elif isinstance(node, ast.Import):
            out += [(a.name.split(".")[1], node.lineno) for a in node.names if a.name.startswith("robstudy.")]
    return [(m, line) for m, line in out if m not in ("__version__",)]


def test_every_module_has_a_layer():
    missing = [m for m in modules() if m not in LAYERS]
    assert not missing, f"modules without a layer (add them to LAYERS in {__file__}): {missing}"


@pytest.mark.parametrize("mod", modules())
def test_imports_point_downward(mod):
    up = [f"{mod}.py:{line} imports robstudy.{dep} (layer {LAYERS.get(dep)}) from layer {LAYERS[mod]}"
          for dep, line in imports(mod) if dep in LAYERS and LAYERS[dep] > LAYERS[mod]]
    assert not up, "\n".join(up)


def test_no_import_cycles():
    graph = {m: {d for d, _ in imports(m) if d in LAYERS and d != m} for m in modules()}
    state = {}
    def visit(m, path):
        if state.get(m) == 1: raise AssertionError("import cycle: " + " -> ".join(path + [m]))
        if state.get(m) == 2: return
        state[m] = 1
        for d in sorted(graph.get(m, ())): visit(d, path + [m])
        state[m] = 2
    for m in graph: visit(m, [])


def test_notebook_order_follows_the_layers():
    "Reading the chapters in order never meets a module whose layer is below the previous one's."
    order = []
    for nb in sorted(NBS.glob("[0-9]*.ipynb")):
        text = nb.read_text()
        i = text.find("default_exp ")
        if i >= 0: order.append((nb.name, text[i + 12:].split("\\n")[0].split('"')[0].strip()))
    layers = [(name, mod, LAYERS[mod]) for name, mod in order]
    bad = [(a, b) for a, b in zip(layers, layers[1:]) if b[2] < a[2]]
    assert not bad, bad


def test_moved_names_resolve():
    "Each one-release shim (`_MOVED`) names a module that holds the name, with a DeprecationWarning."
    found = 0
    for mod in modules():
        m = importlib.import_module(f"robstudy.{mod}")
        for name, target in getattr(m, "_MOVED", {}).items():
            tmod, _, new = target.partition(":")
            with warnings.catch_warnings(record=True) as w:
                warnings.simplefilter("always")
                assert getattr(m, name) is getattr(importlib.import_module(tmod), new or name), (mod, name)
            assert any(x.category is DeprecationWarning for x in w), (mod, name)
            found += 1
    assert found >= 40
