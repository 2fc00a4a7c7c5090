// Rules, caches and the event store shared by every ingest entry point.
#include "ingest/events.hpp"

extern "C" {
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/hsearch.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
}

#include <string>

#include "core/payload.hpp"
#include "pg/guard.hpp"

namespace metering::ingest {

namespace {

int max_future_skew_seconds = 300;
bool trusted_insert = false;

// ---------------------------------------------------------------------------
// Caches of customers that exist and of meters' rules. Positive entries only;
// both are dropped when a (sub)transaction aborts (an entry may have come from
// a row it created) and on relcache invalidation of the catalog tables.
// Customers are never deleted and meters never change (triggers refuse it).
// ---------------------------------------------------------------------------

struct CacheEntry {
    uint64 hash;  // hash key
    char* key;
    int key_len;
    MeterInfo meter;
    char* value_property;  // meters only; nullptr when the value is aggregated
    Jsonb* filter;         // meters only; nullptr when unfiltered
};

constexpr long kMaxCacheEntries = 100000;

MemoryContext cache_context = nullptr;
HTAB* customer_cache = nullptr;
HTAB* meter_cache = nullptr;
Oid events_sequence = InvalidOid;

void reset_caches()
{
    customer_cache = nullptr;
    meter_cache = nullptr;
    events_sequence = InvalidOid;
    if (cache_context)
        MemoryContextReset(cache_context);
}

void on_xact(XactEvent event, void*)
{
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
        reset_caches();
    trusted_insert = false;
}

void on_subxact(SubXactEvent event, SubTransactionId, SubTransactionId, void*)
{
    if (event == SUBXACT_EVENT_ABORT_SUB)
        reset_caches();
}

void on_relcache(Datum, Oid)
{
    // Any invalidation may be a DROP EXTENSION; entries are cheap to reload.
    reset_caches();
}

HTAB* cache_table(HTAB** table, const char* name)
{
    if (*table == nullptr || hash_get_num_entries(*table) > kMaxCacheEntries) {
        if (*table)
            reset_caches();
        HASHCTL ctl;
        ctl.keysize = sizeof(uint64);
        ctl.entrysize = sizeof(CacheEntry);
        ctl.hcxt = cache_context;
        *table = hash_create(name, 256, &ctl, HASH_ELEM | HASH_BLOBS | HASH_CONTEXT);
    }
    return *table;
}

uint64 text_hash(const text* t)
{
    return hash_bytes_extended(reinterpret_cast<const unsigned char*>(VARDATA_ANY(t)),
                               VARSIZE_ANY_EXHDR(t), 0);
}

CacheEntry* cache_find(HTAB** table, const char* name, const text* key)
{
    uint64 h = text_hash(key);
    auto* entry = static_cast<CacheEntry*>(hash_search(cache_table(table, name), &h, HASH_FIND, nullptr));
    if (entry && entry->key_len == (int) VARSIZE_ANY_EXHDR(key) &&
        memcmp(entry->key, VARDATA_ANY(key), entry->key_len) == 0)
        return entry;
    return nullptr;
}

CacheEntry* cache_add(HTAB** table, const char* name, const text* key)
{
    uint64 h = text_hash(key);
    bool found;
    auto* entry = static_cast<CacheEntry*>(hash_search(cache_table(table, name), &h, HASH_ENTER, &found));
    entry->key_len = VARSIZE_ANY_EXHDR(key);
    entry->key = static_cast<char*>(MemoryContextAlloc(cache_context, entry->key_len));
    memcpy(entry->key, VARDATA_ANY(key), entry->key_len);
    entry->value_property = nullptr;
    entry->filter = nullptr;
    return entry;
}

bool customer_exists(const text* customer_id)
{
    if (cache_find(&customer_cache, "metering customers", customer_id))
        return true;
    Oid types[1] = {TEXTOID};
    Datum args[1] = {PointerGetDatum(customer_id)};
    SPI_connect();
    SPI_execute_with_args("SELECT 1 FROM metering.customers WHERE customer_id = $1", 1, types,
                          args, nullptr, true, 1);
    bool exists = SPI_processed > 0;
    SPI_finish();
    if (exists)
        cache_add(&customer_cache, "metering customers", customer_id);
    return exists;
}

const CacheEntry* find_meter(const text* code)
{
    if (CacheEntry* hit = cache_find(&meter_cache, "metering meters", code))
        return hit;
    Oid types[1] = {TEXTOID};
    Datum args[1] = {PointerGetDatum(code)};
    SPI_connect();
    SPI_execute_with_args(
        "SELECT aggregation, allow_negative, value_property, filter FROM metering.meters WHERE code = $1",
        1, types, args, nullptr, true, 1);
    CacheEntry* entry = nullptr;
    if (SPI_processed > 0) {
        HeapTuple row = SPI_tuptable->vals[0];
        TupleDesc desc = SPI_tuptable->tupdesc;
        char* kind = SPI_getvalue(row, desc, 1);
        bool isnull;
        bool allow_negative = DatumGetBool(SPI_getbinval(row, desc, 2, &isnull));
        Datum property = SPI_getbinval(row, desc, 3, &isnull);
        bool no_property = isnull;
        Datum filter = SPI_getbinval(row, desc, 4, &isnull);
        bool no_filter = isnull;
        auto parsed = core::parse_aggregation(kind);
        entry = cache_add(&meter_cache, "metering meters", code);
        entry->meter = MeterInfo{parsed ? *parsed : core::Aggregation::custom, allow_negative};
        if (!no_property)
            entry->value_property = MemoryContextStrdup(cache_context, TextDatumGetCString(property));
        if (!no_filter) {
            Jsonb* f = DatumGetJsonbP(filter);
            entry->filter = static_cast<Jsonb*>(MemoryContextAlloc(cache_context, VARSIZE(f)));
            memcpy(entry->filter, f, VARSIZE(f));
        }
    }
    SPI_finish();
    return entry;
}

// --- printing values for messages (only on the error path) ----------------

std::string numeric_text(Numeric value)
{
    return std::string(pg::pg_safe(
        [&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value))); }));
}

