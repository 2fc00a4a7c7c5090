#include "core/periods.hpp"

#include <algorithm>
#include <limits>
#include <optional>
#include <string>

namespace metering::core {

namespace {

constexpr std::int64_t kInt64Max = std::numeric_limits<std::int64_t>::max();
constexpr std::int64_t kInt64Min = std::numeric_limits<std::int64_t>::min();

// Years beyond which no date can be a valid timestamp (with a wide margin);
// bounds the month arithmetic before any day number is computed.
constexpr std::int64_t kMinYearMargin = -10'000;
constexpr std::int64_t kMaxYearMargin = 300'000;

// Mean Gregorian month: 146097 days / 4800 months = 30.436875 days = 2629746 s.
constexpr std::int64_t kUsecsPerMeanMonth = 2'629'746 * kUsecsPerSecond;

// Floor division and its remainder in [0, d), for d > 0.
constexpr std::int64_t floor_div(std::int64_t n, std::int64_t d)
{
    std::int64_t q = n / d;
    return (n % d < 0) ? q - 1 : q;
}

// For d > 0; without the product floor_div(n, d) * d, which overflows for n
// near INT64_MIN.
constexpr std::int64_t floor_mod(std::int64_t n, std::int64_t d)
{
    const std::int64_t r = n % d;
    return r < 0 ? r + d : r;
}

bool in_range(std::int64_t usecs) { return usecs >= kMinLocalTime && usecs < kEndLocalTime; }

std::string pad(std::int64_t value, int width)
{
    const std::uint64_t magnitude =
        value < 0 ? 0 - static_cast<std::uint64_t>(value) : static_cast<std::uint64_t>(value);
    std::string digits = std::to_string(magnitude);
    if (static_cast<int>(digits.size()) < width)
        digits.insert(0, static_cast<std::size_t>(width) - digits.size(), '0');
    return value < 0 ? "-" + digits : digits;
}

std::string quote(const std::string& text) { return "\"" + text + "\""; }

// A local time for a message: its fields, or the raw value when it is infinite
// or out of range.
std::string describe(LocalTime t)
{
    if (t.usecs == kInt64Min)
        return "-infinity";
    if (t.usecs == kInt64Max)
        return "infinity";
    if (!in_range(t.usecs))
        return std::to_string(t.usecs) + " microseconds";
    return format_local_time(t);
}

void check_local_time(const char* field, LocalTime t)
{
    if (t.usecs == kInt64Min || t.usecs == kInt64Max)
        throw Error(sqlstate::kInvalidParameter,
                    std::string(field) + " " + describe(t) + " is not a finite timestamp", {},
                    "Billing periods need finite bounds.");
    if (!in_range(t.usecs))
        throw Error(sqlstate::kInvalidParameter,
                    std::string(field) + " (" + describe(t) + ") is outside the timestamp range");
}

[[noreturn]] void throw_out_of_range(LocalTime anchor, const BillingInterval& iv, std::int64_t k)
{
    throw Error(sqlstate::kInvalidParameter,
                "billing period " + std::to_string(k) + " of the anchor " + describe(anchor) +
                    " with interval " + quote(format_interval(iv)) +
                    " is outside the timestamp range",
                "Timestamps run from 4714-11-24 BC to 294276-12-31 AD.");
}

// anchor + k x iv, or nullopt when it (or an intermediate product) leaves the
// timestamp range. anchor and iv are valid. The result is monotone in k: for
// k > 0 nullopt means "after the range", for k < 0 "before the range".
std::optional<std::int64_t> try_period_start(std::int64_t anchor, const BillingInterval& iv,
                                             std::int64_t k)
{
    std::int64_t day = floor_div(anchor, kUsecsPerDay);
    const std::int64_t time_of_day = anchor - day * kUsecsPerDay;

    if (iv.months != 0 && k != 0) {
        const CivilDate date = civil_from_days(day + kPostgresEpochDays);
        std::int64_t add_months = 0;
        std::int64_t month_index = 0;  // months since 0000-01
        if (__builtin_mul_overflow(k, static_cast<std::int64_t>(iv.months), &add_months) ||
            __builtin_add_overflow(date.year * 12 + (date.month - 1), add_months, &month_index))
            return std::nullopt;
        const std::int64_t year = floor_div(month_index, 12);
        if (year < kMinYearMargin || year > kMaxYearMargin)
            return std::nullopt;
        const int month = static_cast<int>(floor_mod(month_index, 12)) + 1;
        const int mday = std::min(date.day, days_in_month(year, month));  // the clamp
        day = days_from_civil(year, month, mday) - kPostgresEpochDays;
    }

    std::int64_t add_days = 0;
    if (__builtin_mul_overflow(k, static_cast<std::int64_t>(iv.days), &add_days) ||
        __builtin_add_overflow(day, add_days, &day))
        return std::nullopt;

    std::int64_t result = 0;
    std::int64_t add_usecs = 0;
    if (__builtin_mul_overflow(day, kUsecsPerDay, &result) ||
        __builtin_add_overflow(result, time_of_day, &result) ||
        __builtin_mul_overflow(k, iv.usecs, &add_usecs) ||
        __builtin_add_overflow(result, add_usecs, &result) || !in_range(result))
        return std::nullopt;
    return result;
}

[[noreturn]] void throw_index_overflow(std::int64_t anchor, const BillingInterval& iv,
                                      std::int64_t t)
{
    throw Error(sqlstate::kInvalidParameter,
                "timestamp " + describe(LocalTime{t}) + " is too many billing periods of " +
                    quote(format_interval(iv)) + " away from the anchor " +
                    describe(LocalTime{anchor}) + " for a 64-bit period number");
}

// period_start(k) <= t, with out-of-range starts placed beyond the range's
// end on their side.
bool starts_at_or_before(std::int64_t anchor, const BillingInterval& iv, std::int64_t k,
                         std::int64_t t)
{
    if (auto start = try_period_start(anchor, iv, k))
        return *start <= t;
    return k < 0;
}

// a + b, saturated to the int64 range.
std::int64_t saturating_add(std::int64_t a, std::int64_t b)
{
    std::int64_t sum = 0;
    if (__builtin_add_overflow(a, b, &sum))
        return b > 0 ? kInt64Max : kInt64Min;
    return sum;
}

// k from the interval's mean length: floor((t - anchor) / mean), clamped.
std::int64_t estimate_index(std::int64_t anchor, const BillingInterval& iv, std::int64_t t)
{
    __extension__ typedef __int128 Int128;
    const Int128 mean = static_cast<Int128>(iv.months) * kUsecsPerMeanMonth +
                        static_cast<Int128>(iv.days) * kUsecsPerDay + iv.usecs;  // > 0
    const Int128 diff = static_cast<Int128>(t) - anchor;
    Int128 q = diff / mean;
    if (diff % mean < 0)
        --q;
    if (q > kInt64Max)
        return kInt64Max;
    if (q < kInt64Min)
        return kInt64Min;
    return static_cast<std::int64_t>(q);
}

std::int64_t find_index(std::int64_t anchor, const BillingInterval& iv, std::int64_t t)
{
    // Gallop from the estimate until [lo, hi) brackets the answer, with
    // starts_at_or_before(lo) and !starts_at_or_before(hi); then bisect. The
    // estimate is off by at most a few periods (the calendar's deviation from
    // the mean month and the clamp are a few days), so this takes a handful of
    // period_start evaluations wherever t lies.
    const std::int64_t guess = estimate_index(anchor, iv, t);
    std::int64_t lo = 0;
    std::int64_t hi = 0;
    std::int64_t step = 1;
    if (starts_at_or_before(anchor, iv, guess, t)) {
        lo = guess;
        for (;;) {
            if (lo == kInt64Max)  // the answer, or k + 1, would not fit in an int64
                throw_index_overflow(anchor, iv, t);
            hi = saturating_add(lo, step);
            if (!starts_at_or_before(anchor, iv, hi, t))
                break;
            lo = hi;
            step = step > kInt64Max / 2 ? kInt64Max : step * 2;
        }
    } else {
        hi = guess;
        for (;;) {
            if (hi == kInt64Min)  // t lies before period INT64_MIN
                throw_index_overflow(anchor, iv, t);
            lo = saturating_add(hi, -step);
            if (starts_at_or_before(anchor, iv, lo, t))
                break;
            hi = lo;
            step = step > kInt64Max / 2 ? kInt64Max : step * 2;
        }
    }
    // The answer is in [lo, hi) and below INT64_MAX, so k + 1 always fits.
    while (static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo) > 1) {
        const std::int64_t mid = static_cast<std::int64_t>(
            static_cast<std::uint64_t>(lo) +
            (static_cast<std::uint64_t>(hi) - static_cast<std::uint64_t>(lo)) / 2);
        if (starts_at_or_before(anchor, iv, mid, t))
            lo = mid;
        else
            hi = mid;
    }
    return lo;
}

}  // namespace

