// metering._custom_quantity: the quantity of a custom meter for one customer
// over [from_ts, to_ts) by due_at, what metering._quantity returns for it.
//
// The stored text is parsed and checked again, as create_meter checked it
// (catalog/expression.hpp), with names resolved in pg_catalog alone. The
// checked tree then becomes the target of the rating query (that customer's
// events of that meter, nothing else), and that very tree is planned and run:
// no name is looked up again between the check and the run, so nothing created
// since in pg_temp or in any schema can take its place. It runs as the caller
// (metering.usage() is SECURITY DEFINER: as the owner, which the check makes
// safe: built-in immutable functions over the events' own columns).
#include "catalog/expression.hpp"

extern "C" {
#include "catalog/pg_type.h"
#include "executor/executor.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "nodes/params.h"
#include "parser/analyze.h"
#include "parser/parse_coerce.h"
#include "parser/parser.h"
#include "tcop/dest.h"
#include "tcop/tcopprot.h"
#include "utils/builtins.h"
#include "utils/datum.h"
#include "utils/memutils.h"
#include "utils/snapmgr.h"
}

#include <string>

#include "core/errors.hpp"
#include "core/validation.hpp"
#include "pg/guard.hpp"

namespace core = metering::core;
using metering::catalog::Refusal;

namespace {

// The rating query around the expression, whose target the checked expression
// replaces: the customer's events of the meter due in the range, matching the
// meter's filter. With a seventh argument (billed_by), only the events billed by
// one of those invoices: what the update from 0.1.0 reads once, while its billing
// marks (metering.billed_events) still exist; 0.2.0 itself never passes it.
constexpr const char* kFrameSql =
    "SELECT NULL::numeric FROM metering.events ev "
    "WHERE ev.customer_id = $1 AND ev.meter = $2 AND ev.due_at >= $3 AND ev.due_at < $4 "
    "AND ($5 IS NULL OR ev.properties @> $5)";
constexpr const char* kFrameOfMarksSql =
    "SELECT NULL::numeric FROM metering.events ev "
    "WHERE ev.customer_id = $1 AND ev.meter = $2 AND ev.due_at >= $3 AND ev.due_at < $4 "
    "AND ($5 IS NULL OR ev.properties @> $5) "
    "AND ($6 IS NULL OR EXISTS (SELECT FROM metering.billed_events b "
    "WHERE b.customer_id = ev.customer_id AND b.event_id = ev.event_id AND b.invoice_id = ANY ($6)))";
constexpr int kParams = 6;
const Oid kParamTypes[kParams] = {TEXTOID, TEXTOID, TIMESTAMPTZOID, TIMESTAMPTZOID, JSONBOID, INT8ARRAYOID};

// The frame with the checked expression, as numeric, for target; nullptr with
// *refusal set when the expression is refused. Call with the catalog search path pushed.
Query* quantity_query(const char* expression, const char* frame_sql, Refusal* refusal)
{
    Query* checked = metering::catalog::checked_expression_query(expression, refusal);
    if (checked == nullptr)
        return nullptr;
    Node* quantity = reinterpret_cast<Node*>(linitial_node(TargetEntry, checked->targetList)->expr);
    quantity = coerce_to_target_type(nullptr, quantity, exprType(quantity), NUMERICOID, -1, COERCION_EXPLICIT,
                                     COERCE_EXPLICIT_CAST, -1);
    if (quantity == nullptr)
        elog(ERROR, "metering: a checked custom meter expression does not cast to numeric");
    // The cast added is checked too: what runs is exactly what was checked.
    if (metering::catalog::expression_refused(quantity, refusal))
        return nullptr;

    List* raw = raw_parser(frame_sql, RAW_PARSE_DEFAULT);
    Query* frame = parse_analyze_fixedparams(linitial_node(RawStmt, raw), frame_sql, kParamTypes, kParams, nullptr);
    // Both read metering.events as range table entry 1, so the expression's Vars fit the frame.
    RangeTblEntry* events = linitial_node(RangeTblEntry, frame->rtable);
    const RangeTblEntry* read = linitial_node(RangeTblEntry, checked->rtable);
    if (events->relid != read->relid)
        elog(ERROR, "metering: the rating frame of a custom meter does not read metering.events first");
    // The columns the expression reads, for the executor's column privilege check.
    events->selectedCols = bms_union(events->selectedCols, read->selectedCols);
    linitial_node(TargetEntry, frame->targetList)->expr = reinterpret_cast<Expr*>(quantity);
    frame->hasAggs = true;
    return frame;
}

Query* quantity_query_pinned(const char* expression, const char* frame_sql, Refusal* refusal, MemoryContext work)
{
    MemoryContext caller = MemoryContextSwitchTo(work);
    Query* query = nullptr;
    metering::catalog::push_catalog_search_path();
    PG_TRY();
    {
        query = quantity_query(expression, frame_sql, refusal);
    }
    PG_FINALLY();
    {
        metering::catalog::pop_catalog_search_path();
    }
    PG_END_TRY();
    MemoryContextSwitchTo(caller);
    return query;
}

// A receiver that keeps the first column of the one row an aggregate gives.
struct FirstValue {
    DestReceiver receiver;  // first member: the executor passes a DestReceiver*
    MemoryContext context;  // where the value is copied, to outlive the executor
    Datum value;
    bool isnull;
};

bool keep_first_value(TupleTableSlot* slot, DestReceiver* self)
{
    auto* first = reinterpret_cast<FirstValue*>(self);
    bool isnull = true;
    const Datum value = slot_getattr(slot, 1, &isnull);
    first->isnull = isnull;
    if (!isnull) {
        MemoryContext executor = MemoryContextSwitchTo(first->context);
        first->value = datumCopy(value, false, -1);  // numeric: a varlena
        MemoryContextSwitchTo(executor);
    }
    return true;
}

void receiver_startup(DestReceiver*, int, TupleDesc) {}
void receiver_done(DestReceiver*) {}

// Plans and runs the checked query as the current user (the executor checks its
// SELECT rights on events and billed_events), in the caller's snapshot.
Datum run_quantity_query(Query* query, ParamListInfo params, MemoryContext result_context, bool* isnull)
{
    List* rewritten = pg_rewrite_query(query);
    if (list_length(rewritten) != 1)
        elog(ERROR, "metering: the rating query of a custom meter was rewritten into %d queries",
             list_length(rewritten));
    PlannedStmt* plan = pg_plan_query(linitial_node(Query, rewritten), kFrameSql, 0, params);

    FirstValue first;
    first.receiver.receiveSlot = keep_first_value;
    first.receiver.rStartup = receiver_startup;
    first.receiver.rShutdown = receiver_done;
    first.receiver.rDestroy = receiver_done;
    first.receiver.mydest = DestNone;
    first.context = result_context;
    first.value = static_cast<Datum>(0);
    first.isnull = true;

    const bool own_snapshot = !ActiveSnapshotSet();
    if (own_snapshot)
        PushActiveSnapshot(GetTransactionSnapshot());
    QueryDesc* desc = CreateQueryDesc(plan, kFrameSql, GetActiveSnapshot(), InvalidSnapshot, &first.receiver,
                                      params, nullptr, 0);
    ExecutorStart(desc, 0);
    ExecutorRun(desc, ForwardScanDirection, 0, true);
    ExecutorFinish(desc);
    ExecutorEnd(desc);
    FreeQueryDesc(desc);
    if (own_snapshot)
        PopActiveSnapshot();
    *isnull = first.isnull;
    return first.value;
}

// Errors of the run (a property that is not a number) name the meter.
struct RatingContext {
    const char* meter;
    const char* expression;
};

void rating_error_context(void* arg)
{
    const auto* rating = static_cast<const RatingContext*>(arg);
    errcontext("custom meter \"%s\", expression %s", rating->meter, rating->expression);
}

// With names still resolved in pg_catalog alone: a SQL function the planner
// inlines, or any lookup at run time, sees no other schema either.
Datum run_quantity_query_pinned(Query* query, ParamListInfo params, MemoryContext work,
                                MemoryContext result_context, const RatingContext* rating, bool* isnull)
{
    MemoryContext caller = MemoryContextSwitchTo(work);
    Datum quantity = static_cast<Datum>(0);
    metering::catalog::push_catalog_search_path();
    PG_TRY();
    {
        ErrorContextCallback callback;
        callback.callback = rating_error_context;
        callback.arg = const_cast<RatingContext*>(rating);
        callback.previous = error_context_stack;
        error_context_stack = &callback;
        quantity = run_quantity_query(query, params, result_context, isnull);
        error_context_stack = callback.previous;  // on an error, PG_TRY restores it
    }
    PG_FINALLY();
    {
        metering::catalog::pop_catalog_search_path();
    }
    PG_END_TRY();
    MemoryContextSwitchTo(caller);
    return quantity;
}

// $1..$6 of the frame from the arguments (customer_id, meter, from_ts, to_ts,
// filter, billed_by: NULL when not passed), constants for the planner, which then
// drops the branches of a NULL filter or billed_by.
ParamListInfo rating_params(FunctionCallInfo fcinfo)
{
    static constexpr int kArgument[kParams] = {2, 0, 3, 4, 5, 6};
    ParamListInfo params = makeParamList(kParams);
    for (int i = 0; i < kParams; i++) {
        ParamExternData& param = params->params[i];
        param.isnull = kArgument[i] >= PG_NARGS() || PG_ARGISNULL(kArgument[i]);
        param.value = param.isnull ? static_cast<Datum>(0) : PG_GETARG_DATUM(kArgument[i]);
        param.pflags = PARAM_FLAG_CONST;
        param.ptype = kParamTypes[i];
    }
    return params;
}

[[noreturn]] void throw_stored_expression_refused(const std::string& meter, const std::string& expression,
                                                  const char* state, const std::string& why,
                                                  const std::string& detail = {})
{
    throw core::Error(state,
                      "custom meter " + core::quoted(meter) + " cannot be rated: its expression " +
                          core::quoted(expression) + " " + why,
                      detail,
                      "Expressions are checked again at every use, and an expression stored before metering "
                      "0.2.0 may not pass: create a new meter with an allowed expression (docs/rating.md, "
                      "Custom meters) and charge it instead.");
}

}  // namespace

