// kms-filter: media filters and analytics in a Unix pipe. A Source joined to a Filter joined to
// a Sink: only the kinds a filter changes are decoded, and they are encoded back into the codec
// they came in; analytics filters watch a decoded copy and write events.
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <optional>

#include "common/output.hpp"
#include "common/rtp_events.hpp"
#include "common/tool.hpp"
#include "kms/filter.hpp"
#include "kms/pipeline.hpp"
#include "kms/runtime.hpp"
#include "kms/sink.hpp"
#include "kms/source.hpp"

namespace {

using namespace kms;
using namespace kms::app;

constexpr const char* kExamples =
    "  # mirror a live call on its way to a recording\n"
    "  kms-call answer -o - | kms-filter --live flip | kms-record - -o call.webm\n"
    "  # any gst-launch fragment, as many elements as it likes\n"
    "  kms-filter -i in.webm -o out.webm 'videoflip method=horizontal-flip ! videobalance "
    "saturation=0'\n"
    "  # named filters apply in order\n"
    "  kms-filter -i talk.mkv -o small.mkv scale 640x360 fps 15 text 'draft' valign=top\n"
    "  # QR codes seen by a camera, as JSON lines; the video is not decoded for the output\n"
    "  kms-filter -i rtsp://cam.local/stream -o null: qr | jq -r .text\n"
    "  # how loud a recording is, ten times a second\n"
    "  kms-filter -i meeting.webm -o null: level\n"
    "  # the named filters\n"
    "  kms-filter --list\n";

struct FilterCli {
    std::vector<std::string> filters;
    std::string input = "-";
    std::string output = "-";
    std::string format;
    std::string video_codec;
    std::string audio_codec;
    unsigned max_bitrate = 0;
    bool live = false;
    bool list = false;
    std::string background;
    double stats_interval = 1;
};

void list_filters() {
    std::printf("Named filters (kms-filter NAME [ARGS] [KEY=VALUE...]):\n");
    for (const auto& f : named_filters()) {
        const std::string head = std::string(f.name) + (*f.args ? " " : "") + f.args;
        std::printf("  %-16s %s\n", head.c_str(), f.summary);
    }
    std::printf(
        "Anything else is a gst-launch fragment: 'videoflip method=clockwise ! "
        "videobalance hue=0.5'\n");
}

bool live_kind(MediaUri::Kind k) {
    switch (k) {
        case MediaUri::Kind::Test:
        case MediaUri::Kind::V4l2:
        case MediaUri::Kind::Pulse:
        case MediaUri::Kind::Alsa:
        case MediaUri::Kind::Rtsp:
        case MediaUri::Kind::Rtp:
        case MediaUri::Kind::Whep:
            return true;
        default:
            return false;
    }
}

int run_filter(Tool& tool, const FilterCli& o) {
    if (o.list) {
        list_filters();
        return kOk;
    }
    if (o.filters.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "no filter given (kms-filter --list shows the named ones)");
    FilterOptions fopt;
    fopt.stages = parse_filters(o.filters, o.background);
    const MediaUri in = parse_source_uri(o.input);
    const MediaUri out = parse_sink_uri(o.output);
    const bool to_stdout = out.kind == MediaUri::Kind::Stdio;
    if (to_stdout && isatty(STDOUT_FILENO))
        throw Error(ErrorCode::InvalidArgument,
                    "stdout is a terminal: give -o FILE, -o null: or -o display:, or pipe it");
    if (to_stdout && (tool.common().json || tool.common().events == "-"))
        throw Error(ErrorCode::InvalidArgument,
                    "--json or --events - and -o -: stdout carries the media");
    fopt.live = o.live || live_kind(in.kind);
    fopt.video_codec = o.video_codec;
    fopt.audio_codec = o.audio_codec;
    fopt.max_video_kbps = o.max_bitrate;
    if (out.kind == MediaUri::Kind::Display || out.kind == MediaUri::Kind::Null) {
        // Nothing to encode for: display: shows raw frames, null: discards them.
        if (fopt.video_codec.empty()) fopt.video_codec = "raw";
        if (fopt.audio_codec.empty()) fopt.audio_codec = "raw";
    }
    // Events go to stdout unless stdout carries the media or the --json result.
    EventWriter& events = tool.events();
    if (!events.enabled() && !to_stdout && !tool.common().json) events.open("-");

    Loop loop;
    unsigned long long event_count = 0;
    Filter filter(fopt, [&](const std::string& type, const Json& fields) {
        ++event_count;
        events.emit(type, fields);
    });
    Source source(in);
    SinkOptions kopt;
    kopt.format = o.format == "mkv" ? "matroska" : o.format;
    Sink sink(out, kopt);
    // A codec the container cannot hold is refused now: the sink would otherwise transcode it
    // again into one it takes (--video-codec h264 into .webm gave VP8, and said nothing).
    const std::pair<const std::string*, const char*> asked[] = {{&o.video_codec, "--video-codec"},
                                                                {&o.audio_codec, "--audio-codec"}};
    for (const auto& [codec, option] : asked)
        if (!codec->empty() && !sink.container().empty() && !sink.takes_codec(*codec))
            throw Error(ErrorCode::InvalidArgument,
                        std::string(option) + " " + *codec + " does not go into " +
                            sink.container() + " (" + out.redacted() + "); .mkv takes every codec");

    std::optional<Error> failure;
    std::vector<LinkInfo> links;
    Pipeline::Callbacks cb;
    cb.ended = [&] { loop.quit(); };
    cb.failed = [&](const Error& e) {
        if (!failure) failure = e;
        loop.quit();
    };
    cb.warning = [&](const std::string& message) {
        if (message.rfind("transcoding ", 0) == 0) return;  // filtering decodes by design
        tool.end_progress();
        tool.say(0, "warning: " + message);
        events.emit("warning", Json{{"message", message}});
    };
    cb.linked = [&](const LinkInfo& l) { links.push_back(l); };
    Pipeline pipeline(tool.name(), cb);
    pipeline.connect(source, filter);
    pipeline.connect(filter, sink);
    // A signal and the end of -t stop the same way: the pipeline drains, with a deadline.
    auto stop = [&] {
        tool.stop_deadline(10.0, kOutput, "the output did not finish within 10 s of the stop");
        pipeline.stop();
    };
    tool.handle_signals(loop, stop);
    // -t: media time for a file or stdin (read faster or slower than the clock; ffmpeg's -t),
    // the clock for live input and http(s):// (often live; frames may carry no time).
    if (tool.common().duration > 0 && !fopt.live && in.kind != MediaUri::Kind::Http)
        pipeline.set_media_limit(tool.common().duration, stop);
    else if (tool.common().duration > 0)
        loop.after(static_cast<unsigned>(tool.common().duration * 1000), stop);
    // Dropped frames (live input the filter cannot keep up with), reported as they grow.
    unsigned long long reported_drops = 0;
    auto report_drops = [&] {
        const unsigned long long d = filter.dropped();
        if (d <= reported_drops) return;
        events.emit("dropped", Json{{"frames", d}, {"new", d - reported_drops}});
        if (reported_drops == 0)
            tool.say(0,
                     "warning: the filter cannot keep up with the live input; frames are "
                     "skipped (dropped events count them)");
        reported_drops = d;
    };
    unsigned ticks = 0;
    loop.every(1000, [&] {
        ++ticks;
        report_drops();
        // Video frames; audio comes in buffers of any length, counted only when alone.
        char line[120];
        const unsigned long long video = filter.frames("video");
        std::snprintf(line, sizeof line, "%02u:%02u  %llu %s", ticks / 60, ticks % 60,
                      video ? video : filter.frames("audio"),
                      video ? "video frames" : "audio buffers");
        tool.progress(line);
        return true;
    });
    // A camera's streams in W3C inbound-rtp terms, as kms-record reports them.
    const bool rtp_source = in.kind == MediaUri::Kind::Rtsp || in.kind == MediaUri::Kind::Rtp;
    if (rtp_source && o.stats_interval > 0)
        loop.every(stats_period_ms(o.stats_interval), [&] {
            emit_inbound_rtp(events, source, false);
            return true;
        });
    tool.say(1, "filtering " + in.redacted() + " into " + out.redacted());
    pipeline.start();
    loop.run();
    tool.end_progress();
    report_drops();  // the last events agree with the summary's count
    if (rtp_source && o.stats_interval > 0) emit_inbound_rtp(events, source, true);

    Output res(tool.common().json, tool.common().json ? stdout : stderr);
    if (tool.common().json || tool.common().verbose > 0) {
        res.field("input", "input", in.redacted());
        res.field("output", "output", out.redacted());
        res.field("videoFrames", "video frames", filter.frames("video"));
        res.field("audioFrames", "audio frames", filter.frames("audio"));
        res.field("dropped", "dropped frames", filter.dropped());
        res.field("events", "filter events", event_count);  // what the filters said
        Json tracks = Json::array();
        for (const auto& l : links)
            tracks.push_back(Json{{"kind", l.kind}, {"from", l.from}, {"to", l.to}});
        res.json_only("links", tracks);
        if (failure) res.field("error", "error", failure->what());
        res.finish();
        tool.result_printed();
    }
    if (failure) throw *failure;
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    Tool tool({"kms-filter",
               "kms-filter: filter media in a pipe (named filters or any gst-launch fragment), "
               "with analytics as JSON events",
               kExamples});
    tool.catch_signals();
    CLI::App& app = tool.app();
    FilterCli o;
    app.add_option("filter", o.filters,
                   "Named filters with their arguments (kms-filter --list), or gst-launch "
                   "fragments, applied in order")
        ->option_text("FILTER...");
    app.add_option("-i,--input", o.input,
                   "What to filter: a file, - (Matroska on stdin, the default), test:av, "
                   "rtsp://, rtp://ADDR:PORT?sdp=FILE, http(s)://, v4l2:, pulse:, alsa:")
        ->option_text("URI");
    app.add_option("-o,--output", o.output,
                   "Where filtered media goes: a file (.webm .mkv .mp4), - (Matroska on stdout, "
                   "the default), null: or display:")
        ->option_text("URI");
    app.add_option("--format", o.format, "Container, when the extension does not say")
        ->check(CLI::IsMember({"webm", "mkv", "mp4", "ogg"}));
    app.add_option("--video-codec", o.video_codec,
                   "Encode filtered video as vp8, vp9, h264 or h265 (default: the input's)")
        ->check(CLI::IsMember({"vp8", "vp9", "h264", "h265"}));
    app.add_option("--audio-codec", o.audio_codec,
                   "Encode filtered audio as opus, vorbis or aac (default: the input's)")
        ->check(CLI::IsMember({"opus", "vorbis", "aac"}));
    app.add_option("--max-bitrate", o.max_bitrate,
                   "Encode filtered video at KBPS kbit/s (the encoder's target; at a few tens "
                   "of kbit/s it overshoots)")
        ->check(CLI::Range(1u, 1000000u))
        ->option_text("KBPS");
    app.add_flag("--live", o.live,
                 "Treat the input as live: drop frames (reported) rather than fall behind; "
                 "the default for rtsp://, rtp://, test: and devices");
    app.add_option("--background", o.background,
                   "The picture chroma puts behind what it keys out (PNG or JPEG)")
        ->option_text("FILE");
    app.add_flag("--list", o.list, "List the named filters and exit");
    add_stats_interval_option(app, o.stats_interval);
    // --json with -o - is refused before anything is written: stdout is free for the error.
    tool.json_errors();
    const int rc = tool.run(argc, argv, [&] { return run_filter(tool, o); });
    std::fflush(stdout);
    std::fflush(stderr);
    // A reader of stdin may still be blocked; it holds nothing that needs closing.
    kms::remove_registered_files();  // what a sink still alive made and never wrote to
    _exit(rc);
}
