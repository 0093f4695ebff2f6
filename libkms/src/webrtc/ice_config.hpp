// What --bind, --stun and --turn become for webrtcbin's ICE agent.
#pragma once

#include <string>
#include <vector>

#include "kms/webrtc_endpoint.hpp"

namespace kms::webrtc {

/// The addresses of an interface name, or the argument itself when it is an address. Link-local
/// IPv6 is left out (ICE candidates cannot carry its scope). Throws Error(InvalidArgument).
std::vector<std::string> resolve_bind(const std::string& what);

/// turn[s]:[user:pass@]host[:port][?transport=udp|tcp] -> webrtcbin's turn(s)://user:pass@host...
/// with --turn-user/--turn-password filled in. Throws Error(InvalidArgument), the URI redacted.
std::string webrtcbin_turn_uri(const std::string& uri, const IceOptions& ice);

/// The host of a stun:/turn: URI must resolve, or ICE gathering would wait for it in silence.
/// Throws Error(Network) naming the option and the host.
void check_resolves(const std::string& uri, const char* option);

}  // namespace kms::webrtc
