// The ingest path: one event as the bridge sees it, the rules every entry
// point applies (ingest, ingest_batch, counters, COPY), and the event store.
// Plain-C-style code: Postgres calls here may longjmp, so no C++ object with a
// destructor is alive in these frames; core checks throw core::Error.
#pragma once

extern "C" {
#include "postgres.h"
#include "executor/tuptable.h"
#include "utils/jsonb.h"
#include "utils/rel.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

#include <string_view>

#include "core/payload.hpp"
#include "core/validation.hpp"
#include "pg/datum.hpp"
#include "pg/relations.hpp"

namespace metering::ingest {

enum class CounterOp { none, increment, set };

// One event to store. Pointers are detoasted and live in the caller's context.
struct Event {
    text* customer_id;
    text* meter;
    Numeric value;
    TimestampTz occurred_at;
    TimestampTz due_at;  // filled from occurred_at by validate_event when absent
    bool has_due_at;
    text* idempotency_key;  // nullptr: no dedup
    Jsonb* properties;      // nullptr: {}
    CounterOp op;
    // Argument names for messages: counter functions call them "by"/"value" and "at".
    const char* value_field;  // nullptr: "value"
    const char* time_field;   // nullptr: "occurred_at"
    // The row's own op column (COPY into events), named in the message when the
    // meter is not a counter; nullptr: the operation is the function's.
    const char* op_field;
};

struct MeterInfo {
    core::Aggregation kind;
    bool allow_negative;
};

// Module set-up: GUC and cache invalidation callbacks (called from _PG_init).
void init_module();
// metering.max_future_skew in microseconds.
int64 max_future_skew();

using pg::view;

// Applies every rule of the spec to ev (throws core::Error); fills defaults.
// field_prefix names the source in messages, e.g. "" or "element 3: ".
MeterInfo validate_event(Event& ev);

// The customer exists and the meter is a counter (throws otherwise).
void require_counter(const Event& ev);

// --- the event store's write path (store.cpp, keys.cpp, partitions.cpp) ----

// How errors of the store name an event: "<label> <first + i>: ...", e.g.
// "ingest_batch: element 3: ". No label: messages as they are (single events).
struct Ordinals {
    const char* label;
    int64 first;
};

// Inserts validated events with dedup on (customer_id, idempotency_key),
// straight into the heap and indexes of their month's partition. ids[i] is the
// event id (new or stored); created[i] whether it is new. Rows keep the order
// of events within a partition.
void store_events(Event* events, int n, const Ordinals& ordinals, int64* ids, bool* created);

// Whether the database has 0.2.0's partitioned store (metering.idempotency_keys);
// before ALTER EXTENSION metering UPDATE it still has 0.1.0's one table.
bool partitioned_store();

// 0.1.0's store (store_0_1.cpp): the same contracts on 0.1.0's schema.
namespace v0_1 {
void store_events_0_1(Event* events, int n, const Ordinals& ordinals, int64* ids, bool* created);
// The stored event of ev's key compared with ev: its id, 0 when there is none.
int64 find_duplicate_0_1(const Event& ev);
}  // namespace v0_1

// Dedup through metering.idempotency_keys (keys.cpp): stores the key of every
// keyed event whose created[i] is true, under ids[i]. A key already stored with
// the same payload (earlier, or earlier in this call) makes ids[i] that event's
// id and created[i] false, and throws kIdempotencyConflict when the payload
// differs. Waits for a transaction still inserting the key.
void dedup_keys(const Event* events, int n, const Ordinals& ordinals, int64* ids, bool* created);

// The fingerprint of an event's properties kept with its key (nullptr: {}).
int64 properties_hash(const Jsonb* properties);

// Reads the row a key lookup found: returns its event id and sets *cmp to how
// its payload compares with ev. extra is the caller's (keys.cpp: the fingerprint).
using ReadTwin = int64 (*)(const Event& ev, TupleTableSlot* row, Relation heap, const void* extra,
                           core::PayloadComparison* cmp);

// The live row with ev's (customer_id, idempotency_key) other than self, through
// index of heap (keys.cpp): a row another transaction is still inserting (or
// deleting) is waited for, then looked up again, as Postgres does for a unique
// index. Returns the twin's event id (as read gives it), 0 when there is none; throws
// kIdempotencyConflict when the payloads differ. Used by both stores: 0.2.0's
// keys table and 0.1.0's events.
int64 find_twin(const Event& ev, pg::Rel heap, pg::Rel index, const ItemPointerData* self, ReadTwin read,
                const void* extra);

// A row of metering.events as the store writes it, column by column.
enum EventColumn { kEventId, kCustomer, kMeter, kValue, kOccurred, kDue, kIngested, kKey, kProperties, kOp,
                   kTxid, kEventColumns };
extern const char* const kEventColumnNames[kEventColumns];
struct StoredRow {
    Datum value[kEventColumns];
    bool isnull[kEventColumns];
};

// Inserts rows into the partitions of their due_at (creating a missing month's
// partition), without triggers. A row due before the retention horizon is
// refused (kBeforeRetention), named by ordinals as row i.
// positions[i] is row i's place in the caller's list (nullptr: i); events (in
// that list, may be nullptr) name the field that set a refused due_at.
void insert_rows(const StoredRow* rows, int n, const Ordinals& ordinals, const int* positions = nullptr,
                 const Event* events = nullptr);

// The row of a new event, as ingest stores it.
void event_row(const Event& ev, int64 id, StoredRow& row);

// What validate_event fills in (due_at from occurred_at, the counter
// operation), for an event it already validated: the bulk path validates each
// row in its CHECK constraint and stores it later.
void complete_validated_event(Event& ev);

// The bulk path (import.cpp): forgets events buffered by an aborted statement.
void reset_import_buffer();
// Raises an error when rows inserted into events_import are still buffered
// (at commit: the statement trigger that stores them did not run).
void require_import_flushed();

// Transaction-scoped exclusive lock on one (customer, counter): serializes
// counter operations so that each returns the value it produced.
void lock_counter(const Event& ev);
// Refuses an instant before the retention horizon (kBeforeRetention): the
// events before it were dropped. field names the argument.
void require_retained(TimestampTz at, const char* field);
// Value of a counter at an instant: last set at or before it plus later
// increments. after_write: see this transaction's own operation just stored.
Numeric counter_value_at(text* customer_id, text* counter, TimestampTz at, bool after_write);

}  // namespace metering::ingest
