"""Mask R-CNN masks of people and other movers (method.md §6.2 ``generate_data`` and ``generate_motion_mask`` part (b)).

torchvision's ``maskrcnn_resnet50_fpn`` with its COCO weights file ``maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth``.
The file is optional: without it the background masks keep every pixel and the motion masks come from the
epipolar test alone (the step says so once).
"""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import torch

from mononerf.errors import MissingWeightsError
from mononerf.models.weights import load_checkpoint_state, load_state_strict
from mononerf.preprocess.common import find_any_weight, weight_dirs

MASKRCNN_FILE = "maskrcnn_resnet50_fpn_coco-bf2d0c1e.pth"
MASKRCNN_URLS = {MASKRCNN_FILE: f"https://download.pytorch.org/models/{MASKRCNN_FILE}"}
SCORE_THRESHOLD = 0.5
MASK_THRESHOLD = 0.5
PERSON = (1,)
#: COCO labels the original's motion masks treat as movers: person, bicycle, motorcycle, truck, cat, dog,
#: umbrella, snowboard, skateboard.
MOVER_LABELS = (1, 2, 4, 8, 17, 18, 28, 36, 41)


def find_maskrcnn_weights(weights_dir: str | os.PathLike | None = None) -> Path | None:
    """The Mask R-CNN file if present, else None."""
    try:
        return find_any_weight([MASKRCNN_FILE], weight_dirs(weights_dir, torch_hub=True), what="Mask R-CNN",
                               urls=MASKRCNN_URLS)
    except MissingWeightsError:
        return None


def missing_notice(weights_dir: str | os.PathLike | None = None) -> str:
    dirs = ", ".join(str(d) for d in weight_dirs(weights_dir, torch_hub=True))
    return (f"notice: {MASKRCNN_FILE} not found (looked in {dirs}); {{what}}. "
            f"For people/vehicle masks put it there from {MASKRCNN_URLS[MASKRCNN_FILE]}")


def load_maskrcnn(path: str | os.PathLike):
    """torchvision ``maskrcnn_resnet50_fpn`` with the weights of ``path`` (strict), eval mode."""
    from torchvision.models.detection import maskrcnn_resnet50_fpn

    model = maskrcnn_resnet50_fpn(weights=None, weights_backbone=None, progress=False)
    load_state_strict(model, load_checkpoint_state(path), source=str(path))
    return model.eval()


@torch.no_grad()
def object_mask(model, rgb: np.ndarray, labels=PERSON, device: torch.device | str = "cpu") -> np.ndarray:
    """(H, W) bool: pixels of detections with a label in ``labels``, score > 0.5 and mask > 0.5."""
    x = torch.from_numpy(np.array(rgb, dtype=np.uint8)).permute(2, 0, 1).float().div(255.0).to(device)
    pred = model([x])[0]
    out = torch.zeros(rgb.shape[:2], dtype=torch.bool, device=x.device)
    for mask, score, label in zip(pred["masks"], pred["scores"], pred["labels"]):
        if score.item() > SCORE_THRESHOLD and int(label) in labels:
            out |= mask[0] > MASK_THRESHOLD
    return out.cpu().numpy()
