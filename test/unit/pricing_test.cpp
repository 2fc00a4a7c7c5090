// Unit tests of src/core/pricing: reading pricing rules and rating quantities.
//
// The first part checks worked examples from published pricing documentation
// against the numbers printed there (source URL beside each), not against
// this code's own output. The rest covers edge cases, the decisions documented
// in pricing.hpp, and every validation error.
#include <gtest/gtest.h>

#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/decimal.hpp"
#include "core/errors.hpp"
#include "core/pricing.hpp"
#include "error_assertions.hpp"

namespace {

using metering::core::BreakdownLine;
using metering::core::Decimal;
using metering::core::Pricing;
using metering::core::PricingModel;
using metering_test::contains;
using metering_test::error_of;
namespace mc = metering::core;
namespace sqlstate = metering::core::sqlstate;

Decimal D(std::string_view text) { return Decimal::parse(text); }

Pricing P(std::string_view json) { return mc::parse_pricing(json); }

// Passes when actual equals expected by value (published figures carry no
// scale: "$29" is 29.00 too); prints both on failure.
::testing::AssertionResult is_amount(const Decimal& actual, std::string_view expected)
{
    if (actual == D(expected))
        return ::testing::AssertionSuccess();
    return ::testing::AssertionFailure() << "amount is " << actual.to_string() << ", expected "
                                         << expected;
}

::testing::AssertionResult rates(std::string_view pricing, std::string_view quantity,
                                 std::string_view expected)
{
    return is_amount(mc::rate(P(pricing), D(quantity)), expected) << " for quantity " << quantity;
}

// A breakdown line as text: "tier units unit_price flat_price amount".
std::string text_of(const BreakdownLine& l)
{
    return std::to_string(l.tier) + " " + l.units.to_string() + " " + l.unit_price.to_string() +
           " " + l.flat_price.to_string() + " " + l.amount.to_string();
}

std::vector<std::string> breakdown(std::string_view pricing, std::string_view quantity)
{
    std::vector<std::string> out;
    for (const BreakdownLine& l : mc::rate_breakdown(P(pricing), D(quantity)))
        out.push_back(text_of(l));
    return out;
}

using Lines = std::vector<std::string>;

// Runs the parse and returns its Error; fails the test when none is thrown
// or the SQLSTATE is not MT009.
mc::Error pricing_error(std::string_view json)
{
    auto e = error_of([&] { P(json); });
    if (!e.has_value()) {
        ADD_FAILURE() << "accepted: " << json;
        return mc::Error(sqlstate::kMalformedPricing, "");
    }
    EXPECT_STREQ(e->sqlstate(), sqlstate::kMalformedPricing) << e->message();
    return *e;
}

// =============================================================================
// Published worked examples
// =============================================================================

// Stripe, "Tiered pricing": https://stripe.com/docs/billing/subscriptions/tiers
// Tiers 1-5 $5, 6-10 $4, 11-15 $3, 16-20 $2, 21+ $1 (up_to 5, 10, 15, 20, inf).
//   per unit $5:  1 -> $5, 5 -> $25, 6 -> $30, 20 -> $100, 25 -> $125
//   volume:       1 -> $5, 5 -> $25, 6 -> $24, 20 -> $40,  25 -> $25
//   graduated:    6 -> $29 = $25 for the 5 units in 1-5 + $4 for the 1 unit in 6-10
constexpr std::string_view kStripeTiers =
    R"([{"up_to": 5, "unit_price": 5}, {"up_to": 10, "unit_price": 4},
        {"up_to": 15, "unit_price": 3}, {"up_to": 20, "unit_price": 2},
        {"up_to": null, "unit_price": 1}])";

std::string with_tiers(std::string_view model, std::string_view tiers)
{
    return R"({"model": ")" + std::string(model) + R"(", "tiers": )" + std::string(tiers) + "}";
}

TEST(PublishedStripe, PerUnit)
{
    const std::string p = R"({"model": "per_unit", "unit_price": 5})";
    EXPECT_TRUE(rates(p, "1", "5"));
    EXPECT_TRUE(rates(p, "5", "25"));
    EXPECT_TRUE(rates(p, "6", "30"));
    EXPECT_TRUE(rates(p, "20", "100"));
    EXPECT_TRUE(rates(p, "25", "125"));
}

TEST(PublishedStripe, Volume)
{
    const std::string p = with_tiers("volume", kStripeTiers);
    EXPECT_TRUE(rates(p, "1", "5"));
    EXPECT_TRUE(rates(p, "5", "25"));
    EXPECT_TRUE(rates(p, "6", "24"));
    EXPECT_TRUE(rates(p, "20", "40"));
    EXPECT_TRUE(rates(p, "25", "25"));
}

TEST(PublishedStripe, Graduated)
{
    const std::string p = with_tiers("graduated", kStripeTiers);
    EXPECT_TRUE(rates(p, "6", "29"));
    EXPECT_EQ(breakdown(p, "6"), (Lines{"1 5 5 0 25", "2 1 4 0 4"}));
    // Not published, derived by hand from the same tiers:
    // 20 = 5x5 + 5x4 + 5x3 + 5x2 = 25 + 20 + 15 + 10 = 70; 25 = 70 + 5x1 = 75.
    EXPECT_TRUE(rates(p, "20", "70"));
    EXPECT_TRUE(rates(p, "25", "75"));
}

