// Custom meters: an admin-defined SQL aggregate expression over the columns of
// metering.events, e.g. sum(value) FILTER (WHERE properties->>'tier' = 'gold').
//
// The expression runs inside metering.usage() and the billing run, with the
// extension owner's rights, so it may use nothing a user could have written:
// only built-in objects of pg_catalog (OID below FirstNormalObjectId), and
// only immutable functions. It is checked in three steps, all with names
// resolved in pg_catalog alone (never in pg_temp or the caller's schemas):
// 1. the raw parse tree: "SELECT <expression> FROM metering.events" and
//    nothing more; no name qualified with another schema. Parse analysis
//    itself runs input functions (a literal cast to an array of a user's
//    domain runs the domain's CHECK), so this comes before it;
// 2. the analyzed query: one target over that table alone, an aggregate;
// 3. every node of the analyzed expression: its functions, operators (and
//    their functions), aggregates (and all their support functions), casts,
//    types and collations.
// create_meter stores Postgres's deparse of the checked tree; rating checks the
// stored text again and runs the tree it checked (src/rating/custom_quantity.cpp).
#include "catalog/expression.hpp"

extern "C" {
#include "access/htup_details.h"
#include "access/transam.h"
#include "catalog/namespace.h"
#include "catalog/pg_aggregate.h"
#include "catalog/pg_collation.h"
#include "catalog/pg_namespace.h"
#include "catalog/pg_operator.h"
#include "catalog/pg_proc.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"
#include "utils/syscache.h"
}

#include <string>

#include "core/errors.hpp"
#include "core/validation.hpp"
#include "pg/guard.hpp"
#include "pg/relations.hpp"

namespace core = metering::core;
namespace sqlstate = metering::core::sqlstate;
using metering::catalog::Refusal;

namespace {

constexpr const char* kOnlyExpression = "must be one expression";
constexpr const char* kNoClauses =
    "must be an expression, without WHERE, GROUP BY, ORDER BY or LIMIT (use FILTER (WHERE ...))";
constexpr const char* kOnlyEvents = "may only read the columns of metering.events";
constexpr const char* kNoSubqueries = "must not contain sub-queries, window functions or set-returning functions";

bool refuse(Refusal* refusal, const char* state, const char* why)
{
    refusal->sqlstate = state;
    refusal->why = why;
    return true;
}

bool refuse_not_builtin(Refusal* refusal, const char* kind, const char* name)
{
    return refuse(refusal, sqlstate::kInsufficientPrivilege,
                  psprintf("uses %s %s, which is not a built-in %s of pg_catalog", kind, name, kind));
}

const char* volatility_word(char volatility)
{
    return volatility == PROVOLATILE_STABLE ? "stable" : "volatile";
}

bool refuse_mutable(Refusal* refusal, const char* name, char volatility)
{
    return refuse(refusal, sqlstate::kBadExpression,
                  psprintf("may only call immutable functions and operators: %s is %s", name,
                           volatility_word(volatility)));
}

// Created by initdb in pg_catalog: no user, and no extension but a superuser's, put it there.
bool is_builtin(Oid oid, Oid namespace_oid)
{
    return OidIsValid(oid) && oid < FirstNormalObjectId && namespace_oid == PG_CATALOG_NAMESPACE;
}

// ---------------------------------------------------------------------------
// Names for messages: pg_catalog's unqualified, as users write them; a
// backend's temporary schema as pg_temp, the same in every session.
// ---------------------------------------------------------------------------

const char* schema_name(Oid namespace_oid)
{
    if (isAnyTempNamespace(namespace_oid))
        return "pg_temp";
    const char* name = get_namespace_name(namespace_oid);
    return name ? quote_identifier(name) : "?";
}

const char* qualified(Oid namespace_oid, const char* name)
{
    if (namespace_oid == PG_CATALOG_NAMESPACE)
        return name;
    return psprintf("%s.%s", schema_name(namespace_oid), name);
}

const char* type_name(Oid type)
{
    HeapTuple tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "cache lookup failed for type %u", type);
    const auto* form = reinterpret_cast<Form_pg_type>(GETSTRUCT(tuple));
    const char* name = form->typnamespace == PG_CATALOG_NAMESPACE
                           ? format_type_be(type)
                           : qualified(form->typnamespace, quote_identifier(NameStr(form->typname)));
    ReleaseSysCache(tuple);
    return name;
}

