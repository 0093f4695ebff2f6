// kms-stats' parts that need no media (issue 10): the --assert grammar, the summary of an event
// stream, and the Prometheus text format.
#include <sys/stat.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>

#include "assertions.hpp"
#include "kms/error.hpp"
#include "report.hpp"
#include "summary.hpp"

using namespace kms::stats;

namespace {

size_t column_of(const std::string& text) {
    try {
        parse_assertion(text, summary_metric_names());
    } catch (const AssertSyntax& e) {
        return e.column();
    }
    FAIL("'" << text << "' parsed");
    return 0;
}

double metric(const Metrics& m, const std::string& name) {
    for (const auto& x : m)
        if (x.name == name) return x.value;
    FAIL("no metric " << name);
    return 0.0;
}

std::string events(std::initializer_list<kms::Json> list) {
    std::string out;
    for (const auto& j : list) out += j.dump() + "\n";
    return out;
}

}  // namespace

SCENARIO("--assert expressions parse into a metric, a comparison and a threshold",
         "[stats][assert]") {
    const auto& known = summary_metric_names();
    WHEN("units are given, the threshold is in the metric's base unit") {
        CHECK(parse_assertion("loss < 1%", known).threshold == Approx(0.01));
        CHECK(parse_assertion("rtt.p95 < 150ms", known).threshold == Approx(0.15));
        CHECK(parse_assertion("rtt.p95<150ms", known).threshold == Approx(0.15));
        CHECK(parse_assertion("  rtt.max <= 2 s  ", known).threshold == Approx(2));
        CHECK(parse_assertion("rtt.min > 500us", known).threshold == Approx(0.0005));
        CHECK(parse_assertion("bitrate > 500kbps", known).threshold == Approx(500e3));
        CHECK(parse_assertion("bitrate > 2.5Mbps", known).threshold == Approx(2.5e6));
        CHECK(parse_assertion("video.fps >= 25", known).threshold == Approx(25));
        CHECK(parse_assertion("video.fps >= 25fps", known).threshold == Approx(25));
        CHECK(parse_assertion("loss < .5%", known).threshold == Approx(0.005));
    }
    WHEN("no unit is given, the number is in the base unit") {
        const Assertion a = parse_assertion("loss < 0.01", known);
        CHECK(a.metric == "loss");
        CHECK(a.op == "<");
        CHECK(a.threshold == Approx(0.01));
        CHECK(a.unit.empty());
    }
    THEN("every comparison is read, the two-character ones whole") {
        for (const char* op : {"<", "<=", ">", ">=", "==", "!="})
            CHECK(parse_assertion(std::string("packetsLost ") + op + " 3", known).op == op);
    }
}

SCENARIO("a malformed --assert names the column of the fault", "[stats][assert]") {
    CHECK(column_of("") == 0);
    CHECK(column_of("  9 < 1") == 2);              // a metric starts with a letter
    CHECK(column_of("vidoe.fps > 2") == 0);        // unknown metric
    CHECK(column_of("loss 1%") == 5);              // no comparison
    CHECK(column_of("loss =< 1%") == 5);           // not a comparison
    CHECK(column_of("loss < %") == 7);             // no number
    CHECK(column_of("loss < 1x") == 8);            // not a unit
    CHECK(column_of("rtt < 5%") == 7);             // a unit that does not suit
    CHECK(column_of("bitrate > 5 kbpsx") == 12);   // a unit runs into letters
    CHECK(column_of("loss < 1% and more") == 10);  // text after the unit
    CHECK(column_of("rtt.p95 < 150 parsecs") == 14);
    CHECK(column_of("loss < 5.") == 9);    // a point without digits after it
    CHECK(column_of("loss < 150") == 10);  // a bare ratio above 1: 150% was meant, or 1.5%
    CHECK_NOTHROW(parse_assertion("loss <= 1", summary_metric_names()));
    CHECK(column_of("loss < 5.%") == 9);
    AssertSyntax e(8, "expected a unit");
    CHECK(caret_message("loss < 1x", e) == "--assert: expected a unit\n  loss < 1x\n          ^");
}

