// kms-stun nat: NAT behaviour discovery as RFC 5780 §4 describes it, against a server with a
// second address (OTHER-ADDRESS and CHANGE-REQUEST).
#include <poll.h>
#include <unistd.h>

#include <thread>

#include "common/output.hpp"
#include "modes.hpp"

namespace kms::stuntool {

namespace {

struct Probe {
    bool answered = false;
    stun::Address mapped;
    std::optional<stun::Address> other, origin;
    int error_code = 0;
    std::string error;
};

bool same(const stun::Address& a, const stun::Address& b) {
    return a.family == b.family && a.port == b.port &&
           std::equal(a.ip.begin(), a.ip.begin() + (a.family == 6 ? 16 : 4), b.ip.begin());
}

enum class Heard { Yes, No, Refused };

// Sends request (up to three times, wait_ms apart) from one socket and listens for it on
// another: hairpinning and mapping lifetime both ask whether a request reaches a socket other
// than the one that sent it. An error response to the sender means the server refused it.
Heard heard_on(Connection& listener, Connection& sender, const std::string& request,
               const stun::TransactionId& id, const stun::Address* to, int wait_ms) {
    auto ours = [&id](const Packet& p) {
        auto m = stun::parse(p.bytes);
        return m.message && m.message->transaction == id ? m.message : std::nullopt;
    };
    for (int attempt = 0; attempt < 3 && !g_stop; ++attempt) {
        sender.send(request, to);
        const auto sent = Clock::now();
        while (ms_since(sent) < wait_ms && !g_stop) {
            if (auto q = sender.receive(0))
                if (auto m = ours(*q); m && m->error()) return Heard::Refused;
            if (auto p = listener.receive(50); p && ours(*p)) return Heard::Yes;
        }
    }
    return Heard::No;
}

class Tester {
  public:
    Tester(app::Tool& tool, const NatOptions& o) : tool_(tool), o_(o) {}
    Json tests = Json::array();

    Probe binding(Connection& c, const char* name, const stun::Address* to, uint8_t change) {
        const stun::TransactionId id = stun::new_transaction();
        Probe p;
        auto r = transact(c, binding_request(id, change, 0), id, o_.timing, to, {}, &p.error);
        Json t{{"test", name}, {"to", (to ? *to : c.server()).to_string()}};
        if (change)
            t["changeRequest"] = std::string(change & 4 ? "ip" : "") + (change == 6 ? "+" : "") +
                                 (change & 2 ? "port" : "");
        if (r) {
            if (auto e = r->msg.error()) {
                p.error_code = e->first;
                p.error = std::to_string(e->first) + " " + e->second;
            } else if (auto m = r->msg.address(stun::XorMappedAddress)) {
                p.answered = true;
                p.mapped = *m;
                p.other = r->msg.address(stun::OtherAddress);
                // RFC 3489 servers name their other address CHANGED-ADDRESS (RFC 5780 §7.3).
                if (!p.other) p.other = r->msg.address(stun::ChangedAddress);
                p.origin = r->msg.address(stun::ResponseOrigin);
                t["mapped"] = m->to_string();
                t["from"] = r->from.to_string();
            } else {
                p.error = "no XOR-MAPPED-ADDRESS";
            }
        }
        t["answered"] = p.answered;
        if (!p.answered) t["error"] = p.error;
        tests.push_back(t);
        tool_.events().emit("nat-test", t);
        tool_.say(1, std::string(name) + ": " +
                         (p.answered ? "mapped " + p.mapped.to_string() : p.error));
        return p;
    }

