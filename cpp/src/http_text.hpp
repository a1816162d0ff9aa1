// Private: the text rules of HTTP/1.1 requests (what may be sent, what may be resent, what is a
// credential). Light on purpose: the flow compiler includes it without pulling in Beast.
#pragma once

#include <string_view>

namespace blocktrust::http {

/// True when `s` holds no CR, LF or NUL (what would split or truncate a request line or header).
bool field_value_safe(std::string_view s) noexcept;

/// True for an RFC 9110 token (a method or a header name).
bool is_token(std::string_view s) noexcept;

/// True for the methods RFC 9110 calls idempotent (GET, HEAD, OPTIONS, TRACE, PUT, DELETE): only
/// these are resent after a kept-alive connection closed before any byte of the response.
bool idempotent_method(std::string_view method) noexcept;

/// True for the header fields a redirect to another origin must not carry (Authorization,
/// Cookie, Proxy-Authorization).
bool credential_header(std::string_view name) noexcept;

}  // namespace blocktrust::http
