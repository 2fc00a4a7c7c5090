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
//
// With bit 3 of byte 0 set, the states are those of an invoice line's count,
// sum, max or min (core/scalar_state.hpp, bits 0-1), against Decimal
// arithmetic; 10 bytes per row: the mantissa (int64, little-endian), the
// scale (0..20), and part (bits 0-1), "add as a Decimal" (bit 2),
// "serialize the part now" (bit 5). Values of up to 18 digits and scale take
// the 128-bit path, as metering._line_quantity gives them.
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
#include "core/scalar_state.hpp"
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

// --- the states of an invoice line (count, sum, max, min) ---------------------

constexpr std::int64_t kFixedLimit = 1'000'000'000'000'000'000;  // |mantissa| < 10^18 (FixedValue)

struct LineRow {
    agg::FixedValue fixed;  // mantissa x 10^-scale
    bool fits;              // in the 128-bit path
    std::size_t part;
    bool checkpoint;
};

std::vector<LineRow> line_rows_of(const std::uint8_t* data, std::size_t size)
{
    std::vector<LineRow> rows;
    for (std::size_t i = 1; i + 10 <= size; i += 10) {
        std::uint64_t bits = 0;
        for (int b = 0; b < 8; ++b)
            bits |= std::uint64_t(data[i + std::size_t(b)]) << (8 * b);
        LineRow row;
        row.fixed = {std::int64_t(bits), int(data[i + 8] % 21)};
        const std::uint8_t flags = data[i + 9];
        const bool small = row.fixed.mantissa > -kFixedLimit && row.fixed.mantissa < kFixedLimit;
        row.fits = small && row.fixed.scale <= agg::kMaxFixedScale && (flags & 4) == 0;
        row.part = flags & 3;
        row.checkpoint = (flags & 32) != 0;
        rows.push_back(row);
    }
    return rows;
}

Decimal decimal_of(agg::FixedValue v) { return Decimal::from_int(v.mantissa).shifted(-v.scale); }

// count(*), sum, max, min of Postgres: max and min break ties by the greater scale.
std::optional<Decimal> reference_line(const std::vector<LineRow>& rows, agg::ScalarKind kind)
{
    if (kind == agg::ScalarKind::count)
        return Decimal::from_int(std::int64_t(rows.size()));
    std::optional<Decimal> out;
    for (const LineRow& r : rows) {
        const Decimal v = decimal_of(r.fixed);
        if (!out)
            out = v;
        else if (kind == agg::ScalarKind::sum)
            *out += v;
        else {
            const int cmp = v.compare(*out);
            const bool better = kind == agg::ScalarKind::max ? cmp > 0 : cmp < 0;
            if (better || (cmp == 0 && v.scale() > out->scale()))
                out = v;
        }
    }
    return out;
}

void add(agg::ScalarState& s, const LineRow& r)
{
    if (s.kind() == agg::ScalarKind::count)
        s.add_row();
    else if (r.fits)
        s.add(r.fixed);
    else
        s.add(decimal_of(r.fixed));
}

std::string text_of(const std::optional<Decimal>& d) { return d ? d->to_string() : "null"; }

void round_trip(agg::ScalarState& s)
{
    agg::ScalarState copy(s.kind());
    copy.parse(s.serialized());
    s = std::move(copy);
}

void check_line(const std::vector<LineRow>& rows, agg::ScalarKind kind)
{
    const std::string expected = text_of(reference_line(rows, kind));
    agg::ScalarState whole(kind);
    std::vector<agg::ScalarState> parts(4, agg::ScalarState(kind));
    for (const LineRow& r : rows) {
        add(whole, r);
        add(parts[r.part], r);
        if (r.checkpoint)
            round_trip(parts[r.part]);
    }
    FUZZ_CHECK(text_of(whole.result()) == expected);
    for (agg::ScalarState& part : parts)
        round_trip(part);
    for (std::size_t i = 1; i < parts.size(); ++i)
        parts[0].merge(parts[i]);
    FUZZ_CHECK(text_of(parts[0].result()) == expected);
    FUZZ_CHECK(parts[0].serialized() == whole.serialized());
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    if (size == 0)
        return 0;
    if ((data[0] & 8) != 0) {
        check_line(line_rows_of(data, size), agg::ScalarKind((data[0] & 3) + 1));
        return 0;
    }
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
