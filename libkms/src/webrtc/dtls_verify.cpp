#include "webrtc/dtls_verify.hpp"

#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>

#include "gst/handles.hpp"

namespace kms::webrtc {

namespace {

std::string hex_colon(const unsigned char* md, unsigned len) {
    static const char* digits = "0123456789ABCDEF";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
        if (i) out += ':';
        out += digits[md[i] >> 4];
        out += digits[md[i] & 15];
    }
    return out;
}

}  // namespace

std::string certificate_fingerprint(const std::string& pem, const std::string& algorithm) {
    BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
    if (!bio) return {};
    gst::X509Ptr cert(PEM_read_bio_X509(bio, nullptr, nullptr, nullptr));
    BIO_free(bio);
    if (!cert) return {};
    const EVP_MD* md = algorithm == "sha-1"     ? EVP_sha1()
                       : algorithm == "sha-224" ? EVP_sha224()
                       : algorithm == "sha-384" ? EVP_sha384()
                       : algorithm == "sha-512" ? EVP_sha512()
                                                : EVP_sha256();
    unsigned char buf[EVP_MAX_MD_SIZE];
    unsigned len = 0;
    if (X509_digest(cert.get(), md, buf, &len) != 1) return {};
    return hex_colon(buf, len);
}

}  // namespace kms::webrtc
