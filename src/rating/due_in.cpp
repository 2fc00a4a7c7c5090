// metering._due_in(due_at, from_ts, to_ts): from_ts <= due_at < to_ts, the test
// that puts an event in a billing period, with a planner support function.
//
// Written as two inequalities, the test joins events to periods whose bounds
// the planner cannot know (they come from metering._periods), and Postgres
// then estimates the pair at 0.5 % of the rows (DEFAULT_RANGE_INEQ_SEL): one
// event per invoice line instead of hundreds, so it picks one index range scan
// per line even for every customer's period at once (docs/benchmarks.md,
// Figure 4). The support function:
//   - estimates a join (or a parameterized scan) from the statistics of
//     due_at: a period holds about kTypicalPeriodSeconds of the time the
//     events span (with known bounds, Postgres estimates the two inequalities
//     itself);
//   - turns the call into the index conditions due_at >= from_ts AND
//     due_at < to_ts, exactly, so one customer's lines still use the primary
//     key (customer_id, meter, due_at, event_id).
extern "C" {
#include "postgres.h"
#include "fmgr.h"
#include "access/stratnum.h"
#include "catalog/pg_am_d.h"
#include "catalog/pg_statistic.h"
#include "catalog/pg_type_d.h"
#include "nodes/makefuncs.h"
#include "nodes/nodeFuncs.h"
#include "nodes/pathnodes.h"
#include "nodes/supportnodes.h"
#include "optimizer/optimizer.h"
#include "utils/lsyscache.h"
#include "utils/selfuncs.h"
#include "utils/timestamp.h"
#include "utils/typcache.h"
}

#include "pg/guard.hpp"

