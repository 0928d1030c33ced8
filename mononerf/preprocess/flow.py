"""Optical flow with torchvision's RAFT (``raft_large``), method.md §6.2 ``generate_flow``.

For each consecutive pair of ``images/`` (sorted) the step computes forward flow RAFT(i, i+1) and backward flow
RAFT(i+1, i) (frames padded to multiples of 8 by edge replication, split evenly as the original's InputPadder does;
20 refinement iterations as the original's ``iters=20``), then the forward–backward consistency masks, and writes

    flow/{i:03d}_fwd.npz       keys ``flow`` (H, W, 2) float32 [dx, dy] pixels, ``mask`` (H, W) bool
    flow/{i+1:03d}_bwd.npz     the same for the backward flow
    flow_png/{i:03d}_fwd.png, {i:03d}_fwd_mask.png, …   colour-coded flows and masks (not read by training)

Without RAFT weights (``--flow classical``, or ``auto`` when no RAFT file is found) the flow is OpenCV's DIS
optical flow (:func:`classical_flow`, no weights; measured against the synthetic scenes' true flow in
docs/real-video.md), with the same consistency masks and files.

Weights: torchvision's own ``raft_large`` files load as they are; the original RAFT checkpoint ``raft-things.pth``
(a DataParallel state dict with the princeton-vl key layout) is converted by :func:`convert_original_raft_state`.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Mapping

import cv2
import numpy as np
import torch
from torch.nn import functional as F

from mononerf.models.weights import load_checkpoint_state, load_state_strict
from mononerf.preprocess.common import PreprocessError, find_any_weight, list_images, progress, weight_dirs
from mononerf.utils.folders import staged

ORIGINAL_RAFT_FILE = "raft-things.pth"
TORCHVISION_RAFT_FILES = (
    "raft_large_C_T_V1-22a6c225.pth",  # torchvision's port of raft-things.pth
    "raft_large_C_T_V2-1bb1363a.pth",
    "raft_large_C_T_SKHT_V2-ff5fadd5.pth",
    "raft_large_C_T_SKHT_V1-0b8c9e55.pth",
)
RAFT_URLS = {
    ORIGINAL_RAFT_FILE: "https://dl.dropboxusercontent.com/s/4j4z58wuv8o0mfz/models.zip (RAFT repo's models.zip) "
                        "or DynamicNeRF's weights.zip https://filebox.ece.vt.edu/~chengao/free-view-video/weights.zip",
    **{n: f"https://download.pytorch.org/models/{n}" for n in TORCHVISION_RAFT_FILES},
}
RAFT_ITERS = 20  # the original's generate_flow (iters=20, test_mode=True)
CONSISTENCY_ALPHA = (0.5, 0.5)  # |f + f_warped| < a1 (|f| + |f_warped|) + a2


# ------------------------------------------------------------------------------------------------ weight conversion

_ENCODER_RULES = [  # (pattern on the key after fnet./cnet., replacement); first match wins
    (r"^conv1\.", "convnormrelu.0."),
    (r"^norm1\.", "convnormrelu.1."),
    (r"^conv2\.", "conv."),
    (r"^(layer\d\.\d)\.conv1\.", r"\1.convnormrelu1.0."),
    (r"^(layer\d\.\d)\.norm1\.", r"\1.convnormrelu1.1."),
    (r"^(layer\d\.\d)\.conv2\.", r"\1.convnormrelu2.0."),
    (r"^(layer\d\.\d)\.norm2\.", r"\1.convnormrelu2.1."),
    (r"^(layer\d\.\d)\.downsample\.", r"\1.downsample."),
]
_UPDATE_RULES = {
    "encoder.convc1.": "update_block.motion_encoder.convcorr1.0.",
    "encoder.convc2.": "update_block.motion_encoder.convcorr2.0.",
    "encoder.convf1.": "update_block.motion_encoder.convflow1.0.",
    "encoder.convf2.": "update_block.motion_encoder.convflow2.0.",
    "encoder.conv.": "update_block.motion_encoder.conv.0.",
    "gru.convz1.": "update_block.recurrent_block.convgru1.convz.",
    "gru.convr1.": "update_block.recurrent_block.convgru1.convr.",
    "gru.convq1.": "update_block.recurrent_block.convgru1.convq.",
    "gru.convz2.": "update_block.recurrent_block.convgru2.convz.",
    "gru.convr2.": "update_block.recurrent_block.convgru2.convr.",
    "gru.convq2.": "update_block.recurrent_block.convgru2.convq.",
    "flow_head.conv1.": "update_block.flow_head.conv1.",
    "flow_head.conv2.": "update_block.flow_head.conv2.",
    "mask.0.": "mask_predictor.convrelu.0.",
    "mask.2.": "mask_predictor.conv.",
}


def is_original_raft_state(state: Mapping[str, torch.Tensor]) -> bool:
    """True for a state dict in the princeton-vl RAFT layout (``fnet.``/``cnet.``/``update_block.gru.``)."""
    return any(k.removeprefix("module.").startswith(("fnet.", "cnet.")) for k in state)


def convert_original_raft_state(state: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """Original RAFT (large) keys → torchvision ``raft_large`` keys.

    ``module.`` (DataParallel) is stripped; ``fnet``/``cnet`` become ``feature_encoder``/``context_encoder`` with
    conv+norm pairs as ``convnormrelu`` blocks; the update block's motion encoder, separable GRU and flow head are
    renamed; ``update_block.mask.{0,2}`` becomes ``mask_predictor``. The original registers each strided block's
    ``norm3`` twice (also as ``downsample.1``): the ``norm3`` copy is dropped. An unknown key raises
    :class:`PreprocessError` naming it.
    """
    out: dict[str, torch.Tensor] = {}
    for key, value in state.items():
        k = key.removeprefix("module.")
        if k.startswith(("fnet.", "cnet.")):
            head, rest = k.split(".", 1)
            if re.match(r"^layer\d\.\d\.norm3\.", rest):
                continue
            for pattern, repl in _ENCODER_RULES:
                new, n = re.subn(pattern, repl, rest)
                if n:
                    out[("feature_encoder." if head == "fnet" else "context_encoder.") + new] = value
                    break
            else:
                raise PreprocessError(f"original RAFT checkpoint: unknown key {key!r}")
        elif k.startswith("update_block."):
            rest = k.removeprefix("update_block.")
            for old, new in _UPDATE_RULES.items():
                if rest.startswith(old):
                    out[new + rest[len(old):]] = value
                    break
            else:
                raise PreprocessError(f"original RAFT checkpoint: unknown key {key!r}")
        else:
            raise PreprocessError(f"original RAFT checkpoint: unknown key {key!r}")
    return out


def find_raft_weights(weights_dir: str | os.PathLike | None = None) -> Path:
    """The first RAFT file found (the original's ``raft-things.pth``, then torchvision's files)."""
    return find_any_weight([ORIGINAL_RAFT_FILE, *TORCHVISION_RAFT_FILES], weight_dirs(weights_dir, torch_hub=True),
                           what="optical flow (RAFT)", urls=RAFT_URLS)


def load_raft(path: str | os.PathLike):
    """torchvision ``raft_large`` with the weights of ``path`` (original RAFT files converted), in eval mode."""
    from torchvision.models.optical_flow import raft_large

    state = load_checkpoint_state(path)
    if is_original_raft_state(state):
        state = convert_original_raft_state(state)
    model = raft_large(weights=None, progress=False)
    load_state_strict(model, state, source=str(path))
    return model.eval()


# ------------------------------------------------------------------------------------------------------- inference

RAFT_MIN_SIZE = 128  # torchvision's RAFT needs feature maps of at least 16 x 16 for its correlation pyramid


def _pad_to_8(height: int, width: int) -> tuple[int, int, int, int]:
    """(left, right, top, bottom) replicate padding to multiples of 8, split as evenly as the original's padder.

    Frames smaller than 128 pixels on a side are padded up to 128 (torchvision's RAFT refuses them; the original's
    RAFT has no such limit, and such clips are only met in tests).
    """
    ph = max((-height) % 8, RAFT_MIN_SIZE - height)
    pw = max((-width) % 8, RAFT_MIN_SIZE - width)
    return pw // 2, pw - pw // 2, ph // 2, ph - ph // 2


@torch.no_grad()
def raft_flow(model, img1: np.ndarray, img2: np.ndarray, iters: int = RAFT_ITERS,
              device: torch.device | str = "cpu") -> np.ndarray:
    """(H, W, 2) float32 flow [dx, dy] from ``img1`` to ``img2`` (both (H, W, 3) uint8 RGB)."""
    height, width = img1.shape[:2]
    pad = _pad_to_8(height, width)
    x = torch.from_numpy(np.stack([img1, img2])).permute(0, 3, 1, 2).float().to(device)
    x = F.pad(2 * (x / 255.0) - 1.0, pad, mode="replicate")
    flow = model(x[:1], x[1:], num_flow_updates=iters)[-1][0]
    flow = flow[:, pad[2]:pad[2] + height, pad[0]:pad[0] + width]
    return flow.permute(1, 2, 0).cpu().numpy().astype(np.float32)


def warp_by_flow(img: np.ndarray, flow: np.ndarray) -> np.ndarray:
    """``img`` sampled at x + flow (bicubic, zeros outside), as the original's ``warp_flow``."""
    height, width = flow.shape[:2]
    grid = flow.astype(np.float32).copy()
    grid[..., 0] += np.arange(width, dtype=np.float32)
    grid[..., 1] += np.arange(height, dtype=np.float32)[:, None]
    return cv2.remap(img.astype(np.float32), grid, None, cv2.INTER_CUBIC, borderMode=cv2.BORDER_CONSTANT)


