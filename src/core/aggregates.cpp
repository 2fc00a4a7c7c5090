#include "core/aggregates.hpp"

#include <algorithm>
#include <climits>
#include <cstring>
#include <stdexcept>
#include <utility>

#include "core/periods.hpp"
#include "core/validation.hpp"

namespace metering::core::agg {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::uint8_t kFlagTiebreak = 1;
constexpr std::size_t kPollEvery = 4096;

InterruptCheck interrupt_hook = nullptr;

// Calls the interrupt check every kPollEvery steps.
struct Poll {
    std::size_t steps = 0;
    void step()
    {
        if (++steps % kPollEvery == 0)
            check_interrupts();
    }
};

[[noreturn]] void throw_corrupt(const std::string& what)
{
    throw Error(sqlstate::kInvalidBinaryRepresentation, "aggregate state is corrupt: " + what, {},
                "Aggregate states are made by the metering aggregates and their *_trans and "
                "*_combine functions; pass them on unchanged.");
}

std::string timestamp_text(Micros t)
{
    return format_local_time(LocalTime{t}) + "+00";
}

void require_finite(Micros t, const char* field)
{
    if (t == INT64_MIN)
        throw_timestamp_not_finite(field, "-infinity");
    if (t == INT64_MAX)
        throw_timestamp_not_finite(field, "infinity");
}

std::string form_name(Kind kind, bool with_tiebreak)
{
    switch (kind) {
    case Kind::latest:
        return with_tiebreak ? "metering.latest(value, at, tiebreak)" : "metering.latest(value, at)";
    case Kind::unique_count:
        return "metering.unique_count(value)";
    case Kind::counter_total:
        return with_tiebreak ? "metering.counter_total(op, value, at, tiebreak)"
                             : "metering.counter_total(op, value, at)";
    case Kind::time_weighted:
        return with_tiebreak
                   ? "metering.time_weighted(value, at, period_start, period_end, tiebreak)"
                   : "metering.time_weighted(value, at, period_start, period_end)";
    }
    return "?";
}

void check_same_form(Kind kind, bool mine, bool theirs)
{
    if (mine != theirs)
        throw Error(sqlstate::kInvalidParameter,
                    "a state of " + form_name(kind, theirs) + " cannot be combined with a state of " +
                        form_name(kind, mine),
                    {}, "Combine only states of the same aggregate and argument list.");
}

Decimal decode(std::string_view bytes)
{
    return Decimal::read_from(bytes);
}

std::string scale_limit_text(int scale)
{
    return std::to_string(scale) + " fraction digits, more than the " +
           std::to_string(kMaxValueScale) + " of a numeric";
}

std::string encode(const Decimal& value)
{
    if (value.scale() > kMaxValueScale)
        throw Error(sqlstate::kInvalidParameter, "a value has " + scale_limit_text(value.scale()));
    std::string out;  // short values stay in the small-string buffer
    value.append_to(out);
    return out;
}

// Decimal of an unsigned count of microseconds.
Decimal micros_decimal(std::uint64_t micros)
{
    if (micros <= std::uint64_t(INT64_MAX))
        return Decimal::from_int(std::int64_t(micros));
    return Decimal::parse(std::to_string(micros));
}

std::uint64_t hash_seed()
{
    // Differs between processes (address randomization), so that colliding
    // values cannot be prepared in advance; results never depend on it.
    static const std::uint64_t seed =
        0x9E3779B97F4A7C15ull ^ std::uint64_t(reinterpret_cast<std::uintptr_t>(&interrupt_hook));
    return seed;
}

// MurmurHash64A (Austin Appleby, public domain).
std::uint64_t hash_bytes(std::string_view s)
{
    const std::uint64_t m = 0xc6a4a7935bd1e995ull;
    const int r = 47;
    std::uint64_t h = hash_seed() ^ (std::uint64_t(s.size()) * m);
    const char* p = s.data();
    std::size_t n = s.size();
    for (; n >= 8; p += 8, n -= 8) {
        std::uint64_t k;
        std::memcpy(&k, p, 8);
        k *= m;
        k ^= k >> r;
        k *= m;
        h ^= k;
        h *= m;
    }
    if (n > 0) {
        std::uint64_t k = 0;
        for (std::size_t i = 0; i < n; ++i)
            k |= std::uint64_t(static_cast<unsigned char>(p[i])) << (8 * i);
        h ^= k;
        h *= m;
    }
    h ^= h >> r;
    h *= m;
    h ^= h >> r;
    return h;
}

std::size_t varint_size(std::uint64_t v)
{
    std::size_t n = 1;
    for (; v >= 0x80; v >>= 7)
        ++n;
    return n;
}

std::size_t put_varint(char* out, std::uint64_t v)
{
    std::size_t n = 0;
    for (; v >= 0x80; v >>= 7)
        out[n++] = char((v & 0x7F) | 0x80);
    out[n++] = char(v);
    return n;
}

// --- serialization -------------------------------------------------------------

// Writes into a buffer of a known size, or only counts (no buffer).
class Sink {
public:
    Sink() = default;
    Sink(char* out, std::size_t size) : out_(out), size_(size) {}

    void u8(std::uint8_t v) { put(reinterpret_cast<const char*>(&v), 1); }
    void i64(std::int64_t v)
    {
        char b[8];
        auto u = std::uint64_t(v);
        for (int i = 0; i < 8; ++i)
            b[i] = char((u >> (8 * i)) & 0xFF);
        put(b, 8);
    }
    void varint(std::uint64_t v)
    {
        char b[10];
        put(b, put_varint(b, v));
    }
    void bytes(std::string_view s) { put(s.data(), s.size()); }
    std::size_t size() const { return used_; }

private:
    void put(const char* p, std::size_t n)
    {
        if (out_ != nullptr) {
            if (n > size_ - used_)
                throw std::logic_error("aggregate state is larger than its computed size");
            if (n > 0)
                std::memcpy(out_ + used_, p, n);
        }
        used_ += n;
    }

