// blocktrust_native._native: only wires one submodule per capability; logic lives in cpp/src.
#include "bindings.hpp"

PYBIND11_MODULE(_native, m) {
  m.doc() = "Native core of blocktrust_native; use the public modules instead.";
  blocktrust::bindings::register_errors(m);
  blocktrust::bindings::register_passwords(m);
  blocktrust::bindings::register_pool(m);
  blocktrust::bindings::register_ratelimit(m);
  blocktrust::bindings::register_digest(m);
  blocktrust::bindings::register_apikeys(m);
  blocktrust::bindings::register_http(m);
  blocktrust::bindings::register_flows(m);
  blocktrust::bindings::register_jsonrpc(m);
  blocktrust::bindings::register_redis(m);
}
