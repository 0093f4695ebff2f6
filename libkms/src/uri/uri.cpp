#include <arpa/inet.h>

#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <utility>

#include "kms/error.hpp"
#include "kms/uri.hpp"

namespace kms {

namespace {

[[noreturn]] void bad(std::string_view uri, const std::string& why) {
    throw Error(ErrorCode::InvalidArgument, "'" + redact_url(uri) + "': " + why);
}

bool parse_int(std::string_view s, int& out) {
    if (s.empty()) return false;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), out);
    return ec == std::errc() && p == s.data() + s.size();
}

// RFC 3986 §2.1 percent-decoding, for file:// URIs.
std::string percent_decode(std::string_view in, std::string_view uri) {
    std::string out;
    for (size_t i = 0; i < in.size(); ++i) {
        if (in[i] != '%') {
            out += in[i];
            continue;
        }
        if (i + 2 >= in.size() || !std::isxdigit(static_cast<unsigned char>(in[i + 1])) ||
            !std::isxdigit(static_cast<unsigned char>(in[i + 2])))
            bad(uri, "bad percent-escape in the path");
        out += static_cast<char>(std::stoi(std::string(in.substr(i + 1, 2)), nullptr, 16));
        i += 2;
    }
    if (out.find('\0') != std::string::npos) bad(uri, "the path contains a NUL byte");
    return out;
}