    char* out_ = nullptr;
    std::size_t size_ = 0;
    std::size_t used_ = 0;
};

class Source {
public:
    explicit Source(std::string_view in) : in_(in) {}

    std::uint8_t u8()
    {
        need(1, "truncated");
        auto v = std::uint8_t(in_[0]);
        in_.remove_prefix(1);
        return v;
    }
    std::int64_t i64()
    {
        need(8, "truncated");
        std::uint64_t u = 0;
        for (int i = 0; i < 8; ++i)
            u |= std::uint64_t(static_cast<unsigned char>(in_[std::size_t(i)])) << (8 * i);
        in_.remove_prefix(8);
        return std::int64_t(u);
    }
    std::uint64_t varint(std::uint64_t max, const char* what)
    {
        std::uint64_t value = 0;
        for (int shift = 0; shift < 64; shift += 7) {
            auto byte = u8();
            value |= std::uint64_t(byte & 0x7F) << shift;
            if ((byte & 0x80) == 0) {
                if (byte == 0 && shift > 0)
                    throw_corrupt(std::string(what) + " is not a canonical varint");
                if (value > max)
                    throw_corrupt(std::string(what) + " " + std::to_string(value) +
                                  " is beyond its limit " + std::to_string(max));
                return value;
            }
        }
        throw_corrupt(std::string(what) + " is not a varint");
    }
    std::string_view bytes(std::size_t n)
    {
        need(n, "truncated");
        std::string_view out = in_.substr(0, n);
        in_.remove_prefix(n);
        return out;
    }
    // The bytes of one canonical binary decimal.
    std::string_view decimal()
    {
        std::string_view rest = in_;
        int scale = 0;
        try {
            scale = Decimal::read_from(rest).scale();
        } catch (const Error& e) {
            throw_corrupt(e.message());
        }
        if (scale > kMaxValueScale)
            throw_corrupt("a value has " + scale_limit_text(scale));
        return bytes(in_.size() - rest.size());
    }
    bool done() const { return in_.empty(); }
    void finish() const
    {
        if (!in_.empty())
            throw_corrupt(std::to_string(in_.size()) + " trailing bytes");
    }

private:
    void need(std::size_t n, const char* what) const
    {
        if (in_.size() < n)
            throw_corrupt(what);
    }
    std::string_view in_;
};

void write_header(Sink& sink, Kind kind, bool with_tiebreak)
{
    sink.u8(kVersion);
    sink.u8(std::uint8_t(kind));
    sink.u8(with_tiebreak ? kFlagTiebreak : 0);
}

StateHeader read_header(Source& in)
{
    std::uint8_t version = in.u8();
    if (version != kVersion)
        throw_corrupt("unknown version " + std::to_string(version));
    std::uint8_t kind = in.u8();
    if (kind < std::uint8_t(Kind::latest) || kind > std::uint8_t(Kind::time_weighted))
        throw_corrupt("unknown kind " + std::to_string(kind));
    std::uint8_t flags = in.u8();
    if ((flags & ~kFlagTiebreak) != 0 ||
        (Kind(kind) == Kind::unique_count && flags != 0))
        throw_corrupt("unknown flags " + std::to_string(flags));
    return {Kind(kind), (flags & kFlagTiebreak) != 0};
}

void expect_header(Source& in, Kind kind, bool with_tiebreak)
{
    StateHeader h = read_header(in);
    if (h.kind != kind)
        throw Error(sqlstate::kInvalidParameter,
                    std::string("aggregate state is a ") + kind_name(h.kind) + " state, not a " +
                        kind_name(kind) + " state",
                    {}, "Pass each aggregate's state only to that aggregate's functions.");
    check_same_form(kind, with_tiebreak, h.with_tiebreak);
}

Micros read_time(Source& in)
{
    Micros t = in.i64();
    if (t == INT64_MIN || t == INT64_MAX)
        throw_corrupt("infinite timestamp");
    return t;
}

std::int64_t read_tiebreak(Source& in, bool with_tiebreak)
{
    return with_tiebreak ? in.i64() : 0;
}

[[noreturn]] void throw_limit(const std::string& message, const std::string& detail,
                              const std::string& hint)
{
    throw Error(sqlstate::kProgramLimitExceeded, message, detail, hint);
}

}  // namespace

// --- common ------------------------------------------------------------------

const char* kind_name(Kind kind)
{
    switch (kind) {
    case Kind::latest:
        return "latest";
    case Kind::unique_count:
        return "unique_count";
    case Kind::counter_total:
        return "counter_total";
    case Kind::time_weighted:
        return "time_weighted";
    }
    return "unknown";
}

StateHeader read_state_header(std::string_view bytes)
{
    Source in(bytes);
    return read_header(in);
}

void set_interrupt_check(InterruptCheck check) { interrupt_hook = check; }

void check_interrupts()
{
    if (interrupt_hook != nullptr)
        interrupt_hook();
}

int compare_total(const Decimal& a, const Decimal& b)
{
    int by_value = a.compare(b);
    if (by_value != 0)
        return by_value;
    return a.scale() < b.scale() ? -1 : (a.scale() > b.scale() ? 1 : 0);
}

// --- latest -------------------------------------------------------------------

LatestState::LatestState(bool with_tiebreak, std::pmr::memory_resource* memory)
    : with_tiebreak_(with_tiebreak), value_(memory)
{
}

Decimal LatestState::value() const { return decode(value_); }

