#include "blocktrust/version.hpp"

namespace blocktrust {

const char* version() noexcept {
  return BLOCKTRUST_VERSION;
}

}  // namespace blocktrust