// --- civil calendar ------------------------------------------------------------

bool is_leap_year(std::int64_t year)
{
    return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0);
}

int days_in_month(std::int64_t year, int month)
{
    static constexpr int kDays[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    if (month == 2 && is_leap_year(year))
        return 29;
    return kDays[month - 1];
}

// The year is shifted to start on March 1, so that the leap day is the last day
// of a year and the month lengths from March on follow the pattern
// 31 30 31 30 31 | 31 30 31 30 31 | 31 28/29, which (153 m + 2) / 5 counts.
// 400-year eras (146097 days) make the arithmetic exact for negative years.
std::int64_t days_from_civil(std::int64_t year, int month, int day)
{
    const std::int64_t y = month <= 2 ? year - 1 : year;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const std::int64_t year_of_era = y - era * 400;                        // [0, 399]
    const std::int64_t shifted_month = month > 2 ? month - 3 : month + 9;  // March = 0
    const std::int64_t day_of_year = (153 * shifted_month + 2) / 5 + day - 1;  // [0, 365]
    const std::int64_t day_of_era =
        year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;  // [0, 146096]
    return era * 146097 + day_of_era - 719468;  // 719468: 0000-03-01 to 1970-01-01
}

std::int64_t days_from_civil(const CivilDate& date)
{
    return days_from_civil(date.year, date.month, date.day);
}

CivilDate civil_from_days(std::int64_t days)
{
    const std::int64_t z = days + 719468;  // days since 0000-03-01
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const std::int64_t day_of_era = z - era * 146097;  // [0, 146096]
    const std::int64_t year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36524 - day_of_era / 146096) / 365;
    const std::int64_t day_of_year =
        day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);  // [0, 365]
    const std::int64_t shifted_month = (5 * day_of_year + 2) / 153;            // March = 0
    const int day = static_cast<int>(day_of_year - (153 * shifted_month + 2) / 5 + 1);
    const int month = static_cast<int>(shifted_month < 10 ? shifted_month + 3 : shifted_month - 9);
    const std::int64_t year = year_of_era + era * 400 + (month <= 2 ? 1 : 0);
    return CivilDate{year, month, day};
}

