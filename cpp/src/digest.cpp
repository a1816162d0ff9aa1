// OpenSSL EVP digests: fetched once per process, contexts owned by RAII; files read with POSIX
// read(2) in 1 MiB blocks; batches of files hashed by a small set of worker threads.
#include "blocktrust/digest.hpp"

#include <fcntl.h>
#include <openssl/evp.h>
#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <condition_variable>
#include <exception>
#include <system_error>
#include <thread>

namespace blocktrust::digest {

namespace {

struct AlgInfo {
  std::string_view name;     // hashlib's
  const char* openssl_name;  // OpenSSL 3 provider name
  std::size_t digest_size;
  std::size_t block_size;
};

constexpr std::array<AlgInfo, 8> kAlgs{{
    {"sha224", "SHA2-224", 28, 64},
    {"sha256", "SHA2-256", 32, 64},
    {"sha384", "SHA2-384", 48, 128},
    {"sha512", "SHA2-512", 64, 128},
    {"sha3_224", "SHA3-224", 28, 144},
    {"sha3_256", "SHA3-256", 32, 136},
    {"sha3_384", "SHA3-384", 48, 104},
    {"sha3_512", "SHA3-512", 64, 72},
}};

const AlgInfo& info(Algorithm alg) noexcept {
  return kAlgs[static_cast<std::size_t>(alg)];
}

// Lower-case letters and digits only: "SHA-256", "sha_256" and "sha256" all read "sha256".
std::string squash(std::string_view s) {
  std::string out;
  for (char c : s) {
    if (std::isalnum(static_cast<unsigned char>(c)) != 0) {
      out.push_back(static_cast<char>(std::tolower(static_cast<unsigned char>(c))));
    } else if (c != '-' && c != '_') {
      return {};  // anything else makes the name unknown
    }
  }
  return out;
}

void check(int ok, const char* what) {
  if (ok != 1) throw Error(std::string("OpenSSL ") + what + " failed");
}

std::string os_message(int errnum) {
  return std::system_category().message(errnum);
}

// Files at least this large are read on a helper thread while this one hashes (see below).
constexpr std::size_t kPipelineFrom = 4 * kFileBlock;

// Reads a whole block unless the file ends first (read(2) returned 0), so a short block always
// means end of file. Returns the bytes read, or -errno.
ssize_t read_block(int fd, std::uint8_t* buf) {
  std::size_t have = 0;
  while (have < kFileBlock) {
    const ssize_t got = ::read(fd, buf + have, kFileBlock - have);
    if (got == 0) break;
    if (got < 0) {
      if (errno == EINTR) continue;
      return -errno;
    }
    have += static_cast<std::size_t>(got);
  }
  return static_cast<ssize_t>(have);
}

// Hashes one open file descriptor into `out`; returns 0 or the errno of the failing read.
int hash_fd(int fd, EVP_MD_CTX* ctx, const EVP_MD* md, std::uint8_t* buf, std::uint8_t* out) {
  check(EVP_DigestInit_ex2(ctx, md, nullptr), "EVP_DigestInit_ex2");
  for (bool first = true;; first = false) {
    const ssize_t got = read_block(fd, buf);
    if (got < 0) return static_cast<int>(-got);
    check(EVP_DigestUpdate(ctx, buf, static_cast<std::size_t>(got)), "EVP_DigestUpdate");
    if (static_cast<std::size_t>(got) < kFileBlock) break;
    // More than one block: ask for aggressive read-ahead. Advisory only, so a failure is ignored
    // on purpose; small files (the common case in batches) skip the system call altogether.
    if (first) (void)::posix_fadvise(fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  }
  unsigned int len = 0;
  check(EVP_DigestFinal_ex(ctx, out, &len), "EVP_DigestFinal_ex");
  return 0;
}

// Like hash_fd, but a helper thread reads the next block while this thread hashes the current
// one: copying out of the page cache costs about a fifth of SHA-256's time, and overlapping it
// lets a large file hash at the speed of the hash alone when a second core is free.
int hash_fd_pipelined(int fd, EVP_MD_CTX* ctx, const EVP_MD* md, std::uint8_t* buf0,
                      std::uint8_t* out) {
  struct Slot {
    std::uint8_t* buf = nullptr;
    ssize_t len = 0;
    bool full = false;
  };
  auto buf1 = std::make_unique_for_overwrite<std::uint8_t[]>(kFileBlock);
  std::array<Slot, 2> slots{{{buf0}, {buf1.get()}}};
  std::mutex mu;
  std::condition_variable cv;
  bool cancel = false;
  auto read_ahead = [&] {
    for (std::size_t k = 0;; ++k) {
      Slot& s = slots[k % 2];
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return !s.full || cancel; });
        if (cancel) return;
      }
      const ssize_t len = read_block(fd, s.buf);
      {
        const std::lock_guard lock(mu);
        s.len = len;
        s.full = true;
      }
      cv.notify_all();
      if (len < static_cast<ssize_t>(kFileBlock)) return;  // end of file or error
    }
  };
  std::jthread reader;
  try {
    reader = std::jthread(read_ahead);
  } catch (const std::system_error&) {
    return hash_fd(fd, ctx, md, buf0, out);  // no thread to be had: read inline
  }
  try {
    check(EVP_DigestInit_ex2(ctx, md, nullptr), "EVP_DigestInit_ex2");
    for (std::size_t k = 0;; ++k) {
      Slot& s = slots[k % 2];
      {
        std::unique_lock lock(mu);
        cv.wait(lock, [&] { return s.full; });
      }
      if (s.len < 0) return static_cast<int>(-s.len);  // the reader has stopped
      check(EVP_DigestUpdate(ctx, s.buf, static_cast<std::size_t>(s.len)), "EVP_DigestUpdate");
      const bool last = s.len < static_cast<ssize_t>(kFileBlock);
      {
        const std::lock_guard lock(mu);
        s.full = false;
      }
      cv.notify_all();
      if (last) break;
    }
    unsigned int len = 0;
    check(EVP_DigestFinal_ex(ctx, out, &len), "EVP_DigestFinal_ex");
  } catch (...) {
    {
      const std::lock_guard lock(mu);
      cancel = true;
    }
    cv.notify_all();
    throw;  // the reader sees `cancel` and the jthread joins it
  }
  return 0;
}

