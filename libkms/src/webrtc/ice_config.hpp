// What --bind, --stun and --turn become for webrtcbin's ICE agent.
#pragma once

#include <string>
#include <vector>

#include "kms/webrtc_endpoint.hpp"

namespace kms::webrtc {

/// The addresses of an interface name, or the argument itself when it is an address. Link-local
/// IPv6 is left out (ICE candidates cannot carry its scope). Throws Error(InvalidArgument).
std::vector<std::string> resolve_bind(const std::string& what);

/// --stun stun:HOST[:PORT] -> webrtcbin's stun://HOST:PORT, parsed by kms/uri.hpp's grammar.
/// Throws Error(InvalidArgument) led by "--stun", the URI redacted.
std::string webrtcbin_stun_uri(const std::string& uri);

/// --turn turn:[USER:PASS@]HOST[:PORT][?transport=udp|tcp] -> webrtcbin's
/// turn://USER:PASS@HOST:PORT[?transport=...], USER and PASS escaped, with --turn-user and
/// --turn-password filling in what the URI lacks. turns: is refused (libnice would send it as
/// plain TCP). Throws Error(InvalidArgument) led by "--turn", the URI redacted.
std::string webrtcbin_turn_uri(const std::string& uri, const IceOptions& ice);

/// A stun:/turn: URI must parse and its host resolve, or ICE gathering would wait for it in
/// silence. Throws Error(InvalidArgument) or Error(Network) naming the option and the host.
void check_resolves(const std::string& uri, const char* option);

}  // namespace kms::webrtc