bool LatestState::add(const Decimal& value, Micros at, std::int64_t tiebreak)
{
    require_finite(at, "at");
    Key key{at, with_tiebreak_ ? tiebreak : 0};
    if (has_value_ && (key < key_ || (key == key_ && compare_total(value, this->value()) <= 0)))
        return false;
    value_.assign(encode(value));  // first: the state is unchanged if this throws
    key_ = key;
    has_value_ = true;
    return true;
}

bool LatestState::merge(const LatestState& other)
{
    check_same_form(Kind::latest, with_tiebreak_, other.with_tiebreak_);
    if (other.empty())
        return false;
    if (has_value_ &&
        (other.key_ < key_ || (other.key_ == key_ && compare_total(other.value(), value()) <= 0)))
        return false;
    value_.assign(other.value_);
    key_ = other.key_;
    has_value_ = true;
    return true;
}

namespace {
template <typename S>
void write_latest(S& sink, bool with_tiebreak, bool has_value, Key key, std::string_view value)
{
    write_header(sink, Kind::latest, with_tiebreak);
    sink.u8(has_value ? 1 : 0);
    if (has_value) {
        sink.i64(key.at);
        sink.i64(key.tiebreak);
        sink.bytes(value);
    }
}

// Reads a latest state up to its value; returns has_value.
bool read_latest_key(Source& in, bool with_tiebreak, Key& key)
{
    expect_header(in, Kind::latest, with_tiebreak);
    std::uint8_t has_value = in.u8();
    if (has_value > 1)
        throw_corrupt("bad presence byte");
    if (has_value == 0)
        return false;
    key.at = read_time(in);
    key.tiebreak = in.i64();
    if (!with_tiebreak && key.tiebreak != 0)
        throw_corrupt("tiebreak in a state without one");
    return true;
}
}  // namespace

std::size_t LatestState::serialized_size() const
{
    Sink sink;
    write_latest(sink, with_tiebreak_, has_value_, key_, value_);
    return sink.size();
}

void LatestState::serialize_into(char* out, std::size_t size) const
{
    Sink sink(out, size);
    write_latest(sink, with_tiebreak_, has_value_, key_, value_);
    if (sink.size() != size)
        throw std::logic_error("latest state size mismatch");
}

std::string LatestState::serialized() const
{
    std::string out(serialized_size(), '\0');
    serialize_into(out.data(), out.size());
    return out;
}

void LatestState::parse(std::string_view bytes)
{
    Source in(bytes);
    Key key;
    bool has_value = read_latest_key(in, with_tiebreak_, key);
    std::string_view value;
    if (has_value)
        value = in.decimal();
    in.finish();
    value_.assign(value);
    key_ = has_value ? key : Key{};
    has_value_ = has_value;
}

std::optional<Key> LatestState::peek_key(std::string_view bytes, bool with_tiebreak)
{
    Source in(bytes);
    Key key;
    if (!read_latest_key(in, with_tiebreak, key))
        return std::nullopt;
    return key;
}

// --- unique_count -------------------------------------------------------------

namespace {
constexpr std::size_t kInitialSlots = 8;

[[noreturn]] void throw_too_many_distinct(const std::string& what)
{
    throw_limit("metering.unique_count: more than " + what + " in one group",
                "A unique_count state keeps every distinct value (its bytes plus about 20 bytes) "
                "so that partial states combine exactly; it holds at most " +
                    std::to_string(kMaxDistinctValues) + " values and " +
                    std::to_string(kMaxValueBytes >> 20) + " MiB of them.",
                "Count over smaller groups (for example per customer and billing period), or "
                "use count(DISTINCT ...), which sorts on disk.");
}
}  // namespace

UniqueCountState::UniqueCountState(std::pmr::memory_resource* memory)
    : arena_(memory), slots_(memory)
{
}

std::string_view UniqueCountState::value_at(std::uint32_t offset) const
{
    const char* p = arena_.data() + offset;
    std::uint64_t length = 0;
    for (int shift = 0;; shift += 7) {
        auto byte = static_cast<unsigned char>(*p++);
        length |= std::uint64_t(byte & 0x7F) << shift;
        if ((byte & 0x80) == 0)
            break;
    }
    return {p, std::size_t(length)};
}

void UniqueCountState::grow_slots()
{
    std::size_t size = slots_.empty() ? kInitialSlots : slots_.size() * 2;
    std::pmr::vector<std::uint64_t> grown(size, 0, slots_.get_allocator());
    std::size_t mask = size - 1;
    Poll poll;
    for (std::uint64_t slot : slots_) {
        if (slot == 0)
            continue;
        std::size_t i = std::size_t(slot >> 32) & mask;
        while (grown[i] != 0)
            i = (i + 1) & mask;
        grown[i] = slot;
        poll.step();
    }
    slots_.swap(grown);
}

bool UniqueCountState::insert(std::string_view value)
{
    auto hash32 = std::uint32_t(hash_bytes(value) >> 32);
    if (slots_.empty())
        grow_slots();
    std::size_t mask = slots_.size() - 1;
    std::size_t i = hash32 & mask;
    for (std::uint64_t slot; (slot = slots_[i]) != 0; i = (i + 1) & mask)
        if (std::uint32_t(slot >> 32) == hash32 && value_at(std::uint32_t(slot) - 1) == value)
            return false;

    if (count_ >= kMaxDistinctValues)
        throw_too_many_distinct(std::to_string(kMaxDistinctValues) + " distinct values");
    std::size_t entry = varint_size(value.size()) + value.size();
    if (value.size() > kMaxValueBytes || arena_.size() + entry > kMaxValueBytes)
        throw_too_many_distinct(std::to_string(kMaxValueBytes >> 20) + " MiB of distinct values");
    if ((count_ + 1) * 10 > slots_.size() * 7) {
        grow_slots();
        mask = slots_.size() - 1;
        for (i = hash32 & mask; slots_[i] != 0; i = (i + 1) & mask) {
        }
    }
    // Reserve first so that the two appends cannot fail half-way.
    if (arena_.capacity() < arena_.size() + entry)
        arena_.reserve(std::max(arena_.size() + entry, arena_.capacity() * 2));
    auto offset = std::uint32_t(arena_.size());
    char length[10];
    arena_.append(length, put_varint(length, value.size()));
    arena_.append(value.data(), value.size());
    slots_[i] = (std::uint64_t(hash32) << 32) | (std::uint64_t(offset) + 1);
    ++count_;
    return true;
}

