#include <arpa/inet.h>
#include <sys/random.h>

#include <cerrno>
#include <cstring>
#include <fstream>

#include <glib.h>
#include <zlib.h>

#include "core/digest.hpp"
#include "kms/error.hpp"
#include "kms/stun.hpp"

namespace kms::stun {

namespace {

constexpr size_t kHeader = 20;
constexpr uint32_t kFingerprintXor = 0x5354554e;  // RFC 8489 §14.7

uint16_t be16(const char* p) {
    return static_cast<uint16_t>((static_cast<uint8_t>(p[0]) << 8) | static_cast<uint8_t>(p[1]));
}
uint32_t be32(const char* p) {
    return (uint32_t(be16(p)) << 16) | be16(p + 2);
}
void put16(std::string& s, uint16_t v) {
    s.push_back(static_cast<char>(v >> 8));
    s.push_back(static_cast<char>(v & 0xff));
}
void put32(std::string& s, uint32_t v) {
    put16(s, static_cast<uint16_t>(v >> 16));
    put16(s, static_cast<uint16_t>(v & 0xffff));
}
void set16(std::string& s, size_t at, uint16_t v) {
    s[at] = static_cast<char>(v >> 8);
    s[at + 1] = static_cast<char>(v & 0xff);
}

// RFC 8489 §14.2: XOR-MAPPED-ADDRESS xors the port with the cookie's top 16 bits and the
// address with the cookie followed by the transaction ID.
void xor_address(uint16_t& port, std::array<uint8_t, 16>& ip, size_t n, const TransactionId& id) {
    port ^= static_cast<uint16_t>(kMagicCookie >> 16);
    uint8_t mask[16];
    const uint32_t cookie = htonl(kMagicCookie);
    std::memcpy(mask, &cookie, 4);
    std::memcpy(mask + 4, id.data(), 12);
    for (size_t i = 0; i < n; ++i) ip[i] ^= mask[i];
}

uint32_t crc32_of(std::string_view data) {
    return static_cast<uint32_t>(
        ::crc32(0L, reinterpret_cast<const Bytef*>(data.data()), static_cast<uInt>(data.size())));
}

// GLib's HMAC, not OpenSSL's: libkms stays free of libcrypto, which cost every kms-record
// process 0.4 MB of relocated pages for nothing it used.
std::string hmac_sha1(std::string_view key, std::string_view data) {
    GHmac* mac =
        g_hmac_new(G_CHECKSUM_SHA1, reinterpret_cast<const guchar*>(key.data()), key.size());
    g_hmac_update(mac, reinterpret_cast<const guchar*>(data.data()),
                  static_cast<gssize>(data.size()));
    guint8 out[20];
    gsize len = sizeof out;
    g_hmac_get_digest(mac, out, &len);
    g_hmac_unref(mac);
    return std::string(reinterpret_cast<char*>(out), len);
}

// The message up to an attribute at offset, with its header length set as if that attribute
// ended the message (RFC 8489 §14.5 and §14.7).
std::string prefix_for(std::string_view raw, size_t offset, size_t attr_total) {
    std::string p(raw.substr(0, offset));
    set16(p, 2, static_cast<uint16_t>(offset + attr_total - kHeader));
    return p;
}

}  // namespace

std::string Address::to_string() const {
    char text[INET6_ADDRSTRLEN] = {};
    inet_ntop(family == 6 ? AF_INET6 : AF_INET, ip.data(), text, sizeof text);
    return family == 6 ? "[" + std::string(text) + "]:" + std::to_string(port)
                       : std::string(text) + ":" + std::to_string(port);
}

std::optional<Address> Address::parse(std::string_view text) {
    Address a;
    std::string host;
    std::string_view port;
    if (!text.empty() && text[0] == '[') {
        size_t close = text.find(']');
        if (close == std::string_view::npos || close + 1 >= text.size() || text[close + 1] != ':')
            return {};
        host = std::string(text.substr(1, close - 1));
        port = text.substr(close + 2);
        a.family = 6;
    } else {
        size_t colon = text.rfind(':');
        if (colon == std::string_view::npos) return {};
        host = std::string(text.substr(0, colon));
        port = text.substr(colon + 1);
    }
    if (inet_pton(a.family == 6 ? AF_INET6 : AF_INET, host.c_str(), a.ip.data()) != 1) return {};
    if (port.empty() || port.size() > 5) return {};
    unsigned v = 0;
    for (char c : port) {
        if (c < '0' || c > '9') return {};
        v = v * 10 + static_cast<unsigned>(c - '0');
    }
    if (v > 65535) return {};
    a.port = static_cast<uint16_t>(v);
    return a;
}

bool is_xor_address(uint16_t type) {
    return type == XorMappedAddress || type == XorPeerAddress || type == XorRelayedAddress;
}

const Attribute* Message::find(uint16_t type) const {
    for (const auto& a : attributes)
        if (a.type == type) return &a;
    return nullptr;
}

std::optional<Address> Message::address(uint16_t type) const {
    const Attribute* at = find(type);
    // RFC 8489 §14.1/14.2: reserved byte, family, port, then 4 or 16 address bytes.
    if (!at || at->value.size() < 8) return {};
    const char* v = at->value.data();
    Address a;
    const uint8_t family = static_cast<uint8_t>(v[1]);
    if (family == 1 && at->value.size() == 8)
        a.family = 4;
    else if (family == 2 && at->value.size() == 20)
        a.family = 6;
    else
        return {};
    a.port = be16(v + 2);
    const size_t n = a.family == 4 ? 4 : 16;
    std::memcpy(a.ip.data(), v + 4, n);
    if (is_xor_address(type)) xor_address(a.port, a.ip, n, transaction);
    return a;
}

std::string Message::text(uint16_t type) const {
    const Attribute* at = find(type);
    return at ? std::string(at->value) : std::string();
}

std::optional<std::pair<int, std::string>> Message::error() const {
    const Attribute* at = find(ErrorCode);
    if (!at || at->value.size() < 4) return {};
    const int hundreds = at->value[2] & 0x7;
    const int number = static_cast<uint8_t>(at->value[3]);
    std::string reason(at->value.substr(4));
    // Some servers (coturn 4.6) count a terminating NUL in the reason phrase.
    while (!reason.empty() && reason.back() == '\0') reason.pop_back();
    return std::make_pair(hundreds * 100 + number, reason);
}

bool Message::fingerprint_ok() const {
    const Attribute* at = find(Fingerprint);
    if (!at || at->value.size() != 4 || &attributes.back() != at) return false;
    const uint32_t want = crc32_of(prefix_for(raw, at->offset, 8)) ^ kFingerprintXor;
    return be32(at->value.data()) == want;
}

bool Message::integrity_ok(std::string_view key) const {
    const Attribute* at = find(MessageIntegrity);
    if (!at || at->value.size() != 20) return false;
    const std::string mac = hmac_sha1(key, prefix_for(raw, at->offset, 24));
    // In time that does not depend on where they differ, so a forger learns nothing from it.
    unsigned char diff = 0;
    for (size_t i = 0; i < 20; ++i) diff |= static_cast<unsigned char>(mac[i] ^ at->value[i]);
    return diff == 0;
}

ParseResult parse(std::string_view b, bool allow_classic) {
    ParseResult r;
    if (b.size() < kHeader) return {{}, "shorter than a STUN header"};
    if ((static_cast<uint8_t>(b[0]) & 0xc0) != 0) return {{}, "the first two bits are not zero"};
    const bool classic = be32(b.data() + 4) != kMagicCookie;
    if (classic && !allow_classic) return {{}, "no magic cookie (not RFC 5389/8489 STUN)"};
    const size_t length = be16(b.data() + 2);
    if (length % 4 != 0) return {{}, "length is not a multiple of 4"};
    if (kHeader + length != b.size()) return {{}, "length does not match the datagram"};
    Message m;
    const uint16_t type = be16(b.data());
    // RFC 8489 §5: the class bits C1 C0 sit at 0x100 and 0x010 among the method bits.
    m.cls = type & 0x0110;
    m.method =
        static_cast<uint16_t>((type & 0x000f) | ((type & 0x00e0) >> 1) | ((type & 0x3e00) >> 2));
    std::memcpy(m.transaction.data(), b.data() + 8, 12);
    m.classic = classic;
    std::memcpy(m.cookie.data(), b.data() + 4, 4);
    m.raw = b;
    size_t pos = kHeader;
    while (pos < b.size()) {
        if (b.size() - pos < 4) return {{}, "truncated attribute header"};
        Attribute a;
        a.type = be16(b.data() + pos);
        const size_t len = be16(b.data() + pos + 2);
        a.offset = pos;
        const size_t padded = (len + 3) & ~size_t(3);
        if (padded > b.size() - pos - 4) return {{}, "attribute runs past the end"};
        a.value = b.substr(pos + 4, len);
        m.attributes.push_back(a);
        if (m.attributes.size() > 64) return {{}, "more than 64 attributes"};
        pos += 4 + padded;
    }
    r.message = std::move(m);
    return r;
}

std::string long_term_key(std::string_view user, std::string_view realm,
                          std::string_view password) {
    return core::digest(G_CHECKSUM_MD5,
                        std::string(user) + ":" + std::string(realm) + ":" + std::string(password));
}

Builder::Builder(uint16_t method, uint16_t cls, const TransactionId& id) : id_(id) {
    const uint16_t type = static_cast<uint16_t>((method & 0x000f) | ((method & 0x0070) << 1) |
                                                ((method & 0x0f80) << 2) | cls);
    put16(buf_, type);
    put16(buf_, 0);
    put32(buf_, kMagicCookie);
    buf_.append(reinterpret_cast<const char*>(id.data()), id.size());
}

Builder::Builder(uint16_t method, uint16_t cls, const Message& request)
    : Builder(method, cls, request.transaction) {
    if (request.classic) std::memcpy(buf_.data() + 4, request.cookie.data(), 4);
}

void Builder::set_length(size_t body) {
    set16(buf_, 2, static_cast<uint16_t>(body));
}

Builder& Builder::add(uint16_t type, std::string_view value, char pad) {
    put16(buf_, type);
    put16(buf_, static_cast<uint16_t>(value.size()));
    buf_.append(value);
    buf_.append((4 - value.size() % 4) % 4, pad);
    set_length(buf_.size() - kHeader);
    return *this;
}

Builder& Builder::add_address(uint16_t type, const Address& a) {
    std::string v;
    v.push_back('\0');
    v.push_back(a.family == 6 ? 2 : 1);
    uint16_t port = a.port;
    std::array<uint8_t, 16> ip = a.ip;
    const size_t n = a.family == 6 ? 16 : 4;
    if (is_xor_address(type)) xor_address(port, ip, n, id_);
    put16(v, port);
    v.append(reinterpret_cast<const char*>(ip.data()), n);
    return add(type, v);
}

Builder& Builder::add_error(int code, std::string_view reason) {
    std::string v(2, '\0');
    v.push_back(static_cast<char>(code / 100));
    v.push_back(static_cast<char>(code % 100));
    v.append(reason);
    return add(ErrorCode, v);
}

Builder& Builder::integrity(std::string_view key) {
    set_length(buf_.size() - kHeader + 24);
    const std::string mac = hmac_sha1(key, buf_);
    return add(MessageIntegrity, mac);
}

Builder& Builder::fingerprint() {
    set_length(buf_.size() - kHeader + 8);
    std::string v;
    put32(v, crc32_of(buf_) ^ kFingerprintXor);
    return add(Fingerprint, v);
}

TransactionId new_transaction() {
    // RFC 8489 §6: uniformly and randomly chosen, cryptographically random.
    TransactionId id{};
    // getrandom(2) from the kernel's pool, retried only when a signal cut it short; where it
    // is refused (an old kernel, a seccomp filter), /dev/urandom.
    size_t got = 0;
    while (got < id.size()) {
        const ssize_t n = getrandom(id.data() + got, id.size() - got, 0);
        if (n > 0)
            got += static_cast<size_t>(n);
        else if (n < 0 && errno != EINTR)
            break;
    }
    if (got < id.size()) {
        std::ifstream urandom("/dev/urandom", std::ios::binary);
        if (!urandom.read(reinterpret_cast<char*>(id.data()),
                          static_cast<std::streamsize>(id.size())))
            throw Error(ErrorCode::Runtime, "no random bytes for a STUN transaction id");
    }
    return id;
}

}  // namespace kms::stun
