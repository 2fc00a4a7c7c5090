// Unit tests of src/core/aggregates: the states of metering.latest,
// unique_count, counter_total and time_weighted.
//
// Expected values are worked out by hand in the comments beside them (value x
// hours for the gauges); the split tests check that every way Postgres may
// cut the rows between partial states (every permutation, every split point,
// both merge orders, directly and through the serialized form) gives the
// result of one state over all rows.
#include <gtest/gtest.h>

#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <functional>
#include <memory_resource>
#include <new>
#include <numeric>
#include <random>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "core/aggregates.hpp"
#include "core/decimal.hpp"
#include "core/errors.hpp"
#include "error_assertions.hpp"

namespace {

using metering::core::Decimal;
using metering_test::contains;
using metering_test::error_of;
namespace agg = metering::core::agg;
namespace sqlstate = metering::core::sqlstate;
using agg::CounterOp;
using agg::CounterState;
using agg::LatestState;
using agg::Micros;
using agg::TimeWeightedState;
using agg::UniqueCountState;

Decimal D(std::string_view text) { return Decimal::parse(text); }

constexpr Micros kSecond = 1'000'000;
constexpr Micros kHour = 3600 * kSecond;
constexpr Micros kDay = 24 * kHour;
// 2025-01-01 00:00 UTC in Postgres's microseconds since 2000-01-01.
constexpr Micros kJan1 = 9132 * kDay;
Micros at_hour(double hours) { return kJan1 + Micros(hours * double(kHour)); }

// Writes a timestamp of a serialized state (8 bytes little-endian) at pos.
void put_i64(std::string& bytes, std::size_t pos, std::int64_t value)
{
    for (int i = 0; i < 8; ++i)
        bytes[pos + std::size_t(i)] = char((std::uint64_t(value) >> (8 * i)) & 0xFF);
}

// --- a memory resource that counts, and fails on demand -----------------------

class CountingResource : public std::pmr::memory_resource {
public:
    explicit CountingResource(std::size_t limit = SIZE_MAX) : limit_(limit) {}
    std::size_t outstanding() const { return outstanding_; }
    std::size_t peak() const { return peak_; }
    std::size_t allocations() const { return allocations_; }

private:
    void* do_allocate(std::size_t bytes, std::size_t alignment) override
    {
        if (outstanding_ + bytes > limit_)
            throw std::bad_alloc();
        void* p = std::pmr::new_delete_resource()->allocate(bytes, alignment);
        outstanding_ += bytes;
        peak_ = std::max(peak_, outstanding_);
        ++allocations_;
        return p;
    }
    void do_deallocate(void* p, std::size_t bytes, std::size_t alignment) override
    {
        outstanding_ -= bytes;
        std::pmr::new_delete_resource()->deallocate(p, bytes, alignment);
    }
    bool do_is_equal(const std::pmr::memory_resource& other) const noexcept override
    {
        return this == &other;
    }

