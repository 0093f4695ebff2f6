#include "webrtc/dtls_verify.hpp"

#include <glib.h>
#include <openssl/evp.h>

#include <cstring>
#include <string_view>
#include <vector>

#include "core/digest.hpp"

namespace kms::webrtc {

namespace {

std::string hex_colon(const unsigned char* md, size_t len) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    for (size_t i = 0; i < len; ++i) {
        if (i) out += ':';
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

// The DER bytes of the first certificate in PEM text (RFC 7468), or none.
std::vector<unsigned char> der_of(const std::string& pem) {
    static const char kBegin[] = "-----BEGIN CERTIFICATE-----";
    static const char kEnd[] = "-----END CERTIFICATE-----";
    const size_t begin = pem.find(kBegin);
    if (begin == std::string::npos) return {};
    const size_t body = begin + sizeof kBegin - 1;
    const size_t end = pem.find(kEnd, body);
    if (end == std::string::npos) return {};
    std::string b64;
    for (size_t i = body; i < end; ++i) {
        const char c = pem[i];
        if (g_ascii_isspace(c)) continue;
        if (!g_ascii_isalnum(c) && c != '+' && c != '/' && c != '=') return {};
        b64 += c;
    }
    if (b64.empty() || b64.size() % 4) return {};
    gsize len = 0;
    guchar* raw = g_base64_decode(b64.c_str(), &len);
    std::vector<unsigned char> der(raw, raw + len);
    g_free(raw);
    // A DER certificate is one SEQUENCE (0x30) whose length covers the rest exactly.
    if (der.size() < 2 || der[0] != 0x30) return {};
    size_t n = der[1], head = 2;
    if (n & 0x80) {
        const size_t bytes = n & 0x7f;
        if (bytes == 0 || bytes > 4 || der.size() < 2 + bytes) return {};
        n = 0;
        for (size_t i = 0; i < bytes; ++i) n = (n << 8) | der[2 + i];
        head += bytes;
    }
    if (head + n != der.size()) return {};
    return der;
}

// SHA-224, which GLib lacks.
std::string sha224_hex(const std::vector<unsigned char>& der) {
    unsigned char buf[28];
    unsigned len = 0;
    if (EVP_Digest(der.data(), der.size(), buf, &len, EVP_sha224(), nullptr) != 1 ||
        len != sizeof buf)
        return {};
    return hex_colon(buf, len);
}

}  // namespace

std::string certificate_fingerprint(const std::string& pem, const std::string& algorithm) {
    const std::vector<unsigned char> der = der_of(pem);
    if (der.empty()) return {};
    if (algorithm == "sha-224") return sha224_hex(der);
    // RFC 8122 §5: the hash of the certificate's DER form.
    const GChecksumType type = algorithm == "sha-1"     ? G_CHECKSUM_SHA1
                               : algorithm == "sha-384" ? G_CHECKSUM_SHA384
                               : algorithm == "sha-512" ? G_CHECKSUM_SHA512
                                                        : G_CHECKSUM_SHA256;
    const std::string md =
        core::digest(type, std::string_view(reinterpret_cast<const char*>(der.data()), der.size()));
    return hex_colon(reinterpret_cast<const unsigned char*>(md.data()), md.size());
}

std::string webrtcbin_fingerprint(const std::string& pem) {
    std::string der(pem.size() / 4 * 3 + 3, '\0');
    size_t out = 0;
    gint state = 0;
    guint save = 0;
    size_t begin = 0;
    while (begin < pem.size()) {
        size_t end = pem.find('\n', begin);
        if (end == std::string::npos) end = pem.size();
        const std::string_view line(pem.data() + begin, end - begin);
        if (!line.empty() && line.substr(0, 5) != "-----")
            out += g_base64_decode_step(line.data(), line.size(),
                                        reinterpret_cast<guchar*>(der.data()) + out, &state, &save);
        begin = end + 1;
    }
    der.resize(out);
    const std::string md = core::digest(G_CHECKSUM_SHA256, der);
    return hex_colon(reinterpret_cast<const unsigned char*>(md.data()), md.size());
}

}  // namespace kms::webrtc
