// Rules, caches and the event store shared by every ingest entry point.
#include "ingest/events.hpp"

extern "C" {
#include "access/table.h"
#include "access/tableam.h"
#include "access/xact.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "commands/sequence.h"
#include "common/hashfn.h"
#include "executor/spi.h"
#include "miscadmin.h"
#include "storage/bufmgr.h"
#include "storage/lmgr.h"
#include "storage/lock.h"
#include "utils/array.h"
#include "utils/builtins.h"
#include "utils/guc.h"
#include "utils/inval.h"
#include "utils/lsyscache.h"
#include "utils/memutils.h"
#include "utils/rel.h"
}

#include <string>

#include "core/input_syntax.hpp"
#include "core/payload.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"
#include "pg/relations.hpp"

namespace metering::ingest {

namespace {

int max_future_skew_seconds = 300;

// ---------------------------------------------------------------------------
// Caches of customers that exist and of meters' rules. Positive entries only;
// both are dropped when a (sub)transaction aborts (an entry may have come from
// a row it created), on relcache invalidation of the catalog tables and when
// one is full. Customers are never deleted and meters never change (triggers
// refuse it).
//
// Those events only mark the caches stale; they are freed at the start of the
// next lookup. An invalidation arrives whenever a relation is opened (a probe,
// detoasting a meter's filter), so freeing them there would pull an entry from
// under a lookup still filling it or a caller still reading it. An entry stays
// valid until the next lookup of a customer or meter.
// ---------------------------------------------------------------------------

struct CacheEntry {
    char* key;
    int key_len;
    MeterInfo meter;
    char* value_property;  // meters only; nullptr when the value is aggregated
    Jsonb* filter;         // meters only; nullptr when unfiltered
};

constexpr uint32 kMaxCacheEntries = 100000;

// Open addressing with linear probing: a lookup reads one slot (the hash and the
// first bytes of the key are in it), and the entry only on a hit. A bulk load
// looks up a customer and a meter per row, so this is on the hot path.
constexpr int kInlineKey = 20;
struct CacheSlot {
    uint64 hash;  // 0: empty
    CacheEntry* entry;
    uint32 key_len;
    char prefix[kInlineKey];  // the key's first bytes
};

struct Cache {
    CacheSlot* slots;  // nullptr: empty, nothing allocated
    uint32 mask;
    uint32 count;
};

MemoryContext cache_context = nullptr;
Cache customer_cache;
Cache meter_cache;

constexpr uint32 kPreloadMinMisses = 64;
constexpr double kPreloadMaxRows = kMaxCacheEntries / 2;
// An index probe costs as many instructions as reading about 40 rows of the
// table into the cache (callgrind, 10,000 customers).
constexpr double kPreloadRowsPerProbe = 32;
uint32 customer_misses = 0;
bool customer_preload_done = false;
double customer_rows_estimate = -1;

void forget_customer_misses()
{
    customer_misses = 0;
    customer_preload_done = false;
    customer_rows_estimate = -1;
}

void forget_recent_meters();

bool caches_stale = false;

// Frees both caches. Only at the start of a lookup (see above).
void reset_caches()
{
    customer_cache = Cache{};
    meter_cache = Cache{};
    forget_recent_meters();
    forget_customer_misses();
    pg::forget_relation_oids();
    if (cache_context)
        MemoryContextReset(cache_context);
    caches_stale = false;
}

void reset_caches_if_stale()
{
    if (caches_stale)
        reset_caches();
}

void on_xact(XactEvent event, void*)
{
    if (event == XACT_EVENT_PRE_COMMIT || event == XACT_EVENT_PRE_PREPARE)
        require_import_flushed();
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT)
        caches_stale = true;
    if (event == XACT_EVENT_ABORT || event == XACT_EVENT_PARALLEL_ABORT || event == XACT_EVENT_COMMIT ||
        event == XACT_EVENT_PARALLEL_COMMIT || event == XACT_EVENT_PREPARE)
        reset_import_buffer();  // its memory went with the transaction's
}

void on_subxact(SubXactEvent event, SubTransactionId, SubTransactionId, void*)
{
    if (event == SUBXACT_EVENT_ABORT_SUB) {
        caches_stale = true;
        reset_import_buffer();
    }
}

void on_relcache(Datum, Oid relid)
{
    // The caches depend on metering's relations being the same ones (DROP
    // EXTENSION changes them), not on their rows: customers and meters are never
    // deleted or changed, and a customer that is new since a lookup is a miss
    // that probes the index. Other relations' invalidations (autovacuum's
    // statistics of any table, DDL elsewhere) leave the caches alone, so that a
    // preloaded customer cache is not read again and again during a load.
    // The OIDs are plain numbers that nothing points into: forget them now.
    if (pg::concerns_cached_relation(relid)) {
        pg::forget_relation_oids();
        caches_stale = true;
    }
}

uint64 text_hash(const text* t)
{
    return hash_bytes_extended(reinterpret_cast<const unsigned char*>(VARDATA_ANY(t)),
                               VARSIZE_ANY_EXHDR(t), 0);
}

uint64 slot_hash(const text* key)
{
    uint64 h = text_hash(key);
    return h == 0 ? 1 : h;  // 0 marks an empty slot
}

CacheEntry* cache_find(const Cache& cache, const text* key)
{
    if (cache.slots == nullptr)
        return nullptr;
    const uint64 h = slot_hash(key);
    const char* data = VARDATA_ANY(key);
    const uint32 len = VARSIZE_ANY_EXHDR(key);
    for (uint32 i = (uint32) h & cache.mask;; i = (i + 1) & cache.mask) {
        const CacheSlot& slot = cache.slots[i];
        if (slot.hash == 0)
            return nullptr;
        if (slot.hash == h && slot.key_len == len && memcmp(slot.prefix, data, Min(len, (uint32) kInlineKey)) == 0 &&
            (len <= (uint32) kInlineKey ||
             memcmp(slot.entry->key + kInlineKey, data + kInlineKey, len - kInlineKey) == 0))
            return slot.entry;
    }
}

void place(Cache& cache, const CacheSlot& slot)
{
    uint32 i = (uint32) slot.hash & cache.mask;
    while (cache.slots[i].hash != 0)
        i = (i + 1) & cache.mask;
    cache.slots[i] = slot;
}

// Makes room for one more entry: at most 3/4 of the slots are used.
void reserve(Cache& cache)
{
    const uint32 size = cache.slots ? cache.mask + 1 : 0;
    if ((uint64) (cache.count + 1) * 4 <= (uint64) size * 3)
        return;
    const uint32 new_size = size ? size * 2 : 256;
    Cache grown{static_cast<CacheSlot*>(MemoryContextAllocZero(cache_context, sizeof(CacheSlot) * new_size)),
                new_size - 1, cache.count};
    for (uint32 i = 0; i < size; i++)
        if (cache.slots[i].hash != 0)
            place(grown, cache.slots[i]);
    if (cache.slots)
        pfree(cache.slots);
    cache = grown;
}

// A new entry for key, which the cache does not hold. Past kMaxCacheEntries
// entries in either cache, both start over at the next lookup.
CacheEntry* cache_add(Cache& cache, const text* key)
{
    if (cache.count >= kMaxCacheEntries)
        caches_stale = true;
    reserve(cache);
    auto* entry = static_cast<CacheEntry*>(MemoryContextAllocZero(cache_context, sizeof(CacheEntry)));
    entry->key_len = VARSIZE_ANY_EXHDR(key);
    entry->key = static_cast<char*>(MemoryContextAlloc(cache_context, entry->key_len + 1));
    memcpy(entry->key, VARDATA_ANY(key), entry->key_len);
    CacheSlot slot{};
    slot.hash = slot_hash(key);
    slot.entry = entry;
    slot.key_len = entry->key_len;
    memcpy(slot.prefix, entry->key, Min(entry->key_len, kInlineKey));
    place(cache, slot);
    cache.count++;
    return entry;
}

// A backend that misses many customers (a bulk load over many customers, a
// fresh connection) reads them all at once instead of one index probe each:
// once the misses since the cache was last reset have cost about what reading
// the table costs (kPreloadRowsPerProbe), and only when the table fits in half
// the cache. The cache holds the customers seen by
// the snapshot a probe would use, so the answers do not change.
// Returns true when it read the table.
bool maybe_preload_customers()
{
    if (customer_preload_done || ++customer_misses < kPreloadMinMisses)
        return false;
    if (customer_rows_estimate < 0) {  // once per cache lifetime
        // As the planner estimates: the density of the last ANALYZE times
        // today's size; never analyzed, an upper estimate from the size.
        Relation rel = table_open(pg::relation_oid(pg::Rel::customers), AccessShareLock);
        const double blocks = RelationGetNumberOfBlocks(rel);
        const double pages = rel->rd_rel->relpages;
        const double tuples = rel->rd_rel->reltuples;
        customer_rows_estimate = pages > 0 && tuples >= 0 ? tuples / pages * blocks : blocks * (BLCKSZ / 64);
        table_close(rel, AccessShareLock);
    }
    if (customer_rows_estimate > kPreloadMaxRows) {
        customer_preload_done = true;
        return false;
    }
    if (customer_misses < customer_rows_estimate / kPreloadRowsPerProbe)
        return false;
    Relation rel = table_open(pg::relation_oid(pg::Rel::customers), AccessShareLock);
    customer_preload_done = true;
    TupleTableSlot* slot = table_slot_create(rel, nullptr);
    TableScanDesc scan = table_beginscan(rel, pg::current_snapshot(), 0, nullptr);
    const AttrNumber customer_id = 1;  // metering.customers (customer_id, ...)
    while (customer_cache.count < kPreloadMaxRows && table_scan_getnextslot(scan, ForwardScanDirection, slot)) {
        bool isnull;
        Datum id = slot_getattr(slot, customer_id, &isnull);
        const text* key = DatumGetTextPP(id);
        if (!isnull && cache_find(customer_cache, key) == nullptr)
            cache_add(customer_cache, key);
        if (reinterpret_cast<const char*>(key) != DatumGetPointer(id))
            pfree(const_cast<text*>(key));
    }
    table_endscan(scan);
    ExecDropSingleTupleTableSlot(slot);
    table_close(rel, AccessShareLock);
    elog(DEBUG1, "metering: read the customers table into the cache after %u misses (%u cached)", customer_misses,
         customer_cache.count);
    return true;
}

bool customer_exists(const text* customer_id)
{
    reset_caches_if_stale();
    if (cache_find(customer_cache, customer_id))
        return true;
    if (maybe_preload_customers() && cache_find(customer_cache, customer_id))
        return true;
    Datum key = PointerGetDatum(customer_id);
    pg::Probe probe;
    pg::probe_begin(probe, pg::Rel::customers, pg::Rel::customers_pkey, &key, 1,
                    pg::current_snapshot(), AccessShareLock);
    bool exists = pg::probe_next(probe);
    pg::probe_end(probe, AccessShareLock);
    if (exists)
        cache_add(customer_cache, customer_id);
    return exists;
}

// Column numbers of metering.meters read by find_meter.
enum MeterColumn { kAggregation = 2, kAllowNegative = 5, kValueProperty = 3, kFilter = 4 };

// The meters found last: a load uses a handful of meters, and each row looks
// its meter up twice (validation, then the store), so most lookups end here
// without hashing. Cleared with the caches.
constexpr int kRecentMeters = 4;
const CacheEntry* recent_meters[kRecentMeters];
int recent_next = 0;

// The rules of a meter, nullptr when there is none. Valid until the next lookup.
const CacheEntry* find_meter(const text* code)
{
    reset_caches_if_stale();
    const char* data = VARDATA_ANY(code);
    const int len = VARSIZE_ANY_EXHDR(code);
    for (const CacheEntry* recent : recent_meters)
        if (recent && recent->key_len == len && memcmp(recent->key, data, len) == 0)
            return recent;
    if (CacheEntry* hit = cache_find(meter_cache, code)) {
        recent_meters[recent_next] = hit;
        recent_next = (recent_next + 1) % kRecentMeters;
        return hit;
    }
    Datum key = PointerGetDatum(code);
    pg::Probe probe;
    pg::probe_begin(probe, pg::Rel::meters, pg::Rel::meters_pkey, &key, 1, pg::current_snapshot(),
                    AccessShareLock);
    CacheEntry* entry = nullptr;
    if (pg::probe_next(probe)) {
        // Everything is read (and detoasted) before the entry is added, so that
        // no entry is ever half-filled.
        TupleTableSlot* row = probe.slot;
        bool isnull;
        char* kind = TextDatumGetCString(slot_getattr(row, kAggregation, &isnull));
        bool allow_negative = DatumGetBool(slot_getattr(row, kAllowNegative, &isnull));
        auto parsed = core::parse_aggregation(kind);
        char* value_property = nullptr;
        Datum property = slot_getattr(row, kValueProperty, &isnull);
        if (!isnull)
            value_property = MemoryContextStrdup(cache_context, TextDatumGetCString(property));
        Jsonb* filter = nullptr;
        Datum stored_filter = slot_getattr(row, kFilter, &isnull);
        if (!isnull) {
            Jsonb* f = DatumGetJsonbP(stored_filter);
            filter = static_cast<Jsonb*>(MemoryContextAlloc(cache_context, VARSIZE(f)));
            memcpy(filter, f, VARSIZE(f));
        }
        entry = cache_add(meter_cache, code);
        entry->meter = MeterInfo{parsed ? *parsed : core::Aggregation::custom, allow_negative};
        entry->value_property = value_property;
        entry->filter = filter;
    }
    pg::probe_end(probe, AccessShareLock);
    return entry;
}

void forget_recent_meters()
{
    for (const CacheEntry*& recent : recent_meters)
        recent = nullptr;
}

void check_value(const char* field, Numeric value, const MeterInfo& meter, const text* code)
{
    core::check_value(field, pg::number_facts(value), meter.allow_negative, view(code),
                      [&] { return pg::numeric_text(value); });
}

// The number in a property: a JSON number, or a string that numeric_in takes
// (checked first, so that an error it raises is a real one and propagates);
// nullptr when it is neither.
Numeric property_number(const JsonbValue* found)
{
    if (found->type == jbvNumeric)
        return found->val.numeric;
    if (found->type != jbvString)
        return nullptr;
    const std::string_view s(found->val.string.val, found->val.string.len);
    if (!core::is_numeric_text(s))
        return nullptr;
    return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(pnstrdup(s.data(), s.size())),
                                               ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
}

// The number a meter with value_property aggregates must be in the event.
// No C++ object lives across the Postgres calls here (field is palloc'd).
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
    const char* field = psprintf("properties.%s", key);
    if (found == nullptr || found->type == jbvNull)
        throw core::Error(core::sqlstate::kNullValue,
                          std::string(field) + " is missing; meter " + core::quoted(view(ev.meter)) +
                              " aggregates it",
                          {}, "Add the property to the event, or use another meter.");
    if (kind == Aggregation::unique_count)
        return;
    Numeric number = property_number(found);
    if (number == nullptr)
        throw core::Error(core::sqlstate::kNonFiniteValue,
                          std::string(field) + " is not a number; meter " + core::quoted(view(ev.meter)) +
                              " aggregates it");
    check_value(field, number, meter.meter, ev.meter);
}

