// The write log of the event store, metering.event_writes: for every
// (sub)transaction and month it stores events in, the inserting transaction and
// the first heap block written. The rollup step and the reads of the tail find
// the transactions their snapshot did not see there and read each month from
// that block on (a TID range scan), so that no index on events.txid is kept up
// per event.
//
// Every month has an index of the access method metering_writes, which stores
// nothing: its insert callback, called by every path that inserts into the
// month (the store, the executor behind the COPY and INSERT trigger, an
// update's or a restore's rows), is told each row's TID and logs the block
// unless this subtransaction already logged the month from a block no higher.
// The log row is inserted by the inserting subtransaction itself, so it is
// visible exactly when the events are. Building the index (a restore loads the
// rows first; REINDEX, CLUSTER and VACUUM FULL build it again) logs block 0.
//
// Plain-C-style code: everything here may raise Postgres errors.
#include "ingest/events.hpp"
#include "ingest/partitions.hpp"

extern "C" {
#include "access/amapi.h"
#include "access/heapam.h"
#include "access/htup_details.h"
#include "access/table.h"
#include "access/xact.h"
#include "access/tableam.h"
#include "catalog/partition.h"
#include "commands/vacuum.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "nodes/makefuncs.h"
#include "storage/proc.h"
#include "utils/inval.h"
}

#include "pg/relations.hpp"

namespace metering::ingest {

namespace {

enum WriteColumn { kWriteTxid, kWritePartition, kWriteFilenode, kWriteFrom, kWriteTo, kWriteFirst, kWriteColumns };
constexpr const char* kWriteColumnNames[kWriteColumns] = {"txid",     "partition", "filenode",
                                                          "due_from", "due_to",    "first_block"};

void insert_write(Relation partition, TimestampTz lower, TimestampTz upper, BlockNumber first_block)
{
    Relation writes = table_open(pg::relation_oid(pg::Rel::event_writes), RowExclusiveLock);
    const AttrNumber* att = pg::column_numbers(writes, kWriteColumnNames, kWriteColumns);
    EState* estate = CreateExecutorState();
    ResultRelInfo* rri = makeNode(ResultRelInfo);
    InitResultRelInfo(rri, writes, 0, nullptr, 0);
    ExecOpenIndices(rri, false);
    TupleTableSlot* slot = MakeSingleTupleTableSlot(RelationGetDescr(writes), table_slot_callbacks(writes));
    ExecClearTuple(slot);
    memset(slot->tts_isnull, true, sizeof(bool) * slot->tts_tupleDescriptor->natts);
    auto set = [&](WriteColumn c, Datum d) {
        if (att[c] == InvalidAttrNumber)
            elog(ERROR, "metering: column metering.event_writes.%s is missing", kWriteColumnNames[c]);
        slot->tts_values[att[c] - 1] = d;
        slot->tts_isnull[att[c] - 1] = false;
    };
    set(kWriteTxid, Int64GetDatum(static_cast<int64>(U64FromFullTransactionId(GetTopFullTransactionId()))));
    set(kWritePartition, ObjectIdGetDatum(RelationGetRelid(partition)));
    set(kWriteFilenode, ObjectIdGetDatum(partition->rd_node.relNode));
    set(kWriteFrom, TimestampTzGetDatum(lower));
    set(kWriteTo, TimestampTzGetDatum(upper));
    set(kWriteFirst, Int64GetDatum(static_cast<int64>(first_block)));
    ExecStoreVirtualTuple(slot);
    table_tuple_insert(writes, slot, GetCurrentCommandId(true), 0, nullptr);
    list_free(ExecInsertIndexTuples(rri, slot, estate, false, false, nullptr, NIL));
    ExecDropSingleTupleTableSlot(slot);
    ExecCloseIndices(rri);
    FreeExecutorState(estate);
    table_close(writes, NoLock);
}

// The months this subtransaction logged, and from which block.
constexpr int kCachedMonths = 8;
struct Logged {
    Oid partition;
    Oid filenode;
    BlockNumber block;
};
struct LogCache {
    LocalTransactionId lxid;
    SubTransactionId subxid;
    int count;
    Logged months[kCachedMonths];
};
LogCache cache = {InvalidLocalTransactionId, InvalidSubTransactionId, 0, {}};

// A log row made in another subtransaction may have been rolled back since.
LogCache& current_cache()
{
    const LocalTransactionId lxid = MyProc->lxid;
    const SubTransactionId subxid = GetCurrentSubTransactionId();
    if (cache.lxid != lxid || cache.subxid != subxid) {
        cache.lxid = lxid;
        cache.subxid = subxid;
        cache.count = 0;
    }
    return cache;
}

void remember(Relation partition, BlockNumber block)
{
    LogCache& c = current_cache();
    for (int i = 0; i < c.count; i++)
        if (c.months[i].partition == RelationGetRelid(partition)) {
            c.months[i] = {RelationGetRelid(partition), partition->rd_node.relNode, block};
            return;
        }
    const int slot = c.count < kCachedMonths ? c.count++ : static_cast<int>(block % kCachedMonths);
    c.months[slot] = {RelationGetRelid(partition), partition->rd_node.relNode, block};
}

bool logged_from(Relation partition, BlockNumber block)
{
    LogCache& c = current_cache();
    for (int i = 0; i < c.count; i++)
        if (c.months[i].partition == RelationGetRelid(partition))
            return c.months[i].filenode == partition->rd_node.relNode && c.months[i].block <= block;
    return false;
}

// The index serves the months of metering.events only: anyone may create an index
// with any access method on a table of theirs, and a log row says where to read.
void require_month(Relation heap)
{
    const Oid events = pg::relation_oid(pg::Rel::events);
    if (!heap->rd_rel->relispartition || get_partition_parent(RelationGetRelid(heap), false) != events ||
        partition_role(RelationGetRelid(heap)) != PartitionRole::month)
        ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                        errmsg("the access method metering_writes serves the months of metering.events only"),
                        errdetail("\"%s\" is not one of them.", RelationGetRelationName(heap))));
}

