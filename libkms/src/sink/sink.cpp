// Sink: a GstBin that takes one sink pad per stream. A container file or stdout gets a muxer
// whose own pad templates say what goes in untouched; null: discards; display: shows and plays.
#include "kms/sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <atomic>
#include <cctype>
#include <cerrno>
#include <cstdlib>
#include <cstring>
#include <map>
#include <utility>

#include <gst/video/video.h>

#include "core/log.hpp"
#include "kms/loop.hpp"
#include "kms/runtime.hpp"
#include "media/transcoder.hpp"
#include "pipeline/element.hpp"
#include "sink/guard.hpp"
#include "sink/paths.hpp"
#include "sink/size_cap.hpp"
#include "sink/staged.hpp"
#include "sink/target.hpp"

namespace kms {

namespace {

struct Muxer {
    const char* container;
    const char* factory;
    const char* package;
};

const Muxer kMuxers[] = {
    {"webm", "webmmux", "gstreamer1.0-plugins-good"},
    {"matroska", "matroskamux", "gstreamer1.0-plugins-good"},
    {"mp4", "mp4mux", "gstreamer1.0-plugins-good"},
    {"ogg", "oggmux", "gstreamer1.0-plugins-base"},
    // PCM audio: one track on a static pad; its sizes are written at the end.
    {"wav", "wavenc", "gstreamer1.0-plugins-good"},
};

// .weba, .mka and .m4a name audio-only files of WebM, Matroska and MP4: video stays out of them,
// as players and tags take these names to hold sound only.
bool audio_only_name(const std::string& path) {
    const size_t dot = path.rfind('.');
    if (dot == std::string::npos || path.find('/', dot) != std::string::npos) return false;
    std::string ext = path.substr(dot + 1);
    for (auto& c : ext) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
    return ext == "weba" || ext == "mka" || ext == "m4a";
}

struct SinkCore : Element::Core {
    MediaUri uri;
    SinkOptions opt;
    std::string container;        // "" for null: and display:
    GstElement* mux = nullptr;    // borrowed: the bin owns it
    GstElement* split = nullptr;  // splitmuxsink when segmented (it owns mux then)
    std::mutex mutex;
    unsigned made = 0;
    std::string pattern;                 // segmented: the path with %i and strftime fields
    std::unique_ptr<sink::SizeCap> cap;  // opt.max_bytes and opt.min_free
    bool made_check_file = false;        // the write check created uri.location, and it stays
    int made_slot = -1;                  // remove_at_exit() for it while it is empty
    // Files are written under a hidden name and take theirs once they hold bytes (staged.hpp):
    // every segment, and one file when its folder takes the hidden file. An existing file is
    // so replaced only once media is on disk: a run that fails first (a camera that is down,
    // --no-transcode) or is killed leaves the old recording as it was.
    std::shared_ptr<sink::StagedFiles> staged;
    std::string staging;      // one file: the hidden name it is written under; "" for none
    unsigned index_skip = 0;  // segment indexes passed over: their files were there
    std::mutex index_mutex;   // named_index only
    std::map<std::string, unsigned> named_index;  // under mutex: path -> the index it was named by
    // A buffer reached the muxer: it has begun (or is about to begin) its file with the tracks
    // it has, and takes no new one. Matroska and MP4 muxers fail the whole recording ("Could not
    // multiplex stream") when a pad is added after that, so a late stream is refused instead.
    std::atomic<bool> writing{false};

    std::string refusal(const std::string& kind) const override {
        if (uri.kind == MediaUri::Kind::Display && kind == "video" && !takes_kind(kind))
            return "there is no screen to show it on ($DISPLAY and $WAYLAND_DISPLAY are unset)";
        return writing ? "it came after " + name + " had begun writing, and a file takes no " +
                             "track once it has begun"
                       : std::string();
    }

