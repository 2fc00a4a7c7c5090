// Text that Postgres's input functions are known to accept. The bridge hands
// text from JSON to numeric_in and timestamptz_in only when these say yes, so
// that it never has to catch their errors: an error they still raise (out of
// memory, a cancel) is a real one and propagates. Pure C++.
#pragma once

#include <string_view>

namespace metering::core {

// Whether numeric_in (PostgreSQL 15, no typmod) accepts text: blanks around a
// decimal number (sign, digits with at most one point, exponent e[+-]N), NaN
// or an infinity, within numeric's range (at most 16,383 digits after the
// point, a magnitude below 10^131072). Exactly the texts numeric_in accepts.
bool is_numeric_text(std::string_view text);

// Whether text is an ISO 8601 timestamp that timestamptz_in accepts under any
// DateStyle, TimeZone and timezone_abbreviations: blanks around
// YYYY-MM-DD[(T| )hh:mm[:ss[.fraction]][offset]], offset Z, +hh, +hhmm, +hh:mm
// or +hh:mm:ss (or -), hours of an offset up to 15, at most 64 characters.
// A valid calendar date (year 1 to 9999), hours 00-23 (or 24:00:00), seconds
// up to 60 (a leap second). Other forms timestamptz_in knows ("now",
// "Nov 1 2025", zone names) are refused: the contract is ISO 8601.
bool is_iso_timestamp_text(std::string_view text);

}  // namespace metering::core
