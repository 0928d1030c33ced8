"""Freed memory kept for the next tensors of its size: ``run.keep_freed_memory`` (docs/training.md, "Freed memory").

PyTorch's CPU tensors come from glibc's ``malloc``, which maps every block of 32 MB or more on its own and unmaps it
when the tensor is freed; the next tensor starts on fresh pages, each reached through a page fault. At the released
size a dynamic training step frees and re-requests ~4.6 GB of such blocks, and on a virtual machine whose host takes
freed memory back (a balloon's free page reporting) faulting them in again was half the step. Smaller blocks glibc
keeps in its heap and reuses; they stay with it.

``block_cache.cpp`` (beside this file) is a small caching allocator that PyTorch's CPU allocator hands large blocks
to: a freed block is kept and the next request of its size takes it, and what is kept is bounded so that the blocks
in use plus the kept ones never exceed the most ever in use at once. The values are the same (only where the memory
lies changes) and the peak stays the allocator's without it. It is compiled here, once per torch version, with the
system's C++ compiler (``$CXX``, else ``c++``/``g++``) against the installed torch's headers (~1 s), into
``$MONONERF_CACHE_DIR`` (default ``~/.cache/mononerf``), and loaded with ctypes. PyTorch offers no caching CPU
allocator of its own (its ``CPUCachingAllocator`` serves mobile builds, from C++ only).
"""

from __future__ import annotations

import ctypes
import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch

SOURCE = Path(__file__).with_name("block_cache.cpp")
MIN_BYTES = 32 << 20  # smaller blocks stay with glibc, which keeps them in its heap (its mmap threshold: 32 MB at most)
_STATS = ("hits", "misses", "unmapped", "in_use_bytes", "kept_bytes", "high_water_bytes")
_lib: ctypes.CDLL | None = None
_failed: str | None = None  # why the library could not be built or loaded: not tried again in this process


def cache_dir() -> Path:
    """Where the compiled library is kept: ``$MONONERF_CACHE_DIR``, else ``$XDG_CACHE_HOME/mononerf``, else
    ``~/.cache/mononerf``."""
    if os.environ.get("MONONERF_CACHE_DIR"):
        return Path(os.environ["MONONERF_CACHE_DIR"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "mononerf"


def _compiler() -> str | None:
    return os.environ.get("CXX") or shutil.which("c++") or shutil.which("g++")


def build(directory: Path | None = None) -> Path:
    """The library compiled for this torch (built if it is not there yet; an existing one is reused).

    Raises RuntimeError with a one-line reason where it cannot be built (not Linux, no compiler, the compiler
    failed)."""
    if not sys.platform.startswith("linux"):
        raise RuntimeError(f"the block cache is built for Linux only (this is {sys.platform})")
    cxx = _compiler()
    if cxx is None:
        raise RuntimeError("no C++ compiler found (set $CXX, or install g++)")
    torch_dir = Path(torch.__file__).parent
    abi = int(torch._C._GLIBCXX_USE_CXX11_ABI)
    flags = ["-O2", "-std=c++17", "-shared", "-fPIC", f"-D_GLIBCXX_USE_CXX11_ABI={abi}",
             f"-I{torch_dir / 'include'}", f"-L{torch_dir / 'lib'}", "-lc10", f"-Wl,-rpath,{torch_dir / 'lib'}"]
    source = SOURCE.read_bytes()
    key = hashlib.sha256(source + repr((torch.__version__, str(torch_dir), cxx, flags)).encode()).hexdigest()[:16]
    directory = Path(directory) if directory is not None else cache_dir()
    target = directory / f"block_cache-{key}.so"
    if target.exists():
        return target
    try:
        directory.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(dir=directory) as tmp:  # beside the target: several ranks may build at once
            out = Path(tmp) / target.name
            r = subprocess.run([cxx, str(SOURCE), "-o", str(out), *flags], capture_output=True, text=True,
                               timeout=300)
            if r.returncode != 0:
                lines = r.stderr.strip().splitlines() or ["(no message)"]
                first = next((line for line in lines if "error" in line), lines[-1]).strip()
                raise RuntimeError(f"{cxx} could not compile {SOURCE.name}: {first}")
            os.replace(out, target)
    except OSError as e:
        raise RuntimeError(f"could not build the block cache in {directory}: {e}") from None
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"{cxx} took over 300 s to compile {SOURCE.name}") from None
    return target


def _load() -> ctypes.CDLL:
    global _lib
    if _lib is None:
        lib = ctypes.CDLL(str(build()))
        lib.mononerf_block_cache_set.argtypes = [ctypes.c_int, ctypes.c_ulonglong, ctypes.c_int]
        lib.mononerf_block_cache_set.restype = ctypes.c_int
        lib.mononerf_block_cache_stats.argtypes = [ctypes.POINTER(ctypes.c_ulonglong)]
        _lib = lib
    return _lib


def keep_freed_blocks(on: bool) -> str | None:
    """Keep freed CPU blocks of 32 MB or more for the next tensors of their size (``on``), or hand them back to the
    kernel as they are freed (and those kept now). Process-wide: each call sets it for every tensor allocated after.

    Returns None when set, else the one-line reason it could not be (nothing changed). ``on=False`` before any
    ``on=True`` changes nothing. Huge pages are advised as PyTorch's own allocator does (``THP_MEM_ALLOC_ENABLE``)."""
    global _failed
    if not on and _lib is None:
        return None
    if _failed is not None:
        return _failed
    try:
        lib = _load()
    except (RuntimeError, OSError) as e:
        _failed = str(e)
        return _failed
    huge = os.environ.get("THP_MEM_ALLOC_ENABLE", "0") == "1"
    if not lib.mononerf_block_cache_set(int(on), MIN_BYTES, int(huge)):
        return "another CPU allocator is installed in this process"
    return None


def release() -> None:
    """Hand every kept block back to the kernel (and lower the high-water mark to the blocks in use)."""
    if _lib is not None:
        _lib.mononerf_block_cache_release()


def stats() -> dict[str, int] | None:
    """The cache's counters since it was installed (None if it never was): hits, misses, unmapped blocks, bytes in
    use, bytes kept, high-water mark."""
    if _lib is None:
        return None
    out = (ctypes.c_ulonglong * len(_STATS))()
    _lib.mononerf_block_cache_stats(out)
    return dict(zip(_STATS, out))
