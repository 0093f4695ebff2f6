#include <catch2/catch.hpp>

#include <algorithm>
#include <string>
#include <vector>

#include "kms/stun.hpp"

namespace stun = kms::stun;

namespace {
std::string bytes(std::initializer_list<unsigned> v) {
    std::string s;
    for (unsigned b : v) s.push_back(static_cast<char>(b));
    return s;
}
// RFC 5769 §2.1: a request with SOFTWARE, PRIORITY, ICE-CONTROLLED, USERNAME, MESSAGE-INTEGRITY
// (short-term password "VOkJxbRl1RmTxUk/WvJxBt") and FINGERPRINT.
const std::string kRequest = bytes({
    0x00, 0x01, 0x00, 0x58, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x10, 0x53, 0x54, 0x55, 0x4e, 0x20, 0x74, 0x65, 0x73,
    0x74, 0x20, 0x63, 0x6c, 0x69, 0x65, 0x6e, 0x74, 0x00, 0x24, 0x00, 0x04, 0x6e, 0x00, 0x01, 0xff,
    0x80, 0x29, 0x00, 0x08, 0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36, 0x00, 0x06, 0x00, 0x09,
    0x65, 0x76, 0x74, 0x6a, 0x3a, 0x68, 0x36, 0x76, 0x59, 0x20, 0x20, 0x20, 0x00, 0x08, 0x00, 0x14,
    0x9a, 0xea, 0xa7, 0x0c, 0xbf, 0xd8, 0xcb, 0x56, 0x78, 0x1e, 0xf2, 0xb5, 0xb2, 0xd3, 0xf2, 0x49,
    0xc1, 0xb5, 0x71, 0xa2, 0x80, 0x28, 0x00, 0x04, 0xe5, 0x7a, 0x3b, 0xcf,
});
// RFC 5769 §2.2: the IPv4 response, XOR-MAPPED-ADDRESS 192.0.2.1:32853.
const std::string kResponse4 = bytes({
    0x01, 0x01, 0x00, 0x3c, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x08, 0x00, 0x01, 0xa1, 0x47, 0xe1, 0x12, 0xa6, 0x43,
    0x00, 0x08, 0x00, 0x14, 0x2b, 0x91, 0xf5, 0x99, 0xfd, 0x9e, 0x90, 0xc3, 0x8c, 0x74, 0x89, 0xf9,
    0x2a, 0xf9, 0xba, 0x53, 0xf0, 0x6b, 0xe7, 0xd7, 0x80, 0x28, 0x00, 0x04, 0xc0, 0x7d, 0x4c, 0x96,
});
// RFC 5769 §2.3: the IPv6 response, XOR-MAPPED-ADDRESS
// [2001:db8:1234:5678:11:2233:4455:6677]:32853.
const std::string kResponse6 = bytes({
    0x01, 0x01, 0x00, 0x48, 0x21, 0x12, 0xa4, 0x42, 0xb7, 0xe7, 0xa7, 0x01, 0xbc, 0x34, 0xd6, 0x86,
    0xfa, 0x87, 0xdf, 0xae, 0x80, 0x22, 0x00, 0x0b, 0x74, 0x65, 0x73, 0x74, 0x20, 0x76, 0x65, 0x63,
    0x74, 0x6f, 0x72, 0x20, 0x00, 0x20, 0x00, 0x14, 0x00, 0x02, 0xa1, 0x47, 0x01, 0x13, 0xa9, 0xfa,
    0xa5, 0xd3, 0xf1, 0x79, 0xbc, 0x25, 0xf4, 0xb5, 0xbe, 0xd2, 0xb9, 0xd9, 0x00, 0x08, 0x00, 0x14,
    0xa3, 0x82, 0x95, 0x4e, 0x4b, 0xe6, 0x7b, 0xf1, 0x17, 0x84, 0xc9, 0x7c, 0x82, 0x92, 0xc2, 0x75,
    0xbf, 0xe3, 0xed, 0x41, 0x80, 0x28, 0x00, 0x04, 0xc8, 0xfb, 0x0b, 0x4c,
});
// RFC 5769 §2.4: a request with long-term credentials: USERNAME (six katakana), NONCE, REALM
// and MESSAGE-INTEGRITY under MD5(username:realm:password), no FINGERPRINT. The password
// "The<U+00AD>M<U+00AA>tr<U+2168>" is "TheMatrIX" after SASLprep.
const std::string kLongTerm = bytes({
    0x00, 0x01, 0x00, 0x60, 0x21, 0x12, 0xa4, 0x42, 0x78, 0xad, 0x34, 0x33, 0xc6, 0xad, 0x72,
    0xc0, 0x29, 0xda, 0x41, 0x2e, 0x00, 0x06, 0x00, 0x12, 0xe3, 0x83, 0x9e, 0xe3, 0x83, 0x88,
    0xe3, 0x83, 0xaa, 0xe3, 0x83, 0x83, 0xe3, 0x82, 0xaf, 0xe3, 0x82, 0xb9, 0x00, 0x00, 0x00,
    0x15, 0x00, 0x1c, 0x66, 0x2f, 0x2f, 0x34, 0x39, 0x39, 0x6b, 0x39, 0x35, 0x34, 0x64, 0x36,
    0x4f, 0x4c, 0x33, 0x34, 0x6f, 0x4c, 0x39, 0x46, 0x53, 0x54, 0x76, 0x79, 0x36, 0x34, 0x73,
    0x41, 0x00, 0x14, 0x00, 0x0b, 0x65, 0x78, 0x61, 0x6d, 0x70, 0x6c, 0x65, 0x2e, 0x6f, 0x72,
    0x67, 0x00, 0x00, 0x08, 0x00, 0x14, 0xf6, 0x70, 0x24, 0x65, 0x6d, 0xd6, 0x4a, 0x3e, 0x02,
    0xb8, 0xe0, 0x71, 0x2e, 0x85, 0xc9, 0xa2, 0x8c, 0xa8, 0x96, 0x66,
});
const std::string kPassword = "VOkJxbRl1RmTxUk/WvJxBt";
const std::string kLtUser =
    "\xe3\x83\x9e\xe3\x83\x88\xe3\x83\xaa\xe3\x83\x83\xe3\x82\xaf\xe3\x82\xb9";
const std::string kLtNonce = "f//499k954d6OL34oL9FSTvy64sA";
const std::string kLtRealm = "example.org";
const std::string kLtPassword = "TheMatrIX";

stun::TransactionId id_of(const std::string& message) {
    stun::TransactionId id{};
    std::copy(message.begin() + 8, message.begin() + 20, id.begin());
    return id;
}

// The first byte where two messages differ, for a readable failure; -1 when they are equal.
long first_difference(const std::string& a, const std::string& b) {
    for (size_t i = 0; i < std::min(a.size(), b.size()); ++i)
        if (a[i] != b[i]) return static_cast<long>(i);
    return a.size() == b.size() ? -1 : static_cast<long>(std::min(a.size(), b.size()));
}
}  // namespace

