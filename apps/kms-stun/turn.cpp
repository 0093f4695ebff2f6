// kms-stun turn: allocate on a TURN server (RFC 8656) with a step-by-step trace, then send
// packets through the relay to an echo peer and back, or run a bounded load of allocations.
#include <openssl/evp.h>
#include <openssl/hmac.h>
#include <poll.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <cmath>
#include <cstring>
#include <ctime>

#include "common/output.hpp"
#include "kms/uri.hpp"
#include "modes.hpp"

namespace kms::stuntool {

namespace {

constexpr uint16_t kFirstChannel = 0x4000;

std::string base64(const unsigned char* data, size_t n) {
    std::string out(4 * ((n + 2) / 3) + 1, '\0');
    const int len =
        EVP_EncodeBlock(reinterpret_cast<unsigned char*>(out.data()), data, static_cast<int>(n));
    out.resize(static_cast<size_t>(len));
    return out;
}

std::string u32(uint32_t v) {
    std::string s(4, '\0');
    s[0] = static_cast<char>(v >> 24);
    s[1] = static_cast<char>(v >> 16);
    s[2] = static_cast<char>(v >> 8);
    s[3] = static_cast<char>(v);
    return s;
}

uint32_t be32(std::string_view v) {
    if (v.size() < 4) return 0;
    return (uint32_t(uint8_t(v[0])) << 24) | (uint32_t(uint8_t(v[1])) << 16) |
           (uint32_t(uint8_t(v[2])) << 8) | uint8_t(v[3]);
}

const char* method_name(uint16_t m) {
    switch (m) {
        case stun::Allocate:
            return "Allocate";
        case stun::Refresh:
            return "Refresh";
        case stun::CreatePermission:
            return "CreatePermission";
        case stun::ChannelBind:
            return "ChannelBind";
        case stun::Binding:
            return "Binding";
    }
    return "?";
}

// One TURN client session over one connection: the credentials, the nonce and the trace.
class Session {
  public:
    Session(app::Tool& tool, Connection& conn, const TurnOptions& o, std::string user,
            std::string password, bool quiet_trace)
        : tool_(tool),
          conn_(conn),
          o_(o),
          user_(std::move(user)),
          password_(std::move(password)),
          quiet_(quiet_trace) {}

    Json trace = Json::array();
    std::string realm, nonce, server_software;
    int last_code = 0;
    std::string last_reason;
    int stale_nonces = 0;

    void set_auth(const std::string& r, const std::string& n) {
        realm = r;
        nonce = n;
        key_ = stun::long_term_key(user_, realm, password_);
    }

