#include "webrtc/ice_config.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <net/if.h>
#include <netdb.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>

#include <string_view>

#include <glib.h>

#include "gst/handles.hpp"
#include "kms/error.hpp"
#include "kms/uri.hpp"

namespace kms::webrtc {

// Addresses of an interface name, or the argument itself when it is an address.
std::vector<std::string> resolve_bind(const std::string& what) {
    sockaddr_storage sa = {};
    auto* v4 = reinterpret_cast<sockaddr_in*>(&sa);
    auto* v6 = reinterpret_cast<sockaddr_in6*>(&sa);
    socklen_t len = 0;
    if (inet_pton(AF_INET, what.c_str(), &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        len = sizeof *v4;
    } else if (inet_pton(AF_INET6, what.c_str(), &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        len = sizeof *v6;
    }
    if (len) {
        // An address this machine does not have gave an offer whose only candidate could never
        // be used (libnice skips it quietly): the kernel says so now, as a bind to port 0,
        // which sends nothing.
        const int fd = ::socket(sa.ss_family, SOCK_DGRAM | SOCK_CLOEXEC, 0);
        const bool ok = fd >= 0 && ::bind(fd, reinterpret_cast<sockaddr*>(&sa), len) == 0;
        const int err = errno;
        if (fd >= 0) ::close(fd);
        if (!ok && err == EADDRNOTAVAIL)
            throw Error(ErrorCode::InvalidArgument,
                        "--bind " + what + ": not an address of this machine (see `ip addr`)");
        return {what};
    }
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

namespace {

// The shared grammar (kms/uri.hpp), its messages led by the option that gave the URI.
IceServerUri parse_option(const std::string& uri, const char* option, IceServerRole role) {
    try {
        return parse_ice_server_uri(uri, role);
    } catch (const Error& e) {
        throw Error(e.code(), std::string(option) + " " + e.what());
    }
}

}  // namespace

std::string webrtcbin_stun_uri(const std::string& uri) {
    return "stun://" + parse_option(uri, "--stun", IceServerRole::Stun).host_port();
}

std::string webrtcbin_turn_uri(const std::string& uri, const IceOptions& ice) {
    const IceServerUri u = parse_option(uri, "--turn", IceServerRole::Turn);
    if (u.secure()) {
        // libnice 0.1.21 speaks plain TCP to a "TLS" TURN server outside its Google and
        // Microsoft modes: the Allocate, user name and realm would cross the network in the clear
        // (seen on the wire through a relaying proxy), while the user asked for TLS.
        throw Error(ErrorCode::InvalidArgument,
                    "--turn '" + u.redacted() +
                        "': TURN over TLS is not available (libnice, which makes the connection, "
                        "would send it as plain TCP); use turn:...?transport=tcp if plain TCP is "
                        "acceptable, and kms-stun turn turns:... to check the server's TLS");
    }
    // The URI's credentials first; --turn-user and --turn-password fill in what it lacks.
    const std::string& user = u.user.empty() ? ice.turn_user : u.user;
    const std::string& password = u.password.empty() ? ice.turn_password : u.password;
    if (user.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "--turn " + u.redacted() +
                        ": no credentials; put USER:PASS@ in the URI or "
                        "give --turn-user and --turn-password");
    // webrtcbin percent-decodes the user part once (gst_uri_from_string_escaped, then
    // g_uri_unescape_string), so what was typed is escaped once here.
    gst::GCharPtr user_esc(g_uri_escape_string(user.c_str(), nullptr, FALSE));
    gst::GCharPtr pass_esc(g_uri_escape_string(password.c_str(), nullptr, FALSE));
    return "turn://" + std::string(user_esc.get()) + ":" + pass_esc.get() + "@" + u.host_port() +
           (u.transport.empty() ? "" : "?transport=" + u.transport);
}

void check_resolves(const std::string& uri, const char* option) {
    const IceServerUri u = parse_option(uri, option, IceServerRole::Any);
    addrinfo hints{};
    hints.ai_socktype = SOCK_DGRAM;
    addrinfo* res = nullptr;
    const int rc = getaddrinfo(u.host.c_str(), nullptr, &hints, &res);
    if (res) freeaddrinfo(res);
    if (rc != 0)
        throw Error(ErrorCode::Network, std::string(option) + " " + u.redacted() +
                                            ": cannot resolve " + u.host + " (" + gai_strerror(rc) +
                                            ")");
}

}  // namespace kms::webrtc
