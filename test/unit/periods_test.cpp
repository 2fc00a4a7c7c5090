// Unit tests of src/core/periods: civil calendar, billing intervals and periods.
// Every expected date below was worked out by hand (the comments show how).
#include <gtest/gtest.h>

#include "error_assertions.hpp"

#include <cstdint>
#include <limits>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/errors.hpp"
#include "core/periods.hpp"

namespace {

using metering::core::BillingInterval;
using metering::core::CivilDate;
using metering::core::Error;
using metering::core::LocalTime;
using metering::core::Period;
namespace mc = metering::core;

constexpr std::int64_t kHour = mc::kUsecsPerHour;
constexpr std::int64_t kDay = mc::kUsecsPerDay;

using metering_test::contains;
using metering_test::error_of;

LocalTime at(std::int64_t y, int m, int d, int hh = 0, int mi = 0, int ss = 0, std::int64_t us = 0)
{
    return mc::make_local_time(y, m, d, hh, mi, ss, us);
}

LocalTime minus_usec(LocalTime t) { return LocalTime{t.usecs - 1}; }

std::string show(LocalTime t) { return mc::format_local_time(t); }

const BillingInterval kMonthly{1, 0, 0};
const BillingInterval kQuarterly{3, 0, 0};
const BillingInterval kYearly{12, 0, 0};
const BillingInterval kWeekly{0, 7, 0};
const BillingInterval kDaily{0, 1, 0};
const BillingInterval kMonthAndHalf{1, 15, 0};  // '1 month 15 days'
const BillingInterval kHourly{0, 0, kHour};
const BillingInterval kSecondly{0, 0, mc::kUsecsPerSecond};
const BillingInterval kMicro{0, 0, 1};

// period_start(anchor, iv, k) for k = first, first + 1, ... printed as text.
std::vector<std::string> starts(LocalTime anchor, const BillingInterval& iv, std::int64_t first,
                                std::int64_t count)
{
    std::vector<std::string> out;
    for (std::int64_t k = first; k < first + count; ++k)
        out.push_back(show(mc::period_start(anchor, iv, k)));
    return out;
}

// --- civil calendar ------------------------------------------------------------

TEST(Civil, KnownDayNumbers)
{
    EXPECT_EQ(mc::days_from_civil(1970, 1, 1), 0);
    EXPECT_EQ(mc::days_from_civil(1969, 12, 31), -1);
    EXPECT_EQ(mc::days_from_civil(2000, 1, 1), 10957);  // 30 x 365 + 7 leap days (1972..1996)
    EXPECT_EQ(mc::days_from_civil(2000, 1, 1), mc::kPostgresEpochDays);
    EXPECT_EQ(mc::days_from_civil(2000, 3, 1), 11017);      // + 31 (Jan) + 29 (Feb 2000)
    EXPECT_EQ(mc::days_from_civil(2000, 2, 29), 11016);
    EXPECT_EQ(mc::days_from_civil(1900, 1, 1), -25567);     // 70 x 365 + 17 (1904..1968)
    EXPECT_EQ(mc::days_from_civil(2024, 1, 1), 19723);      // 1704067200 s / 86400
    EXPECT_EQ(mc::days_from_civil(2024, 2, 29), 19782);     // + 31 + 28
    EXPECT_EQ(mc::days_from_civil(0, 3, 1), -719468);       // the algorithm's own origin
    EXPECT_EQ(mc::days_from_civil(2400, 1, 1) - mc::days_from_civil(2000, 1, 1), 146097);
    EXPECT_EQ(mc::days_from_civil(-400, 1, 1) - mc::days_from_civil(0, 1, 1), -146097);
}

TEST(Civil, KnownDates)
{
    EXPECT_EQ(mc::civil_from_days(0), (CivilDate{1970, 1, 1}));
    EXPECT_EQ(mc::civil_from_days(-1), (CivilDate{1969, 12, 31}));
    EXPECT_EQ(mc::civil_from_days(10957), (CivilDate{2000, 1, 1}));
    EXPECT_EQ(mc::civil_from_days(11016), (CivilDate{2000, 2, 29}));
    EXPECT_EQ(mc::civil_from_days(11017), (CivilDate{2000, 3, 1}));
    EXPECT_EQ(mc::civil_from_days(-25567), (CivilDate{1900, 1, 1}));
    EXPECT_EQ(mc::civil_from_days(19782), (CivilDate{2024, 2, 29}));
    EXPECT_EQ(mc::civil_from_days(-719468), (CivilDate{0, 3, 1}));
    EXPECT_EQ(mc::civil_from_days(-719469), (CivilDate{0, 2, 29}));  // 1 BC was a leap year
}

TEST(Civil, LeapYears)
{
    EXPECT_TRUE(mc::is_leap_year(2024));
    EXPECT_FALSE(mc::is_leap_year(2023));
    EXPECT_FALSE(mc::is_leap_year(1900));
    EXPECT_FALSE(mc::is_leap_year(2100));
    EXPECT_TRUE(mc::is_leap_year(2000));
    EXPECT_TRUE(mc::is_leap_year(2400));
    EXPECT_TRUE(mc::is_leap_year(0));
    EXPECT_TRUE(mc::is_leap_year(-4));
    EXPECT_FALSE(mc::is_leap_year(-100));
    EXPECT_FALSE(mc::is_leap_year(-1));
}

TEST(Civil, DaysInMonth)
{
    const int common[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    for (int m = 1; m <= 12; ++m) {
        EXPECT_EQ(mc::days_in_month(2023, m), common[m - 1]) << m;
        EXPECT_EQ(mc::days_in_month(2024, m), m == 2 ? 29 : common[m - 1]) << m;
    }
    EXPECT_EQ(mc::days_in_month(1900, 2), 28);
    EXPECT_EQ(mc::days_in_month(2000, 2), 29);
}

TEST(Civil, RoundTripsEveryDayFrom1900To2400)
{
    // Walk the calendar field by field and check both directions on each day.
    std::int64_t expected = mc::days_from_civil(1900, 1, 1);
    std::int64_t checked = 0;
    for (std::int64_t y = 1900; y <= 2400; ++y) {
        for (int m = 1; m <= 12; ++m) {
            for (int d = 1; d <= mc::days_in_month(y, m); ++d) {
                ASSERT_EQ(mc::days_from_civil(y, m, d), expected) << y << "-" << m << "-" << d;
                ASSERT_EQ(mc::civil_from_days(expected), (CivilDate{y, m, d})) << expected;
                ++expected;
                ++checked;
            }
        }
    }
    // 501 years: 501 x 365 days + 122 leap days (126 multiples of 4 from 1900 to
    // 2400, less 1900, 2100, 2200 and 2300).
    EXPECT_EQ(checked, 182865 + 122);
}

TEST(Civil, RoundTripsAcrossTheTimestampRange)
{
    const std::int64_t lo = mc::days_from_civil(-4713, 11, 24);
    const std::int64_t hi = mc::days_from_civil(294276, 12, 31);
    for (std::int64_t d = lo; d <= hi; d += 997) {
        const CivilDate c = mc::civil_from_days(d);
        ASSERT_EQ(mc::days_from_civil(c), d);
        ASSERT_GE(c.month, 1);
        ASSERT_LE(c.month, 12);
        ASSERT_GE(c.day, 1);
        ASSERT_LE(c.day, mc::days_in_month(c.year, c.month));
    }
}

TEST(LocalTimes, PostgresEpochAndRange)
{
    EXPECT_EQ(at(2000, 1, 1).usecs, 0);
    EXPECT_EQ(at(1999, 12, 31, 23, 59, 59, 999999).usecs, -1);
    // '2024-01-01'::timestamp is 757382400 s after 2000-01-01 (1704067200 - 946684800).
    EXPECT_EQ(at(2024, 1, 1).usecs, 757382400LL * 1000000);
    EXPECT_EQ(at(-4713, 11, 24).usecs, mc::kMinLocalTime);  // Julian day 0
    EXPECT_EQ(at(294276, 12, 31, 23, 59, 59, 999999).usecs, mc::kEndLocalTime - 1);
    EXPECT_SQLSTATE("22023", at(-4713, 11, 23, 23, 59, 59, 999999));
    EXPECT_SQLSTATE("22023", at(294277, 1, 1));
}

TEST(LocalTimes, InvalidFieldsAre22023)
{
    EXPECT_SQLSTATE("22023", at(2023, 2, 29));
    EXPECT_SQLSTATE("22023", at(2024, 2, 30));
    EXPECT_SQLSTATE("22023", at(2024, 13, 1));
    EXPECT_SQLSTATE("22023", at(2024, 0, 1));
    EXPECT_SQLSTATE("22023", at(2024, 1, 1, 24));
    EXPECT_SQLSTATE("22023", at(2024, 1, 1, 0, 60));
    EXPECT_SQLSTATE("22023", at(2024, 1, 1, 0, 0, 60));
    EXPECT_SQLSTATE("22023", at(2024, 1, 1, 0, 0, 0, 1000000));
    EXPECT_SQLSTATE("22023", at(std::numeric_limits<std::int64_t>::min(), 1, 1));
    EXPECT_SQLSTATE("22023", at(std::numeric_limits<std::int64_t>::max(), 1, 1));
    auto e = error_of([] { at(2023, 2, 29); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "2023-02-29"));
}

TEST(LocalTimes, FormatsAsPostgres)
{
    EXPECT_EQ(show(at(2024, 2, 29, 13, 5)), "2024-02-29 13:05:00");
    EXPECT_EQ(show(at(2024, 2, 29, 13, 5, 0, 250000)), "2024-02-29 13:05:00.25");
    EXPECT_EQ(show(at(2024, 2, 29, 13, 5, 0, 1)), "2024-02-29 13:05:00.000001");
    EXPECT_EQ(show(at(1999, 12, 31, 23, 59, 59, 999999)), "1999-12-31 23:59:59.999999");
    EXPECT_EQ(show(at(-4713, 11, 24)), "4714-11-24 00:00:00 BC");
    EXPECT_EQ(show(at(0, 12, 31)), "0001-12-31 00:00:00 BC");
    EXPECT_EQ(show(at(1, 1, 1)), "0001-01-01 00:00:00");
    const mc::CivilDateTime c = mc::to_civil(at(1969, 7, 20, 20, 17, 40, 5));
    EXPECT_EQ(c.date, (CivilDate{1969, 7, 20}));
    EXPECT_EQ(c.hour, 20);
    EXPECT_EQ(c.minute, 17);
    EXPECT_EQ(c.second, 40);
    EXPECT_EQ(c.usec, 5);
}

// Found by test/fuzz/aggregate_state_binary (corpus: time_weighted_period_near_int64_min):
// to_civil computed day x kUsecsPerDay, which overflows (UB) for values near INT64_MIN; a
// forged time_weighted state printed such a period start in a combine error.
TEST(LocalTimes, ToCivilTakesEveryInt64)
{
    struct Case {
        std::int64_t usecs;
        std::int64_t days;  // floor(usecs / 1 day), since 2000-01-01
        int hour, minute, second;
        std::int64_t usec;
    };
    for (const Case& k : {Case{INT64_MIN, -106751992, 19, 59, 5, 224192},
                          Case{INT64_MIN + 1, -106751992, 19, 59, 5, 224193},
                          Case{INT64_MAX, 106751991, 4, 0, 54, 775807}}) {
        const mc::CivilDateTime c = mc::to_civil(LocalTime{k.usecs});
        EXPECT_EQ(mc::days_from_civil(c.date) - mc::kPostgresEpochDays, k.days);
        EXPECT_EQ(c.hour, k.hour);
        EXPECT_EQ(c.minute, k.minute);
        EXPECT_EQ(c.second, k.second);
        EXPECT_EQ(c.usec, k.usec);
        EXPECT_FALSE(mc::format_local_time(LocalTime{k.usecs}).empty());
    }
}

// --- billing intervals -------------------------------------------------------

TEST(Interval, FormatsAsPostgres)
{
    EXPECT_EQ(mc::format_interval({1, 0, 0}), "1 mon");
    EXPECT_EQ(mc::format_interval({3, 0, 0}), "3 mons");
    EXPECT_EQ(mc::format_interval({12, 0, 0}), "1 year");
    EXPECT_EQ(mc::format_interval({14, 3, 0}), "1 year 2 mons 3 days");
    EXPECT_EQ(mc::format_interval({0, 7, 0}), "7 days");
    EXPECT_EQ(mc::format_interval({1, 15, 0}), "1 mon 15 days");
    EXPECT_EQ(mc::format_interval({0, 0, kHour}), "01:00:00");
    EXPECT_EQ(mc::format_interval({0, 0, 36 * kHour}), "36:00:00");
    EXPECT_EQ(mc::format_interval({0, 0, 1}), "00:00:00.000001");
    EXPECT_EQ(mc::format_interval({0, 0, 1500000}), "00:00:01.5");
    EXPECT_EQ(mc::format_interval({0, 1, 90 * mc::kUsecsPerSecond}), "1 day 00:01:30");
    EXPECT_EQ(mc::format_interval({0, 0, 0}), "00:00:00");
    EXPECT_EQ(mc::format_interval({-1, 0, 0}), "-1 mons");
    EXPECT_EQ(mc::format_interval({-13, 0, 0}), "-1 years -1 mons");
    EXPECT_EQ(mc::format_interval({0, -1, kHour}), "-1 days +01:00:00");
    EXPECT_EQ(mc::format_interval({1, -1, 0}), "1 mon -1 days");
    EXPECT_EQ(mc::format_interval({0, 0, -kHour}), "-01:00:00");
    EXPECT_EQ(mc::format_interval({0, 0, std::numeric_limits<std::int64_t>::min()}),
              "-2562047788:00:54.775808");
}

TEST(Interval, PositiveIntervalsAreAccepted)
{
    for (const BillingInterval& iv : {kMonthly, kQuarterly, kYearly, kWeekly, kDaily,
                                      kMonthAndHalf, kHourly, kMicro}) {
        EXPECT_NO_THROW(mc::check_billing_interval(iv)) << mc::format_interval(iv);
    }
}

TEST(Interval, ZeroIs22023NamingTheValue)
{
    EXPECT_SQLSTATE("22023", mc::check_billing_interval({0, 0, 0}));
    auto e = error_of([] { mc::check_billing_interval({0, 0, 0}); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "billing_interval \"00:00:00\""));
    EXPECT_TRUE(contains(e->message(), "must be a positive interval"));
    EXPECT_FALSE(e->hint().empty());
}

TEST(Interval, AnyNegativePartIs22023NamingTheValue)
{
    struct Case {
        BillingInterval iv;
        const char* text;
        const char* part;
    };
    const Case cases[] = {
        {{-1, 0, 0}, "\"-1 mons\"", "months"},
        {{0, -7, 0}, "\"-7 days\"", "days"},
        {{0, 0, -kHour}, "\"-01:00:00\"", "time"},
        {{1, -1, 0}, "\"1 mon -1 days\"", "days"},    // positive overall, still refused
        {{0, 1, -kHour}, "\"1 day -01:00:00\"", "time"},
    };
    for (const Case& c : cases) {
        auto e = error_of([&] { mc::check_billing_interval(c.iv, "plan interval"); });
        ASSERT_TRUE(e.has_value()) << c.text;
        EXPECT_STREQ(e->sqlstate(), "22023");
        EXPECT_TRUE(contains(e->message(), std::string("plan interval ") + c.text));
        EXPECT_TRUE(contains(e->detail(), c.part));
    }
}

TEST(Interval, EveryPeriodFunctionRefusesABadInterval)
{
    const LocalTime a = at(2024, 1, 1);
    const BillingInterval zero{0, 0, 0};
    const BillingInterval negative{-1, 0, 0};
    EXPECT_SQLSTATE("22023", mc::period_start(a, zero, 1));
    EXPECT_SQLSTATE("22023", mc::period_start(a, negative, 0));
    EXPECT_SQLSTATE("22023", mc::period_index(a, zero, a));
    EXPECT_SQLSTATE("22023", mc::period_at(a, negative, 0));
    EXPECT_SQLSTATE("22023", mc::periods_between(a, zero, a, at(2024, 2, 1)));
    EXPECT_SQLSTATE("22023", mc::count_periods_between(a, negative, a, at(2024, 2, 1)));
}

TEST(Interval, FixedLength)
{
    EXPECT_TRUE(mc::is_fixed_length(kHourly));
    EXPECT_TRUE(mc::is_fixed_length(kMicro));
    EXPECT_FALSE(mc::is_fixed_length(kDaily));
    EXPECT_FALSE(mc::is_fixed_length(kMonthly));
    EXPECT_FALSE(mc::is_fixed_length({0, 1, kHour}));
}

// --- period_start --------------------------------------------------------------

TEST(PeriodStart, MonthlyOnThe31stClampsAndComesBackEveryMonth)
{
    // 2023 is a common year, 2024 a leap year. Every start is computed from the
    // anchor: after Feb 28 comes Mar 31, not Mar 28; the time of day is kept.
    const LocalTime anchor = at(2023, 1, 31, 10, 0);
    const std::vector<std::string> expected = {
        "2023-01-31 10:00:00", "2023-02-28 10:00:00", "2023-03-31 10:00:00",
        "2023-04-30 10:00:00", "2023-05-31 10:00:00", "2023-06-30 10:00:00",
        "2023-07-31 10:00:00", "2023-08-31 10:00:00", "2023-09-30 10:00:00",
        "2023-10-31 10:00:00", "2023-11-30 10:00:00", "2023-12-31 10:00:00",
        "2024-01-31 10:00:00", "2024-02-29 10:00:00", "2024-03-31 10:00:00",
        "2024-04-30 10:00:00", "2024-05-31 10:00:00", "2024-06-30 10:00:00",
        "2024-07-31 10:00:00", "2024-08-31 10:00:00", "2024-09-30 10:00:00",
        "2024-10-31 10:00:00", "2024-11-30 10:00:00", "2024-12-31 10:00:00",
        "2025-01-31 10:00:00", "2025-02-28 10:00:00", "2025-03-31 10:00:00",
    };
    EXPECT_EQ(starts(anchor, kMonthly, 0, 27), expected);
}

TEST(PeriodStart, MonthlyBeforeTheAnchor)
{
    const LocalTime anchor = at(2023, 1, 31, 10, 0);
    EXPECT_EQ(show(mc::period_start(anchor, kMonthly, -1)), "2022-12-31 10:00:00");
    EXPECT_EQ(show(mc::period_start(anchor, kMonthly, -2)), "2022-11-30 10:00:00");
    EXPECT_EQ(show(mc::period_start(anchor, kMonthly, -11)), "2022-02-28 10:00:00");
    EXPECT_EQ(show(mc::period_start(anchor, kMonthly, -35)), "2020-02-29 10:00:00");
    EXPECT_EQ(show(mc::period_start(anchor, kMonthly, -36)), "2020-01-31 10:00:00");
}

TEST(PeriodStart, MonthlyOnThe30thAndThe29th)
{
    const LocalTime jan30 = at(2024, 1, 30);
    EXPECT_EQ(starts(jan30, kMonthly, 0, 4),
              (std::vector<std::string>{"2024-01-30 00:00:00", "2024-02-29 00:00:00",
                                        "2024-03-30 00:00:00", "2024-04-30 00:00:00"}));
    EXPECT_EQ(show(mc::period_start(jan30, kMonthly, 13)), "2025-02-28 00:00:00");
    EXPECT_EQ(show(mc::period_start(jan30, kMonthly, 14)), "2025-03-30 00:00:00");
    EXPECT_EQ(show(mc::period_start(jan30, kMonthly, 49)), "2028-02-29 00:00:00");

    // An anchor on Feb 29 keeps the 29th: Mar 29, not Mar 31.
    const LocalTime feb29 = at(2024, 2, 29, 8, 30);
    EXPECT_EQ(starts(feb29, kMonthly, 0, 3),
              (std::vector<std::string>{"2024-02-29 08:30:00", "2024-03-29 08:30:00",
                                        "2024-04-29 08:30:00"}));
    EXPECT_EQ(show(mc::period_start(feb29, kMonthly, 12)), "2025-02-28 08:30:00");
}

TEST(PeriodStart, YearlyFromFeb29)
{
    const LocalTime feb29 = at(2024, 2, 29);
    EXPECT_EQ(starts(feb29, kYearly, 0, 6),
              (std::vector<std::string>{"2024-02-29 00:00:00", "2025-02-28 00:00:00",
                                        "2026-02-28 00:00:00", "2027-02-28 00:00:00",
                                        "2028-02-29 00:00:00", "2029-02-28 00:00:00"}));
    EXPECT_EQ(show(mc::period_start(feb29, kYearly, -1)), "2023-02-28 00:00:00");
    EXPECT_EQ(show(mc::period_start(feb29, kYearly, -4)), "2020-02-29 00:00:00");
    EXPECT_EQ(show(mc::period_start(feb29, kYearly, 76)), "2100-02-28 00:00:00");  // 2100: common
    EXPECT_EQ(show(mc::period_start(feb29, kYearly, 376)), "2400-02-29 00:00:00");
}

TEST(PeriodStart, Yearly)
{
    const LocalTime anchor = at(2020, 6, 15, 14, 30);
    EXPECT_EQ(show(mc::period_start(anchor, kYearly, 10)), "2030-06-15 14:30:00");
    EXPECT_EQ(show(mc::period_start(anchor, kYearly, -20)), "2000-06-15 14:30:00");
    EXPECT_EQ(show(mc::period_start(anchor, kYearly, -2020)), "0001-06-15 14:30:00 BC");
}

TEST(PeriodStart, Quarterly)
{
    const LocalTime anchor = at(2023, 11, 30);
    EXPECT_EQ(starts(anchor, kQuarterly, 0, 6),
              (std::vector<std::string>{"2023-11-30 00:00:00", "2024-02-29 00:00:00",
                                        "2024-05-30 00:00:00", "2024-08-30 00:00:00",
                                        "2024-11-30 00:00:00", "2025-02-28 00:00:00"}));
    EXPECT_EQ(show(mc::period_start(anchor, kQuarterly, -1)), "2023-08-30 00:00:00");
}

TEST(PeriodStart, Weekly)
{
    const LocalTime anchor = at(2024, 1, 1);  // a Monday
    EXPECT_EQ(show(mc::period_start(anchor, kWeekly, 1)), "2024-01-08 00:00:00");
    EXPECT_EQ(show(mc::period_start(anchor, kWeekly, 9)), "2024-03-04 00:00:00");   // +63 d
    EXPECT_EQ(show(mc::period_start(anchor, kWeekly, 52)), "2024-12-30 00:00:00");  // +364 d
    EXPECT_EQ(show(mc::period_start(anchor, kWeekly, -1)), "2023-12-25 00:00:00");
}

TEST(PeriodStart, Daily)
{
    const LocalTime anchor = at(2024, 2, 28);
    EXPECT_EQ(starts(anchor, kDaily, 0, 3),
              (std::vector<std::string>{"2024-02-28 00:00:00", "2024-02-29 00:00:00",
                                        "2024-03-01 00:00:00"}));
    EXPECT_EQ(show(mc::period_start(anchor, kDaily, 366)), "2025-02-28 00:00:00");
    EXPECT_EQ(show(mc::period_start(anchor, kDaily, -59)), "2023-12-31 00:00:00");  // 28 + 31
}

TEST(PeriodStart, MonthAndFifteenDaysAddsMonthsThenDays)
{
    // k x '1 mon 15 days' = k months (clamped) then 15 k days, from the anchor.
    const LocalTime anchor = at(2024, 1, 31);
    EXPECT_EQ(show(mc::period_start(anchor, kMonthAndHalf, 1)), "2024-03-15 00:00:00");  // Feb 29 + 15
    EXPECT_EQ(show(mc::period_start(anchor, kMonthAndHalf, 2)), "2024-04-30 00:00:00");  // Mar 31 + 30
    EXPECT_EQ(show(mc::period_start(anchor, kMonthAndHalf, 3)), "2024-06-14 00:00:00");  // Apr 30 + 45
    EXPECT_EQ(show(mc::period_start(anchor, kMonthAndHalf, 4)), "2024-07-30 00:00:00");  // May 31 + 60
    EXPECT_EQ(show(mc::period_start(anchor, kMonthAndHalf, -1)), "2023-12-16 00:00:00");  // Dec 31 - 15
    // Not repeated addition, which agrees up to k = 3 (Mar 15, Apr 30, Jun 14) but
    // then gives Jun 14 + 1 mon + 15 days = Jul 29.
    LocalTime repeated = anchor;
    for (int k = 1; k <= 4; ++k)
        repeated = mc::period_start(repeated, kMonthAndHalf, 1);
    EXPECT_EQ(show(repeated), "2024-07-29 00:00:00");
}

TEST(PeriodStart, Hourly)
{
    const LocalTime anchor = at(2024, 3, 10, 0, 30);
    EXPECT_EQ(show(mc::period_start(anchor, kHourly, 1)), "2024-03-10 01:30:00");
    EXPECT_EQ(show(mc::period_start(anchor, kHourly, 2)), "2024-03-10 02:30:00");  // wall clock
    EXPECT_EQ(show(mc::period_start(anchor, kHourly, 24)), "2024-03-11 00:30:00");
    EXPECT_EQ(show(mc::period_start(anchor, kHourly, -1)), "2024-03-09 23:30:00");
    EXPECT_EQ(show(mc::period_start(anchor, kHourly, 24 * 366)), "2025-03-11 00:30:00");
}

TEST(PeriodStart, KeepsTheTimeOfDayThroughTheClamp)
{
    const LocalTime anchor = at(2024, 1, 31, 23, 59, 59, 999999);
    EXPECT_EQ(show(mc::period_start(anchor, kMonthly, 1)), "2024-02-29 23:59:59.999999");
    EXPECT_EQ(show(mc::period_start(at(1999, 12, 31, 12), kMonthly, 2)), "2000-02-29 12:00:00");
}

TEST(PeriodStart, KZeroIsTheAnchor)
{
    for (const BillingInterval& iv : {kMonthly, kWeekly, kMonthAndHalf, kMicro}) {
        const LocalTime anchor = at(2024, 1, 31, 7, 7, 7, 7);
        EXPECT_EQ(mc::period_start(anchor, iv, 0), anchor);
    }
}

TEST(PeriodStart, OutOfRangeIs22023)
{
    const LocalTime anchor = at(2024, 1, 31);
    constexpr std::int64_t kMax = std::numeric_limits<std::int64_t>::max();
    constexpr std::int64_t kMin = std::numeric_limits<std::int64_t>::min();
    for (const BillingInterval& iv : {kMonthly, kYearly, kDaily, kMonthAndHalf, kHourly, kMicro}) {
        EXPECT_SQLSTATE("22023", mc::period_start(anchor, iv, kMax)) << mc::format_interval(iv);
        EXPECT_SQLSTATE("22023", mc::period_start(anchor, iv, kMin)) << mc::format_interval(iv);
        EXPECT_SQLSTATE("22023", mc::period_start(anchor, iv, kMax - 1));
        EXPECT_SQLSTATE("22023", mc::period_start(anchor, iv, kMin + 1));
        EXPECT_SQLSTATE("22023", mc::period_start(anchor, iv, -(kMax / 3)));
    }
    // k x interval need not fit in an int32 or be small, only the result in range.
    EXPECT_EQ(mc::period_start(anchor, kMicro, kMax / 2).usecs, anchor.usecs + kMax / 2);
    EXPECT_SQLSTATE("22023", mc::period_start(anchor, kHourly, kMax / 2));
    // Just inside and just outside: 294276-12-31 is the last valid day.
    EXPECT_EQ(show(mc::period_start(anchor, kYearly, 292252)), "294276-01-31 00:00:00");
    EXPECT_SQLSTATE("22023", mc::period_start(anchor, kYearly, 292253));
    EXPECT_EQ(show(mc::period_start(anchor, kYearly, -6736)), "4713-01-31 00:00:00 BC");
    EXPECT_SQLSTATE("22023", mc::period_start(anchor, kYearly, -6737));  // 4714-01-31 BC
    auto e = error_of([&] { mc::period_start(anchor, kMonthly, 4000000); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "billing period 4000000"));
    EXPECT_TRUE(contains(e->message(), "\"1 mon\""));
    EXPECT_TRUE(contains(e->message(), "2024-01-31 00:00:00"));
}

TEST(PeriodStart, NonFiniteAnchorIs22023)
{
    const LocalTime inf{std::numeric_limits<std::int64_t>::max()};
    const LocalTime minus_inf{std::numeric_limits<std::int64_t>::min()};
    EXPECT_SQLSTATE("22023", mc::period_start(inf, kMonthly, 0));
    EXPECT_SQLSTATE("22023", mc::period_start(minus_inf, kMonthly, 0));
    EXPECT_SQLSTATE("22023", mc::period_start(LocalTime{mc::kEndLocalTime}, kMonthly, 0));
    auto e = error_of([&] { mc::period_start(inf, kMonthly, 0); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "billing_anchor infinity is not a finite timestamp"));
}

// --- period_index --------------------------------------------------------------

TEST(PeriodIndex, OnTheAnchorAndOnBoundariesIsHalfOpen)
{
    const LocalTime anchor = at(2024, 1, 31);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, anchor), 0);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, at(2024, 2, 29)), 1);  // a boundary starts k
    EXPECT_EQ(mc::period_index(anchor, kMonthly, minus_usec(at(2024, 2, 29))), 0);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, at(2024, 3, 31)), 2);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, at(2024, 3, 30, 23, 59, 59, 999999)), 1);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, at(2024, 3, 15, 12)), 1);
}

