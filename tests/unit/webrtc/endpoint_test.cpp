// WebRtcEndpoint as a media element: what is connected in decides the offer's m-lines, and two
// endpoints in one process, joined over loopback, carry a file untouched into a recording that
// ffprobe reads back.
#include <catch2/catch.hpp>

#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <set>
#include <sstream>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "kms/loop.hpp"
#include "kms/pipeline.hpp"
#include "kms/sink.hpp"
#include "kms/source.hpp"
#include "kms/webrtc_endpoint.hpp"

namespace {

using kms::MediaUri;

std::string tmpdir() {
    static const std::string d = [] {
        char tmpl[] = "/tmp/kms-endpoint-XXXXXX";
        return std::string(mkdtemp(tmpl));
    }();
    return d;
}

// The kinds of the m-lines of an SDP, in order ("video video audio").
std::string mlines(const std::string& sdp) {
    std::istringstream in(sdp);
    std::string line, out;
    while (std::getline(in, line))
        if (line.rfind("m=", 0) == 0)
            out += (out.empty() ? "" : " ") + line.substr(2, line.find(' ') - 2);
    return out;
}

std::string run(const std::string& cmd) {
    std::string out;
    FILE* p = popen(cmd.c_str(), "r");
    if (!p) return out;
    char buf[4096];
    for (size_t n; (n = fread(buf, 1, sizeof buf, p)) > 0;) out.append(buf, n);
    pclose(p);
    return out;
}

kms::WebRtcOptions options(kms::Role role) {
    kms::WebRtcOptions o;
    o.role = role;
    o.ice.bind = {"127.0.0.1"};  // loopback only (testing.md, the network rule)
    o.stats_interval_s = 0;
    return o;
}

// The offer an offerer makes with these sources connected in.
std::string offer_for(const std::vector<std::string>& sends, kms::WebRtcOptions o) {
    kms::Loop loop;
    kms::EventWriter events;
    std::string offer;
    kms::WebRtcEndpoint::Callbacks cb;
    cb.local_description = [&](const std::string& sdp) {
        offer = sdp;
        loop.quit();
    };
    kms::WebRtcEndpoint ep(o, cb, events);
    std::vector<std::unique_ptr<kms::Source>> sources;
    kms::Pipeline p("offer-test");
    for (const auto& s : sends) {
        sources.push_back(std::make_unique<kms::Source>(kms::parse_source_uri(s)));
        p.connect(*sources.back(), ep);
    }
    p.add(ep);
    p.start();
    ep.start();
    loop.after(10000, [&] { loop.quit(); });
    loop.run();
    return offer;
}

}  // namespace

SCENARIO("an endpoint offers an m-line per kind of each source connected in, in order",
         "[webrtc][elements]") {
    CHECK(mlines(offer_for({"test:video", "test:av"}, options(kms::Role::Offerer))) ==
          "video video audio");
    CHECK(mlines(offer_for({"test:audio"}, options(kms::Role::Offerer))) == "video audio");
    kms::WebRtcOptions no_video = options(kms::Role::Offerer);
    no_video.video = false;
    CHECK(mlines(offer_for({"test:audio"}, no_video)) == "audio");
}

