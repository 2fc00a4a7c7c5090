// Billing periods: civil-calendar arithmetic in the customer's LOCAL time.
// Pure C++ (no Postgres header); the bridge converts between UTC and local time.
//
// Period k of a subscription is the half-open range
//
//     [period_start(anchor, iv, k), period_start(anchor, iv, k + 1))
//
// where period_start(k) = anchor + k x iv is always computed from the ORIGINAL
// anchor (never by adding iv to the previous boundary), with the semantics of
// Postgres's `timestamp + interval` (timestamp_pl_interval) applied to k x iv:
//
//   1. add k x months to the year and month, then CLAMP the day of month to the
//      last day of the target month (Jan 31 + 1 mon = Feb 28, or Feb 29 in a
//      leap year; Jan 31 + 2 mons = Mar 31 again, because the clamp is applied
//      to the anchor's day each time, not carried over);
//   2. add k x days as whole calendar days (the wall-clock time is kept);
//   3. add k x usecs.
//
// Every k is an integer, negative before the anchor. An instant t belongs to
// exactly one period (the half-open rule): start(k) <= t < start(k + 1); an
// instant exactly on a boundary belongs to the period that starts there.
// Boundaries strictly increase with k, since every interval is positive.
//
// Time zones and DST (what the bridge does, and why local time is used here):
//   - The bridge converts the anchor to local time with
//     `anchor AT TIME ZONE tz` (timestamptz -> timestamp; always unambiguous)
//     and passes the `timestamp` value's internal int64 straight in as a
//     LocalTime. It converts every local boundary back to UTC on its own with
//     `boundary AT TIME ZONE tz` (timestamp -> timestamptz). Because the
//     arithmetic is done on wall-clock values, local midnight stays local
//     midnight across DST: a monthly period is [Mar 1 00:00, Apr 1 00:00) local
//     whatever the UTC offsets at either end (so it is 1 h shorter in UTC when
//     it contains a spring-forward transition).
//   - A local boundary that does not exist (in a spring-forward gap) or exists
//     twice (in a fall-back overlap) is resolved by Postgres's own rule
//     (DetermineTimeZoneOffset, used by `timestamp AT TIME ZONE zone`), as
//     documented in the PostgreSQL manual, Appendix B.2 "Handling of Invalid or
//     Ambiguous Timestamps"
//     (https://www.postgresql.org/docs/current/datetime-invalid-input.html):
//     a nonexistent time in a jump-forward gap is given the UTC offset that
//     prevailed just BEFORE the transition, and an ambiguous time in a
//     jump-back overlap is given the UTC offset that prevailed just AFTER the
//     transition ("the standard-time interpretation is preferred when in
//     doubt"). In America/New_York: 2018-03-11 02:30 (nonexistent) is read as
//     02:30 EST = 07:30 UTC, shown as 03:30 EDT; 2018-11-04 01:30 (twice) is
//     read as 01:30 EST = 06:30 UTC, the later of the two instants.
//     Consequences: a daily or monthly boundary at 02:30 local falls at 03:30
//     EDT on the spring-forward day (the next one is back at 02:30 EDT); a
//     daily boundary at 01:30 on the fall-back day falls at the second 01:30,
//     so the daily period ending there is 25 h long. No instant is lost or
//     billed twice: each UTC instant still falls in exactly one period.
//   - The UTC images of local boundaries are non-decreasing only when
//     consecutive boundaries are at least the zone's gap apart (a gap is 1 h
//     in most zones, a whole day at most in the tz database, e.g. Pacific/Apia
//     skipping 2011-12-30, whose daily period maps to an empty UTC range).
//     With a 30-minute interval the boundaries 02:30 (-> 07:30 UTC) and 03:00
//     EDT (-> 07:00 UTC) would invert. Therefore the bridge passes UTC
//     microseconds instead of local ones when the interval is fixed-length
//     (months == 0 and days == 0, see is_fixed_length): the arithmetic below
//     is the same on any epoch, and an hourly period is then always 1 h of
//     elapsed time, as in Postgres's `timestamptz + interval`, whose time part
//     is elapsed time. Calendar intervals (with months or days, with or
//     without a time part) are computed in local time; their boundaries are at
//     least a day apart.
//
// Range: a LocalTime must lie within Postgres's timestamp range, 4714-11-24 BC
// 00:00 to 294276-12-31 23:59:59.999999 (the infinities are refused). A result
// outside that range raises Error kInvalidParameter (22023).
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

#include "core/errors.hpp"

