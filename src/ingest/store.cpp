// The write path of the event store. Validated events go straight into the
// heap and indexes of their month's partition, as COPY does: no SQL, planner,
// executor or row trigger (the trigger exists for rows that come by COPY or
// INSERT instead). Keys are deduplicated first (keys.cpp), so a duplicate never
// reaches the events; a month without a partition gets one (partitions.cpp).
#include "ingest/events.hpp"
#include "ingest/partitions.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
}

#include <string>

#include "pg/relations.hpp"

namespace metering::ingest {

const char* const kEventColumnNames[kEventColumns] = {
    "event_id", "customer_id", "meter", "value", "occurred_at", "due_at",
    "ingested_at", "idempotency_key", "properties", "op", "txid"};

namespace {

// Rows handed to table_multi_insert at a time (COPY uses 1,000 too).
constexpr int kChunk = 1000;

// Attribute numbers (1-based) of the columns above in relation rel.
void column_numbers(Relation rel, AttrNumber* att)
{
    const AttrNumber* found = pg::column_numbers(rel, kEventColumnNames, kEventColumns);
    for (int c = 0; c < kEventColumns; c++) {
        att[c] = found[c];
        if (att[c] == InvalidAttrNumber)
            elog(ERROR, "metering: column %s.%s is missing", RelationGetRelationName(rel), kEventColumnNames[c]);
    }
}

Datum persistent_datum(Datum* slot, Datum (*make)())
{
    if (*slot == (Datum) 0) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        *slot = make();
        MemoryContextSwitchTo(old);
    }
    return *slot;
}

Datum empty_object()
{
    static Datum empty = (Datum) 0;
    return persistent_datum(&empty, [] { return DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")); });
}

Datum op_text(CounterOp op)
{
    static Datum increment = (Datum) 0;
    static Datum set = (Datum) 0;
    if (op == CounterOp::set)
        return persistent_datum(&set, [] { return CStringGetTextDatum("set"); });
    return persistent_datum(&increment, [] { return CStringGetTextDatum("increment"); });
}

TimestampTz due_of(const StoredRow& row) { return DatumGetTimestampTz(row.value[kDue]); }

// --- routing ----------------------------------------------------------------

void find_partitions(const StoredRow* rows, int n, Oid* parts, int from)
{
    Relation events = table_open(pg::relation_oid(pg::Rel::events), RowExclusiveLock);
    for (int i = from; i < n; i++)
        if (!OidIsValid(parts[i]))
            parts[i] = partition_for(events, due_of(rows[i]));
    table_close(events, NoLock);
}

// parts[i]: the partition of rows[i]. A month without one gets it first.
void route(const StoredRow* rows, int n, Oid* parts)
{
    for (int i = 0; i < n; i++)
        parts[i] = InvalidOid;
    find_partitions(rows, n, parts, 0);
    for (int i = 0; i < n; i++) {
        if (OidIsValid(parts[i]))
            continue;
        create_partition_for(due_of(rows[i]));
        find_partitions(rows, n, parts, i);  // that month's other rows too
        if (!OidIsValid(parts[i]))
            elog(ERROR, "metering: metering.events has no partition for due_at %s after creating it",
                 timestamptz_to_str(due_of(rows[i])));
    }
}

// The field that set an event's due_at, as the caller named it.
const char* due_field(const Event* ev)
{
    if (ev == nullptr || ev->has_due_at)
        return "due_at";
    return ev->time_field ? ev->time_field : "occurred_at";
}

[[noreturn]] void throw_before_retention(const StoredRow& row, const Ordinals& ordinals, int position,
                                         const Event* ev)
{
    const TimestampTz horizon = retention_horizon();
    std::string prefix;
    if (ordinals.label != nullptr)
        prefix = std::string(ordinals.label) + " " + std::to_string(ordinals.first + position) + ": ";
    throw core::Error(core::sqlstate::kBeforeRetention,
                      prefix + due_field(ev) + " " + pg::timestamp_text(due_of(row)) + " is before " +
                          pg::timestamp_text(horizon) + ", before which the events were dropped",
                      "metering.drop_events_before dropped the months before " + pg::timestamp_text(horizon) +
                          ": they are invoiced and closed.",
                      "Record the usage in an open period.");
}

// --- insert -----------------------------------------------------------------

void fill_slot(TupleTableSlot* slot, const AttrNumber* att, const StoredRow& row)
{
    ExecClearTuple(slot);
    memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
    for (int c = 0; c < kEventColumns; c++) {
        if (row.isnull[c])
            continue;
        slot->tts_values[att[c] - 1] = row.value[c];
        slot->tts_isnull[att[c] - 1] = false;
    }
    ExecStoreVirtualTuple(slot);
}

// Rows are appended to the month's last pages, never put in the free space VACUUM
// records in its old ones (nor in a page this backend filled earlier): a late event
// then lands beside the other recent ones, and the reads of the tail, which start at
// the first block a transaction wrote (metering.event_writes), read recent pages only.
// The space freed by an aborted load is not reused by ingest.
constexpr int kInsertOptions = TABLE_INSERT_SKIP_FSM;

// Inserts rows[which[0..m)] into partition, heap and indexes (its writes index logs
// where, writes.cpp).
void insert_into(EState* estate, Oid partition, const StoredRow* rows, const int* which, int m)
{
    Relation rel = table_open(partition, RowExclusiveLock);
    RelationSetTargetBlock(rel, InvalidBlockNumber);
    ResultRelInfo* rri = makeNode(ResultRelInfo);
    InitResultRelInfo(rri, rel, 0, nullptr, 0);
    ExecOpenIndices(rri, false);
    AttrNumber att[kEventColumns];
    column_numbers(rel, att);
    const int slot_count = Min(m, kChunk);
    auto** slots = static_cast<TupleTableSlot**>(palloc(sizeof(TupleTableSlot*) * slot_count));
    // A private copy of the descriptor is not reference-counted: slots on the
    // relation's own one cost a resource-owner entry each (12% of a batch).
    TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(rel));
    for (int i = 0; i < slot_count; i++)
        slots[i] = MakeSingleTupleTableSlot(desc, table_slot_callbacks(rel));
    BulkInsertState bistate = m > 1 ? GetBulkInsertState() : nullptr;
    const CommandId cid = estate->es_output_cid;
    for (int first = 0; first < m; first += kChunk) {
        const int count = Min(kChunk, m - first);
        for (int j = 0; j < count; j++)
            fill_slot(slots[j], att, rows[which[first + j]]);
        if (count == 1)
            table_tuple_insert(rel, slots[0], cid, kInsertOptions, bistate);
        else
            table_multi_insert(rel, slots, count, cid, kInsertOptions, bistate);
        for (int j = 0; j < count; j++) {
            List* recheck = ExecInsertIndexTuples(rri, slots[j], estate, false, false, nullptr, NIL);
            list_free(recheck);
            ResetPerTupleExprContext(estate);
        }
        CHECK_FOR_INTERRUPTS();
    }
    if (bistate)
        FreeBulkInsertState(bistate);
    for (int i = 0; i < slot_count; i++)
        ExecDropSingleTupleTableSlot(slots[i]);
    pfree(slots);
    ExecCloseIndices(rri);
    table_close(rel, NoLock);
}

}  // namespace

void event_row(const Event& ev, int64 id, StoredRow& row)
{
    memset(row.isnull, true, sizeof row.isnull);
    auto set = [&](EventColumn c, Datum d) {
        row.value[c] = d;
        row.isnull[c] = false;
    };
    set(kEventId, Int64GetDatum(id));
    set(kCustomer, PointerGetDatum(ev.customer_id));
    set(kMeter, PointerGetDatum(ev.meter));
    set(kValue, NumericGetDatum(ev.value));
    set(kOccurred, TimestampTzGetDatum(ev.occurred_at));
    set(kDue, TimestampTzGetDatum(ev.due_at));
    set(kIngested, TimestampTzGetDatum(GetCurrentTransactionStartTimestamp()));
    if (ev.idempotency_key)
        set(kKey, PointerGetDatum(ev.idempotency_key));
    set(kProperties, ev.properties ? JsonbPGetDatum(ev.properties) : empty_object());
    if (ev.op != CounterOp::none)
        set(kOp, op_text(ev.op));
    // the top-level transaction, as txid_current() gives it (rollups)
    set(kTxid, Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId()))));
}

