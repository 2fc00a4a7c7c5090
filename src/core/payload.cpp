#include "core/payload.hpp"

#include <string>

#include "core/errors.hpp"
#include "core/validation.hpp"

namespace metering::core {

std::optional<std::string_view> first_difference(const PayloadComparison& cmp)
{
    const bool clock_only = cmp.stored_time_defaulted && cmp.new_time_defaulted;
    if (!cmp.meter_equal)
        return "meter";
    if (!cmp.op_equal)
        return "operation";
    if (!cmp.value_equal)
        return "value";
    if (!cmp.occurred_at_equal && !clock_only)
        return "occurred_at";
    if (!cmp.due_at_equal && !clock_only)
        return "due_at";
    if (!cmp.properties_equal)
        return "properties";
    return std::nullopt;
}

void require_same_payload(std::string_view customer_id, std::string_view key,
                          const PayloadComparison& cmp)
{
    auto field = first_difference(cmp);
    if (!field)
        return;
    throw Error(sqlstate::kIdempotencyConflict,
                "idempotency_key " + quoted(key) + " of customer_id " + quoted(customer_id) +
                    " was already used for another event",
                "The stored event differs in " + std::string(*field) + ".",
                "Use a new key for a new event; a retry must send the same payload.");
}

}  // namespace metering::core
