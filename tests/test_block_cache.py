"""``run.keep_freed_memory``: the caching CPU allocator of :mod:`mononerf.utils.block_cache`.

It is process-wide (PyTorch's CPU allocator), so the probes run in fresh processes."""

from __future__ import annotations

import json
import os
import subprocess
import sys

import pytest

from mononerf.config import load_config
from mononerf.utils import block_cache
from tests.test_train import scenes, tiny_argv  # noqa: F401 (the scenes fixture)

if block_cache._compiler() is None or not sys.platform.startswith("linux"):
    pytest.skip("no C++ compiler (or not Linux): the block cache cannot be built here", allow_module_level=True)

@pytest.fixture(scope="module")
def built(tmp_path_factory):
    """The library built once into a folder of the tests' own (the probes do not depend on the user's cache)."""
    directory = tmp_path_factory.mktemp("block_cache")
    block_cache.build(directory)
    return directory


def _run(script: str, built, *args: str) -> dict:
    env = {**os.environ, "MONONERF_CACHE_DIR": str(built)}
    r = subprocess.run([sys.executable, "-c", script, *args], capture_output=True, text=True, timeout=300, env=env)
    assert r.returncode == 0, r.stderr[-2000:]
    return json.loads(r.stdout.strip().splitlines()[-1])


_PROBE = """
import json, resource, sys
import mononerf, torch
from mononerf.utils import block_cache as bc

def faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt

out = {"set": bc.keep_freed_blocks(sys.argv[1] == "on")}
x = torch.ones(16 << 20)  # 64 MB: its pages are first written here either way
first = x.data_ptr(); del x
before = faults()
for _ in range(5):
    x = torch.ones(16 << 20); ptr = x.data_ptr(); del x
out["faults"] = faults() - before
out["same_block"] = ptr == first
z = torch.zeros(16 << 20)  # a kept block holds the ones written before: the op writes every value all the same
out["zeros"] = int(torch.count_nonzero(z)) == 0; del z
small = torch.ones(1000)  # below 2 MB: the allocator before
out["stats"] = bc.stats()
print(json.dumps(out))
"""


def test_a_freed_block_serves_the_next_tensor_of_its_size_without_page_faults(built):
    on, off = _run(_PROBE, built, "on"), _run(_PROBE, built, "off")
    assert on["set"] is None and off["set"] is None
    assert off["stats"] is None and off["faults"] >= 5 * 32  # glibc: every 64 MB tensor on fresh pages
    assert on["same_block"] and on["faults"] < 32, on  # the same block each time, its pages already there
    assert on["zeros"]
    # 7 tensors of 64 MB: one mapped, six taken from the kept block; the 4 kB tensor never reached the cache
    assert on["stats"]["misses"] == 1 and on["stats"]["hits"] == 6, on["stats"]
    assert on["stats"]["high_water_bytes"] == 64 << 20


_BOUND = """
import json
import mononerf, torch
from mononerf.utils import block_cache as bc
assert bc.keep_freed_blocks(True) is None
seen = []
def check():
    s = bc.stats()
    seen.append(s)
    assert s["in_use_bytes"] + s["kept_bytes"] <= s["high_water_bytes"], s
a, b, c, d = (torch.empty(n << 18) for n in (32, 32, 48, 80))  # 192 MB in use at once: the high-water mark
check()
del d, c, b, a  # kept, oldest first: 80, 48, 32, 32 MB
check()
ys = [torch.empty(40 << 18) for _ in range(2)]  # fits no kept block: the oldest (80 MB) is unmapped for the first
check()
y = torch.empty(32 << 18); check()  # a 32 MB block is still kept: a hit
small = torch.empty(8 << 18); check()  # below 32 MB: glibc's, never counted
del ys, y; check()
assert bc.keep_freed_blocks(False) is None; check()
bc.keep_freed_blocks(True); bc.release(); check()
print(json.dumps(seen))
"""