void insert_rows(const StoredRow* rows, int n, const Ordinals& ordinals, const int* positions, const Event* events)
{
    if (n <= 0)
        return;
    auto* parts = static_cast<Oid*>(palloc(sizeof(Oid) * n));
    route(rows, n, parts);
    auto* which = static_cast<int*>(palloc(sizeof(int) * n));
    auto* done = static_cast<bool*>(palloc0(sizeof(bool) * n));
    EState* estate = CreateExecutorState();
    estate->es_output_cid = GetCurrentCommandId(true);
    // One partition at a time, its rows in their order (usually all in one).
    for (int first = 0; first < n; first++) {
        if (done[first])
            continue;
        if (partition_role(parts[first]) != PartitionRole::month)  // events_retired (undated: never finite)
        {
            const int position = positions ? positions[first] : first;
            throw_before_retention(rows[first], ordinals, position, events ? &events[position] : nullptr);
        }
        int m = 0;
        for (int i = first; i < n; i++)
            if (!done[i] && parts[i] == parts[first]) {
                which[m++] = i;
                done[i] = true;
            }
        insert_into(estate, parts[first], rows, which, m);
    }
    FreeExecutorState(estate);
    pfree(parts);
    pfree(which);
    pfree(done);
}

void require_retained(TimestampTz at, const char* field)
{
    const TimestampTz horizon = retention_horizon();
    if (at >= horizon)
        return;
    throw core::Error(core::sqlstate::kBeforeRetention,
                      std::string(field) + " " + pg::timestamp_text(at) + " is before " + pg::timestamp_text(horizon) +
                          ", before which the events were dropped",
                      {}, "Values after the retention horizon are kept; the invoices keep what they billed.");
}

bool partitioned_store()
{
    return OidIsValid(pg::relation_oid_if_exists(pg::Rel::idempotency_keys));
}

void store_events(Event* events, int n, const Ordinals& ordinals, int64* ids, bool* created)
{
    if (n <= 0)
        return;
    if (!partitioned_store()) {
        v0_1::store_events_0_1(events, n, ordinals, ids, created);
        return;
    }
    const Oid sequence = pg::relation_oid(pg::Rel::events_event_id_seq);
    for (int i = 0; i < n; i++) {
        ids[i] = nextval_internal(sequence, false);
        created[i] = true;
    }
    dedup_keys(events, n, ordinals, ids, created);
    auto* rows = static_cast<StoredRow*>(palloc(sizeof(StoredRow) * n));
    auto* positions = static_cast<int*>(palloc(sizeof(int) * n));
    int m = 0;
    for (int i = 0; i < n; i++) {
        if (!created[i])
            continue;
        event_row(events[i], ids[i], rows[m]);
        positions[m++] = i;
    }
    insert_rows(rows, m, ordinals, positions, events);
    pfree(rows);
    pfree(positions);
}

}  // namespace metering::ingest
