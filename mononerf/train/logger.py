"""Run logging: a text log, tensorboard scalars and images (method.md §5.4), only on the main process."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import torch

from mononerf.utils.flowviz import flow_to_rgb
from mononerf.utils.images import to_uint8


def percentile(values: torch.Tensor, q: float) -> torch.Tensor:
    """The ``q``-th percentile without interpolation (nearest rank): the ``1 + round(q/100 · (n − 1))``-th smallest
    value, as the original's ``percentile`` (``numpy.percentile(..., method="nearest")`` up to rounding ties)."""
    flat = values.reshape(-1)
    k = 1 + round(0.01 * float(q) * (flat.numel() - 1))
    return flat.kthvalue(k).values


def normalize_depth(depth: torch.Tensor, near: float = 0.0) -> torch.Tensor:
    """``clamp((d − near) / p97, 0, 1)`` with ``p97`` the nearest-rank 97th percentile of ``d − near``, for display
    (the original's ``normalize_depth``; a zero percentile, which it divides by, counts as 1e-8 here)."""
    d = depth - near
    return (d / percentile(d, 97).clamp_min(1e-8)).clamp(0, 1)


class RunLogger:
    """``{run}/train.log`` and tensorboard events in ``{run}/tensorboard``; a no-op when ``enabled`` is False."""

    def __init__(self, run_dir: Path, enabled: bool = True):
        self.enabled = enabled
        self.writer = None
        self.log = logging.getLogger(f"mononerf.run.{run_dir}")
        if not enabled:
            return
        from torch.utils.tensorboard import SummaryWriter

        from mononerf.pipeline.checkpoint import write_error

        try:
            run_dir.mkdir(parents=True, exist_ok=True)
            self.log.setLevel(logging.INFO)
            self.log.propagate = False
            if not self.log.handlers:
                handler = logging.FileHandler(run_dir / "train.log")
                handler.setFormatter(logging.Formatter("%(asctime)s %(message)s"))
                self.log.addHandler(handler)
            self.writer = SummaryWriter(str(run_dir / "tensorboard"))
        except OSError as exc:
            raise write_error(run_dir, exc, "the run's log (train.log, tensorboard/)") from None
        self.image_dir = run_dir / "tboard_val_imgs"

    def text(self, line: str) -> None:
        if self.enabled:
            self.log.info(line)

    def scalars(self, stage: str, step: int, logs: dict, lr: float) -> None:
        if self.writer is None:
            return
        for key, value in logs.items():
            self.writer.add_scalar(f"{stage}/{key}", float(value), step)
        self.writer.add_scalar(f"{stage}/lr", lr, step)

    def images(self, stage: str, step: int, out: dict, gt: torch.Tensor, flows: dict | None = None,
               scene_ids: list[int] | None = None) -> None:
        """Per scene b: rgb, depth (normalised), accumulation, blending of a full render next to the frame, and the
        induced and ground-truth flows (same colour scale per direction). ``scene_ids``: the run's index of each
        rendered scene (one group of a run whose scenes differ in size; default 0..S-1)."""
        if self.writer is None:
            return
        import imageio.v3 as iio

        self.image_dir.mkdir(exist_ok=True)
        suffix = "s" if stage == "static" else "full"
        for j in range(gt.shape[0]):
            b = j if scene_ids is None else scene_ids[j]
            rgb = out[f"rgb_map_{suffix}"][j]
            self.writer.add_image(f"{stage}/rgb_{b}", to_uint8(rgb), step, dataformats="HWC")
            self.writer.add_image(f"{stage}/rgb_holdout_{b}", to_uint8(gt[j]), step, dataformats="HWC")
            self.writer.add_image(f"{stage}/depth_{b}", to_uint8(normalize_depth(out[f"depth_map_{suffix}"][j])),
                                  step, dataformats="HW")
            self.writer.add_image(f"{stage}/acc_{b}", to_uint8(out[f"acc_map_{suffix}"][j]), step, dataformats="HW")
            if "dynamicness_map" in out:
                self.writer.add_image(f"{stage}/dynamicness_{b}", to_uint8(out["dynamicness_map"][j]), step,
                                      dataformats="HW")
                for k in ("rgb_map_s", "rgb_map_d"):
                    self.writer.add_image(f"{stage}/{k[4:]}_{b}", to_uint8(out[k][j]), step, dataformats="HWC")
            for key in ("f", "b"):
                if flows and f"induced_flow_{key}" in flows:
                    ind, ref = flows[f"induced_flow_{key}"][j].numpy(), flows[f"flow_{key}_gt"][j].numpy()
                    top = float(max(np.linalg.norm(ref, axis=-1).max(), 1e-3))
                    self.writer.add_image(f"{stage}/induced_flow_{key}_{b}", flow_to_rgb(ind, top), step,
                                          dataformats="HWC")
                    self.writer.add_image(f"{stage}/flow_{key}_gt_{b}", flow_to_rgb(ref, top), step,
                                          dataformats="HWC")
            mse = torch.mean((rgb - gt[j]) ** 2)
            self.writer.add_scalar(f"{stage}/psnr_holdout_{b}", float(-10 * torch.log10(mse)), step)
            iio.imwrite(self.image_dir / f"{stage}_{step:06d}_{b:02d}.png", to_uint8(rgb))

    def close(self) -> None:
        if self.writer is not None:
            self.writer.close()
