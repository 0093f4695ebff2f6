// kms-stun: STUN and TURN from a terminal. The command line; the modes live beside it.
#include <algorithm>
#include <cstdio>
#include <functional>
#include <optional>
#include <set>
#include <vector>

#include "common/secrets.hpp"
#include "common/tool.hpp"
#include "kms/uri.hpp"
#include "modes.hpp"

namespace {

using namespace kms::stuntool;

constexpr const char* kExamples =
    "  # my public address as a STUN server sees it, over UDP and over TLS\n"
    "  kms-stun binding stun:stun.example.org\n"
    "  kms-stun binding stuns:stun.example.org\n"
    "  # ping a server: 10 requests 200 ms apart, loss and RTT at the end, as JSON\n"
    "  kms-stun binding stun:127.0.0.1:3478 --count 10 --interval 200 --json\n"
    "  # what kind of NAT am I behind (RFC 5780), and how long do its mappings live\n"
    "  kms-stun nat stun:stun.example.org --lifetime 120\n"
    "  # do my TURN credentials work, and does the relay carry packets\n"
    "  kms-stun turn turn:turn.example.org -u alice -p secret --count 50\n"
    "  kms-stun turn turns:turn.example.org --secret \"$TURN_SECRET\" --json\n"
    "  # which ICE candidates do I gather, and how fast\n"
    "  kms-stun gather --stun stun:stun.example.org --turn turn:alice:secret@turn.example.org\n"
    "  # a connectivity check between two hosts, candidates exchanged over two fifos\n"
    "  kms-stun gather --check --stun stun:stun.example.org --in b2a --out a2b\n"
    "  # a STUN server with an RFC 5780 second address, counters on exit\n"
    "  kms-stun server --listen 192.0.2.1:3478 --alt 192.0.2.2:3479 --json\n"
    "  # a UDP echo peer for relay tests\n"
    "  kms-stun echo --listen 127.0.0.1:4000\n";

void add_timing(CLI::App* cmd, Timing& t) {
    cmd->add_option("--rto", t.rto_ms, "Initial retransmission timeout in ms (RFC 8489: 500)")
        ->check(CLI::Range(1u, 60000u))
        ->option_text("MS");
    cmd->add_option("--retries", t.retries, "Requests sent per transaction, Rc (RFC 8489: 7)")
        ->check(CLI::Range(1u, 20u))
        ->option_text("N");
}

void add_credentials(CLI::App* cmd, std::string& user, std::string& password, const char* what) {
    cmd->add_option("-u,--user", user, what)->option_text("USER");
    cmd->add_option("-p,--password", password, "Password; never printed")->option_text("PASS");
}

void add_endpoint(CLI::App* cmd, bool& v4, bool& v6, std::string& bind, const char* bind_help) {
    auto* four = cmd->add_flag("-4", v4, "IPv4 only");
    cmd->add_flag("-6", v6, "IPv6 only")->excludes(four);
    cmd->add_option("--bind", bind, bind_help)->option_text("ADDR[:PORT]");
}

void add_tls(CLI::App* cmd, TlsOptions& t) {
    cmd->add_option("--ca", t.ca_file, "Trust this PEM CA or certificate for stuns:/turns:")
        ->option_text("FILE");
    cmd->add_flag("--insecure", t.insecure, "Do not check the server's TLS certificate");
}

bool wants_json(int argc, char** argv) {
    for (int i = 1; i < argc && std::string(argv[i]) != "--"; ++i)
        if (std::string(argv[i]) == "--json") return true;
    return false;
}

void print_json_error(std::FILE* out, const std::string& message) {
    std::fprintf(out, "%s\n", kms::Json{{"error", message}}.dump().c_str());
    std::fflush(out);
}

// CLI11 quotes arguments in its usage errors ("The following arguments were not expected:
// S3cret -p"), and Tool::run prints them as they are: parse here first, so that such a message
// shows secrets as *** and, with --json, comes as a JSON object too. A command line that
// parses here parses the same way again in Tool::run.
std::optional<int> usage_error(CLI::App& app, int argc, char** argv,
                               const std::set<std::string>& secrets) {
    try {
        app.parse(argc, argv);
    } catch (const CLI::Success&) {
        return std::nullopt;  // --help and --version: Tool::run prints them
    } catch (const CLI::ParseError& e) {
        const std::string message = kms::app::hide(e.what(), secrets);
        std::fprintf(stderr, "kms-stun: %s\nTry 'kms-stun --help'.\n", message.c_str());
        if (wants_json(argc, argv)) print_json_error(stdout, message);
        return kms::app::kUsage;
    }
    return std::nullopt;
}

// A mode that ends with an error before its result (a URI that does not parse, a name that does
// not resolve, a socket that cannot bind) still prints one JSON object under --json, with
// "error"; and no secret reaches its message.
int guarded(kms::app::Tool& tool, std::FILE* json_out, const std::set<std::string>& secrets,
            const std::function<int()>& mode) {
    try {
        return mode();
    } catch (const kms::Error& e) {
        const std::string message = kms::app::hide(e.what(), secrets);
        if (tool.common().json) print_json_error(json_out, message);
        throw kms::Error(e.code(), message);
    } catch (const std::exception& e) {
        const std::string message = kms::app::hide(e.what(), secrets);
        if (tool.common().json) print_json_error(json_out, message);
        throw kms::Error(kms::ErrorCode::Runtime, message);
    }
}

}  // namespace

