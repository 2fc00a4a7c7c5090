// Unit tests of src/core/currency: ISO 4217 minor-unit exponents.
#include <gtest/gtest.h>

#include <optional>
#include <string_view>

#include "core/currency.hpp"

namespace {

using metering::core::currency_exponent;

TEST(CurrencyExponent, CommonCodes)
{
    EXPECT_EQ(currency_exponent("USD"), std::optional<int>(2));
    EXPECT_EQ(currency_exponent("EUR"), std::optional<int>(2));
    EXPECT_EQ(currency_exponent("GBP"), std::optional<int>(2));
    EXPECT_EQ(currency_exponent("CHF"), std::optional<int>(2));
    // First and last entries of the sorted table.
    EXPECT_EQ(currency_exponent("AED"), std::optional<int>(2));
    EXPECT_EQ(currency_exponent("ZWG"), std::optional<int>(2));
}

TEST(CurrencyExponent, EveryZeroExponentCode)
{
    for (std::string_view code : {"BIF", "CLP", "DJF", "GNF", "ISK", "JPY", "KMF", "KRW", "PYG",
                                  "RWF", "UGX", "UYI", "VND", "VUV", "XAF", "XOF", "XPF"})
        EXPECT_EQ(currency_exponent(code), std::optional<int>(0)) << code;
}

TEST(CurrencyExponent, EveryThreeExponentCode)
{
    for (std::string_view code : {"BHD", "IQD", "JOD", "KWD", "LYD", "OMR", "TND"})
        EXPECT_EQ(currency_exponent(code), std::optional<int>(3)) << code;
}

TEST(CurrencyExponent, FourExponentCodes)
{
    EXPECT_EQ(currency_exponent("CLF"), std::optional<int>(4));
    EXPECT_EQ(currency_exponent("UYW"), std::optional<int>(4));
}

TEST(CurrencyExponent, NotActiveCodes)
{
    // Lower case: lookup is case-sensitive.
    EXPECT_EQ(currency_exponent("usd"), std::nullopt);
    EXPECT_EQ(currency_exponent("Usd"), std::nullopt);
    EXPECT_EQ(currency_exponent("jpy"), std::nullopt);
    // Wrong length.
    EXPECT_EQ(currency_exponent(""), std::nullopt);
    EXPECT_EQ(currency_exponent("US"), std::nullopt);
    EXPECT_EQ(currency_exponent("USDD"), std::nullopt);
    EXPECT_EQ(currency_exponent("EURO"), std::nullopt);
    EXPECT_EQ(currency_exponent(std::string_view("USD\0", 4)), std::nullopt);
    // No minor unit (precious metals, test code) and withdrawn codes.
    EXPECT_EQ(currency_exponent("XAU"), std::nullopt);
    EXPECT_EQ(currency_exponent("XTS"), std::nullopt);
    EXPECT_EQ(currency_exponent("XXX"), std::nullopt);
    EXPECT_EQ(currency_exponent("HRK"), std::nullopt);
    // Before the first and after the last entry.
    EXPECT_EQ(currency_exponent("AAA"), std::nullopt);
    EXPECT_EQ(currency_exponent("ZZZ"), std::nullopt);
}

}  // namespace
