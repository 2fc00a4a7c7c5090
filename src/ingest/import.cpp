// The bulk path: COPY metering.events_import (customer_id, meter, value,
// occurred_at, due_at, idempotency_key, properties) FROM ...
//
// events_import is a table with a storage-less table access method,
// metering_import, so that COPY keeps its multi-insert buffering (a BEFORE or
// INSTEAD OF row trigger would turn it off):
//
// - Each row is validated as it arrives by the table's CHECK constraint
//   (metering._import_check), so an error names the COPY line and shows it.
// - COPY hands its batches of up to 1,000 rows to multi_insert, which gives
//   them to the same store as ingest_batch at once (multi-insert into
//   metering.events, dedup on the idempotency index, duplicates with the same
//   payload skipped), reading the values from COPY's own slots: no tuple is
//   formed, copied or deformed on the way.
// - INSERT hands rows one by one to tuple_insert, which copies them into a
//   buffer stored every 1,000 rows and at the end of the statement (an AFTER
//   STATEMENT trigger, enabled ALWAYS).
// - Scans return no rows; everything that would need stored rows is refused.
//
// COPY reports every row it read; an error anywhere aborts the statement.
//
// Access methods have no privileges: any role can create a table USING
// metering_import. So the access method serves metering.events_import alone:
// creating any other table with it is refused, every callback checks its
// relation again (a table made before that check, or by pg_upgrade, must not
// reach the store), and each statement checks the column types, the CHECK
// constraint and the role's INSERT right before a row is stored.
#include "ingest/events.hpp"

extern "C" {
#include "access/multixact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/storage.h"
#include "catalog/storage_xlog.h"
#include "commands/copy.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "executor/tuptable.h"
#include "miscadmin.h"
#include "storage/proc.h"
#include "storage/smgr.h"
#include "utils/acl.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
#include "utils/snapmgr.h"
}

#include "pg/guard.hpp"
#include "pg/relations.hpp"

using metering::ingest::CounterOp;
using metering::ingest::Event;

