// Merkle trees exactly as RFC 6962 section 2.1 defines the Merkle Tree Hash (Certificate
// Transparency): leaf = SHA-256(0x00 || data), node = SHA-256(0x01 || left || right), split at the
// largest power of two below n, empty tree = SHA-256(""). Inclusion proofs per RFC 9162 2.1.3.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <vector>

#include "blocktrust/digest.hpp"
#include "blocktrust/error.hpp"

namespace blocktrust::merkle {

/// A SHA-256 tree hash.
using Hash = std::array<std::uint8_t, 32>;
using digest::ByteView;

/// Raised for malformed proof input (a hash that is not 32 bytes, bad JSON, a bad index or size).
class InvalidProof : public Error {
 public:
  using Error::Error;
};

/// Raised when a proof is asked for a leaf index outside the tree.
class LeafIndexError : public Error {
 public:
  using Error::Error;
};

/// RFC 6962 leaf hash: SHA-256(0x00 || data).
[[nodiscard]] Hash leaf_hash(ByteView data);
/// RFC 6962 interior node hash: SHA-256(0x01 || left || right).
[[nodiscard]] Hash node_hash(const Hash& left, const Hash& right);
/// Merkle Tree Hash of `leaves` (raw leaf data; the tree hashes them). No allocation per node.
[[nodiscard]] Hash root(std::span<const ByteView> leaves);
/// Merkle Tree Hash of the leaves packed back to back in `data`, each `leaf_size` bytes long.
/// Throws InvalidProof when data's length is not a multiple of leaf_size (or leaf_size is 0).
[[nodiscard]] Hash root_packed(ByteView data, std::size_t leaf_size);

/// A whole tree kept in memory (every level), for roots and inclusion proofs. Immutable, so one
/// tree may be read from many threads at once.
class Tree final {
 public:
  /// Builds the tree over `leaves` (raw leaf data).
  explicit Tree(std::span<const ByteView> leaves);
  /// The Merkle Tree Hash.
  [[nodiscard]] const Hash& root() const noexcept { return root_; }
  /// The number of leaves.
  [[nodiscard]] std::size_t size() const noexcept { return levels_.front().size(); }
  /// The leaf hash of leaf `index`; throws LeafIndexError when out of range.
  [[nodiscard]] const Hash& leaf(std::size_t index) const;
  /// RFC 6962 PATH(index, D[n]): the audit path of leaf `index`, leaf level first.
  [[nodiscard]] std::vector<Hash> proof(std::size_t index) const;

 private:
  std::vector<std::vector<Hash>> levels_;  // levels_[0] = leaf hashes; a lone last node moves up
  Hash root_{};
};

/// RFC 9162 2.1.3.2: the root an inclusion proof implies for the leaf hash `leaf`, or nullopt
/// when the proof's length does not fit `index` and `size` (or index >= size).
[[nodiscard]] std::optional<Hash> root_from_inclusion_proof(const Hash& leaf, std::uint64_t index,
                                                            std::uint64_t size,
                                                            std::span<const Hash> proof);
/// True when `proof` shows that leaf data `leaf` is leaf `index` of the tree of `size` leaves with
/// root `root`.
[[nodiscard]] bool verify_inclusion(ByteView leaf, std::uint64_t index, std::uint64_t size,
                                    std::span<const Hash> proof, const Hash& root);

}  // namespace blocktrust::merkle
