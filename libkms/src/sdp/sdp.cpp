// SDP from a peer is untrusted. A strict line pass (RFC 8866 §5 grammar, sizes bounded) finds
// the line to blame; GStreamer's GstSDPMessage then gives the structure. Nothing here throws on
// bad bytes: every path returns an SdpError.
#include <algorithm>
#include <array>
#include <cctype>
#include <charconv>
#include <cstring>

#include <gst/sdp/sdp.h>
#include <nlohmann/json.hpp>

#include "gst/handles.hpp"
#include "kms/sdp.hpp"

namespace kms {

namespace {

constexpr size_t kMaxSdpBytes = 256 * 1024;
constexpr size_t kMaxLines = 8192;

struct Line {
    int number;
    char type;
    std::string_view value;
};

bool is_uint(std::string_view s, unsigned long max, unsigned long* out = nullptr) {
    if (s.empty() || s.size() > 20) return false;
    unsigned long v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || p != s.data() + s.size() || v > max) return false;
    if (out) *out = v;
    return true;
}

std::vector<std::string_view> split_ws(std::string_view s) {
    std::vector<std::string_view> out;
    size_t i = 0;
    while (i < s.size()) {
        while (i < s.size() && s[i] == ' ') ++i;
        size_t j = i;
        while (j < s.size() && s[j] != ' ') ++j;
        if (j > i) out.push_back(s.substr(i, j - i));
        i = j;
    }
    return out;
}

std::string lower(std::string_view s) {
    std::string out(s);
    std::transform(out.begin(), out.end(), out.begin(),
                   [](unsigned char c) { return std::tolower(c); });
    return out;
}

SdpParse fail(int line, std::string message, ErrorCode code = ErrorCode::BadInput) {
    SdpParse r;
    r.error.code = code;
    r.error.line = line;
    r.error.message = std::move(message);
    return r;
}

constexpr std::array kHashes = {"sha-1", "sha-224", "sha-256", "sha-384", "sha-512"};

// a=fingerprint:<hash> <XX:XX:...> (RFC 8122 §5)
bool valid_fingerprint(std::string_view v, std::string* alg, std::string* hex) {
    auto parts = split_ws(v);
    if (parts.size() != 2) return false;
    std::string a = lower(parts[0]);
    if (std::find(kHashes.begin(), kHashes.end(), a) == kHashes.end()) return false;
    std::string_view h = parts[1];
    if (h.size() < 2 || (h.size() + 1) % 3 != 0) return false;
    for (size_t i = 0; i < h.size(); ++i) {
        if (i % 3 == 2) {
            if (h[i] != ':') return false;
        } else if (!std::isxdigit(static_cast<unsigned char>(h[i]))) {
            return false;
        }
    }
    *alg = a;
    hex->assign(h);
    std::transform(hex->begin(), hex->end(), hex->begin(),
                   [](unsigned char c) { return std::toupper(c); });
    return true;
}

// Checks one line's value against the grammar of its type; returns "" when fine.
std::string check_line(const Line& l) {
    auto f = split_ws(l.value);
    switch (l.type) {
        case 'v':
            return l.value == "0" ? "" : "v= must be 0";
        case 'o':
            if (f.size() != 6)
                return "o= needs 6 fields (username sess-id sess-version nettype addrtype address)";
            return "";
        case 't':
            if (f.size() != 2 || !is_uint(f[0], ~0ul) || !is_uint(f[1], ~0ul))
                return "t= needs two numbers";
            return "";
        case 'c':
            if (f.size() != 3 || f[0] != "IN" || (f[1] != "IP4" && f[1] != "IP6"))
                return "c= must be 'IN IP4|IP6 ADDRESS'";
            return "";
        case 'b': {
            size_t colon = l.value.find(':');
            if (colon == std::string_view::npos || colon == 0 ||
                !is_uint(l.value.substr(colon + 1), ~0ul))
                return "b= must be TYPE:NUMBER";
            return "";
        }
        case 'm': {
            if (f.size() < 4) return "m= needs media, port, protocol and at least one format";
            std::string_view port = f[1];
            size_t slash = port.find('/');
            if (!is_uint(port.substr(0, slash), 65535) ||
                (slash != std::string_view::npos && !is_uint(port.substr(slash + 1), 65535)))
                return "m= port '" + std::string(port) + "' is not a number from 0 to 65535";
            if (f[2].find("RTP") != std::string_view::npos) {
                for (size_t i = 3; i < f.size(); ++i)
                    if (!is_uint(f[i], 127))
                        return "m= payload type '" + std::string(f[i]) + "' is not 0-127";
            }
            return "";
        }
        case 'a': {
            std::string_view v = l.value;
            size_t colon = v.find(':');
            std::string_view name = v.substr(0, colon);
            if (name.empty()) return "a= has no attribute name";
            std::string_view val =
                colon == std::string_view::npos ? std::string_view() : v.substr(colon + 1);
            if (name == "rtpmap") {
                // a=rtpmap:<pt> <encoding>/<clock rate>[/<channels>] (RFC 8866 §6.6)
                auto p = split_ws(val);
                if (p.size() != 2 || !is_uint(p[0], 127)) return "a=rtpmap needs 'PT NAME/RATE'";
                std::string_view enc = p[1];
                size_t s1 = enc.find('/');
                if (s1 == 0 || s1 == std::string_view::npos) return "a=rtpmap needs 'PT NAME/RATE'";
                std::string_view rest = enc.substr(s1 + 1);
                size_t s2 = rest.find('/');
                if (!is_uint(rest.substr(0, s2), 10'000'000) ||
                    (s2 != std::string_view::npos && !is_uint(rest.substr(s2 + 1), 255)))
                    return "a=rtpmap clock rate or channels is not a number";
                return "";
            }
            if (name == "fingerprint") {
                std::string a, h;
                if (!valid_fingerprint(val, &a, &h))
                    return "a=fingerprint must be 'sha-256 XX:XX:...' with a known hash";
                return "";
            }
            if (name == "fmtp") {
                auto p = split_ws(val);
                if (p.empty() || !is_uint(p[0], 127)) return "a=fmtp needs 'PT PARAMETERS'";
                return "";
            }
            return "";
        }
        case 's':
        case 'i':
        case 'u':
        case 'e':
        case 'p':
        case 'z':
        case 'k':
        case 'r':
            return "";
        default:
            return std::string("unknown line type '") + l.type + "='";
    }
}

std::string attr(const GstSDPMedia* m, const GstSDPMessage* msg, const char* key) {
    const gchar* v = m ? gst_sdp_media_get_attribute_val(m, key) : nullptr;
    if (!v && msg) v = gst_sdp_message_get_attribute_val(msg, key);
    return v ? v : "";
}

bool has_attr(const GstSDPMedia* m, std::string_view key) {
    for (guint a = 0; a < gst_sdp_media_attributes_len(m); ++a) {
        const GstSDPAttribute* at = gst_sdp_media_get_attribute(m, a);
        if (at->key && key == at->key) return true;
    }
    return false;
}

SdpCodec static_codec(int pt) {
    // RFC 3551 §6 static payload types that WebRTC peers still use without a=rtpmap.
    switch (pt) {
        case 0:
            return {"pcmu", 0, 8000, 1, ""};
        case 8:
            return {"pcma", 8, 8000, 1, ""};
        case 9:
            return {"g722", 9, 8000, 1, ""};
        default:
            return {"", pt, 0, 0, ""};
    }
}

}  // namespace

