#include "probe.hpp"

#include <fcntl.h>
#include <gst/base/gsttypefindhelper.h>
#include <gst/pbutils/pbutils.h>
#include <unistd.h>

#include <algorithm>
#include <chrono>
#include <cmath>
#include <cstdio>
#include <map>
#include <memory>
#include <mutex>

#include "gst_handles.hpp"
#include "kms/error.hpp"
#include "kms/loop.hpp"
#include "kms/rtp.hpp"
#include "kms/runtime.hpp"
#include "kms/source.hpp"
#include "kms/uri.hpp"
#include "lazy_file_src.hpp"

namespace kms::stats {

namespace {

constexpr double kLiveDefault = 10;  // seconds a live source is measured without --duration

// One buffer as the probe keeps it: 24 bytes, so an hour of 30 fps video is 2.6 MB.
struct Frame {
    gint64 pts;  ///< nanoseconds
    gint64 dur;  ///< nanoseconds, -1 when the buffer does not say
    guint32 size;
    bool key;
};

// Filled on the track's streaming thread, read on the main thread once the pipeline is stopped
// (setting it to NULL joins the streaming threads); the mutex covers the caps, which the CAPS
// event may change while the main thread looks at them for the live status.
struct Track {
    std::mutex mutex;
    std::string kind, media, codec;
    int width = 0, height = 0, rate = 0, channels = 0;
    std::vector<Frame> frames;
};

struct ProbeRun {
    GstElement* pipeline = nullptr;  // owned by the ElementPtr in probe()
    std::mutex mutex;
    std::vector<std::unique_ptr<Track>> tracks;
    std::optional<Error> failure;
    Loop* loop = nullptr;
    bool remote = false;  ///< rtsp:// or http(s)://
};

void read_caps(Track& t, GstCaps* caps) {
    if (!caps || gst_caps_get_size(caps) == 0) return;
    const GstStructure* s = gst_caps_get_structure(caps, 0);
    std::lock_guard lock(t.mutex);
    t.media = gst_structure_get_name(s);
    t.kind = t.media.substr(0, t.media.find('/'));
    if (t.kind == "application" && t.media == "application/x-rtp") t.kind = "rtp";
    gst_structure_get_int(s, "width", &t.width);
    gst_structure_get_int(s, "height", &t.height);
    gst_structure_get_int(s, "rate", &t.rate);
    gst_structure_get_int(s, "channels", &t.channels);
    // AAC: the stream's own AudioSpecificConfig, not the demuxer's reading of it. 1.22's
    // matroskademux doubles the rate when ffmpeg signals "no SBR" explicitly (88200 Hz for a
    // 44.1 kHz file), and qtdemux gave 2 channels for mono; ffprobe reads the config.
    int mpegversion = 0;
    const GValue* config = gst_structure_get_value(s, "codec_data");
    if (t.media == "audio/mpeg" && gst_structure_get_int(s, "mpegversion", &mpegversion) &&
        mpegversion == 4 && config && GST_VALUE_HOLDS_BUFFER(config)) {
        GstMapInfo map;
        GstBuffer* buf = gst_value_get_buffer(config);
        if (gst_buffer_map(buf, &map, GST_MAP_READ)) {
            const auto len = static_cast<guint>(map.size);
            if (const guint rate = gst_codec_utils_aac_get_sample_rate(map.data, len))
                t.rate = rate;
            if (const guint ch = gst_codec_utils_aac_get_channels(map.data, len)) t.channels = ch;
            gst_buffer_unmap(buf, &map);
        }
    }
    CharPtr desc(gst_pb_utils_get_codec_description(caps));
    t.codec = desc ? desc.get() : t.media;
}

void keep(Track& t, GstBuffer* b) {
    GstClockTime ts = GST_BUFFER_PTS(b);
    if (!GST_CLOCK_TIME_IS_VALID(ts)) ts = GST_BUFFER_DTS(b);
    if (!GST_CLOCK_TIME_IS_VALID(ts)) return;  // counted nowhere: it has no place in time
    const GstClockTime d = GST_BUFFER_DURATION(b);
    t.frames.push_back(Frame{static_cast<gint64>(ts),
                             GST_CLOCK_TIME_IS_VALID(d) ? static_cast<gint64>(d) : -1,
                             static_cast<guint32>(gst_buffer_get_size(b)),
                             !GST_BUFFER_FLAG_IS_SET(b, GST_BUFFER_FLAG_DELTA_UNIT)});
}

GstPadProbeReturn on_data(GstPad*, GstPadProbeInfo* info, gpointer data) {
    auto* t = static_cast<Track*>(data);
    if (info->type & GST_PAD_PROBE_TYPE_BUFFER) {
        keep(*t, GST_PAD_PROBE_INFO_BUFFER(info));
    } else if (info->type & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
        GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
        for (guint i = 0; i < gst_buffer_list_length(list); ++i)
            keep(*t, gst_buffer_list_get(list, i));
    } else if (info->type & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
        GstEvent* e = GST_PAD_PROBE_INFO_EVENT(info);
        if (GST_EVENT_TYPE(e) == GST_EVENT_CAPS) {
            GstCaps* caps = nullptr;
            gst_event_parse_caps(e, &caps);
            read_caps(*t, caps);
        }
    }
    return GST_PAD_PROBE_OK;
}

// A stream pad of the demuxer/parser: into a fakesink of its own, watched by a probe. The sink
// neither syncs nor prerolls (async=false), so one demuxer thread feeding several sinks never
// waits for a sink that has not had its first buffer.
void attach_sink(ProbeRun& run, GstPad* pad) {
    GstElement* sink = gst_element_factory_make("fakesink", nullptr);
    g_object_set(sink, "sync", FALSE, "async", FALSE, "enable-last-sample", FALSE, nullptr);
    gst_bin_add(GST_BIN(run.pipeline), sink);
    PadPtr sinkpad(gst_element_get_static_pad(sink, "sink"));
    auto track = std::make_unique<Track>();
    CapsPtr caps(gst_pad_get_current_caps(pad));
    read_caps(*track, caps.get());
    gst_pad_add_probe(
        sinkpad.get(),
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST |
                                     GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM),
        on_data, track.get(), nullptr);
    {
        std::lock_guard lock(run.mutex);
        run.tracks.push_back(std::move(track));
    }
    gst_pad_link(pad, sinkpad.get());
    gst_element_sync_state_with_parent(sink);
}

void on_parsed_pad(GstElement*, GstPad* pad, gpointer data) {
    attach_sink(*static_cast<ProbeRun*>(data), pad);
}

// A stream straight out of an MP4 or Matroska demuxer is already a frame per buffer, with its
// times, size and key-frame flag from the container's index: a parser would read every frame
// again for nothing the probe uses (a quarter of the time of a 10-minute MP4,
// scripts/bench/probe). Elementary streams and other containers (MPEG-TS cuts PES, not
// frames) still get their parser.
gboolean on_autoplug_continue(GstElement*, GstPad* pad, GstCaps*, gpointer) {
    // parsebin hands over a ghost pad of its own; the demuxer's pad is its target.
    PadPtr target(GST_IS_GHOST_PAD(pad) ? gst_ghost_pad_get_target(GST_GHOST_PAD(pad))
                                        : GST_PAD(gst_object_ref(pad)));
    GstObject* parent = target ? gst_pad_get_parent(target.get()) : nullptr;
    if (!parent) return TRUE;
    bool framed = false;
    if (GST_IS_ELEMENT(parent)) {
        GstElementFactory* f = gst_element_get_factory(GST_ELEMENT(parent));
        const char* name = f ? GST_OBJECT_NAME(f) : "";
        framed = g_str_equal(name, "qtdemux") || g_str_equal(name, "matroskademux");
    }
    gst_object_unref(parent);
    return !framed;
}

// urisourcebin gives one pad per stream of an RTSP camera, one for everything else: each gets
// a parsebin, which demuxes, depayloads and parses, and stops before any decoder.
void on_source_pad(GstElement*, GstPad* pad, gpointer data) {
    auto* run = static_cast<ProbeRun*>(data);
    GstElement* parse = gst_element_factory_make("parsebin", nullptr);
    g_signal_connect(parse, "autoplug-continue", G_CALLBACK(on_autoplug_continue), nullptr);
    g_signal_connect(parse, "pad-added", G_CALLBACK(on_parsed_pad), run);
    gst_bin_add(GST_BIN(run->pipeline), parse);
    PadPtr sinkpad(gst_element_get_static_pad(parse, "sink"));
    gst_pad_link(pad, sinkpad.get());
    gst_element_sync_state_with_parent(parse);
}

// An MP4/MOV file (typefound from its first 4 kB): qtdemux straight from a source that reads
// only the bytes qtdemux looks at (lazy_file_src.hpp), with no typefind or parsebin between
// them, whose pads each buffer would cross. false for any other file, which goes the general
// way (urisourcebin and parsebin). On a 10-minute 720p MP4 this takes the probe from 0.13 s to
// about 0.07 s (scripts/bench/probe).
bool build_quicktime(ProbeRun& run, const std::string& path) {
    guint8 head[4096];
    const int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return false;
    const ssize_t n = read(fd, head, sizeof head);
    close(fd);
    if (n <= 0) return false;
    GstTypeFindProbability prob = GST_TYPE_FIND_NONE;
    CapsPtr caps(gst_type_find_helper_for_data(nullptr, head, static_cast<gsize>(n), &prob));
    if (!caps || prob < GST_TYPE_FIND_LIKELY ||
        !gst_structure_has_name(gst_caps_get_structure(caps.get(), 0), "video/quicktime"))
        return false;
    GstElement* demux = gst_element_factory_make("qtdemux", nullptr);
    if (!demux) return false;
    GError* raw = nullptr;
    GstElement* src = lazy_file_src_new(path, &raw);
    ErrorPtr err(raw);
    if (!src) {
        gst_object_unref(gst_object_ref_sink(demux));
        throw Error(ErrorCode::BadInput, err->message);
    }
    gst_bin_add_many(GST_BIN(run.pipeline), src, demux, nullptr);
    gst_element_link(src, demux);
    g_signal_connect(demux, "pad-added", G_CALLBACK(on_parsed_pad), &run);
    return true;
}

// rtspsrc's jitter buffer by default stamps buffers from their arrival, smoothed against the
// sender's clock, which stretches or squeezes the first seconds; the probe measures the camera,
// so it takes the RTP timestamps as the camera wrote them (buffer-mode none).
void on_source_setup(GstElement*, GstElement* source, gpointer) {
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(source), "buffer-mode"))
        gst_util_set_object_arg(G_OBJECT(source), "buffer-mode", "none");
}

