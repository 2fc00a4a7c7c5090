// SQL entry points of pricing: rate, rate_breakdown and the checks behind
// add_charge. The math is in core/pricing; this file converts values.
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "funcapi.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
}

#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/pricing.hpp"
#include "core/validation.hpp"
#include "pg/guard.hpp"
#include "rating/numbers.hpp"

namespace core = metering::core;
using metering::rating::jsonb_text;
using metering::rating::to_decimal;
using metering::rating::to_numeric;

namespace {

// Parsed pricings of one call site (invoice lines rate a few charges many
// times). Lives in fn_extra; deleted by a reset callback on fn_mcxt, because
// it is a C++ object on the C++ heap, not palloc'd memory.
struct PricingCache {
    static constexpr std::size_t kEntries = 16;
    std::vector<std::pair<std::string, core::Pricing>> entries;
};

struct CacheSlot {
    MemoryContextCallback callback;
    PricingCache* cache;
};

void delete_cache(void* arg)
{
    auto* slot = static_cast<CacheSlot*>(arg);
    delete slot->cache;
    slot->cache = nullptr;
}

PricingCache& cache_of(FunctionCallInfo fcinfo)
{
    auto* slot = static_cast<CacheSlot*>(fcinfo->flinfo->fn_extra);
    if (slot == nullptr) {
        auto cache = std::make_unique<PricingCache>();
        slot = metering::pg::pg_safe([&] {
            return static_cast<CacheSlot*>(MemoryContextAllocZero(fcinfo->flinfo->fn_mcxt, sizeof(CacheSlot)));
        });
        slot->cache = cache.release();
        slot->callback.func = delete_cache;
        slot->callback.arg = slot;
        MemoryContextRegisterResetCallback(fcinfo->flinfo->fn_mcxt, &slot->callback);
        fcinfo->flinfo->fn_extra = slot;
    }
    return *slot->cache;
}

// A pricing, parsed once per distinct text per call site.
const core::Pricing& cached_pricing(FunctionCallInfo fcinfo, Jsonb* value)
{
    std::string text = jsonb_text(value);
    PricingCache& cache = cache_of(fcinfo);
    for (auto& [key, pricing] : cache.entries)
        if (key == text)
            return pricing;
    if (cache.entries.size() >= PricingCache::kEntries)
        cache.entries.erase(cache.entries.begin());
    core::Pricing parsed = core::parse_pricing(text);
    cache.entries.emplace_back(std::move(text), std::move(parsed));
    return cache.entries.back().second;
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(metering_rate);
Datum metering_rate(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&] {
        Numeric q = PG_GETARG_NUMERIC(0);  // detoast before any C++ object exists
        Jsonb* p = PG_GETARG_JSONB_P(1);
        core::Decimal quantity = to_decimal(q, "quantity");
        return NumericGetDatum(to_numeric(core::rate(cached_pricing(fcinfo, p), quantity)));
    });
}

PG_FUNCTION_INFO_V1(metering_billable_quantity);
Datum metering_billable_quantity(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&] {
        Numeric q = PG_GETARG_NUMERIC(0);
        Jsonb* p = PG_GETARG_JSONB_P(1);
        core::Decimal quantity = to_decimal(q, "quantity");
        return NumericGetDatum(to_numeric(core::billable_quantity(cached_pricing(fcinfo, p), quantity)));
    });
}

PG_FUNCTION_INFO_V1(metering_free_units);
Datum metering_free_units(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded(
        [&] { return NumericGetDatum(to_numeric(cached_pricing(fcinfo, PG_GETARG_JSONB_P(0)).free_units())); });
}

PG_FUNCTION_INFO_V1(metering_rate_breakdown);
Datum metering_rate_breakdown(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        Numeric q = PG_GETARG_NUMERIC(0);
        Jsonb* p = PG_GETARG_JSONB_P(1);
        core::Decimal quantity = to_decimal(q, "quantity");
        std::vector<core::BreakdownLine> lines = core::rate_breakdown(cached_pricing(fcinfo, p), quantity);
        metering::pg::pg_safe([&] { InitMaterializedSRF(fcinfo, 0); });
        auto* rsinfo = reinterpret_cast<ReturnSetInfo*>(fcinfo->resultinfo);
        for (const core::BreakdownLine& line : lines) {
            Datum values[5] = {Int32GetDatum(line.tier), NumericGetDatum(to_numeric(line.units)),
                               NumericGetDatum(to_numeric(line.unit_price)),
                               NumericGetDatum(to_numeric(line.flat_price)),
                               NumericGetDatum(to_numeric(line.amount))};
            bool nulls[5] = {false, false, false, false, false};
            metering::pg::pg_safe(
                [&] { tuplestore_putvalues(rsinfo->setResult, rsinfo->setDesc, values, nulls); });
        }
        return (Datum) 0;
    });
}

// add_charge's check: the pricing as given when valid; MT009 naming the field otherwise.
PG_FUNCTION_INFO_V1(metering_check_pricing);
Datum metering_check_pricing(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            core::throw_null_argument("pricing");
        Jsonb* p = PG_GETARG_JSONB_P(0);
        (void) core::parse_pricing(jsonb_text(p));
        PG_RETURN_DATUM(PG_GETARG_DATUM(0));
    });
}

}  // extern "C"
