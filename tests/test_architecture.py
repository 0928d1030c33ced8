"""The package's layers import only downward (docs/architecture.md)."""

from __future__ import annotations

import ast
import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# bottom first; a module may import its own layer and any below it (a tuple: one layer)
LAYERS = ("errors", "utils", "quirks", "config", "geometry", "data", "models", "render", "losses", "pipeline", "train",
          "eval", "edit", "view", "experiments", "preprocess")
# entry points wire the layers together (a command of one layer may run another's code)
ENTRY_POINTS = ("cli.py", "__main__.py")
DRIVERS: dict[str, str] = {}  # modules allowed to import upward (none: the drivers are the top layer, experiments/)


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


# docstrings explain themselves with the repository's own pages: docs/method.md (cited as "method.md §N.M") and
# docs/decisions.md; nothing points at a file a reader of the repository does not have
OUTSIDE = re.compile(r"spec §|original-spec|\.\./shared|/work/shared")
BARE_DECISIONS = re.compile(r"(?<![/\w])decisions\.md")  # outside docs/, the page is docs/decisions.md
CITATION = re.compile(r"method\.md\)? §(\d+)(?:\.(\d+))?(?: items? (\d+))?")


def _text_files():
    for folder in ("mononerf", "docs", "mononerf_conf", "tests", "scripts", "train", "benchmarks"):
        for path in sorted((ROOT / folder).rglob("*")):
            if path.is_file() and path.suffix in {".py", ".md", ".conf", ".sh"}:
                yield path
    yield ROOT / "README.md"


def _method_sections() -> set[str]:
    sections, in_quirks = set(), False
    for line in (ROOT / "docs" / "method.md").read_text().splitlines():
        if m := re.match(r"^## (\d+)\. ", line):
            sections.add(m.group(1))
            in_quirks = m.group(1) == "8"
        elif m := re.match(r"^### (\d+\.\d+) ", line):
            sections.add(m.group(1))
        elif in_quirks and (m := re.match(r"^(\d+)\. ", line)):
            sections.add(f"8.{m.group(1)}")
    return sections


def test_nothing_in_the_package_refers_outside_the_repository():
    here = Path(__file__).relative_to(ROOT).as_posix()
    found = [f"{p.relative_to(ROOT)}:{i}" for p in _text_files() if p.relative_to(ROOT).as_posix() != here
             for i, line in enumerate(p.read_text().splitlines(), 1)
             if OUTSIDE.search(line) or (p.parts[-2] != "docs" and BARE_DECISIONS.search(line))]
    assert found == []
    assert (ROOT / "docs" / "decisions.md").is_file()


def test_every_method_citation_names_a_section_of_docs_method_md():
    sections = _method_sections()
    assert {"1.3", "2.8", "4.3", "8", "8.18", "8.31", "9"} <= sections  # the parser reads the page
    cited, missing = 0, []
    for path in _text_files():
        for i, line in enumerate(path.read_text().splitlines(), 1):
            for major, minor, item in CITATION.findall(line):
                cited += 1
                name = f"{major}.{minor}" if minor else (f"8.{item}" if item and major == "8" else major)
                if name not in sections:
                    missing.append(f"{path.relative_to(ROOT)}:{i} cites §{name}")
    assert cited > 250 and missing == []