    std::size_t limit_;
    std::size_t outstanding_ = 0;
    std::size_t peak_ = 0;
    std::size_t allocations_ = 0;
};

// --- split harness --------------------------------------------------------------

template <typename State, typename Row>
struct Harness {
    std::function<State()> make;
    std::function<void(State&, const Row&)> add;
    std::function<std::string(State&)> result;
};

template <typename State, typename Row>
State build(const Harness<State, Row>& h, const std::vector<Row>& rows,
            const std::vector<std::size_t>& order, std::size_t from, std::size_t to)
{
    State s = h.make();
    for (std::size_t i = from; i < to; ++i)
        h.add(s, rows[order[i]]);
    return s;
}

template <typename State>
State reparsed(State& s, const std::function<State()>& make)
{
    State copy = make();
    copy.parse(s.serialized());
    return copy;
}

// Every permutation of the rows, cut at every point, merged both ways,
// directly and through serialization, gives `expected`.
template <typename State, typename Row>
void expect_every_split_gives(const Harness<State, Row>& h, const std::vector<Row>& rows,
                              const std::string& expected)
{
    ASSERT_LE(rows.size(), 7u) << "exhaustive splits are for small row sets";
    std::vector<std::size_t> order(rows.size());
    std::iota(order.begin(), order.end(), 0);
    std::size_t cases = 0;
    do {
        for (std::size_t cut = 0; cut <= rows.size(); ++cut) {
            State a = build(h, rows, order, 0, cut);
            State b = build(h, rows, order, cut, rows.size());
            State a2 = build(h, rows, order, 0, cut);
            State b2 = build(h, rows, order, cut, rows.size());
            a.merge(b);
            ASSERT_EQ(h.result(a), expected) << "a.merge(b), cut " << cut;
            b2.merge(a2);
            ASSERT_EQ(h.result(b2), expected) << "b.merge(a), cut " << cut;
            State pa = reparsed(a2, h.make);
            State pb = reparsed(b, h.make);  // b was left as it was by a.merge(b)
            pb.merge(pa);
            ASSERT_EQ(h.result(pb), expected) << "through serialization, cut " << cut;
            State again = reparsed(pb, h.make);
            ASSERT_EQ(h.result(again), expected) << "serialized merged state, cut " << cut;
            ++cases;
        }
    } while (std::next_permutation(order.begin(), order.end()));
    EXPECT_GT(cases, 0u);
}

// Random partitions of many rows into 2..6 states, merged in random order
// (some through serialization), give the result over all rows at once.
template <typename State, typename Row>
void expect_random_partitions_agree(const Harness<State, Row>& h, const std::vector<Row>& rows,
                                    unsigned seed, int trials = 40)
{
    std::vector<std::size_t> order(rows.size());
    std::iota(order.begin(), order.end(), 0);
    State whole = build(h, rows, order, 0, rows.size());
    const std::string expected = h.result(whole);
    std::mt19937 rng(seed);
    for (int trial = 0; trial < trials; ++trial) {
        std::shuffle(order.begin(), order.end(), rng);
        std::size_t parts = 2 + rng() % 5;
        std::vector<State> states;
        for (std::size_t p = 0; p < parts; ++p)
            states.push_back(h.make());
        for (std::size_t i : order)
            h.add(states[rng() % parts], rows[i]);
        while (states.size() > 1) {
            std::size_t i = rng() % states.size();
            std::size_t j = rng() % (states.size() - 1);
            if (j >= i)
                ++j;
            if (rng() % 2 == 0) {
                State other = reparsed(states[j], h.make);
                states[i].merge(other);
            } else {
                states[i].merge(states[j]);
            }
            states.erase(states.begin() + std::ptrdiff_t(j));
        }
        ASSERT_EQ(h.result(states[0]), expected) << "trial " << trial;
    }
}

// --- latest ---------------------------------------------------------------------

struct LatestRow {
    std::string value;
    Micros at;
    std::int64_t tiebreak = 0;
};

Harness<LatestState, LatestRow> latest_harness(bool with_tiebreak)
{
    return {[with_tiebreak] { return LatestState(with_tiebreak); },
            [](LatestState& s, const LatestRow& r) { s.add(D(r.value), r.at, r.tiebreak); },
            [](LatestState& s) { return s.empty() ? std::string("NULL") : s.value().to_string(); }};
}

std::string latest_of(const std::vector<LatestRow>& rows, bool with_tiebreak = false)
{
    LatestState s(with_tiebreak);
    for (const auto& r : rows)
        s.add(D(r.value), r.at, r.tiebreak);
    return s.empty() ? "NULL" : s.value().to_string();
}

TEST(Latest, EmptyHasNoValue)
{
    LatestState s(false);
    EXPECT_TRUE(s.empty());
    LatestState t(false);
    t.parse(s.serialized());
    EXPECT_TRUE(t.empty());
}

TEST(Latest, TheValueWithTheGreatestAtWhateverTheOrder)
{
    EXPECT_EQ(latest_of({{"5", at_hour(1)}, {"7", at_hour(3)}, {"6", at_hour(2)}}), "7");
    EXPECT_EQ(latest_of({{"7", at_hour(3)}, {"5", at_hour(1)}}), "7");
    EXPECT_EQ(latest_of({{"-2.50", at_hour(9)}, {"100", at_hour(8)}}), "-2.50");
}

TEST(Latest, TiesAtOneInstantGoToTheGreaterValue)
{
    EXPECT_EQ(latest_of({{"3", at_hour(1)}, {"9", at_hour(1)}, {"4", at_hour(1)}}), "9");
    EXPECT_EQ(latest_of({{"9", at_hour(1)}, {"3", at_hour(1)}}), "9");
    // equal values: the one with more fraction digits, in either order
    EXPECT_EQ(latest_of({{"1.5", at_hour(1)}, {"1.50", at_hour(1)}}), "1.50");
    EXPECT_EQ(latest_of({{"1.50", at_hour(1)}, {"1.5", at_hour(1)}}), "1.50");
}

TEST(Latest, TiebreakDecidesTiesBeforeTheValue)
{
    // event 8 was ingested after event 7: it wins though its value is smaller
    EXPECT_EQ(latest_of({{"10", at_hour(1), 7}, {"2", at_hour(1), 8}}, true), "2");
    EXPECT_EQ(latest_of({{"2", at_hour(1), 8}, {"10", at_hour(1), 7}}, true), "2");
    // the time still comes first
    EXPECT_EQ(latest_of({{"2", at_hour(1), 8}, {"10", at_hour(2), 1}}, true), "10");
    // without the tiebreak form the argument is ignored
    EXPECT_EQ(latest_of({{"10", at_hour(1), 7}, {"2", at_hour(1), 8}}, false), "10");
}

TEST(Latest, AddAndMergeSayWhetherTheValueChanged)
{
    LatestState s(false);
    EXPECT_TRUE(s.add(D("1"), at_hour(1)));
    EXPECT_FALSE(s.add(D("5"), at_hour(0)));
    EXPECT_FALSE(s.add(D("1"), at_hour(1)));
    EXPECT_TRUE(s.add(D("2"), at_hour(1)));
    LatestState older(false);
    older.add(D("9"), at_hour(0));
    EXPECT_FALSE(s.merge(older));
    EXPECT_TRUE(older.merge(s));
    EXPECT_EQ(older.value().to_string(), "2");
    EXPECT_FALSE(s.merge(LatestState(false)));
}

TEST(Latest, EverySplitAndOrderAgrees)
{
    std::vector<LatestRow> rows = {{"5", at_hour(1)}, {"7", at_hour(3)}, {"1.50", at_hour(3)},
                                   {"7.0", at_hour(3)}, {"6", at_hour(2)}, {"-1", at_hour(0)}};
    expect_every_split_gives(latest_harness(false), rows, "7.0");
    std::vector<LatestRow> with_ids = {{"5", at_hour(1), 1},  {"7", at_hour(3), 4},
                                       {"1.50", at_hour(3), 6}, {"8", at_hour(3), 5},
                                       {"6", at_hour(2), 9},  {"3", at_hour(3), 6}};
    expect_every_split_gives(latest_harness(true), with_ids, "3");  // at 3h, id 6: 3 > 1.50
}

TEST(Latest, RandomPartitionsAgree)
{
    std::mt19937 rng(7);
    std::vector<LatestRow> rows;
    for (int i = 0; i < 300; ++i)
        rows.push_back({std::to_string(int(rng() % 50)) + "." + std::to_string(rng() % 10),
                        at_hour(double(rng() % 40)), std::int64_t(rng() % 5)});
    expect_random_partitions_agree(latest_harness(false), rows, 1);
    expect_random_partitions_agree(latest_harness(true), rows, 2);
}

TEST(Latest, SerializationRoundTripAndPeek)
{
    LatestState s(true);
    s.add(D("123456789012.345"), at_hour(5), 42);
    std::string bytes = s.serialized();
    EXPECT_EQ(bytes.size(), s.serialized_size());
    // header, presence, at, tiebreak, the value: sign, scale, 2 limbs (789012345 in 5
    // bytes, 123456 in 3), so 11 bytes
    EXPECT_EQ(bytes.size(), 3u + 1 + 16 + 11);
    LatestState t(true);
    t.parse(bytes);
    EXPECT_EQ(t.value().to_string(), "123456789012.345");
    EXPECT_EQ(t.key().at, at_hour(5));
    EXPECT_EQ(t.key().tiebreak, 42);
    EXPECT_EQ(t.serialized(), bytes);
    auto key = LatestState::peek_key(bytes, true);
    ASSERT_TRUE(key.has_value());
    EXPECT_EQ(key->at, at_hour(5));
    EXPECT_FALSE(LatestState::peek_key(LatestState(true).serialized(), true).has_value());
    agg::StateHeader h = agg::read_state_header(bytes);
    EXPECT_EQ(h.kind, agg::Kind::latest);
    EXPECT_TRUE(h.with_tiebreak);
}

TEST(Latest, RefusesInfiniteTimesAndMixedForms)
{
    LatestState s(false);
    EXPECT_SQLSTATE(sqlstate::kTimestampNotFinite, s.add(D("1"), INT64_MAX));
    EXPECT_SQLSTATE(sqlstate::kTimestampNotFinite, s.add(D("1"), INT64_MIN));
    auto e = error_of([&] { s.add(D("1"), INT64_MAX); });
    ASSERT_TRUE(e);
    EXPECT_EQ(e->message(), "at infinity is not a finite timestamp");

    LatestState with(true);
    with.add(D("1"), at_hour(1), 1);
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, s.merge(with));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, s.parse(with.serialized()));
    e = error_of([&] { s.merge(with); });
    ASSERT_TRUE(e);
    EXPECT_TRUE(contains(e->message(), "metering.latest(value, at, tiebreak) cannot be combined "
                                       "with a state of metering.latest(value, at)"));
}

