// blocktrust_native._native.passwords: Argon2id hashing and the dual check, GIL released while
// hashing (each call costs tens of milliseconds of CPU by design).
#include "blocktrust/passwords.hpp"

#include <pybind11/stl.h>

#include "bindings.hpp"

namespace blocktrust::bindings {

namespace {

namespace pw = blocktrust::passwords;

// Passwords may come as str (UTF-8) or bytes; never echoed in errors.
std::string secret_bytes(const py::handle& v, const char* what) {
  if (py::isinstance<py::str>(v)) return v.cast<std::string>();
  if (py::isinstance<py::bytes>(v)) return std::string(v.cast<py::bytes>());
  throw py::type_error(std::string(what) + " must be str or bytes, not " +
                       std::string(py::str(py::type::of(v).attr("__name__"))));
}

}  // namespace

void register_passwords(py::module_& m) {
  auto sub = m.def_submodule("passwords", "Argon2id password hashing and the dual check");

  py::class_<pw::Params>(sub, "Parameters", "Argon2id cost parameters (defaults: OWASP's)")
      .def(py::init([](std::uint32_t memory_kib, std::uint32_t iterations,
                       std::uint32_t parallelism, std::uint32_t hash_len, std::uint32_t salt_len) {
             pw::Params p{memory_kib, iterations, parallelism, hash_len, salt_len};
             p.validate();
             return p;
           }),
           py::kw_only(), py::arg("memory_kib") = 19456, py::arg("iterations") = 2,
           py::arg("parallelism") = 1, py::arg("hash_len") = 32, py::arg("salt_len") = 16)
      .def_readonly("memory_kib", &pw::Params::memory_kib)
      .def_readonly("iterations", &pw::Params::iterations)
      .def_readonly("parallelism", &pw::Params::parallelism)
      .def_readonly("hash_len", &pw::Params::hash_len)
      .def_readonly("salt_len", &pw::Params::salt_len)
      .def("__eq__",
           [](const pw::Params& a, const pw::Params& b) {
             return a.memory_kib == b.memory_kib && a.iterations == b.iterations &&
                    a.parallelism == b.parallelism && a.hash_len == b.hash_len &&
                    a.salt_len == b.salt_len;
           })
      .def("__repr__", [](const pw::Params& p) {
        return "Parameters(memory_kib=" + std::to_string(p.memory_kib) +
               ", iterations=" + std::to_string(p.iterations) +
               ", parallelism=" + std::to_string(p.parallelism) +
               ", hash_len=" + std::to_string(p.hash_len) +
               ", salt_len=" + std::to_string(p.salt_len) + ")";
      });

  sub.def(
      "hash_password",
      [](const py::object& password, const pw::Params& params) {
        std::string pwd = secret_bytes(password, "password");
        py::gil_scoped_release nogil;
        return pw::hash(pwd, params);
      },
      py::arg("password"), py::arg("params"), "Argon2id PHC string of `password`");
  sub.def(
      "verify_password",
      [](const py::object& password, const std::string& phc) {
        std::string pwd = secret_bytes(password, "password");
        py::gil_scoped_release nogil;
        return pw::verify(pwd, phc);
      },
      py::arg("password"), py::arg("phc"), "True when `password` matches the PHC string");
  sub.def("needs_rehash", &pw::needs_rehash, py::arg("phc"), py::arg("params"),
          "True when `phc` was made with other parameters than `params`");
  sub.def(
      "check_dual",
      [](const py::object& password, const std::string& normal, const std::string& duress) {
        std::string pwd = secret_bytes(password, "password");
        py::gil_scoped_release nogil;
        return static_cast<int>(pw::check_dual(pwd, normal, duress));
      },
      py::arg("password"), py::arg("normal_hash"), py::arg("duress_hash"),
      "0 normal, 1 duress, 2 rejected; always verifies both hashes");
  sub.def(
      "hash_dual",
      [](const py::object& normal, const py::object& duress, const pw::Params& params) {
        std::string a = secret_bytes(normal, "password"),
                    b = secret_bytes(duress, "duress password");
        py::gil_scoped_release nogil;
        return pw::hash_dual(a, b, params);
      },
      py::arg("password"), py::arg("duress_password"), py::arg("params"),
      "(normal hash, duress hash); PasswordError when the two are equal");
  sub.def("_verify_count", &pw::verify_count, "Argon2 verifications run so far (for tests)");
  sub.attr("MAX_PASSWORD_BYTES") = pw::kMaxPasswordBytes;
}

}  // namespace blocktrust::bindings