std::string timestamp_text(TimestampTz at)
{
    return std::string(pg::pg_safe(
        [&] { return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(at))); }));
}

bool numeric_negative(Numeric value)
{
    static Numeric zero = nullptr;
    if (zero == nullptr) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        zero = int64_to_numeric(0);
        MemoryContextSwitchTo(old);
    }
    return DatumGetBool(DirectFunctionCall2(numeric_lt, NumericGetDatum(value), NumericGetDatum(zero)));
}

core::NumberFacts number_facts(Numeric value)
{
    core::NumberFacts facts;
    facts.nan = numeric_is_nan(value);
    facts.infinite = numeric_is_inf(value);
    facts.negative = !facts.nan && numeric_negative(value);
    return facts;
}

void check_value(const char* field, Numeric value, const MeterInfo& meter, const text* code)
{
    core::check_value(field, number_facts(value), meter.allow_negative, view(code),
                      [&] { return numeric_text(value); });
}

// The number a meter with value_property aggregates must be in the event.
void check_value_property(const Event& ev, const CacheEntry& meter)
{
    using core::Aggregation;
    const Aggregation kind = meter.meter.kind;
    if (!meter.value_property || kind == Aggregation::count || kind == Aggregation::custom)
        return;
    if (meter.filter && !(ev.properties && DatumGetBool(DirectFunctionCall2(
                              jsonb_contains, JsonbPGetDatum(ev.properties),
                              JsonbPGetDatum(meter.filter)))))
        return;  // events outside the filter are never aggregated
    const char* key = meter.value_property;
    JsonbValue* found = nullptr;
    if (ev.properties)
        found = getKeyJsonValueFromContainer(&ev.properties->root, key, strlen(key), nullptr);
    const std::string field = std::string("properties.") + key;
    if (found == nullptr || found->type == jbvNull)
        throw core::Error(core::sqlstate::kNullValue,
                          field + " is missing; meter " + core::quoted(view(ev.meter)) + " aggregates it",
                          {}, "Add the property to the event, or use another meter.");
    if (kind == Aggregation::unique_count)
        return;
    Numeric number = nullptr;
    if (found->type == jbvNumeric) {
        number = found->val.numeric;
    } else if (found->type == jbvString) {
        std::string s(found->val.string.val, found->val.string.len);
        Datum parsed = 0;
        bool ok = pg::pg_safe([&] {
            bool parsed_ok = true;
            PG_TRY();
            {
                parsed = DirectFunctionCall3(numeric_in, CStringGetDatum(s.c_str()),
                                             ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1));
            }
            PG_CATCH();
            {
                FlushErrorState();
                parsed_ok = false;
            }
            PG_END_TRY();
            return parsed_ok;
        });
        if (ok)
            number = DatumGetNumeric(parsed);
    }
    if (number == nullptr)
        throw core::Error(core::sqlstate::kNonFiniteValue,
                          field + " is not a number; meter " + core::quoted(view(ev.meter)) +
                              " aggregates it");
    check_value(field.c_str(), number, meter.meter, ev.meter);
}