// --- corrupt states ---------------------------------------------------------------

TEST(StateBytes, CorruptOrForeignStatesAreRefused)
{
    LatestState s(false);
    s.add(D("1.5"), at_hour(1));
    std::string good = s.serialized();
    LatestState t(false);
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(""));
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(good.substr(0, good.size() - 1)));
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(good + "x"));
    std::string bad = good;
    bad[0] = 2;  // version
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(bad));
    bad = good;
    bad[1] = 9;  // kind
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(bad));
    bad = good;
    bad[2] = 4;  // flags
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(bad));
    bad = good;
    bad[4 + 8] = 1;  // a tiebreak in a state without one
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(bad));
    bad = good;
    for (int i = 0; i < 8; ++i)
        bad[std::size_t(4 + i)] = i == 7 ? '\x7f' : '\xff';  // at = infinity
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(bad));
    bad = good.substr(0, good.size() - 1) + "\x8f" + '\0';  // the limb 15 as an overlong varint
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(bad));
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation,
                    agg::validate_state(bad, std::pmr::get_default_resource()));
    // a unique_count state passed to latest
    UniqueCountState u;
    u.add("a");
    auto e = error_of([&] { t.parse(u.serialized()); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kInvalidParameter);
    EXPECT_EQ(e->message(), "aggregate state is a unique_count state, not a latest state");
    // failed parses leave the state as it was
    t.parse(good);
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(good + "x"));
    EXPECT_EQ(t.value().to_string(), "1.5");
}

// The text form of metering.aggregate_state: \x and hex digits, then the bytes' checks.
TEST(StateText, DecodesHexAndValidatesTheBytes)
{
    LatestState s(false);
    s.add(D("1.5"), at_hour(1));
    const std::string good = s.serialized();
    std::string text = "\\x";
    for (unsigned char byte : good) {
        char hex[3];
        std::snprintf(hex, sizeof hex, "%02X", byte);  // upper case is accepted too
        text += hex;
    }
    std::pmr::memory_resource* memory = std::pmr::get_default_resource();
    EXPECT_EQ(agg::state_from_text(text, memory), good);

    auto message_of = [&](std::string_view bad) {
        auto e = error_of([&] { agg::state_from_text(bad, memory); });
        EXPECT_TRUE(e && std::string_view(e->sqlstate()) == sqlstate::kInvalidTextRepresentation);
        return e ? e->message() : std::string();
    };
    EXPECT_EQ(message_of("x1"), "aggregate state \"x1\" does not start with \\x");
    EXPECT_EQ(message_of("\\x010"), "aggregate state has an odd number of hexadecimal digits");
    EXPECT_EQ(message_of("\\x01zz"),
              "aggregate state has a character that is not a hexadecimal digit at position 5");
    EXPECT_EQ(message_of("\\x"), "aggregate state is corrupt: truncated");
    EXPECT_EQ(message_of(text + "00"), "aggregate state is corrupt: 1 trailing bytes");
}

// --- unique_count -----------------------------------------------------------------

Harness<UniqueCountState, std::string> unique_harness()
{
    return {[] { return UniqueCountState(); },
            [](UniqueCountState& s, const std::string& v) { s.add(v); },
            [](UniqueCountState& s) { return std::to_string(s.count()); }};
}

TEST(UniqueCount, CountsDistinctValuesByteForByte)
{
    UniqueCountState s;
    EXPECT_EQ(s.count(), 0u);
    for (const char* v : {"a", "b", "a", "", "b", "c", "A", "é", "e\xcc\x81", "é"})
        s.add(v);
    // a b "" c A é (precomposed) e+combining acute: 7 (no collation folding)
    EXPECT_EQ(s.count(), 7u);
    std::string with_nul("x\0y", 3);
    s.add(with_nul);
    s.add(std::string("x\0z", 3));
    s.add(with_nul);
    EXPECT_EQ(s.count(), 9u);
}

TEST(UniqueCount, ManyValuesMatchAStdSet)
{
    std::mt19937 rng(11);
    UniqueCountState s;
    std::set<std::string> reference;
    for (int i = 0; i < 200000; ++i) {
        std::string v = "customer-" + std::to_string(rng() % 120000);
        if (i % 7 == 0)
            v += std::string(rng() % 200, 'x');  // some long values
        s.add(v);
        reference.insert(v);
    }
    EXPECT_EQ(s.count(), reference.size());
    UniqueCountState t;
    t.parse(s.serialized());
    EXPECT_EQ(t.count(), reference.size());
    EXPECT_EQ(t.serialized(), s.serialized());
}

TEST(UniqueCount, EverySplitAndOrderAgrees)
{
    expect_every_split_gives(unique_harness(), {"a", "b", "a", "", "c", "b", "d"}, "5");
    std::mt19937 rng(3);
    std::vector<std::string> rows;
    for (int i = 0; i < 2000; ++i)
        rows.push_back(std::to_string(rng() % 700));
    expect_random_partitions_agree(unique_harness(), rows, 4);
}