// The month's bounds, [*lower, *upper), as metering.events partitions by them.
void month_bounds(Relation heap, TimestampTz* lower, TimestampTz* upper)
{
    Relation events = table_open(pg::relation_oid(pg::Rel::events), AccessShareLock);
    partition_bounds(events, RelationGetRelid(heap), lower, upper);
    table_close(events, NoLock);
}

// The months checked and their bounds, for the backend's life: a single ingest
// is a transaction of its own, and looking its month's parent up in pg_inherits
// each time cost as much as logging the write. Detaching or dropping the month
// (or any change to metering.events) invalidates its relcache entry or the
// parent's, and that forgets the month here.
constexpr int kCheckedMonths = 16;
struct CheckedMonth {
    Oid partition;
    TimestampTz lower;
    TimestampTz upper;
};
CheckedMonth checked[kCheckedMonths];
int checked_count = 0;
Oid checked_parent = InvalidOid;  // metering.events when the months were checked
bool checked_callback_registered = false;

void forget_checked_months(Datum, Oid relid)
{
    if (relid == InvalidOid || relid == checked_parent) {
        checked_count = 0;
        return;
    }
    for (int i = 0; i < checked_count; i++)
        if (checked[i].partition == relid)
            checked[i] = checked[--checked_count];
}

void checked_month(Relation heap, TimestampTz* lower, TimestampTz* upper)
{
    for (int i = 0; i < checked_count; i++)
        if (checked[i].partition == RelationGetRelid(heap)) {
            *lower = checked[i].lower;
            *upper = checked[i].upper;
            return;
        }
    if (!checked_callback_registered) {
        CacheRegisterRelcacheCallback(forget_checked_months, (Datum) 0);
        checked_callback_registered = true;
    }
    require_month(heap);
    month_bounds(heap, lower, upper);
    if (checked_parent != pg::relation_oid(pg::Rel::events)) {
        checked_parent = pg::relation_oid(pg::Rel::events);
        checked_count = 0;
    }
    const int slot = checked_count < kCheckedMonths ? checked_count++ : static_cast<int>(RelationGetRelid(heap) % kCheckedMonths);
    checked[slot] = {RelationGetRelid(heap), *lower, *upper};
}

