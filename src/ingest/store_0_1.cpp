// The write path of 0.1.0's event store (one table, dedup by its partial unique
// index events_idempotency_key), kept for a database that runs this library
// before ALTER EXTENSION metering UPDATE made the partitioned store of 0.2.0
// (store.cpp). Validated events go straight into the heap and its indexes, as
// COPY does: no SQL, planner, executor or row trigger.
//
// Dedup costs one index descent for a new key: the idempotency index entry is
// inserted with UNIQUE_CHECK_PARTIAL, which reports a possible twin instead of
// raising an error. Only a flagged row is then resolved: wait for a transaction
// still inserting the twin, compare payloads, and remove our own copy when the
// stored one is the same event (or raise MT011 when it is not).
#include "ingest/events.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "commands/sequence.h"
#include "executor/executor.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

#include "core/payload.hpp"
#include "pg/relations.hpp"

namespace metering::ingest::v0_1 {

namespace {

enum Column { kEventId, kCustomer, kMeter, kValue, kOccurred, kDue, kIngested, kKey, kProperties, kOp, kTxid, kColumns };
constexpr const char* kColumnNames[kColumns] = {"event_id", "customer_id", "meter",
                                                "value", "occurred_at", "due_at",
                                                "ingested_at", "idempotency_key", "properties", "op",
                                                "txid"};
// Rows handed to table_multi_insert at a time (COPY uses 1,000 too).
constexpr int kChunk = 1000;

// Attribute numbers (1-based) of the columns above in relation rel.
void column_numbers(Relation rel, AttrNumber* att)
{
    TupleDesc desc = RelationGetDescr(rel);
    for (int c = 0; c < kColumns; c++) {
        att[c] = InvalidAttrNumber;
        for (int a = 0; a < desc->natts; a++) {
            Form_pg_attribute attr = TupleDescAttr(desc, a);
            if (!attr->attisdropped && strcmp(NameStr(attr->attname), kColumnNames[c]) == 0)
                att[c] = attr->attnum;
        }
        // txid came with 0.2.0: a database still on 0.1.0's schema ingests without it
        if (att[c] == InvalidAttrNumber && c != kTxid)
            elog(ERROR, "metering: column metering.events.%s is missing", kColumnNames[c]);
    }
}

Jsonb* empty_object()
{
    static Jsonb* empty = nullptr;
    if (empty == nullptr) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        empty = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
        MemoryContextSwitchTo(old);
    }
    return empty;
}

const char* op_name(CounterOp op)
{
    return op == CounterOp::increment ? "increment" : op == CounterOp::set ? "set" : nullptr;
}

// --- dedup --------------------------------------------------------------------

// How a stored row differs from ev (the core decides whether that is the same event).
core::PayloadComparison compare_stored(const Event& ev, TupleTableSlot* row, const AttrNumber* att)
{
    bool isnull;
    core::PayloadComparison cmp;
    cmp.meter_equal = view(DatumGetTextPP(slot_getattr(row, att[kMeter], &isnull))) == view(ev.meter);
    cmp.value_equal = DatumGetBool(DirectFunctionCall2(numeric_eq, slot_getattr(row, att[kValue], &isnull),
                                                       NumericGetDatum(ev.value)));
    TimestampTz occurred_at = DatumGetTimestampTz(slot_getattr(row, att[kOccurred], &isnull));
    TimestampTz due_at = DatumGetTimestampTz(slot_getattr(row, att[kDue], &isnull));
    TimestampTz ingested_at = DatumGetTimestampTz(slot_getattr(row, att[kIngested], &isnull));
    cmp.occurred_at_equal = occurred_at == ev.occurred_at;
    cmp.due_at_equal = due_at == ev.due_at;
    cmp.properties_equal = DatumGetBool(
        DirectFunctionCall2(jsonb_eq, slot_getattr(row, att[kProperties], &isnull),
                            JsonbPGetDatum(ev.properties ? ev.properties : empty_object())));
    Datum op = slot_getattr(row, att[kOp], &isnull);
    const char* new_op = op_name(ev.op);
    cmp.op_equal = isnull ? new_op == nullptr
                          : new_op != nullptr && view(DatumGetTextPP(op)) == std::string_view(new_op);
    cmp.stored_time_defaulted = occurred_at == ingested_at && due_at == occurred_at;
    cmp.new_time_defaulted =
        ev.occurred_at == GetCurrentTransactionStartTimestamp() && ev.due_at == ev.occurred_at;
    return cmp;
}

// A row of 0.1.0's events found by its key: its id and how its payload compares.
int64 read_event(const Event& ev, TupleTableSlot* row, Relation heap, const void*, core::PayloadComparison* cmp)
{
    AttrNumber att[kColumns];
    column_numbers(heap, att);
    bool isnull;
    *cmp = compare_stored(ev, row, att);
    return DatumGetInt64(slot_getattr(row, att[kEventId], &isnull));
}

// The live row with ev's key other than self, compared with ev (0: none).
int64 find_event_twin(const Event& ev, const ItemPointerData* self)
{
    return find_twin(ev, pg::Rel::events, pg::Rel::events_idempotency_key, self, read_event, nullptr);
}

// --- insert -----------------------------------------------------------------

// metering.events opened for inserting, as COPY opens its target.
struct Store {
    EState* estate;
    ResultRelInfo* rri;
    Relation rel;
    List* arbiters;  // the idempotency index: checked partially, never raising
    AttrNumber att[kColumns];
    Oid sequence;
    Datum ingested_at;
    Datum txid;        // the top-level transaction, as txid_current() gives it (rollups)
    Datum op_text[3];  // by CounterOp
};

void open_store(Store& s)
{
    Oid relid = pg::relation_oid(pg::Rel::events);
    LockRelationOid(relid, RowExclusiveLock);
    s.estate = CreateExecutorState();
    RangeTblEntry* rte = makeNode(RangeTblEntry);
    rte->rtekind = RTE_RELATION;
    rte->relid = relid;
    rte->relkind = RELKIND_RELATION;
    rte->rellockmode = RowExclusiveLock;
    rte->requiredPerms = ACL_INSERT;
    ExecInitRangeTable(s.estate, list_make1(rte));
    s.rri = makeNode(ResultRelInfo);
    ExecInitResultRelation(s.estate, s.rri, 1);
    ExecOpenIndices(s.rri, false);
    s.rel = s.rri->ri_RelationDesc;
    s.estate->es_output_cid = GetCurrentCommandId(true);
    s.arbiters = list_make1_oid(pg::relation_oid(pg::Rel::events_idempotency_key));
    column_numbers(s.rel, s.att);
    s.sequence = pg::relation_oid(pg::Rel::events_event_id_seq);
    s.ingested_at = TimestampTzGetDatum(GetCurrentTransactionStartTimestamp());
    s.txid = Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId())));
    s.op_text[static_cast<int>(CounterOp::none)] = (Datum) 0;
    s.op_text[static_cast<int>(CounterOp::increment)] = CStringGetTextDatum("increment");
    s.op_text[static_cast<int>(CounterOp::set)] = CStringGetTextDatum("set");
}

