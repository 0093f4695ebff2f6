// kms-stun server and echo: a STUN server (RFC 8489, RFC 5780 with --alt, RFC 3489 clients
// answered too) and a UDP echo peer for relay tests.
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <cstring>
#include <map>
#include <unordered_map>

#include "common/output.hpp"
#include "modes.hpp"

namespace kms::stuntool {

namespace {

stun::Address parse_listen(const std::string& text, const char* option) {
    auto a = stun::Address::parse(text);
    if (!a)
        throw Error(ErrorCode::InvalidArgument,
                    std::string(option) + " '" + text + "': expected ADDR:PORT or [ADDR6]:PORT");
    return *a;
}

// A Unix stream socket that answers each connection with one line of JSON.
int control_socket(const std::string& path) {
    sockaddr_un sa{};
    if (path.size() >= sizeof sa.sun_path)
        throw Error(ErrorCode::InvalidArgument, "--control '" + path + "': path too long");
    int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sa.sun_family = AF_UNIX;
    std::memcpy(sa.sun_path, path.c_str(), path.size());
    ::unlink(path.c_str());
    if (fd < 0 || ::bind(fd, reinterpret_cast<sockaddr*>(&sa), sizeof sa) != 0 ||
        ::listen(fd, 8) != 0)
        throw Error(ErrorCode::Io, "--control '" + path + "': " + std::strerror(errno));
    return fd;
}

// Per-source token buckets: rate requests per second, bursts of the same size.
class RateLimiter {
  public:
    explicit RateLimiter(double rate) : rate_(rate) {}
    bool allow(const stun::Address& from) {
        if (rate_ <= 0) return true;
        const double now = ms_since(start_) / 1000.0;
        std::string key(reinterpret_cast<const char*>(from.ip.data()), from.family == 6 ? 16 : 4);
        // Bounded memory whatever the sources: forget everyone when the table is full.
        if (buckets_.size() > 65536) buckets_.clear();
        auto [it, fresh] = buckets_.try_emplace(key, Bucket{rate_, now});
        Bucket& b = it->second;
        if (!fresh) {
            b.tokens = std::min(rate_, b.tokens + (now - b.at) * rate_);
            b.at = now;
        }
        if (b.tokens < 1) return false;
        b.tokens -= 1;
        return true;
    }

  private:
    struct Bucket {
        double tokens;
        double at;
    };
    double rate_;
    Clock::time_point start_ = Clock::now();
    std::unordered_map<std::string, Bucket> buckets_;
};

// Nonces that carry their own expiry, so the server keeps no state per client:
// hex(expiry) followed by an HMAC of it under a key made at start-up.
class Nonces {
  public:
    Nonces() { RAND_bytes(key_, sizeof key_); }
    std::string make() const {
        char t[17];
        std::snprintf(t, sizeof t, "%016llx", static_cast<unsigned long long>(now_s() + 600));
        return std::string(t) + mac(t);
    }
    enum class Check { Ok, Stale, Bad };
    Check check(const std::string& nonce) const {
        if (nonce.size() != 16 + 40) return Check::Bad;
        const std::string t = nonce.substr(0, 16);
        if (mac(t) != nonce.substr(16)) return Check::Bad;
        return std::strtoull(t.c_str(), nullptr, 16) < now_s() ? Check::Stale : Check::Ok;
    }

