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
//
// The trigger fires on the partition Postgres routed the row to (by due_at,
// before any trigger runs). A row without due_at (the column default
// 'infinity') lands in events_undated: the trigger stores it in the partition
// of its occurred_at's month itself (creating it if need be) and skips it
// there. A row due before the retention horizon lands in events_retired and is
// refused (after dedup: a repeat of a dropped event's key is still a repeat).
// A restored row brings no key: its key comes with metering.idempotency_keys
// of the same dump.
#include "ingest/events.hpp"
#include "ingest/partitions.hpp"

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
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/relations.hpp"

using metering::ingest::CounterOp;
using metering::ingest::Event;
using metering::ingest::PartitionRole;
using metering::ingest::StoredRow;

namespace {

enum Column { kEventId, kCustomer, kMeter, kValue, kOccurred, kDue, kIngested, kKey, kProperties, kOp, kColumns };
constexpr const char* kNames[kColumns] = {"event_id",    "customer_id", "meter",           "value",
                                          "occurred_at", "due_at",      "ingested_at",     "idempotency_key",
                                          "properties",  "op"};

static_assert(static_cast<int>(kOp) == static_cast<int>(metering::ingest::kOp) &&
                  static_cast<int>(kColumns) == static_cast<int>(metering::ingest::kTxid),
              "the row trigger's columns are numbered as the store's");

struct Row {
    int attnum[kColumns];
    Datum v[kColumns];
    bool isnull[kColumns];
    int txid_attnum;  // the inserting transaction (0.2.0 on); <= 0 on 0.1.0's schema
};

Datum own_txid()
{
    return Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId())));
}

// due_at not given: NULL, or the column default 'infinity' (never a real due_at).
bool due_at_given(const Row& row)
{
    return !row.isnull[kDue] && !TIMESTAMP_IS_NOEND(DatumGetTimestampTz(row.v[kDue]));
}

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
    ev.has_due_at = due_at_given(row);
    ev.due_at = ev.has_due_at ? DatumGetTimestampTz(row.v[kDue]) : 0;
    ev.idempotency_key = row.isnull[kKey] ? nullptr : DatumGetTextPP(row.v[kKey]);
    ev.properties = row.isnull[kProperties] ? nullptr : DatumGetJsonbP(row.v[kProperties]);
    ev.op = row_op(row);
    ev.op_field = kNames[kOp];
    return ev;
}

// The row as stored: validated values filled in, and the columns only the
// extension sets (txid too: the rollup step trusts it to find new events).
HeapTuple stored_row(TriggerData* td, const Row& row, const Event& ev, int64 id)
{
    StoredRow stored;
    metering::ingest::event_row(ev, id, stored);
    constexpr int kSet[] = {kEventId, kDue, kIngested, kProperties, kOp};
    constexpr int kMaxSet = sizeof kSet / sizeof kSet[0] + 1;
    int cols[kMaxSet];
    Datum values[kMaxSet];
    bool nulls[kMaxSet];
    int n = 0;
    for (int c : kSet) {
        // the store's columns are numbered as this file's, txid aside
        cols[n] = row.attnum[c];
        values[n] = stored.value[c];
        nulls[n++] = stored.isnull[c];
    }
    if (row.txid_attnum > 0) {
        cols[n] = row.txid_attnum;
        values[n] = own_txid();
        nulls[n++] = false;
    }
    return heap_modify_tuple_by_cols(td->tg_trigtuple, td->tg_relation->rd_att, n, cols, values, nulls);
}

// A restored row as given, but for txid: the restoring transaction's, so that the
// first rollup step after the restore rolls it up (ids of the dumped cluster mean
// nothing here).
HeapTuple restored_row(TriggerData* td, const Row& row)
{
    if (row.txid_attnum <= 0)
        return td->tg_trigtuple;
    int col = row.txid_attnum;
    Datum value = own_txid();
    bool isnull = false;
    return heap_modify_tuple_by_cols(td->tg_trigtuple, td->tg_relation->rd_att, 1, &col, &value, &isnull);
}

// A restored row that did not land in its month's partition (no due_at: it
// defaults to occurred_at; or due before the retention horizon, refused).
void store_restored_row(const Row& row)
{
    StoredRow stored;
    for (int c = 0; c < kColumns; c++) {
        stored.value[c] = row.v[c];
        stored.isnull[c] = row.isnull[c];
    }
    if (!due_at_given(row)) {
        stored.value[kDue] = row.v[kOccurred];
        stored.isnull[kDue] = row.isnull[kOccurred];
    }
    stored.value[metering::ingest::kTxid] = own_txid();
    stored.isnull[metering::ingest::kTxid] = false;
    metering::ingest::insert_rows(&stored, 1, {nullptr, 0});
}

int64 event_id_of(const Row& row)
{
    if (superuser() && !row.isnull[kEventId])
        return DatumGetInt64(row.v[kEventId]);
    return nextval_internal(metering::pg::relation_oid(metering::pg::Rel::events_event_id_seq), false);
}

Datum validate_row(TriggerData* td)
{
    Row row;
    read_row(td, row);
    const PartitionRole role = metering::ingest::partition_role(RelationGetRelationName(td->tg_relation));
    if (is_restored_history(row)) {
        if (role == PartitionRole::month)
            return PointerGetDatum(restored_row(td, row));
        store_restored_row(row);
        return PointerGetDatum(nullptr);
    }
    Event ev = row_event(row);
    metering::ingest::validate_event(ev);
    if (!metering::ingest::partitioned_store())  // 0.1.0's schema, before ALTER EXTENSION UPDATE
        return PointerGetDatum(ev.idempotency_key && metering::ingest::v0_1::find_duplicate_0_1(ev) != 0
                                   ? nullptr
                                   : stored_row(td, row, ev, event_id_of(row)));
    int64 id = event_id_of(row);
    if (ev.idempotency_key) {
        bool created = true;
        metering::ingest::dedup_keys(&ev, 1, {nullptr, 0}, &id, &created);
        if (!created)
            return PointerGetDatum(nullptr);  // same event already stored: skip the row
    }
    if (role == PartitionRole::month)
        return PointerGetDatum(stored_row(td, row, ev, id));
    // Landed without due_at (stored in its month instead) or before the horizon (refused).
    StoredRow stored;
    metering::ingest::event_row(ev, id, stored);
    metering::ingest::insert_rows(&stored, 1, {nullptr, 0}, nullptr, &ev);
    return PointerGetDatum(nullptr);
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
