// Custom meters' expressions: the checker shared by create_meter (which stores
// the canonical text) and the rating query (which checks it again and runs the
// very tree it checked). docs/rating.md, "Custom meters", says what is allowed.
//
// Plain-C-style: every function here may raise a Postgres error (longjmp), so
// callers keep no C++ object with a destructor alive around them.
#pragma once

extern "C" {
#include "postgres.h"
#include "nodes/parsenodes.h"
}

namespace metering::catalog {

// Why an expression is refused: its SQLSTATE and the end of the message
// ("may only call immutable ..."), palloc'd. why == nullptr: nothing refused.
struct Refusal {
    const char* sqlstate;
    const char* why;
};

// Names resolve in pg_catalog only, never in pg_temp or the caller's schemas,
// until pop_catalog_search_path().
void push_catalog_search_path();
void pop_catalog_search_path();

// The analyzed "SELECT <expression> FROM metering.events", every part of it
// checked; nullptr with *refusal set when refused. Call with the catalog search
// path pushed. Parse errors are raised as Postgres errors.
Query* checked_expression_query(const char* expression, Refusal* refusal);

// Whether an analyzed expression uses anything but built-in immutable objects
// of pg_catalog over the columns of metering.events (sets *refusal).
bool expression_refused(Node* expression, Refusal* refusal);

// Whether a Postgres error raised while parsing an expression is about the
// expression (a syntax error, an unknown column, function or schema, a bad
// literal), not something else such as a cancel.
bool is_expression_error(int sqlerrcode);

}  // namespace metering::catalog
