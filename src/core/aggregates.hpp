// States of the rating aggregates (SPEC 3 "Rating", 4 "Aggregations per
// billing period"): metering.latest, metering.unique_count,
// metering.counter_total and metering.time_weighted. Pure C++ (no Postgres
// header); the bridge is src/rating/aggregates.cpp.
//
// Exact under combine. Every state can be merged with another state of the
// same aggregate, in any order and any split of the rows, and the final
// result is the same as over all rows at once (the unit tests try every split
// and order). Ties are broken by a total order, never by arrival order:
//   - keys are (at, tiebreak); the forms without tiebreak use tiebreak 0;
//   - on equal keys the greater value wins, and on equal values the one with
//     more fraction digits ("1.50" beats "1.5"), so even the scale shown is
//     deterministic.
//
// Memory. Every container allocates from the std::pmr::memory_resource given
// to the constructor; the bridge passes one that pallocs in the aggregate's
// memory context, so that Postgres frees it with the aggregate and counts it
// against work_mem in hash aggregation. Values are kept in Decimal's compact
// binary form (Decimal::append_to), never as Decimal objects, whose limbs live
// on the std heap; Decimals exist only as temporaries within one call. A
// "value" costs its Decimal binary form: 3 bytes plus a 1..5-byte varint per 9
// decimal digits (1 is 4 bytes, 12.50 is 5, 123456789012.345 is 11). Sizes
// are for x86-64 with libstdc++:
//   - LatestState: O(1). Postgres keeps it flat: 4 + 20 bytes plus one value
//     (about 200 bytes per group in a hash aggregate, as for max(numeric)).
//   - UniqueCountState: per distinct value, its bytes plus a 1..5 byte length
//     in an arena, and 8 bytes per hash slot at load factor <= 0.7 (11.4 to
//     23 bytes per value); the arena and the slot table grow by doubling, so
//     the worst case is 2 x (length + 1) + 23 bytes per value. Measured in
//     Postgres: 27 bytes per value of 7 bytes, 51 per value of 32 bytes.
//     Capped at kMaxDistinctValues values and kMaxValueBytes bytes of values.
//   - CounterState: per increment kept (those after the state's last set, one
//     per distinct key), a 24-byte entry plus the value; up to twice that
//     while the vectors grow by doubling or between compactions (measured:
//     29 bytes per entry of value 1). Capped at kMaxCounterEntries entries;
//     while two states merge, both may be held at once.
//   - TimeWeightedState: per distinct instant in the period, a 24-byte entry
//     plus the value, the same growth rule; capped at kMaxGaugePoints.
// In Postgres the three growing states also take a memory context of their
// own (1 KB at least), and a small state keeps the chunks it outgrew for
// reuse, so a group with a few entries takes 1 to 2 KB.
// Beyond a cap the state raises Error(kProgramLimitExceeded, 54000) with a hint.
//
// Serialized form (the bytes of the SQL type metering.aggregate_state, sent
// as they are by its binary I/O and as hex by its text I/O): a version byte
// (1), a kind byte (Kind), a flags byte (bit 0: the tiebreak form), then the
// kind's payload; integers of timestamps are 8 bytes little-endian, counts and
// lengths LEB128 varints, values Decimal::append_to. parse() checks every
// invariant (kind, flags, caps, sorted and distinct keys, canonical decimals)
// and throws Error(kInvalidBinaryRepresentation, 22P03) on anything else.
#pragma once

#include <cstddef>
#include <cstdint>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/decimal.hpp"
#include "core/errors.hpp"