void close_store(Store& s)
{
    ExecCloseResultRelations(s.estate);
    ExecCloseRangeTableRelations(s.estate);
    FreeExecutorState(s.estate);
}

// The row of ev, with its new id, as a virtual tuple in slot.
void fill_slot(const Store& s, TupleTableSlot* slot, const Event& ev, int64 id)
{
    ExecClearTuple(slot);
    Datum* v = slot->tts_values;
    bool* null = slot->tts_isnull;
    memset(null, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
    auto set = [&](Column c, Datum d) {
        v[s.att[c] - 1] = d;
        null[s.att[c] - 1] = false;
    };
    set(kEventId, Int64GetDatum(id));
    set(kCustomer, PointerGetDatum(ev.customer_id));
    set(kMeter, PointerGetDatum(ev.meter));
    set(kValue, NumericGetDatum(ev.value));
    set(kOccurred, TimestampTzGetDatum(ev.occurred_at));
    set(kDue, TimestampTzGetDatum(ev.due_at));
    set(kIngested, s.ingested_at);
    if (s.att[kTxid] != InvalidAttrNumber)
        set(kTxid, s.txid);
    if (ev.idempotency_key)
        set(kKey, PointerGetDatum(ev.idempotency_key));
    set(kProperties, JsonbPGetDatum(ev.properties ? ev.properties : empty_object()));
    if (ev.op != CounterOp::none)
        set(kOp, s.op_text[static_cast<int>(ev.op)]);
    ExecStoreVirtualTuple(slot);
}

// Inserts events[0..n) into heap and indexes; flagged[i]: the idempotency
// index may hold a twin of row i, whose own position is tids[i].
void insert_rows(Store& s, const Event* events, int n, const int64* ids, bool* flagged,
                 ItemPointerData* tids)
{
    const int slot_count = Min(n, kChunk);
    auto** slots = static_cast<TupleTableSlot**>(palloc(sizeof(TupleTableSlot*) * slot_count));
    // A private copy of the descriptor is not reference-counted: slots on the
    // relation's own one cost a resource-owner entry each (12% of a batch).
    TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(s.rel));
    for (int i = 0; i < slot_count; i++)
        slots[i] = MakeSingleTupleTableSlot(desc, table_slot_callbacks(s.rel));
    BulkInsertState bistate = n > 1 ? GetBulkInsertState() : nullptr;
    const CommandId cid = s.estate->es_output_cid;
    for (int first = 0; first < n; first += kChunk) {
        const int m = Min(kChunk, n - first);
        for (int j = 0; j < m; j++)
            fill_slot(s, slots[j], events[first + j], ids[first + j]);
        if (m == 1)
            table_tuple_insert(s.rel, slots[0], cid, 0, bistate);
        else
            table_multi_insert(s.rel, slots, m, cid, 0, bistate);
        for (int j = 0; j < m; j++) {
            bool conflict = false;
            List* recheck = ExecInsertIndexTuples(s.rri, slots[j], s.estate, false, true, &conflict,
                                                  s.arbiters);
            list_free(recheck);
            flagged[first + j] = conflict;
            tids[first + j] = slots[j]->tts_tid;
            ResetPerTupleExprContext(s.estate);
        }
        CHECK_FOR_INTERRUPTS();
    }
    if (bistate)
        FreeBulkInsertState(bistate);
    for (int i = 0; i < slot_count; i++)
        ExecDropSingleTupleTableSlot(slots[i]);
}

