// The bulk path: COPY metering.events_import (customer_id, meter, value,
// occurred_at, due_at, idempotency_key, properties) FROM ...
//
// events_import is a view with an INSTEAD OF INSERT row trigger: each row is
// validated as it arrives (an error names the COPY line) and buffered; every
// 1,000 rows, and at the end of the statement (an AFTER STATEMENT trigger),
// the buffer goes through the same store as ingest_batch: multi-insert, dedup
// on the idempotency index, duplicates with the same payload skipped. COPY
// reports every row it read; an error anywhere aborts the whole statement.
#include "ingest/events.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "commands/trigger.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

#include "pg/guard.hpp"

using metering::ingest::CounterOp;
using metering::ingest::Event;

namespace {

constexpr int kFlushRows = 1000;

enum Column { kCustomer, kMeter, kValue, kOccurred, kDue, kKey, kProperties, kColumns };
constexpr const char* kNames[kColumns] = {"customer_id", "meter", "value", "occurred_at",
                                          "due_at", "idempotency_key", "properties"};

// Validated events of the running statement. The struct lives in the
// transaction's context, the rows in a child context reset at every flush.
struct Buffer {
    MemoryContext rows;
    SubTransactionId subxact;  // where the statement runs: its abort drops the rows
    Event events[kFlushRows];
    int n;
    int64 rows_before;  // rows of this statement already stored
    int attnum[kColumns];  // -1 until looked up
};

Buffer* buffer = nullptr;

Buffer* open_buffer()
{
    if (buffer == nullptr) {
        auto* b = static_cast<Buffer*>(MemoryContextAllocZero(TopTransactionContext, sizeof(Buffer)));
        b->rows = AllocSetContextCreate(TopTransactionContext, "metering import", ALLOCSET_DEFAULT_SIZES);
        b->subxact = GetCurrentSubTransactionId();
        b->attnum[0] = -1;
        buffer = b;
    }
    return buffer;
}

// Frees the buffer (while its transaction is still alive).
void close_buffer()
{
    if (buffer == nullptr)
        return;
    MemoryContextDelete(buffer->rows);
    pfree(buffer);
    buffer = nullptr;
}

void flush()
{
    if (buffer == nullptr || buffer->n == 0)
        return;
    Buffer* b = buffer;
    auto* ids = static_cast<int64*>(palloc(sizeof(int64) * b->n));
    auto* created = static_cast<bool*>(palloc(sizeof(bool) * b->n));
    metering::ingest::store_events(b->events, b->n, {"events_import: row", b->rows_before + 1}, ids, created);
    b->rows_before += b->n;
    b->n = 0;
    MemoryContextReset(b->rows);
    pfree(ids);
    pfree(created);
}

// Attribute numbers (0-based) of the view's columns, looked up once per statement.
void find_columns(Buffer* b, TupleDesc desc)
{
    for (int c = 0; c < kColumns; c++) {
        int attnum = SPI_fnumber(desc, kNames[c]);
        if (attnum <= 0)
            elog(ERROR, "metering: events_import has no column %s", kNames[c]);
        b->attnum[c] = attnum - 1;
    }
}

// Copies the row into the buffer's memory (one copy, one deforming pass) and validates it.
void add_row(TriggerData* td)
{
    Buffer* b = open_buffer();
    if (b->n == kFlushRows)
        flush();
    TupleDesc desc = td->tg_relation->rd_att;
    if (b->attnum[0] < 0)
        find_columns(b, desc);
    MemoryContext old = MemoryContextSwitchTo(b->rows);
    HeapTuple tuple = heap_copytuple(td->tg_trigtuple);
    auto* all = static_cast<Datum*>(palloc(sizeof(Datum) * desc->natts));
    auto* all_null = static_cast<bool*>(palloc(sizeof(bool) * desc->natts));
    heap_deform_tuple(tuple, desc, all, all_null);
    Datum v[kColumns];
    bool isnull[kColumns];
    for (int c = 0; c < kColumns; c++) {
        v[c] = all[b->attnum[c]];
        isnull[c] = all_null[b->attnum[c]];
    }
    for (int c : {kCustomer, kMeter, kValue, kOccurred})
        if (isnull[c]) {
            MemoryContextSwitchTo(old);
            metering::core::throw_null_argument(kNames[c]);
        }
    Event& ev = b->events[b->n];
    ev = Event{};
    ev.customer_id = DatumGetTextPP(v[kCustomer]);
    ev.meter = DatumGetTextPP(v[kMeter]);
    ev.value = DatumGetNumeric(v[kValue]);  // a short-header value is copied to a full one
    ev.occurred_at = DatumGetTimestampTz(v[kOccurred]);
    ev.has_due_at = !isnull[kDue];
    ev.due_at = ev.has_due_at ? DatumGetTimestampTz(v[kDue]) : 0;
    ev.idempotency_key = isnull[kKey] ? nullptr : DatumGetTextPP(v[kKey]);
    ev.properties = isnull[kProperties] ? nullptr : DatumGetJsonbP(v[kProperties]);
    ev.op = CounterOp::none;
    MemoryContextSwitchTo(old);
    metering::ingest::validate_event(ev);
    b->n++;
}

}  // namespace

namespace metering::ingest {

void reset_import_buffer()
{
    // Called at transaction end (the memory is gone with it) and at any
    // subtransaction abort; rows of an outer level survive an inner abort.
    if (buffer == nullptr)
        return;
    if (!IsTransactionState())
        buffer = nullptr;  // the transaction's memory goes with it
    else if (GetCurrentSubTransactionId() <= buffer->subxact)
        close_buffer();
}

}  // namespace metering::ingest

extern "C" {

PG_FUNCTION_INFO_V1(metering_import_row);
Datum metering_import_row(PG_FUNCTION_ARGS)
{
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_INSTEAD(td->tg_event) ||
        !TRIGGER_FIRED_FOR_ROW(td->tg_event) || !TRIGGER_FIRED_BY_INSERT(td->tg_event))
        elog(ERROR, "metering_import_row: not an INSTEAD OF INSERT row trigger");
    return metering::pg::guarded([&] {
        add_row(td);
        return PointerGetDatum(td->tg_trigtuple);  // counted as inserted
    });
}

PG_FUNCTION_INFO_V1(metering_import_flush);
Datum metering_import_flush(PG_FUNCTION_ARGS)
{
    auto* td = reinterpret_cast<TriggerData*>(fcinfo->context);
    if (!CALLED_AS_TRIGGER(fcinfo) || !TRIGGER_FIRED_AFTER(td->tg_event) ||
        !TRIGGER_FIRED_FOR_STATEMENT(td->tg_event))
        elog(ERROR, "metering_import_flush: not an AFTER statement trigger");
    return metering::pg::guarded([&] {
        flush();
        close_buffer();  // the next statement starts its own buffer and count
        return PointerGetDatum(nullptr);
    });
}

}  // extern "C"
