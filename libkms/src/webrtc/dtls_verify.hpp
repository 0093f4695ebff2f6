// The peer's DTLS certificate against the SDP's a=fingerprint: webrtcbin 1.22 does not compare
// them (stack-notes.md), so kms does, before any received media is used.
#pragma once

#include <string>

namespace kms::webrtc {

/// RFC 8122 §5: the hash (sha-1, sha-224, sha-256, sha-384, sha-512; default sha-256) of the
/// PEM certificate's DER form, upper-case hex with colons; "" when the PEM does not parse.
std::string certificate_fingerprint(const std::string& pem, const std::string& algorithm);

}  // namespace kms::webrtc