// The scheme of "name:rest" when name looks like a URI scheme (RFC 3986 §3.1); "" otherwise.
std::string scheme_of(std::string_view s) {
    if (s.empty() || !std::isalpha(static_cast<unsigned char>(s[0]))) return {};
    size_t i = 1;
    while (i < s.size() && (std::isalnum(static_cast<unsigned char>(s[i])) || s[i] == '+' ||
                            s[i] == '-' || s[i] == '.'))
        ++i;
    if (i >= s.size() || s[i] != ':') return {};
    std::string scheme(s.substr(0, i));
    std::transform(scheme.begin(), scheme.end(), scheme.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return scheme;
}

std::map<std::string, std::string> parse_query(std::string_view q, std::string_view uri) {
    std::map<std::string, std::string> out;
    while (!q.empty()) {
        size_t amp = q.find('&');
        std::string_view kv = q.substr(0, amp);
        q = amp == std::string_view::npos ? std::string_view() : q.substr(amp + 1);
        if (kv.empty()) continue;
        size_t eq = kv.find('=');
        if (eq == 0 || eq == std::string_view::npos || eq + 1 == kv.size())
            bad(uri, "query part '" + std::string(kv) + "' is not key=value");
        out[std::string(kv.substr(0, eq))] = std::string(kv.substr(eq + 1));
    }
    return out;
}

constexpr std::array kPatterns = {"smpte",
                                  "snow",
                                  "black",
                                  "white",
                                  "red",
                                  "green",
                                  "blue",
                                  "checkers-1",
                                  "checkers-2",
                                  "checkers-4",
                                  "checkers-8",
                                  "circular",
                                  "blink",
                                  "smpte75",
                                  "zone-plate",
                                  "gamut",
                                  "chroma-zone-plate",
                                  "solid-color",
                                  "ball",
                                  "smpte100",
                                  "bar",
                                  "pinwheel",
                                  "spokes",
                                  "gradient",
                                  "colors"};
constexpr std::array kWaves = {"sine",    "square",      "saw",        "triangle",
                               "silence", "white-noise", "pink-noise", "ticks"};

MediaUri parse_test(std::string_view text, std::string_view rest) {
    MediaUri u;
    u.kind = MediaUri::Kind::Test;
    size_t q = rest.find('?');
    std::string_view what = rest.substr(0, q);
    if (what.empty() || what == "av") {
        u.video = u.audio = true;
    } else if (what == "video") {
        u.audio = false;
    } else if (what == "audio") {
        u.video = false;
    } else {
        bad(text, "unknown test source '" + std::string(what) +
                      "'; use test:av, test:video or test:audio");
    }
    if (q != std::string_view::npos) u.params = parse_query(rest.substr(q + 1), text);
    struct Range {
        const char* key;
        int lo, hi;
    };
    static constexpr Range ranges[] = {{"width", 16, 7680},   {"height", 16, 4320},
                                       {"fps", 1, 240},       {"freq", 1, 24000},
                                       {"rate", 8000, 96000}, {"channels", 1, 8}};
    for (const auto& [key, value] : u.params) {
        if (key == "pattern") {
            if (std::find(kPatterns.begin(), kPatterns.end(), value) == kPatterns.end())
                bad(text, "unknown pattern '" + value + "' (try smpte, ball, snow, gradient)");
            continue;
        }
        if (key == "wave") {
            if (std::find(kWaves.begin(), kWaves.end(), value) == kWaves.end())
                bad(text, "unknown wave '" + value + "' (try sine, square, ticks)");
            continue;
        }
        auto r = std::find_if(std::begin(ranges), std::end(ranges),
                              [&](const Range& x) { return key == x.key; });
        if (r == std::end(ranges))
            bad(text, "unknown parameter '" + key +
                          "'; test: takes pattern, width, height, fps, wave, freq, rate, channels");
        int v = 0;
        if (!parse_int(value, v) || v < r->lo || v > r->hi)
            bad(text, key + "=" + value + " is not a whole number from " + std::to_string(r->lo) +
                          " to " + std::to_string(r->hi));
    }
    return u;
}

MediaUri parse_file(std::string_view text, std::string_view rest) {
    // file:///abs/path or file://localhost/abs/path (RFC 8089)
    if (rest.substr(0, 2) != "//") bad(text, "a file URI is file:///absolute/path");
    rest.remove_prefix(2);
    if (rest.substr(0, 9) == "localhost") rest.remove_prefix(9);
    if (rest.empty() || rest[0] != '/')
        bad(text, "file URIs on other hosts are not supported; use file:///absolute/path");
    MediaUri u;
    u.kind = MediaUri::Kind::File;
    u.location = percent_decode(rest, text);
    return u;
}

MediaUri parse_common(std::string_view text, bool source) {
    if (text.empty()) bad(text, "empty URI");
    if (text == "-") {
        MediaUri u;
        u.kind = MediaUri::Kind::Stdio;
        return u;
    }
    const std::string scheme = scheme_of(text);
    const std::string_view rest = scheme.empty() ? text : text.substr(scheme.size() + 1);
    MediaUri u;
    if (scheme.empty()) {
        if (text.find('\0') != std::string_view::npos) bad(text, "the path contains a NUL byte");
        u.kind = MediaUri::Kind::File;
        u.location = std::string(text);
        return u;
    }
    if (scheme == "test") {
        if (!source) bad(text, "test: is a source; it cannot receive media");
        return parse_test(text, rest);
    }
    if (scheme == "file") return parse_file(text, rest);
    if (scheme == "null") {
        if (source) bad(text, "null: is a sink; use test: for a synthetic source");
        if (!rest.empty()) bad(text, "null: takes nothing after the colon");
        u.kind = MediaUri::Kind::Null;
        return u;
    }
    if (scheme == "display") {
        if (source) bad(text, "display: is a sink");
        if (!rest.empty()) bad(text, "display: takes nothing after the colon");
        u.kind = MediaUri::Kind::Display;
        return u;
    }
    if (scheme == "v4l2") {
        if (!source) bad(text, "v4l2: is a source (a camera)");
        if (rest.empty() || rest[0] != '/') bad(text, "expected v4l2:/dev/videoN");
        u.kind = MediaUri::Kind::V4l2;
        u.location = std::string(rest);
        return u;
    }
    if (scheme == "pulse") {
        u.kind = MediaUri::Kind::Pulse;
        u.location = std::string(rest);
        return u;
    }
    if (scheme == "alsa") {
        if (rest.empty()) bad(text, "expected alsa:DEVICE, e.g. alsa:hw:0");
        u.kind = MediaUri::Kind::Alsa;
        u.location = std::string(rest);
        return u;
    }
    auto net = [&](MediaUri::Kind kind, std::string_view loc) {
        if (loc.size() < 3 || loc.substr(0, 2) != "//")
            bad(text, "expected " + scheme + "://HOST...");
        u.kind = kind;
        u.location = std::string(loc);
    };
    if (scheme == "rtsp" || scheme == "rtsps") {
        if (!source) bad(text, "rtsp: is a source");
        net(MediaUri::Kind::Rtsp, rest);
        u.location = std::string(text);
        return u;
    }
    if (scheme == "http" || scheme == "https") {
        if (!source)
            bad(text, "http(s): is a source; to push over WebRTC use whip+" + scheme + "://");
        net(MediaUri::Kind::Http, rest);
        u.location = std::string(text);
        return u;
    }
    if (scheme == "rtp") {
        net(MediaUri::Kind::Rtp, rest);
        size_t q = u.location.find('?');
        if (q != std::string::npos) {
            u.params = parse_query(std::string_view(u.location).substr(q + 1), text);
            u.location.resize(q);
        }
        u.location = u.location.substr(2);
        size_t colon = u.location.rfind(':');
        int port = 0;
        if (colon == std::string::npos ||
            !parse_int(std::string_view(u.location).substr(colon + 1), port) || port < 1 ||
            port > 65535)
            bad(text, "expected rtp://ADDRESS:PORT with a port from 1 to 65535");
        return u;
    }
    if (scheme == "whep+http" || scheme == "whep+https") {
        if (!source) bad(text, "whep+http(s): pulls media; to push use whip+http(s)://");
        net(MediaUri::Kind::Whep, rest);
        u.location = std::string(text.substr(5));
        return u;
    }
    if (scheme == "whip+http" || scheme == "whip+https") {
        if (source) bad(text, "whip+http(s): pushes media; to pull use whep+http(s)://");
        net(MediaUri::Kind::Whip, rest);
        u.location = std::string(text.substr(5));
        return u;
    }
    bad(text, "unknown URI scheme '" + scheme + ":'; for a file whose name has a colon, write ./" +
                  redact_url(text));
}

}  // namespace

