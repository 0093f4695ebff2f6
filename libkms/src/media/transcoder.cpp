#include "media/transcoder.hpp"

#include "media/decoder.hpp"

namespace kms::media {

namespace {

// A thread of its own for the decoder, a few frames deep. Not seconds: every stream a Source
// gives already has its own thread and queue (deep enough for a demuxer that interleaves its
// streams a second or two apart) or a jitter buffer; a second deep queue here only held
// another 3 s of the stream in memory.
const char* const kQueue = "queue max-size-buffers=3 max-size-bytes=0 max-size-time=0";

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
        // PCM as wavenc takes it (16-bit unless the source had more); no encoder.
        if (container == "wav") return "audioconvert ! audioresample";
    }
    return {};
}

std::string encoder_for_media(const std::string& media, unsigned kbps) {
    const std::string k = std::to_string(kbps ? kbps : 2000);
    const std::string bps = std::to_string((kbps ? kbps : 2000) * 1000);
    // Real-time settings: the filter's input may be live, and a file goes through fast.
    if (media == "video/x-vp8")
        return "videoconvert ! vp8enc deadline=1 cpu-used=8 threads=2 end-usage=vbr "
               "keyframe-max-dist=60 target-bitrate=" +
               bps;
    if (media == "video/x-vp9")
        return "videoconvert ! vp9enc deadline=1 cpu-used=8 threads=2 end-usage=vbr "
               "row-mt=true keyframe-max-dist=60 target-bitrate=" +
               bps;
    if (media == "video/x-h264")
        return "videoconvert ! x264enc tune=zerolatency speed-preset=veryfast key-int-max=60 "
               "bitrate=" +
               k + " ! h264parse";
    if (media == "video/x-h265")
        return "videoconvert ! x265enc tune=zerolatency speed-preset=veryfast key-int-max=60 "
               "bitrate=" +
               k + " ! h265parse";
    const std::string audio = "audioconvert ! audioresample ! ";
    if (media == "audio/x-opus")
        return audio + "opusenc bitrate=" + std::to_string(kbps ? kbps * 1000 : 64000);
    if (media == "audio/x-vorbis") return audio + "vorbisenc";
    if (media == "audio/mpeg")
        return audio + "avenc_aac bitrate=" + std::to_string(kbps ? kbps * 1000 : 128000) +
               " ! aacparse";
    return {};
}

std::string media_of_codec(const std::string& codec) {
    static const char* const kCodecs[][2] = {
        {"vp8", "video/x-vp8"},   {"vp9", "video/x-vp9"},   {"h264", "video/x-h264"},
        {"h265", "video/x-h265"}, {"opus", "audio/x-opus"}, {"vorbis", "audio/x-vorbis"},
        {"aac", "audio/mpeg"},
    };
    for (const auto& c : kCodecs)
        if (codec == c[0]) return c[1];
    return {};
}

}  // namespace kms::media
