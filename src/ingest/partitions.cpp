// The partitions of metering.events (see partitions.hpp). A month's partition
// is made by metering._create_event_partition (SQL: the DDL is readable there),
// run by a short background worker when it can be: the worker's transaction
// commits at once, so ingesting transactions never hold the ShareUpdateExclusive
// lock that ATTACH PARTITION takes (concurrent ingests of a new month would
// queue behind the first one until it commits), and a query of the caller's
// own that reads metering.events does not stop it (Postgres refuses ALTER TABLE
// on a table its session has open: that is the COPY path's case).
//
// Plain-C style throughout: everything here calls Postgres functions that may
// raise an error, and no C++ object with a destructor is in scope then.
#include "ingest/partitions.hpp"

extern "C" {
#include "access/table.h"
#include "access/xact.h"
#include "catalog/pg_class.h"
#include "catalog/pg_type.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "nodes/makefuncs.h"
#include "parser/parse_func.h"
#include "partitioning/partbounds.h"
#include "partitioning/partdesc.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "storage/latch.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "storage/proc.h"
#include "tcop/tcopprot.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/partcache.h"
#include "utils/relcache.h"
#include "utils/snapmgr.h"
#include "utils/wait_event.h"

PGDLLEXPORT void metering_partition_worker_main(Datum arg);
}

#include "pg/guard.hpp"
#include "pg/relations.hpp"

