"""One configuration object, built from HOCON + command line and validated once at start-up (method.md §7).

Where a value comes from, lowest to highest (later wins):

1. the key's default in :mod:`mononerf.config.schema` (the original's code / parser default);
2. ``--config FILE``: a configargparse txt file of the original's flags (``configs/config_Balloon2.txt`` style);
3. the HOCON conf ``-c/--conf`` with its ``include required(...)`` files (an including file wins over what it includes);
4. the original's command-line flags (``--N_static_iters=100001``, ``--ft_path=...``), each mapped onto ONE key.
   Flags of ``info.*`` keys win over the conf here (the original silently let the conf win: a defect);
5. ``--set KEY=VALUE`` (repeatable; VALUE is a HOCON/JSON literal).

Every key is checked (unknown key, type, choices, required value, ``info.no_ndc == not model.use_ndc``); a failure is
one line :class:`~mononerf.errors.ConfigError` naming the dotted key and the file (or ``command line``) it came from.

>>> cfg = parse_config_file("mononerf_conf/exp/quarter_frame_training/Balloon2.conf")  # doctest: +SKIP
>>> cfg.model.mlp_dynamic.discrete_steps, cfg.model.training_frames, cfg.source("info.N_rand")  # doctest: +SKIP
(2, 5, 'mononerf_conf/exp/quarter_frame_training/Balloon2.conf')

The command line (steps 2, 4 and 5) is read by :func:`mononerf.config.cli.load_config`;
``python -m mononerf.config -c CONF [flags] [--set K=V ...]`` prints the resolved config and ``python -m
mononerf.config --markdown > docs/config.md`` regenerates the key table (:mod:`mononerf.config.cli`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Mapping, Sequence
from typing import Any

from mononerf.config.schema import KEYS, REQUIRED, Key
from mononerf.config.values import (
    COMMAND_LINE,
    DEFAULT,
    _check,
    _display,
    _hint,
    _lookup,
    _parse_assignment,
    read_hocon,
    retired,
)
from mononerf.errors import ConfigError

__all__ = ["Config", "Section", "parse_config_file", "read_hocon"]

_DEVICE = re.compile(r"^(auto|cpu|cuda(:\d+)?)$")


# ----------------------------------------------------------------------------------------------- the config object
class Section(Mapping):
    """A read-only sub-tree: attribute and item access (``sec.n_blocks``, ``sec["n_blocks"]``, ``sec["a.b"]``)."""

    __slots__ = ("_path", "_data")

    def __init__(self, path: str, data: dict[str, Any]):
        object.__setattr__(self, "_path", path)
        object.__setattr__(self, "_data", data)

    def __getattr__(self, name: str) -> Any:
        if name.startswith("_"):
            raise AttributeError(name)
        try:
            return self._data[name]
        except KeyError:
            full = f"{self._path}.{name}" if self._path else name
            raise AttributeError(f"no config key {full}{_hint(full)}") from None

    def __setattr__(self, name: str, value: Any) -> None:
        raise AttributeError("the config is read-only; use Config.with_overrides(...)")

    def __getitem__(self, key: str) -> Any:
        node: Any = self
        for part in key.split("."):
            if not isinstance(node, Section) or part not in node._data:
                full = f"{self._path}.{key}" if self._path else key
                raise KeyError(f"no config key {full}{_hint(full)}")
            node = node._data[part]
        return node

    def __iter__(self):
        return iter(self._data)

    def __len__(self) -> int:
        return len(self._data)

    def get(self, key: str, default: Any = None) -> Any:
        """Value (or Section) at the dotted ``key`` below this section, or ``default``."""
        try:
            return self[key]
        except KeyError:
            return default

    def to_dict(self) -> dict[str, Any]:
        """A nested plain-dict copy."""
        return {k: v.to_dict() if isinstance(v, Section) else (list(v) if isinstance(v, list) else v)
                for k, v in self._data.items()}

    def __reduce__(self):
        return Section, (self._path, self._data)

    def __repr__(self) -> str:
        return f"Section({self._path!r}, {self.to_dict()!r})"


def _nest(flat: Mapping[str, Any], path: str = "") -> Section:
    tree: dict[str, Any] = {}
    for key, value in flat.items():
        node = tree
        *parents, leaf = key.split(".")
        for p in parents:
            node = node.setdefault(p, {})
        node[leaf] = value

    def build(d: dict, p: str) -> Section:
        return Section(p, {k: build(v, f"{p}.{k}" if p else k) if isinstance(v, dict) else v for k, v in d.items()})

    return build(tree, path)


class Config(Section):
    """The validated configuration: sections ``model``, ``info``, ``train``, ``run``, ``quirks``.

    ``cfg.info.N_rand``, ``cfg.get("model.mlp_dynamic.n_blocks")``, ``cfg.to_dict()``, ``cfg.source(key)``,
    ``cfg.save(path)``. Sub-trees are :class:`Section` objects a module's ``from_conf`` can read.
    """

    __slots__ = ("_flat", "_sources", "_files")

    def __init__(self, flat: dict[str, Any], sources: dict[str, str], files: Sequence[str] = ()):
        root = _nest(flat)
        super().__init__("", root._data)
        object.__setattr__(self, "_flat", dict(flat))
        object.__setattr__(self, "_sources", dict(sources))
        object.__setattr__(self, "_files", tuple(files))

    @property
    def files(self) -> tuple[str, ...]:
        """Conf / txt files that were read, in the order they were applied."""
        return self._files

    def source(self, key: str) -> str:
        """Where ``key`` got its value: a file path, ``'command line'``, ``'override'``, ``'default'``, or
        ``'derived from <key>'``."""
        if key not in self._sources:
            raise KeyError(f"no config key {key}{_hint(key)}")
        return self._sources[key]

    def flat(self) -> dict[str, Any]:
        """``{dotted key: value}`` for every key."""
        return {k: list(v) if isinstance(v, list) else v for k, v in self._flat.items()}

    def with_overrides(self, overrides: Mapping[str, Any] | Sequence[str], source: str = "override") -> Config:
        """A new validated Config with some keys replaced (``{"train.N_iters": 2}`` or ``["train.N_iters=2"]``)."""
        builder = _Builder(self._flat, self._sources, self._files)
        builder.apply(_assignments(overrides, source))
        return builder.finish(None)

    def to_hocon(self, sources: bool = True) -> str:
        """The resolved config as HOCON text, every key explicit (``# source`` comments if ``sources``)."""
        lines = ["# MonoNeRF resolved configuration: every key explicit; load it again with",
                 "#   python -m mononerf.config -c <this file>   or   mononerf.config.parse_config_file(<this file>)",
                 f"# read from: {', '.join(self._files) or 'defaults only'}"]

        def emit(section: Section, indent: str) -> None:
            for name, value in section._data.items():
                if isinstance(value, Section):
                    lines.append(f"{indent}{name} {{")
                    emit(value, indent + "  ")
                    lines.append(f"{indent}}}")
                else:
                    key = f"{section._path}.{name}" if section._path else name
                    note = f"  # {' '.join(self._sources[key].splitlines())}" if sources else ""
                    lines.append(f"{indent}{name} = {_hocon_value(value)}{note}")

        emit(self, "")
        return "\n".join(lines) + "\n"

    def save(self, path: str) -> None:
        """Write :meth:`to_hocon` to ``path`` (parent folders are created)."""
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        with open(path, "w", encoding="utf-8") as fh:
            fh.write(self.to_hocon())

    def __reduce__(self):
        return Config, (self._flat, self._sources, self._files)

    def __repr__(self) -> str:
        return f"Config(files={list(self._files)})"


def _hocon_string(text: str) -> str:
    """``text`` as a quoted HOCON string that pyhocon reads back to the same characters (non-ASCII letters as they
    are; only the escapes pyhocon undoes: backslash, quote, newline, carriage return, tab)."""
    escaped = (text.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n").replace("\r", "\\r")
               .replace("\t", "\\t"))
    return f'"{escaped}"'


def _hocon_value(value: Any) -> str:
    """A key's value as HOCON text that reads back equal (strings through :func:`_hocon_string`)."""
    if isinstance(value, str):
        return _hocon_string(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_hocon_value(v) for v in value) + "]"
    return json.dumps(value)


def _assignments(overrides: Mapping[str, Any] | Sequence[str] | None, where: str) -> list[tuple[str, Any, str]]:
    if overrides is None:
        return []
    if isinstance(overrides, Mapping):
        return [(k, v, where) for k, v in overrides.items()]
    if isinstance(overrides, str):
        overrides = [overrides]
    return [(*_parse_assignment(item, where), where) for item in overrides]


class _Builder:
    """Applies layers of values onto the defaults, checking every key as it arrives."""

    def __init__(self, values: Mapping[str, Any] | None = None, sources: Mapping[str, str] | None = None,
                 files: Sequence[str] = ()):
        self.values = {k.name: k.default for k in KEYS.values()} if values is None else dict(values)
        self.sources = {k: DEFAULT for k in KEYS} if sources is None else dict(sources)
        self.files = list(files)

    def apply(self, items: Sequence[tuple[str | Key, Any, str]]) -> None:
        """Set each (key, value, where it came from), checked against the schema."""
        for name, value, where in items:
            if isinstance(name, str) and retired(name, value, where):
                continue  # a run folder's config from before the key was removed
            key = name if isinstance(name, Key) else _lookup(name, where)
            self.values[key.name] = _check(key, value, where)
            self.sources[key.name] = where

    def apply_hocon(self, path: str, includes: bool = True) -> None:
        values, sources, files = read_hocon(path, includes)
        self.files += files
        self.apply([(k, v, sources[k]) for k, v in values.items()])

    def finish(self, conf: str | None) -> Config:
        head = conf or COMMAND_LINE
        missing = [k for k, v in self.values.items() if v is REQUIRED]
        if missing:
            key = KEYS[missing[0]]
            flag = f", or pass {key.flags[0]}" if key.flags else ""
            more = f" (and {len(missing) - 1} more: {', '.join(missing[1:4])}...)" if len(missing) > 1 else ""
            raise ConfigError(f"{head}: missing required value {key.name} (set it in the conf, e.g. by including "
                              f"mononerf_conf/default.conf{flag}){more}")
        if self.values["quirks.random_static_frame"] is None:
            self.values["quirks.random_static_frame"] = self.values["model.random_static_frame"]
            self.sources["quirks.random_static_frame"] = "derived from model.random_static_frame"
        self._cross_checks()
        order = {k: i for i, k in enumerate(KEYS)}
        flat = dict(sorted(self.values.items(), key=lambda kv: order[kv[0]]))
        return Config(flat, self.sources, self.files)

    def _cross_checks(self) -> None:
        v, s = self.values, self.sources
        if v["info.no_ndc"] != (not v["model.use_ndc"]):
            raise ConfigError(f"{s['info.no_ndc']}: info.no_ndc = {json.dumps(v['info.no_ndc'])} contradicts "
                              f"model.use_ndc = {json.dumps(v['model.use_ndc'])} (from {s['model.use_ndc']}); "
                              "info.no_ndc must equal not model.use_ndc")
        for key in ("info.expname", "train.fast_render_basename"):  # parts of the run folder's name
            name = v[key]
            if name and ("/" in name or "\\" in name or "\0" in name):
                raise ConfigError(f"{s[key]}: {key} = {name!r} must be a name, not a path (no '/', '\\'): the run "
                                  "folder {basedir}/{W}gpus{expname} must stay inside info.basedir")
        evaldir = v["info.evaldir"]
        if os.path.isabs(evaldir) or ".." in re.split(r"[/\\]", evaldir) or "\0" in evaldir or not evaldir.strip():
            raise ConfigError(f"{s['info.evaldir']}: info.evaldir = {evaldir!r} must be a folder inside the run "
                              "folder (relative, without '..')")
        if not _DEVICE.match(v["run.device"]):
            raise ConfigError(f"{s['run.device']}: run.device must be auto, cpu, cuda or cuda:N, got "
                              f"{v['run.device']!r}")
        if v["train.N_importance"] != 0:
            raise ConfigError(f"{s['train.N_importance']}: train.N_importance must be 0 (fine sampling is not "
                              "implemented; the original raised NotImplementedError too)")
        if v["model.use_global_encoder"]:
            raise ConfigError(f"{s['model.use_global_encoder']}: model.use_global_encoder = true is not supported "
                              "(the original's global-encoder path is dead code)")
        if v["info.use_lambda_decay"] and v["info.decay_iteration"] == 0:
            raise ConfigError(f"{s['info.decay_iteration']}: info.decay_iteration = 0 with info.use_lambda_decay "
                              "= true divides by zero (method.md §8.30); use null (max(25, frames)) or a positive value")
        if v["train.fast_render_iter"] != 0 and not v["info.fast_render"]:
            raise ConfigError(f"{s['train.fast_render_iter']}: train.fast_render_iter needs info.fast_render = true "
                              "(an unseen-scene conf, mononerf_conf/exp/generation_from_Balloon1_Balloon2/)")


# ----------------------------------------------------------------------------------------------- entry points
def parse_config_file(path: str, overrides: Mapping[str, Any] | Sequence[str] | None = None,
                      includes: bool = True) -> Config:
    """Load and validate a HOCON conf (with its includes), then apply ``overrides``.

    Args:
        path: the conf file.
        overrides: ``{dotted key: value}`` or ``["key=HOCON literal", ...]``; their source is ``'override'``.
        includes: False for a run folder's ``config.conf`` (the resolved config): an include there is refused.
    """
    builder = _Builder()
    builder.apply_hocon(path, includes)
    builder.apply(_assignments(overrides, "override"))
    return builder.finish(_display(path))