namespace {

constexpr int kFlushRows = 1000;
constexpr const char* kCheckName = "events_import_valid";

enum Column { kCustomer, kMeter, kValue, kOccurred, kDue, kKey, kProperties, kColumns };
constexpr const char* kNames[kColumns] = {"customer_id", "meter", "value", "occurred_at",
                                          "due_at", "idempotency_key", "properties"};
// The types the store reads the columns as (a Datum of another type would crash it).
constexpr Oid kTypes[kColumns] = {TEXTOID, TEXTOID, NUMERICOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, JSONBOID};

// --- the one relation served ---------------------------------------------------

bool in_metering_named(Relation rel, const char* name)
{
    const Oid ns = get_namespace_oid("metering", true);
    return OidIsValid(ns) && RelationGetNamespace(rel) == ns && strcmp(RelationGetRelationName(rel), name) == 0;
}

bool is_events_import(Relation rel)
{
    const Oid relid = metering::pg::relation_oid_if_exists(metering::pg::Rel::events_import);
    return OidIsValid(relid) && RelationGetRelid(rel) == relid;
}

// events_import, or the relation that a rewrite of it (VACUUM FULL, CLUSTER,
// ALTER TABLE) fills and swaps in: make_new_heap names it pg_temp_<OID of the
// table>, in the table's schema.
bool is_events_import_or_rewrite(Relation rel)
{
    const Oid relid = metering::pg::relation_oid_if_exists(metering::pg::Rel::events_import);
    if (!OidIsValid(relid))
        return false;
    char rewrite[NAMEDATALEN];
    snprintf(rewrite, sizeof(rewrite), "pg_temp_%u", relid);
    return RelationGetRelid(rel) == relid || in_metering_named(rel, rewrite);
}

// CREATE EXTENSION creating events_import (not in the catalog yet).
bool is_events_import_being_created(Relation rel)
{
    return !OidIsValid(metering::pg::relation_oid_if_exists(metering::pg::Rel::events_import)) &&
           in_metering_named(rel, "events_import");
}

[[noreturn]] void refuse_relation(Relation rel)
{
    ereport(ERROR, (errcode(ERRCODE_WRONG_OBJECT_TYPE),
                    errmsg("table access method metering_import serves only metering.events_import"),
                    errdetail("Table \"%s\" cannot use it.", RelationGetRelationName(rel)),
                    errhint("Load events with COPY metering.events_import or metering.ingest_batch.")));
}

// Callbacks that also run for the relation a rewrite fills.
void require_served(Relation rel)
{
    if (!is_events_import_or_rewrite(rel))
        refuse_relation(rel);
}

// Callbacks that store rows: events_import itself.
void require_events_import(Relation rel)
{
    if (!is_events_import(rel))
        refuse_relation(rel);
}

// The running statement. The struct lives in the transaction's context; rows
// that INSERT hands over are copied into a child context reset at every flush.
// COPY's rows are stored straight from its slots and never buffered.
struct Statement {
    MemoryContext rows;
    SubTransactionId subxact;  // where the statement runs: its abort drops the rows
    Event events[kFlushRows];
    int n;
    int64 rows_before;     // rows of this statement already stored
    int attnum[kColumns];  // 0-based positions of the columns in events_import
};

Statement* statement = nullptr;

void require_insert_privilege();

// The CHECK constraint that validates every row calls metering._import_check.
bool is_import_check(const ConstrCheck& check)
{
    if (strcmp(check.ccname, kCheckName) != 0)
        return false;
    Node* expr = static_cast<Node*>(stringToNode(check.ccbin));
    if (!IsA(expr, FuncExpr))
        return false;
    const Oid fn = castNode(FuncExpr, expr)->funcid;
    const char* name = get_func_name(fn);
    return name && strcmp(name, "_import_check") == 0 &&
           get_func_namespace(fn) == get_namespace_oid("metering", false);
}

// Positions and types of the columns (ALTER TABLE may have changed them), and
// the CHECK constraint that validated every row: without it rows would reach
// the store unchecked.
void inspect_relation(Statement* st, Relation rel)
{
    TupleDesc desc = RelationGetDescr(rel);
    for (int c = 0; c < kColumns; c++) {
        int attnum = SPI_fnumber(desc, kNames[c]);
        if (attnum <= 0)
            elog(ERROR, "metering: events_import has no column %s", kNames[c]);
        const Oid type = TupleDescAttr(desc, attnum - 1)->atttypid;
        if (type != kTypes[c])
            ereport(ERROR, (errcode(ERRCODE_DATATYPE_MISMATCH),
                            errmsg("column %s of metering.events_import has type %s, not %s", kNames[c],
                                   format_type_be(type), format_type_be(kTypes[c])),
                            errhint("Reinstall the extension metering.")));
        st->attnum[c] = attnum - 1;
    }
    bool checked = false;
    if (desc->constr)
        for (int i = 0; i < desc->constr->num_check; i++)
            checked |= is_import_check(desc->constr->check[i]);
    if (!checked)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("metering.events_import has lost its constraint %s", kCheckName),
                        errhint("Reinstall the extension metering.")));
}

// The statement storing rows into rel, opened at its first row. Every call
// checks the relation and the role's right (cheap: the answer is kept per
// command); the first also checks the table's shape.
Statement* open_statement(Relation rel)
{
    require_events_import(rel);
    require_insert_privilege();
    if (statement == nullptr) {
        auto* st = static_cast<Statement*>(MemoryContextAllocZero(TopTransactionContext, sizeof(Statement)));
        st->rows = AllocSetContextCreate(TopTransactionContext, "metering import", ALLOCSET_DEFAULT_SIZES);
        st->subxact = GetCurrentSubTransactionId();
        inspect_relation(st, rel);
        statement = st;
    }
    return statement;
}

// Frees the statement's state (while its transaction is still alive).
void close_statement()
{
    if (statement == nullptr)
        return;
    MemoryContextDelete(statement->rows);
    pfree(statement);
    statement = nullptr;
}

