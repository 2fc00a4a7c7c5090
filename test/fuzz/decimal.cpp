// Decimal's two untrusted inputs: text (Decimal::parse, numeric text and
// JSON numbers in pricing rules) and its binary form (Decimal::read_from,
// inside every aggregate state). Accepted values round-trip through both
// forms; two values given as "a|b" also check the arithmetic against
// itself: subtraction undoes addition, ceil_div, divided_by_small and
// rounded land within their bounds.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

#include "core/decimal.hpp"
#include "fuzz_check.hpp"

namespace {

using metering::core::Decimal;

std::optional<Decimal> parsed(std::string_view text)
{
    std::optional<Decimal> out;
    metering_fuzz::accepted([&] { out = Decimal::parse(text); });
    return out;
}

void check_round_trips(const Decimal& d)
{
    const std::string text = d.to_string();
    // The binary form admits scales up to kMaxScale, beyond what text may
    // spell (kMaxDigits digits); parse must read back whatever fits.
    if (text.size() <= std::size_t(Decimal::kMaxDigits)) {
        const Decimal back = Decimal::parse(text);
        FUZZ_CHECK(back == d && back.scale() == d.scale() && back.to_string() == text);
    }

    std::string binary;
    d.append_to(binary);
    std::string_view in = binary;
    const Decimal read = Decimal::read_from(in);
    FUZZ_CHECK(in.empty() && read.to_string() == text);
}

void check_binary(std::string_view bytes)
{
    std::string_view in = bytes;
    std::optional<Decimal> d;
    if (!metering_fuzz::accepted([&] { d = Decimal::read_from(in); }))
        return;
    // Only the canonical form is accepted: writing gives the bytes read.
    std::string written;
    d->append_to(written);
    FUZZ_CHECK(written == bytes.substr(0, bytes.size() - in.size()));
    check_round_trips(*d);
}

void check_arithmetic(const Decimal& a, const Decimal& b)
{
    FUZZ_CHECK(a + b - b == a && (a + b).scale() == std::max(a.scale(), b.scale()));
    FUZZ_CHECK(a * b == b * a && (a * b).scale() == a.scale() + b.scale());
    FUZZ_CHECK(a.compare(b) == -b.compare(a));
    if (b > Decimal()) {
        // ceil(a / b): the least integer q with q * b >= a.
        const Decimal q = a.ceil_div(b);
        FUZZ_CHECK(q.is_integer() && q.scale() == 0);
        FUZZ_CHECK(q * b >= a && (q - Decimal::from_int(1)) * b < a);
    }
    if (b.is_integer() && b > Decimal() && b < Decimal::from_int(1000000000)) {
        const auto divisor = std::uint32_t(std::stoul(b.to_string()));
        const int scale = a.scale() + 3;
        bool exact = false;
        const Decimal q = a.divided_by_small(divisor, scale, &exact);
        // |q * b - a| <= half a unit of the last digit, times b; zero when exact.
        const Decimal error = (q * b - a).abs();
        FUZZ_CHECK(error * Decimal::from_int(2) <= b.shifted(-scale));
        FUZZ_CHECK(exact == error.is_zero());
    }
    for (int exponent = 0; exponent <= 3; ++exponent) {
        const Decimal r = a.rounded(exponent);
        FUZZ_CHECK(r.scale() == exponent);
        FUZZ_CHECK((r - a).abs() * Decimal::from_int(2) <= Decimal::from_int(1).shifted(-exponent));
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view input(reinterpret_cast<const char*>(data), size);
    check_binary(input);
    if (auto d = parsed(input)) {
        check_round_trips(*d);
        check_round_trips(d->without_trailing_zeros());
        FUZZ_CHECK(d->without_trailing_zeros() == *d);
        check_arithmetic(*d, *d);
    }
    std::size_t bar = input.find('|');
    if (bar == std::string_view::npos)
        return 0;
    auto a = parsed(input.substr(0, bar));
    auto b = parsed(input.substr(bar + 1));
    if (a && b) {
        check_arithmetic(*a, *b);
        check_arithmetic(*b, *a);
    }
    return 0;
}
