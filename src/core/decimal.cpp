#include "core/decimal.hpp"

#include <algorithm>
#include <array>
#include <cstddef>
#include <utility>

#include "core/errors.hpp"
#include "core/validation.hpp"

namespace metering::core {

namespace {

using Limbs = std::vector<std::uint32_t>;

constexpr std::uint32_t kBase = 1000000000u;
constexpr int kBaseDigits = 9;
constexpr std::array<std::uint32_t, kBaseDigits> kPow10 = {
    1u, 10u, 100u, 1000u, 10000u, 100000u, 1000000u, 10000000u, 100000000u};

// --- magnitudes: base-1e9 limbs, least significant first ----------------------

void trim(Limbs& a)
{
    while (!a.empty() && a.back() == 0)
        a.pop_back();
}

int compare_magnitude(const Limbs& a, const Limbs& b)
{
    if (a.size() != b.size())
        return a.size() < b.size() ? -1 : 1;
    for (std::size_t i = a.size(); i-- > 0;)
        if (a[i] != b[i])
            return a[i] < b[i] ? -1 : 1;
    return 0;
}

Limbs add_magnitude(const Limbs& a, const Limbs& b)
{
    const Limbs& longer = a.size() >= b.size() ? a : b;
    const Limbs& shorter = a.size() >= b.size() ? b : a;
    Limbs sum(longer.size() + 1, 0);
    std::uint32_t carry = 0;
    for (std::size_t i = 0; i < longer.size(); ++i) {
        std::uint32_t s = longer[i] + (i < shorter.size() ? shorter[i] : 0) + carry;
        carry = s >= kBase;
        sum[i] = carry ? s - kBase : s;
    }
    sum[longer.size()] = carry;
    trim(sum);
    return sum;
}

// a - b, where a >= b.
Limbs subtract_magnitude(const Limbs& a, const Limbs& b)
{
    Limbs diff(a.size(), 0);
    std::int64_t borrow = 0;
    for (std::size_t i = 0; i < a.size(); ++i) {
        std::int64_t d = std::int64_t(a[i]) - (i < b.size() ? b[i] : 0) - borrow;
        borrow = d < 0;
        diff[i] = std::uint32_t(d < 0 ? d + kBase : d);
    }
    trim(diff);
    return diff;
}

// a *= factor, for factor < kBase.
void multiply_small(Limbs& a, std::uint32_t factor)
{
    std::uint64_t carry = 0;
    for (auto& limb : a) {
        std::uint64_t t = std::uint64_t(limb) * factor + carry;
        limb = std::uint32_t(t % kBase);
        carry = t / kBase;
    }
    if (carry != 0)
        a.push_back(std::uint32_t(carry));
    trim(a);
}

// a /= divisor (0 < divisor < kBase); returns the remainder.
std::uint32_t divide_small(Limbs& a, std::uint32_t divisor)
{
    std::uint64_t rest = 0;
    for (std::size_t i = a.size(); i-- > 0;) {
        std::uint64_t t = rest * kBase + a[i];
        a[i] = std::uint32_t(t / divisor);
        rest = t % divisor;
    }
    trim(a);
    return std::uint32_t(rest);
}

Limbs multiply_magnitude(const Limbs& a, const Limbs& b)
{
    if (a.empty() || b.empty())
        return {};
    Limbs product(a.size() + b.size(), 0);
    for (std::size_t i = 0; i < a.size(); ++i) {
        std::uint64_t carry = 0;
        for (std::size_t j = 0; j < b.size(); ++j) {
            std::uint64_t t = product[i + j] + std::uint64_t(a[i]) * b[j] + carry;
            product[i + j] = std::uint32_t(t % kBase);
            carry = t / kBase;
        }
        product[i + b.size()] = std::uint32_t(carry);
    }
    trim(product);
    return product;
}

// a * 10^digits: whole limbs first, then the rest with one small multiply.
Limbs scaled_up(Limbs a, int digits)
{
    if (a.empty() || digits <= 0)
        return a;
    a.insert(a.begin(), std::size_t(digits / kBaseDigits), 0u);
    multiply_small(a, kPow10[digits % kBaseDigits]);
    return a;
}

// a / 10^digits, truncated.
Limbs scaled_down(Limbs a, int digits)
{
    std::size_t whole = std::min(a.size(), std::size_t(digits / kBaseDigits));
    a.erase(a.begin(), a.begin() + std::ptrdiff_t(whole));
    divide_small(a, kPow10[digits % kBaseDigits]);
    return a;
}

struct Division {
    Limbs quotient;
    bool exact;
};

// One step of Knuth's algorithm D: divides un[j .. j+n] by vn and stores the
// quotient limb; un keeps the remainder.
std::uint32_t divide_step(Limbs& un, const Limbs& vn, std::size_t j)
{
    const std::size_t n = vn.size();
    const std::uint64_t top = std::uint64_t(un[j + n]) * kBase + un[j + n - 1];
    std::uint64_t qhat = top / vn[n - 1];
    std::uint64_t rhat = top % vn[n - 1];
    // The estimate from the two top limbs is at most 2 too large; this test
    // makes it at most 1 too large, and the add-back below corrects that.
    while (qhat >= kBase || qhat * vn[n - 2] > rhat * kBase + un[j + n - 2]) {
        --qhat;
        rhat += vn[n - 1];
        if (rhat >= kBase)
            break;
    }
    std::uint64_t carry = 0;
    std::int64_t borrow = 0;
    for (std::size_t i = 0; i < n; ++i) {
        std::uint64_t p = qhat * vn[i] + carry;
        carry = p / kBase;
        std::int64_t t = std::int64_t(un[i + j]) - std::int64_t(p % kBase) - borrow;
        borrow = t < 0;
        un[i + j] = std::uint32_t(t < 0 ? t + kBase : t);
    }
    std::int64_t t = std::int64_t(un[j + n]) - std::int64_t(carry) - borrow;
    un[j + n] = std::uint32_t(t < 0 ? t + kBase : t);
    if (t < 0) {  // qhat was one too large: add the divisor back once
        --qhat;
        std::uint64_t c = 0;
        for (std::size_t i = 0; i < n; ++i) {
            std::uint64_t s = std::uint64_t(un[i + j]) + vn[i] + c;
            un[i + j] = std::uint32_t(s % kBase);
            c = s / kBase;
        }
        un[j + n] = std::uint32_t((un[j + n] + c) % kBase);  // the carry out cancels the borrow
    }
    return std::uint32_t(qhat);
}

// a * factor in exactly `size` limbs (the product must fit), untrimmed, as
// algorithm D wants it.
Limbs times_keeping_size(const Limbs& a, std::uint32_t factor, std::size_t size)
{
    Limbs out(size, 0);
    std::uint64_t carry = 0;
    for (std::size_t i = 0; i < size; ++i) {
        std::uint64_t t = (i < a.size() ? std::uint64_t(a[i]) * factor : 0) + carry;
        out[i] = std::uint32_t(t % kBase);
        carry = t / kBase;
    }
    return out;
}

// u / v for v != 0 (Knuth, TAOCP vol. 2, 4.3.1, algorithm D, in base 1e9).
Division divide_magnitude(const Limbs& u, const Limbs& v)
{
    if (compare_magnitude(u, v) < 0)
        return {{}, u.empty()};
    if (v.size() == 1) {
        Limbs q = u;
        bool exact = divide_small(q, v[0]) == 0;
        return {std::move(q), exact};
    }
    // Normalize so that the divisor's top limb is >= kBase / 2, which keeps
    // the quotient estimate of each step within 2 of the truth.
    const std::uint32_t d = kBase / (v.back() + 1);
    Limbs un = times_keeping_size(u, d, u.size() + 1);
    Limbs vn = times_keeping_size(v, d, v.size());  // v * d < kBase^n by the choice of d
    const std::size_t m = u.size() - v.size();
    Limbs q(m + 1, 0);
    for (std::size_t j = m + 1; j-- > 0;)
        q[j] = divide_step(un, vn, j);
    trim(q);
    bool exact = std::all_of(un.begin(), un.end(), [](std::uint32_t x) { return x == 0; });
    return {std::move(q), exact};
}

// --- parsing -----------------------------------------------------------------

bool is_blank(char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

std::string_view trimmed(std::string_view text)
{
    while (!text.empty() && is_blank(text.front()))
        text.remove_prefix(1);
    while (!text.empty() && is_blank(text.back()))
        text.remove_suffix(1);
    return text;
}

bool is_digit(char c) { return c >= '0' && c <= '9'; }

bool equals_ignoring_case(std::string_view a, std::string_view b)
{
    if (a.size() != b.size())
        return false;
    for (std::size_t i = 0; i < a.size(); ++i) {
        char x = a[i] >= 'A' && a[i] <= 'Z' ? char(a[i] - 'A' + 'a') : a[i];
        if (x != b[i])
            return false;
    }
    return true;
}

[[noreturn]] void throw_not_a_number(std::string_view text)
{
    std::string_view body = trimmed(text);
    if (!body.empty() && (body.front() == '+' || body.front() == '-'))
        body.remove_prefix(1);
    for (std::string_view special : {"nan", "infinity", "inf"})
        if (equals_ignoring_case(body, special))
            throw Error(sqlstate::kInvalidParameter,
                        quoted(text) + " is not a finite decimal number", {},
                        "Money and quantities must be finite numbers.");
    throw Error(sqlstate::kInvalidParameter, quoted(text) + " is not a valid decimal number", {},
                "Use digits with an optional sign, fraction and exponent, such as 12, -0.5 or "
                "2.5E-2.");
}

[[noreturn]] void throw_too_large(std::string_view text)
{
    throw Error(sqlstate::kInvalidParameter,
                quoted(text) + " has more than " + std::to_string(Decimal::kMaxDigits) +
                    " digits or an exponent beyond +/-" + std::to_string(Decimal::kMaxExponent));
}

// The pieces of decimal text: mantissa digits (no dot), how many of them are
// fraction digits, and the exponent.
struct DecimalText {
    bool negative = false;
    std::string digits;
    int fraction_digits = 0;
    int exponent = 0;
};

// Reads digits into out (when given); returns how many there were.
int read_digits(std::string_view& rest, std::string* out, std::string_view text)
{
    int count = 0;
    while (!rest.empty() && is_digit(rest.front())) {
        if (++count > Decimal::kMaxDigits)
            throw_too_large(text);
        if (out)
            out->push_back(rest.front());
        rest.remove_prefix(1);
    }
    return count;
}

int read_exponent(std::string_view& rest, std::string_view text)
{
    bool negative = !rest.empty() && rest.front() == '-';
    if (!rest.empty() && (rest.front() == '-' || rest.front() == '+'))
        rest.remove_prefix(1);
    if (rest.empty() || !is_digit(rest.front()))
        throw_not_a_number(text);
    int value = 0;
    for (; !rest.empty() && is_digit(rest.front()); rest.remove_prefix(1)) {
        value = value * 10 + (rest.front() - '0');
        if (value > Decimal::kMaxExponent)
            throw_too_large(text);
    }
    return negative ? -value : value;
}

DecimalText split(std::string_view text)
{
    DecimalText parts;
    std::string_view rest = trimmed(text);
    if (!rest.empty() && (rest.front() == '+' || rest.front() == '-')) {
        parts.negative = rest.front() == '-';
        rest.remove_prefix(1);
    }
    int integer_digits = read_digits(rest, &parts.digits, text);
    if (!rest.empty() && rest.front() == '.') {
        rest.remove_prefix(1);
        parts.fraction_digits = read_digits(rest, &parts.digits, text);
    }
    if (integer_digits + parts.fraction_digits == 0)
        throw_not_a_number(text);
    if (integer_digits + parts.fraction_digits > Decimal::kMaxDigits)
        throw_too_large(text);
    if (!rest.empty() && (rest.front() == 'e' || rest.front() == 'E')) {
        rest.remove_prefix(1);
        parts.exponent = read_exponent(rest, text);
    }
    if (!rest.empty())
        throw_not_a_number(text);
    return parts;
}

// Limbs of a string of decimal digits, 9 at a time from the right.
Limbs limbs_of_digits(std::string_view digits)
{
    Limbs limbs;
    limbs.reserve(digits.size() / kBaseDigits + 1);
    for (std::size_t end = digits.size(); end > 0;) {
        std::size_t begin = end > std::size_t(kBaseDigits) ? end - kBaseDigits : 0;
        std::uint32_t limb = 0;
        for (std::size_t i = begin; i < end; ++i)
            limb = limb * 10 + std::uint32_t(digits[i] - '0');
        limbs.push_back(limb);
        end = begin;
    }
    trim(limbs);
    return limbs;
}

std::string digits_of_limbs(const Limbs& limbs)
{
    if (limbs.empty())
        return "0";
    std::string out = std::to_string(limbs.back());
    for (std::size_t i = limbs.size() - 1; i-- > 0;) {
        std::string part = std::to_string(limbs[i]);
        out.append(kBaseDigits - part.size(), '0');
        out += part;
    }
    return out;
}

// --- binary form -------------------------------------------------------------

void append_varint(std::string& out, std::uint32_t value)
{
    while (value >= 0x80) {
        out.push_back(char((value & 0x7F) | 0x80));
        value >>= 7;
    }
    out.push_back(char(value));
}

[[noreturn]] void throw_bad_binary(const char* what)
{
    throw Error(sqlstate::kInvalidParameter, std::string("binary decimal is ") + what);
}

// A LEB128 varint of at most 5 bytes, no larger than max, in its shortest
// form: one value has one binary form, so equal states have equal bytes.
std::uint32_t read_varint(std::string_view& in, std::uint32_t max)
{
    std::uint64_t value = 0;
    for (int shift = 0; shift < 35; shift += 7) {
        if (in.empty())
            throw_bad_binary("truncated");
        auto byte = std::uint8_t(in.front());
        in.remove_prefix(1);
        value |= std::uint64_t(byte & 0x7F) << shift;
        if (value > max)
            throw_bad_binary("out of range");
        if ((byte & 0x80) == 0) {
            if (byte == 0 && shift > 0)
                throw_bad_binary("not canonical (overlong varint)");
            return std::uint32_t(value);
        }
    }
    throw_bad_binary("out of range");
}

}  // namespace

// --- Decimal -----------------------------------------------------------------

Decimal::Decimal(bool negative, Limbs limbs, int scale)
    : negative_(negative), limbs_(std::move(limbs)), scale_(scale)
{
    trim(limbs_);
    negative_ = negative_ && !limbs_.empty();  // no negative zero
}

Decimal Decimal::from_int(std::int64_t value)
{
    // Through uint64 so that INT64_MIN has a magnitude too.
    std::uint64_t magnitude = value < 0 ? 0 - std::uint64_t(value) : std::uint64_t(value);
    Limbs limbs;
    for (; magnitude != 0; magnitude /= kBase)
        limbs.push_back(std::uint32_t(magnitude % kBase));
    return Decimal(value < 0, std::move(limbs), 0);
}

Decimal Decimal::parse(std::string_view text)
{
    DecimalText parts = split(text);
    // value = digits * 10^(exponent - fraction_digits); the scale is what is
    // left of the fraction after the exponent, as Postgres does ("1.50e1" = 15.0).
    int shift = parts.exponent - parts.fraction_digits;
    int scale = shift < 0 ? -shift : 0;
    Limbs limbs = scaled_up(limbs_of_digits(parts.digits), shift > 0 ? shift : 0);
    return Decimal(parts.negative, std::move(limbs), scale);
}

std::string Decimal::to_string() const
{
    std::string digits = digits_of_limbs(limbs_);
    if (scale_ > 0) {
        if (digits.size() <= std::size_t(scale_))
            digits.insert(0, std::size_t(scale_) + 1 - digits.size(), '0');
        digits.insert(digits.size() - std::size_t(scale_), 1, '.');
    }
    return negative_ ? "-" + digits : digits;
}

bool Decimal::is_integer() const
{
    std::size_t whole = std::size_t(scale_ / kBaseDigits);
    for (std::size_t i = 0; i < whole && i < limbs_.size(); ++i)
        if (limbs_[i] != 0)
            return false;
    return whole >= limbs_.size() || limbs_[whole] % kPow10[scale_ % kBaseDigits] == 0;
}

int Decimal::compare(const Decimal& other) const
{
    if (negative_ != other.negative_)
        return negative_ ? -1 : 1;
    int scale = std::max(scale_, other.scale_);
    int by_magnitude = scale_ == other.scale_  // the common case needs no copies
                           ? compare_magnitude(limbs_, other.limbs_)
                           : compare_magnitude(scaled_up(limbs_, scale - scale_),
                                               scaled_up(other.limbs_, scale - other.scale_));
    return negative_ ? -by_magnitude : by_magnitude;
}

Decimal Decimal::operator-() const { return Decimal(!negative_, limbs_, scale_); }

Decimal Decimal::abs() const { return Decimal(false, limbs_, scale_); }

Decimal operator+(const Decimal& a, const Decimal& b)
{
    int scale = std::max(a.scale_, b.scale_);
    Limbs x = scaled_up(a.limbs_, scale - a.scale_);
    Limbs y = scaled_up(b.limbs_, scale - b.scale_);
    if (a.negative_ == b.negative_)
        return Decimal(a.negative_, add_magnitude(x, y), scale);
    // Opposite signs: the larger magnitude decides the sign.
    if (compare_magnitude(x, y) >= 0)
        return Decimal(a.negative_, subtract_magnitude(x, y), scale);
    return Decimal(b.negative_, subtract_magnitude(y, x), scale);
}

Decimal operator-(const Decimal& a, const Decimal& b) { return a + (-b); }

Decimal operator*(const Decimal& a, const Decimal& b)
{
    return Decimal(a.negative_ != b.negative_, multiply_magnitude(a.limbs_, b.limbs_),
                   a.scale_ + b.scale_);
}

Decimal Decimal::ceil_div(const Decimal& divisor) const
{
    if (divisor.is_zero() || divisor.is_negative())
        throw Error(sqlstate::kInvalidParameter,
                    "divisor " + divisor.to_string() + " must be greater than 0");
    // (a / 10^sa) / (b / 10^sb) = (a * 10^sb) / (b * 10^sa), both integers.
    Division d = divide_magnitude(scaled_up(limbs_, divisor.scale_),
                                  scaled_up(divisor.limbs_, scale_));
    // The quotient is truncated toward zero: ceil rounds a positive inexact
    // quotient up, and a negative one is already ceil when truncated.
    if (!negative_ && !d.exact)
        d.quotient = add_magnitude(d.quotient, Limbs{1});
    return Decimal(negative_, std::move(d.quotient), 0);
}

Decimal Decimal::shifted(int places) const
{
    if (places > kMaxScale || places < -kMaxScale || scale_ - places > kMaxScale)
        throw Error(sqlstate::kInvalidParameter,
                    "decimal shift by " + std::to_string(places) + " places is out of range");
    if (places <= scale_)
        return Decimal(negative_, limbs_, scale_ - places);
    return Decimal(negative_, scaled_up(limbs_, places - scale_), 0);
}

Decimal Decimal::rounded(int exponent) const
{
    if (exponent < 0 || exponent > kMaxScale)
        throw Error(sqlstate::kInvalidParameter,
                    "rounding exponent " + std::to_string(exponent) + " is out of range");
    if (exponent >= scale_)
        return Decimal(negative_, scaled_up(limbs_, exponent - scale_), exponent);
    // Drop all but the first of the discarded digits, then round on that one:
    // half away from zero is half up on the magnitude.
    Limbs kept = scaled_down(limbs_, scale_ - exponent - 1);
    std::uint32_t first_dropped = divide_small(kept, 10);
    if (first_dropped >= 5)
        kept = add_magnitude(kept, Limbs{1});
    return Decimal(negative_, std::move(kept), exponent);
}

Decimal Decimal::divided_by_small(std::uint32_t divisor, int scale, bool* exact) const
{
    if (divisor == 0 || divisor >= kBase)
        throw Error(sqlstate::kInvalidParameter,
                    "small divisor " + std::to_string(divisor) + " is out of range");
    if (scale < scale_ || scale > kMaxScale)
        throw Error(sqlstate::kInvalidParameter,
                    "division scale " + std::to_string(scale) + " is out of range");
    // this = m * 10^-s, so this / d at scale S is round(m * 10^(S - s) / d) * 10^-S.
    Limbs quotient = scaled_up(limbs_, scale - scale_);
    std::uint32_t rest = divide_small(quotient, divisor);
    if (exact)
        *exact = rest == 0;
    // Half away from zero is half up on the magnitude: 2 * rest >= divisor.
    if (std::uint64_t(rest) * 2 >= divisor)
        quotient = add_magnitude(quotient, Limbs{1});
    return Decimal(negative_, std::move(quotient), scale);
}

Decimal Decimal::without_trailing_zeros(int min_scale) const
{
    if (min_scale < 0)
        min_scale = 0;
    Limbs limbs = limbs_;
    int scale = scale_;
    while (scale > min_scale) {
        Limbs next = limbs;
        if (divide_small(next, 10) != 0)
            break;
        limbs = std::move(next);
        --scale;
    }
    return Decimal(negative_, std::move(limbs), scale);
}

void Decimal::append_to(std::string& out) const
{
    out.push_back(negative_ ? '\1' : '\0');
    append_varint(out, std::uint32_t(scale_));
    append_varint(out, std::uint32_t(limbs_.size()));
    for (std::uint32_t limb : limbs_)
        append_varint(out, limb);
}

Decimal Decimal::read_from(std::string_view& in)
{
    std::uint32_t sign = read_varint(in, 1);
    auto scale = int(read_varint(in, kMaxScale));
    // Every limb takes at least one byte: a count beyond the bytes left is
    // corrupt, and checking it first keeps a hostile count from allocating.
    std::uint32_t count = read_varint(in, std::uint32_t(in.size()));
    Limbs limbs(count);
    for (auto& limb : limbs)
        limb = read_varint(in, kBase - 1);
    if (count != 0 && limbs.back() == 0)
        throw_bad_binary("not canonical (leading zero limb)");
    if (sign == 1 && count == 0)
        throw_bad_binary("not canonical (negative zero)");
    return Decimal(sign == 1, std::move(limbs), scale);
}

}  // namespace metering::core
