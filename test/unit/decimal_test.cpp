// Unit tests of src/core/decimal: exact decimal arithmetic for money.
// Expected values of big numbers were computed with Python's arbitrary
// precision integers (and decimal with prec=500), not with this code.
#include <gtest/gtest.h>

#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <string_view>
#include <vector>

#include "core/decimal.hpp"
#include "core/errors.hpp"
#include "error_assertions.hpp"

namespace {

using metering::core::Decimal;
using metering_test::contains;
using metering_test::error_of;
namespace sqlstate = metering::core::sqlstate;

Decimal D(std::string_view text) { return Decimal::parse(text); }

// Text of parse(text): the round trip through Decimal.
std::string canonical(std::string_view text) { return D(text).to_string(); }

const std::string k2pow128 = "340282366920938463463374607431768211456";
const std::string k2pow256 =
    "115792089237316195423570985008687907853269984665640564039457584007913129639936";

// --- parse and to_string -----------------------------------------------------

TEST(DecimalParse, KeepsTheScaleAsWritten)
{
    EXPECT_EQ(canonical("0"), "0");
    EXPECT_EQ(canonical("1.50"), "1.50");
    EXPECT_EQ(canonical("-1.50"), "-1.50");
    EXPECT_EQ(canonical("0.000"), "0.000");
    EXPECT_EQ(canonical("0.10"), "0.10");
    EXPECT_EQ(canonical("123456789012345678901234567890.123456789"),
              "123456789012345678901234567890.123456789");
}

TEST(DecimalParse, ExponentsAreWrittenOut)
{
    EXPECT_EQ(canonical("1e3"), "1000");
    EXPECT_EQ(canonical("1E+2"), "100");
    EXPECT_EQ(canonical("2.5E-2"), "0.025");
    EXPECT_EQ(canonical("1e-3"), "0.001");
    EXPECT_EQ(canonical("-1e0"), "-1");
    // As in Postgres: the scale is the fraction digits left after the exponent.
    EXPECT_EQ(canonical("1.50e1"), "15.0");
    EXPECT_EQ(canonical("1.5e1"), "15");
    EXPECT_EQ(canonical("12.5e-1"), "1.25");
    EXPECT_EQ(canonical("1e18"), "1000000000000000000");
    EXPECT_EQ(D("2.5E-2").scale(), 3);
    EXPECT_EQ(D("1e3").scale(), 0);
}

TEST(DecimalParse, AcceptsPostgresAndJsonSpellings)
{
    EXPECT_EQ(canonical(".5"), "0.5");
    EXPECT_EQ(canonical("5."), "5");
    EXPECT_EQ(canonical("+7"), "7");
    EXPECT_EQ(canonical("  42\n"), "42");
    EXPECT_EQ(canonical("00012.30"), "12.30");
    EXPECT_EQ(canonical("-0.5"), "-0.5");
}

TEST(DecimalParse, NegativeZeroIsZero)
{
    for (std::string_view text : {"-0", "-0.00", "-0e5", "-.0", "-0E-3"}) {
        Decimal d = D(text);
        EXPECT_TRUE(d.is_zero()) << text;
        EXPECT_FALSE(d.is_negative()) << text;
        EXPECT_EQ(d.to_string().find('-'), std::string::npos) << text;
    }
    EXPECT_EQ(canonical("-0.00"), "0.00");
}

TEST(DecimalParse, RejectsNonNumbersNamingTheText)
{
    for (std::string_view text : {"", " ", "abc", "1.2.3", "1e", "e5", ".", "-", "+-1", "1 2",
                                  "0x1F", "1_000", "1,5", "--1", "1e+", "1e3.5", "١"}) {
        auto e = error_of([&] { D(text); });
        ASSERT_TRUE(e.has_value()) << "accepted \"" << text << "\"";
        EXPECT_STREQ(e->sqlstate(), sqlstate::kInvalidParameter) << text;
        EXPECT_TRUE(contains(e->message(), "\"" + std::string(text) + "\"")) << text;
        EXPECT_TRUE(contains(e->message(), "is not a valid decimal number")) << text;
    }
}

TEST(DecimalParse, RejectsNaNAndInfinity)
{
    for (std::string_view text : {"NaN", "nan", "-NaN", "Infinity", "-Infinity", "inf", "+INF"}) {
        auto e = error_of([&] { D(text); });
        ASSERT_TRUE(e.has_value()) << text;
        EXPECT_STREQ(e->sqlstate(), sqlstate::kInvalidParameter);
        EXPECT_TRUE(contains(e->message(), "is not a finite decimal number")) << e->message();
    }
}

TEST(DecimalParse, LimitsSizeAndExponent)
{
    std::string max_digits(Decimal::kMaxDigits, '7');
    EXPECT_EQ(canonical(max_digits), max_digits);
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D(max_digits + "7"));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("0." + max_digits));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1.5" + max_digits));  // split across the dot

    EXPECT_EQ(D("1e1000").to_string(), "1" + std::string(1000, '0'));
    EXPECT_EQ(D("1e-1000").scale(), 1000);
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1e1001"));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1e-1001"));
    // Would overflow an int if accumulated blindly.
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1e99999999999999999999"));
    // The message of hostile text stays short.
    auto e = error_of([&] { D(std::string(20000, '9')); });
    ASSERT_TRUE(e.has_value());
    EXPECT_LT(e->message().size(), 200u);
}

