#include "webrtc/dtls_cert.hpp"

// RSA_METHOD and RSA_set0_* are deprecated in OpenSSL 3, and they are the only way into
// dtlsdec's key generation, which uses the legacy interface (below).
#define OPENSSL_SUPPRESS_DEPRECATED

#include <gst/gst.h>
#include <openssl/bio.h>
#include <openssl/ec.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/rsa.h>
#include <openssl/x509.h>

#include <atomic>
#include <memory>
#include <mutex>

#include "gst/handles.hpp"
#include "kms/error.hpp"

namespace kms::webrtc {
namespace {

template <auto Free>
struct Deleter {
    template <class T>
    void operator()(T* p) const {
        Free(p);
    }
};
using PkeyPtr = std::unique_ptr<EVP_PKEY, Deleter<EVP_PKEY_free>>;
using X509Ptr = std::unique_ptr<X509, Deleter<X509_free>>;
using BioPtr = std::unique_ptr<BIO, Deleter<BIO_free_all>>;

[[noreturn]] void fail(const std::string& what) {
    throw Error(ErrorCode::Runtime, "cannot make the DTLS certificate: " + what);
}

std::string bio_text(BIO* bio) {
    char* data = nullptr;
    const long n = BIO_get_mem_data(bio, &data);
    return n > 0 ? std::string(data, static_cast<size_t>(n)) : std::string();
}

// ---- the default certificate of dtlsdec ----------------------------------------------------
//
// gst_dtls_dec_init (1.22) makes it with RSA_new() and RSA_generate_key_ex(2048), the legacy
// interface, which asks the RSA's method for its keygen. For the moment that the first dtlsdec
// is created (its plugin already loaded), the default method is a copy of the one before whose
// keygen gives the RSA that method back and generates with it: on the thread that asked for the
// cheap key, from three primes of 683 bits (RFC 8017 multi-prime), 52 ms where two of 1024 take
// 185 (at most 100 against 380 ms, 20 each here); on any other thread as asked. Not shorter:
// Debian's OpenSSL (security level 2) refuses an RSA key under 2048 bits in a TLS context, and
// dtlsdec would then have no certificate and say so on stderr.

thread_local bool t_cheap = false;
const RSA_METHOD* g_original = nullptr;  // the default method before ours
std::atomic<unsigned> g_cheap_keys{0};

int keygen(RSA* rsa, int bits, int primes, BIGNUM* e, BN_GENCB* cb) {
    // With its method back, the RSA generates as OpenSSL does, and never comes here again.
    if (!RSA_set_method(rsa, g_original)) return 0;
    const bool cheap = t_cheap && primes == 2 && bits == 2048;
    const int ok = RSA_generate_multi_prime_key(rsa, bits, cheap ? 3 : primes, e, cb);
    if (ok && cheap) ++g_cheap_keys;
    return ok;
}

}  // namespace

std::string make_certificate(CertKey kind) {
    PkeyPtr key(kind == CertKey::Ecdsa ? EVP_EC_gen("P-256") : EVP_RSA_gen(2048));
    if (!key) fail(kind == CertKey::Ecdsa ? "no ECDSA P-256 key" : "no RSA-2048 key");
    X509Ptr cert(X509_new());
    if (!cert) fail("no memory");
    // A random positive 63-bit serial: two of our certificates never look alike to a peer
    // that caches them by issuer and serial.
    uint64_t serial = 0;
    if (RAND_bytes(reinterpret_cast<unsigned char*>(&serial), sizeof serial) != 1)
        fail("no random bytes");
    serial &= INT64_MAX;
    X509_NAME* name = X509_get_subject_name(cert.get());
    // A day back, for a peer whose clock is behind ours; a month on, longer than any call.
    if (!X509_set_version(cert.get(), 2) ||
        !ASN1_INTEGER_set_uint64(X509_get_serialNumber(cert.get()), serial | 1) ||
        !X509_gmtime_adj(X509_getm_notBefore(cert.get()), -24L * 3600) ||
        !X509_gmtime_adj(X509_getm_notAfter(cert.get()), 30L * 24 * 3600) ||
        !X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                                    reinterpret_cast<const unsigned char*>("WebRTC"), -1, -1, 0) ||
        !X509_set_issuer_name(cert.get(), name) || !X509_set_pubkey(cert.get(), key.get()) ||
        !X509_sign(cert.get(), key.get(), EVP_sha256()))
        fail("signing failed");
    // Certificate first: dtlsdec reads the certificate, then the key, from one string, and
    // webrtcbin hashes the text up to the certificate's end for a=fingerprint.
    BioPtr bio(BIO_new(BIO_s_mem()));
    if (!bio || !PEM_write_bio_X509(bio.get(), cert.get()) ||
        !PEM_write_bio_PrivateKey(bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr))
        fail("cannot write PEM");
    return bio_text(bio.get());
}

void create_unused_default_certificate() {
    static std::once_flag once;
    std::call_once(once, [] {
        // Loaded first, so that ours is the default only while dtlsdec itself is made.
        gst::ObjectPtr<GstElementFactory> factory(gst_element_factory_find("dtlsdec"));
        if (!factory) return;
        gst::ObjectPtr<GstPluginFeature> loaded(
            gst_plugin_feature_load(GST_PLUGIN_FEATURE(factory.get())));
        g_original = RSA_get_default_method();
        // Never freed: every RSA made while it was the default keeps pointing at it.
        RSA_METHOD* ours = RSA_meth_dup(g_original);
        if (!ours || !RSA_meth_set_multi_prime_keygen(ours, keygen)) return;
        RSA_set_default_method(ours);
        t_cheap = true;
        if (GstElement* e = gst_element_factory_make("dtlsdec", nullptr))
            gst_object_unref(gst_object_ref_sink(e));
        t_cheap = false;
        // Unless someone else has set another meanwhile.
        if (RSA_get_default_method() == ours) RSA_set_default_method(g_original);
    });
}

unsigned cheap_default_keys() {
    return g_cheap_keys.load();
}

}  // namespace kms::webrtc