    // Sends an authenticated request (once the realm is known), following 401 and 438 as RFC
    // 8656 §7.3 and RFC 8489 §9.2.5 say: at most one retry for a fresh challenge and two for
    // stale nonces. add_attrs adds the method's own attributes.
    std::optional<Response> request(uint16_t method,
                                    const std::function<void(stun::Builder&)>& add_attrs,
                                    const std::function<void(const Packet&)>& on_other = {}) {
        bool challenged = false;
        for (int round = 0; round < 4; ++round) {
            const stun::TransactionId id = stun::new_transaction();
            stun::Builder b(method, stun::Request, id);
            add_attrs(b);
            b.add(stun::Software, software());
            const bool authed = !realm.empty();
            if (authed) {
                b.add(stun::Username, user_).add(stun::Realm, realm).add(stun::Nonce, nonce);
                b.integrity(key_);
            }
            b.fingerprint();
            std::string why;
            auto r = transact(conn_, b.bytes(), id, o_.timing, nullptr, on_other, &why);
            Json step{{"request", method_name(method)}, {"authenticated", authed}};
            if (!r) {
                step["error"] = why;
                record(step);
                last_code = 0;
                last_reason = why;
                return std::nullopt;
            }
            step["rttMs"] = round3(r->rtt_ms);
            // RFC 8489 §9.2.5: a response to an authenticated request that carries
            // MESSAGE-INTEGRITY must verify with our key, or it did not come from the server.
            if (authed && r->msg.find(stun::MessageIntegrity)) {
                if (!r->msg.integrity_ok(key_)) {
                    step["error"] = "the response's MESSAGE-INTEGRITY does not verify";
                    record(step);
                    last_code = 0;
                    last_reason = step["error"];
                    return std::nullopt;
                }
                step["integrity"] = "verified";
            }
            if (server_software.empty())
                server_software = display_text(r->msg.text(stun::Software));
            auto err = r->msg.error();
            if (!err) {
                step["response"] = "success";
                describe_success(r->msg, step);
                record(step);
                last_code = 0;
                return r;
            }
            last_code = err->first;
            last_reason = err->second;
            step["response"] = std::to_string(err->first) + " " + err->second;
            const std::string r_realm = r->msg.text(stun::Realm);
            const std::string r_nonce = r->msg.text(stun::Nonce);
            if (!r_realm.empty()) step["realm"] = r_realm;
            if (!r_nonce.empty()) step["nonce"] = r_nonce;
            record(step);
            if (err->first == 401 && !challenged && !r_realm.empty() && !r_nonce.empty()) {
                challenged = true;
                if (user_.empty()) return r;  // the caller explains that credentials are needed
                if (!o_.realm.empty() && o_.realm != r_realm) return r;  // not the account's realm
                previous_realm_ = realm;
                set_auth(r_realm, r_nonce);
                continue;
            }
            if (err->first == 438 && !r_nonce.empty() && stale_nonces < 2) {
                ++stale_nonces;
                set_auth(r_realm.empty() ? realm : r_realm, r_nonce);
                continue;
            }
            return r;
        }
        return std::nullopt;
    }

    const std::string& previous_realm() const { return previous_realm_; }

  private:
    static void describe_success(const stun::Message& m, Json& step) {
        if (auto a = m.address(stun::XorRelayedAddress)) step["relayed"] = a->to_string();
        if (auto a = m.address(stun::XorMappedAddress)) step["mapped"] = a->to_string();
        if (const auto* l = m.find(stun::Lifetime)) step["lifetime"] = be32(l->value);
    }
    void record(const Json& step) {
        Json s = step;
        s["step"] = trace.size() + 1;
        trace.push_back(s);
        if (quiet_) return;
        tool_.events().emit("turn-step", s);
        std::string line = "  " + std::to_string(trace.size()) + ". " +
                           s["request"].get<std::string>() +
                           (s["authenticated"].get<bool>() ? " (with credentials)" : "") + " -> ";
        if (s.contains("error")) {
            line += s["error"].get<std::string>();
        } else {
            line += s["response"].get<std::string>();
            for (const char* k : {"realm", "relayed", "mapped", "lifetime"})
                if (s.contains(k)) line += std::string(", ") + k + " " + s[k].dump();
            line += ", " + std::to_string(s["rttMs"].get<double>()).substr(0, 5) + " ms";
        }
        tool_.say(0, line);
    }