// --- from_int, predicates, compare ---------------------------------------------

TEST(DecimalFromInt, CoversTheWholeRange)
{
    EXPECT_EQ(Decimal::from_int(0).to_string(), "0");
    EXPECT_EQ(Decimal::from_int(-1).to_string(), "-1");
    EXPECT_EQ(Decimal::from_int(1000000000).to_string(), "1000000000");
    EXPECT_EQ(Decimal::from_int(999999999).to_string(), "999999999");
    EXPECT_EQ(Decimal::from_int(std::numeric_limits<std::int64_t>::max()).to_string(),
              "9223372036854775807");
    EXPECT_EQ(Decimal::from_int(std::numeric_limits<std::int64_t>::min()).to_string(),
              "-9223372036854775808");
    EXPECT_EQ(Decimal::from_int(42).scale(), 0);
    EXPECT_EQ(Decimal().to_string(), "0");
    EXPECT_TRUE(Decimal().is_zero());
}

TEST(DecimalPredicates, IsIntegerLooksAtTheValue)
{
    EXPECT_TRUE(D("2").is_integer());
    EXPECT_TRUE(D("2.00").is_integer());
    EXPECT_TRUE(D("1e3").is_integer());
    EXPECT_TRUE(D("0.000").is_integer());
    EXPECT_TRUE(D("-5.000000000000000000").is_integer());  // zeros across a limb
    EXPECT_FALSE(D("2.5").is_integer());
    EXPECT_FALSE(D("1000000000.000000001").is_integer());
    EXPECT_FALSE(D("0.0000000001").is_integer());
    EXPECT_FALSE(D("-0.5").is_integer());
}

TEST(DecimalPredicates, SignAndZero)
{
    EXPECT_TRUE(D("-3").is_negative());
    EXPECT_FALSE(D("3").is_negative());
    EXPECT_FALSE(D("0.00").is_negative());
    EXPECT_TRUE(D("0.00").is_zero());
    EXPECT_FALSE(D("0.01").is_zero());
    EXPECT_EQ(D("1.250").scale(), 3);
}