TEST(UniqueCount, MemoryPerDistinctValueIsAsDocumented)
{
    CountingResource memory;
    {
        UniqueCountState s(&memory);
        const int n = 100000;
        for (int i = 0; i < n; ++i) {
            char uuid[37];
            std::snprintf(uuid, sizeof uuid, "%08x-0000-4000-8000-%012d", i * 2654435761u, i);
            s.add(std::string_view(uuid, 36));
        }
        ASSERT_EQ(s.count(), std::uint64_t(n));
        // the arena's terminating NUL is the only byte allocated_bytes leaves out
        EXPECT_LE(memory.outstanding() - s.allocated_bytes(), 1u);
        double per_value = double(s.allocated_bytes()) / n;
        // documented worst case: 2 x (36 + 1) + 23 = 97 bytes
        EXPECT_LE(per_value, 97.0);
        EXPECT_GE(per_value, 37.0 + 11.4);
        // peak includes the old table and arena while they double
        EXPECT_LE(double(memory.peak()) / n, 97.0 + 37.0 + 12.0);
    }
    EXPECT_EQ(memory.outstanding(), 0u);  // everything went through the resource
}

TEST(UniqueCount, OutOfMemoryLeavesAConsistentState)
{
    CountingResource memory(64 * 1024);
    UniqueCountState s(&memory);
    std::uint64_t added = 0;
    bool failed = false;
    for (int i = 0; i < 100000 && !failed; ++i) {
        try {
            s.add("value-" + std::to_string(i));
            ++added;
        } catch (const std::bad_alloc&) {
            failed = true;
        }
    }
    ASSERT_TRUE(failed);
    EXPECT_EQ(s.count(), added);
    UniqueCountState t;
    t.parse(s.serialized());
    EXPECT_EQ(t.count(), added);
}

TEST(UniqueCount, CapsOnDistinctValuesAndBytes)
{
    UniqueCountState s;
    std::string v;
    for (std::size_t i = 0; i < agg::kMaxDistinctValues; ++i) {
        v = std::to_string(i);
        s.add(v);
    }
    EXPECT_EQ(s.count(), agg::kMaxDistinctValues);
    s.add("17");  // not new: fine
    auto e = error_of([&] { s.add("one more"); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kProgramLimitExceeded);
    EXPECT_EQ(e->message(), "metering.unique_count: more than 1000000 distinct values in one group");
    EXPECT_FALSE(e->hint().empty());
    EXPECT_EQ(s.count(), agg::kMaxDistinctValues);
    // the state is still whole
    UniqueCountState t;
    t.parse(s.serialized());
    EXPECT_EQ(t.count(), agg::kMaxDistinctValues);
    // merging past the cap fails the same way
    UniqueCountState other;
    other.add("one more");
    EXPECT_SQLSTATE(sqlstate::kProgramLimitExceeded, t.merge(other));

    UniqueCountState big;
    big.add(std::string(1000, 'x'));
    e = error_of([&] { big.add(std::string(agg::kMaxValueBytes, 'y')); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kProgramLimitExceeded);
    EXPECT_TRUE(contains(e->message(), "256 MiB"));
    EXPECT_EQ(big.count(), 1u);
}

TEST(UniqueCount, CorruptStatesAreRefused)
{
    UniqueCountState s;
    s.add("a");
    s.add("b");
    std::string good = s.serialized();
    // header, count 2, arena size 4, then 01 'a' 01 'b'
    ASSERT_EQ(good, std::string("\x01\x02\x00\x02\x04\x01" "a\x01" "b", 9));
    UniqueCountState t;
    std::string dup = good;
    dup[8] = 'a';
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(dup));
    std::string count = good;
    count[3] = 3;
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(count));
    std::string length = good;
    length[5] = 9;  // a value longer than the arena
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(length));
    std::string flags = good;
    flags[2] = 1;  // unique_count has no tiebreak form
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(flags));
    t.parse(good);
    EXPECT_EQ(t.count(), 2u);
}

// --- counter_total ----------------------------------------------------------------

struct CounterRow {
    CounterOp op;
    std::string value;
    Micros at;
    std::int64_t tiebreak = 0;
};
constexpr CounterOp kInc = CounterOp::increment;
constexpr CounterOp kSet = CounterOp::set;

Harness<CounterState, CounterRow> counter_harness(bool with_tiebreak)
{
    return {[with_tiebreak] { return CounterState(with_tiebreak); },
            [](CounterState& s, const CounterRow& r) { s.add(r.op, D(r.value), r.at, r.tiebreak); },
            [](CounterState& s) { return s.total().to_string(); }};
}

std::string counter_of(const std::vector<CounterRow>& rows, bool with_tiebreak = false)
{
    CounterState s(with_tiebreak);
    for (const auto& r : rows)
        s.add(r.op, D(r.value), r.at, r.tiebreak);
    return s.total().to_string();
}

TEST(CounterTotal, StartsAtZero)
{
    EXPECT_EQ(counter_of({}), "0");
}

TEST(CounterTotal, TheLastSetPlusTheIncrementsAfterIt)
{
    // the counters example of sql/counters.sql: 5 + 2 - 3, set 10, + 1 = 11
    std::vector<CounterRow> rows = {{kInc, "5", at_hour(9)},   {kInc, "2", at_hour(10)},
                                    {kInc, "-3", at_hour(34)}, {kSet, "10", at_hour(48)},
                                    {kInc, "1", at_hour(72)}};
    EXPECT_EQ(counter_of(rows), "11");
    std::reverse(rows.begin(), rows.end());
    EXPECT_EQ(counter_of(rows), "11");
    // increments only: their sum; fractions keep the largest scale
    EXPECT_EQ(counter_of({{kInc, "1.5", at_hour(1)}, {kInc, "2.25", at_hour(2)}}), "3.75");
    // a late increment before the set changes nothing; a late set rewrites
    rows.push_back({kInc, "100", at_hour(36)});
    EXPECT_EQ(counter_of(rows), "11");
    rows.push_back({kSet, "0", at_hour(71)});
    EXPECT_EQ(counter_of(rows), "1");
}

