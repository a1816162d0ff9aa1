// blocktrust_native._native.apikeys: thin binding of blocktrust::apikeys. Single verifications are
// short (about a microsecond) and keep the GIL; verify_many releases it for the whole batch.
#include "blocktrust/apikeys.hpp"

#include <pybind11/stl.h>

#include <deque>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "bindings.hpp"

namespace blocktrust::bindings {

namespace {

namespace ak = blocktrust::apikeys;

// A token as UTF-8 (CPython caches it in the str object, so the view lives as long as the str);
// nullopt for lone surrogates, which cannot be part of a token anyway. TypeError for a non-str.
std::optional<std::string_view> token_utf8(py::handle v) {
  if (!PyUnicode_Check(v.ptr())) {
    throw py::type_error(std::string("API key token must be str, not ") +
                         Py_TYPE(v.ptr())->tp_name);
  }
  Py_ssize_t n = 0;
  const char* p = PyUnicode_AsUTF8AndSize(v.ptr(), &n);
  if (p == nullptr) {
    PyErr_Clear();
    return std::nullopt;
  }
  return std::string_view{p, static_cast<std::size_t>(n)};
}

// token_utf8, with InvalidApiKey for a token that has no UTF-8 form.
std::string_view token_view(py::handle v) {
  if (auto t = token_utf8(v)) return *t;
  throw ak::InvalidApiKey("API key contains a non-ASCII character");
}

// A digest or secret as bytes: bytes fast path, else any contiguous buffer (bytearray, memoryview).
std::string_view bytes_view(py::handle v, const char* what, py::buffer_info& keep) {
  if (PyBytes_Check(v.ptr())) {
    return {PyBytes_AS_STRING(v.ptr()), static_cast<std::size_t>(PyBytes_GET_SIZE(v.ptr()))};
  }
  if (!PyObject_CheckBuffer(v.ptr())) {
    throw py::type_error(std::string(what) + " must be bytes-like, not " +
                         Py_TYPE(v.ptr())->tp_name);
  }
  keep = py::reinterpret_borrow<py::buffer>(v).request();
  return {static_cast<const char*>(keep.ptr), static_cast<std::size_t>(keep.size * keep.itemsize)};
}

// The server secret: bytes-like, or str taken as UTF-8 (an API_KEY_SALT read from the environment).
std::string secret_bytes(py::handle v) {
  if (PyUnicode_Check(v.ptr())) return v.cast<std::string>();
  py::buffer_info keep;
  return std::string(bytes_view(v, "server secret", keep));
}

py::bytes to_bytes(const ak::Digest& d) {
  return {reinterpret_cast<const char*>(d.data()), d.size()};
}

}  // namespace

void register_apikeys(py::module_& m) {
  auto sub = m.def_submodule("apikeys", "Prefixed API keys with checksums and HMAC-SHA256 digests");

  py::class_<ak::Codec>(sub, "ApiKeyCodec", "Makes, parses, digests and verifies API keys")
      .def(py::init([](std::string prefix, const py::object& secret) {
             return ak::Codec(std::move(prefix), secret_bytes(secret));
           }),
           py::arg("prefix"), py::arg("secret"))
      .def_property_readonly("prefix", &ak::Codec::prefix, "The prefix, e.g. 'btk_live'")
      .def_property_readonly("token_length", &ak::Codec::token_length,
                             "Exact length of every token of this codec")
      .def("_new_token", &ak::Codec::generate, "A fresh token from the CSPRNG")
      .def(
          "_key_id",
          [](const ak::Codec& c, const py::handle& token) {
            return std::string(c.parse(token_view(token)).key_id);
          },
          py::arg("token"), "The key id of a well-formed token; InvalidApiKey otherwise")
      .def(
          "digest",
          [](const ak::Codec& c, const py::handle& token) {
            return to_bytes(c.digest(token_view(token)));
          },
          py::arg("token"), "HMAC-SHA256(secret, token) of a well-formed token")
      .def(
          "verify",
          [](const ak::Codec& c, const py::handle& token, const py::handle& digest) {
            py::buffer_info keep;
            return c.verify(token_view(token), bytes_view(digest, "digest", keep));
          },
          py::arg("token"), py::arg("digest"), "True when digest matches; constant-time")
      .def(
          "verify_many",
          [](const ak::Codec& c, const py::sequence& tokens, const py::sequence& digests) {
            // Tuples hold a reference to every str and bytes, so their buffers stay valid while
            // the batch runs without the GIL even if the caller's lists change meanwhile; str
            // (its UTF-8 is cached in the object) and bytes are immutable and not copied.
            const auto tt = py::reinterpret_steal<py::tuple>(PySequence_Tuple(tokens.ptr()));
            const auto dt = py::reinterpret_steal<py::tuple>(PySequence_Tuple(digests.ptr()));
            if (!tt || !dt) throw py::error_already_set();
            std::vector<std::string_view> tv, dv;
            tv.reserve(tt.size());
            dv.reserve(dt.size());
            for (const auto& t : tt) {
              tv.push_back(token_utf8(t).value_or("\x80"));  // not ASCII: verifies as false
            }
            std::deque<std::string> copies;  // digests in mutable buffers (bytearray, ...)
            for (const auto& d : dt) {
              py::buffer_info keep;
              const std::string_view v = bytes_view(d, "digest", keep);
              dv.push_back(PyBytes_Check(d.ptr()) ? v : copies.emplace_back(v));
            }
            std::vector<bool> out;
            {
              py::gil_scoped_release nogil;
              out = c.verify_many(tv, dv);
            }
            py::list result(out.size());
            for (std::size_t i = 0; i < out.size(); ++i) {
              result[i] = py::bool_(out[i]);
            }
            return result;
          },
          py::arg("tokens"), py::arg("digests"),
          "verify for each pair (a malformed token gives False); releases the GIL");

  py::class_<ak::KeyRing>(sub, "KeyRing", "Current and previous server secrets (rotation)")
      .def(py::init([](std::string prefix, const py::sequence& secrets) {
             std::vector<std::string> owned;
             for (const auto& s : secrets) owned.push_back(secret_bytes(s));
             std::vector<std::string_view> views(owned.begin(), owned.end());
             return ak::KeyRing(std::move(prefix), views);
           }),
           py::arg("prefix"), py::arg("secrets"))
      .def("__len__", &ak::KeyRing::size, "Number of secrets (current + previous)")
      .def(
          "match",
          [](const ak::KeyRing& r, const py::handle& token,
             const py::handle& digest) -> py::object {
            py::buffer_info keep;
            const int i = r.match(token_view(token), bytes_view(digest, "digest", keep));
            if (i < 0) return py::none();
            return py::int_(i);
          },
          py::arg("token"), py::arg("digest"),
          "Index of the secret that matched (0 = current) or None; tries every secret");

  sub.def(
      "crc32", [](const py::bytes& b) { return ak::crc32(std::string_view(b)); }, py::arg("data"),
      "CRC32 as zlib.crc32 computes it (exposed for tests)");
  sub.def("_hmac_count", &ak::hmac_count, "HMACs computed by the calling thread (for tests)");
  sub.attr("MIN_SECRET_BYTES") = ak::kMinSecretBytes;
  sub.attr("MAX_TOKEN_CHARS") = ak::kMaxTokenChars;
  sub.attr("KEY_ID_CHARS") = ak::kKeyIdChars;
  sub.attr("SECRET_CHARS") = ak::kSecretChars;
  sub.attr("CHECKSUM_CHARS") = ak::kChecksumChars;
}

}  // namespace blocktrust::bindings