    app::Tool& tool_;
    Connection& conn_;
    const TurnOptions& o_;
    std::string user_, password_, key_, previous_realm_;
    bool quiet_;
};

struct Credentials {
    std::string user, password;
    bool rest = false;
    long long rest_expiry = 0;
};

// REST credentials (draft-uberti-behave-turn-rest, coturn's --use-auth-secret): the username
// is "expiry:user", the password base64(HMAC-SHA1(secret, username)).
Credentials credentials(const TurnOptions& o, const IceServerUri& uri) {
    Credentials c;
    c.user = !o.user.empty() ? o.user : uri.user;
    c.password = !o.password.empty() ? o.password : uri.password;
    if (o.secret.empty()) return c;
    c.rest = true;
    c.rest_expiry = static_cast<long long>(std::time(nullptr)) + 86400;
    c.user = std::to_string(c.rest_expiry) + (c.user.empty() ? "" : ":" + c.user);
    unsigned char mac[20];
    unsigned len = 0;
    HMAC(EVP_sha1(), o.secret.data(), static_cast<int>(o.secret.size()),
         reinterpret_cast<const unsigned char*>(c.user.data()), c.user.size(), mac, &len);
    c.password = base64(mac, len);
    return c;
}

// Why a 401 came back to a request that carried credentials.
std::string explain_401(const Session& s, const Credentials& c, const TurnOptions& o) {
    if (!o.realm.empty() && o.realm != s.realm)
        return "realm: the server's realm is \"" + s.realm + "\", not \"" + o.realm +
               "\" as --realm expects; the key MD5(user:realm:password) is made with the "
               "server's realm, so the account probably lives in another realm";
    if (!s.previous_realm().empty() && s.previous_realm() != s.realm)
        return "realm: the server changed its realm from \"" + s.previous_realm() + "\" to \"" +
               s.realm + "\" between challenges";
    if (c.rest)
        return "the password's key: the server refused the REST credential for \"" + c.user +
               "\" (expiry in the future, so not a clock problem on our side); the shared "
               "secret differs from the server's (coturn: --static-auth-secret) or the server "
               "does not use REST credentials";
    return "username or the password's key: the server refused MD5(\"" + c.user + ":" + s.realm +
           ":<password>\"); either \"" + c.user + "\" is unknown in realm \"" + s.realm +
           "\" or its password is wrong (the protocol answers both with the same 401 on "
           "purpose, so check the account on the server)";
}

struct Stats {
    unsigned sent = 0, received = 0;
    std::vector<double> rtts;
    double jitter = 0;
};

}  // namespace

int run_turn(app::Tool& tool, const TurnOptions& o) {
    const IceServerUri uri = parse_ice_server_uri(o.uri, IceServerRole::Turn);
    const Transport transport = transport_of(uri);
    if (o.count == 0 && o.load == 0)
        throw Error(ErrorCode::InvalidArgument, "--count must be at least 1");
    if (o.size < 16 || o.size > 1200)
        throw Error(ErrorCode::InvalidArgument, "--size must be between 16 and 1200 bytes");
    if (o.load > 10000) throw Error(ErrorCode::InvalidArgument, "--load is at most 10000");
    const Credentials cred = credentials(o, uri);
    const stun::Address server = resolve(uri.host, uri.port, o.v4 ? 4 : o.v6 ? 6 : 0);
    std::optional<stun::Address> local;
    if (!o.bind.empty()) local = parse_bind(o.bind, "--bind");
    install_signals();
    const int connect_ms = static_cast<int>(79 * o.timing.rto_ms);
    auto conn = Connection::open(transport, server, uri.host, local, o.tls, connect_ms);
    const std::string where = server.to_string() + " (" + transport_name(transport) + ")";
    tool.say(0, "TURN server " + where + (cred.user.empty() ? "" : ", user " + cred.user));
    if (!conn->tls_summary().empty()) tool.say(0, "  " + conn->tls_summary());

    app::Output out(tool.common().json);
    out.field("server", "server", server.to_string());
    out.field("transport", "transport", transport_name(transport));
    if (!conn->tls_summary().empty()) out.field("tls", "TLS", conn->tls_summary());
    if (!cred.user.empty()) out.field("username", "username", cred.user);

    auto allocate_attrs = [&](stun::Builder& b) {
        b.add(stun::RequestedTransport, std::string("\x11\0\0\0", 4));  // UDP, RFC 8656 §18.7
        if (o.lifetime_s) b.add(stun::Lifetime, u32(o.lifetime_s));
    };
    // 437 Allocation Mismatch: the server still holds an allocation for this 5-tuple (the kernel
    // gave out a source port an earlier run used). RFC 8656 §7.2: try again from another source
    // port, keeping the old socket open so the kernel cannot hand the same port back; twice at
    // most, and never with --bind, which fixes the port.
    std::vector<std::unique_ptr<Connection>> mismatched;
    std::unique_ptr<Session> session;
    decltype(session->request(stun::Allocate, allocate_attrs)) alloc;
    for (int attempt = 0;; ++attempt) {
        session = std::make_unique<Session>(tool, *conn, o, cred.user, cred.password, false);
        alloc = session->request(stun::Allocate, allocate_attrs);
        const auto err = alloc ? alloc->msg.error() : std::nullopt;
        if (!err || err->first != 437 || attempt >= 2 || local) break;
        tool.say(1, "437 Allocation Mismatch: trying again from another source port");
        mismatched.push_back(std::move(conn));
        conn = Connection::open(transport, server, uri.host, local, o.tls, connect_ms);
    }
    Session& s = *session;
    auto finish_error = [&](int code, const std::string& message) {
        out.json_only("trace", s.trace);
        out.field("error", "error", message);
        out.finish();
        std::fprintf(stderr, "kms-stun: %s\n", message.c_str());
        return code;
    };
    if (!alloc) {
        // Interrupted before an answer is still no answer: 4.
        return finish_error(app::kNetwork, "no answer from " + where + ": " + s.last_reason);
    }
    if (auto err = alloc->msg.error()) {
        std::string why = std::to_string(err->first) + " " + err->second;
        if (err->first == 401 && cred.user.empty())
            why = "the server wants credentials (realm \"" + alloc->msg.text(stun::Realm) +
                  "\"): give -u USER -p PASSWORD, turn:USER:PASSWORD@HOST or --secret";
        else if (err->first == 401 && !o.realm.empty() && alloc->msg.text(stun::Realm) != o.realm)
            why = "refused: realm: the server's realm is \"" + alloc->msg.text(stun::Realm) +
                  "\", not \"" + o.realm + "\" as --realm says; no credentials were sent";
        else if (err->first == 401)
            why = "401 Unauthorized after authenticating; refused: " + explain_401(s, cred, o);
        else if (err->first == 438)
            why = "438 Stale Nonce three times: the server keeps rejecting fresh nonces";
        else if (err->first == 486)
            why = "486 Allocation Quota Reached: this user has too many allocations";
        else if (err->first == 508)
            why = "508 Insufficient Capacity: the server has no relay ports left";
        return finish_error(app::kNegotiation, "allocation refused: " + why);
    }
    const auto relayed = alloc->msg.address(stun::XorRelayedAddress);
    const auto mapped = alloc->msg.address(stun::XorMappedAddress);
    const auto* lifetime = alloc->msg.find(stun::Lifetime);
    if (!relayed) return finish_error(app::kNegotiation, "the allocation has no relayed address");
    if (!s.realm.empty()) out.field("realm", "realm", s.realm);
    if (!s.server_software.empty()) out.field("software", "server software", s.server_software);
    out.field("relayed", "relayed address", relayed->to_string());
    if (mapped) out.field("mapped", "mapped address", mapped->to_string());
    if (lifetime) out.field("lifetime", "lifetime (s)", be32(lifetime->value));

    int rc = app::kOk;
    std::string problem;  // why rc is not 0, for stderr and the JSON's error
    if (o.load > 0) {
        // Capacity: --load more allocations, each on its own connection, all held until the
        // last one is made, then released. Bounded by the count and by -t.
        struct Held {
            std::unique_ptr<Connection> conn;
            std::unique_ptr<Session> session;
        };
        // Each allocation holds a socket: lift the soft descriptor limit to the hard one.
        rlimit nofile{};
        if (::getrlimit(RLIMIT_NOFILE, &nofile) == 0 && nofile.rlim_cur < nofile.rlim_max) {
            nofile.rlim_cur = nofile.rlim_max;
            ::setrlimit(RLIMIT_NOFILE, &nofile);
        }
        std::vector<Held> held;
        std::vector<double> times;
        std::map<std::string, unsigned> failures;
        const auto start = Clock::now();
        const double limit_ms = tool.common().duration > 0 ? tool.common().duration * 1000 : 1e12;
        for (unsigned i = 0; i < o.load && !g_stop && ms_since(start) < limit_ms; ++i) {
            // 437 says the server still holds an allocation for this 5-tuple (a source port the
            // kernel gave out again): RFC 8656 §7.2 wants another source port, so the old
            // socket stays open while a new one tries, twice at most.
            std::vector<Held> stale;
            for (int attempt = 0; attempt < 3; ++attempt) {
                Held h;
                try {
                    h.conn =
                        Connection::open(transport, server, uri.host, local, o.tls, connect_ms);
                } catch (const Error& e) {
                    ++failures[e.what()];
                    break;
                }
                h.session =
                    std::make_unique<Session>(tool, *h.conn, o, cred.user, cred.password, true);
                h.session->set_auth(s.realm, s.nonce);
                const auto t0 = Clock::now();
                auto r = h.session->request(stun::Allocate, allocate_attrs);
                if (r && !r->msg.error()) {
                    times.push_back(ms_since(t0));
                    held.push_back(std::move(h));
                    break;
                }
                if (r && h.session->last_code == 437 && attempt < 2 && !local) {
                    stale.push_back(std::move(h));
                    continue;
                }
                ++failures[r ? std::to_string(h.session->last_code) + " " + h.session->last_reason
                             : "no response"];
                break;
            }
        }
        const double elapsed = ms_since(start);
        for (auto& h : held)
            h.session->request(stun::Refresh,
                               [](stun::Builder& b) { b.add(stun::Lifetime, u32(0)); });
        std::sort(times.begin(), times.end());
        auto pct = [&](double p) {
            return times.empty() ? 0.0
                                 : round3(times[std::min(times.size() - 1,
                                                         static_cast<size_t>(p * times.size()))]);
        };
        Json fails = Json::object();
        for (const auto& [k, v] : failures) fails[k] = v;
        out.object(
            "load", "load",
            Json{{"requested", o.load},
                 {"allocated", times.size()},
                 {"failed", fails},
                 {"seconds", round3(elapsed / 1000)},
                 {"perSecond", round3(times.size() / std::max(elapsed / 1000, 1e-6))},
                 {"allocateMs", Json{{"p50", pct(0.5)}, {"p95", pct(0.95)}, {"max", pct(1.0)}}}});
        if (times.size() < o.load && !g_stop) {
            // A partial failure is a refusal (5): the server did not give what was asked for.
            rc = app::kNegotiation;
            unsigned failed = 0;
            std::string reasons;
            for (const auto& [k, v] : failures) {
                failed += v;
                reasons += (reasons.empty() ? "" : ", ") + k + " (" + std::to_string(v) + ")";
            }
            problem = std::to_string(times.size()) + " of " + std::to_string(o.load) +
                      " --load allocations made";
            if (failed) problem += ", " + std::to_string(failed) + " failed: " + reasons;
            if (times.size() + failed < o.load)
                problem +=
                    ", " + std::to_string(o.load - times.size() - failed) + " not tried within -t";
        }
    } else {
        // The peer: --peer, or a second socket of ours, so the relay path is tested end to end
        // from one host.
        int peer_fd = -1;
        stun::Address peer;
        if (!o.peer.empty()) {
            auto p = stun::Address::parse(o.peer);
            if (!p)
                throw Error(ErrorCode::InvalidArgument,
                            "--peer '" + o.peer + "': expected ADDR:PORT");
            peer = *p;
        } else {
            // Permissions are by IP address (RFC 8656 §9), so one for our own mapped address
            // lets a second socket of ours reach the relay; its first packet tells us the
            // address and port the relay sees it from (the Data indication's XOR-PEER-ADDRESS).
            if (!mapped)
                return finish_error(app::kNegotiation,
                                    "the allocation has no XOR-MAPPED-ADDRESS; give --peer");
            auto r = s.request(stun::CreatePermission, [&](stun::Builder& b) {
                b.add_address(stun::XorPeerAddress, *mapped);
            });
            if (!r || r->msg.error())
                return finish_error(app::kNegotiation,
                                    "CreatePermission for our own address "
                                    "refused: " +
                                        std::to_string(s.last_code) + " " + s.last_reason);
            stun::Address own = conn->local();
            own.port = 0;
            peer_fd = udp_socket(own);
            socklen_t rlen = 0;
            const sockaddr_storage relay_ss = to_sockaddr(*relayed, &rlen);
            std::optional<stun::Address> seen;
            for (int attempt = 0; attempt < 5 && !seen && !g_stop; ++attempt) {
                ::sendto(peer_fd, "kms-stun hello", 14, 0,
                         reinterpret_cast<const sockaddr*>(&relay_ss), rlen);
                const auto sent = Clock::now();
                while (!seen && ms_since(sent) < 200) {
                    auto p = conn->receive(static_cast<int>(200 - ms_since(sent)) + 1);
                    if (!p) {
                        if (conn->closed()) break;
                        continue;
                    }
                    auto m = stun::parse(p->bytes);
                    if (m.message && m.message->method == stun::Data &&
                        m.message->cls == stun::Indication)
                        seen = m.message->address(stun::XorPeerAddress);
                }
            }
            if (!seen) {
                ::close(peer_fd);
                return finish_error(app::kNoMedia,
                                    "a packet from our own second socket to the relay " +
                                        relayed->to_string() +
                                        " never came back as a Data indication; the relay "
                                        "cannot reach us (try --peer with an echo peer)");
            }
            peer = *seen;
        }
        out.field("peer", "peer",
                  peer.to_string() + (o.peer.empty() ? " (our own echo socket)" : ""));
        bool ok = true;
        if (o.peer.empty() && !o.channel) {
            // The permission for our own address is in place already.
        } else if (o.channel) {
            auto r = s.request(stun::ChannelBind, [&](stun::Builder& b) {
                b.add(stun::ChannelNumber, u32(uint32_t(kFirstChannel) << 16));
                b.add_address(stun::XorPeerAddress, peer);
            });
            ok = r && !r->msg.error();
        } else {
            auto r = s.request(stun::CreatePermission, [&](stun::Builder& b) {
                b.add_address(stun::XorPeerAddress, peer);
            });
            ok = r && !r->msg.error();
        }
        if (!ok) {
            if (peer_fd >= 0) ::close(peer_fd);
            return finish_error(app::kNegotiation,
                                std::string(o.channel ? "ChannelBind" : "CreatePermission") +
                                    " refused: " + std::to_string(s.last_code) + " " +
                                    s.last_reason);
        }
        // The ping: sequence numbers in the payload, RTT per packet, RFC 3550-style jitter over
        // successive RTTs, stragglers awaited for a second after the last send.
        Stats st;
        std::vector<Clock::time_point> sent_at(o.count);
        std::vector<bool> got(o.count, false);
        double last_rtt = -1;
        auto on_payload = [&](std::string_view data) {
            unsigned seq = 0;
            if (data.size() < 12 || data.substr(0, 8) != "kms-stun") return;
            std::memcpy(&seq, data.data() + 8, 4);
            if (seq >= o.count || got[seq]) return;
            got[seq] = true;
            const double rtt = ms_since(sent_at[seq]);
            st.rtts.push_back(rtt);
            ++st.received;
            if (last_rtt >= 0) st.jitter += (std::fabs(rtt - last_rtt) - st.jitter) / 16;
            last_rtt = rtt;
        };
        auto on_packet = [&](const Packet& p) {
            const auto* b = reinterpret_cast<const uint8_t*>(p.bytes.data());
            if (p.bytes.size() >= 4 && (b[0] & 0xC0) == 0x40) {
                const size_t len = (size_t(b[2]) << 8) | b[3];
                if (len <= p.bytes.size() - 4) on_payload(std::string_view(p.bytes).substr(4, len));
                return;
            }
            auto m = stun::parse(p.bytes);
            if (m.message && m.message->method == stun::Data && m.message->cls == stun::Indication)
                if (const auto* d = m.message->find(stun::DataAttr)) on_payload(d->value);
        };
        auto pump = [&](int timeout_ms) {
            std::vector<pollfd> fds{{conn->fd(), POLLIN, 0}};
            if (peer_fd >= 0) fds.push_back({peer_fd, POLLIN, 0});
            if (::poll(fds.data(), fds.size(), timeout_ms) <= 0) return;
            if (fds[0].revents & POLLIN)
                while (auto p = conn->receive(0)) on_packet(*p);
            // Our own echo peer answers everything queued, a bounded number at a time.
            for (int k = 0; peer_fd >= 0 && (fds[1].revents & POLLIN) && k < 64; ++k) {
                char buf[2048];
                sockaddr_storage from{};
                socklen_t flen = sizeof from;
                ssize_t n = ::recvfrom(peer_fd, buf, sizeof buf, MSG_DONTWAIT,
                                       reinterpret_cast<sockaddr*>(&from), &flen);
                if (n <= 0) break;
                ::sendto(peer_fd, buf, static_cast<size_t>(n), 0,
                         reinterpret_cast<sockaddr*>(&from), flen);
            }
        };
        std::string payload(o.size, '\0');
        std::memcpy(payload.data(), "kms-stun", 8);
        // --interval 0 is a stream as fast as the path takes it, for capacity checks; it stays
        // bounded by --count and by -t.
        const auto stream_start = Clock::now();
        const double limit_ms = tool.common().duration > 0 ? tool.common().duration * 1000 : 1e12;
        auto next = stream_start;
        for (unsigned i = 0; i < o.count && !g_stop && ms_since(stream_start) < limit_ms; ++i) {
            std::memcpy(payload.data() + 8, &i, 4);
            std::string msg;
            if (o.channel) {
                msg = u32((uint32_t(kFirstChannel) << 16) | uint32_t(payload.size())) + payload;
            } else {
                stun::Builder b(stun::Send, stun::Indication, stun::new_transaction());
                b.add_address(stun::XorPeerAddress, peer).add(stun::DataAttr, payload);
                msg = b.bytes();
            }
            sent_at[i] = Clock::now();
            if (conn->send(msg)) ++st.sent;
            if (o.interval_ms == 0) {
                pump(0);
                continue;
            }
            next += std::chrono::milliseconds(o.interval_ms);
            while (!g_stop && Clock::now() < next)
                pump(static_cast<int>(std::max<long long>(
                    1, std::chrono::duration_cast<std::chrono::milliseconds>(next - Clock::now())
                           .count())));
        }
        const auto drain = Clock::now();
        while (!g_stop && st.received < st.sent && ms_since(drain) < 1000) pump(50);
        const double stream_s = ms_since(stream_start) / 1000;
        if (peer_fd >= 0) ::close(peer_fd);
        out.field("via", "sent with", o.channel ? "ChannelData" : "Send indications");
        out.field("sent", "packets sent", st.sent);
        out.field("received", "packets back", st.received);
        out.field("loss", "loss (%)",
                  st.sent ? round3(100.0 * (st.sent - st.received) / st.sent) : 0.0);
        out.field("seconds", "seconds", round3(stream_s));
        out.field("kbps", "payload back (kbit/s)",
                  round3(st.received * o.size * 8.0 / std::max(stream_s, 1e-6) / 1000));
        if (!st.rtts.empty()) {
            out.object("rttMs", "rtt (ms)", rtt_summary(st.rtts));
            out.field("jitterMs", "jitter (ms)", round3(st.jitter));
        }
        if (st.received == 0 && !g_stop) {
            rc = app::kNoMedia;
            problem = "no packet came back through the relay " + relayed->to_string() + " from " +
                      peer.to_string() + " (" + std::to_string(st.sent) + " sent)";
        }
    }
    // Release the allocation: Refresh with LIFETIME 0 (RFC 8656 §7).
    s.request(stun::Refresh, [](stun::Builder& b) { b.add(stun::Lifetime, u32(0)); });
    out.json_only("trace", s.trace);
    if (!problem.empty()) out.json_only("error", problem);
    out.finish();
    if (!problem.empty()) std::fprintf(stderr, "kms-stun: %s\n", problem.c_str());
    return rc;
}

}  // namespace kms::stuntool