TEST(PeriodIndex, BeforeTheAnchorIsNegative)
{
    const LocalTime anchor = at(2024, 1, 31);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, minus_usec(anchor)), -1);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, at(2023, 12, 31)), -1);  // start of -1
    EXPECT_EQ(mc::period_index(anchor, kMonthly, minus_usec(at(2023, 12, 31))), -2);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, at(2023, 11, 30)), -2);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, at(2023, 2, 28)), -11);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, at(2023, 2, 27)), -12);  // Jan 31 2023
    EXPECT_EQ(mc::period_index(anchor, kWeekly, at(2024, 1, 24)), -1);
    EXPECT_EQ(mc::period_index(anchor, kWeekly, at(2024, 1, 23, 23)), -2);
}

TEST(PeriodIndex, LastMicrosecondOfEachPeriod)
{
    struct Case {
        LocalTime anchor;
        BillingInterval iv;
    };
    const Case cases[] = {
        {at(2023, 1, 31, 10), kMonthly},  {at(2024, 2, 29), kYearly},
        {at(2023, 11, 30), kQuarterly},   {at(2024, 1, 1), kWeekly},
        {at(2024, 2, 28), kDaily},        {at(2024, 1, 31), kMonthAndHalf},
        {at(2024, 3, 10, 0, 30), kHourly}, {at(1999, 12, 31, 23), {0, 1, kHour}},
    };
    for (const Case& c : cases) {
        for (std::int64_t k = -40; k <= 40; ++k) {
            const LocalTime start = mc::period_start(c.anchor, c.iv, k);
            const LocalTime next = mc::period_start(c.anchor, c.iv, k + 1);
            ASSERT_LT(start, next) << k;
            ASSERT_EQ(mc::period_index(c.anchor, c.iv, start), k) << show(start);
            ASSERT_EQ(mc::period_index(c.anchor, c.iv, minus_usec(next)), k) << show(next);
            ASSERT_EQ(mc::period_index(c.anchor, c.iv, next), k + 1) << show(next);
        }
    }
}