// Closes a file descriptor on every path out.
struct Fd {
  explicit Fd(int f) noexcept : fd(f) {}
  Fd(const Fd&) = delete;
  Fd& operator=(const Fd&) = delete;
  ~Fd() {
    if (fd >= 0) ::close(fd);
  }
  int fd;
};

// Opens and hashes `path`; fills `result`. Never throws for file errors.
void hash_path(const std::string& path, EVP_MD_CTX* ctx, const EVP_MD* md, std::size_t size,
               std::uint8_t* buf, bool pipeline, FileDigest& result) {
  int opened = -1;
  do {
    opened = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
  } while (opened < 0 && errno == EINTR);
  if (opened < 0) {
    result.status = FileDigest::Status::kFailed;
    result.error_number = errno;
    result.failed_step = "open";
    return;
  }
  const Fd fd{opened};
  struct stat st{};
  pipeline = pipeline && ::fstat(fd.fd, &st) == 0 && S_ISREG(st.st_mode) &&
             static_cast<std::size_t>(st.st_size) >= kPipelineFrom;
  // Advisory only (see hash_fd): a failure changes nothing but read-ahead.
  if (pipeline) (void)::posix_fadvise(fd.fd, 0, 0, POSIX_FADV_SEQUENTIAL);
  result.digest.resize(size);
  const int err = pipeline ? hash_fd_pipelined(fd.fd, ctx, md, buf, result.digest.data())
                           : hash_fd(fd.fd, ctx, md, buf, result.digest.data());
  if (err != 0) {
    result.digest.clear();
    result.status = FileDigest::Status::kFailed;
    result.error_number = err;
    result.failed_step = "read";
    return;
  }
  result.status = FileDigest::Status::kOk;
}

EvpMdCtxPtr new_ctx() {
  EvpMdCtxPtr ctx(EVP_MD_CTX_new());
  if (!ctx) throw Error("OpenSSL EVP_MD_CTX_new failed");
  return ctx;
}

}  // namespace

void EvpMdCtxFree::operator()(EVP_MD_CTX* ctx) const noexcept {
  EVP_MD_CTX_free(ctx);
}

Algorithm parse_algorithm(std::string_view name) {
  const std::string key = squash(name);
  if (!key.empty()) {
    for (std::size_t i = 0; i < kAlgs.size(); ++i) {
      if (squash(kAlgs[i].name) == key) return static_cast<Algorithm>(i);
    }
  }
  std::string known;
  for (const auto& a : kAlgs) known += (known.empty() ? "" : ", ") + std::string(a.name);
  throw ConfigError("unknown hash algorithm '" + std::string(name.substr(0, 64)) +
                    "' (known: " + known + ")");
}

std::string_view algorithm_name(Algorithm alg) noexcept {
  return info(alg).name;
}

std::vector<std::string_view> algorithm_names() {
  std::vector<std::string_view> out;
  out.reserve(std::size(kAlgs));
  for (const auto& a : kAlgs) out.push_back(a.name);
  return out;
}

std::size_t digest_size(Algorithm alg) noexcept {
  return info(alg).digest_size;
}

std::size_t block_size(Algorithm alg) noexcept {
  return info(alg).block_size;
}

const EVP_MD* evp_md(Algorithm alg) {
  // Fetched once: EVP_MD_fetch walks the provider store under a lock, far too slow per call.
  // Never freed; they live as long as the process (and its providers).
  static const std::array<EVP_MD*, kAlgs.size()> mds = [] {
    std::array<EVP_MD*, kAlgs.size()> out{};
    for (std::size_t i = 0; i < kAlgs.size(); ++i) {
      out[i] = EVP_MD_fetch(nullptr, kAlgs[i].openssl_name, nullptr);
    }
    return out;
  }();
  const EVP_MD* md = mds[static_cast<std::size_t>(alg)];
  if (md == nullptr) {
    throw ConfigError("hash algorithm '" + std::string(info(alg).name) +
                      "' is not available in this OpenSSL");
  }
  return md;
}