extern "C" {

// metering._custom_quantity(meter, expression, customer_id, from_ts, to_ts, filter [, billed_by])
PG_FUNCTION_INFO_V1(metering_custom_quantity);
Datum metering_custom_quantity(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        static constexpr const char* kRequired[] = {"meter", "expression", "customer_id", "from_ts", "to_ts"};
        for (int i = 0; i < 5; i++)
            if (PG_ARGISNULL(i))
                core::throw_null_argument(kRequired[i]);
        const char* meter = text_to_cstring(PG_GETARG_TEXT_PP(0));
        const char* expression = text_to_cstring(PG_GETARG_TEXT_PP(1));
        ParamListInfo params = rating_params(fcinfo);
        MemoryContext caller = CurrentMemoryContext;
        MemoryContext work = AllocSetContextCreate(caller, "metering custom meter", ALLOCSET_DEFAULT_SIZES);

        Refusal refusal{nullptr, nullptr};
        Query* query = nullptr;
        try {
            const char* frame_sql = PG_NARGS() > 6 ? kFrameOfMarksSql : kFrameSql;
            query = metering::pg::pg_safe([&] { return quantity_query_pinned(expression, frame_sql, &refusal, work); });
        } catch (const metering::pg::PgError& e) {
            if (!metering::catalog::is_expression_error(e.data->sqlerrcode))
                throw;
            throw_stored_expression_refused(meter, expression, core::sqlstate::kBadExpression, "is not valid",
                                            e.data->message ? e.data->message : "");
        }
        if (query == nullptr)
            throw_stored_expression_refused(meter, expression, refusal.sqlstate, refusal.why);

        bool isnull = true;
        // Errors of the run (a division by zero, a property that is not a number) are raised as they are.
        const RatingContext rating{meter, expression};
        const Datum quantity = metering::pg::pg_safe(
            [&] { return run_quantity_query_pinned(query, params, work, caller, &rating, &isnull); });
        MemoryContextDelete(work);
        if (isnull)
            PG_RETURN_NULL();
        return quantity;
    });
}

}  // extern "C"
