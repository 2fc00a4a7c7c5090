// A 64-bit fingerprint of a canonical byte stream: what the idempotency keys
// keep of an event's properties (the bridge feeds it the jsonb value token by
// token, numbers in their normalized text). Defined on bytes alone, so a dump
// restored on another machine computes the same value.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string_view>

namespace metering::core {

class Fingerprint {
public:
    // A one-byte tag (the kind of what follows), then the bytes with their
    // length first, so that no two token sequences feed the same stream.
    void add_tag(char tag) { mix_byte(static_cast<unsigned char>(tag)); }
    void add_bytes(std::string_view bytes);
    // The value; 0 never comes out (callers may use it as "none").
    std::int64_t value() const;

private:
    void mix_byte(unsigned char b) { state_ = (state_ ^ b) * kPrime; }
    static constexpr std::uint64_t kOffset = 0xcbf29ce484222325ULL;  // FNV-1a 64
    static constexpr std::uint64_t kPrime = 0x100000001b3ULL;
    std::uint64_t state_ = kOffset;
};

}  // namespace metering::core
