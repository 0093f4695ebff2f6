// The media elements on their own: Source, Sink and connect(), with files made by gst-launch
// and read back by ffprobe (independent of kms).
#include <catch2/catch.hpp>

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <string>

#include <nlohmann/json.hpp>

#include "kms/loop.hpp"
#include "kms/pipeline.hpp"
#include "kms/sink.hpp"
#include "kms/source.hpp"

namespace {

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    size_t n;
    while ((n = fread(buf, 1, sizeof buf, p)) > 0) out.append(buf, n);
    pclose(p);
    return out;
}

// A temporary folder with the fixtures, made once.
const std::string& dir() {
    static const std::string d = [] {
        char tmpl[] = "/tmp/kms-elements-XXXXXX";
        std::string path = mkdtemp(tmpl);
        const std::string v =
            "videotestsrc num-buffers=60 ! video/x-raw,width=320,height=240,"
            "framerate=30/1 ! ";
        const std::string a = "audiotestsrc num-buffers=100 samplesperbuffer=960 ! ";
        const std::string q = "gst-launch-1.0 -q ";
        std::string cmds[] = {
            q + v + "vp8enc deadline=1 ! webmmux name=m ! filesink location=" + path + "/av.webm " +
                a + "opusenc ! m.",
            q + v + "x264enc speed-preset=ultrafast ! h264parse ! mp4mux name=m ! filesink " +
                "location=" + path + "/av.mp4 " + a + "avenc_aac ! aacparse ! m.",
            q + a + "opusenc ! oggmux ! filesink location=" + path + "/a.ogg",
        };
        for (const auto& c : cmds)
            if (std::system(c.c_str()) != 0) FAIL("fixture: " << c);
        return path;
    }();
    return d;
}

// ffprobe's view of a file: codec_type -> codec_name, and the duration.
struct Probe {
    std::map<std::string, std::string> codecs;
    double duration = 0;
};

Probe ffprobe(const std::string& path) {
    const std::string out =
        run("ffprobe -v error -show_entries stream=codec_type,codec_name:format=duration "
            "-of json '" +
            path + "'");
    Probe p;
    auto j = nlohmann::json::parse(out, nullptr, false);
    if (j.is_discarded()) return p;
    for (const auto& s : j.value("streams", nlohmann::json::array()))
        p.codecs[s.value("codec_type", "")] = s.value("codec_name", "");
    if (j.contains("format") && j["format"].contains("duration"))
        p.duration = std::stod(j["format"]["duration"].get<std::string>());
    return p;
}

std::map<std::string, kms::LinkInfo> by_kind(const std::vector<kms::LinkInfo>& links) {
    std::map<std::string, kms::LinkInfo> out;
    for (const auto& l : links) out[l.kind] = l;
    return out;
}

bool has(const std::vector<std::string>& v, const std::string& x) {
    return std::find(v.begin(), v.end(), x) != v.end();
}

struct Outcome {
    bool ended = false;
    std::string error;
    kms::ErrorCode code = kms::ErrorCode::Runtime;
    std::vector<std::string> warnings;
};

// Runs from -> to until the source ends, or for stop_after_ms and then stop(); at most 20 s.
Outcome run_pipeline(kms::Pipeline*& out, kms::Element& from, kms::Element& to,
                     unsigned stop_after_ms, std::vector<kms::LinkInfo>* links = nullptr,
                     kms::Pipeline::Transcode transcode = kms::Pipeline::Transcode::Auto) {
    kms::Loop loop;
    Outcome o;
    kms::Pipeline p("test", {[&] {
                                 o.ended = true;
                                 loop.quit();
                             },
                             [&](const kms::Error& e) {
                                 o.error = e.what();
                                 o.code = e.code();
                                 loop.quit();
                             },
                             [&](const std::string& w) { o.warnings.push_back(w); }});
    out = &p;
    p.connect(from, to, transcode);
    p.start();
    if (stop_after_ms) loop.after(stop_after_ms, [&] { p.stop(); });
    loop.after(20000, [&] {
        o.error = "timed out";
        loop.quit();
    });
    loop.run();
    if (links) *links = p.links();
    out = nullptr;
    return o;
}

