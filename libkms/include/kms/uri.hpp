// The URI grammars every tool shares (architecture.md, "Media URIs"): media sources and sinks,
// and the STUN/TURN servers of kms-call's --stun/--turn and kms-stun's modes.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <string_view>

namespace kms {

struct MediaUri {
    enum class Kind {
        Test,     ///< test:, test:video, test:audio, test:av?pattern=..&width=..
        File,     ///< a path or file:///path
        Stdio,    ///< "-": a Matroska stream on stdin (source) or stdout (sink)
        V4l2,     ///< v4l2:/dev/videoN
        Pulse,    ///< pulse:[device]
        Alsa,     ///< alsa:hw:0
        Null,     ///< null: (sink) discard
        Display,  ///< display: (sink) show on screen / play out
        Rtsp,     ///< rtsp://...
        Http,     ///< http(s)://...
        Rtp,      ///< rtp://ADDR:PORT[?sdp=FILE]
        Whep,     ///< whep+http(s)://... (source)
        Whip,     ///< whip+http(s)://... (sink)
    };

    Kind kind = Kind::Null;
    /// Path for File, device for V4l2/Pulse/Alsa, URL for network kinds; empty otherwise.
    std::string location;
    /// For Test: which tracks the URI asks for.
    bool video = true;
    bool audio = true;
    /// Query parameters (test:av?width=640 ...), already validated for Test.
    std::map<std::string, std::string> params;

    /// The URI as it can be shown to people: a password prints as ***.
    std::string redacted() const;
    /// A parameter as an integer, or fallback when absent.
    int param_int(const std::string& key, int fallback) const;
    std::string param(const std::string& key, const std::string& fallback) const;
};

/// Parses a source URI. Throws Error(InvalidArgument) with a message that names the problem.
MediaUri parse_source_uri(std::string_view text);

/// Parses a sink URI. Throws Error(InvalidArgument) with a message that names the problem.
MediaUri parse_sink_uri(std::string_view text);

/// Container for a file sink from its extension: "webm", "matroska", "mp4", "ogg", or "".
std::string container_for_path(std::string_view path);

/// Shows user:password@ in a URL as user:***@.
std::string redact_url(std::string_view url);

/// A STUN or TURN server: stun:, stuns: (RFC 7064), turn:, turns: (RFC 7065), with kms's
/// extension of credentials in the user part of turn: URIs:
///
///     stun[s]:HOST[:PORT][?transport=udp|tcp]
///     turn[s]:[USER[:PASS]@]HOST[:PORT][?transport=udp|tcp]
///
/// "//" after the scheme is allowed; an IPv6 HOST goes in brackets. USER:PASS runs to the last
/// '@' and splits at its first ':', and both are taken as typed (no percent-decoding), so a
/// password may hold '@', '/', '?', '#' or '%' as people type them.
struct IceServerUri {
    enum class Scheme { Stun, Stuns, Turn, Turns };

    Scheme scheme = Scheme::Stun;
    std::string host;            ///< a name or an address; an IPv6 address without brackets
    uint16_t port = 3478;        ///< the URI's, or 3478 (stun:, turn:) or 5349 (stuns:, turns:)
    std::string user, password;  ///< turn:/turns: only; the password is never printed
    std::string transport;       ///< "udp" or "tcp" from ?transport=, "" when absent

    bool turn() const { return scheme == Scheme::Turn || scheme == Scheme::Turns; }
    /// stuns: or turns:, which run TLS over TCP.
    bool secure() const { return scheme == Scheme::Stuns || scheme == Scheme::Turns; }
    /// HOST:PORT, [HOST]:PORT for IPv6.
    std::string host_port() const;
    /// The URI as it can be shown: scheme:[USER[:***]@]HOST:PORT[?transport=...].
    std::string redacted() const;
};

/// Which schemes a caller takes, for the message that refuses the others.
enum class IceServerRole { Stun, Turn, Any };

/// Parses a STUN/TURN server URI. Throws Error(InvalidArgument) with "'URI': what is wrong", the
/// URI shown with its password as *** (all that comes before the last '@' when the scheme is not
/// one of the four, as then nothing tells the user part apart).
IceServerUri parse_ice_server_uri(std::string_view text, IceServerRole role = IceServerRole::Any);

}  // namespace kms
