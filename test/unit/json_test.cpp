// Unit tests of src/core/json: the strict JSON reader behind parse_pricing.
#include <gtest/gtest.h>

#include <string>
#include <string_view>

#include "core/errors.hpp"
#include "core/json.hpp"
#include "error_assertions.hpp"

namespace {

namespace json = metering::core::json;
namespace sqlstate = metering::core::sqlstate;
using metering_test::contains;
using metering_test::error_of;

TEST(Json, Literals)
{
    EXPECT_EQ(json::parse("null").kind, json::Kind::null);
    json::Value t = json::parse(" true ");
    EXPECT_EQ(t.kind, json::Kind::boolean);
    EXPECT_TRUE(t.boolean);
    json::Value f = json::parse("\tfalse\r\n");
    EXPECT_EQ(f.kind, json::Kind::boolean);
    EXPECT_FALSE(f.boolean);
}

TEST(Json, NumbersKeepTheirText)
{
    for (std::string_view text : {"0", "-0", "0.10", "100", "-12.5", "1e3", "2.5E-2", "1E+2",
                                  "123456789012345678901234567890.000000000000000000001"}) {
        json::Value v = json::parse(text);
        EXPECT_EQ(v.kind, json::Kind::number) << text;
        EXPECT_EQ(v.text, text);
    }
}

TEST(Json, RejectsNumbersOutsideTheGrammar)
{
    for (std::string_view text : {"01", "+1", ".5", "5.", "1e", "1e+", "-", "NaN", "Infinity",
                                  "-Infinity", "0x10", "1.2.3", "--1"}) {
        EXPECT_SQLSTATE(sqlstate::kInvalidParameter, json::parse(text)) << text;
    }
}

TEST(Json, StringsWithEscapes)
{
    EXPECT_EQ(json::parse(R"("abc")").text, "abc");
    EXPECT_EQ(json::parse(R"("a\"b\\c\/d")").text, "a\"b\\c/d");
    EXPECT_EQ(json::parse(R"("\b\f\n\r\t")").text, "\b\f\n\r\t");
    EXPECT_EQ(json::parse(R"("\u0041\u00e9\u20AC")").text, "A\xC3\xA9\xE2\x82\xAC");  // A é €
    EXPECT_EQ(json::parse(R"("\ud83d\ude00")").text, "\xF0\x9F\x98\x80");             // U+1F600
    EXPECT_EQ(json::parse("\"h\xC3\xA9\"").text, "h\xC3\xA9");  // raw UTF-8 passes through
    EXPECT_EQ(json::parse(R"("")").text, "");
}

TEST(Json, RejectsBadStrings)
{
    for (std::string_view text : {R"("abc)", R"("\x")", R"("\u12")", R"("\u12G4")",
                                  R"("\ud83d")", R"("\ud83d\u0041")", R"("\ude00")", "\"a\nb\"",
                                  "\"a\tb\"", R"('single')", R"("\)"}) {
        EXPECT_SQLSTATE(sqlstate::kInvalidParameter, json::parse(text)) << text;
    }
}

TEST(Json, ArraysAndObjects)
{
    json::Value v = json::parse(R"({"model": "graduated", "tiers": [{"up_to": 100, "unit_price": 0.10},
        {"up_to": null, "unit_price": "0.05"}], "empty": {}, "none": []})");
    ASSERT_EQ(v.kind, json::Kind::object);
    ASSERT_EQ(v.keys.size(), 4u);
    EXPECT_EQ(v.keys[0], "model");  // order of appearance
    EXPECT_EQ(v.find("model")->text, "graduated");
    EXPECT_EQ(v.find("missing"), nullptr);
    const json::Value& tiers = *v.find("tiers");
    ASSERT_EQ(tiers.kind, json::Kind::array);
    ASSERT_EQ(tiers.items.size(), 2u);
    EXPECT_EQ(tiers.items[0].find("unit_price")->text, "0.10");
    EXPECT_EQ(tiers.items[1].find("up_to")->kind, json::Kind::null);
    EXPECT_EQ(tiers.items[1].find("unit_price")->kind, json::Kind::string);
    EXPECT_TRUE(v.find("empty")->keys.empty());
    EXPECT_TRUE(v.find("none")->items.empty());
}

TEST(Json, RejectsMalformedStructure)
{
    for (std::string_view text : {"", "   ", "[1,]", "[1 2]", "{\"a\":1,}", "{\"a\" 1}", "{a:1}",
                                  "{\"a\":}", "[", "{", "]", "[1]]", "{} {}", "tru", "nul",
                                  "True", "/* c */ 1", "1 // c", "{\"a\":1", "[\"a\""}) {
        EXPECT_SQLSTATE(sqlstate::kInvalidParameter, json::parse(text)) << "\"" << text << "\"";
    }
}

TEST(Json, RejectsDuplicateKeys)
{
    auto e = error_of([] { json::parse(R"({"rate": 1, "model": "x", "rate": 2})"); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "duplicate key \"rate\""));
    // The same key in different objects is fine.
    EXPECT_NO_THROW(json::parse(R"([{"a": 1}, {"a": 2}])"));
}

TEST(Json, MessagesGiveTheOffset)
{
    auto e = error_of([] { json::parse(R"({"a": 1 x})"); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "invalid JSON at offset 8")) << e->message();
}

TEST(Json, LimitsNesting)
{
    std::string ok = std::string(json::kMaxDepth, '[') + std::string(json::kMaxDepth, ']');
    EXPECT_NO_THROW(json::parse(ok));
    std::string deep = std::string(json::kMaxDepth + 1, '[') + std::string(json::kMaxDepth + 1, ']');
    auto e = error_of([&] { json::parse(deep); });
    ASSERT_TRUE(e.has_value());
    EXPECT_TRUE(contains(e->message(), "nested deeper than"));
    // Far deeper than any stack would allow if it recursed without a limit.
    EXPECT_SQLSTATE(sqlstate::kInvalidParameter, json::parse(std::string(1000000, '[')));
}

TEST(Json, Describe)
{
    EXPECT_EQ(json::describe(json::parse("null")), "null");
    EXPECT_EQ(json::describe(json::parse("true")), "true");
    EXPECT_EQ(json::describe(json::parse("1.50")), "1.50");
    EXPECT_EQ(json::describe(json::parse(R"("abc")")), "\"abc\"");
    EXPECT_EQ(json::describe(json::parse("[1]")), "[...]");
    EXPECT_EQ(json::describe(json::parse("{}")), "{...}");
    EXPECT_EQ(json::describe(json::parse(std::string(500, '9'))).size(), 83u);  // 80 + "..."
    EXPECT_EQ(json::kind_name(json::Kind::array), "an array");
    EXPECT_EQ(json::kind_name(json::Kind::object), "an object");
}

}  // namespace
