// Validators behind the catalog functions (create_customer, create_meter, create_plan).
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "miscadmin.h"
#include "pgtime.h"
#include "port.h"
#include "utils/builtins.h"
#include "utils/numeric.h"
}

#include <sys/stat.h>

#include "core/currency.hpp"
#include "core/validation.hpp"
#include "pg/datum.hpp"
#include "pg/guard.hpp"

namespace core = metering::core;
using metering::pg::view;

namespace {

bool file_exists(const char* dir, const char* name)
{
    char path[MAXPGPATH * 2];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

// An IANA zone: a tz database file, not a POSIX rule such as "FOO+5" (which
// pg_tzset also accepts). Returns the canonical spelling (Europe/Berlin).
const char* canonical_timezone(const char* name)
{
    pg_tz* tz = pg_tzset(name);
    if (tz == nullptr)
        return nullptr;
    const char* canonical = pg_get_timezone_name(tz);
    char sharedir[MAXPGPATH];
    char tzdir[MAXPGPATH + 16];
    get_share_path(my_exec_path, sharedir);
    snprintf(tzdir, sizeof tzdir, "%s/timezone", sharedir);
    if (file_exists(tzdir, canonical) || file_exists("/usr/share/zoneinfo", canonical))
        return canonical;
    return nullptr;
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(metering_currency_exponent);
Datum metering_currency_exponent(PG_FUNCTION_ARGS)
{
    auto exponent = core::currency_exponent(view(PG_GETARG_TEXT_PP(0)));
    if (!exponent)
        PG_RETURN_NULL();
    PG_RETURN_INT32(*exponent);
}

PG_FUNCTION_INFO_V1(metering_check_identifier);
Datum metering_check_identifier(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        const char* field = PG_ARGISNULL(0) ? "id" : text_to_cstring(PG_GETARG_TEXT_PP(0));
        if (PG_ARGISNULL(1))
            core::throw_null_argument(field);
        core::check_identifier(field, view(PG_GETARG_TEXT_PP(1)));
        PG_RETURN_DATUM(PG_GETARG_DATUM(1));
    });
}

PG_FUNCTION_INFO_V1(metering_check_timezone);
Datum metering_check_timezone(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            core::throw_null_argument("timezone");
        text* name = PG_GETARG_TEXT_PP(0);
        core::check_timezone_syntax(view(name));
        const char* canonical = canonical_timezone(text_to_cstring(name));
        if (canonical == nullptr)
            core::throw_unknown_timezone(view(name));
        PG_RETURN_TEXT_P(cstring_to_text(canonical));
    });
}

PG_FUNCTION_INFO_V1(metering_check_aggregation);
Datum metering_check_aggregation(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            core::throw_null_argument("aggregation");
        auto kind = core::require_aggregation(view(PG_GETARG_TEXT_PP(0)));
        PG_RETURN_BOOL(core::negative_allowed_by_default(kind));
    });
}

PG_FUNCTION_INFO_V1(metering_check_currency);
Datum metering_check_currency(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            core::throw_null_argument("currency");
        core::require_currency(view(PG_GETARG_TEXT_PP(0)));
        PG_RETURN_DATUM(PG_GETARG_DATUM(0));
    });
}

PG_FUNCTION_INFO_V1(metering_check_amount);
Datum metering_check_amount(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        const char* field = PG_ARGISNULL(0) ? "amount" : text_to_cstring(PG_GETARG_TEXT_PP(0));
        if (PG_ARGISNULL(1))
            core::throw_null_argument(field);
        Numeric amount = PG_GETARG_NUMERIC(1);
        core::check_amount(field, metering::pg::number_facts(amount),
                           [&] { return metering::pg::numeric_text(amount); });
        PG_RETURN_NUMERIC(amount);
    });
}

}  // extern "C"