TEST(DecimalCompare, ByValueNotByScale)
{
    EXPECT_EQ(D("1.50"), D("1.5"));
    EXPECT_EQ(D("0"), D("-0.000"));
    EXPECT_EQ(D("1e3"), D("1000.0"));
    EXPECT_LT(D("-2"), D("-1"));
    EXPECT_LT(D("-1"), D("0"));
    EXPECT_LT(D("0.1"), D("0.10000000001"));
    EXPECT_GT(D("1000000000"), D("999999999.999999999"));
    EXPECT_GT(D(k2pow256), D(k2pow128));
    EXPECT_LT(D("-" + k2pow256), D("-" + k2pow128));
    EXPECT_LE(D("2.0"), D("2"));
    EXPECT_GE(D("2.0"), D("2"));
    EXPECT_NE(D("2.01"), D("2"));
    EXPECT_EQ(D("3").compare(D("2")), 1);
    EXPECT_EQ(D("2").compare(D("3")), -1);
    EXPECT_EQ(D("2").compare(D("2.000")), 0);
}

// --- arithmetic -----------------------------------------------------------------

TEST(DecimalAdd, CarriesAcrossLimbs)
{
    EXPECT_EQ((D("999999999") + D("1")).to_string(), "1000000000");
    EXPECT_EQ((D("999999999999999999") + D("1")).to_string(), "1000000000000000000");
    EXPECT_EQ((D("999999999999999999.999999999") + D("0.000000001")).to_string(),
              "1000000000000000000.000000000");
    EXPECT_EQ((D(k2pow256) + D("-1")).to_string(),
              "115792089237316195423570985008687907853269984665640564039457584007913129639935");
}

TEST(DecimalSubtract, BorrowsAcrossLimbs)
{
    EXPECT_EQ((D("1000000000000000000") - D("1")).to_string(), "999999999999999999");
    EXPECT_EQ((D("1e40") - D("0.000000001")).to_string(),
              "9999999999999999999999999999999999999999.999999999");
    EXPECT_EQ((D("1") - D("3")).to_string(), "-2");
    EXPECT_EQ((D("-1") - D("-3")).to_string(), "2");
}

TEST(DecimalAdd, ScaleIsTheLargerScale)
{
    EXPECT_EQ((D("1.5") + D("2.25")).to_string(), "3.75");
    EXPECT_EQ((D("1.50") + D("1.50")).to_string(), "3.00");
    EXPECT_EQ((D("1") + D("0.10")).to_string(), "1.10");
    EXPECT_EQ((D("5") - D("5.00")).to_string(), "0.00");
    Decimal zero = D("-1.5") + D("1.5");
    EXPECT_EQ(zero.to_string(), "0.0");
    EXPECT_FALSE(zero.is_negative());
    Decimal sum = D("1");
    sum += D("0.25");
    sum -= D("2");
    EXPECT_EQ(sum.to_string(), "-0.75");
}

TEST(DecimalMultiply, ScaleIsTheSumOfScales)
{
    EXPECT_EQ((D("1.5") * D("2.0")).to_string(), "3.00");
    EXPECT_EQ((D("0.10") * D("3")).to_string(), "0.30");
    EXPECT_EQ((D("-2") * D("3")).to_string(), "-6");
    EXPECT_EQ((D("-2") * D("-3.5")).to_string(), "7.0");
    Decimal zero = D("-2") * D("0.0");
    EXPECT_EQ(zero.to_string(), "0.0");
    EXPECT_FALSE(zero.is_negative());
}

TEST(DecimalMultiply, BeyondTwoToThe128)
{
    EXPECT_EQ((D("18446744073709551616") * D("18446744073709551616")).to_string(), k2pow128);
    EXPECT_EQ((D(k2pow128) * D(k2pow128)).to_string(), k2pow256);
    EXPECT_EQ((D("123456789.987654321") * D("987654321.123456789")).to_string(),
              "121932632103337905.662094193112635269");
    EXPECT_EQ((D("-99999999999999999999.99") * D("99999999999999999999.99")).to_string(),
              "-9999999999999999999998000000000000000000.0001");
}

TEST(DecimalSign, UnaryMinusAndAbs)
{
    EXPECT_EQ((-D("1.50")).to_string(), "-1.50");
    EXPECT_EQ((-D("-1.50")).to_string(), "1.50");
    EXPECT_EQ((-D("0.0")).to_string(), "0.0");
    EXPECT_FALSE((-D("0")).is_negative());
    EXPECT_EQ(D("-7.25").abs().to_string(), "7.25");
    EXPECT_EQ(D("7.25").abs().to_string(), "7.25");
}

