// kms-stun: STUN from a terminal. This version has the binding client (one request or a ping),
// a STUN server and a UDP echo peer; NAT behaviour, TURN and ICE gathering come later.
#include <arpa/inet.h>
#include <netdb.h>
#include <poll.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cmath>
#include <cstring>
#include <map>

#include "common/output.hpp"
#include "common/tool.hpp"
#include "kms/stun.hpp"
#include "kms/version.hpp"

namespace {

using namespace kms;
using namespace kms::app;
using Clock = std::chrono::steady_clock;

constexpr const char* kExamples =
    "  # my public address as a STUN server sees it\n"
    "  kms-stun binding stun:stun.example.org\n"
    "  # ping a server: 10 requests 200 ms apart, loss and RTT at the end, as JSON\n"
    "  kms-stun binding stun:127.0.0.1:3478 --count 10 --interval 200 --json\n"
    "  # a STUN server on loopback for 60 s, counters on exit\n"
    "  kms-stun server --listen 127.0.0.1:3478 -t 60 --json\n"
    "  # a UDP echo peer\n"
    "  kms-stun echo --listen 127.0.0.1:4000\n";

std::atomic<bool> g_stop{false};
std::atomic<int> g_signals{0};

void on_signal(int) {
    if (g_signals.fetch_add(1) >= 1) _exit(kAborted);
    g_stop = true;
}

void install_signals() {
    struct sigaction sa {};
    sa.sa_handler = on_signal;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, nullptr);
    sigaction(SIGTERM, &sa, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
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

// A UDP socket bound to addr (port 0: any). Throws Error(Network).
int udp_socket(const stun::Address& addr) {
    int fd = ::socket(addr.family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw Error(ErrorCode::Network, std::string("socket: ") + std::strerror(errno));
    socklen_t len = 0;
    sockaddr_storage ss = to_sockaddr(addr, &len);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&ss), len) != 0) {
        int e = errno;
        ::close(fd);
        throw Error(ErrorCode::Network,
                    "cannot listen on " + addr.to_string() + ": " + std::strerror(e));
    }
    return fd;
}

stun::Address parse_listen(const std::string& text, const char* option) {
    auto a = stun::Address::parse(text);
    if (!a)
        throw Error(ErrorCode::InvalidArgument,
                    std::string(option) + " '" + text + "': expected ADDR:PORT or [ADDR6]:PORT");
    return *a;
}

// stun:host[:port][?transport=udp] -> host, port. Other transports are refused with a reason.
std::pair<std::string, uint16_t> parse_stun_uri(const std::string& uri) {
    std::string rest;
    if (uri.rfind("stun:", 0) == 0)
        rest = uri.substr(5);
    else if (uri.rfind("stuns:", 0) == 0)
        throw Error(ErrorCode::InvalidArgument,
                    "'" + uri + "': stuns: (TLS) is not in this version of kms-stun; use stun:");
    else
        throw Error(ErrorCode::InvalidArgument, "'" + uri + "': expected stun:HOST[:PORT]");
    if (rest.rfind("//", 0) == 0) rest = rest.substr(2);
    if (size_t q = rest.find('?'); q != std::string::npos) {
        std::string query = rest.substr(q + 1);
        rest.resize(q);
        if (query != "transport=udp")
            throw Error(ErrorCode::InvalidArgument,
                        "'" + uri + "': only ?transport=udp is in this version of kms-stun");
    }
    uint16_t port = 3478;
    std::string host = rest;
    if (!rest.empty() && rest[0] == '[') {
        size_t close = rest.find(']');
        if (close == std::string::npos)
            throw Error(ErrorCode::InvalidArgument, "'" + uri + "': unclosed [");
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':')
                throw Error(ErrorCode::InvalidArgument, "'" + uri + "': bad port");
            rest = rest.substr(close + 2);
        } else {
            rest.clear();
        }
        if (!rest.empty()) {
            unsigned long p = std::strtoul(rest.c_str(), nullptr, 10);
            if (p == 0 || p > 65535)
                throw Error(ErrorCode::InvalidArgument, "'" + uri + "': bad port");
            port = static_cast<uint16_t>(p);
        }
    } else if (size_t colon = rest.rfind(':'); colon != std::string::npos) {
        host = rest.substr(0, colon);
        char* end = nullptr;
        unsigned long p = std::strtoul(rest.c_str() + colon + 1, &end, 10);
        if (*end != '\0' || p == 0 || p > 65535)
            throw Error(ErrorCode::InvalidArgument, "'" + uri + "': bad port");
        port = static_cast<uint16_t>(p);
    }
    if (host.empty()) throw Error(ErrorCode::InvalidArgument, "'" + uri + "': no host");
    return {host, port};
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