TEST(PeriodIndex, FarFutureIsDirect)
{
    // 2024-01-01 .. 2124-01-01 is 36524 days: 100 x 365 + 24 leap days (2024..2120
    // by 4 is 25, but 2100 is not a leap year).
    const LocalTime anchor = at(2024, 1, 1);
    const LocalTime t = at(2124, 1, 1);
    ASSERT_EQ(mc::days_from_civil(2124, 1, 1) - mc::days_from_civil(2024, 1, 1), 36524);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, t), 1200);
    EXPECT_EQ(mc::period_index(anchor, kMonthly, minus_usec(t)), 1199);
    EXPECT_EQ(mc::period_index(anchor, kDaily, t), 36524);
    EXPECT_EQ(mc::period_index(anchor, kWeekly, t), 5217);  // 36524 = 7 x 5217 + 5
    EXPECT_EQ(mc::period_index(anchor, kSecondly, t), 36524LL * 86400);
    EXPECT_EQ(mc::period_index(anchor, kSecondly, minus_usec(t)), 36524LL * 86400 - 1);
    // 3.2 x 10^15 periods of 1 usec: a loop from k = 0 could never finish.
    EXPECT_EQ(mc::period_index(anchor, kMicro, t), 36524LL * kDay);
    EXPECT_EQ(mc::period_index(anchor, kMicro, minus_usec(t)), 36524LL * kDay - 1);
    // An anchor on the 31st, 100 years on: Jan 31 2124 starts period 1200.
    const LocalTime jan31 = at(2024, 1, 31);
    EXPECT_EQ(mc::period_index(jan31, kMonthly, at(2124, 1, 31)), 1200);
    EXPECT_EQ(mc::period_index(jan31, kMonthly, minus_usec(at(2124, 1, 31))), 1199);
    EXPECT_EQ(mc::period_index(jan31, kMonthly, at(2124, 2, 29)), 1201);  // 2124 is leap
}

