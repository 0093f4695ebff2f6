// kms's DTLS certificates, read back with OpenSSL as a peer would; and dtlsdec's default
// certificate, which kms makes cheaply but must still be one a TLS context takes.
#define OPENSSL_SUPPRESS_DEPRECATED  // RSA_generate_key_ex: the interface dtlsdec uses

#include <gst/gst.h>
#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#include <catch2/catch.hpp>

#include <ctime>
#include <string>

#include "kms/runtime.hpp"
#include "webrtc/dtls_cert.hpp"
#include "webrtc/dtls_verify.hpp"

namespace {

struct Parsed {
    X509* cert = nullptr;
    EVP_PKEY* key = nullptr;  // none when the PEM holds a certificate alone
    explicit Parsed(const std::string& pem) {
        BIO* bio = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
        cert = PEM_read_bio_X509(bio, nullptr, nullptr, nullptr);
        key = PEM_read_bio_PrivateKey(bio, nullptr, nullptr, nullptr);
        BIO_free(bio);
    }
    ~Parsed() {
        X509_free(cert);
        EVP_PKEY_free(key);
    }
    std::string key_type() const {
        EVP_PKEY* pub = X509_get0_pubkey(cert);
        if (!pub) return "none";
        return std::string(EVP_PKEY_get0_type_name(pub)) + "-" +
               std::to_string(EVP_PKEY_get_bits(pub));
    }
    // Whether a DTLS context with the system's settings (Debian: security level 2) takes it.
    bool usable_in_tls() const {
        SSL_CTX* ctx = SSL_CTX_new(DTLS_method());
        const bool ok = SSL_CTX_use_certificate(ctx, cert) == 1 &&
                        SSL_CTX_use_PrivateKey(ctx, key) == 1 && SSL_CTX_check_private_key(ctx);
        SSL_CTX_free(ctx);
        return ok;
    }
};

}  // namespace

SCENARIO("each endpoint makes its own DTLS certificate", "[webrtc][dtls]") {
    using kms::webrtc::CertKey;
    for (CertKey kind : {CertKey::Ecdsa, CertKey::Rsa}) {
        const bool ec = kind == CertKey::Ecdsa;
        GIVEN((ec ? "ECDSA, the default" : "RSA")) {
            const std::string pem = kms::webrtc::make_certificate(kind);
            Parsed p(pem);
            REQUIRE(p.cert);
            REQUIRE(p.key);
            THEN("it is the key asked for, signed by itself, with the key beside it") {
                CHECK(p.key_type() == (ec ? "EC-256" : "RSA-2048"));
                CHECK(X509_verify(p.cert, p.key) == 1);
                CHECK(X509_check_private_key(p.cert, p.key) == 1);
                CHECK(p.usable_in_tls());
            }
            THEN("it is valid now, for a day past and a month on") {
                time_t now = std::time(nullptr);
                CHECK(X509_cmp_time(X509_get0_notBefore(p.cert), &now) < 0);
                time_t later = now + 29L * 24 * 3600;
                CHECK(X509_cmp_time(X509_get0_notAfter(p.cert), &later) > 0);
            }
            THEN("the next one is another certificate") {
                const std::string again = kms::webrtc::make_certificate(kind);
                CHECK(kms::webrtc::certificate_fingerprint(again, "sha-256") !=
                      kms::webrtc::certificate_fingerprint(pem, "sha-256"));
            }
            THEN("webrtcbin's hash of it (key included) is not the certificate's") {
                // The reason the endpoint writes a=fingerprint itself (endpoint_negotiation.cpp).
                const std::string cert_only =
                    pem.substr(0, pem.find("-----END CERTIFICATE-----") +
                                      std::string("-----END CERTIFICATE-----\n").size());
                CHECK(kms::webrtc::webrtcbin_fingerprint(pem) !=
                      kms::webrtc::certificate_fingerprint(pem, "sha-256"));
                CHECK(kms::webrtc::webrtcbin_fingerprint(cert_only) ==
                      kms::webrtc::certificate_fingerprint(pem, "sha-256"));
            }
        }
    }
}

SCENARIO("dtlsdec's default certificate, made cheaply, is still a usable RSA-2048 one",
         "[webrtc][dtls]") {
    kms::init();
    // dtlsdec says on stderr (a critical) when its certificate is one TLS refuses.
    static unsigned complaints = 0;
    GLogFunc before = g_log_set_default_handler(
        [](const gchar*, GLogLevelFlags level, const gchar*, gpointer) {
            if (level & (G_LOG_LEVEL_CRITICAL | G_LOG_LEVEL_WARNING)) ++complaints;
        },
        nullptr);
    kms::webrtc::create_unused_default_certificate();
    g_log_set_default_handler(before, nullptr);
    CHECK(complaints == 0);
    // Each test case runs in a process of its own (catch_discover_tests): this one made the
    // process's first dtlsdec, so its key was the cheap one.
    CHECK(kms::webrtc::cheap_default_keys() == 1);
    GstElement* dec = gst_element_factory_make("dtlsdec", nullptr);
    REQUIRE(dec);
    gchar* pem = nullptr;
    g_object_get(dec, "pem", &pem, nullptr);  // the certificate of the default agent
    REQUIRE(pem);
    Parsed p(pem);
    g_free(pem);
    gst_object_unref(gst_object_ref_sink(dec));
    REQUIRE(p.cert);
    CHECK(p.key_type() == "RSA-2048");
    CHECK(X509_verify(p.cert, X509_get0_pubkey(p.cert)) == 1);
    WHEN("RSA keys are made afterwards") {
        THEN("they are made as asked again, of two primes") {
            RSA* rsa = RSA_new();
            BIGNUM* e = BN_new();
            BN_set_word(e, RSA_F4);
            REQUIRE(RSA_generate_key_ex(rsa, 1024, e, nullptr) == 1);
            CHECK(RSA_bits(rsa) == 1024);
            CHECK(RSA_get_multi_prime_extra_count(rsa) == 0);
            BN_free(e);
            RSA_free(rsa);
        }
    }
}
