"""Which device a run uses (``run.device``)."""

from __future__ import annotations

import torch

from mononerf.errors import ConfigError


def resolve_device(spec: str, local_rank: int = 0) -> torch.device:
    """``auto`` → ``cuda:<local_rank>`` when a GPU exists, else CPU; ``cpu``, ``cuda``, ``cuda:N`` as given."""
    if spec == "auto":
        return torch.device(f"cuda:{local_rank}") if torch.cuda.is_available() else torch.device("cpu")
    try:
        device = torch.device(spec)
    except RuntimeError:
        raise ConfigError(f"run.device: unknown device {spec!r}; expected auto, cpu, cuda or cuda:N") from None
    if device.type == "cuda":
        if not torch.cuda.is_available():
            raise ConfigError(f"run.device: {spec!r} asked for, but no CUDA device is available")
        if device.index is None:
            device = torch.device(f"cuda:{local_rank}")
    return device