Outcome run_pipeline(kms::Element& from, kms::Element& to, unsigned stop_after_ms,
                     std::vector<kms::LinkInfo>* links = nullptr,
                     kms::Pipeline::Transcode transcode = kms::Pipeline::Transcode::Auto) {
    kms::Pipeline* p = nullptr;
    return run_pipeline(p, from, to, stop_after_ms, links, transcode);
}

std::vector<std::pair<std::string, std::string>> streams_of(const kms::Element& e) {
    std::vector<std::pair<std::string, std::string>> out;
    for (const auto& s : e.streams()) out.emplace_back(s.kind, s.media);
    return out;
}

using Streams = std::vector<std::pair<std::string, std::string>>;

}  // namespace

TEST_CASE("a Source knows its streams before it runs", "[elements][source]") {
    using kms::parse_source_uri;
    CHECK(streams_of(kms::Source(parse_source_uri("test:av"))) ==
          Streams{{"video", "video/x-raw"}, {"audio", "audio/x-raw"}});
    CHECK(streams_of(kms::Source(parse_source_uri("test:audio"))) ==
          Streams{{"audio", "audio/x-raw"}});
    CHECK(streams_of(kms::Source(parse_source_uri(dir() + "/av.webm"))) ==
          Streams{{"video", "video/x-vp8"}, {"audio", "audio/x-opus"}});
    CHECK(streams_of(kms::Source(parse_source_uri(dir() + "/av.mp4"))) ==
          Streams{{"video", "video/x-h264"}, {"audio", "audio/mpeg"}});
    CHECK(streams_of(kms::Source(parse_source_uri(dir() + "/a.ogg"))) ==
          Streams{{"audio", "audio/x-opus"}});
    kms::SourceOptions only_video;
    only_video.kinds = {"video"};
    CHECK(streams_of(kms::Source(parse_source_uri(dir() + "/av.webm"), only_video)) ==
          Streams{{"video", "video/x-vp8"}});
    // stdin cannot be probed without eating its start.
    CHECK(kms::Source(parse_source_uri("-")).streams().empty());
}

TEST_CASE("a Source refuses what it cannot read, in the user's words", "[elements][source]") {
    try {
        kms::Source s(kms::parse_source_uri(dir() + "/missing.webm"));
        FAIL("no error");
    } catch (const kms::Error& e) {
        CHECK(e.code() == kms::ErrorCode::BadInput);
        CHECK(std::string(e.what()).find("missing.webm: No such file") != std::string::npos);
    }
    const std::string junk = dir() + "/junk.webm";
    FILE* f = std::fopen(junk.c_str(), "w");
    std::fputs("not media at all", f);
    std::fclose(f);
    CHECK_THROWS_AS(kms::Source(kms::parse_source_uri(junk)), kms::Error);
    // A Matroska header and nothing after it: the demuxer alone finds no stream, and the
    // discoverer then says what is wrong.
    const std::string bare = dir() + "/bare.mkv";
    f = std::fopen(bare.c_str(), "w");
    std::fputs("\x1a\x45\xdf\xa3 and then nothing a demuxer can use", f);
    std::fclose(f);
    try {
        kms::Source s(kms::parse_source_uri(bare));
        FAIL("no error");
    } catch (const kms::Error& e) {
        CHECK(e.code() == kms::ErrorCode::BadInput);
        CHECK(std::string(e.what()).find("bare.mkv: ") != std::string::npos);
    }
}

TEST_CASE("a Sink writes WebM, MKV and MP4 that ffprobe reads", "[elements][sink]") {
    struct Case {
        const char* name;
        const char* video;
        const char* audio;
    } cases[] = {
        {"out.webm", "vp8", "opus"}, {"out.mkv", "vp8", "opus"}, {"out.mp4", "h264", "aac"}};
    for (const auto& c : cases) {
        SECTION(c.name) {
            const std::string path = dir() + "/" + c.name;
            kms::Source src(kms::parse_source_uri("test:av"));
            kms::Sink sink(kms::parse_sink_uri(path));
            std::vector<kms::LinkInfo> links;
            Outcome o = run_pipeline(src, sink, 1500, &links);
            REQUIRE(o.error == "");
            CHECK(o.ended);
            Probe p = ffprobe(path);
            CHECK(p.codecs["video"] == c.video);
            CHECK(p.codecs["audio"] == c.audio);
            CHECK(p.duration > 1.0);
            CHECK(p.duration < 3.0);
            // Raw test media is encoded: nothing passes through.
            for (const auto& l : links) CHECK_FALSE(l.passthrough);
        }
    }
}

