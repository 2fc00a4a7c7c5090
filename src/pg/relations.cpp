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
    "customers", "customers_pkey", "meters", "meters_pkey", "events", "events_event_id_seq", "events_import",
    "idempotency_keys", "idempotency_keys_pkey", "retained_values", "event_writes",
    "events_idempotency_key"};

Oid oids[static_cast<int>(Rel::kCount)];

// column_numbers' cache: the last relations asked about, round robin.
constexpr int kMaxColumns = 16;
constexpr int kCachedRelations = 8;
struct Columns {
    Oid relid;
    const char* const* names;
    AttrNumber att[kMaxColumns];
};
Columns columns[kCachedRelations];
int next_columns = 0;

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
    for (Columns& c : columns)
        c.relid = InvalidOid;
}

const AttrNumber* column_numbers(Relation rel, const char* const* names, int n)
{
    Assert(n <= kMaxColumns);
    const Oid relid = RelationGetRelid(rel);
    for (const Columns& c : columns)
        if (c.relid == relid && c.names == names)
            return c.att;
    Columns& c = columns[next_columns];
    next_columns = (next_columns + 1) % kCachedRelations;
    TupleDesc desc = RelationGetDescr(rel);
    for (int i = 0; i < n; i++) {
        c.att[i] = InvalidAttrNumber;
        for (int a = 0; a < desc->natts; a++) {
            Form_pg_attribute attr = TupleDescAttr(desc, a);
            if (!attr->attisdropped && strcmp(NameStr(attr->attname), names[i]) == 0)
                c.att[i] = attr->attnum;
        }
    }
    c.relid = relid;
    c.names = names;
    return c.att;
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
