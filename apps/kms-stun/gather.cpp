// kms-stun gather: ICE candidate gathering through libnice, as a call would do it, and with
// --check a connectivity check against a second `kms-stun gather --check` that exchanges
// candidates with us as one JSON line each way.
#include <agent.h>
#include <fcntl.h>
#include <unistd.h>

#include <cstring>
#include <fstream>
#include <iostream>
#include <thread>

#include "common/output.hpp"
#include "kms/loop.hpp"
#include "kms/uri.hpp"
#include "modes.hpp"

namespace kms::stuntool {

namespace {

const char* type_name(NiceCandidateType t) {
    switch (t) {
        case NICE_CANDIDATE_TYPE_HOST:
            return "host";
        case NICE_CANDIDATE_TYPE_SERVER_REFLEXIVE:
            return "srflx";
        case NICE_CANDIDATE_TYPE_PEER_REFLEXIVE:
            return "prflx";
        case NICE_CANDIDATE_TYPE_RELAYED:
            return "relay";
    }
    return "?";
}

std::string address_text(const NiceAddress& a) {
    char ip[NICE_ADDRESS_STRING_LEN] = {};
    nice_address_to_string(&a, ip);
    const bool v6 = nice_address_ip_version(&a) == 6;
    return (v6 ? "[" + std::string(ip) + "]" : std::string(ip)) + ":" +
           std::to_string(nice_address_get_port(&a));
}

Json candidate_json(const NiceCandidate* c) {
    Json j{{"candidateType", type_name(c->type)},
           {"address", address_text(c->addr)},
           {"protocol", c->transport == NICE_CANDIDATE_TRANSPORT_UDP ? "udp" : "tcp"},
           {"priority", c->priority},
           {"foundation", c->foundation}};
    if (c->type != NICE_CANDIDATE_TYPE_HOST) j["base"] = address_text(c->base_addr);
    return j;
}

struct Gatherer {
    app::Tool& tool;
    const GatherOptions& o;
    Loop loop;
    NiceAgent* agent = nullptr;
    guint stream = 0;
    Clock::time_point start = Clock::now();
    Json candidates = Json::array();
    bool gathered = false;
    double gathered_ms = 0;
    int rc = app::kOk;
    std::string error;
    // --check
    std::string local_ufrag, remote_ufrag;
    size_t remote_count = 0;
    bool remote_set = false, ready = false, finished = false, peer_done = false;
    double ready_ms = 0;
    Json selected;
    std::vector<double> rtts;
    std::vector<Clock::time_point> ping_sent;
    std::string state = "new";
    std::FILE* result_out = stdout;
    std::string relay_protocol;  // how we reach the TURN server: udp or tcp

    Gatherer(app::Tool& t, const GatherOptions& opts) : tool(t), o(opts) {}
    ~Gatherer() {
        if (agent) g_object_unref(agent);
    }

