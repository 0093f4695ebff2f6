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

SCENARIO("STUN and TURN server URIs", "[uri][ice]") {
    using kms::IceServerRole;
    using kms::IceServerUri;
    using Scheme = IceServerUri::Scheme;
    SECTION("schemes, default ports (RFC 7064, RFC 7065) and transports") {
        struct Case {
            const char* text;
            Scheme scheme;
            const char* host;
            uint16_t port;
            const char* transport;
        };
        const Case cases[] = {
            {"stun:stun.example.org", Scheme::Stun, "stun.example.org", 3478, ""},
            {"stuns:stun.example.org", Scheme::Stuns, "stun.example.org", 5349, ""},
            {"turn:turn.example.org", Scheme::Turn, "turn.example.org", 3478, ""},
            {"turns:turn.example.org", Scheme::Turns, "turn.example.org", 5349, ""},
            {"stun:127.0.0.1:19302", Scheme::Stun, "127.0.0.1", 19302, ""},
            {"stun:127.0.0.1?transport=tcp", Scheme::Stun, "127.0.0.1", 3478, "tcp"},
            {"turn:h:1?transport=udp", Scheme::Turn, "h", 1, "udp"},
            {"turns:h:65535?transport=tcp", Scheme::Turns, "h", 65535, "tcp"},
            {"stun://h", Scheme::Stun, "h", 3478, ""},
            {"STUN:h", Scheme::Stun, "h", 3478, ""},
            {"stun:[::1]", Scheme::Stun, "::1", 3478, ""},
            {"turn:[2001:db8::7]:3479?transport=tcp", Scheme::Turn, "2001:db8::7", 3479, "tcp"},
            {"stun:[fe80::1%eth0]:3478", Scheme::Stun, "fe80::1%eth0", 3478, ""},
        };
        for (const auto& c : cases) {
            INFO(c.text);
            const IceServerUri u = kms::parse_ice_server_uri(c.text);
            CHECK(u.scheme == c.scheme);
            CHECK(u.host == c.host);
            CHECK(u.port == c.port);
            CHECK(u.transport == c.transport);
            CHECK(u.user.empty());
            CHECK(u.password.empty());
        }
        CHECK(kms::parse_ice_server_uri("turns:h").secure());
        CHECK(kms::parse_ice_server_uri("turns:h").turn());
        CHECK_FALSE(kms::parse_ice_server_uri("stuns:h").turn());
        CHECK_FALSE(kms::parse_ice_server_uri("turn:h").secure());
    }
    SECTION("turn: credentials run to the last '@' and split at the first ':', as typed") {
        auto u = kms::parse_ice_server_uri("turn:alice:wonderland@127.0.0.1:3478?transport=tcp");
        CHECK(u.user == "alice");
        CHECK(u.password == "wonderland");
        CHECK(u.host == "127.0.0.1");
        CHECK(u.transport == "tcp");
        u = kms::parse_ice_server_uri("turns://alice:p@s:s/w?o#r%41d@[::1]");
        CHECK(u.user == "alice");
        CHECK(u.password == "p@s:s/w?o#r%41d");
        CHECK(u.host == "::1");
        CHECK(u.port == 5349);
        u = kms::parse_ice_server_uri("turn:carol@h");
        CHECK(u.user == "carol");
        CHECK(u.password.empty());
    }
    SECTION("host_port() and redacted()") {
        auto u = kms::parse_ice_server_uri("turn:alice:TopSecret99@[::1]?transport=tcp");
        CHECK(u.host_port() == "[::1]:3478");
        CHECK(u.redacted() == "turn:alice:***@[::1]:3478?transport=tcp");
        CHECK(kms::parse_ice_server_uri("stuns:h:5350").redacted() == "stuns:h:5350");
        CHECK(kms::parse_ice_server_uri("turn:carol@h").redacted() == "turn:carol@h:3478");
    }
    SECTION("roles: a STUN place takes stun:/stuns:, a TURN place turn:/turns:") {
        CHECK_NOTHROW(kms::parse_ice_server_uri("stuns:h", IceServerRole::Stun));
        CHECK_NOTHROW(kms::parse_ice_server_uri("turns:h", IceServerRole::Turn));
        CHECK_THROWS_WITH(
            kms::parse_ice_server_uri("turn:alice:TopSecret99@h", IceServerRole::Stun),
            "'turn:alice:***@h': a TURN URI where a STUN one is expected");
        CHECK_THROWS_WITH(kms::parse_ice_server_uri("stun:h", IceServerRole::Turn),
                          "'stun:h': a STUN URI where a TURN one is expected");
        CHECK_THROWS_WITH(kms::parse_ice_server_uri("http://h", IceServerRole::Stun),
                          "'http://h': expected stun:HOST[:PORT] or stuns:HOST[:PORT]");
        CHECK_THROWS_WITH(kms::parse_ice_server_uri("bob:TopSecret99@h", IceServerRole::Turn),
                          "'***@h': expected turn:[USER:PASS@]HOST[:PORT][?transport=udp|tcp]");
    }
    SECTION("malformed URIs say what is wrong, and never show the password") {
        const std::pair<const char*, const char*> cases[] = {
            {"turn:alice:TopSecret99@127.0.0.1:0", "'turn:alice:***@127.0.0.1:0': bad port"},
            {"turn:alice:TopSecret99@127.0.0.1:99999",
             "'turn:alice:***@127.0.0.1:99999': bad port"},
            {"turn:alice:TopSecret99@127.0.0.1:", "'turn:alice:***@127.0.0.1:': bad port"},
            {"turn:alice:TopSecret99@127.0.0.1:+1", "'turn:alice:***@127.0.0.1:+1': bad port"},
            {"turn:alice:TopSecret99@[::1]x", "'turn:alice:***@[::1]x': bad port"},
            {"turn:alice:TopSecret99@[::1", "'turn:alice:***@[::1': unclosed ["},
            {"turn:alice:TopSecret99@[nothost]",
             "'turn:alice:***@[nothost]': '[nothost]' is not an IPv6 address"},
            {"turn:alice:TopSecret99@::1",
             "'turn:alice:***@::1': an IPv6 address goes in brackets: turn:[ADDRESS]:PORT"},
            {"turn:alice:TopSecret99@", "'turn:alice:***@': no host"},
            {"turn://alice:TopSecret99@:3478", "'turn://alice:***@:3478': no host"},
            {"turn:alice:TopSecret99@[]", "'turn:alice:***@[]': no host"},
            {"turn:alice:TopSecret99@h/path", "'turn:alice:***@h/path': bad host 'h/path'"},
            {"turn:alice:TopSecret99@127.0.0.1?transport=bogus",
             "'turn:alice:***@127.0.0.1?transport=bogus': transport must be udp or tcp"},
            {"turn:alice:TopSecret99@h?foo=bar",
             "'turn:alice:***@h?foo=bar': unknown query 'foo=bar'; only ?transport=udp or "
             "?transport=tcp is understood"},
            {"turns:alice:TopSecret99@127.0.0.1?transport=udp",
             "'turns:alice:***@127.0.0.1?transport=udp': TLS runs over tcp; DTLS is not "
             "supported"},
            {"turn:alice:Top?TopSecret99@127.0.0.1:0", "'turn:alice:***@127.0.0.1:0': bad port"},
            {"turn:alice:Top/TopSecret99@[::1", "'turn:alice:***@[::1': unclosed ["},
            {"stun:alice:TopSecret99@h", "'stun:alice:***@h': credentials belong in turn: URIs"},
            // No scheme to tell the user part by: all of it is hidden.
            {"alice:TopSecret99@h", "'***@h': expected stun:, stuns:, turn: or turns:HOST[:PORT]"},
            {"al/ice:TopSecret99@h", "'***@h': expected stun:, stuns:, turn: or turns:HOST[:PORT]"},
            // USER:PASS without @HOST reads as HOST:PORT: the "port" is not shown.
            {"turn:alice:TopSecret99", "'turn:alice:***': bad port"},
            {"", "'': expected stun:, stuns:, turn: or turns:HOST[:PORT]"},
            {"stun:", "'stun:': no host"},
        };
        for (const auto& [in, message] : cases) {
            INFO(in);
            try {
                kms::parse_ice_server_uri(in);
                FAIL("accepted");
            } catch (const kms::Error& e) {
                CHECK(e.code() == kms::ErrorCode::InvalidArgument);
                CHECK(std::string(e.what()) == message);
                CHECK_THAT(e.what(), !Catch::Contains("TopSecret99"));
            }
        }
    }
}
