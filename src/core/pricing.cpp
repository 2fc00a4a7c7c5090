#include "core/pricing.hpp"

#include <algorithm>
#include <array>
#include <string>
#include <utility>

#include "core/errors.hpp"
#include "core/json.hpp"
#include "core/validation.hpp"

namespace metering::core {

namespace {

constexpr std::array<std::pair<std::string_view, PricingModel>, 5> kModels{{
    {"per_unit", PricingModel::per_unit},
    {"graduated", PricingModel::graduated},
    {"volume", PricingModel::volume},
    {"package", PricingModel::package},
    {"percentage", PricingModel::percentage},
}};

constexpr const char* kModelHint = "Use one of per_unit, graduated, volume, package, percentage.";

// Keys each model accepts: the one list both the check and the hint use.
std::string_view allowed_keys(PricingModel model)
{
    switch (model) {
    case PricingModel::per_unit: return "model, unit_price, free_units";
    case PricingModel::graduated:
    case PricingModel::volume: return "model, tiers, free_units";
    case PricingModel::package: return "model, package_size, package_price, free_units";
    case PricingModel::percentage: return "model, rate, free_units";
    }
    return "";
}

constexpr std::string_view kTierKeys = "up_to, unit_price, flat_price";

// Whether key is one of the names of a ", "-separated list.
bool listed(std::string_view list, std::string_view key)
{
    for (std::size_t start = 0; start <= list.size();) {
        std::size_t end = std::min(list.find(", ", start), list.size());
        if (list.substr(start, end - start) == key)
            return true;
        start = end + 2;
    }
    return false;
}

[[noreturn]] void fail(const std::string& message, std::string hint = {})
{
    throw Error(sqlstate::kMalformedPricing, "pricing: " + message, {}, std::move(hint));
}

// A value for a message, shortened like quoted() so that hostile input
// cannot make a huge message.
std::string shown(const Decimal& d)
{
    std::string text = d.to_string();
    return text.size() <= 80 ? text : text.substr(0, 80) + "...";
}

// Zero with the scale of x when x is negative, else x: max(0, x).
Decimal clamped_at_zero(const Decimal& x) { return x.is_negative() ? x - x : x; }

bool is_linear(PricingModel model)
{
    return model == PricingModel::per_unit || model == PricingModel::percentage;
}

}  // namespace

std::string_view model_name(PricingModel model)
{
    for (const auto& [name, kind] : kModels)
        if (kind == model)
            return name;
    return "";
}

// --- reading ----------------------------------------------------------------

// Builds a Pricing from parsed JSON; every method names the field path it reads.
class PricingReader {
public:
    static Pricing read(std::string_view json_text)
    {
        json::Value root = parse_json(json_text);
        if (root.kind != json::Kind::object)
            throw Error(sqlstate::kMalformedPricing,
                        "pricing must be a JSON object, not " + std::string(json::kind_name(root.kind)),
                        {}, R"(For example {"model": "per_unit", "unit_price": 0.01}.)");
        Pricing p;
        p.model_ = read_model(root);
        check_keys(root, p.model_);
        read_model_fields(root, p);
        if (const json::Value* free = root.find("free_units")) {
            p.has_free_units_ = true;
            p.free_units_ = non_negative(*free, "free_units");
        }
        return p;
    }

private:
    static json::Value parse_json(std::string_view json_text)
    {
        try {
            return json::parse(json_text);
        } catch (const Error& e) {
            fail("not valid JSON: " + e.message());
        }
    }

    static PricingModel read_model(const json::Value& root)
    {
        const json::Value* model = root.find("model");
        if (model == nullptr)
            fail("model is required", kModelHint);
        if (model->kind != json::Kind::string)
            fail("model must be a string, not " + std::string(json::kind_name(model->kind)) + ": " +
                     json::describe(*model),
                 kModelHint);
        for (const auto& [name, kind] : kModels)
            if (name == model->text)
                return kind;
        fail("model " + quoted(model->text) + " is not known", kModelHint);
    }

