#include "core/fingerprint.hpp"

namespace metering::core {

void Fingerprint::add_bytes(std::string_view bytes)
{
    std::uint64_t n = bytes.size();
    for (int i = 0; i < 8; i++, n >>= 8)  // little-endian whatever the machine
        mix_byte(static_cast<unsigned char>(n & 0xff));
    for (char c : bytes)
        mix_byte(static_cast<unsigned char>(c));
}

std::int64_t Fingerprint::value() const
{
    // FNV-1a's low bits depend on few input bits: finish with MurmurHash3's fmix64.
    std::uint64_t h = state_;
    h ^= h >> 33;
    h *= 0xff51afd7ed558ccdULL;
    h ^= h >> 33;
    h *= 0xc4ceb9fe1a85ec53ULL;
    h ^= h >> 33;
    if (h == 0)
        h = 1;
    return static_cast<std::int64_t>(h);
}

}  // namespace metering::core
