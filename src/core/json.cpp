#include "core/json.hpp"

#include <algorithm>
#include <cstddef>
#include <cstdint>
#include <utility>

#include "core/errors.hpp"
#include "core/validation.hpp"

namespace metering::core::json {

namespace {

class Reader {
public:
    explicit Reader(std::string_view text) : text_(text) {}

    Value document()
    {
        Value value = parse_value();
        skip_whitespace();
        if (pos_ != text_.size())
            fail("unexpected text after the value");
        return value;
    }

private:
    std::string_view text_;
    std::size_t pos_ = 0;
    int depth_ = 0;

    [[noreturn]] void fail(const std::string& what) const
    {
        throw Error(sqlstate::kInvalidParameter,
                    "invalid JSON at offset " + std::to_string(pos_) + ": " + what);
    }

    bool at_end() const { return pos_ >= text_.size(); }
    char peek() const { return at_end() ? '\0' : text_[pos_]; }

    void skip_whitespace()
    {
        while (!at_end() && (peek() == ' ' || peek() == '\t' || peek() == '\n' || peek() == '\r'))
            ++pos_;
    }

    void expect(char c)
    {
        if (peek() != c || at_end())
            fail(std::string("expected '") + c + "'");
        ++pos_;
    }

    Value parse_value()
    {
        skip_whitespace();
        if (at_end())
            fail("unexpected end of text");
        switch (peek()) {
        case '{': return parse_object();
        case '[': return parse_array();
        case '"': return string_value(parse_string());
        case 't': return literal("true", Kind::boolean, true);
        case 'f': return literal("false", Kind::boolean, false);
        case 'n': return literal("null", Kind::null, false);
        default: break;
        }
        if (peek() == '-' || is_digit(peek()))
            return parse_number();
        fail(std::string("unexpected character '") + peek() + "'");
    }

    static bool is_digit(char c) { return c >= '0' && c <= '9'; }

    static Value string_value(std::string text)
    {
        Value v;
        v.kind = Kind::string;
        v.text = std::move(text);
        return v;
    }

    Value literal(std::string_view word, Kind kind, bool boolean)
    {
        if (text_.substr(pos_, word.size()) != word)
            fail("unexpected character '" + std::string(1, peek()) + "'");
        pos_ += word.size();
        Value v;
        v.kind = kind;
        v.boolean = boolean;
        return v;
    }

    // -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?, kept as text.
    Value parse_number()
    {
        std::size_t start = pos_;
        if (peek() == '-')
            ++pos_;
        if (peek() == '0')
            ++pos_;
        else
            digits("a digit");
        if (peek() == '.') {
            ++pos_;
            digits("a digit after '.'");
        }
        if (peek() == 'e' || peek() == 'E') {
            ++pos_;
            if (peek() == '+' || peek() == '-')
                ++pos_;
            digits("a digit in the exponent");
        }
        Value v;
        v.kind = Kind::number;
        v.text = std::string(text_.substr(start, pos_ - start));
        return v;
    }

    void digits(const char* what)
    {
        if (at_end() || !is_digit(peek()))
            fail(std::string("expected ") + what);
        while (!at_end() && is_digit(peek()))
            ++pos_;
    }

    void enter()
    {
        if (++depth_ > kMaxDepth)
            fail("nested deeper than " + std::to_string(kMaxDepth) + " levels");
        ++pos_;  // the opening bracket
        skip_whitespace();
    }

    Value parse_array()
    {
        enter();
        Value v;
        v.kind = Kind::array;
        if (peek() == ']') {
            ++pos_;
            --depth_;
            return v;
        }
        for (;;) {
            v.items.push_back(parse_value());
            skip_whitespace();
            if (peek() == ']' && !at_end())
                break;
            expect(',');
        }
        ++pos_;
        --depth_;
        return v;
    }

    Value parse_object()
    {
        enter();
        Value v;
        v.kind = Kind::object;
        if (peek() == '}') {
            ++pos_;
            --depth_;
            return v;
        }
        for (;;) {
            skip_whitespace();
            if (peek() != '"' || at_end())
                fail("expected a string key");
            v.keys.push_back(parse_string());
            skip_whitespace();
            expect(':');
            v.values.push_back(parse_value());
            skip_whitespace();
            if (peek() == '}' && !at_end())
                break;
            expect(',');
        }
        ++pos_;
        --depth_;
        reject_duplicate_keys(v.keys);
        return v;
    }