// name(argtype, ...)
const char* function_signature(const FormData_pg_proc* proc)
{
    StringInfoData text;
    initStringInfo(&text);
    appendStringInfo(&text, "%s(", qualified(proc->pronamespace, quote_identifier(NameStr(proc->proname))));
    for (int i = 0; i < proc->pronargs; i++)
        appendStringInfo(&text, "%s%s", i > 0 ? "," : "", type_name(proc->proargtypes.values[i]));
    appendStringInfoChar(&text, ')');
    return text.data;
}

// ---------------------------------------------------------------------------
// Step 3: the objects an analyzed expression uses
// ---------------------------------------------------------------------------

bool type_refused(Oid type, Refusal* refusal)
{
    if (!OidIsValid(type))
        return false;
    HeapTuple tuple = SearchSysCache1(TYPEOID, ObjectIdGetDatum(type));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "cache lookup failed for type %u", type);
    const bool builtin = is_builtin(type, reinterpret_cast<Form_pg_type>(GETSTRUCT(tuple))->typnamespace);
    ReleaseSysCache(tuple);
    return !builtin && refuse_not_builtin(refusal, "type", type_name(type));
}

bool collation_refused(Oid collation, Refusal* refusal)
{
    if (!OidIsValid(collation))
        return false;
    HeapTuple tuple = SearchSysCache1(COLLOID, ObjectIdGetDatum(collation));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "cache lookup failed for collation %u", collation);
    const auto* form = reinterpret_cast<Form_pg_collation>(GETSTRUCT(tuple));
    const bool builtin = is_builtin(collation, form->collnamespace);
    const char* name = builtin ? nullptr : qualified(form->collnamespace, quote_identifier(NameStr(form->collname)));
    ReleaseSysCache(tuple);
    return !builtin && refuse_not_builtin(refusal, "collation", name);
}

// A function that will run: built-in, immutable, one row. shown_as names what
// the user wrote when it is not the function itself (an operator, a cast).
bool function_refused(Oid function, Refusal* refusal, const char* kind = "function",
                      const char* shown_as = nullptr)
{
    HeapTuple tuple = SearchSysCache1(PROCOID, ObjectIdGetDatum(function));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "cache lookup failed for function %u", function);
    const auto* proc = reinterpret_cast<Form_pg_proc>(GETSTRUCT(tuple));
    const bool builtin = is_builtin(function, proc->pronamespace);
    const char volatility = proc->provolatile;
    const bool set_returning = proc->proretset;
    const char* name = function_signature(proc);
    ReleaseSysCache(tuple);
    if (!builtin)
        return refuse_not_builtin(refusal, kind, name);
    if (volatility != PROVOLATILE_IMMUTABLE)
        return refuse_mutable(refusal, shown_as ? shown_as : name, volatility);
    if (set_returning)
        return refuse(refusal, sqlstate::kBadExpression, kNoSubqueries);
    return false;
}

// An operator and the function that runs for it (its oprcode).
bool operator_refused(Oid op, Oid function, Refusal* refusal)
{
    HeapTuple tuple = SearchSysCache1(OPEROID, ObjectIdGetDatum(op));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "cache lookup failed for operator %u", op);
    const auto* form = reinterpret_cast<Form_pg_operator>(GETSTRUCT(tuple));
    const bool builtin = is_builtin(op, form->oprnamespace);
    const char* name = psprintf("%s(%s,%s)", qualified(form->oprnamespace, NameStr(form->oprname)),
                                OidIsValid(form->oprleft) ? type_name(form->oprleft) : "NONE",
                                type_name(form->oprright));
    ReleaseSysCache(tuple);
    if (!builtin)
        return refuse_not_builtin(refusal, "operator", name);
    if (!OidIsValid(function))
        return refuse(refusal, sqlstate::kBadExpression, psprintf("uses operator %s, which has no function", name));
    return function_refused(function, refusal, "function", psprintf("operator %s", name));
}

bool operator_refused(Oid op, Refusal* refusal)
{
    return operator_refused(op, get_opcode(op), refusal);
}

