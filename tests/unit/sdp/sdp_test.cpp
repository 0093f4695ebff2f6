#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "kms/sdp.hpp"

namespace fs = std::filesystem;

namespace {
std::string slurp(const fs::path& p) {
    std::ifstream f(p, std::ios::binary);
    std::stringstream s;
    s << f.rdbuf();
    return s.str();
}
const fs::path kData = fs::path(KMS_TEST_DATA) / "sdp";
}  // namespace

SCENARIO("a browser's offer is read into media sections", "[sdp]") {
    auto r = kms::parse_sdp(slurp(kData / "chrome-style-offer.sdp"));
    REQUIRE(r);
    const kms::Sdp& sdp = *r.sdp;
    REQUIRE(sdp.media.size() == 3);
    CHECK(sdp.fingerprint_algorithm == "sha-256");
    CHECK(sdp.fingerprint.substr(0, 8) == "1F:4B:22");

    SECTION("audio keeps the offer's codec order, static payloads included") {
        const auto& a = sdp.media[0];
        CHECK(a.kind == "audio");
        CHECK(a.line == 8);
        CHECK(a.mid == "0");
        REQUIRE(a.codecs.size() == 8);
        CHECK(a.codecs[0].name == "opus");
        CHECK(a.codecs[0].payload == 111);
        CHECK(a.codecs[0].clock_rate == 48000);
        CHECK(a.codecs[0].channels == 2);
        CHECK(a.codecs[0].fmtp == "minptime=10;useinbandfec=1");
        CHECK(a.codecs[2].name == "g722");
        CHECK(a.codecs[3].name == "pcmu");
        CHECK(a.codecs[4].name == "pcma");
    }
    SECTION("video codecs and their parameters") {
        const auto& v = sdp.media[1];
        CHECK(v.kind == "video");
        CHECK(v.direction == "sendrecv");
        REQUIRE(v.codecs.size() == 5);
        CHECK(v.codecs[0].name == "vp8");
        CHECK(v.codecs[1].name == "rtx");
        CHECK(v.codecs[2].name == "h264");
        CHECK(v.codecs[2].fmtp.find("packetization-mode=1") != std::string::npos);
    }
    SECTION("the data channel section is application") {
        CHECK(sdp.media[2].kind == "application");
        CHECK(sdp.media[2].proto == "UDP/DTLS/SCTP");
    }
}

SCENARIO("an offer made by webrtcbin with a bundle-only section", "[sdp]") {
    auto r = kms::parse_sdp(slurp(kData / "kms-offer.sdp"));
    REQUIRE(r);
    REQUIRE(r.sdp->media.size() == 2);
    CHECK(r.sdp->media[1].port == 0);
    CHECK(r.sdp->media[1].bundle_only);
    CHECK_FALSE(r.sdp->media[1].rejected());
}

SCENARIO("b=AS is read into its media section", "[sdp]") {
    std::string text = slurp(kData / "chrome-style-offer.sdp");
    CHECK(kms::parse_sdp(text).sdp->media[1].bandwidth_kbps == 0);
    const size_t video = text.find("m=video");
    const size_t next = text.find('\n', video) + 1;
    text.insert(next, "b=AS:750\r\n");
    auto r = kms::parse_sdp(text);
    REQUIRE(r);
    CHECK(r.sdp->media[1].kind == "video");
    CHECK(r.sdp->media[1].bandwidth_kbps == 750);
    CHECK(r.sdp->media[0].bandwidth_kbps == 0);
}

SCENARIO("every malformed SDP of the corpus is refused naming its line", "[sdp]") {
    const std::regex name(R"(.*\.L([0-9]+)\.sdp)");
    int seen = 0;
    for (const auto& entry : fs::directory_iterator(kData / "bad")) {
        std::smatch m;
        const std::string file = entry.path().filename().string();
        REQUIRE(std::regex_match(file, m, name));
        const int line = std::stoi(m[1]);
        auto r = kms::parse_sdp(slurp(entry.path()));
        INFO(file << ": " << r.error.message);
        CHECK_FALSE(r);
        CHECK(r.error.code == kms::ErrorCode::BadInput);
        CHECK(r.error.line == line);
        CHECK_FALSE(r.error.message.empty());
        ++seen;
    }
    CHECK(seen >= 20);
}