    void watch_first_buffer(GstPad* muxer_pad) {
        auto core = std::static_pointer_cast<SinkCore>(shared_from_this());
        gst_pad_add_probe(
            muxer_pad,
            static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                         GST_PAD_PROBE_TYPE_BUFFER_LIST),
            [](GstPad*, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
                if (auto self = static_cast<std::weak_ptr<SinkCore>*>(d)->lock())
                    self->writing = true;
                return GST_PAD_PROBE_REMOVE;
            },
            new std::weak_ptr<SinkCore>(core),
            [](gpointer d) { delete static_cast<std::weak_ptr<SinkCore>*>(d); });
    }
    std::function<void(const Segment&)> segment_done;
    std::map<std::string, GstClockTime> opened;  // segment path -> running time it began
    std::function<void(const std::string&, const std::string&, const std::string&)> size_changed;

    SinkCore(const MediaUri& u, SinkOptions o) : Core("sink"), uri(u), opt(std::move(o)) {}
    ~SinkCore() override {
        forget_at_exit(made_slot);
        // A file this sink made that is still empty (the run failed or stopped before the
        // muxer wrote a byte; a first buffer at one pad may have come, the muxer waiting for
        // the others): gone, as no file at all is what happened. Cron must not find empty files.
        struct stat st = {};
        if (made_check_file && ::stat(uri.location.c_str(), &st) == 0 && S_ISREG(st.st_mode) &&
            st.st_size == 0)
            ::unlink(uri.location.c_str());
    }

    std::string where() const {
        return uri.kind == MediaUri::Kind::Stdio ? std::string("stdout") : uri.location;
    }

    void build_container(const std::string& format) {
        container = !format.empty()                     ? format
                    : uri.kind == MediaUri::Kind::Stdio ? "matroska"
                                                        : container_for_path(uri.location);
        if (container == "mkv") container = "matroska";
        const Muxer* m = nullptr;
        for (const auto& candidate : kMuxers)
            if (container == candidate.container) m = &candidate;
        if (!m)
            throw Error(ErrorCode::InvalidArgument,
                        uri.redacted() + ": unknown container" +
                            (format.empty() ? "; end the name in .webm, .mkv or .mp4"
                                            : " '" + format + "' (try webm, mkv, mp4)"));
        require_elements({{m->factory, m->package}});
        const bool segmented = opt.segment_s > 0 || opt.segment_bytes > 0;
        if (container == "wav" && uri.kind == MediaUri::Kind::Stdio)
            throw Error(ErrorCode::InvalidArgument,
                        "-: WAV is not written to a pipe (its sizes are written over its start "
                        "at the end); use --format ogg or mkv");
        if (segmented && opt.max_bytes)
            throw Error(ErrorCode::InvalidArgument,
                        uri.redacted() +
                            ": a size cap is for one file; segments are capped by their own size");
        if (segmented && container == "wav")
            throw Error(ErrorCode::InvalidArgument,
                        uri.redacted() +
                            ": WAV is not cut into segments (its muxer has one "
                            "fixed track); use .ogg, .mka or .m4a");
        if (uri.kind == MediaUri::Kind::File && segmented &&
            sink::folder_has_fields(uri.location)) {
            // Folders named by the date are made as segments need them; the folder above
            // them must be there and writable.
            sink::check_segment_folder(uri.location);
        } else if (uri.kind == MediaUri::Kind::File) {
            sink::FileTarget t = sink::prepare_file(uri.location, segmented);
            staged = t.staged;
            staging = t.staging;
            made_check_file = t.made_check_file;
            if (made_check_file && !segmented) made_slot = remove_at_exit(uri.location, true);
        }
        // The disk guard, for files: refused now when the disk is already that full.
        const std::string folder =
            uri.kind == MediaUri::Kind::File ? sink::fixed_folder(uri.location) : std::string();
        const unsigned long long min_free = folder.empty() ? 0 : opt.min_free;
        sink::check_free_space(folder, min_free);
        if (opt.max_bytes || min_free)
            cap = std::make_unique<sink::SizeCap>(opt.max_bytes, folder, min_free);
        mux = make_element(m->factory, m->package, "mux");
        const bool stream = uri.kind == MediaUri::Kind::Stdio;
        if (container == "webm" || container == "matroska") {
            // A pipe cannot be seeked back to write the index; and clusters of at most a
            // second leave a killed recording playable up to its last second.
            g_object_set(mux, "streamable", stream, nullptr);
            if (g_object_class_find_property(G_OBJECT_GET_CLASS(mux), "max-cluster-duration"))
                g_object_set(mux, "max-cluster-duration", GST_SECOND, nullptr);
        }
        if (container == "mp4" && !stream) {
            // Fragments of a second, so a killed recording plays up to its last second. Plain
            // fragmented MP4 (moov, then moof+mdat pairs, an mfra index at the end), not
            // first-moov-then-finalise: in that mode 1.22's mp4mux writes a track's samples as
            // they interleave, one run each, and drops the sizes of a run whose first sample
            // has the size the fragment began with (atoms.c, atom_traf_add_samples); ffmpeg
            // then refuses the killed file. Here each fragment holds one run per track.
            g_object_set(mux, "fragment-duration", 1000u, nullptr);
        }
        if (!stream && (opt.segment_s > 0 || opt.segment_bytes > 0)) return build_segments();
        GstElement* out = nullptr;
        if (stream) {
            out = make_element("fdsink", "gstreamer1.0-plugins-base", "out");
            g_object_set(out, "fd", 1, "sync", FALSE, nullptr);
        } else {
            out = make_element("filesink", "gstreamer1.0-plugins-base", "out");
            g_object_set(out, "location", (staging.empty() ? uri.location : staging).c_str(),
                         "sync", FALSE, "async", FALSE, nullptr);
        }
        if (!staging.empty()) {
            gst::PadPtr in(gst_element_get_static_pad(out, "sink"));
            staged->watch(in.get());
        }
        gst_bin_add_many(GST_BIN(bin.get()), mux, out, nullptr);
        if (!gst_element_link(mux, out))
            throw Error(ErrorCode::Runtime, "cannot link " + container + " to its output");
        if (cap) {
            gst::PadPtr src(gst_element_get_static_pad(mux, "src"));
            cap->watch_output(src.get());
        }
    }