// --- ceil_div ---------------------------------------------------------------------

std::string ceil_div(std::string_view a, std::string_view b) { return D(a).ceil_div(D(b)).to_string(); }

TEST(DecimalCeilDiv, ExactAndInexact)
{
    EXPECT_EQ(ceil_div("10", "2"), "5");
    EXPECT_EQ(ceil_div("11", "2"), "6");
    EXPECT_EQ(ceil_div("101", "100"), "2");
    EXPECT_EQ(ceil_div("100", "100"), "1");
    EXPECT_EQ(ceil_div("1", "3"), "1");
    EXPECT_EQ(ceil_div("0", "5"), "0");
    EXPECT_EQ(ceil_div("0.00", "5"), "0");
}

TEST(DecimalCeilDiv, DecimalOperands)
{
    EXPECT_EQ(ceil_div("10", "10.5"), "1");
    EXPECT_EQ(ceil_div("21", "10.5"), "2");
    EXPECT_EQ(ceil_div("21.0", "10.5"), "2");
    EXPECT_EQ(ceil_div("21.01", "10.5"), "3");
    EXPECT_EQ(ceil_div("0.3", "0.1"), "3");  // exactly 3: no binary floating point here
    EXPECT_EQ(ceil_div("2.5", "0.5"), "5");
    EXPECT_EQ(ceil_div("0.000001", "1000000"), "1");
    EXPECT_EQ(ceil_div("1e3", "0.001"), "1000000");
    EXPECT_EQ(D("11").ceil_div(D("2")).scale(), 0);
}

TEST(DecimalCeilDiv, NegativeDividendRoundsTowardPlusInfinity)
{
    EXPECT_EQ(ceil_div("-7", "2"), "-3");
    EXPECT_EQ(ceil_div("-6", "2"), "-3");
    EXPECT_EQ(ceil_div("-0.5", "1"), "0");  // not "-0"
    EXPECT_FALSE(D("-0.5").ceil_div(D("1")).is_negative());
}

TEST(DecimalCeilDiv, BigNumbers)
{
    EXPECT_EQ(ceil_div(k2pow256, k2pow128), k2pow128);
    // 2^256 / (2^128 + 1) = 2^128 - 1, remainder 1: the ceil is 2^128.
    EXPECT_EQ(ceil_div(k2pow256, "340282366920938463463374607431768211457"), k2pow128);
    EXPECT_EQ(ceil_div("1606938044258990275541962092341162602522202993782792835313721",
                       "1000000000000000000000000000007"),
              "1606938044258990275541962092330");
    EXPECT_EQ(ceil_div("369988485035126972924700782451696644186473100389722973815184405301748249",
                       "6366805760909027985741435139224002"),
              "58112105022393747904914796275992506640");
}

// Cases where the two-limb estimate of a quotient limb is still one too
// large, so that long division must add the divisor back (Knuth's step D6,
// which random operands almost never reach). Found by simulating the
// algorithm in Python; the expected quotients are Python's.
TEST(DecimalCeilDiv, CorrectsAnOverestimatedQuotientLimb)
{
    EXPECT_EQ(ceil_div("319011175418209100269712763774737997", "409314932999999999453244221"),
              "779378297");
    EXPECT_EQ(ceil_div("447557779082767556439096374881464161", "592882643394196212947826293"),
              "754884266");
    EXPECT_EQ(ceil_div("169322549131621871873551296057734238", "694878647999999999539274549"),
              "243672114");
}

