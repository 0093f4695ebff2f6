// One-shot digests with GLib's GChecksum, shared by STUN (MD5 of the long-term key) and the
// DTLS fingerprint check (SHA-1/256/384/512 of the certificate). GLib's, not OpenSSL's: libkms
// does not link libcrypto (README, "Dependencies").
#pragma once

#include <glib.h>

#include <string>
#include <string_view>

namespace kms::core {

/// The raw digest of data: 16 to 64 bytes, by type.
inline std::string digest(GChecksumType type, std::string_view data) {
    GChecksum* sum = g_checksum_new(type);
    g_checksum_update(sum, reinterpret_cast<const guchar*>(data.data()),
                      static_cast<gssize>(data.size()));
    guint8 out[64];
    gsize len = sizeof out;
    g_checksum_get_digest(sum, out, &len);
    g_checksum_free(sum);
    return std::string(reinterpret_cast<char*>(out), len);
}

}  // namespace kms::core