// Stores events[0..n) of the statement. Errors name the row of the statement
// ("events_import: row N"); COPY's error context is left out while storing: it
// would name the last line COPY read, not the row at fault.
void store(Statement* st, Event* events, int n)
{
    auto* ids = static_cast<int64*>(palloc(sizeof(int64) * n));
    auto* created = static_cast<bool*>(palloc(sizeof(bool) * n));
    ErrorContextCallback* saved = error_context_stack;
    if (saved && saved->callback == CopyFromErrorCallback)
        error_context_stack = saved->previous;
    metering::ingest::store_events(events, n, {"events_import: row", st->rows_before + 1}, ids, created);
    error_context_stack = saved;
    st->rows_before += n;
    pfree(ids);
    pfree(created);
}

void flush(Statement* st)
{
    if (st == nullptr || st->n == 0)
        return;
    store(st, st->events, st->n);
    st->n = 0;
    MemoryContextReset(st->rows);
}

// The event of a row that the CHECK constraint validated. Pointers refer to
// the slot's values.
void slot_event(const Statement* st, TupleTableSlot* slot, Event& ev)
{
    slot_getallattrs(slot);
    const Datum* v = slot->tts_values;
    const bool* isnull = slot->tts_isnull;
    const int* a = st->attnum;
    for (int c : {kCustomer, kMeter, kValue, kOccurred})
        if (isnull[a[c]])  // the constraint lets no such row through
            metering::core::throw_null_argument(kNames[c]);
    ev = Event{};
    ev.customer_id = DatumGetTextPP(v[a[kCustomer]]);
    ev.meter = DatumGetTextPP(v[a[kMeter]]);
    ev.value = DatumGetNumeric(v[a[kValue]]);
    ev.occurred_at = DatumGetTimestampTz(v[a[kOccurred]]);
    ev.has_due_at = !isnull[a[kDue]];
    ev.due_at = ev.has_due_at ? DatumGetTimestampTz(v[a[kDue]]) : 0;
    ev.idempotency_key = isnull[a[kKey]] ? nullptr : DatumGetTextPP(v[a[kKey]]);
    ev.properties = isnull[a[kProperties]] ? nullptr : DatumGetJsonbP(v[a[kProperties]]);
    ev.op = CounterOp::none;
    metering::ingest::complete_validated_event(ev);
}

template <typename T>
T* copy_of(T* value)
{
    return value ? reinterpret_cast<T*>(DatumGetPointer(datumCopy(PointerGetDatum(value), false, -1))) : nullptr;
}

// INSERT: one row, copied into the statement's buffer.
void insert_row(Relation rel, TupleTableSlot* slot)
{
    Statement* st = open_statement(rel);
    if (st->n == kFlushRows)
        flush(st);
    MemoryContext old = MemoryContextSwitchTo(st->rows);
    Event& ev = st->events[st->n];
    slot_event(st, slot, ev);
    ev.customer_id = copy_of(ev.customer_id);
    ev.meter = copy_of(ev.meter);
    ev.value = copy_of(ev.value);
    ev.idempotency_key = copy_of(ev.idempotency_key);
    ev.properties = copy_of(ev.properties);
    MemoryContextSwitchTo(old);
    st->n++;
    slot->tts_tableOid = RelationGetRelid(rel);
    ItemPointerSetInvalid(&slot->tts_tid);
}

// COPY: a batch of up to 1,000 rows, stored at once.
void insert_rows(Relation rel, TupleTableSlot** slots, int nslots)
{
    Statement* st = open_statement(rel);
    flush(st);  // rows of an INSERT, if any: keep the order
    auto* events = static_cast<Event*>(palloc(sizeof(Event) * nslots));
    for (int i = 0; i < nslots; i++) {
        slot_event(st, slots[i], events[i]);
        slots[i]->tts_tableOid = RelationGetRelid(rel);
        ItemPointerSetInvalid(&slots[i]->tts_tid);
    }
    store(st, events, nslots);
    pfree(events);
}

