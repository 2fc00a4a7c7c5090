#include "core/validation.hpp"

#include <array>
#include <cctype>
#include <utility>

#include "core/currency.hpp"

namespace metering::core {

namespace {
constexpr std::array<std::pair<std::string_view, Aggregation>, 9> kAggregations{{
    {"count", Aggregation::count},
    {"sum", Aggregation::sum},
    {"max", Aggregation::max},
    {"min", Aggregation::min},
    {"latest", Aggregation::latest},
    {"unique_count", Aggregation::unique_count},
    {"time_weighted", Aggregation::time_weighted},
    {"counter", Aggregation::counter},
    {"custom", Aggregation::custom},
}};

std::string field_str(std::string_view field) { return std::string(field); }
}  // namespace

std::optional<Aggregation> parse_aggregation(std::string_view name)
{
    for (const auto& [text, kind] : kAggregations)
        if (text == name)
            return kind;
    return std::nullopt;
}

Aggregation require_aggregation(std::string_view name)
{
    if (auto kind = parse_aggregation(name))
        return *kind;
    throw Error(sqlstate::kUnknownAggregation, "aggregation " + quoted(name) + " is not known",
                {},
                "Use one of count, sum, max, min, latest, unique_count, time_weighted, "
                "counter, custom.");
}

bool negative_allowed_by_default(Aggregation kind)
{
    return kind == Aggregation::sum || kind == Aggregation::counter;
}

std::size_t utf8_length(std::string_view text)
{
    std::size_t n = 0;
    for (unsigned char c : text)
        if ((c & 0xC0) != 0x80)
            ++n;
    return n;
}

std::string quoted(std::string_view value)
{
    constexpr std::size_t kMax = 80;
    if (value.size() <= kMax)
        return "\"" + std::string(value) + "\"";
    std::size_t cut = kMax;
    while (cut > 0 && (static_cast<unsigned char>(value[cut]) & 0xC0) == 0x80)
        --cut;  // never split a UTF-8 character
    return "\"" + std::string(value.substr(0, cut)) + "...\"";
}

void check_identifier(std::string_view field, std::string_view value)
{
    if (value.empty())
        throw Error(sqlstate::kBadIdentifier, field_str(field) + " must not be empty");
    if (utf8_length(value) > kMaxIdLength)
        throw Error(sqlstate::kBadIdentifier,
                    field_str(field) + " " + quoted(value) + " is longer than 255 characters");
}

void check_idempotency_key(std::string_view key)
{
    if (key.empty())
        throw Error(sqlstate::kBadIdempotencyKey, "idempotency_key must not be empty", {},
                    "Pass NULL for an event without deduplication.");
    if (utf8_length(key) > kMaxIdLength)
        throw Error(sqlstate::kBadIdempotencyKey,
                    "idempotency_key " + quoted(key) + " is longer than 255 characters", {},
                    "Use a UUID or a hash of the request as the key.");
}

void check_timezone_syntax(std::string_view name)
{
    bool ok = !name.empty() && name.front() != '/' && name.find("..") == std::string_view::npos;
    for (char c : name)
        ok = ok && (std::isalnum(static_cast<unsigned char>(c)) || c == '/' || c == '_' ||
                    c == '-' || c == '+');
    if (!ok)
        throw_unknown_timezone(name);
}

int require_currency(std::string_view code)
{
    if (auto exponent = currency_exponent(code))
        return *exponent;
    throw Error(sqlstate::kUnknownCurrency, "currency " + quoted(code) + " is not an ISO 4217 code",
                {}, "Use an active three-letter code in upper case, such as USD, EUR or JPY.");
}

void throw_null_argument(std::string_view field)
{
    throw Error(sqlstate::kNullValue, field_str(field) + " must not be NULL");
}

void throw_unknown_customer(std::string_view customer_id)
{
    throw Error(sqlstate::kUnknownCustomer, "customer_id " + quoted(customer_id) + " does not exist",
                {}, "Create it first with metering.create_customer.");
}

void throw_unknown_meter(std::string_view meter)
{
    throw Error(sqlstate::kUnknownMeter, "meter " + quoted(meter) + " does not exist", {},
                "Create it first with metering.create_meter.");
}

void throw_unknown_timezone(std::string_view name)
{
    throw Error(sqlstate::kUnknownTimeZone, "timezone " + quoted(name) + " is not a known time zone",
                {}, "Use an IANA name such as UTC, Europe/Berlin or America/New_York.");
}

void throw_properties_not_object(std::string_view json_type)
{
    throw Error(sqlstate::kPropertiesNotObject,
                "properties must be a JSON object, not " + field_str(json_type), {},
                "Pass '{}' for an event without properties.");
}

void throw_non_finite(std::string_view field, const std::string& text)
{
    throw Error(sqlstate::kNonFiniteValue, field_str(field) + " " + text + " is not a finite number");
}

void throw_negative(std::string_view field, const std::string& text, std::string_view meter)
{
    throw Error(sqlstate::kNegativeValue,
                field_str(field) + " " + text + " is negative, which meter " + quoted(meter) +
                    " does not allow",
                {},
                "Only sum and counter meters (or meters created with allow_negative => true) "
                "take negative values.");
}

void throw_negative_amount(std::string_view field, const std::string& text)
{
    throw Error(sqlstate::kNegativeValue, field_str(field) + " " + text + " must not be negative");
}

void throw_timestamp_not_finite(std::string_view field, const std::string& text)
{
    throw Error(sqlstate::kTimestampNotFinite, field_str(field) + " " + text + " is not a finite timestamp");
}

void throw_timestamp_in_future(std::string_view field, const std::string& text,
                               std::int64_t max_future_skew)
{
    throw Error(sqlstate::kTimestampInFuture,
                field_str(field) + " " + text + " is more than metering.max_future_skew (" +
                    std::to_string(max_future_skew / 1000000) + " s) in the future",
                {}, "Check the sender's clock, or raise metering.max_future_skew.");
}

}  // namespace metering::core