double ms_since(Clock::time_point t) {
    return std::chrono::duration<double, std::milli>(Clock::now() - t).count();
}

struct BindingOptions {
    std::string uri;
    bool v4 = false, v6 = false;
    std::string bind;
    unsigned count = 1;
    unsigned interval_ms = 1000;
    unsigned rto_ms = 500;
    unsigned retries = 7;  // RFC 8489 §6.2.1: Rc
};

struct BindingReply {
    bool ok = false;
    double rtt_ms = 0;
    std::string mapped, software, other, origin, error;
    int error_code = 0;
};

// One transaction, RFC 8489 §6.2.1: send, wait RTO, double it, Rc sends in all, then wait Rm
// (16) times the initial RTO after the last one.
BindingReply transact(int fd, const stun::Address& server, const BindingOptions& o) {
    const stun::TransactionId id = stun::new_transaction();
    stun::Builder b(stun::Binding, stun::Request, id);
    b.add(stun::Software, std::string("kms-stun ") + kms::version()).fingerprint();
    socklen_t len = 0;
    sockaddr_storage to = to_sockaddr(server, &len);
    BindingReply reply;
    double wait = o.rto_ms;
    for (unsigned attempt = 0; attempt < o.retries && !g_stop; ++attempt) {
        const auto sent = Clock::now();
        if (::sendto(fd, b.bytes().data(), b.bytes().size(), 0, reinterpret_cast<sockaddr*>(&to),
                     len) < 0) {
            reply.error = std::string("send: ") + std::strerror(errno);
            return reply;
        }
        // The last attempt waits Rm x RTO instead of the doubled RTO.
        const double this_wait = attempt + 1 == o.retries ? 16.0 * o.rto_ms : wait;
        while (!g_stop) {
            const double left = this_wait - ms_since(sent);
            if (left <= 0) break;
            pollfd p{fd, POLLIN, 0};
            if (::poll(&p, 1, static_cast<int>(std::ceil(left))) <= 0) continue;
            char buf[1500];
            sockaddr_storage from{};
            socklen_t flen = sizeof from;
            ssize_t n =
                ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
            if (n <= 0) continue;
            auto parsed = stun::parse(std::string_view(buf, static_cast<size_t>(n)));
            if (!parsed.message || parsed.message->transaction != id) continue;  // not ours
            const auto& m = *parsed.message;
            if (m.find(stun::Fingerprint) && !m.fingerprint_ok()) continue;
            reply.rtt_ms = ms_since(sent);
            reply.software = m.text(stun::Software);
            if (auto e = m.error()) {
                reply.error_code = e->first;
                reply.error = std::to_string(e->first) + " " + e->second;
                return reply;
            }
            auto mapped = m.address(stun::XorMappedAddress);
            if (!mapped) mapped = m.address(stun::MappedAddress);
            if (!mapped) {
                reply.error = "the response has no mapped address";
                return reply;
            }
            reply.ok = true;
            reply.mapped = mapped->to_string();
            if (auto a = m.address(stun::OtherAddress)) reply.other = a->to_string();
            if (auto a = m.address(stun::ResponseOrigin)) reply.origin = a->to_string();
            return reply;
        }
        wait *= 2;
    }
    reply.error = "no response";
    return reply;
}