// --- the table access method ---------------------------------------------

[[noreturn]] void refuse(const char* what)
{
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("metering.events_import does not support %s", what),
                    errdetail("It is a load target that stores no rows: COPY or INSERT into it store "
                              "events in metering.events."),
                    errhint("Read and change events in metering.events.")));
}

const TupleTableSlotOps* am_slot_callbacks(Relation rel)
{
    require_served(rel);
    return &TTSOpsVirtual;
}

TableScanDesc am_scan_begin(Relation rel, Snapshot snapshot, int nkeys, ScanKeyData*,
                            ParallelTableScanDesc pscan, uint32 flags)
{
    require_served(rel);
    auto* scan = static_cast<TableScanDesc>(palloc0(sizeof(TableScanDescData)));
    scan->rs_rd = rel;
    scan->rs_snapshot = snapshot;
    scan->rs_nkeys = nkeys;
    scan->rs_flags = flags;
    scan->rs_parallel = pscan;
    return scan;
}

void am_scan_end(TableScanDesc scan)
{
    if (scan->rs_flags & SO_TEMP_SNAPSHOT)
        UnregisterSnapshot(scan->rs_snapshot);
    pfree(scan);
}

void am_scan_rescan(TableScanDesc, ScanKeyData*, bool, bool, bool, bool) {}

bool am_scan_getnextslot(TableScanDesc, ScanDirection, TupleTableSlot* slot)
{
    ExecClearTuple(slot);
    return false;
}

void am_scan_set_tidrange(TableScanDesc, ItemPointer, ItemPointer) {}

Size am_parallelscan_estimate(Relation rel)
{
    require_served(rel);
    return sizeof(ParallelTableScanDescData);
}

Size am_parallelscan_initialize(Relation rel, ParallelTableScanDesc pscan)
{
    require_served(rel);
    pscan->phs_relid = RelationGetRelid(rel);
    pscan->phs_syncscan = false;
    pscan->phs_snapshot_any = false;
    return sizeof(ParallelTableScanDescData);
}

void am_parallelscan_reinitialize(Relation, ParallelTableScanDesc) {}

IndexFetchTableData* am_index_fetch_begin(Relation rel)
{
    require_served(rel);
    auto* fetch = static_cast<IndexFetchTableData*>(palloc0(sizeof(IndexFetchTableData)));
    fetch->rel = rel;
    return fetch;
}

void am_index_fetch_reset(IndexFetchTableData*) {}
void am_index_fetch_end(IndexFetchTableData* fetch) { pfree(fetch); }

bool am_index_fetch_tuple(IndexFetchTableData*, ItemPointer, Snapshot, TupleTableSlot*, bool* call_again,
                          bool* all_dead)
{
    *call_again = false;
    if (all_dead)
        *all_dead = false;
    return false;
}

bool am_tuple_fetch_row_version(Relation rel, ItemPointer, Snapshot, TupleTableSlot*)
{
    require_served(rel);
    return false;
}
bool am_tuple_tid_valid(TableScanDesc, ItemPointer) { return false; }
void am_tuple_get_latest_tid(TableScanDesc, ItemPointer) {}
bool am_tuple_satisfies_snapshot(Relation rel, TupleTableSlot*, Snapshot)
{
    require_served(rel);
    return false;
}

TransactionId am_index_delete_tuples(Relation, TM_IndexDeleteOp*) { refuse("indexes"); }

void am_tuple_insert(Relation rel, TupleTableSlot* slot, CommandId, int, BulkInsertStateData*)
{
    metering::pg::guarded([&] { insert_row(rel, slot); });
}

void am_tuple_insert_speculative(Relation, TupleTableSlot*, CommandId, int, BulkInsertStateData*, uint32)
{
    refuse("INSERT ... ON CONFLICT");
}

void am_tuple_complete_speculative(Relation, TupleTableSlot*, uint32, bool) { refuse("INSERT ... ON CONFLICT"); }

