// STUN messages (RFC 8489): a codec of our own for untrusted bytes. parse() never throws and
// never reads past its input; a message is built attribute by attribute and closed with
// MESSAGE-INTEGRITY and FINGERPRINT as the RFC orders them.
#pragma once

#include <array>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace kms::stun {

constexpr uint32_t kMagicCookie = 0x2112A442;

enum Method : uint16_t {
    Binding = 0x001,
    Allocate = 0x003,
    Refresh = 0x004,
    Send = 0x006,
    Data = 0x007,
    CreatePermission = 0x008,
    ChannelBind = 0x009
};
enum Class : uint16_t { Request = 0x000, Indication = 0x010, Success = 0x100, Failure = 0x110 };

enum Attr : uint16_t {
    MappedAddress = 0x0001,
    ChangeRequest = 0x0003,
    SourceAddress = 0x0004,   ///< RFC 3489
    ChangedAddress = 0x0005,  ///< RFC 3489
    Username = 0x0006,
    MessageIntegrity = 0x0008,
    ErrorCode = 0x0009,
    ChannelNumber = 0x000c,
    Lifetime = 0x000d,
    XorPeerAddress = 0x0012,
    DataAttr = 0x0013,
    Realm = 0x0014,
    Nonce = 0x0015,
    XorRelayedAddress = 0x0016,
    RequestedTransport = 0x0019,
    XorMappedAddress = 0x0020,
    ResponsePort = 0x0027,
    Software = 0x8022,
    Fingerprint = 0x8028,
    ResponseOrigin = 0x802b,
    OtherAddress = 0x802c,
};

using TransactionId = std::array<uint8_t, 12>;

struct Address {
    int family = 4;  ///< 4 or 6
    std::array<uint8_t, 16> ip{};
    uint16_t port = 0;
    std::string to_string() const;  ///< "192.0.2.1:32853" or "[2001:db8::1]:32853"
    static std::optional<Address> parse(std::string_view text);  ///< the same forms
};

struct Attribute {
    uint16_t type = 0;
    size_t offset = 0;  ///< of the attribute header within the message
    std::string_view value;
};

/// True for the address attributes that are XOR-ed with the cookie and transaction ID.
bool is_xor_address(uint16_t type);

/// A parsed message. Views point into the buffer given to parse(), which must outlive it.
struct Message {
    uint16_t method = 0;
    uint16_t cls = 0;
    TransactionId transaction{};
    /// RFC 3489 ("classic") message: no magic cookie; those four bytes are the first part of
    /// its 128-bit transaction ID and are kept in `cookie`.
    bool classic = false;
    std::array<uint8_t, 4> cookie{};
    std::vector<Attribute> attributes;
    std::string_view raw;

    const Attribute* find(uint16_t type) const;
    std::optional<Address> address(
        uint16_t type) const;               ///< any address attribute, XOR-ed ones decoded
    std::string text(uint16_t type) const;  ///< SOFTWARE, USERNAME, REALM, NONCE
    std::optional<std::pair<int, std::string>> error() const;  ///< ERROR-CODE: code and reason
    /// FINGERPRINT present and right. RFC 8489 §14.7.
    bool fingerprint_ok() const;
    /// MESSAGE-INTEGRITY present and right for this key. RFC 8489 §14.5.
    bool integrity_ok(std::string_view key) const;
};

/// Why parse() refused the bytes ("" when it did not).
struct ParseResult {
    std::optional<Message> message;
    std::string error;
};

/// Parses one STUN message: header checks of RFC 8489 §5 (leading zero bits, magic cookie,
/// length a multiple of 4 that matches the datagram) and attribute bounds. allow_classic also
/// accepts RFC 3489 messages, which have no magic cookie.
ParseResult parse(std::string_view bytes, bool allow_classic = false);

/// The long-term credential key: MD5(username ":" realm ":" password), RFC 8489 §9.2.2.
std::string long_term_key(std::string_view user, std::string_view realm, std::string_view password);

class Builder {
  public:
    Builder(uint16_t method, uint16_t cls, const TransactionId& id);
    /// A response to request: the same transaction ID, and for an RFC 3489 request the same
    /// 128-bit one (its first four bytes in place of the magic cookie).
    Builder(uint16_t method, uint16_t cls, const Message& request);
    /// Appends an attribute, padded to four bytes with pad (RFC 8489 §14: any value; we send
    /// zeros, RFC 5769's vectors use spaces).
    Builder& add(uint16_t type, std::string_view value, char pad = '\0');
    Builder& add_address(uint16_t type, const Address& a);  ///< XOR-ed when type is XOR-MAPPED
    Builder& add_error(int code, std::string_view reason);
    /// Appends MESSAGE-INTEGRITY over what is there so far (HMAC-SHA1 with key).
    Builder& integrity(std::string_view key);
    /// Appends FINGERPRINT; the last attribute.
    Builder& fingerprint();
    const std::string& bytes() const { return buf_; }

  private:
    void set_length(size_t body);
    std::string buf_;
    TransactionId id_;
};

/// A random transaction ID.
TransactionId new_transaction();

}  // namespace kms::stun
