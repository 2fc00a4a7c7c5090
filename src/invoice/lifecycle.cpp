// Support of the invoice path (the lifecycle itself is SQL: close_periods,
// bill_now, approve_invoice, void_invoice in the install script).
//   - metering.close_grace_period: how long after a period's end its regular
//     invoice waits for late events before close_periods issues it.
//   - A backend flag that lets metering's own functions make the few changes
//     the refuse triggers otherwise forbid (an invoice's status, the billing
//     marks of a voided invoice, an admin deleting an unbilled event). It is
//     set only through a function PUBLIC cannot execute, and it is cleared at
//     the end of every (sub)transaction.
extern "C" {
#include "postgres.h"
#include "access/xact.h"
#include "fmgr.h"
#include "utils/guc.h"
#include "utils/timestamp.h"
}

#include <climits>

namespace {

int grace_period_seconds = 3600;
bool internal_change = false;

void clear_flag(XactEvent, void*) { internal_change = false; }
void clear_flag_sub(SubXactEvent event, SubTransactionId, SubTransactionId, void*)
{
    if (event == SUBXACT_EVENT_ABORT_SUB)
        internal_change = false;
}

}  // namespace

namespace metering::invoice {

void init_module()
{
    DefineCustomIntVariable(
        "metering.close_grace_period",
        "How long after a billing period ends close_periods waits before issuing its invoice.",
        "Events of the period that arrive within this time are billed on the regular invoice; "
        "later ones become late usage on the next invoice.",
        &grace_period_seconds, 3600, 0, INT_MAX, PGC_SUSET, GUC_UNIT_S, nullptr, nullptr, nullptr);
    RegisterXactCallback(clear_flag, nullptr);
    RegisterSubXactCallback(clear_flag_sub, nullptr);
}

}  // namespace metering::invoice

extern "C" {

PG_FUNCTION_INFO_V1(metering_grace_period);
Datum metering_grace_period(PG_FUNCTION_ARGS)
{
    auto* result = static_cast<Interval*>(palloc0(sizeof(Interval)));
    result->time = (int64) grace_period_seconds * USECS_PER_SEC;
    PG_RETURN_INTERVAL_P(result);
}

PG_FUNCTION_INFO_V1(metering_internal_change);
Datum metering_internal_change(PG_FUNCTION_ARGS)
{
    internal_change = PG_ARGISNULL(0) ? false : PG_GETARG_BOOL(0);
    PG_RETURN_VOID();
}

PG_FUNCTION_INFO_V1(metering_internal_change_active);
Datum metering_internal_change_active(PG_FUNCTION_ARGS)
{
    PG_RETURN_BOOL(internal_change);
}

}  // extern "C"
