// The peer's DTLS certificate against the SDP's a=fingerprint: webrtcbin 1.22 does not compare
// them (stack-notes.md), so kms does, before any received media is used.
#pragma once

#include <string>

namespace kms::webrtc {

/// RFC 8122 §5: the hash (sha-1, sha-224, sha-256, sha-384, sha-512; default sha-256) of the
/// PEM certificate's DER form, upper-case hex with colons; "" when the PEM does not parse.
std::string certificate_fingerprint(const std::string& pem, const std::string& algorithm);

/// What webrtcbin 1.22 writes as a=fingerprint for a transport that holds this PEM: the
/// SHA-256 of every base64 line decoded, a private key after the certificate included. Equal
/// to certificate_fingerprint(pem, "sha-256") only for a PEM of a certificate alone.
std::string webrtcbin_fingerprint(const std::string& pem);

}  // namespace kms::webrtc
