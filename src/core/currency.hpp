#pragma once

#include <optional>
#include <string_view>

namespace metering::core {

// Minor-unit exponent of an active ISO 4217 currency code (e.g. "USD" -> 2,
// "JPY" -> 0, "BHD" -> 3), or nullopt when the code is not an active ISO 4217
// alphabetic code. Lookup is case-sensitive: codes are three upper-case letters.
std::optional<int> currency_exponent(std::string_view code);

}  // namespace metering::core
