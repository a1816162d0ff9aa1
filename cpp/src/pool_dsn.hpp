// DSN handling for the pool: accepting SQLAlchemy-style URLs, redaction, and the libpq
// connection string with the pool's session settings.
#pragma once

#include <string>
#include <string_view>

#include "blocktrust/pool.hpp"

namespace blocktrust::pool {

/// Turns `postgresql+psycopg2://...` into `postgresql://...`; other DSNs are returned unchanged.
std::string strip_driver(std::string_view dsn);

/// The key=value connection string for libpq: the DSN plus application_name, connect_timeout and
/// (outside PgBouncer mode) session options. Throws ConfigError naming the redacted DSN.
std::string build_conninfo(const PoolConfig& config);

}  // namespace blocktrust::pool