TEST(CounterTotal, AnIncrementAtTheInstantOfASetCountsAfterIt)
{
    EXPECT_EQ(counter_of({{kSet, "7", at_hour(5)}, {kInc, "1", at_hour(5)}}), "8");
    EXPECT_EQ(counter_of({{kInc, "1", at_hour(5)}, {kSet, "7", at_hour(5)}}), "8");
    // two sets at one instant: the greater value
    EXPECT_EQ(counter_of({{kSet, "7", at_hour(5)}, {kSet, "3", at_hour(5)}, {kInc, "1", at_hour(5)}}),
              "8");
    // with event ids the order within the instant is theirs
    EXPECT_EQ(counter_of({{kSet, "7", at_hour(5), 8}, {kInc, "1", at_hour(5), 7}}, true), "7");
    EXPECT_EQ(counter_of({{kSet, "7", at_hour(5), 8}, {kInc, "1", at_hour(5), 9}}, true), "8");
    EXPECT_EQ(counter_of({{kSet, "3", at_hour(5), 9}, {kSet, "7", at_hour(5), 8}}, true), "3");
}

TEST(CounterTotal, ParsesOps)
{
    EXPECT_EQ(agg::parse_counter_op("increment"), kInc);
    EXPECT_EQ(agg::parse_counter_op("set"), kSet);
    auto e = error_of([] { agg::parse_counter_op("SET"); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kInvalidParameter);
    EXPECT_EQ(e->message(), "op \"SET\" is not a counter operation");
    EXPECT_EQ(e->hint(), "Use 'increment' or 'set' (NULL means increment).");
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, agg::parse_counter_op(""));
}

TEST(CounterTotal, EverySplitAndOrderAgrees)
{
    std::vector<CounterRow> rows = {{kInc, "5", at_hour(1)},   {kInc, "2", at_hour(2)},
                                    {kSet, "10", at_hour(3)},  {kInc, "1.5", at_hour(3)},
                                    {kSet, "4", at_hour(3)},   {kInc, "-1", at_hour(4)},
                                    {kInc, "0.25", at_hour(4)}};
    // set 10 at 3h (beats 4 at 3h), + 1.5 (same instant, after) - 1 + 0.25
    expect_every_split_gives(counter_harness(false), rows, "10.75");
    std::vector<CounterRow> ids = {{kInc, "5", at_hour(1), 1},  {kSet, "10", at_hour(3), 5},
                                   {kInc, "1", at_hour(3), 4},  {kInc, "2", at_hour(3), 6},
                                   {kSet, "20", at_hour(2), 9}, {kInc, "3", at_hour(5), 2},
                                   {kInc, "-4", at_hour(3), 5}};
    // set 10 (3h, id 5), then id 5 (-4, same key: after), id 6 (+2), 5h (+3): 11
    expect_every_split_gives(counter_harness(true), ids, "11");
    expect_every_split_gives(counter_harness(false), {{kInc, "1", at_hour(1)}, {kInc, "2", at_hour(1)},
                                                      {kInc, "3", at_hour(1)}},
                             "6");
}

TEST(CounterTotal, RandomPartitionsAgree)
{
    std::mt19937 rng(5);
    std::vector<CounterRow> rows;
    for (int i = 0; i < 400; ++i)
        rows.push_back({rng() % 13 == 0 ? kSet : kInc, std::to_string(int(rng() % 21) - 10),
                        at_hour(double(rng() % 100)), std::int64_t(rng() % 4)});
    expect_random_partitions_agree(counter_harness(false), rows, 6);
    expect_random_partitions_agree(counter_harness(true), rows, 7);
    // and the same rows without any set
    for (auto& r : rows)
        r.op = kInc;
    expect_random_partitions_agree(counter_harness(false), rows, 8);
}

TEST(CounterTotal, KeepsOnlyTheIncrementsAfterTheLastSet)
{
    CounterState s(false);
    for (int i = 0; i < 1000; ++i)
        s.add(kInc, D("1"), at_hour(i));
    std::size_t before = s.serialized().size();
    s.add(kSet, D("0"), at_hour(998));
    std::string bytes = s.serialized();
    // header, has_set, at, value 0 (3 bytes), count, then 2 points of 8 + 4 bytes
    EXPECT_EQ(bytes.size(), 3u + 1 + 8 + 3 + 1 + 2 * (8 + 4));
    EXPECT_LT(bytes.size(), before);
    EXPECT_EQ(s.total().to_string(), "2");
    CounterState t(false);
    t.parse(bytes);
    EXPECT_EQ(t.total().to_string(), "2");
    EXPECT_EQ(t.serialized(), bytes);
}

TEST(CounterTotal, EqualInstantsMergeAndTheCapCountsDistinctKeys)
{
    CounterState s(false);
    const Decimal one = D("1");
    for (int i = 0; i < 1200000; ++i)  // more rows than the cap, on 1000 instants
        s.add(kInc, one, at_hour(i % 1000));
    EXPECT_EQ(s.total().to_string(), "1200000");
    // header, has_set, count 1000 (2 bytes), 1000 x (at, value 1200 in 5 bytes)
    EXPECT_EQ(s.serialized().size(), 3u + 1 + 2 + 1000 * (8 + 5));

    CounterState c(false);
    for (std::size_t i = 0; i < agg::kMaxCounterEntries; ++i)
        c.add(kInc, one, kJan1 + Micros(i));
    auto e = error_of([&] { c.add(kInc, one, kJan1 - 1); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kProgramLimitExceeded);
    EXPECT_EQ(e->message(),
              "metering.counter_total: more than 1000000 increments after the last set in one group");
    EXPECT_FALSE(e->hint().empty());
    // a set lets the increments before it go, and the state works on
    c.add(kSet, D("5"), kJan1 + Micros(agg::kMaxCounterEntries) - 10);
    c.add(kInc, D("1"), kJan1 - 1);  // before the set: dropped
    EXPECT_EQ(c.total().to_string(), "15");
}

TEST(CounterTotal, MemoryPerEntryIsAsDocumented)
{
    CountingResource memory;
    {
        CounterState s(true, &memory);
        const int n = 200000;
        for (int i = 0; i < n; ++i)
            s.add(kInc, D("1"), kJan1 + Micros(i) * kSecond, i);
        s.serialized_size();  // compacts
        // 24-byte entry + 4-byte value, at most doubled by growth
        EXPECT_LE(double(memory.outstanding()) / n, 2.0 * (24 + 4) + 1);
        EXPECT_LE(double(memory.peak()) / n, 4.0 * (24 + 4));
    }
    EXPECT_EQ(memory.outstanding(), 0u);
}

TEST(CounterTotal, CorruptStatesAreRefused)
{
    CounterState s(false);
    s.add(kSet, D("1"), at_hour(1));
    s.add(kInc, D("1"), at_hour(2));
    s.add(kInc, D("2"), at_hour(3));
    std::string good = s.serialized();
    // header 3, has_set 1, at 8, value 4, count 1, then (at 8, value 4) x 2
    ASSERT_EQ(good.size(), 3u + 1 + 8 + 4 + 1 + 2 * 12);
    CounterState t(false);
    std::string swapped = good;
    std::swap_ranges(swapped.begin() + 17, swapped.begin() + 25, swapped.begin() + 29);
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(swapped));
    std::string before_set = good;
    put_i64(before_set, 17, at_hour(1) - 1);  // one microsecond before the set
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(before_set));
    std::string presence = good;
    presence[3] = 2;
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(presence));
    CounterState with(true);
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, with.parse(good));
    t.parse(good);
    EXPECT_EQ(t.total().to_string(), "4");
}