  private:
    static unsigned long long now_s() {
        return static_cast<unsigned long long>(std::time(nullptr));
    }
    std::string mac(const std::string& t) const {
        unsigned char out[20];
        unsigned len = 0;
        HMAC(EVP_sha1(), key_, sizeof key_, reinterpret_cast<const unsigned char*>(t.data()),
             t.size(), out, &len);
        std::string hex;
        char h[3];
        for (unsigned i = 0; i < len; ++i) {
            std::snprintf(h, sizeof h, "%02x", out[i]);
            hex += h;
        }
        return hex;
    }
    unsigned char key_[32];
};

}  // namespace

int run_server(app::Tool& tool, const ServerOptions& o) {
    const stun::Address primary = parse_listen(o.listen, "--listen");
    // Sockets by index: bit 0 set = the other port, bit 1 set = the other address (RFC 5780 §4
    // needs all four combinations to answer CHANGE-REQUEST).
    std::vector<stun::Address> addrs{primary};
    if (!o.alt.empty()) {
        const stun::Address alt = parse_listen(o.alt, "--alt");
        if (alt.family != primary.family)
            throw Error(ErrorCode::InvalidArgument, "--alt must be of the same family as --listen");
        if (alt.ip == primary.ip || (alt.port == primary.port && alt.port != 0))
            throw Error(ErrorCode::InvalidArgument,
                        "--alt needs another address and another port than --listen (RFC 5780)");
        stun::Address a = primary, b = alt, c = alt;
        a.port = alt.port;
        c.port = primary.port;
        addrs = {primary, a, c, b};
    }
    std::string user, password;
    if (!o.user.empty()) {
        size_t colon = o.user.find(':');
        if (colon == std::string::npos || colon == 0)
            throw Error(ErrorCode::InvalidArgument, "--user expects USER:PASSWORD");
        user = o.user.substr(0, colon);
        password = o.user.substr(colon + 1);
    }
    const std::string key = user.empty() ? "" : stun::long_term_key(user, o.realm, password);
    // Port 0 takes a free port: the first socket on an address learns it, and the sockets that
    // share that port (RFC 5780's four combinations) then ask for the same one.
    std::vector<int> fds;
    for (size_t i = 0; i < addrs.size(); ++i) {
        fds.push_back(udp_socket(addrs[i]));
        const uint16_t got = local_address(fds.back()).port;
        if (addrs[i].port != 0) continue;
        for (size_t k = i; k < addrs.size(); ++k)
            if (addrs[k].port == 0 && (k == i || (k ^ i) == 2)) addrs[k].port = got;
    }
    const int control = o.control.empty() ? -1 : control_socket(o.control);
    install_signals();
    tool.say(0, "STUN server on " + addrs[0].to_string() +
                    (o.alt.empty() ? "" : " with RFC 5780 alternate " + addrs[3].to_string()));
    Json listening{{"listen", addrs[0].to_string()}};
    if (!o.alt.empty()) listening["alt"] = addrs[3].to_string();
    tool.events().emit("listening", listening);

    struct {
        unsigned long long requests = 0, responses = 0, malformed = 0, ignored = 0, limited = 0,
                           unauthorized = 0, classic = 0, change_requests = 0;
        // Error responses by code: the only ones this server sends.
        std::map<int, unsigned long long> errors{{400, 0}, {401, 0}, {420, 0}, {438, 0}};
    } counters;
    auto counters_json = [&] {
        Json j;
        j["listen"] = addrs[0].to_string();
        if (!o.alt.empty()) j["alt"] = addrs[3].to_string();
        j["requests"] = counters.requests;
        j["responses"] = counters.responses;
        j["malformed"] = counters.malformed;
        j["ignored"] = counters.ignored;
        j["limited"] = counters.limited;
        j["unauthorized"] = counters.unauthorized;
        j["classic"] = counters.classic;
        j["changeRequests"] = counters.change_requests;
        Json errors = Json::object();
        for (const auto& [code, n] : counters.errors) errors[std::to_string(code)] = n;
        j["errors"] = errors;
        return j;
    };
    // Responses wait here per sending socket and leave in one sendmmsg per batch received.
    struct Reply {
        sockaddr_storage to;
        socklen_t len;
        std::string bytes;
        Json event;
    };
    std::vector<std::vector<Reply>> pending(fds.size());
    RateLimiter limiter(o.rate);
    Nonces nonces;
    std::vector<pollfd> polls;
    for (int fd : fds) polls.push_back({fd, POLLIN, 0});
    if (control >= 0) polls.push_back({control, POLLIN, 0});
    const auto start = Clock::now();
    const double duration_s = tool.common().duration;
    constexpr size_t kBatch = 32;
    std::vector<std::array<char, 2048>> bufs(kBatch);
    sockaddr_storage froms[kBatch];
    mmsghdr msgs[kBatch];
    iovec iov[kBatch];

    auto answer = [&](size_t index, std::string_view data, const sockaddr_storage& from_ss) {
        auto parsed = stun::parse(data, true);
        if (!parsed.message) {
            ++counters.malformed;
            return;
        }
        const stun::Message& m = *parsed.message;
        if (m.method != stun::Binding || m.cls != stun::Request) {
            ++counters.ignored;
            return;
        }
        ++counters.requests;
        stun::Address peer = from_sockaddr(from_ss);
        if (!limiter.allow(peer)) {
            ++counters.limited;
            return;
        }
        // RFC 8489 §14.7: a request with a bad FINGERPRINT is discarded.
        if (m.find(stun::Fingerprint) && !m.fingerprint_ok()) {
            ++counters.malformed;
            return;
        }
        if (m.classic) ++counters.classic;
        size_t out = index;
        stun::Builder b(stun::Binding, stun::Success, m);
        bool failed = false;
        int failed_code = 0;
        auto fail = [&](int code, const char* reason) {
            b = stun::Builder(stun::Binding, stun::Failure, m);
            b.add_error(code, reason);
            failed = true;
            failed_code = code;
        };
        // Long-term credentials, RFC 8489 §9.2.
        if (!key.empty()) {
            const auto* mi = m.find(stun::MessageIntegrity);
            const std::string nonce = m.text(stun::Nonce);
            if (!mi || !m.find(stun::Username) || !m.find(stun::Realm) || !m.find(stun::Nonce)) {
                fail(401, "Unauthenticated");
            } else if (auto c = nonces.check(nonce); c != Nonces::Check::Ok) {
                fail(438, "Stale Nonce");
            } else if (m.text(stun::Username) != user || m.text(stun::Realm) != o.realm ||
                       !m.integrity_ok(key)) {
                fail(401, "Unauthenticated");
            }
            if (failed) {
                ++counters.unauthorized;
                b.add(stun::Realm, o.realm).add(stun::Nonce, nonces.make());
            }
        }
        if (!failed) {
            if (const auto* cr = m.find(stun::ChangeRequest)) {
                ++counters.change_requests;
                if (cr->value.size() != 4) {
                    fail(400, "Bad Request");
                } else if (addrs.size() == 1) {
                    // Without a second address CHANGE-REQUEST is an attribute we cannot honour
                    // (RFC 5780 §7.2): 420 tells the client this server has no RFC 5780 mode.
                    fail(420, "Unknown Attribute");
                    b.add(0x000a, std::string("\x00\x03", 2));
                } else {
                    const uint8_t flags = static_cast<uint8_t>(cr->value[3]);
                    if (flags & 0x04) out ^= 2;
                    if (flags & 0x02) out ^= 1;
                }
            }
        }
        if (!failed) {
            if (const auto* rp = m.find(stun::ResponsePort)) {
                if (rp->value.size() != 4) {
                    fail(400, "Bad Request");
                } else {
                    peer.port =
                        static_cast<uint16_t>((uint8_t(rp->value[0]) << 8) | uint8_t(rp->value[1]));
                }
            }
        }
        const stun::Address mapped = from_sockaddr(from_ss);
        if (!failed) {
            if (!m.classic) b.add_address(stun::XorMappedAddress, mapped);
            // RFC 3489 clients only read MAPPED-ADDRESS.
            b.add_address(stun::MappedAddress, mapped);
            if (m.classic) {
                b.add_address(stun::SourceAddress, addrs[out]);
                if (addrs.size() == 4) b.add_address(stun::ChangedAddress, addrs[index ^ 3]);
            } else {
                b.add_address(stun::ResponseOrigin, addrs[out]);
                if (addrs.size() == 4) b.add_address(stun::OtherAddress, addrs[index ^ 3]);
            }
        }
        if (failed) ++counters.errors[failed_code];
        b.add(stun::Software, software());
        if (!key.empty() && !failed) b.integrity(key);
        if (!m.classic) b.fingerprint();
        Reply reply;
        reply.to = to_sockaddr(peer, &reply.len);
        reply.bytes = b.bytes();
        if (tool.events().enabled()) {
            reply.event = Json{{"from", mapped.to_string()},
                               {"to", addrs[index].to_string()},
                               {"answeredFrom", addrs[out].to_string()},
                               {"status", failed ? "error" : "ok"}};
            if (failed) reply.event["code"] = failed_code;
        }
        pending[out].push_back(std::move(reply));
    };
    auto flush = [&] {
        for (size_t i = 0; i < fds.size(); ++i) {
            auto& q = pending[i];
            size_t done = 0;
            while (done < q.size()) {
                constexpr size_t kMax = 64;
                mmsghdr out_msgs[kMax];
                iovec out_iov[kMax];
                const size_t n = std::min(kMax, q.size() - done);
                for (size_t k = 0; k < n; ++k) {
                    Reply& r = q[done + k];
                    out_iov[k] = {r.bytes.data(), r.bytes.size()};
                    out_msgs[k] = {};
                    out_msgs[k].msg_hdr.msg_name = &r.to;
                    out_msgs[k].msg_hdr.msg_namelen = r.len;
                    out_msgs[k].msg_hdr.msg_iov = &out_iov[k];
                    out_msgs[k].msg_hdr.msg_iovlen = 1;
                }
                const int sent = ::sendmmsg(fds[i], out_msgs, static_cast<unsigned>(n), 0);
                // A datagram the socket refuses (an unreachable source) is skipped, not retried.
                const size_t step = sent > 0 ? static_cast<size_t>(sent) : 1;
                if (sent > 0) {
                    counters.responses += static_cast<unsigned long long>(sent);
                    if (tool.events().enabled())
                        for (size_t k = 0; k < step; ++k)
                            tool.events().emit("stun-request", q[done + k].event);
                }
                done += step;
            }
            q.clear();
        }
    };

    while (!g_stop) {
        if (duration_s > 0 && ms_since(start) >= duration_s * 1000) break;
        if (::poll(polls.data(), polls.size(), 200) <= 0) continue;
        for (size_t i = 0; i < fds.size(); ++i) {
            if (!(polls[i].revents & POLLIN)) continue;
            // Drain what is queued in batches, bounded so no socket starves the others.
            for (int round = 0; round < 4; ++round) {
                for (size_t k = 0; k < kBatch; ++k) {
                    iov[k] = {bufs[k].data(), bufs[k].size()};
                    msgs[k] = {};
                    msgs[k].msg_hdr.msg_name = &froms[k];
                    msgs[k].msg_hdr.msg_namelen = sizeof froms[k];
                    msgs[k].msg_hdr.msg_iov = &iov[k];
                    msgs[k].msg_hdr.msg_iovlen = 1;
                }
                const int got = ::recvmmsg(fds[i], msgs, kBatch, MSG_DONTWAIT, nullptr);
                if (got <= 0) break;
                for (int k = 0; k < got; ++k)
                    answer(i, std::string_view(bufs[k].data(), msgs[k].msg_len), froms[k]);
                flush();
                if (static_cast<size_t>(got) < kBatch) break;
            }
        }
        if (control >= 0 && (polls.back().revents & POLLIN)) {
            int c = ::accept4(control, nullptr, nullptr, SOCK_CLOEXEC);
            if (c >= 0) {
                const std::string line = counters_json().dump() + "\n";
                (void)!::send(c, line.data(), line.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
                ::close(c);
            }
        }
    }
    for (int fd : fds) ::close(fd);
    if (control >= 0) {
        ::close(control);
        ::unlink(o.control.c_str());
    }
    if (tool.common().quiet && !tool.common().json) return app::kOk;
    app::Output out(tool.common().json, tool.common().json ? stdout : stderr);
    const Json final_counters = counters_json();
    for (auto it = final_counters.begin(); it != final_counters.end(); ++it)
        out.field(it.key(), it.key(), it.value());
    out.finish();
    return app::kOk;
}

int run_echo(app::Tool& tool, const std::string& listen) {
    stun::Address addr = parse_listen(listen, "--listen");
    int fd = udp_socket(addr);
    addr.port = local_address(fd).port;  // --listen ADDR:0 takes a free port
    install_signals();
    tool.say(0, "UDP echo on " + addr.to_string());
    tool.events().emit("listening", Json{{"listen", addr.to_string()}});
    unsigned long long packets = 0, bytes = 0;
    const auto start = Clock::now();
    const double duration_s = tool.common().duration;
    char buf[65536];
    while (!g_stop) {
        if (duration_s > 0 && ms_since(start) >= duration_s * 1000) break;
        pollfd p{fd, POLLIN, 0};
        if (::poll(&p, 1, 200) <= 0) continue;
        sockaddr_storage from{};
        socklen_t flen = sizeof from;
        ssize_t n = ::recvfrom(fd, buf, sizeof buf, 0, reinterpret_cast<sockaddr*>(&from), &flen);
        if (n < 0) continue;
        if (::sendto(fd, buf, static_cast<size_t>(n), 0, reinterpret_cast<const sockaddr*>(&from),
                     flen) > 0) {
            ++packets;
            bytes += static_cast<unsigned long long>(n);
        }
    }
    ::close(fd);
    if (tool.common().quiet && !tool.common().json) return app::kOk;
    app::Output out(tool.common().json, tool.common().json ? stdout : stderr);
    out.field("listen", "listened on", addr.to_string());
    out.field("packets", "packets echoed", packets);
    out.field("bytes", "bytes echoed", bytes);
    out.finish();
    return app::kOk;
}

}  // namespace kms::stuntool