    // splitmuxsink around the muxer: a new file at a key frame once the current one is long
    // or big enough, each finalised as a whole file.
    void build_segments() {
        require_elements({{"splitmuxsink", "gstreamer1.0-plugins-good"}});
        pattern = uri.location;
        if (pattern.find('%') == std::string::npos) {
            const size_t slash = pattern.rfind('/');
            size_t dot = pattern.rfind('.');
            if (dot == std::string::npos || (slash != std::string::npos && dot < slash))
                dot = pattern.size();
            pattern.insert(dot, "-%i");
        }
        // The check above made it; the segments are the files.
        if (made_check_file) ::unlink(uri.location.c_str());
        split = make_element("splitmuxsink", "gstreamer1.0-plugins-good", "split");
        g_object_set(split, "muxer", mux, "max-size-time", guint64(opt.segment_s * GST_SECOND),
                     "max-size-bytes", guint64(opt.segment_bytes), "send-keyframe-requests",
                     opt.segment_s > 0 && opt.segment_bytes == 0, nullptr);
        if (opt.segment_bytes > 0) {
            size_cut = std::make_shared<SizeCut>();
            size_cut->split = split;
            size_cut->limit = double(opt.segment_bytes);
            size_cut->max_time = GstClockTime(opt.segment_s * GST_SECOND);
            g_object_get(split, "mux-overhead", &size_cut->overhead, nullptr);
            size_cut->fill = size_cut->limit / (1 + size_cut->overhead) * kFill;
        }
        auto* weak = new std::weak_ptr<Core>(weak_from_this());
        g_signal_connect_data(
            split, "format-location-full",
            G_CALLBACK(
                +[](GstElement* splitter, guint index, GstSample* first, gpointer d) -> gchar* {
                    auto self = static_cast<std::weak_ptr<Core>*>(d)->lock();
                    if (!self) return nullptr;
                    auto& s = static_cast<SinkCore&>(*self);
                    // splitmuxsink's own thread; only it touches index_skip. A name another
                    // recording took between the look and the staging is passed over too.
                    const time_t started = started_at(splitter, first);
                    std::string path;  // (one name a line: this is a macro's argument)
                    std::string hidden;
                    bool busy = true;
                    for (int tries = 0; tries < 8 && busy; ++tries) {
                        path = sink::segment_name(s.pattern, index, started, s.index_skip);
                        hidden = s.staged->stage(path, nullptr, &busy, true);
                    }
                    if (busy) {
                        // Taken under our hands eight times: a free name beside the last,
                        // written as it is rather than over another recording's file.
                        path = sink::free_sibling(path);
                        KMS_LOG(sink, WARNING,
                                "segment names are being taken as they are "
                                "staged; this one is %s",
                                path.c_str());
                    }
                    {
                        // Not SinkCore::mutex: splitmuxsink holds its own lock here, and
                        // request_sink() takes that one under ours.
                        std::lock_guard lock(s.index_mutex);
                        s.named_index[path] = index + s.index_skip;
                    }
                    // A folder that takes no hidden file (or a name too long for one): as it is.
                    return g_strdup((hidden.empty() ? path : hidden).c_str());
                }),
            weak, [](gpointer d, GClosure*) { delete static_cast<std::weak_ptr<Core>*>(d); },
            GConnectFlags(0));
        // Our own file sink, to see its buffers: each file takes its name once they are on
        // disk (staged.hpp).
        staged = std::make_shared<sink::StagedFiles>();
        GstElement* out = make_element("filesink", "gstreamer1.0-plugins-base", "out");
        gst::PadPtr out_pad(gst_element_get_static_pad(out, "sink"));
        staged->watch(out_pad.get());
        // The disk guard counts what reaches the files, every segment's.
        if (cap) cap->watch_output(out_pad.get());
        g_object_set(split, "sink", out, nullptr);
        gst_bin_add(GST_BIN(bin.get()), split);
    }