void UniqueCountState::add(std::string_view value) { insert(value); }

void UniqueCountState::merge(const UniqueCountState& other)
{
    if (&other == this)
        return;
    Poll poll;
    for (std::size_t offset = 0; offset < other.arena_.size();) {
        std::string_view value = other.value_at(std::uint32_t(offset));
        insert(value);
        offset = std::size_t(value.data() + value.size() - other.arena_.data());
        poll.step();
    }
}

std::size_t UniqueCountState::allocated_bytes() const
{
    return arena_.capacity() + slots_.capacity() * sizeof(std::uint64_t);
}

namespace {
template <typename S>
void write_unique(S& sink, std::size_t count, std::string_view arena)
{
    write_header(sink, Kind::unique_count, false);
    sink.varint(count);
    sink.varint(arena.size());
    sink.bytes(arena);
}
}  // namespace

std::size_t UniqueCountState::serialized_size() const
{
    Sink sink;
    write_unique(sink, count_, arena_);
    return sink.size();
}

void UniqueCountState::serialize_into(char* out, std::size_t size) const
{
    Sink sink(out, size);
    write_unique(sink, count_, arena_);
    if (sink.size() != size)
        throw std::logic_error("unique_count state size mismatch");
}

std::string UniqueCountState::serialized() const
{
    std::string out(serialized_size(), '\0');
    serialize_into(out.data(), out.size());
    return out;
}

void UniqueCountState::parse(std::string_view bytes)
{
    Source in(bytes);
    expect_header(in, Kind::unique_count, false);
    std::uint64_t count = in.varint(kMaxDistinctValues, "value count");
    std::uint64_t size = in.varint(kMaxValueBytes, "value bytes");
    Source values(in.bytes(std::size_t(size)));
    in.finish();

    arena_.clear();
    slots_.clear();
    count_ = 0;
    arena_.reserve(std::size_t(size));
    Poll poll;
    while (!values.done()) {
        std::uint64_t length = values.varint(kMaxValueBytes, "value length");
        if (!insert(values.bytes(std::size_t(length))))
            throw_corrupt("a value is listed twice");
        poll.step();
    }
    if (count_ != count)
        throw_corrupt("value count " + std::to_string(count) + " but " + std::to_string(count_) +
                      " values");
}

// --- points -------------------------------------------------------------------

