// The partitions of metering.events: one per calendar month (UTC) of due_at,
// created on demand; events_undated, where rows inserted without due_at land;
// events_retired, which stands for the months retention dropped.
// Plain-C-style code: these calls may raise Postgres errors (longjmp).
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/rel.h"
#include "utils/timestamp.h"
}

namespace metering::ingest {

enum class PartitionRole { month, undated, retired };

// The partition of metering.events (open as events) holding due_at; InvalidOid
// when no partition does.
Oid partition_for(Relation events, TimestampTz due_at);

// The bounds [*lower, *upper) of a partition of metering.events (open as events);
// -infinity and infinity stand for MINVALUE and MAXVALUE.
void partition_bounds(Relation events, Oid partition, TimestampTz* lower, TimestampTz* upper);

// What a partition of metering.events is for (by its name).
PartitionRole partition_role(const char* name);
PartitionRole partition_role(Oid partition);

// Creates the partition of due_at's month unless one exists: in a background
// transaction of its own, so that the caller holds no lock stronger than an
// insert's, or in the caller's transaction when no worker can do it.
void create_partition_for(TimestampTz due_at);

// The retention horizon: events due before it were dropped (DT_NOBEGIN: none).
TimestampTz retention_horizon();

}  // namespace metering::ingest
