// blocktrust_native._native.digest: buffer-protocol conversion, GIL release around hashing and
// file I/O, and translation of the digest/Merkle errors. Logic lives in
// cpp/src/{digest,merkle}.cpp.
#include "blocktrust/digest.hpp"

#include <pybind11/stl.h>

#include <cstring>
#include <deque>
#include <limits>
#include <string>
#include <vector>

#include "bindings.hpp"
#include "blocktrust/merkle.hpp"

namespace blocktrust::bindings {

namespace {

namespace dg = blocktrust::digest;
namespace mk = blocktrust::merkle;

// Inputs at least this long are hashed with the GIL released (below it the release costs more
// than it frees).
constexpr std::size_t kReleaseGilAt = 64 * 1024;

[[noreturn]] void not_bytes(const std::string& what, py::handle obj) {
  std::string type = Py_TYPE(obj.ptr())->tp_name;
  std::string msg = what + " must be a bytes-like object, not '" + type + "'";
  if (PyUnicode_Check(obj.ptr())) msg += " (encode str first)";
  set_python_error("NotBytesLike", msg.c_str());
  throw py::error_already_set();
}

// A read-only view of any C-contiguous buffer; holds the export (so a bytearray cannot be
// resized) until destroyed, which must happen with the GIL held.
class Buffer {
 public:
  Buffer(py::handle obj, const std::string& what) {
    if (PyBytes_Check(obj.ptr())) {  // fast path: immutable, kept alive by the caller
      view_ = {reinterpret_cast<const std::uint8_t*>(PyBytes_AS_STRING(obj.ptr())),
               static_cast<std::size_t>(PyBytes_GET_SIZE(obj.ptr()))};
      return;
    }
    if (PyObject_CheckBuffer(obj.ptr()) == 0) not_bytes(what, obj);
    if (PyObject_GetBuffer(obj.ptr(), &buf_, PyBUF_SIMPLE) != 0) throw py::error_already_set();
    held_ = true;
    view_ = {static_cast<const std::uint8_t*>(buf_.buf), static_cast<std::size_t>(buf_.len)};
  }
  Buffer(const Buffer&) = delete;
  Buffer& operator=(const Buffer&) = delete;
  Buffer(Buffer&& o) noexcept : buf_(o.buf_), held_(o.held_), view_(o.view_) { o.held_ = false; }
  Buffer& operator=(Buffer&&) = delete;
  ~Buffer() {
    if (held_) PyBuffer_Release(&buf_);
  }
  [[nodiscard]] dg::ByteView view() const noexcept { return view_; }

 private:
  Py_buffer buf_{};
  bool held_ = false;
  dg::ByteView view_;
};

// Every leaf of an iterable as a view. The tuple keeps each object alive while the GIL is
// released, even if the caller's list is changed by another thread meanwhile.
class LeafViews {
 public:
  explicit LeafViews(py::handle leaves) {
    PyObject* t = PySequence_Tuple(leaves.ptr());
    if (t == nullptr) {
      PyErr_Clear();
      not_bytes("leaves (an iterable of bytes-like objects)", leaves);
    }
    tuple_ = py::reinterpret_steal<py::tuple>(t);
    const auto n = static_cast<std::size_t>(PyTuple_GET_SIZE(t));
    views_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
      PyObject* item = PyTuple_GET_ITEM(t, static_cast<Py_ssize_t>(i));
      if (PyBytes_Check(item)) {
        views_.emplace_back(reinterpret_cast<const std::uint8_t*>(PyBytes_AS_STRING(item)),
                            static_cast<std::size_t>(PyBytes_GET_SIZE(item)));
      } else {
        buffers_.emplace_back(item, "leaf " + std::to_string(i));
        views_.push_back(buffers_.back().view());
      }
    }
  }
  [[nodiscard]] std::span<const dg::ByteView> views() const noexcept { return views_; }

