// Exact conversions between Postgres numeric and the core's Decimal (through
// their text forms: both are exact decimal, so nothing is lost).
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
}

#include <string>

#include "core/decimal.hpp"

namespace metering::rating {

// Throws core::Error (MT003) naming field for NaN and infinity.
core::Decimal to_decimal(Numeric value, const char* field);
Numeric to_numeric(const core::Decimal& value);
// The text of a jsonb value, as the core's JSON reader takes it.
std::string jsonb_text(Jsonb* value);

}  // namespace metering::rating