int binding(Tool& tool, const BindingOptions& o) {
    if (o.count == 0) throw Error(ErrorCode::InvalidArgument, "--count must be at least 1");
    if (o.retries == 0) throw Error(ErrorCode::InvalidArgument, "--retries must be at least 1");
    auto [host, port] = parse_stun_uri(o.uri);
    const int family = o.v4 ? 4 : o.v6 ? 6 : 0;
    stun::Address server = resolve(host, port, family);
    stun::Address local;
    local.family = server.family;
    if (!o.bind.empty()) {
        auto b = stun::Address::parse(o.bind);
        if (!b)
            b = stun::Address::parse(o.bind.find(':') == std::string::npos ? o.bind + ":0"
                                                                           : "[" + o.bind + "]:0");
        if (!b)
            throw Error(ErrorCode::InvalidArgument,
                        "--bind '" + o.bind + "': expected ADDR[:PORT]");
        local = *b;
    }
    int fd = udp_socket(local);
    install_signals();
    std::vector<double> rtts;
    BindingReply last, first_ok;
    unsigned sent = 0;
    for (unsigned i = 0; i < o.count && !g_stop; ++i) {
        const auto start = Clock::now();
        ++sent;
        BindingReply r = transact(fd, server, o);
        if (r.ok)
            tool.events().emit("stun-response",
                               Json{{"server", server.to_string()},
                                    {"mapped", r.mapped},
                                    {"rttMs", std::round(r.rtt_ms * 1000) / 1000}});
        else
            tool.events().emit("stun-error",
                               Json{{"server", server.to_string()}, {"error", r.error}});
        if (r.ok) {
            rtts.push_back(r.rtt_ms);
            if (!first_ok.ok) first_ok = r;
            if (o.count > 1)
                tool.say(0, "reply from " + server.to_string() + ": mapped " + r.mapped + " rtt " +
                                std::to_string(r.rtt_ms).substr(0, 5) + " ms");
        } else if (o.count > 1) {
            tool.say(0, "request " + std::to_string(i + 1) + ": " + r.error);
        }
        last = r;
        if (r.error_code) break;
        const double left = o.interval_ms - ms_since(start);
        if (i + 1 < o.count && left > 0) ::usleep(static_cast<useconds_t>(left * 1000));
    }
    ::close(fd);
    const BindingReply& shown = first_ok.ok ? first_ok : last;
    Output out(tool.common().json);
    out.field("server", "server", server.to_string());
    if (shown.ok) {
        out.field("mapped", "mapped address", shown.mapped);
        if (!shown.software.empty()) out.field("software", "server software", shown.software);
        if (!shown.other.empty()) out.field("otherAddress", "other address", shown.other);
        if (!shown.origin.empty()) out.field("responseOrigin", "response origin", shown.origin);
    }
    if (!rtts.empty()) {
        double sum = 0, mn = rtts[0], mx = rtts[0];
        for (double r : rtts) sum += r, mn = std::min(mn, r), mx = std::max(mx, r);
        const double mean = sum / rtts.size();
        double var = 0;
        for (double r : rtts) var += (r - mean) * (r - mean);
        const double sd = std::sqrt(var / rtts.size());
        auto round3 = [](double v) { return std::round(v * 1000) / 1000; };
        if (o.count == 1) {
            out.field("rttMs", "rtt (ms)", round3(rtts[0]));
        } else {
            out.field("sent", "sent", sent);
            out.field("received", "received", rtts.size());
            out.field("loss", "loss (%)", round3(100.0 * (sent - rtts.size()) / sent));
            out.object("rttMs", "rtt (ms)",
                       Json{{"min", round3(mn)},
                            {"mean", round3(mean)},
                            {"max", round3(mx)},
                            {"stddev", round3(sd)}});
        }
    } else if (o.count > 1) {
        out.field("sent", "sent", sent);
        out.field("received", "received", 0);
        out.field("loss", "loss (%)", 100.0);
    }
    if (!shown.ok) out.field("error", "error", shown.error);
    out.finish();
    if (shown.error_code) {
        std::fprintf(stderr, "kms-stun: %s answered %s\n", server.to_string().c_str(),
                     shown.error.c_str());
        return kNegotiation;
    }
    if (rtts.empty()) {
        if (g_stop) return kOk;
        std::fprintf(stderr, "kms-stun: no response from %s after %u requests (%s)\n",
                     server.to_string().c_str(), sent, shown.error.c_str());
        return kNetwork;
    }
    return kOk;
}

// The server and the echo peer share this loop: poll, answer, until a signal or --duration.
template <typename Handle>
void serve(int fd, double duration_s, Handle&& handle) {
    install_signals();
    const auto start = Clock::now();
    char buf[2048];
    while (!g_stop) {
        if (duration_s > 0 && ms_since(start) >= duration_s * 1000) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        sockaddr_storage from{};
        socklen_t flen = sizeof from;
        ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 0) continue;
        handle(std::string_view(buf, static_cast<size_t>(n)), from, flen);
    }
}

