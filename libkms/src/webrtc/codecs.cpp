#include <algorithm>
#include <cctype>

#include "kms/error.hpp"
#include "webrtc/codecs.hpp"

namespace kms::webrtc {

namespace {
const char* const kBad = "gstreamer1.0-plugins-bad";
const char* const kGood = "gstreamer1.0-plugins-good";
const char* const kBase = "gstreamer1.0-plugins-base";
const char* const kUgly = "gstreamer1.0-plugins-ugly";
const char* const kLibav = "gstreamer1.0-libav";
}  // namespace

const std::vector<CodecInfo>& all_codecs() {
    // Encoders are set for real time: no look-ahead, constant bit rate, key frames every 2 s so a
    // late receiver starts soon. libvpx's rate control gets libwebrtc's real-time settings: a 1 s
    // client buffer (start 0.5 s, aim 0.6 s), 15 % overshoot, and frames dropped when the buffer
    // runs dry (dropframe-threshold): without dropping, content that does not compress (noise)
    // stays at about 690 kbit/s at 640x480 whatever the target, even at the worst quantizer. libvpx
    // runs one thread: its worker threads spin-wait on each other, and perf showed 75 % of a call's
    // CPU in that spin when two peers share two cores.
    static const std::vector<CodecInfo> codecs = {
        {"vp8",
         "video",
         "VP8",
         90000,
         96,
         "",
         "vp8enc deadline=1 cpu-used=8 threads=1 end-usage=cbr lag-in-frames=0 "
         "error-resilient=partitions keyframe-max-dist=60 dropframe-threshold=30 buffer-size=1000 "
         "buffer-initial-size=500 buffer-optimal-size=600 overshoot=15 target-bitrate={bps} "
         "name=venc",
         "rtpvp8pay",
         "rtpvp8depay",
         "vp8dec threads=1",
         "",
         "video/x-vp8",
         {{"vp8enc", kGood}, {"rtpvp8pay", kGood}, {"vp8dec", kGood}}},
        {"vp9",
         "video",
         "VP9",
         90000,
         98,
         "",
         "vp9enc deadline=1 cpu-used=8 threads=1 end-usage=cbr lag-in-frames=0 row-mt=true "
         "keyframe-max-dist=60 dropframe-threshold=30 buffer-size=1000 buffer-initial-size=500 "
         "buffer-optimal-size=600 overshoot=15 target-bitrate={bps} name=venc",
         "rtpvp9pay",
         "rtpvp9depay",
         "vp9dec threads=1",
         "",
         "video/x-vp9",
         {{"vp9enc", kGood}, {"rtpvp9pay", kGood}, {"vp9dec", kGood}}},
        {"h264",
         "video",
         "H264",
         90000,
         102,
         "packetization-mode=(string)1, profile-level-id=(string)42e01f, "
         "level-asymmetry-allowed=(string)1",
         "x264enc tune=zerolatency speed-preset=ultrafast key-int-max=60 bitrate={kbps} "
         "vbv-buf-capacity=1000 "
         "name=venc ! video/x-h264,profile=constrained-baseline ! h264parse config-interval=-1",
         "rtph264pay config-interval=-1",
         "rtph264depay",
         "h264parse ! avdec_h264",
         "h264parse",
         "video/x-h264",
         {{"x264enc", kUgly},
          {"rtph264pay", kGood},
          {"avdec_h264", kLibav},
          {"h264parse", kBad},
          {"h264timestamper", kBad}}},
        {"opus",
         "audio",
         "OPUS",
         48000,
         111,
         "encoding-params=(string)2, minptime=(string)10, useinbandfec=(string)1",
         "audioresample ! audio/x-raw,rate=48000 ! opusenc bitrate=32000 frame-size=20 name=aenc",
         "rtpopuspay",
         "rtpopusdepay",
         "opusdec",
         "opusparse",
         "audio/x-opus",
         {{"opusenc", kBase}, {"rtpopuspay", kGood}, {"opusdec", kBase}}},
        // Audio payloaders would fill the MTU (150 ms of G.711); WebRTC peers expect 20 ms packets.
        {"pcmu",
         "audio",
         "PCMU",
         8000,
         0,
         "",
         "audioresample ! audio/x-raw,rate=8000,channels=1 ! mulawenc name=aenc",
         "rtppcmupay max-ptime=20000000",
         "rtppcmudepay",
         "mulawdec",
         "",
         "audio/x-mulaw",
         {{"mulawenc", kGood}, {"rtppcmupay", kGood}, {"mulawdec", kGood}}},
        {"pcma",
         "audio",
         "PCMA",
         8000,
         8,
         "",
         "audioresample ! audio/x-raw,rate=8000,channels=1 ! alawenc name=aenc",
         "rtppcmapay max-ptime=20000000",
         "rtppcmadepay",
         "alawdec",
         "",
         "audio/x-alaw",
         {{"alawenc", kGood}, {"rtppcmapay", kGood}, {"alawdec", kGood}}},
        // RFC 3551 §4.5.2: G.722 is 16 kHz audio but its RTP clock rate is 8000.
        {"g722",
         "audio",
         "G722",
         8000,
         9,
         "",
         "audioresample ! audio/x-raw,rate=16000,channels=1 ! avenc_g722 name=aenc",
         "rtpg722pay max-ptime=20000000",
         "rtpg722depay",
         "avdec_g722",
         "",
         "audio/G722",
         {{"avenc_g722", kLibav}, {"rtpg722pay", kGood}, {"avdec_g722", kLibav}}},
    };
    return codecs;
}

const CodecInfo* find_codec(std::string_view name) {
    std::string n(name);
    std::transform(n.begin(), n.end(), n.begin(), [](unsigned char c) { return std::tolower(c); });
    for (const auto& c : all_codecs()) {
        std::string enc = c.encoding_name;
        std::transform(enc.begin(), enc.end(), enc.begin(),
                       [](unsigned char ch) { return std::tolower(ch); });
        if (n == c.name || n == enc) return &c;
    }
    return nullptr;
}

const CodecInfo* find_codec_by_media(std::string_view media) {
    for (const auto& c : all_codecs())
        if (media == c.media_type) return &c;
    return nullptr;
}

std::vector<std::string> check_codec_list(const std::vector<std::string>& names, const char* kind) {
    std::vector<std::string> out;
    std::string known;
    for (const auto& c : all_codecs())
        if (std::string_view(c.kind) == kind)
            known += (known.empty() ? "" : ", ") + std::string(c.name);
    for (const auto& n : names) {
        const CodecInfo* c = find_codec(n);
        if (!c || std::string_view(c->kind) != kind)
            throw Error(ErrorCode::InvalidArgument, "unknown " + std::string(kind) + " codec '" +
                                                        n + "'; choose from " + known);
        if (std::find(out.begin(), out.end(), c->name) == out.end()) out.push_back(c->name);
    }
    if (out.empty())
        throw Error(ErrorCode::InvalidArgument, std::string("empty ") + kind + " codec list");
    return out;
}

}  // namespace kms::webrtc