    // Sorted copy: O(n log n) even for an object with very many keys.
    void reject_duplicate_keys(const std::vector<std::string>& keys) const
    {
        std::vector<std::string_view> sorted(keys.begin(), keys.end());
        std::sort(sorted.begin(), sorted.end());
        auto dup = std::adjacent_find(sorted.begin(), sorted.end());
        if (dup != sorted.end())
            fail("duplicate key " + quoted(*dup));
    }

    std::string parse_string()
    {
        ++pos_;  // the opening quote
        std::string out;
        for (;;) {
            if (at_end())
                fail("unterminated string");
            char c = text_[pos_];
            if (c == '"')
                break;
            if (static_cast<unsigned char>(c) < 0x20)
                fail("control character in a string (escape it)");
            if (c == '\\')
                escape(out);
            else {
                out.push_back(c);
                ++pos_;
            }
        }
        ++pos_;  // the closing quote
        return out;
    }

    void escape(std::string& out)
    {
        ++pos_;  // the backslash
        char c = peek();
        if (at_end())
            fail("unterminated string");
        ++pos_;
        switch (c) {
        case '"': out.push_back('"'); return;
        case '\\': out.push_back('\\'); return;
        case '/': out.push_back('/'); return;
        case 'b': out.push_back('\b'); return;
        case 'f': out.push_back('\f'); return;
        case 'n': out.push_back('\n'); return;
        case 'r': out.push_back('\r'); return;
        case 't': out.push_back('\t'); return;
        case 'u': append_utf8(out, code_point()); return;
        default: --pos_; fail(std::string("invalid escape '\\") + c + "'");
        }
    }

    // After "\u": four hex digits, and for a high surrogate its low partner.
    std::uint32_t code_point()
    {
        std::uint32_t cp = hex4();
        if (cp >= 0xDC00 && cp <= 0xDFFF)
            fail("lone low surrogate in \\u escape");
        if (cp < 0xD800 || cp > 0xDBFF)
            return cp;
        if (text_.substr(pos_, 2) != "\\u")
            fail("high surrogate not followed by a low surrogate");
        pos_ += 2;
        std::uint32_t low = hex4();
        if (low < 0xDC00 || low > 0xDFFF)
            fail("high surrogate not followed by a low surrogate");
        return 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
    }

    std::uint32_t hex4()
    {
        std::uint32_t value = 0;
        for (int i = 0; i < 4; ++i, ++pos_) {
            char c = peek();
            int digit = c >= '0' && c <= '9'   ? c - '0'
                        : c >= 'a' && c <= 'f' ? c - 'a' + 10
                        : c >= 'A' && c <= 'F' ? c - 'A' + 10
                                               : -1;
            if (digit < 0 || at_end())
                fail("expected four hex digits after \\u");
            value = value * 16 + std::uint32_t(digit);
        }
        return value;
    }

    static void append_utf8(std::string& out, std::uint32_t cp)
    {
        if (cp < 0x80) {
            out.push_back(char(cp));
        } else if (cp < 0x800) {
            out.push_back(char(0xC0 | (cp >> 6)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        } else if (cp < 0x10000) {
            out.push_back(char(0xE0 | (cp >> 12)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        } else {
            out.push_back(char(0xF0 | (cp >> 18)));
            out.push_back(char(0x80 | ((cp >> 12) & 0x3F)));
            out.push_back(char(0x80 | ((cp >> 6) & 0x3F)));
            out.push_back(char(0x80 | (cp & 0x3F)));
        }
    }
};

}  // namespace

const Value* Value::find(std::string_view key) const
{
    for (std::size_t i = 0; i < keys.size(); ++i)
        if (keys[i] == key)
            return &values[i];
    return nullptr;
}

Value parse(std::string_view text) { return Reader(text).document(); }

std::string_view kind_name(Kind kind)
{
    switch (kind) {
    case Kind::null: return "null";
    case Kind::boolean: return "a boolean";
    case Kind::number: return "a number";
    case Kind::string: return "a string";
    case Kind::array: return "an array";
    case Kind::object: return "an object";
    }
    return "a JSON value";
}

std::string describe(const Value& value)
{
    switch (value.kind) {
    case Kind::null: return "null";
    case Kind::boolean: return value.boolean ? "true" : "false";
    case Kind::number:  // a hostile number may have thousands of digits
        return value.text.size() <= 80 ? value.text : value.text.substr(0, 80) + "...";
    case Kind::string: return quoted(value.text);
    case Kind::array: return "[...]";
    case Kind::object: return "{...}";
    }
    return "?";
}

}  // namespace metering::core::json
