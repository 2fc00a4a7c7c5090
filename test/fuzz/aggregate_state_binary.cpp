// Binary input of metering.aggregate_state (aggregate_state_recv): arbitrary
// bytes are refused with 22P03 or accepted; an accepted state round-trips
// and survives combine and final (state_checks.hpp).
#include <cstddef>
#include <cstdint>
#include <cstring>
#include <memory_resource>
#include <string_view>

#include "core/aggregates.hpp"
#include "fuzz_check.hpp"
#include "state_checks.hpp"

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view bytes(reinterpret_cast<const char*>(data), size);
    try {
        metering::core::agg::validate_state(bytes, std::pmr::get_default_resource());
    } catch (const metering::core::Error& e) {
        FUZZ_CHECK(std::strcmp(e.sqlstate(), metering::core::sqlstate::kInvalidBinaryRepresentation) == 0);
        return 0;
    }
    metering_fuzz::check_accepted_state(bytes);
    return 0;
}