// --- time_weighted ----------------------------------------------------------------

struct GaugeRow {
    std::string value;
    Micros at;
    std::int64_t tiebreak = 0;
};

struct Period {
    Micros start;
    Micros end;
};
constexpr Period kDayPeriod{kJan1, kJan1 + kDay};

Harness<TimeWeightedState, GaugeRow> gauge_harness(bool with_tiebreak, Period p = kDayPeriod)
{
    return {[with_tiebreak] { return TimeWeightedState(with_tiebreak); },
            [p](TimeWeightedState& s, const GaugeRow& r) {
                s.set_period(p.start, p.end);
                s.add(D(r.value), r.at, r.tiebreak);
            },
            [](TimeWeightedState& s) { return s.value_hours().to_string(); }};
}

std::string gauge_of(const std::vector<GaugeRow>& rows, Period p = kDayPeriod,
                     bool with_tiebreak = false)
{
    TimeWeightedState s(with_tiebreak);
    s.set_period(p.start, p.end);
    for (const auto& r : rows)
        s.add(D(r.value), r.at, r.tiebreak);
    return s.value_hours().to_string();
}

TEST(TimeWeighted, TwelveHoursOfTenThenTwelveOfTwenty)
{
    // 10 x 12 h + 20 x 12 h = 360 value-hours
    EXPECT_EQ(gauge_of({{"10", at_hour(0)}, {"20", at_hour(12)}}), "360");
    EXPECT_EQ(gauge_of({{"20", at_hour(12)}, {"10", at_hour(0)}}), "360");
}

TEST(TimeWeighted, BeforeTheFirstPointTheGaugeHoldsThePriorValueElseZero)
{
    // no prior: 0 for 12 h, then 10 x 12 h = 120
    EXPECT_EQ(gauge_of({{"10", at_hour(12)}}), "120");
    // prior 5 (set 1 h before the period; an older 7 does not matter): 5 x 12 + 10 x 12 = 180
    EXPECT_EQ(gauge_of({{"7", at_hour(-2)}, {"10", at_hour(12)}, {"5", at_hour(-1)}}), "180");
    // prior only: 4 x 24 = 96
    EXPECT_EQ(gauge_of({{"4", at_hour(-100)}}), "96");
    // a point at the start replaces the prior: 3 x 24 = 72
    EXPECT_EQ(gauge_of({{"4", at_hour(-1)}, {"3", at_hour(0)}}), "72");
    // no point at all
    EXPECT_EQ(gauge_of({}), "0");
    TimeWeightedState empty(false);
    EXPECT_EQ(empty.value_hours().to_string(), "0");
}

TEST(TimeWeighted, RowsAtOrAfterTheEndDoNotCount)
{
    EXPECT_EQ(gauge_of({{"10", at_hour(0)}, {"1000", at_hour(24)}, {"99", at_hour(30)}}), "240");
    // 23:59:59.999999 counts for one microsecond: 10 x (24 h - 1 us) + 1000 x 1 us
    // = (864000000000 - 10 + 1000) value-us / 3.6e9 = 240.000000275 exactly
    EXPECT_EQ(gauge_of({{"10", at_hour(0)}, {"1000", kJan1 + kDay - 1}}), "240.000000275");
}

TEST(TimeWeighted, TiesAtOneInstantGoToTheGreaterValueOrTiebreak)
{
    EXPECT_EQ(gauge_of({{"10", at_hour(0)}, {"30", at_hour(0)}}), "720");
    EXPECT_EQ(gauge_of({{"30", at_hour(0)}, {"10", at_hour(0)}}), "720");
    // with event ids the later-ingested wins: 10 x 24
    EXPECT_EQ(gauge_of({{"30", at_hour(0), 1}, {"10", at_hour(0), 2}}, kDayPeriod, true), "240");
    // the prior too
    EXPECT_EQ(gauge_of({{"1", at_hour(-1)}, {"2", at_hour(-1)}}), "48");
    EXPECT_EQ(gauge_of({{"2", at_hour(-1), 1}, {"1", at_hour(-1), 2}}, kDayPeriod, true), "24");
}

TEST(TimeWeighted, ResultScale)
{
    // exact results take the fewest digits >= the values' scale
    EXPECT_EQ(gauge_of({{"1.5", at_hour(23)}}), "1.5");
    EXPECT_EQ(gauge_of({{"1.50", at_hour(23)}}), "1.50");
    EXPECT_EQ(gauge_of({{"0.25", at_hour(0)}}), "6.00");
    // half an hour of 1: exact 0.5 though the values are integers
    EXPECT_EQ(gauge_of({{"1", at_hour(23.5)}}), "0.5");
    // one second of 1: 1/3600 h does not end; 16 digits beyond the values' 0
    EXPECT_EQ(gauge_of({{"1", kJan1 + kDay - kSecond}}), "0.0002777777777778");
    EXPECT_EQ(gauge_of({{"-1", kJan1 + kDay - kSecond}}), "-0.0002777777777778");
    // and beyond the values' scale 2
    EXPECT_EQ(gauge_of({{"1.00", kJan1 + kDay - kSecond}}), "0.000277777777777778");
    // one microsecond of 36 = 0.00000001 h exactly
    EXPECT_EQ(gauge_of({{"36", kJan1 + kDay - 1}}), "0.00000001");
    // a value held for no time does not set the scale
    EXPECT_EQ(gauge_of({{"1.000", at_hour(-1)}, {"2", at_hour(0)}}), "48");
}

