// The rollup step's two row tests, as functions the planner is told are true of
// nearly every row they see (docs/design.md, "What each run reads"). Written
// inline, txid_visible_in_snapshot and the meter filter got default
// selectivities and the txid range statistics older than the step's txids: a
// step of 100,000 new events was planned for 11 rows.
// Plain-C-style code: each function calls Postgres and nothing else.
extern "C" {
#include "postgres.h"

#include "fmgr.h"
#include "nodes/supportnodes.h"
#include "utils/fmgrprotos.h"
#include "utils/jsonb.h"
}

extern "C" {

// metering._in_step(txid, prev, cur): the event's transaction is visible in cur
// (NULL: to the caller) and not in prev, as txid_visible_in_snapshot tells.
PG_FUNCTION_INFO_V1(metering_in_step);
Datum metering_in_step(PG_FUNCTION_ARGS)
{
    if (PG_ARGISNULL(0) || PG_ARGISNULL(1))
        PG_RETURN_NULL();
    Datum txid = PG_GETARG_DATUM(0);
    if (!PG_ARGISNULL(2) && !DatumGetBool(DirectFunctionCall2(pg_visible_in_snapshot, txid, PG_GETARG_DATUM(2))))
        PG_RETURN_BOOL(false);
    PG_RETURN_BOOL(!DatumGetBool(DirectFunctionCall2(pg_visible_in_snapshot, txid, PG_GETARG_DATUM(1))));
}

// metering._meter_keeps(filter, properties): the meter has no filter, or the
// event's properties contain it (jsonb @>).
PG_FUNCTION_INFO_V1(metering_meter_keeps);
Datum metering_meter_keeps(PG_FUNCTION_ARGS)
{
    if (PG_ARGISNULL(0))
        PG_RETURN_BOOL(true);
    if (PG_ARGISNULL(1))
        PG_RETURN_NULL();
    PG_RETURN_DATUM(DirectFunctionCall2(jsonb_contains, PG_GETARG_DATUM(1), PG_GETARG_DATUM(0)));
}

// The planner support of both: selectivity 1 (the step reads the events of its
// txid range, which it consumes nearly all; most meters have no filter).
PG_FUNCTION_INFO_V1(metering_step_filter_support);
Datum metering_step_filter_support(PG_FUNCTION_ARGS)
{
    Node* request = reinterpret_cast<Node*>(PG_GETARG_POINTER(0));
    if (!IsA(request, SupportRequestSelectivity))
        PG_RETURN_POINTER(nullptr);
    auto* selectivity = reinterpret_cast<SupportRequestSelectivity*>(request);
    selectivity->selectivity = 1.0;
    PG_RETURN_POINTER(selectivity);
}

}  // extern "C"
