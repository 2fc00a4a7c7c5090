// Unit tests of src/core/fingerprint: the properties hash of idempotency keys.
#include <gtest/gtest.h>

#include <set>
#include <string>

#include "core/fingerprint.hpp"

namespace {

using metering::core::Fingerprint;

std::int64_t of(std::initializer_list<std::pair<char, std::string>> tokens)
{
    Fingerprint f;
    for (const auto& [tag, bytes] : tokens) {
        f.add_tag(tag);
        if (!bytes.empty() || tag == 's' || tag == 'k')
            f.add_bytes(bytes);
    }
    return f.value();
}

TEST(Fingerprint, IsStableAcrossBuildsAndMachines)
{
    // The value is stored (metering.idempotency_keys) and compared after a dump and
    // restore, possibly on another machine: these numbers must never change.
    EXPECT_EQ(of({{'o', ""}, {'O', ""}}), 1889190272499099147LL);  // {}
    Fingerprint f;  // {"region": "eu"}
    f.add_tag('o');
    f.add_tag('k');
    f.add_bytes("region");
    f.add_tag('s');
    f.add_bytes("eu");
    f.add_tag('O');
    EXPECT_EQ(f.value(), 7702462138350633666LL);
}

TEST(Fingerprint, LengthsSeparateTokens)
{
    // {"ab": "c"} and {"a": "bc"} feed the same characters.
    EXPECT_NE(of({{'k', "ab"}, {'s', "c"}}), of({{'k', "a"}, {'s', "bc"}}));
    EXPECT_NE(of({{'s', ""}}), of({{'n', ""}}));
    EXPECT_NE(of({{'a', ""}, {'A', ""}}), of({{'o', ""}, {'O', ""}}));
}

TEST(Fingerprint, NeverZeroAndSpreads)
{
    std::set<std::int64_t> seen;
    for (int i = 0; i < 10000; i++) {
        Fingerprint f;
        f.add_tag('d');
        f.add_bytes(std::to_string(i));
        EXPECT_NE(f.value(), 0);
        seen.insert(f.value());
    }
    EXPECT_EQ(seen.size(), 10000u);
}

}  // namespace