TEST(TimeWeighted, PeriodsMustAgree)
{
    TimeWeightedState s(false);
    s.set_period(kJan1, kJan1 + kDay);
    s.set_period(kJan1, kJan1 + kDay);
    auto e = error_of([&] { s.set_period(kJan1, kJan1 + 2 * kDay); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kInvalidParameter);
    EXPECT_EQ(e->message(), "metering.time_weighted: rows of one group have different periods");
    EXPECT_EQ(e->detail(),
              "[2025-01-01 00:00:00+00, 2025-01-02 00:00:00+00) and "
              "[2025-01-01 00:00:00+00, 2025-01-03 00:00:00+00)");
    TimeWeightedState other(false);
    other.set_period(kJan1 + kHour, kJan1 + kDay);
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, s.merge(other));
    // a state without a period merges with any
    s.merge(TimeWeightedState(false));
    TimeWeightedState fresh(false);
    fresh.merge(s);
    EXPECT_TRUE(fresh.has_period());

    TimeWeightedState t(false);
    e = error_of([&] { t.set_period(kJan1, kJan1); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kInvalidParameter);
    EXPECT_EQ(e->message(), "period_end 2025-01-01 00:00:00+00 must be later than period_start "
                            "2025-01-01 00:00:00+00");
    EXPECT_SQLSTATE(sqlstate::kTimestampNotFinite, t.set_period(INT64_MIN, kJan1));
    EXPECT_SQLSTATE(sqlstate::kTimestampNotFinite, t.set_period(kJan1, INT64_MAX));
    t.set_period(kJan1, kJan1 + kDay);
    EXPECT_SQLSTATE(sqlstate::kTimestampNotFinite, t.add(D("1"), INT64_MAX));
}

// Found by test/fuzz/aggregate_state_binary (corpus: time_weighted_period_near_int64_min):
// the message of a combine of different periods printed a forged period start near
// INT64_MIN through to_civil, whose day x kUsecsPerDay overflowed.
TEST(TimeWeighted, AForgedPeriodAtTheEdgeOfInt64IsPrintedInTheError)
{
    TimeWeightedState s(false);
    s.set_period(kJan1, kJan1 + kDay);
    std::string forged = s.serialized();
    put_i64(forged, 4, INT64_MIN + 1);  // period start, after header and presence byte
    TimeWeightedState t(false);
    t.parse(forged);
    auto e = error_of([&] { t.merge(s); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kInvalidParameter);
    EXPECT_TRUE(contains(e->detail(), " BC+00, 2025-01-02 00:00:00+00) and [2025-01-01"));
}

TEST(TimeWeighted, EverySplitAndOrderAgrees)
{
    std::vector<GaugeRow> rows = {{"10", at_hour(0)},  {"20", at_hour(12)}, {"5", at_hour(-1)},
                                  {"7", at_hour(-2)},  {"99", at_hour(24)}, {"30", at_hour(12)},
                                  {"1.5", at_hour(18)}};
    // 5 before the period? no: 10 at 0h. 10 x 12 + 30 x 6 + 1.5 x 6 = 309.0
    expect_every_split_gives(gauge_harness(false), rows, "309.0");
    std::vector<GaugeRow> no_start = {{"5", at_hour(-1)},  {"7", at_hour(-2)}, {"3", at_hour(-1)},
                                      {"20", at_hour(12)}, {"4", at_hour(6)}};
    // prior 5 (the greater at -1 h): 5 x 6 + 4 x 6 + 20 x 12 = 294
    expect_every_split_gives(gauge_harness(false), no_start, "294");
    std::vector<GaugeRow> ids = {{"5", at_hour(-1), 3}, {"3", at_hour(-1), 4}, {"20", at_hour(12), 9},
                                 {"2", at_hour(12), 10}, {"8", at_hour(6), 1}};
    // prior 3 (id 4): 3 x 6 + 8 x 6 + 2 x 12 = 90
    expect_every_split_gives(gauge_harness(true), ids, "90");
}

TEST(TimeWeighted, RandomPartitionsAgree)
{
    std::mt19937 rng(9);
    std::vector<GaugeRow> rows;
    for (int i = 0; i < 400; ++i)
        rows.push_back({std::to_string(rng() % 100) + "." + std::to_string(rng() % 100),
                        kJan1 + Micros(rng() % 40000) * 3 * kSecond - 10 * kHour,
                        std::int64_t(rng() % 3)});
    expect_random_partitions_agree(gauge_harness(false), rows, 10);
    expect_random_partitions_agree(gauge_harness(true), rows, 11);
}

TEST(TimeWeighted, SerializationRoundTrip)
{
    TimeWeightedState s(true);
    s.set_period(kJan1, kJan1 + kDay);
    s.add(D("5"), at_hour(-1), 7);
    s.add(D("10"), at_hour(0), 1);
    s.add(D("20"), at_hour(12), 2);
    std::string bytes = s.serialized();
    // header, period, prior (at, id, 4), count, 2 x (at, id, value 4)
    EXPECT_EQ(bytes.size(), 3u + 1 + 16 + 1 + 16 + 4 + 1 + 2 * (16 + 4));
    TimeWeightedState t(true);
    t.parse(bytes);
    EXPECT_EQ(t.value_hours().to_string(), "360");
    EXPECT_EQ(t.serialized(), bytes);
    // a state with a period and no rows in it still remembers the period
    TimeWeightedState only_period(false);
    only_period.set_period(kJan1, kJan1 + kDay);
    TimeWeightedState u(false);
    u.parse(only_period.serialized());
    EXPECT_TRUE(u.has_period());
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, u.set_period(kJan1, kJan1 + 2 * kDay));
}

TEST(TimeWeighted, CorruptStatesAreRefused)
{
    TimeWeightedState s(false);
    s.set_period(kJan1, kJan1 + kDay);
    s.add(D("5"), at_hour(-1));
    s.add(D("10"), at_hour(1));
    std::string good = s.serialized();
    // header 3, has_period 1, start 8, end 8, has_prior 1, prior at 8 + value 4, count 1, point 12
    ASSERT_EQ(good.size(), 3u + 1 + 16 + 1 + 12 + 1 + 12);
    TimeWeightedState t(false);
    std::string outside = good;
    std::copy(good.begin() + 12, good.begin() + 20, outside.begin() + 34);  // point at = end
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(outside));
    std::string prior_inside = good;
    std::copy(good.begin() + 4, good.begin() + 12, prior_inside.begin() + 21);  // prior at = start
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(prior_inside));
    std::string empty_period = good;
    std::copy(good.begin() + 4, good.begin() + 12, empty_period.begin() + 12);  // end = start
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(empty_period));
    std::string noncanonical = good;
    noncanonical[good.size() - 1] = 0;  // value 10 -> limb 0: a leading zero limb
    EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation, t.parse(noncanonical));
    t.parse(good);
    EXPECT_EQ(t.value_hours().to_string(), "235");  // 5 x 1 + 10 x 23
}

