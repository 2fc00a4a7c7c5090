#include "core/scalar_state.hpp"

#include <cstring>
#include <string>
#include <utility>

#include "core/errors.hpp"

namespace metering::core::agg {

namespace {

constexpr std::int64_t kFixedLimit = 1'000'000'000'000'000'000;  // 10^18
// The 128-bit path keeps |units| <= 2^127 - 1, so that every value held can be negated.
constexpr __int128 kMaxUnits = __int128(~static_cast<unsigned __int128>(0) >> 1);

struct PowersOfTen {
    __int128 value[39];
    PowersOfTen()
    {
        value[0] = 1;
        for (int i = 1; i < 39; ++i)
            value[i] = value[i - 1] * 10;
    }
};
const PowersOfTen kPowersOfTen;

__int128 power_of_ten(int exponent)  // 0 <= exponent <= 38
{
    return kPowersOfTen.value[exponent];
}

// x * 10^exponent, or false when it does not fit in 128 bits.
bool scaled(__int128 x, int exponent, __int128* out)
{
    if (exponent > 38)
        return x == 0 ? (*out = 0, true) : false;
    return !__builtin_mul_overflow(x, power_of_ten(exponent), out);
}

std::string digits_of(__int128 x)  // x >= 0
{
    std::string digits;
    do {
        digits.insert(digits.begin(), char('0' + int(x % 10)));
        x /= 10;
    } while (x != 0);
    return digits;
}

Decimal decimal_of(__int128 units, int scale)
{
    bool negative = units < 0;
    // |INT128_MIN| is not reached: sums stay within +-kMaxUnits (ScalarState::add).
    std::string digits = digits_of(negative ? -units : units);
    if (scale > 0) {
        if (digits.size() <= std::size_t(scale))
            digits.insert(0, std::size_t(scale) + 1 - digits.size(), '0');
        digits.insert(digits.size() - std::size_t(scale), 1, '.');
    }
    return Decimal::parse(negative ? "-" + digits : digits);
}

[[noreturn]] void throw_bad_state(const std::string& what)
{
    throw Error(sqlstate::kInvalidBinaryRepresentation, "invalid line state: " + what);
}

}  // namespace

std::optional<FixedValue> fixed_from_base10000(bool negative, int weight, int dscale,
                                               const std::int16_t* digits, int ndigits)
{
    if (dscale < 0 || dscale > kMaxFixedScale)
        return std::nullopt;
    __int128 mantissa = 0;
    for (int i = 0; i < ndigits; ++i) {
        int digit = digits[i];
        if (digit < 0 || digit > 9999)
            return std::nullopt;
        if (digit == 0)
            continue;
        // digit x 10000^(weight - i), in units of 10^-dscale
        long exponent = 4L * (long(weight) - i) + dscale;
        if (exponent > 18)
            return std::nullopt;
        __int128 term = digit;
        if (exponent >= 0) {
            term *= power_of_ten(int(exponent));
        } else {
            if (exponent < -4)
                return std::nullopt;  // a nonzero digit below the display scale
            __int128 divisor = power_of_ten(int(-exponent));
            if (term % divisor != 0)
                return std::nullopt;
            term /= divisor;
        }
        mantissa += term;
        if (mantissa >= kFixedLimit)
            return std::nullopt;
    }
    return FixedValue{negative ? -std::int64_t(mantissa) : std::int64_t(mantissa), dscale};
}

Decimal to_decimal(FixedValue value) { return decimal_of(value.mantissa, value.scale); }

__int128 ScalarState::units() const
{
    __int128 units;
    std::memcpy(&units, units_, sizeof units);
    return units;
}

void ScalarState::set_units(__int128 units) { std::memcpy(units_, &units, sizeof units); }

ScalarState::ScalarState(ScalarKind kind, std::pmr::memory_resource* memory)
    : kind_(kind), wide_value_(memory)
{
}

bool ScalarState::wins(int cmp, int scale) const
{
    if (cmp == 0)
        return scale > scale_;
    return kind_ == ScalarKind::max ? cmp > 0 : cmp < 0;
}

void ScalarState::add(FixedValue value)
{
    if (kind_ == ScalarKind::count) {
        ++rows_;
        return;
    }
    if (!has_value_) {
        set_units(value.mantissa);
        scale_ = value.scale;
        has_value_ = true;
        return;
    }
    if (wide_) {
        add(to_decimal(value));
        return;
    }
    int scale = value.scale > scale_ ? value.scale : scale_;
    __int128 held = 0;
    __int128 incoming = 0;
    if (!scaled(units(), scale - scale_, &held) || !scaled(value.mantissa, scale - value.scale, &incoming)) {
        add(to_decimal(value));
        return;
    }
    if (kind_ == ScalarKind::sum) {
        __int128 total = 0;
        if (__builtin_add_overflow(held, incoming, &total) || total < -kMaxUnits) {
            add(to_decimal(value));
            return;
        }
        set_units(total);
        scale_ = scale;
        return;
    }
    int cmp = incoming < held ? -1 : incoming > held ? 1 : 0;
    if (wins(cmp, value.scale)) {
        set_units(value.mantissa);
        scale_ = value.scale;
    }
}

void ScalarState::add(const Decimal& value)
{
    if (kind_ == ScalarKind::count) {
        ++rows_;
        return;
    }
    if (!has_value_) {
        set_wide(value);
        has_value_ = true;
        return;
    }
    Decimal held = current();
    if (kind_ == ScalarKind::sum)
        set_wide(held + value);
    else if (wins(value.compare(held), value.scale()))
        set_wide(value);
}

void ScalarState::merge(const ScalarState& other)
{
    if (other.kind_ != kind_)
        throw Error(sqlstate::kInvalidParameter, "line states of different kinds");
    rows_ += other.rows_;
    if (other.has_value_)
        add(other.current());
}

std::optional<Decimal> ScalarState::result() const
{
    if (kind_ == ScalarKind::count)
        return Decimal::from_int(std::int64_t(rows_));
    if (!has_value_)
        return std::nullopt;
    return current();
}

Decimal ScalarState::current() const
{
    if (!wide_)
        return decimal_of(units(), scale_);
    std::string_view in = wide_value_;
    return Decimal::read_from(in);
}

void ScalarState::set_wide(const Decimal& value)
{
    std::string bytes;
    value.append_to(bytes);
    wide_value_.assign(bytes.data(), bytes.size());
    wide_ = true;
    scale_ = value.scale();
}

std::string ScalarState::serialized() const
{
    std::string out(1, char(kind_));
    for (int i = 0; i < 8; ++i)
        out += char((rows_ >> (8 * i)) & 0xFF);
    out += char(has_value_ ? 1 : 0);
    if (has_value_)
        current().append_to(out);
    return out;
}

void ScalarState::parse(std::string_view bytes)
{
    if (bytes.size() < 10 || static_cast<unsigned char>(bytes[0]) != static_cast<unsigned char>(kind_))
        throw_bad_state("kind or length");
    std::uint64_t rows = 0;
    for (int i = 0; i < 8; ++i)
        rows |= std::uint64_t(static_cast<unsigned char>(bytes[1 + i])) << (8 * i);
    unsigned char flag = static_cast<unsigned char>(bytes[9]);
    bytes.remove_prefix(10);
    if (flag > 1 || (flag == 1) == bytes.empty() || (kind_ == ScalarKind::count && flag == 1))
        throw_bad_state("value flag");
    rows_ = rows;
    has_value_ = false;
    wide_ = false;
    if (flag == 1) {
        Decimal value = Decimal::read_from(bytes);
        if (!bytes.empty())
            throw_bad_state("trailing bytes");
        set_wide(value);
        has_value_ = true;
    }
}

}  // namespace metering::core::agg
