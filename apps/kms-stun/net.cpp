#include "net.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <poll.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "kms/error.hpp"
#include "kms/uri.hpp"

namespace kms::stuntool {

namespace {

std::string ssl_error_text() {
    unsigned long e = ERR_get_error();
    if (e == 0) return "TLS error";
    char buf[256];
    ERR_error_string_n(e, buf, sizeof buf);
    return buf;
}

}  // namespace

const char* transport_name(Transport t) {
    switch (t) {
        case Transport::Udp:
            return "udp";
        case Transport::Tcp:
            return "tcp";
        case Transport::Tls:
            return "tls";
    }
    return "udp";
}

Transport transport_of(const IceServerUri& uri) {
    if (uri.secure()) return Transport::Tls;
    return uri.transport == "tcp" ? Transport::Tcp : Transport::Udp;
}

sockaddr_storage to_sockaddr(const stun::Address& a, socklen_t* len) {
    sockaddr_storage ss{};
    if (a.family == 6) {
        auto* s6 = reinterpret_cast<sockaddr_in6*>(&ss);
        s6->sin6_family = AF_INET6;
        s6->sin6_port = htons(a.port);
        std::memcpy(&s6->sin6_addr, a.ip.data(), 16);
        *len = sizeof(sockaddr_in6);
    } else {
        auto* s4 = reinterpret_cast<sockaddr_in*>(&ss);
        s4->sin_family = AF_INET;
        s4->sin_port = htons(a.port);
        std::memcpy(&s4->sin_addr, a.ip.data(), 4);
        *len = sizeof(sockaddr_in);
    }
    return ss;
}

stun::Address from_sockaddr(const sockaddr_storage& ss) {
    stun::Address a;
    if (ss.ss_family == AF_INET6) {
        const auto* s6 = reinterpret_cast<const sockaddr_in6*>(&ss);
        a.family = 6;
        a.port = ntohs(s6->sin6_port);
        std::memcpy(a.ip.data(), &s6->sin6_addr, 16);
    } else {
        const auto* s4 = reinterpret_cast<const sockaddr_in*>(&ss);
        a.family = 4;
        a.port = ntohs(s4->sin_port);
        std::memcpy(a.ip.data(), &s4->sin_addr, 4);
    }
    return a;
}

stun::Address resolve(const std::string& host, uint16_t port, int family) {
    addrinfo hints{};
    hints.ai_family = family == 4 ? AF_INET : family == 6 ? AF_INET6 : AF_UNSPEC;
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    if (int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res); rc != 0)
        throw Error(ErrorCode::Network, "cannot resolve " + host + ": " + gai_strerror(rc));
    sockaddr_storage ss{};
    std::memcpy(&ss, res->ai_addr, res->ai_addrlen);
    freeaddrinfo(res);
    stun::Address a = from_sockaddr(ss);
    a.port = port;
    return a;
}

stun::Address parse_bind(const std::string& text, const char* option) {
    auto b = stun::Address::parse(text);
    if (!b)
        b = stun::Address::parse(text.find(':') == std::string::npos ? text + ":0"
                                                                     : "[" + text + "]:0");
    if (!b)
        throw Error(ErrorCode::InvalidArgument,
                    std::string(option) + " '" + text + "': expected ADDR[:PORT] or [ADDR6]:PORT");
    return *b;
}

int udp_socket(const stun::Address& addr) {
    int fd = ::socket(addr.family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw Error(ErrorCode::Network, std::string("socket: ") + std::strerror(errno));
    socklen_t len = 0;
    sockaddr_storage ss = to_sockaddr(addr, &len);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        int e = errno;
        ::close(fd);
        throw Error(ErrorCode::Network,
                    "cannot bind to " + addr.to_string() + ": " + std::strerror(e));
    }
    return fd;
}

stun::Address local_address(int fd) {
    sockaddr_storage ss{};
    socklen_t len = sizeof ss;
    ::getsockname(fd, reinterpret_cast<sockaddr*>(&ss), &len);
    return from_sockaddr(ss);
}

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

