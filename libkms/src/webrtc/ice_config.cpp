#include "webrtc/ice_config.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>

#include <string_view>

#include <glib.h>

#include "gst/handles.hpp"
#include "kms/error.hpp"
#include "kms/uri.hpp"

namespace kms::webrtc {

// Addresses of an interface name, or the argument itself when it is an address.
std::vector<std::string> resolve_bind(const std::string& what) {
    unsigned char buf[sizeof(in6_addr)];
    if (inet_pton(AF_INET, what.c_str(), buf) == 1 || inet_pton(AF_INET6, what.c_str(), buf) == 1)
        return {what};
    std::vector<std::string> out;
    ifaddrs* list = nullptr;
    if (getifaddrs(&list) != 0)
        throw Error(ErrorCode::Runtime, "cannot list network interfaces for --bind " + what);
    for (ifaddrs* i = list; i; i = i->ifa_next) {
        if (!i->ifa_addr || what != i->ifa_name) continue;
        char text[INET6_ADDRSTRLEN] = {};
        if (i->ifa_addr->sa_family == AF_INET)
            inet_ntop(AF_INET, &reinterpret_cast<sockaddr_in*>(i->ifa_addr)->sin_addr, text,
                      sizeof text);
        else if (i->ifa_addr->sa_family == AF_INET6)
            inet_ntop(AF_INET6, &reinterpret_cast<sockaddr_in6*>(i->ifa_addr)->sin6_addr, text,
                      sizeof text);
        else
            continue;
        // Link-local IPv6 needs a scope id that ICE candidates cannot carry.
        if (std::string_view(text).substr(0, 4) == "fe80") continue;
        out.emplace_back(text);
    }
    freeifaddrs(list);
    if (out.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "--bind " + what + ": no such interface or address (see `ip addr`)");
    return out;
}

// turn[s]:[user:pass@]host[:port][?transport=udp|tcp] -> webrtcbin's turn(s)://user:pass@host:port
std::string webrtcbin_turn_uri(const std::string& uri, const IceOptions& ice) {
    std::string rest;
    std::string scheme;
    if (uri.rfind("turns:", 0) == 0) {
        // libnice 0.1.21 speaks plain TCP to a "TLS" TURN server outside its Google and
        // Microsoft modes: the Allocate, user name and realm would cross the network in the clear
        // (seen on the wire through a relaying proxy), while the user asked for TLS.
        throw Error(ErrorCode::InvalidArgument,
                    "--turn '" + redact_url(uri) +
                        "': TURN over TLS is not available (libnice, which makes the connection, "
                        "would send it as plain TCP); use turn:...?transport=tcp if plain TCP is "
                        "acceptable, and kms-stun turn turns:... to check the server's TLS");
    } else if (uri.rfind("turn:", 0) == 0) {
        scheme = "turn";
        rest = uri.substr(5);
    } else {
        // No scheme to tell the user part by (bob:S3cret@host): hide all of it.
        const size_t at = uri.rfind('@');
        const std::string shown = at == std::string::npos ? uri : "***" + uri.substr(at);
        throw Error(
            ErrorCode::InvalidArgument,
            "--turn '" + shown + "': expected turn:[USER:PASS@]HOST[:PORT][?transport=udp|tcp]");
    }
    if (rest.rfind("//", 0) == 0) rest = rest.substr(2);
    std::string query;
    if (size_t q = rest.find('?'); q != std::string::npos) {
        query = rest.substr(q + 1);
        rest.resize(q);
        if (query != "transport=udp" && query != "transport=tcp")
            throw Error(ErrorCode::InvalidArgument,
                        "--turn '" + redact_url(uri) +
                            "': only ?transport=udp or ?transport=tcp is understood");
    }
    if (rest.find('@') == std::string::npos) {
        if (ice.turn_user.empty())
            throw Error(ErrorCode::InvalidArgument,
                        "--turn " + redact_url(uri) +
                            ": no credentials; put USER:PASS@ in the URI or "
                            "give --turn-user and --turn-password");
        gst::GCharPtr user(g_uri_escape_string(ice.turn_user.c_str(), nullptr, FALSE));
        gst::GCharPtr pass(g_uri_escape_string(ice.turn_password.c_str(), nullptr, FALSE));
        rest = std::string(user.get()) + ":" + pass.get() + "@" + rest;
    }
    if (rest.empty() || rest.back() == '@')
        throw Error(ErrorCode::InvalidArgument, "--turn '" + redact_url(uri) + "': no host");
    return scheme + "://" + rest + (query.empty() ? "" : "?" + query);
}

void check_resolves(const std::string& uri, const char* option) {
    std::string rest = uri.substr(uri.find(':') + 1);
    if (rest.rfind("//", 0) == 0) rest = rest.substr(2);
    if (size_t at = rest.rfind('@'); at != std::string::npos) rest = rest.substr(at + 1);
    rest = rest.substr(0, rest.find_first_of("?/"));
    std::string host;
    if (!rest.empty() && rest[0] == '[')
        host = rest.substr(
            1, rest.find(']') == std::string::npos ? std::string::npos : rest.find(']') - 1);
    else
        host = rest.substr(0, rest.find(':'));
    if (host.empty())
        throw Error(ErrorCode::InvalidArgument,
                    std::string(option) + " '" + redact_url(uri) + "': no host");
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(host.c_str(), nullptr, &hints, &res);
    if (res) freeaddrinfo(res);
    if (rc != 0)
        throw Error(ErrorCode::Network, std::string(option) + " " + redact_url(uri) +
                                            ": cannot resolve " + host + " (" + gai_strerror(rc) +
                                            ")");
}

}  // namespace kms::webrtc