SCENARIO("a file sent through one endpoint arrives untouched in the other's recording",
         "[webrtc][elements]") {
    const std::string dir = tmpdir();
    const std::string file = dir + "/in.webm", rec = dir + "/rec.mkv";
    REQUIRE(std::system(("gst-launch-1.0 -q -e videotestsrc num-buffers=60 pattern=ball ! "
                         "video/x-raw,width=320,height=240,framerate=30/1 ! vp8enc deadline=1 ! "
                         "webmmux name=m ! filesink location=" +
                         file + " audiotestsrc num-buffers=100 ! opusenc ! m.")
                            .c_str()) == 0);
    kms::Loop loop;
    kms::EventWriter off_events, ans_events;
    off_events.open(dir + "/off.jsonl");
    ans_events.open(dir + "/ans.jsonl");
    std::unique_ptr<kms::WebRtcEndpoint> off, ans;
    bool off_ended = false, ans_done = false;
    std::string failure;

    // Offerer: the file, held until the peer can decrypt it, then sent as it is.
    kms::SourceOptions so;
    so.realtime = true;
    kms::Source source(kms::parse_source_uri(file), so);
    source.hold();
    kms::Sink discard(kms::parse_sink_uri("null:"));
    kms::Pipeline off_pipe("offerer", {{}, [&](const kms::Error& e) { failure = e.what(); }});
    kms::WebRtcEndpoint::Callbacks ocb;
    ocb.local_description = [&](const std::string& sdp) { ans->set_remote_description(sdp); };
    ocb.ready_to_send = [&] { source.release(); };
    ocb.ended = [&](const kms::CallEnd& end) {
        off_ended = true;
        if (!end.clean) failure = end.message;
        off_pipe.stop();
        ans->stop();
    };
    off = std::make_unique<kms::WebRtcEndpoint>(options(kms::Role::Offerer), ocb, off_events);

    // Answerer: receives only, into a Matroska file.
    kms::Sink sink(kms::parse_sink_uri(rec));
    kms::Pipeline ans_pipe("answerer", {[&] {
                                            ans_done = true;
                                            loop.quit();
                                        },
                                        [&](const kms::Error& e) {
                                            failure = e.what();
                                            loop.quit();
                                        }});
    kms::WebRtcOptions ao = options(kms::Role::Answerer);
    ao.direction = kms::MediaDirection::RecvOnly;
    kms::WebRtcEndpoint::Callbacks acb;
    acb.local_description = [&](const std::string& sdp) { off->set_remote_description(sdp); };
    acb.ended = [&](const kms::CallEnd&) { ans_pipe.stop(); };
    ans = std::make_unique<kms::WebRtcEndpoint>(ao, acb, ans_events);

    off_pipe.connect(source, *off);
    off_pipe.connect(*off, discard);
    ans_pipe.connect(*ans, sink);
    off_pipe.start();
    ans_pipe.start();
    ans->start();
    off->start();
    loop.after(20000, [&] {
        failure = "timed out";
        loop.quit();
    });
    loop.run();
    INFO(failure);
    CHECK(failure.empty());
    CHECK(off_ended);
    CHECK(ans_done);

    // The offerer sent both streams as they were in the file.
    std::ifstream in(dir + "/off.jsonl");
    std::string line;
    int passthrough = 0;
    while (std::getline(in, line)) {
        auto j = nlohmann::json::parse(line, nullptr, false);
        if (!j.is_discarded() && j.value("type", "") == "input" && j.value("passthrough", false))
            ++passthrough;
    }
    CHECK(passthrough == 2);

    // ffprobe, not kms, reads the recording: VP8 and Opus, most of the file's 60 frames.
    const std::string out =
        run("ffprobe -v error -count_frames -show_entries stream=codec_name,nb_read_frames "
            "-of json '" +
            rec + "'");
    auto j = nlohmann::json::parse(out, nullptr, false);
    REQUIRE_FALSE(j.is_discarded());
    std::map<std::string, long> frames;
    for (const auto& s : j["streams"])
        frames[s.value("codec_name", "")] = std::stol(s.value("nb_read_frames", "0"));
    CHECK(frames["vp8"] >= 50);
    CHECK(frames["opus"] >= 50);

    // Untouched: the recording's video packets are the file's, byte for byte (ffmpeg's framemd5
    // of each stream copied as it is); a re-encode would share none.
    auto md5s = [](const std::string& path) {
        std::set<std::string> out;
        std::istringstream in(run("ffmpeg -v error -i '" + path +
                                  "' -map 0:v:0 -c copy -f framemd5 - | grep -v '^#'"));
        for (std::string line; std::getline(in, line);)
            out.insert(line.substr(line.rfind(',') + 1));
        return out;
    };
    const std::set<std::string> sent = md5s(file), got = md5s(rec);
    size_t same = 0;
    for (const auto& m : got) same += sent.count(m);
    CHECK(same >= 50);
}