[[noreturn]] void throw_not_a_counter(const text* meter)
{
    throw core::Error(core::sqlstate::kCounterMisuse,
                      "meter " + core::quoted(view(meter)) + " is not a counter", {},
                      "Counter operations need a meter created with aggregation 'counter'.");
}

[[noreturn]] void throw_op_not_for_meter(const Event& ev)
{
    const char* op = ev.op == CounterOp::set ? "set" : "increment";
    throw core::Error(core::sqlstate::kCounterMisuse,
                      std::string(ev.op_field) + " " + core::quoted(op) + " is only for counters; meter " +
                          core::quoted(view(ev.meter)) + " is not a counter",
                      {}, "Leave op NULL for events of other meters.");
}

void check_counter_rules(Event& ev, const MeterInfo& meter)
{
    const bool is_counter = meter.kind == core::Aggregation::counter;
    if (!is_counter && ev.op != CounterOp::none && ev.op_field)
        throw_op_not_for_meter(ev);
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
        // A generic plan: the events' months are pruned when it runs, whereas a custom
        // plan would be planned anew at every call, over every month.
        SPIPlanPtr plan = SPI_prepare_cursor(sql, nargs, types, CURSOR_OPT_GENERIC_PLAN);
        if (plan == nullptr)
            elog(ERROR, "metering: SPI_prepare failed: %s", SPI_result_code_string(SPI_result));
        SPI_keepplan(plan);
        *slot = plan;
    }
    return *slot;
}

