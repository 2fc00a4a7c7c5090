// Direct access to metering's own tables: their OIDs (cached per backend) and
// unique-key probes through their indexes, without SQL, planner or executor.
// Plain-C-style code: these calls may raise Postgres errors (longjmp).
#pragma once

extern "C" {
#include "postgres.h"
#include "access/genam.h"
#include "access/relscan.h"
#include "executor/tuptable.h"
#include "utils/rel.h"
#include "utils/snapshot.h"
}

namespace metering::pg {

enum class Rel {
    customers, customers_pkey, meters, meters_pkey, events, events_event_id_seq, events_import,
    idempotency_keys, idempotency_keys_pkey, retained_values, event_writes,
    events_idempotency_key,  // 0.1.0's dedup index (store_0_1.cpp)
    kCount
};

// OID of one of metering's relations; raises an error when the extension is missing.
Oid relation_oid(Rel which);
// The same, InvalidOid when the relation does not exist (yet).
Oid relation_oid_if_exists(Rel which);
// Forgets the cached OIDs (on relcache invalidation: DROP EXTENSION may have run).
void forget_relation_oids();

// Attribute numbers (InvalidAttrNumber: no such column) of names[0..n), n <= 16, in rel,
// cached per relation until the cached OIDs are next forgotten (a relcache invalidation
// of one of metering's relations: the events' partitions change the parent's). Valid
// until the next call.
const AttrNumber* column_numbers(Relation rel, const char* const* names, int n);
// Whether an invalidation of relid (InvalidOid: of every relation) concerns a
// relation whose OID is cached.
bool concerns_cached_relation(Oid relid);

// The snapshot that SQL run at this point would read with.
Snapshot current_snapshot();

// An open equality probe on a unique index: key values are text (COLLATE "C")
// and the found row is in slot. Close with probe_end.
struct Probe {
    Relation heap;
    Relation index;
    IndexScanDesc scan;
    TupleTableSlot* slot;
};

// Starts a probe of index on keys[0..nkeys) (text values); lock is held on both relations.
void probe_begin(Probe& probe, Rel heap, Rel index, const Datum* keys, int nkeys, Snapshot snapshot,
                 LOCKMODE lock);
// Next matching row into probe.slot; false when none is left.
bool probe_next(Probe& probe);
void probe_end(Probe& probe, LOCKMODE lock);

}  // namespace metering::pg
