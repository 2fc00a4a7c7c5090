// Validation rules of events and catalog entries. Pure C++: the bridge passes
// plain facts (lengths, flags, microseconds) and a way to print a value, so
// that the messages and SQLSTATEs live here and are unit-tested.
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/errors.hpp"

namespace metering::core {

enum class Aggregation { count, sum, max, min, latest, unique_count, time_weighted, counter, custom };

std::optional<Aggregation> parse_aggregation(std::string_view name);
// Throws kUnknownAggregation for anything but the nine kinds of the spec.
Aggregation require_aggregation(std::string_view name);
// sum and counter accept negative values (corrections, decrements) unless told otherwise.
bool negative_allowed_by_default(Aggregation kind);

inline constexpr std::size_t kMaxIdLength = 255;

// Number of characters (code points) of UTF-8 text.
std::size_t utf8_length(std::string_view text);
// Quotes a value for a message: "abc", shortened past 80 characters.
std::string quoted(std::string_view value);

// Application ids (customer_id, meter code, plan code): not empty, at most 255 characters.
void check_identifier(std::string_view field, std::string_view value);
// An idempotency key, when given: not empty, at most 255 characters.
void check_idempotency_key(std::string_view key);
void check_timezone_syntax(std::string_view name);
// Throws kUnknownCurrency when code is not an active ISO 4217 code; returns its exponent.
int require_currency(std::string_view code);

[[noreturn]] void throw_null_argument(std::string_view field);
[[noreturn]] void throw_unknown_customer(std::string_view customer_id);
[[noreturn]] void throw_unknown_meter(std::string_view meter);
[[noreturn]] void throw_unknown_timezone(std::string_view name);
[[noreturn]] void throw_properties_not_object(std::string_view json_type);

// What the bridge knows of a numeric value without printing it.
struct NumberFacts {
    bool nan = false;
    bool infinite = false;
    bool negative = false;
};

// A value must be finite; negative only where allowed. text() prints it, and
// is called only when the value is rejected.
template <typename TextFn>
void check_value(std::string_view field, NumberFacts facts, bool allow_negative,
                 std::string_view meter, TextFn&& text);

// A money amount (base fee, price): finite and not negative.
template <typename TextFn>
void check_amount(std::string_view field, NumberFacts facts, TextFn&& text);

// Timestamps in microseconds (any epoch, the same for all arguments).
inline constexpr std::int64_t kMinusInfinity = INT64_MIN;
inline constexpr std::int64_t kPlusInfinity = INT64_MAX;

template <typename TextFn>
void check_timestamp(std::string_view field, std::int64_t at, std::int64_t now,
                     std::int64_t max_future_skew, TextFn&& text);

// --- template definitions -------------------------------------------------

[[noreturn]] void throw_non_finite(std::string_view field, const std::string& text);
[[noreturn]] void throw_negative(std::string_view field, const std::string& text, std::string_view meter);
[[noreturn]] void throw_negative_amount(std::string_view field, const std::string& text);
[[noreturn]] void throw_timestamp_not_finite(std::string_view field, const std::string& text);
[[noreturn]] void throw_timestamp_in_future(std::string_view field, const std::string& text,
                                            std::int64_t max_future_skew);

template <typename TextFn>
void check_value(std::string_view field, NumberFacts facts, bool allow_negative,
                 std::string_view meter, TextFn&& text)
{
    if (facts.nan || facts.infinite)
        throw_non_finite(field, text());
    if (facts.negative && !allow_negative)
        throw_negative(field, text(), meter);
}

template <typename TextFn>
void check_amount(std::string_view field, NumberFacts facts, TextFn&& text)
{
    if (facts.nan || facts.infinite)
        throw_non_finite(field, text());
    if (facts.negative)
        throw_negative_amount(field, text());
}

template <typename TextFn>
void check_timestamp(std::string_view field, std::int64_t at, std::int64_t now,
                     std::int64_t max_future_skew, TextFn&& text)
{
    if (at == kMinusInfinity || at == kPlusInfinity)
        throw_timestamp_not_finite(field, text());
    if (at > now && at - now > max_future_skew)
        throw_timestamp_in_future(field, text(), max_future_skew);
}

}  // namespace metering::core
