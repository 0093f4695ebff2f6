// What tells a bundle's streams apart: a=extmap ids read and trimmed, a=ssrc lines read and
// deduplicated, a=msid, and the MID read from an RTP packet's header extension (RFC 8285).
#include <gst/rtp/rtp.h>
#include <catch2/catch.hpp>

#include <map>
#include <string>
#include <vector>

#include "webrtc/bundle.hpp"

namespace {

using namespace kms::webrtc;

struct Sdp {
    GstSDPMessage* msg = nullptr;
    explicit Sdp(const std::string& text) {
        gst_sdp_message_new(&msg);
        gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(text.data()),
                                     static_cast<guint>(text.size()), msg);
    }
    ~Sdp() { gst_sdp_message_free(msg); }
    GstSDPMedia* media(guint i) {
        return const_cast<GstSDPMedia*>(gst_sdp_message_get_media(msg, i));
    }
};

std::vector<std::string> values(const GstSDPMedia* m, const char* key) {
    std::vector<std::string> out;
    for (guint i = 0; i < gst_sdp_media_attributes_len(m); ++i) {
        const GstSDPAttribute* a = gst_sdp_media_get_attribute(m, i);
        if (g_strcmp0(a->key, key) == 0) out.emplace_back(a->value ? a->value : "");
    }
    return out;
}

const char* kTwo =
    "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=mid:a\r\n"
    "a=extmap:1 urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n"
    "a=extmap:3/sendrecv "
    "http://www.ietf.org/id/draft-holmer-rmcat-transport-wide-cc-extensions-01\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=ssrc:11 cname:x\r\na=ssrc:11 cname:x\r\na=ssrc:11 msid:s t\r\n"
    "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=mid:v\r\n"
    "a=extmap:4 urn:ietf:params:rtp-hdrext:sdes:mid\r\n"
    "a=ssrc-group:FID 22 23\r\na=ssrc:22 cname:x\r\na=ssrc:23 cname:x\r\n";

// GstBuffer and GstCaps need GStreamer initialised (idempotent).
void init() {
    gst_init(nullptr, nullptr);
}

// An RTP packet with a one-byte header extension block holding id/value (RFC 8285 §4.2).
GstBuffer* rtp_with(guint8 id, const std::string& value, guint32 ssrc) {
    GstBuffer* buf = gst_rtp_buffer_new_allocate(10, 0, 0);
    GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
    gst_rtp_buffer_map(buf, GST_MAP_READWRITE, &rtp);
    gst_rtp_buffer_set_ssrc(&rtp, ssrc);
    gst_rtp_buffer_add_extension_onebyte_header(&rtp, id, value.data(),
                                                static_cast<guint>(value.size()));
    gst_rtp_buffer_unmap(&rtp);
    return buf;
}

}  // namespace

TEST_CASE("a=extmap ids of the MID and transport-wide-cc extensions", "[bundle]") {
    Sdp sdp(kTwo);
    CHECK(extmap_ids(sdp.media(0)) == ExtIds{4, 3});
    CHECK(extmap_ids(sdp.media(1)) == ExtIds{4, 0});
    CHECK(bundle_extmap_ids(sdp.msg) == ExtIds{4, 3});
}

TEST_CASE("an answer keeps only the agreed extensions, once each", "[bundle]") {
    Sdp sdp(kTwo);
    keep_extmaps(sdp.media(0), ExtIds{4, 0});
    CHECK(values(sdp.media(0), "extmap") ==
          std::vector<std::string>{"4 urn:ietf:params:rtp-hdrext:sdes:mid"});
    keep_extmaps(sdp.media(1), ExtIds{4, 3});  // a missing one is added
    CHECK(values(sdp.media(1), "extmap").size() == 2);
    keep_extmaps(sdp.media(1), ExtIds{});
    CHECK(values(sdp.media(1), "extmap").empty());
}

TEST_CASE("a=ssrc lines: announced SSRCs by m-line, repeats dropped", "[bundle]") {
    Sdp sdp(kTwo);
    auto ssrcs = announced_ssrcs(sdp.msg);
    CHECK(ssrcs.size() == 3);
    CHECK(ssrcs[11] == 0);
    CHECK(ssrcs[22] == 1);
    CHECK(ssrcs[23] == 1);
    drop_repeated(sdp.media(0), "ssrc");
    CHECK(values(sdp.media(0), "ssrc") == std::vector<std::string>{"11 cname:x", "11 msid:s t"});
}