// An aggregate, every function it may run (transition, final, combine, serial,
// deserial, moving-aggregate ones), its state types and its sort operator.
bool aggregate_refused(Oid aggregate, Refusal* refusal)
{
    if (function_refused(aggregate, refusal, "aggregate"))
        return true;
    HeapTuple tuple = SearchSysCache1(AGGFNOID, ObjectIdGetDatum(aggregate));
    if (!HeapTupleIsValid(tuple))
        elog(ERROR, "cache lookup failed for aggregate %u", aggregate);
    const auto* form = reinterpret_cast<Form_pg_aggregate>(GETSTRUCT(tuple));
    const Oid functions[] = {form->aggtransfn,  form->aggfinalfn,   form->aggcombinefn,
                             form->aggserialfn, form->aggdeserialfn, form->aggmtransfn,
                             form->aggminvtransfn, form->aggmfinalfn};
    const Oid types[] = {form->aggtranstype, form->aggmtranstype};
    const Oid sort_operator = form->aggsortop;
    ReleaseSysCache(tuple);
    for (Oid function : functions)
        if (OidIsValid(function) && function_refused(function, refusal))
            return true;
    for (Oid type : types)
        if (type_refused(type, refusal))
            return true;
    return OidIsValid(sort_operator) && operator_refused(sort_operator, refusal);
}

// A cast through text: the output function of one type, the input function of the other.
bool io_cast_refused(const CoerceViaIO* cast, Refusal* refusal)
{
    const Oid from = exprType(reinterpret_cast<const Node*>(cast->arg));
    if (type_refused(from, refusal) || type_refused(cast->resulttype, refusal))
        return true;
    Oid output = InvalidOid, input = InvalidOid, ioparam = InvalidOid;
    bool varlena = false;
    getTypeOutputInfo(from, &output, &varlena);
    getTypeInputInfo(cast->resulttype, &input, &ioparam);
    const char* shown_as = psprintf("the cast from %s to %s", type_name(from), type_name(cast->resulttype));
    return function_refused(output, refusal, "function", shown_as) ||
           function_refused(input, refusal, "function", shown_as);
}

bool row_compare_refused(const RowCompareExpr* compare, Refusal* refusal)
{
    ListCell* cell = nullptr;
    foreach (cell, compare->opnos)
        if (operator_refused(lfirst_oid(cell), refusal))
            return true;
    foreach (cell, compare->inputcollids)
        if (collation_refused(lfirst_oid(cell), refusal))
            return true;
    return false;
}

// Its result type and collations, for every node that has them.
bool types_refused(const Node* node, Refusal* refusal)
{
    return type_refused(exprType(node), refusal) || collation_refused(exprCollation(node), refusal) ||
           collation_refused(exprInputCollation(node), refusal);
}