// Stripe, "Set up tiered pricing" (Typographic, fonts per month):
// https://docs.stripe.com/subscriptions/pricing-models/tiered-pricing
// Tiers 1-5 7 USD, 6-10 6.5 USD, 11+ 6 USD.
//   volume: 1 -> 7, 5 -> 35, 6 -> 39 (6 x 6.5), 20 -> 120, 25 -> 150
//   graduated: "5 fonts result in the same charge as volume-based pricing: 35 USD"
constexpr std::string_view kTypographicTiers =
    R"([{"up_to": 5, "unit_price": 7}, {"up_to": 10, "unit_price": 6.5},
        {"up_to": null, "unit_price": 6}])";

TEST(PublishedStripe, TypographicVolume)
{
    const std::string p = with_tiers("volume", kTypographicTiers);
    EXPECT_TRUE(rates(p, "1", "7"));
    EXPECT_TRUE(rates(p, "5", "35"));
    EXPECT_TRUE(rates(p, "6", "39"));
    EXPECT_TRUE(rates(p, "20", "120"));
    EXPECT_TRUE(rates(p, "25", "150"));
}

TEST(PublishedStripe, TypographicGraduatedMatchesVolumeWithinTheFirstTier)
{
    EXPECT_TRUE(rates(with_tiers("graduated", kTypographicTiers), "5", "35"));
}

// Sequence, "Pricing models": https://docs.sequencehq.com/plans-products/pricing-models
//   Linear: $0.1 per unit, 550 units = $55.00
//   Volume: tier 1 0-100 @ $1 + $20 flat, tier 2 100-inf @ $0.75 + $50 flat;
//           125 units: 125 x $0.75 + $50 = $143.75
//   Graduated, same tiers: 100 x $1 + $20 + 25 x $0.75 + $50 = $188.75
//   Packaged: $10 per 250 units; 600 units: 3 packages x $10 = $30
// (The page's percentage-based tier examples are left out: their totals,
// $325 and $875, do not follow from the printed rates 0.1 % and 0.05 %; they
// fit 1 % and 0.5 %. A source that cannot be checked by hand is no test.)
constexpr std::string_view kSequenceTiers =
    R"([{"up_to": 100, "unit_price": 1, "flat_price": 20},
        {"up_to": null, "unit_price": 0.75, "flat_price": 50}])";

TEST(PublishedSequence, Linear)
{
    EXPECT_TRUE(rates(R"({"model": "per_unit", "unit_price": 0.1})", "550", "55.00"));
}

TEST(PublishedSequence, VolumeWithFlatFee)
{
    const std::string p = with_tiers("volume", kSequenceTiers);
    EXPECT_TRUE(rates(p, "125", "143.75"));
    EXPECT_EQ(breakdown(p, "125"), (Lines{"2 125 0.75 50 143.75"}));
}

TEST(PublishedSequence, GraduatedWithFlatFees)
{
    const std::string p = with_tiers("graduated", kSequenceTiers);
    EXPECT_TRUE(rates(p, "125", "188.75"));
    EXPECT_EQ(breakdown(p, "125"), (Lines{"1 100 1 20 120", "2 25 0.75 50 68.75"}));
}

TEST(PublishedSequence, Package)
{
    EXPECT_TRUE(rates(R"({"model": "package", "package_size": 250, "package_price": 10})", "600",
                      "30"));
}

// Sequence, "Usage-based pricing":
// https://docs.sequencehq.com/plans-products/usage-based-pricing
//   Linear pricing (percentage-based): 0.5 % per payment; 50 payments
//   amounting to $1,000: $1,000 x 0.5 % = $5.00
TEST(PublishedSequence, Percentage)
{
    EXPECT_TRUE(rates(R"({"model": "percentage", "rate": 0.5})", "1000", "5.00"));
}

// Lago, "Package": https://getlago.com/docs/guide/plans/charges/charge-models/package
//   $5 per 100 units, the first 100 units free; 201 units cost
//   $0 (first 100) + $5 (next 100) + $5 (last unit) = $10.
TEST(PublishedLago, PackageWithFreeUnits)
{
    const std::string p =
        R"({"model": "package", "package_size": 100, "package_price": 5, "free_units": 100})";
    EXPECT_TRUE(rates(p, "201", "10"));
    EXPECT_TRUE(is_amount(mc::billable_quantity(P(p), D("201")), "101"));
    EXPECT_EQ(breakdown(p, "201"), (Lines{"1 2 5 0 10"}));
}

// Chargebee, "Package Pricing" (OpenAI GPT-5 example):
// https://www.chargebee.com/docs/billing/2.0/product-catalog/package-pricing
//   package 1,000,000 tokens at $1.25: 10 tokens -> 1 package = $1.25;
//   1,000,000 -> 1 package = $1.25; 1,500,000 -> 2 packages = $2.50.
// (Chargebee also bills one package at zero usage; here 0 packages cost 0.)
TEST(PublishedChargebee, Package)
{
    const std::string p = R"({"model": "package", "package_size": 1000000, "package_price": 1.25})";
    EXPECT_TRUE(rates(p, "10", "1.25"));
    EXPECT_TRUE(rates(p, "1000000", "1.25"));
    EXPECT_TRUE(rates(p, "1500000", "2.50"));
}

