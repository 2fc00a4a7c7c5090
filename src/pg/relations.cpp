// OIDs of metering's tables and direct index probes (see relations.hpp).
#include "pg/relations.hpp"

extern "C" {
#include "access/genam.h"
#include "access/nbtree.h"
#include "access/table.h"
#include "access/tableam.h"
#include "catalog/namespace.h"
#include "executor/tuptable.h"
#include "utils/fmgroids.h"
#include "utils/lsyscache.h"
#include "utils/snapmgr.h"
}

namespace metering::pg {

namespace {

constexpr const char* kNames[static_cast<int>(Rel::kCount)] = {
    "customers", "customers_pkey", "meters", "meters_pkey", "events", "events_idempotency_key",
    "events_event_id_seq", "events_import"};

Oid oids[static_cast<int>(Rel::kCount)];

}  // namespace

Oid relation_oid_if_exists(Rel which)
{
    Oid& oid = oids[static_cast<int>(which)];
    if (!OidIsValid(oid)) {
        Oid ns = get_namespace_oid("metering", true);
        if (OidIsValid(ns))
            oid = get_relname_relid(kNames[static_cast<int>(which)], ns);
    }
    return oid;
}

Oid relation_oid(Rel which)
{
    Oid oid = relation_oid_if_exists(which);
    if (!OidIsValid(oid))
        elog(ERROR, "metering: relation metering.%s is missing", kNames[static_cast<int>(which)]);
    return oid;
}

void forget_relation_oids()
{
    for (Oid& oid : oids)
        oid = InvalidOid;
}

bool concerns_cached_relation(Oid relid)
{
    if (!OidIsValid(relid))
        return true;
    for (Oid oid : oids)
        if (oid == relid)
            return true;
    return false;
}

Snapshot current_snapshot()
{
    return ActiveSnapshotSet() ? GetActiveSnapshot() : GetTransactionSnapshot();
}

void probe_begin(Probe& probe, Rel heap, Rel index, const Datum* keys, int nkeys, Snapshot snapshot,
                 LOCKMODE lock)
{
    ScanKeyData scankeys[INDEX_MAX_KEYS];
    for (int k = 0; k < nkeys; k++)
        ScanKeyInit(&scankeys[k], k + 1, BTEqualStrategyNumber, F_TEXTEQ, keys[k]);
    probe.heap = table_open(relation_oid(heap), lock);
    probe.index = index_open(relation_oid(index), lock);
    probe.slot = table_slot_create(probe.heap, nullptr);
    probe.scan = index_beginscan(probe.heap, probe.index, snapshot, nkeys, 0);
    index_rescan(probe.scan, scankeys, nkeys, nullptr, 0);
}

bool probe_next(Probe& probe)
{
    return index_getnext_slot(probe.scan, ForwardScanDirection, probe.slot);
}

void probe_end(Probe& probe, LOCKMODE lock)
{
    index_endscan(probe.scan);
    ExecDropSingleTupleTableSlot(probe.slot);
    index_close(probe.index, lock);
    table_close(probe.heap, lock);
}

}  // namespace metering::pg