void am_multi_insert(Relation rel, TupleTableSlot** slots, int nslots, CommandId, int, BulkInsertStateData*)
{
    metering::pg::guarded([&] { insert_rows(rel, slots, nslots); });
}

TM_Result am_tuple_delete(Relation, ItemPointer, CommandId, Snapshot, Snapshot, bool, TM_FailureData*, bool)
{
    refuse("DELETE");
}

TM_Result am_tuple_update(Relation, ItemPointer, TupleTableSlot*, CommandId, Snapshot, Snapshot, bool,
                          TM_FailureData*, LockTupleMode*, bool*)
{
    refuse("UPDATE");
}

TM_Result am_tuple_lock(Relation, ItemPointer, Snapshot, TupleTableSlot*, CommandId, LockTupleMode,
                        LockWaitPolicy, uint8, TM_FailureData*)
{
    refuse("row locks");
}

void am_finish_bulk_insert(Relation rel, int) { require_served(rel); }

// An empty relation file, as heap makes one: the rest of Postgres (size
// functions, DROP, TRUNCATE, ALTER TABLE SET TABLESPACE) finds what it expects.
// Also where CREATE TABLE ... USING metering_import and ALTER TABLE ... SET
// ACCESS METHOD metering_import end for any table but events_import.
void am_relation_set_new_filenode(Relation rel, const RelFileNode* newrnode, char persistence,
                                  TransactionId* freezeXid, MultiXactId* minmulti)
{
    if (!is_events_import_or_rewrite(rel) && !is_events_import_being_created(rel))
        refuse_relation(rel);
    *freezeXid = InvalidTransactionId;  // no rows, so no transaction ids to freeze
    *minmulti = InvalidMultiXactId;
    SMgrRelation srel = RelationCreateStorage(*newrnode, persistence, true);
    if (persistence == RELPERSISTENCE_UNLOGGED) {
        smgrcreate(srel, INIT_FORKNUM, false);
        log_smgrcreate(newrnode, INIT_FORKNUM);
        smgrimmedsync(srel, INIT_FORKNUM);
    }
    smgrclose(srel);
}

void am_relation_nontransactional_truncate(Relation rel) { require_served(rel); }

void am_relation_copy_data(Relation rel, const RelFileNode* newrnode)
{
    require_served(rel);
    SMgrRelation dst = RelationCreateStorage(*newrnode, rel->rd_rel->relpersistence, true);
    smgrclose(dst);
    RelationDropStorage(rel);
}

void am_relation_copy_for_cluster(Relation old_rel, Relation new_rel, Relation, bool, TransactionId,
                                  TransactionId* xid_cutoff, MultiXactId* multi_cutoff, double* num_tuples,
                                  double* tups_vacuumed, double* tups_recently_dead)
{
    require_served(old_rel);
    require_served(new_rel);
    *xid_cutoff = InvalidTransactionId;
    *multi_cutoff = InvalidMultiXactId;
    *num_tuples = 0;
    *tups_vacuumed = 0;
    *tups_recently_dead = 0;
}

void am_relation_vacuum(Relation rel, VacuumParams*, BufferAccessStrategy) { require_served(rel); }

bool am_scan_analyze_next_block(TableScanDesc, BlockNumber, BufferAccessStrategy) { return false; }

bool am_scan_analyze_next_tuple(TableScanDesc, TransactionId, double*, double*, TupleTableSlot*) { return false; }

double am_index_build_range_scan(Relation, Relation, IndexInfo*, bool, bool, bool, BlockNumber, BlockNumber,
                                 IndexBuildCallback, void*, TableScanDesc)
{
    refuse("indexes");
}

void am_index_validate_scan(Relation, Relation, IndexInfo*, Snapshot, ValidateIndexState*) { refuse("indexes"); }

uint64 am_relation_size(Relation rel, ForkNumber)
{
    require_served(rel);
    return 0;
}

bool am_relation_needs_toast_table(Relation rel)
{
    require_served(rel);
    return false;
}

Oid am_relation_toast_am(Relation rel)
{
    require_served(rel);
    return InvalidOid;
}