LocalTime make_local_time(std::int64_t year, int month, int day, int hour, int minute, int second,
                          std::int64_t usec)
{
    const bool fields_ok = year >= kMinYearMargin && year <= kMaxYearMargin && month >= 1 &&
                           month <= 12 && day >= 1 && day <= days_in_month(year, month) &&
                           hour >= 0 && hour <= 23 && minute >= 0 && minute <= 59 &&
                           second >= 0 && second <= 59 && usec >= 0 && usec < kUsecsPerSecond;
    const std::string text = pad(year, 4) + "-" + pad(month, 2) + "-" + pad(day, 2) + " " +
                             pad(hour, 2) + ":" + pad(minute, 2) + ":" + pad(second, 2) + "." +
                             pad(usec, 6);
    if (!fields_ok)
        throw Error(sqlstate::kInvalidParameter,
                    "local time " + quote(text) + " is not a valid date and time");
    const std::int64_t usecs =
        (days_from_civil(year, month, day) - kPostgresEpochDays) * kUsecsPerDay +
        hour * kUsecsPerHour + minute * kUsecsPerMinute + second * kUsecsPerSecond + usec;
    if (!in_range(usecs))
        throw Error(sqlstate::kInvalidParameter,
                    "local time " + quote(text) + " is outside the timestamp range");
    return LocalTime{usecs};
}

