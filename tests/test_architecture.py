"""The package's layers import only downward (docs/architecture.md)."""

from __future__ import annotations

import ast
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bottom first; a module may import its own layer and any below it (a tuple: one layer)
LAYERS = ("errors", "utils", "quirks", "config", "geometry", "data", "models", "render", "losses", "train", "eval",
          "edit", "view", "preprocess")
# entry points wire the layers together (a command of one layer may run another's code)
ENTRY_POINTS = ("cli.py", "__main__.py")
DRIVERS = {"mononerf/eval/experiments.py": "the paper's claims in one command: it trains, scores and edits"}


def _layer(module: str) -> str | None:
    parts = module.split(".")
    return parts[1] if len(parts) > 1 and parts[0] == "mononerf" else None


def test_each_layer_imports_only_downward():
    rank = {name: i for i, layer in enumerate(LAYERS) for name in (layer if isinstance(layer, tuple) else (layer,))}
    upward = []
    for path in sorted((ROOT / "mononerf").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name in ENTRY_POINTS or rel in DRIVERS:
            continue
        me = _layer(".".join(path.relative_to(ROOT).with_suffix("").parts))
        if me not in rank:
            continue
        for node in ast.walk(ast.parse(path.read_text())):  # module level and inside functions alike
            if isinstance(node, ast.ImportFrom) and node.module:
                other = _layer(node.module)
                if other in rank and rank[other] > rank[me]:
                    upward.append(f"{rel}:{node.lineno} imports {node.module}")
    assert upward == []


def test_every_package_is_placed():
    found = {p.name if p.is_dir() else p.stem for p in (ROOT / "mononerf").iterdir()
             if (p.is_dir() and (p / "__init__.py").exists()) or (p.suffix == ".py" and p.stem != "__init__")}
    names = {n for layer in LAYERS for n in (layer if isinstance(layer, tuple) else (layer,))}
    assert found <= names, found - names


def test_no_module_is_over_400_lines():
    # a module a reader can hold in mind (issue 17): split one that grows past this
    long = {p.relative_to(ROOT).as_posix(): n for p in sorted((ROOT / "mononerf").rglob("*.py"))
            if (n := len(p.read_text().splitlines())) > 400}
    assert long == {}


# commands live in cli.py / __main__.py; a library module with a `python -m` name hands over to its cli function
COMMAND_EXCEPTIONS: dict[str, str] = {}


def test_only_command_modules_define_main_or_parse_arguments():
    found = []
    for path in sorted((ROOT / "mononerf").rglob("*.py")):
        rel = path.relative_to(ROOT).as_posix()
        if path.name in ENTRY_POINTS or rel in COMMAND_EXCEPTIONS:
            continue
        for node in ast.walk(ast.parse(path.read_text())):
            if isinstance(node, ast.FunctionDef) and node.name == "main":
                found.append(f"{rel}:{node.lineno} defines main()")
            modules = ([a.name for a in node.names] if isinstance(node, ast.Import)
                       else [node.module] if isinstance(node, ast.ImportFrom) else [])
            if "argparse" in modules:
                found.append(f"{rel}:{node.lineno} imports argparse")
    assert found == []
