// The mmap/munmap that our private copy of libsodium calls (see CMakeLists.txt). libsodium maps a
// fresh Argon2 work area for every hash: thousands of 4 KiB page faults, TLB misses and an unmap
// with TLB shootdowns per call. Here work areas are mappings kept for reuse and marked for huge
// pages; when libsodium gives one back its pages are released (MADV_DONTNEED: the password-derived
// blocks are gone as after munmap, and an idle process holds no memory for them). At most one
// mapping per core is kept; every other mapping libsodium asks for goes straight to the kernel.
#include "sodium_memory.hpp"

#include <sys/mman.h>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <thread>
#include <vector>

namespace blocktrust::password::engine {
namespace {

// Smaller anonymous mappings (sodium_malloc's guarded pages) are not Argon2 work areas.
constexpr std::size_t kMinPooled = std::size_t{1} << 20;

struct Region {
  void* base;
  std::size_t len;
};

class RegionPool {
 public:
  ~RegionPool() {
    for (const Region& r : free_) ::munmap(r.base, r.len);
  }

  void* take(std::size_t len) {
    {
      std::lock_guard lock(mu_);
      // The smallest kept region that fits, so a large one stays for large requests.
      auto best = free_.end();
      for (auto it = free_.begin(); it != free_.end(); ++it) {
        if (it->len >= len && (best == free_.end() || it->len < best->len)) best = it;
      }
      if (best != free_.end()) {
        Region r = *best;
        free_.erase(best);
        lent_.push_back(r);
        return r.base;
      }
    }
    void* p = ::mmap(nullptr, len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (p == MAP_FAILED) return p;
    // Work areas are walked block by block: huge pages cut TLB misses (a hint; may be refused).
    ::madvise(p, len, MADV_HUGEPAGE);
    maps_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    lent_.push_back(Region{p, len});
    return p;
  }

  /// True when `base` was lent by take() (then its pages are released and the mapping kept, or
  /// unmapped).
  bool give_back(void* base) {
    Region r{};
    {
      std::lock_guard lock(mu_);
      auto it = std::find_if(lent_.begin(), lent_.end(),
                             [base](const Region& x) { return x.base == base; });
      if (it == lent_.end()) return false;
      r = *it;
      lent_.erase(it);
    }
    // Drop the pages now (like munmap, unlike a memset: nothing stays resident while idle).
    ::madvise(r.base, r.len, MADV_DONTNEED);
    std::lock_guard lock(mu_);
    const std::size_t cap = std::max(1u, std::thread::hardware_concurrency());
    if (free_.size() < cap) {
      free_.push_back(r);
      return true;
    }
    ::munmap(r.base, r.len);
    return true;
  }

  std::uint64_t maps() const noexcept { return maps_.load(std::memory_order_relaxed); }

 private:
  std::mutex mu_;
  std::vector<Region> free_, lent_;
  std::atomic<std::uint64_t> maps_{0};
};

RegionPool& pool() {
  static RegionPool p;
  return p;
}

}  // namespace

std::uint64_t sodium_region_maps() noexcept {
  return pool().maps();
}

}  // namespace blocktrust::password::engine

namespace engine = blocktrust::password::engine;

extern "C" void* blocktrust_sodium_mmap(void* addr, std::size_t len, int prot, int flags, int fd,
                                        off_t offset) {
  const bool work_area = addr == nullptr && fd == -1 && offset == 0 &&
                         prot == (PROT_READ | PROT_WRITE) && (flags & MAP_ANONYMOUS) != 0 &&
                         (flags & MAP_PRIVATE) != 0 && (flags & MAP_FIXED) == 0 &&
                         len >= engine::kMinPooled;
  if (!work_area) return ::mmap(addr, len, prot, flags, fd, offset);
  return engine::pool().take(len);
}

extern "C" int blocktrust_sodium_munmap(void* addr, std::size_t len) {
  if (engine::pool().give_back(addr)) return 0;
  return ::munmap(addr, len);
}