SCENARIO("RFC 5769 sample request", "[stun]") {
    auto r = stun::parse(kRequest);
    REQUIRE(r.message);
    const auto& m = *r.message;
    CHECK(m.method == stun::Binding);
    CHECK(m.cls == stun::Request);
    CHECK(m.text(stun::Software) == "STUN test client");
    CHECK(m.text(stun::Username) == "evtj:h6vY");
    CHECK(m.fingerprint_ok());
    CHECK(m.integrity_ok(kPassword));
    CHECK_FALSE(m.integrity_ok("wrong password"));
}

SCENARIO("RFC 5769 sample IPv4 response", "[stun]") {
    auto r = stun::parse(kResponse4);
    REQUIRE(r.message);
    const auto& m = *r.message;
    CHECK(m.cls == stun::Success);
    CHECK(m.text(stun::Software) == "test vector");
    auto a = m.address(stun::XorMappedAddress);
    REQUIRE(a);
    CHECK(a->to_string() == "192.0.2.1:32853");
    CHECK(m.fingerprint_ok());
    CHECK(m.integrity_ok(kPassword));

    GIVEN("the same response built by the Builder, padded with spaces as the RFC is") {
        stun::Builder b(stun::Binding, stun::Success, m.transaction);
        b.add(stun::Software, "test vector", ' ').add_address(stun::XorMappedAddress, *a);
        b.integrity(kPassword).fingerprint();
        // Byte for byte: XOR-ing, padding, lengths, the HMAC and the CRC all as RFC 5769 has them.
        CHECK(first_difference(b.bytes(), kResponse4) == -1);
    }
}

