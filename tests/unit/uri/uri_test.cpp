#include <catch2/catch.hpp>

#include <utility>

#include "kms/error.hpp"
#include "kms/uri.hpp"

using kms::MediaUri;
using Kind = MediaUri::Kind;

namespace {
kms::ErrorCode code_of(void (*fn)()) {
    try {
        fn();
    } catch (const kms::Error& e) {
        return e.code();
    }
    return kms::ErrorCode::Runtime;
}
}  // namespace

SCENARIO("test sources", "[uri]") {
    SECTION("test: and test:av carry both tracks") {
        for (const char* s : {"test:", "test:av"}) {
            auto u = kms::parse_source_uri(s);
            CHECK(u.kind == Kind::Test);
            CHECK(u.video);
            CHECK(u.audio);
        }
    }
    SECTION("test:video and test:audio carry one") {
        auto v = kms::parse_source_uri("test:video");
        CHECK(v.video);
        CHECK_FALSE(v.audio);
        auto a = kms::parse_source_uri("test:audio");
        CHECK_FALSE(a.video);
        CHECK(a.audio);
    }
    SECTION("parameters are validated and readable") {
        auto u =
            kms::parse_source_uri("test:av?pattern=smpte&width=1280&height=720&fps=30&freq=440");
        CHECK(u.param("pattern", "") == "smpte");
        CHECK(u.param_int("width", 0) == 1280);
        CHECK(u.param_int("height", 0) == 720);
        CHECK(u.param_int("fps", 0) == 30);
        CHECK(u.param_int("freq", 0) == 440);
        CHECK(u.param_int("absent", 7) == 7);
    }
    SECTION("malformed test URIs") {
        for (const char* s :
             {"test:vidoe", "test:av?width=0", "test:av?width=abc", "test:av?fps=1000",
              "test:av?pattern=nope", "test:av?colour=red", "test:av?width", "test:av?=3",
              "test:av?width=", "test:av?wave=loud"}) {
            INFO(s);
            CHECK_THROWS_AS(kms::parse_source_uri(s), kms::Error);
        }
    }
    SECTION("a test source is no sink") {
        CHECK_THROWS_AS(kms::parse_sink_uri("test:av"), kms::Error);
    }
}

SCENARIO("files", "[uri]") {
    SECTION("a bare path") {
        auto u = kms::parse_source_uri("clip.webm");
        CHECK(u.kind == Kind::File);
        CHECK(u.location == "clip.webm");
        CHECK(kms::parse_sink_uri("/tmp/out.mkv").location == "/tmp/out.mkv");
        CHECK(kms::parse_sink_uri("./odd:name.webm").location == "./odd:name.webm");
    }
    SECTION("file:// URIs are percent-decoded") {
        auto u = kms::parse_source_uri("file:///tmp/my%20clip.webm");
        CHECK(u.kind == Kind::File);
        CHECK(u.location == "/tmp/my clip.webm");
        CHECK(kms::parse_source_uri("file://localhost/a.mkv").location == "/a.mkv");
    }
    SECTION("malformed file URIs") {
        for (const char* s : {"file:relative.webm", "file://otherhost/a.webm", "file:///a%2",
                              "file:///a%zz", "file:///a%00b", ""}) {
            INFO(s);
            CHECK_THROWS_AS(kms::parse_source_uri(s), kms::Error);
        }
    }
    SECTION("- is stdin or stdout") {
        CHECK(kms::parse_source_uri("-").kind == Kind::Stdio);
        CHECK(kms::parse_sink_uri("-").kind == Kind::Stdio);
    }
    SECTION("containers follow the extension") {
        CHECK(kms::container_for_path("a.webm") == "webm");
        CHECK(kms::container_for_path("A.MKV") == "matroska");
        CHECK(kms::container_for_path("x/y.mp4") == "mp4");
        CHECK(kms::container_for_path("dir.webm/file") == "");
        CHECK(kms::container_for_path("noext") == "");
    }
}

SCENARIO("devices", "[uri]") {
    auto v = kms::parse_source_uri("v4l2:/dev/video0");
    CHECK(v.kind == Kind::V4l2);
    CHECK(v.location == "/dev/video0");
    CHECK(kms::parse_source_uri("pulse:").kind == Kind::Pulse);
    CHECK(kms::parse_source_uri("pulse:").location.empty());
    CHECK(kms::parse_source_uri("pulse:alsa_input.usb").location == "alsa_input.usb");
    auto a = kms::parse_source_uri("alsa:hw:0");
    CHECK(a.kind == Kind::Alsa);
    CHECK(a.location == "hw:0");
    for (const char* s : {"v4l2:", "v4l2:video0", "alsa:"}) {
        INFO(s);
        CHECK_THROWS_AS(kms::parse_source_uri(s), kms::Error);
    }
    CHECK_THROWS_AS(kms::parse_sink_uri("v4l2:/dev/video0"), kms::Error);
}

