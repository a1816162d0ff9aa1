// The mmap/munmap that our private copy of libsodium calls (see CMakeLists.txt). libsodium maps a
// fresh Argon2 work area for every hash: thousands of page faults, kernel zeroing, TLB misses and
// an unmap with TLB shootdowns per call. Here work areas are mappings kept for reuse and backed by
// huge pages; when libsodium gives one back it is wiped at once (no password-derived block
// outlives the hash, as after munmap) and kept for the next hash. At most one mapping per core is
// kept (a process that has hashed holds at most cores x m KiB of zeros, as glibc keeps the block
// argon2-cffi freed); every other mapping libsodium asks for goes straight to the kernel.
#include "sodium_memory.hpp"

#include <sys/mman.h>

#if defined(__x86_64__)
#include <emmintrin.h>
#endif

#include <algorithm>
#include <atomic>
#include <cstdint>
#include <cstring>
#include <mutex>
#include <thread>
#include <vector>

namespace blocktrust::passwords::engine {
namespace {

// Smaller anonymous mappings (sodium_malloc's guarded pages) are not Argon2 work areas.
constexpr std::size_t kMinPooled = std::size_t{1} << 20;

// Zeroes a work area. Streaming stores skip the read-for-ownership and leave the caches to the
// other core's hash: about half the cost of glibc's memset on 19 MiB, and the pages stay mapped
// (releasing them with MADV_DONTNEED cost 3+ ms of kernel time per hash to fault and zero them
// again; see docs/bench_keys.md).
void wipe(void* base, std::size_t len) noexcept {
#if defined(__x86_64__)
  auto* p = static_cast<unsigned char*>(base);
  const __m128i zero = _mm_setzero_si128();
  std::size_t i = 0;
  for (; i + 16 <= len; i += 16) _mm_stream_si128(reinterpret_cast<__m128i*>(p + i), zero);
  _mm_sfence();  // the stores are visible before the area is lent again
  if (i < len) explicit_bzero(p + i, len - i);
  asm volatile("" : : "r"(p) : "memory");  // the wipe is not a dead store
#else
  explicit_bzero(base, len);
#endif
}

struct Region {
  void* base;
  std::size_t len;
  std::size_t used = 0;  // bytes asked for by the current loan: all that can hold its blocks
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
        r.used = len;
        free_.erase(best);
        lent_.push_back(r);
        return r.base;
      }
    }
    Region r = map_huge(len);
    if (r.base == MAP_FAILED) return MAP_FAILED;
    r.used = len;
    maps_.fetch_add(1, std::memory_order_relaxed);
    std::lock_guard lock(mu_);
    lent_.push_back(r);
    return r.base;
  }

  /// True when `base` was lent by take() (then it is wiped and kept, or unmapped).
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
    wipe(r.base, r.used);
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
  // Work areas are read at random block by block: huge pages cut TLB misses. A mapping that starts
  // on a huge-page boundary and spans whole huge pages can be backed by them entirely (19 MiB
  // mapped as-is got 16-18 MiB of huge pages). Marking is a hint the kernel may refuse.
  static Region map_huge(std::size_t len) {
    constexpr std::size_t kHuge = std::size_t{2} << 20;
    const std::size_t size = (len + kHuge - 1) / kHuge * kHuge;
    void* raw =
        ::mmap(nullptr, size + kHuge, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
    if (raw == MAP_FAILED) return Region{MAP_FAILED, 0};
    const auto start = reinterpret_cast<std::uintptr_t>(raw);
    const std::uintptr_t aligned = (start + kHuge - 1) / kHuge * kHuge;
    if (aligned > start) ::munmap(raw, aligned - start);
    const std::size_t tail = start + kHuge - aligned;  // what the head did not take
    if (tail > 0) ::munmap(reinterpret_cast<void*>(aligned + size), tail);
    void* base = reinterpret_cast<void*>(aligned);
    ::madvise(base, size, MADV_HUGEPAGE);
    return Region{base, size};
  }

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

}  // namespace blocktrust::passwords::engine

namespace engine = blocktrust::passwords::engine;

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
