"""Set-up shared by every test module, for the default tier's time on 2 CPU cores (values unchanged).

**The encoders' random weights are built once per generator state.**

Drawing the encoders' random initial weights was the largest single cost of the default tier (~37 s of ~320 s on 2
cores: ~140 SlowOnly-R50 and ~150 ResNet18 builds, 0.1–0.3 s each; benchmarks/README.md, "The default test tier").
A build without pretrained weights is a function of the CPU generator's state alone, so the tests build each network
once per generator state and hand out copies, leaving the generator where the build would have left it: the same
weights and the same random numbers afterwards, bit for bit (tests/test_encoders.py checks both against a real build).
``MONONERF_TEST_INIT_MEMO=0`` builds every network afresh. Measured: 228 of 278 builds are copies, ~13 s less.

**The test process keeps the memory it frees** (:func:`mononerf.utils.block_cache.keep_freed_blocks`, the
mechanism of ``run.keep_freed_memory``, which every CPU pipeline of the tests sets anyway): tests that follow each other
reuse the blocks of 2 MB and more instead of faulting fresh pages in. Only this process: the subprocesses the tests
start (entry points, DDP, the allocator probes) set it through their own pipelines or not at all.
``MONONERF_TEST_KEEP_FREED_MEMORY=0`` leaves it to the pipelines.
"""

from __future__ import annotations

import copy
import hashlib
import os
from collections import OrderedDict
from typing import Callable

import torch
from torch import nn

import mononerf.models.encoders as encoders
import mononerf.models.spatial_encoder as spatial_encoder
from mononerf.utils.block_cache import keep_freed_blocks


class InitMemo:
    """``build()`` through a cache keyed by the CPU generator's state (the ``keep`` newest states).

    Only for builds on the CPU in float32 (the defaults); anything else calls ``build`` itself.
    """

    def __init__(self, build: Callable[[], nn.Module], keep: int = 3):
        self.build, self.keep = build, keep
        self._cache: OrderedDict[bytes, tuple[nn.Module, torch.Tensor]] = OrderedDict()
        self.hits = 0

    def __call__(self) -> nn.Module:
        if torch.get_default_device().type != "cpu" or torch.get_default_dtype() != torch.float32:
            return self.build()
        key = hashlib.sha1(torch.get_rng_state().numpy().tobytes()).digest()
        hit = self._cache.get(key)
        if hit is None:
            module = self.build()
            self._cache[key] = (copy.deepcopy(module), torch.get_rng_state())
            while len(self._cache) > self.keep:
                self._cache.popitem(last=False)
            return module
        self._cache.move_to_end(key)
        self.hits += 1
        torch.set_rng_state(hit[1])
        return copy.deepcopy(hit[0])


if os.environ.get("MONONERF_TEST_INIT_MEMO", "1") != "0":
    encoders.ResNet3dSlowOnly = InitMemo(encoders.ResNet3dSlowOnly)
    for _name, _spec in list(spatial_encoder.BACKBONES_2D.items()):
        spatial_encoder.BACKBONES_2D[_name] = _spec._replace(build=InitMemo(_spec.build))

if os.environ.get("MONONERF_TEST_KEEP_FREED_MEMORY", "1") != "0":
    keep_freed_blocks(True)  # a reason string where it cannot be built: nothing changed
