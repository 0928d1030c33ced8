"""Frames of a video, named as the original's ``generate_data`` names them (method.md §6.2).

Decodes the video with imageio-ffmpeg and keeps every ``ceil(n / 100)``-th frame (at most 100 frames), then writes

    images/{k:03d}.png                 full-resolution frames (the source of everything else)
    images_colmap/{k:03d}.jpg          the same frames for COLMAP
    background_mask/{k:03d}.jpg.png    COLMAP feature masks: 255 = use, 0 = a person (Mask R-CNN, when its
                                       weights are present; otherwise every pixel is kept)
    images_2/{k:03d}.png               half-size training frames (the loader would make them on first use;
                                       resized in Python as docs/decisions.md asks, not with ImageMagick)
"""

from __future__ import annotations

import math
import os
from pathlib import Path

import cv2
import numpy as np

from mononerf.preprocess.common import PreprocessError, progress
from mononerf.utils.folders import staged
from mononerf.utils.images import write_image

MAX_FRAMES = 100  # the original keeps at most 100 frames
JPEG_QUALITY = 95


def frame_step(num_frames: int, max_frames: int = MAX_FRAMES) -> int:
    """Keep every ``ceil(n / max_frames)``-th frame (the original: ``imgs[::ceil(n / 100)]``)."""
    return max(1, math.ceil(num_frames / max_frames))


def read_video_frames(video: str | os.PathLike, max_frames: int = MAX_FRAMES):
    """An iterator over the kept (H, W, 3) uint8 RGB frames of ``video`` (every ``frame_step``-th, from frame 0).

    The video is opened here, so a missing or undecodable file raises ``PreprocessError`` before any frame is read.
    """
    import imageio_ffmpeg

    video = Path(video)
    if not video.is_file():
        raise PreprocessError(f"video {video} not found")
    try:
        total, _ = imageio_ffmpeg.count_frames_and_secs(str(video))
        reader = imageio_ffmpeg.read_frames(str(video), pix_fmt="rgb24")
        meta = next(reader)
    except (RuntimeError, OSError, StopIteration) as exc:
        raise PreprocessError(f"cannot decode video {video}: {str(exc).strip().splitlines()[-1]}") from None
    width, height = meta["size"]
    step = frame_step(total, max_frames)
    return (np.frombuffer(raw, np.uint8).reshape(height, width, 3) for i, raw in enumerate(reader) if i % step == 0)


def extract_frames(video: str | os.PathLike, scene_dir: str | os.PathLike, max_frames: int = MAX_FRAMES,
                   weights_dir: str | os.PathLike | None = None, device: str = "cpu",
                   show_progress: bool = True, log=print) -> int:
    """Write images/, images_colmap/, background_mask/ and images_2/ of ``scene_dir``; returns the frame count."""
    from mononerf.data.scene import make_downsampled_images
    from mononerf.preprocess import semantic

    frames = read_video_frames(video, max_frames)
    mask_path = semantic.find_maskrcnn_weights(weights_dir)
    model = semantic.load_maskrcnn(mask_path).to(device) if mask_path else None
    if model is None:
        log(semantic.missing_notice(weights_dir).format(what="COLMAP uses every pixel (no person masks)"))
    count = 0
    # all four folders appear together when every frame is written (utils.folders.staged), never half of them
    with staged(Path(scene_dir), "images", "images_colmap", "background_mask", "images_2") as dirs:
        for k, rgb in enumerate(progress(frames, show_progress, "frames")):
            name = f"{k:03d}"
            write_image(dirs["images"] / f"{name}.png", rgb, error=PreprocessError)
            write_image(dirs["images_colmap"] / f"{name}.jpg", rgb, (cv2.IMWRITE_JPEG_QUALITY, JPEG_QUALITY),
                        error=PreprocessError)
            keep = np.ones(rgb.shape[:2], bool) if model is None else ~semantic.object_mask(model, rgb, device=device)
            write_image(dirs["background_mask"] / f"{name}.jpg.png", keep.astype(np.uint8) * 255,
                        error=PreprocessError)
            count += 1
        if count < 2:
            raise PreprocessError(f"video {video} gave {count} frame(s); a scene needs at least 2")
        dirs["images_2"].rmdir()
        make_downsampled_images(dirs["images"].parent, 2)
    return count