SCENARIO("assertions are judged against the measured figures", "[stats][assert]") {
    const auto& known = summary_metric_names();
    const Metrics m{{"loss", 0.048, Dim::Ratio}, {"rtt.p95", 0.2, Dim::Seconds}};
    Verdict v = evaluate(parse_assertion("loss < 1%", known), m);
    CHECK_FALSE(v.ok);
    CHECK(v.line == "loss < 1%: measured 4.80%");
    v = evaluate(parse_assertion("loss < 20%", known), m);
    CHECK(v.ok);
    v = evaluate(parse_assertion("rtt.p95 < 0.15", known), m);
    CHECK_FALSE(v.ok);
    CHECK(v.line == "rtt.p95 < 0.15: measured 200ms");  // no unit typed: the readable one
    v = evaluate(parse_assertion("video.fps > 1", known), m);
    CHECK_FALSE(v.ok);
    CHECK_FALSE(v.measured);
}

SCENARIO("an event stream is summarised per stream", "[stats][summary]") {
    GIVEN("inbound video whose byte counter steps back once, as 1.22's bundled stats do") {
        std::istringstream in(events({
            {{"type", "track"},
             {"timestamp", 1000.0},
             {"direction", "in"},
             {"kind", "video"},
             {"codec", "vp8"},
             {"mid", "video0"}},
            {{"type", "inbound-rtp"},
             {"timestamp", 1000.0},
             {"kind", "video"},
             {"ssrc", 7},
             {"mid", "video0"},
             {"packetsReceived", 100},
             {"packetsLost", 0},
             {"bytesReceived", 10000},
             {"framesDecoded", 30},
             {"jitter", 0.002}},
            {{"type", "inbound-rtp"},
             {"timestamp", 2000.0},
             {"kind", "video"},
             {"ssrc", 7},
             {"packetsReceived", 190},
             {"packetsLost", 10},
             {"bytesReceived", 135000},
             {"framesDecoded", 60},
             {"jitter", 0.004}},
            {{"type", "inbound-rtp"},
             {"timestamp", 2500.0},
             {"kind", "video"},
             {"ssrc", 7},
             {"packetsReceived", 190},
             {"packetsLost", 10},
             {"bytesReceived", 500},
             {"framesDecoded", 60},
             {"jitter", 0.003}},
            {{"type", "remote-inbound-rtp"},
             {"timestamp", 2100.0},
             {"ssrc", 9},
             {"roundTripTime", 0.010}},
            {{"type", "remote-inbound-rtp"},
             {"timestamp", 2600.0},
             {"ssrc", 9},
             {"roundTripTime", 0.010}},  // the same report again: counted once
            {{"type", "remote-inbound-rtp"},
             {"timestamp", 3000.0},
             {"ssrc", 9},
             {"roundTripTime", 0.030}},
            {{"type", "timing"},
             {"timestamp", 3000.0},
             {"phases", {{"ice", 3.5}, {"dtls", 8.0}}},
             {"sinceProcessStart", {{"firstFrame", 450.0}}}},
        }));
        const Summary s = summarise(in, "test");
        REQUIRE(s.tracks.size() == 1);
        const RtpTrack& t = s.tracks[0];
        THEN("the bitrate counts only growth, over the first to the last event") {
            CHECK(t.codec == "vp8");
            REQUIRE(t.bitrate);
            CHECK(*t.bitrate == Approx(125000.0 * 8 / 1.5));
            REQUIRE(t.fps);
            CHECK(*t.fps == Approx(30 / 1.5));
        }
        THEN("loss, jitter and round-trip time are as the events said") {
            CHECK(t.lost == 10);
            CHECK(t.packets == 190);
            CHECK(t.jitter_max == Approx(0.004));
            CHECK(t.jitter_mean == Approx(0.003));
            CHECK(s.rtt.count == 2);
            CHECK(s.rtt.min == Approx(0.010));
            CHECK(s.rtt.max == Approx(0.030));
            CHECK(s.rtt.mean == Approx(0.020));
            CHECK(s.rtt.p50 == Approx(0.010));  // nearest rank: the lower of two
            CHECK(s.rtt.p95 == Approx(0.030));
            CHECK(s.duration == Approx(2.0));
        }
        THEN("--assert reads loss as lost over expected, and the set-up from the timing event") {
            const Metrics m = summary_metrics(s);
            auto find = [&](const std::string& n) { return metric(m, n); };
            CHECK(find("loss") == Approx(10.0 / 200));
            CHECK(find("video.loss") == Approx(10.0 / 200));
            CHECK(find("setup") == Approx(0.45));
            CHECK(find("rtt.p95") == Approx(0.030));
            CHECK(find("rtt.p50") == Approx(0.010));
        }
    }
    GIVEN("inbound video with retransmissions counted in packetsReceived, as W3C has it") {
        std::istringstream in(events({
            {{"type", "inbound-rtp"},
             {"timestamp", 1000.0},
             {"kind", "video"},
             {"ssrc", 7},
             {"packetsReceived", 100},
             {"packetsLost", 0},
             {"bytesReceived", 10000}},
            {{"type", "inbound-rtp"},
             {"timestamp", 2000.0},
             {"kind", "video"},
             {"ssrc", 7},
             {"packetsReceived", 200},
             {"retransmittedPacketsReceived", 10},
             {"packetsLost", 10},
             {"bytesReceived", 20000}},
        }));
        const Summary s = summarise(in, "test");
        REQUIRE(s.tracks.size() == 1);
        THEN("packetsReceived stays W3C's; loss is against the stream's own 190 packets") {
            CHECK(s.tracks[0].packets == 200);
            CHECK(s.tracks[0].retransmitted == 10);
            const Metrics m = summary_metrics(s);
            CHECK(metric(m, "loss") == Approx(10.0 / 200));
            CHECK(metric(m, "video.loss") == Approx(10.0 / 200));
            REQUIRE(s.tracks[0].loss_series.size() == 1);
            CHECK(s.tracks[0].loss_series[0].v == Approx(10.0 / 100));
        }
    }
    GIVEN("two sent streams, each named by the peer's reports") {
        auto out = [](double ms, int ssrc, const char* kind, int packets) {
            return kms::Json{{"type", "outbound-rtp"}, {"timestamp", ms},
                             {"kind", kind},           {"ssrc", ssrc},
                             {"packetsSent", packets}, {"bytesSent", packets * 1000}};
        };
        auto rr = [](double ms, int ssrc, double rtt) {
            return kms::Json{{"type", "remote-inbound-rtp"},
                             {"timestamp", ms},
                             {"ssrc", ssrc},
                             {"roundTripTime", rtt}};
        };
        std::istringstream in(
            events({out(1000, 5, "video", 10), out(1000, 6, "audio", 10), rr(1500, 5, 0.100),
                    rr(1500, 6, 0.020), rr(2500, 5, 0.140), rr(2500, 6, 0.020), rr(3500, 6, 0.040),
                    out(3600, 5, "video", 90), out(3600, 6, "audio", 90)}));
        const Summary s = summarise(in, "test");
        REQUIRE(s.tracks.size() == 2);
        const RtpTrack& video = s.tracks[0].kind == "video" ? s.tracks[0] : s.tracks[1];
        const RtpTrack& audio = s.tracks[0].kind == "video" ? s.tracks[1] : s.tracks[0];
        THEN("each stream has the round-trip times of its own reports, the call all of them") {
            CHECK(video.rtt.count == 2);
            CHECK(video.rtt.min == Approx(0.100));
            CHECK(video.rtt.max == Approx(0.140));
            CHECK(audio.rtt.count == 2);  // 0.020 twice is one report repeated
            CHECK(audio.rtt.max == Approx(0.040));
            CHECK(s.rtt.count == 4);
            const kms::Json j = summary_json(s);
            for (const auto& t : j["outbound"]) CHECK(t["roundTripTime"]["samples"] == 2);
            const Metrics m = summary_metrics(s);
            auto find = [&](const std::string& n) { return metric(m, n); };
            CHECK(find("video.rtt.max") == Approx(0.140));
            CHECK(find("audio.rtt.mean") == Approx(0.030));
            CHECK_NOTHROW(parse_assertion("video.rtt.p95 < 150ms", summary_metric_names()));
        }
    }
    GIVEN("reports that count their measurements, as kms-call's do") {
        auto rr = [](double ms, double rtt, int n) {
            return kms::Json{{"type", "remote-inbound-rtp"},
                             {"timestamp", ms},
                             {"kind", "audio"},
                             {"ssrc", 6},
                             {"roundTripTime", rtt},
                             {"totalRoundTripTime", rtt * n},
                             {"roundTripTimeMeasurements", n}};
        };
        std::istringstream in(events(
            {rr(1000, 0.002, 1), rr(1500, 0.002, 1), rr(2000, 0.002, 2), rr(2500, 0.003, 3)}));
        const Summary s = summarise(in, "test");
        THEN("a new measurement of the same time is a sample; the same report repeated is not") {
            CHECK(s.rtt.count == 3);
            CHECK(s.rtt.mean == Approx(0.007 / 3));
        }
    }
    GIVEN("a line that is not an event") {
        std::istringstream in("{\"type\":\"x\",\"timestamp\":1}\n\n[1,2]\n");
        THEN("BadInput names its line") {
            try {
                summarise(in, "ev.jsonl");
                FAIL("no error");
            } catch (const kms::Error& e) {
                CHECK(e.code() == kms::ErrorCode::BadInput);
                CHECK(std::string(e.what()).rfind("ev.jsonl line 3:", 0) == 0);
            }
        }
    }
}

