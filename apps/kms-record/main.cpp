// kms-record: recordings that cron can trust. A Source joined to a Sink: passthrough when the
// source's codecs fit the container, a transcode that says so when they do not.
#include <spawn.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <ctime>
#include <functional>
#include <map>
#include <optional>

#include "common/control.hpp"
#include "common/output.hpp"
#include "common/rtp_events.hpp"
#include "common/tool.hpp"
#include "kms/pipeline.hpp"
#include "kms/probe.hpp"
#include "kms/runtime.hpp"
#include "kms/sink.hpp"
#include "kms/source.hpp"
#include "retention.hpp"

namespace {

using namespace kms;
using namespace kms::app;

// A stream with no media for this long is reported (media-flow "stalled", a warning), or
// for --media-timeout when that is shorter. A live source that sends nothing for 5 s has a
// problem; MediaMTX gives up on a silent source after 10 s (readTimeout).
constexpr double kStallSeconds = 5;

constexpr const char* kExamples =
    "  # ten seconds of a test pattern and tone\n"
    "  kms-record -t 10 test:av -o test.webm\n"
    "  # a file into another container, untouched if its codecs fit\n"
    "  kms-record talk.webm -o talk.mkv\n"
    "  # an hour of an RTSP camera over TCP, its H.264 untouched\n"
    "  kms-record -t 3600 --rtsp-transport tcp rtsp://user:pass@cam.local/stream -o cam.mp4\n"
    "  # hourly files of a camera, a week of them kept\n"
    "  kms-record --segment 3600 --max-files 168 rtsp://cam.local/stream -o 'cam-%Y%m%d-%H.mkv'\n"
    "  # a live call, piped\n"
    "  kms-call answer -o - | kms-record - -o call.mkv\n"
    "  # from cron: a minute of a stream, failing if nothing comes within 10 s\n"
    "  kms-record -t 60 --media-timeout 10 https://example.org/live.webm -o /srv/rec/live.mkv\n";

struct RecordOptions {
    std::string source;
    std::string output;
    std::string format;
    bool transcode = false;
    bool no_transcode = false;
    bool no_audio = false;
    bool no_video = false;
    bool no_overwrite = false;
    double media_timeout = 0;
    double stats_interval = 1;
    std::string rtsp_transport;
    double segment = 0;
    std::string segment_size;
    unsigned max_files = 0;
    std::string max_total_size;
    std::string max_size;
    std::string min_free = "8M";
    std::vector<std::string> tracks;
    double tracks_timeout = 5;
    std::string on_segment;
    std::string control;
};

// Runs the --on-segment command through /bin/sh with the segment in its environment, and does
// not wait for it: the recording goes on. The 1 s timer reaps it. The environment is made here,
// before the child exists: between fork() and exec() a child of this many-threaded process may
// call nothing that allocates (another thread may have held malloc's lock at the fork), so
// posix_spawn rather than fork, setenv, exec. Returns the reason when it could not start.
std::string run_hook(const std::string& cmd, const Segment& s) {
    char d[32];
    std::snprintf(d, sizeof d, "%.3f", s.duration_s);
    const std::vector<std::pair<std::string, std::string>> ours = {
        {"KMS_SEGMENT_PATH", s.path},
        {"KMS_SEGMENT_INDEX", std::to_string(s.index)},
        {"KMS_SEGMENT_DURATION", d},
        {"KMS_SEGMENT_BYTES", std::to_string(s.bytes)}};
    std::vector<std::string> env;
    for (char** e = environ; *e; ++e)
        if (std::strncmp(*e, "KMS_SEGMENT_", 12) != 0) env.emplace_back(*e);
    for (const auto& [k, v] : ours) env.push_back(k + "=" + v);
    std::vector<char*> envp;
    for (auto& e : env) envp.push_back(e.data());
    envp.push_back(nullptr);
    std::string sh = "sh", dash_c = "-c", command = cmd;
    char* argv[] = {sh.data(), dash_c.data(), command.data(), nullptr};
    pid_t pid = 0;
    const int rc = ::posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, envp.data());
    return rc == 0 ? std::string() : std::strerror(rc);
}