TEST(PeriodIndex, FarPastIsDirect)
{
    // 1924-01-01 .. 2024-01-01 is 36525 days (1924..2020 by 4: 25 leap years, 2000 one).
    const LocalTime anchor = at(2024, 1, 1);
    EXPECT_EQ(mc::period_index(anchor, kHourly, at(1924, 1, 1)), -36525LL * 24);
    EXPECT_EQ(mc::period_index(anchor, kHourly, minus_usec(at(1924, 1, 1))), -36525LL * 24 - 1);
    EXPECT_EQ(mc::period_index(anchor, kMicro, at(1924, 1, 1)), -36525LL * kDay);
    EXPECT_EQ(mc::period_index(anchor, kYearly, at(1924, 1, 1)), -100);
    EXPECT_EQ(mc::period_index(anchor, kYearly, minus_usec(at(1924, 1, 1))), -101);
}

TEST(PeriodIndex, AgreesWithPeriodStartOverMillennia)
{
    // Irregular intervals, where the estimate from the mean length is furthest off.
    const BillingInterval intervals[] = {kMonthly, {1, 0, 1}, kMonthAndHalf, {5, 3, 7 * kHour},
                                         kYearly, {0, 0, 7 * kHour + 13}};
    const LocalTime anchor = at(2024, 1, 31, 5);
    for (const BillingInterval& iv : intervals) {
        for (std::int64_t y = -4000; y <= 200000; y += 3917) {
            const LocalTime t = at(y, 3, 1, 2, 3, 4, 5);
            const std::int64_t k = mc::period_index(anchor, iv, t);
            ASSERT_LE(mc::period_start(anchor, iv, k), t) << mc::format_interval(iv) << " " << y;
            ASSERT_GT(mc::period_start(anchor, iv, k + 1), t) << mc::format_interval(iv) << " " << y;
        }
    }
}