SCENARIO("Prometheus text: one HELP and TYPE per name, labels escaped, written by rename",
         "[stats][prometheus]") {
    const Samples samples{
        {"kms_a_total", "counter", "A \\ count\nof things", {{"kind", "vi\"deo\\"}}, 3},
        {"kms_b", "gauge", "B", {}, 0.5},
        {"kms_a_total", "counter", "", {{"kind", "audio"}}, 4},
    };
    CHECK(prometheus_text(samples) ==
          "# HELP kms_a_total A \\\\ count\\nof things\n"
          "# TYPE kms_a_total counter\n"
          "kms_a_total{kind=\"vi\\\"deo\\\\\"} 3\n"
          "kms_a_total{kind=\"audio\"} 4\n"
          "# HELP kms_b B\n"
          "# TYPE kms_b gauge\n"
          "kms_b 0.5\n");
    const auto dir = std::filesystem::temp_directory_path() / "kms-stats-prom-test";
    std::filesystem::remove_all(dir);
    std::filesystem::create_directory(dir);
    const std::string path = (dir / "kms.prom").string();
    write_prometheus(path, samples);
    write_prometheus(path, samples);
    CHECK(std::distance(std::filesystem::directory_iterator(dir),
                        std::filesystem::directory_iterator()) == 1);
    struct stat st = {};
    REQUIRE(::stat(path.c_str(), &st) == 0);
    CHECK((st.st_mode & 0777) == 0644);
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    CHECK(text.str() == prometheus_text(samples));
    CHECK_THROWS_AS(write_prometheus((dir / "missing" / "kms.prom").string(), samples), kms::Error);
    std::filesystem::remove_all(dir);
}