namespace metering::core {

// A wall-clock timestamp: microseconds since 2000-01-01 00:00:00 local time,
// i.e. the internal value of Postgres's `timestamp without time zone`.
struct LocalTime {
    std::int64_t usecs;
};

inline constexpr bool operator==(LocalTime a, LocalTime b) { return a.usecs == b.usecs; }
inline constexpr bool operator!=(LocalTime a, LocalTime b) { return a.usecs != b.usecs; }
inline constexpr bool operator<(LocalTime a, LocalTime b) { return a.usecs < b.usecs; }
inline constexpr bool operator<=(LocalTime a, LocalTime b) { return a.usecs <= b.usecs; }
inline constexpr bool operator>(LocalTime a, LocalTime b) { return a.usecs > b.usecs; }
inline constexpr bool operator>=(LocalTime a, LocalTime b) { return a.usecs >= b.usecs; }

inline constexpr std::int64_t kUsecsPerSecond = 1'000'000;
inline constexpr std::int64_t kUsecsPerMinute = 60 * kUsecsPerSecond;
inline constexpr std::int64_t kUsecsPerHour = 60 * kUsecsPerMinute;
inline constexpr std::int64_t kUsecsPerDay = 24 * kUsecsPerHour;

// Days from 1970-01-01 (the civil-date epoch below) to 2000-01-01 (Postgres's).
inline constexpr std::int64_t kPostgresEpochDays = 10957;

// Postgres's timestamp range (MIN_TIMESTAMP, END_TIMESTAMP): [kMinLocalTime, kEndLocalTime).
inline constexpr std::int64_t kMinLocalTime = -211'813'488'000'000'000;  // 4714-11-24 BC 00:00
inline constexpr std::int64_t kEndLocalTime = 9'223'371'331'200'000'000;  // 294277-01-01 00:00

// --- civil (proleptic Gregorian) calendar ----------------------------------
// Years are astronomical: 1 BC is year 0, 2 BC is year -1.

struct CivilDate {
    std::int64_t year;
    int month;  // 1..12
    int day;    // 1..31
};

inline constexpr bool operator==(const CivilDate& a, const CivilDate& b)
{
    return a.year == b.year && a.month == b.month && a.day == b.day;
}
inline constexpr bool operator!=(const CivilDate& a, const CivilDate& b) { return !(a == b); }

bool is_leap_year(std::int64_t year);
// 28..31; month must be 1..12.
int days_in_month(std::int64_t year, int month);
// Days since 1970-01-01 of a valid date (H. Hinnant's days_from_civil).
// Exact for |year| < 10^15.
std::int64_t days_from_civil(std::int64_t year, int month, int day);
std::int64_t days_from_civil(const CivilDate& date);
// The date of a day number since 1970-01-01 (H. Hinnant's civil_from_days).
CivilDate civil_from_days(std::int64_t days);

// A local wall-clock time from its fields; throws kInvalidParameter when a field
// is out of range (Feb 30, 24:00, ...) or the result is outside Postgres's range.
LocalTime make_local_time(std::int64_t year, int month, int day, int hour = 0, int minute = 0,
                          int second = 0, std::int64_t usec = 0);

// The fields of a LocalTime (any int64 value).
struct CivilDateTime {
    CivilDate date;
    int hour;
    int minute;
    int second;
    std::int64_t usec;  // 0..999999
};
CivilDateTime to_civil(LocalTime t);
// As Postgres prints a timestamp (DateStyle ISO): "2024-02-29 13:05:00",
// "2024-02-29 13:05:00.25" (trailing zeros of the fraction dropped),
// "4714-11-24 00:00:00 BC" for years <= 0.
std::string format_local_time(LocalTime t);

// --- billing intervals -------------------------------------------------------

// A billing interval, field for field Postgres's Interval (month, day, time).
struct BillingInterval {
    std::int32_t months = 0;
    std::int32_t days = 0;
    std::int64_t usecs = 0;
};

inline constexpr bool operator==(const BillingInterval& a, const BillingInterval& b)
{
    return a.months == b.months && a.days == b.days && a.usecs == b.usecs;
}

// The interval as Postgres prints it (IntervalStyle postgres): "1 mon 15 days",
// "1 year 2 mons", "01:00:00", "-1 days", "00:00:00" for zero.
std::string format_interval(const BillingInterval& iv);

// Throws kInvalidParameter (22023), naming the value, unless every component
// is >= 0 and at least one is > 0. field names the argument in the message.
void check_billing_interval(const BillingInterval& iv, const char* field = "billing_interval");

// True for an interval without months or days: its periods have a fixed
// length in elapsed time, and the bridge computes them on UTC microseconds
// (see the DST notes above).
bool is_fixed_length(const BillingInterval& iv);

// --- periods -----------------------------------------------------------------

// Start of period k: anchor + k x iv (see the rules above). Throws 22023 when iv
// is not positive, when anchor is outside the timestamp range, or when the
// result is (or k x iv overflows) outside it.
LocalTime period_start(LocalTime anchor, const BillingInterval& iv, std::int64_t k);

// The k with period_start(k) <= t < period_start(k + 1); negative before the
// anchor. O(log) in the error of an estimate from the interval's average
// length (a few period_start calls), whatever the distance from the anchor.
// Throws 22023 when iv is not positive, when anchor or t is outside the range,
// or when k (or k + 1) does not fit in an int64 (1-usec periods over millennia).
std::int64_t period_index(LocalTime anchor, const BillingInterval& iv, LocalTime t);

struct Period {
    std::int64_t index;  // k
    LocalTime start;     // inclusive
    LocalTime end;       // exclusive: the start of period k + 1
};

inline constexpr bool operator==(const Period& a, const Period& b)
{
    return a.index == b.index && a.start == b.start && a.end == b.end;
}

// Period k with its bounds.
Period period_at(LocalTime anchor, const BillingInterval& iv, std::int64_t k);

// At most this many periods are returned by periods_between unless told otherwise.
inline constexpr std::size_t kMaxPeriods = 100'000;

// Every period [start, end) that overlaps [from, to), i.e. start < to and
// end > from, in increasing order; empty when from == to. Throws 22023 when
// from > to, when there are more than max_periods (naming the count, before
// allocating anything), and for the reasons of period_start (the first period
// may start before the timestamp range when from is near its beginning).
std::vector<Period> periods_between(LocalTime anchor, const BillingInterval& iv, LocalTime from,
                                    LocalTime to, std::size_t max_periods = kMaxPeriods);

// The number of periods periods_between would return (no cap, no allocation).
std::uint64_t count_periods_between(LocalTime anchor, const BillingInterval& iv, LocalTime from,
                                    LocalTime to);

}  // namespace metering::core
