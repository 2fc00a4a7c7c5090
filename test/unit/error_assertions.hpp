// Assertions on metering::core::Error shared by every core unit test.
#pragma once

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>

#include "core/errors.hpp"

namespace metering_test {

using metering::core::Error;

// Runs f and returns the metering Error it throws, or nullopt.
template <typename F>
std::optional<Error> error_of(F&& f)
{
    try {
        f();
    } catch (const Error& e) {
        return e;
    }
    return std::nullopt;
}

// Passes when f throws metering::core::Error with exactly this SQLSTATE.
template <typename F>
::testing::AssertionResult throws_sqlstate(F&& f, std::string_view code)
{
    try {
        f();
    } catch (const Error& e) {
        if (code == e.sqlstate())
            return ::testing::AssertionSuccess();
        return ::testing::AssertionFailure() << "threw Error with sqlstate " << e.sqlstate()
                                             << " instead of " << code << ": " << e.message();
    } catch (const std::exception& e) {
        return ::testing::AssertionFailure() << "threw another exception: " << e.what();
    } catch (...) {
        return ::testing::AssertionFailure() << "threw a non-std exception";
    }
    return ::testing::AssertionFailure() << "did not throw (expected sqlstate " << code << ")";
}

inline ::testing::AssertionResult contains(const std::string& haystack, std::string_view needle)
{
    if (haystack.find(needle) != std::string::npos)
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "\"" << haystack << "\" does not contain \"" << needle
                                         << "\"";
}

}  // namespace metering_test

// EXPECT_SQLSTATE("MT009", statement...): the statement throws Error with that SQLSTATE.
#define EXPECT_SQLSTATE(code, ...) \
    EXPECT_TRUE(::metering_test::throws_sqlstate([&] { __VA_ARGS__; }, code))
