// The ingest path: one event as the bridge sees it, the rules every entry
// point applies (ingest, ingest_batch, counters, COPY), and the event store.
// Plain-C-style code: Postgres calls here may longjmp, so no C++ object with a
// destructor is alive in these frames; core checks throw core::Error.
#pragma once

extern "C" {
#include "postgres.h"
#include "utils/jsonb.h"
#include "utils/numeric.h"
#include "utils/timestamp.h"
}

#include <string_view>

#include "core/validation.hpp"
#include "pg/datum.hpp"

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

// --- the event store's write path (store.cpp) ---------------------------

// Stored event of (customer_id, key), compared with ev: returns its event_id
// when the payload is the same, throws kIdempotencyConflict when it differs,
// returns 0 when there is none. Waits for a transaction still inserting it.
int64 find_duplicate(const Event& ev);

// How errors of store_events name an event: "<label> <first + i>: ...", e.g.
// "ingest_batch: element 3: ". No label: messages as they are (single events).
struct Ordinals {
    const char* label;
    int64 first;
};

// Inserts validated events with dedup on (customer_id, idempotency_key),
// straight into the heap and indexes. ids[i] is the event id (new or stored);
// created[i] whether it is new. Rows keep the order of events.
void store_events(Event* events, int n, const Ordinals& ordinals, int64* ids, bool* created);

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
// Value of a counter at an instant: last set at or before it plus later
// increments. after_write: see this transaction's own operation just stored.
Numeric counter_value_at(text* customer_id, text* counter, TimestampTz at, bool after_write);

}  // namespace metering::ingest