CivilDateTime to_civil(LocalTime t)
{
    const std::int64_t day = floor_div(t.usecs, kUsecsPerDay);
    std::int64_t rest = floor_mod(t.usecs, kUsecsPerDay);
    CivilDateTime out{};
    out.date = civil_from_days(day + kPostgresEpochDays);
    out.hour = static_cast<int>(rest / kUsecsPerHour);
    rest %= kUsecsPerHour;
    out.minute = static_cast<int>(rest / kUsecsPerMinute);
    rest %= kUsecsPerMinute;
    out.second = static_cast<int>(rest / kUsecsPerSecond);
    out.usec = rest % kUsecsPerSecond;
    return out;
}

std::string format_local_time(LocalTime t)
{
    const CivilDateTime c = to_civil(t);
    const bool bc = c.date.year <= 0;
    std::string out = pad(bc ? 1 - c.date.year : c.date.year, 4) + "-" + pad(c.date.month, 2) +
                      "-" + pad(c.date.day, 2) + " " + pad(c.hour, 2) + ":" + pad(c.minute, 2) +
                      ":" + pad(c.second, 2);
    if (c.usec != 0) {
        std::string fraction = pad(c.usec, 6);
        fraction.erase(fraction.find_last_not_of('0') + 1);
        out += "." + fraction;
    }
    if (bc)
        out += " BC";
    return out;
}

// --- intervals -------------------------------------------------------------------

// Postgres's EncodeInterval, IntervalStyle postgres: "-1 years -2 mons +3 days -04:05:06.5".
std::string format_interval(const BillingInterval& iv)
{
    std::string out;
    bool is_zero = true;
    bool is_before = false;  // the last field printed was negative
    auto add_part = [&](std::int64_t value, const char* unit) {
        if (value == 0)
            return;
        out += is_zero ? "" : " ";
        out += (is_before && value > 0) ? "+" : "";
        out += std::to_string(value) + " " + unit + (value != 1 ? "s" : "");
        is_before = value < 0;
        is_zero = false;
    };
    add_part(iv.months / 12, "year");
    add_part(iv.months % 12, "mon");
    add_part(iv.days, "day");
    if (is_zero || iv.usecs != 0) {
        const bool minus = iv.usecs < 0;
        // |usecs| without overflow at INT64_MIN.
        const std::uint64_t magnitude =
            minus ? 0 - static_cast<std::uint64_t>(iv.usecs) : static_cast<std::uint64_t>(iv.usecs);
        const std::uint64_t per_second = kUsecsPerSecond;
        const std::uint64_t hours = magnitude / (3600 * per_second);
        const std::uint64_t minutes = magnitude / (60 * per_second) % 60;
        const std::uint64_t seconds = magnitude / per_second % 60;
        const std::uint64_t fraction = magnitude % per_second;
        out += is_zero ? "" : " ";
        out += minus ? "-" : (is_before ? "+" : "");
        std::string h = std::to_string(hours);
        if (h.size() < 2)
            h.insert(0, "0");
        out += h + ":" + pad(static_cast<std::int64_t>(minutes), 2) + ":" +
               pad(static_cast<std::int64_t>(seconds), 2);
        if (fraction != 0) {
            std::string f = pad(static_cast<std::int64_t>(fraction), 6);
            f.erase(f.find_last_not_of('0') + 1);
            out += "." + f;
        }
    }
    return out;
}

