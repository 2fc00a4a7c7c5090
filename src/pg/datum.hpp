// Small conversions between Postgres values and what the core needs, shared by
// every bridge file.
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

#include <string>
#include <string_view>

#include "core/validation.hpp"

namespace metering::pg {

// The bytes of a text value (no copy; valid while t is).
inline std::string_view view(const text* t)
{
    return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

// NaN, infinity and sign of a numeric, as the core's checks want them.
core::NumberFacts number_facts(Numeric value);

// Text forms for error messages (safe to call while C++ objects are alive).
std::string numeric_text(Numeric value);
std::string timestamp_text(TimestampTz at);

}  // namespace metering::pg
