// WebRtcEndpoint: the public face of a call; its parts are in endpoint_*.cpp (endpoint_impl.hpp).
#include "kms/webrtc_endpoint.hpp"

#include "webrtc/endpoint_impl.hpp"

namespace kms {

namespace {

// A container that cannot hold a codec is refused before the call, not when the first packet
// reaches the muxer: the codec lists are cut to what the file can hold (MP4: H.264 and Opus;
// WebM: VP8, VP9 and Opus; Matroska: all), and a list left empty is an output error.
void fit_codecs_to_container(WebRtcOptions& o) {
    if (o.output.kind != MediaUri::Kind::File) return;
    const std::string container = container_for_path(o.output.location);
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
            throw Error(ErrorCode::Io, "-o " + o.output.location + ": a ." + container +
                                           " file holds " + kind + " in " + fits +
                                           " only; use .mkv, or --" + kind + "-codec " + fit[0]);
        }
        if (!kept.empty()) list = kept;
    };
    const bool recv = o.direction != MediaDirection::SendOnly;
    cut(o.video_codecs, video, o.video && recv, "video");
    cut(o.audio_codecs, audio, o.audio && recv, "audio");
}

}  // namespace

WebRtcEndpoint::WebRtcEndpoint(WebRtcOptions options, Callbacks callbacks, EventWriter& events) {
    init();
    if (options.send.empty()) options.send.push_back(parse_source_uri("test:av"));
    if (std::count_if(options.send.begin(), options.send.end(), [](const MediaUri& s) {
            return s.kind == MediaUri::Kind::File || s.kind == MediaUri::Kind::Stdio;
        }) > 1)
        throw Error(ErrorCode::InvalidArgument,
                    "--send takes one file or stdin at most; the others may be test:, v4l2:, "
                    "pulse: or alsa:");
    options.video_codecs = webrtc::check_codec_list(options.video_codecs, "video");
    options.audio_codecs = webrtc::check_codec_list(options.audio_codecs, "audio");
    if (!options.audio && !options.video && options.data_label.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "--no-audio and --no-video leave nothing to do; add --data LABEL");
    if (options.max_bitrate_kbps && options.min_bitrate_kbps > options.max_bitrate_kbps)
        throw Error(ErrorCode::InvalidArgument, "--min-bitrate is above --max-bitrate");
    if (options.ice.port_min > options.ice.port_max)
        throw Error(ErrorCode::InvalidArgument, "--port-range LO-HI needs LO <= HI");
    fit_codecs_to_container(options);
    impl_ = std::make_shared<Impl>(std::move(options), std::move(callbacks), events);
    impl_->source_kinds.resize(impl_->opt.send.size());
    for (size_t i = 0; i < impl_->opt.send.size(); ++i) {
        const MediaUri& s = impl_->opt.send[i];
        if (s.kind != MediaUri::Kind::File && s.kind != MediaUri::Kind::Stdio) continue;
        // Probed now: a file that is missing or holds no media is refused before any offer.
        try {
            impl_->input = std::make_unique<Source>(s);
        } catch (const Error& e) {
            throw Error(e.code(), "--send " + std::string(e.what()));
        }
        impl_->input->hold();
        auto& kinds = impl_->source_kinds[i];
        for (const auto& stream : impl_->input->streams()) {
            kinds.known = true;
            (stream.kind == "video" ? kinds.video : kinds.audio) = true;
        }
    }
    impl_->build();
}

WebRtcEndpoint::~WebRtcEndpoint() = default;

void WebRtcEndpoint::start() {
    impl_->start();
}

void WebRtcEndpoint::set_remote_description(const std::string& sdp) {
    impl_->set_remote(sdp);
}

bool WebRtcEndpoint::send_data(const std::string& message) {
    if (!impl_->channel || !impl_->data_open) return false;
    GError* err = nullptr;
    if (!gst_webrtc_data_channel_send_string_full(impl_->channel.get(), message.c_str(), &err)) {
        gst::GErrorPtr owned(err);
        const std::string why = err ? err->message : "the channel refused it";
        KMS_LOG(webrtc, WARNING, "data channel: %s", why.c_str());
        impl_->events.emit("warning", Json{{"message", "data channel: " + why}});
        return false;
    }
    impl_->dc_sent++;
    return true;
}

void WebRtcEndpoint::stop() {
    impl_->stop_graceful();
}

CallSummary WebRtcEndpoint::summary() const {
    CallSummary s;
    s.video_frames_decoded = impl_->frames_video;
    s.audio_frames_decoded = impl_->frames_audio;
    s.video_frames_sent = impl_->sent_video;
    s.audio_frames_sent = impl_->sent_audio;
    s.data_messages_sent = impl_->dc_sent;
    s.data_messages_received = impl_->dc_received;
    s.bytes_received = impl_->rx_bytes;
    s.packets_lost = impl_->packets_lost;
    s.video_target_kbps = impl_->video_bitrate_kbps;
    return s;
}

}  // namespace kms
