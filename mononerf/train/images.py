"""TensorBoard pictures of a training step (``train.i_img``, docs/config.md): full renders of each scene's last training frame
beside the frame, and the induced flows beside the ground-truth flows."""

from __future__ import annotations

import torch

from mononerf.geometry.flow import induce_flow


@torch.no_grad()
def log_step_images(pipeline, batches: list, logger, stage: str, i: int, downscale: int, chunk: int) -> None:
    """Render each group's scenes at the camera and time of their last batch (``batches``, one per group),
    ``downscale`` times smaller, and hand them to ``logger.images`` under the run's scene indices."""
    for part, batch in zip(pipeline.groups, batches):
        d = part.data
        k = downscale
        camera = d.camera.downscaled(k)
        W, H = camera.size
        c2w = d.poses[torch.arange(d.num_scenes), batch.frame, :, :4]
        dynamic = stage == "dynamic"
        out = part.renderer.render_views(c2w, batch.time, camera, dynamic=dynamic, chunk=chunk)
        flows = induced_flow_images(out, batch.frame, d, part.renderer.settings.ndc, k) if dynamic else {}
        gt = d.images[torch.arange(d.num_scenes), batch.frame].cpu()  # (S, H, W, 3)
        if k > 1:  # the ground truth at the render's size (area average)
            gt = torch.nn.functional.interpolate(gt.permute(0, 3, 1, 2), size=(H, W),
                                                 mode="area").permute(0, 2, 3, 1)
        logger.images(stage, i, out, gt, flows, scene_ids=part.scene_ids)


def induced_flow_images(out: dict, frame: torch.Tensor, data, ndc: bool, downscale: int = 1) -> dict:
    """Induced flow to t±1 of a full render and the GT flow, (S, H, W, 2) each (docs/rendering.md, ``flow``); for a
    render ``downscale`` times smaller, both in its pixels (the GT flow read at every ``downscale``-th pixel).
    ``data``: the scenes rendered (one group's)."""
    d = data
    S, H, W = out["expected_pts_f"].shape[:3]
    ys, xs = torch.meshgrid(torch.arange(H, dtype=torch.float32), torch.arange(W, dtype=torch.float32),
                            indexing="ij")
    pixel_xy = torch.stack([xs, ys], -1).reshape(1, -1, 2).expand(S, -1, -1) + d.pixel_offset
    poses = d.poses[..., :4].cpu()
    camera = d.camera.downscaled(downscale).to(poses)
    grids = d.grids[torch.arange(S), frame].cpu()[:, ::downscale, ::downscale][:, :H, :W]
    if downscale > 1:
        grids = grids.clone()
        grids[..., 2:4] /= downscale
        grids[..., 5:7] /= downscale
    result = {}
    for key, step, gt in (("f", 1, slice(2, 4)), ("b", -1, slice(5, 7))):
        neighbour = poses[torch.arange(S), (frame.cpu() + step).clamp(0, d.num_frames - 1)]
        pts = out[f"expected_pts_{key}"].reshape(S, -1, 1, 3)
        flow = induce_flow(pts, torch.ones(pts.shape[:3]), neighbour, camera, pixel_xy, ndc=ndc)
        result[f"induced_flow_{key}"] = flow.reshape(S, H, W, 2)
        result[f"flow_{key}_gt"] = grids[..., gt]
    return result