namespace metering::core::agg {

// Microseconds of a timestamptz (any epoch; Postgres uses 2000-01-01 UTC).
// INT64_MIN and INT64_MAX are -infinity and infinity and are refused.
using Micros = std::int64_t;

inline constexpr std::size_t kMaxDistinctValues = 1'000'000;
inline constexpr std::size_t kMaxCounterEntries = 1'000'000;
inline constexpr std::size_t kMaxGaugePoints = 1'000'000;
// Bytes of values (in binary form) one state may keep, so that a serialized
// state stays far below Postgres's 1 GB limit of a value.
inline constexpr std::size_t kMaxValueBytes = 256u << 20;

// Fraction digits a value in a state may have: those of a Postgres numeric
// (NUMERIC_DSCALE_MAX), so that every result is a numeric again and the
// digits a time-weighted integral adds stay within Decimal::kMaxScale.
// Beyond: kInvalidParameter from add, kInvalidBinaryRepresentation from parse.
inline constexpr int kMaxValueScale = 16383;

// Fraction digits a time-weighted integral has beyond those of its values
// when it is not a terminating decimal: value x microseconds / 3.6e9, where
// 3.6e9 = 2^10 x 5^8 x 9, so the division by 9 may not end (1 value for
// 1 second is 0.000277... value-hours).
inline constexpr int kTimeWeightedExtraScale = 16;

enum class Kind : std::uint8_t { latest = 1, unique_count = 2, counter_total = 3, time_weighted = 4 };

// "latest", "unique_count", "counter_total", "time_weighted".
const char* kind_name(Kind kind);

// What the first bytes of a serialized state say.
struct StateHeader {
    Kind kind;
    bool with_tiebreak;
};
// Throws kInvalidBinaryRepresentation for an unknown version, kind or flags.
StateHeader read_state_header(std::string_view bytes);

// Input of the SQL type metering.aggregate_state, which takes bytes from
// anyone: every state must be checked whole before any function reads it.
// validate_state: bytes are one whole, valid state of some kind (binary
// input); throws kInvalidBinaryRepresentation otherwise. state_from_text:
// the bytes of the text form (\x and two hex digits per byte, as bytea
// prints them), validated; throws kInvalidTextRepresentation otherwise.
void validate_state(std::string_view bytes, std::pmr::memory_resource* memory);
std::string state_from_text(std::string_view text, std::pmr::memory_resource* memory);

// Long loops (merges, compaction, serialization, final sums) call this hook
// every few thousand steps; the bridge installs one that serves Postgres's
// query cancel and may throw. Default: none.
using InterruptCheck = void (*)();
void set_interrupt_check(InterruptCheck check);
void check_interrupts();

// Order of rows: by at, then by tiebreak (0 in the forms without one).
struct Key {
    Micros at = 0;
    std::int64_t tiebreak = 0;
};
inline bool operator<(const Key& a, const Key& b)
{
    return a.at < b.at || (a.at == b.at && a.tiebreak < b.tiebreak);
}
inline bool operator==(const Key& a, const Key& b)
{
    return a.at == b.at && a.tiebreak == b.tiebreak;
}
inline bool operator!=(const Key& a, const Key& b) { return !(a == b); }

// The total order of tie-breaks: by value, then by scale (1.50 > 1.5).
int compare_total(const Decimal& a, const Decimal& b);

// --- latest -------------------------------------------------------------------

// The value with the greatest key; on equal keys the greater value (see the
// total order above). Empty: no row. O(1).
class LatestState {
public:
    explicit LatestState(bool with_tiebreak,
                         std::pmr::memory_resource* memory = std::pmr::get_default_resource());

    bool with_tiebreak() const { return with_tiebreak_; }
    bool empty() const { return !has_value_; }
    Key key() const { return key_; }  // when not empty
    Decimal value() const;            // when not empty

    // Returns whether the row replaced the state's value. Throws
    // kTimestampNotFinite for an infinite at.
    bool add(const Decimal& value, Micros at, std::int64_t tiebreak = 0);
    // Returns whether other's value replaced this one's. Throws
    // kInvalidParameter when the forms (with or without tiebreak) differ.
    bool merge(const LatestState& other);

    std::size_t serialized_size() const;
    void serialize_into(char* out, std::size_t size) const;
    std::string serialized() const;
    // Replaces the content with a serialized latest state of the same form.
    void parse(std::string_view bytes);
    // The key of a serialized latest state without decoding its value
    // (nullopt when empty); checks kind and form like parse.
    static std::optional<Key> peek_key(std::string_view bytes, bool with_tiebreak);

private:
    bool with_tiebreak_;
    bool has_value_ = false;
    Key key_;
    std::pmr::string value_;  // Decimal binary form
};

// --- unique_count -------------------------------------------------------------

// The exact number of distinct values (compared byte for byte, as COLLATE "C").
// An open-addressing hash table of 32-bit hashes and offsets into an arena of
// the values themselves; see the memory notes at the top.
class UniqueCountState {
public:
    explicit UniqueCountState(std::pmr::memory_resource* memory = std::pmr::get_default_resource());