int server(Tool& tool, const std::string& listen) {
    const stun::Address addr = parse_listen(listen, "--listen");
    int fd = udp_socket(addr);
    tool.say(0, "STUN server on " + addr.to_string());
    std::map<std::string, unsigned long long> counters{
        {"requests", 0}, {"responses", 0}, {"malformed", 0}, {"ignored", 0}};
    const std::string software = std::string("kms-stun ") + kms::version();
    serve(fd, tool.common().duration,
          [&](std::string_view data, const sockaddr_storage& from, socklen_t flen) {
              auto parsed = stun::parse(data);
              if (!parsed.message) {
                  ++counters["malformed"];
                  return;
              }
              const auto& m = *parsed.message;
              if (m.method != stun::Binding || m.cls != stun::Request) {
                  ++counters["ignored"];
                  return;
              }
              ++counters["requests"];
              // RFC 8489 §14.7: a request with a bad FINGERPRINT is discarded.
              if (m.find(stun::Fingerprint) && !m.fingerprint_ok()) {
                  ++counters["malformed"];
                  return;
              }
              stun::Builder b(stun::Binding, stun::Success, m.transaction);
              const stun::Address peer = from_sockaddr(from);
              b.add_address(stun::XorMappedAddress, peer);
              // RFC 3489 clients only read MAPPED-ADDRESS.
              b.add_address(stun::MappedAddress, peer);
              b.add_address(stun::ResponseOrigin, addr);
              b.add(stun::Software, software).fingerprint();
              if (::sendto(fd, b.bytes().data(), b.bytes().size(), 0,
                           reinterpret_cast<const sockaddr*>(&from), flen) > 0) {
                  ++counters["responses"];
                  tool.events().emit("stun-request", Json{{"from", peer.to_string()}});
              }
          });
    ::close(fd);
    Output out(tool.common().json, tool.common().json ? stdout : stderr);
    out.field("listen", "listened on", addr.to_string());
    for (const auto& [k, v] : counters) out.field(k, k, v);
    out.finish();
    return kOk;
}

int echo(Tool& tool, const std::string& listen) {
    const stun::Address addr = parse_listen(listen, "--listen");
    int fd = udp_socket(addr);
    tool.say(0, "UDP echo on " + addr.to_string());
    unsigned long long packets = 0, bytes = 0;
    serve(fd, tool.common().duration,
          [&](std::string_view data, const sockaddr_storage& from, socklen_t flen) {
              if (::sendto(fd, data.data(), data.size(), 0,
                           reinterpret_cast<const sockaddr*>(&from), flen) > 0) {
                  ++packets;
                  bytes += data.size();
              }
          });
    ::close(fd);
    Output out(tool.common().json, tool.common().json ? stdout : stderr);
    out.field("listen", "listened on", addr.to_string());
    out.field("packets", "packets echoed", packets);
    out.field("bytes", "bytes echoed", bytes);
    out.finish();
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    Tool tool(
        {"kms-stun",
         "kms-stun: STUN binding requests, a STUN server and a UDP echo peer, from a terminal",
         kExamples});
    CLI::App& app = tool.app();
    app.require_subcommand(1, 1);
    app.fallthrough();
    BindingOptions b;
    CLI::App* bind_cmd =
        app.add_subcommand("binding", "Ask a STUN server for our mapped address (RFC 8489)");
    bind_cmd->add_option("uri", b.uri, "stun:HOST[:PORT][?transport=udp]")->required();
    auto* v4 = bind_cmd->add_flag("-4", b.v4, "IPv4 only");
    bind_cmd->add_flag("-6", b.v6, "IPv6 only")->excludes(v4);
    bind_cmd->add_option("--bind", b.bind, "Local ADDR[:PORT] to send from")
        ->option_text("ADDR[:PORT]");
    bind_cmd->add_option("--count", b.count, "Send N requests, ping style (default 1)")
        ->option_text("N");
    bind_cmd
        ->add_option("--interval", b.interval_ms, "Milliseconds between requests (default 1000)")
        ->option_text("MS");
    bind_cmd->add_option("--rto", b.rto_ms, "Initial retransmission timeout in ms (RFC 8489: 500)")
        ->check(CLI::Range(1u, 60000u))
        ->option_text("MS");
    bind_cmd->add_option("--retries", b.retries, "Requests sent per transaction, Rc (RFC 8489: 7)")
        ->check(CLI::Range(1u, 20u))
        ->option_text("N");
    std::string listen;
    CLI::App* server_cmd = app.add_subcommand("server", "Answer STUN binding requests");
    server_cmd->add_option("--listen", listen, "ADDR:PORT to listen on")
        ->required()
        ->option_text("ADDR:PORT");
    std::string echo_listen;
    CLI::App* echo_cmd = app.add_subcommand("echo", "Send every UDP datagram back to its sender");
    echo_cmd->add_option("--listen", echo_listen, "ADDR:PORT to listen on")
        ->required()
        ->option_text("ADDR:PORT");
    int rc = tool.run(argc, argv, [&] {
        if (bind_cmd->parsed()) return binding(tool, b);
        if (server_cmd->parsed()) return server(tool, listen);
        if (echo_cmd->parsed()) return echo(tool, echo_listen);
        return static_cast<int>(kUsage);
    });
    std::fflush(stdout);
    std::fflush(stderr);
    return rc;
}
