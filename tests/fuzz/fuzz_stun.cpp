// libFuzzer target for the STUN codec: parse, read every attribute through its accessor, check
// integrity and fingerprint, then rebuild what parsed and parse that again.
#include <cstddef>
#include <cstdint>
#include <string_view>

#include "kms/stun.hpp"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view bytes(reinterpret_cast<const char*>(data), size);
    // The first byte's low bit picks RFC 3489 acceptance, so both paths are explored.
    auto r = kms::stun::parse(bytes, size > 0 && (data[0] & 1));
    if (!r.message) return 0;
    const auto& m = *r.message;
    size_t touched = m.fingerprint_ok() + m.integrity_ok("key");
    for (uint16_t t :
         {kms::stun::XorMappedAddress, kms::stun::MappedAddress, kms::stun::OtherAddress,
          kms::stun::ResponseOrigin, kms::stun::XorPeerAddress, kms::stun::XorRelayedAddress,
          kms::stun::SourceAddress, kms::stun::ChangedAddress})
        if (auto a = m.address(t)) touched += a->to_string().size();
    if (auto e = m.error()) touched += e->second.size() + static_cast<size_t>(e->first);
    kms::stun::Builder b(m.method, m.cls, m);
    size_t kept = 0;
    for (const auto& a : m.attributes)
        if (a.type != kms::stun::MessageIntegrity && a.type != kms::stun::Fingerprint) {
            b.add(a.type, a.value);
            ++kept;
        }
    // The parser takes at most 64 attributes, so a message already at the limit cannot gain a
    // fingerprint and still parse: nothing to round-trip.
    if (kept >= 64) return 0;
    b.fingerprint();
    auto again = kms::stun::parse(b.bytes(), m.classic);
    if (!again.message || !again.message->fingerprint_ok() ||
        again.message->attributes.size() > m.attributes.size() + 1)
        __builtin_trap();
    return touched == static_cast<size_t>(-1);
}