namespace metering::ingest {

namespace {

constexpr const char* kUndated = "events_undated";
constexpr const char* kRetired = "events_retired";
// How often a caller waiting for the worker checks that the worker does not wait for it.
constexpr long kWaitStepMs = 100;

// What the worker is asked to do (in bgw_extra).
struct PartitionRequest {
    Oid database;
    TimestampTz due_at;
};
static_assert(sizeof(PartitionRequest) <= BGW_EXTRALEN, "bgw_extra holds the request");

// The offset of the bound below value, as get_partition_for_tuple finds it.
int range_offset(Relation events, PartitionBoundInfo bounds, TimestampTz value)
{
    PartitionKey key = RelationGetPartitionKey(events);
    Datum datum = TimestampTzGetDatum(value);
    bool equal;
    return partition_range_datum_bsearch(key->partsupfunc, key->partcollation, bounds, 1, &datum, &equal);
}

// The worker would wait for a lock this transaction holds (it takes
// ShareUpdateExclusiveLock on metering.events): then only this session can.
bool holds_lock_blocking_worker(Oid events)
{
    LOCKTAG tag;
    SET_LOCKTAG_RELATION(tag, MyDatabaseId, events);
    for (LOCKMODE mode = ShareUpdateExclusiveLock; mode <= AccessExclusiveLock; mode++)
        if (LockHeldByMe(&tag, mode))
            return true;
    return false;
}

// Whether pid waits, directly or through other waiters, for this backend.
bool waits_for_me(int pid)
{
    constexpr int kMaxSeen = 64;
    int seen[kMaxSeen];
    int count = 0;
    seen[count++] = pid;
    for (int next = 0; next < count; next++) {
        ArrayType* blockers = DatumGetArrayTypeP(DirectFunctionCall1(pg_blocking_pids, Int32GetDatum(seen[next])));
        const int n = ArrayGetNItems(ARR_NDIM(blockers), ARR_DIMS(blockers));
        const int32* pids = reinterpret_cast<const int32*>(ARR_DATA_PTR(blockers));
        for (int i = 0; i < n; i++) {
            if (pids[i] == MyProcPid)
                return true;
            bool known = false;
            for (int j = 0; j < count && !known; j++)
                known = seen[j] == pids[i];
            if (!known && count < kMaxSeen)
                seen[count++] = pids[i];
        }
    }
    return false;
}

// Waits until the worker has exited. A worker that waits for this transaction
// (behind a lock request that waits for it, say) would never end: that is a
// deadlock the lock manager cannot see, so it is reported here.
void wait_for_worker(BackgroundWorkerHandle* handle)
{
    long waited_ms = 0;
    for (;;) {
        pid_t pid = 0;
        const BgwHandleStatus status = GetBackgroundWorkerPid(handle, &pid);
        if (status == BGWH_STOPPED)
            return;
        if (status == BGWH_POSTMASTER_DIED)
            ereport(FATAL, (errcode(ERRCODE_ADMIN_SHUTDOWN), errmsg("postmaster exited during a metering partition creation")));
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, kWaitStepMs, PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        waited_ms += kWaitStepMs;
        if (status == BGWH_STARTED && waited_ms >= DeadlockTimeout && waits_for_me(pid)) {
            TerminateBackgroundWorker(handle);
            ereport(ERROR, (errcode(ERRCODE_T_R_DEADLOCK_DETECTED), errmsg("deadlock detected"),
                            errdetail("The transaction making a partition of metering.events waits for a lock "
                                      "this transaction holds."),
                            errhint("Retry the transaction.")));
        }
    }
}

// Runs the creation in a background worker; false when none could be started.
bool create_in_worker(TimestampTz due_at)
{
    BackgroundWorker worker;
    memset(&worker, 0, sizeof worker);
    worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
    worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
    worker.bgw_restart_time = BGW_NEVER_RESTART;
    snprintf(worker.bgw_library_name, BGW_MAXLEN, "metering");
    snprintf(worker.bgw_function_name, BGW_MAXLEN, "metering_partition_worker_main");
    snprintf(worker.bgw_name, BGW_MAXLEN, "metering partition creation for process %d", MyProcPid);
    snprintf(worker.bgw_type, BGW_MAXLEN, "metering partition creation");
    worker.bgw_notify_pid = MyProcPid;
    const PartitionRequest request{MyDatabaseId, due_at};
    memcpy(worker.bgw_extra, &request, sizeof request);
    BackgroundWorkerHandle* handle = nullptr;
    if (!RegisterDynamicBackgroundWorker(&worker, &handle))
        return false;
    wait_for_worker(handle);
    pfree(handle);
    return true;
}

// Runs the creation in this transaction (and session).
void create_in_session(TimestampTz due_at)
{
    Relation events = RelationIdGetRelation(pg::relation_oid(pg::Rel::events));
    const bool in_use = events->rd_refcnt > 1;  // beside this reference
    RelationClose(events);
    if (in_use)
        ereport(ERROR, (errcode(ERRCODE_OBJECT_IN_USE),
                        errmsg("metering.events has no partition for due_at %s, and none can be made while a "
                               "query of this session reads metering.events",
                               timestamptz_to_str(due_at)),
                        errhint("Create the month first: SELECT metering.create_event_partitions(from_ts, to_ts).")));
    Oid argtype = TIMESTAMPTZOID;
    List* name = list_make2(makeString(pstrdup("metering")), makeString(pstrdup("_create_event_partition")));
    const Oid function = LookupFuncName(name, 1, &argtype, false);
    (void) OidFunctionCall1(function, TimestampTzGetDatum(due_at));
}

bool has_partition_for(TimestampTz due_at)
{
    Relation events = table_open(pg::relation_oid(pg::Rel::events), RowExclusiveLock);
    const bool found = OidIsValid(partition_for(events, due_at));
    table_close(events, NoLock);
    return found;
}

}  // namespace

Oid partition_for(Relation events, TimestampTz due_at)
{
    PartitionDesc desc = RelationGetPartitionDesc(events, true);
    if (desc->nparts == 0)
        return InvalidOid;
    PartitionBoundInfo bounds = desc->boundinfo;
    const int index = bounds->indexes[range_offset(events, bounds, due_at) + 1];
    return index >= 0 ? desc->oids[index] : InvalidOid;
}

void partition_bounds(Relation events, Oid partition, TimestampTz* lower, TimestampTz* upper)
{
    PartitionDesc desc = RelationGetPartitionDesc(events, true);
    PartitionBoundInfo bounds = desc->boundinfo;
    TIMESTAMP_NOBEGIN(*lower);
    TIMESTAMP_NOEND(*upper);
    int part = -1;
    for (int i = 0; i < desc->nparts; i++)
        if (desc->oids[i] == partition)
            part = i;
    if (part < 0)
        elog(ERROR, "metering: relation %u is not a partition of metering.events", partition);
    // Range bounds are sorted; indexes[j + 1] is the partition from bound j to j + 1.
    for (int j = 0; j < bounds->ndatums; j++) {
        if (bounds->indexes[j + 1] != part)
            continue;
        if (bounds->kind[j][0] == PARTITION_RANGE_DATUM_VALUE)
            *lower = DatumGetTimestampTz(bounds->datums[j][0]);
        if (j + 1 < bounds->ndatums && bounds->kind[j + 1][0] == PARTITION_RANGE_DATUM_VALUE)
            *upper = DatumGetTimestampTz(bounds->datums[j + 1][0]);
        return;
    }
    elog(ERROR, "metering: partition %u of metering.events has no range", partition);
}

PartitionRole partition_role(const char* name)
{
    if (name != nullptr && strcmp(name, kUndated) == 0)
        return PartitionRole::undated;
    if (name != nullptr && strcmp(name, kRetired) == 0)
        return PartitionRole::retired;
    return PartitionRole::month;
}

PartitionRole partition_role(Oid partition)
{
    return partition_role(get_rel_name(partition));
}

void create_partition_for(TimestampTz due_at)
{
    const Oid events = pg::relation_oid(pg::Rel::events);
    if (IsUnderPostmaster && !holds_lock_blocking_worker(events) && create_in_worker(due_at)) {
        AcceptInvalidationMessages();  // the worker's ATTACH
        if (has_partition_for(due_at))
            return;
    }
    // No worker, or it failed: here, so that its error (if any) is this session's.
    create_in_session(due_at);
}

TimestampTz retention_horizon()
{
    Relation events = table_open(pg::relation_oid(pg::Rel::events), AccessShareLock);
    TimestampTz horizon = DT_NOBEGIN;
    PartitionDesc desc = events->rd_rel->relkind == RELKIND_PARTITIONED_TABLE  // not on 0.1.0's schema
                             ? RelationGetPartitionDesc(events, true)
                             : nullptr;
    if (desc != nullptr && desc->nparts > 0) {
        // events_retired is FROM (MINVALUE) TO (horizon)
        PartitionBoundInfo bounds = desc->boundinfo;
        const int offset = range_offset(events, bounds, DT_NOBEGIN);
        const int index = bounds->indexes[offset + 1];
        if (index >= 0 && offset + 1 < bounds->ndatums && partition_role(desc->oids[index]) == PartitionRole::retired &&
            bounds->kind[offset + 1][0] == PARTITION_RANGE_DATUM_VALUE)
            horizon = DatumGetTimestampTz(bounds->datums[offset + 1][0]);
    }
    table_close(events, AccessShareLock);
    return horizon;
}

}  // namespace metering::ingest

// The background worker: one partition in a transaction of its own, as the
// bootstrap superuser (metering._create_event_partition is SECURITY DEFINER:
// the partition belongs to the extension's owner). An error ends the worker;
// the waiting backend then tries in its own transaction and reports it.
extern "C" void metering_partition_worker_main(Datum)
{
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    metering::ingest::PartitionRequest request;
    memcpy(&request, MyBgworkerEntry->bgw_extra, sizeof request);
    BackgroundWorkerInitializeConnectionByOid(request.database, InvalidOid, 0);
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "metering: creating a partition of metering.events");
    Oid type = TIMESTAMPTZOID;
    Datum arg = TimestampTzGetDatum(request.due_at);
    SPI_execute_with_args("SELECT metering._create_event_partition($1)", 1, &type, &arg, nullptr, false, 1);
    PopActiveSnapshot();
    SPI_finish();
    CommitTransactionCommand();
    pgstat_report_activity(STATE_IDLE, nullptr);
}

extern "C" {
PG_FUNCTION_INFO_V1(metering_retention_horizon);
Datum metering_retention_horizon(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([] { return TimestampTzGetDatum(metering::ingest::retention_horizon()); });
}
}