    std::uint64_t count() const { return count_; }
    // Throws kProgramLimitExceeded beyond kMaxDistinctValues or kMaxValueBytes.
    void add(std::string_view value);
    void merge(const UniqueCountState& other);

    // Bytes held (capacity of the arena and the slot table), for tests and docs.
    std::size_t allocated_bytes() const;

    // The serialized form lists the values in the order they were first seen.
    std::size_t serialized_size() const;
    void serialize_into(char* out, std::size_t size) const;
    std::string serialized() const;
    // Replaces the content; duplicates in the input are refused.
    void parse(std::string_view bytes);

private:
    // Inserts when absent; returns whether it was.
    bool insert(std::string_view value);
    void grow_slots();
    std::string_view value_at(std::uint32_t offset) const;

    std::pmr::string arena_;               // per value: varint length, bytes
    std::pmr::vector<std::uint64_t> slots_;  // 0 empty, else hash32 << 32 | (offset + 1)
    std::size_t count_ = 0;
};

// --- points in time (shared by counter_total and time_weighted) --------------

namespace detail {

struct Point {
    Micros at;
    std::int64_t tiebreak;
    std::uint32_t offset;  // of the value's bytes in the log's value arena
    std::uint32_t length;
};
static_assert(sizeof(Point) == 24, "a point is 24 bytes");

// sum: points with equal keys (at, tiebreak) add up (counter increments).
// greatest: one point per instant `at`: the greatest (tiebreak, value) (gauges).
enum class MergeRule { sum, greatest };

// Points appended in any order, kept as a sorted, merged prefix and an
// unsorted tail. A point whose key is already in the prefix is merged in
// place (found by binary search); new keys go to the tail, which is sorted
// and merged into the prefix once it is as long as the prefix (so each point
// is moved O(log n) times). Bytes of replaced values are reclaimed by the
// same compaction. Points below a floor (counter: before the last set) are
// dropped.
class PointLog {
public:
    PointLog(MergeRule rule, std::size_t max_points, const char* what,
             std::pmr::memory_resource* memory);

    void add(Key key, const Decimal& value);
    void add_bytes(Key key, std::string_view value_bytes);
    // Adds every point of other (a log of the same rule): one by one when
    // other is small, else appended at once and merged by one compaction.
    void merge(const PointLog& other);
    // For parse: points in strictly increasing key order, then finish_sorted().
    void append_sorted(Key key, std::string_view value_bytes);
    void finish_sorted();
    // Every point with a key < floor is dropped (from now on, and from the
    // points held at the next compaction).
    void raise_floor(Key floor);
    void compact();
    bool compacted() const;

    std::size_t raw_size() const { return points_.size(); }
    // Visits every point held (including the tail; not those below the
    // floor): f(Key, std::string_view value_bytes).
    template <typename F>
    void for_each_raw(F&& f) const;
    // Visits the merged points in key order: f(Key, const Decimal& value).
    // Does not modify the log (sorts a copy of the tail when there is one).
    template <typename F>
    void for_each_merged(F&& f) const;

    // Serialized payload: varint count, then per point the at (8 bytes), the
    // tiebreak (8 bytes, when with_tiebreak) and the value. Compact first.
    template <typename Sink>
    void write(Sink& sink, bool with_tiebreak) const;

    std::pmr::memory_resource* memory() const { return points_.get_allocator().resource(); }

private:
    bool key_less(const Point& a, const Point& b) const
    {
        if (a.at != b.at)
            return a.at < b.at;
        return rule_ == MergeRule::sum && a.tiebreak < b.tiebreak;
    }
    bool same_key(const Point& a, const Point& b) const
    {
        return a.at == b.at && (rule_ == MergeRule::greatest || a.tiebreak == b.tiebreak);
    }
    bool below_floor(const Point& p) const
    {
        return has_floor_ && Key{p.at, p.tiebreak} < floor_;
    }
    std::string_view bytes_of(const Point& p) const;
    std::uint32_t store(std::string_view bytes);
    bool merge_into_prefix(const Point& p, std::string_view bytes);
    void append(Point p, std::string_view bytes);
    void maybe_compact();
    [[noreturn]] void throw_too_many_points() const;
    [[noreturn]] void throw_too_many_bytes() const;

