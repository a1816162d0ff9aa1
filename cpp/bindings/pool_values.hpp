// Python values <-> PostgreSQL values, for the pool binding (cpp/bindings/pool.cpp).
#pragma once

#include <vector>

#include "bindings.hpp"
#include "blocktrust/pool.hpp"

namespace blocktrust::bindings {

/// Imports datetime's C API for the conversions; once, at load (Decimal, UUID and json are
/// imported on first use).
void init_pool_values();

/// The rows of `r` as a list of tuples (or of dicts keyed by column name).
py::list to_rows(const pool::Result& r, bool as_dict);

/// Statement parameters from a Python sequence (None: no parameters); TypeError for a value of a
/// type with no PostgreSQL form.
std::vector<pool::Param> to_params(const py::object& params);

}  // namespace blocktrust::bindings