SCENARIO("sinks", "[uri]") {
    CHECK(kms::parse_sink_uri("null:").kind == Kind::Null);
    CHECK(kms::parse_sink_uri("display:").kind == Kind::Display);
    CHECK(kms::parse_sink_uri("NULL:").kind == Kind::Null);
    for (const char* s : {"null:x", "display:1"}) {
        INFO(s);
        CHECK_THROWS_AS(kms::parse_sink_uri(s), kms::Error);
    }
    CHECK_THROWS_AS(kms::parse_source_uri("null:"), kms::Error);
    CHECK_THROWS_AS(kms::parse_source_uri("display:"), kms::Error);
}

SCENARIO("network URIs", "[uri]") {
    CHECK(kms::parse_source_uri("rtsp://cam.local/stream").kind == Kind::Rtsp);
    auto rtp = kms::parse_sink_uri("rtp://127.0.0.1:5004");
    CHECK(rtp.kind == Kind::Rtp);
    CHECK(rtp.location == "127.0.0.1:5004");
    CHECK(kms::parse_source_uri("rtp://127.0.0.1:5004?sdp=in.sdp").param("sdp", "") == "in.sdp");
    CHECK_THROWS_AS(kms::parse_sink_uri("rtp://127.0.0.1"), kms::Error);
    CHECK_THROWS_AS(kms::parse_sink_uri("rtp://127.0.0.1:70000"), kms::Error);
    CHECK(kms::parse_source_uri("whep+https://sfu/room").location == "https://sfu/room");
    CHECK(kms::parse_sink_uri("whip+http://127.0.0.1:8080/whip").kind == Kind::Whip);
    CHECK_THROWS_AS(kms::parse_sink_uri("whep+https://sfu/room"), kms::Error);
    CHECK_THROWS_AS(kms::parse_source_uri("whip+https://sfu/room"), kms::Error);
}

SCENARIO("unknown schemes are usage errors", "[uri]") {
    CHECK(code_of([] { kms::parse_source_uri("foo:bar"); }) == kms::ErrorCode::InvalidArgument);
    try {
        kms::parse_sink_uri("smb://server/share");
        FAIL("no error");
    } catch (const kms::Error& e) {
        CHECK_THAT(e.what(), Catch::Contains("unknown URI scheme 'smb:'"));
    }
}

SCENARIO("secrets never print", "[uri]") {
    CHECK(kms::redact_url("https://user:secret@host/path") == "https://user:***@host/path");
    CHECK(kms::redact_url("turn:alice:pw@127.0.0.1:3478") == "turn:alice:***@127.0.0.1:3478");
    CHECK(kms::redact_url("https://host/path") == "https://host/path");
    CHECK(kms::parse_source_uri("whep+https://u:pw@h/x").redacted() == "whep+https://u:***@h/x");
    try {
        kms::parse_source_uri("bogus://u:topsecret@h/");
        FAIL("no error");
    } catch (const kms::Error& e) {
        CHECK_THAT(e.what(), !Catch::Contains("topsecret"));
    }
}

SCENARIO("secrets never print, whatever else is wrong with the URI", "[uri]") {
    // The malformed turn: URIs of issue 6 and passwords with the characters that end a URI's
    // authority: the password goes, the rest stays for the reader to see what was wrong.
    const std::pair<const char*, const char*> cases[] = {
        {"turn:alice:TopSecret99@127.0.0.1:0", "turn:alice:***@127.0.0.1:0"},
        {"turn:alice:TopSecret99@127.0.0.1?transport=bogus",
         "turn:alice:***@127.0.0.1?transport=bogus"},
        {"turn:alice:TopSecret99@[::1", "turn:alice:***@[::1"},
        {"turn:alice:TopSecret99@", "turn:alice:***@"},
        {"turn:alice:TopSecret99@:3478", "turn:alice:***@:3478"},
        {"turns://alice:TopSecret99@host", "turns://alice:***@host"},
        {"turn:alice:Top/Secret99@host", "turn:alice:***@host"},
        {"turn:alice:Top?Secret99@host", "turn:alice:***@host"},
        {"turn:alice:Top#Secret@99@host", "turn:alice:***@host"},
        {"https://u:Top/Secret99@host/path", "https://u:***@host/path"},
        {"stun:alice:TopSecret99@host", "stun:alice:***@host"},
    };
    for (const auto& [in, out] : cases) {
        INFO(in);
        CHECK(kms::redact_url(in) == out);
    }
    // No password, or an '@' that is not in a user part: unchanged.
    CHECK(kms::redact_url("turn:alice@host") == "turn:alice@host");
    CHECK(kms::redact_url("https://host/a:b@c") == "https://host/a:b@c");
    CHECK(kms::redact_url("stun:[::1]:3478") == "stun:[::1]:3478");
    CHECK(kms::redact_url("no scheme at all") == "no scheme at all");
}