void am_relation_fetch_toast_slice(Relation, Oid, int32, int32, int32, varlena*) { refuse("TOAST"); }

void am_relation_estimate_size(Relation rel, int32*, BlockNumber* pages, double* tuples, double* allvisfrac)
{
    require_served(rel);
    *pages = 0;
    *tuples = 0;
    *allvisfrac = 0;
}

bool am_scan_bitmap_next_block(TableScanDesc, TBMIterateResult*) { return false; }
bool am_scan_bitmap_next_tuple(TableScanDesc, TBMIterateResult*, TupleTableSlot*) { return false; }
bool am_scan_sample_next_block(TableScanDesc, SampleScanState*) { return false; }
bool am_scan_sample_next_tuple(TableScanDesc, SampleScanState*, TupleTableSlot*) { return false; }

const TableAmRoutine* import_am()
{
    static TableAmRoutine am;
    if (am.type == T_Invalid) {
        am.slot_callbacks = am_slot_callbacks;
        am.scan_begin = am_scan_begin;
        am.scan_end = am_scan_end;
        am.scan_rescan = am_scan_rescan;
        am.scan_getnextslot = am_scan_getnextslot;
        am.scan_set_tidrange = am_scan_set_tidrange;
        am.scan_getnextslot_tidrange = am_scan_getnextslot;
        am.parallelscan_estimate = am_parallelscan_estimate;
        am.parallelscan_initialize = am_parallelscan_initialize;
        am.parallelscan_reinitialize = am_parallelscan_reinitialize;
        am.index_fetch_begin = am_index_fetch_begin;
        am.index_fetch_reset = am_index_fetch_reset;
        am.index_fetch_end = am_index_fetch_end;
        am.index_fetch_tuple = am_index_fetch_tuple;
        am.tuple_fetch_row_version = am_tuple_fetch_row_version;
        am.tuple_tid_valid = am_tuple_tid_valid;
        am.tuple_get_latest_tid = am_tuple_get_latest_tid;
        am.tuple_satisfies_snapshot = am_tuple_satisfies_snapshot;
        am.index_delete_tuples = am_index_delete_tuples;
        am.tuple_insert = am_tuple_insert;
        am.tuple_insert_speculative = am_tuple_insert_speculative;
        am.tuple_complete_speculative = am_tuple_complete_speculative;
        am.multi_insert = am_multi_insert;
        am.tuple_delete = am_tuple_delete;
        am.tuple_update = am_tuple_update;
        am.tuple_lock = am_tuple_lock;
        am.finish_bulk_insert = am_finish_bulk_insert;
        am.relation_set_new_filenode = am_relation_set_new_filenode;
        am.relation_nontransactional_truncate = am_relation_nontransactional_truncate;
        am.relation_copy_data = am_relation_copy_data;
        am.relation_copy_for_cluster = am_relation_copy_for_cluster;
        am.relation_vacuum = am_relation_vacuum;
        am.scan_analyze_next_block = am_scan_analyze_next_block;
        am.scan_analyze_next_tuple = am_scan_analyze_next_tuple;
        am.index_build_range_scan = am_index_build_range_scan;
        am.index_validate_scan = am_index_validate_scan;
        am.relation_size = am_relation_size;
        am.relation_needs_toast_table = am_relation_needs_toast_table;
        am.relation_toast_am = am_relation_toast_am;
        am.relation_fetch_toast_slice = am_relation_fetch_toast_slice;
        am.relation_estimate_size = am_relation_estimate_size;
        am.scan_bitmap_next_block = am_scan_bitmap_next_block;
        am.scan_bitmap_next_tuple = am_scan_bitmap_next_tuple;
        am.scan_sample_next_block = am_scan_sample_next_block;
        am.scan_sample_next_tuple = am_scan_sample_next_tuple;
        am.type = T_TableAmRoutine;
    }
    return &am;
}

// --- the CHECK constraint ---------------------------------------------------