namespace detail {

PointLog::PointLog(MergeRule rule, std::size_t max_points, const char* what,
                   std::pmr::memory_resource* memory)
    : rule_(rule), max_points_(max_points), what_(what), points_(memory), values_(memory)
{
}

std::string_view PointLog::bytes_of(const Point& p) const
{
    return std::string_view(values_.data() + p.offset, p.length);
}

std::uint32_t PointLog::store(std::string_view bytes)
{
    // Live values stay below kMaxValueBytes, and dead ones below as much
    // again plus 64 KiB (maybe_compact), far from the limit of the offsets.
    if (values_.size() + bytes.size() > UINT32_MAX)
        throw_too_many_bytes();
    auto offset = std::uint32_t(values_.size());
    values_.append(bytes.data(), bytes.size());
    return offset;
}

bool PointLog::compacted() const
{
    return sorted_ == points_.size() && dead_bytes_ == 0 && !floor_dirty_;
}

void PointLog::throw_too_many_points() const
{
    throw_limit(std::string(what_) + ": more than " + std::to_string(max_points_) +
                    (rule_ == MergeRule::sum ? " increments after the last set"
                                             : " instants in the period") +
                    " in one group",
                "The state keeps each of them with its time (24 bytes plus the value) so that "
                "partial states combine exactly.",
                rule_ == MergeRule::sum
                    ? "Aggregate smaller groups (for example per customer and billing period); a "
                      "'set' lets the increments before it go."
                    : "Aggregate smaller groups (for example per customer and billing period), or "
                      "sample the gauge less often.");
}

void PointLog::throw_too_many_bytes() const
{
    throw_limit(std::string(what_) + ": more than " + std::to_string(kMaxValueBytes >> 20) +
                    " MiB of values in one group",
                {}, "Aggregate smaller groups, or values with fewer digits.");
}

void PointLog::maybe_compact()
{
    std::size_t tail = points_.size() - sorted_;
    if (tail >= std::max<std::size_t>(sorted_, 1024) || dead_bytes_ > values_.size() / 2 + 65536)
        compact();
}

void PointLog::add(Key key, const Decimal& value) { add_bytes(key, encode(value)); }

bool PointLog::merge_into_prefix(const Point& p, std::string_view bytes)
{
    auto sorted_end = points_.begin() + std::ptrdiff_t(sorted_);
    auto it = std::lower_bound(points_.begin(), sorted_end, p,
                               [this](const Point& a, const Point& b) { return key_less(a, b); });
    if (it == sorted_end || !same_key(*it, p))
        return false;
    Point& held = *it;
    if (rule_ == MergeRule::sum) {
        std::string sum = encode(decode(bytes_of(held)) + decode(bytes));
        std::uint32_t offset = store(sum);
        dead_bytes_ += held.length;
        held.offset = offset;
        held.length = std::uint32_t(sum.size());
    } else if (p.tiebreak > held.tiebreak ||
               (p.tiebreak == held.tiebreak &&
                compare_total(decode(bytes), decode(bytes_of(held))) > 0)) {
        std::uint32_t offset = store(bytes);
        dead_bytes_ += held.length;
        held.offset = offset;
        held.length = p.length;
        held.tiebreak = p.tiebreak;
    }
    return true;
}

void PointLog::add_bytes(Key key, std::string_view bytes)
{
    Point p{key.at, key.tiebreak, 0, std::uint32_t(bytes.size())};
    if (below_floor(p))
        return;
    if (!merge_into_prefix(p, bytes)) {
        // A new key, or one in the unsorted tail. At the cap, compact first
        // (merging the tail, dropping what is below the floor) and refuse a
        // key that is still new: the state never holds more than the cap.
        if (points_.size() >= max_points_ || values_.size() + bytes.size() > kMaxValueBytes) {
            compact();
            if (!merge_into_prefix(p, bytes)) {
                if (points_.size() >= max_points_)
                    throw_too_many_points();
                if (values_.size() + bytes.size() > kMaxValueBytes)
                    throw_too_many_bytes();
                append(p, bytes);
            }
        } else {
            append(p, bytes);
        }
    }
    maybe_compact();
}

void PointLog::append(Point p, std::string_view bytes)
{
    if (points_.size() == points_.capacity())  // grow by doubling, before anything changes
        points_.reserve(std::max<std::size_t>(8, points_.capacity() * 2));
    p.offset = store(bytes);
    points_.push_back(p);  // cannot throw: the capacity is there
}

void PointLog::merge(const PointLog& other)
{
    if (&other == this || other.rule_ != rule_)
        throw std::logic_error("point logs of different kinds merged");
    if (other.points_.size() < sorted_ / 8 + 16) {
        other.for_each_raw([&](Key key, std::string_view bytes) { add_bytes(key, bytes); });
        return;
    }
    // Everything at once into the tail (up to the two caps together for a
    // moment), then one compaction: a linear merge when both are sorted.
    points_.reserve(points_.size() + other.points_.size());
    values_.reserve(values_.size() + other.values_.size());
    Poll poll;
    for (const Point& p : other.points_) {
        if (!below_floor(p) && !other.below_floor(p))
            append(p, other.bytes_of(p));
        poll.step();
    }
    compact();
    if (points_.size() > max_points_)
        throw_too_many_points();
    if (values_.size() > kMaxValueBytes)
        throw_too_many_bytes();
}

void PointLog::append_sorted(Key key, std::string_view bytes)
{
    append(Point{key.at, key.tiebreak, 0, std::uint32_t(bytes.size())}, bytes);
}

void PointLog::finish_sorted()
{
    sorted_ = points_.size();
    if (points_.size() > max_points_)
        throw_too_many_points();
    if (values_.size() > kMaxValueBytes)
        throw_too_many_bytes();
}

void PointLog::raise_floor(Key floor)
{
    if (has_floor_ && !(floor_ < floor))
        return;
    floor_ = floor;
    has_floor_ = true;
    if (!points_.empty())
        floor_dirty_ = true;
}

namespace {
// Of two points at one instant (rule greatest): the greater (tiebreak, value).
bool better_point(const Point& a, std::string_view a_bytes, const Point& b, std::string_view b_bytes)
{
    if (a.tiebreak != b.tiebreak)
        return a.tiebreak > b.tiebreak;
    return compare_total(decode(a_bytes), decode(b_bytes)) > 0;
}

// Walks points sorted by the log's key order, one group of equal keys at a
// time, and calls emit(Point first_of_group, std::string_view bytes,
// const Decimal* sum) where sum is set for a summed group of several points.
template <typename Next, typename SameKey, typename BytesOf, typename Emit>
void walk_groups(Next&& next, SameKey&& same_key, BytesOf&& bytes_of, bool sum, Emit&& emit)
{
    const Point* p = next();
    Poll poll;
    while (p != nullptr) {
        Point out = *p;
        std::string_view out_bytes = bytes_of(*p);
        std::optional<Decimal> total;
        const Point* q = next();
        while (q != nullptr && same_key(*q, *p)) {
            std::string_view q_bytes = bytes_of(*q);
            if (sum) {
                if (!total)
                    total = decode(out_bytes);
                *total += decode(q_bytes);
            } else if (better_point(*q, q_bytes, out, out_bytes)) {
                out = *q;
                out_bytes = q_bytes;
            }
            q = next();
            poll.step();
        }
        emit(out, out_bytes, total ? &*total : nullptr);
        p = q;
        poll.step();
    }
}

}  // namespace

void PointLog::compact()
{
    if (compacted())
        return;
    auto less = [this](const Point& a, const Point& b) { return key_less(a, b); };
    auto tail = points_.begin() + std::ptrdiff_t(sorted_);
    if (!std::is_sorted(tail, points_.end(), less))  // a merged log often is
        std::sort(tail, points_.end(), less);

    std::pmr::vector<Point> merged(points_.get_allocator());
    merged.reserve(points_.size());
    std::pmr::string values(values_.get_allocator());
    values.reserve(values_.size() - std::min(values_.size(), dead_bytes_));

    // Merge the sorted prefix and the sorted tail.
    std::size_t i = 0;
    std::size_t j = sorted_;
    auto next = [&]() -> const Point* {
        for (;;) {
            const Point* p;
            if (i < sorted_ && (j >= points_.size() || !less(points_[j], points_[i])))
                p = &points_[i++];
            else if (j < points_.size())
                p = &points_[j++];
            else
                return nullptr;
            if (!below_floor(*p))
                return p;
        }
    };
    walk_groups(
        next, [this](const Point& a, const Point& b) { return same_key(a, b); },
        [this](const Point& p) { return bytes_of(p); }, rule_ == MergeRule::sum,
        [&](Point out, std::string_view bytes, const Decimal* total) {
            std::string summed;
            if (total != nullptr) {
                summed = encode(*total);
                bytes = summed;
            }
            out.offset = std::uint32_t(values.size());
            out.length = std::uint32_t(bytes.size());
            values.append(bytes.data(), bytes.size());
            merged.push_back(out);
        });

    points_.swap(merged);
    values_.swap(values);
    sorted_ = points_.size();
    dead_bytes_ = 0;
    floor_dirty_ = false;
}

template <typename F>
void PointLog::for_each_raw(F&& f) const
{
    Poll poll;
    for (const Point& p : points_) {
        if (!below_floor(p))
            f(Key{p.at, p.tiebreak}, bytes_of(p));
        poll.step();
    }
}

template <typename F>
void PointLog::for_each_merged(F&& f) const
{
    auto emit = [&](const Point& out, std::string_view bytes, const Decimal* total) {
        f(Key{out.at, out.tiebreak}, total != nullptr ? *total : decode(bytes));
    };
    auto same = [this](const Point& a, const Point& b) { return same_key(a, b); };
    auto bytes = [this](const Point& p) { return bytes_of(p); };
    if (sorted_ == points_.size()) {  // already merged (points below the floor are skipped)
        std::size_t i = 0;
        auto next = [&]() -> const Point* {
            while (i < points_.size() && below_floor(points_[i]))
                ++i;
            return i < points_.size() ? &points_[i++] : nullptr;
        };
        walk_groups(next, same, bytes, rule_ == MergeRule::sum, emit);
        return;
    }
    // A sorted copy of every point: the log itself stays as it is.
    std::pmr::vector<Point> copy(points_.begin(), points_.end(), points_.get_allocator());
    std::sort(copy.begin(), copy.end(),
              [this](const Point& a, const Point& b) { return key_less(a, b); });
    std::size_t i = 0;
    auto next = [&]() -> const Point* {
        while (i < copy.size() && below_floor(copy[i]))
            ++i;
        return i < copy.size() ? &copy[i++] : nullptr;
    };
    walk_groups(next, same, bytes, rule_ == MergeRule::sum, emit);
}

template <typename Sink>
void PointLog::write(Sink& sink, bool with_tiebreak) const
{
    if (!compacted())
        throw std::logic_error("point log written before compaction");
    sink.varint(points_.size());
    Poll poll;
    for (const Point& p : points_) {
        sink.i64(p.at);
        if (with_tiebreak)
            sink.i64(p.tiebreak);
        sink.bytes(bytes_of(p));
        poll.step();
    }
}

}  // namespace detail

