// A small strict JSON reader (RFC 8259) for the pure-C++ core, used to read
// pricing rules without Postgres. Numbers keep their text so that no digit is
// lost on the way to Decimal; nothing here converts through double.
#pragma once

#include <string>
#include <string_view>
#include <vector>

namespace metering::core::json {

enum class Kind { null, boolean, number, string, array, object };

struct Value {
    Kind kind = Kind::null;
    bool boolean = false;
    std::string text;               // a number as written, or a string's contents (UTF-8)
    std::vector<Value> items;       // array elements
    std::vector<std::string> keys;  // object keys in order of appearance, no duplicates
    std::vector<Value> values;      // object values, parallel to keys

    // The member named key of an object, or nullptr.
    const Value* find(std::string_view key) const;
};

// Nesting limit, so that hostile input cannot exhaust the stack.
inline constexpr int kMaxDepth = 64;

// Parses one JSON text: objects, arrays, strings with all escapes (\uXXXX
// with surrogate pairs to UTF-8), numbers, true, false, null, surrounded by
// optional whitespace. Strict: no trailing commas, comments, NaN, single
// quotes, control characters in strings, or duplicate keys in an object (the
// meaning would be ambiguous). Throws Error(kInvalidParameter) with the byte
// offset of the problem.
Value parse(std::string_view text);

// "null", "a boolean", "a number", "a string", "an array", "an object".
std::string_view kind_name(Kind kind);

// A short form of a value for messages: literals and numbers as written,
// strings quoted (shortened past 80 characters), arrays as [...] and objects as {...}.
std::string describe(const Value& value);

}  // namespace metering::core::json