    double ms() const { return ms_since(start); }
};

void on_candidate(NiceAgent*, NiceCandidate* c, gpointer data) {
    auto* g = static_cast<Gatherer*>(data);
    Json j = candidate_json(c);
    // As W3C stats' relayProtocol: the transport between us and the TURN server.
    if (c->type == NICE_CANDIDATE_TYPE_RELAYED) j["relayProtocol"] = g->relay_protocol;
    j["ms"] = round3(g->ms());
    g->candidates.push_back(j);
    g->tool.events().emit("candidate", j);
    g->tool.say(1, std::string("candidate ") + j["candidateType"].get<std::string>() + " " +
                       j["address"].get<std::string>());
}

void send_line(Gatherer& g, const std::string& line) {
    const std::string& path = g.o.out;
    if (path.empty() || path == "-") {
        std::fprintf(stdout, "%s\n", line.c_str());
        std::fflush(stdout);
        return;
    }
    // A fifo blocks until the peer opens it; a thread keeps the loop running meanwhile.
    std::thread([path, line] {
        std::ofstream f(path);
        f << line << "\n";
    }).detach();
}

void try_start_checks(Gatherer& g);

void on_gathering_done(NiceAgent* agent, guint stream, gpointer data) {
    auto* g = static_cast<Gatherer*>(data);
    if (g->gathered) return;
    g->gathered = true;
    g->gathered_ms = g->ms();
    g->tool.events().emit("gathering-done", Json{{"ms", round3(g->gathered_ms)}});
    if (!g->o.check) {
        g->loop.quit();
        return;
    }
    gchar *ufrag = nullptr, *pwd = nullptr;
    nice_agent_get_local_credentials(agent, stream, &ufrag, &pwd);
    g->local_ufrag = ufrag ? ufrag : "";
    Json line{
        {"ufrag", ufrag ? ufrag : ""}, {"pwd", pwd ? pwd : ""}, {"candidates", Json::array()}};
    g_free(ufrag);
    g_free(pwd);
    GSList* list = nice_agent_get_local_candidates(agent, stream, 1);
    for (GSList* i = list; i; i = i->next) {
        auto* c = static_cast<NiceCandidate*>(i->data);
        // --relay-only hands the peer nothing but relayed candidates, as
        // iceTransportPolicy "relay" does in browsers.
        if (g->o.relay_only && c->type != NICE_CANDIDATE_TYPE_RELAYED) continue;
        gchar* sdp = nice_agent_generate_local_candidate_sdp(agent, c);
        line["candidates"].push_back(sdp);
        g_free(sdp);
    }
    g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
    send_line(*g, line.dump());
    try_start_checks(*g);
}

void ping(Gatherer& g) {
    const unsigned seq = static_cast<unsigned>(g.ping_sent.size());
    g.ping_sent.push_back(Clock::now());
    const std::string msg = "kms-ping " + std::to_string(seq);
    nice_agent_send(g.agent, g.stream, 1, static_cast<guint>(msg.size()), msg.c_str());
}

void finish_check(Gatherer& g) {
    if (g.finished) return;
    g.finished = true;
    for (int i = 0; i < 3; ++i) nice_agent_send(g.agent, g.stream, 1, 8, "kms-done");
    // Stay a moment for the peer's own pings, then go.
    g.loop.after(g.peer_done ? 100 : 1000, [&g] { g.loop.quit(); });
}

void on_recv(NiceAgent*, guint, guint, guint len, gchar* buf, gpointer data) {
    auto* g = static_cast<Gatherer*>(data);
    std::string_view m(buf, len);
    if (m.rfind("kms-ping ", 0) == 0) {
        std::string pong = "kms-pong " + std::string(m.substr(9));
        nice_agent_send(g->agent, g->stream, 1, static_cast<guint>(pong.size()), pong.c_str());
    } else if (m.rfind("kms-pong ", 0) == 0) {
        const unsigned long seq = std::strtoul(std::string(m.substr(9)).c_str(), nullptr, 10);
        if (seq < g->ping_sent.size())
            g->rtts.push_back(
                std::chrono::duration<double, std::milli>(Clock::now() - g->ping_sent[seq])
                    .count());
        if (g->rtts.size() >= 5) finish_check(*g);
    } else if (m == "kms-done") {
        g->peer_done = true;
        if (g->finished) g->loop.after(100, [g] { g->loop.quit(); });
    }
}

void on_state(NiceAgent* agent, guint stream, guint, guint state, gpointer data) {
    auto* g = static_cast<Gatherer*>(data);
    g->state = nice_component_state_to_string(static_cast<NiceComponentState>(state));
    g->tool.events().emit("ice-state", Json{{"state", g->state}, {"ms", round3(g->ms())}});
    if (state == NICE_COMPONENT_STATE_READY && !g->ready) {
        g->ready = true;
        g->ready_ms = g->ms();
        NiceCandidate *local = nullptr, *remote = nullptr;
        if (nice_agent_get_selected_pair(agent, stream, 1, &local, &remote)) {
            g->selected =
                Json{{"local", candidate_json(local)}, {"remote", candidate_json(remote)}};
            g->tool.events().emit("selected-pair", g->selected);
        }
        // Five pings 20 ms apart over the selected pair give its RTT.
        for (unsigned i = 0; i < 5; ++i) g->loop.after(i * 20, [g] { ping(*g); });
        g->loop.after(3000, [g] { finish_check(*g); });
    } else if (state == NICE_COMPONENT_STATE_FAILED && !g->ready) {
        g->rc = app::kNetwork;
        g->error = "every connectivity check failed";
        g->loop.quit();
    }
}

void on_selected(NiceAgent* agent, guint stream, guint, gchar*, gchar*, gpointer data) {
    auto* g = static_cast<Gatherer*>(data);
    if (!g->ready) return;
    NiceCandidate *local = nullptr, *remote = nullptr;
    if (nice_agent_get_selected_pair(agent, stream, 1, &local, &remote))
        g->selected = Json{{"local", candidate_json(local)}, {"remote", candidate_json(remote)}};
}

void set_remote(Gatherer& g, const std::string& text) {
    Json j = Json::parse(text, nullptr, false);
    if (j.is_discarded() || !j.is_object() || !j.contains("ufrag") || !j["ufrag"].is_string() ||
        !j.contains("pwd") || !j["pwd"].is_string() || !j.contains("candidates") ||
        !j["candidates"].is_array()) {
        g.rc = app::kBadInput;
        g.error = "the peer's line is not {\"ufrag\",\"pwd\",\"candidates\":[...]} JSON";
        g.loop.quit();
        return;
    }
    g.remote_ufrag = j["ufrag"].get<std::string>();
    nice_agent_set_remote_credentials(g.agent, g.stream, g.remote_ufrag.c_str(),
                                      j["pwd"].get<std::string>().c_str());
    GSList* list = nullptr;
    for (const auto& c : j["candidates"]) {
        if (!c.is_string()) continue;
        NiceCandidate* nc =
            nice_agent_parse_remote_candidate_sdp(g.agent, g.stream, c.get<std::string>().c_str());
        if (nc) list = g_slist_append(list, nc);
    }
    g.remote_count = g_slist_length(list);
    g.remote_set = true;
    g.tool.events().emit("remote-candidates", Json{{"count", g.remote_count}});
    try_start_checks(g);
    if (list) nice_agent_set_remote_candidates(g.agent, g.stream, 1, list);
    g_slist_free_full(list, reinterpret_cast<GDestroyNotify>(nice_candidate_free));
    if (g.remote_count == 0) {
        g.rc = app::kNetwork;
        g.error = "the peer sent no candidates we can use";
        g.loop.quit();
    }
}

void try_start_checks(Gatherer& g) {
    // Both sides know both ufrags, so the larger one controls: no role conflict to resolve.
    if (!g.gathered || !g.remote_set) return;
    g_object_set(g.agent, "controlling-mode", g.local_ufrag > g.remote_ufrag, nullptr);
}

// The address without port or brackets, as libnice wants it.
std::string ip_text(const stun::Address& a) {
    const std::string t = a.to_string();
    return a.family == 6 ? t.substr(1, t.rfind(']') - 1) : t.substr(0, t.rfind(':'));
}

std::optional<stun::Address> resolve_uri(const std::string& text, IceServerRole role,
                                         IceServerUri* out) {
    if (text.empty()) return std::nullopt;
    *out = parse_ice_server_uri(text, role);
    return resolve(out->host, out->port, 0);
}

}  // namespace

int run_gather(app::Tool& tool, const GatherOptions& o) {
    // Shared with the thread that reads the peer's line, which may outlive this function.
    auto owner = std::make_shared<Gatherer>(tool, o);
    Gatherer& g = *owner;
    IceServerUri stun_uri, turn_uri;
    auto stun_addr = resolve_uri(o.stun, IceServerRole::Stun, &stun_uri);
    auto turn_addr = resolve_uri(o.turn, IceServerRole::Turn, &turn_uri);
    if (o.relay_only && !turn_addr)
        throw Error(ErrorCode::InvalidArgument, "--relay-only needs --turn");
    // libnice's TURN-over-TLS relay type is plain TCP outside its Google and Microsoft
    // compatibility modes: the Allocate would go to the TLS port unencrypted, and coturn, which
    // takes plain TCP on its TLS port too, would hand out a relay as if all were well.
    if (turn_addr && transport_of(turn_uri) == Transport::Tls)
        throw Error(ErrorCode::InvalidArgument,
                    "'" + turn_uri.redacted() +
                        "': gather cannot reach a TURN server over TLS (libnice would send the "
                        "requests unencrypted); use turn:HOST?transport=tcp or udp here, and "
                        "kms-stun turn turns:HOST to check the TLS listener");
    g.relay_protocol = turn_addr ? transport_name(transport_of(turn_uri)) : "";
    if (!o.out.empty() && o.out != "-")
        g.result_out = stdout;
    else if (o.check)
        g.result_out = stderr;  // stdout carries our candidates to the peer

    g.agent = nice_agent_new_full(g_main_context_default(), NICE_COMPATIBILITY_RFC5245,
                                  NICE_AGENT_OPTION_NONE);
    g_object_set(g.agent, "upnp", FALSE, "ice-tcp", FALSE, nullptr);
    if (o.relay_only) g_object_set(g.agent, "force-relay", TRUE, nullptr);
    for (const auto& b : o.bind) {
        const stun::Address a = parse_bind(b, "--bind");
        NiceAddress na;
        nice_address_init(&na);
        nice_address_set_from_string(&na, ip_text(a).c_str());
        nice_agent_add_local_address(g.agent, &na);
    }
    if (stun_addr) {
        g_object_set(g.agent, "stun-server", ip_text(*stun_addr).c_str(), "stun-server-port",
                     guint(stun_addr->port), nullptr);
    }
    g_signal_connect(g.agent, "new-candidate-full", G_CALLBACK(on_candidate), &g);
    g_signal_connect(g.agent, "candidate-gathering-done", G_CALLBACK(on_gathering_done), &g);
    g_signal_connect(g.agent, "component-state-changed", G_CALLBACK(on_state), &g);
    g_signal_connect(g.agent, "new-selected-pair", G_CALLBACK(on_selected), &g);
    g.stream = nice_agent_add_stream(g.agent, 1);
    if (turn_addr) {
        const std::string ip = ip_text(*turn_addr);
        const std::string user = !o.user.empty() ? o.user : turn_uri.user;
        const std::string pass = !o.password.empty() ? o.password : turn_uri.password;
        const NiceRelayType type = transport_of(turn_uri) == Transport::Tcp
                                       ? NICE_RELAY_TYPE_TURN_TCP
                                       : NICE_RELAY_TYPE_TURN_UDP;
        nice_agent_set_relay_info(g.agent, g.stream, 1, ip.c_str(), turn_addr->port, user.c_str(),
                                  pass.c_str(), type);
    }
    nice_agent_attach_recv(g.agent, g.stream, 1, g_main_context_default(), on_recv, &g);
    tool.handle_signals(g.loop, [&g] {
        g.rc = app::kOk;
        g.loop.quit();
    });

    if (o.check) {
        // The peer's line: from --in (a file or fifo) or stdin, read on a thread.
        const std::string in = o.in;
        std::thread([owner, in] {
            std::string line;
            if (in.empty() || in == "-") {
                std::getline(std::cin, line);
            } else {
                std::ifstream f(in);
                std::getline(f, line);
            }
            owner->loop.post([owner, line] {
                if (line.empty()) {
                    owner->rc = app::kBadInput;
                    owner->error = "the peer's input closed before its candidates came";
                    owner->loop.quit();
                    return;
                }
                set_remote(*owner, line);
            });
        }).detach();
    }
    const unsigned limit_ms =
        static_cast<unsigned>((tool.common().duration > 0 ? tool.common().duration : 15) * 1000);
    g.loop.after(limit_ms, [&g] {
        if (!g.gathered) {
            g.rc = app::kNetwork;
            g.error = "gathering did not finish in time";
        } else if (g.o.check && !g.ready) {
            g.rc = app::kNetwork;
            g.error = !g.remote_set ? "the peer's candidates never came"
                                    : "no candidate pair succeeded in time";
        }
        g.loop.quit();
    });
    if (!nice_agent_gather_candidates(g.agent, g.stream))
        throw Error(ErrorCode::Network, "libnice could not start gathering (no usable interface?)");
    g.loop.run();
    // Release TURN allocations and refreshes before the agent goes (libnice warns otherwise),
    // on a loop of its own since g.loop has quit; a second at most.
    GMainLoop* closing = g_main_loop_new(g_main_context_default(), FALSE);
    nice_agent_close_async(
        g.agent,
        [](GObject*, GAsyncResult*, gpointer d) { g_main_loop_quit(static_cast<GMainLoop*>(d)); },
        closing);
    GSource* timeout = g_timeout_source_new(1000);
    g_source_set_callback(
        timeout,
        [](gpointer d) -> gboolean {
            g_main_loop_quit(static_cast<GMainLoop*>(d));
            return G_SOURCE_REMOVE;
        },
        closing, nullptr);
    g_source_attach(timeout, g_main_context_default());
    g_main_loop_run(closing);
    g_source_destroy(timeout);
    g_source_unref(timeout);
    g_main_loop_unref(closing);

    // What a requested server should have given.
    auto count = [&](const char* type) {
        size_t n = 0;
        for (const auto& c : g.candidates) n += c["candidateType"] == type;
        return n;
    };
    std::string missing;
    if (stun_addr && count("srflx") == 0 && !o.relay_only && !g.candidates.empty()) {
        // libnice drops a server-reflexive candidate equal to its host one (no NAT); ask the
        // server ourselves, from the first host candidate's address, to tell that from silence.
        stun::Address from = parse_bind(g.candidates[0]["address"].get<std::string>(), "host");
        from.port = 0;
        auto c = Connection::open(Transport::Udp, *stun_addr, stun_uri.host, from, {}, 0);
        const stun::TransactionId id = stun::new_transaction();
        std::string why;
        auto r = transact(*c, binding_request(id), id, Timing{100, 3}, nullptr, {}, &why);
        auto mapped = r ? r->msg.address(stun::XorMappedAddress) : std::nullopt;
        if (!mapped)
            missing = "no server-reflexive candidate: " + stun_addr->to_string() +
                      " did not answer (" + why + ")";
        else if (mapped->ip == from.ip)
            tool.say(0, "no server-reflexive candidate: " + stun_addr->to_string() +
                            " sees our host address, so there is no NAT in between");
        else
            missing = "no server-reflexive candidate although " + stun_addr->to_string() +
                      " answers (mapped " + mapped->to_string() + ")";
    }
    if (turn_addr && count("relay") == 0)
        missing = "no relayed candidate: the TURN server " + turn_addr->to_string() +
                  " refused or did not answer (check the credentials with kms-stun turn)";

    app::Output out(tool.common().json, g.result_out);
    out.json_only("candidates", g.candidates);
    if (!tool.common().json)
        for (const auto& c : g.candidates)
            std::fprintf(g.result_out, "%-6s %-24s priority %-10s foundation %-4s %7.1f ms\n",
                         c["candidateType"].get<std::string>().c_str(),
                         c["address"].get<std::string>().c_str(),
                         std::to_string(c["priority"].get<unsigned>()).c_str(),
                         c["foundation"].get<std::string>().c_str(), c["ms"].get<double>());
    out.field("gatheringMs", "gathering took (ms)", round3(g.gathered_ms));
    if (o.check) {
        out.field("remoteCandidates", "remote candidates", g.remote_count);
        out.field("state", "ICE state", g.state);
        if (g.ready) {
            out.field("connectedMs", "connected after (ms)", round3(g.ready_ms));
            if (!g.selected.is_null())
                out.field("selected", "selected pair",
                          tool.common().json
                              ? g.selected
                              : Json(g.selected["local"]["candidateType"].get<std::string>() + " " +
                                     g.selected["local"]["address"].get<std::string>() + " -> " +
                                     g.selected["remote"]["candidateType"].get<std::string>() +
                                     " " + g.selected["remote"]["address"].get<std::string>()));
            if (!g.rtts.empty()) {
                double sum = 0;
                for (double r : g.rtts) sum += r;
                out.field("rttMs", "rtt (ms)", round3(sum / g.rtts.size()));
            }
        }
    }
    if (g.rc == app::kOk && !missing.empty() && !g.ready) {
        g.rc = app::kNetwork;
        g.error = missing;
    }
    if (!g.error.empty()) out.field("error", "error", g.error);
    out.finish();
    if (!g.error.empty()) std::fprintf(stderr, "kms-stun: %s\n", g.error.c_str());
    return g.rc;
}

}  // namespace kms::stuntool
