#include <catch2/catch.hpp>

#include "kms/sdp.hpp"

using kms::SdpFormat;
using kms::SdpFramer;

SCENARIO("a plain SDP ends at an empty line", "[sdp][call]") {
    SdpFramer f(SdpFormat::Sdp);
    CHECK_FALSE(f.feed(""));  // leading blank lines are skipped
    CHECK_FALSE(f.feed("v=0"));
    CHECK_FALSE(f.feed("o=- 1 1 IN IP4 0.0.0.0\r"));
    CHECK(f.feed(""));
    CHECK(f.text() == "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\n");
}

SCENARIO("a JSON description ends when the object closes, even over several lines", "[sdp][call]") {
    SdpFramer f(SdpFormat::BrowserJson);
    CHECK_FALSE(f.feed("{"));
    CHECK_FALSE(f.feed("  \"type\": \"offer\","));
    CHECK(f.feed("  \"sdp\": \"v=0\\r\\n\" }"));
}

SCENARIO("base64 is one line", "[sdp][call]") {
    SdpFramer f(SdpFormat::Base64Json);
    CHECK_FALSE(f.feed(""));
    CHECK(f.feed("eyJ0eXBlIjoib2ZmZXIifQ=="));
    CHECK(f.finish());
}