// PaymentKit, "Package pricing":
// https://docs.paymentkit.com/guides/product-catalog/pricing-structures/package
//   3-pack at $45; 5 units -> 5 / 3 = 1.67 -> rounded up to 2 packages -> $90.
TEST(PublishedPaymentKit, PackageRoundsUp)
{
    EXPECT_TRUE(rates(R"({"model": "package", "package_size": 3, "package_price": 45})", "5", "90"));
}

// Zuplo, "Pricing models": https://zuplo.com/docs/articles/monetization/pricing-models
//   Per unit $0.001: 100,000 API calls = $100
//   Tiers 1-1,000 $0.10, 1,001-10,000 $0.05, 10,001+ $0.01; 15,000 units:
//   graduated (1,000 x $0.10) + (9,000 x $0.05) + (5,000 x $0.01) = $100 + $450 + $50 = $600
//   volume 15,000 x $0.01 = $150
constexpr std::string_view kZuploTiers =
    R"([{"up_to": 1000, "unit_price": 0.10}, {"up_to": 10000, "unit_price": 0.05},
        {"up_to": null, "unit_price": 0.01}])";

TEST(PublishedZuplo, PerUnit)
{
    EXPECT_TRUE(rates(R"({"model": "per_unit", "unit_price": 0.001})", "100000", "100"));
}

TEST(PublishedZuplo, GraduatedAndVolume)
{
    EXPECT_TRUE(rates(with_tiers("graduated", kZuploTiers), "15000", "600"));
    EXPECT_EQ(breakdown(with_tiers("graduated", kZuploTiers), "15000"),
              (Lines{"1 1000 0.10 0 100.00", "2 9000 0.05 0 450.00", "3 5000 0.01 0 50.00"}));
    EXPECT_TRUE(rates(with_tiers("volume", kZuploTiers), "15000", "150"));
}

// Autumn, "Graduated Pricing":
// https://docs.useautumn.com/documentation/modelling-pricing/graduated-pricing
//   first 1,000 requests $0.01, next 9,000 $0.008, above 10,000 $0.005;
//   15,000 requests: 1,000 x 0.01 + 9,000 x 0.008 + 5,000 x 0.005 = 10 + 72 + 25 = $107
TEST(PublishedAutumn, Graduated)
{
    const std::string p = with_tiers("graduated",
                                     R"([{"up_to": 1000, "unit_price": 0.01},
                                         {"up_to": 10000, "unit_price": 0.008},
                                         {"up_to": null, "unit_price": 0.005}])");
    EXPECT_TRUE(rates(p, "15000", "107"));
}

// Sage Intacct, "Usage-based item pricing examples", Step tiers:
// https://www.intacct.com/ia/docs/en_US/help_action/Contracts/Setting_up_Contracts/Billing_price_lists/usage-based-item-pricing-examples.htm
//   begin quantity 0 -> 10.00, 4 -> 9.50, 8 -> 9.00 (so tiers up to 3, up to 7, 8+):
//   3 devices = 30.00; 7 = 3 x 10.00 + 4 x 9.50 = 68.00; 11 = 30 + 38 + 4 x 9.00 = 104.00
TEST(PublishedIntacct, StepIsGraduated)
{
    const std::string p = with_tiers("graduated",
                                     R"([{"up_to": 3, "unit_price": 10.00},
                                         {"up_to": 7, "unit_price": 9.50},
                                         {"up_to": null, "unit_price": 9.00}])");
    EXPECT_TRUE(rates(p, "3", "30.00"));
    EXPECT_TRUE(rates(p, "7", "68.00"));
    EXPECT_TRUE(rates(p, "11", "104.00"));
}

// Plude, "Package": https://docs.plude.io/product/package
//   fee 1500 USD per package of 100 (decimal package quantities allowed);
//   quantity 305 -> 4 packages -> 6000 USD.
TEST(PublishedPlude, PackageOfDecimalSize)
{
    EXPECT_TRUE(rates(R"({"model": "package", "package_size": 100.0000, "package_price": 1500})",
                      "305", "6000"));
}

// =============================================================================
// Semantics (SPEC 4, "Pricing") and the decisions documented in pricing.hpp
// =============================================================================

constexpr std::string_view kFlatTiers =
    R"([{"up_to": 100, "unit_price": 0.10, "flat_price": 20},
        {"up_to": 1000, "unit_price": 0.05, "flat_price": 50},
        {"up_to": null, "unit_price": 0.01}])";

TEST(Graduated, FirstTierFlatPriceIsChargedAtZero)
{
    const std::string p = with_tiers("graduated", kFlatTiers);
    EXPECT_TRUE(rates(p, "0", "20"));
    EXPECT_EQ(breakdown(p, "0"), (Lines{"1 0 0.10 20 20.00"}));
}

