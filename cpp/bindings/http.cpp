// blocktrust_native._native.http: the blocking HTTP client's one-request call, and the
// conversion of Python transport options to HttpOptions that the flow runner shares.
#include "blocktrust/http.hpp"

#include <pybind11/stl.h>

#include <cmath>

#include "bindings.hpp"

namespace blocktrust::bindings {

namespace {

std::int64_t to_ms(double seconds, const char* what) {
  if (!std::isfinite(seconds) || seconds <= 0 || seconds > 86400.0 * 7) {
    throw ConfigError(std::string(what) + " must be a positive number of seconds");
  }
  return static_cast<std::int64_t>(std::ceil(seconds * 1000.0));
}

}  // namespace

http::HttpOptions http_options(double connect_timeout, double request_timeout,
                               std::uint64_t max_response_bytes, std::uint32_t max_header_bytes,
                               bool verify_tls, const std::string& ca_file, bool follow_redirects,
                               int max_redirects) {
  http::HttpOptions o;
  o.connect_timeout_ms = to_ms(connect_timeout, "connect_timeout");
  o.request_timeout_ms = to_ms(request_timeout, "request_timeout");
  o.max_response_bytes = max_response_bytes;
  o.max_header_bytes = max_header_bytes;
  o.verify_peer = verify_tls;
  o.ca_file = ca_file;
  o.follow_redirects = follow_redirects;
  o.max_redirects = max_redirects;
  return o;
}

void register_http(py::module_& m) {
  auto sub = m.def_submodule("http", "The blocking HTTP client (use blocktrust_native.http).");

  sub.def(
      "http_request",
      [](const std::string& method, const std::string& url,
         const std::vector<std::pair<std::string, std::string>>& headers, const py::bytes& body,
         double connect_timeout, double request_timeout, std::uint64_t max_response_bytes,
         std::uint32_t max_header_bytes, bool verify_tls, const std::string& ca_file,
         bool follow_redirects, int max_redirects) {
        auto opts =
            http_options(connect_timeout, request_timeout, max_response_bytes, max_header_bytes,
                         verify_tls, ca_file, follow_redirects, max_redirects);
        http::HttpRequest req{method, url, headers, std::string(body)};
        http::HttpResponse res;
        {
          py::gil_scoped_release release;
          http::HttpClient client(opts);
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
      py::arg("method"), py::arg("url"), py::arg("headers"), py::arg("body"),
      py::arg("connect_timeout"), py::arg("request_timeout"), py::arg("max_response_bytes"),
      py::arg("max_header_bytes"), py::arg("verify_tls"), py::arg("ca_file"),
      py::arg("follow_redirects"), py::arg("max_redirects"),
      "One request on a fresh client; network failures are in result['error']; "
      "result['retries'] counts resends.");
}

}  // namespace blocktrust::bindings
