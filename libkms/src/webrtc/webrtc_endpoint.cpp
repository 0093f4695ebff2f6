// WebRtcEndpoint: the public face of a call; its parts are in endpoint_*.cpp (endpoint_impl.hpp).
#include "kms/webrtc_endpoint.hpp"

#include "webrtc/endpoint_impl.hpp"

namespace kms {

WebRtcEndpoint::WebRtcEndpoint(WebRtcOptions options, Callbacks callbacks, EventWriter& events)
    : Element(std::make_shared<EndpointCore>()) {
    options.video_codecs = webrtc::check_codec_list(options.video_codecs, "video");
    options.audio_codecs = webrtc::check_codec_list(options.audio_codecs, "audio");
    if (!options.audio && !options.video && options.data_label.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "--no-audio and --no-video leave nothing to do; add --data LABEL");
    if (options.max_bitrate_kbps && options.min_bitrate_kbps > options.max_bitrate_kbps)
        throw Error(ErrorCode::InvalidArgument, "--min-bitrate is above --max-bitrate");
    if (options.ice.port_min > options.ice.port_max)
        throw Error(ErrorCode::InvalidArgument, "--port-range LO-HI needs LO <= HI");
    impl_ = std::make_shared<Impl>(std::move(options), std::move(callbacks), events);
    impl_->core = std::static_pointer_cast<EndpointCore>(core_);
    impl_->core->impl = impl_;
    impl_->bin = gst::ref(core_->bin.get());
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

bool WebRtcEndpoint::data_expected() const {
    return !impl_->opt.data_label.empty() || impl_->remote_data;
}

void WebRtcEndpoint::stop() {
    impl_->stop_graceful();
}

void WebRtcEndpoint::abort(const Error& error) {
    impl_->abort(error);
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