namespace {
using detail::MergeRule;
using detail::PointLog;

// Reads a point list written by PointLog::write into an empty log; checks
// that the keys strictly increase and that accept(key) holds for each.
template <typename Accept>
void read_points(Source& in, PointLog& log, bool with_tiebreak, std::size_t max_points,
                 bool key_has_tiebreak, Accept&& accept)
{
    std::uint64_t n = in.varint(max_points, "point count");
    bool first = true;
    Key last;
    Poll poll;
    for (std::uint64_t k = 0; k < n; ++k) {
        Key key;
        key.at = read_time(in);
        key.tiebreak = read_tiebreak(in, with_tiebreak);
        std::string_view value = in.decimal();
        bool increasing = key_has_tiebreak ? last < key : last.at < key.at;
        if (!first && !increasing)
            throw_corrupt("points are not in increasing order");
        if (!accept(key))
            throw_corrupt("a point is outside its range");
        log.append_sorted(key, value);
        first = false;
        last = key;
        poll.step();
    }
    log.finish_sorted();
}
}  // namespace

// --- counter_total --------------------------------------------------------------

CounterOp parse_counter_op(std::string_view op)
{
    if (op == "increment")
        return CounterOp::increment;
    if (op == "set")
        return CounterOp::set;
    throw Error(sqlstate::kInvalidParameter, "op " + quoted(op) + " is not a counter operation",
                {}, "Use 'increment' or 'set' (NULL means increment).");
}

CounterState::CounterState(bool with_tiebreak, std::pmr::memory_resource* memory)
    : with_tiebreak_(with_tiebreak),
      set_value_(memory),
      increments_(MergeRule::sum, kMaxCounterEntries, "metering.counter_total", memory)
{
}

namespace {
// Whether a set (key, value) replaces the held one: greater key, or equal key
// and greater value in the total order.
bool set_wins(Key key, std::string_view value, bool has_set, Key held_key, std::string_view held)
{
    if (!has_set)
        return true;
    if (key < held_key)
        return false;
    if (key == held_key)
        return compare_total(decode(value), decode(held)) > 0;
    return true;
}
}  // namespace

void CounterState::add(CounterOp op, const Decimal& value, Micros at, std::int64_t tiebreak)
{
    require_finite(at, "at");
    Key key{at, with_tiebreak_ ? tiebreak : 0};
    if (op == CounterOp::increment) {
        increments_.add(key, value);
        return;
    }
    std::string bytes = encode(value);
    if (!set_wins(key, bytes, has_set_, set_key_, set_value_))
        return;
    set_value_.assign(bytes);
    set_key_ = key;
    has_set_ = true;
    increments_.raise_floor(key);
}

void CounterState::merge(const CounterState& other)
{
    check_same_form(Kind::counter_total, with_tiebreak_, other.with_tiebreak_);
    if (&other == this)
        throw std::logic_error("a counter state merged with itself");
    if (other.has_set_ && set_wins(other.set_key_, other.set_value_, has_set_, set_key_, set_value_)) {
        set_value_.assign(other.set_value_);
        set_key_ = other.set_key_;
        has_set_ = true;
        increments_.raise_floor(set_key_);
    }
    increments_.merge(other.increments_);
}

