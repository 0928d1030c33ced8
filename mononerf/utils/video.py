"""mp4 writing through imageio-ffmpeg (ships its own ffmpeg binary; nothing to install system-wide)."""

from __future__ import annotations

from pathlib import Path
from typing import Iterable

import numpy as np


def write_video(path: str | Path, frames: Iterable[np.ndarray], fps: float = 10, quality: float = 8) -> Path:
    """Write RGB uint8 frames (H, W, 3) as H.264 mp4 (yuv420p). Odd sizes get their last row / column repeated."""
    import imageio_ffmpeg

    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    writer = None
    for frame in frames:
        frame = np.asarray(frame, dtype=np.uint8)
        if frame.shape[0] % 2 or frame.shape[1] % 2:  # yuv420p wants even sizes: repeat the last row / column
            frame = np.pad(frame, ((0, frame.shape[0] % 2), (0, frame.shape[1] % 2), (0, 0)), mode="edge")
        frame = np.ascontiguousarray(frame)
        if writer is None:
            h, w = frame.shape[:2]
            writer = imageio_ffmpeg.write_frames(str(path), (w, h), fps=fps, codec="libx264", pix_fmt_out="yuv420p",
                                                 quality=quality, macro_block_size=2, ffmpeg_log_level="error")
            writer.send(None)
        writer.send(frame)
    if writer is None:
        raise ValueError(f"{path}: no frames to write")
    writer.close()
    return path
