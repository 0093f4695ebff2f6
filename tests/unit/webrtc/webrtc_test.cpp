// The pieces of the WebRTC endpoint that need no pipeline: the DTLS fingerprint check and what
// --bind, --stun and --turn become for webrtcbin.
#include <catch2/catch.hpp>

#include <fstream>
#include <sstream>

#include "kms/error.hpp"
#include "webrtc/dtls_verify.hpp"
#include "webrtc/ice_config.hpp"

namespace {

std::string read(const std::string& path) {
    std::ifstream in(path);
    std::stringstream ss;
    ss << in.rdbuf();
    return ss.str();
}

kms::ErrorCode code_of(const std::function<void()>& fn) {
    try {
        fn();
    } catch (const kms::Error& e) {
        return e.code();
    }
    FAIL("no error thrown");
    return kms::ErrorCode::Runtime;
}

}  // namespace

SCENARIO("a certificate's fingerprint is the hash of its DER form", "[webrtc][dtls]") {
    const std::string pem = read(std::string(KMS_TEST_DATA) + "/dtls/cert.pem");
    // Both values printed by `openssl x509 -fingerprint` when the fixture was made.
    CHECK(kms::webrtc::certificate_fingerprint(pem, "sha-256") ==
          "95:B1:60:76:56:98:81:F1:4E:E6:51:59:98:4B:3B:74:C6:D7:09:A4:4B:6B:CA:9A:67:BD:83:91:DA:"
          "6D:DB:4E");
    CHECK(kms::webrtc::certificate_fingerprint(pem, "sha-1") ==
          "43:35:EB:FE:36:71:E0:E5:F0:A6:3D:11:C0:E2:CA:05:E4:77:EC:D4");
    // And by `openssl x509 -fingerprint -sha224/-sha384/-sha512` (libkms reads PEM and hashes
    // with GLib; SHA-224, which GLib lacks, from libcrypto opened at run time).
    CHECK(kms::webrtc::certificate_fingerprint(pem, "sha-224") ==
          "B0:F4:D6:60:96:A4:3F:C7:B8:10:41:4C:A9:72:A9:96:F5:78:05:2A:0E:57:3F:2B:7A:11:00:0E");
    CHECK(kms::webrtc::certificate_fingerprint(pem, "sha-384") ==
          "CE:B8:FD:EF:F1:DF:C0:8A:D3:1F:AD:1B:54:66:97:AA:69:59:79:E0:2A:85:BA:02:9B:C6:FC:1C:"
          "06:88:4C:04:35:6A:E5:ED:14:98:EF:A6:3A:32:7F:86:FE:5F:C8:8C");
    CHECK(kms::webrtc::certificate_fingerprint(pem, "sha-512") ==
          "E9:B1:10:C0:8C:C5:6B:4A:FD:B3:05:76:94:78:81:9F:F0:A7:A4:22:1A:FB:EE:6D:C7:DF:FF:1B:"
          "FF:46:EB:D4:0D:5D:0D:6F:A3:DB:7A:CC:A4:14:BE:0A:E9:11:64:49:A2:9A:85:15:5E:D8:9B:8A:"
          "AF:73:86:C1:69:2B:CD:E2");
    CHECK(kms::webrtc::certificate_fingerprint("not a certificate", "sha-256").empty());
    // Cut short, or the body not base64: no fingerprint.
    CHECK(kms::webrtc::certificate_fingerprint(pem.substr(0, pem.size() / 2), "sha-256").empty());
    std::string bad = pem;
    bad[bad.find('\n') + 5] = '*';
    CHECK(kms::webrtc::certificate_fingerprint(bad, "sha-256").empty());
    std::string broken = pem;
    broken[broken.size() / 2] ^= 1;
    CHECK(kms::webrtc::certificate_fingerprint(broken, "sha-256") !=
          "95:B1:60:76:56:98:81:F1:4E:E6:51:59:98:4B:3B:74:C6:D7:09:A4:4B:6B:CA:9A:67:BD:83:91:DA:"
          "6D:DB:4E");
}