 private:
  py::tuple tuple_;
  std::deque<Buffer> buffers_;  // only for leaves that are not bytes; a deque never moves them
  std::vector<dg::ByteView> views_;
};

py::bytes to_bytes(const std::uint8_t* p, std::size_t n) {
  return {reinterpret_cast<const char*>(p), n};
}
py::bytes to_bytes(const dg::Bytes& b) {
  return to_bytes(b.data(), b.size());
}
py::bytes to_bytes(const mk::Hash& h) {
  return to_bytes(h.data(), h.size());
}

std::string to_hex(const dg::Bytes& b) {
  static constexpr char kDigits[] = "0123456789abcdef";
  std::string out(b.size() * 2, '0');
  for (std::size_t i = 0; i < b.size(); ++i) {
    out[2 * i] = kDigits[b[i] >> 4U];
    out[2 * i + 1] = kDigits[b[i] & 0xFU];
  }
  return out;
}

// `digest(view)` of a bytes-like object, with the GIL released for long inputs.
template <class Digest>
dg::Bytes digest_buffer(py::handle data, Digest digest) {
  const Buffer buf(data, "data");
  if (buf.view().size() < kReleaseGilAt) return digest(buf.view());
  const py::gil_scoped_release release;
  return digest(buf.view());
}

dg::Bytes hash_buffer(dg::Algorithm alg, py::handle data) {
  return digest_buffer(data, [alg](dg::ByteView v) { return dg::hash(alg, v); });
}

// A 32-byte tree hash from a bytes-like object; anything else is InvalidProof naming `what`.
mk::Hash to_hash(py::handle obj, const std::string& what) {
  const Buffer buf(obj, what);
  if (buf.view().size() != 32) {
    throw mk::InvalidProof(what + " is " + std::to_string(buf.view().size()) +
                           " bytes long, expected 32 (a SHA-256 hash)");
  }
  mk::Hash h;
  std::memcpy(h.data(), buf.view().data(), 32);
  return h;
}

std::vector<mk::Hash> to_path(py::handle proof) {
  PyObject* t = PySequence_Tuple(proof.ptr());
  if (t == nullptr) {
    PyErr_Clear();
    throw mk::InvalidProof(std::string("proof must be a sequence of 32-byte hashes, not '") +
                           Py_TYPE(proof.ptr())->tp_name + "'");
  }
  const auto items = py::reinterpret_steal<py::tuple>(t);
  std::vector<mk::Hash> path;
  path.reserve(items.size());
  for (std::size_t i = 0; i < items.size(); ++i) {
    path.push_back(to_hash(items[i], "proof hash " + std::to_string(i)));
  }
  return path;
}

// A non-negative integer that fits 64 bits; else InvalidProof naming `what`.
std::uint64_t to_u64(py::handle obj, const char* what) {
  if (!PyLong_Check(obj.ptr()) || PyBool_Check(obj.ptr())) {
    throw mk::InvalidProof(std::string(what) + " must be an int, not '" +
                           Py_TYPE(obj.ptr())->tp_name + "'");
  }
  const unsigned long long v = PyLong_AsUnsignedLongLong(obj.ptr());
  if (v == static_cast<unsigned long long>(-1) && PyErr_Occurred() != nullptr) {
    PyErr_Clear();
    throw mk::InvalidProof(std::string(what) + " " + py::str(obj).cast<std::string>() +
                           " is out of range (0 to 2**64-1)");
  }
  return v;
}

py::object file_error(const dg::FileDigest& r, const std::string& path) {
  const std::string msg =
      "cannot " + r.failed_step + " file: " + std::system_category().message(r.error_number);
  // Deliberately leaked: a static py::object would be released after the interpreter is gone.
  static const auto* fsdecode = new py::object(py::module_::import("os").attr("fsdecode"));
  return error_class("FileReadError")(r.error_number, msg, (*fsdecode)(py::bytes(path)));
}

void bind_hashing(py::module_& d) {
  d.def(
      "sha256", [](py::handle data) { return to_bytes(hash_buffer(dg::Algorithm::kSha256, data)); },
      py::arg("data"), "SHA-256 of a bytes-like object.");
  d.def(
      "sha512", [](py::handle data) { return to_bytes(hash_buffer(dg::Algorithm::kSha512, data)); },
      py::arg("data"), "SHA-512 of a bytes-like object.");
  d.def(
      "sha3_256",
      [](py::handle data) { return to_bytes(hash_buffer(dg::Algorithm::kSha3_256, data)); },
      py::arg("data"), "SHA3-256 of a bytes-like object.");
  d.def(
      "keccak256", [](py::handle data) { return to_bytes(digest_buffer(data, dg::keccak256)); },
      py::arg("data"), "Keccak-256 as Ethereum uses it (not SHA3-256) of a bytes-like object.");
  d.def(
      "hash_bytes",
      [](py::handle data, std::string_view algorithm) {
        return to_bytes(hash_buffer(dg::parse_algorithm(algorithm), data));
      },
      py::arg("data"), py::arg("algorithm"), "Digest of a bytes-like object with `algorithm`.");
  d.def(
      "algorithms",
      [] {
        std::vector<std::string> out;
        for (auto n : dg::algorithm_names()) out.emplace_back(n);
        return out;
      },
      "The hashlib names of every supported algorithm.");

  py::class_<dg::Hasher>(d, "Hasher", "A streaming hash with hashlib's face (thread-safe).")
      .def(py::init([](std::string_view algorithm, py::handle data) {
             auto h = std::make_unique<dg::Hasher>(dg::parse_algorithm(algorithm));
             if (!data.is_none()) {
               const Buffer buf(data, "data");
               if (buf.view().size() < kReleaseGilAt) {
                 h->update(buf.view());
               } else {
                 const py::gil_scoped_release release;
                 h->update(buf.view());
               }
             }
             return h;
           }),
           py::arg("algorithm") = "sha256", py::arg("data") = py::none())
      .def(
          "update",
          [](dg::Hasher& h, py::handle data) {
            const Buffer buf(data, "data");
            if (buf.view().size() < kReleaseGilAt) return h.update(buf.view());
            const py::gil_scoped_release release;
            h.update(buf.view());
          },
          py::arg("data"), "Feeds a bytes-like object.")
      .def(
          "digest", [](const dg::Hasher& h) { return to_bytes(h.digest()); },
          "The digest so far (the hash stays usable).")
      .def(
          "hexdigest", [](const dg::Hasher& h) { return to_hex(h.digest()); },
          "The digest so far as lower-case hex.")
      .def(
          "copy", [](const dg::Hasher& h) { return h.copy(); }, "An independent copy of the state.")
      .def_property_readonly(
          "name",
          [](const dg::Hasher& h) { return std::string(dg::algorithm_name(h.algorithm())); },
          "The hashlib name of the algorithm.")
      .def_property_readonly(
          "digest_size", [](const dg::Hasher& h) { return dg::digest_size(h.algorithm()); },
          "Digest length in bytes.")
      .def_property_readonly(
          "block_size", [](const dg::Hasher& h) { return dg::block_size(h.algorithm()); },
          "Internal block length in bytes.")
      .def("__repr__", [](const dg::Hasher& h) {
        return "<blocktrust_native.digest.Hasher " +
               std::string(dg::algorithm_name(h.algorithm())) + ">";
      });
}

void bind_files(py::module_& d) {
  d.def(
      "hash_file",
      [](const std::string& path, std::string_view algorithm) {
        const dg::Algorithm alg = dg::parse_algorithm(algorithm);
        std::vector<dg::FileDigest> r;
        {
          const py::gil_scoped_release release;
          r = dg::hash_files(alg, std::span<const std::string>(&path, 1), 1, true);
        }
        if (r[0].status != dg::FileDigest::Status::kOk) {
          const py::object err = file_error(r[0], path);
          PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
          throw py::error_already_set();
        }
        return to_bytes(r[0].digest);
      },
      py::arg("path"), py::arg("algorithm"),
      "Digest of the file at `path` (bytes, os.fsencode'd); raises FileReadError.");
  d.def(
      "hash_files",
      [](const std::vector<std::string>& paths, std::string_view algorithm, unsigned threads,
         bool stop_on_error) {
        const dg::Algorithm alg = dg::parse_algorithm(algorithm);
        std::vector<dg::FileDigest> results;
        {
          const py::gil_scoped_release release;
          results = dg::hash_files(alg, paths, threads, stop_on_error);
        }
        py::list out(results.size());
        for (std::size_t i = 0; i < results.size(); ++i) {
          switch (results[i].status) {
            case dg::FileDigest::Status::kOk:
              out[i] = to_bytes(results[i].digest);
              break;
            case dg::FileDigest::Status::kFailed:
              out[i] = file_error(results[i], paths[i]);
              break;
            case dg::FileDigest::Status::kSkipped:
              out[i] = py::none();
              break;
          }
        }
        return out;
      },
      py::arg("paths"), py::arg("algorithm"), py::arg("threads"), py::arg("stop_on_error"),
      "Digests of many files in input order: bytes, a FileReadError, or None if skipped.");
}

void bind_merkle(py::module_& d) {
  d.def(
      "merkle_root",
      [](py::handle leaves) {
        const LeafViews views(leaves);
        mk::Hash h;
        {
          const py::gil_scoped_release release;
          h = mk::root(views.views());
        }
        return to_bytes(h);
      },
      py::arg("leaves"), "RFC 6962 Merkle Tree Hash of an iterable of bytes-like leaves.");
  d.def(
      "merkle_root_packed",
      [](py::handle data, std::size_t leaf_size) {
        const Buffer buf(data, "data");
        mk::Hash h;
        {
          const py::gil_scoped_release release;
          h = mk::root_packed(buf.view(), leaf_size);
        }
        return to_bytes(h);
      },
      py::arg("data"), py::arg("leaf_size"),
      "RFC 6962 Merkle Tree Hash of leaves of `leaf_size` bytes packed back to back.");
  d.def(
      "leaf_hash",
      [](py::handle data) { return to_bytes(mk::leaf_hash(Buffer(data, "leaf").view())); },
      py::arg("data"), "RFC 6962 leaf hash SHA-256(0x00 || data).");
  d.def(
      "node_hash",
      [](py::handle left, py::handle right) {
        return to_bytes(mk::node_hash(to_hash(left, "left"), to_hash(right, "right")));
      },
      py::arg("left"), py::arg("right"), "RFC 6962 node hash SHA-256(0x01 || left || right).");

  py::class_<mk::Tree>(d, "MerkleTree", "An RFC 6962 Merkle tree kept in memory (immutable).")
      .def(py::init([](py::handle leaves) {
             const LeafViews views(leaves);
             const py::gil_scoped_release release;
             return std::make_unique<mk::Tree>(views.views());
           }),
           py::arg("leaves"))
      .def_property_readonly(
          "root", [](const mk::Tree& t) { return to_bytes(t.root()); }, "The Merkle Tree Hash.")
      .def_property_readonly("size", &mk::Tree::size, "The number of leaves.")
      .def(
          "leaf_hash", [](const mk::Tree& t, std::size_t i) { return to_bytes(t.leaf(i)); },
          py::arg("index"), "The leaf hash of leaf `index`.")
      .def(
          "proof",
          [](const mk::Tree& t, std::size_t i) {
            py::list out;
            for (const mk::Hash& h : t.proof(i)) out.append(to_bytes(h));
            return out;
          },
          py::arg("index"), "RFC 6962 audit path of leaf `index`, leaf level first.");

  d.def(
      "root_from_inclusion_proof",
      [](py::handle leaf_hash, py::handle index, py::handle size, py::handle proof) -> py::object {
        const auto r = mk::root_from_inclusion_proof(to_hash(leaf_hash, "leaf_hash"),
                                                     to_u64(index, "leaf_index"),
                                                     to_u64(size, "tree_size"), to_path(proof));
        if (!r) return py::none();
        return to_bytes(*r);
      },
      py::arg("leaf_hash"), py::arg("index"), py::arg("size"), py::arg("proof"),
      "RFC 9162 2.1.3.2 root implied by a proof, or None when its shape does not fit.");
  d.def(
      "verify_inclusion",
      [](py::handle leaf, py::handle index, py::handle size, py::handle proof, py::handle root) {
        const std::uint64_t i = to_u64(index, "leaf_index");
        const std::uint64_t n = to_u64(size, "tree_size");
        const std::vector<mk::Hash> path = to_path(proof);
        const mk::Hash expected = to_hash(root, "root");
        const Buffer buf(leaf, "leaf");
        return mk::verify_inclusion(buf.view(), i, n, path, expected);
      },
      py::arg("leaf"), py::arg("index"), py::arg("size"), py::arg("proof"), py::arg("root"),
      "True when `proof` shows leaf data `leaf` is leaf `index` of the tree with `root`.");
}

}  // namespace

void register_digest(py::module_& m) {
  py::module_ d = m.def_submodule("digest", "Digests, file hashing and RFC 6962 Merkle trees.");
  for (const char* cls : {"NotBytesLike", "InvalidProof", "LeafIndexError"}) (void)error_class(cls);
  bind_hashing(d);
  bind_files(d);
  bind_merkle(d);
}

}  // namespace blocktrust::bindings
