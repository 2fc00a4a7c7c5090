// Unit tests of src/core/validation: SQLSTATEs and messages of the rules.
#include <gtest/gtest.h>

#include "error_assertions.hpp"

#include <cmath>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/errors.hpp"
#include "core/validation.hpp"

namespace {

using metering::core::Error;
namespace mc = metering::core;

using metering_test::contains;
using metering_test::error_of;

std::string repeat(std::string_view s, std::size_t n)
{
    std::string out;
    for (std::size_t i = 0; i < n; ++i)
        out += s;
    return out;
}

// True when text is well-formed UTF-8 (no character split at either end).
bool valid_utf8(std::string_view text)
{
    std::size_t i = 0;
    while (i < text.size()) {
        unsigned char c = static_cast<unsigned char>(text[i]);
        std::size_t len = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                                     : (c & 0xF8) == 0xF0 ? 4 : 0;
        if (len == 0 || i + len > text.size())
            return false;
        for (std::size_t k = 1; k < len; ++k)
            if ((static_cast<unsigned char>(text[i + k]) & 0xC0) != 0x80)
                return false;
        i += len;
    }
    return true;
}

const std::vector<std::pair<std::string_view, mc::Aggregation>> kAllKinds = {
    {"count", mc::Aggregation::count},
    {"sum", mc::Aggregation::sum},
    {"max", mc::Aggregation::max},
    {"min", mc::Aggregation::min},
    {"latest", mc::Aggregation::latest},
    {"unique_count", mc::Aggregation::unique_count},
    {"time_weighted", mc::Aggregation::time_weighted},
    {"counter", mc::Aggregation::counter},
    {"custom", mc::Aggregation::custom},
};

// --- aggregations ------------------------------------------------------------

TEST(Aggregation, ParsesAllNineKinds)
{
    ASSERT_EQ(kAllKinds.size(), 9u);
    for (const auto& [name, kind] : kAllKinds) {
        auto parsed = mc::parse_aggregation(name);
        ASSERT_TRUE(parsed.has_value()) << name;
        EXPECT_EQ(*parsed, kind) << name;
        EXPECT_EQ(mc::require_aggregation(name), kind) << name;
    }
}

TEST(Aggregation, UnknownIsNullopt)
{
    EXPECT_FALSE(mc::parse_aggregation("avg").has_value());
    EXPECT_FALSE(mc::parse_aggregation("").has_value());
    EXPECT_FALSE(mc::parse_aggregation("SUM").has_value());
    EXPECT_FALSE(mc::parse_aggregation("sum ").has_value());
    EXPECT_FALSE(mc::parse_aggregation(std::string_view("sum\0x", 5)).has_value());
}

TEST(Aggregation, RequireUnknownThrowsMT013NamingTheValue)
{
    EXPECT_SQLSTATE("MT013", mc::require_aggregation("average"));
    EXPECT_SQLSTATE("MT013", mc::require_aggregation(""));
    auto e = error_of([] { mc::require_aggregation("average"); });
    ASSERT_TRUE(e.has_value());
    EXPECT_STREQ(e->sqlstate(), "MT013");
    EXPECT_TRUE(contains(e->message(), "\"average\""));
    EXPECT_FALSE(e->hint().empty());
}

TEST(Aggregation, NegativeAllowedByDefaultOnlyForSumAndCounter)
{
    for (const auto& [name, kind] : kAllKinds) {
        bool expected = kind == mc::Aggregation::sum || kind == mc::Aggregation::counter;
        EXPECT_EQ(mc::negative_allowed_by_default(kind), expected) << name;
    }
}

// --- utf8_length and quoted --------------------------------------------------

TEST(Utf8Length, CountsCodePoints)
{
    EXPECT_EQ(mc::utf8_length(""), 0u);
    EXPECT_EQ(mc::utf8_length("abc"), 3u);
    EXPECT_EQ(mc::utf8_length("é"), 1u);             // 2 bytes
    EXPECT_EQ(mc::utf8_length("€"), 1u);             // 3 bytes
    EXPECT_EQ(mc::utf8_length("😀"), 1u);            // 4 bytes
    EXPECT_EQ(mc::utf8_length("aé€😀z"), 5u);       // 1+2+3+4+1 bytes
    EXPECT_EQ(std::string_view("aé€😀z").size(), 11u);
}

TEST(Quoted, ShortValuesAreQuotedWhole)
{
    EXPECT_EQ(mc::quoted(""), "\"\"");
    EXPECT_EQ(mc::quoted("abc"), "\"abc\"");
    std::string eighty(80, 'x');
    EXPECT_EQ(mc::quoted(eighty), "\"" + eighty + "\"");
}

TEST(Quoted, LongAsciiIsTruncatedAt80)
{
    std::string long_value(200, 'x');
    EXPECT_EQ(mc::quoted(long_value), "\"" + std::string(80, 'x') + "...\"");
    std::string eighty_one(81, 'y');
    EXPECT_EQ(mc::quoted(eighty_one), "\"" + std::string(80, 'y') + "...\"");
}

TEST(Quoted, TruncationNeverSplitsUtf8)
{
    // Every alignment of multi-byte characters against the 80-byte cut.
    for (std::string_view ch : {"é", "€", "😀"}) {
        for (std::size_t prefix = 0; prefix < 4; ++prefix) {
            std::string value = std::string(prefix, 'a') + repeat(ch, 60);
            ASSERT_GT(value.size(), 80u);
            std::string q = mc::quoted(value);
            ASSERT_GE(q.size(), 5u);
            EXPECT_EQ(q.front(), '"');
            EXPECT_EQ(q.substr(q.size() - 4), "...\"") << q;
            std::string inner = q.substr(1, q.size() - 5);
            EXPECT_TRUE(valid_utf8(inner)) << "prefix " << prefix << ": " << q;
            EXPECT_LE(inner.size(), 80u);
            EXPECT_GT(inner.size(), 80u - ch.size());  // cut at most one character early
            EXPECT_EQ(value.compare(0, inner.size(), inner), 0);
        }
    }
}

// --- identifiers and keys ----------------------------------------------------

TEST(CheckIdentifier, EmptyIsMT014)
{
    EXPECT_SQLSTATE("MT014", mc::check_identifier("customer_id", ""));
    auto e = error_of([] { mc::check_identifier("customer_id", ""); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "customer_id"));
}

TEST(CheckIdentifier, LengthCountsCharactersNotBytes)
{
    EXPECT_NO_THROW(mc::check_identifier("code", "a"));
    EXPECT_NO_THROW(mc::check_identifier("code", std::string(255, 'a')));
    EXPECT_NO_THROW(mc::check_identifier("code", repeat("é", 255)));  // 510 bytes
    EXPECT_SQLSTATE("MT014", mc::check_identifier("code", repeat("é", 256)));
    EXPECT_SQLSTATE("MT014", mc::check_identifier("code", std::string(256, 'a')));
    auto e = error_of([] { mc::check_identifier("meter", std::string(256, 'm')); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "meter"));
    EXPECT_TRUE(contains(e->message(), "255"));
}

TEST(CheckIdempotencyKey, EmptyIsMT007WithHint)
{
    EXPECT_SQLSTATE("MT007", mc::check_idempotency_key(""));
    auto e = error_of([] { mc::check_idempotency_key(""); });
    ASSERT_TRUE(e.has_value());
    EXPECT_FALSE(e->hint().empty());
    EXPECT_TRUE(contains(e->message(), "idempotency_key"));
}

TEST(CheckIdempotencyKey, AtMost255Characters)
{
    EXPECT_NO_THROW(mc::check_idempotency_key("req-1"));
    EXPECT_NO_THROW(mc::check_idempotency_key(std::string(255, 'k')));
    EXPECT_NO_THROW(mc::check_idempotency_key(repeat("€", 255)));
    EXPECT_SQLSTATE("MT007", mc::check_idempotency_key(std::string(256, 'k')));
    EXPECT_SQLSTATE("MT007", mc::check_idempotency_key(repeat("€", 256)));
}

// --- time zones and currencies -----------------------------------------------

TEST(CheckTimezoneSyntax, AcceptsIanaNames)
{
    EXPECT_NO_THROW(mc::check_timezone_syntax("Europe/Berlin"));
    EXPECT_NO_THROW(mc::check_timezone_syntax("UTC"));
    EXPECT_NO_THROW(mc::check_timezone_syntax("America/Argentina/Buenos_Aires"));
    EXPECT_NO_THROW(mc::check_timezone_syntax("Etc/GMT+5"));
    EXPECT_NO_THROW(mc::check_timezone_syntax("America/Port-au-Prince"));
}

TEST(CheckTimezoneSyntax, RejectsPathsAndEmpty)
{
    EXPECT_SQLSTATE("MT012", mc::check_timezone_syntax("../etc/passwd"));
    EXPECT_SQLSTATE("MT012", mc::check_timezone_syntax("Europe/../../etc/passwd"));
    EXPECT_SQLSTATE("MT012", mc::check_timezone_syntax("/abs"));
    EXPECT_SQLSTATE("MT012", mc::check_timezone_syntax(""));
    EXPECT_SQLSTATE("MT012", mc::check_timezone_syntax("Europe/Berlin; DROP"));
    auto e = error_of([] { mc::check_timezone_syntax("/abs"); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "\"/abs\""));
}

TEST(RequireCurrency, ReturnsExponent)
{
    EXPECT_EQ(mc::require_currency("USD"), 2);
    EXPECT_EQ(mc::require_currency("EUR"), 2);
    EXPECT_EQ(mc::require_currency("JPY"), 0);
    EXPECT_EQ(mc::require_currency("BHD"), 3);
}

TEST(RequireCurrency, UnknownIsMT010)
{
    EXPECT_SQLSTATE("MT010", mc::require_currency("usd"));
    EXPECT_SQLSTATE("MT010", mc::require_currency("XAU"));  // no minor unit
    EXPECT_SQLSTATE("MT010", mc::require_currency(""));
    EXPECT_SQLSTATE("MT010", mc::require_currency("USDX"));
    auto e = error_of([] { mc::require_currency("usd"); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "\"usd\""));
}

// --- values and amounts ------------------------------------------------------

struct CountingText {
    int* calls;
    std::string text;
    std::string operator()() const
    {
        ++*calls;
        return text;
    }
};

TEST(CheckValue, NonFiniteIsMT003)
{
    int calls = 0;
    mc::NumberFacts nan;
    nan.nan = true;
    mc::NumberFacts inf;
    inf.infinite = true;
    EXPECT_SQLSTATE("MT003", mc::check_value("value", nan, true, "api_calls", CountingText{&calls, "NaN"}));
    EXPECT_SQLSTATE("MT003", mc::check_value("value", inf, true, "api_calls", CountingText{&calls, "Infinity"}));
    EXPECT_SQLSTATE("MT003", mc::check_value("value", inf, false, "api_calls", CountingText{&calls, "Infinity"}));
    mc::NumberFacts neg_inf;
    neg_inf.infinite = true;
    neg_inf.negative = true;
    // Not finite wins over negative.
    EXPECT_SQLSTATE("MT003", mc::check_value("value", neg_inf, false, "api_calls", CountingText{&calls, "-Infinity"}));
    auto e = error_of([&] { mc::check_value("value", nan, true, "m", CountingText{&calls, "NaN"}); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "NaN"));
    EXPECT_TRUE(contains(e->message(), "value"));
}

TEST(CheckValue, NegativeNotAllowedIsMT004NamingMeterAndValue)
{
    int calls = 0;
    mc::NumberFacts neg;
    neg.negative = true;
    auto e = error_of([&] { mc::check_value("value", neg, false, "api_calls", CountingText{&calls, "-3.5"}); });
    ASSERT_TRUE(e.has_value());
    EXPECT_STREQ(e->sqlstate(), "MT004");
    EXPECT_TRUE(contains(e->message(), "api_calls"));
    EXPECT_TRUE(contains(e->message(), "-3.5"));
    EXPECT_FALSE(e->hint().empty());
    EXPECT_EQ(calls, 1);
}

TEST(CheckValue, NegativeAllowedPasses)
{
    int calls = 0;
    mc::NumberFacts neg;
    neg.negative = true;
    EXPECT_NO_THROW(mc::check_value("value", neg, true, "balance", CountingText{&calls, "-1"}));
    EXPECT_EQ(calls, 0);
}

TEST(CheckValue, TextNotPrintedWhenValueIsFine)
{
    int calls = 0;
    mc::NumberFacts fine;
    EXPECT_NO_THROW(mc::check_value("value", fine, false, "api_calls", CountingText{&calls, "1"}));
    EXPECT_NO_THROW(mc::check_value("value", fine, true, "api_calls", CountingText{&calls, "1"}));
    mc::NumberFacts neg;
    neg.negative = true;
    EXPECT_NO_THROW(mc::check_value("value", neg, true, "api_calls", CountingText{&calls, "-1"}));
    EXPECT_EQ(calls, 0);
}

TEST(CheckAmount, NegativeIsMT004AndNonFiniteMT003)
{
    int calls = 0;
    mc::NumberFacts neg;
    neg.negative = true;
    mc::NumberFacts nan;
    nan.nan = true;
    mc::NumberFacts inf;
    inf.infinite = true;
    EXPECT_SQLSTATE("MT004", mc::check_amount("base_fee", neg, CountingText{&calls, "-10"}));
    EXPECT_SQLSTATE("MT003", mc::check_amount("base_fee", nan, CountingText{&calls, "NaN"}));
    EXPECT_SQLSTATE("MT003", mc::check_amount("price", inf, CountingText{&calls, "Infinity"}));
    EXPECT_EQ(calls, 3);
    auto e = error_of([&] { mc::check_amount("base_fee", neg, CountingText{&calls, "-10"}); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "base_fee"));
    EXPECT_TRUE(contains(e->message(), "-10"));

    calls = 0;
    EXPECT_NO_THROW(mc::check_amount("base_fee", mc::NumberFacts{}, CountingText{&calls, "10"}));
    EXPECT_EQ(calls, 0);
}

// --- timestamps --------------------------------------------------------------

constexpr std::int64_t kSecond = 1000000;
constexpr std::int64_t kSkew = 300 * kSecond;
constexpr std::int64_t kNow = 800000000 * kSecond;  // ~2025 in Postgres epoch

TEST(CheckTimestamp, InfinityIsMT006)
{
    int calls = 0;
    EXPECT_SQLSTATE("MT006", mc::check_timestamp("occurred_at", mc::kMinusInfinity, kNow, kSkew,
                                                 CountingText{&calls, "-infinity"}));
    EXPECT_SQLSTATE("MT006", mc::check_timestamp("occurred_at", mc::kPlusInfinity, kNow, kSkew,
                                                 CountingText{&calls, "infinity"}));
    EXPECT_EQ(calls, 2);
}

TEST(CheckTimestamp, UpToSkewInTheFutureIsAccepted)
{
    int calls = 0;
    EXPECT_NO_THROW(mc::check_timestamp("occurred_at", kNow, kNow, kSkew, CountingText{&calls, "t"}));
    EXPECT_NO_THROW(mc::check_timestamp("occurred_at", kNow + kSkew, kNow, kSkew, CountingText{&calls, "t"}));
    EXPECT_EQ(calls, 0);
}

TEST(CheckTimestamp, BeyondSkewIsMT005)
{
    int calls = 0;
    auto e = error_of([&] {
        mc::check_timestamp("occurred_at", kNow + kSkew + 1, kNow, kSkew,
                            CountingText{&calls, "2025-05-07 10:00:00+00"});
    });
    ASSERT_TRUE(e.has_value());
    EXPECT_STREQ(e->sqlstate(), "MT005");
    EXPECT_TRUE(contains(e->message(), "300 s"));
    EXPECT_TRUE(contains(e->message(), "occurred_at"));
    EXPECT_TRUE(contains(e->message(), "2025-05-07 10:00:00+00"));
    EXPECT_EQ(calls, 1);
}

TEST(CheckTimestamp, PastIsAccepted)
{
    int calls = 0;
    EXPECT_NO_THROW(mc::check_timestamp("occurred_at", kNow - 1, kNow, kSkew, CountingText{&calls, "t"}));
    EXPECT_NO_THROW(mc::check_timestamp("occurred_at", kNow - 10 * 365 * 86400 * kSecond, kNow, kSkew,
                                        CountingText{&calls, "t"}));
    EXPECT_NO_THROW(mc::check_timestamp("occurred_at", mc::kMinusInfinity + 1, kNow, kSkew,
                                        CountingText{&calls, "t"}));
    EXPECT_EQ(calls, 0);
}

TEST(CheckTimestamp, ZeroSkewRejectsAnyFuture)
{
    int calls = 0;
    EXPECT_NO_THROW(mc::check_timestamp("at", kNow, kNow, 0, CountingText{&calls, "t"}));
    EXPECT_SQLSTATE("MT005", mc::check_timestamp("at", kNow + 1, kNow, 0, CountingText{&calls, "t"}));
}

}  // namespace