TEST(PeriodIndex, EdgesOfTheTimestampRange)
{
    const LocalTime anchor = at(2024, 1, 31);
    const LocalTime first{mc::kMinLocalTime};
    const LocalTime last{mc::kEndLocalTime - 1};
    for (const BillingInterval& iv : {kMonthly, kYearly, kDaily, kHourly, kSecondly}) {
        const std::int64_t k_first = mc::period_index(anchor, iv, first);
        const std::int64_t k_last = mc::period_index(anchor, iv, last);
        // The first period may start before the range (its start is then 22023).
        EXPECT_GT(mc::period_start(anchor, iv, k_first + 1), first);
        if (auto e = error_of([&] { mc::period_start(anchor, iv, k_first); }))
            EXPECT_STREQ(e->sqlstate(), "22023");
        else
            EXPECT_LE(mc::period_start(anchor, iv, k_first), first);
        EXPECT_LE(mc::period_start(anchor, iv, k_last), last);
        // The period after the last one starts beyond the range.
        EXPECT_SQLSTATE("22023", mc::period_start(anchor, iv, k_last + 1));
    }
    // 1-usec periods from the first instant to the last: k would not fit in 63 bits.
    EXPECT_SQLSTATE("22023", mc::period_index(first, kMicro, last));
    EXPECT_SQLSTATE("22023", mc::period_index(last, kMicro, first));
    EXPECT_SQLSTATE("22023", mc::period_index(anchor, kMonthly,
                                              LocalTime{std::numeric_limits<std::int64_t>::max()}));
    EXPECT_SQLSTATE("22023", mc::period_index(anchor, kMonthly, LocalTime{mc::kMinLocalTime - 1}));
}