SdpParse parse_sdp(std::string_view text, bool webrtc) {
    if (text.empty()) return fail(0, "empty SDP");
    if (text.size() > kMaxSdpBytes) return fail(0, "SDP larger than 256 KiB");

    // Pass 1: lines and their grammar.
    std::vector<Line> lines;
    std::string normalised;
    int number = 0;
    size_t pos = 0;
    while (pos < text.size()) {
        size_t nl = text.find('\n', pos);
        std::string_view raw =
            text.substr(pos, nl == std::string_view::npos ? text.npos : nl - pos);
        pos = nl == std::string_view::npos ? text.size() : nl + 1;
        ++number;
        if (!raw.empty() && raw.back() == '\r') raw.remove_suffix(1);
        if (raw.empty()) {
            // Trailing blank lines end a description read from a stream; a blank line inside is
            // wrong.
            if (text.find_first_not_of("\r\n", pos) == std::string_view::npos) break;
            return fail(number, "empty line inside the SDP");
        }
        if (lines.size() >= kMaxLines) return fail(number, "more than 8192 lines");
        if (raw.size() < 2 || raw[1] != '=' || !std::islower(static_cast<unsigned char>(raw[0])))
            return fail(number,
                        "'" + std::string(raw.substr(0, 40)) + "' is not of the form x=value");
        for (unsigned char c : raw)
            if ((c < 0x20 && c != '\t') || c == 0x7f)
                return fail(number, "control character in line");
        Line l{number, raw[0], raw.substr(2)};
        if (lines.empty() && l.type != 'v') return fail(number, "an SDP starts with v=0");
        if (std::string why = check_line(l); !why.empty()) return fail(number, why);
        lines.push_back(l);
        normalised.append(raw);
        normalised.append("\r\n");
    }
    if (lines.empty()) return fail(0, "empty SDP");
    for (char required : {'o', 's', 't'}) {
        if (std::none_of(lines.begin(), lines.end(),
                         [&](const Line& l) { return l.type == required; }))
            return fail(0, std::string("missing the ") + required + "= line");
    }
    std::vector<int> mlines;
    for (const auto& l : lines)
        if (l.type == 'm') mlines.push_back(l.number);
    if (webrtc && mlines.empty())
        return fail(0, "no m= line; a WebRTC description has at least one media section");

    // Pass 2: the structure, through GStreamer's parser.
    GstSDPMessage* raw_msg = nullptr;
    gst_sdp_message_new(&raw_msg);
    gst::SdpMessagePtr msg(raw_msg);
    if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(normalised.data()),
                                     static_cast<guint>(normalised.size()),
                                     msg.get()) != GST_SDP_OK)
        return fail(0, "GStreamer's SDP parser rejected the description");
    if (gst_sdp_message_medias_len(msg.get()) != mlines.size())
        return fail(0, "m= lines and parsed media sections disagree");

    Sdp out;
    out.text = normalised;
    std::string fp = attr(nullptr, msg.get(), "fingerprint");
    for (guint i = 0; i < gst_sdp_message_medias_len(msg.get()); ++i) {
        const GstSDPMedia* m = gst_sdp_message_get_media(msg.get(), i);
        SdpMedia media;
        media.line = mlines[i];
        media.kind = gst_sdp_media_get_media(m) ? gst_sdp_media_get_media(m) : "";
        media.port = static_cast<int>(gst_sdp_media_get_port(m));
        media.proto = gst_sdp_media_get_proto(m) ? gst_sdp_media_get_proto(m) : "";
        media.mid = attr(m, nullptr, "mid");
        for (guint b = 0; b < gst_sdp_media_bandwidths_len(m); ++b) {
            const GstSDPBandwidth* bw = gst_sdp_media_get_bandwidth(m, b);
            if (g_strcmp0(bw->bwtype, "AS") == 0 && bw->bandwidth > 0)
                media.bandwidth_kbps = bw->bandwidth;
        }
        // Direction attributes are flags without a value, so look for the key itself.
        for (guint a = 0; a < gst_sdp_media_attributes_len(m); ++a) {
            const GstSDPAttribute* at = gst_sdp_media_get_attribute(m, a);
            std::string key = at->key ? at->key : "";
            if (key == "sendrecv" || key == "sendonly" || key == "recvonly" || key == "inactive")
                media.direction = key;
        }
        for (guint f = 0; f < gst_sdp_media_formats_len(m); ++f) {
            const gchar* fmt = gst_sdp_media_get_format(m, f);
            unsigned long pt = 0;
            if (!fmt || !is_uint(fmt, 127, &pt)) continue;
            SdpCodec codec = static_codec(static_cast<int>(pt));
            for (guint a = 0; a < gst_sdp_media_attributes_len(m); ++a) {
                const GstSDPAttribute* at = gst_sdp_media_get_attribute(m, a);
                if (!at->key || !at->value) continue;
                std::string_view key = at->key, val = at->value;
                auto p = split_ws(val);
                if (p.empty() || p[0] != fmt) continue;
                if (key == "rtpmap" && p.size() == 2) {
                    std::string_view enc = p[1];
                    size_t s1 = enc.find('/');
                    codec.name = lower(enc.substr(0, s1));
                    std::string_view rest = enc.substr(s1 + 1);
                    size_t s2 = rest.find('/');
                    unsigned long rate = 0, ch = 1;
                    is_uint(rest.substr(0, s2), 10'000'000, &rate);
                    if (s2 != std::string_view::npos) is_uint(rest.substr(s2 + 1), 255, &ch);
                    codec.clock_rate = static_cast<int>(rate);
                    codec.channels = static_cast<int>(ch);
                } else if (key == "fmtp") {
                    size_t sp = val.find(' ');
                    codec.fmtp =
                        sp == std::string_view::npos ? "" : std::string(val.substr(sp + 1));
                }
            }
            media.codecs.push_back(codec);
        }
        std::string mfp = attr(m, nullptr, "fingerprint");
        if (fp.empty()) fp = mfp;
        media.bundle_only = has_attr(m, "bundle-only");
        const bool live = !media.rejected();
        if (webrtc && live) {
            const std::string where =
                "line " + std::to_string(media.line) + " (m=" + media.kind + ")";
            if (mfp.empty() && attr(nullptr, msg.get(), "fingerprint").empty())
                return fail(
                    media.line,
                    where +
                        ": missing a=fingerprint (DTLS needs one); is the peer a WebRTC endpoint?",
                    ErrorCode::Negotiation);
            if (attr(m, msg.get(), "ice-ufrag").empty() || attr(m, msg.get(), "ice-pwd").empty())
                return fail(
                    media.line,
                    where + ": missing a=ice-ufrag or a=ice-pwd; is the peer a WebRTC endpoint?",
                    ErrorCode::Negotiation);
            if (media.proto.find("DTLS") == std::string::npos &&
                media.proto.find("SAVP") == std::string::npos)
                return fail(media.line,
                            where + ": protocol " + media.proto +
                                " is not secure; WebRTC needs UDP/TLS/RTP/SAVPF",
                            ErrorCode::Negotiation);
        }
        out.media.push_back(std::move(media));
    }
    if (!fp.empty()) {
        std::string alg, hex;
        if (valid_fingerprint(fp, &alg, &hex)) {
            out.fingerprint_algorithm = alg;
            out.fingerprint = hex;
        }
    }
    SdpParse r;
    r.sdp = std::move(out);
    return r;
}

