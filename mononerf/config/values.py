"""Reading configuration values: keys and their types, HOCON conf files with their includes, and the original's
configargparse txt files. :mod:`mononerf.config` builds the one Config object from these."""

from __future__ import annotations

import copy
import difflib
import functools
import math
import os
import re
import sys
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from typing import Any

import configargparse
from pyhocon import ConfigFactory, ConfigTree
from pyhocon.config_parser import ConfigParser as _HoconParser

from mononerf.config.schema import FLAGS, KEYS, Key, section_prefixes
from mononerf.errors import ConfigError

COMMAND_LINE = "command line"
DEFAULT = "default"
_SECTIONS = section_prefixes()
_INCLUDE = re.compile(r'^\s*include\s+(required\(\s*)?(file\(\s*)?"([^"]+)"\s*\)?\s*\)?\s*$', re.MULTILINE)
_URL = re.compile(r"^[A-Za-z][A-Za-z0-9+.-]*:/")  # http://, https://, file:/, ftp://, ...
# the project's own conf tree: includes below it are always allowed (docs/security.md)
PROJECT_CONF_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))),
                                "mononerf_conf")


def _display(path: str) -> str:
    """A path as messages show it: relative to the working directory when below it."""
    rel = os.path.relpath(os.path.abspath(path))
    return rel if not rel.startswith("..") else os.path.abspath(path)


# ----------------------------------------------------------------------------------------------- values and types
def _hint(name: str) -> str:
    """' (did you mean X?)' for a misspelt dotted key, or ''."""
    parent, _, leaf = name.rpartition(".")
    siblings = [k.rpartition(".")[2] for k in list(KEYS) + list(_SECTIONS) if k.rpartition(".")[0] == parent]
    match = difflib.get_close_matches(leaf, siblings, n=1, cutoff=0.6) if siblings else []
    if match:
        return f" (did you mean {match[0]}?)"
    match = difflib.get_close_matches(name, list(KEYS), n=1, cutoff=0.75)
    return f" (did you mean {match[0]}?)" if match else ""


# keys that were once in the schema: (the value that changed nothing, why it is gone). A run folder written before
# carries the first value, which is accepted and dropped; any other value is refused with the reason.
RETIRED: dict[str, tuple[Any, str]] = {
    "quirks.render_path_neighbour_clamp": (True, "the original clamps a render path's neighbour pose for its "
                                           "induced-flow pictures (method.md §8.18); our renders draw no flow "
                                           "against a neighbour pose, so the quirk switched nothing and was removed "
                                           "(docs/quirks.md)"),
}


def retired(name: str, value: Any, where: str) -> bool:
    """True when ``name`` is a retired key set to its old value (to be dropped); ConfigError for another value."""
    if name not in RETIRED:
        return False
    kept, why = RETIRED[name]
    if value != kept and str(value).lower() != str(kept).lower():
        raise ConfigError(f"{where}: {name} = {value}: this key is gone: {why}")
    return True


def _lookup(name: str, where: str) -> Key:
    if name in KEYS:
        return KEYS[name]
    if name in _SECTIONS:
        raise ConfigError(f"{where}: {name} is a section, not a value (set one of its keys, e.g. "
                          f"{next(k for k in KEYS if k.startswith(name + '.'))})")
    raise ConfigError(f"{where}: unknown key {name}{_hint(name)}")