gboolean on_bus(GstBus*, GstMessage* msg, gpointer data) {
    auto* run = static_cast<ProbeRun*>(data);
    switch (GST_MESSAGE_TYPE(msg)) {
        case GST_MESSAGE_EOS:
            run->loop->quit();
            break;
        case GST_MESSAGE_ERROR: {
            GError* raw = nullptr;
            gchar* dbg = nullptr;
            gst_message_parse_error(msg, &raw, &dbg);
            ErrorPtr err(raw);
            CharPtr debug(dbg);
            if (!run->failure) {
                const bool missing =
                    err->domain == GST_CORE_ERROR && err->code == GST_CORE_ERROR_MISSING_PLUGIN;
                // A camera or server that cannot be reached is the network's fault, not the
                // media's.
                const bool network = run->remote && err->domain == GST_RESOURCE_ERROR;
                run->failure = Error(missing   ? ErrorCode::MissingPlugin
                                     : network ? ErrorCode::Network
                                               : ErrorCode::BadInput,
                                     err->message);
            }
            run->loop->quit();
            break;
        }
        default:
            break;
    }
    return TRUE;
}

GstElement* make(const char* factory, const char* package) {
    GstElement* e = gst_element_factory_make(factory, nullptr);
    if (!e) require_elements({{factory, package}});
    return e;
}

