// The depayloader and parser kms plugs for an RTP stream, as parsebin would choose them, and
// parsebin left to what needs a demuxer.
#include <catch2/catch.hpp>

#include <string>
#include <vector>

#include "source/depay.hpp"

namespace {

using Chain = std::vector<std::string>;

Chain chain_for(const char* caps) {
    gst_init(nullptr, nullptr);
    GstCaps* c = gst_caps_from_string(caps);
    Chain out = kms::source::depay_chain(c);
    if (c) gst_caps_unref(c);
    return out;
}

}  // namespace

TEST_CASE("an RTP stream's depayloader and parser", "[elements][source]") {
    CHECK(chain_for("application/x-rtp,media=video,encoding-name=VP8,clock-rate=90000,"
                    "payload=96") == Chain{"rtpvp8depay"});
    CHECK(chain_for("application/x-rtp,media=video,encoding-name=H264,clock-rate=90000,"
                    "payload=96") == Chain{"rtph264depay", "h264parse"});
    CHECK(chain_for("application/x-rtp,media=video,encoding-name=H265,clock-rate=90000,"
                    "payload=96") == Chain{"rtph265depay", "h265parse"});
    CHECK(chain_for("application/x-rtp,media=video,encoding-name=VP9,clock-rate=90000,"
                    "payload=98") == Chain{"rtpvp9depay", "vp9parse"});
    CHECK(chain_for("application/x-rtp,media=audio,encoding-name=OPUS,clock-rate=48000,"
                    "payload=111") == Chain{"rtpopusdepay"});  // opusparse has no rank
    CHECK(chain_for("application/x-rtp,media=audio,encoding-name=MPEG4-GENERIC,"
                    "clock-rate=44100,payload=97,mode=AAC-hbr,config=1210") ==
          Chain{"rtpmp4gdepay", "aacparse"});
    // The same depayloader for video: the parser for what it gives video.
    CHECK(chain_for("application/x-rtp,media=video,encoding-name=MPEG4-GENERIC,"
                    "clock-rate=90000,payload=96,mode=generic") ==
          Chain{"rtpmp4gdepay", "mpeg4videoparse"});
}

TEST_CASE("raw RTP needs no parser; a container or the unknown is parsebin's",
          "[elements][source]") {
    CHECK(chain_for("application/x-rtp,media=audio,encoding-name=L16,clock-rate=48000,"
                    "channels=2,payload=97") == Chain{"rtpL16depay"});
    CHECK(chain_for("application/x-rtp,media=video,encoding-name=MP2T,clock-rate=90000,"
                    "payload=33")
              .empty());
    CHECK(chain_for("application/x-rtp,media=video,encoding-name=NOSUCH,clock-rate=90000,"
                    "payload=96")
              .empty());
    // An MPEG program stream needs mpegpsdemux.
    CHECK(chain_for("application/x-rtp,media=video,encoding-name=MP1S,clock-rate=90000,"
                    "payload=96")
              .empty());
    CHECK(chain_for("video/x-raw").empty());
    CHECK(kms::source::depay_chain(nullptr).empty());
}