    // When the first frame of a file was recorded, in wall-clock seconds. splitmuxsink names a
    // file once it holds a whole GOP, so a camera passed through with key frames seconds apart
    // would get a name that late: cam-094450.mkv starting at 09:44:42. The frame's running
    // time against the pipeline clock's says how long ago it came.
    static time_t started_at(GstElement* split, GstSample* first) {
        const time_t now = std::time(nullptr);
        GstBuffer* buf = first ? gst_sample_get_buffer(first) : nullptr;
        const GstSegment* seg = first ? gst_sample_get_segment(first) : nullptr;
        gst::ObjectPtr<GstClock> clock(gst_element_get_clock(split));
        if (!buf || !seg || seg->format != GST_FORMAT_TIME || !clock) return now;
        const GstClockTime t = GST_BUFFER_DTS_OR_PTS(buf);
        const GstClockTime rt = gst_segment_to_running_time(seg, GST_FORMAT_TIME, t);
        // The pipeline's base time: splitmuxsink's own is still 0 when it names its first
        // file (the sink joined a playing pipeline), and the clock's whole time, the time since
        // boot, named a camera's first segment by when the machine started.
        gst::ObjectPtr<GstObject> top(GST_OBJECT(gst_object_ref(split)));
        while (GstObject* parent = gst_object_get_parent(top.get())) top.reset(parent);
        const GstClockTime base = gst_element_get_base_time(GST_ELEMENT(top.get()));
        const GstClockTime now_rt = gst_clock_get_time(clock.get()) - base;
        if (base == 0 || !GST_CLOCK_TIME_IS_VALID(rt) || rt > now_rt ||
            now_rt - rt > 3600 * GST_SECOND)
            return now;
        return now - static_cast<time_t>((now_rt - rt + GST_SECOND / 2) / GST_SECOND);
    }