[[noreturn]] void throw_not_a_counter(const text* meter)
{
    throw core::Error(core::sqlstate::kCounterMisuse,
                      "meter " + core::quoted(view(meter)) + " is not a counter", {},
                      "Counter operations need a meter created with aggregation 'counter'.");
}

void check_counter_rules(Event& ev, const MeterInfo& meter)
{
    const bool is_counter = meter.kind == core::Aggregation::counter;
    if (!is_counter && ev.op != CounterOp::none)
        throw_not_a_counter(ev.meter);
    if (!is_counter)
        return;
    if (ev.op == CounterOp::none)
        ev.op = CounterOp::increment;
    if (ev.due_at != ev.occurred_at)
        throw core::Error(core::sqlstate::kCounterMisuse,
                          "due_at of counter " + core::quoted(view(ev.meter)) +
                              " must equal occurred_at",
                          {}, "A counter operation belongs to the period of its instant.");
}

int64 now_micros() { return GetCurrentTimestamp(); }

// --- saved plans ------------------------------------------------------------

SPIPlanPtr prepare_saved(SPIPlanPtr* slot, const char* sql, int nargs, Oid* types)
{
    if (*slot == nullptr) {
        SPIPlanPtr plan = SPI_prepare(sql, nargs, types);
        if (plan == nullptr)
            elog(ERROR, "metering: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(plan);
        *slot = plan;
    }
    return *slot;
}

constexpr const char* kInsertOne =
    "INSERT INTO metering.events (customer_id, meter, value, occurred_at, due_at, idempotency_key, "
    "properties, op) VALUES ($1, $2, $3, $4, $5, $6, coalesce($7, '{}'), $8) "
    "ON CONFLICT (customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
    "RETURNING event_id";

constexpr const char* kInsertMany =
    "INSERT INTO metering.events (event_id, customer_id, meter, value, occurred_at, due_at, "
    "idempotency_key, properties, op) OVERRIDING SYSTEM VALUE "
    "SELECT i, c, m, v, o, d, k, coalesce(p, '{}'), op "
    "FROM unnest($1::bigint[], $2::text[], $3::text[], $4::numeric[], $5::timestamptz[], "
    "$6::timestamptz[], $7::text[], $8::jsonb[], $9::text[]) AS u(i, c, m, v, o, d, k, p, op) "
    "ON CONFLICT (customer_id, idempotency_key) WHERE idempotency_key IS NOT NULL DO NOTHING "
    "RETURNING event_id";

constexpr const char* kFindByKey =
    "SELECT event_id, meter, value, occurred_at, due_at, ingested_at, properties, op "
    "FROM metering.events WHERE customer_id = $1 AND idempotency_key = $2";

SPIPlanPtr insert_one_plan = nullptr;
SPIPlanPtr insert_many_plan = nullptr;
SPIPlanPtr find_by_key_plan = nullptr;
SPIPlanPtr last_set_plan = nullptr;
SPIPlanPtr sum_since_plan = nullptr;

Datum op_datum(CounterOp op)
{
    switch (op) {
    case CounterOp::increment:
        return CStringGetTextDatum("increment");
    case CounterOp::set:
        return CStringGetTextDatum("set");
    default:
        return (Datum) 0;
    }
}

const char* op_name(CounterOp op)
{
    return op == CounterOp::increment ? "increment" : op == CounterOp::set ? "set" : nullptr;
}

Oid sequence_oid()
{
    if (!OidIsValid(events_sequence))
        events_sequence =
            get_relname_relid("events_event_id_seq", get_namespace_oid("metering", false));
    return events_sequence;
}

ArrayType* make_array(Datum* values, bool* nulls, int n, Oid type)
{
    int16 len;
    bool byval;
    char align;
    get_typlenbyvalalign(type, &len, &byval, &align);
    int dims[1] = {n};
    int lbs[1] = {1};
    return construct_md_array(values, nulls, 1, dims, lbs, type, len, byval, align);
}

// Runs an INSERT of already-validated rows; the trigger lets them through.
int execute_trusted(SPIPlanPtr plan, Datum* args, const char* nulls)
{
    int rc = 0;
    trusted_insert = true;
    PG_TRY();
    {
        rc = SPI_execute_plan(plan, args, nulls, false, 0);
    }
    PG_FINALLY();
    {
        trusted_insert = false;
    }
    PG_END_TRY();
    if (rc != SPI_OK_INSERT_RETURNING)
        elog(ERROR, "metering: insert failed: %s", SPI_result_code_string(rc));
    return (int) SPI_processed;
}

int64 returned_id(uint64 row)
{
    bool isnull;
    return DatumGetInt64(SPI_getbinval(SPI_tuptable->vals[row], SPI_tuptable->tupdesc, 1, &isnull));
}

int64 resolve_duplicate(const Event& ev)
{
    int64 id = ev.idempotency_key ? find_duplicate(ev) : 0;
    if (id == 0)
        ereport(ERROR, (errcode(ERRCODE_T_R_SERIALIZATION_FAILURE),
                        errmsg("could not serialize access due to a concurrent ingest of idempotency_key \"%s\"",
                               ev.idempotency_key ? text_to_cstring(ev.idempotency_key) : ""),
                        errhint("Retry the transaction.")));
    return id;
}

void store_one(Event& ev, int64* id, bool* created)
{
    Oid types[8] = {TEXTOID, TEXTOID, NUMERICOID, TIMESTAMPTZOID, TIMESTAMPTZOID, TEXTOID, JSONBOID, TEXTOID};
    SPIPlanPtr plan = prepare_saved(&insert_one_plan, kInsertOne, 8, types);
    Datum args[8] = {PointerGetDatum(ev.customer_id), PointerGetDatum(ev.meter),
                     NumericGetDatum(ev.value), TimestampTzGetDatum(ev.occurred_at),
                     TimestampTzGetDatum(ev.due_at), PointerGetDatum(ev.idempotency_key),
                     PointerGetDatum(ev.properties), op_datum(ev.op)};
    char nulls[9] = "        ";
    nulls[5] = ev.idempotency_key ? ' ' : 'n';
    nulls[6] = ev.properties ? ' ' : 'n';
    nulls[7] = ev.op != CounterOp::none ? ' ' : 'n';
    if (execute_trusted(plan, args, nulls) == 1) {
        *id = returned_id(0);
        *created = true;
    } else {
        *id = resolve_duplicate(ev);
        *created = false;
    }
}

int compare_int64(const void* a, const void* b)
{
    int64 x = *static_cast<const int64*>(a);
    int64 y = *static_cast<const int64*>(b);
    return x < y ? -1 : x > y ? 1 : 0;
}

void store_many(Event* events, int n, int64* ids, bool* created)
{
    Oid types[9] = {INT8ARRAYOID, TEXTARRAYOID, TEXTARRAYOID, NUMERICARRAYOID, TIMESTAMPTZARRAYOID,
                    TIMESTAMPTZARRAYOID, TEXTARRAYOID, JSONBARRAYOID, TEXTARRAYOID};
    SPIPlanPtr plan = prepare_saved(&insert_many_plan, kInsertMany, 9, types);
    Datum* cols[9];
    bool* nulls[9];
    for (int c = 0; c < 9; c++) {
        cols[c] = static_cast<Datum*>(palloc(sizeof(Datum) * n));
        nulls[c] = static_cast<bool*>(palloc0(sizeof(bool) * n));
    }
    Oid seq = sequence_oid();
    for (int i = 0; i < n; i++) {
        const Event& ev = events[i];
        ids[i] = nextval_internal(seq, false);
        created[i] = false;
        cols[0][i] = Int64GetDatum(ids[i]);
        cols[1][i] = PointerGetDatum(ev.customer_id);
        cols[2][i] = PointerGetDatum(ev.meter);
        cols[3][i] = NumericGetDatum(ev.value);
        cols[4][i] = TimestampTzGetDatum(ev.occurred_at);
        cols[5][i] = TimestampTzGetDatum(ev.due_at);
        cols[6][i] = PointerGetDatum(ev.idempotency_key);
        nulls[6][i] = ev.idempotency_key == nullptr;
        cols[7][i] = PointerGetDatum(ev.properties);
        nulls[7][i] = ev.properties == nullptr;
        cols[8][i] = op_datum(ev.op);
        nulls[8][i] = ev.op == CounterOp::none;
    }
    Oid elem_types[9] = {INT8OID, TEXTOID, TEXTOID, NUMERICOID, TIMESTAMPTZOID, TIMESTAMPTZOID,
                         TEXTOID, JSONBOID, TEXTOID};
    Datum args[9];
    for (int c = 0; c < 9; c++)
        args[c] = PointerGetDatum(make_array(cols[c], nulls[c], n, elem_types[c]));
    int inserted = execute_trusted(plan, args, nullptr);

    // ids were drawn in ordinal order and RETURNING yields a subset of them.
    int64* returned = static_cast<int64*>(palloc(sizeof(int64) * (inserted + 1)));
    for (int r = 0; r < inserted; r++)
        returned[r] = returned_id(r);
    qsort(returned, inserted, sizeof(int64), compare_int64);
    int r = 0;
    for (int i = 0; i < n; i++) {
        if (r < inserted && returned[r] == ids[i]) {
            created[i] = true;
            r++;
        }
    }
    for (int i = 0; i < n; i++) {
        if (created[i])
            continue;
        try {
            ids[i] = resolve_duplicate(events[i]);
        } catch (const core::Error& e) {
            throw e.prefixed("ingest_batch: element " + std::to_string(i + 1) + ": ");
        }
    }
}

}  // namespace

