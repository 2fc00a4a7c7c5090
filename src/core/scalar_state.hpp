// count, sum, max and min of one invoice line (metering._line_quantity, the
// set-based plan of metering.invoice_lines). Pure C++ (no Postgres header).
//
// Exact, and fast for the values events carry: a value that fits in 18
// digits with at most 18 fraction digits (FixedValue) is added or compared
// as a 128-bit integer of units of 10^-scale; a sum that outgrows 128 bits,
// or any other value, goes on as a Decimal (kept in its binary form, since a
// state lives in Postgres memory and is never destroyed). Same results as
// Postgres's count(*), sum(numeric), max(numeric) and min(numeric): the sum
// has the greatest scale of its values; max and min break ties of equal
// values by the greater scale (1.50 over 1.5), so that the scale shown does
// not depend on the order of the rows.
#pragma once

#include <cstdint>
#include <memory_resource>
#include <optional>
#include <string>
#include <string_view>

#include "core/decimal.hpp"

namespace metering::core::agg {

// mantissa x 10^-scale, |mantissa| < 10^18, 0 <= scale <= 18.
struct FixedValue {
    std::int64_t mantissa = 0;
    int scale = 0;
};

inline constexpr int kMaxFixedScale = 18;

// The FixedValue of sign, base-10000 digits (most significant first) and
// weight (the power of 10000 of the first digit), at display scale dscale, as
// Postgres stores a numeric; nullopt when it does not fit (or a digit is out
// of range).
std::optional<FixedValue> fixed_from_base10000(bool negative, int weight, int dscale,
                                               const std::int16_t* digits, int ndigits);

Decimal to_decimal(FixedValue value);

enum class ScalarKind : std::uint8_t { count = 1, sum = 2, max = 3, min = 4 };

class ScalarState {
public:
    explicit ScalarState(ScalarKind kind,
                         std::pmr::memory_resource* memory = std::pmr::get_default_resource());

    ScalarKind kind() const { return kind_; }
    std::uint64_t rows() const { return rows_; }

    void add_row() { ++rows_; }  // count
    void add(FixedValue value);  // sum, max, min
    void add(const Decimal& value);
    void merge(const ScalarState& other);

    // count: the rows; sum, max, min: nullopt without a value.
    std::optional<Decimal> result() const;

    // kind byte, rows (8 bytes LE), a flag byte (1: a value follows), the value
    // (Decimal binary form). parse() refuses anything else (22P03).
    std::string serialized() const;
    void parse(std::string_view bytes);

private:
    void take(const Decimal& value);  // max/min: the new best
    Decimal current() const;          // the value held (when has_value_)
    void set_wide(const Decimal& value);
    bool wins(int cmp, int scale) const;

    ScalarKind kind_;
    std::uint64_t rows_ = 0;
    bool has_value_ = false;
    bool wide_ = false;  // the value is in wide_value_, else in units()/scale_
    // The value x 10^scale_, a 128-bit integer kept as bytes: a state lives in
    // memory Postgres aligns to 8 bytes, and __int128 members want 16.
    unsigned char units_[16] = {};
    __int128 units() const;
    void set_units(__int128 units);
    int scale_ = 0;  // of the value held, wide or not
    std::pmr::string wide_value_;  // Decimal binary form
};

}  // namespace metering::core::agg