Bytes hash(Algorithm alg, ByteView data) {
  Bytes out(digest_size(alg));
  unsigned int len = 0;
  check(EVP_Digest(data.data(), data.size(), out.data(), &len, evp_md(alg), nullptr), "EVP_Digest");
  return out;
}

Bytes sha256(ByteView data) {
  return hash(Algorithm::kSha256, data);
}
Bytes sha512(ByteView data) {
  return hash(Algorithm::kSha512, data);
}
Bytes sha3_256(ByteView data) {
  return hash(Algorithm::kSha3_256, data);
}

Hasher::Hasher(Algorithm alg) : alg_(alg), ctx_(new_ctx()) {
  check(EVP_DigestInit_ex2(ctx_.get(), evp_md(alg), nullptr), "EVP_DigestInit_ex2");
}

Hasher::~Hasher() = default;

void Hasher::update(ByteView data) {
  const std::lock_guard lock(mu_);
  check(EVP_DigestUpdate(ctx_.get(), data.data(), data.size()), "EVP_DigestUpdate");
}

Bytes Hasher::digest() const {
  // Finalise a copy so the running state stays open for more updates (hashlib semantics).
  EvpMdCtxPtr tmp = new_ctx();
  {
    const std::lock_guard lock(mu_);
    check(EVP_MD_CTX_copy_ex(tmp.get(), ctx_.get()), "EVP_MD_CTX_copy_ex");
  }
  Bytes out(digest_size(alg_));
  unsigned int len = 0;
  check(EVP_DigestFinal_ex(tmp.get(), out.data(), &len), "EVP_DigestFinal_ex");
  return out;
}

std::unique_ptr<Hasher> Hasher::copy() const {
  auto other = std::make_unique<Hasher>(alg_);
  const std::lock_guard lock(mu_);
  check(EVP_MD_CTX_copy_ex(other->ctx_.get(), ctx_.get()), "EVP_MD_CTX_copy_ex");
  return other;
}

Bytes hash_file(Algorithm alg, const std::string& path) {
  const EVP_MD* md = evp_md(alg);
  EvpMdCtxPtr ctx = new_ctx();
  auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(kFileBlock);
  FileDigest result;
  hash_path(path, ctx.get(), md, digest_size(alg), buf.get(), true, result);
  if (result.status != FileDigest::Status::kOk) {
    throw FileReadError(
        path, result.error_number,
        "cannot " + result.failed_step + " '" + path + "': " + os_message(result.error_number));
  }
  return std::move(result.digest);
}

unsigned effective_threads(unsigned threads, std::size_t jobs) noexcept {
  unsigned n = threads != 0 ? threads : std::max(1U, std::thread::hardware_concurrency());
  if (jobs < n) n = static_cast<unsigned>(std::max<std::size_t>(jobs, 1));
  return n;
}

std::vector<FileDigest> hash_files(Algorithm alg, std::span<const std::string> paths,
                                   unsigned threads, bool stop_on_error) {
  const EVP_MD* md = evp_md(alg);
  const std::size_t size = digest_size(alg);
  std::vector<FileDigest> results(paths.size());
  std::atomic<std::size_t> next{0};
  std::atomic<bool> stop{false};
  std::mutex failure_mu;
  std::exception_ptr failure;  // an OpenSSL or allocation failure in a worker, rethrown here
  const unsigned n = effective_threads(threads, paths.size());
  const bool pipeline = n == 1;  // with several workers the cores are busy already
  // Each worker takes the next unclaimed index, so a slow file never holds up the others.
  auto work = [&]() noexcept {
    try {
      EvpMdCtxPtr ctx = new_ctx();
      auto buf = std::make_unique_for_overwrite<std::uint8_t[]>(kFileBlock);
      for (;;) {
        if (stop.load(std::memory_order_relaxed)) return;
        const std::size_t i = next.fetch_add(1, std::memory_order_relaxed);
        if (i >= paths.size()) return;
        hash_path(paths[i], ctx.get(), md, size, buf.get(), pipeline, results[i]);
        if (stop_on_error && results[i].status == FileDigest::Status::kFailed) {
          stop.store(true, std::memory_order_relaxed);
        }
      }
    } catch (...) {
      stop.store(true, std::memory_order_relaxed);
      const std::lock_guard lock(failure_mu);
      if (!failure) failure = std::current_exception();
    }
  };
  {
    std::vector<std::jthread> pool;
    pool.reserve(n - 1);
    for (unsigned t = 1; t < n; ++t) pool.emplace_back(work);
    work();  // the calling thread is worker 0
  }  // joins
  if (failure) std::rethrow_exception(failure);
  return results;
}

}  // namespace blocktrust::digest