namespace {

// A billing period is usually a month; shorter plans are over-estimated, which
// only makes the planner prefer one pass over the events a little earlier.
constexpr double kTypicalPeriodSeconds = 31.0 * 86400.0;
// Without statistics on due_at (a table never analyzed).
constexpr double kDefaultJoinSelectivity = 0.1;
constexpr double kMinSelectivity = 1.0e-4;

// Seconds between the lowest and the highest histogram bound of due_at, or a
// negative number when there is no usable histogram. Plain C-style frame: no
// object with a destructor is alive while Postgres is called.
double due_at_span(PlannerInfo* root, Node* due_at)
{
    VariableStatData vardata;
    double span = -1.0;
    examine_variable(root, due_at, 0, &vardata);
    if (HeapTupleIsValid(vardata.statsTuple) && vardata.atttype == TIMESTAMPTZOID) {
        AttStatsSlot sslot;
        if (get_attstatsslot(&sslot, vardata.statsTuple, STATISTIC_KIND_HISTOGRAM, InvalidOid,
                             ATTSTATSSLOT_VALUES)) {
            if (sslot.nvalues >= 2) {
                TimestampTz lo = DatumGetTimestampTz(sslot.values[0]);
                TimestampTz hi = DatumGetTimestampTz(sslot.values[sslot.nvalues - 1]);
                if (!TIMESTAMP_NOT_FINITE(lo) && !TIMESTAMP_NOT_FINITE(hi) && hi > lo)
                    span = static_cast<double>(hi - lo) / USECS_PER_SEC;
            }
            free_attstatsslot(&sslot);
        }
    }
    ReleaseVariableStats(vardata);
    return span;
}

// due_at >= from_ts and due_at < to_ts with the btree operators of the
// timestamptz family (InvalidOid when the family has none).
List* as_inequalities(Oid opfamily, Node* due_at, Node* from_ts, Node* to_ts)
{
    Oid ge = get_opfamily_member(opfamily, TIMESTAMPTZOID, TIMESTAMPTZOID, BTGreaterEqualStrategyNumber);
    Oid lt = get_opfamily_member(opfamily, TIMESTAMPTZOID, TIMESTAMPTZOID, BTLessStrategyNumber);
    if (!OidIsValid(ge) || !OidIsValid(lt))
        return NIL;
    return list_make2(make_opclause(ge, BOOLOID, false, reinterpret_cast<Expr*>(due_at),
                                    reinterpret_cast<Expr*>(from_ts), InvalidOid, InvalidOid),
                      make_opclause(lt, BOOLOID, false, reinterpret_cast<Expr*>(due_at),
                                    reinterpret_cast<Expr*>(to_ts), InvalidOid, InvalidOid));
}

Node* selectivity(SupportRequestSelectivity* req)
{
    if (list_length(req->args) != 3)
        return nullptr;
    Node* due_at = static_cast<Node*>(linitial(req->args));
    Node* from_ts = static_cast<Node*>(lsecond(req->args));
    Node* to_ts = static_cast<Node*>(lthird(req->args));
    // A restriction whose bounds are columns of another table (the inner side
    // of a parameterized join) is a join for this purpose.
    bool bounds_known = !contain_var_clause(from_ts) && !contain_var_clause(to_ts);
    if (!req->is_join && bounds_known) {
        // Known bounds: Postgres's own estimate of the two inequalities.
        Oid opfamily = lookup_type_cache(TIMESTAMPTZOID, TYPECACHE_BTREE_OPFAMILY)->btree_opf;
        List* clauses = as_inequalities(opfamily, due_at, from_ts, to_ts);
        if (clauses == NIL)
            return nullptr;
        req->selectivity = clauselist_selectivity(req->root, clauses, req->varRelid, JOIN_INNER, nullptr);
        return reinterpret_cast<Node*>(req);
    }
    double span = due_at_span(req->root, due_at);
    double s = span > 0 ? kTypicalPeriodSeconds / span : kDefaultJoinSelectivity;
    req->selectivity = s > 1.0 ? 1.0 : s < kMinSelectivity ? kMinSelectivity : s;
    return reinterpret_cast<Node*>(req);
}

Node* index_condition(SupportRequestIndexCondition* req)
{
    if (!is_funcclause(req->node) || req->indexarg != 0 || req->index->relam != BTREE_AM_OID)
        return nullptr;
    List* args = reinterpret_cast<FuncExpr*>(req->node)->args;
    if (list_length(args) != 3)
        return nullptr;
    Node* from_ts = static_cast<Node*>(lsecond(args));
    Node* to_ts = static_cast<Node*>(lthird(args));
    // The bounds must be computable before the scan: nothing volatile, no
    // column of the indexed table itself.
    if (contain_volatile_functions(from_ts) || contain_volatile_functions(to_ts))
        return nullptr;
    Relids bound_rels = bms_union(pull_varnos(req->root, from_ts), pull_varnos(req->root, to_ts));
    if (bms_is_member(req->index->rel->relid, bound_rels))
        return nullptr;
    List* clauses = as_inequalities(req->opfamily, static_cast<Node*>(linitial(args)), from_ts, to_ts);
    if (clauses == NIL)
        return nullptr;
    req->lossy = false;
    return reinterpret_cast<Node*>(clauses);
}

}  // namespace

extern "C" {

PG_FUNCTION_INFO_V1(metering_due_in);
Datum metering_due_in(PG_FUNCTION_ARGS)
{
    TimestampTz due_at = PG_GETARG_TIMESTAMPTZ(0);
    TimestampTz from_ts = PG_GETARG_TIMESTAMPTZ(1);
    TimestampTz to_ts = PG_GETARG_TIMESTAMPTZ(2);
    PG_RETURN_BOOL(from_ts <= due_at && due_at < to_ts);
}

PG_FUNCTION_INFO_V1(metering_due_in_support);
Datum metering_due_in_support(PG_FUNCTION_ARGS)
{
    Node* raw = reinterpret_cast<Node*>(PG_GETARG_POINTER(0));
    Node* result = metering::pg::guarded([&]() -> Node* {
        if (IsA(raw, SupportRequestSelectivity))
            return selectivity(reinterpret_cast<SupportRequestSelectivity*>(raw));
        if (IsA(raw, SupportRequestIndexCondition))
            return index_condition(reinterpret_cast<SupportRequestIndexCondition*>(raw));
        return nullptr;
    });
    PG_RETURN_POINTER(result);
}

}  // extern "C"