const char* format_container(const std::string& f) {
    return f == "mkv" ? "matroska" : f.c_str();
}

// A track as kms-stats describes one: its caps name (media) and the codec as people say it,
// lower case, as in the inbound stats: video/x-vp8 is vp8, audio/x-raw in a WAV file is pcm.
Json track_json(const LinkInfo& l) {
    std::string codec = l.to.substr(l.to.find('/') + 1);
    if (codec.rfind("x-", 0) == 0) codec.erase(0, 2);
    if (codec == "raw") codec = l.kind == "audio" ? "pcm" : "rawvideo";
    if (codec == "h265") codec = "hevc";
    if (codec == "jpeg") codec = "mjpeg";
    // audio/mpeg is AAC or MP3; kms knows which only when it encoded the stream itself.
    if (codec == "mpeg" && std::any_of(l.elements.begin(), l.elements.end(), [](const auto& e) {
            return e.find("aac") != std::string::npos;
        }))
        codec = "aac";
    return Json{
        {"kind", l.kind}, {"media", l.to}, {"codec", codec}, {"passthrough", l.passthrough}};
}

long long file_size(const std::string& path) {
    struct stat st = {};
    return ::stat(path.c_str(), &st) == 0 ? static_cast<long long>(st.st_size) : -1;
}

