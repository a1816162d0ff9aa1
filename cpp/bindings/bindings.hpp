// Shared by the binding files: one register_<area> per capability, and error translation helpers.
#pragma once

#include <pybind11/pybind11.h>

#include <cstdint>
#include <string>

#include "blocktrust/http.hpp"

namespace blocktrust::bindings {

namespace py = pybind11;

/// Installs the translator from blocktrust::Error and its shared families to Python exceptions.
void register_errors(py::module_& m);

/// Binds blocktrust_native._native.pool (the PostgreSQL pool).
void register_pool(py::module_& m);

/// Binds blocktrust_native._native.passwords.
void register_passwords(py::module_& m);
/// Binds blocktrust_native._native.ratelimit.
void register_ratelimit(py::module_& m);
/// Binds blocktrust_native._native.digest (digests, file hashing, Merkle trees).
void register_digest(py::module_& m);

/// Binds blocktrust_native._native.apikeys (API keys, HMAC digests, KeyRing).
void register_apikeys(py::module_& m);
/// Binds blocktrust_native._native.http (HttpOptions, one request with the blocking HTTP client);
/// before the bindings that take HttpOptions (flows, jsonrpc).
void register_http(py::module_& m);
/// Binds blocktrust_native._native.flows (histograms, flow runner).
void register_flows(py::module_& m);
/// Binds blocktrust_native._native.jsonrpc (the JSON-RPC client).
void register_jsonrpc(py::module_& m);
/// Binds blocktrust_native._native.redis (the Redis client and the Redis-backed rate limiter).
void register_redis(py::module_& m);

/// Sets the Python error `blocktrust_native.errors.<cls>` with `message` as its only argument.
void set_python_error(const char* cls, const char* message);

/// Python seconds -> milliseconds for a timeout: positive, finite and at most
/// http::kMaxTimeoutMs (the one cap); ConfigError naming `what` otherwise.
std::int64_t timeout_ms(double seconds, const char* what);

/// Returns the class `blocktrust_native.errors.<cls>`.
py::object error_class(const char* cls);

}  // namespace blocktrust::bindings
