// Custom meters: an admin-defined SQL aggregate expression over the columns of
// metering.events, e.g. sum(value) FILTER (WHERE properties->>'tier' = 'gold').
//
// The expression is parsed and analyzed by Postgres as the only target of
// "SELECT <expression> FROM metering.events", and the resulting tree is
// checked: one target, that table alone, no WHERE/GROUP BY/sub-query/window,
// an aggregate, immutable functions only, a numeric or integer result. What
// is stored is not the text given but Postgres's own deparse of the checked
// tree, so text smuggled around the expression (a comment, a second clause)
// can never reach the query that rates it.
extern "C" {
#include "postgres.h"
#include "catalog/namespace.h"
#include "catalog/pg_type.h"
#include "fmgr.h"
#include "nodes/nodeFuncs.h"
#include "optimizer/optimizer.h"
#include "parser/analyze.h"
#include "parser/parser.h"
#include "utils/builtins.h"
#include "utils/lsyscache.h"
#include "utils/ruleutils.h"
}

#include <string>

#include "core/errors.hpp"
#include "core/validation.hpp"
#include "pg/guard.hpp"
#include "pg/relations.hpp"

namespace core = metering::core;

namespace {

// Why the analyzed query is not a plain aggregate over events; nullptr when it is.
const char* problem_of(const Query* q, Oid events)
{
    if (q->commandType != CMD_SELECT || q->utilityStmt != nullptr)
        return "must be an expression";
    if (list_length(q->targetList) != 1)
        return "must be one expression";
    if (list_length(q->rtable) != 1 || linitial_node(RangeTblEntry, q->rtable)->rtekind != RTE_RELATION ||
        linitial_node(RangeTblEntry, q->rtable)->relid != events)
        return "may only read the columns of metering.events";
    if (q->jointree->quals || q->groupClause || q->groupingSets || q->havingQual || q->sortClause ||
        q->distinctClause || q->limitCount || q->limitOffset || q->cteList || q->setOperations ||
        q->rowMarks)
        return "must be an expression, without WHERE, GROUP BY, ORDER BY or LIMIT (use FILTER (WHERE ...))";
    if (q->hasSubLinks || q->hasWindowFuncs || q->hasTargetSRFs)
        return "must not contain sub-queries, window functions or set-returning functions";
    if (!q->hasAggs)
        return "must aggregate the events, for example sum(value)";
    const Node* expr = reinterpret_cast<Node*>(linitial_node(TargetEntry, q->targetList)->expr);
    if (contain_mutable_functions(const_cast<Node*>(expr)))
        return "may only call immutable functions and operators";
    switch (exprType(expr)) {
    case NUMERICOID:
    case INT2OID:
    case INT4OID:
    case INT8OID:
        return nullptr;
    default:
        return "must give a numeric or integer quantity (money is never a float)";
    }
}

// Plain-C-style: parse errors raise Postgres errors (the caller catches them).
// Returns the canonical text, or sets *problem.
char* canonical_expression(const char* expression, const char** problem)
{
    Oid events = metering::pg::relation_oid(metering::pg::Rel::events);
    char* sql = psprintf("SELECT %s FROM metering.events", expression);
    List* raw = raw_parser(sql, RAW_PARSE_DEFAULT);
    if (list_length(raw) != 1 || !IsA(linitial_node(RawStmt, raw)->stmt, SelectStmt)) {
        *problem = "must be one expression";
        return nullptr;
    }
    Query* q = parse_analyze_fixedparams(linitial_node(RawStmt, raw), sql, nullptr, 0, nullptr);
    *problem = problem_of(q, events);
    if (*problem)
        return nullptr;
    List* context = deparse_context_for("events", events);
    return deparse_expression(reinterpret_cast<Node*>(linitial_node(TargetEntry, q->targetList)->expr),
                              context, false, false);
}

[[noreturn]] void throw_bad_expression(const std::string& expression, const std::string& why,
                                       const std::string& detail = {})
{
    throw core::Error(core::sqlstate::kBadExpression, "expression " + core::quoted(expression) + " " + why,
                      detail,
                      "A custom meter's expression aggregates columns of metering.events (value, "
                      "properties, occurred_at, due_at, ...), e.g. sum(value) FILTER (WHERE "
                      "properties->>'tier' = 'gold').");
}

}  // namespace

extern "C" {

// metering._check_expression(expression) -> the canonical text to store.
PG_FUNCTION_INFO_V1(metering_check_expression);
Datum metering_check_expression(PG_FUNCTION_ARGS)
{
    return metering::pg::guarded([&]() -> Datum {
        if (PG_ARGISNULL(0))
            core::throw_null_argument("expression");
        const char* given = text_to_cstring(PG_GETARG_TEXT_PP(0));
        const char* problem = nullptr;
        char* canonical = nullptr;
        try {
            canonical = metering::pg::pg_safe([&] { return canonical_expression(given, &problem); });
        } catch (const metering::pg::PgError& e) {
            const int category = ERRCODE_TO_CATEGORY(e.data->sqlerrcode);
            if (category != ERRCODE_SYNTAX_ERROR_OR_ACCESS_RULE_VIOLATION && category != ERRCODE_DATA_EXCEPTION)
                throw;  // not about the expression (e.g. a cancel): raised as it was
            throw_bad_expression(given, "is not valid", e.data->message ? e.data->message : "");
        }
        if (problem)
            throw_bad_expression(given, problem);
        PG_RETURN_TEXT_P(cstring_to_text(canonical));
    });
}

}  // extern "C"
