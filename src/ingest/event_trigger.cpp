// The COPY path: BEFORE INSERT trigger on metering.events. Rows inserted by
// COPY or a plain INSERT get the same validation and dedup as metering.ingest;
// a duplicate with the same payload is skipped, another payload is an error.
#include "ingest/events.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "utils/builtins.h"
#include "utils/rel.h"
}

#include "pg/guard.hpp"

using metering::ingest::CounterOp;
using metering::ingest::Event;

namespace {

enum Column { kCustomer, kMeter, kValue, kOccurred, kDue, kIngested, kKey, kProperties, kOp, kColumns };
constexpr const char* kNames[kColumns] = {"customer_id", "meter",           "value",
                                          "occurred_at", "due_at",          "ingested_at",
                                          "idempotency_key", "properties", "op"};

Datum validate_row(TriggerData* td)
{
    TupleDesc desc = td->tg_relation->rd_att;
    HeapTuple tuple = td->tg_trigtuple;
    int attnum[kColumns];
    Datum v[kColumns];
    bool isnull[kColumns];
    for (int c = 0; c < kColumns; c++) {
        attnum[c] = SPI_fnumber(desc, kNames[c]);
        v[c] = heap_getattr(tuple, attnum[c], desc, &isnull[c]);
    }
    for (int c : {kCustomer, kMeter, kValue, kOccurred})
        if (isnull[c])
            metering::core::throw_null_argument(kNames[c]);

    Event ev{};
    ev.customer_id = DatumGetTextPP(v[kCustomer]);
    ev.meter = DatumGetTextPP(v[kMeter]);
    ev.value = DatumGetNumeric(v[kValue]);
    ev.occurred_at = DatumGetTimestampTz(v[kOccurred]);
    ev.has_due_at = !isnull[kDue];
    ev.due_at = ev.has_due_at ? DatumGetTimestampTz(v[kDue]) : 0;
    ev.idempotency_key = isnull[kKey] ? nullptr : DatumGetTextPP(v[kKey]);
    ev.properties = isnull[kProperties] ? nullptr : DatumGetJsonbP(v[kProperties]);
    ev.op = CounterOp::none;
    if (!isnull[kOp])
        ev.op = metering::ingest::view(DatumGetTextPP(v[kOp])) == "set" ? CounterOp::set
                                                                        : CounterOp::increment;
    metering::ingest::validate_event(ev);
    if (ev.idempotency_key && metering::ingest::find_duplicate(ev) != 0)
        return PointerGetDatum(nullptr);  // same event already stored: skip the row

    int cols[4] = {attnum[kDue], attnum[kIngested], attnum[kProperties], attnum[kOp]};
    Datum values[4] = {TimestampTzGetDatum(ev.due_at),
                       TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()),
                       ev.properties ? JsonbPGetDatum(ev.properties)
                                     : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")),
                       ev.op == CounterOp::none  ? (Datum) 0
                       : ev.op == CounterOp::set ? CStringGetTextDatum("set")
                                                 : CStringGetTextDatum("increment")};
    bool nulls[4] = {false, false, false, ev.op == CounterOp::none};
    return PointerGetDatum(heap_modify_tuple_by_cols(tuple, desc, 4, cols, values, nulls));
}

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(metering_event_before_insert);
Datum metering_event_before_insert(PG_FUNCTION_ARGS)
{
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_BEFORE(td->tg_event) ||
        !TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
        elog(ERROR, "metering_event_before_insert: not a BEFORE INSERT row trigger");
    return metering::pg::guarded([&] { return validate_row(td); });
}
}