    // --segment-size. splitmuxsink cuts by size only at the key frames that come (it asks for
    // them by time alone: send-keyframe-requests needs max-size-bytes 0), before a GOP that
    // would take the file past the size. With key frames far apart (a camera's 10 s, or an
    // encoder's 60 frames at a low frame rate) a file ends far short of the size, or is one
    // GOP far past it. So the sink counts what goes in as splitmuxsink does, asks upstream for a
    // key frame (GstForceKeyUnit) when the next frame could fill the file, and has splitmuxsink
    // cut there (split-after). An encoder in this process makes the very next frame a key frame
    // (the event reaches it on the thread that pushes its frames); a camera or file passed
    // through does not (rtspsrc's RTP session sends no FIR or PLI under the AVP profile), and
    // splitmuxsink's own rule decides, as before. Streaming threads.
    struct SizeCut {
        std::mutex mutex;
        GstElement* split = nullptr;  // borrowed: the probes run on its own pads
        double limit = 0;             // the size, bytes
        double overhead = 0.02;       // splitmuxsink's mux-overhead: it weighs bytes by 1 + it
        double fill = 0;              // bytes in: a file is full from here
        GstClockTime max_time = 0;    // --segment as well: splitmuxsink also cuts by time
        guint64 file = 0;             // whole GOPs in the current file (mutex)
        guint64 gop = 0;              // since the last video key frame, every stream (mutex)
        bool asked = false;           // a key frame asked for in this GOP (mutex)
        GstClockTime start = GST_CLOCK_TIME_NONE;      // where the current file began (mutex)
        GstClockTime gop_start = GST_CLOCK_TIME_NONE;  // where this GOP began (mutex)
        guint asks = 0;                                // video thread only
    };
    // A file is full at this share of what splitmuxsink lets in: the rest is for the frames
    // that come while a key frame is made elsewhere (a peer's encoder, a round trip away).
    static constexpr double kFill = 0.97;
    std::shared_ptr<SizeCut> size_cut;

    void count_bytes(GstPad* split_pad, bool video) {
        if (!size_cut) return;
        gst_pad_add_probe(split_pad, GST_PAD_PROBE_TYPE_BUFFER, video ? count_video : count_other,
                          new std::shared_ptr<SizeCut>(size_cut),
                          [](gpointer d) { delete static_cast<std::shared_ptr<SizeCut>*>(d); });
    }

    static GstPadProbeReturn count_other(GstPad*, GstPadProbeInfo* info, gpointer d) {
        SizeCut& c = **static_cast<std::shared_ptr<SizeCut>*>(d);
        std::lock_guard lock(c.mutex);
        c.gop += gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
        return GST_PAD_PROBE_OK;
    }