void log_write(Relation heap, BlockNumber block)
{
    if (logged_from(heap, block))
        return;
    TimestampTz lower;
    TimestampTz upper;
    checked_month(heap, &lower, &upper);
    insert_write(heap, lower, upper, block);
    remember(heap, block);
}

// --- the access method -------------------------------------------------------

IndexBuildResult* writes_build(Relation heap, Relation index, IndexInfo*)
{
    require_month(heap);
    // The rows already there were not logged as they came (a restore loads them
    // before it makes the indexes; CLUSTER moved them): read the month whole.
    TimestampTz lower;
    TimestampTz upper;
    month_bounds(heap, &lower, &upper);
    insert_write(heap, lower, upper, 0);
    auto* result = static_cast<IndexBuildResult*>(palloc0(sizeof(IndexBuildResult)));
    result->heap_tuples = 0;
    result->index_tuples = 0;
    (void) index;
    return result;
}

void writes_build_empty(Relation) {}

bool writes_insert(Relation, Datum*, bool*, ItemPointer heap_tid, Relation heap, IndexUniqueCheck, bool,
                   IndexInfo*)
{
    log_write(heap, ItemPointerGetBlockNumber(heap_tid));
    return false;
}

IndexBulkDeleteResult* writes_bulk_delete(IndexVacuumInfo*, IndexBulkDeleteResult* stats,
                                          IndexBulkDeleteCallback, void*)
{
    return stats;
}

IndexBulkDeleteResult* writes_vacuum_cleanup(IndexVacuumInfo*, IndexBulkDeleteResult* stats)
{
    return stats;
}

// Never scanned: it holds no entry.
void writes_cost(PlannerInfo*, IndexPath*, double, Cost* startup, Cost* total, Selectivity* selectivity,
                 double* correlation, double* pages)
{
    *startup = 1.0e10;
    *total = 1.0e10;
    *selectivity = 1.0;
    *correlation = 0.0;
    *pages = 0.0;
}

bytea* writes_options(Datum reloptions, bool validate)
{
    if (validate && reloptions != (Datum) 0)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("the access method metering_writes takes no options")));
    return nullptr;
}

bool writes_validate(Oid) { return true; }

IndexScanDesc writes_begin_scan(Relation, int, int)
{
    ereport(ERROR, (errcode(ERRCODE_FEATURE_NOT_SUPPORTED),
                    errmsg("an index of the access method metering_writes cannot be scanned")));
    return nullptr;
}

void writes_rescan(IndexScanDesc, ScanKey, int, ScanKey, int) {}
void writes_end_scan(IndexScanDesc) {}

}  // namespace

}  // namespace metering::ingest

extern "C" {
PG_FUNCTION_INFO_V1(metering_writes_handler);
Datum metering_writes_handler(PG_FUNCTION_ARGS)
{
    using namespace metering::ingest;
    IndexAmRoutine* am = makeNode(IndexAmRoutine);
    am->amstrategies = 0;
    am->amsupport = 0;
    am->amoptsprocnum = 0;
    am->amoptionalkey = true;
    am->amkeytype = InvalidOid;
    am->amparallelvacuumoptions = VACUUM_OPTION_NO_PARALLEL;
    am->ambuild = writes_build;
    am->ambuildempty = writes_build_empty;
    am->aminsert = writes_insert;
    am->ambulkdelete = writes_bulk_delete;
    am->amvacuumcleanup = writes_vacuum_cleanup;
    am->amcostestimate = writes_cost;
    am->amoptions = writes_options;
    am->amvalidate = writes_validate;
    am->ambeginscan = writes_begin_scan;
    am->amrescan = writes_rescan;
    am->amendscan = writes_end_scan;
    PG_RETURN_POINTER(am);
}
}