SCENARIO("TURN URIs become webrtcbin's, with credentials and never a printed password",
         "[webrtc][ice]") {
    kms::IceOptions ice;
    using kms::webrtc::webrtcbin_turn_uri;
    CHECK(webrtcbin_turn_uri("turn:alice:pw@127.0.0.1:3478", ice) ==
          "turn://alice:pw@127.0.0.1:3478");
    // The default port written out (RFC 7065 §3.1), as webrtcbin would take it anyway.
    CHECK(webrtcbin_turn_uri("turn:alice:pw@turn.example.org?transport=tcp", ice) ==
          "turn://alice:pw@turn.example.org:3478?transport=tcp");
    CHECK(webrtcbin_turn_uri("turn://alice:pw@[::1]:3479?transport=udp", ice) ==
          "turn://alice:pw@[::1]:3479?transport=udp");
    // A password typed with the characters that end a URI's user part is escaped once, as
    // webrtcbin unescapes it once.
    CHECK(webrtcbin_turn_uri("turn:alice:p@s/s?w#rd%41@127.0.0.1", ice) ==
          "turn://alice:p%40s%2Fs%3Fw%23rd%2541@127.0.0.1:3478");
    // libnice would speak plain TCP to it: refused, and the password not printed.
    try {
        webrtcbin_turn_uri("turns:alice:TopSecret99@turn.example.org", ice);
        FAIL("accepted turns:");
    } catch (const kms::Error& e) {
        CHECK(e.code() == kms::ErrorCode::InvalidArgument);
        CHECK(std::string(e.what()).find("plain TCP") != std::string::npos);
        CHECK(std::string(e.what()).find("TopSecret99") == std::string::npos);
    }
    ice.turn_user = "bob";
    ice.turn_password = "p@ss word";
    CHECK(webrtcbin_turn_uri("turn:127.0.0.1", ice) == "turn://bob:p%40ss%20word@127.0.0.1:3478");
    // The URI's credentials come first; --turn-password fills in a password it lacks.
    CHECK(webrtcbin_turn_uri("turn:alice:pw@127.0.0.1", ice) == "turn://alice:pw@127.0.0.1:3478");
    CHECK(webrtcbin_turn_uri("turn:carol@127.0.0.1", ice) ==
          "turn://carol:p%40ss%20word@127.0.0.1:3478");
    try {
        webrtcbin_turn_uri("turn:alice:TopSecret99@127.0.0.1?transport=bogus", ice);
        FAIL("accepted ?transport=bogus");
    } catch (const kms::Error& e) {
        CHECK(e.code() == kms::ErrorCode::InvalidArgument);
        CHECK(std::string(e.what()).find("TopSecret99") == std::string::npos);
    }
    CHECK(code_of([&] { webrtcbin_turn_uri("stun:127.0.0.1", ice); }) ==
          kms::ErrorCode::InvalidArgument);
    try {  // the shared grammar's message, led by the option
        webrtcbin_turn_uri("turn:alice:TopSecret99@127.0.0.1:0", ice);
        FAIL("accepted port 0");
    } catch (const kms::Error& e) {
        CHECK(std::string(e.what()) == "--turn 'turn:alice:***@127.0.0.1:0': bad port");
    }
    try {  // the scheme forgotten: nothing tells the user part apart, so all of it is hidden
        webrtcbin_turn_uri("bob:TopSecret99@turn.example.org", ice);
        FAIL("accepted a URI without a scheme");
    } catch (const kms::Error& e) {
        CHECK(std::string(e.what()).find("TopSecret99") == std::string::npos);
        CHECK(std::string(e.what()).find("***@turn.example.org") != std::string::npos);
    }
}

SCENARIO("--stun URIs become webrtcbin's stun://HOST:PORT", "[webrtc][ice]") {
    using kms::webrtc::webrtcbin_stun_uri;
    CHECK(webrtcbin_stun_uri("stun:127.0.0.1") == "stun://127.0.0.1:3478");
    CHECK(webrtcbin_stun_uri("stun://stun.example.org:19302") == "stun://stun.example.org:19302");
    CHECK(webrtcbin_stun_uri("stun:[::1]:3479") == "stun://[::1]:3479");
    for (const char* bad : {"stun:", "stun:127.0.0.1:0", "turn:alice:TopSecret99@127.0.0.1",
                            "127.0.0.1", "stun:alice:TopSecret99@127.0.0.1"}) {
        INFO(bad);
        try {
            webrtcbin_stun_uri(bad);
            FAIL("accepted");
        } catch (const kms::Error& e) {
            CHECK(e.code() == kms::ErrorCode::InvalidArgument);
            CHECK_THAT(e.what(), Catch::StartsWith("--stun '"));
            CHECK_THAT(e.what(), !Catch::Contains("TopSecret99"));
        }
    }
}

SCENARIO("--bind takes addresses and interface names", "[webrtc][ice]") {
    using kms::webrtc::resolve_bind;
    CHECK(resolve_bind("127.0.0.1") == std::vector<std::string>{"127.0.0.1"});
    CHECK(resolve_bind("::1") == std::vector<std::string>{"::1"});
    const auto lo = resolve_bind("lo");
    CHECK(std::find(lo.begin(), lo.end(), "127.0.0.1") != lo.end());
    CHECK(code_of([] { resolve_bind("nosuchif0"); }) == kms::ErrorCode::InvalidArgument);
}

SCENARIO("STUN and TURN hosts must resolve (literal addresses: no lookup leaves the machine)",
         "[webrtc][ice]") {
    using kms::webrtc::check_resolves;
    CHECK_NOTHROW(check_resolves("stun:127.0.0.1:3478", "--stun"));
    CHECK_NOTHROW(check_resolves("turn:alice:pw@[::1]:3478?transport=tcp", "--turn"));
    CHECK(code_of([] { check_resolves("stun:", "--stun"); }) == kms::ErrorCode::InvalidArgument);
    CHECK(code_of([] { check_resolves("stun:127.0.0.1:99999", "--stun"); }) ==
          kms::ErrorCode::InvalidArgument);
    CHECK(code_of([] { check_resolves("stun:[::1", "--stun"); }) ==
          kms::ErrorCode::InvalidArgument);
    try {
        check_resolves("turn:alice:TopSecret99@[::1", "--turn");
        FAIL("accepted an unclosed [");
    } catch (const kms::Error& e) {
        CHECK(std::string(e.what()) == "--turn 'turn:alice:***@[::1': unclosed [");
    }
}
