// C++ exceptions -> the Python classes of blocktrust_native.errors (defined in Python, so they can
// carry extra attributes and multiple bases such as ValueError or OSError).
//
// The one translation table: every C++ error class and the Python class of the same name, most
// derived first, resolved by one translator. No other binding file registers a translator.
#include <cerrno>
#include <exception>
#include <string>
#include <type_traits>

#include "bindings.hpp"
#include "blocktrust/apikeys.hpp"
#include "blocktrust/error.hpp"
#include "blocktrust/flows.hpp"
#include "blocktrust/histogram.hpp"
#include "blocktrust/http.hpp"
#include "blocktrust/jsonrpc.hpp"
#include "blocktrust/merkle.hpp"
#include "blocktrust/passwords.hpp"
#include "blocktrust/pool.hpp"
#include "blocktrust/redis.hpp"

namespace blocktrust::bindings {

py::object error_class(const char* cls) {
  return py::module_::import("blocktrust_native.errors").attr(cls);
}

void set_python_error(const char* cls, const char* message) {
  PyErr_SetString(error_class(cls).ptr(), message);
}

namespace {

// Builds the Python exception object for a caught C++ error, given its Python class.
using Make = py::object (*)(const Error& e, const py::object& cls);

// One row of the table.
struct Translation {
  const char* cpp_name;      // the C++ class, qualified
  const char* python_name;   // the class of blocktrust_native.errors
  bool (*is)(const Error&);  // whether a caught error is one (or derives from it)
  Make make;                 // the Python exception object
  void (*throw_sample)();    // throws one (the test hook below)
};

template <class T>
bool is_a(const Error& e) {
  if constexpr (std::is_same_v<T, Error>) {
    return true;  // the root: every caught error is one
  } else {
    return dynamic_cast<const T*>(&e) != nullptr;
  }
}

py::object message_only(const Error& e, const py::object& cls) {
  return cls(e.what());
}

template <class T>
py::object database(const Error& e, const py::object& cls) {
  const auto& db = static_cast<const T&>(e);
  return cls(db.what(), db.sqlstate(), db.detail(), db.hint());
}

py::object file_read(const Error& e, const py::object& cls) {
  const auto& f = static_cast<const FileReadError&>(e);
  return cls(f.error_number(), f.what(), f.path());
}

py::object pool_timeout(const Error& e, const py::object& cls) {
  return cls(e.what(), static_cast<const pool::PoolTimeout&>(e).waited());
}

py::object chain_connection(const Error& e, const py::object& cls) {
  py::object err = cls(e.what());
  err.attr("http_status") = static_cast<const jsonrpc::ChainConnectionError&>(e).http_status();
  return err;
}

py::object json_rpc(const Error& e, const py::object& cls) {
  const auto& j = static_cast<const jsonrpc::JsonRpcError&>(e);
  py::object data = j.data().empty() ? py::object(py::none()) : py::object(py::str(j.data()));
  return cls(j.what(), j.code(), j.message(), data);
}

// A sample of each class, thrown by the test hook: built from a message where the class allows.
template <class T>
void throw_sample() {
  const std::string what = "sample message";
  if constexpr (std::is_base_of_v<pool::DatabaseError, T>) {
    throw T(what, "XX000", "sample detail", "sample hint");
  } else if constexpr (std::is_same_v<T, FileReadError>) {
    throw T("/sample/path", EIO, what);
  } else if constexpr (std::is_same_v<T, pool::PoolTimeout>) {
    throw T(what, 1.5);
  } else if constexpr (std::is_same_v<T, jsonrpc::ChainConnectionError>) {
    throw T(what, 502);
  } else if constexpr (std::is_same_v<T, jsonrpc::JsonRpcError>) {
    throw T(what, -32601, "method not found", R"({"x":1})");
  } else {
    throw T(what);
  }
}

template <class T>
constexpr Translation row(const char* cpp_name, const char* python_name, Make make = message_only) {
  return {cpp_name, python_name, &is_a<T>, make, &throw_sample<T>};
}

// Most derived first: the first row whose class the error is an instance of wins, so a class
// must come before its bases (tests_py/test_errors.py checks that every row is reachable).
constexpr Translation kTable[] = {
    row<FileReadError>("blocktrust::FileReadError", "FileReadError", file_read),
    row<http::HttpConfigError>("blocktrust::http::HttpConfigError", "HttpConfigError"),
    row<flows::FlowSpecError>("blocktrust::flows::FlowSpecError", "FlowSpecError"),
    row<ConfigError>("blocktrust::ConfigError", "ConfigError"),
    row<apikeys::InvalidApiKey>("blocktrust::apikeys::InvalidApiKey", "InvalidApiKey"),
    row<merkle::InvalidProof>("blocktrust::merkle::InvalidProof", "InvalidProof"),
    row<merkle::LeafIndexError>("blocktrust::merkle::LeafIndexError", "LeafIndexError"),
    row<flows::HistogramFormatError>("blocktrust::flows::HistogramFormatError",
                                     "HistogramFormatError"),
    row<passwords::InvalidPasswordHash>("blocktrust::passwords::InvalidPasswordHash",
                                        "InvalidPasswordHash"),
    row<passwords::PasswordError>("blocktrust::passwords::PasswordError", "PasswordError"),
    row<jsonrpc::JsonRpcError>("blocktrust::jsonrpc::JsonRpcError", "JsonRpcError", json_rpc),
    row<jsonrpc::ChainConnectionError>("blocktrust::jsonrpc::ChainConnectionError",
                                       "ChainConnectionError", chain_connection),
    row<jsonrpc::ChainError>("blocktrust::jsonrpc::ChainError", "ChainError"),
    row<pool::PoolTimeout>("blocktrust::pool::PoolTimeout", "PoolTimeout", pool_timeout),
    row<pool::PoolClosed>("blocktrust::pool::PoolClosed", "PoolClosed"),
    row<pool::IntegrityError>("blocktrust::pool::IntegrityError", "IntegrityError",
                              database<pool::IntegrityError>),
    row<pool::OperationalError>("blocktrust::pool::OperationalError", "OperationalError",
                                database<pool::OperationalError>),
    row<pool::DatabaseError>("blocktrust::pool::DatabaseError", "DatabaseError",
                             database<pool::DatabaseError>),
    row<redis::RedisConnectionError>("blocktrust::redis::RedisConnectionError",
                                     "RedisConnectionError"),
    row<redis::RedisError>("blocktrust::redis::RedisError", "RedisError"),
    row<Error>("blocktrust::Error", "Error"),
};

void translate(const Error& e) {
  for (const Translation& t : kTable) {
    if (!t.is(e)) continue;
    py::object err = t.make(e, error_class(t.python_name));
    PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
    return;
  }
}

}  // namespace

void register_errors(py::module_& m) {
  // Import every class once at load time so a broken install fails on import, not on an error.
  for (const Translation& t : kTable) (void)error_class(t.python_name);
  // NOLINTNEXTLINE(performance-unnecessary-value-param): pybind11 passes it by value
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const Error& e) {
      translate(e);
    }
  });
  m.attr("__version__") = BLOCKTRUST_VERSION;

  // Test hooks (tests_py/test_errors.py): the table, and a sample of each C++ class thrown
  // through the translator.
  m.def(
      "_error_table",
      [] {
        py::list rows;
        for (const Translation& t : kTable) rows.append(py::make_tuple(t.cpp_name, t.python_name));
        return rows;
      },
      "The translation table: (C++ class, Python class) pairs, most derived first.");
  m.def(
      "_raise_error",
      [](const std::string& cpp_name) {
        for (const Translation& t : kTable) {
          if (cpp_name == t.cpp_name) t.throw_sample();
        }
        throw py::key_error(cpp_name);
      },
      py::arg("cpp_name"), "Throws a sample of the C++ error class `cpp_name` (test hook).");
}

}  // namespace blocktrust::bindings