// What a node itself runs or reads, before its type (its sub-nodes are walked after).
// Anything not listed is refused: a new kind of node is refused until reviewed.
bool node_refused(Node* node, Refusal* refusal)
{
    switch (nodeTag(node)) {
    case T_List:
    case T_TargetEntry:
    case T_CaseWhen:
        return false;  // no type of their own; their contents are walked
    case T_SortGroupClause: {  // ORDER BY or DISTINCT inside an aggregate
        const auto* clause = reinterpret_cast<SortGroupClause*>(node);
        return operator_refused(clause->eqop, refusal) ||
               (OidIsValid(clause->sortop) && operator_refused(clause->sortop, refusal));
    }
    case T_Var: {
        const auto* var = reinterpret_cast<Var*>(node);
        if (var->varlevelsup != 0 || var->varno != 1 || var->varattno <= 0)
            return refuse(refusal, sqlstate::kBadExpression, kOnlyEvents);
        break;
    }
    case T_Aggref:
        if (aggregate_refused(reinterpret_cast<Aggref*>(node)->aggfnoid, refusal))
            return true;
        break;
    case T_FuncExpr:
        if (function_refused(reinterpret_cast<FuncExpr*>(node)->funcid, refusal))
            return true;
        break;
    case T_OpExpr:
    case T_DistinctExpr:
    case T_NullIfExpr: {
        auto* op = reinterpret_cast<OpExpr*>(node);
        set_opfuncid(op);
        if (operator_refused(op->opno, op->opfuncid, refusal))
            return true;
        break;
    }
    case T_ScalarArrayOpExpr: {
        auto* op = reinterpret_cast<ScalarArrayOpExpr*>(node);
        set_sa_opfuncid(op);
        if (operator_refused(op->opno, op->opfuncid, refusal))
            return true;
        break;
    }
    case T_RowCompareExpr:
        if (row_compare_refused(reinterpret_cast<RowCompareExpr*>(node), refusal))
            return true;
        break;
    case T_CoerceViaIO:
        if (io_cast_refused(reinterpret_cast<CoerceViaIO*>(node), refusal))
            return true;
        break;
    case T_SubscriptingRef: {  // e.g. properties['tier']: the container type's handler runs
        const auto* ref = reinterpret_cast<SubscriptingRef*>(node);
        if (type_refused(ref->refcontainertype, refusal) || type_refused(ref->refelemtype, refusal))
            return true;
        break;
    }
    // Only types and collations (a domain's CHECK is a user's code: its type is refused)
    case T_Const:
    case T_CaseExpr:
    case T_CaseTestExpr:
    case T_CoalesceExpr:
    case T_MinMaxExpr:  // the type's default btree comparison: built-in for a built-in type
    case T_BoolExpr:
    case T_NullTest:
    case T_BooleanTest:
    case T_ArrayExpr:
    case T_RowExpr:
    case T_FieldSelect:
    case T_RelabelType:
    case T_ArrayCoerceExpr:  // its per-element cast is walked as a sub-node
    case T_CollateExpr:
    case T_CoerceToDomain:
    case T_CoerceToDomainValue:
    case T_NamedArgExpr:
        break;
    case T_WindowFunc:
    case T_SubLink:
    case T_SubPlan:
    case T_AlternativeSubPlan:
    case T_GroupingFunc:
        return refuse(refusal, sqlstate::kBadExpression, kNoSubqueries);
    case T_SQLValueFunction:
        return refuse(refusal, sqlstate::kBadExpression,
                      "may only call immutable functions and operators: CURRENT_DATE, CURRENT_USER and "
                      "the like are not");
    default: {
        // nodeToString starts with "{TAG": name the kind of node refused
        const char* text = nodeToString(node);
        const size_t length = strcspn(text + 1, " }");
        return refuse(refusal, sqlstate::kBadExpression,
                      psprintf("must not contain %s expressions", pnstrdup(text + 1, length)));
    }
    }
    return types_refused(node, refusal);
}

// The walkers' type in Postgres 15's headers: bool (*)(), called as bool (*)(Node*, void*).
using Walker = bool (*)();
template <typename Fn>
Walker as_walker(Fn* fn)
{
    return reinterpret_cast<Walker>(reinterpret_cast<void (*)()>(fn));
}

bool refused_walker(Node* node, void* context)
{
    if (node == nullptr)
        return false;
    auto* refusal = static_cast<Refusal*>(context);
    if (node_refused(node, refusal))
        return true;
    return expression_tree_walker(node, as_walker(refused_walker), context);
}

// ---------------------------------------------------------------------------
// Step 1: the raw parse tree, before analysis runs anything
// ---------------------------------------------------------------------------

// A name qualified with a schema other than pg_catalog (pg_temp.evil, OPERATOR(evil.+), x::evil.d).
bool qualified_elsewhere(List* names, const char* kind, Refusal* refusal)
{
    if (list_length(names) <= 1)
        return false;
    if (list_length(names) == 2 && strcmp(strVal(linitial(names)), "pg_catalog") == 0)
        return false;
    return refuse_not_builtin(refusal, kind, NameListToString(names));
}

bool raw_refused_walker(Node* node, void* context)
{
    if (node == nullptr)
        return false;
    auto* refusal = static_cast<Refusal*>(context);
    switch (nodeTag(node)) {
    case T_FuncCall:
        if (qualified_elsewhere(reinterpret_cast<FuncCall*>(node)->funcname, "function", refusal))
            return true;
        break;
    case T_A_Expr:
        if (qualified_elsewhere(reinterpret_cast<A_Expr*>(node)->name, "operator", refusal))
            return true;
        break;
    case T_SortBy:
        if (qualified_elsewhere(reinterpret_cast<SortBy*>(node)->useOp, "operator", refusal))
            return true;
        break;
    case T_TypeName: {
        const auto* type = reinterpret_cast<TypeName*>(node);
        if (type->pct_type)
            return refuse(refusal, sqlstate::kBadExpression, "must not use %TYPE");
        if (qualified_elsewhere(type->names, "type", refusal) || type_refused(type->typeOid, refusal))
            return true;
        break;
    }
    case T_CollateClause:
        if (qualified_elsewhere(reinterpret_cast<CollateClause*>(node)->collname, "collation", refusal))
            return true;
        break;
    case T_SubLink:
        return refuse(refusal, sqlstate::kBadExpression, kNoSubqueries);
    default:
        break;
    }
    return raw_expression_tree_walker(node, as_walker(raw_refused_walker), context);
}