    static GstPadProbeReturn count_video(GstPad* pad, GstPadProbeInfo* info, gpointer d) {
        SizeCut& c = **static_cast<std::shared_ptr<SizeCut>*>(d);
        GstBuffer* buf = GST_PAD_PROBE_INFO_BUFFER(info);
        const guint64 size = gst_buffer_get_size(buf);
        bool cut = false, ask = false;
        guint64 file = 0;
        {
            std::lock_guard lock(c.mutex);
            if (!GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT)) {
                // A GOP is whole. splitmuxsink starts a new file with it when the file has a
                // GOP already and both weigh more than the size, or last longer than
                // --segment; otherwise it goes in.
                const GstClockTime t =
                    GST_BUFFER_PTS_IS_VALID(buf) ? GST_BUFFER_PTS(buf) : GST_BUFFER_DTS(buf);
                const bool too_long = c.max_time > 0 && GST_CLOCK_TIME_IS_VALID(t) &&
                                      GST_CLOCK_TIME_IS_VALID(c.start) && t > c.start &&
                                      t - c.start > c.max_time;
                const bool began =
                    c.file > 0 && (double(c.file + c.gop) * (1 + c.overhead) > c.limit || too_long);
                c.file = began ? c.gop : c.file + c.gop;
                if (began) c.start = c.gop_start;
                // The file ends before the key frame it asked for (or one that came first).
                // Only then: 1.22's h264parse marks any frame with an I slice a key frame, and a
                // file that began at one would lack its parameter sets until the next IDR.
                cut = c.asked && !began;
                file = c.file;
                if (cut) c.file = 0;
                if (cut || !GST_CLOCK_TIME_IS_VALID(c.start)) c.start = t;
                c.gop_start = t;
                c.gop = 0;
                c.asked = false;
            }
            c.gop += size;
            if (!c.asked && double(c.file + c.gop + size) >= c.fill) {
                c.asked = ask = true;
                file = c.file + c.gop;
            }
        }
        if (cut) {
            KMS_LOG(sink, DEBUG, "a file of %" G_GUINT64_FORMAT " bytes ends at a key frame", file);
            g_signal_emit_by_name(c.split, "split-after");
        }
        if (ask) {
            KMS_LOG(sink, DEBUG, "%" G_GUINT64_FORMAT " bytes in the file: asking for a key frame",
                    file);
            gst_pad_push_event(pad, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE,
                                                                                TRUE, c.asks++));
        }
        return GST_PAD_PROBE_OK;
    }

    // splitmuxsink says when a file opens and closes (running times), on the main loop.
    void on_element_message(GstMessage* msg) override {
        const GstStructure* st = gst_message_get_structure(msg);
        if (!split || !st) return;
        const std::string what = gst_structure_get_name(st);
        const char* location = gst_structure_get_string(st, "location");
        GstClockTime rt = GST_CLOCK_TIME_NONE;
        gst_structure_get_clock_time(st, "running-time", &rt);
        if (!location) return;
        if (what == "splitmuxsink-fragment-opened") {
            opened[location] = rt;
        } else if (what == "splitmuxsink-fragment-closed") {
            // Written under its hidden name, it takes its own now if it has not yet.
            Segment seg;
            seg.path = staged->finish(location);
            seg.index = segments_closed++;
            {
                std::lock_guard lock(index_mutex);
                // The index in its name, which a restart moves on past the files there.
                if (auto n = named_index.find(seg.path); n != named_index.end()) {
                    seg.index = n->second;
                    named_index.erase(n);
                }
            }
            auto it = opened.find(location);
            if (it != opened.end() && GST_CLOCK_TIME_IS_VALID(rt) &&
                GST_CLOCK_TIME_IS_VALID(it->second))
                seg.duration_s = double(rt - it->second) / GST_SECOND;
            if (it != opened.end()) opened.erase(it);
            if (seg.path.empty()) return;  // nothing was written; the file is gone
            struct stat st_file = {};
            seg.bytes = ::stat(seg.path.c_str(), &st_file) == 0 ? st_file.st_size : 0;
            if (segment_done) segment_done(seg);
        }
    }
    unsigned segments_closed = 0;

    GstPadTemplate* mux_template(const std::string& kind) const {
        if (mux && container == "wav")
            return kind == "audio" ? gst_element_get_pad_template(mux, "sink") : nullptr;
        return mux ? gst_element_get_pad_template(mux, (kind + "_%u").c_str()) : nullptr;
    }

    static bool has_screen() {
        for (const char* var : {"DISPLAY", "WAYLAND_DISPLAY"})
            if (const char* v = std::getenv(var); v && *v) return true;
        return false;
    }

    bool takes_kind(const std::string& kind) const override {
        // Video on a screen needs a graphical session: without one autovideosink falls through
        // to DirectFB or the framebuffer, and 1.22's dfbvideosink crashes the process.
        if (uri.kind == MediaUri::Kind::Display && kind == "video") return has_screen();
        if (!mux) return kind == "video" || kind == "audio";
        if (kind == "video" && audio_only_name(uri.location)) return false;
        // Only kinds kms can also encode for it: Ogg's video pad wants Theora.
        return mux_template(kind) != nullptr && !encoder(kind).empty();
    }

    bool takes_as_is(const GstCaps* caps) const override {
        const std::string media = media_of(caps);
        const bool raw = media == "video/x-raw" || media == "audio/x-raw";
        if (uri.kind == MediaUri::Kind::Display) return raw;
        if (!mux) return true;  // null: takes anything
        if (raw) return false;  // a container of raw frames is never what anyone wants
        GstPadTemplate* t = mux_template(kind_of(caps));
        if (!t) return false;
        gst::CapsPtr tcaps(gst_pad_template_get_caps(t));
        for (guint i = 0; i < gst_caps_get_size(tcaps.get()); ++i)
            if (media == gst_structure_get_name(gst_caps_get_structure(tcaps.get(), i)))
                return true;
        return false;
    }

    std::string encoder(const std::string& kind) const override {
        return mux ? media::encoder_for_container(container, kind) : std::string();
    }

    // A video stream into a container: H.264 and H.265 as avc3/hev1 (parameter sets in the
    // stream before each key frame), and a guard that keeps later caps of the same codec from
    // the muxer. A size change is then decoded from the stream itself; the muxers would do
    // worse with the caps: 1.22's matroskamux refuses new avc codec_data (the recording would
    // stop), and mp4mux takes it but files the last sample under the new sample description
    // and, fragmented, rewrites a grown moov over the first fragment at the end.
    GstPad* request_sink_for(const std::string& kind, const GstCaps* /*upstream*/,
                             const std::string& media) override {
        if (kind != "video" || !mux) return request_sink(kind);
        std::string desc;  // what goes before the muxer; none for other codecs
        if (media == "video/x-h264")
            desc =
                "h264parse ! "
                "capsfilter caps=video/x-h264,stream-format=avc3,alignment=au";
        else if (media == "video/x-h265")
            desc =
                "h265parse ! "
                "capsfilter caps=video/x-h265,stream-format=hev1,alignment=au";
        std::lock_guard lock(mutex);
        if (writing) return nullptr;
        gst::PadPtr target(split ? gst_element_request_pad_simple(split, "video")
                                 : gst_element_request_pad_simple(mux, "video_%u"));
        if (!target) return nullptr;
        watch_first_buffer(target.get());
        if (split) count_bytes(target.get(), true);
        if (cap) cap->watch_input(target.get());
        const std::string pad_name = kind + "_in_" + std::to_string(made++);
        if (desc.empty()) {
            // The guard rides on the ghost pad's own source side: every buffer of a recording
            // passes here, and an element more on its way costs (scripts/bench/record_parallel).
            GstPad* in = ghost(target.get(), pad_name);
            if (!in) {
                gst_element_release_request_pad(split ? split : mux, target.get());
                throw Error(ErrorCode::Runtime, "the " + container + " muxer refused " + media);
            }
            gst::PadPtr inner(GST_PAD(gst_proxy_pad_get_internal(GST_PROXY_PAD(in))));
            add_guard(inner.get(), kind);
            return in;
        }
        GstElement* guard = make_bin(desc);
        gst_bin_add(GST_BIN(bin.get()), guard);
        gst_element_sync_state_with_parent(guard);
        gst::PadPtr out(gst_element_get_static_pad(guard, "src"));
        gst::PadPtr in(gst_element_get_static_pad(guard, "sink"));
        if (GstPadLinkReturn r = gst_pad_link(out.get(), target.get()); r != GST_PAD_LINK_OK) {
            gst_element_release_request_pad(split ? split : mux, target.get());
            gst_element_set_state(guard, GST_STATE_NULL);
            gst_bin_remove(GST_BIN(bin.get()), guard);
            throw Error(ErrorCode::Runtime, "the " + container + " muxer refused " + media + " (" +
                                                gst_pad_link_get_name(r) + ")");
        }
        add_guard(out.get(), kind);
        return ghost(in.get(), pad_name);
    }

    // The guard (sink/guard.hpp) on the source pad that feeds a muxer input.
    void add_guard(GstPad* src, const std::string& kind) {
        std::weak_ptr<SinkCore> weak = std::static_pointer_cast<SinkCore>(shared_from_this());
        sink::add_guard(src, kind, [weak](const std::string& from, const std::string& to) {
            post_to_main([weak, from, to] {
                if (auto self = weak.lock())
                    if (self->size_changed) self->size_changed("video", from, to);
            });
        });
    }

    GstPad* request_sink(const std::string& kind) override {
        std::lock_guard lock(mutex);
        GstPad* target = nullptr;
        gst::PadPtr owned;
        if ((split || mux) && writing) return nullptr;
        if (split) {
            // splitmuxsink takes one video stream, on its pad "video".
            target = gst_element_request_pad_simple(split, kind == "video" ? "video" : "audio_%u");
            if (!target) return nullptr;
            owned.reset(target);
            watch_first_buffer(target);
            count_bytes(target, kind == "video");
            if (cap) cap->watch_input(target);
        } else if (mux && container == "wav") {
            // One track, on wavenc's own pad: a second audio stream is left out.
            owned.reset(gst_element_get_static_pad(mux, "sink"));
            if (!owned || gst_pad_is_linked(owned.get())) return nullptr;
            target = owned.get();
            watch_first_buffer(target);
            if (cap) cap->watch_input(target);
        } else if (mux) {
            target = gst_element_request_pad_simple(mux, (kind + "_%u").c_str());
            if (!target) return nullptr;
            owned.reset(target);  // the muxer keeps its own reference
            watch_first_buffer(target);
            if (cap) cap->watch_input(target);
        } else {
            const bool video = kind == "video";
            std::string desc = "fakesink sync=false async=false";
            if (uri.kind == MediaUri::Kind::Display)
                desc = video ? "videoconvert ! videoscale ! autovideosink sync=false"
                             : "audioconvert ! audioresample ! autoaudiosink sync=false";
            GstElement* end = make_bin(desc);
            gst_bin_add(GST_BIN(bin.get()), end);
            gst_element_sync_state_with_parent(end);
            owned.reset(gst_element_get_static_pad(end, "sink"));
            target = owned.get();
        }
        GstPad* in = ghost(target, kind + "_in_" + std::to_string(made++));
        if (in && (split || mux)) {
            gst::PadPtr inner(GST_PAD(gst_proxy_pad_get_internal(GST_PROXY_PAD(in))));
            add_guard(inner.get(), kind);
        }
        return in;
    }

    bool is_sink() const override { return true; }

    // The file is written whole (filesink wrote what it held on its end of stream): a
    // recording too short to fill filesink's first batch takes its name now.
    void on_ended() override {
        if (!split && !staging.empty()) staged->finish(staging);
    }

    std::string describe_error(const GError* e, ErrorCode code) const override {
        if (code != ErrorCode::Io && uri.kind != MediaUri::Kind::File &&
            uri.kind != MediaUri::Kind::Stdio)
            return uri.redacted() + ": " + e->message;
        // A file that cannot be opened (a segment's folder that cannot be made) is no full disk.
        const bool opening =
            e->domain == GST_RESOURCE_ERROR &&
            (e->code == GST_RESOURCE_ERROR_OPEN_WRITE || e->code == GST_RESOURCE_ERROR_NOT_FOUND);
        const char* hint = uri.kind == MediaUri::Kind::Stdio ? " (did the reader of stdout exit?)"
                           : opening ? " (is its folder there, and writable?)"
                                     : " (is the disk full?)";
        return uri.redacted() + ": cannot write" +
               (uri.kind == MediaUri::Kind::Stdio ? " stdout" : "") + ": " + e->message + hint;
    }
};