// Random multi-limb divisions, checked by the defining property of ceil:
// (q - 1) * b < a <= q * b. Limbs near 0 and near 1e9 - 1 exercise the
// correction steps of long division.
TEST(DecimalCeilDiv, PropertyOverRandomOperands)
{
    std::mt19937_64 rng(20240611);
    const std::vector<std::string> special = {"000000000", "000000001", "999999999",
                                              "500000000", "499999999"};
    auto random_number = [&](int limbs) {
        std::string digits = std::to_string(1 + rng() % 999999999);
        for (int i = 1; i < limbs; ++i) {
            if (rng() % 2 == 0) {
                digits += special[rng() % special.size()];
            } else {
                std::string limb = std::to_string(rng() % 1000000000);
                digits += std::string(9 - limb.size(), '0') + limb;
            }
        }
        return D(digits);
    };
    const Decimal one = Decimal::from_int(1);
    for (int i = 0; i < 3000; ++i) {
        Decimal a = random_number(1 + int(rng() % 8));
        Decimal b = random_number(1 + int(rng() % 5));
        Decimal q = a.ceil_div(b);
        ASSERT_GE(q * b, a) << a.to_string() << " / " << b.to_string();
        ASSERT_LT((q - one) * b, a) << a.to_string() << " / " << b.to_string();
    }
}

TEST(DecimalCeilDiv, DivisorMustBePositive)
{
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1").ceil_div(D("0")));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1").ceil_div(D("0.000")));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1").ceil_div(D("-2")));
}

// --- shifted and rounded -------------------------------------------------------

TEST(DecimalShifted, MultipliesByPowersOfTen)
{
    EXPECT_EQ(D("1.50").shifted(2).to_string(), "150");
    EXPECT_EQ(D("7").shifted(3).to_string(), "7000");
    EXPECT_EQ(D("12.345").shifted(1).to_string(), "123.45");
    EXPECT_EQ(D("2.9").shifted(-2).to_string(), "0.029");
    EXPECT_EQ(D("-15").shifted(-2).to_string(), "-0.15");
    EXPECT_EQ(D("0.5").shifted(0).to_string(), "0.5");
    EXPECT_EQ(D("1").shifted(-20).to_string(), "0.00000000000000000001");
    EXPECT_EQ(D("3").shifted(27).to_string(), "3000000000000000000000000000");
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1").shifted(Decimal::kMaxScale + 1));
}

std::string rounded(std::string_view text, int exponent) { return D(text).rounded(exponent).to_string(); }

TEST(DecimalRounded, HalfAwayFromZero)
{
    EXPECT_EQ(rounded("2.5", 0), "3");
    EXPECT_EQ(rounded("-2.5", 0), "-3");
    EXPECT_EQ(rounded("2.4999", 0), "2");
    EXPECT_EQ(rounded("1.005", 2), "1.01");  // 1.005 is exact here, unlike a double
    EXPECT_EQ(rounded("-1.005", 2), "-1.01");
    EXPECT_EQ(rounded("1.004999", 2), "1.00");
    EXPECT_EQ(rounded("0.125", 2), "0.13");  // not banker's rounding
    EXPECT_EQ(rounded("0.135", 2), "0.14");
}

TEST(DecimalRounded, ResultHasExactlyTheExponentAsScale)
{
    EXPECT_EQ(rounded("7", 2), "7.00");
    EXPECT_EQ(rounded("7.1", 4), "7.1000");
    EXPECT_EQ(rounded("123.456", 3), "123.456");
    EXPECT_EQ(rounded("123.456", 0), "123");
    for (int exponent = 0; exponent <= 4; ++exponent)
        EXPECT_EQ(D("1.23456789").rounded(exponent).scale(), exponent);
}

TEST(DecimalRounded, CarriesAndZero)
{
    EXPECT_EQ(rounded("999.995", 2), "1000.00");
    EXPECT_EQ(rounded("999999999.5", 0), "1000000000");
    EXPECT_EQ(rounded("0.999999999999", 0), "1");
    EXPECT_EQ(rounded("0.1234567895", 9), "0.123456790");
    EXPECT_EQ(rounded("-0.004", 2), "0.00");  // never "-0.00"
    EXPECT_FALSE(D("-0.004").rounded(2).is_negative());
    EXPECT_EQ(rounded("0.005", 2), "0.01");
    EXPECT_EQ(rounded("0.0000000000000000000000000004", 0), "0");
    EXPECT_EQ(rounded("0.5000000000000000000000000000", 0), "1");
}

