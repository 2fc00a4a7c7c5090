// The COPY path: BEFORE INSERT trigger on metering.events. Rows inserted by
// COPY or a plain INSERT get the same validation and dedup as metering.ingest;
// a duplicate with the same payload is skipped, another payload is an error.
//
// Who sets event_id and ingested_at (billing marks refer to (customer_id,
// event_id); ingested_at is the audit trail):
// - A superuser's row that brings its own ingested_at (not this transaction's
//   now(), the column default) is history being restored: pg_restore or a
//   plain dump, run by a superuser (CREATE EXTENSION metering needs one). It is
//   stored as given (a missing due_at defaults to occurred_at, nothing else
//   changes) and no rule of ingest is applied: every row passed
//   them when it was ingested, pg_dump restores events before meters (it
//   orders by name), and the clock has moved since (max_future_skew).
// - Every other row is validated and deduplicated, and gets ingested_at =
//   now(). A superuser's event_id is kept; any other role's comes from the
//   identity sequence whatever the row says, so that a loader with INSERT on
//   events can store no twin (customer_id, event_id): COPY takes explicit
//   values of an identity column, INSERT takes them with OVERRIDING SYSTEM
//   VALUE. A row that let event_id default thus uses two numbers of the
//   sequence; ids only need to be unique and increasing. txid, which the
//   rollup step trusts to find new events, is the inserting transaction's.
#include "ingest/events.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/transam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/rel.h"
}

#include "core/aggregates.hpp"
#include "pg/guard.hpp"
#include "pg/relations.hpp"

using metering::ingest::CounterOp;
using metering::ingest::Event;

namespace {

enum Column { kEventId, kCustomer, kMeter, kValue, kOccurred, kDue, kIngested, kKey, kProperties, kOp, kColumns };
constexpr const char* kNames[kColumns] = {"event_id",    "customer_id", "meter",           "value",
                                          "occurred_at", "due_at",      "ingested_at",     "idempotency_key",
                                          "properties",  "op"};

struct Row {
    int attnum[kColumns];
    Datum v[kColumns];
    bool isnull[kColumns];
    int txid_attnum;  // the inserting transaction (0.2.0 on); <= 0 on 0.1.0's schema
};

void read_row(TriggerData* td, Row& row)
{
    TupleDesc desc = td->tg_relation->rd_att;
    for (int c = 0; c < kColumns; c++) {
        row.attnum[c] = SPI_fnumber(desc, kNames[c]);
        if (row.attnum[c] <= 0)
            elog(ERROR, "metering: column metering.events.%s is missing", kNames[c]);
        row.v[c] = heap_getattr(td->tg_trigtuple, row.attnum[c], desc, &row.isnull[c]);
    }
    row.txid_attnum = SPI_fnumber(desc, "txid");
}

// See the top of the file.
bool is_restored_history(const Row& row)
{
    return superuser() && !row.isnull[kIngested] &&
           DatumGetTimestampTz(row.v[kIngested]) != GetCurrentTransactionStartTimestamp();
}

// NULL, 'increment' or 'set'; anything else is refused (22023) rather than
// read as an increment.
CounterOp row_op(const Row& row)
{
    if (row.isnull[kOp])
        return CounterOp::none;
    using metering::core::agg::parse_counter_op;
    return parse_counter_op(metering::ingest::view(DatumGetTextPP(row.v[kOp]))) ==
                   metering::core::agg::CounterOp::set
               ? CounterOp::set
               : CounterOp::increment;
}

Event row_event(const Row& row)
{
    for (int c : {kCustomer, kMeter, kValue, kOccurred})
        if (row.isnull[c])
            metering::core::throw_null_argument(kNames[c]);
    Event ev{};
    ev.customer_id = DatumGetTextPP(row.v[kCustomer]);
    ev.meter = DatumGetTextPP(row.v[kMeter]);
    ev.value = DatumGetNumeric(row.v[kValue]);
    ev.occurred_at = DatumGetTimestampTz(row.v[kOccurred]);
    ev.has_due_at = !row.isnull[kDue];
    ev.due_at = ev.has_due_at ? DatumGetTimestampTz(row.v[kDue]) : 0;
    ev.idempotency_key = row.isnull[kKey] ? nullptr : DatumGetTextPP(row.v[kKey]);
    ev.properties = row.isnull[kProperties] ? nullptr : DatumGetJsonbP(row.v[kProperties]);
    ev.op = row_op(row);
    ev.op_field = kNames[kOp];
    return ev;
}

// The row as stored: validated values filled in, and the columns only the
// extension sets (txid too: the rollup step trusts it to find new events).
HeapTuple stored_row(TriggerData* td, const Row& row, const Event& ev)
{
    constexpr int kMaxSet = 6;
    int cols[kMaxSet];
    Datum values[kMaxSet];
    bool nulls[kMaxSet];
    int n = 0;
    auto set = [&](int attnum, Datum value, bool isnull) {
        cols[n] = attnum;
        values[n] = value;
        nulls[n] = isnull;
        n++;
    };
    if (!superuser())
        set(row.attnum[kEventId],
            Int64GetDatum(nextval_internal(metering::pg::relation_oid(metering::pg::Rel::events_event_id_seq), false)),
            false);
    set(row.attnum[kDue], TimestampTzGetDatum(ev.due_at), false);
    set(row.attnum[kIngested], TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()), false);
    set(row.attnum[kProperties],
        ev.properties ? JsonbPGetDatum(ev.properties) : DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")), false);
    set(row.attnum[kOp],
        ev.op == CounterOp::set ? CStringGetTextDatum("set")
        : ev.op == CounterOp::increment ? CStringGetTextDatum("increment")
                                        : (Datum) 0,
        ev.op == CounterOp::none);
    if (row.txid_attnum > 0)
        set(row.txid_attnum, Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId()))),
            false);
    return heap_modify_tuple_by_cols(td->tg_trigtuple, td->tg_relation->rd_att, n, cols, values, nulls);
}

// A restored row as given, but for txid: the restoring transaction's, so that the
// first rollup step after the restore rolls it up (ids of the dumped cluster mean
// nothing here); and due_at defaults to occurred_at, as always.
HeapTuple restored_row(TriggerData* td, const Row& row)
{
    int cols[2];
    Datum values[2];
    bool nulls[2] = {false, false};
    int n = 0;
    if (row.isnull[kDue] && !row.isnull[kOccurred]) {
        cols[n] = row.attnum[kDue];
        values[n++] = row.v[kOccurred];
    }
    if (row.txid_attnum > 0) {
        cols[n] = row.txid_attnum;
        values[n++] = Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId())));
    }
    if (n == 0)
        return td->tg_trigtuple;
    return heap_modify_tuple_by_cols(td->tg_trigtuple, td->tg_relation->rd_att, n, cols, values, nulls);
}

Datum validate_row(TriggerData* td)
{
    Row row;
    read_row(td, row);
    if (is_restored_history(row))
        return PointerGetDatum(restored_row(td, row));
    Event ev = row_event(row);
    metering::ingest::validate_event(ev);
    if (ev.idempotency_key && metering::ingest::find_duplicate(ev) != 0)
        return PointerGetDatum(nullptr);  // same event already stored: skip the row
    return PointerGetDatum(stored_row(td, row, ev));
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
