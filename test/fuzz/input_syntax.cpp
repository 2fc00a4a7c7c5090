// The checks ingest runs on text from JSON before numeric_in and
// timestamptz_in see it (core/input_syntax.hpp). Any text: no crash, and
//   - every text Decimal::parse reads (a subset of numeric's syntax, within
//     numeric's range) is numeric text too;
//   - blanks around a text do not change either answer (timestamps: while
//     the text stays within its 64 characters);
//   - an accepted timestamp has at most 64 characters.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "core/decimal.hpp"
#include "core/input_syntax.hpp"
#include "fuzz_check.hpp"

namespace {

namespace core = metering::core;

void check_numeric(std::string_view text)
{
    const bool numeric = core::is_numeric_text(text);
    if (metering_fuzz::accepted([&] { core::Decimal::parse(text); }))
        FUZZ_CHECK(numeric);
    FUZZ_CHECK(core::is_numeric_text(" \t" + std::string(text) + "\n ") == numeric);
}

void check_timestamp(std::string_view text)
{
    const bool timestamp = core::is_iso_timestamp_text(text);
    FUZZ_CHECK(!timestamp || text.size() <= 64);
    if (text.size() + 2 <= 64)
        FUZZ_CHECK(core::is_iso_timestamp_text(" " + std::string(text) + "\t") == timestamp);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    check_numeric(text);
    check_timestamp(text);
    return 0;
}