// The names a peer certificate holds, for a name mismatch: its DNS and IP subjectAltNames,
// or its common name when it has none.
std::string certificate_names(X509* cert) {
    if (!cert) return "no name";
    std::string names;
    auto add = [&names](const std::string& n) { names += (names.empty() ? "" : ", ") + n; };
    auto* sans =
        static_cast<GENERAL_NAMES*>(X509_get_ext_d2i(cert, NID_subject_alt_name, nullptr, nullptr));
    for (int i = 0; sans && i < sk_GENERAL_NAME_num(sans); ++i) {
        const GENERAL_NAME* g = sk_GENERAL_NAME_value(sans, i);
        if (g->type == GEN_DNS) {
            add("DNS:" +
                std::string(reinterpret_cast<const char*>(ASN1_STRING_get0_data(g->d.dNSName)),
                            static_cast<size_t>(ASN1_STRING_length(g->d.dNSName))));
        } else if (g->type == GEN_IPADD) {
            const auto* ip = ASN1_STRING_get0_data(g->d.iPAddress);
            const int len = ASN1_STRING_length(g->d.iPAddress);
            char text[INET6_ADDRSTRLEN] = {};
            if ((len == 4 || len == 16) &&
                inet_ntop(len == 4 ? AF_INET : AF_INET6, ip, text, sizeof text))
                add(std::string("IP:") + text);
        }
    }
    if (sans) GENERAL_NAMES_free(sans);
    if (names.empty()) {
        char cn[256] = {};
        if (X509_NAME_get_text_by_NID(X509_get_subject_name(cert), NID_commonName, cn, sizeof cn) >
            0)
            add("CN=" + std::string(cn));
    }
    return names.empty() ? "no name" : names;
}

// The server certificate's names, kept by the verify callback: OpenSSL drops the peer's
// certificate when the handshake fails, and a name mismatch is when they are wanted.
thread_local std::string t_leaf_names;
int keep_leaf_names(int ok, X509_STORE_CTX* store) {
    if (X509_STORE_CTX_get_error_depth(store) == 0)
        t_leaf_names = certificate_names(X509_STORE_CTX_get_current_cert(store));
    return ok;
}

struct Connection::Tls {
    SSL_CTX* ctx = nullptr;
    SSL* ssl = nullptr;
    ~Tls() {
        if (ssl) SSL_free(ssl);
        if (ctx) SSL_CTX_free(ctx);
    }
};

Connection::~Connection() {
    if (tls_ && tls_->ssl) SSL_shutdown(tls_->ssl);
    tls_.reset();
    if (fd_ >= 0) ::close(fd_);
}

namespace {

// Waits for fd to be readable (or writable) until the deadline; false on timeout.
bool wait_fd(int fd, short events, Clock::time_point deadline) {
    for (;;) {
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        if (left <= 0) return false;
        pollfd p{fd, events, 0};
        int n = ::poll(&p, 1, static_cast<int>(left));
        if (n > 0) return true;
        if (n < 0 && errno != EINTR) return false;
        if (n < 0) return false;  // a signal: let the caller look at its stop flag
    }
}

}  // namespace