// ---------------------------------------------------------------------------

void init_module()
{
    DefineCustomIntVariable(
        "metering.max_future_skew",
        "How far in the future an event's occurred_at may be.",
        "Events further ahead are rejected: usually a sender's clock is wrong.",
        &max_future_skew_seconds, 300, 0, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    MarkGUCPrefixReserved("metering");
    cache_context = AllocSetContextCreate(TopMemoryContext, "metering caches", ALLOCSET_DEFAULT_SIZES);
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
    CacheRegisterRelcacheCallback(on_relcache, (Datum) 0);
}

int64 max_future_skew() { return (int64) max_future_skew_seconds * USECS_PER_SEC; }

std::string_view view(const text* t)
{
    return std::string_view(VARDATA_ANY(t), VARSIZE_ANY_EXHDR(t));
}

bool trusted_insert_active() { return trusted_insert; }

namespace {
const CacheEntry* require_customer_and_meter(const Event& ev)
{
    if (!customer_exists(ev.customer_id))
        core::throw_unknown_customer(view(ev.customer_id));
    const CacheEntry* meter = find_meter(ev.meter);
    if (meter == nullptr)
        core::throw_unknown_meter(view(ev.meter));
    return meter;
}
}  // namespace

void require_counter(const Event& ev)
{
    if (require_customer_and_meter(ev)->meter.kind != core::Aggregation::counter)
        throw_not_a_counter(ev.meter);
}

MeterInfo validate_event(Event& ev)
{
    const CacheEntry* meter = require_customer_and_meter(ev);

    check_value(ev.value_field ? ev.value_field : "value", ev.value, meter->meter, ev.meter);
    core::check_timestamp(ev.time_field ? ev.time_field : "occurred_at", ev.occurred_at, now_micros(), max_future_skew(),
                          [&] { return timestamp_text(ev.occurred_at); });
    if (!ev.has_due_at)
        ev.due_at = ev.occurred_at;
    else if (TIMESTAMP_NOT_FINITE(ev.due_at))
        core::check_timestamp("due_at", ev.due_at, 0, 0, [&] { return timestamp_text(ev.due_at); });
    if (ev.idempotency_key)
        core::check_idempotency_key(view(ev.idempotency_key));
    if (ev.properties && !JB_ROOT_IS_OBJECT(ev.properties)) {
        const char* type = JB_ROOT_IS_SCALAR(ev.properties) ? "a scalar" : "an array";
        core::throw_properties_not_object(type);
    }
    check_counter_rules(ev, meter->meter);
    check_value_property(ev, *meter);
    return meter->meter;
}

int64 find_duplicate(const Event& ev)
{
    Oid types[2] = {TEXTOID, TEXTOID};
    Datum args[2] = {PointerGetDatum(ev.customer_id), PointerGetDatum(ev.idempotency_key)};
    SPI_connect();
    SPIPlanPtr plan = prepare_saved(&find_by_key_plan, kFindByKey, 2, types);
    // Not read-only: a new snapshot sees rows of earlier commands and of
    // transactions that ON CONFLICT waited for.
    SPI_execute_plan(plan, args, nullptr, false, 1);
    if (SPI_processed == 0) {
        SPI_finish();
        return 0;
    }
    HeapTuple row = SPI_tuptable->vals[0];
    TupleDesc desc = SPI_tuptable->tupdesc;
    bool isnull;
    int64 id = DatumGetInt64(SPI_getbinval(row, desc, 1, &isnull));
    text* meter = DatumGetTextPP(SPI_getbinval(row, desc, 2, &isnull));
    Datum value = SPI_getbinval(row, desc, 3, &isnull);
    TimestampTz occurred_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 4, &isnull));
    TimestampTz due_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 5, &isnull));
    TimestampTz ingested_at = DatumGetTimestampTz(SPI_getbinval(row, desc, 6, &isnull));
    Datum properties = SPI_getbinval(row, desc, 7, &isnull);
    char* op = SPI_getvalue(row, desc, 8);

    static Jsonb* empty = nullptr;
    if (empty == nullptr) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        empty = DatumGetJsonbP(DirectFunctionCall1(jsonb_in, CStringGetDatum("{}")));
        MemoryContextSwitchTo(old);
    }
    core::PayloadComparison cmp;
    cmp.meter_equal = view(meter) == view(ev.meter);
    cmp.value_equal = DatumGetBool(DirectFunctionCall2(numeric_eq, value, NumericGetDatum(ev.value)));
    cmp.occurred_at_equal = occurred_at == ev.occurred_at;
    cmp.due_at_equal = due_at == ev.due_at;
    cmp.properties_equal = DatumGetBool(DirectFunctionCall2(
        jsonb_eq, properties, JsonbPGetDatum(ev.properties ? ev.properties : empty)));
    const char* new_op = op_name(ev.op);
    cmp.op_equal = (op == nullptr && new_op == nullptr) ||
                   (op != nullptr && new_op != nullptr && strcmp(op, new_op) == 0);
    cmp.stored_time_defaulted = occurred_at == ingested_at && due_at == occurred_at;
    cmp.new_time_defaulted =
        ev.occurred_at == GetCurrentTransactionStartTimestamp() && ev.due_at == ev.occurred_at;
    SPI_finish();
    core::require_same_payload(view(ev.customer_id), view(ev.idempotency_key), cmp);
    return id;
}

