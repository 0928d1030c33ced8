"""What a key of the configuration is (:class:`Key`) and the modules that read keys (:mod:`mononerf.config.schema`
has the table; this module is the part the table's two files share).

Types are small tags checked by :mod:`mononerf.config`: ``bool``, ``int``, ``float`` (an int is accepted),
``str``, ``list[int]``, ``list[str]``, ``int|list[int]``, ``any``; a trailing ``?`` also allows ``null``/None.
``used`` names the module that reads the key, or starts with ``unused:`` / ``ignored:`` and says why.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

REQUIRED: Any = type("Required", (), {"__repr__": lambda self: "REQUIRED"})()
"""Sentinel default of a key the conf (or the command line) must give."""

SECTIONS = ("model", "info", "train", "run", "quirks")

# Modules that read the keys (several are written by later issues; these are their intended paths).
MODEL = "mononerf/models/mononerf.py"
HEADS = "mononerf/models/heads.py"
VELOCITY = "mononerf/models/trajectory.py"
VIDEO_ENC = "mononerf/models/encoders.py"
IMAGE_ENC = "mononerf/models/spatial_encoder.py"
EMBED = "mononerf/models/embedder.py"
FACTORY = "mononerf/models/mononerf.py"
DATASET = "mononerf/data/dataset.py"
RENDER_PATH = "mononerf/geometry/poses.py"
RAYS = "mononerf/geometry/rays.py"
VOLUME = "mononerf/render/composite.py"
RENDERER = "mononerf/render/renderer.py"
LOSSES = "mononerf/losses/weights.py"
LOSS_TERMS = "mononerf/losses/total.py"
TRAINER = "mononerf/train/trainer.py"
CHECKPOINT = "mononerf/pipeline/checkpoint.py"
FEATURE_CACHE = "mononerf/pipeline/feature_cache.py"
DIST = "mononerf/train/distributed.py"
EVAL = "mononerf/eval/renders.py"
TRAIN_CLI = "mononerf/train/cli.py"
PIPELINE = "mononerf/pipeline/pipeline.py"
CONFIG = "mononerf/config/loader.py"
OPTIM = "mononerf/train/optim.py"
# The names of mononerf/models/spatial_encoder.py's BACKBONES_2D (the config stays free of PyTorch; a test keeps them
# equal): model.encoder_2d.type's choices.
BACKBONES_2D_NAMES = ("resnet18", "resnet34", "resnet50", "resnet101", "resnet152")
_RECIPE = "new key (not in the original): a lever of the training recipe, docs/training.md"


@dataclass(frozen=True)
class Key:
    """One leaf key of the configuration.

    Attributes:
        name: dotted key, e.g. ``"model.mlp_dynamic.n_blocks"``.
        type: type tag (see the module docstring).
        default: value used when no layer gives the key; ``REQUIRED`` if a layer must; ``None`` + ``note`` for a
            default the reader computes at run time.
        meaning: one line.
        used: reading module, or ``unused: why`` / ``ignored: why``.
        flags: the original's command-line flags that set this key (first = long name).
        choices: allowed values, if the key is an enumeration.
        cli_default: the original parser's default where it differs from ``default`` (flags of ``info.*`` keys,
            whose value the original always took from the conf).
        note: extra remark for the docs (dynamic defaults, deviations).
        min_value: smallest allowed value of a numeric key (None = no bound); values must also be finite.
        min_exclusive: the bound itself is not allowed (``> min_value``).
    """

    name: str
    type: str
    default: Any
    meaning: str
    used: str
    flags: tuple[str, ...] = ()
    choices: tuple[Any, ...] | None = None
    cli_default: Any = REQUIRED
    note: str = ""
    min_value: float | None = None
    min_exclusive: bool = False


def _k(name, type_, default, meaning, used, *flags, choices=None, cli_default=REQUIRED, note="", min_value=None,
       min_exclusive=False):
    return Key(name, type_, default, meaning, used, tuple(flags), choices, cli_default, note, min_value,
               min_exclusive)