// Raw test patterns, as kms-call's test: source makes them (same URI parameters).
void build_test(ProbeRun& run, const MediaUri& uri) {
    auto add = [&](const std::string& desc) {
        GError* raw = nullptr;
        GstElement* bin = gst_parse_bin_from_description(desc.c_str(), TRUE, &raw);
        ErrorPtr err(raw);
        if (!bin) throw Error(ErrorCode::MissingPlugin, err ? err->message : desc);
        gst_bin_add(GST_BIN(run.pipeline), bin);
        PadPtr src(gst_element_get_static_pad(bin, "src"));
        attach_sink(run, src.get());
    };
    require_elements({{"videotestsrc", "gstreamer1.0-plugins-base"},
                      {"audiotestsrc", "gstreamer1.0-plugins-base"}});
    if (uri.video)
        add("videotestsrc is-live=true pattern=" + uri.param("pattern", "smpte") +
            " ! capsfilter caps=video/x-raw,width=" + std::to_string(uri.param_int("width", 640)) +
            ",height=" + std::to_string(uri.param_int("height", 480)) +
            ",framerate=" + std::to_string(uri.param_int("fps", 30)) + "/1");
    if (uri.audio)
        add("audiotestsrc is-live=true samplesperbuffer=960 wave=" + uri.param("wave", "sine") +
            " ! capsfilter caps=audio/x-raw,rate=" + std::to_string(uri.param_int("rate", 48000)) +
            ",channels=" + std::to_string(uri.param_int("channels", 2)));
}