SinkCore& core_of(const Element& e) {
    return static_cast<SinkCore&>(e.core());
}

}  // namespace

Sink::Sink(const MediaUri& uri, SinkOptions options)
    : Element(std::make_shared<SinkCore>(uri, options)) {
    init();
    auto& c = core_of(*this);
    switch (uri.kind) {
        case MediaUri::Kind::File:
        case MediaUri::Kind::Stdio:
            c.build_container(options.format);
            break;
        case MediaUri::Kind::Null:
            break;
        case MediaUri::Kind::Display:
            require_elements({{"autovideosink", "gstreamer1.0-plugins-good"},
                              {"autoaudiosink", "gstreamer1.0-plugins-good"}});
            break;
        default:
            throw Error(ErrorCode::InvalidArgument,
                        uri.redacted() + ": this kind of sink is not supported yet");
    }
}

Sink::~Sink() = default;

std::string Sink::container() const {
    return core_of(*this).container;
}

bool Sink::writing() const {
    const auto& c = core_of(*this);
    return c.writing && (c.staging.empty() || c.staged->named() > 0);
}

bool Sink::takes_as_is(const std::string& media) const {
    gst::CapsPtr caps(gst_caps_new_empty_simple(media.c_str()));
    return core_of(*this).takes_as_is(caps.get());
}

bool Sink::takes_codec(const std::string& codec) const {
    const std::string media = media::media_of_codec(codec);
    return !media.empty() && takes_as_is(media);
}

void Sink::on_size_change(
    std::function<void(const std::string&, const std::string&, const std::string&)> fn) {
    core_of(*this).size_changed = std::move(fn);
}

std::string Sink::segment_pattern() const {
    return core_of(*this).pattern;
}

void Sink::on_full(std::function<void()> fn) {
    if (auto& cap = core_of(*this).cap) cap->on_reached(std::move(fn));
}

void Sink::on_disk_low(std::function<void(unsigned long long)> fn) {
    if (auto& cap = core_of(*this).cap) cap->on_disk_low(std::move(fn));
}

void Sink::on_segment(std::function<void(const Segment&)> fn) {
    core_of(*this).segment_done = std::move(fn);
}

}  // namespace kms