def _check(key: Key, value: Any, where: str) -> Any:
    """Return ``value`` converted to ``key.type`` (int → float, 'true' → True, int → str) or raise ConfigError."""
    base, nullable = key.type.rstrip("?"), key.type.endswith("?")
    if isinstance(value, ConfigTree):
        ok = False
    elif value is None:
        ok = nullable
    elif base == "any":
        ok = True
    elif base == "bool":
        if isinstance(value, str) and value.lower() in ("true", "false"):
            value = value.lower() == "true"
        ok = isinstance(value, bool)
    elif base == "int":
        ok = isinstance(value, int) and not isinstance(value, bool)
    elif base == "float":
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        value = float(value) if ok else value
    elif base == "str":
        if isinstance(value, int) and not isinstance(value, bool):
            value = str(value)
        ok = isinstance(value, str)
    else:  # list[int] | list[str] | int|list[int]
        item = str if "list[str]" in base else int
        if isinstance(value, (list, tuple)):
            value = list(value)
            ok = all(isinstance(v, item) and not isinstance(v, bool) for v in value)
        else:
            ok = base == "int|list[int]" and isinstance(value, int) and not isinstance(value, bool)
    if not ok:
        want = key.type.replace("?", " or null")
        raise ConfigError(f"{where}: {key.name} must be {want}, got {type(value).__name__} {value!r}")
    if key.choices is not None and value is not None and value not in key.choices:
        why = f": {key.note}" if key.note and len(key.choices) == 1 else ""
        raise ConfigError(f"{where}: {key.name} must be one of {list(key.choices)}, got {value!r}{why}")
    if base == "float" and value is not None and not math.isfinite(value):
        raise ConfigError(f"{where}: {key.name} must be a finite number, got {value!r}")
    if key.min_value is not None and value is not None:
        low = value <= key.min_value if key.min_exclusive else value < key.min_value
        if not math.isfinite(value) or low:
            bound = f"> {key.min_value:g}" if key.min_exclusive else f">= {key.min_value:g}"
            raise ConfigError(f"{where}: {key.name} must be a finite number {bound}, got {value!r}")
    return value


def _literal(text: str, where: str) -> Any:
    """Parse one HOCON/JSON literal (``3``, ``true``, ``[0, 1]``, ``"a b"``, ``null``, bare strings)."""
    try:
        with _no_hocon_includes(where):
            return _parse("v = " + text, resolve=True)["v"]
    except ConfigError:
        raise
    except Exception as exc:  # pyparsing raises several exception types
        # (pyparsing's positions count the "v = " put in front: left out)
        why = re.sub(r",?\s*\(at char \d+\)|,?\s*\(line:\d+, col:\d+\)", "", " ".join(str(exc).split()))
        raise ConfigError(f"{where}: cannot parse value {text!r} as a HOCON literal ({why})") from None


def _from_text(key: Key, text: Any, where: str) -> Any:
    """A flag's value (string, or list of strings for list flags) as the key's type."""
    base = key.type.rstrip("?")
    if base == "list[str]":
        if isinstance(text, str):
            text = [text]
        return _literal(text[0], where) if len(text) == 1 and text[0].lstrip().startswith("[") else list(text)
    if base in ("str", "any"):
        return text
    if base == "bool" and str(text).lower() in ("1", "yes", "on", "0", "no", "off"):
        return str(text).lower() in ("1", "yes", "on")
    if base in ("int", "float"):
        try:
            return int(text) if base == "int" else float(text)
        except ValueError:
            raise ConfigError(f"{where}: {key.name} must be {base}, got {text!r}") from None
    return _literal(str(text), where)


def _parse_assignment(item: str, where: str) -> tuple[str, Any]:
    name, sep, text = item.partition("=")
    name = name.strip()
    if not sep or not name or " " in name:
        raise ConfigError(f"{where}: --set expects KEY=VALUE (e.g. model.mlp_dynamic.discrete_steps=4), got {item!r}")
    return name, _literal(text.strip(), f"{where}: --set {name}")


# ----------------------------------------------------------------------------------------------- HOCON files
def _flatten(tree: Mapping, prefix: str = ""):
    for name, value in tree.items():
        key = f"{prefix}.{name}" if prefix else str(name)
        if isinstance(value, (ConfigTree, dict)):
            yield from _flatten(value, key)
        else:
            yield key, list(value) if isinstance(value, list) else value


@functools.lru_cache(maxsize=256)
def _parsed(text: str, resolve: bool) -> ConfigTree:
    return ConfigFactory.parse_string(text, resolve=resolve)