double secs(gint64 ns) {
    return static_cast<double>(ns) / 1e9;
}

TrackStats measure(Track& t, double gap_threshold) {
    TrackStats s;
    s.kind = t.kind.empty() ? "unknown" : t.kind;
    s.media = t.media;
    s.codec = t.codec;
    s.width = t.width;
    s.height = t.height;
    s.rate = t.rate;
    s.channels = t.channels;
    auto& f = t.frames;
    s.frames = f.size();
    for (const auto& x : f) {
        s.bytes += x.size;
        s.key_frames += x.key;
    }
    if (f.empty()) return s;
    // Key frames in decode order: the frames between two of them are a group of pictures.
    std::vector<size_t> keys;
    for (size_t i = 0; i < f.size(); ++i)
        if (f[i].key) keys.push_back(i);
    // Everything else in presentation order (B-frames come out of order).
    std::stable_sort(f.begin(), f.end(),
                     [](const Frame& a, const Frame& b) { return a.pts < b.pts; });
    std::vector<gint64> deltas;
    for (size_t i = 1; i < f.size(); ++i) deltas.push_back(f[i].pts - f[i - 1].pts);
    gint64 typical = 0;
    if (!deltas.empty()) {
        std::vector<gint64> d = deltas;
        std::nth_element(d.begin(), d.begin() + d.size() / 2, d.end());
        typical = d[d.size() / 2];
    }
    auto dur_of = [&](const Frame& x) { return x.dur >= 0 ? x.dur : typical; };
    const gint64 start = f.front().pts;
    gint64 end = start;
    for (const auto& x : f) end = std::max(end, x.pts + dur_of(x));
    s.start = secs(start);
    s.duration = secs(end - start);
    // Gaps: a hole after a buffer's end longer than the threshold.
    const auto threshold = static_cast<gint64>(gap_threshold * 1e9);
    gint64 steady_span = 0;
    size_t steady_steps = 0;
    for (size_t i = 1; i < f.size(); ++i) {
        const gint64 prev_end = f[i - 1].pts + dur_of(f[i - 1]);
        const gint64 hole = f[i].pts - prev_end;
        if (hole > threshold) {
            s.gaps.push_back(Gap{secs(prev_end), secs(hole)});
        } else {
            steady_span += f[i].pts - f[i - 1].pts;
            ++steady_steps;
        }
    }
    if (steady_span > 0) s.fps = static_cast<double>(steady_steps) / secs(steady_span);
    if (s.duration > 0) s.bitrate = static_cast<double>(s.bytes) * 8 / s.duration;
    // Peak: whole one-second windows from the first timestamp; a track shorter than a second
    // has only its average.
    std::map<gint64, unsigned long long> windows;
    for (const auto& x : f) windows[(x.pts - start) / GST_SECOND] += x.size;
    const gint64 whole = (end - start) / GST_SECOND;
    for (const auto& [w, bytes] : windows)
        if (w < whole) s.peak_bitrate = std::max(s.peak_bitrate, static_cast<double>(bytes) * 8);
    if (whole == 0) s.peak_bitrate = s.bitrate;
    // Key-frame interval, for video that has delta frames at all (raw video and audio are all
    // key frames, and an interval of one buffer says nothing).
    if (keys.size() >= 2 && keys.size() < s.frames) {
        std::vector<gint64> key_pts;
        for (const auto& x : f)
            if (x.key) key_pts.push_back(x.pts);
        double max = 0;
        for (size_t i = 1; i < key_pts.size(); ++i)
            max = std::max(max, secs(key_pts[i] - key_pts[i - 1]));
        s.key_interval = secs(key_pts.back() - key_pts.front()) / double(key_pts.size() - 1);
        s.key_interval_max = max;
        s.key_interval_frames = double(keys.back() - keys.front()) / double(keys.size() - 1);
    }
    return s;
}

