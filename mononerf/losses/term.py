"""A row of the dynamic-stage loss table (:data:`mononerf.losses.total.TERMS`): the :class:`Term` and the
:class:`LossInputs` its function reads."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

from torch import Tensor

from mononerf.data.dataset import RayBatch
from mononerf.geometry.cameras import Pinhole
from mononerf.losses.weights import LossFlags, Weight
from mononerf.quirks import Quirks


@dataclass
class LossInputs:
    """What every term may read: the render output, the step's rays and the settings (see
    :func:`mononerf.losses.total.dynamic_stage_losses` for each field)."""

    outputs: dict[str, Tensor]  # the render's outputs by name (mononerf/render/outputs.py)
    batch: RayBatch
    c2w_all: Tensor
    camera: Pinhole
    num_frames: int
    num_static: int
    flags: LossFlags
    quirks: Quirks
    near: float
    far: float

    @property
    def static_rays(self) -> Tensor:
        """(S, R) bool: the static-sampled rays (Ms = 1)."""
        return self.batch.static_mask[..., 0].bool()


@dataclass(frozen=True)
class Term:
    """One row of the dynamic-stage table: ``fn(inputs)`` returns ``{key: 0-d tensor}`` for (a subset of, in
    order) ``keys``; it runs when ``gate`` (a :class:`LossFlags` attribute, None = always) is true, reads the
    render outputs ``needs`` and ``weights`` says how the total weighs its keys (a key without one is logged
    only)."""

    keys: tuple[str, ...]
    fn: Callable[[LossInputs], dict[str, Tensor]]
    gate: str | None = None
    needs: tuple[str, ...] = ()
    weights: Mapping[str, Weight] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if not set(self.weights) <= set(self.keys):
            raise ValueError(f"weights of keys the term does not write: {sorted(set(self.weights) - set(self.keys))}")