SCENARIO("well-formed SDP that WebRTC cannot use is refused as a negotiation failure", "[sdp]") {
    for (const char* f : {"no-fingerprint.sdp", "no-ice-credentials.sdp", "plain-rtp.sdp"}) {
        auto r = kms::parse_sdp(slurp(kData / "refused" / f));
        INFO(f << ": " << r.error.message);
        CHECK_FALSE(r);
        CHECK(r.error.code == kms::ErrorCode::Negotiation);
        CHECK(r.error.line == 8);
    }
    GIVEN("the same SDP read without the WebRTC rules") {
        auto r = kms::parse_sdp(slurp(kData / "refused" / "no-fingerprint.sdp"), false);
        CHECK(r);
    }
    THEN("the missing fingerprint message says what to do") {
        auto r = kms::parse_sdp(slurp(kData / "refused" / "no-fingerprint.sdp"));
        CHECK_THAT(r.error.message, Catch::Contains("missing a=fingerprint"));
    }
}

SCENARIO("line ends and size limits", "[sdp]") {
    std::string lf = slurp(kData / "chrome-style-offer.sdp");
    GIVEN("LF-only line ends") {
        auto r = kms::parse_sdp(lf);
        REQUIRE(r);
        THEN("the text is normalised to CRLF") {
            CHECK(r.sdp->text.find("v=0\r\no=") == 0);
        }
    }
    GIVEN("trailing blank lines, as a stream reader leaves them") {
        CHECK(kms::parse_sdp(lf + "\r\n\r\n"));
    }
    GIVEN("a description over 256 KiB") {
        std::string big = lf;
        while (big.size() < 300 * 1024)
            big += "a=x-padding:0123456789012345678901234567890123456789\n";
        auto r = kms::parse_sdp(big);
        CHECK_FALSE(r);
        CHECK_THAT(r.error.message, Catch::Contains("256 KiB"));
    }
}

SCENARIO("descriptions travel as plain SDP, browser JSON or base64 JSON", "[sdp]") {
    const std::string sdp = "v=0\r\no=- 1 1 IN IP4 0.0.0.0\r\ns=-\r\nt=0 0\r\n";
    kms::SdpEnvelope env{"offer", sdp};
    SECTION("json round trip is one line") {
        std::string wire = kms::encode_sdp(env, kms::SdpFormat::BrowserJson);
        CHECK(wire.find('\n') == wire.size() - 1);
        CHECK(wire.rfind("{\"type\":\"offer\",\"sdp\":", 0) == 0);
        auto back = kms::decode_sdp(wire, kms::SdpFormat::BrowserJson, nullptr);
        REQUIRE(back);
        CHECK(back->type == "offer");
        CHECK(back->sdp == sdp);
    }
    SECTION("base64 round trip") {
        std::string wire = kms::encode_sdp(env, kms::SdpFormat::Base64Json);
        CHECK(wire.find_first_of("{}\"") == std::string::npos);
        auto back = kms::decode_sdp(wire, kms::SdpFormat::Base64Json, nullptr);
        REQUIRE(back);
        CHECK(back->sdp == sdp);
    }
    SECTION("plain SDP ends with an empty line") {
        std::string wire = kms::encode_sdp(env, kms::SdpFormat::Sdp);
        CHECK(wire.substr(wire.size() - 4) == "\r\n\r\n");
    }
    SECTION("bad wrappers are errors, not exceptions") {
        std::string why;
        CHECK_FALSE(kms::decode_sdp("{not json", kms::SdpFormat::BrowserJson, &why));
        CHECK_FALSE(why.empty());
        CHECK_FALSE(kms::decode_sdp("{\"type\":\"offer\"}", kms::SdpFormat::BrowserJson, &why));
        CHECK_THAT(why, Catch::Contains("sdp"));
        CHECK_FALSE(kms::decode_sdp("[1,2]", kms::SdpFormat::BrowserJson, &why));
        CHECK_FALSE(kms::decode_sdp("!!!!", kms::SdpFormat::Base64Json, &why));
        CHECK_FALSE(kms::decode_sdp("QQ==QQ", kms::SdpFormat::Base64Json, &why));
    }
    SECTION("format names") {
        CHECK(kms::parse_sdp_format("base64") == kms::SdpFormat::Base64Json);
        CHECK_THROWS_AS(kms::parse_sdp_format("xml"), kms::Error);
    }
}
