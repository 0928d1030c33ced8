"""The original MonoNeRF's state-dict layout and ours (``tests/data/original-checkpoint-keys.json``).

Three differences, all in names, none in values:

* renames: the static head's view branch (``views_linears``, ``feature_linear``, ``alpha_linear``, ``rgb_linear``)
  sits under ``mlp_static.view_head.`` here and directly under ``mlp_static.`` in the original;
* aliases: the original registers parts of ``mlp_dynamic`` a second time (top-level ``flow_net.*``, ``blocks.*``,
  ``global_blocks.*``, ``lin_global_z.*``, ``flow_fc.*`` and ``mlp_dynamic.vector_field.*``), so its files hold
  those tensors twice under two names; we keep each once;
* unused: the original builds ``temporal_linear.1/.2`` and ``temporal_linear_fuse.1/.2`` of the dynamic head but
  nothing reads them (only index 0 is used); we do not build them.

:func:`to_ours` maps an original state dict to our names (and reports what it dropped), :func:`to_original` the other
way (aliases sharing one tensor, the unused layers written as zeros), so a model trained here loads in the original.
"""

from __future__ import annotations

import re
from collections import OrderedDict

import torch

VIEW_HEAD = ("views_linears", "feature_linear", "alpha_linear", "rgb_linear")
_OURS_VIEW = re.compile(r"^mlp_static\.view_head\.(" + "|".join(VIEW_HEAD) + r")\.")
_ORIG_VIEW = re.compile(r"^mlp_static\.(" + "|".join(VIEW_HEAD) + r")\.")

# the original's aliases: (alias prefix, prefix of the tensor it shares); ``{i}`` stands for a block index
ALIASES = (
    ("mlp_dynamic.vector_field.fc_p.", "mlp_dynamic.lin_in."),
    ("mlp_dynamic.vector_field.blocks.", "mlp_dynamic.global_blocks."),
    ("mlp_dynamic.vector_field.fc_c.", "mlp_dynamic.lin_global_z."),
    ("mlp_dynamic.vector_field.fc_out.", "mlp_dynamic.sf_linear."),
    ("flow_net.0.", "mlp_dynamic.lin_in."),
    ("flow_net.block{i}.", "mlp_dynamic.global_blocks.{i}."),
    ("blocks.", "mlp_dynamic.global_blocks."),
    ("global_blocks.", "mlp_dynamic.global_blocks."),
    ("lin_global_z.", "mlp_dynamic.lin_global_z."),
    ("flow_fc.", "mlp_dynamic.sf_linear."),
)


def _prefix_regex(template: str) -> re.Pattern:
    return re.compile("^" + re.escape(template).replace(re.escape("{i}"), r"(?P<i>\d+)"))


_ALIAS_TO_SOURCE = tuple((_prefix_regex(a), s) for a, s in ALIASES)
# the original's layers that nothing reads: every temporal_linear / temporal_linear_fuse but the first
UNUSED = re.compile(r"^mlp_dynamic\.temporal_linear(_fuse)?\.([1-9]\d*)\.")
UNUSED_COPIES = 2  # the original builds three of each (indices 0, 1, 2)


def alias_target(key: str) -> str | None:
    """The canonical name of the tensor an original alias ``key`` shares, or None when ``key`` is no alias."""
    for pattern, source in _ALIAS_TO_SOURCE:
        m = pattern.match(key)
        if m:
            return source.format(**m.groupdict()) + key[m.end():]
    return None


def is_original_layout(state: dict) -> bool:
    """True when ``state`` is named the original's way (its static view branch directly under ``mlp_static.``)."""
    return any(_ORIG_VIEW.match(k) for k in state)


def to_ours(state: dict) -> tuple["OrderedDict[str, torch.Tensor]", list[str]]:
    """An original (or our own) state dict under our names. Returns (state, names dropped as unused by the model):
    aliases are dropped silently (the canonical tensor is kept), the unused temporal layers are reported."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    unused: list[str] = []
    for key, value in state.items():
        if UNUSED.match(key):
            unused.append(key)
            continue
        target = alias_target(key)
        if target is not None:
            if target not in state:  # an alias without its tensor: keep it under the tensor's name
                out.setdefault(target, value)
            continue
        out[_ORIG_VIEW.sub(r"mlp_static.view_head.\1.", key, count=1)] = value
    return out, unused


def to_original(state: dict) -> "OrderedDict[str, torch.Tensor]":
    """Our state dict in the original's layout: view branch renamed, the unused temporal layers added as zeros of
    index 0's shape, every alias the same tensor object as its canonical one (``torch.save`` then stores it once,
    as the original's files do)."""
    out: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key, value in state.items():
        out[_OURS_VIEW.sub(r"mlp_static.\1.", key, count=1)] = value
        m = re.match(r"^(mlp_dynamic\.temporal_linear(?:_fuse)?)\.0\.bias$", key)
        if m and f"{m.group(1)}.0.weight" in state:
            for j in range(1, UNUSED_COPIES + 1):
                for part in ("weight", "bias"):
                    out[f"{m.group(1)}.{j}.{part}"] = torch.zeros_like(state[f"{m.group(1)}.0.{part}"])
    keys = list(out)
    aliases: OrderedDict[str, torch.Tensor] = OrderedDict()
    for alias, source in ALIASES:
        pattern = _prefix_regex(source)
        for key in keys:
            m = pattern.match(key)
            if m:
                aliases[alias.format(**m.groupdict()) + key[m.end():]] = out[key]
    # the original's order: the head's own aliases after its layers, the top-level ones at the end
    ordered: OrderedDict[str, torch.Tensor] = OrderedDict()
    for key in keys:
        ordered[key] = out[key]
    for key, value in aliases.items():
        if key.startswith("mlp_dynamic."):
            ordered[key] = value
    for key, value in aliases.items():
        if not key.startswith("mlp_dynamic."):
            ordered[key] = value
    return ordered