TEST_CASE("a=ssrc-group:FID pairs each retransmission SSRC with its media SSRC", "[bundle]") {
    Sdp sdp(kTwo);
    CHECK(repair_ssrcs(sdp.msg) == std::map<guint32, guint32>{{23, 22}});
    // Other semantics, one SSRC, equal SSRCs, numbers that are not whole 32-bit decimals, and
    // SSRCs no a=ssrc line of this m-line announces: no pair.
    Sdp other(std::string(kTwo) +
              "a=ssrc:24 cname:x\r\na=ssrc:25 cname:x\r\n"
              "a=ssrc-group:FEC-FR 22 24\r\na=ssrc-group:FID 25\r\n"
              "a=ssrc-group:FID 24 24\r\na=ssrc-group:FID 24 25x\r\n"
              "a=ssrc-group:FID 24 +25\r\na=ssrc-group:FID 24 -18446744073709551591\r\n"
              "a=ssrc-group:FID 24 4294967321\r\na=ssrc-group:FID 24 26\r\n"
              "a=ssrc-group:FID 24 11\r\n");
    CHECK(repair_ssrcs(other.msg) == std::map<guint32, guint32>{{23, 22}});
    // An SSRC both a stream and a repair (FID 23 25 after FID 22 23): neither group counts for
    // it, and a group of three pairs its first two.
    Sdp chain(std::string(kTwo) +
              "a=ssrc:25 cname:x\r\na=ssrc:26 cname:x\r\na=ssrc:27 cname:x\r\n"
              "a=ssrc:28 cname:x\r\na=ssrc-group:FID 23 25\r\na=ssrc-group:FID 26 27 28\r\n");
    CHECK(repair_ssrcs(chain.msg) == std::map<guint32, guint32>{{27, 26}});
}

TEST_CASE("a=msid is added once", "[bundle]") {
    Sdp sdp(kTwo);
    add_msid(sdp.media(1), "kms-1", "webrtctransceiver0");
    add_msid(sdp.media(1), "kms-1", "other");
    CHECK(values(sdp.media(1), "msid") == std::vector<std::string>{"kms-1 webrtctransceiver0"});
}

TEST_CASE("the MID and SSRC of an RTP packet", "[bundle]") {
    init();
    GstBuffer* buf = rtp_with(4, "video1", 0x01020304);
    CHECK(read_mid(buf, 4) == "video1");
    CHECK(read_mid(buf, 5).empty());
    CHECK(read_mid(buf, 0).empty());
    CHECK(read_ssrc(buf) == 0x01020304);
    gst_buffer_unref(buf);
    GstBuffer* plain = gst_rtp_buffer_new_allocate(10, 0, 0);
    CHECK(read_mid(plain, 4).empty());
    gst_buffer_unref(plain);
    GstBuffer* runt = gst_buffer_new_allocate(nullptr, 4, nullptr);
    CHECK(read_ssrc(runt) == 0);
    CHECK(read_mid(runt, 4).empty());
    gst_buffer_unref(runt);
}

TEST_CASE("caps fields webrtcbin turns into a=extmap and a=ssrc", "[bundle]") {
    init();
    GstCaps* caps = gst_caps_from_string(
        "application/x-rtp, media=video, payload=96; application/x-rtp, media=video, payload=98");
    add_to_caps(caps, ExtIds{1, 2}, 1234);
    for (guint i = 0; i < gst_caps_get_size(caps); ++i) {
        const GstStructure* s = gst_caps_get_structure(caps, i);
        CHECK(std::string(gst_structure_get_string(s, "extmap-1")) == kMidUri);
        CHECK(std::string(gst_structure_get_string(s, "extmap-2")) == kTwccUri);
        guint ssrc = 0;
        CHECK(gst_structure_get_uint(s, "ssrc", &ssrc));
        CHECK(ssrc == 1234);
    }
    gst_caps_unref(caps);
}
