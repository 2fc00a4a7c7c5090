// Exact signed decimal numbers for money and quantities. Pure C++: the bridge
// converts Postgres numeric through its text form (numeric_out / numeric_in).
// Money is never a float, so there is no double anywhere in this type.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

namespace metering::core {

// value = (negative ? -1 : 1) * coefficient * 10^-scale, with scale >= 0 as in
// Postgres numeric: the scale is the number of fraction digits shown, so
// "1.50" keeps scale 2 and compares equal to "1.5". Zero is never negative.
class Decimal {
public:
    // Limits of parse(), so that hostile text cannot exhaust memory.
    static constexpr int kMaxDigits = 10000;    // digits of the mantissa
    static constexpr int kMaxExponent = 1000;   // |exponent| after e/E
    // Scale limit of read_from(), rounded() and shifted(): far above what
    // parse() makes, low enough that a corrupt state cannot ask for gigabytes.
    static constexpr int kMaxScale = 100000;

    Decimal() = default;  // zero, scale 0

    static Decimal from_int(std::int64_t value);
    // Postgres numeric text or a JSON number: optional surrounding blanks,
    // optional sign, digits with an optional fraction ("5", "5.", ".5"),
    // optional exponent ("1e3", "2.5E-2"). Throws Error(kInvalidParameter)
    // naming the text for NaN, Infinity, empty text, anything else, and
    // beyond kMaxDigits or kMaxExponent.
    static Decimal parse(std::string_view text);

    // numeric_out style: no exponent, the scale kept ("1.50", "0.025", "1000").
    std::string to_string() const;

    int scale() const { return scale_; }
    bool is_zero() const { return limbs_.empty(); }
    bool is_negative() const { return negative_; }
    bool is_integer() const;

    // -1, 0 or 1 by value; the scale does not matter (1.50 == 1.5).
    int compare(const Decimal& other) const;

    Decimal operator-() const;
    Decimal abs() const;
    // Exact. Scale of a + b and a - b: max(sa, sb); of a * b: sa + sb.
    friend Decimal operator+(const Decimal& a, const Decimal& b);
    friend Decimal operator-(const Decimal& a, const Decimal& b);
    friend Decimal operator*(const Decimal& a, const Decimal& b);
    Decimal& operator+=(const Decimal& other) { return *this = *this + other; }
    Decimal& operator-=(const Decimal& other) { return *this = *this - other; }

    // ceil(this / divisor) as an integer (scale 0); divisor must be > 0,
    // else Error(kInvalidParameter). Packages: ceil(quantity / package_size).
    Decimal ceil_div(const Decimal& divisor) const;

    // Exact this * 10^places; negative places divide (percent: shifted(-2)).
    // Scale of the result: max(0, scale - places).
    Decimal shifted(int places) const;

    // this / divisor rounded half away from zero to `scale` fraction digits,
    // for a divisor in 1..999999999 and scale >= this->scale() (<= kMaxScale);
    // else Error(kInvalidParameter). *exact (when given) tells whether no
    // digit was lost: 7 / 4 at scale 2 is 1.75, exact; 2 / 3 at scale 4 is
    // 0.6667, not exact.
    // Exact division by 3.6e9 (microseconds -> hours) is shifted(-8) then 36.
    Decimal divided_by_small(std::uint32_t divisor, int scale, bool* exact = nullptr) const;

    // The same value with trailing fraction zeros dropped, down to min_scale
    // fraction digits at least: "1.500" -> "1.5" (min 0), "2.000" -> "2.0" (min 1).
    Decimal without_trailing_zeros(int min_scale = 0) const;

    // Rounded half away from zero to `exponent` fraction digits (a currency's
    // minor-unit exponent, 0..kMaxScale); the result has exactly that scale:
    // rounded(2.5, 0) == 3, rounded(-2.5, 0) == -3, rounded(7, 2) == "7.00".
    Decimal rounded(int exponent) const;

    // Compact binary form for aggregate states: a sign byte, then LEB128
    // varints of scale, limb count and each base-1e9 limb (low limb first).
    void append_to(std::string& out) const;
    // Reads one value written by append_to and consumes its bytes. Throws
    // Error(kInvalidParameter) on truncated or non-canonical input.
    static Decimal read_from(std::string_view& in);

private:
    using Limbs = std::vector<std::uint32_t>;  // base 1e9, least significant first

    Decimal(bool negative, Limbs limbs, int scale);

    bool negative_ = false;
    Limbs limbs_;  // no leading (most significant) zero limbs; empty == 0
    int scale_ = 0;
};

inline bool operator==(const Decimal& a, const Decimal& b) { return a.compare(b) == 0; }
inline bool operator!=(const Decimal& a, const Decimal& b) { return a.compare(b) != 0; }
inline bool operator<(const Decimal& a, const Decimal& b) { return a.compare(b) < 0; }
inline bool operator<=(const Decimal& a, const Decimal& b) { return a.compare(b) <= 0; }
inline bool operator>(const Decimal& a, const Decimal& b) { return a.compare(b) > 0; }
inline bool operator>=(const Decimal& a, const Decimal& b) { return a.compare(b) >= 0; }

}  // namespace metering::core
