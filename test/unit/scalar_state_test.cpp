// count, sum, max and min of an invoice line (src/core/scalar_state.hpp): the
// 128-bit fast path agrees with exact Decimal arithmetic, including where it
// overflows into the Decimal path, under any split and order of the rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <random>
#include <string>
#include <vector>

#include "core/decimal.hpp"
#include "core/scalar_state.hpp"
#include "error_assertions.hpp"

namespace {

using metering::core::Decimal;
using namespace metering::core::agg;

std::optional<FixedValue> fixed(bool negative, int weight, int dscale, std::vector<std::int16_t> digits)
{
    return fixed_from_base10000(negative, weight, dscale, digits.data(), int(digits.size()));
}

std::string text(FixedValue v) { return to_decimal(v).to_string(); }

TEST(FixedFromBase10000, ReadsPostgresDigits)
{
    // Postgres stores 1.5 as weight 0, digits {1, 5000}, display scale 1.
    EXPECT_EQ(text(*fixed(false, 0, 1, {1, 5000})), "1.5");
    EXPECT_EQ(text(*fixed(false, 1, 3, {1, 2345, 6780})), "12345.678");
    EXPECT_EQ(text(*fixed(false, -1, 4, {5})), "0.0005");
    EXPECT_EQ(text(*fixed(true, 0, 2, {7, 2500})), "-7.25");
    EXPECT_EQ(text(*fixed(false, 1, 0, {1})), "10000");       // trailing zero digits are not stored
    EXPECT_EQ(text(*fixed(false, 0, 3, {})), "0.000");         // zero has no digits
    EXPECT_EQ(text(*fixed(false, 4, 0, {99, 9999, 9999, 9999, 9999})), "999999999999999999");
}

TEST(FixedFromBase10000, RefusesWhatDoesNotFit)
{
    EXPECT_FALSE(fixed(false, 4, 0, {100}));                    // 10^18
    EXPECT_FALSE(fixed(false, 0, 19, {1}));                    // scale 19
    EXPECT_FALSE(fixed(false, 0, 0, {1, 5000}));               // a digit below the display scale
    EXPECT_FALSE(fixed(false, 0, 0, {10000}));                 // not a base-10000 digit
}

Decimal exact_sum(const std::vector<Decimal>& values)
{
    Decimal sum;
    for (const Decimal& v : values)
        sum += v;
    return sum;
}

// Values as (mantissa, scale) and as Decimals, some near the limits.
std::vector<FixedValue> random_values(std::mt19937_64& rng, std::size_t n, bool huge)
{
    std::vector<FixedValue> out;
    for (std::size_t i = 0; i < n; ++i) {
        std::int64_t limit = huge ? 999'999'999'999'999'999 : 100'000;
        auto mantissa = std::int64_t(rng() % std::uint64_t(limit));
        if (rng() % 3 == 0)
            mantissa = -mantissa;
        int scale = int(rng() % (huge ? 19 : 4));
        out.push_back({mantissa, scale});
    }
    return out;
}

TEST(ScalarState, SumIsExactAndKeepsTheGreatestScale)
{
    ScalarState sum(ScalarKind::sum);
    sum.add(FixedValue{15, 1});
    sum.add(FixedValue{225, 2});
    sum.add(FixedValue{-3, 0});
    EXPECT_EQ(sum.result()->to_string(), "0.75");
    EXPECT_FALSE(ScalarState(ScalarKind::sum).result());  // no row: NULL, as sum() is
}

TEST(ScalarState, EverySplitAndOrderGivesTheExactResult)
{
    std::mt19937_64 rng(42);
    for (bool huge : {false, true}) {
        for (int round = 0; round < 20; ++round) {
            std::vector<FixedValue> values = random_values(rng, 200, huge);
            std::vector<Decimal> decimals;
            for (FixedValue v : values)
                decimals.push_back(to_decimal(v));
            Decimal expected_sum = exact_sum(decimals);
            Decimal expected_max = *std::max_element(decimals.begin(), decimals.end());
            Decimal expected_min = *std::min_element(decimals.begin(), decimals.end());
            for (ScalarKind kind : {ScalarKind::count, ScalarKind::sum, ScalarKind::max, ScalarKind::min}) {
                std::shuffle(values.begin(), values.end(), rng);
                std::size_t split = rng() % values.size();
                ScalarState a(kind), b(kind);
                for (std::size_t i = 0; i < values.size(); ++i) {
                    // one part through the fast path, some rows through the Decimal path
                    if (i % 7 == 0)
                        (i < split ? a : b).add(to_decimal(values[i]));
                    else
                        (i < split ? a : b).add(values[i]);
                }
                ScalarState whole(kind);
                whole.parse(a.serialized());
                ScalarState other(kind);
                other.parse(b.serialized());
                whole.merge(other);
                Decimal expected = kind == ScalarKind::count ? Decimal::from_int(200)
                                   : kind == ScalarKind::sum ? expected_sum
                                   : kind == ScalarKind::max ? expected_max
                                                             : expected_min;
                EXPECT_EQ(whole.result()->compare(expected), 0) << int(kind) << " huge " << huge;
                EXPECT_EQ(a.result().has_value(), kind == ScalarKind::count || split > 0);
            }
        }
    }
}

TEST(ScalarState, SumOverflowsInto128BitsAndBeyond)
{
    // 10^36 units each (scale 18): the 128-bit sum overflows after 170 of them.
    ScalarState sum(ScalarKind::sum);
    FixedValue big{999'999'999'999'999'999, 0};
    sum.add(FixedValue{1, 18});
    for (int i = 0; i < 1000; ++i)
        sum.add(big);
    EXPECT_EQ(sum.result()->to_string(), "999999999999999999000.000000000000000001");
}

// Found by reading while writing the fuzz targets (corpus aggregate_merge/sum_to_int128_min):
// a sum landing exactly on -2^127 units did not overflow __int128, but printing it
// negated INT128_MIN (UB), and the line failed with a garbage "is not a valid decimal
// number". 172 rows of a sum meter were enough.
TEST(ScalarState, ASumOfExactlyMinus2To127UnitsGoesWide)
{
    ScalarState sum(ScalarKind::sum);
    sum.add(FixedValue{-687'303'715'884'105'728, 18});
    for (int i = 0; i < 170; ++i)
        sum.add(FixedValue{-999'999'999'999'999'999, 0});
    sum.add(FixedValue{-141'183'460'469'231'901, 0});  // now -2^127 x 10^-18
    EXPECT_EQ(sum.result()->to_string(), "-170141183460469231731.687303715884105728");
    sum.add(FixedValue{1, 18});
    EXPECT_EQ(sum.result()->to_string(), "-170141183460469231731.687303715884105727");
}

TEST(ScalarState, TiesGoToTheGreaterScaleWhateverTheOrder)
{
    for (ScalarKind kind : {ScalarKind::max, ScalarKind::min}) {
        ScalarState a(kind), b(kind);
        a.add(FixedValue{15, 1});
        a.add(FixedValue{150, 2});
        b.add(FixedValue{150, 2});
        b.add(FixedValue{15, 1});
        EXPECT_EQ(a.result()->to_string(), "1.50");
        EXPECT_EQ(b.result()->to_string(), "1.50");
    }
    ScalarState max(ScalarKind::max);
    max.add(FixedValue{-5, 0});
    max.add(FixedValue{-7, 0});
    EXPECT_EQ(max.result()->to_string(), "-5");
}

TEST(ScalarState, ParseRefusesBadBytes)
{
    ScalarState sum(ScalarKind::sum);
    sum.add(FixedValue{1, 0});
    std::string bytes = sum.serialized();
    ScalarState max(ScalarKind::max);
    EXPECT_SQLSTATE("22P03", max.parse(bytes));                         // another kind
    EXPECT_SQLSTATE("22P03", sum.parse(bytes.substr(0, 9)));            // truncated
    EXPECT_SQLSTATE("22P03", sum.parse(bytes + "x"));                   // trailing bytes
    std::string no_value = bytes.substr(0, 9) + std::string(1, '\0');
    ScalarState empty(ScalarKind::sum);
    empty.parse(no_value);
    EXPECT_FALSE(empty.result());
}

}  // namespace
