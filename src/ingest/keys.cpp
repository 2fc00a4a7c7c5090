// Dedup through metering.idempotency_keys, the keys of every keyed event for
// all time (they outlive the partitions retention drops). A key row keeps what
// a repeat is compared with: meter, value, counter operation and instants as
// they were, the properties as a fingerprint (a hash of the jsonb value that
// is equal exactly when the values are jsonb-equal, barring a 64-bit collision).
//
// Dedup costs one index descent for a new key: the key is inserted with
// UNIQUE_CHECK_PARTIAL, which reports a possible twin instead of raising an
// error. Only a flagged key is then resolved: wait for a transaction still
// inserting the twin, compare payloads, and remove our own key row when the
// stored one is the same event (or raise MT011 when it is not).
//
// Plain-C-style code: no C++ object with a destructor is alive while Postgres
// is called (core::Fingerprint has none).
#include "ingest/events.hpp"

extern "C" {
#include "access/heapam.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "storage/lmgr.h"
#include "utils/builtins.h"
#include "utils/jsonb.h"
#include "utils/snapmgr.h"
}

#include <string>

#include "core/fingerprint.hpp"
#include "core/payload.hpp"
#include "pg/guard.hpp"
#include "pg/relations.hpp"

namespace metering::ingest {

namespace {

enum KeyColumn { kKeyEventId, kKeyDue, kKeyOccurred, kKeyHash, kKeyDefaulted, kKeyCustomer, kKeyKey, kKeyMeter,
                 kKeyValue, kKeyOp, kKeyColumns };
constexpr const char* kKeyColumnNames[kKeyColumns] = {
    "event_id", "due_at", "occurred_at", "properties_hash", "times_defaulted",
    "customer_id", "idempotency_key", "meter", "value", "op"};
// Rows handed to table_multi_insert at a time (COPY uses 1,000 too).
constexpr int kChunk = 1000;

void key_column_numbers(Relation rel, AttrNumber* att)
{
    const AttrNumber* found = pg::column_numbers(rel, kKeyColumnNames, kKeyColumns);
    for (int c = 0; c < kKeyColumns; c++) {
        att[c] = found[c];
        if (att[c] == InvalidAttrNumber)
            elog(ERROR, "metering: column metering.idempotency_keys.%s is missing", kKeyColumnNames[c]);
    }
}

// --- the properties fingerprint ------------------------------------------------

void add_scalar(core::Fingerprint& f, const JsonbValue& v)
{
    switch (v.type) {
    case jbvNull:
        f.add_tag('n');
        break;
    case jbvBool:
        f.add_tag(v.val.boolean ? 't' : 'f');
        break;
    case jbvString:
        f.add_tag('s');
        f.add_bytes(std::string_view(v.val.string.val, v.val.string.len));
        break;
    case jbvNumeric: {
        // equal numbers (1.0 and 1, as jsonb compares them) have one normalized text
        char* normalized = numeric_normalize(v.val.numeric);
        f.add_tag('d');
        f.add_bytes(normalized);
        pfree(normalized);
        break;
    }
    default:
        f.add_tag('?');
        break;
    }
}

const char* op_name(CounterOp op)
{
    return op == CounterOp::increment ? "increment" : op == CounterOp::set ? "set" : nullptr;
}

bool new_times_defaulted(const Event& ev)
{
    return ev.occurred_at == GetCurrentTransactionStartTimestamp() && ev.due_at == ev.occurred_at;
}

// --- comparing a repeat with its stored key -----------------------------------------

core::PayloadComparison compare_key(const Event& ev, int64 hash, TupleTableSlot* row, const AttrNumber* att)
{
    bool isnull;
    core::PayloadComparison cmp;
    cmp.meter_equal = view(DatumGetTextPP(slot_getattr(row, att[kKeyMeter], &isnull))) == view(ev.meter);
    cmp.value_equal = DatumGetBool(DirectFunctionCall2(numeric_eq, slot_getattr(row, att[kKeyValue], &isnull),
                                                       NumericGetDatum(ev.value)));
    cmp.occurred_at_equal = DatumGetTimestampTz(slot_getattr(row, att[kKeyOccurred], &isnull)) == ev.occurred_at;
    cmp.due_at_equal = DatumGetTimestampTz(slot_getattr(row, att[kKeyDue], &isnull)) == ev.due_at;
    cmp.properties_equal = DatumGetInt64(slot_getattr(row, att[kKeyHash], &isnull)) == hash;
    Datum op = slot_getattr(row, att[kKeyOp], &isnull);
    const char* new_op = op_name(ev.op);
    cmp.op_equal = isnull ? new_op == nullptr
                          : new_op != nullptr && view(DatumGetTextPP(op)) == std::string_view(new_op);
    cmp.stored_time_defaulted = DatumGetBool(slot_getattr(row, att[kKeyDefaulted], &isnull));
    cmp.new_time_defaulted = new_times_defaulted(ev);
    return cmp;
}

// A key row found: its event id and how its payload compares (extra: the fingerprint).
int64 read_key(const Event& ev, TupleTableSlot* row, Relation heap, const void* extra, core::PayloadComparison* cmp)
{
    AttrNumber att[kKeyColumns];
    key_column_numbers(heap, att);
    bool isnull;
    *cmp = compare_key(ev, *static_cast<const int64*>(extra), row, att);
    return DatumGetInt64(slot_getattr(row, att[kKeyEventId], &isnull));
}

// --- storing keys -------------------------------------------------------------

// metering.idempotency_keys opened for inserting.
struct KeyTable {
    Relation rel;
    ResultRelInfo* rri;
    EState* estate;
    List* arbiters;  // the primary key: checked partially, never raising
    AttrNumber att[kKeyColumns];
};

void open_keys(KeyTable& k)
{
    k.rel = table_open(pg::relation_oid(pg::Rel::idempotency_keys), RowExclusiveLock);
    k.rri = makeNode(ResultRelInfo);
    InitResultRelInfo(k.rri, k.rel, 0, nullptr, 0);
    ExecOpenIndices(k.rri, false);
    k.estate = CreateExecutorState();
    k.estate->es_output_cid = GetCurrentCommandId(true);
    k.arbiters = list_make1_oid(pg::relation_oid(pg::Rel::idempotency_keys_pkey));
    key_column_numbers(k.rel, k.att);
}

void close_keys(KeyTable& k)
{
    ExecCloseIndices(k.rri);
    table_close(k.rel, NoLock);
    FreeExecutorState(k.estate);
}

Datum op_datum(CounterOp op)
{
    static Datum texts[2] = {(Datum) 0, (Datum) 0};
    const int i = op == CounterOp::set ? 1 : 0;
    if (texts[i] == (Datum) 0) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        texts[i] = CStringGetTextDatum(op_name(op));
        MemoryContextSwitchTo(old);
    }
    return texts[i];
}

void fill_key_slot(const KeyTable& k, TupleTableSlot* slot, const Event& ev, int64 id, int64 hash)
{
    ExecClearTuple(slot);
    Datum* v = slot->tts_values;
    bool* null = slot->tts_isnull;
    memset(null, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
    auto set = [&](KeyColumn c, Datum d) {
        v[k.att[c] - 1] = d;
        null[k.att[c] - 1] = false;
    };
    set(kKeyEventId, Int64GetDatum(id));
    set(kKeyDue, TimestampTzGetDatum(ev.due_at));
    set(kKeyOccurred, TimestampTzGetDatum(ev.occurred_at));
    set(kKeyHash, Int64GetDatum(hash));
    set(kKeyDefaulted, BoolGetDatum(new_times_defaulted(ev)));
    set(kKeyCustomer, PointerGetDatum(ev.customer_id));
    set(kKeyKey, PointerGetDatum(ev.idempotency_key));
    set(kKeyMeter, PointerGetDatum(ev.meter));
    set(kKeyValue, NumericGetDatum(ev.value));
    if (ev.op != CounterOp::none)
        set(kKeyOp, op_datum(ev.op));
    ExecStoreVirtualTuple(slot);
}

// Inserts the keys of events[which[0..m)]; flagged[j]: the primary key may
// hold a twin of key j, whose own position is tids[j].
void insert_keys(KeyTable& k, const Event* events, const int* which, int m, const int64* ids, const int64* hashes,
                 bool* flagged, ItemPointerData* tids)
{
    const int slot_count = Min(m, kChunk);
    auto** slots = static_cast<TupleTableSlot**>(palloc(sizeof(TupleTableSlot*) * slot_count));
    TupleDesc desc = CreateTupleDescCopy(RelationGetDescr(k.rel));  // see store.cpp: no resource-owner entries
    for (int i = 0; i < slot_count; i++)
        slots[i] = MakeSingleTupleTableSlot(desc, table_slot_callbacks(k.rel));
    BulkInsertState bistate = m > 1 ? GetBulkInsertState() : nullptr;
    const CommandId cid = k.estate->es_output_cid;
    for (int first = 0; first < m; first += kChunk) {
        const int count = Min(kChunk, m - first);
        for (int j = 0; j < count; j++) {
            const int i = which[first + j];
            fill_key_slot(k, slots[j], events[i], ids[i], hashes[i]);
        }
        if (count == 1)
            table_tuple_insert(k.rel, slots[0], cid, 0, bistate);
        else
            table_multi_insert(k.rel, slots, count, cid, 0, bistate);
        for (int j = 0; j < count; j++) {
            bool conflict = false;
            List* recheck = ExecInsertIndexTuples(k.rri, slots[j], k.estate, false, true, &conflict, k.arbiters);
            list_free(recheck);
            flagged[first + j] = conflict;
            tids[first + j] = slots[j]->tts_tid;
            ResetPerTupleExprContext(k.estate);
        }
        CHECK_FOR_INTERRUPTS();
    }
    if (bistate)
        FreeBulkInsertState(bistate);
    for (int i = 0; i < slot_count; i++)
        ExecDropSingleTupleTableSlot(slots[i]);
    pfree(slots);
}

// The event of a flagged key: its twin's id (0: the twin's transaction rolled
// back, ours stands). Errors name the event by its ordinal.
int64 twin_of(const Event& ev, int64 hash, const ItemPointerData* self, const Ordinals& ordinals, int i)
{
    try {
        return find_twin(ev, pg::Rel::idempotency_keys, pg::Rel::idempotency_keys_pkey, self, read_key, &hash);
    } catch (const core::Error& e) {
        if (ordinals.label == nullptr)
            throw;
        throw e.prefixed(std::string(ordinals.label) + " " + std::to_string(ordinals.first + i) + ": ");
    }
}

// Settles every flagged key: a twin with the same payload wins (it was there
// first, or earlier in this call) and our key row is deleted.
void resolve_flagged(KeyTable& k, const Event* events, const int* which, int m, const Ordinals& ordinals,
                     const bool* flagged, const ItemPointerData* tids, const int64* hashes, int64* ids, bool* created)
{
    bool command_advanced = false;
    for (int j = 0; j < m; j++) {
        if (!flagged[j])
            continue;
        const int i = which[j];
        const int64 twin = twin_of(events[i], hashes[i], &tids[j], ordinals, i);
        if (twin == 0)
            continue;
        if (!command_advanced) {
            CommandCounterIncrement();  // our rows become deletable by this command
            command_advanced = true;
        }
        simple_heap_delete(k.rel, const_cast<ItemPointerData*>(&tids[j]));
        ids[i] = twin;
        created[i] = false;
    }
}

}  // namespace

int64 properties_hash(const Jsonb* properties)
{
    core::Fingerprint f;
    if (properties == nullptr) {  // {}
        f.add_tag('o');
        f.add_tag('O');
        return f.value();
    }
    JsonbIterator* it = JsonbIteratorInit(const_cast<JsonbContainer*>(&properties->root));
    JsonbValue v;
    JsonbIteratorToken token;
    while ((token = JsonbIteratorNext(&it, &v, false)) != WJB_DONE) {
        switch (token) {
        case WJB_BEGIN_OBJECT:
            f.add_tag('o');
            break;
        case WJB_END_OBJECT:
            f.add_tag('O');
            break;
        case WJB_BEGIN_ARRAY:
            f.add_tag(v.val.array.rawScalar ? 'r' : 'a');
            break;
        case WJB_END_ARRAY:
            f.add_tag('A');
            break;
        case WJB_KEY:
            f.add_tag('k');
            f.add_bytes(std::string_view(v.val.string.val, v.val.string.len));
            break;
        case WJB_VALUE:
        case WJB_ELEM:
            add_scalar(f, v);
            break;
        default:
            break;
        }
    }
    return f.value();
}

void dedup_keys(const Event* events, int n, const Ordinals& ordinals, int64* ids, bool* created)
{
    auto* which = static_cast<int*>(palloc(sizeof(int) * n));
    int m = 0;
    for (int i = 0; i < n; i++)
        if (events[i].idempotency_key && created[i])
            which[m++] = i;
    if (m == 0) {
        pfree(which);
        return;
    }
    auto* hashes = static_cast<int64*>(palloc0(sizeof(int64) * n));
    for (int j = 0; j < m; j++)
        hashes[which[j]] = properties_hash(events[which[j]].properties);
    auto* flagged = static_cast<bool*>(palloc(sizeof(bool) * m));
    auto* tids = static_cast<ItemPointerData*>(palloc(sizeof(ItemPointerData) * m));
    KeyTable k;
    open_keys(k);
    insert_keys(k, events, which, m, ids, hashes, flagged, tids);
    resolve_flagged(k, events, which, m, ordinals, flagged, tids, hashes, ids, created);
    close_keys(k);
    pfree(which);
    pfree(hashes);
    pfree(flagged);
    pfree(tids);
}

int64 find_twin(const Event& ev, pg::Rel heap, pg::Rel index, const ItemPointerData* self, ReadTwin read,
                const void* extra)
{
    Datum keys[2] = {PointerGetDatum(ev.customer_id), PointerGetDatum(ev.idempotency_key)};
    for (;;) {
        SnapshotData dirty;
        InitDirtySnapshot(dirty);
        pg::Probe probe;
        pg::probe_begin(probe, heap, index, keys, 2, &dirty, AccessShareLock);
        TransactionId wait_for = InvalidTransactionId;
        uint32 speculative_token = 0;
        int64 id = 0;
        core::PayloadComparison cmp;
        while (pg::probe_next(probe)) {
            if (self && ItemPointerEquals(&probe.slot->tts_tid, const_cast<ItemPointerData*>(self)))
                continue;
            wait_for = TransactionIdIsValid(dirty.xmin) ? dirty.xmin : dirty.xmax;
            if (TransactionIdIsValid(wait_for)) {
                speculative_token = dirty.speculativeToken;
                break;
            }
            id = read(ev, probe.slot, probe.heap, extra, &cmp);
            break;
        }
        pg::probe_end(probe, AccessShareLock);
        if (TransactionIdIsValid(wait_for)) {
            if (speculative_token != 0)
                SpeculativeInsertionWait(wait_for, speculative_token);
            else
                XactLockTableWait(wait_for, nullptr, nullptr, XLTW_None);
            continue;
        }
        if (id != 0)  // outside the probe: a conflict throws, and nothing may be left open
            core::require_same_payload(view(ev.customer_id), view(ev.idempotency_key), cmp);
        return id;
    }
}

}  // namespace metering::ingest

extern "C" {
PG_FUNCTION_INFO_V1(metering_properties_hash);
Datum metering_properties_hash(PG_FUNCTION_ARGS)
{
    Jsonb* properties = PG_GETARG_JSONB_P(0);
    return metering::pg::guarded([&] { return Int64GetDatum(metering::ingest::properties_hash(properties)); });
}
}