Decimal CounterState::total() const
{
    Decimal total = has_set_ ? decode(set_value_) : Decimal();
    increments_.for_each_raw([&](Key, std::string_view bytes) { total += decode(bytes); });
    return total;
}

namespace {
template <typename S>
void write_counter(S& sink, bool with_tiebreak, bool has_set, Key set_key,
                   std::string_view set_value, const PointLog& increments)
{
    write_header(sink, Kind::counter_total, with_tiebreak);
    sink.u8(has_set ? 1 : 0);
    if (has_set) {
        sink.i64(set_key.at);
        if (with_tiebreak)
            sink.i64(set_key.tiebreak);
        sink.bytes(set_value);
    }
    increments.write(sink, with_tiebreak);
}
}  // namespace

std::size_t CounterState::serialized_size()
{
    increments_.compact();
    Sink sink;
    write_counter(sink, with_tiebreak_, has_set_, set_key_, set_value_, increments_);
    return sink.size();
}

void CounterState::serialize_into(char* out, std::size_t size) const
{
    Sink sink(out, size);
    write_counter(sink, with_tiebreak_, has_set_, set_key_, set_value_, increments_);
    if (sink.size() != size)
        throw std::logic_error("counter state size mismatch");
}

std::string CounterState::serialized()
{
    std::string out(serialized_size(), '\0');
    serialize_into(out.data(), out.size());
    return out;
}

void CounterState::parse(std::string_view bytes)
{
    Source in(bytes);
    expect_header(in, Kind::counter_total, with_tiebreak_);
    std::uint8_t has_set = in.u8();
    if (has_set > 1)
        throw_corrupt("bad presence byte");
    Key set_key;
    std::string_view set_value;
    if (has_set == 1) {
        set_key.at = read_time(in);
        set_key.tiebreak = read_tiebreak(in, with_tiebreak_);
        set_value = in.decimal();
    }
    PointLog increments(MergeRule::sum, kMaxCounterEntries, "metering.counter_total",
                        set_value_.get_allocator().resource());
    if (has_set == 1)
        increments.raise_floor(set_key);
    read_points(in, increments, with_tiebreak_, kMaxCounterEntries, true,
                [&](Key key) { return has_set == 0 || !(key < set_key); });
    in.finish();
    set_value_.assign(set_value);
    has_set_ = has_set == 1;
    set_key_ = has_set_ ? set_key : Key{};
    increments_ = std::move(increments);
}

// --- time_weighted ------------------------------------------------------------

TimeWeightedState::TimeWeightedState(bool with_tiebreak, std::pmr::memory_resource* memory)
    : with_tiebreak_(with_tiebreak),
      prior_value_(memory),
      points_(MergeRule::greatest, kMaxGaugePoints, "metering.time_weighted", memory)
{
}

void TimeWeightedState::set_period(Micros start, Micros end)
{
    require_finite(start, "period_start");
    require_finite(end, "period_end");
    if (end <= start)
        throw Error(sqlstate::kInvalidParameter,
                    "period_end " + timestamp_text(end) + " must be later than period_start " +
                        timestamp_text(start));
    if (!has_period_) {
        start_ = start;
        end_ = end;
        has_period_ = true;
        return;
    }
    if (start != start_ || end != end_)
        throw Error(sqlstate::kInvalidParameter,
                    "metering.time_weighted: rows of one group have different periods",
                    "[" + timestamp_text(start_) + ", " + timestamp_text(end_) + ") and [" +
                        timestamp_text(start) + ", " + timestamp_text(end) + ")",
                    "Group by the billing period, and pass the same period_start and period_end "
                    "on every row of a group.");
}

void TimeWeightedState::add(const Decimal& value, Micros at, std::int64_t tiebreak)
{
    if (!has_period_)
        throw std::logic_error("time_weighted point added before its period");
    require_finite(at, "at");
    if (at >= end_)
        return;
    Key key{at, with_tiebreak_ ? tiebreak : 0};
    if (at >= start_) {
        points_.add(key, value);
        return;
    }
    if (has_prior_ && (key < prior_key_ ||
                       (key == prior_key_ && compare_total(value, decode(prior_value_)) <= 0)))
        return;
    prior_value_.assign(encode(value));
    prior_key_ = key;
    has_prior_ = true;
}

void TimeWeightedState::merge(const TimeWeightedState& other)
{
    check_same_form(Kind::time_weighted, with_tiebreak_, other.with_tiebreak_);
    if (&other == this)
        throw std::logic_error("a time_weighted state merged with itself");
    if (!other.has_period_)
        return;
    set_period(other.start_, other.end_);
    if (other.has_prior_ &&
        (!has_prior_ || prior_key_ < other.prior_key_ ||
         (other.prior_key_ == prior_key_ &&
          compare_total(decode(other.prior_value_), decode(prior_value_)) > 0))) {
        prior_value_.assign(other.prior_value_);
        prior_key_ = other.prior_key_;
        has_prior_ = true;
    }
    points_.merge(other.points_);
}

Decimal TimeWeightedState::value_hours() const
{
    if (!has_period_)
        return Decimal();
    // value x microseconds first, exactly; one division at the end.
    Decimal held = has_prior_ ? decode(prior_value_) : Decimal();
    Decimal total;
    Micros since = start_;
    auto hold_until = [&](Micros until) {
        // Unsigned: the span of Postgres's timestamps exceeds INT64_MAX microseconds.
        std::uint64_t span = std::uint64_t(until) - std::uint64_t(since);
        if (span != 0)  // a value held for no time does not count, not even its scale
            total += held * micros_decimal(span);
    };
    points_.for_each_merged([&](Key key, const Decimal& value) {
        hold_until(key.at);
        held = value;
        since = key.at;
    });
    hold_until(end_);
    // / 3.6e9 = / 10^8 / 36: the first is exact, the second may not end.
    bool exact = false;
    Decimal hours = total.shifted(-8).divided_by_small(
        36, total.scale() + kTimeWeightedExtraScale, &exact);
    return exact ? hours.without_trailing_zeros(total.scale()) : hours;
}

