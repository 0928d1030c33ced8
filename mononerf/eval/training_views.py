"""``python -m mononerf.eval.training_views RUN``: a run scored on its own video, where no multi-view truth exists.

Each chosen frame is rendered from its own camera at its own time (the input views of a monocular video are the
only ground truth a real clip has) and compared with the frame:

* PSNR / SSIM of the blended render, of the static branch alone and of the dynamic branch alone, averaged over the
  frames the run trained on and, separately, over its held-out frames (``model.held_out_every``, or the unseen-frames
  mode's ``model.training_frames``): an unseen frame is the honest score;
* the mean blending weight (the dynamic branch's share) over the pixels inside and outside the scene's motion masks
  (the preprocessing's own masks: a selective blending is high inside, low outside);
* a picture per frame, ground truth | blended | static only | dynamic only | blending (white = dynamic), and one
  strip of them (``views.png``), beside ``scores.json``.

Options: ``--frames 0,4,8`` or ``all`` (default: 8 frames spread over the clip, held-out ones included),
``--downscale F`` and ``--n-samples K`` for quick renders, ``--scenes`` to pick scenes of a multi-scene run.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import cv2
import numpy as np


BRANCHES = {"blended": "rgb_map_full", "static": "rgb_map_s", "dynamic": "rgb_map_d"}


def default_frames(num_frames: int, count: int = 8) -> list[int]:
    """``count`` frames spread evenly over the clip (first and last included)."""
    return sorted({int(round(x)) for x in np.linspace(0, num_frames - 1, min(count, num_frames))})


def held_out_frames(cfg, num_frames: int) -> set[int]:
    """The frames the run's training never sampled in its dynamic stage."""
    from mononerf.data.dataset import split_frames

    unseen = bool(cfg.model.unseen_frame_rendering)
    return set(split_frames(num_frames, int(cfg.model.training_frames) if unseen else None,
                            int(cfg.model.held_out_every))[1].tolist())


def _label(img: np.ndarray, text: str) -> np.ndarray:
    out = img.copy()
    cv2.putText(out, text, (3, 12), cv2.FONT_HERSHEY_SIMPLEX, 0.38, (255, 255, 255), 1, cv2.LINE_AA)
    return out


PROTOCOL = ("training views: each frame rendered from its own camera at its own time and compared with the frame "
            "(PSNR as cv2.PSNR, SSIM 7x7; blending averaged over the pixels inside / outside the scene's motion masks)")


