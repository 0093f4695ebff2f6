#include "media/transcoder.hpp"

#include "media/decoder.hpp"

namespace kms::media {

namespace {

// Enough for a demuxer that interleaves its streams a second or two apart.
const char* const kQueue = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=3000000000";

}  // namespace

std::string parser_for(const std::string& media) {
    if (media == "video/x-h264") return "h264parse";
    if (media == "video/x-h265") return "h265parse";
    return {};
}

Chain chain_for(const GstCaps* caps, bool as_is, const std::string& encoder) {
    const std::string media = caps && !gst_caps_is_empty(caps) && !gst_caps_is_any(caps)
                                  ? gst_structure_get_name(gst_caps_get_structure(caps, 0))
                                  : "";
    Chain c;
    if (as_is) {
        c.description = parser_for(media);
        return c;
    }
    c.description = kQueue;
    c.passthrough = false;
    const bool raw = media == "video/x-raw" || media == "audio/x-raw";
    if (!raw) c.description += " ! " + decoder_for(const_cast<GstCaps*>(caps), media);
    if (!encoder.empty()) c.description += " ! " + encoder;
    return c;
}

std::string encoder_for_container(const std::string& container, const std::string& kind) {
    // Recording settings: a key frame every 2 s (at 30 frame/s), so a file can be cut or
    // joined there, and real-time speed, since sources are mostly live.
    const std::string vp8 =
        "videoconvert ! vp8enc deadline=1 cpu-used=8 threads=2 end-usage=vbr "
        "target-bitrate=2000000 keyframe-max-dist=60";
    const std::string h264 =
        "videoconvert ! x264enc tune=zerolatency speed-preset=veryfast key-int-max=60 "
        "bitrate=2000 ! h264parse";
    const std::string opus = "audioconvert ! audioresample ! opusenc bitrate=64000";
    const std::string aac = "audioconvert ! audioresample ! avenc_aac bitrate=128000 ! aacparse";
    if (kind == "video") {
        if (container == "webm" || container == "matroska") return vp8;
        if (container == "mp4") return h264;
        return {};
    }
    if (kind == "audio") {
        if (container == "webm" || container == "matroska" || container == "ogg") return opus;
        if (container == "mp4") return aac;
    }
    return {};
}

}  // namespace kms::media