  private:
    app::Tool& tool_;
    const NatOptions& o_;
};

// The address the kernel sends from towards the server, for a socket bound to the wildcard.
stun::Address source_towards(const stun::Address& server) {
    int fd = ::socket(server.family == 6 ? AF_INET6 : AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    socklen_t len = 0;
    sockaddr_storage ss = to_sockaddr(server, &len);
    stun::Address a;
    if (fd >= 0 && ::connect(fd, reinterpret_cast<sockaddr*>(&ss), len) == 0) a = local_address(fd);
    if (fd >= 0) ::close(fd);
    return a;
}

const char* classic_name(const std::string& mapping, const std::string& filtering, bool natted) {
    if (!natted)
        return filtering == "endpoint-independent" ? "open internet" : "symmetric UDP firewall";
    if (mapping != "endpoint-independent") return "symmetric";
    if (filtering == "endpoint-independent") return "full cone";
    if (filtering == "address-dependent") return "restricted cone";
    return "port-restricted cone";
}

}  // namespace

int run_nat(app::Tool& tool, const NatOptions& o) {
    const IceServerUri uri = parse_ice_server_uri(o.uri, IceServerRole::Stun);
    if (transport_of(uri) != Transport::Udp)
        throw Error(ErrorCode::InvalidArgument, "nat runs over UDP: use stun:HOST[:PORT]");
    const stun::Address server = resolve(uri.host, uri.port, o.v4 ? 4 : 0);
    stun::Address local;
    local.family = server.family;
    if (!o.bind.empty()) local = parse_bind(o.bind, "--bind");
    install_signals();
    Tester t(tool, o);
    app::Output out(tool.common().json);
    out.field("server", "server", server.to_string());
    auto conn = Connection::open(Transport::Udp, server, uri.host, local, {}, 0);

    // Mapping, RFC 5780 §4.3. Test I gives the mapping and the alternate address.
    Probe p1 = t.binding(*conn, "mapping I", nullptr, 0);
    if (!p1.answered) {
        out.json_only("tests", t.tests);
        out.field("error", "error", p1.error);
        out.finish();
        // Interrupted before an answer is still no answer: 4.
        std::fprintf(stderr, "kms-stun: %s did not answer a binding request: %s\n",
                     server.to_string().c_str(), p1.error.c_str());
        return p1.error_code ? app::kNegotiation : app::kNetwork;
    }
    stun::Address here = conn->local();
    here.ip = source_towards(server).ip;
    const bool natted = !same(p1.mapped, here);
    out.field("local", "local address", here.to_string());
    out.field("mapped", "mapped address", p1.mapped.to_string());
    // No result, but the reason, and 5: the server cannot run the tests.
    auto inconclusive = [&](const std::string& why) {
        out.field("result", "result", "inconclusive");
        out.field("reason", "reason", why);
        out.json_only("tests", t.tests);
        out.finish();
        std::fprintf(stderr, "kms-stun: inconclusive: %s\n", why.c_str());
        return app::kNegotiation;
    };
    if (!p1.other) {
        return inconclusive(
            "the server gives no OTHER-ADDRESS, so it has no second address to test from "
            "(RFC 5780 needs one: coturn with two --listening-ip, or kms-stun server --alt)");
    }
    const stun::Address other = *p1.other;
    out.field("otherAddress", "other address", other.to_string());

    // Filtering, RFC 5780 §4.4, on a socket of its own that has sent to nothing but the primary
    // address: the mapping tests below open the NAT towards the alternate one.
    stun::Address flocal = here;
    flocal.port = 0;
    auto fconn = Connection::open(Transport::Udp, server, uri.host, flocal, {}, 0);
    t.binding(*fconn, "filtering I", nullptr, 0);
    std::string filtering;
    Probe f2 = t.binding(*fconn, "filtering II", nullptr, 0x06);
    if (f2.error_code == 420) {
        return inconclusive(
            "the server refused CHANGE-REQUEST (420), so it cannot answer from its other address");
    }
    if (f2.answered) {
        filtering = "endpoint-independent";
    } else {
        Probe f3 = t.binding(*fconn, "filtering III", nullptr, 0x02);
        filtering = f3.answered ? "address-dependent" : "address-and-port-dependent";
    }

    std::string mapping;
    if (!natted) {
        mapping = "endpoint-independent";
    } else {
        stun::Address alt_ip = other;
        alt_ip.port = server.port;
        Probe p2 = t.binding(*conn, "mapping II", &alt_ip, 0);
        if (!p2.answered) {
            mapping = "unknown";
        } else if (same(p2.mapped, p1.mapped)) {
            mapping = "endpoint-independent";
        } else {
            Probe p3 = t.binding(*conn, "mapping III", &other, 0);
            mapping = !p3.answered                 ? "unknown"
                      : same(p3.mapped, p2.mapped) ? "address-dependent"
                                                   : "address-and-port-dependent";
        }
    }

    // Hairpinning, RFC 5780 §4.5: a request from another socket to our own mapped address.
    const stun::TransactionId hid = stun::new_transaction();
    const bool hairpin =
        heard_on(*conn, *fconn, binding_request(hid, 0, 0), hid, &p1.mapped, 300) == Heard::Yes;

    out.field("nat", "behind a NAT", natted);
    out.field("mapping", "mapping", mapping);
    out.field("filtering", "filtering", filtering);
    out.field("classic", "RFC 3489 name", classic_name(mapping, filtering, natted));
    out.field("hairpinning", "hairpinning", hairpin);

    // Mapping lifetime, RFC 5780 §4.6: a fresh socket X makes a mapping and goes quiet for T s;
    // then socket Y asks the server to answer to X's mapped port (RESPONSE-PORT). X hearing it
    // means the mapping outlived T. T doubles from 1 s up to --lifetime.
    if (o.lifetime_s > 0) {
        unsigned alive = 0, gone = 0;
        for (unsigned wait = 1; wait <= o.lifetime_s && !g_stop; wait *= 2) {
            auto x = Connection::open(Transport::Udp, server, uri.host, flocal, {}, 0);
            Probe px = t.binding(*x, "lifetime: mapping", nullptr, 0);
            if (!px.answered) break;
            for (unsigned i = 0; i < wait * 10 && !g_stop; ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(100));
            auto y = Connection::open(Transport::Udp, server, uri.host, flocal, {}, 0);
            const stun::TransactionId id = stun::new_transaction();
            const Heard h =
                heard_on(*x, *y, binding_request(id, 0, px.mapped.port), id, nullptr, 500);
            const bool heard = h == Heard::Yes, refused = h == Heard::Refused;
            if (refused) {
                out.field("lifetime", "mapping lifetime",
                          "unknown: the server refused RESPONSE-PORT (RFC 5780 §7.5)");
                break;
            }
            Json step{{"test", "lifetime"}, {"quietSeconds", wait}, {"alive", heard}};
            t.tests.push_back(step);
            tool.events().emit("nat-test", step);
            tool.say(1, "lifetime: after " + std::to_string(wait) + " s quiet the mapping is " +
                            (heard ? "alive" : "gone"));
            if (!heard) {
                gone = wait;
                break;
            }
            alive = wait;
        }
        if (alive || gone) {
            Json life{{"aliveAfterS", alive}};
            if (gone)
                life["goneAfterS"] = gone;
            else
                life["goneAfterS"] = nullptr;
            out.object("lifetime", "mapping lifetime", life);
        }
    }
    out.json_only("tests", t.tests);
    out.finish();
    return app::kOk;
}

}  // namespace kms::stuntool
