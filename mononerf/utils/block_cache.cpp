// A caching CPU allocator for large blocks: run.keep_freed_memory (docs/training.md, "Freed memory").
//
// Every CPU tensor of `min_bytes` or more (32 MB: what glibc maps on its own) gets a block of its size rounded up to
// kAlign, mapped on its own and aligned to kAlign (advised for huge pages when `huge`). A freed block is kept, and the
// next request of exactly that size takes it, so a training step writes into the pages of the step before instead of
// faulting fresh ones in. The kept blocks are bounded: the blocks in use plus those kept never exceed the most ever
// in use at once (the high-water mark); a request no kept block fits unmaps the oldest kept ones first. So the
// process's peak memory is the allocator's without the cache (plus the rounding). Smaller tensors go to the allocator
// that was there before. Built by mononerf/utils/block_cache.py against the installed torch; loaded with ctypes.
#include <c10/core/Allocator.h>
#include <c10/core/CPUAllocator.h>

#include <sys/mman.h>

#include <cstdint>
#include <cstring>
#include <list>
#include <map>
#include <mutex>
#include <new>
#include <unordered_map>
#include <utility>
#include <vector>

namespace {
constexpr size_t kAlign = size_t(2) << 20;  // 2 MiB, a huge page
using Kept = std::list<std::pair<size_t, void*>>;  // (size, block), oldest first

struct State {
  std::mutex mu;
  std::unordered_map<void*, size_t> in_use;  // block -> its size
  Kept kept;
  std::multimap<size_t, Kept::iterator> by_size;
  size_t in_use_bytes = 0, kept_bytes = 0, high_water = 0, min_bytes = 0;  // min_bytes: set with the cache
  size_t hits = 0, misses = 0, unmapped = 0;
  bool keep = false, huge = true;
  c10::Allocator* before = nullptr;  // the allocator this one replaced: small blocks
};
State* S = new State;  // never destroyed: tensors are still freed while the process exits

void* map_block(size_t r, bool huge) {
  void* raw = mmap(nullptr, r + kAlign, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
  if (raw == MAP_FAILED) return nullptr;
  uintptr_t start = reinterpret_cast<uintptr_t>(raw), p = (start + kAlign - 1) / kAlign * kAlign;
  if (p > start) munmap(raw, p - start);
  if (start + kAlign > p) munmap(reinterpret_cast<void*>(p + r), start + kAlign - p);
#ifdef MADV_HUGEPAGE
  if (huge) madvise(reinterpret_cast<void*>(p), r, MADV_HUGEPAGE);
#endif
  return reinterpret_cast<void*>(p);
}

using Blocks = std::vector<std::pair<void*, size_t>>;

void take_oldest(Blocks& out) {  // S->mu held
  auto oldest = S->kept.begin();
  auto range = S->by_size.equal_range(oldest->first);
  for (auto it = range.first; it != range.second; ++it) {
    if (it->second == oldest) {
      S->by_size.erase(it);
      break;
    }
  }
  S->kept_bytes -= oldest->first;
  out.emplace_back(oldest->second, oldest->first);
  S->kept.erase(oldest);
  S->unmapped++;
}

void unmap(const Blocks& blocks) {
  for (const auto& b : blocks) munmap(b.first, b.second);
}

void free_block(void* p) {
  if (p == nullptr) return;
  std::unique_lock<std::mutex> lock(S->mu);
  auto it = S->in_use.find(p);
  if (it == S->in_use.end()) {  // a small block of the allocator before (raw_allocate, then raw_deallocate)
    lock.unlock();
    S->before->raw_deleter()(p);
    return;
  }
  size_t size = it->second;
  S->in_use.erase(it);
  S->in_use_bytes -= size;
  size_t in_use = S->in_use_bytes, reserved = S->in_use_bytes + S->kept_bytes;
  if (S->keep) {
    S->kept.emplace_back(size, p);
    S->by_size.emplace(size, std::prev(S->kept.end()));
    S->kept_bytes += size;
    reserved += size;
  }
  bool keep = S->keep;
  lock.unlock();
  if (!keep) munmap(p, size);
  c10::reportMemoryUsageToProfiler(p, -static_cast<int64_t>(size), in_use, reserved, c10::Device(c10::DeviceType::CPU));
}

struct BlockCache final : c10::Allocator {
  c10::DataPtr allocate(size_t n) override {
    if (n < S->min_bytes) return S->before->allocate(n);
    size_t r = (n + kAlign - 1) / kAlign * kAlign;
    void* p = nullptr;
    Blocks dropped;
    {
      std::lock_guard<std::mutex> lock(S->mu);
      auto it = S->by_size.find(r);
      if (it != S->by_size.end()) {
        p = it->second->second;
        S->kept.erase(it->second);
        S->by_size.erase(it);
        S->kept_bytes -= r;
        S->hits++;
      } else {
        S->misses++;
        while (!S->kept.empty() && S->in_use_bytes + S->kept_bytes + r > S->high_water) take_oldest(dropped);
      }
      S->in_use_bytes += r;  // counted before the block is mapped, so that another thread's request sees it
      if (S->in_use_bytes > S->high_water) S->high_water = S->in_use_bytes;
    }
    unmap(dropped);
    if (p == nullptr && (p = map_block(r, S->huge)) == nullptr) {
      std::lock_guard<std::mutex> lock(S->mu);
      S->in_use_bytes -= r;
      throw std::bad_alloc();
    }
    size_t in_use, reserved;
    {
      std::lock_guard<std::mutex> lock(S->mu);
      S->in_use.emplace(p, r);
      in_use = S->in_use_bytes;
      reserved = S->in_use_bytes + S->kept_bytes;
    }
    // outside the lock: the profiler may allocate
    c10::reportMemoryUsageToProfiler(p, static_cast<int64_t>(r), in_use, reserved, c10::Device(c10::DeviceType::CPU));
    return {p, p, &free_block, c10::Device(c10::DeviceType::CPU)};
  }
  c10::DeleterFnPtr raw_deleter() const override { return &free_block; }
  void copy_data(void* dest, const void* src, std::size_t count) const override { std::memcpy(dest, src, count); }
};
BlockCache* cache = new BlockCache;
}  // namespace

extern "C" {
// Install (once) as PyTorch's CPU allocator and keep freed blocks (keep != 0) or unmap them. 0: another allocator of
// a higher priority is in place, or the one before has no raw deleter; nothing changed.
int mononerf_block_cache_set(int keep, unsigned long long min_bytes, int huge) {
  Blocks dropped;
  {
    std::lock_guard<std::mutex> lock(S->mu);
    if (S->before == nullptr) {
      c10::Allocator* before = c10::GetCPUAllocator();
      if (before->raw_deleter() == nullptr) return 0;
      S->before = before;  // before the switch: another thread may allocate through the cache at once
      c10::SetCPUAllocator(cache, 0);
      if (c10::GetCPUAllocator() != cache) {
        S->before = nullptr;
        return 0;
      }
    }
    S->keep = keep != 0;
    S->min_bytes = min_bytes < 1 ? 1 : min_bytes;
    S->huge = huge != 0;
    while (!S->keep && !S->kept.empty()) take_oldest(dropped);
  }
  unmap(dropped);
  return 1;
}

// Unmap every kept block and lower the high-water mark to the blocks in use.
void mononerf_block_cache_release(void) {
  Blocks dropped;
  {
    std::lock_guard<std::mutex> lock(S->mu);
    while (!S->kept.empty()) take_oldest(dropped);
    S->high_water = S->in_use_bytes;
  }
  unmap(dropped);
}

// hits, misses, unmapped, bytes in use, bytes kept, high-water mark
void mononerf_block_cache_stats(unsigned long long* out) {
  std::lock_guard<std::mutex> lock(S->mu);
  out[0] = S->hits;
  out[1] = S->misses;
  out[2] = S->unmapped;
  out[3] = S->in_use_bytes;
  out[4] = S->kept_bytes;
  out[5] = S->high_water;
}
}