void check_billing_interval(const BillingInterval& iv, const char* field)
{
    const char* negative = iv.months < 0 ? "months"
                           : iv.days < 0 ? "days"
                           : iv.usecs < 0 ? "time"
                                          : nullptr;
    if (negative == nullptr && (iv.months > 0 || iv.days > 0 || iv.usecs > 0))
        return;
    const std::string hint =
        "Use a positive interval such as '1 month', '3 months', '1 year', '7 days' or '1 hour'.";
    const std::string message =
        std::string(field) + " " + quote(format_interval(iv)) + " must be a positive interval";
    if (negative != nullptr)
        throw Error(sqlstate::kInvalidParameter, message,
                    std::string("Its ") + negative + " part is negative; no part may be.", hint);
    throw Error(sqlstate::kInvalidParameter, message,
                "A zero interval would make every billing period empty.", hint);
}

bool is_fixed_length(const BillingInterval& iv) { return iv.months == 0 && iv.days == 0; }

// --- periods -----------------------------------------------------------------------

LocalTime period_start(LocalTime anchor, const BillingInterval& iv, std::int64_t k)
{
    check_billing_interval(iv);
    check_local_time("billing_anchor", anchor);
    if (auto start = try_period_start(anchor.usecs, iv, k))
        return LocalTime{*start};
    throw_out_of_range(anchor, iv, k);
}

std::int64_t period_index(LocalTime anchor, const BillingInterval& iv, LocalTime t)
{
    check_billing_interval(iv);
    check_local_time("billing_anchor", anchor);
    check_local_time("timestamp", t);
    return find_index(anchor.usecs, iv, t.usecs);
}

Period period_at(LocalTime anchor, const BillingInterval& iv, std::int64_t k)
{
    const LocalTime start = period_start(anchor, iv, k);
    if (k == kInt64Max)
        throw_out_of_range(anchor, iv, k);
    return Period{k, start, period_start(anchor, iv, k + 1)};
}

namespace {

struct IndexRange {
    std::int64_t first;
    std::uint64_t count;  // 0 when from == to
};

IndexRange overlapping_indexes(LocalTime anchor, const BillingInterval& iv, LocalTime from,
                               LocalTime to)
{
    check_billing_interval(iv);
    check_local_time("billing_anchor", anchor);
    check_local_time("from_ts", from);
    check_local_time("to_ts", to);
    if (from > to)
        throw Error(sqlstate::kInvalidParameter,
                    "from_ts " + describe(from) + " is after to_ts " + describe(to));
    if (from == to)
        return IndexRange{0, 0};
    const std::int64_t first = find_index(anchor.usecs, iv, from.usecs);
    const std::int64_t last = find_index(anchor.usecs, iv, to.usecs - 1);  // to is exclusive
    // last >= first; the difference fits in uint64 even for 1-usec periods.
    const std::uint64_t count =
        static_cast<std::uint64_t>(last) - static_cast<std::uint64_t>(first) + 1;
    return IndexRange{first, count};
}

}  // namespace

std::uint64_t count_periods_between(LocalTime anchor, const BillingInterval& iv, LocalTime from,
                                    LocalTime to)
{
    return overlapping_indexes(anchor, iv, from, to).count;
}

std::vector<Period> periods_between(LocalTime anchor, const BillingInterval& iv, LocalTime from,
                                    LocalTime to, std::size_t max_periods)
{
    const IndexRange range = overlapping_indexes(anchor, iv, from, to);
    std::vector<Period> out;
    if (range.count == 0)
        return out;
    if (range.count > max_periods)
        throw Error(sqlstate::kInvalidParameter,
                    "the range from " + describe(from) + " to " + describe(to) + " holds " +
                        std::to_string(range.count) + " billing periods of " +
                        quote(format_interval(iv)) + ", more than the limit of " +
                        std::to_string(max_periods),
                    {}, "Ask for a shorter range, or use a longer billing interval.");
    out.reserve(static_cast<std::size_t>(range.count));
    LocalTime start = period_start(anchor, iv, range.first);
    for (std::uint64_t i = 0; i < range.count; ++i) {
        const std::int64_t k = range.first + static_cast<std::int64_t>(i);
        const LocalTime end = period_start(anchor, iv, k + 1);
        out.push_back(Period{k, start, end});
        start = end;
    }
    return out;
}

}  // namespace metering::core