// The check function is executable by PUBLIC (a CHECK constraint's function
// needs EXECUTE for whoever inserts), but answers only a role that may insert
// into events_import; the answer is kept for the rest of the statement.
void require_insert_privilege()
{
    static Oid checked_user = InvalidOid;
    static LocalTransactionId checked_lxid = InvalidLocalTransactionId;
    static CommandId checked_cid = InvalidCommandId;
    const Oid user = GetUserId();
    const CommandId cid = GetCurrentCommandId(false);
    if (user == checked_user && MyProc->lxid == checked_lxid && cid == checked_cid)
        return;
    Oid relid = metering::pg::relation_oid(metering::pg::Rel::events_import);
    if (pg_class_aclcheck(relid, user, ACL_INSERT) != ACLCHECK_OK &&
        pg_attribute_aclcheck_all(relid, user, ACL_INSERT, ACLMASK_ANY) != ACLCHECK_OK)  // column grants
        aclcheck_error(ACLCHECK_NO_PRIV, OBJECT_TABLE, "events_import");
    checked_user = user;
    checked_lxid = MyProc->lxid;
    checked_cid = cid;
}

bool check_row(FunctionCallInfo fcinfo)
{
    require_insert_privilege();
    if (PG_NARGS() != kColumns)
        elog(ERROR, "metering._import_check: expected %d arguments", kColumns);
    for (int c : {kCustomer, kMeter, kValue, kOccurred})
        if (PG_ARGISNULL(c))
            metering::core::throw_null_argument(kNames[c]);
    Event ev{};
    ev.customer_id = PG_GETARG_TEXT_PP(kCustomer);
    ev.meter = PG_GETARG_TEXT_PP(kMeter);
    ev.value = PG_GETARG_NUMERIC(kValue);
    ev.occurred_at = PG_GETARG_TIMESTAMPTZ(kOccurred);
    ev.has_due_at = !PG_ARGISNULL(kDue);
    ev.due_at = ev.has_due_at ? PG_GETARG_TIMESTAMPTZ(kDue) : 0;
    ev.idempotency_key = PG_ARGISNULL(kKey) ? nullptr : PG_GETARG_TEXT_PP(kKey);
    ev.properties = PG_ARGISNULL(kProperties) ? nullptr : PG_GETARG_JSONB_P(kProperties);
    ev.op = CounterOp::none;
    metering::ingest::validate_event(ev);
    return true;
}

}  // namespace

namespace metering::ingest {

void reset_import_buffer()
{
    // Called at transaction end (the memory is gone with it) and at any
    // subtransaction abort; rows of an outer level survive an inner abort.
    if (statement == nullptr)
        return;
    if (!IsTransactionState())
        statement = nullptr;  // the transaction's memory goes with it
    else if (GetCurrentSubTransactionId() <= statement->subxact)
        close_statement();
}

void require_import_flushed()
{
    if (statement != nullptr && statement->n > 0)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
                        errmsg("%d rows inserted into metering.events_import were not stored", statement->n),
                        errdetail("The statement trigger import_flush on metering.events_import did not run."),
                        errhint("Keep the trigger enabled (ENABLE ALWAYS).")));
}

}  // namespace metering::ingest

extern "C" {

PG_FUNCTION_INFO_V1(metering_import_am_handler);
Datum metering_import_am_handler(PG_FUNCTION_ARGS)
{
    PG_RETURN_POINTER(import_am());
}

PG_FUNCTION_INFO_V1(metering_import_check);
Datum metering_import_check(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&] { return BoolGetDatum(check_row(fcinfo)); });
}

PG_FUNCTION_INFO_V1(metering_import_flush);
Datum metering_import_flush(PG_FUNCTION_ARGS)
{
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
        !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
        elog(ERROR, "metering_import_flush: not an AFTER statement trigger");
    require_events_import(td->tg_relation);
    return metering::pg::guarded([&] {
        flush(statement);
        close_statement();  // the next statement starts its own buffer and count
        return PointerGetDatum(nullptr);
    });
}

}  // extern "C"
