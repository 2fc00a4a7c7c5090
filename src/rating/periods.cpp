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

}  // extern "C"
