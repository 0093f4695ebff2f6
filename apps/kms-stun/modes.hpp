// kms-stun's modes; each returns the tool's exit status.
#pragma once

#include <string>
#include <vector>

#include "client.hpp"
#include "common/tool.hpp"

namespace kms::stuntool {

struct BindingOptions {
    std::string uri;
    bool v4 = false, v6 = false;
    std::string bind;
    unsigned count = 1;
    unsigned interval_ms = 1000;
    std::string user, password;  ///< long-term credentials, sent when the server asks
    std::string change;          ///< CHANGE-REQUEST: "ip", "port", "ip+port"; empty: none
    Timing timing;
    TlsOptions tls;
};
int run_binding(app::Tool& tool, const BindingOptions& o);

struct ServerOptions {
    std::string listen;
    std::string alt;   ///< RFC 5780: a second ADDR:PORT
    std::string user;  ///< USER:PASS for long-term credentials; empty: none
    std::string realm = "kms";
    double rate = 0;      ///< requests per second per source address; 0: no limit
    std::string control;  ///< a Unix socket answering counters
};
int run_server(app::Tool& tool, const ServerOptions& o);
int run_echo(app::Tool& tool, const std::string& listen);

struct TurnOptions {
    std::string uri;
    std::string user, password, secret;
    std::string realm;  ///< expected realm; empty: the server's
    bool v4 = false, v6 = false;
    std::string bind;
    std::string peer;  ///< ADDR:PORT of an echo peer; empty: our own second socket
    bool channel = false;
    unsigned count = 10;
    unsigned interval_ms = 20;
    unsigned size = 100;
    unsigned load = 0;
    unsigned lifetime_s = 0;
    Timing timing;
    TlsOptions tls;
};
int run_turn(app::Tool& tool, const TurnOptions& o);

struct NatOptions {
    std::string uri;
    bool v4 = false;
    std::string bind;
    unsigned lifetime_s = 0;  ///< probe the mapping lifetime up to this many seconds
    Timing timing;
};
int run_nat(app::Tool& tool, const NatOptions& o);

struct GatherOptions {
    std::string stun, turn;      ///< server URIs
    std::string user, password;  ///< TURN credentials when the URI has none
    std::vector<std::string> bind;
    bool relay_only = false;
    bool check = false;
    std::string in, out;  ///< --check: where the peer's line comes from and ours goes
};
int run_gather(app::Tool& tool, const GatherOptions& o);

}  // namespace kms::stuntool
