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

Freed memory kept in the process: ``run.keep_freed_memory`` (docs/training.md, "Freed memory"). PyTorch's CPU
tensors come from glibc's ``malloc``, which hands every block of 32 MB or more (and, by default, the free top of the
heap) back to the kernel when it is freed; the next tensor of that size starts on fresh pages, each written for the
first time through a page fault. :func:`keep_freed_memory` asks glibc (``mallopt``) to take every block from its heap
and to keep what is freed there, so a training step reuses the memory of the step before.
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


_M_TRIM_THRESHOLD, _M_MMAP_MAX = -1, -4  # glibc's mallopt parameters (malloc.h)
_INT_MAX = 2**31 - 1


def _glibc() -> ctypes.CDLL | None:
    try:
        libc = ctypes.CDLL(None)
        libc.gnu_get_libc_version.restype = ctypes.c_char_p
        libc.gnu_get_libc_version()
    except (OSError, AttributeError):
        return None
    return libc


def keep_freed_memory() -> bool:
    """glibc's ``malloc`` takes every block from its heap (no ``mmap`` of large blocks) and keeps freed memory there
    (no trimming of the heap's top): from now on, for the whole process (glibc offers no way back to its adaptive
    defaults). The values computed are the same; the process's resident memory then stays at its peak, and that peak
    is higher (blocks of different sizes share one heap). Returns False where the C library is not glibc (macOS,
    musl; nothing is changed) or glibc refused a setting."""
    libc = _glibc()
    if libc is None:
        return False
    return bool(libc.mallopt(_M_MMAP_MAX, 0)) and bool(libc.mallopt(_M_TRIM_THRESHOLD, _INT_MAX))
