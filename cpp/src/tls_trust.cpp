// The system CA store: OpenSSL's environment variables first, then the well-known locations.
#include "tls_trust.hpp"

#include <openssl/err.h>
#include <openssl/x509.h>
#include <unistd.h>

#include <cstdlib>

namespace blocktrust::tls {

namespace {

// One PEM bundle per distribution family; the first that loads wins.
constexpr const char* kBundles[] = {
    "/etc/ssl/certs/ca-certificates.crt",                 // Debian, Ubuntu, Arch, Gentoo
    "/etc/pki/tls/certs/ca-bundle.crt",                   // Fedora, RHEL
    "/etc/pki/ca-trust/extracted/pem/tls-ca-bundle.pem",  // RHEL/CentOS 7+
    "/etc/ssl/ca-bundle.pem",                             // openSUSE, SLES
    "/etc/ssl/cert.pem",                                  // Alpine
};
// Hashed directories (c_rehash layout), looked up lazily per issuer.
constexpr const char* kDirs[] = {"/etc/ssl/certs", "/etc/pki/tls/certs"};

bool env_set(const char* name) {
  const char* v = std::getenv(name);
  return v != nullptr && *v != '\0';
}

}  // namespace

bool trust_system_store(SSL_CTX* ctx) {
  // OpenSSL's default paths honour SSL_CERT_FILE and SSL_CERT_DIR: an explicit choice is final.
  if (env_set(X509_get_default_cert_file_env()) || env_set(X509_get_default_cert_dir_env())) {
    bool ok = SSL_CTX_set_default_verify_paths(ctx) == 1;
    ERR_clear_error();
    return ok;
  }
  bool found = false;
  for (const char* file : kBundles) {
    if (::access(file, R_OK) == 0 && SSL_CTX_load_verify_locations(ctx, file, nullptr) == 1) {
      found = true;
      break;
    }
  }
  for (const char* dir : kDirs) {
    if (::access(dir, R_OK | X_OK) == 0 && SSL_CTX_load_verify_locations(ctx, nullptr, dir) == 1) {
      found = true;
    }
  }
  // The compiled-in default too (a system libssl's own OPENSSLDIR); missing paths are no error.
  SSL_CTX_set_default_verify_paths(ctx);
  ERR_clear_error();
  return found;
}

}  // namespace blocktrust::tls