TEST_CASE("connect() passes through what fits and transcodes only what does not",
          "[elements][connect]") {
    SECTION("WebM into Matroska: both streams untouched") {
        kms::Source src(kms::parse_source_uri(dir() + "/av.webm"));
        kms::Sink sink(kms::parse_sink_uri(dir() + "/pass.mkv"));
        std::vector<kms::LinkInfo> links;
        Outcome o = run_pipeline(src, sink, 0, &links);
        REQUIRE(o.error == "");
        CHECK(o.ended);
        auto l = by_kind(links);
        REQUIRE(l.size() == 2);
        CHECK(l["video"].passthrough);
        CHECK(l["audio"].passthrough);
        // Nothing between them: a direct link.
        CHECK(l["video"].elements.empty());
        CHECK(l["audio"].elements.empty());
        CHECK(o.warnings.empty());
        Probe p = ffprobe(dir() + "/pass.mkv");
        CHECK(p.codecs["video"] == "vp8");
        CHECK(p.codecs["audio"] == "opus");
        CHECK(p.duration == Approx(2.0).margin(0.2));
    }
    SECTION("WebM into MP4: VP8 becomes H.264, Opus stays") {
        kms::Source src(kms::parse_source_uri(dir() + "/av.webm"));
        kms::Sink sink(kms::parse_sink_uri(dir() + "/trans.mp4"));
        std::vector<kms::LinkInfo> links;
        Outcome o = run_pipeline(src, sink, 0, &links);
        REQUIRE(o.error == "");
        auto l = by_kind(links);
        CHECK_FALSE(l["video"].passthrough);
        CHECK(has(l["video"].elements, "vp8dec"));
        CHECK(has(l["video"].elements, "x264enc"));
        CHECK(l["video"].from == "video/x-vp8");
        CHECK(l["video"].to == "video/x-h264");
        CHECK(l["audio"].passthrough);
        CHECK_FALSE(has(l["audio"].elements, "opusdec"));
        REQUIRE(o.warnings.size() == 1);
        CHECK(o.warnings[0].find("transcoding video (video/x-vp8)") != std::string::npos);
        Probe p = ffprobe(dir() + "/trans.mp4");
        CHECK(p.codecs["video"] == "h264");
        CHECK(p.codecs["audio"] == "opus");
    }
    SECTION("MP4 into WebM: both transcoded") {
        kms::Source src(kms::parse_source_uri(dir() + "/av.mp4"));
        kms::Sink sink(kms::parse_sink_uri(dir() + "/trans.webm"));
        std::vector<kms::LinkInfo> links;
        Outcome o = run_pipeline(src, sink, 0, &links);
        REQUIRE(o.error == "");
        auto l = by_kind(links);
        CHECK(has(l["video"].elements, "vp8enc"));
        CHECK(has(l["audio"].elements, "opusenc"));
        Probe p = ffprobe(dir() + "/trans.webm");
        CHECK(p.codecs["video"] == "vp8");
        CHECK(p.codecs["audio"] == "opus");
    }
    SECTION("Transcode::Force decodes even what fits; Never refuses what does not") {
        kms::Source src(kms::parse_source_uri(dir() + "/av.webm"));
        kms::Sink sink(kms::parse_sink_uri(dir() + "/forced.mkv"));
        std::vector<kms::LinkInfo> links;
        Outcome o = run_pipeline(src, sink, 0, &links, kms::Pipeline::Transcode::Force);
        REQUIRE(o.error == "");
        auto l = by_kind(links);
        CHECK_FALSE(l["video"].passthrough);
        CHECK(has(l["video"].elements, "vp8dec"));
        CHECK(has(l["video"].elements, "vp8enc"));
        CHECK(has(l["audio"].elements, "opusenc"));
        // Re-encoded: the file is not the source's packets, yet still VP8 and Opus.
        Probe p = ffprobe(dir() + "/forced.mkv");
        CHECK(p.codecs["video"] == "vp8");

        kms::Source src2(kms::parse_source_uri(dir() + "/av.webm"));
        kms::Sink sink2(kms::parse_sink_uri(dir() + "/never.mp4"));
        Outcome n = run_pipeline(src2, sink2, 0, nullptr, kms::Pipeline::Transcode::Never);
        CHECK(n.code == kms::ErrorCode::Negotiation);
        CHECK(n.error.find("video/x-vp8") != std::string::npos);
    }
    SECTION("Ogg audio into null: nothing decoded") {
        kms::Source src(kms::parse_source_uri(dir() + "/a.ogg"));
        kms::Sink sink(kms::parse_sink_uri("null:"));
        std::vector<kms::LinkInfo> links;
        Outcome o = run_pipeline(src, sink, 0, &links);
        REQUIRE(o.error == "");
        CHECK(o.ended);
        REQUIRE(links.size() == 1);
        CHECK(links[0].passthrough);
    }
    SECTION("WebM into Ogg: the video is left out, with a warning") {
        kms::Source src(kms::parse_source_uri(dir() + "/av.webm"));
        kms::Sink sink(kms::parse_sink_uri(dir() + "/audio.ogg"));
        Outcome o = run_pipeline(src, sink, 0);
        REQUIRE(o.error == "");
        Probe p = ffprobe(dir() + "/audio.ogg");
        CHECK(p.codecs.count("video") == 0);
        CHECK(p.codecs["audio"] == "opus");
    }
}

