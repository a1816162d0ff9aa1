// Memory for our private copy of libsodium (see sodium_memory.cpp and CMakeLists.txt).
#pragma once

#include <sys/types.h>

#include <cstddef>
#include <cstdint>

namespace blocktrust::passwords::engine {

/// Argon2 work areas mapped from the kernel so far in this process; reused ones do not count
/// (lets tests prove that a second hash of the same size maps nothing new).
[[nodiscard]] std::uint64_t sodium_region_maps() noexcept;

}  // namespace blocktrust::passwords::engine

// libsodium's mmap/munmap calls land here (renamed by objcopy at build time).
extern "C" void* blocktrust_sodium_mmap(void* addr, std::size_t len, int prot, int flags, int fd,
                                        off_t offset);
extern "C" int blocktrust_sodium_munmap(void* addr, std::size_t len);
