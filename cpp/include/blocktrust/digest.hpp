// Message digests over OpenSSL EVP: one-shot, streaming, files, and many files in parallel.
#pragma once

#include <openssl/types.h>

#include <cstddef>
#include <cstdint>
#include <memory>
#include <mutex>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "blocktrust/error.hpp"

namespace blocktrust::digest {

/// The hash algorithms offered; names follow hashlib ("sha256", "sha3_256", ...).
enum class Algorithm {
  kSha224,
  kSha256,
  kSha384,
  kSha512,
  kSha3_224,
  kSha3_256,
  kSha3_384,
  kSha3_512
};

/// A digest (or any owned byte string).
using Bytes = std::vector<std::uint8_t>;
/// A borrowed byte string.
using ByteView = std::span<const std::uint8_t>;

/// Block length hash_file and hash_files read with (1 MiB).
inline constexpr std::size_t kFileBlock = std::size_t{1} << 20;

/// Parses a hashlib-style name ("sha256", "SHA-256", "sha3_256", "SHA3-256"); throws ConfigError.
[[nodiscard]] Algorithm parse_algorithm(std::string_view name);
/// The hashlib name of `alg` ("sha256", "sha3_256", ...).
[[nodiscard]] std::string_view algorithm_name(Algorithm alg) noexcept;
/// Every algorithm's hashlib name, in enum order.
[[nodiscard]] std::vector<std::string_view> algorithm_names();
/// Digest length of `alg` in bytes.
[[nodiscard]] std::size_t digest_size(Algorithm alg) noexcept;
/// Internal block length of `alg` in bytes (hashlib's block_size).
[[nodiscard]] std::size_t block_size(Algorithm alg) noexcept;
/// The OpenSSL EVP_MD of `alg`, fetched once per process and cached; throws ConfigError if absent.
[[nodiscard]] const EVP_MD* evp_md(Algorithm alg);

/// One-shot digest of `data`.
[[nodiscard]] Bytes hash(Algorithm alg, ByteView data);
/// One-shot SHA-256.
[[nodiscard]] Bytes sha256(ByteView data);
/// One-shot SHA-512.
[[nodiscard]] Bytes sha512(ByteView data);
/// One-shot SHA3-256.
[[nodiscard]] Bytes sha3_256(ByteView data);
/// One-shot Keccak-256 as Ethereum uses it (original Keccak padding; differs from SHA3-256):
/// function selectors, event topics, addresses.
[[nodiscard]] Bytes keccak256(ByteView data);

/// Deleter for OpenSSL digest contexts.
struct EvpMdCtxFree {
  void operator()(EVP_MD_CTX* ctx) const noexcept;
};
/// An owned OpenSSL digest context.
using EvpMdCtxPtr = std::unique_ptr<EVP_MD_CTX, EvpMdCtxFree>;

/// A streaming hash with hashlib's face. Calls on one Hasher are serialised by a mutex, so it may
/// be shared between threads; digest() does not reset the state.
class Hasher final {
 public:
  /// Starts an empty hash of `alg`.
  explicit Hasher(Algorithm alg);
  Hasher(const Hasher&) = delete;
  Hasher& operator=(const Hasher&) = delete;
  ~Hasher();

  /// Feeds `data`.
  void update(ByteView data);
  /// The digest of everything fed so far; the Hasher stays usable.
  [[nodiscard]] Bytes digest() const;
  /// An independent Hasher with the same state.
  [[nodiscard]] std::unique_ptr<Hasher> copy() const;
  /// The algorithm this Hasher computes.
  [[nodiscard]] Algorithm algorithm() const noexcept { return alg_; }

 private:
  Algorithm alg_;
  EvpMdCtxPtr ctx_;
  mutable std::mutex mu_;
};

/// Digest of the file at `path`, read in kFileBlock blocks (from 4 MiB up, a helper thread reads
/// the next block while this one hashes); throws FileReadError naming the path.
[[nodiscard]] Bytes hash_file(Algorithm alg, const std::string& path);

/// The outcome of hashing one file in hash_files.
struct FileDigest {
  /// What happened to this file.
  enum class Status { kOk, kFailed, kSkipped };
  Status status = Status::kSkipped;
  /// The digest when status is kOk.
  Bytes digest;
  /// errno of the failure when status is kFailed.
  int error_number = 0;
  /// The step that failed ("open" or "read") when status is kFailed.
  std::string failed_step;
};

/// Hashes `paths` on `threads` workers (0 = hardware concurrency); results are in input order.
/// With stop_on_error the workers stop after the first failure and files not yet begun stay
/// kSkipped; otherwise every file is attempted.
[[nodiscard]] std::vector<FileDigest> hash_files(Algorithm alg, std::span<const std::string> paths,
                                                 unsigned threads, bool stop_on_error);

/// The worker count hash_files uses for `threads` (0 → hardware concurrency) and `jobs` files.
[[nodiscard]] unsigned effective_threads(unsigned threads, std::size_t jobs) noexcept;

}  // namespace blocktrust::digest
