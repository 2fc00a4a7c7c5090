// Pricing models of a charge and the rating of a quantity (SPEC 4, "Pricing").
// Pure C++: the bridge passes the pricing jsonb as text (jsonb_out) and
// quantities as Decimal; every amount here is exact and unrounded. Rounding to
// the currency's exponent happens once per invoice line, elsewhere.
//
// Free units: with "free_units": N the billable quantity is max(0, quantity - N),
// as the SPEC says. Without free_units it is the quantity itself.
//
// Negative quantities (credits on sum meters, corrections rated as late usage):
//   - per_unit and percentage are linear: a negative billable quantity gives a
//     negative amount (a credit). Giving "free_units" (even 0) clamps the
//     billable quantity at 0, so free_units: 0 is the way to refuse credits.
//   - graduated, volume and package price a negative billable quantity as 0:
//     a tier table or a package count has no meaning below zero. Graduated
//     still charges the first tier's flat price, as at quantity 0.
#pragma once

#include <optional>
#include <string_view>
#include <vector>

#include "core/decimal.hpp"

namespace metering::core {

enum class PricingModel { per_unit, graduated, volume, package, percentage };

// "per_unit", "graduated", "volume", "package", "percentage".
std::string_view model_name(PricingModel model);

// One tier of graduated or volume pricing. Tier i covers (up_to[i-1], up_to[i]],
// the first tier starts at 0 and the last tier has no upper bound.
struct Tier {
    std::optional<Decimal> up_to;  // nullopt only in the last tier
    Decimal unit_price;            // 0 when the tier gives only flat_price
    Decimal flat_price;            // 0 when not given
};

// A validated pricing rule, filled only by parse_pricing, so every Pricing is
// well-formed (tiers ascend and end unbounded, nothing negative). A default
// Pricing is per_unit at price 0, valid too, so that callers may hold one.
class Pricing {
public:
    PricingModel model() const { return model_; }
    // Whether "free_units" was given (even as 0): it clamps billable at 0.
    bool has_free_units() const { return has_free_units_; }
    const Decimal& free_units() const { return free_units_; }  // 0 when not given
    const Decimal& unit_price() const { return unit_price_; }  // per_unit
    const std::vector<Tier>& tiers() const { return tiers_; }  // graduated, volume
    const Decimal& package_size() const { return package_size_; }    // package, > 0
    const Decimal& package_price() const { return package_price_; }  // package
    const Decimal& percentage_rate() const { return rate_; }  // percentage, in percent

private:
    friend class PricingReader;
    PricingModel model_ = PricingModel::per_unit;
    bool has_free_units_ = false;
    Decimal free_units_;
    Decimal unit_price_;
    std::vector<Tier> tiers_;
    Decimal package_size_;
    Decimal package_price_;
    Decimal rate_;
};

// Reads and validates a pricing rule from JSON text, e.g.
//   {"model": "graduated", "tiers": [{"up_to": 100, "unit_price": 0.10},
//                                    {"up_to": null, "unit_price": 0.05}]}
// Numbers may be JSON numbers or strings holding one ("0.10"). Keys per model:
//   per_unit:         unit_price
//   graduated/volume: tiers, each {up_to, unit_price, flat_price}; up_to is a
//                     number > 0, strictly ascending, and null in (only) the
//                     last tier; a tier needs unit_price or flat_price, the
//                     missing one is 0
//   package:          package_size (> 0), package_price
//   percentage:       rate (in percent: 2.9 means 2.9 %)
// plus "model" and the optional "free_units" in every model. Prices, rates and
// free_units must not be negative; any other key is refused. Every problem
// throws Error(kMalformedPricing) whose message names the field path (tiers
// are indexed from 0, as in jsonb: tiers[0] is the first tier) and the value.
Pricing parse_pricing(std::string_view json_text);

// The quantity the model prices: quantity - free_units clamped at 0 when
// free_units is given, else quantity; and never below 0 for graduated, volume
// and package. This is the billable_quantity of an invoice line.
Decimal billable_quantity(const Pricing& pricing, const Decimal& quantity);

// One line of rate_breakdown. amount == units * unit_price + flat_price.
//   graduated:  one line per tier reached (tier 1 always, even at quantity 0):
//               units = the billable units that fall in that tier
//   volume:     one line, the tier that holds the whole billable quantity
//   per_unit:   one line, tier 1: units = billable quantity
//   package:    one line, tier 1: units = number of packages (ceil(billable /
//               package_size)), unit_price = package_price
//   percentage: one line, tier 1: units = billable quantity (a money amount),
//               unit_price = rate / 100
// flat_price is 0 except in graduated and volume tiers.
struct BreakdownLine {
    int tier = 1;  // 1-based
    Decimal units;
    Decimal unit_price;
    Decimal flat_price;
    Decimal amount;
};

std::vector<BreakdownLine> rate_breakdown(const Pricing& pricing, const Decimal& quantity);

// The exact, unrounded amount: the sum of the amounts of rate_breakdown.
Decimal rate(const Pricing& pricing, const Decimal& quantity);

}  // namespace metering::core
