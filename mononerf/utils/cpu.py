"""Denormal floats on the CPU: ``run.flush_denormal`` (docs/training.md, "Denormal numbers").

Training drives some gradients below float32's normal range (1.2e-38): blending and sparsity losses saturate
sigmoids and transmittances. x86 CPUs compute with such denormal numbers through microcode, up to ~100x slower per
operation, so a CPU training step slows down as the run goes on (the demo's dynamic step: 0.6 s at its start,
1.8 s after 300 steps, 0.9 s of it in the backward matrix products). GPUs handle them at full speed, which is why
the original never noticed. Flushing them to zero (the FTZ/DAZ bits of each thread's MXCSR register) removes the
slowdown and changes only values below 1.2e-38.

``torch.set_flush_denormal`` sets the bits of the calling thread only, and PyTorch's matrix products run on the
threads of its OpenMP pool, created before a config is read; :func:`flush_denormals` sets them on every thread of
the pool too, by running the setter in one OpenMP parallel region of the libgomp PyTorch loaded.
"""

from __future__ import annotations

import ctypes

import torch


def _libgomp() -> str | None:
    try:
        with open("/proc/self/maps") as maps:
            return next((line.split()[-1] for line in maps if "libgomp" in line.split()[-1]), None)
    except OSError:
        return None


def flush_denormals(on: bool) -> bool:
    """Flush denormal float results and inputs to zero (``on``) or compute with them (IEEE, the default) on this
    thread and every thread of PyTorch's OpenMP pool. Returns False where the CPU has no such mode or the pool's
    threads could not be reached (then only this thread is set)."""
    if not torch.set_flush_denormal(on):
        return False
    path = _libgomp()
    if path is None:
        return False
    callback = ctypes.CFUNCTYPE(None, ctypes.c_void_p)(lambda _: torch.set_flush_denormal(on))
    ctypes.CDLL(path).GOMP_parallel(callback, None, ctypes.c_uint(0), ctypes.c_uint(0))
    return True