TEST(DecimalRounded, ExponentMustNotBeNegative)
{
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1").rounded(-1));
}

// --- binary form -----------------------------------------------------------------

std::string bytes_of(const Decimal& d)
{
    std::string out;
    d.append_to(out);
    return out;
}

TEST(DecimalBinary, RoundTrips)
{
    for (std::string_view text : {"0", "0.00", "42", "-42", "1.50", "-0.000000001", "1000000000",
                                  "123456789012345678901234567890.123456789012345678901234567890",
                                  "-1e-1000", "1e1000"}) {
        std::string bytes = bytes_of(D(text));
        std::string_view in = bytes;
        Decimal back = Decimal::read_from(in);
        EXPECT_TRUE(in.empty()) << text;
        EXPECT_EQ(back.to_string(), D(text).to_string()) << text;
        EXPECT_EQ(back.scale(), D(text).scale()) << text;
    }
    std::string big = bytes_of(D(k2pow256));
    std::string_view in = big;
    EXPECT_EQ(Decimal::read_from(in).to_string(), k2pow256);
}

TEST(DecimalBinary, IsCompact)
{
    EXPECT_EQ(bytes_of(D("42")).size(), 4u);  // sign, scale, count, one limb
    EXPECT_EQ(bytes_of(D("0")).size(), 3u);
    EXPECT_LE(bytes_of(D("123.45")).size(), 6u);
}

TEST(DecimalBinary, ConsumesOneValueOfASequence)
{
    std::string bytes;
    D("1.5").append_to(bytes);
    D("-7").append_to(bytes);
    D("0.001").append_to(bytes);
    std::string_view in = bytes;
    EXPECT_EQ(Decimal::read_from(in).to_string(), "1.5");
    EXPECT_EQ(Decimal::read_from(in).to_string(), "-7");
    EXPECT_EQ(Decimal::read_from(in).to_string(), "0.001");
    EXPECT_TRUE(in.empty());
}

TEST(DecimalBinary, EveryTruncationIsAnError)
{
    std::string bytes = bytes_of(D("-123456789012345678901234567890.5"));
    for (std::size_t n = 0; n < bytes.size(); ++n) {
        std::string_view in(bytes.data(), n);
        EXPECT_SQLSTATE(sqlstate::kInvalidParameter, Decimal::read_from(in)) << "prefix " << n;
    }
}

TEST(DecimalBinary, RejectsCorruptInput)
{
    auto read = [](std::string bytes) {
        std::string_view in = bytes;
        return Decimal::read_from(in);
    };
    using namespace std::string_literals;
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, read("\x02\x00\x01\x05"s));      // sign 2
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, read("\x00\x00\x02\x05\x00"s));  // leading zero limb
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, read("\x01\x00\x00"s));          // negative zero
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter,
                    read("\x00\x00\x01\x80\x94\xEB\xDC\x03"s));  // limb 1e9
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter,
                    read("\x00\x00\xFF\xFF\xFF\xFF\x0F\x01"s));  // count beyond the bytes left
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter,
                    read("\x00\xFF\xFF\xFF\xFF\x0F\x00"s));  // scale beyond kMaxScale
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter,
                    read("\x00\x80\x80\x80\x80\x80\x00"s));  // varint longer than 5 bytes
    EXPECT_EQ(read("\x00\x02\x01\x96\x01"s).to_string(), "1.50");  // 150, scale 2
}

