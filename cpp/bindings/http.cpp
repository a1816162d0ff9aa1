// blocktrust_native._native.http: HttpOptions (the transport settings every client of the
// library takes: http_request, the flow runner, the JSON-RPC client) and the blocking HTTP
// client's one-request call. The defaults are HttpOptions' own (blocktrust/http.hpp), read here.
#include "blocktrust/http.hpp"

#include <pybind11/stl.h>

#include <cmath>
#include <optional>

#include "bindings.hpp"

namespace blocktrust::bindings {

std::int64_t timeout_ms(double seconds, const char* what) {
  if (!std::isfinite(seconds) || seconds <= 0 ||
      seconds * 1000.0 > static_cast<double>(http::kMaxTimeoutMs)) {
    throw ConfigError(std::string(what) + " must be a positive number of seconds (at most 7 days)");
  }
  return static_cast<std::int64_t>(std::ceil(seconds * 1000.0));
}

namespace {

double seconds(std::int64_t ms) {
  return static_cast<double>(ms) / 1000.0;
}

http::HttpOptions make_options(double connect_timeout, double request_timeout,
                               std::uint64_t max_response_bytes, std::uint32_t max_header_bytes,
                               bool verify_tls, const std::optional<std::string>& ca_file,
                               bool follow_redirects, int max_redirects) {
  if (max_response_bytes == 0) throw ConfigError("max_response_bytes must be positive");
  http::HttpOptions o;
  o.connect_timeout_ms = timeout_ms(connect_timeout, "connect_timeout");
  o.request_timeout_ms = timeout_ms(request_timeout, "request_timeout");
  o.max_response_bytes = max_response_bytes;
  o.max_header_bytes = max_header_bytes;
  o.verify_peer = verify_tls;
  o.ca_file = ca_file.value_or("");
  o.follow_redirects = follow_redirects;
  o.max_redirects = max_redirects;
  return o;
}

std::string repr(const http::HttpOptions& o) {
  std::string ca = o.ca_file.empty() ? "None" : std::string(py::repr(py::str(o.ca_file)));
  return "HttpOptions(connect_timeout=" +
         std::string(py::repr(py::float_(seconds(o.connect_timeout_ms)))) +
         ", request_timeout=" + std::string(py::repr(py::float_(seconds(o.request_timeout_ms)))) +
         ", max_response_bytes=" + std::to_string(o.max_response_bytes) +
         ", max_header_bytes=" + std::to_string(o.max_header_bytes) +
         ", verify_tls=" + (o.verify_peer ? "True" : "False") + ", ca_file=" + ca +
         ", follow_redirects=" + (o.follow_redirects ? "True" : "False") +
         ", max_redirects=" + std::to_string(o.max_redirects) + ")";
}

bool same(const http::HttpOptions& a, const http::HttpOptions& b) {
  return a.connect_timeout_ms == b.connect_timeout_ms &&
         a.request_timeout_ms == b.request_timeout_ms &&
         a.max_response_bytes == b.max_response_bytes && a.max_header_bytes == b.max_header_bytes &&
         a.verify_peer == b.verify_peer && a.ca_file == b.ca_file &&
         a.follow_redirects == b.follow_redirects && a.max_redirects == b.max_redirects;
}

}  // namespace

void register_http(py::module_& m) {
  auto sub = m.def_submodule("http", "The blocking HTTP client (use blocktrust_native.http).");

  const http::HttpOptions defaults{};  // the defaults, from the C++ struct only
  py::class_<http::HttpOptions>(sub, "HttpOptions",
                                "Transport settings (seconds, bytes); immutable. The defaults are "
                                "safe: TLS verified, bounded timeouts and sizes.")
      .def(py::init(&make_options), py::kw_only(),
           py::arg("connect_timeout") = seconds(defaults.connect_timeout_ms),
           py::arg("request_timeout") = seconds(defaults.request_timeout_ms),
           py::arg("max_response_bytes") = defaults.max_response_bytes,
           py::arg("max_header_bytes") = defaults.max_header_bytes,
           py::arg("verify_tls") = defaults.verify_peer, py::arg("ca_file") = py::none(),
           py::arg("follow_redirects") = defaults.follow_redirects,
           py::arg("max_redirects") = defaults.max_redirects)
      .def_property_readonly(
          "connect_timeout",
          [](const http::HttpOptions& o) { return seconds(o.connect_timeout_ms); },
          "Seconds allowed to resolve, connect and finish the TLS handshake.")
      .def_property_readonly(
          "request_timeout",
          [](const http::HttpOptions& o) { return seconds(o.request_timeout_ms); },
          "Seconds allowed for one request: writing it and reading the whole response.")
      .def_property_readonly(
          "max_response_bytes", [](const http::HttpOptions& o) { return o.max_response_bytes; },
          "Largest accepted response body (bytes).")
      .def_property_readonly(
          "max_header_bytes", [](const http::HttpOptions& o) { return o.max_header_bytes; },
          "Largest accepted response header block (bytes).")
      .def_property_readonly(
          "verify_tls", [](const http::HttpOptions& o) { return o.verify_peer; },
          "Whether the server's certificate chain and host name are verified.")
      .def_property_readonly(
          "ca_file",
          [](const http::HttpOptions& o) -> std::optional<std::string> {
            if (o.ca_file.empty()) return std::nullopt;
            return o.ca_file;
          },
          "A PEM file of CA certificates trusted instead of the system store (None: the system's).")
      .def_property_readonly(
          "follow_redirects", [](const http::HttpOptions& o) { return o.follow_redirects; },
          "Whether http_request follows redirects (a flow step has its own setting).")
      .def_property_readonly(
          "max_redirects", [](const http::HttpOptions& o) { return o.max_redirects; },
          "The most redirects followed for one request.")
      .def("__repr__", &repr)
      .def("__eq__", &same, py::is_operator())
      .attr("__hash__") = py::none();

  sub.def(
      "http_request",
      [](const std::string& method, const std::string& url,
         const std::vector<std::pair<std::string, std::string>>& headers, const py::bytes& body,
         const http::HttpOptions& options) {
        http::HttpRequest req{method, url, headers, std::string(body)};
        http::HttpResponse res;
        {
          py::gil_scoped_release release;
          http::HttpClient client(options);
          res = client.request(req);
        }
        py::dict d;
        d["status"] = res.status;
        d["headers"] = res.headers;
        d["body"] = py::bytes(res.body);
        d["error"] = res.error;
        d["latency_s"] = static_cast<double>(res.latency_ns) / 1e9;
        d["retries"] = res.retries;
        return d;
      },
      py::arg("method"), py::arg("url"), py::arg("headers"), py::arg("body"), py::arg("options"),
      "One request on a fresh client; network failures are in result['error']; "
      "result['retries'] counts resends.");
}

}  // namespace blocktrust::bindings
