// Checks of an aggregate state that metering.aggregate_state's input
// accepted, shared by the text and binary input targets: whatever the input
// accepts, the aggregates' functions must handle.
#pragma once

#include <string>
#include <string_view>
#include <type_traits>

#include "core/aggregates.hpp"
#include "fuzz_check.hpp"

namespace metering_fuzz {

namespace agg = metering::core::agg;

template <typename S>
S new_state(bool with_tiebreak)
{
    if constexpr (std::is_same_v<S, agg::UniqueCountState>)
        return S();
    else
        return S(with_tiebreak);
}

// What the final function returns, as text.
inline std::string final_of(const agg::LatestState& s)
{
    return s.empty() ? "null" : s.value().to_string();
}
inline std::string final_of(const agg::UniqueCountState& s) { return std::to_string(s.count()); }
inline std::string final_of(const agg::CounterState& s) { return s.total().to_string(); }
inline std::string final_of(const agg::TimeWeightedState& s) { return s.value_hours().to_string(); }

// Another state of each aggregate, made by its transition function.
inline void fill(agg::LatestState& s) { s.add(metering::core::Decimal::parse("1.5"), 1000, 1); }
inline void fill(agg::UniqueCountState& s)
{
    s.add("a");
    s.add("b");
}
inline void fill(agg::CounterState& s)
{
    s.add(agg::CounterOp::set, metering::core::Decimal::parse("3"), 1000, 1);
    s.add(agg::CounterOp::increment, metering::core::Decimal::parse("2"), 2000, 2);
}
inline void fill(agg::TimeWeightedState& s)
{
    s.set_period(0, 3'600'000'000);
    s.add(metering::core::Decimal::parse("10"), -1);
    s.add(metering::core::Decimal::parse("20.5"), 1000);
}

// Combining into `into` works (and the result round-trips) or is refused
// with core::Error (time_weighted: different periods).
template <typename S>
void check_combine(S& into, const S& other, bool with_tiebreak)
{
    if (!accepted([&] { into.merge(other); }))
        return;
    const std::string merged = into.serialized();
    S again = new_state<S>(with_tiebreak);
    again.parse(merged);
    FUZZ_CHECK(again.serialized() == merged);
    final_of(again);
}

template <typename S>
void check_combine_with_another(std::string_view bytes, bool with_tiebreak)
{
    S other = new_state<S>(with_tiebreak);
    fill(other);
    S state = new_state<S>(with_tiebreak);
    state.parse(bytes);
    check_combine(other, state, with_tiebreak);
    S fresh = new_state<S>(with_tiebreak);
    fill(fresh);
    check_combine(state, fresh, with_tiebreak);
}

template <typename S>
void check_state_of(std::string_view bytes, bool with_tiebreak)
{
    check_combine_with_another<S>(bytes, with_tiebreak);

    S state = new_state<S>(with_tiebreak);
    state.parse(bytes);
    // The accepted form is canonical: serializing gives the same bytes back.
    FUZZ_CHECK(state.serialized() == bytes);
    const std::string result = final_of(state);

    // Combining into an empty state (the first combine of a group) changes nothing.
    S empty = new_state<S>(with_tiebreak);
    empty.merge(state);
    FUZZ_CHECK(empty.serialized() == bytes);
    FUZZ_CHECK(final_of(empty) == result);

    // Combining with a copy of itself: the same state again, except that a
    // counter's increments add up; either way the result parses back.
    S twin = new_state<S>(with_tiebreak);
    twin.parse(bytes);
    state.merge(twin);
    const std::string merged = state.serialized();
    if constexpr (!std::is_same_v<S, agg::CounterState>) {
        FUZZ_CHECK(merged == bytes);
        FUZZ_CHECK(final_of(state) == result);
    }
    S again = new_state<S>(with_tiebreak);
    again.parse(merged);
    FUZZ_CHECK(again.serialized() == merged);
    final_of(again);
}

inline void check_latest_key(std::string_view bytes, bool with_tiebreak)
{
    agg::LatestState state(with_tiebreak);
    state.parse(bytes);
    auto key = agg::LatestState::peek_key(bytes, with_tiebreak);
    FUZZ_CHECK(key.has_value() == !state.empty());
    FUZZ_CHECK(!key || *key == state.key());
}

// bytes were accepted by agg::validate_state.
inline void check_accepted_state(std::string_view bytes)
{
    const agg::StateHeader header = agg::read_state_header(bytes);
    switch (header.kind) {
    case agg::Kind::latest:
        check_latest_key(bytes, header.with_tiebreak);
        return check_state_of<agg::LatestState>(bytes, header.with_tiebreak);
    case agg::Kind::unique_count:
        return check_state_of<agg::UniqueCountState>(bytes, header.with_tiebreak);
    case agg::Kind::counter_total:
        return check_state_of<agg::CounterState>(bytes, header.with_tiebreak);
    case agg::Kind::time_weighted:
        return check_state_of<agg::TimeWeightedState>(bytes, header.with_tiebreak);
    }
}

}  // namespace metering_fuzz
