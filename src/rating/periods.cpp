// Billing periods in a customer's time zone. The calendar math is in
// core/periods (on local wall-clock time); this file converts UTC instants to
// local time and each local boundary back, so local midnight stays local
// midnight across DST. Intervals without months or days are computed on UTC
// directly (elapsed time), as Postgres adds them to a timestamptz.
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/timestamp.h"
}

#include <array>
#include <vector>

#include "core/periods.hpp"
#include "pg/guard.hpp"

namespace core = metering::core;

namespace {

// timestamptz -> local timestamp in zone tz, and back (Postgres's AT TIME ZONE).
int64 to_local(text* tz, TimestampTz at)
{
    return metering::pg::pg_safe([&] {
        return DatumGetTimestamp(DirectFunctionCall2(timestamptz_zone, PointerGetDatum(tz), TimestampTzGetDatum(at)));
    });
}

TimestampTz from_local(text* tz, int64 local)
{
    return metering::pg::pg_safe([&] {
        return DatumGetTimestampTz(DirectFunctionCall2(timestamp_zone, PointerGetDatum(tz), TimestampGetDatum(local)));
    });
}

void require_finite(const char* field, TimestampTz at)
{
    if (TIMESTAMP_NOT_FINITE(at))
        throw core::Error(core::sqlstate::kTimestampNotFinite, std::string(field) + " must be a finite timestamp");
}

struct Row {
    int64 index;
    TimestampTz start;
    TimestampTz end;
};

// Every period overlapping [from, to), in UTC.
std::vector<Row> periods(TimestampTz anchor, const Interval* interval, text* tz, TimestampTz from, TimestampTz to)
{
    const core::BillingInterval iv{interval->month, interval->day, interval->time};
    core::check_billing_interval(iv);
    std::vector<Row> rows;
    if (core::is_fixed_length(iv)) {
        for (const core::Period& p : core::periods_between({anchor}, iv, {from}, {to}))
            rows.push_back(Row{p.index, p.start.usecs, p.end.usecs});
        return rows;
    }
    for (const core::Period& p :
         core::periods_between({to_local(tz, anchor)}, iv, {to_local(tz, from)}, {to_local(tz, to)}))
        rows.push_back(Row{p.index, from_local(tz, p.start.usecs), from_local(tz, p.end.usecs)});
    return rows;
}

// The rows as the function's result set, each turned into N non-null values.
template <std::size_t N, typename ToValues>
Datum materialize(FunctionCallInfo fcinfo, const std::vector<Row>& rows, ToValues to_values)
{
    metering::pg::pg_safe([&] { InitMaterializedSRF(fcinfo, 0); });
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    for (const Row& row : rows) {
        std::array<Datum, N> values = to_values(row);
        bool nulls[N] = {};
        metering::pg::pg_safe(
            [&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values.data(), nulls); });
    }
    return (Datum) 0;
}

// The period of a subscription containing an instant, cached: the rollup and
// the reads call it once per event, and most events of a subscription fall in
// the period of the one before, which then costs no time zone conversion. The
// cache is direct-mapped on everything the period depends on.
struct PeriodKey {
    TimestampTz anchor;
    int32 month;
    int32 day;
    int64 time;
    TimestampTz starts_at;
    TimestampTz ends_at;
    char tz[64];

    bool operator==(const PeriodKey& o) const
    {
        return anchor == o.anchor && month == o.month && day == o.day && time == o.time &&
               starts_at == o.starts_at && ends_at == o.ends_at && strcmp(tz, o.tz) == 0;
    }
    std::size_t slot(std::size_t slots) const
    {
        std::uint64_t h = std::uint64_t(anchor) * 0x9E3779B97F4A7C15ull ^ std::uint64_t(starts_at) ^
                          (std::uint64_t(month) << 40) ^ (std::uint64_t(day) << 20) ^ std::uint64_t(time);
        return (h ^ (h >> 29)) % slots;
    }
};

struct CachedPeriod {
    bool used = false;
    PeriodKey key;
    TimestampTz start;  // the whole period [start, end)
    TimestampTz end;
};

// Direct-mapped, 16,384 slots (about 2 MB, touched as used): most subscriptions keep
// their slot between the events of a batch, which come in time order, not by customer.
CachedPeriod period_cache[16384];

// The whole period containing at, from the cache or computed (and cached).
std::pair<TimestampTz, TimestampTz> whole_period_at(const PeriodKey& key, const Interval* interval, text* tz,
                                                    TimestampTz at)
{
    CachedPeriod& entry = period_cache[key.slot(std::size(period_cache))];
    if (entry.used && entry.key == key && entry.start <= at && at < entry.end)
        return {entry.start, entry.end};
    std::vector<Row> rows = periods(key.anchor, interval, tz, at, at + 1);
    if (rows.empty())
        throw core::Error(core::sqlstate::kInvalidParameter, "no billing period contains the instant");
    if (key.tz[0] != '\0') {
        entry.used = true;
        entry.key = key;
        entry.start = rows.front().start;
        entry.end = rows.front().end;
    }
    return {rows.front().start, rows.front().end};
}

}  // namespace

