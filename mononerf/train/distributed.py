"""Device choice and (optional) multi-process data parallelism through torchrun (method.md §5.1, §8.20 fixed)."""

from __future__ import annotations

import os
from dataclasses import dataclass

import torch
import torch.distributed as dist

from mononerf.utils.device import resolve_device


@dataclass
class DistInfo:
    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = torch.device("cpu")

    @property
    def is_main(self) -> bool:
        return self.rank == 0

    @property
    def enabled(self) -> bool:
        return self.world_size > 1


def init(device_spec: str = "auto", backend: str | None = None, master_addr: str | None = None,
         master_port: str | int | None = None) -> DistInfo:
    """Start the process group when launched by torchrun with WORLD_SIZE > 1; otherwise a single process.

    The backend is ``nccl`` on GPUs and ``gloo`` on CPU unless given. ``torch.distributed.launch`` (the original's
    launcher) sets the same variables, so its command lines keep working. ``master_addr`` / ``master_port``
    (``run.master_addr`` / ``run.master_port``) are the rendezvous where the launcher set none (MASTER_ADDR / PORT).
    """
    world = int(os.environ.get("WORLD_SIZE", "1"))
    local_rank = int(os.environ.get("LOCAL_RANK", "0"))
    device = resolve_device(device_spec, local_rank)
    if world <= 1:
        return DistInfo(device=device)
    if device.type == "cuda":
        torch.cuda.set_device(device)
    if master_addr is not None:
        os.environ.setdefault("MASTER_ADDR", str(master_addr))
    if master_port is not None:
        os.environ.setdefault("MASTER_PORT", str(master_port))
    if not dist.is_initialized():
        dist.init_process_group(backend=backend or ("nccl" if device.type == "cuda" else "gloo"))
    return DistInfo(rank=dist.get_rank(), world_size=dist.get_world_size(), local_rank=local_rank, device=device)


def shutdown(info: DistInfo) -> None:
    if info.enabled and dist.is_initialized():
        dist.destroy_process_group()