    static void check_keys(const json::Value& root, PricingModel model)
    {
        for (const std::string& key : root.keys)
            if (!listed(allowed_keys(model), key))
                fail("key " + quoted(key) + " is not allowed for model " +
                         std::string(model_name(model)),
                     "Allowed keys for " + std::string(model_name(model)) + ": " +
                         std::string(allowed_keys(model)) + ".");
    }

    static void read_model_fields(const json::Value& root, Pricing& p)
    {
        switch (p.model_) {
        case PricingModel::per_unit:
            p.unit_price_ = non_negative(required(root, "unit_price", p.model_), "unit_price");
            break;
        case PricingModel::graduated:
        case PricingModel::volume:
            p.tiers_ = read_tiers(required(root, "tiers", p.model_));
            break;
        case PricingModel::package:
            p.package_size_ = positive(required(root, "package_size", p.model_), "package_size");
            p.package_price_ =
                non_negative(required(root, "package_price", p.model_), "package_price");
            break;
        case PricingModel::percentage:
            p.rate_ = non_negative(required(root, "rate", p.model_), "rate");
            break;
        }
    }

    static const json::Value& required(const json::Value& object, std::string_view key,
                                       PricingModel model)
    {
        if (const json::Value* value = object.find(key))
            return *value;
        fail(std::string(key) + " is required for model " + std::string(model_name(model)),
             "Keys of " + std::string(model_name(model)) + ": " +
                 std::string(allowed_keys(model)) + ".");
    }

    // A JSON number, or a string holding one ("0.10").
    static Decimal number(const json::Value& value, const std::string& path)
    {
        if (value.kind != json::Kind::number && value.kind != json::Kind::string)
            fail(path + " must be a number, not " + std::string(json::kind_name(value.kind)) +
                 ": " + json::describe(value));
        try {
            return Decimal::parse(value.text);
        } catch (const Error&) {
            fail(path + " must be a finite decimal number: " + json::describe(value),
                 "Give a JSON number or a string holding one, such as 0.10 or \"0.10\".");
        }
    }

    static Decimal non_negative(const json::Value& value, const std::string& path)
    {
        Decimal d = number(value, path);
        if (d.is_negative())
            fail(path + " must not be negative: " + shown(d));
        return d;
    }

    static Decimal positive(const json::Value& value, const std::string& path)
    {
        Decimal d = number(value, path);
        if (d.is_negative() || d.is_zero())
            fail(path + " must be greater than 0: " + shown(d));
        return d;
    }

    static std::vector<Tier> read_tiers(const json::Value& tiers)
    {
        if (tiers.kind != json::Kind::array)
            fail("tiers must be an array, not " + std::string(json::kind_name(tiers.kind)) + ": " +
                 json::describe(tiers));
        if (tiers.items.empty())
            fail("tiers must not be empty",
                 R"(For example [{"up_to": 100, "unit_price": 0.10}, {"up_to": null, "unit_price": 0.05}].)");
        std::vector<Tier> out;
        out.reserve(tiers.items.size());
        for (std::size_t i = 0; i < tiers.items.size(); ++i)
            out.push_back(read_tier(tiers.items[i], i, tiers.items.size(), out));
        return out;
    }

    static std::string tier_path(std::size_t i) { return "tiers[" + std::to_string(i) + "]"; }

    static Tier read_tier(const json::Value& tier, std::size_t i, std::size_t count,
                          const std::vector<Tier>& before)
    {
        const std::string path = tier_path(i);
        if (tier.kind != json::Kind::object)
            fail(path + " must be an object, not " + std::string(json::kind_name(tier.kind)) +
                 ": " + json::describe(tier));
        for (const std::string& key : tier.keys)
            if (!listed(kTierKeys, key))
                fail(path + ": key " + quoted(key) + " is not allowed",
                     "Allowed keys in a tier: " + std::string(kTierKeys) + ".");
        Tier out;
        out.up_to = read_up_to(tier, i, count, before);
        const json::Value* unit_price = tier.find("unit_price");
        const json::Value* flat_price = tier.find("flat_price");
        if (unit_price == nullptr && flat_price == nullptr)
            fail(path + " needs unit_price or flat_price",
                 "The one not given is 0; write \"unit_price\": 0 for a free tier.");
        if (unit_price != nullptr)
            out.unit_price = non_negative(*unit_price, path + ".unit_price");
        if (flat_price != nullptr)
            out.flat_price = non_negative(*flat_price, path + ".flat_price");
        return out;
    }

