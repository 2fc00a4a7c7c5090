// The rating aggregates' transition and combine rules (core/aggregates.hpp)
// against a plain reference: the input is a stream of rows, each sent to
// one of up to four partial states (as parallel workers or shards would),
// which go through their serialized form and are combined. The combined
// state must serialize to the same bytes as one state fed every row
// (unique_count: the same count), and its result must be the reference's.
//
// Input: byte 0 picks the aggregate (bits 0-1) and the tiebreak form (bit
// 2); then 3 bytes per row: instant (bits 0-5, quarter hours from -2 h) and
// scale (bits 6-7); the value (int8); part (bits 0-1), tiebreak (bits 2-3),
// counter op set (bit 4), and "serialize the part now" (bit 5).
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <map>
#include <optional>
#include <set>
#include <string>
#include <type_traits>
#include <utility>
#include <vector>

#include "core/aggregates.hpp"
#include "core/decimal.hpp"
#include "fuzz_check.hpp"
#include "state_checks.hpp"

namespace {

namespace agg = metering::core::agg;
using metering::core::Decimal;
using metering_fuzz::new_state;

constexpr agg::Micros kQuarter = 15 * 60 * 1'000'000LL;
constexpr agg::Micros kPeriodStart = 0;
constexpr agg::Micros kPeriodEnd = 40 * kQuarter;  // instants reach 56 quarters: some fall after

struct Row {
    agg::Micros at;
    std::int64_t tiebreak;
    Decimal value;
    bool set;
    std::size_t part;
    bool checkpoint;
};

std::vector<Row> rows_of(const std::uint8_t* data, std::size_t size)
{
    std::vector<Row> rows;
    for (std::size_t i = 1; i + 3 <= size; i += 3) {
        const std::uint8_t a = data[i], b = data[i + 2];
        Row row;
        row.at = (agg::Micros(a & 63) - 8) * kQuarter;
        row.value = Decimal::from_int(std::int8_t(data[i + 1])).shifted(-(a >> 6));
        row.part = b & 3;
        row.tiebreak = (b >> 2) & 3;
        row.set = (b & 16) != 0;
        row.checkpoint = (b & 32) != 0;
        rows.push_back(row);
    }
    return rows;
}

// The order of rows at one instant: tiebreak (0 without one), then value, then scale.
struct Rank {
    agg::Key key;
    Decimal value;
};
bool ranks_below(const Rank& a, const Rank& b)
{
    if (a.key != b.key)
        return a.key < b.key;
    return agg::compare_total(a.value, b.value) < 0;
}

// --- references: the SPEC's rules, written plainly --------------------------

std::string reference_latest(const std::vector<Row>& rows, bool tb)
{
    std::optional<Rank> best;
    for (const Row& r : rows) {
        Rank rank{{r.at, tb ? r.tiebreak : 0}, r.value};
        if (!best || ranks_below(*best, rank))
            best = rank;
    }
    return best ? best->value.to_string() : "null";
}

std::string reference_unique(const std::vector<Row>& rows)
{
    std::set<std::string> distinct;
    for (const Row& r : rows)
        distinct.insert(r.value.to_string());
    return std::to_string(distinct.size());
}

std::string reference_counter(const std::vector<Row>& rows, bool tb)
{
    std::optional<Rank> last_set;
    for (const Row& r : rows) {
        Rank rank{{r.at, tb ? r.tiebreak : 0}, r.value};
        if (r.set && (!last_set || ranks_below(*last_set, rank)))
            last_set = rank;
    }
    Decimal total = last_set ? last_set->value : Decimal();
    for (const Row& r : rows)
        if (!r.set && (!last_set || !(agg::Key{r.at, tb ? r.tiebreak : 0} < last_set->key)))
            total += r.value;
    return total.to_string();
}

std::string reference_time_weighted(const std::vector<Row>& rows, bool tb)
{
    std::optional<Rank> prior;
    std::map<agg::Micros, Rank> at_instant;  // the winning row of each instant in the period
    for (const Row& r : rows) {
        Rank rank{{r.at, tb ? r.tiebreak : 0}, r.value};
        if (r.at >= kPeriodEnd)
            continue;
        if (r.at < kPeriodStart) {
            if (!prior || ranks_below(*prior, rank))
                prior = rank;
            continue;
        }
        auto it = at_instant.find(r.at);
        if (it == at_instant.end())
            at_instant.emplace(r.at, rank);
        else if (ranks_below(it->second, rank))
            it->second = rank;
    }
    Decimal held = prior ? prior->value : Decimal();
    Decimal total;
    agg::Micros since = kPeriodStart;
    auto hold_until = [&](agg::Micros until) {
        if (until > since)
            total += held * Decimal::from_int(until - since);
    };
    for (const auto& [at, rank] : at_instant) {
        hold_until(at);
        held = rank.value;
        since = at;
    }
    hold_until(kPeriodEnd);
    // value x microseconds / 3.6e9, shown as core/aggregates.hpp says.
    bool exact = false;
    Decimal hours = total.shifted(-8).divided_by_small(
        36, total.scale() + agg::kTimeWeightedExtraScale, &exact);
    return (exact ? hours.without_trailing_zeros(total.scale()) : hours).to_string();
}

// --- the states -------------------------------------------------------------

void add(agg::LatestState& s, const Row& r) { s.add(r.value, r.at, r.tiebreak); }
void add(agg::UniqueCountState& s, const Row& r) { s.add(r.value.to_string()); }
void add(agg::CounterState& s, const Row& r)
{
    s.add(r.set ? agg::CounterOp::set : agg::CounterOp::increment, r.value, r.at, r.tiebreak);
}
void add(agg::TimeWeightedState& s, const Row& r)
{
    s.set_period(kPeriodStart, kPeriodEnd);  // as the bridge does on every row
    s.add(r.value, r.at, r.tiebreak);
}

template <typename S>
void round_trip(S& s, bool tb)
{
    S copy = new_state<S>(tb);
    copy.parse(s.serialized());
    s = std::move(copy);
}

template <typename S>
void check(const std::vector<Row>& rows, bool tb, const std::string& expected)
{
    S whole = new_state<S>(tb);
    std::vector<S> parts;
    for (int i = 0; i < 4; ++i)
        parts.push_back(new_state<S>(tb));
    for (const Row& r : rows) {
        add(whole, r);
        S& part = parts[r.part];
        add(part, r);
        if (r.checkpoint)
            round_trip(part, tb);  // a spilled or shipped state goes on from its bytes
    }
    FUZZ_CHECK(metering_fuzz::final_of(whole) == expected);

    // Combine as a leader would: every part through its bytes, into the first.
    for (S& part : parts)
        round_trip(part, tb);
    for (std::size_t i = 1; i < parts.size(); ++i)
        parts[0].merge(parts[i]);
    FUZZ_CHECK(metering_fuzz::final_of(parts[0]) == expected);
    if constexpr (!std::is_same_v<S, agg::UniqueCountState>)
        FUZZ_CHECK(parts[0].serialized() == whole.serialized());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    const bool tb = (data[0] & 4) != 0;
    const std::vector<Row> rows = rows_of(data, size);
    switch (data[0] & 3) {
    case 0: check<agg::LatestState>(rows, tb, reference_latest(rows, tb)); break;
    case 1: check<agg::UniqueCountState>(rows, false, reference_unique(rows)); break;
    case 2: check<agg::CounterState>(rows, tb, reference_counter(rows, tb)); break;
    case 3: check<agg::TimeWeightedState>(rows, tb, reference_time_weighted(rows, tb)); break;
    }
    return 0;
}
