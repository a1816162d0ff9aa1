// C++ exceptions -> the Python classes of blocktrust_native.errors (defined in Python, so they can
// carry extra attributes and multiple bases such as ValueError or OSError).
#include <exception>

#include "bindings.hpp"
#include "blocktrust/error.hpp"
#include "blocktrust/redis.hpp"

namespace blocktrust::bindings {

py::object error_class(const char* cls) {
  return py::module_::import("blocktrust_native.errors").attr(cls);
}

void set_python_error(const char* cls, const char* message) {
  PyErr_SetString(error_class(cls).ptr(), message);
}

void register_errors(py::module_& m) {
  // Import once at load time so a broken install fails on import, not on the first error.
  (void)error_class("Error");
  py::register_exception_translator([](std::exception_ptr p) {
    try {
      if (p) std::rethrow_exception(p);
    } catch (const FileReadError& e) {
      py::object err = error_class("FileReadError")(e.error_number(), e.what(), e.path());
      PyErr_SetObject(reinterpret_cast<PyObject*>(Py_TYPE(err.ptr())), err.ptr());
    } catch (const redis::RedisConnectionError& e) {
      set_python_error("RedisConnectionError", e.what());
    } catch (const redis::RedisError& e) {
      set_python_error("RedisError", e.what());
    } catch (const ConfigError& e) {
      set_python_error("ConfigError", e.what());
    } catch (const Error& e) {
      set_python_error("Error", e.what());
    }
  });
  m.attr("__version__") = BLOCKTRUST_VERSION;
}

}  // namespace blocktrust::bindings