int record(Tool& tool, const RecordOptions& o) {
    if (o.transcode && o.no_transcode)
        throw Error(ErrorCode::InvalidArgument, "--transcode and --no-transcode contradict");
    if (o.no_audio && o.no_video)
        throw Error(ErrorCode::InvalidArgument,
                    "--no-audio and --no-video leave nothing to record");
    const MediaUri in = parse_source_uri(o.source);
    MediaUri out = parse_sink_uri(o.output);
    const bool segmenting = o.segment > 0 || !o.segment_size.empty();
    // One file: its path takes strftime fields too (cron: -o 'cam-%Y%m%d-%H.mkv'), and then
    // --max-files and --max-total-size keep the newest of the files the pattern names.
    std::string one_file_pattern;
    if (out.kind == MediaUri::Kind::File && !segmenting &&
        out.location.find('%') != std::string::npos) {
        one_file_pattern = out.location;
        out.location = Sink::segment_path(out.location, 0, std::time(nullptr));
    }
    if (out.kind != MediaUri::Kind::File && out.kind != MediaUri::Kind::Stdio)
        throw Error(ErrorCode::InvalidArgument,
                    "-o " + out.redacted() + ": kms-record writes a file or - (stdout)");
    const bool to_stdout = out.kind == MediaUri::Kind::Stdio;
    if (to_stdout && tool.common().json)
        throw Error(ErrorCode::InvalidArgument, "--json and -o -: stdout carries the recording");
    if (to_stdout && tool.common().events == "-")
        throw Error(ErrorCode::InvalidArgument,
                    "--events - and -o -: stdout carries the recording");
    const std::string path = to_stdout ? std::string() : out.location;
    // A name whose extension says one container and --format another is a slip (players go by
    // the name); a name that says none (.part, .bin) takes --format.
    if (!to_stdout && !o.format.empty()) {
        const std::string named = container_for_path(path);
        if (!named.empty() && named != format_container(o.format))
            throw Error(ErrorCode::InvalidArgument, "--format " + o.format + " and -o " + path +
                                                        " disagree: the name says " + named);
    }
    // Checked, not held: a file made between here and the first write is still replaced.
    if (o.no_overwrite && !to_stdout && !segmenting && ::access(path.c_str(), F_OK) == 0)
        throw Error(ErrorCode::Io, path + ": exists, and --no-overwrite keeps it");
    if (!one_file_pattern.empty()) Sink::make_dated_folders(one_file_pattern, path);
    // The control socket first: a path it cannot take is refused before any file is made.
    std::function<Json()> control_state;
    auto control = serve_control(tool, o.control, [&] {
        return control_state ? control_state() : Json{{"state", "starting"}};
    });
    // A file we create and then fill with nothing is removed: cron must not find empty files.
    const bool existed = !to_stdout && ::access(path.c_str(), F_OK) == 0;
    auto remove_if_ours = [&] {
        if (!to_stdout && !existed) ::unlink(path.c_str());
    };

    SourceOptions sopt;
    if (o.no_audio) sopt.kinds = {"video"};
    if (o.no_video) sopt.kinds = {"audio"};
    sopt.rtsp_transport = o.rtsp_transport;
    Source source(in, sopt);
    SinkOptions kopt;
    kopt.format = format_container(o.format);
    kopt.segment_s = o.segment;
    if (!o.segment_size.empty()) kopt.segment_bytes = parse_size(o.segment_size, "--segment-size");
    const unsigned long long max_total =
        o.max_total_size.empty() ? 0 : parse_size(o.max_total_size, "--max-total-size");
    const bool segmented = kopt.segment_s > 0 || kopt.segment_bytes > 0;
    if (segmented && to_stdout)
        throw Error(ErrorCode::InvalidArgument, "--segment and -o -: stdout is one stream");
    kopt.max_bytes = o.max_size.empty() ? 0 : parse_size(o.max_size, "--max-size");
    if (segmented && kopt.max_bytes)
        throw Error(ErrorCode::InvalidArgument,
                    "--max-size caps one file; segments take --segment-size, and "
                    "--max-total-size caps them all");
    if (!segmented && !o.on_segment.empty())
        throw Error(ErrorCode::InvalidArgument, "--on-segment needs --segment or --segment-size");
    if (!segmented && one_file_pattern.empty() && (o.max_files || max_total))
        throw Error(ErrorCode::InvalidArgument,
                    "--max-files and --max-total-size need --segment, or a file name with a "
                    "date field (-o 'cam-%Y%m%d-%H.mkv') that names each run's file");
    kopt.min_free = parse_size(o.min_free, "--min-free", true);
    std::optional<Sink> made_sink;
    try {
        made_sink.emplace(out, kopt);
    } catch (const Error& e) {
        // The disk guard refused to start: name the option that sets it.
        if (e.code() == ErrorCode::Io &&
            std::string(e.what()).find("a recording leaves free") != std::string::npos)
            throw Error(ErrorCode::Io, std::string(e.what()) + " (--min-free)");
        throw;
    }
    Sink& sink = *made_sink;
    // What the file holds so far: nothing before the muxer writes (an existing file there is
    // replaced only then).
    auto bytes_written = [&] { return sink.writing() ? std::max(0LL, file_size(path)) : 0LL; };
    // What does not fit is found out now for a file, before anything is written.
    for (const auto& s : source.streams())
        if (o.no_transcode && s.media.rfind("/x-raw") == std::string::npos &&
            !sink.takes_as_is(s.media)) {
            remove_if_ours();
            throw Error(ErrorCode::Negotiation, in.redacted() + ": its " + s.kind + " (" + s.media +
                                                    ") does not fit " + sink.container() +
                                                    " without transcoding (--no-transcode)");
        }

    Loop loop;
    EventWriter& events = tool.events();
    std::optional<Error> failure;
    bool media = false;
    std::vector<LinkInfo> links;
    Pipeline::Callbacks cb;
    cb.ended = [&] { loop.quit(); };
    // A source that fails after media came (a camera that went away) leaves the pipeline
    // running (set_finish_files_on_error): the file is finished with what came, then the
    // failure is the exit status.
    Pipeline* running_pipeline = nullptr;
    std::function<void()> finish;
    bool stop_requested = false;  // the stop lambda ran with media: files are being finished
    cb.failed = [&](const Error& e) {
        if (!failure) failure = e;
        const bool running = running_pipeline && running_pipeline->running();
        if (running && stop_requested) {
            // A stop is finishing the files already (a signal, -t, or an earlier failure): a
            // second stop would cut them off. Should the muxer not finish, the deadline says
            // this failure, not only that the file may be cut short.
            tool.deadline_outcome(exit_code_for(failure->code()),
                                  std::string(failure->what()) + "; " +
                                      (to_stdout ? std::string("stdout") : path) +
                                      " may be cut short");
            return;
        }
        if (running && media && finish) return finish();
        loop.quit();
    };
    cb.warning = [&](const std::string& message) {
        if (message.rfind("transcoding ", 0) == 0) return;  // said by linked, with both codecs
        tool.end_progress();
        // A stream after the file has begun cannot go in; say what would have kept it.
        const bool late = message.find(" had begun writing") != std::string::npos;
        tool.say(-1, "warning: " + message + (late ? " (--tracks waits for it)" : ""));
        events.emit("warning", Json{{"message", message}});
    };
    cb.linked = [&](const LinkInfo& l) {
        links.push_back(l);
        events.emit(
            "track",
            Json{{"kind", l.kind}, {"from", l.from}, {"to", l.to}, {"passthrough", l.passthrough}});
        const bool raw = l.from.rfind("/x-raw") != std::string::npos;
        if (!l.passthrough && !raw) {
            events.emit("transcoding", Json{{"kind", l.kind}, {"from", l.from}, {"to", l.to}});
            tool.end_progress();
            tool.say(-1, "transcoding " + l.kind + " from " + l.from + " to " + l.to +
                             (o.transcode ? " (--transcode)" : " (it does not fit the container)"));
        }
    };
    // A stream that stops mid-recording (a camera that hangs, a network cut) is said at once:
    // GStreamer waits for it silently, and a cron job's file would just end early.
    using Clock = std::chrono::steady_clock;
    std::map<std::string, Clock::time_point> stalled;  // kind -> when its last buffer came
    auto seconds_text = [](double s) { return std::to_string(std::lround(s)) + " s"; };
    cb.flowing = [&](const LinkInfo& l) {
        media = true;
        events.emit("media-flow", Json{{"kind", l.kind}, {"state", "flowing"}});
        if (auto it = stalled.find(l.kind); it != stalled.end()) {
            const double gap = std::chrono::duration<double>(Clock::now() - it->second).count();
            stalled.erase(it);
            tool.end_progress();
            tool.say(-1, l.kind + " from " + in.redacted() + " flowing again after " +
                             seconds_text(gap) + " without media");
        }
    };
    cb.stalled = [&](const LinkInfo& l, double seconds) {
        stalled[l.kind] = Clock::now() - std::chrono::duration_cast<Clock::duration>(
                                             std::chrono::duration<double>(seconds));
        events.emit("media-flow",
                    Json{{"kind", l.kind}, {"state", "stalled"}, {"seconds", std::round(seconds)}});
        tool.end_progress();
        tool.say(-1,
                 "warning: no " + l.kind + " from " + in.redacted() + " for " +
                     seconds_text(seconds) +
                     (o.media_timeout > 0 ? "" : "; still recording (--media-timeout ends it)"));
    };
    // Segments: each finished file is an event, runs the hook, and may retire the oldest.
    unsigned long long segments = 0;
    Json files_made = Json::array();  // this run's segments, for the result
    // Retention covers what earlier runs left under the same pattern too: a recording made by
    // cron or a restarted service is one run among many, and the disk is shared by all of them.
    recording::Retention retention(o.max_files, max_total);
    auto retire = [&] {
        for (const auto& old : retention.over())
            if (::unlink(old.path.c_str()) == 0)
                events.emit("deleted", Json{{"path", old.path}, {"bytes", old.bytes}});
    };
    if (retention.active() && segmented)
        for (auto& seg : recording::existing_segments(sink.segment_pattern()))
            retention.add(std::move(seg));
    // A new picture size goes on in the same file (see Sink::on_size_change).
    sink.on_size_change(
        [&](const std::string& kind, const std::string& from, const std::string& to) {
            events.emit("size-change", Json{{"kind", kind}, {"from", from}, {"to", to}});
            tool.say(1, kind + " size " + from + " -> " + to + ", recording on");
        });
    sink.on_segment([&](const Segment& seg) {
        ++segments;
        files_made.push_back(Json{{"path", seg.path},
                                  {"duration", std::round(seg.duration_s * 1000) / 1000},
                                  {"bytes", seg.bytes}});
        events.emit("segment", Json{{"path", seg.path},
                                    {"index", seg.index},
                                    {"duration", std::round(seg.duration_s * 1000) / 1000},
                                    {"bytes", seg.bytes}});
        tool.say(1, "segment " + seg.path + " done");
        if (!o.on_segment.empty())
            if (const std::string why = run_hook(o.on_segment, seg); !why.empty()) {
                tool.say(-1, "warning: --on-segment: cannot run the command for " + seg.path +
                                 ": " + why);
                events.emit("warning", Json{{"message", "--on-segment: " + why}});
            }
        retention.add(seg);
        retire();
    });
    Pipeline pipeline(tool.name(), cb);
    running_pipeline = &pipeline;
    pipeline.set_finish_files_on_error(true);
    pipeline.set_stall_after(o.media_timeout > 0 ? std::min(kStallSeconds, o.media_timeout)
                                                 : kStallSeconds);
    // --tracks: nothing is written until every kind asked for has come or the timeout is
    // over, since a track that comes after the muxer has begun cannot go in.
    if (!o.tracks.empty()) pipeline.set_streams_wait(std::max(2.5, o.tracks_timeout));
    pipeline.connect(source, sink,
                     o.no_transcode ? Pipeline::Transcode::Never
                     : o.transcode  ? Pipeline::Transcode::Force
                                    : Pipeline::Transcode::Auto);
    const std::string where = to_stdout ? "stdout" : path;
    // A stop before any media came has nothing to finish: no waiting for a muxer that never
    // started (the source may have no stream to send EOS into yet), no empty file; status 6.
    bool stopped_empty = false;
    auto stop = [&] {
        if (!media) {
            stopped_empty = true;
            loop.quit();
            return;
        }
        stop_requested = true;
        tool.stop_deadline(10.0, kOutput,
                           where +
                               ": the muxer did not finish within 10 s of the stop; the file "
                               "may be cut short");
        pipeline.stop();
    };
    finish = stop;
    tool.handle_signals(loop, stop);
    // -t: media time for a file or stdin (read faster or slower than the clock; ffmpeg's -t),
    // the clock for the rest: a live source (the same there, and it holds when media stops),
    // and http(s)://, often a live stream, and one whose frames may carry no time (MJPEG).
    const bool read = in.kind == MediaUri::Kind::File || in.kind == MediaUri::Kind::Stdio;
    if (tool.common().duration > 0 && read)
        pipeline.set_media_limit(tool.common().duration, stop);
    else if (tool.common().duration > 0)
        loop.after(static_cast<unsigned>(tool.common().duration * 1000), stop);
    bool no_media = false;
    // --tracks: every kind asked for must have come by then; one that has not is reported, as
    // an event and on stderr, and the recording goes on with what came.
    if (!o.tracks.empty())
        loop.after(static_cast<unsigned>(o.tracks_timeout * 1000), [&] {
            for (const auto& kind : o.tracks) {
                const bool came = std::any_of(links.begin(), links.end(),
                                              [&](const LinkInfo& l) { return l.kind == kind; });
                if (came) continue;
                events.emit("track-missing", Json{{"kind", kind}, {"after", o.tracks_timeout}});
                tool.end_progress();
                tool.say(-1, "warning: no " + kind + " from " + in.redacted() + " within " +
                                 std::to_string(int(o.tracks_timeout)) +
                                 " s (--tracks); recording without it");
            }
        });
    // --media-timeout mid-recording: every stream has been without media that long. What came
    // is finalised and kept; the status is 6 as for a source that never sent.
    bool media_stopped = false;
    if (o.media_timeout > 0)
        loop.every(1000, [&] {
            if (media_stopped || !media || stalled.empty() || stalled.size() < links.size())
                return true;
            Clock::time_point newest{};
            for (const auto& [kind, last] : stalled) newest = std::max(newest, last);
            if (std::chrono::duration<double>(Clock::now() - newest).count() < o.media_timeout)
                return true;
            media_stopped = true;
            stop();
            return false;
        });
    if (o.media_timeout > 0)
        loop.after(static_cast<unsigned>(o.media_timeout * 1000), [&] {
            if (media) return;
            no_media = true;
            loop.quit();
        });
    // kms-stats --attach: what has been written so far.
    control_state = [&] {
        Json tracks = Json::array();
        for (const auto& l : links) tracks.push_back(track_json(l));
        return Json{
            {"state", media ? "recording" : "waiting for media"},
            {"source", in.redacted()},
            {"output", to_stdout ? "-" : path},
            {"bytesWritten", to_stdout || segmented ? Json(nullptr) : Json(bytes_written())},
            {"segments", segments},
            {"tracks", tracks}};
    };
    events.emit("recording", Json{{"source", in.redacted()},
                                  {"output", to_stdout ? "-" : path},
                                  {"container", sink.container()}});
    tool.say(1, "recording " + in.redacted() + " into " + where);
    // A start that fails (a port in use, a device missing) is reported like any failure.
    try {
        pipeline.start();
    } catch (const Error& e) {
        failure = e;
    }
    unsigned ticks = 0;
    // --max-size: the sink ends the streams at the cap as the muxer writes; a live source
    // goes on sending, so the stop finishes the file.
    sink.on_full([&] {
        events.emit("limit", Json{{"maxSize", kopt.max_bytes}});
        // A stop already under way (-t) is not stopped again: a second stop cuts the file.
        if (!stop_requested) stop();
    });
    // --min-free: the disk is nearly full. The streams end where the muxer writes and the
    // files are finished with room for their index; the status is 7, as for a full disk, and
    // nothing written is lost.
    std::optional<std::string> disk_low;
    sink.on_disk_low([&](unsigned long long free_bytes) {
        events.emit("limit", Json{{"minFree", kopt.min_free}, {"free", free_bytes}});
        // A stop already finishing the file (-t, a signal) keeps its own status.
        if (stop_requested) return;
        disk_low = (segmented ? sink.segment_pattern() : where) + ": the disk is nearly full (" +
                   human_bytes(static_cast<long long>(free_bytes)) + " free, --min-free " +
                   human_bytes(static_cast<long long>(kopt.min_free)) + "): stopped, " +
                   (segmented ? "the segments are" : "the file is") + " finished";
        if (!stop_requested) stop();
    });
    // RTP packets that never came (rtsp://, rtp://), read while the jitter buffers live.
    const bool rtp_source = in.kind == MediaUri::Kind::Rtsp || in.kind == MediaUri::Kind::Rtp;
    unsigned long long lost = 0;
    // What the jitter buffers gave up on, all streams: the most seen (a stopped buffer forgets).
    auto count_lost = [&](unsigned long long n) { lost = std::max(lost, n); };
    auto lost_now = [&] {
        unsigned long long n = 0;
        for (const auto& st : source.rtp_stats()) n += st.packets_lost;
        return n;
    };
    // A camera's streams in W3C inbound-rtp terms, as kms-call reports a call's.
    auto emit_rtp_stats = [&](bool final) { count_lost(emit_inbound_rtp(events, source, final)); };
    // Only when someone reads them: each reading asks every jitter buffer for its stats.
    if (rtp_source && o.stats_interval > 0 && events.enabled())
        loop.every(stats_period_ms(o.stats_interval), [&] {
            emit_rtp_stats(false);
            return true;
        });
    loop.every(1000, [&] {
        ++ticks;
        if (rtp_source) count_lost(lost_now());
        char line[120];
        std::snprintf(line, sizeof line, "%02u:%02u  %s", ticks / 60, ticks % 60,
                      to_stdout || segmented ? "recording" : human_bytes(bytes_written()).c_str());
        tool.progress(line);
        while (::waitpid(-1, nullptr, WNOHANG) > 0) {
        }
        return true;
    });
    if (!failure) loop.run();
    tool.end_progress();

    if (failure && !media) {
        pipeline.stop();
        pipeline.stop();  // at once: nothing started
    }
    if (no_media || stopped_empty) {
        pipeline.stop();
        pipeline.stop();  // at once: there is nothing to finalise
        remove_if_ours();
        failure = Error(ErrorCode::NoMedia,
                        "no media from " + in.redacted() +
                            (no_media ? " within " + std::to_string(int(o.media_timeout)) +
                                            " s (--media-timeout)"
                                      : " before the stop") +
                            "; nothing recorded");
    }
    if (disk_low && !failure) failure = Error(ErrorCode::Io, *disk_low);
    if (media_stopped && !failure)
        failure = Error(ErrorCode::NoMedia, "no media from " + in.redacted() + " for " +
                                                seconds_text(o.media_timeout) +
                                                " (--media-timeout); what came is in " +
                                                (segmented ? std::string("the segments") : where));
    if (failure && !media && !segmented) remove_if_ours();
    if (rtp_source && o.stats_interval > 0 && media) emit_rtp_stats(true);
    events.emit("stopped", Json{{"clean", !failure}});
    // One file a run (cron): the newest files the pattern names are kept, this run's among them
    // (added last, it is the newest, which is never deleted).
    if (!one_file_pattern.empty() && retention.active() && media) {
        for (auto& f : recording::existing_segments(one_file_pattern))
            if (f.path != path) retention.add(std::move(f));
        retention.add(Segment{path, 0, 0, std::max(0LL, file_size(path))});
        retire();
    }

    // The result: what was written, read back from the file.
    Output res(tool.common().json, tool.common().json ? stdout : stderr);
    if (tool.common().json || !tool.common().quiet) {
        res.field("output", "output", to_stdout ? "-" : path);
        res.field("container", "container", sink.container());
        if (segmented) {
            res.field("segments", "segments", segments);
            res.json_only("files", files_made);
        }
        if (!to_stdout && (!failure || media) && !segmented) {
            try {
                const MediaInfo info = probe_media(path);
                res.field("duration", "duration (s)", std::round(info.duration_s * 100) / 100);
            } catch (const Error&) {
                // Reported below through the exit status when it matters.
            }
        }
        if (!to_stdout && !segmented) res.field("bytes", "bytes", bytes_written());
        Json tracks = Json::array();
        bool transcoded = false;
        for (const auto& l : links) {
            tracks.push_back(track_json(l));
            transcoded =
                transcoded || (!l.passthrough && l.from.rfind("/x-raw") == std::string::npos);
        }
        res.field("transcoded", "transcoded", transcoded ? "yes" : "no");
        if (rtp_source && media) {
            count_lost(lost_now());
            res.field("packetsLost", "packets lost", lost);
        }
        res.json_only("tracks", tracks);
        if (failure) res.field("error", "error", failure->what());
        res.finish();
        tool.result_printed();
    }
    if (failure) throw *failure;
    return kOk;
}

}  // namespace