    MergeRule rule_;
    std::size_t max_points_;
    const char* what_;
    std::pmr::vector<Point> points_;  // [0, sorted_) sorted and merged; then the tail
    std::pmr::string values_;
    std::size_t sorted_ = 0;
    std::size_t dead_bytes_ = 0;  // of replaced values still in values_
    bool has_floor_ = false;
    bool floor_dirty_ = false;  // points below the floor may still be held
    Key floor_;
};

}  // namespace detail

// --- counter_total --------------------------------------------------------------

enum class CounterOp { increment, set };
// "increment" or "set"; anything else throws kInvalidParameter naming it.
CounterOp parse_counter_op(std::string_view op);

// The counter's value after all rows, from 0: the last set (greatest key; on
// equal keys the greater value) plus every increment whose key is >= the
// set's key (an increment at the same key as a set counts after it). Keeps
// the last set and the increments after it with their keys, merged per key.
class CounterState {
public:
    explicit CounterState(bool with_tiebreak,
                          std::pmr::memory_resource* memory = std::pmr::get_default_resource());

    bool with_tiebreak() const { return with_tiebreak_; }
    // Throws kTimestampNotFinite, and kProgramLimitExceeded beyond
    // kMaxCounterEntries increments after the last set.
    void add(CounterOp op, const Decimal& value, Micros at, std::int64_t tiebreak = 0);
    void merge(const CounterState& other);
    Decimal total() const;

    // Serialization compacts (merges and sorts) the increments first.
    std::size_t serialized_size();
    void serialize_into(char* out, std::size_t size) const;
    std::string serialized();
    void parse(std::string_view bytes);

private:
    bool with_tiebreak_;
    bool has_set_ = false;
    Key set_key_;
    std::pmr::string set_value_;
    detail::PointLog increments_;
};

// --- time_weighted ------------------------------------------------------------

// The integral over [period_start, period_end) of a gauge that holds each
// value until the next point, in value x hours. Before the first point in
// the period the gauge holds the last value before period_start (the greatest
// key among rows with at < period_start), else 0; rows at or after
// period_end do not count. At one instant the greatest (tiebreak, value)
// wins. The result is exact when it is a terminating decimal with at most
// (scale of the values + kTimeWeightedExtraScale) fraction digits, shown with
// the fewest digits >= the values' scale (360 for 10 x 12 h + 20 x 12 h);
// otherwise it is rounded half away from zero to that many digits.
class TimeWeightedState {
public:
    explicit TimeWeightedState(bool with_tiebreak,
                               std::pmr::memory_resource* memory = std::pmr::get_default_resource());

    bool with_tiebreak() const { return with_tiebreak_; }
    bool has_period() const { return has_period_; }
    // Every row of a group passes the same period: the first call sets it,
    // later ones must match (kInvalidParameter otherwise, as for start >= end;
    // infinite bounds are kTimestampNotFinite).
    void set_period(Micros start, Micros end);
    // After set_period. Throws kTimestampNotFinite, and kProgramLimitExceeded
    // beyond kMaxGaugePoints instants in the period.
    void add(const Decimal& value, Micros at, std::int64_t tiebreak = 0);
    void merge(const TimeWeightedState& other);
    Decimal value_hours() const;

    std::size_t serialized_size();
    void serialize_into(char* out, std::size_t size) const;
    std::string serialized();
    void parse(std::string_view bytes);

private:
    bool with_tiebreak_;
    bool has_period_ = false;
    Micros start_ = 0;
    Micros end_ = 0;
    bool has_prior_ = false;
    Key prior_key_;
    std::pmr::string prior_value_;
    detail::PointLog points_;
};

}  // namespace metering::core::agg