TEST_CASE("a Source reads a Matroska stream on stdin", "[elements][source]") {
    const int saved = dup(0);
    const int fd = open((dir() + "/av.webm").c_str(), O_RDONLY);
    REQUIRE(fd >= 0);
    dup2(fd, 0);
    close(fd);
    Outcome o;
    std::vector<kms::LinkInfo> links;
    {
        kms::Source src(kms::parse_source_uri("-"));
        kms::Sink sink(kms::parse_sink_uri(dir() + "/stdin.mkv"));
        o = run_pipeline(src, sink, 0, &links);
    }
    dup2(saved, 0);
    close(saved);
    REQUIRE(o.error == "");
    CHECK(o.ended);
    CHECK(links.size() == 2);
    Probe p = ffprobe(dir() + "/stdin.mkv");
    CHECK(p.codecs["video"] == "vp8");
    CHECK(p.codecs["audio"] == "opus");
}

TEST_CASE("a Sink refuses a path it cannot write before anything starts", "[elements][sink]") {
    try {
        kms::Sink s(kms::parse_sink_uri("/nonexistent-dir/x.webm"));
        FAIL("no error");
    } catch (const kms::Error& e) {
        CHECK(e.code() == kms::ErrorCode::Io);
        CHECK(std::string(e.what()) ==
              "/nonexistent-dir/x.webm: cannot write: No such file or directory");
    }
    try {
        kms::Sink s(kms::parse_sink_uri(dir() + "/x.avi"));
        FAIL("no error");
    } catch (const kms::Error& e) {
        CHECK(e.code() == kms::ErrorCode::InvalidArgument);
    }
    CHECK(kms::Sink(kms::parse_sink_uri(dir() + "/y.webm")).takes_as_is("video/x-vp8"));
    CHECK_FALSE(kms::Sink(kms::parse_sink_uri(dir() + "/y.webm")).takes_as_is("video/x-h264"));
    CHECK(kms::Sink(kms::parse_sink_uri(dir() + "/y.mp4")).takes_as_is("video/x-h264"));
    CHECK_FALSE(kms::Sink(kms::parse_sink_uri(dir() + "/y.mkv")).takes_as_is("video/x-raw"));
}
