// The one boundary between C++ and Postgres errors.
//
// Every SQL-callable function body runs inside metering::pg::guarded(): a C++
// exception (a billing-rule core::Error, bad_alloc, anything) is caught, the
// C++ stack unwinds, and only then is ereport(ERROR) raised.
//
// Postgres errors are longjmps. Code that calls Postgres while C++ objects
// with destructors are alive wraps the call in pg_safe(), which catches the
// longjmp and rethrows it as a PgError; guarded() re-raises it unchanged once
// the stack has unwound. Plain-C-style bridge code (no destructors alive) may
// call Postgres directly: a longjmp then skips nothing.
#pragma once

extern "C" {
#include "postgres.h"
#include "fmgr.h"
}

#include "core/errors.hpp"

namespace metering::pg {

// A Postgres error caught by pg_safe(), carried across C++ frames.
struct PgError {
    ErrorData* data;
};

// Fixed-size copy of a C++ error, so that nothing allocates between the catch
// and the ereport.
struct PendingError {
    char sqlstate[6];
    char message[1024];
    char detail[1024];
    char hint[512];
    ErrorData* pg;  // a Postgres error to re-raise as it was
    bool set;
};

void capture(PendingError& pending, const core::Error& error) noexcept;
void capture_message(PendingError& pending, const char* sqlstate, const char* message) noexcept;
[[noreturn]] void raise(const PendingError& pending);

template <typename Fn>
inline auto guarded(Fn&& body) -> decltype(body())
{
    PendingError pending;
    pending.set = false;
    pending.pg = nullptr;
    try {
        return body();
    } catch (const core::Error& e) {
        capture(pending, e);
    } catch (const PgError& e) {
        pending.pg = e.data;
        pending.set = true;
    } catch (const std::bad_alloc&) {
        capture_message(pending, "53200", "out of memory in metering");
    } catch (const std::exception& e) {
        capture_message(pending, "XX000", e.what());
    } catch (...) {
        capture_message(pending, "XX000", "unexpected C++ exception in metering");
    }
    raise(pending);
}

// Runs fn, which calls Postgres, turning a Postgres error into a PgError.
// Never throw from fn: it runs inside PG_TRY.
template <typename Fn>
inline auto pg_safe(Fn&& fn) -> decltype(fn())
{
    MemoryContext caller = CurrentMemoryContext;
    ErrorData* caught = nullptr;
    using Result = decltype(fn());
    if constexpr (std::is_void_v<Result>) {
        PG_TRY();
        {
            fn();
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller);
            caught = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (caught)
            throw PgError{caught};
    } else {
        Result result{};
        PG_TRY();
        {
            result = fn();
        }
        PG_CATCH();
        {
            MemoryContextSwitchTo(caller);
            caught = CopyErrorData();
            FlushErrorState();
        }
        PG_END_TRY();
        if (caught)
            throw PgError{caught};
        return result;
    }
}

}  // namespace metering::pg