SCENARIO("a stream read a line at a time knows when its writer is done", "[stats][summary]") {
    Summariser s("call.jsonl");
    s.add_line(
        R"({"type":"inbound-rtp","timestamp":1000,"kind":"audio","ssrc":1,"packetsReceived":5})");
    CHECK_FALSE(s.stopping());
    s.add_line(R"({"type":"stopping","timestamp":2000,"clean":true})");
    CHECK(s.stopping());
    CHECK_FALSE(s.ended());
    s.add_line(R"({"type":"summary","timestamp":2100})");
    CHECK(s.ended());
    CHECK(s.result().events == 3);
    CHECK(s.status().find("audio 0 kbit/s") != std::string::npos);
}

SCENARIO("jitter is averaged over the reports that carry one", "[stats][summary]") {
    // RTCP-less stretches give inbound-rtp events without jitter: they are not zeros.
    std::istringstream in(events({
        {{"type", "inbound-rtp"},
         {"timestamp", 1000.0},
         {"kind", "audio"},
         {"ssrc", 5},
         {"packetsReceived", 50},
         {"bytesReceived", 5000}},
        {{"type", "inbound-rtp"},
         {"timestamp", 2000.0},
         {"kind", "audio"},
         {"ssrc", 5},
         {"packetsReceived", 100},
         {"bytesReceived", 10000},
         {"jitter", 0.03}},
        {{"type", "inbound-rtp"},
         {"timestamp", 3000.0},
         {"kind", "audio"},
         {"ssrc", 5},
         {"packetsReceived", 150},
         {"bytesReceived", 15000}},
    }));
    const Summary s = summarise(in, "test");
    REQUIRE(s.tracks.size() == 1);
    CHECK(s.tracks[0].jitter_mean == Approx(0.03));
    CHECK(s.tracks[0].jitter_max == Approx(0.03));
}