SCENARIO("RFC 5769 sample request, built byte for byte", "[stun]") {
    stun::Builder b(stun::Binding, stun::Request, id_of(kRequest));
    b.add(stun::Software, "STUN test client")
        .add(0x0024, bytes({0x6e, 0x00, 0x01, 0xff}))                          // PRIORITY
        .add(0x8029, bytes({0x93, 0x2f, 0xf9, 0xb1, 0x51, 0x26, 0x3b, 0x36}))  // ICE-CONTROLLED
        .add(stun::Username, "evtj:h6vY", ' ')
        .integrity(kPassword)
        .fingerprint();
    CHECK(first_difference(b.bytes(), kRequest) == -1);
}

SCENARIO("RFC 5769 sample IPv6 response", "[stun]") {
    auto r = stun::parse(kResponse6);
    REQUIRE(r.message);
    const auto& m = *r.message;
    CHECK(m.method == stun::Binding);
    CHECK(m.cls == stun::Success);
    CHECK(m.text(stun::Software) == "test vector");
    auto a = m.address(stun::XorMappedAddress);
    REQUIRE(a);
    CHECK(a->family == 6);
    CHECK(a->to_string() == "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
    CHECK(m.fingerprint_ok());
    CHECK(m.integrity_ok(kPassword));
    CHECK_FALSE(m.integrity_ok("VOkJxbRl1RmTxUk/WvJxBT"));

    GIVEN("the same response built by the Builder") {
        stun::Builder b(stun::Binding, stun::Success, id_of(kResponse6));
        b.add(stun::Software, "test vector", ' ')
            .add_address(stun::XorMappedAddress,
                         *stun::Address::parse("[2001:db8:1234:5678:11:2233:4455:6677]:32853"))
            .integrity(kPassword)
            .fingerprint();
        CHECK(first_difference(b.bytes(), kResponse6) == -1);
    }
}

SCENARIO("RFC 5769 sample request with long-term authentication", "[stun]") {
    const std::string key = stun::long_term_key(kLtUser, kLtRealm, kLtPassword);
    // RFC 8489 §9.2.2: MD5 of "username:realm:password".
    CHECK(key.size() == 16);
    auto r = stun::parse(kLongTerm);
    REQUIRE(r.message);
    const auto& m = *r.message;
    CHECK(m.method == stun::Binding);
    CHECK(m.cls == stun::Request);
    CHECK(m.text(stun::Username) == kLtUser);
    CHECK(m.text(stun::Nonce) == kLtNonce);
    CHECK(m.text(stun::Realm) == kLtRealm);
    CHECK(m.integrity_ok(key));
    CHECK_FALSE(m.integrity_ok(stun::long_term_key(kLtUser, kLtRealm, "TheMatrix")));
    CHECK_FALSE(m.integrity_ok(stun::long_term_key(kLtUser, "example.com", kLtPassword)));
    CHECK_FALSE(m.find(stun::Fingerprint));
    CHECK_FALSE(m.fingerprint_ok());

    GIVEN("the same request built by the Builder") {
        stun::Builder b(stun::Binding, stun::Request, id_of(kLongTerm));
        b.add(stun::Username, kLtUser)
            .add(stun::Nonce, kLtNonce)
            .add(stun::Realm, kLtRealm)
            .integrity(key);
        CHECK(first_difference(b.bytes(), kLongTerm) == -1);
    }
}

SCENARIO("one changed byte breaks FINGERPRINT and MESSAGE-INTEGRITY", "[stun]") {
    std::string bad = kRequest;
    bad[30] ^= 1;  // inside SOFTWARE
    auto r = stun::parse(bad);
    REQUIRE(r.message);
    CHECK_FALSE(r.message->fingerprint_ok());
    CHECK_FALSE(r.message->integrity_ok(kPassword));
}

SCENARIO("IPv6 XOR-MAPPED-ADDRESS round trip and errors", "[stun]") {
    auto a = stun::Address::parse("[2001:db8:1234:5678:11:2233:4455:6677]:32853");
    REQUIRE(a);
    stun::Builder b(stun::Binding, stun::Failure, stun::new_transaction());
    b.add_address(stun::XorMappedAddress, *a).add_error(401, "Unauthorized").fingerprint();
    auto r = stun::parse(b.bytes());
    REQUIRE(r.message);
    CHECK(r.message->address(stun::XorMappedAddress)->to_string() ==
          "[2001:db8:1234:5678:11:2233:4455:6677]:32853");
    auto e = r.message->error();
    REQUIRE(e);
    CHECK(e->first == 401);
    CHECK(e->second == "Unauthorized");
    CHECK(r.message->cls == stun::Failure);
}

SCENARIO("malformed STUN is refused without reading past the input", "[stun]") {
    CHECK_FALSE(stun::parse("").message);
    CHECK_FALSE(stun::parse(kRequest.substr(0, 19)).message);
    std::string s = kRequest;
    s[0] = static_cast<char>(0x80);  // leading bits set: RTP or DTLS, not STUN
    CHECK_FALSE(stun::parse(s).message);
    s = kRequest;
    s[4] = 0;  // no magic cookie
    CHECK_FALSE(stun::parse(s).message);
    s = kRequest;
    s[3] = 0x59;  // length not a multiple of 4
    CHECK_FALSE(stun::parse(s).message);
    CHECK_FALSE(stun::parse(kRequest + std::string(4, '\0')).message);  // length mismatch
    s = kRequest;
    s[23] = 0x7f;  // SOFTWARE length runs past the end
    CHECK_FALSE(stun::parse(s).message);
}

SCENARIO("long-term credentials", "[stun]") {
    // RFC 8489 §9.2.2: key = MD5("user:realm:pass"); 16 bytes.
    CHECK(stun::long_term_key("user", "realm", "pass").size() == 16);
    CHECK(stun::long_term_key("user", "realm", "pass") !=
          stun::long_term_key("user", "realm", "pasS"));
}

SCENARIO("RFC 3489 requests have no magic cookie; the response echoes all 128 bits", "[stun]") {
    // A classic Binding request as Debian's stun-client sends it: CHANGE-REQUEST, no cookie.
    std::string req(
        "\x00\x01\x00\x08"
        "\x0a\x0b\x0c\x0d"
        "\x01\x02\x03\x04\x05\x06\x07\x08\x09\x10\x11\x12"
        "\x00\x03\x00\x04\x00\x00\x00\x06",
        28);
    CHECK_FALSE(stun::parse(req).message);  // refused unless asked for
    auto r = stun::parse(req, true);
    REQUIRE(r.message);
    CHECK(r.message->classic);
    CHECK(r.message->method == stun::Binding);
    REQUIRE(r.message->find(stun::ChangeRequest));
    stun::Builder b(stun::Binding, stun::Success, *r.message);
    stun::Address a = *stun::Address::parse("192.0.2.1:32853");
    b.add_address(stun::MappedAddress, a);
    const std::string& out = b.bytes();
    CHECK(out.substr(4, 16) == req.substr(4, 16));
    auto back = stun::parse(out, true);
    REQUIRE(back.message);
    CHECK(back.message->classic);
    CHECK(back.message->address(stun::MappedAddress)->to_string() == "192.0.2.1:32853");
}

SCENARIO("TURN's XOR-ed addresses round-trip", "[stun]") {
    const auto id = stun::new_transaction();
    stun::Builder b(stun::Allocate, stun::Success, id);
    b.add_address(stun::XorRelayedAddress, *stun::Address::parse("198.18.0.1:50000"));
    b.add_address(stun::XorPeerAddress, *stun::Address::parse("[2001:db8::1]:3478"));
    auto r = stun::parse(b.bytes());
    REQUIRE(r.message);
    CHECK(r.message->find(stun::XorRelayedAddress)->value.substr(4, 4) !=
          std::string("\xc6\x12\x00\x01", 4));
    CHECK(r.message->address(stun::XorRelayedAddress)->to_string() == "198.18.0.1:50000");
    CHECK(r.message->address(stun::XorPeerAddress)->to_string() == "[2001:db8::1]:3478");
}

SCENARIO("a reason phrase with a terminating NUL reads without it", "[stun]") {
    stun::Builder b(stun::Refresh, stun::Failure, stun::new_transaction());
    b.add_error(438, std::string("Stale nonce\0", 12));
    auto r = stun::parse(b.bytes());
    REQUIRE(r.message);
    CHECK(r.message->error()->second == "Stale nonce");
}