TEST(Graduated, TierCoversAboveThePreviousBoundUpToItsOwn)
{
    const std::string p = with_tiers("graduated", kFlatTiers);
    // 100 is the last unit of tier 1: tier 2 is not reached, its flat price not added.
    EXPECT_EQ(breakdown(p, "100"), (Lines{"1 100 0.10 20 30.00"}));
    // Any amount above 100 reaches tier 2, decimals too.
    EXPECT_EQ(breakdown(p, "100.5"), (Lines{"1 100 0.10 20 30.00", "2 0.5 0.05 50 50.025"}));
    EXPECT_TRUE(rates(p, "100.5", "80.025"));
    // 1500 = 100 x 0.10 + 20 + 900 x 0.05 + 50 + 500 x 0.01 = 30 + 95 + 5
    EXPECT_EQ(breakdown(p, "1500"),
              (Lines{"1 100 0.10 20 30.00", "2 900 0.05 50 95.00", "3 500 0.01 0 5.00"}));
    EXPECT_TRUE(rates(p, "1500", "130"));
}

TEST(Graduated, SingleUnboundedTierIsPerUnitPlusFlat)
{
    const std::string p = with_tiers("graduated", R"([{"up_to": null, "unit_price": 2, "flat_price": 3}])");
    EXPECT_TRUE(rates(p, "0", "3"));
    EXPECT_TRUE(rates(p, "10", "23"));
}

TEST(Volume, WholeQuantityAtTheTierThatHoldsIt)
{
    const std::string p = with_tiers("volume", kFlatTiers);
    EXPECT_EQ(breakdown(p, "0"), (Lines{"1 0 0.10 20 20.00"}));  // 0 falls in the first tier
    EXPECT_EQ(breakdown(p, "100"), (Lines{"1 100 0.10 20 30.00"}));
    EXPECT_EQ(breakdown(p, "100.0001"), (Lines{"2 100.0001 0.05 50 55.000005"}));
    EXPECT_EQ(breakdown(p, "5000"), (Lines{"3 5000 0.01 0 50.00"}));
}

TEST(Package, CeilOfQuantityOverSize)
{
    const std::string p = R"({"model": "package", "package_size": 10.5, "package_price": 2.25})";
    EXPECT_TRUE(rates(p, "0", "0"));
    EXPECT_TRUE(rates(p, "10", "2.25"));
    EXPECT_TRUE(rates(p, "21", "4.50"));
    EXPECT_TRUE(rates(p, "21.01", "6.75"));
    EXPECT_EQ(breakdown(p, "21.01"), (Lines{"1 3 2.25 0 6.75"}));
}

TEST(Percentage, QuantityTimesRateOverHundred)
{
    const std::string p = R"({"model": "percentage", "rate": 2.9})";
    EXPECT_EQ(mc::rate(P(p), D("1000.00")).to_string(), "29.00000");  // exact, not rounded
    EXPECT_EQ(breakdown(p, "19.99"), (Lines{"1 19.99 0.029 0 0.57971"}));
    EXPECT_TRUE(rates(R"({"model": "percentage", "rate": 0})", "1000", "0"));
    EXPECT_TRUE(rates(R"({"model": "percentage", "rate": 150})", "10", "15"));
}

TEST(PerUnit, ExactNoFloat)
{
    const std::string p = R"({"model": "per_unit", "unit_price": 0.1})";
    EXPECT_EQ(mc::rate(P(p), D("3")).to_string(), "0.3");  // 0.30000000000000004 as doubles
    EXPECT_EQ(mc::rate(P(R"({"model": "per_unit", "unit_price": "0.000001"})"), D("3")).to_string(),
              "0.000003");
    EXPECT_EQ(breakdown(p, "3"), (Lines{"1 3 0.1 0 0.3"}));
}

TEST(FreeUnits, BillableIsQuantityMinusFreeUnitsNotBelowZero)
{
    const Pricing p = P(R"({"model": "per_unit", "unit_price": 0.5, "free_units": 10})");
    EXPECT_TRUE(p.has_free_units());
    EXPECT_EQ(p.free_units().to_string(), "10");
    EXPECT_TRUE(is_amount(mc::billable_quantity(p, D("5")), "0"));
    EXPECT_TRUE(is_amount(mc::billable_quantity(p, D("10")), "0"));
    EXPECT_TRUE(is_amount(mc::billable_quantity(p, D("15.5")), "5.5"));
    EXPECT_TRUE(is_amount(mc::rate(p, D("5")), "0"));
    EXPECT_TRUE(is_amount(mc::rate(p, D("15.5")), "2.75"));
    EXPECT_EQ(mc::billable_quantity(p, D("5.00")).to_string(), "0.00");  // keeps the scale
}

TEST(FreeUnits, TiersPriceTheBillableQuantity)
{
    const std::string p =
        R"({"model": "graduated", "free_units": 100, "tiers": [{"up_to": 50, "unit_price": 1},
            {"up_to": null, "unit_price": 0.5}]})";
    EXPECT_TRUE(rates(p, "100", "0"));
    EXPECT_TRUE(rates(p, "150", "50"));   // 50 billable, all in tier 1
    EXPECT_TRUE(rates(p, "170", "60"));   // 70 billable: 50 x 1 + 20 x 0.5
    EXPECT_TRUE(rates(R"({"model": "percentage", "rate": 1, "free_units": 500})", "1500", "10"));
}

