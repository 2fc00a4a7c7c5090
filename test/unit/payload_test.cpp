// Unit tests of src/core/payload: is a repeated idempotency key the same event?
#include <gtest/gtest.h>

#include "error_assertions.hpp"

#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/errors.hpp"
#include "core/payload.hpp"

namespace {

using metering::core::Error;
using metering::core::PayloadComparison;
using metering::core::first_difference;
using metering::core::require_same_payload;

using metering_test::contains;
using metering_test::error_of;

std::optional<std::string> diff(const PayloadComparison& cmp)
{
    auto d = first_difference(cmp);
    if (!d)
        return std::nullopt;
    return std::string(*d);
}

// Each field of the comparison with the name first_difference gives it, in
// the order first_difference checks them.
const std::vector<std::pair<bool PayloadComparison::*, std::string>> kFields = {
    {&PayloadComparison::meter_equal, "meter"},
    {&PayloadComparison::op_equal, "operation"},
    {&PayloadComparison::value_equal, "value"},
    {&PayloadComparison::occurred_at_equal, "occurred_at"},
    {&PayloadComparison::due_at_equal, "due_at"},
    {&PayloadComparison::properties_equal, "properties"},
};

TEST(FirstDifference, AllEqualIsNullopt)
{
    PayloadComparison cmp;
    EXPECT_FALSE(first_difference(cmp).has_value());
    cmp.stored_time_defaulted = true;
    EXPECT_FALSE(first_difference(cmp).has_value());
    cmp.new_time_defaulted = true;
    EXPECT_FALSE(first_difference(cmp).has_value());
}

TEST(FirstDifference, EachDifferingFieldIsNamed)
{
    for (const auto& [member, name] : kFields) {
        PayloadComparison cmp;
        cmp.*member = false;
        EXPECT_EQ(diff(cmp), std::optional<std::string>(name)) << name;
    }
}

TEST(FirstDifference, BothTimesDefaultedIgnoresTheClock)
{
    PayloadComparison cmp;
    cmp.occurred_at_equal = false;
    cmp.due_at_equal = false;
    cmp.stored_time_defaulted = true;
    cmp.new_time_defaulted = true;
    EXPECT_FALSE(first_difference(cmp).has_value());

    // ...but not the other fields.
    cmp.properties_equal = false;
    EXPECT_EQ(diff(cmp), std::optional<std::string>("properties"));
    cmp.properties_equal = true;
    cmp.value_equal = false;
    EXPECT_EQ(diff(cmp), std::optional<std::string>("value"));
}

TEST(FirstDifference, OnlyOneTimeDefaultedReportsOccurredAt)
{
    for (bool stored : {true, false}) {
        PayloadComparison cmp;
        cmp.occurred_at_equal = false;
        cmp.due_at_equal = false;
        cmp.stored_time_defaulted = stored;
        cmp.new_time_defaulted = !stored;
        EXPECT_EQ(diff(cmp), std::optional<std::string>("occurred_at")) << "stored defaulted " << stored;
    }
    PayloadComparison neither;
    neither.occurred_at_equal = false;
    EXPECT_EQ(diff(neither), std::optional<std::string>("occurred_at"));
    PayloadComparison due_only;
    due_only.due_at_equal = false;
    due_only.new_time_defaulted = true;
    EXPECT_EQ(diff(due_only), std::optional<std::string>("due_at"));
}

TEST(FirstDifference, ValueBeatsOccurredAt)
{
    PayloadComparison cmp;
    cmp.value_equal = false;
    cmp.occurred_at_equal = false;
    EXPECT_EQ(diff(cmp), std::optional<std::string>("value"));
}

TEST(FirstDifference, OrderIsMeterOperationValueOccurredAtDueAtProperties)
{
    // With fields i..end all differing, field i is reported.
    for (std::size_t i = 0; i < kFields.size(); ++i) {
        PayloadComparison cmp;
        for (std::size_t j = i; j < kFields.size(); ++j)
            cmp.*kFields[j].first = false;
        EXPECT_EQ(diff(cmp), std::optional<std::string>(kFields[i].second)) << "from " << i;
    }
}

TEST(RequireSamePayload, SamePayloadDoesNotThrow)
{
    PayloadComparison cmp;
    EXPECT_NO_THROW(require_same_payload("cust_1", "req-1", cmp));
    cmp.occurred_at_equal = false;
    cmp.due_at_equal = false;
    cmp.stored_time_defaulted = true;
    cmp.new_time_defaulted = true;
    EXPECT_NO_THROW(require_same_payload("cust_1", "req-1", cmp));
}

TEST(RequireSamePayload, ConflictIsMT011NamingKeyCustomerAndField)
{
    for (const auto& [member, name] : kFields) {
        PayloadComparison cmp;
        cmp.*member = false;
        EXPECT_SQLSTATE("MT011", require_same_payload("cust_1", "req-1", cmp));
        auto e = error_of([&] { require_same_payload("cust_1", "req-1", cmp); });
        ASSERT_TRUE(e.has_value()) << name;
        EXPECT_STREQ(e->sqlstate(), "MT011");
        EXPECT_TRUE(contains(e->message(), "\"req-1\""));
        EXPECT_TRUE(contains(e->message(), "\"cust_1\""));
        EXPECT_TRUE(contains(e->detail(), name));
        EXPECT_FALSE(e->hint().empty());
    }
}

}  // namespace