// Found by test/fuzz/decimal (corpus/decimal/overlong_varint): a varint with
// a zero last byte after the first ("\x80\x00" for 0) was read, so one value
// had several binary forms, and a state kept bytes no writer makes.
TEST(DecimalBinary, RejectsOverlongVarints)
{
    auto read = [](std::string bytes) {
        std::string_view in = bytes;
        return Decimal::read_from(in);
    };
    using namespace std::string_literals;
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, read("\x80\x00\x00\x01\x01"s));  // sign
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, read("\x01\xB5\x00\x02\x01\x01"s));  // scale 53
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, read("\x00\x00\x81\x00\x05"s));  // count 1
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, read("\x00\x00\x01\x96\x81\x00"s));  // limb 150
    EXPECT_EQ(read("\x00\x00\x01\x80\x01"s).to_string(), "128");  // a zero low group is fine
}

}  // namespace

// --- divided_by_small and without_trailing_zeros (time-weighted integrals) ---

namespace {

std::string quotient(std::string_view text, std::uint32_t divisor, int scale, bool* exact = nullptr)
{
    return D(text).divided_by_small(divisor, scale, exact).to_string();
}

}  // namespace

TEST(DecimalDivideSmall, ExactQuotientsKeepTheAskedScale)
{
    bool exact = false;
    EXPECT_EQ(quotient("7", 4, 2, &exact), "1.75");
    EXPECT_TRUE(exact);
    EXPECT_EQ(quotient("12960.00000000", 36, 16, &exact), "360.0000000000000000");
    EXPECT_TRUE(exact);
    EXPECT_EQ(quotient("0", 36, 3, &exact), "0.000");
    EXPECT_TRUE(exact);
    EXPECT_EQ(quotient("-9", 3, 0, &exact), "-3");
    EXPECT_TRUE(exact);
    // 1e30 / 8 = 125e27: many limbs
    EXPECT_EQ(quotient("1000000000000000000000000000000", 8, 0, &exact),
              "125000000000000000000000000000");
    EXPECT_TRUE(exact);
}

TEST(DecimalDivideSmall, InexactQuotientsRoundHalfAwayFromZero)
{
    bool exact = true;
    EXPECT_EQ(quotient("2", 3, 4, &exact), "0.6667");
    EXPECT_FALSE(exact);
    EXPECT_EQ(quotient("-2", 3, 4, &exact), "-0.6667");
    EXPECT_EQ(quotient("1", 3, 4), "0.3333");
    EXPECT_EQ(quotient("1", 8, 2, &exact), "0.13");  // 0.125: the half goes away from zero
    EXPECT_FALSE(exact);
    EXPECT_EQ(quotient("-1", 8, 2), "-0.13");
    EXPECT_EQ(quotient("1", 36, 0), "0");
    EXPECT_EQ(quotient("-1", 36, 0), "0");  // no negative zero
    EXPECT_EQ(quotient("0.00000001", 36, 16), "0.0000000002777778");
    // 1 value-second in value-hours: 1e6 us / 1e8 / 36
    EXPECT_EQ(D("1000000").shifted(-8).divided_by_small(36, 16).to_string(), "0.0002777777777778");
}

TEST(DecimalDivideSmall, RejectsBadArguments)
{
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1").divided_by_small(0, 2));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1").divided_by_small(1000000000u, 2));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, D("1.25").divided_by_small(3, 1));  // below the scale
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter,
                    D("1").divided_by_small(3, Decimal::kMaxScale + 1));
}

TEST(DecimalWithoutTrailingZeros, DropsZerosDownToTheMinimumScale)
{
    EXPECT_EQ(D("1.500").without_trailing_zeros().to_string(), "1.5");
    EXPECT_EQ(D("2.000").without_trailing_zeros(1).to_string(), "2.0");
    EXPECT_EQ(D("2.000").without_trailing_zeros().to_string(), "2");
    EXPECT_EQ(D("0.000").without_trailing_zeros().to_string(), "0");
    EXPECT_EQ(D("-1.10").without_trailing_zeros().to_string(), "-1.1");
    EXPECT_EQ(D("100").without_trailing_zeros().to_string(), "100");
    EXPECT_EQ(D("1.25").without_trailing_zeros(5).to_string(), "1.25");  // never adds digits
    EXPECT_EQ(D("1000000000.000000000000000000").without_trailing_zeros().to_string(),
              "1000000000");
}