    // up_to: > 0 and above the previous tier's, null in the last tier only.
    static std::optional<Decimal> read_up_to(const json::Value& tier, std::size_t i,
                                             std::size_t count, const std::vector<Tier>& before)
    {
        const std::string path = tier_path(i) + ".up_to";
        const bool last = i + 1 == count;
        const json::Value* up_to = tier.find("up_to");
        if (up_to == nullptr)
            fail(path + " is required",
                 "Give the tier's upper bound (inclusive), or null in the last tier.");
        if (up_to->kind == json::Kind::null) {
            if (!last)
                fail(path + " is null, but only the last tier may be unbounded",
                     "Give every tier but the last an ascending upper bound.");
            return std::nullopt;
        }
        Decimal bound = positive(*up_to, path);
        if (last)
            fail(path + " must be null in the last tier: " + shown(bound),
                 R"(End the tiers with {"up_to": null, ...} so that every quantity has a price.)");
        if (i > 0 && bound <= *before.back().up_to)
            fail(path + " must be greater than " + tier_path(i - 1) + ".up_to (" +
                 shown(*before.back().up_to) + "): " + shown(bound));
        return bound;
    }
};

Pricing parse_pricing(std::string_view json_text) { return PricingReader::read(json_text); }

// --- rating -----------------------------------------------------------------

Decimal billable_quantity(const Pricing& pricing, const Decimal& quantity)
{
    Decimal billable = pricing.has_free_units() ? clamped_at_zero(quantity - pricing.free_units())
                                                : quantity;
    return is_linear(pricing.model()) ? billable : clamped_at_zero(billable);
}

namespace {

BreakdownLine line(int tier, Decimal units, Decimal unit_price, Decimal flat_price = {})
{
    Decimal amount = units * unit_price + flat_price;
    return {tier, std::move(units), std::move(unit_price), std::move(flat_price), std::move(amount)};
}

// Each unit at the price of the tier it falls in, plus the flat price of
// every tier reached; tier 1 is always reached.
std::vector<BreakdownLine> graduated_lines(const std::vector<Tier>& tiers, const Decimal& billable)
{
    std::vector<BreakdownLine> lines;
    Decimal lower;  // the previous tier's up_to
    for (std::size_t i = 0; i < tiers.size(); ++i) {
        if (i > 0 && billable <= lower)
            break;
        const Tier& t = tiers[i];
        bool beyond = t.up_to && billable > *t.up_to;
        lines.push_back(line(int(i) + 1, (beyond ? *t.up_to : billable) - lower, t.unit_price,
                             t.flat_price));
        if (t.up_to)
            lower = *t.up_to;
    }
    return lines;
}

// The whole quantity at the tier that holds it; 0 falls in the first tier.
BreakdownLine volume_line(const std::vector<Tier>& tiers, const Decimal& billable)
{
    std::size_t i = 0;
    while (tiers[i].up_to && billable > *tiers[i].up_to)
        ++i;  // ends at the latest in the last tier, which has no up_to
    return line(int(i) + 1, billable, tiers[i].unit_price, tiers[i].flat_price);
}

}  // namespace

std::vector<BreakdownLine> rate_breakdown(const Pricing& pricing, const Decimal& quantity)
{
    const Decimal billable = billable_quantity(pricing, quantity);
    switch (pricing.model()) {
    case PricingModel::per_unit: return {line(1, billable, pricing.unit_price())};
    case PricingModel::graduated: return graduated_lines(pricing.tiers(), billable);
    case PricingModel::volume: return {volume_line(pricing.tiers(), billable)};
    case PricingModel::package:
        return {line(1, billable.ceil_div(pricing.package_size()), pricing.package_price())};
    case PricingModel::percentage:
        return {line(1, billable, pricing.percentage_rate().shifted(-2))};
    }
    return {};
}

Decimal rate(const Pricing& pricing, const Decimal& quantity)
{
    Decimal total;
    for (const BreakdownLine& l : rate_breakdown(pricing, quantity))
        total += l.amount;
    return total;
}

}  // namespace metering::core
