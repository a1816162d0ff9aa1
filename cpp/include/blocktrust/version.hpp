// The library version, taken from pyproject.toml at build time.
#pragma once

namespace blocktrust {

/// The version of blocktrust-native this core was built as, e.g. "0.1.0".
[[nodiscard]] const char* version() noexcept;

}  // namespace blocktrust
