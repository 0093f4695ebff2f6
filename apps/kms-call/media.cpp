// kms-call's media: which sources and which sink a call has, and how they join the endpoint.
#include "kms-call/media.hpp"

#include <algorithm>

namespace kms::app {

namespace {

// A container that cannot hold a codec is refused before the call, not when the first packet
// reaches the muxer: the codec lists are cut to what the file can hold (MP4: H.264 and Opus;
// WebM: VP8, VP9 and Opus; Matroska: all), and a list left empty is an output error. The
// recording then needs no transcoding.
void fit_codecs_to_container(const MediaUri& output, WebRtcOptions& o) {
    if (output.kind != MediaUri::Kind::File) return;
    const std::string container = container_for_path(output.location);
    std::vector<std::string> video, audio;
    if (container == "mp4")
        video = {"h264"}, audio = {"opus"};
    else if (container == "webm")
        video = {"vp8", "vp9"}, audio = {"opus"};
    else
        return;
    auto cut = [&](std::vector<std::string>& list, const std::vector<std::string>& fit, bool wanted,
                   const char* kind) {
        std::vector<std::string> kept;
        for (const auto& c : list)
            if (std::find(fit.begin(), fit.end(), c) != fit.end()) kept.push_back(c);
        if (kept.empty() && wanted) {
            std::string fits;
            for (const auto& f : fit) fits += (fits.empty() ? "" : ", ") + f;
            throw Error(ErrorCode::Io, "-o " + output.location + ": a ." + container +
                                           " file holds " + kind + " in " + fits +
                                           " only; use .mkv, or --" + kind + "-codec " + fit[0]);
        }
        if (!kept.empty()) list = kept;
    };
    const bool recv = o.direction != MediaDirection::SendOnly;
    cut(o.video_codecs, video, o.video && recv, "video");
    cut(o.audio_codecs, audio, o.audio && recv, "audio");
}

bool held(const MediaUri& u) {
    return u.kind == MediaUri::Kind::File || u.kind == MediaUri::Kind::Stdio;
}

}  // namespace

CallMedia parse_call_media(const std::vector<std::string>& send, const std::string& output,
                           WebRtcOptions& w) {
    CallMedia m;
    for (const auto& s : send.empty() ? std::vector<std::string>{"test:av"} : send)
        m.send.push_back(parse_source_uri(s));
    m.output = parse_sink_uri(output);
    for (const auto& s : m.send)
        if (s.kind == MediaUri::Kind::Rtsp || s.kind == MediaUri::Kind::Http ||
            s.kind == MediaUri::Kind::Rtp || s.kind == MediaUri::Kind::Whep)
            throw Error(ErrorCode::InvalidArgument,
                        "--send " + s.redacted() +
                            ": kms-call sends test:, files, stdin (-), v4l2:, pulse: and alsa: "
                            "sources");
    if (std::count_if(m.send.begin(), m.send.end(), held) > 1)
        throw Error(ErrorCode::InvalidArgument,
                    "--send takes one file or stdin at most; the others may be test:, v4l2:, "
                    "pulse: or alsa:");
    const auto k = m.output.kind;
    if (k != MediaUri::Kind::Null && k != MediaUri::Kind::Display && k != MediaUri::Kind::File &&
        k != MediaUri::Kind::Stdio)
        throw Error(
            ErrorCode::InvalidArgument,
            "-o " + m.output.redacted() + ": kms-call writes to a file, -, null: or display:");
    if (k == MediaUri::Kind::File) {
        const std::string container = container_for_path(m.output.location);
        if (container != "webm" && container != "mp4" && container != "matroska")
            throw Error(ErrorCode::InvalidArgument,
                        "-o " + m.output.location +
                            ": unknown container; end the name in .webm, .mkv or .mp4");
    }
    fit_codecs_to_container(m.output, w);
    return m;
}

void open_call_media(CallMedia& m, const WebRtcOptions& w) {
    // Files are paced at real time, as they would play; only the kinds the call carries.
    SourceOptions so;
    so.realtime = true;
    if (w.video) so.kinds.push_back("video");
    if (w.audio) so.kinds.push_back("audio");
    if (!so.kinds.empty() && w.direction != MediaDirection::RecvOnly)
        for (const auto& s : m.send) {
            try {
                m.sources.push_back(std::make_unique<Source>(s, so));
            } catch (const Error& e) {
                throw Error(e.code(), "--send " + std::string(e.what()));
            }
            if (held(s)) m.sources.back()->hold();
        }
    try {
        SinkOptions ko;
        ko.min_free = m.min_free;
        m.sink = std::make_unique<Sink>(m.output, ko);
    } catch (const Error& e) {
        const bool guard =
            std::string(e.what()).find("a recording leaves free") != std::string::npos;
        throw Error(e.code(), "-o " + std::string(e.what()) + (guard ? " (--min-free)" : ""));
    }
}

void connect_call_media(Pipeline& p, CallMedia& m, WebRtcEndpoint& ep) {
    for (auto& s : m.sources) p.connect(*s, ep);
    p.connect(ep, *m.sink);
}

void release_call_media(CallMedia& m) {
    for (auto& s : m.sources) s->release();
}

}  // namespace kms::app
