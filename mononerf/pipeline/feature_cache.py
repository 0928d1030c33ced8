"""On-disk cache of the one-shot encoder features (frozen encoders run once per scene set, method.md §5.3 step 1).

The key hashes everything the features depend on: every scene's frames (in batch order — with the BatchNorm quirk
the statistics span all scenes of the batch, method.md §8.6), both encoders' weights and buffers, the latent layers, the
encoding quirks and the feature standardisation. A restart, a resumed run or an evaluation of the same scenes then
loads instead of re-encoding. The file holds :meth:`SceneFeatures.encoded_state` (the cameras come from the scenes).
"""

from __future__ import annotations

import hashlib
import os
import sys
from pathlib import Path

import torch

from mononerf.errors import MonoNeRFError
from mononerf.geometry.cameras import Pinhole
from mononerf.models.mononerf import MonoNeRF, SceneFeatures
from mononerf.pipeline.checkpoint import save_atomic

FORMAT = 2


def _update(h, t: torch.Tensor) -> None:
    h.update(str((tuple(t.shape), str(t.dtype))).encode())
    h.update(t.detach().cpu().contiguous().reshape(-1).view(torch.uint8).numpy())  # the buffer itself, no copy


def cache_key(model: MonoNeRF, images: torch.Tensor) -> str:
    """sha256 over frames, encoder state (weights and BN buffers), used layers and the encoding quirks."""
    h = hashlib.sha256(f"v{FORMAT}".encode())
    _update(h, images)
    for enc in (model.encoder, model.encoder2d):
        if enc is None:
            continue
        for name, tensor in sorted(enc.state_dict().items()):
            h.update(name.encode())
            _update(h, tensor)
    h.update(str(model.encoder.used_latent_layers).encode())
    h.update(f"native={model.encoder.native_latent}".encode())
    h.update(str({k: getattr(model.quirks, k) for k in ("encoder_clip_stretch", "encoder_batchnorm_train")}).encode())
    if model.standardize_latent or model.standardize_latent2d:  # (absent from the keys of earlier caches)
        h.update(f"standardize={model.standardize_latent},{model.standardize_latent2d}".encode())
    return h.hexdigest()[:32]


def encode_cached(model: MonoNeRF, images: torch.Tensor, c2w: torch.Tensor, camera: Pinhole,
                  cache_dir: str | os.PathLike | None) -> tuple[SceneFeatures, bool]:
    """``model.encode`` through the cache (frozen encoders only). Returns (features, loaded_from_cache).
    ``camera`` is the images' intrinsics (:class:`~mononerf.geometry.cameras.Pinhole`); the cache holds the
    encoders' outputs only, so it does not depend on the cameras.

    The key is computed BEFORE encoding: with the BatchNorm quirk an encode updates the running statistics.
    """
    if cache_dir is None or not model.freeze_enc:
        return model.encode(images, c2w, camera), False
    path = Path(cache_dir) / f"{cache_key(model, images)}.pt"
    if path.is_file():
        try:
            saved = torch.load(path, map_location=images.device, weights_only=True)
        except Exception:  # a damaged cache file is rebuilt, never trusted
            saved = None
        if saved is not None:
            return SceneFeatures.from_encoded_state(saved, c2w, camera), True
    feats = model.encode(images, c2w, camera)
    try:
        save_atomic(feats.encoded_state(), path, kept="this run goes on without caching its features")
    except MonoNeRFError as exc:  # a full disk, a read-only cache folder: the features are in memory, go on
        print(f"warning: {exc}", file=sys.stderr)
    return feats, False