// Settles every flagged row: a twin with the same payload wins (it was there
// first, or earlier in this batch) and our copy is deleted.
void resolve_flagged(Store& s, const Event* events, int n, const Ordinals& ordinals, const bool* flagged,
                     ItemPointerData* tids, int64* ids, bool* created)
{
    bool command_advanced = false;
    for (int i = 0; i < n; i++) {
        created[i] = true;
        if (!flagged[i])
            continue;
        int64 twin = 0;
        try {
            twin = find_event_twin(events[i], &tids[i]);
        } catch (const core::Error& e) {
            if (ordinals.label == nullptr)
                throw;
            throw e.prefixed(std::string(ordinals.label) + " " + std::to_string(ordinals.first + i) + ": ");
        }
        if (twin == 0)
            continue;  // the twin's transaction rolled back: ours stands
        if (!command_advanced) {
            CommandCounterIncrement();  // our rows become deletable by this command
            command_advanced = true;
        }
        simple_heap_delete(s.rel, &tids[i]);
        ids[i] = twin;
        created[i] = false;
    }
}

}  // namespace

int64 find_duplicate_0_1(const Event& ev)
{
    return ev.idempotency_key ? find_event_twin(ev, nullptr) : 0;
}

void store_events_0_1(Event* events, int n, const Ordinals& ordinals, int64* ids, bool* created)
{
    if (n <= 0)
        return;
    Store s;
    open_store(s);
    for (int i = 0; i < n; i++)
        ids[i] = nextval_internal(s.sequence, false);
    auto* flagged = static_cast<bool*>(palloc(sizeof(bool) * n));
    auto* tids = static_cast<ItemPointerData*>(palloc(sizeof(ItemPointerData) * n));
    insert_rows(s, events, n, ids, flagged, tids);
    resolve_flagged(s, events, n, ordinals, flagged, tids, ids, created);
    close_store(s);
    pfree(flagged);
    pfree(tids);
}

}  // namespace metering::ingest::v0_1