MediaUri parse_source_uri(std::string_view text) {
    return parse_common(text, true);
}
MediaUri parse_sink_uri(std::string_view text) {
    return parse_common(text, false);
}

std::string container_for_path(std::string_view path) {
    size_t dot = path.rfind('.');
    size_t slash = path.rfind('/');
    if (dot == std::string_view::npos || (slash != std::string_view::npos && dot < slash))
        return {};
    std::string ext(path.substr(dot + 1));
    std::transform(ext.begin(), ext.end(), ext.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    if (ext == "webm" || ext == "weba") return "webm";
    if (ext == "mkv" || ext == "mka") return "matroska";
    if (ext == "mp4" || ext == "m4a" || ext == "mov") return "mp4";
    if (ext == "ogg" || ext == "opus" || ext == "oga") return "ogg";
    if (ext == "wav") return "wav";
    return {};
}

std::string redact_url(std::string_view url) {
    // Errs on the side of hiding: the last '@' anywhere ends the user part, so a password that
    // holds '/', '?', '#' or '@' unescaped (people type them so) is still covered, in
    // turn:user:pass@host as in https://user:pass@host/.
    size_t scheme_end = url.find("://");
    size_t start = scheme_end == std::string_view::npos ? url.find(':') : scheme_end + 3;
    if (start == std::string_view::npos) return std::string(url);
    if (scheme_end == std::string_view::npos) ++start;
    size_t at = url.rfind('@');
    if (at == std::string_view::npos || at < start) return std::string(url);
    std::string_view userinfo = url.substr(start, at - start);
    size_t colon = userinfo.find(':');
    if (colon == std::string_view::npos) return std::string(url);
    // A user name holds none of these: the '@' is further on, in a path or query.
    if (userinfo.substr(0, colon).find_first_of("/?#[") != std::string_view::npos)
        return std::string(url);
    std::string out(url.substr(0, start + colon));
    out += ":***";
    out += url.substr(at);
    return out;
}

std::string MediaUri::redacted() const {
    switch (kind) {
        case Kind::Test:
            return video && audio ? "test:av" : video ? "test:video" : "test:audio";
        case Kind::File:
            return location;
        case Kind::Stdio:
            return "-";
        case Kind::V4l2:
            return "v4l2:" + location;
        case Kind::Pulse:
            return "pulse:" + location;
        case Kind::Alsa:
            return "alsa:" + location;
        case Kind::Null:
            return "null:";
        case Kind::Display:
            return "display:";
        case Kind::Rtp:
            return "rtp://" + location;
        case Kind::Whep:
            return "whep+" + redact_url(location);
        case Kind::Whip:
            return "whip+" + redact_url(location);
        default:
            return redact_url(location);
    }
}

int MediaUri::param_int(const std::string& key, int fallback) const {
    auto it = params.find(key);
    int v = fallback;
    if (it != params.end() && parse_int(it->second, v)) return v;
    return fallback;
}

std::string MediaUri::param(const std::string& key, const std::string& fallback) const {
    auto it = params.find(key);
    return it == params.end() ? fallback : it->second;
}

namespace {

using IceScheme = IceServerUri::Scheme;

constexpr std::pair<const char*, IceScheme> kIceSchemes[] = {{"stun", IceScheme::Stun},
                                                             {"stuns", IceScheme::Stuns},
                                                             {"turn", IceScheme::Turn},
                                                             {"turns", IceScheme::Turns}};

const char* ice_scheme_name(IceScheme s) {
    for (const auto& [name, scheme] : kIceSchemes)
        if (scheme == s) return name;
    return "stun";
}

const char* expected_ice_uri(IceServerRole role) {
    switch (role) {
        case IceServerRole::Stun:
            return "expected stun:HOST[:PORT] or stuns:HOST[:PORT]";
        case IceServerRole::Turn:
            return "expected turn:[USER:PASS@]HOST[:PORT][?transport=udp|tcp]";
        default:
            return "expected stun:, stuns:, turn: or turns:HOST[:PORT]";
    }
}

bool all_digits(std::string_view s) {
    return !s.empty() &&
           std::all_of(s.begin(), s.end(), [](unsigned char c) { return std::isdigit(c) != 0; });
}

}  // namespace

IceServerUri parse_ice_server_uri(std::string_view text, IceServerRole role) {
    const std::string scheme = scheme_of(text);
    const auto known = std::find_if(std::begin(kIceSchemes), std::end(kIceSchemes),
                                    [&](const auto& s) { return scheme == s.first; });
    std::string_view prefix =
        known == std::end(kIceSchemes) ? "" : text.substr(0, scheme.size() + 1);
    std::string_view rest = text.substr(prefix.size());
    if (!prefix.empty() && rest.substr(0, 2) == "//") {
        prefix = text.substr(0, prefix.size() + 2);
        rest.remove_prefix(2);
    }
    // The user part runs to the last '@': a password may hold '?', '/', '#' or '@' as typed.
    const size_t at = rest.rfind('@');
    const std::string_view userinfo =
        at == std::string_view::npos ? std::string_view() : rest.substr(0, at);
    const size_t colon = userinfo.find(':');
    if (at != std::string_view::npos) rest.remove_prefix(at + 1);

    // The URI as messages show it: the password as ***, or, when the scheme is not one of ours
    // (bob:S3cret@host), everything before the last '@', as nothing tells the user part apart.
    std::string shown;
    if (prefix.empty())
        shown = at == std::string_view::npos ? std::string(text) : "***@" + std::string(rest);
    else if (colon == std::string_view::npos)
        shown = std::string(text);
    else
        shown = std::string(prefix) + std::string(userinfo.substr(0, colon)) + ":***@" +
                std::string(rest);
    auto fail = [&](const std::string& why) {
        throw Error(ErrorCode::InvalidArgument, "'" + shown + "': " + why);
    };

    if (prefix.empty()) fail(expected_ice_uri(role));
    IceServerUri u;
    u.scheme = known->second;
    if (role == IceServerRole::Stun && u.turn()) fail("a TURN URI where a STUN one is expected");
    if (role == IceServerRole::Turn && !u.turn()) fail("a STUN URI where a TURN one is expected");
    if (at != std::string_view::npos) {
        // RFC 7064 has no user part; kms takes turn: credentials there, as kms-call always has.
        if (!u.turn()) fail("credentials belong in turn: URIs");
        u.user = std::string(userinfo.substr(0, colon));
        if (colon != std::string_view::npos) u.password = std::string(userinfo.substr(colon + 1));
    }

    // RFC 7065 §3.1: ?transport=udp|tcp; TLS (turns:, stuns:) runs over TCP only.
    if (size_t q = rest.find('?'); q != std::string_view::npos) {
        const std::string query(rest.substr(q + 1));
        rest = rest.substr(0, q);
        if (query.rfind("transport=", 0) != 0)
            fail("unknown query '" + query +
                 "'; only ?transport=udp or ?transport=tcp is understood");
        u.transport = query.substr(10);
        if (u.transport != "udp" && u.transport != "tcp") fail("transport must be udp or tcp");
        if (u.secure() && u.transport == "udp") fail("TLS runs over tcp; DTLS is not supported");
    }

    // RFC 3986 §3.2.2: an IPv6 literal in brackets, then an optional :PORT.
    std::string_view host = rest;
    std::string_view port_text;
    bool has_port = false;
    if (!rest.empty() && rest[0] == '[') {
        const size_t close = rest.find(']');
        if (close == std::string_view::npos) fail("unclosed [");
        host = rest.substr(1, close - 1);
        if (close + 1 < rest.size()) {
            if (rest[close + 1] != ':') fail("bad port");
            port_text = rest.substr(close + 2);
            has_port = true;
        }
        const std::string address(host.substr(0, host.find('%')));  // a zone id may follow
        unsigned char buf[sizeof(in6_addr)];
        if (!host.empty() && inet_pton(AF_INET6, address.c_str(), buf) != 1)
            fail("'[" + std::string(host) + "]' is not an IPv6 address");
    } else if (size_t c = rest.find(':'); c != std::string_view::npos) {
        host = rest.substr(0, c);
        port_text = rest.substr(c + 1);
        has_port = true;
        if (port_text.find(':') != std::string_view::npos)
            fail("an IPv6 address goes in brackets: " + std::string(ice_scheme_name(u.scheme)) +
                 ":[ADDRESS]:PORT");
    }
    if (has_port) {
        int port = 0;
        if (!all_digits(port_text) || !parse_int(port_text, port) || port < 1 || port > 65535) {
            // turn:alice:S3cret without @HOST reads as a host and a port: do not show the "port".
            if (u.turn() && at == std::string_view::npos && !all_digits(port_text))
                shown = std::string(prefix) + std::string(host) + ":***";
            fail("bad port");
        }
        u.port = static_cast<uint16_t>(port);
    } else {
        // RFC 7064 §3.1, RFC 7065 §3.1: 3478, and 5349 over TLS.
        u.port = u.secure() ? 5349 : 3478;
    }
    if (host.empty()) fail("no host");
    if (host.find_first_of("/?#[]@ \t") != std::string_view::npos ||
        std::any_of(host.begin(), host.end(), [](unsigned char c) { return std::iscntrl(c); }))
        fail("bad host '" + std::string(host) + "'");
    u.host = std::string(host);
    return u;
}

std::string IceServerUri::host_port() const {
    const std::string h = host.find(':') == std::string::npos ? host : "[" + host + "]";
    return h + ":" + std::to_string(port);
}

std::string IceServerUri::redacted() const {
    std::string out = std::string(ice_scheme_name(scheme)) + ":";
    if (!user.empty() || !password.empty()) out += user + (password.empty() ? "" : ":***") + "@";
    out += host_port();
    if (!transport.empty()) out += "?transport=" + transport;
    return out;
}

}  // namespace kms