TEST(FreeUnits, AbsentMeansZeroAndNoClamp)
{
    const Pricing p = P(R"({"model": "per_unit", "unit_price": 1})");
    EXPECT_FALSE(p.has_free_units());
    EXPECT_TRUE(p.free_units().is_zero());
}

TEST(NegativeQuantity, LinearModelsGiveCredits)
{
    EXPECT_EQ(mc::rate(P(R"({"model": "per_unit", "unit_price": 0.10})"), D("-5")).to_string(),
              "-0.50");
    EXPECT_TRUE(rates(R"({"model": "percentage", "rate": 2})", "-1000", "-20"));
    EXPECT_TRUE(is_amount(
        mc::billable_quantity(P(R"({"model": "per_unit", "unit_price": 1})"), D("-5")), "-5"));
}

TEST(NegativeQuantity, FreeUnitsClampAtZero)
{
    // free_units: 0 is the way to refuse credits on a linear model.
    EXPECT_TRUE(rates(R"({"model": "per_unit", "unit_price": 1, "free_units": 0})", "-5", "0"));
    EXPECT_TRUE(rates(R"({"model": "percentage", "rate": 2, "free_units": 10})", "-1000", "0"));
}

TEST(NegativeQuantity, TieredAndPackagePriceAsZero)
{
    EXPECT_EQ(breakdown(with_tiers("graduated", kFlatTiers), "-50"),
              (Lines{"1 0 0.10 20 20.00"}));
    EXPECT_EQ(breakdown(with_tiers("volume", kFlatTiers), "-50"), (Lines{"1 0 0.10 20 20.00"}));
    EXPECT_TRUE(rates(R"({"model": "package", "package_size": 10, "package_price": 3})", "-25", "0"));
    EXPECT_TRUE(is_amount(
        mc::billable_quantity(P(with_tiers("graduated", kFlatTiers)), D("-50")), "0"));
}

// rate() is the sum of the breakdown's amounts, for every model, at bounds,
// between them, at zero and below.
TEST(Breakdown, AmountsSumToRate)
{
    const std::vector<std::string> pricings = {
        R"({"model": "per_unit", "unit_price": 0.125})",
        with_tiers("graduated", kFlatTiers),
        with_tiers("volume", kFlatTiers),
        with_tiers("graduated", kStripeTiers),
        R"({"model": "package", "package_size": 2.5, "package_price": 7, "free_units": 3})",
        R"({"model": "percentage", "rate": 1.75})",
    };
    for (const std::string& p : pricings) {
        for (std::string_view q : {"-7", "0", "0.5", "1", "5", "6", "99.99", "100", "100.01", "999",
                                   "1000", "1001", "123456.789"}) {
            Decimal sum;
            for (const BreakdownLine& l : mc::rate_breakdown(P(p), D(q))) {
                EXPECT_EQ(l.amount, l.units * l.unit_price + l.flat_price) << p << " @ " << q;
                sum += l.amount;
            }
            EXPECT_EQ(sum, mc::rate(P(p), D(q))) << p << " @ " << q;
        }
    }
}

TEST(Breakdown, GraduatedHasOneLinePerTierReached)
{
    const std::string p = with_tiers("graduated", kStripeTiers);
    EXPECT_EQ(mc::rate_breakdown(P(p), D("0")).size(), 1u);
    EXPECT_EQ(mc::rate_breakdown(P(p), D("5")).size(), 1u);
    EXPECT_EQ(mc::rate_breakdown(P(p), D("5.1")).size(), 2u);
    EXPECT_EQ(mc::rate_breakdown(P(p), D("20")).size(), 4u);
    EXPECT_EQ(mc::rate_breakdown(P(p), D("1000000")).size(), 5u);
}

// =============================================================================
// Reading
// =============================================================================

TEST(ParsePricing, AccessorsOfEachModel)
{
    Pricing per_unit = P(R"({"model": "per_unit", "unit_price": 0.10})");
    EXPECT_EQ(per_unit.model(), PricingModel::per_unit);
    EXPECT_EQ(per_unit.unit_price().to_string(), "0.10");

    Pricing graduated = P(R"({"model": "graduated", "tiers": [{"up_to": 100, "unit_price": 0.10},
        {"up_to": null, "flat_price": 5}]})");
    EXPECT_EQ(graduated.model(), PricingModel::graduated);
    ASSERT_EQ(graduated.tiers().size(), 2u);
    EXPECT_EQ(graduated.tiers()[0].up_to->to_string(), "100");
    EXPECT_TRUE(graduated.tiers()[0].flat_price.is_zero());  // not given: 0
    EXPECT_FALSE(graduated.tiers()[1].up_to.has_value());
    EXPECT_TRUE(graduated.tiers()[1].unit_price.is_zero());  // not given: 0
    EXPECT_EQ(graduated.tiers()[1].flat_price.to_string(), "5");

    Pricing package = P(R"({"model": "package", "package_size": 1000, "package_price": 2.5})");
    EXPECT_EQ(package.model(), PricingModel::package);
    EXPECT_EQ(package.package_size().to_string(), "1000");
    EXPECT_EQ(package.package_price().to_string(), "2.5");

    Pricing percentage = P(R"({"model": "percentage", "rate": 2.9})");
    EXPECT_EQ(percentage.model(), PricingModel::percentage);
    EXPECT_EQ(percentage.percentage_rate().to_string(), "2.9");

    EXPECT_EQ(P(R"({"model": "volume", "tiers": [{"up_to": null, "unit_price": 1}]})").model(),
              PricingModel::volume);
}

