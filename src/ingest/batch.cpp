// metering.ingest_batch(jsonb): a JSON array of events, all or nothing.
#include "ingest/events.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/xact.h"
#include "funcapi.h"
#include "miscadmin.h"
#include "utils/builtins.h"
#include "utils/tuplestore.h"
}

#include <string>

#include "core/input_syntax.hpp"
#include "pg/guard.hpp"

using metering::core::Error;
using metering::ingest::CounterOp;
using metering::ingest::Event;
namespace sqlstate = metering::core::sqlstate;

namespace {

constexpr const char* kKeys[] = {"customer_id", "meter",      "value", "occurred_at",
                                 "idempotency_key", "properties", "due_at"};

const char* json_type(const JsonbValue* v)
{
    switch (v->type) {
    case jbvNull:
        return "null";
    case jbvString:
        return "string";
    case jbvNumeric:
        return "number";
    case jbvBool:
        return "boolean";
    case jbvBinary:
        return JsonContainerIsObject(v->val.binary.data) ? "object" : "array";
    default:
        return "value";
    }
}

[[noreturn]] void throw_type(const char* field, const char* expected, const JsonbValue* v)
{
    throw Error(sqlstate::kBadBatch,
                std::string(field) + " must be a JSON " + expected + ", not " + json_type(v));
}

JsonbValue* member(JsonbContainer* obj, const char* key)
{
    JsonbValue* v = getKeyJsonValueFromContainer(obj, key, strlen(key), nullptr);
    return (v && v->type == jbvNull) ? nullptr : v;
}

text* string_member(JsonbContainer* obj, const char* key, bool required)
{
    JsonbValue* v = member(obj, key);
    if (v == nullptr) {
        if (required)
            metering::core::throw_null_argument(key);
        return nullptr;
    }
    if (v->type != jbvString)
        throw_type(key, "string", v);
    return cstring_to_text_with_len(v->val.string.val, v->val.string.len);
}

// Runs a type input function on text the core has checked (input_syntax.hpp),
// so that an error it raises is a real one and propagates.
Datum parse_checked(PGFunction input, const char* checked_text)
{
    return DirectFunctionCall3(input, CStringGetDatum(checked_text), ObjectIdGetDatum(InvalidOid),
                               Int32GetDatum(-1));
}

Numeric numeric_member(JsonbContainer* obj, const char* key)
{
    JsonbValue* v = member(obj, key);
    if (v == nullptr)
        return DatumGetNumeric(DirectFunctionCall1(int4_numeric, Int32GetDatum(1)));
    if (v->type == jbvNumeric)
        return v->val.numeric;
    if (v->type != jbvString)
        throw_type(key, "number", v);
    const std::string_view s(v->val.string.val, v->val.string.len);
    if (!metering::core::is_numeric_text(s))
        throw Error(sqlstate::kNonFiniteValue,
                    std::string(key) + " " + metering::core::quoted(s) + " is not a number");
    return DatumGetNumeric(parse_checked(numeric_in, pnstrdup(s.data(), s.size())));
}

bool timestamp_member(JsonbContainer* obj, const char* key, TimestampTz* out)
{
    JsonbValue* v = member(obj, key);
    if (v == nullptr)
        return false;
    if (v->type != jbvString)
        throw_type(key, "string (ISO 8601 timestamp)", v);
    const std::string_view s(v->val.string.val, v->val.string.len);
    if (!metering::core::is_iso_timestamp_text(s))
        throw Error(sqlstate::kBadBatch,
                    std::string(key) + " " + metering::core::quoted(s) + " is not a timestamp", {},
                    "Use ISO 8601 with an offset, e.g. 2026-11-21T10:00:00Z.");
    *out = DatumGetTimestampTz(parse_checked(timestamptz_in, pnstrdup(s.data(), s.size())));
    return true;
}

void reject_unknown_keys(JsonbContainer* obj, int known_found)
{
    if ((int) JsonContainerSize(obj) == known_found)
        return;
    JsonbIterator* it = JsonbIteratorInit(obj);
    JsonbValue v;
    JsonbIteratorToken tok;
    while ((tok = JsonbIteratorNext(&it, &v, true)) != WJB_DONE) {
        if (tok != WJB_KEY)
            continue;
        bool known = false;
        for (const char* k : kKeys)
            known = known || (strlen(k) == (size_t) v.val.string.len &&
                              memcmp(k, v.val.string.val, v.val.string.len) == 0);
        if (!known)
            throw Error(sqlstate::kBadBatch,
                        "key " + metering::core::quoted(std::string(v.val.string.val, v.val.string.len)) +
                            " is not an event field",
                        {}, "Event fields are customer_id, meter, value, occurred_at, "
                            "idempotency_key, properties and due_at.");
    }
}

void parse_element(JsonbValue* elem, Event* ev)
{
    if (elem->type != jbvBinary || !JsonContainerIsObject(elem->val.binary.data))
        throw_type("an event", "object", elem);
    JsonbContainer* obj = elem->val.binary.data;
    int found = 0;
    for (const char* k : kKeys)
        found += getKeyJsonValueFromContainer(obj, k, strlen(k), nullptr) != nullptr;
    reject_unknown_keys(obj, found);

    ev->customer_id = string_member(obj, "customer_id", true);
    ev->meter = string_member(obj, "meter", true);
    ev->value = numeric_member(obj, "value");
    if (!timestamp_member(obj, "occurred_at", &ev->occurred_at))
        ev->occurred_at = GetCurrentTransactionStartTimestamp();  // as ingest's DEFAULT now()
    ev->idempotency_key = string_member(obj, "idempotency_key", false);
    ev->has_due_at = timestamp_member(obj, "due_at", &ev->due_at);
    ev->op = CounterOp::none;
    ev->properties = nullptr;
    if (JsonbValue* p = member(obj, "properties")) {
        if (p->type != jbvBinary || !JsonContainerIsObject(p->val.binary.data))
            metering::core::throw_properties_not_object(json_type(p));
        ev->properties = JsonbValueToJsonb(p);
    }
}

// The memory of a batch, kept by the backend between calls: its first block (8 MB,
// more than a batch of 1,000 events takes) survives the reset, so a batch reuses
// pages the last one touched. In the per-call context, every call faulted its pages
// in from the kernel again: 13 % of the backend's time (perf), a third of a batch.
// While a call runs, the memory hangs under the caller's context, so an error frees
// it with that context; a nested call (an event trigger making a partition) gets
// memory of its own.
constexpr Size kBatchMemory = 8 * 1024 * 1024;
MemoryContext spare_batch_memory = nullptr;

MemoryContext take_batch_memory()
{
    MemoryContext memory = spare_batch_memory;
    spare_batch_memory = nullptr;
    if (memory == nullptr)
        return AllocSetContextCreate(CurrentMemoryContext, "metering ingest_batch", kBatchMemory,
                                     ALLOCSET_DEFAULT_INITSIZE, kBatchMemory);
    MemoryContextSetParent(memory, CurrentMemoryContext);
    return memory;
}

void keep_batch_memory(MemoryContext memory)
{
    if (spare_batch_memory != nullptr) {  // a nested call's came back first
        MemoryContextDelete(memory);
        return;
    }
    MemoryContextReset(memory);
    MemoryContextSetParent(memory, TopMemoryContext);
    spare_batch_memory = memory;
}

Datum ingest_batch(FunctionCallInfo fcinfo)
{
    if (PG_ARGISNULL(0))
        metering::core::throw_null_argument("events");
    MemoryContext memory = take_batch_memory();
    MemoryContext caller = MemoryContextSwitchTo(memory);
    Jsonb* batch = PG_GETARG_JSONB_P(0);
    if (!JB_ROOT_IS_ARRAY(batch) || JB_ROOT_IS_SCALAR(batch))
        throw Error(sqlstate::kBadBatch, "events must be a JSON array of event objects", {},
                    "Pass '[{\"customer_id\": \"c1\", \"meter\": \"api_calls\"}]'.");
    const int n = JB_ROOT_COUNT(batch);
    auto* events = static_cast<Event*>(palloc0(sizeof(Event) * (n + 1)));
    for (int i = 0; i < n; i++) {
        try {
            parse_element(getIthJsonbValueFromContainer(&batch->root, i), &events[i]);
            metering::ingest::validate_event(events[i]);
        } catch (const Error& e) {
            throw e.prefixed("ingest_batch: element " + std::to_string(i + 1) + ": ");
        }
        if ((i & 255) == 255)
            CHECK_FOR_INTERRUPTS();
    }
    auto* ids = static_cast<int64*>(palloc(sizeof(int64) * (n + 1)));
    auto* created = static_cast<bool*>(palloc(sizeof(bool) * (n + 1)));
    metering::ingest::store_events(events, n, {"ingest_batch: element", 1}, ids, created);
    MemoryContextSwitchTo(caller);

    InitMaterializedSRF(fcinfo, 0);
    auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
    Datum created_text = CStringGetTextDatum("created");
    Datum duplicate_text = CStringGetTextDatum("duplicate");
    for (int i = 0; i < n; i++) {
        Datum values[3] = {Int32GetDatum(i + 1), Int64GetDatum(ids[i]),
                           created[i] ? created_text : duplicate_text};
        bool nulls[3] = {false, false, false};
        tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls);
    }
    keep_batch_memory(memory);
    return (Datum) 0;
}

}  // namespace

extern "C" {
PG_FUNCTION_INFO_V1(metering_ingest_batch);
Datum metering_ingest_batch(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&] { return ingest_batch(fcinfo); });
}
}
