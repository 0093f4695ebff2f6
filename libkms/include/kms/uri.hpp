// The one media-URI grammar every tool shares (architecture.md, "Media URIs").
#pragma once

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

}  // namespace kms
