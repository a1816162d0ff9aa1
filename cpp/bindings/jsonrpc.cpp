// blocktrust_native._native.jsonrpc: a thin binding of the JSON-RPC client. Params and results
// cross as JSON text (the Python wrapper dumps and loads them); the GIL is released during I/O.
#include "blocktrust/jsonrpc.hpp"

#include <pybind11/stl.h>

#include <mutex>

#include "bindings.hpp"

namespace blocktrust::bindings {

namespace {

namespace rpc = blocktrust::jsonrpc;

// The core client is not thread-safe; Python threads may share one object, so calls take turns.
struct PyClient {
  rpc::Client client;
  std::mutex mu;
  PyClient(std::string url, rpc::ClientOptions o) : client(std::move(url), std::move(o)) {}
};

}  // namespace

void register_jsonrpc(py::module_& m) {
  auto sub = m.def_submodule("jsonrpc", "JSON-RPC 2.0 client (use blocktrust_native.jsonrpc).");

  py::class_<PyClient>(sub, "Client")
      .def(py::init([](const std::string& url, const http::HttpOptions& options,
                       const std::vector<std::pair<std::string, std::string>>& headers) {
             rpc::ClientOptions o;
             o.http = options;
             for (const auto& h : headers) o.headers.emplace_back(h.first, h.second);
             return std::make_unique<PyClient>(url, std::move(o));
           }),
           py::arg("url"), py::arg("options"), py::arg("headers"))
      .def(
          "call",
          [](PyClient& self, const std::string& method, const std::string& params_json) {
            std::string out;
            {
              py::gil_scoped_release unlocked;
              std::lock_guard lock(self.mu);
              out = self.client.call(method, params_json);
            }
            return py::str(out);
          },
          py::arg("method"), py::arg("params_json") = "[]",
          "Calls `method`; returns the result as JSON text.")
      .def(
          "batch",
          [](PyClient& self, const std::vector<std::pair<std::string, std::string>>& calls) {
            std::vector<rpc::Call> in;
            in.reserve(calls.size());
            for (const auto& [method, params] : calls) in.push_back({method, params});
            std::vector<rpc::Outcome> out;
            {
              py::gil_scoped_release unlocked;
              std::lock_guard lock(self.mu);
              out = self.client.batch(in);
            }
            py::list result;
            for (const auto& o : out) {
              if (o.ok) {
                result.append(py::make_tuple(true, py::str(o.result), 0, "", py::none()));
              } else {
                py::object data =
                    o.data.empty() ? py::object(py::none()) : py::object(py::str(o.data));
                result.append(py::make_tuple(false, py::none(), o.code, o.message, data));
              }
            }
            return result;
          },
          py::arg("calls"),
          "Sends [(method, params_json), ...] as one batch; returns (ok, result_json, code, "
          "message, data_json) per call, in order.")
      .def_property_readonly(
          "url", [](const PyClient& self) { return self.client.url(); },
          "The endpoint without its secrets.");

  sub.def(
      "default_options", [] { return rpc::ClientOptions{}.http; },
      "The transport settings a client uses unless given others (a larger response cap than "
      "HttpOptions(): a wide eth_getLogs answers tens of megabytes).");
  sub.def("redact_url", &rpc::redact_url, py::arg("url"),
          "The URL reduced to scheme, host and port.");
}

}  // namespace blocktrust::bindings