std::unique_ptr<Connection> Connection::open(Transport t, const stun::Address& server,
                                             const std::string& server_name,
                                             const std::optional<stun::Address>& bind,
                                             const TlsOptions& tls, int timeout_ms) {
    std::unique_ptr<Connection> c(new Connection);
    c->transport_ = t;
    c->server_ = server;
    stun::Address local;
    local.family = server.family;
    if (bind) local = *bind;
    if (t == Transport::Udp) {
        c->fd_ = udp_socket(local);
        return c;
    }
    c->fd_ = ::socket(server.family == 6 ? AF_INET6 : AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (c->fd_ < 0) throw Error(ErrorCode::Network, std::string("socket: ") + std::strerror(errno));
    if (bind) {
        socklen_t len = 0;
        sockaddr_storage ss = to_sockaddr(local, &len);
        if (::bind(c->fd_, reinterpret_cast<sockaddr*>(&ss), len) != 0)
            throw Error(ErrorCode::Network,
                        "cannot bind to " + local.to_string() + ": " + std::strerror(errno));
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    ::fcntl(c->fd_, F_SETFL, ::fcntl(c->fd_, F_GETFL) | O_NONBLOCK);
    socklen_t len = 0;
    sockaddr_storage to = to_sockaddr(server, &len);
    if (::connect(c->fd_, reinterpret_cast<sockaddr*>(&to), len) != 0) {
        if (errno != EINPROGRESS)
            throw Error(ErrorCode::Network, "cannot connect to " + server.to_string() +
                                                " (tcp): " + std::strerror(errno));
        if (!wait_fd(c->fd_, POLLOUT, deadline))
            throw Error(ErrorCode::Network,
                        "no TCP connection to " + server.to_string() + " within the timeout");
        int err = 0;
        socklen_t elen = sizeof err;
        ::getsockopt(c->fd_, SOL_SOCKET, SO_ERROR, &err, &elen);
        if (err != 0)
            throw Error(ErrorCode::Network, "cannot connect to " + server.to_string() +
                                                " (tcp): " + std::strerror(err));
    }
    if (t == Transport::Tcp) return c;

    c->tls_ = std::make_unique<Tls>();
    Tls& s = *c->tls_;
    s.ctx = SSL_CTX_new(TLS_client_method());
    if (!s.ctx) throw Error(ErrorCode::Runtime, ssl_error_text());
    SSL_CTX_set_min_proto_version(s.ctx, TLS1_2_VERSION);
    if (!tls.insecure) {
        SSL_CTX_set_verify(s.ctx, SSL_VERIFY_PEER, keep_leaf_names);
        t_leaf_names = "no name";
        if (!tls.ca_file.empty()) {
            if (SSL_CTX_load_verify_locations(s.ctx, tls.ca_file.c_str(), nullptr) != 1)
                throw Error(ErrorCode::InvalidArgument,
                            "--ca '" + tls.ca_file + "': not a readable PEM certificate");
        } else {
            SSL_CTX_set_default_verify_paths(s.ctx);
        }
    }
    s.ssl = SSL_new(s.ctx);
    SSL_set_fd(s.ssl, c->fd_);
    const bool name_is_ip = stun::Address::parse(server_name + ":1").has_value() ||
                            stun::Address::parse("[" + server_name + "]:1").has_value();
    if (!name_is_ip) SSL_set_tlsext_host_name(s.ssl, server_name.c_str());
    if (!tls.insecure) {
        X509_VERIFY_PARAM* param = SSL_get0_param(s.ssl);
        if (name_is_ip)
            X509_VERIFY_PARAM_set1_ip_asc(param, server_name.c_str());
        else
            X509_VERIFY_PARAM_set1_host(param, server_name.c_str(), 0);
    }
    for (;;) {
        ERR_clear_error();
        int rc = SSL_connect(s.ssl);
        if (rc == 1) break;
        int e = SSL_get_error(s.ssl, rc);
        short want = e == SSL_ERROR_WANT_READ ? POLLIN : e == SSL_ERROR_WANT_WRITE ? POLLOUT : 0;
        if (want == 0) {
            long v = SSL_get_verify_result(s.ssl);
            if (v == X509_V_ERR_HOSTNAME_MISMATCH || v == X509_V_ERR_IP_ADDRESS_MISMATCH)
                throw Error(ErrorCode::Negotiation,
                            "TLS: the certificate of " + server.to_string() + " is for " +
                                t_leaf_names + ", not " + server_name + " (" +
                                X509_verify_cert_error_string(v) +
                                "; connect by a name it holds, or --insecure skips the check)");
            if (v != X509_V_OK)
                throw Error(ErrorCode::Negotiation,
                            "TLS: the certificate of " + server_name +
                                " is not trusted: " + X509_verify_cert_error_string(v) +
                                " (--ca FILE trusts a private CA; --insecure skips the check)");
            throw Error(ErrorCode::Network, "TLS handshake with " + server.to_string() +
                                                " failed: " + ssl_error_text());
        }
        if (!wait_fd(c->fd_, want, deadline))
            throw Error(ErrorCode::Network,
                        "TLS handshake with " + server.to_string() + " did not finish in time");
    }
    c->tls_summary_ =
        std::string(SSL_get_version(s.ssl)) + " " +
        SSL_CIPHER_get_name(SSL_get_current_cipher(s.ssl)) +
        (tls.insecure ? ", certificate NOT verified (--insecure)" : ", certificate verified");
    return c;
}

stun::Address Connection::local() const {
    return local_address(fd_);
}

bool Connection::send(std::string_view message, const stun::Address* to) {
    if (transport_ == Transport::Udp) {
        socklen_t len = 0;
        sockaddr_storage ss = to_sockaddr(to ? *to : server_, &len);
        if (::sendto(fd_, message.data(), message.size(), 0, reinterpret_cast<sockaddr*>(&ss),
                     len) < 0) {
            error_ = std::string("send: ") + std::strerror(errno);
            return false;
        }
        return true;
    }
    // Over streams a ChannelData message is padded to a multiple of four (RFC 8656 §12.5).
    std::string framed(message);
    while (framed.size() % 4) framed.push_back('\0');
    size_t off = 0;
    const auto deadline = Clock::now() + std::chrono::seconds(5);
    while (off < framed.size()) {
        ssize_t n;
        if (tls_) {
            ERR_clear_error();
            int rc =
                SSL_write(tls_->ssl, framed.data() + off, static_cast<int>(framed.size() - off));
            if (rc <= 0) {
                int e = SSL_get_error(tls_->ssl, rc);
                if ((e == SSL_ERROR_WANT_WRITE || e == SSL_ERROR_WANT_READ) &&
                    wait_fd(fd_, e == SSL_ERROR_WANT_WRITE ? POLLOUT : POLLIN, deadline))
                    continue;
                error_ = "TLS write: " + ssl_error_text();
                return false;
            }
            n = rc;
        } else {
            n = ::send(fd_, framed.data() + off, framed.size() - off, MSG_NOSIGNAL);
            if (n < 0) {
                if ((errno == EAGAIN || errno == EINTR) && wait_fd(fd_, POLLOUT, deadline))
                    continue;
                error_ = std::string("send: ") + std::strerror(errno);
                return false;
            }
        }
        off += static_cast<size_t>(n);
    }
    return true;
}

// A whole STUN message or ChannelData message from the front of the stream buffer.
std::optional<Packet> Connection::take_frame() {
    if (rx_.size() < 4) return std::nullopt;
    const auto b = reinterpret_cast<const uint8_t*>(rx_.data());
    const size_t len = (size_t(b[2]) << 8) | b[3];
    size_t total;
    if ((b[0] & 0xC0) == 0x00) {
        total = 20 + len;
    } else if ((b[0] & 0xC0) == 0x40) {
        total = 4 + len;
        total = (total + 3) & ~size_t(3);
    } else {
        // Neither STUN nor ChannelData: the stream cannot be re-synchronised.
        closed_ = true;
        error_ = "the server sent bytes that are neither STUN nor ChannelData";
        rx_.clear();
        return std::nullopt;
    }
    if (rx_.size() < total) return std::nullopt;
    Packet p;
    p.bytes = rx_.substr(0, (b[0] & 0xC0) == 0x40 ? 4 + len : total);
    p.from = server_;
    rx_.erase(0, total);
    return p;
}

bool Connection::fill(int timeout_ms) {
    const bool buffered = tls_ && SSL_pending(tls_->ssl) > 0;
    if (!buffered) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, timeout_ms) <= 0) return false;
    }
    char buf[4096];
    if (tls_) {
        ERR_clear_error();
        int rc = SSL_read(tls_->ssl, buf, sizeof buf);
        if (rc > 0) {
            rx_.append(buf, static_cast<size_t>(rc));
            return true;
        }
        int e = SSL_get_error(tls_->ssl, rc);
        if (e == SSL_ERROR_WANT_READ || e == SSL_ERROR_WANT_WRITE) return true;
        closed_ = true;
        error_ = e == SSL_ERROR_ZERO_RETURN ? "the server closed the TLS connection"
                                            : "TLS read: " + ssl_error_text();
        return false;
    }
    ssize_t n = ::recv(fd_, buf, sizeof buf, 0);
    if (n > 0) {
        rx_.append(buf, static_cast<size_t>(n));
        return true;
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
    closed_ = true;
    error_ = n == 0 ? "the server closed the connection" : std::strerror(errno);
    return false;
}

std::optional<Packet> Connection::receive(int timeout_ms) {
    const auto deadline = Clock::now() + std::chrono::milliseconds(std::max(timeout_ms, 0));
    if (transport_ == Transport::Udp) {
        pollfd p{fd_, POLLIN, 0};
        if (::poll(&p, 1, std::max(timeout_ms, 0)) <= 0) return std::nullopt;
        char buf[2048];
        sockaddr_storage from{};
        socklen_t flen = sizeof from;
        ssize_t n = ::recvfrom(fd_, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 0) return std::nullopt;
        return Packet{std::string(buf, static_cast<size_t>(n)), from_sockaddr(from)};
    }
    for (;;) {
        if (auto p = take_frame()) return p;
        if (closed_) return std::nullopt;
        const auto left =
            std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
        // A zero timeout still reads what the socket holds already.
        if (!fill(static_cast<int>(std::max<long long>(left, 0)))) return std::nullopt;
    }
}

}  // namespace kms::stuntool