SPIPlanPtr last_set_plan = nullptr;
SPIPlanPtr last_set_plan_0_1 = nullptr;
SPIPlanPtr sum_since_plan = nullptr;

}  // namespace

// ---------------------------------------------------------------------------

void init_module()
{
    DefineCustomIntVariable(
        "metering.max_future_skew",
        "How far in the future an event's occurred_at may be.",
        "Events further ahead are rejected: usually a sender's clock is wrong.",
        &max_future_skew_seconds, 300, 0, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    cache_context = AllocSetContextCreate(TopMemoryContext, "metering caches", ALLOCSET_DEFAULT_SIZES);
    RegisterXactCallback(on_xact, nullptr);
    RegisterSubXactCallback(on_subxact, nullptr);
    CacheRegisterRelcacheCallback(on_relcache, (Datum) 0);
}

int64 max_future_skew() { return (int64) max_future_skew_seconds * USECS_PER_SEC; }

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
                          [&] { return pg::timestamp_text(ev.occurred_at); });
    if (!ev.has_due_at)
        ev.due_at = ev.occurred_at;
    else if (TIMESTAMP_NOT_FINITE(ev.due_at))
        core::check_timestamp("due_at", ev.due_at, 0, 0, [&] { return pg::timestamp_text(ev.due_at); });
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