def consistency_masks(fwd: np.ndarray, bwd: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Forward–backward consistency (method.md §6.2): a pixel is kept when ``|f + f_other(x + f)|`` is below
    ``0.5 (|f| + |f_other(x + f)|) + 0.5``. Returns (fwd_mask, bwd_mask) (H, W) bool."""
    a1, a2 = CONSISTENCY_ALPHA

    def one(f, other):
        warped = warp_by_flow(other, f)
        err = np.linalg.norm(f + warped, axis=-1)
        return err < a1 * (np.linalg.norm(f, axis=-1) + np.linalg.norm(warped, axis=-1)) + a2

    return one(fwd, bwd), one(bwd, fwd)


def classical_flow(img1: np.ndarray, img2: np.ndarray) -> np.ndarray:
    """(H, W, 2) float32 flow [dx, dy] from ``img1`` to ``img2`` ((H, W, 3) uint8 RGB) by OpenCV's DIS optical flow
    (preset MEDIUM: coarse-to-fine patch search with variational refinement) on the grey images; no weights."""
    dis = cv2.DISOpticalFlow_create(cv2.DISOPTICAL_FLOW_PRESET_MEDIUM)
    grey1, grey2 = (cv2.cvtColor(np.ascontiguousarray(x), cv2.COLOR_RGB2GRAY) for x in (img1, img2))
    return dis.calc(grey1, grey2, None).astype(np.float32)


FLOW_METHODS = ("auto", "raft", "classical")


def flow_function(method: str = "auto", weights: str | os.PathLike | None = None,
                  weights_dir: str | os.PathLike | None = None, iters: int = RAFT_ITERS, device: str = "cpu",
                  log=print):
    """(f(img1, img2) → flow, a description) for ``method``: RAFT (its weights must exist), the classical flow, or
    ``auto``: RAFT when a weight file is found, otherwise the classical flow with a notice."""
    from mononerf.errors import MissingWeightsError

    if method not in FLOW_METHODS:
        raise PreprocessError(f"--flow {method!r}: choose one of {', '.join(FLOW_METHODS)}")
    if method != "classical":
        try:
            path = Path(weights) if weights else find_raft_weights(weights_dir)
        except MissingWeightsError as err:
            if method == "raft":
                raise
            log(f"notice: {err} Using the classical flow instead (OpenCV DIS; --flow raft to insist on RAFT).")
        else:
            model = load_raft(path).to(device)
            return (lambda a, b: raft_flow(model, a, b, iters, device)), f"RAFT, {iters} iterations"
    return classical_flow, "classical: OpenCV DIS"


def run_flow(scene_dir: str | os.PathLike, weights: str | os.PathLike | None = None,
             weights_dir: str | os.PathLike | None = None, iters: int = RAFT_ITERS, device: str = "cpu",
             show_progress: bool = True, source: str = "images", method: str = "raft", log=print) -> tuple[int, str]:
    """Write ``flow/`` and ``flow_png/`` for the consecutive pairs of ``source`` (``images/`` as the original, or
    ``images_2/``: 4x fewer pixels; the loader rescales flow to the training size) with ``method`` (see
    :func:`flow_function`); returns the number of pairs and the method used."""
    from mononerf.data.synthetic import save_npz_deterministic
    from mononerf.utils.flowviz import flow_to_rgb

    scene_dir = Path(scene_dir)
    files = list_images(scene_dir / source, "frames for optical flow")
    if len(files) < 2:
        raise PreprocessError(f"{scene_dir / source}: optical flow needs at least 2 frames, found {len(files)}")
    flow, used = flow_function(method, weights, weights_dir, iters, device, log)
    frames = [cv2.imread(str(f), cv2.IMREAD_COLOR)[..., ::-1].copy() for f in files]
    with staged(scene_dir, "flow", "flow_png") as dirs:
        out, out_png = dirs["flow"], dirs["flow_png"]
        for i in progress(range(len(frames) - 1), show_progress, "flow", total=len(frames) - 1):
            fwd, bwd = flow(frames[i], frames[i + 1]), flow(frames[i + 1], frames[i])
            mask_fwd, mask_bwd = consistency_masks(fwd, bwd)
            save_npz_deterministic(out / f"{i:03d}_fwd.npz", flow=fwd, mask=mask_fwd)
            save_npz_deterministic(out / f"{i + 1:03d}_bwd.npz", flow=bwd, mask=mask_bwd)
            for name, f, m in ((f"{i:03d}_fwd", fwd, mask_fwd), (f"{i + 1:03d}_bwd", bwd, mask_bwd)):
                cv2.imwrite(str(out_png / f"{name}.png"), flow_to_rgb(f)[..., ::-1])
                cv2.imwrite(str(out_png / f"{name}_mask.png"), m.astype(np.uint8) * 255)
    return len(frames) - 1, used