TEST(ParsePricing, ModelNames)
{
    EXPECT_EQ(mc::model_name(PricingModel::per_unit), "per_unit");
    EXPECT_EQ(mc::model_name(PricingModel::graduated), "graduated");
    EXPECT_EQ(mc::model_name(PricingModel::volume), "volume");
    EXPECT_EQ(mc::model_name(PricingModel::package), "package");
    EXPECT_EQ(mc::model_name(PricingModel::percentage), "percentage");
}

TEST(ParsePricing, NumbersAsStringsAndExponents)
{
    Pricing p = P(R"({"model": "graduated", "free_units": "1e2",
        "tiers": [{"up_to": "100", "unit_price": "0.10", "flat_price": "2.5E1"},
                  {"up_to": null, "unit_price": 5E-2}]})");
    EXPECT_EQ(p.free_units().to_string(), "100");
    EXPECT_EQ(p.tiers()[0].up_to->to_string(), "100");
    EXPECT_EQ(p.tiers()[0].unit_price.to_string(), "0.10");
    EXPECT_EQ(p.tiers()[0].flat_price.to_string(), "25");
    EXPECT_EQ(p.tiers()[1].unit_price.to_string(), "0.05");
}

TEST(ParsePricing, JsonbOutTextAndCompactText)
{
    // jsonb_out writes keys sorted by length then bytes, with ", " and ": ".
    EXPECT_NO_THROW(P(R"({"model": "graduated", "tiers": [{"up_to": 100, "unit_price": 0.10}, {"up_to": null, "unit_price": 0.05}]})"));
    EXPECT_NO_THROW(P(R"({"tiers":[{"unit_price":0.10,"up_to":100},{"unit_price":0.05,"up_to":null}],"model":"volume"})"));
    EXPECT_NO_THROW(P("\n{ \"model\" : \"per_unit\" ,\t\"unit_price\" : 0 }\n"));
}

TEST(ParsePricing, ZeroPricesAreAllowed)
{
    EXPECT_TRUE(rates(R"({"model": "per_unit", "unit_price": 0})", "10", "0"));
    EXPECT_TRUE(rates(R"({"model": "per_unit", "unit_price": -0})", "10", "0"));  // -0 is 0
    EXPECT_TRUE(rates(R"({"model": "package", "package_size": 1, "package_price": 0})", "10", "0"));
}

// =============================================================================
// Validation errors: all MT009, naming the field path and the value
// =============================================================================

TEST(PricingErrors, NotJson)
{
    mc::Error e = pricing_error(R"({"model": "per_unit", "unit_price": 0.1,})");
    EXPECT_TRUE(contains(e.message(), "pricing: not valid JSON: invalid JSON at offset")) << e.message();
    pricing_error("");
    pricing_error(R"({"model": "per_unit", "unit_price": NaN})");
    pricing_error(R"({"model": "per_unit", "unit_price": 1, "unit_price": 2})");  // duplicate
}

TEST(PricingErrors, NotAnObject)
{
    EXPECT_EQ(pricing_error("[]").message(), "pricing must be a JSON object, not an array");
    EXPECT_EQ(pricing_error("1").message(), "pricing must be a JSON object, not a number");
    EXPECT_EQ(pricing_error("null").message(), "pricing must be a JSON object, not null");
    EXPECT_EQ(pricing_error(R"("per_unit")").message(),
              "pricing must be a JSON object, not a string");
    EXPECT_FALSE(pricing_error("[]").hint().empty());
}

TEST(PricingErrors, Model)
{
    mc::Error missing = pricing_error(R"({"unit_price": 1})");
    EXPECT_EQ(missing.message(), "pricing: model is required");
    EXPECT_TRUE(contains(missing.hint(), "per_unit, graduated, volume, package, percentage"));

    EXPECT_EQ(pricing_error(R"({"model": 5})").message(),
              "pricing: model must be a string, not a number: 5");
    mc::Error unknown = pricing_error(R"({"model": "tiered", "tiers": []})");
    EXPECT_EQ(unknown.message(), "pricing: model \"tiered\" is not known");
    EXPECT_TRUE(contains(unknown.hint(), "graduated"));
    pricing_error(R"({"model": "PER_UNIT", "unit_price": 1})");  // case matters
}