extern "C" {

// metering._periods(anchor, billing_interval, timezone, from_ts, to_ts)
//   -> (period_index, period_start, period_end), whole periods, in order.
PG_FUNCTION_INFO_V1(metering_periods);
Datum metering_periods(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        TimestampTz anchor = PG_GETARG_TIMESTAMPTZ(0);
        Interval* interval = PG_GETARG_INTERVAL_P(1);
        text* tz = PG_GETARG_TEXT_PP(2);
        TimestampTz from = PG_GETARG_TIMESTAMPTZ(3);
        TimestampTz to = PG_GETARG_TIMESTAMPTZ(4);
        require_finite("billing_anchor", anchor);
        require_finite("from_ts", from);
        require_finite("to_ts", to);
        return materialize<3>(fcinfo, periods(anchor, interval, tz, from, to), [](const Row& row) {
            return std::array<Datum, 3>{Int64GetDatum(row.index), TimestampTzGetDatum(row.start),
                                        TimestampTzGetDatum(row.end)};
        });
    });
}

// metering._cut_periods(anchor, billing_interval, timezone, starts_at, ends_at, to_ts)
//   -> (period_start, period_end, full_start, full_end): the periods of a
// subscription over [starts_at, ends_at) ('infinity' when open) that overlap
// [starts_at, to_ts), cut to [starts_at, ends_at) (full_*: the whole period),
// in order. metering._started_periods calls it once per subscription: a filter
// on the view's bounds is then a filter on this function's rows alone, which
// the planner estimates as such (one period per subscription for "the period
// containing t"), instead of a join clause between two relations.
PG_FUNCTION_INFO_V1(metering_cut_periods);
Datum metering_cut_periods(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        TimestampTz anchor = PG_GETARG_TIMESTAMPTZ(0);
        Interval* interval = PG_GETARG_INTERVAL_P(1);
        text* tz = PG_GETARG_TEXT_PP(2);
        TimestampTz starts_at = PG_GETARG_TIMESTAMPTZ(3);
        TimestampTz ends_at = PG_GETARG_TIMESTAMPTZ(4);
        TimestampTz to = PG_GETARG_TIMESTAMPTZ(5);
        require_finite("billing_anchor", anchor);
        require_finite("starts_at", starts_at);
        TimestampTz until = to < ends_at ? to : ends_at;
        std::vector<Row> rows;
        if (starts_at < until) {
            require_finite("to_ts", until);
            rows = periods(anchor, interval, tz, starts_at, until);
        }
        return materialize<4>(fcinfo, rows, [&](const Row& row) {
            return std::array<Datum, 4>{TimestampTzGetDatum(row.start > starts_at ? row.start : starts_at),
                                        TimestampTzGetDatum(row.end < ends_at ? row.end : ends_at),
                                        TimestampTzGetDatum(row.start), TimestampTzGetDatum(row.end)};
        });
    });
}

// metering._period_of(anchor, billing_interval, timezone, starts_at, ends_at, at)
//   -> timestamptz: the start of the period of a subscription over
// [starts_at, ends_at) (ends_at NULL when open) that contains at, cut to
// starts_at; NULL when at is outside the subscription (or an argument is NULL).
PG_FUNCTION_INFO_V1(metering_period_of);
Datum metering_period_of(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        for (int arg : {0, 1, 2, 3, 5})
            if (PG_ARGISNULL(arg))
                PG_RETURN_NULL();
        PeriodKey key{};
        key.anchor = PG_GETARG_TIMESTAMPTZ(0);
        Interval* interval = PG_GETARG_INTERVAL_P(1);
        text* tz = PG_GETARG_TEXT_PP(2);
        key.starts_at = PG_GETARG_TIMESTAMPTZ(3);
        key.ends_at = PG_ARGISNULL(4) ? DT_NOEND : PG_GETARG_TIMESTAMPTZ(4);
        TimestampTz at = PG_GETARG_TIMESTAMPTZ(5);
        if (at < key.starts_at || at >= key.ends_at)
            PG_RETURN_NULL();
        require_finite("billing_anchor", key.anchor);
        require_finite("at", at);
        key.month = interval->month;
        key.day = interval->day;
        key.time = interval->time;
        std::size_t tz_length = VARSIZE_ANY_EXHDR(tz);
        if (tz_length < sizeof key.tz) {  // longer names are not cached (tz[0] stays 0)
            memcpy(key.tz, VARDATA_ANY(tz), tz_length);
            key.tz[tz_length] = '\0';
        }
        const core::BillingInterval iv{interval->month, interval->day, interval->time};
        core::check_billing_interval(iv);
        TimestampTz start = whole_period_at(key, interval, tz, at).first;
        PG_RETURN_TIMESTAMPTZ(start > key.starts_at ? start : key.starts_at);
    });
}

}  // extern "C"
