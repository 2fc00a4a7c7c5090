// SQL entry points of single-event ingest and counters.
#include "ingest/events.hpp"
#include "rollup/worker.hpp"

extern "C" {
#include "access/xact.h"
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/guc.h"
}

#include "pg/guard.hpp"

namespace metering::invoice {
void init_module();  // src/invoice/lifecycle.cpp
}

using metering::ingest::CounterOp;
using metering::ingest::Event;

namespace {

text* required_text(FunctionCallInfo fcinfo, int arg, const char* field)
{
    if (PG_ARGISNULL(arg))
        metering::core::throw_null_argument(field);
    return PG_GETARG_TEXT_PP(arg);
}

Numeric required_numeric(FunctionCallInfo fcinfo, int arg, const char* field)
{
    if (PG_ARGISNULL(arg))
        metering::core::throw_null_argument(field);
    return PG_GETARG_NUMERIC(arg);
}

TimestampTz required_timestamp(FunctionCallInfo fcinfo, int arg, const char* field)
{
    if (PG_ARGISNULL(arg))
        metering::core::throw_null_argument(field);
    return PG_GETARG_TIMESTAMPTZ(arg);
}

text* optional_text(FunctionCallInfo fcinfo, int arg)
{
    return PG_ARGISNULL(arg) ? nullptr : PG_GETARG_TEXT_PP(arg);
}

// A counter operation: (customer_id, counter, amount, at, idempotency_key).
Datum counter_operation(FunctionCallInfo fcinfo, CounterOp op, const char* amount_field)
{
    Event ev{};
    ev.customer_id = required_text(fcinfo, 0, "customer_id");
    ev.meter = required_text(fcinfo, 1, "counter");
    ev.value = required_numeric(fcinfo, 2, amount_field);
    ev.occurred_at = required_timestamp(fcinfo, 3, "at");
    ev.idempotency_key = optional_text(fcinfo, 4);
    ev.op = op;
    ev.value_field = amount_field;
    ev.time_field = "at";
    metering::ingest::validate_event(ev);
    metering::ingest::lock_counter(ev);
    int64 id;
    bool created;
    metering::ingest::store_events(&ev, 1, {nullptr, 0}, &id, &created);
    PG_RETURN_NUMERIC(
        metering::ingest::counter_value_at(ev.customer_id, ev.meter, ev.occurred_at, true));
}

}  // namespace

extern "C" {

PG_MODULE_MAGIC;

void _PG_init(void);
void _PG_init(void)
{
    metering::rollup::define_settings();
    metering::ingest::init_module();
    metering::invoice::init_module();
    metering::rollup::register_workers();
    // Last: reserving the prefix drops every metering.* setting not defined by
    // now (from postgresql.conf, ALTER DATABASE/ROLE, an early SET) with a warning.
    MarkGUCPrefixReserved("metering");
}

PG_FUNCTION_INFO_V1(metering_ingest);
Datum metering_ingest(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        Event ev{};
        ev.customer_id = required_text(fcinfo, 0, "customer_id");
        ev.meter = required_text(fcinfo, 1, "meter");
        ev.value = required_numeric(fcinfo, 2, "value");
        ev.occurred_at = required_timestamp(fcinfo, 3, "occurred_at");
        ev.idempotency_key = optional_text(fcinfo, 4);
        ev.properties = PG_ARGISNULL(5) ? nullptr : PG_GETARG_JSONB_P(5);
        ev.has_due_at = !PG_ARGISNULL(6);
        ev.due_at = ev.has_due_at ? PG_GETARG_TIMESTAMPTZ(6) : 0;
        ev.op = CounterOp::none;
        metering::ingest::validate_event(ev);
        int64 id;
        bool created;
        metering::ingest::store_events(&ev, 1, {nullptr, 0}, &id, &created);
        PG_RETURN_INT64(id);
    });
}

PG_FUNCTION_INFO_V1(metering_counter_increment);
Datum metering_counter_increment(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&] { return counter_operation(fcinfo, CounterOp::increment, "by"); });
}

PG_FUNCTION_INFO_V1(metering_counter_set);
Datum metering_counter_set(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&] { return counter_operation(fcinfo, CounterOp::set, "value"); });
}

PG_FUNCTION_INFO_V1(metering_counter_value);
Datum metering_counter_value(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        Event ev{};
        ev.customer_id = required_text(fcinfo, 0, "customer_id");
        ev.meter = required_text(fcinfo, 1, "counter");
        TimestampTz at = required_timestamp(fcinfo, 2, "at");
        metering::ingest::require_counter(ev);
        PG_RETURN_NUMERIC(metering::ingest::counter_value_at(ev.customer_id, ev.meter, at, false));
    });
}

}  // extern "C"
