// Numeric <-> Decimal and jsonb -> text (see numbers.hpp).
#include "rating/numbers.hpp"

extern "C" {
#include "fmgr.h"
#include "utils/builtins.h"
}

#include "pg/datum.hpp"
#include "pg/guard.hpp"

namespace metering::rating {

core::Decimal to_decimal(Numeric value, const char* field)
{
    if (numeric_is_nan(value) || numeric_is_inf(value))
        throw core::Error(core::sqlstate::kNonFiniteValue,
                          std::string(field) + " " + pg::numeric_text(value) + " is not a finite number");
    return core::Decimal::parse(pg::numeric_text(value));
}

Numeric to_numeric(const core::Decimal& value)
{
    const std::string text = value.to_string();
    return pg::pg_safe([&] {
        return DatumGetNumeric(DirectFunctionCall3(numeric_in, CStringGetDatum(text.c_str()),
                                                   ObjectIdGetDatum(InvalidOid), Int32GetDatum(-1)));
    });
}

std::string jsonb_text(Jsonb* value)
{
    return std::string(pg::pg_safe([&] { return JsonbToCString(nullptr, &value->root, VARSIZE(value)); }));
}

}  // namespace metering::rating