bool is_events_table(const Node* node)
{
    if (!IsA(node, RangeVar))
        return false;
    const auto* table = reinterpret_cast<const RangeVar*>(node);
    return table->catalogname == nullptr && table->schemaname != nullptr &&
           strcmp(table->schemaname, "metering") == 0 && strcmp(table->relname, "events") == 0 &&
           table->inh && table->alias == nullptr;
}

// The one target of "SELECT <expression> FROM metering.events" when the text is
// that and nothing more (a comment or a clause may have hidden the FROM given).
ResTarget* raw_target(List* raw, Refusal* refusal)
{
    if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt)) {
        refuse(refusal, sqlstate::kBadExpression, kOnlyExpression);
        return nullptr;
    }
    const auto* select = reinterpret_cast<SelectStmt*>(linitial_node(RawStmt, raw)->stmt);
    if (select->op != SETOP_NONE || select->intoClause || select->distinctClause || select->whereClause ||
        select->groupClause || select->groupDistinct || select->havingClause || select->windowClause ||
        select->valuesLists || select->sortClause || select->limitOffset || select->limitCount ||
        select->lockingClause || select->withClause) {
        refuse(refusal, sqlstate::kBadExpression, kNoClauses);
        return nullptr;
    }
    if (list_length(select->targetList) != 1) {
        refuse(refusal, sqlstate::kBadExpression, kOnlyExpression);
        return nullptr;
    }
    if (list_length(select->fromClause) != 1 || !is_events_table(linitial_node(Node, select->fromClause))) {
        refuse(refusal, sqlstate::kBadExpression, kOnlyEvents);
        return nullptr;
    }
    return linitial_node(ResTarget, select->targetList);
}

// ---------------------------------------------------------------------------
// Step 2: the analyzed query
// ---------------------------------------------------------------------------

// Why the analyzed query is not a plain aggregate over events; nullptr when it is.
const char* shape_problem(const Query* q)
{
    if (q->commandType != CMD_SELECT || q->utilityStmt != nullptr)
        return "must be an expression";
    if (list_length(q->targetList) != 1)
        return kOnlyExpression;
    if (list_length(q->rtable) != 1 || linitial_node(RangeTblEntry, q->rtable)->rtekind != RTE_RELATION ||
        linitial_node(RangeTblEntry, q->rtable)->relid != metering::pg::relation_oid(metering::pg::Rel::events))
        return kOnlyEvents;
    if (q->jointree->quals || q->groupClause || q->groupingSets || q->havingQual || q->sortClause ||
        q->distinctClause || q->limitCount || q->limitOffset || q->cteList || q->setOperations ||
        q->rowMarks)
        return kNoClauses;
    if (q->hasSubLinks || q->hasWindowFuncs || q->hasTargetSRFs)
        return kNoSubqueries;
    if (!q->hasAggs)
        return "must aggregate the events, for example sum(value)";
    return nullptr;
}

bool result_type_refused(const Node* expression, Refusal* refusal)
{
    switch (exprType(expression)) {
    case NUMERICOID:
    case INT2OID:
    case INT4OID:
    case INT8OID:
        return false;
    default:
        return refuse(refusal, sqlstate::kBadExpression,
                      "must give a numeric or integer quantity (money is never a float)");
    }
}

Node* target_expression(const Query* q)
{
    return reinterpret_cast<Node*>(linitial_node(TargetEntry, q->targetList)->expr);
}

