// The core's JSON reader (core/json.hpp), which reads pricing rules: any
// text is refused with core::Error or parsed; a parsed document written out
// again (canonically, below) parses to the same tree, stays within the
// nesting limit, and each of its numbers is a Decimal unless beyond
// Decimal's digit or exponent limits.
#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <cstdio>
#include <string>
#include <string_view>

#include "core/decimal.hpp"
#include "core/json.hpp"
#include "fuzz_check.hpp"

namespace {

namespace core = metering::core;
namespace json = metering::core::json;

void write_string(std::string& out, std::string_view s)
{
    out += '"';
    for (unsigned char c : s) {
        if (c == '"' || c == '\\') {
            out += '\\';
            out += char(c);
        } else if (c < 0x20) {
            char escaped[7];
            std::snprintf(escaped, sizeof escaped, "\\u%04x", c);
            out += escaped;
        } else {
            out += char(c);
        }
    }
    out += '"';
}

// Canonical text: no whitespace, keys in order of appearance.
void write(std::string& out, const json::Value& v)
{
    switch (v.kind) {
    case json::Kind::null: out += "null"; return;
    case json::Kind::boolean: out += v.boolean ? "true" : "false"; return;
    case json::Kind::number: out += v.text; return;
    case json::Kind::string: write_string(out, v.text); return;
    case json::Kind::array:
        out += '[';
        for (std::size_t i = 0; i < v.items.size(); ++i) {
            if (i > 0)
                out += ',';
            write(out, v.items[i]);
        }
        out += ']';
        return;
    case json::Kind::object:
        FUZZ_CHECK(v.keys.size() == v.values.size());
        out += '{';
        for (std::size_t i = 0; i < v.keys.size(); ++i) {
            if (i > 0)
                out += ',';
            write_string(out, v.keys[i]);
            out += ':';
            write(out, v.values[i]);
        }
        out += '}';
        return;
    }
}

int depth(const json::Value& v)
{
    int deepest = 0;
    for (const json::Value& item : v.items)
        deepest = std::max(deepest, depth(item));
    for (const json::Value& value : v.values)
        deepest = std::max(deepest, depth(value));
    bool container = v.kind == json::Kind::array || v.kind == json::Kind::object;
    return deepest + (container ? 1 : 0);
}

// A JSON number is a decimal number; Decimal may refuse only its size.
void check_numbers(const json::Value& v)
{
    if (v.kind == json::Kind::number) {
        try {
            core::Decimal::parse(v.text);
        } catch (const core::Error& e) {
            FUZZ_CHECK(e.message().find("digits or an exponent beyond") != std::string::npos);
        }
    }
    for (const json::Value& item : v.items)
        check_numbers(item);
    for (std::size_t i = 0; i < v.values.size(); ++i) {
        FUZZ_CHECK(v.find(v.keys[i]) == &v.values[i]);  // keys are unique
        check_numbers(v.values[i]);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size)
{
    std::string_view text(reinterpret_cast<const char*>(data), size);
    json::Value document;
    if (!metering_fuzz::accepted([&] { document = json::parse(text); }))
        return 0;
    FUZZ_CHECK(depth(document) <= json::kMaxDepth);
    check_numbers(document);
    json::describe(document);

    std::string canonical;
    write(canonical, document);
    json::Value again = json::parse(canonical);  // must not throw
    std::string canonical_again;
    write(canonical_again, again);
    FUZZ_CHECK(canonical_again == canonical);
    return 0;
}