int main(int argc, char** argv) {
    Tool tool(
        {"kms-record",
         "kms-record: record any media source into WebM, MKV, MP4, Ogg or WAV, passthrough by "
         "default",
         kExamples});
    tool.catch_signals();
    CLI::App& app = tool.app();
    RecordOptions o;
    app.add_option("source", o.source,
                   "What to record: test:av, a file, - (Matroska on stdin), rtsp://, "
                   "rtp://ADDR:PORT?sdp=FILE, http(s)://, v4l2:/dev/video0, pulse:, alsa:")
        ->required()
        ->option_text("SOURCE");
    app.add_option(
           "-o,--output", o.output,
           "The file to write (.webm, .mkv, .mp4, .mov; audio only .weba, .mka, .m4a, .ogg, "
           ".opus, .oga, .wav) or - for Matroska on stdout")
        ->required()
        ->option_text("PATH");
    app.add_option("--format", o.format, "Container, when the extension does not say")
        ->check(CLI::IsMember({"webm", "mkv", "mp4", "ogg", "wav"}));
    app.add_flag("-n,--no-overwrite", o.no_overwrite,
                 "Refuse (exit 7) a file that exists rather than replace it");
    app.add_flag("--transcode", o.transcode, "Decode and encode even what fits the container");
    app.add_flag("--no-transcode", o.no_transcode,
                 "Refuse (exit 5) a source whose codecs do not fit the container");
    app.add_flag("--no-audio", o.no_audio, "Leave the audio out");
    app.add_flag("--no-video", o.no_video, "Leave the video out");
    app.add_option("--rtsp-transport", o.rtsp_transport,
                   "rtsp://: tcp or udp only (default: UDP, then TCP if UDP gets nothing)")
        ->check(CLI::IsMember({"tcp", "udp"}));
    app.add_option("--segment", o.segment,
                   "A new file every SECONDS, cut at a key frame; the path takes strftime "
                   "fields and %i (the index)")
        ->check(seconds_check(false))
        ->option_text("SECONDS");
    app.add_option("--segment-size", o.segment_size, "A new file every SIZE (500k, 10M, 2G)")
        ->option_text("SIZE");
    app.add_option("--max-files", o.max_files,
                   "Keep the newest N files the -o pattern names, earlier runs' too; delete the "
                   "older")
        ->check(CLI::Validator(
            [](std::string& v) {
                return v.find_first_not_of('0') == std::string::npos
                           ? std::string("0 would keep nothing: give 1 or more")
                           : std::string();
            },
            "N"))
        ->option_text("N");
    app.add_option("--max-total-size", o.max_total_size,
                   "Delete the oldest files the -o pattern names while they add up to more "
                   "than SIZE")
        ->option_text("SIZE");
    app.add_option("--on-segment", o.on_segment,
                   "Run CMD (with /bin/sh) for each finished segment, with KMS_SEGMENT_PATH, "
                   "_INDEX, _DURATION and _BYTES in its environment")
        ->option_text("CMD");
    app.add_option("--max-size", o.max_size,
                   "Stop, finishing the file, once it reaches SIZE (500k, 10M, 2G)")
        ->option_text("SIZE");
    app.add_option("--min-free", o.min_free,
                   "Stop, finishing the file, when the disk has less than SIZE free, and "
                   "refuse to start below it; 0: write until the disk is full (default 8M)")
        ->option_text("SIZE");
    app.add_option("--tracks", o.tracks,
                   "Kinds that must come (audio,video); one missing after --tracks-timeout is "
                   "reported")
        ->delimiter(',')
        ->check(CLI::IsMember({"audio", "video"}))
        ->option_text("KINDS");
    app.add_option("--tracks-timeout", o.tracks_timeout, "How long --tracks waits (default 5)")
        ->check(seconds_check(false))
        ->option_text("SECONDS");
    add_control_option(app, o.control);
    add_stats_interval_option(app, o.stats_interval);
    app.add_option("--media-timeout", o.media_timeout,
                   "Exit 6, leaving no file, if no media comes within SECONDS")
        ->check(seconds_check(true))
        ->option_text("SECONDS");
    // --json with -o - is refused before anything is written: stdout is free for the error.
    tool.json_errors();
    const int rc = tool.run(argc, argv, [&] { return record(tool, o); });
    std::fflush(stdout);
    std::fflush(stderr);
    // A reader of stdin may still be blocked; it holds nothing that needs closing.
    kms::remove_registered_files();  // what a sink still alive made and never wrote to
    _exit(rc);
}