def score_frames(pipeline, frames: list[int], out: Path, downscale: int = 1, progress: bool = True,
                 step: int | None = None) -> dict:
    """Render ``frames`` of every scene of ``pipeline`` from their own cameras; write the pictures and
    ``scores.json`` (with the protocol, the render size, samples per ray and the checkpoint's ``step``) under
    ``out`` and return the scores (see the module docstring)."""
    import torch

    from mononerf.eval.metrics import psnr, ssim
    from mononerf.eval.renders import render_camera
    from mononerf.geometry.poses import frame_time
    from mononerf.utils.images import to_uint8

    d = pipeline.data
    camera = render_camera(pipeline, downscale)
    W, H = camera.size
    held = held_out_frames(pipeline.cfg, d.num_frames)
    out.mkdir(parents=True, exist_ok=True)
    rows = {name: [] for name in d.names}
    per_frame = {name: [] for name in d.names}
    it = frames
    if progress:
        from tqdm import tqdm

        it = tqdm(frames, desc="training views", unit="frame")
    for k in it:
        c2w = d.poses[:, k, :, :4]
        times = torch.full((d.num_scenes,), frame_time(k, d.num_frames))
        maps = pipeline.renderer.render_views(c2w, times.to(d.device), camera, dynamic=True,
                                              chunk=int(pipeline.cfg.info.chunk))
        for b, name in enumerate(d.names):
            gt = to_uint8(d.images[b, k].cpu().numpy())
            gt = cv2.resize(gt, (W, H), interpolation=cv2.INTER_AREA) if gt.shape[:2] != (H, W) else gt
            dynamic = d.static_masks[b, k].cpu().numpy() < 0.5
            dynamic = cv2.resize(dynamic.astype(np.uint8), (W, H), interpolation=cv2.INTER_NEAREST) > 0
            blend = maps["dynamicness_map"][b].numpy()
            rec = {"frame": k, "held_out": k in held,
                   "blend_in": float(blend[dynamic].mean()) if dynamic.any() else None,
                   "blend_out": float(blend[~dynamic].mean()) if (~dynamic).any() else None,
                   "pixels_in": int(dynamic.sum()), "pixels_out": int((~dynamic).sum())}
            pics = [_label(gt, f"frame {k}" + (" (held out)" if k in held else ""))]
            for branch, key in BRANCHES.items():
                img = to_uint8(maps[key][b])
                rec[f"psnr_{branch}"], rec[f"ssim_{branch}"] = psnr(gt, img), ssim(gt, img)
                pics.append(_label(img, f"{branch} {rec[f'psnr_{branch}']:.1f} dB"))
            pics.append(_label(np.repeat(to_uint8(blend)[..., None], 3, -1), "blending"))
            row = np.concatenate(pics, 1)
            cv2.imwrite(str(out / f"{name}_{k:03d}.png"), row[..., ::-1])
            rows[name].append(row)
            per_frame[name].append(rec)
    scores = {"protocol": PROTOCOL, "step": step, "size": [W, H], "n_samples": pipeline.renderer.settings.n_samples,
              "frames": per_frame, "held_out": sorted(held), "scenes": {}}
    for name in d.names:
        cv2.imwrite(str(out / f"{name}_views.png"), np.concatenate(rows[name], 0)[..., ::-1])
        scores["scenes"][name] = {split: _mean([r for r in per_frame[name] if r["held_out"] == (split == "held_out")])
                                  for split in ("trained", "held_out")}
    (out / "scores.json").write_text(json.dumps(scores, indent=1))
    return scores


def _mean(records: list[dict]) -> dict | None:
    """Scores of a split: PSNR / SSIM averaged over its frames; the blending inside (outside) the motion masks
    averaged over all those pixels of its frames (a frame whose mask holds 3 pixels weighs 3 pixels)."""
    if not records:
        return None
    out = {"frames": [r["frame"] for r in records]}
    for key in records[0]:
        if key.startswith(("psnr_", "ssim_")):
            out[key] = float(np.mean([r[key] for r in records]))
    for side in ("in", "out"):
        pixels = sum(r[f"pixels_{side}"] for r in records)
        out[f"blend_{side}"] = (sum(r[f"blend_{side}"] * r[f"pixels_{side}"] for r in records if r[f"pixels_{side}"])
                                / pixels) if pixels else None
    return out


def format_scores(scores: dict) -> str:
    lines = [f"training views (each frame from its own camera and time) at step {scores['step']}, "
             f"{scores['size'][0]}x{scores['size'][1]}, {scores['n_samples']} samples per ray:"]
    for name, splits in scores["scenes"].items():
        for split, s in splits.items():
            if s is None:
                continue
            lines.append(f"{name} {split} frames {s['frames']}: PSNR blended {s['psnr_blended']:.2f} / static "
                         f"{s['psnr_static']:.2f} / dynamic {s['psnr_dynamic']:.2f} dB, SSIM {s['ssim_blended']:.3f}, "
                         f"blending in / out of the motion masks "
                         + " / ".join("-" if s[k] is None else f"{s[k]:.3f}" for k in ("blend_in", "blend_out")))
    return "\n".join(lines)


if __name__ == "__main__":  # python -m mononerf.eval.training_views: the command is in mononerf/eval/cli.py
    from mononerf.eval.cli import training_views_main

    sys.exit(training_views_main())