void complete_validated_event(Event& ev)
{
    if (!ev.has_due_at)
        ev.due_at = ev.occurred_at;
    if (ev.op == CounterOp::none) {
        const CacheEntry* meter = find_meter(ev.meter);
        if (meter == nullptr)
            core::throw_unknown_meter(view(ev.meter));
        if (meter->meter.kind == core::Aggregation::counter)
            ev.op = CounterOp::increment;
    }
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
    // Counter events have due_at = occurred_at, so the primary key orders them. The
    // value retention kept of the dropped months stands for a set before them.
    const bool retained = OidIsValid(pg::relation_oid_if_exists(pg::Rel::retained_values));  // 0.2.0 on
    SPIPlanPtr last_set = !retained ? prepare_saved(
        &last_set_plan_0_1,
        "SELECT due_at, event_id, NULL::numeric FROM metering.events WHERE customer_id = $1 AND meter = $2 "
        "AND due_at <= $3 AND op = 'set' ORDER BY due_at DESC, event_id DESC LIMIT 1",
        3, types) : prepare_saved(
        &last_set_plan,
        "SELECT due_at, event_id, base FROM ("
        " (SELECT due_at, event_id, NULL::numeric AS base FROM metering.events WHERE customer_id = $1"
        "  AND meter = $2 AND due_at <= $3 AND op = 'set' ORDER BY due_at DESC, event_id DESC LIMIT 1)"
        " UNION ALL"
        " SELECT due_at, event_id, value FROM metering.retained_values WHERE customer_id = $1 AND meter = $2"
        "  AND due_at <= $3) s ORDER BY due_at DESC, event_id DESC LIMIT 1",
        3, types);
    SPI_execute_plan(last_set, args, nullptr, !after_write, 1);
    Datum from_at = TimestampTzGetDatum(DT_NOBEGIN);
    Datum from_id = Int64GetDatum(0);
    Datum base = (Datum) 0;
    bool no_base = true;
    if (SPI_processed > 0) {
        bool isnull;
        from_at = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
        from_id = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 2, &isnull);
        base = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 3, &no_base);
    }
    Oid sum_types[6] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, INT8OID, NUMERICOID};
    SPIPlanPtr sum_since = prepare_saved(
        &sum_since_plan,
        "SELECT coalesce(sum(value), 0) + coalesce($6, 0) FROM metering.events WHERE customer_id = $1"
        " AND meter = $2 AND due_at <= $3 AND due_at >= $4 AND (due_at, event_id) >= ($4, $5)",
        6, sum_types);
    Datum sum_args[6] = {args[0], args[1], args[2], from_at, from_id, base};
    const char sum_nulls[7] = {' ', ' ', ' ', ' ', ' ', no_base ? 'n' : ' ', '\0'};
    SPI_execute_plan(sum_since, sum_args, sum_nulls, !after_write, 1);
    bool isnull;
    Datum total = SPI_getbinval(SPI_tuptable->vals[0], SPI_tuptable->tupdesc, 1, &isnull);
    total = SPI_datumTransfer(total, false, -1);
    SPI_finish();
    return DatumGetNumeric(total);
}

}  // namespace metering::ingest