// Found by test/fuzz/aggregate_state_binary (corpus: time_weighted_scale_99995):
// a state holding a value of 99995 fraction digits was accepted, and the
// final function then failed with "decimal shift by -8 places is out of range".
TEST(TimeWeighted, ValuesHaveAtMostTheScaleOfANumeric)
{
    TimeWeightedState s(false);
    s.set_period(kJan1, kJan1 + kDay);
    s.add(D("10"), at_hour(1));
    const std::string good = s.serialized();
    auto with_point_value = [&](const Decimal& value) {
        std::string bytes = good.substr(0, good.size() - 4);  // all but the value 10
        value.append_to(bytes);
        return bytes;
    };
    const Decimal one = D("1");
    TimeWeightedState t(false);
    for (int scale : {agg::kMaxValueScale + 1, Decimal::kMaxScale - 5})
        EXPECT_SQLSTATE(sqlstate::kInvalidBinaryRepresentation,
                        t.parse(with_point_value(one.shifted(-scale))));
    t.parse(with_point_value(one.shifted(-agg::kMaxValueScale)));
    EXPECT_EQ(t.value_hours().scale(), agg::kMaxValueScale);  // 23 x 10^-16383, exact

    const Decimal too_fine = one.shifted(-agg::kMaxValueScale - 1);
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, s.add(too_fine, at_hour(2)));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, s.add(too_fine, at_hour(-2)));
    LatestState latest(false);
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, latest.add(too_fine, at_hour(1)));
    EXPECT_TRUE(latest.empty());
    CounterState counter(false);
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, counter.add(CounterOp::set, too_fine, at_hour(1)));
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter,
                    counter.add(CounterOp::increment, too_fine, at_hour(1)));
    EXPECT_EQ(counter.total().to_string(), "0");
}

TEST(TimeWeighted, TheCapCountsDistinctInstantsInThePeriod)
{
    TimeWeightedState s(false);
    s.set_period(kJan1, kJan1 + kDay);
    std::vector<Decimal> digits;
    for (int d = 0; d < 7; ++d)
        digits.push_back(Decimal::from_int(d));
    for (int i = 0; i < 1200000; ++i) {  // more rows than the cap, on 10 instants
        s.add(digits[std::size_t(i % 7)], kJan1 + Micros(i % 10) * kHour);
        if (i % 100 == 0)
            s.add(digits[1], kJan1 - Micros(i) - 1);  // before the period: one is kept
    }
    // every instant (0 h .. 9 h) gets the greatest of 0..6, so 6 all day: 6 x 24 = 144
    EXPECT_EQ(s.value_hours().to_string(), "144");

    TimeWeightedState c(false);
    c.set_period(kJan1, kJan1 + kDay);
    for (std::size_t i = 0; i < agg::kMaxGaugePoints; ++i)
        c.add(digits[1], kJan1 + Micros(i));
    c.add(digits[2], kJan1);  // not a new instant: fine at the cap
    auto e = error_of([&] { c.add(digits[1], kJan1 + kHour); });
    ASSERT_TRUE(e);
    EXPECT_STREQ(e->sqlstate(), sqlstate::kProgramLimitExceeded);
    EXPECT_EQ(e->message(),
              "metering.time_weighted: more than 1000000 instants in the period in one group");
    // the state is still whole
    EXPECT_EQ(c.serialized().size(), 3u + 1 + 16 + 1 + 3 + agg::kMaxGaugePoints * 12);
}

TEST(TimeWeighted, MemoryPerPointIsAsDocumented)
{
    CountingResource memory;
    {
        TimeWeightedState s(false, &memory);
        s.set_period(kJan1, kJan1 + kDay);
        const int n = 200000;
        for (int i = 0; i < n; ++i)
            s.add(D("12.5"), kJan1 + Micros(i) * 400000);
        s.serialized_size();
        EXPECT_LE(double(memory.outstanding()) / n, 2.0 * (24 + 5) + 1);
        EXPECT_LE(double(memory.peak()) / n, 4.0 * (24 + 5));
    }
    EXPECT_EQ(memory.outstanding(), 0u);
}

// --- interrupts ---------------------------------------------------------------------

int interrupt_calls = 0;
void count_interrupt() { ++interrupt_calls; }
struct Cancelled {};
void cancel() { throw Cancelled{}; }

TEST(Interrupts, LongLoopsCallTheHookAndUnwindCleanly)
{
    UniqueCountState s;
    for (int i = 0; i < 20000; ++i)
        s.add(std::to_string(i));
    agg::set_interrupt_check(&count_interrupt);
    UniqueCountState t;
    t.merge(s);
    agg::set_interrupt_check(nullptr);
    EXPECT_GE(interrupt_calls, 4);

    CountingResource memory;
    {
        CounterState c(false, &memory);
        for (int i = 0; i < 20000; ++i)
            c.add(kInc, D("1"), kJan1 + i);
        agg::set_interrupt_check(&cancel);
        EXPECT_THROW(c.serialized(), Cancelled);
        agg::set_interrupt_check(nullptr);
        EXPECT_EQ(c.total().to_string(), "20000");  // the state survived the unwinding
    }
    EXPECT_EQ(memory.outstanding(), 0u);
}

}  // namespace
