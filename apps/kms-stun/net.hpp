// kms-stun's sockets: server transports, address conversions, and a client connection to one server
// over UDP, TCP or TLS that sends and receives whole STUN or ChannelData messages.
#pragma once

#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "kms/stun.hpp"
#include "kms/uri.hpp"

namespace kms::stuntool {

using Clock = std::chrono::steady_clock;

enum class Transport { Udp, Tcp, Tls };
const char* transport_name(Transport t);

/// What carries a server's requests: tls for stuns: and turns:, else ?transport= (udp when
/// absent). The URIs themselves are parsed by kms::parse_ice_server_uri (kms/uri.hpp).
Transport transport_of(const IceServerUri& uri);

sockaddr_storage to_sockaddr(const stun::Address& a, socklen_t* len);
stun::Address from_sockaddr(const sockaddr_storage& ss);

/// Resolves host for family 4, 6 or 0 (either). Throws Error(Network).
stun::Address resolve(const std::string& host, uint16_t port, int family);

/// ADDR, ADDR:PORT, [ADDR6]:PORT or ADDR6: a local address to bind to (port 0 when absent).
/// Throws Error(InvalidArgument) naming option.
stun::Address parse_bind(const std::string& text, const char* option);

/// A UDP socket bound to addr (port 0: any). Throws Error(Network).
int udp_socket(const stun::Address& addr);

/// The address a socket is bound to.
stun::Address local_address(int fd);

double ms_since(Clock::time_point t);

struct TlsOptions {
    std::string ca_file;    ///< trust this CA or certificate instead of the system's
    bool insecure = false;  ///< skip certificate checks (the output says so)
};

/// One received message and where it came from.
struct Packet {
    std::string bytes;
    stun::Address from;
};

/// A client's connection to one server. UDP sockets may also send to other addresses
/// (RFC 5780 tests); TCP and TLS frame STUN and ChannelData messages as RFC 8656 §12.5 says.
class Connection {
  public:
    /// Connects (TCP/TLS: within timeout_ms). Throws Error(Network) with the reason.
    static std::unique_ptr<Connection> open(Transport t, const stun::Address& server,
                                            const std::string& server_name,
                                            const std::optional<stun::Address>& bind,
                                            const TlsOptions& tls, int timeout_ms);
    virtual ~Connection();

    Transport transport() const { return transport_; }
    bool reliable() const { return transport_ != Transport::Udp; }
    const stun::Address& server() const { return server_; }
    stun::Address local() const;
    int fd() const { return fd_; }
    /// "TLSv1.3 TLS_AES_256_GCM_SHA384, certificate verified" for TLS; "" otherwise.
    const std::string& tls_summary() const { return tls_summary_; }

    /// Sends one message to the server (or, on UDP, to `to`). False with errno-style text in
    /// error() when the socket refused it.
    bool send(std::string_view message, const stun::Address* to = nullptr);
    /// The next whole message within timeout_ms; nullopt on timeout or a closed stream
    /// (closed() then says so).
    std::optional<Packet> receive(int timeout_ms);
    bool closed() const { return closed_; }
    const std::string& error() const { return error_; }

  private:
    Connection() = default;
    bool fill(int timeout_ms);
    std::optional<Packet> take_frame();

    Transport transport_ = Transport::Udp;
    int fd_ = -1;
    stun::Address server_;
    struct Tls;
    std::unique_ptr<Tls> tls_;
    std::string tls_summary_;
    std::string rx_;
    bool closed_ = false;
    std::string error_;
};

}  // namespace kms::stuntool