bool is_live(const MediaUri& uri) {
    using K = MediaUri::Kind;
    return uri.kind == K::Test || uri.kind == K::Rtsp || uri.kind == K::Rtp;
}

}  // namespace

ProbeResult probe(const ProbeOptions& o, Loop& loop) {
    init();
    const MediaUri uri = parse_source_uri(o.input);
    ProbeResult result;
    result.input = uri.redacted();
    result.live = is_live(uri);
    ProbeRun run;
    ElementPtr pipeline(gst_pipeline_new("kms-stats"));
    gst_object_ref_sink(pipeline.get());
    run.pipeline = pipeline.get();
    using K = MediaUri::Kind;
    if (uri.kind == K::Test) {
        build_test(run, uri);
    } else if (uri.kind == K::File && g_file_test(uri.location.c_str(), G_FILE_TEST_IS_REGULAR) &&
               build_quicktime(run, uri.location)) {
        // built
    } else if (uri.kind == K::File || uri.kind == K::Http || uri.kind == K::Rtsp ||
               uri.kind == K::Stdio) {
        require_elements({{"parsebin", "gstreamer1.0-plugins-base"},
                          {"urisourcebin", "gstreamer1.0-plugins-base"}});
        if (uri.kind == K::Http) reach_http_server(uri);  // 4 naming it, not "Internal data..."
        GstElement* src = nullptr;
        if (uri.kind == K::Stdio) {
            src = make("fdsrc", "libgstreamer1.0-0");
            g_object_set(src, "fd", 0, nullptr);
            gst_bin_add(GST_BIN(run.pipeline), src);
            PadPtr pad(gst_element_get_static_pad(src, "src"));
            on_source_pad(src, pad.get(), &run);
        } else {
            std::string location = uri.location;
            if (uri.kind == K::File) {
                if (!g_file_test(location.c_str(), G_FILE_TEST_IS_REGULAR))
                    throw Error(ErrorCode::BadInput,
                                location + ": no such file (or not a regular file)");
                GError* raw = nullptr;
                CharPtr u(gst_filename_to_uri(location.c_str(), &raw));
                ErrorPtr err(raw);
                if (!u) throw Error(ErrorCode::BadInput, location + ": " + err->message);
                location = u.get();
            }
            src = make("urisourcebin", "gstreamer1.0-plugins-base");
            g_object_set(src, "uri", location.c_str(), nullptr);
            g_signal_connect(src, "pad-added", G_CALLBACK(on_source_pad), &run);
            g_signal_connect(src, "source-setup", G_CALLBACK(on_source_setup), nullptr);
            gst_bin_add(GST_BIN(run.pipeline), src);
        }
    } else if (uri.kind == K::Rtp) {
        // What the SDP file describes, each stream on its port: a jitter buffer that keeps the
        // sender's RTP times (mode none, as for RTSP above), then parsebin's depayloader.
        require_elements({{"udpsrc", "gstreamer1.0-plugins-good"},
                          {"rtpjitterbuffer", "gstreamer1.0-plugins-good"},
                          {"parsebin", "gstreamer1.0-plugins-base"}});
        for (const RtpStream& st : rtp_streams(uri)) {
            GstElement* rx = make("udpsrc", "gstreamer1.0-plugins-good");
            CapsPtr caps(gst_caps_from_string(st.caps.c_str()));
            g_object_set(rx, "address", st.address.c_str(), "port", st.port, "caps", caps.get(),
                         "buffer-size", 2 * 1024 * 1024,
                         // Another listener on the port is an error, not a silent share.
                         "reuse", st.multicast, nullptr);
            GstElement* jb = make("rtpjitterbuffer", "gstreamer1.0-plugins-good");
            gst_util_set_object_arg(G_OBJECT(jb), "mode", "none");
            gst_bin_add_many(GST_BIN(run.pipeline), rx, jb, nullptr);
            gst_element_link(rx, jb);
            PadPtr pad(gst_element_get_static_pad(jb, "src"));
            on_source_pad(jb, pad.get(), &run);
        }
    } else {
        throw Error(
            ErrorCode::InvalidArgument,
            result.input +
                ": kms-stats probes files, -, http(s)://, rtsp://, rtp:// and test: sources");
    }

    run.loop = &loop;
    run.remote = uri.kind == K::Rtsp || uri.kind == K::Http || uri.kind == K::Rtp;
    BusPtr bus(gst_element_get_bus(run.pipeline));
    const guint watch = gst_bus_add_watch(bus.get(), on_bus, &run);
    double duration = o.duration;
    if (duration <= 0 && result.live) duration = kLiveDefault;
    if (duration > 0) loop.after(static_cast<unsigned>(duration * 1000), [&] { loop.quit(); });
    const auto t0 = std::chrono::steady_clock::now();
    if (gst_element_set_state(run.pipeline, GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE &&
        !run.failure) {
        // The element that failed posted why (a port in use, a missing device).
        if (GstMessage* msg = gst_bus_pop_filtered(bus.get(), GST_MESSAGE_ERROR)) {
            on_bus(bus.get(), msg, &run);
            gst_message_unref(msg);
        }
        if (!run.failure) run.failure = Error(ErrorCode::BadInput, "cannot be opened");
    }
    if (!run.failure) loop.run();
    result.measured_for =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // The header's duration, now that the demuxer has read it (a live source has none).
    gint64 declared = -1;
    if (!result.live && !run.failure &&
        gst_element_query_duration(run.pipeline, GST_FORMAT_TIME, &declared) && declared > 0)
        result.declared_duration = double(declared) / GST_SECOND;
    gst_element_set_state(run.pipeline, GST_STATE_NULL);
    g_source_remove(watch);
    if (run.failure) {
        // Drain the bus for a better message: a missing plugin is often posted after the error.
        throw Error(run.failure->code(), result.input + ": " + run.failure->what());
    }

    double first = -1, last = 0;
    std::optional<double> video_start, audio_start;
    for (auto& t : run.tracks) {
        TrackStats s = measure(*t, o.gap_threshold);
        if (s.frames == 0) continue;
        if (first < 0 || s.start < first) first = s.start;
        last = std::max(last, s.start + s.duration);
        if (s.kind == "video" && !video_start) video_start = s.start;
        if (s.kind == "audio" && !audio_start) audio_start = s.start;
        result.tracks.push_back(std::move(s));
    }
    if (result.tracks.empty())
        throw Error(ErrorCode::BadInput, result.input + ": no audio or video buffers came" +
                                             (result.live ? " while it was measured" : ""));
    // Positions from the start of the input, so a gap reads as "at 2.0 s".
    for (auto& s : result.tracks) {
        for (auto& g : s.gaps) g.at -= first;
    }
    result.duration = last - first;
    if (video_start && audio_start) result.av_offset = *audio_start - *video_start;
    std::stable_sort(result.tracks.begin(), result.tracks.end(),
                     [](const TrackStats& a, const TrackStats& b) { return a.kind > b.kind; });
    return result;
}

}  // namespace kms::stats
