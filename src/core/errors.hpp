// Errors of the pure-C++ core. No Postgres header may be included here: the
// bridge (src/pg/guard.hpp) turns an Error into ereport(ERROR) with its SQLSTATE.
#pragma once

#include <exception>
#include <string>

namespace metering::core {

// SQLSTATEs of metering. Standard codes where one names the case exactly, a
// code of class MT (implementation-defined) otherwise; docs/errors.md lists them.
namespace sqlstate {
inline constexpr const char* kNullValue = "22004";          // null_value_not_allowed
inline constexpr const char* kInvalidParameter = "22023";   // invalid_parameter_value
inline constexpr const char* kDuplicateObject = "42710";    // duplicate_object
inline constexpr const char* kInsufficientPrivilege = "42501";  // insufficient_privilege
inline constexpr const char* kFeatureNotSupported = "0A000";
inline constexpr const char* kInvalidTextRepresentation = "22P02";
inline constexpr const char* kInvalidBinaryRepresentation = "22P03";
inline constexpr const char* kProgramLimitExceeded = "54000";
inline constexpr const char* kUnknownCustomer = "MT001";
inline constexpr const char* kUnknownMeter = "MT002";
inline constexpr const char* kNonFiniteValue = "MT003";
inline constexpr const char* kNegativeValue = "MT004";
inline constexpr const char* kTimestampInFuture = "MT005";
inline constexpr const char* kTimestampNotFinite = "MT006";
inline constexpr const char* kBadIdempotencyKey = "MT007";
inline constexpr const char* kPropertiesNotObject = "MT008";
inline constexpr const char* kMalformedPricing = "MT009";
inline constexpr const char* kUnknownCurrency = "MT010";
inline constexpr const char* kIdempotencyConflict = "MT011";
inline constexpr const char* kUnknownTimeZone = "MT012";
inline constexpr const char* kUnknownAggregation = "MT013";
inline constexpr const char* kBadIdentifier = "MT014";
inline constexpr const char* kBadBatch = "MT015";
inline constexpr const char* kCounterMisuse = "MT016";
inline constexpr const char* kImmutable = "MT017";
inline constexpr const char* kUnknownPlan = "MT018";
inline constexpr const char* kOverlappingSubscription = "MT019";  // raised in SQL (subscribe)
inline constexpr const char* kUnknownSubscription = "MT020";      // raised in SQL
inline constexpr const char* kBadExpression = "MT021";
}  // namespace sqlstate

// A billing-rule violation: SQLSTATE, a message naming field and value, and
// optional detail and hint, as ereport shows them.
class Error : public std::exception {
public:
    Error(const char* sqlstate, std::string message, std::string detail = {},
          std::string hint = {})
        : sqlstate_(sqlstate), message_(std::move(message)), detail_(std::move(detail)),
          hint_(std::move(hint)) {}

    const char* sqlstate() const noexcept { return sqlstate_; }
    const std::string& message() const noexcept { return message_; }
    const std::string& detail() const noexcept { return detail_; }
    const std::string& hint() const noexcept { return hint_; }
    const char* what() const noexcept override { return message_.c_str(); }

    // Prefix the message, e.g. with the ordinal of a batch element.
    Error prefixed(const std::string& prefix) const {
        return Error(sqlstate_, prefix + message_, detail_, hint_);
    }

private:
    const char* sqlstate_;
    std::string message_;
    std::string detail_;
    std::string hint_;
};

}  // namespace metering::core