TEST(PricingErrors, UnknownKeysNameTheAllowedOnes)
{
    mc::Error e = pricing_error(R"({"model": "per_unit", "unit_price": 1, "price": 2})");
    EXPECT_EQ(e.message(), "pricing: key \"price\" is not allowed for model per_unit");
    EXPECT_EQ(e.hint(), "Allowed keys for per_unit: model, unit_price, free_units.");

    // A key of another model is refused too.
    mc::Error tiers = pricing_error(
        R"({"model": "per_unit", "unit_price": 1, "tiers": [{"up_to": null, "unit_price": 1}]})");
    EXPECT_EQ(tiers.message(), "pricing: key \"tiers\" is not allowed for model per_unit");
    EXPECT_EQ(pricing_error(R"({"model": "graduated", "unit_price": 1})").hint(),
              "Allowed keys for graduated: model, tiers, free_units.");
    EXPECT_EQ(pricing_error(R"({"model": "package", "package_size": 1, "package_price": 1, "rate": 1})").hint(),
              "Allowed keys for package: model, package_size, package_price, free_units.");
    EXPECT_EQ(pricing_error(R"({"model": "percentage", "rate": 1, "fixed_fee": 0.3})").hint(),
              "Allowed keys for percentage: model, rate, free_units.");
}

TEST(PricingErrors, RequiredFields)
{
    EXPECT_EQ(pricing_error(R"({"model": "per_unit"})").message(),
              "pricing: unit_price is required for model per_unit");
    EXPECT_EQ(pricing_error(R"({"model": "graduated"})").message(),
              "pricing: tiers is required for model graduated");
    EXPECT_EQ(pricing_error(R"({"model": "volume"})").message(),
              "pricing: tiers is required for model volume");
    EXPECT_EQ(pricing_error(R"({"model": "package", "package_price": 1})").message(),
              "pricing: package_size is required for model package");
    EXPECT_EQ(pricing_error(R"({"model": "package", "package_size": 1})").message(),
              "pricing: package_price is required for model package");
    EXPECT_EQ(pricing_error(R"({"model": "percentage"})").message(),
              "pricing: rate is required for model percentage");
}

TEST(PricingErrors, NumbersOfTheWrongKind)
{
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": true})").message(),
              "pricing: unit_price must be a number, not a boolean: true");
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": null})").message(),
              "pricing: unit_price must be a number, not null: null");
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": [1]})").message(),
              "pricing: unit_price must be a number, not an array: [...]");
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": {"usd": 1}})").message(),
              "pricing: unit_price must be a number, not an object: {...}");
    mc::Error text = pricing_error(R"({"model": "per_unit", "unit_price": "ten cents"})");
    EXPECT_EQ(text.message(), "pricing: unit_price must be a finite decimal number: \"ten cents\"");
    EXPECT_FALSE(text.hint().empty());
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": "NaN"})").message(),
              "pricing: unit_price must be a finite decimal number: \"NaN\"");
    EXPECT_EQ(pricing_error(R"({"model": "percentage", "rate": "Infinity"})").message(),
              "pricing: rate must be a finite decimal number: \"Infinity\"");
    pricing_error(R"({"model": "per_unit", "unit_price": 1e1001})");  // beyond the exponent limit
}

TEST(PricingErrors, NegativeValues)
{
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": -0.01})").message(),
              "pricing: unit_price must not be negative: -0.01");
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": "-1"})").message(),
              "pricing: unit_price must not be negative: -1");
    EXPECT_EQ(pricing_error(R"({"model": "percentage", "rate": -2.9})").message(),
              "pricing: rate must not be negative: -2.9");
    EXPECT_EQ(pricing_error(R"({"model": "package", "package_size": 10, "package_price": -5})").message(),
              "pricing: package_price must not be negative: -5");
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": 1, "free_units": -10})").message(),
              "pricing: free_units must not be negative: -10");
    EXPECT_EQ(pricing_error(R"({"model": "per_unit", "unit_price": 1, "free_units": "many"})").message(),
              "pricing: free_units must be a finite decimal number: \"many\"");
}

TEST(PricingErrors, PackageSizeMustBePositive)
{
    EXPECT_EQ(pricing_error(R"({"model": "package", "package_size": 0, "package_price": 5})").message(),
              "pricing: package_size must be greater than 0: 0");
    EXPECT_EQ(pricing_error(R"({"model": "package", "package_size": -1, "package_price": 5})").message(),
              "pricing: package_size must be greater than 0: -1");
    EXPECT_EQ(pricing_error(R"({"model": "package", "package_size": 0.00, "package_price": 5})").message(),
              "pricing: package_size must be greater than 0: 0.00");
}

TEST(PricingErrors, Tiers)
{
    EXPECT_EQ(pricing_error(R"({"model": "graduated", "tiers": {}})").message(),
              "pricing: tiers must be an array, not an object: {...}");
    mc::Error empty = pricing_error(R"({"model": "volume", "tiers": []})");
    EXPECT_EQ(empty.message(), "pricing: tiers must not be empty");
    EXPECT_TRUE(contains(empty.hint(), "\"up_to\": null"));
    EXPECT_EQ(pricing_error(R"({"model": "graduated", "tiers": [5]})").message(),
              "pricing: tiers[0] must be an object, not a number: 5");
    mc::Error key = pricing_error(
        R"({"model": "graduated", "tiers": [{"up_to": null, "unit_price": 1, "price": 2}]})");
    EXPECT_EQ(key.message(), "pricing: tiers[0]: key \"price\" is not allowed");
    EXPECT_EQ(key.hint(), "Allowed keys in a tier: up_to, unit_price, flat_price.");
}