SCENARIO("Prometheus keeps two streams of a kind apart, by mid", "[stats][summary]") {
    // Two cameras in one call: one series each, not their sum with the worse jitter.
    using Labels = std::vector<std::pair<std::string, std::string>>;
    auto stream = [](double t, int ssrc, const char* mid, int packets, double jitter) {
        return kms::Json{{"type", "inbound-rtp"},
                         {"timestamp", t},
                         {"kind", "video"},
                         {"ssrc", ssrc},
                         {"mid", mid},
                         {"packetsReceived", packets},
                         {"bytesReceived", packets * 1000},
                         {"jitter", jitter}};
    };
    std::istringstream in(events({stream(1000, 1, "video0", 100, 0.001),
                                  stream(1000, 2, "video1", 10, 0.009),
                                  stream(2000, 1, "video0", 200, 0.001),
                                  stream(2000, 2, "video1", 20, 0.009),
                                  {{"type", "inbound-rtp"},
                                   {"timestamp", 2000.0},
                                   {"kind", "audio"},
                                   {"ssrc", 3},
                                   {"packetsReceived", 50},
                                   {"bytesReceived", 5000}}}));
    const Samples samples = summary_samples(summarise(in, "test"));
    auto value = [&](const std::string& name, const Labels& labels) -> std::optional<double> {
        for (const auto& s : samples)
            if (s.name == name && s.labels == labels) return s.value;
        return std::nullopt;
    };
    const std::string received = "kms_inbound_rtp_packets_received_total";
    CHECK(value(received, {{"kind", "video"}, {"mid", "video0"}}) == 200.0);
    CHECK(value(received, {{"kind", "video"}, {"mid", "video1"}}) == 20.0);
    CHECK_FALSE(value(received, {{"kind", "video"}}));
    CHECK(value(received, {{"kind", "audio"}}) == 50.0);  // one stream: the kind says it
    CHECK(value("kms_inbound_rtp_jitter_seconds", {{"kind", "video"}, {"mid", "video0"}}) ==
          Approx(0.001));
    // And plot draws them as two lines, each named and in a colour of its own.
    std::istringstream again(
        events({stream(1000, 1, "video0", 100, 0.001), stream(1000, 2, "video1", 10, 0.009),
                stream(2000, 1, "video0", 200, 0.001), stream(2000, 2, "video1", 20, 0.009)}));
    const std::string svg = plot_svg(summarise(again, "test"));
    auto stroke_of = [&](const std::string& label) {
        const size_t at = svg.find("data-label=\"" + label + "\"");
        REQUIRE(at != std::string::npos);
        const size_t from = svg.find("stroke=\"", at) + 8;
        return svg.substr(from, svg.find('"', from) - from);
    };
    CHECK(stroke_of("received video mid video0") != stroke_of("received video mid video1"));
}
