// Idempotency: is a repeated (customer_id, idempotency_key) the same event?
#pragma once

#include <optional>
#include <string_view>

namespace metering::core {

// Field-by-field equality of a new event and the stored one, as the bridge
// compares them (numeric and jsonb equality, not text).
struct PayloadComparison {
    bool meter_equal = true;
    bool value_equal = true;
    bool occurred_at_equal = true;
    bool due_at_equal = true;
    bool properties_equal = true;
    bool op_equal = true;
    // Both calls let occurred_at default to now() (and due_at to occurred_at):
    // a retry in a later transaction then differs only in the clock.
    bool stored_time_defaulted = false;
    bool new_time_defaulted = false;
};

// The first field that differs, or nullopt when the payloads are the same.
std::optional<std::string_view> first_difference(const PayloadComparison& cmp);

// Throws kIdempotencyConflict naming the differing field.
void require_same_payload(std::string_view customer_id, std::string_view key,
                          const PayloadComparison& cmp);

}  // namespace metering::core
