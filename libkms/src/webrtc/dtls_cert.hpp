// kms's own DTLS certificate, one per endpoint, ECDSA P-256 unless RSA is asked for; and the
// process-wide certificate dtlsdec insists on making, made cheap since no call ever uses it.
#pragma once

#include <string>

namespace kms::webrtc {

enum class CertKey { Ecdsa, Rsa };

/// A new self-signed certificate (SHA-256 signed, valid from a day ago for 30 days) followed by
/// its private key, both PEM: what dtlsdec's "pem" property takes. ECDSA P-256 (as browsers
/// make, in well under a millisecond) or RSA-2048 (as webrtcbin makes, 70 to 350 ms here).
/// Throws kms::Error (Runtime) when OpenSSL fails.
std::string make_certificate(CertKey key);

/// Creates the process's first dtlsdec, which in GStreamer 1.22 makes an RSA-2048 certificate
/// for elements that are given none (gst_dtls_dec_init). Every kms transport is given its own
/// (make_certificate), so that one only has to exist: its RSA-2048 key is made on this
/// thread alone from three primes, about 50 ms instead of 185. Once per process; later calls
/// do nothing.
void create_unused_default_certificate();

/// How many default keys create_unused_default_certificate() made the cheap way (0 or 1; for
/// the tests: 0 when a dtlsdec had been made before it).
unsigned cheap_default_keys();

}  // namespace kms::webrtc