// The text create_meter stores: Postgres's deparse of the checked tree, checked
// again as rating will read it back. nullptr with *refusal set when refused.
char* canonical_expression(const char* expression, Refusal* refusal)
{
    Query* q = metering::catalog::checked_expression_query(expression, refusal);
    if (q == nullptr)
        return nullptr;
    const Oid events = linitial_node(RangeTblEntry, q->rtable)->relid;
    char* canonical = deparse_expression(target_expression(q), deparse_context_for("events", events), false, false);
    if (metering::catalog::checked_expression_query(canonical, refusal) == nullptr)
        return nullptr;
    return canonical;
}

char* canonical_expression_pinned(const char* expression, Refusal* refusal)
{
    char* canonical = nullptr;
    metering::catalog::push_catalog_search_path();
    PG_TRY();
    {
        canonical = canonical_expression(expression, refusal);
    }
    PG_FINALLY();
    {
        metering::catalog::pop_catalog_search_path();
    }
    PG_END_TRY();
    return canonical;
}

[[noreturn]] void throw_bad_expression(const std::string& expression, const char* state, const std::string& why,
                                       const std::string& detail = {})
{
    const bool privilege = strcmp(state, sqlstate::kInsufficientPrivilege) == 0;
    throw core::Error(state, "expression " + core::quoted(expression) + " " + why, detail,
                      privilege
                          ? "A custom meter runs with the extension owner's rights: it may use only "
                            "Postgres's built-in immutable functions, operators, aggregates and types "
                            "(pg_catalog), unqualified or qualified with pg_catalog."
                          : "A custom meter's expression aggregates columns of metering.events (value, "
                            "properties, occurred_at, due_at, ...), e.g. sum(value) FILTER (WHERE "
                            "properties->>'tier' = 'gold').");
}

}  // namespace

namespace metering::catalog {

void push_catalog_search_path()
{
    OverrideSearchPath path;
    path.schemas = NIL;
    path.addCatalog = true;
    path.addTemp = false;  // not even for relations and types, where pg_temp is searched first
    path.generation = 0;
    PushOverrideSearchPath(&path);
}

void pop_catalog_search_path()
{
    PopOverrideSearchPath();
}

bool expression_refused(Node* expression, Refusal* refusal)
{
    return refused_walker(expression, refusal);
}

Query* checked_expression_query(const char* expression, Refusal* refusal)
{
    const char* sql = psprintf("SELECT %s FROM metering.events", expression);
    List* raw = raw_parser(sql, RAW_PARSE_DEFAULT);
    ResTarget* target = raw_target(raw, refusal);
    if (target == nullptr || raw_refused_walker(target->val, refusal))
        return nullptr;
    Query* q = parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql, nullptr, 0, nullptr);
    if (const char* problem = shape_problem(q)) {
        refuse(refusal, sqlstate::kBadExpression, problem);
        return nullptr;
    }
    Node* analyzed = target_expression(q);
    if (expression_refused(analyzed, refusal) || result_type_refused(analyzed, refusal))
        return nullptr;
    return q;
}

bool is_expression_error(int sqlerrcode)
{
    const int category = ERRCODE_TO_CATEGORY(sqlerrcode);
    return category == ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION || category == ERRCODE_DATA_EXCEPTION ||
           category == ERRCODE_INVALID_SCHEMA_NAME;  // 'pg_temp.x'::regclass before pg_temp exists
}

}  // namespace metering::catalog

extern "C" {

// metering._check_expression(expression) -> the canonical text to store.
PG_FUNCTION_INFO_V1(metering_check_expression);
Datum metering_check_expression(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            core::throw_null_argument("expression");
        const char* given = text_to_cstring(PG_GETARG_TEXT_PP(0));
        Refusal refusal{nullptr, nullptr};
        char* canonical = nullptr;
        try {
            canonical = metering::pg::pg_safe([&] { return canonical_expression_pinned(given, &refusal); });
        } catch (const metering::pg::PgError& e) {
            if (!metering::catalog::is_expression_error(e.data->sqlerrcode))
                throw;  // not about the expression (e.g. a cancel): raised as it was
            throw_bad_expression(given, sqlstate::kBadExpression, "is not valid",
                                 e.data->message ? e.data->message : "");
        }
        if (refusal.why)
            throw_bad_expression(given, refusal.sqlstate, refusal.why);
        PG_RETURN_TEXT_P(cstring_to_text(canonical));
    });
}

}  // extern "C"
