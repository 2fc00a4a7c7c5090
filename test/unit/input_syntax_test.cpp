// Unit tests of src/core/input_syntax: which texts the bridge may hand to
// numeric_in and timestamptz_in. The cases at the edges were checked against
// PostgreSQL 15 (SELECT 'text'::numeric, 'text'::timestamptz).
#include <gtest/gtest.h>

#include <string>

#include "core/input_syntax.hpp"

namespace {

using metering::core::is_iso_timestamp_text;
using metering::core::is_numeric_text;

TEST(NumericText, DecimalNotation)
{
    for (const char* ok : {"0", "12", "-12", "+12", "1.5", "-.5", ".5", "5.", "007", "1e3", "1E-3",
                           "1.5e+10", "  42  ", "\t-1\n", "1e 5", "1e -5", "0.000"})
        EXPECT_TRUE(is_numeric_text(ok)) << ok;
    for (const char* bad : {"", " ", "abc", "1x", "1.2.3", ".", "-", "+-1", "--1", "1e", "1e+", "e5",
                            "1 2", "1 e5", "0x10", "1_000", "１", "1,5", "+.e1"})
        EXPECT_FALSE(is_numeric_text(bad)) << bad;
}

TEST(NumericText, SpecialValuesAsNumericInReadsThem)
{
    for (const char* ok : {"NaN", "nan", " NAN ", "Infinity", "-Infinity", "+infinity", "inf", "-INF",
                           "+inf"})
        EXPECT_TRUE(is_numeric_text(ok)) << ok;
    for (const char* bad : {"+NaN", "-nan", "nanx", "infin", "infinityy", "in"})
        EXPECT_FALSE(is_numeric_text(bad)) << bad;
}

TEST(NumericText, RangeOfNumeric)
{
    // at most 16,383 digits after the point
    EXPECT_TRUE(is_numeric_text("0." + std::string(16383, '1')));
    EXPECT_FALSE(is_numeric_text("0." + std::string(16384, '1')));
    EXPECT_FALSE(is_numeric_text("0." + std::string(16384, '0')));  // the scale counts, not the value
    EXPECT_TRUE(is_numeric_text("1e-16383"));
    EXPECT_FALSE(is_numeric_text("1e-16384"));
    EXPECT_FALSE(is_numeric_text("0e-16384"));
    EXPECT_TRUE(is_numeric_text("1.5e-16382"));
    EXPECT_FALSE(is_numeric_text("1.5e-16383"));
    // the leading digit at most at 10^131071
    EXPECT_TRUE(is_numeric_text("9e131071"));
    EXPECT_FALSE(is_numeric_text("1e131072"));
    EXPECT_TRUE(is_numeric_text("0.1e131072"));
    EXPECT_TRUE(is_numeric_text(std::string(131072, '9')));
    EXPECT_FALSE(is_numeric_text("1" + std::string(131072, '0')));
    EXPECT_TRUE(is_numeric_text(std::string(200000, '0') + "1"));  // leading zeros are dropped
    // zero has no magnitude; exponents from INT_MAX / 2 on are refused anyway
    EXPECT_TRUE(is_numeric_text("0e999999"));
    EXPECT_TRUE(is_numeric_text("0e1073741822"));
    EXPECT_FALSE(is_numeric_text("0e1073741823"));
    EXPECT_FALSE(is_numeric_text("0e-1073741823"));
    EXPECT_FALSE(is_numeric_text("1e99999999999999999999999"));
}

TEST(IsoTimestamp, FormsOfIso8601)
{
    for (const char* ok : {"2025-11-01", "2025-11-01T10:00:00Z", "2025-11-01t10:00:00z", "2025-11-01 10:00",
                           "2025-11-01T10:00Z", "2025-11-01T10:00:00.123456Z", "2025-11-01T10:00:00.123456789+00:00",
                           "2025-11-01 10:00:00+00", "2025-11-01 10:00:00-0530", "2025-11-01T10:00:00+05:30",
                           "1850-01-01 00:00:00+00:53:28", " 2025-11-01T10:00:00Z\n", "2025-11-01T10:00:00"})
        EXPECT_TRUE(is_iso_timestamp_text(ok)) << ok;
    for (const char* bad : {"", "now", "today", "next tuesday", "Nov 1 2025", "2025-11-01 10:00:00 UTC",
                            "2025-11-01T10:00:00 Europe/Paris", "20251101T100000Z", "25-11-01", "2025-1-1",
                            "2025/11/01", "2025-11-01T10", "2025-11-01T10:00:00.", "2025-11-01T10:00:00,5Z",
                            "2025-11-01T10:00:00+5", "2025-11-01T10:00:00+053000", "2025-11-01Z",
                            "2025-11-01T10:00:00 +00", "2025-11-01T10:00:00Z junk", "2025-11-01T10:00:00ZZ",
                            "+2025-11-01", "2025-11-01  10:00"})
        EXPECT_FALSE(is_iso_timestamp_text(bad)) << bad;
}

TEST(IsoTimestamp, CalendarAndClock)
{
    EXPECT_TRUE(is_iso_timestamp_text("2024-02-29"));
    EXPECT_TRUE(is_iso_timestamp_text("2000-02-29"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-02-29"));
    EXPECT_FALSE(is_iso_timestamp_text("1900-02-29"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-04-31"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-13-01"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-00-01"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-01-00"));
    EXPECT_FALSE(is_iso_timestamp_text("0000-01-01"));  // there is no year zero
    EXPECT_TRUE(is_iso_timestamp_text("0001-01-01T00:00:00-15:59"));
    EXPECT_TRUE(is_iso_timestamp_text("9999-12-31T23:59:59.999999999+15"));
    EXPECT_TRUE(is_iso_timestamp_text("2025-12-31T23:59:60Z"));  // a leap second: midnight
    EXPECT_TRUE(is_iso_timestamp_text("2025-12-31T10:00:60.5Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T23:59:60.5Z"));  // past 24:00:00
    EXPECT_TRUE(is_iso_timestamp_text("2025-12-31T24:00:00Z"));
    EXPECT_TRUE(is_iso_timestamp_text("2025-12-31T24:00:00.000Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T24:00:01Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T24:01Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T24:00:00.5Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T25:00Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T10:60Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T10:00:61Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T10:00+16"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T10:00+10:60"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-12-31T10:00+10:00:60"));
}

// Found by test/fuzz/input_syntax (corpus: offset_hours_then_blank): an offset of
// hours alone followed by blanks ("+15\t") was refused, though blanks may end the
// text and timestamptz_in takes it.
TEST(IsoTimestamp, AnOffsetOfHoursMayBeFollowedByBlanks)
{
    EXPECT_TRUE(is_iso_timestamp_text(" 2025-01-01T00:00+15\t"));
    EXPECT_TRUE(is_iso_timestamp_text("2025-01-01 10:00:00-05 "));
    EXPECT_FALSE(is_iso_timestamp_text("2025-01-01 10:00:00-05 30"));
}

TEST(IsoTimestamp, LengthIsBounded)
{
    EXPECT_TRUE(is_iso_timestamp_text("2025-11-01T10:00:00." + std::string(38, '1') + "Z"));
    EXPECT_FALSE(is_iso_timestamp_text("2025-11-01T10:00:00." + std::string(100, '1') + "Z"));
}

}  // namespace
