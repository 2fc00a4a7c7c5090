// The pricing parser (core/pricing.hpp): any text is refused with
// core::Error or read into a Pricing, which then rates a few quantities
// (fixed ones, and the edges of its tiers and free units) without throwing
// at all (a Pricing is valid by construction), the breakdown adding up.
#include <cstddef>
#include <cstdint>
#include <string_view>
#include <vector>

#include "core/decimal.hpp"
#include "core/pricing.hpp"
#include "fuzz_check.hpp"

namespace {

namespace core = metering::core;
using core::Decimal;

std::vector<Decimal> quantities_for(const core::Pricing& pricing)
{
    std::vector<Decimal> out;
    for (const char* text : {"0", "1", "0.5", "-3", "99.999", "1000000.125", "1e30", "-1e-20"})
        out.push_back(Decimal::parse(text));
    const Decimal tiny = Decimal::parse("0.000001");
    auto around = [&](const Decimal& edge) {
        out.push_back(edge);
        out.push_back(edge + tiny);
        out.push_back(edge - tiny);
    };
    for (const core::Tier& tier : pricing.tiers())
        if (tier.up_to)
            around(*tier.up_to);
    around(pricing.free_units());
    return out;
}

void check_rating(const core::Pricing& pricing, const Decimal& quantity)
{
    const Decimal billable = core::billable_quantity(pricing, quantity);
    const std::vector<core::BreakdownLine> lines = core::rate_breakdown(pricing, quantity);
    const Decimal amount = core::rate(pricing, quantity);
    FUZZ_CHECK(!lines.empty());
    Decimal sum;
    Decimal units;
    for (const core::BreakdownLine& line : lines) {
        FUZZ_CHECK(line.amount == line.units * line.unit_price + line.flat_price);
        FUZZ_CHECK(line.tier >= 1);
        sum += line.amount;
        units += line.units;
    }
    FUZZ_CHECK(sum == amount);
    if (pricing.model() == core::PricingModel::graduated ||
        pricing.model() == core::PricingModel::volume) {
        FUZZ_CHECK(lines.size() <= pricing.tiers().size());
        FUZZ_CHECK(units == billable);  // every billable unit is priced once
    }
    // Prices are never negative: only a negative billable quantity of a
    // linear model gives a credit.
    if (!billable.is_negative())
        FUZZ_CHECK(!amount.is_negative());
    if (pricing.has_free_units())
        FUZZ_CHECK(!billable.is_negative());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    core::Pricing pricing;
    if (!metering_fuzz::accepted([&] { pricing = core::parse_pricing(text); }))
        return 0;
    for (const Decimal& quantity : quantities_for(pricing))
        check_rating(pricing, quantity);
    return 0;
}
