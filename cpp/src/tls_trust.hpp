// The system's CA store for TLS clients, found at run time (the OpenSSL a wheel bundles has its
// build machine's paths compiled in, which other distributions do not have).
#pragma once

#include <openssl/ssl.h>

namespace blocktrust::tls {

/// Makes `ctx` trust the system's CA certificates: SSL_CERT_FILE / SSL_CERT_DIR when either is
/// set, otherwise the distribution's bundle and hashed directory (Debian, Fedora/RHEL, SUSE,
/// Alpine layouts) plus OpenSSL's compiled-in default. Returns false when no store was found.
bool trust_system_store(SSL_CTX* ctx);

}  // namespace blocktrust::tls