TEST(PeriodAt, BoundsAreConsecutiveStarts)
{
    const LocalTime anchor = at(2024, 1, 31);
    EXPECT_EQ(mc::period_at(anchor, kMonthly, 1),
              (Period{1, at(2024, 2, 29), at(2024, 3, 31)}));
    EXPECT_EQ(mc::period_at(anchor, kMonthly, -1),
              (Period{-1, at(2023, 12, 31), anchor}));
    EXPECT_SQLSTATE("22023", mc::period_at(anchor, kMicro, std::numeric_limits<std::int64_t>::max()));
}

// --- periods_between -----------------------------------------------------------

TEST(PeriodsBetween, PartialOverlapsAtBothEnds)
{
    const LocalTime anchor = at(2024, 1, 31);
    const std::vector<Period> got =
        mc::periods_between(anchor, kMonthly, at(2024, 2, 15), at(2024, 4, 10));
    const std::vector<Period> expected = {
        {0, at(2024, 1, 31), at(2024, 2, 29)},
        {1, at(2024, 2, 29), at(2024, 3, 31)},
        {2, at(2024, 3, 31), at(2024, 4, 30)},
    };
    EXPECT_EQ(got, expected);
    EXPECT_EQ(mc::count_periods_between(anchor, kMonthly, at(2024, 2, 15), at(2024, 4, 10)), 3u);
}