TEST(PricingErrors, TierBounds)
{
    EXPECT_EQ(pricing_error(R"({"model": "graduated", "tiers": [{"unit_price": 1}]})").message(),
              "pricing: tiers[0].up_to is required");
    EXPECT_EQ(pricing_error(R"({"model": "graduated", "tiers": [{"up_to": 0, "unit_price": 1},
                  {"up_to": null, "unit_price": 1}]})").message(),
              "pricing: tiers[0].up_to must be greater than 0: 0");
    EXPECT_EQ(pricing_error(R"({"model": "volume", "tiers": [{"up_to": -5, "unit_price": 1},
                  {"up_to": null, "unit_price": 1}]})").message(),
              "pricing: tiers[0].up_to must be greater than 0: -5");
    EXPECT_EQ(pricing_error(R"({"model": "graduated", "tiers": [{"up_to": true, "unit_price": 1},
                  {"up_to": null, "unit_price": 1}]})").message(),
              "pricing: tiers[0].up_to must be a number, not a boolean: true");
}

TEST(PricingErrors, TiersMustAscendStrictly)
{
    // The example of the brief, verbatim.
    EXPECT_EQ(pricing_error(R"({"model": "graduated", "tiers": [{"up_to": 10, "unit_price": 1},
                  {"up_to": 100, "unit_price": 1}, {"up_to": 100, "unit_price": 1},
                  {"up_to": null, "unit_price": 1}]})").message(),
              "pricing: tiers[2].up_to must be greater than tiers[1].up_to (100): 100");
    EXPECT_EQ(pricing_error(R"({"model": "volume", "tiers": [{"up_to": 100, "unit_price": 1},
                  {"up_to": 50.5, "unit_price": 1}, {"up_to": null, "unit_price": 1}]})").message(),
              "pricing: tiers[1].up_to must be greater than tiers[0].up_to (100): 50.5");
    // Equal by value, different by scale.
    pricing_error(R"({"model": "volume", "tiers": [{"up_to": 100, "unit_price": 1},
                  {"up_to": 100.00, "unit_price": 1}, {"up_to": null, "unit_price": 1}]})");
}

TEST(PricingErrors, OnlyTheLastTierIsUnbounded)
{
    mc::Error early = pricing_error(R"({"model": "graduated", "tiers": [{"up_to": null, "unit_price": 1},
                  {"up_to": null, "unit_price": 1}]})");
    EXPECT_EQ(early.message(), "pricing: tiers[0].up_to is null, but only the last tier may be unbounded");
    mc::Error last = pricing_error(R"({"model": "graduated", "tiers": [{"up_to": 100, "unit_price": 1},
                  {"up_to": 500, "unit_price": 1}]})");
    EXPECT_EQ(last.message(), "pricing: tiers[1].up_to must be null in the last tier: 500");
    EXPECT_TRUE(contains(last.hint(), "every quantity has a price"));
    EXPECT_EQ(pricing_error(R"({"model": "volume", "tiers": [{"up_to": 100, "unit_price": 1}]})").message(),
              "pricing: tiers[0].up_to must be null in the last tier: 100");
}

TEST(PricingErrors, TierPrices)
{
    mc::Error none = pricing_error(R"({"model": "graduated", "tiers": [{"up_to": null}]})");
    EXPECT_EQ(none.message(), "pricing: tiers[0] needs unit_price or flat_price");
    EXPECT_FALSE(none.hint().empty());
    EXPECT_EQ(pricing_error(R"({"model": "graduated", "tiers": [{"up_to": 10, "unit_price": 1},
                  {"up_to": null, "unit_price": -1}]})").message(),
              "pricing: tiers[1].unit_price must not be negative: -1");
    EXPECT_EQ(pricing_error(R"({"model": "volume", "tiers": [{"up_to": null, "unit_price": 1,
                  "flat_price": -20}]})").message(),
              "pricing: tiers[0].flat_price must not be negative: -20");
    EXPECT_EQ(pricing_error(R"({"model": "volume", "tiers": [{"up_to": null, "flat_price": "x"}]})").message(),
              "pricing: tiers[0].flat_price must be a finite decimal number: \"x\"");
}

TEST(PricingErrors, HostileValuesKeepMessagesShort)
{
    std::string huge(5000, '9');
    mc::Error e = pricing_error(R"({"model": "graduated", "tiers": [{"up_to": )" + huge +
                                R"(, "unit_price": 1}, {"up_to": 5, "unit_price": 1},
                                {"up_to": null, "unit_price": 1}]})");
    EXPECT_TRUE(contains(e.message(), "must be greater than tiers[0].up_to"));
    EXPECT_LT(e.message().size(), 300u);
}

}  // namespace
