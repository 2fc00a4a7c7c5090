// What every fuzz target of test/fuzz shares: a check that stops the run
// with a message (libFuzzer then saves the input as a crash), and the rule
// that untrusted input may only be refused with metering::core::Error.
#pragma once

#include <cstdio>
#include <cstdlib>

#include "core/errors.hpp"

namespace metering_fuzz {

[[noreturn]] inline void check_failed(const char* condition, const char* file, int line)
{
    std::fprintf(stderr, "%s:%d: fuzz check failed: %s\n", file, line, condition);
    std::abort();
}

// Runs f; a core Error is a refusal and returns false. Any other exception
// escapes and ends the run (libFuzzer reports it as a crash).
template <typename F>
bool accepted(F&& f)
{
    try {
        f();
        return true;
    } catch (const metering::core::Error&) {
        return false;
    }
}

}  // namespace metering_fuzz

#define FUZZ_CHECK(condition)                                                  \
    do {                                                                       \
        if (!(condition))                                                      \
            ::metering_fuzz::check_failed(#condition, __FILE__, __LINE__);     \
    } while (0)