def _parse(text: str, resolve: bool) -> ConfigTree:
    """pyhocon's parse of ``text``, kept per process and handed out as a copy (callers may change it).

    Every run, evaluation and render of a process reads the same conf files and ``--set`` values again, and pyparsing
    takes ~40 ms a file and ~5 ms a literal (a copy: ~0.5 ms). A text that fails is not kept: it fails again, with
    the message of the caller's context (:func:`_no_hocon_includes`), and a resolved text with a substitution (which
    may read the environment) is parsed each time. Call inside that context."""
    if resolve and "${" in text:
        return ConfigFactory.parse_string(text, resolve=True)
    return copy.deepcopy(_parsed(text, resolve))


@contextmanager
def _no_hocon_includes(where: str) -> Iterator[None]:
    """pyhocon's own ``include`` handling refused while parsing: ``url(...)`` (and ``"http://..."``) would fetch
    from the network, ``package(...)`` would import a module, and a file include it resolved would bypass the checks
    of :func:`_include_target`. The includes this module accepts are taken out of the text before pyhocon sees it,
    so any include that reaches pyhocon is refused here with one line."""
    saved = (ConfigFactory.__dict__["parse_URL"], ConfigFactory.__dict__["parse_file"],
             _HoconParser.__dict__["resolve_package_path"])

    def refuse_url(url, *args, **kwargs):
        raise ConfigError(f"{where}: include url({url!r}) refused: a conf file may not fetch anything from the network "
                          "(copy the values into a file beside it and include that)")

    def refuse_file(path, *args, **kwargs):
        raise ConfigError(f"{where}: include of {path!r} refused: an include must be a line of its own, "
                          "include required(\"FILE\") or include \"FILE\", with FILE relative to this file")

    def refuse_package(package_path):
        raise ConfigError(f"{where}: include package({package_path!r}) refused: includes name files, never packages")

    ConfigFactory.parse_URL, ConfigFactory.parse_file = staticmethod(refuse_url), staticmethod(refuse_file)
    _HoconParser.resolve_package_path = staticmethod(refuse_package)
    try:
        yield
    finally:
        ConfigFactory.parse_URL, ConfigFactory.parse_file, _HoconParser.resolve_package_path = saved


def _inside(path: str, root: str) -> bool:
    return os.path.commonpath([path, root]) == root


def config_roots(top: str) -> list[str]:
    """The config tree of the conf ``top`` given on the command line (real paths): the folder above the conf's
    folder (an ``exp/x.conf`` that includes ``../base.conf``), the ``mononerf_conf`` folder the conf lies in (if
    any) and the project's ``mononerf_conf/``."""
    folder = os.path.realpath(os.path.dirname(os.path.abspath(top)))
    roots = [os.path.dirname(folder)]
    node = folder
    while os.path.dirname(node) != node:
        if os.path.basename(node) == "mononerf_conf":
            roots.append(node)
            break
        node = os.path.dirname(node)
    if os.path.isdir(PROJECT_CONF_DIR):
        roots.append(os.path.realpath(PROJECT_CONF_DIR))
    return list(dict.fromkeys(roots))


def _include_target(path: str, target: str, roots: list[str] | None) -> str:
    """Where an ``include`` line of ``path`` points; ConfigError when it is a URL or when includes are off
    (``roots`` None); a note on stderr when it lies outside the config tree ``roots``."""
    where = _display(path)
    if roots is None:
        raise ConfigError(f"{where}: include {target!r} refused: a run folder's config.conf is the resolved "
                          "configuration (every key explicit) and includes nothing; remove the line")
    if _URL.match(target):
        raise ConfigError(f"{where}: include {target!r} refused: a conf file may not fetch anything from the "
                          "network (copy the values into a file beside it and include that)")
    full = os.path.join(os.path.dirname(path), target)
    real = os.path.realpath(full)
    if os.path.exists(real) and not any(_inside(real, r) for r in roots):
        print(f"note: {where} includes {real}, outside the config tree ({', '.join(roots)})", file=sys.stderr)
    return full


