// Conversions shared by the bridge (see datum.hpp).
#include "pg/datum.hpp"

extern "C" {
#include "fmgr.h"
#include "utils/builtins.h"
#include "utils/memutils.h"
}

#include "pg/guard.hpp"

namespace metering::pg {

namespace {
Numeric zero()
{
    static Numeric value = nullptr;
    if (value == nullptr) {
        MemoryContext old = MemoryContextSwitchTo(TopMemoryContext);
        value = int64_to_numeric(0);
        MemoryContextSwitchTo(old);
    }
    return value;
}
}  // namespace

core::NumberFacts number_facts(Numeric value)
{
    core::NumberFacts facts;
    facts.nan = numeric_is_nan(value);
    facts.infinite = numeric_is_inf(value);
    facts.negative = !facts.nan && DatumGetBool(DirectFunctionCall2(numeric_lt, NumericGetDatum(value),
                                                                    NumericGetDatum(zero())));
    return facts;
}

std::string numeric_text(Numeric value)
{
    return std::string(pg_safe(
        [&] { return DatumGetCString(DirectFunctionCall1(numeric_out, NumericGetDatum(value))); }));
}

std::string timestamp_text(TimestampTz at)
{
    return std::string(pg_safe(
        [&] { return DatumGetCString(DirectFunctionCall1(timestamptz_out, TimestampTzGetDatum(at))); }));
}

}  // namespace metering::pg