TEST(PeriodsBetween, BoundsOnBoundariesAreHalfOpen)
{
    const LocalTime anchor = at(2024, 1, 31);
    // [Feb 29, Mar 31) is exactly period 1: period 0 ends at from, period 2 starts at to.
    EXPECT_EQ(mc::periods_between(anchor, kMonthly, at(2024, 2, 29), at(2024, 3, 31)),
              (std::vector<Period>{{1, at(2024, 2, 29), at(2024, 3, 31)}}));
    // One microsecond more on either side reaches the neighbour.
    EXPECT_EQ(mc::periods_between(anchor, kMonthly, at(2024, 2, 29),
                                  LocalTime{at(2024, 3, 31).usecs + 1})
                  .size(),
              2u);
    EXPECT_EQ(mc::periods_between(anchor, kMonthly, minus_usec(at(2024, 2, 29)), at(2024, 3, 31))
                  .front()
                  .index,
              0);
    // A one-microsecond range lies in one period.
    const LocalTime t = at(2024, 3, 30, 23, 59, 59, 999999);
    EXPECT_EQ(mc::periods_between(anchor, kMonthly, t, LocalTime{t.usecs + 1}),
              (std::vector<Period>{{1, at(2024, 2, 29), at(2024, 3, 31)}}));
}