def test_kept_blocks_never_take_the_memory_above_the_most_ever_in_use(built):
    seen = _run(_BOUND, built)
    mb = 1 << 20
    assert seen[0]["high_water_bytes"] == 192 * mb and seen[1]["kept_bytes"] == 192 * mb
    # the first 40 MB tensor: 192 kept + 40 > 192, so the oldest kept block goes; the second fits beside the rest
    assert (seen[2]["in_use_bytes"], seen[2]["kept_bytes"], seen[2]["unmapped"]) == (80 * mb, 112 * mb, 1)
    assert seen[3]["hits"] == 1 and seen[3]["kept_bytes"] == 80 * mb
    assert seen[4] == seen[3]
    assert seen[6]["kept_bytes"] == 0  # switched off: what was kept is unmapped
    assert seen[7]["kept_bytes"] == 0 and seen[7]["high_water_bytes"] == seen[7]["in_use_bytes"]  # release


def test_a_missing_or_failing_compiler_is_a_one_line_reason(tmp_path, monkeypatch):
    monkeypatch.setattr(block_cache, "_lib", None)
    monkeypatch.setattr(block_cache, "_failed", None)
    monkeypatch.setenv("MONONERF_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(block_cache, "_compiler", lambda: None)
    assert block_cache.keep_freed_blocks(True) == "no C++ compiler found (set $CXX, or install g++)"
    monkeypatch.setattr(block_cache, "_compiler", lambda: "c++")
    assert block_cache.keep_freed_blocks(True) == "no C++ compiler found (set $CXX, or install g++)"  # not tried again
    monkeypatch.undo()
    monkeypatch.setattr(block_cache, "_lib", None)
    monkeypatch.setattr(block_cache, "_failed", None)
    monkeypatch.setenv("MONONERF_CACHE_DIR", str(tmp_path / "cache"))
    bad = tmp_path / "block_cache.cpp"
    bad.write_text("this is not C++\n")
    monkeypatch.setattr(block_cache, "SOURCE", bad)
    reason = block_cache.keep_freed_blocks(True)
    assert " could not compile block_cache.cpp: " in reason and "error" in reason and "\n" not in reason, reason
    assert block_cache._lib is None and not list((tmp_path / "cache").glob("*.so"))
    assert block_cache.keep_freed_blocks(False) is None  # never installed: nothing to switch off


def test_the_build_is_reused(tmp_path):
    first = block_cache.build(tmp_path)
    stamp = first.stat().st_mtime_ns
    assert block_cache.build(tmp_path) == first and first.stat().st_mtime_ns == stamp


def test_the_pipeline_sets_the_block_cache_from_the_config(scenes, tmp_path, monkeypatch, capsys):  # noqa: F811
    import mononerf.pipeline.pipeline as pipeline_module

    calls = []
    monkeypatch.setattr(pipeline_module, "keep_freed_blocks", lambda on: calls.append(on) or "no C++ compiler found")
    pipeline_module.Pipeline(load_config(tiny_argv(scenes, tmp_path)))
    assert calls == [True]  # the default
    assert ("note: run.keep_freed_memory: no C++ compiler found; freed memory goes back to the system as usual"
            in capsys.readouterr().err)
    pipeline_module.Pipeline(load_config(tiny_argv(scenes, tmp_path, extra=["run.keep_freed_memory=false"])))
    assert calls == [True, False]


_THREADS = """
import json, threading
import mononerf, torch
from mononerf.utils import block_cache as bc
assert bc.keep_freed_blocks(True) is None
torch.set_num_threads(1)
bad = []
def work(k):
    for i in range(40):
        x = torch.empty((32 + 2 * ((i + k) % 3)) << 18)  # 32, 34 or 36 MB: hits, misses and unmaps interleave
        x.fill_(k)
        y = torch.full((8 << 18,), float(i))  # below 32 MB: glibc's, beside
        if not bool((x == k).all()) or not bool((y == i).all()):  # another thread was handed the same block
            bad.append((k, i))
threads = [threading.Thread(target=work, args=(k,)) for k in range(4)]
for t in threads: t.start()
for t in threads: t.join()
print(json.dumps({"bad": bad, "stats": bc.stats()}))
"""


def test_threads_never_share_a_block(built):
    out = _run(_THREADS, built)
    s = out["stats"]
    assert out["bad"] == [] and s["hits"] > 0 and s["misses"] > 0, out
    assert s["in_use_bytes"] == 0 and s["kept_bytes"] <= s["high_water_bytes"], s