def _own_trees(path: str, roots: list[str] | None, chain: tuple[str, ...] = ()) -> list[tuple[str, ConfigTree]]:
    """``path`` and the files it includes, in merge order (includes first), each parsed without its includes."""
    real = os.path.realpath(path)
    if real in chain:
        raise ConfigError(f"{_display(path)}: include cycle ({' -> '.join(map(_display, chain + (real,)))})")
    try:
        with open(path, encoding="utf-8") as fh:
            text = fh.read()
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"{_display(path)}: cannot read the conf file ({exc.__class__.__name__}: "
                          f"{getattr(exc, 'strerror', None) or exc})") from None
    order: list[tuple[str, ConfigTree]] = []
    for match in _INCLUDE.finditer(text):
        target = _include_target(path, match.group(3), roots)
        if os.path.isfile(target):
            order += _own_trees(target, roots, chain + (real,))
        elif match.group(1):
            raise ConfigError(f"{_display(path)}: include required file {match.group(3)!r} not found "
                              f"(looked for {_display(target)})")
    try:
        with _no_hocon_includes(_display(path)):
            own = _parse(_INCLUDE.sub("", text), resolve=False)
    except ConfigError:
        raise
    except Exception as exc:  # pyparsing raises several exception types
        raise ConfigError(f"{_display(path)}: HOCON syntax error: {' '.join(str(exc).split())}") from None
    return order + [(_display(path), own)]


def read_hocon(path: str, includes: bool = True) -> tuple[dict[str, Any], dict[str, str], list[str]]:
    """Read a HOCON file with its ``include``s (relative to the including file; the including file wins).

    Only file includes on a line of their own are read (``include "F"``, ``include file("F")``,
    ``include required("F")``); a URL, a package or an include inside a value is refused, and a file outside the
    config tree (:func:`config_roots`) is read with a note on stderr (docs/security.md).

    Args:
        path: the conf file.
        includes: False for a run folder's ``config.conf``, which includes nothing: any include is refused.
    Returns:
        (values, sources, files): flat ``{dotted key: value}``; for each key the file that set it last; the files
            read, in merge order. Nothing is validated here.
    """
    if not os.path.isfile(path):
        raise ConfigError(f"{_display(path)}: conf file not found")
    layers = _own_trees(path, config_roots(path) if includes else None)
    owners = [(name, {k for k, _ in _flatten(tree)}) for name, tree in layers]
    merged = ConfigTree()
    for _, tree in layers:
        merged = ConfigTree.merge_configs(merged, tree)
    try:
        _HoconParser.resolve_substitutions(merged)
    except Exception as exc:
        raise ConfigError(f"{_display(path)}: cannot resolve HOCON: {' '.join(str(exc).split())}") from None
    values = dict(_flatten(merged))
    sources = {}
    for key in values:
        prefixes = {".".join(key.split(".")[:i]) for i in range(1, key.count(".") + 2)}
        sources[key] = next((name for name, own in reversed(owners) if own & prefixes), _display(path))
    return values, sources, [name for name, _ in owners]


def _read_txt(path: str) -> list[tuple[Key, Any, str]]:
    """The ``--config`` txt file: ``flag = value`` lines of the original's parser, as (key, value, source)."""
    if not os.path.isfile(path):
        raise ConfigError(f"{_display(path)}: --config file not found")
    where = _display(path)
    with open(path, encoding="utf-8") as fh:
        items = configargparse.DefaultConfigFileParser().parse(fh)
    out = []
    for name, text in items.items():
        if "--" + name not in FLAGS:
            match = difflib.get_close_matches("--" + name, list(FLAGS), n=1, cutoff=0.6)
            raise ConfigError(f"{where}: unknown option {name}" + (f" (did you mean {match[0][2:]}?)" if match else ""))
        key = FLAGS["--" + name]
        out.append((key, _from_text(key, text, f"{where}: {name}"), where))
    return out
