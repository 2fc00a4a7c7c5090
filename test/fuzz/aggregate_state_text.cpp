// Text input of metering.aggregate_state (aggregate_state_in): any text is
// refused with 22P02 or decoded from \x and hex digits into a state that
// the binary checks accept (state_checks.hpp), and that prints back as the
// same text up to the case of the digits.
#include <cctype>
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <string>
#include <string_view>

#include "core/aggregates.hpp"
#include "fuzz_check.hpp"
#include "state_checks.hpp"

namespace {

// As metering_aggregate_state_out prints a state.
std::string text_of(std::string_view bytes)
{
    static const char digits[] = "0123456789abcdef";
    std::string out = "\\x";
    for (unsigned char byte : bytes) {
        out += digits[byte >> 4];
        out += digits[byte & 0x0F];
    }
    return out;
}

std::string lower(std::string_view text)
{
    std::string out(text);
    for (char& c : out)
        c = char(std::tolower(static_cast<unsigned char>(c)));
    return out;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    // Postgres passes a C string: no NUL inside.
    std::string text(reinterpret_cast<const char*>(data), size);
    text = text.substr(0, text.find('\0'));
    std::string bytes;
    try {
        bytes = metering::core::agg::state_from_text(text, std::pmr::get_default_resource());
    } catch (const metering::core::Error& e) {
        FUZZ_CHECK(std::strcmp(e.sqlstate(), metering::core::sqlstate::kInvalidTextRepresentation) == 0);
        return 0;
    }
    FUZZ_CHECK(text_of(bytes) == lower(text));
    metering_fuzz::check_accepted_state(bytes);
    return 0;
}