SdpFormat parse_sdp_format(std::string_view name) {
    if (name == "sdp") return SdpFormat::Sdp;
    if (name == "json") return SdpFormat::BrowserJson;
    if (name == "base64") return SdpFormat::Base64Json;
    throw Error(ErrorCode::InvalidArgument,
                "unknown SDP format '" + std::string(name) + "'; use sdp, json or base64");
}

namespace {

constexpr char kB64[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

std::string b64_encode(std::string_view in) {
    std::string out;
    out.reserve((in.size() + 2) / 3 * 4);
    size_t i = 0;
    for (; i + 2 < in.size(); i += 3) {
        unsigned v = (static_cast<unsigned char>(in[i]) << 16) |
                     (static_cast<unsigned char>(in[i + 1]) << 8) |
                     static_cast<unsigned char>(in[i + 2]);
        for (int s = 18; s >= 0; s -= 6) out += kB64[(v >> s) & 63];
    }
    if (i < in.size()) {
        unsigned v = static_cast<unsigned char>(in[i]) << 16;
        if (i + 1 < in.size()) v |= static_cast<unsigned char>(in[i + 1]) << 8;
        out += kB64[(v >> 18) & 63];
        out += kB64[(v >> 12) & 63];
        out += i + 1 < in.size() ? kB64[(v >> 6) & 63] : '=';
        out += '=';
    }
    return out;
}

// Strict RFC 4648 §4 decoding; whitespace is skipped so a wrapped paste still decodes.
bool b64_decode(std::string_view in, std::string* out) {
    unsigned acc = 0;
    int bits = 0;
    int pad = 0;
    for (char c : in) {
        if (c == ' ' || c == '\n' || c == '\r' || c == '\t') continue;
        if (c == '=') {
            ++pad;
            continue;
        }
        if (pad) return false;  // data after padding
        const char* p = std::strchr(kB64, c);
        if (!p || c == '\0') return false;
        acc = (acc << 6) | static_cast<unsigned>(p - kB64);
        bits += 6;
        if (bits >= 8) {
            bits -= 8;
            out->push_back(static_cast<char>((acc >> bits) & 0xff));
        }
    }
    return pad <= 2 && bits < 6;
}

}  // namespace

std::optional<SdpEnvelope> decode_sdp(std::string_view data, SdpFormat format, std::string* error) {
    std::string json_text;
    if (format == SdpFormat::Sdp) return SdpEnvelope{"", std::string(data)};
    if (format == SdpFormat::Base64Json) {
        if (!b64_decode(data, &json_text)) {
            if (error) *error = "not valid base64";
            return std::nullopt;
        }
        data = json_text;
    }
    auto j = nlohmann::json::parse(data, nullptr, false);
    if (j.is_discarded() || !j.is_object()) {
        if (error) *error = "not a JSON object like {\"type\":\"offer\",\"sdp\":\"...\"}";
        return std::nullopt;
    }
    auto sdp = j.find("sdp");
    if (sdp == j.end() || !sdp->is_string()) {
        if (error) *error = "the JSON has no \"sdp\" string";
        return std::nullopt;
    }
    SdpEnvelope env;
    env.sdp = sdp->get<std::string>();
    auto type = j.find("type");
    if (type != j.end() && type->is_string()) env.type = type->get<std::string>();
    return env;
}

std::string encode_sdp(const SdpEnvelope& env, SdpFormat format) {
    if (format == SdpFormat::Sdp) {
        std::string out = env.sdp;
        if (!out.empty() && out.back() != '\n') out += "\r\n";
        return out + "\r\n";
    }
    nlohmann::ordered_json j;
    j["type"] = env.type;
    j["sdp"] = env.sdp;
    std::string text = j.dump();
    return (format == SdpFormat::BrowserJson ? text : b64_encode(text)) + "\n";
}

bool SdpFramer::feed(const std::string& raw) {
    std::string line = raw;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    const bool blank = line.find_first_not_of(" \t") == std::string::npos;
    if (blank) return !buffer_.empty() && format_ == SdpFormat::Sdp;
    switch (format_) {
        case SdpFormat::Sdp:
            buffer_ += line + "\r\n";
            return false;
        case SdpFormat::Base64Json:
            buffer_ = line;
            return true;
        case SdpFormat::BrowserJson:
            buffer_ += line + "\n";
            return nlohmann::json::accept(buffer_);
    }
    return false;
}

}  // namespace kms