void store_events(Event* events, int n, int64* ids, bool* created)
{
    SPI_connect();
    if (n == 1)
        store_one(events[0], &ids[0], &created[0]);
    else if (n > 1)
        store_many(events, n, ids, created);
    SPI_finish();
}

void lock_counter(const Event& ev)
{
    uint64 h = text_hash(ev.customer_id) ^ (text_hash(ev.meter) * 0x9E3779B97F4A7C15ULL);
    LOCKTAG tag;
    // field4 0x4D54 ("MT") keeps these apart from pg_advisory_lock's 1 and 2.
    SET_LOCKTAG_ADVISORY(tag, MyDatabaseId, (uint32) (h >> 32), (uint32) h, 0x4D54);
    (void) LockAcquire(&tag, ExclusiveLock, false, false);
}

Numeric counter_value_at(text* customer_id, text* counter, TimestampTz at, bool after_write)
{
    Oid types[3] = {TEXTOID, TEXTOID, TIMESTAMPTZOID};
    Datum args[3] = {PointerGetDatum(customer_id), PointerGetDatum(counter), TimestampTzGetDatum(at)};
    SPI_connect();
    // Counter events have due_at = occurred_at, so the primary key orders them.
    SPIPlanPtr last_set = prepare_saved(
        &last_set_plan,
        "SELECT due_at, event_id FROM metering.events WHERE customer_id = $1 AND meter = $2 "
        "AND due_at <= $3 AND op = 'set' ORDER BY due_at DESC, event_id DESC LIMIT 1",
        3, types);
    SPI_execute_plan(last_set, args, nullptr, !after_write, 1);
    Datum from_at = TimestampTzGetDatum(DT_NOBEGIN);
    Datum from_id = Int64GetDatum(0);
    if (SPI_processed > 0) {
        bool isnull;
        from_at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        from_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
    }
    Oid sum_types[5] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID};
    SPIPlanPtr sum_since = prepare_saved(
        &sum_since_plan,
        "SELECT coalesce(sum(value), 0) FROM metering.events WHERE customer_id = $1 AND meter = $2 "
        "AND due_at <= $3 AND due_at >= $4 AND (due_at, event_id) >= ($4, $5)",
        5, sum_types);
    Datum sum_args[5] = {args[0], args[1], args[2], from_at, from_id};
    SPI_execute_plan(sum_since, sum_args, nullptr, !after_write, 1);
    bool isnull;
    Datum total = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    total = SPI_datumTransfer(total, false, -1);
    SPI_finish();
    return DatumGetNumeric(total);
}

}  // namespace metering::ingest
