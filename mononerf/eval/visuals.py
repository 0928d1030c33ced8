"""Pictures of full renders: colours, disparity, blending, induced optical flow, scene flow (method.md §3.5, §3.6).

The original's ``render_path`` keeps, per frame, the rgb maps, the depth maps (raw NDC ray depth), the dynamicness
map and the scene-flow induced optical flow, and ``save_res`` writes one mp4 per key. Here each picture is one entry
of :data:`VISUALS`: the per-ray maps of :meth:`FieldRenderer.render_image` it reads (``S`` scenes, ``H``×``W``
pixels), the quantity it shows, and how that becomes colours (normalised once over a whole video so that colours do
not flicker from frame to frame). The render command's videos and the viewer's menu both read that table.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import Tensor

from mononerf.geometry.cameras import Pinhole
from mononerf.geometry.flow import induce_flow
from mononerf.utils.checks import check_shape
from mononerf.utils.host import host_read
from mononerf.utils.images import to_uint8

def parse_outputs(text: str) -> tuple[str, ...]:
    """``"rgb,depth"`` → ``("rgb", "depth")``; ValueError naming the unknown ones."""
    names = tuple(dict.fromkeys(n.strip() for n in text.split(",") if n.strip()))
    unknown = [n for n in names if n not in VISUALS]
    if unknown or not names:
        raise ValueError(f"unknown output(s) {unknown or [text]}; expected a comma list of {', '.join(VISUALS)}")
    return names


def disparity(depth: Tensor, ndc: bool = True, near: float = 1.0) -> Tensor:
    """Inverse depth of a depth map (any shape).

    In NDC a ray from the near plane n reaches world depth :math:`z = n / (1 - t)` at NDC depth ``t`` (method.md §1.3,
    ``ndc_rays`` with n = 1), so the disparity is :math:`(1 - t) / n`: 1 at the near plane, 0 at infinity. Without
    NDC it is :math:`1 / \\max(z, 10^{-6})`.
    """
    if ndc:
        return (1.0 - depth.clamp(0.0, 1.0)) / near
    return 1.0 / depth.clamp_min(1e-6)


def colorize(values: np.ndarray, lo: float, hi: float, colormap: str = "turbo") -> np.ndarray:
    """(H, W) floats → (H, W, 3) uint8 RGB through an OpenCV colour map, ``lo``..``hi`` spanning it."""
    import cv2

    scaled = np.clip((values - lo) / max(hi - lo, 1e-8), 0.0, 1.0)
    cmap = getattr(cv2, f"COLORMAP_{colormap.upper()}")
    return cv2.applyColorMap((scaled * 255.0).round().astype(np.uint8), cmap)[..., ::-1].copy()


def induced_flow_map(expected_pts: Tensor, c2w: Tensor, camera: Pinhole, pixel_offset: float = 0.0,
                     ndc: bool = True, ndc_box: Pinhole | None = None) -> Tensor:
    """Optical flow induced by the scene flow of a full render, seen from the same camera (method.md §3.5, §3.6).

    For a rendered (non-training) view the original takes the neighbour pose equal to the current one, so the flow
    shows the scene's motion from t to t±1 only, not the camera's.

    Args:
        expected_pts: (S, H, W, 3) per-pixel expected flowed point ``Σ_k w_d,k p±_k`` (``expected_pts_f``/``_b``
            of :meth:`FieldRenderer.render_views`), NDC when ``ndc``.
        c2w: (S, 3, 4) the camera of the render.
        camera: the render's intrinsics (its size, per-scene (S,) fields or numbers).
        pixel_offset: the render's pixel offset (0 = the original's integer grid).
        ndc_box: the scene's training intrinsics (its NDC box) when the render's camera differs from them (a
            validation camera, the viewer).

    Returns:
        (S, H, W, 2) flow in pixels.
    """
    W, H = camera.size
    check_shape(expected_pts, f"S {H} {W} 3", "expected_pts")
    S = expected_pts.shape[0]
    dev, dtype = expected_pts.device, expected_pts.dtype
    ys, xs = torch.meshgrid(torch.arange(H, dtype=dtype, device=dev), torch.arange(W, dtype=dtype, device=dev),
                            indexing="ij")
    pixel_xy = (torch.stack([xs, ys], -1).reshape(1, -1, 2) + pixel_offset).expand(S, -1, -1)
    pts = expected_pts.reshape(S, -1, 1, 3)
    flow = induce_flow(pts, torch.ones(pts.shape[:3], dtype=dtype, device=dev), c2w.to(pts), camera.to(pts),
                       pixel_xy, ndc=ndc, ndc_box=None if ndc_box is None else ndc_box.to(pts))
    return flow.reshape(S, H, W, 2)


def shown_flow(expected_pts: Tensor, acc_d: Tensor, blend: Tensor, c2w: Tensor, camera: Pinhole,
               pixel_offset: float = 0.0, ndc: bool = True, ndc_box: Pinhole | None = None) -> Tensor:
    """The induced flow a video shows: that of the dynamic part's surface, weighted by how much of the pixel it is.

    ``expected_pts`` (the original's ``Σ_k w_d,k p±_k``, method.md §3.5) is pulled towards the origin where the dynamic
    weights sum to less than one (the static background), which projects to a large, uniform, meaningless flow;
    divided by that sum ``acc_d`` it is the expected flowed point of the dynamic surface, and its flow times the
    blending weight ``blend`` is what the blended render moves: zero on the static background.

    Args:
        expected_pts: (S, H, W, 3).  acc_d, blend: (S, H, W) ``acc_map_d`` and ``dynamicness_map``.
        the rest: as :func:`induced_flow_map`.
    Returns:
        (S, H, W, 2) flow in pixels.
    """
    pts = expected_pts / acc_d.clamp_min(1e-6)[..., None].to(expected_pts)
    flow = induced_flow_map(pts, c2w, camera, pixel_offset, ndc, ndc_box=ndc_box)
    return flow * blend.to(flow).clamp(0.0, 1.0)[..., None]


def norm_sf(sf: np.ndarray) -> np.ndarray:
    """Scene flow (..., 3) → colours in [0, 1], the original's ``norm_sf``: per channel, non-negative values divided
    by twice the channel's maximum and negative ones by twice the magnitude of its minimum, plus 0.5, so zero flow is
    grey 0.5 and each sign keeps its own scale (over the whole array given, e.g. a whole video)."""
    out = np.empty(sf.shape, dtype=np.float32)
    for c in range(sf.shape[-1]):
        ch = sf[..., c].astype(np.float32)
        pos, neg = ch >= 0, ch < 0
        res = np.zeros_like(ch)
        # (the original divides by the maximum and |minimum| as they are; a channel without any positive or any
        # negative value has nothing to divide there)
        if pos.any():
            res[pos] = ch[pos] / max(float(ch.max()), 1e-12) / 2
        if neg.any():
            res[neg] = ch[neg] / abs(float(ch.min())) / 2
        out[..., c] = res + 0.5
    return out


# ------------------------------------------------------------------------------------------------ the registry
@dataclass(frozen=True)
class View:
    """Where a full render was made from, for the maps that depend on the camera (the induced flow).

    Attributes:
        c2w: (S, 3, 4) the render's cameras.  camera: its intrinsics (:class:`Pinhole`).
        pixel_offset: the run's pixel offset.  ndc: the run samples in NDC.
        ndc_box: the scenes' training intrinsics when ``camera`` differs from them (a validation camera, the viewer).
    """

    c2w: Tensor
    camera: Pinhole
    pixel_offset: float = 0.0
    ndc: bool = True
    ndc_box: Pinhole | None = None


@dataclass(frozen=True)
class Visual:
    """One picture of a render, shared by the videos and the viewer.

    Attributes:
        label: its name in the viewer's menu.
        reads: the per-ray maps of a render it needs (:data:`~mononerf.render.outputs.PER_RAY_KEYS`).
        frame: ``(maps {key: (S, H, W, …)}, View) -> (S, H, W[, C])``: the quantity shown, one per scene.
        to_rgb: one scene's quantities over a video (or one frame) → (H, W, 3) uint8 frames, normalised over them
            all so that colours do not flicker from frame to frame.
    """

    label: str
    reads: tuple[str, ...]
    frame: Callable[[dict, View], Tensor]
    to_rgb: Callable[[list[np.ndarray]], list[np.ndarray]]


def _map(key: str) -> Callable[[dict, View], Tensor]:
    return lambda out, view: out[key]


def _rgb_frames(maps: list[np.ndarray]) -> list[np.ndarray]:
    return [to_uint8(m) for m in maps]


def _depth_frames(maps: list[np.ndarray]) -> list[np.ndarray]:
    stack = np.stack(maps)
    lo, hi = np.percentile(stack, [1.0, 99.0])
    if hi - lo < 1e-6:  # a constant map: spread the range around it
        lo, hi = float(stack.min()) - 1e-3, float(stack.max()) + 1e-3
    return [colorize(m, float(lo), float(hi)) for m in maps]


def _grey_frames(maps: list[np.ndarray]) -> list[np.ndarray]:
    return [np.repeat(to_uint8(m)[..., None], 3, -1) for m in maps]


def _flow_frames(maps: list[np.ndarray]) -> list[np.ndarray]:
    from mononerf.utils.flowviz import flows_to_rgb

    top = max(float(max(np.linalg.norm(m, axis=-1).max() for m in maps)), 1e-3)
    return flows_to_rgb(maps, top)


def _sceneflow_frames(maps: list[np.ndarray]) -> list[np.ndarray]:
    return [to_uint8(m) for m in norm_sf(np.stack(maps))]


def _flow(out: dict, view: View) -> Tensor:
    pts = out["expected_pts_f"].to(view.c2w.dtype)  # computed where the maps are, in the pose's precision
    return shown_flow(pts, out["acc_map_d"], out["dynamicness_map"], view.c2w.to(pts.device), view.camera,
                      view.pixel_offset, view.ndc, ndc_box=view.ndc_box)


def _sceneflow(out: dict, view: View) -> Tensor:
    # as the flow: the dynamic surface's, weighted by how much of the pixel it is
    sf = out["sceneflow_map_f"] / out["acc_map_d"].clamp_min(1e-6)[..., None]
    return sf * out["dynamicness_map"].clamp(0.0, 1.0)[..., None]


# What a render can show: name → Visual. The videos (``--outputs``) and the viewer's menu are this table; a new
# picture is one entry (docs/architecture.md, "Adding a render output").
VISUALS: dict[str, Visual] = {
    # rgb (H, W, 3) in [0, 1]
    "rgb": Visual("blended colour", ("rgb_map_full",), _map("rgb_map_full"), _rgb_frames),
    "static": Visual("static only", ("rgb_map_s",), _map("rgb_map_s"), _rgb_frames),
    "dynamic": Visual("dynamic only", ("rgb_map_d",), _map("rgb_map_d"), _rgb_frames),
    # disparity, colour-mapped between its 1st and 99th percentile over all frames
    "depth": Visual("depth (disparity)", ("depth_map_full",),
                    lambda out, view: disparity(out["depth_map_full"], ndc=view.ndc), _depth_frames),
    # the dynamicness (the blended dynamic weight, method.md §3.3) as grey, white = dynamic
    "blend": Visual("blending weight", ("dynamicness_map",), _map("dynamicness_map"), _grey_frames),
    # the forward induced flow (:func:`shown_flow`) on the Middlebury / RAFT colour wheel (torchvision's
    # ``flow_to_image``): zero flow white, hue = direction, saturation = magnitude over the video's largest
    "flow": Visual("induced flow", ("expected_pts_f", "acc_map_d", "dynamicness_map"), _flow, _flow_frames),
    # the forward scene flow (NDC x, y, z as red, green, blue) through :func:`norm_sf` (zero = grey)
    "sceneflow": Visual("scene flow", ("sceneflow_map_f", "acc_map_d", "dynamicness_map"), _sceneflow,
                        _sceneflow_frames),
}


def reads(outputs=None) -> tuple[str, ...]:
    """The per-ray maps a render needs for ``outputs`` (default: every picture of :data:`VISUALS`)."""
    names = VISUALS if outputs is None else outputs
    return tuple(dict.fromkeys(k for name in names for k in visual(name).reads))


def visual(output: str) -> Visual:
    """The registry entry of ``output``; ValueError naming the known ones."""
    if output not in VISUALS:
        raise ValueError(f"unknown output {output!r}; expected one of {', '.join(VISUALS)}")
    return VISUALS[output]


def video_frames(output: str, maps: list[np.ndarray]) -> list[np.ndarray]:
    """One scene's per-frame quantities of ``output`` (:attr:`Visual.frame`, as numpy) → RGB uint8 frames,
    normalised over the whole video (:attr:`Visual.to_rgb`)."""
    if not maps:
        raise ValueError(f"no frames for output {output!r}")
    return visual(output).to_rgb(maps)


def frame_maps(out: dict, outputs: tuple[str, ...], c2w: Tensor, camera: Pinhole, pixel_offset: float,
               ndc: bool, ndc_box: Pinhole | None = None) -> dict[str, np.ndarray]:
    """The per-scene quantities of one full render for each requested output (:attr:`Visual.frame`), numpy on the
    CPU (made where ``out`` is: the host, for the render commands' images). ``c2w`` (S, 3, 4), ``camera``: the
    render's pose and intrinsics; ``ndc_box`` as :func:`induced_flow_map`."""
    view = View(c2w, camera, pixel_offset, ndc, ndc_box)
    maps = {}
    with host_read("the maps are pictures, made where the render's outputs were gathered"):
        for name in outputs:
            entry = visual(name)
            missing = [k for k in entry.reads if k not in out]
            if missing:
                raise ValueError(f"output {name!r} needs {missing} from the renderer (a dynamic-stage render)")
            maps[name] = entry.frame(out, view).float().cpu().numpy()
    return maps