namespace {
template <typename S>
void write_time_weighted(S& sink, bool with_tiebreak, bool has_period, Micros start, Micros end,
                         bool has_prior, Key prior_key, std::string_view prior_value,
                         const PointLog& points)
{
    write_header(sink, Kind::time_weighted, with_tiebreak);
    sink.u8(has_period ? 1 : 0);
    if (has_period) {
        sink.i64(start);
        sink.i64(end);
    }
    sink.u8(has_prior ? 1 : 0);
    if (has_prior) {
        sink.i64(prior_key.at);
        if (with_tiebreak)
            sink.i64(prior_key.tiebreak);
        sink.bytes(prior_value);
    }
    points.write(sink, with_tiebreak);
}
}  // namespace

std::size_t TimeWeightedState::serialized_size()
{
    points_.compact();
    Sink sink;
    write_time_weighted(sink, with_tiebreak_, has_period_, start_, end_, has_prior_, prior_key_,
                        prior_value_, points_);
    return sink.size();
}

void TimeWeightedState::serialize_into(char* out, std::size_t size) const
{
    Sink sink(out, size);
    write_time_weighted(sink, with_tiebreak_, has_period_, start_, end_, has_prior_, prior_key_,
                        prior_value_, points_);
    if (sink.size() != size)
        throw std::logic_error("time_weighted state size mismatch");
}

std::string TimeWeightedState::serialized()
{
    std::string out(serialized_size(), '\0');
    serialize_into(out.data(), out.size());
    return out;
}

void TimeWeightedState::parse(std::string_view bytes)
{
    Source in(bytes);
    expect_header(in, Kind::time_weighted, with_tiebreak_);
    std::uint8_t has_period = in.u8();
    if (has_period > 1)
        throw_corrupt("bad presence byte");
    Micros start = 0;
    Micros end = 0;
    if (has_period == 1) {
        start = read_time(in);
        end = read_time(in);
        if (end <= start)
            throw_corrupt("empty period");
    }
    std::uint8_t has_prior = in.u8();
    if (has_prior > 1 || (has_prior == 1 && has_period == 0))
        throw_corrupt("bad presence byte");
    Key prior_key;
    std::string_view prior_value;
    if (has_prior == 1) {
        prior_key.at = read_time(in);
        prior_key.tiebreak = read_tiebreak(in, with_tiebreak_);
        prior_value = in.decimal();
        if (prior_key.at >= start)
            throw_corrupt("the value before the period is not before it");
    }
    PointLog points(MergeRule::greatest, kMaxGaugePoints, "metering.time_weighted",
                    prior_value_.get_allocator().resource());
    read_points(in, points, with_tiebreak_, kMaxGaugePoints, false, [&](Key key) {
        return has_period == 1 && key.at >= start && key.at < end;
    });
    in.finish();
    prior_value_.assign(prior_value);
    has_period_ = has_period == 1;
    start_ = start;
    end_ = end;
    has_prior_ = has_prior == 1;
    prior_key_ = has_prior_ ? prior_key : Key{};
    points_ = std::move(points);
}

// --- input of metering.aggregate_state -----------------------------------------

void validate_state(std::string_view bytes, std::pmr::memory_resource* memory)
{
    StateHeader header = read_state_header(bytes);
    switch (header.kind) {
    case Kind::latest:
        LatestState(header.with_tiebreak, memory).parse(bytes);
        return;
    case Kind::unique_count:
        UniqueCountState(memory).parse(bytes);
        return;
    case Kind::counter_total:
        CounterState(header.with_tiebreak, memory).parse(bytes);
        return;
    case Kind::time_weighted:
        TimeWeightedState(header.with_tiebreak, memory).parse(bytes);
        return;
    }
}

namespace {
int hex_value(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

[[noreturn]] void throw_bad_text(const std::string& message)
{
    throw Error(sqlstate::kInvalidTextRepresentation, message, {},
                "The text form of an aggregate state is \\x and hexadecimal digits, as "
                "metering.aggregate_state prints it.");
}

std::string bytes_of_hex(std::string_view text)
{
    if (text.size() < 2 || text[0] != '\\' || text[1] != 'x')
        throw_bad_text("aggregate state " + quoted(text) + " does not start with \\x");
    text.remove_prefix(2);
    if (text.size() % 2 != 0)
        throw_bad_text("aggregate state has an odd number of hexadecimal digits");
    std::string bytes(text.size() / 2, '\0');
    Poll poll;
    for (std::size_t i = 0; i < bytes.size(); ++i) {
        int high = hex_value(text[2 * i]);
        int low = hex_value(text[2 * i + 1]);
        if (high < 0 || low < 0)
            throw_bad_text("aggregate state has a character that is not a hexadecimal digit at "
                           "position " + std::to_string(2 * i + 3));
        bytes[i] = char(high * 16 + low);
        poll.step();
    }
    return bytes;
}
}  // namespace

std::string state_from_text(std::string_view text, std::pmr::memory_resource* memory)
{
    std::string bytes = bytes_of_hex(text);
    try {
        validate_state(bytes, memory);
    } catch (const Error& e) {
        throw Error(sqlstate::kInvalidTextRepresentation, e.message(), e.detail(), e.hint());
    }
    return bytes;
}

}  // namespace metering::core::agg
