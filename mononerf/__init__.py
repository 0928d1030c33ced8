"""MonoNeRF, rebuilt: a generalizable dynamic radiance field learned from monocular videos.

Reimplementation of Tian, Du, Duan, "MonoNeRF: Learning a Generalizable Dynamic Radiance Field
from Monocular Videos", ICCV 2023 (arXiv 2212.13056).

Docstrings say why with this repository's pages: ``method.md §N.M`` is a section of docs/method.md (the original's
method and formulas as this code implements them; §8 lists its quirks), and docs/decisions.md holds our decisions.

Batch-dimension vocabulary used across the package (shapes in docstrings):
    S  scenes in a batch        T  frames per scene (12 for the Dynamic Scene Dataset)
    R  rays per scene           K  samples per ray
    H, W  image height, width   C  feature channels
"""

import os as _os
import sys as _sys

__version__ = "0.1.0"

# Large tensors from 2 MB-aligned transparent huge pages (PyTorch's CPU allocator reads THP_MEM_ALLOC_ENABLE once, at
# its first allocation, so this only takes effect when the package is imported before torch — every entry point of
# this project does). Each fresh multi-megabyte activation otherwise costs thousands of 4 KiB page faults: with it a
# dynamic training step on the CPU takes ~15 % less time and a render ~30 % less, the same arithmetic
# (benchmarks/README.md).
# An explicit THP_MEM_ALLOC_ENABLE=0 in the environment is kept.
if _sys.platform.startswith("linux"):
    _os.environ.setdefault("THP_MEM_ALLOC_ENABLE", "1")
