// kms-stun binding: our mapped address as one server sees it, once or as a ping.
#include <unistd.h>

#include <cmath>

#include "common/output.hpp"
#include "modes.hpp"

namespace kms::stuntool {

namespace {

struct BindingReply {
    bool ok = false;
    double rtt_ms = 0;
    std::string mapped, software, other, origin, error;
    int error_code = 0;
};

// The realm and nonce a server challenged us with, kept across the requests of a ping.
struct Auth {
    std::string user, password, realm, nonce, key;
};

// requests: grows by every datagram or stream write of a Binding request, retransmissions too.
// change: the CHANGE-REQUEST flags (RFC 5780 §7.2), 0 for none.
BindingReply one_binding(Connection& c, const Timing& timing, Auth& auth, unsigned& requests,
                         uint8_t change) {
    BindingReply reply;
    std::optional<Response> r;
    // A server with long-term credentials answers 401 (or 438 for a stale nonce) with a realm and
    // nonce; one retry with them, RFC 8489 §9.2.5.
    for (int round = 0; round < 2; ++round) {
        const stun::TransactionId id = stun::new_transaction();
        stun::Builder b(stun::Binding, stun::Request, id);
        if (change) b.add(stun::ChangeRequest, std::string("\0\0\0", 3) + char(change));
        b.add(stun::Software, software());
        if (!auth.key.empty()) {
            b.add(stun::Username, auth.user)
                .add(stun::Realm, auth.realm)
                .add(stun::Nonce, auth.nonce);
            b.integrity(auth.key);
        }
        b.fingerprint();
        r = transact(c, b.bytes(), id, timing, nullptr, {}, &reply.error, &requests);
        if (!r) return reply;
        auto e = r->msg.error();
        if (!e || (e->first != 401 && e->first != 438) || auth.user.empty()) break;
        const std::string realm = r->msg.text(stun::Realm), nonce = r->msg.text(stun::Nonce);
        if (realm.empty() || nonce.empty() || (e->first == 401 && round == 1)) break;
        auth.realm = realm;
        auth.nonce = nonce;
        auth.key = stun::long_term_key(auth.user, realm, auth.password);
    }
    const stun::Message& m = r->msg;
    if (!auth.key.empty() && m.find(stun::MessageIntegrity) && !m.integrity_ok(auth.key)) {
        reply.error = "the response's MESSAGE-INTEGRITY does not verify with our key";
        return reply;
    }
    reply.rtt_ms = r->rtt_ms;
    reply.software = display_text(m.text(stun::Software));
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

}  // namespace

int run_binding(app::Tool& tool, const BindingOptions& o) {
    if (o.count == 0) throw Error(ErrorCode::InvalidArgument, "--count must be at least 1");
    const IceServerUri uri = parse_ice_server_uri(o.uri, IceServerRole::Stun);
    const Transport transport = transport_of(uri);
    const stun::Address server = resolve(uri.host, uri.port, o.v4 ? 4 : o.v6 ? 6 : 0);
    std::optional<stun::Address> local;
    if (!o.bind.empty()) local = parse_bind(o.bind, "--bind");
    install_signals();
    auto conn = Connection::open(transport, server, uri.host, local, o.tls,
                                 static_cast<int>(79 * o.timing.rto_ms));
    const uint8_t change = o.change == "ip"        ? 0x04
                           : o.change == "port"    ? 0x02
                           : o.change == "ip+port" ? 0x06
                                                   : 0;
    std::vector<double> rtts;
    Auth auth{o.user, o.password, "", "", ""};
    BindingReply last, first_ok;
    unsigned sent = 0, requests = 0;
    const std::string where = server.to_string() + " (" + transport_name(transport) + ")";
    for (unsigned i = 0; i < o.count && !g_stop; ++i) {
        const auto start = Clock::now();
        ++sent;
        BindingReply r = one_binding(*conn, o.timing, auth, requests, change);
        if (r.ok)
            tool.events().emit("stun-response", Json{{"server", server.to_string()},
                                                     {"transport", transport_name(transport)},
                                                     {"mapped", r.mapped},
                                                     {"rttMs", round3(r.rtt_ms)}});
        else
            tool.events().emit("stun-error",
                               Json{{"server", server.to_string()}, {"error", r.error}});
        if (r.ok) {
            rtts.push_back(r.rtt_ms);
            if (!first_ok.ok) first_ok = r;
            if (o.count > 1)
                tool.say(0, "reply from " + where + ": mapped " + r.mapped + " rtt " +
                                std::to_string(r.rtt_ms).substr(0, 5) + " ms");
        } else if (o.count > 1) {
            tool.say(0, "request " + std::to_string(i + 1) + ": " + r.error);
        }
        last = r;
        if (r.error_code || conn->closed()) break;
        const double left = o.interval_ms - ms_since(start);
        if (i + 1 < o.count && left > 0) ::usleep(static_cast<useconds_t>(left * 1000));
    }
    const BindingReply& shown = first_ok.ok ? first_ok : last;
    app::Output out(tool.common().json);
    out.field("server", "server", server.to_string());
    out.field("transport", "transport", transport_name(transport));
    if (!conn->tls_summary().empty()) out.field("tls", "TLS", conn->tls_summary());
    out.field("local", "local address", conn->local().to_string());
    if (shown.ok) {
        out.field("mapped", "mapped address", shown.mapped);
        if (!shown.software.empty()) out.field("software", "server software", shown.software);
        if (!shown.other.empty()) out.field("otherAddress", "other address", shown.other);
        if (!shown.origin.empty()) out.field("responseOrigin", "response origin", shown.origin);
    }
    if (!rtts.empty()) {
        if (o.count == 1) {
            out.field("rttMs", "rtt (ms)", round3(rtts[0]));
        } else {
            out.field("sent", "sent", sent);
            out.field("received", "received", rtts.size());
            out.field("loss", "loss (%)", round3(100.0 * (sent - rtts.size()) / sent));
            out.object("rttMs", "rtt (ms)", rtt_summary(rtts));
        }
    } else if (o.count > 1) {
        out.field("sent", "sent", sent);
        out.field("received", "received", 0);
        out.field("loss", "loss (%)", 100.0);
    }
    out.field("requests", "requests sent", requests);
    if (!shown.ok) out.field("error", "error", shown.error);
    out.finish();
    if (shown.error_code) {
        std::fprintf(stderr, "kms-stun: %s answered %s\n", where.c_str(), shown.error.c_str());
        return app::kNegotiation;
    }
    if (rtts.empty()) {
        // Interrupted or not, nobody answered: that is "no answer" (4), not success.
        std::fprintf(stderr, "kms-stun: no response from %s after %u request%s (%s)\n",
                     where.c_str(), requests, requests == 1 ? "" : "s", shown.error.c_str());
        return app::kNetwork;
    }
    return app::kOk;
}

}  // namespace kms::stuntool
