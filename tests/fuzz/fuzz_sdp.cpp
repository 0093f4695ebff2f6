// libFuzzer target for every parser of untrusted signalling bytes: the SDP checker and reader,
// the json/base64 envelopes, the stream framer, and what kms-call reads from a peer's
// description through GstSDPMessage (a=ssrc, a=ssrc-group:FID, a=extmap). Parse, read every
// field, serialise again.
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

#include "kms/sdp.hpp"
#include "webrtc/bundle.hpp"

namespace {

// The SSRC readers of webrtc/bundle.hpp, and their promises: a repair pair's two SSRCs are
// announced on one m-line, and no SSRC is both a stream and a repair.
size_t read_ssrcs(std::string_view text) {
    GstSDPMessage* msg = nullptr;
    gst_sdp_message_new(&msg);
    gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(text.data()),
                                 static_cast<guint>(text.size()), msg);
    const auto announced = kms::webrtc::announced_ssrcs(msg);
    const auto repairs = kms::webrtc::repair_ssrcs(msg);
    for (const auto& [rtx, media] : repairs) {
        auto a = announced.find(rtx), b = announced.find(media);
        if (rtx == media || a == announced.end() || b == announced.end() ||
            a->second != b->second || repairs.count(media))
            __builtin_trap();
    }
    const kms::webrtc::ExtIds ids = kms::webrtc::bundle_extmap_ids(msg);
    gst_sdp_message_free(msg);
    return announced.size() + repairs.size() + static_cast<size_t>(ids.mid + ids.twcc);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    size_t touched = read_ssrcs(text);
    for (bool webrtc : {true, false}) {
        kms::SdpParse r = kms::parse_sdp(text, webrtc);
        if (!r) {
            touched += r.error.message.size() + static_cast<size_t>(r.error.line);
            continue;
        }
        for (const auto& m : r.sdp->media) {
            touched += m.kind.size() + m.proto.size() + m.mid.size() + m.direction.size();
            for (const auto& c : m.codecs) touched += c.name.size() + c.fmtp.size() + c.clock_rate;
        }
        // What we accepted must survive a second pass unchanged.
        kms::SdpParse again = kms::parse_sdp(r.sdp->text, webrtc);
        if (!again || again.sdp->text != r.sdp->text ||
            again.sdp->media.size() != r.sdp->media.size())
            __builtin_trap();
    }
    for (auto format :
         {kms::SdpFormat::BrowserJson, kms::SdpFormat::Base64Json, kms::SdpFormat::Sdp}) {
        std::string why;
        if (auto env = kms::decode_sdp(text, format, &why)) {
            std::string wire = kms::encode_sdp(*env, format);
            auto back = kms::decode_sdp(wire, format, &why);
            if (format != kms::SdpFormat::Sdp && (!back || back->sdp != env->sdp)) __builtin_trap();
        }
        kms::SdpFramer framer(format);
        size_t start = 0;
        while (start <= text.size()) {
            size_t nl = text.find('\n', start);
            if (framer.feed(std::string(
                    text.substr(start, nl == std::string_view::npos ? text.npos : nl - start))))
                break;
            if (nl == std::string_view::npos) break;
            start = nl + 1;
        }
        touched += framer.text().size();
    }
    return touched == static_cast<size_t>(-1);
}
