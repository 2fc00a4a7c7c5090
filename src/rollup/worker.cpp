// The rollup worker: when the library is in shared_preload_libraries, one
// background worker per database of metering.rollup_databases runs a rollup
// step (metering.refresh_usage()) every metering.rollup_interval, so that reads
// and closes find the usage rolled up as it arrives. Without it, pg_cron can
// schedule refresh_usage(), and close_periods rolls up inline before it bills.
//
// Plain-C style throughout: everything here calls Postgres functions that may
// raise an error, and no C++ object with a destructor may be in scope then. An
// error ends the worker; the postmaster starts it again after
// kRestartSeconds (a database being dropped or an extension being updated).
#include "rollup/worker.hpp"

extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "executor/spi.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgstat.h"
#include "postmaster/bgworker.h"
#include "postmaster/interrupt.h"
#include "storage/ipc.h"
#include "storage/latch.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/snapmgr.h"
#include "utils/varlena.h"
#include "utils/wait_event.h"

PGDLLEXPORT void metering_rollup_worker_main(Datum arg);
}

namespace {

constexpr int kRestartSeconds = 10;
constexpr int kMaxDatabases = 16;

int rollup_interval_ms = 1000;
char* rollup_databases = nullptr;

// One step, in its own transaction: nothing when the database does not have
// metering 0.2.0 or later (refresh_usage() is missing).
void run_step()
{
    SetCurrentStatementStartTimestamp();
    StartTransactionCommand();
    SPI_connect();
    PushActiveSnapshot(GetTransactionSnapshot());
    pgstat_report_activity(STATE_RUNNING, "metering rollup step");
    int rc = SPI_execute("SELECT to_regprocedure('metering.refresh_usage()') IS NOT NULL", true, 1);
    bool installed = false;
    if (rc == SPI_OK_SELECT && SPI_processed == 1) {
        bool isnull;
        installed = DatumGetBool(SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull));
    }
    PopActiveSnapshot();
    if (installed) {
        // a new snapshot: the step's lock and snapshot rules (docs/design.md, "Rollups")
        PushActiveSnapshot(GetTransactionSnapshot());
        SPI_execute("SELECT metering.refresh_usage()", false, 1);
        PopActiveSnapshot();
    }
    SPI_finish();
    CommitTransactionCommand();
    pgstat_report_stat(true);
    pgstat_report_activity(STATE_IDLE, nullptr);
}

}  // namespace

namespace metering::rollup {

void define_settings()
{
    DefineCustomIntVariable(
        "metering.rollup_interval",
        "How often the rollup worker rolls up the events committed since its last step.",
        "Only with metering in shared_preload_libraries. Reads are exact whatever the interval: "
        "it decides how much of the usage they read from the events rather than from the rollups.",
        &rollup_interval_ms, 1000, 10, 3600 * 1000, PGC_SIGHUP, GUC_UNIT_MS, nullptr, nullptr, nullptr);
    // A PGC_POSTMASTER setting can only be defined while the server starts.
    if (!process_shared_preload_libraries_in_progress)
        return;
    DefineCustomStringVariable(
        "metering.rollup_databases",
        "The databases whose usage the rollup workers roll up (comma-separated names).",
        "One background worker per database, when metering is in shared_preload_libraries; a database "
        "without the extension costs one catalog lookup per interval.",
        &rollup_databases, "postgres", PGC_POSTMASTER, 0, nullptr, nullptr, nullptr);
}

void register_workers()
{
    if (!process_shared_preload_libraries_in_progress)
        return;
    char* names = pstrdup(rollup_databases);
    List* databases = NIL;
    if (!SplitIdentifierString(names, ',', &databases))
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("metering.rollup_databases \"%s\" is not a list of database names", rollup_databases)));
    if (list_length(databases) > kMaxDatabases)
        ereport(ERROR, (errcode(ERRCODE_INVALID_PARAMETER_VALUE),
                        errmsg("metering.rollup_databases names %d databases, at most %d are served",
                               list_length(databases), kMaxDatabases)));
    ListCell* cell;
    foreach (cell, databases) {
        const char* name = static_cast<const char*>(lfirst(cell));
        BackgroundWorker worker;
        memset(&worker, 0, sizeof worker);
        worker.bgw_flags = BGWORKER_SHMEM_ACCESS | BGWORKER_BACKEND_DATABASE_CONNECTION;
        worker.bgw_start_time = BgWorkerStart_RecoveryFinished;
        worker.bgw_restart_time = kRestartSeconds;
        snprintf(worker.bgw_library_name, BGW_MAXLEN, "metering");
        snprintf(worker.bgw_function_name, BGW_MAXLEN, "metering_rollup_worker_main");
        snprintf(worker.bgw_name, BGW_MAXLEN, "metering rollup worker for database %s", name);
        snprintf(worker.bgw_type, BGW_MAXLEN, "metering rollup worker");
        strlcpy(worker.bgw_extra, name, BGW_EXTRALEN);
        RegisterBackgroundWorker(&worker);
    }
}

}  // namespace metering::rollup

extern "C" void metering_rollup_worker_main(Datum)
{
    pqsignal(SIGHUP, SignalHandlerForConfigReload);
    pqsignal(SIGTERM, die);
    BackgroundWorkerUnblockSignals();
    char database[BGW_EXTRALEN];
    strlcpy(database, MyBgworkerEntry->bgw_extra, BGW_EXTRALEN);
    BackgroundWorkerInitializeConnection(database, nullptr, 0);
    for (;;) {
        (void) WaitLatch(MyLatch, WL_LATCH_SET | WL_TIMEOUT | WL_EXIT_ON_PM_DEATH, rollup_interval_ms,
                         PG_WAIT_EXTENSION);
        ResetLatch(MyLatch);
        CHECK_FOR_INTERRUPTS();
        if (ConfigReloadPending) {
            ConfigReloadPending = false;
            ProcessConfigFile(PGC_SIGHUP);
        }
        run_step();
    }
}