TEST(PeriodsBetween, EmptyRangeGivesNothing)
{
    const LocalTime anchor = at(2024, 1, 31);
    EXPECT_TRUE(mc::periods_between(anchor, kMonthly, at(2024, 3, 1), at(2024, 3, 1)).empty());
    EXPECT_TRUE(mc::periods_between(anchor, kMonthly, at(2024, 2, 29), at(2024, 2, 29)).empty());
    EXPECT_EQ(mc::count_periods_between(anchor, kMonthly, at(2024, 3, 1), at(2024, 3, 1)), 0u);
}

TEST(PeriodsBetween, FromAfterToIs22023)
{
    const LocalTime anchor = at(2024, 1, 31);
    EXPECT_SQLSTATE("22023", mc::periods_between(anchor, kMonthly, at(2024, 3, 2), at(2024, 3, 1)));
    EXPECT_SQLSTATE("22023", mc::count_periods_between(anchor, kMonthly, LocalTime{1}, LocalTime{0}));
    auto e = error_of([&] { mc::periods_between(anchor, kMonthly, at(2024, 3, 2), at(2024, 3, 1)); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "from_ts 2024-03-02 00:00:00 is after to_ts 2024-03-01 00:00:00"));
}

TEST(PeriodsBetween, BeforeTheAnchorAndAcrossIt)
{
    const LocalTime anchor = at(2024, 1, 31);
    const std::vector<Period> got =
        mc::periods_between(anchor, kMonthly, at(2023, 11, 1), at(2024, 2, 1));
    const std::vector<Period> expected = {
        {-3, at(2023, 10, 31), at(2023, 11, 30)},
        {-2, at(2023, 11, 30), at(2023, 12, 31)},
        {-1, at(2023, 12, 31), at(2024, 1, 31)},
        {0, at(2024, 1, 31), at(2024, 2, 29)},
    };
    EXPECT_EQ(got, expected);
}

TEST(PeriodsBetween, AYearOfMonthlyPeriodsIsContiguous)
{
    const LocalTime anchor = at(2023, 1, 31, 10);
    const std::vector<Period> got =
        mc::periods_between(anchor, kMonthly, at(2023, 1, 1), at(2025, 1, 1));
    // Periods -1 (from Dec 31 2022) to 23 (from Dec 31 2024).
    ASSERT_EQ(got.size(), 25u);
    EXPECT_EQ(got.front().index, -1);
    EXPECT_EQ(got.front().start, at(2022, 12, 31, 10));
    EXPECT_EQ(got.back().index, 23);
    EXPECT_EQ(got.back().end, at(2025, 1, 31, 10));
    for (std::size_t i = 0; i < got.size(); ++i) {
        EXPECT_EQ(got[i], mc::period_at(anchor, kMonthly, got[i].index));
        if (i > 0) {
            EXPECT_EQ(got[i].index, got[i - 1].index + 1);
            EXPECT_EQ(got[i].start, got[i - 1].end);
        }
    }
    EXPECT_EQ(got[2].start, at(2023, 2, 28, 10));
    EXPECT_EQ(got[14].start, at(2024, 2, 29, 10));
}

TEST(PeriodsBetween, CapOfOneSecondPeriodsOverTenYears)
{
    // 2024-01-01 .. 2034-01-01: 3653 days (leap years 2024, 2028, 2032) = 315619200 s.
    const LocalTime anchor = at(2024, 1, 1);
    EXPECT_EQ(mc::count_periods_between(anchor, kSecondly, anchor, at(2034, 1, 1)), 315619200u);
    auto e = error_of([&] { mc::periods_between(anchor, kSecondly, anchor, at(2034, 1, 1)); });
    ASSERT_TRUE(e.has_value());
    EXPECT_STREQ(e->sqlstate(), "22023");
    EXPECT_TRUE(contains(e->message(), "315619200 billing periods"));
    EXPECT_TRUE(contains(e->message(), "\"00:00:01\""));
    EXPECT_TRUE(contains(e->message(), "100000"));
    EXPECT_FALSE(e->hint().empty());
    // The whole timestamp range in 1-usec periods is refused as quickly.
    EXPECT_SQLSTATE("22023", mc::periods_between(anchor, kMicro, at(-4000, 1, 1), at(200000, 1, 1)));
}

TEST(PeriodsBetween, CapIsInclusive)
{
    const LocalTime anchor = at(2024, 1, 1);
    const LocalTime end = LocalTime{anchor.usecs + 100000 * kHour};  // exactly 100000 periods
    const std::vector<Period> all = mc::periods_between(anchor, kHourly, anchor, end);
    ASSERT_EQ(all.size(), mc::kMaxPeriods);
    EXPECT_EQ(all.back().index, 99999);
    EXPECT_EQ(all.back().end, end);
    EXPECT_SQLSTATE("22023", mc::periods_between(anchor, kHourly, anchor, LocalTime{end.usecs + 1}));
    // A caller's own cap.
    EXPECT_EQ(mc::periods_between(anchor, kDaily, anchor, at(2024, 1, 6), 5).size(), 5u);
    EXPECT_SQLSTATE("22023", mc::periods_between(anchor, kDaily, anchor, at(2024, 1, 7), 5));
}

TEST(PeriodsBetween, NonFiniteBoundsAre22023)
{
    const LocalTime anchor = at(2024, 1, 1);
    const LocalTime inf{std::numeric_limits<std::int64_t>::max()};
    const LocalTime minus_inf{std::numeric_limits<std::int64_t>::min()};
    EXPECT_SQLSTATE("22023", mc::periods_between(anchor, kMonthly, anchor, inf));
    EXPECT_SQLSTATE("22023", mc::periods_between(anchor, kMonthly, minus_inf, anchor));
    auto e = error_of([&] { mc::periods_between(anchor, kMonthly, minus_inf, anchor); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "from_ts -infinity"));
}

}  // namespace