int main(int argc, char** argv) {
    kms::app::Tool tool({"kms-stun",
                         "kms-stun: STUN binding, NAT behaviour (RFC 5780), TURN allocations and "
                         "relay checks, a STUN server and a UDP echo peer",
                         kExamples});
    CLI::App& app = tool.app();
    app.require_subcommand(1, 1);
    app.fallthrough();

    BindingOptions b;
    CLI::App* bind_cmd =
        app.add_subcommand("binding", "Ask a STUN server for our mapped address (RFC 8489)");
    bind_cmd->add_option("uri", b.uri, "stun:HOST[:PORT][?transport=udp|tcp] or stuns:HOST[:PORT]")
        ->required();
    add_endpoint(bind_cmd, b.v4, b.v6, b.bind, "Local ADDR[:PORT] to send from");
    bind_cmd->add_option("--count", b.count, "Send N requests, ping style (default 1)")
        ->option_text("N");
    bind_cmd
        ->add_option("--interval", b.interval_ms, "Milliseconds between requests (default 1000)")
        ->option_text("MS");
    bind_cmd
        ->add_option("--change-request", b.change,
                     "Ask for the answer from the server's other ip, port or ip+port (RFC 5780)")
        ->check(CLI::IsMember({"ip", "port", "ip+port"}))
        ->option_text("ip|port|ip+port");
    add_credentials(bind_cmd, b.user, b.password, "Username, when the server wants credentials");
    add_timing(bind_cmd, b.timing);
    add_tls(bind_cmd, b.tls);

    NatOptions n;
    n.timing.rto_ms = 100;
    n.timing.retries = 5;
    CLI::App* nat_cmd = app.add_subcommand(
        "nat", "NAT mapping and filtering behaviour, hairpinning and mapping lifetime (RFC 5780)");
    nat_cmd->add_option("uri", n.uri, "stun:HOST[:PORT] of a server with RFC 5780 support")
        ->required();
    nat_cmd->add_flag("-4", n.v4, "IPv4 only");
    nat_cmd->add_option("--bind", n.bind, "Local ADDR[:PORT] to test from")
        ->option_text("ADDR[:PORT]");
    nat_cmd
        ->add_option("--lifetime", n.lifetime_s,
                     "Also probe how long an idle mapping lives, up to S seconds")
        ->check(CLI::Range(1u, 3600u))
        ->option_text("S");
    nat_cmd
        ->add_option("--rto", n.timing.rto_ms, "Initial retransmission timeout in ms (default 100)")
        ->check(CLI::Range(1u, 60000u))
        ->option_text("MS");
    nat_cmd->add_option("--retries", n.timing.retries, "Requests sent per test (default 5)")
        ->check(CLI::Range(1u, 20u))
        ->option_text("N");

    TurnOptions t;
    CLI::App* turn_cmd = app.add_subcommand(
        "turn", "Allocate a TURN relay (RFC 8656) with a trace, and ping through it");
    turn_cmd
        ->add_option("uri", t.uri,
                     "turn:[USER:PASS@]HOST[:PORT][?transport=udp|tcp] or turns:HOST[:PORT]")
        ->required();
    add_credentials(turn_cmd, t.user, t.password, "Username (long-term credentials)");
    turn_cmd
        ->add_option("--secret", t.secret,
                     "Shared secret for REST credentials (coturn --static-auth-secret)")
        ->option_text("S");
    turn_cmd->add_option("--realm", t.realm, "The realm the account should be in")
        ->option_text("REALM");
    add_endpoint(turn_cmd, t.v4, t.v6, t.bind, "Local ADDR[:PORT] to connect from");
    turn_cmd
        ->add_option("--peer", t.peer, "UDP echo peer ADDR:PORT (default: a second socket of ours)")
        ->option_text("ADDR:PORT");
    turn_cmd->add_flag("--channel", t.channel, "Bind a channel and send ChannelData");
    turn_cmd->add_option("--count", t.count, "Packets sent through the relay (default 10)")
        ->option_text("N");
    turn_cmd->add_option("--interval", t.interval_ms, "Milliseconds between packets (default 20)")
        ->option_text("MS");
    turn_cmd->add_option("--size", t.size, "Bytes per packet (default 100)")->option_text("N");
    turn_cmd
        ->add_option("--load", t.load,
                     "Instead of the ping, hold N more allocations at once (at most 10000)")
        ->option_text("N");
    turn_cmd->add_option("--lifetime", t.lifetime_s, "Requested allocation lifetime in seconds")
        ->option_text("S");
    add_timing(turn_cmd, t.timing);
    add_tls(turn_cmd, t.tls);

    GatherOptions g;
    CLI::App* gather_cmd = app.add_subcommand(
        "gather", "Gather ICE candidates with libnice; --check runs checks against a peer");
    gather_cmd->add_option("--stun", g.stun, "STUN server for server-reflexive candidates")
        ->option_text("URI");
    gather_cmd->add_option("--turn", g.turn, "TURN server for relayed candidates")
        ->option_text("URI");
    add_credentials(gather_cmd, g.user, g.password, "TURN username");
    gather_cmd->add_option("--bind", g.bind, "Gather on this local address only (repeatable)")
        ->option_text("ADDR");
    gather_cmd->add_flag("--relay-only", g.relay_only,
                         "Offer and use relayed candidates only (iceTransportPolicy relay)");
    gather_cmd->add_flag("--check", g.check,
                         "Exchange candidates with a peer and run connectivity checks");
    gather_cmd->add_option("--in", g.in, "--check: read the peer's line from FILE (default stdin)")
        ->option_text("FILE");
    gather_cmd->add_option("--out", g.out, "--check: write our line to FILE (default stdout)")
        ->option_text("FILE");

    ServerOptions s;
    CLI::App* server_cmd = app.add_subcommand("server", "Answer STUN binding requests");
    server_cmd->add_option("--listen", s.listen, "ADDR:PORT to listen on")
        ->required()
        ->option_text("ADDR:PORT");
    server_cmd
        ->add_option("--alt", s.alt, "A second ADDR:PORT (other address and port): RFC 5780 mode")
        ->option_text("ADDR:PORT");
    server_cmd->add_option("--user", s.user, "Require long-term credentials USER:PASSWORD")
        ->option_text("USER:PASS");
    server_cmd->add_option("--realm", s.realm, "Realm for --user (default kms)")
        ->option_text("REALM");
    server_cmd->add_option("--rate", s.rate, "Requests per second answered per source address")
        ->check(CLI::PositiveNumber)
        ->option_text("N");
    server_cmd
        ->add_option("--control", s.control,
                     "Unix socket that answers each connection with the counters as JSON")
        ->option_text("PATH");

    std::string echo_listen;
    CLI::App* echo_cmd = app.add_subcommand("echo", "Send every UDP datagram back to its sender");
    echo_cmd->add_option("--listen", echo_listen, "ADDR:PORT to listen on")
        ->required()
        ->option_text("ADDR:PORT");

    const std::set<std::string> secrets =
        kms::app::secrets_of(argc, argv, {"-p", "--password", "--secret", "--user"});
    if (auto rc = usage_error(app, argc, argv, secrets)) return *rc;
    int rc = tool.run(argc, argv, [&] {
        // gather --check without --out talks to its peer on stdout, so its result goes to stderr.
        std::FILE* json_out =
            gather_cmd->parsed() && g.check && (g.out.empty() || g.out == "-") ? stderr : stdout;
        return guarded(tool, json_out, secrets, [&] {
            if (bind_cmd->parsed()) return run_binding(tool, b);
            if (nat_cmd->parsed()) return run_nat(tool, n);
            if (turn_cmd->parsed()) return run_turn(tool, t);
            if (gather_cmd->parsed()) return run_gather(tool, g);
            if (server_cmd->parsed()) return run_server(tool, s);
            if (echo_cmd->parsed()) return run_echo(tool, echo_listen);
            return static_cast<int>(kms::app::kUsage);
        });
    });
    std::fflush(stdout);
    std::fflush(stderr);
    return rc;
}
