// Filter: an element with one branch per stream it takes, made when the stream arrives.
//
// A kind a stage changes (flip, grayscale, a fragment) is taken raw, so connect() puts the
// decoder in front; the branch runs the stages and encodes back into the codec that came in.
// A kind that stages only watch (qr, level) goes through encoded, untouched, and a tee feeds a
// decoded copy to the stages. A kind no stage names passes through.
//
// Threads: a branch starts with a queue of its own (see branch()). On live input that queue
// leaks: a frame the filter cannot take in time is dropped there, counted, rather than making
// the source fall behind.
#include "kms/filter.hpp"

#include <atomic>
#include <cctype>
#include <cstring>
#include <map>
#include <mutex>
#include <set>

#include "core/log.hpp"
#include "kms/loop.hpp"
#include "kms/runtime.hpp"
#include "media/decoder.hpp"
#include "media/frame_pool.hpp"
#include "media/transcoder.hpp"
#include "pipeline/element.hpp"

namespace kms {

namespace {

// Frames a live branch may hold before it drops: enough to ride out a slow frame.
constexpr unsigned kLiveQueueFrames = 5;
// Decoded frames the decoder of a file's branch may have out at once (bounds_decoder()): the
// one being filtered. A second, ready while the first is filtered, held 3.2 MB more at 1080p
// (118 MB against 115 peak, where gst-launch takes 111) for 1.6% more speed on a 300-frame
// 1080p VP8 file (5.78 s against 5.87, four runs each, two cores); libvpx's decoder and
// encoder take 86% of the time either way.
constexpr unsigned kDecodedFrames = 1;

// A field of a bus message as JSON, for the values analysis elements post.
Json value_json(const GValue* v) {
    if (!v) return nullptr;
    if (G_VALUE_HOLDS_STRING(v)) return g_value_get_string(v) ? g_value_get_string(v) : "";
    if (G_VALUE_HOLDS_BOOLEAN(v)) return static_cast<bool>(g_value_get_boolean(v));
    if (G_VALUE_HOLDS_INT(v)) return g_value_get_int(v);
    if (G_VALUE_HOLDS_UINT(v)) return g_value_get_uint(v);
    if (G_VALUE_HOLDS_INT64(v)) return g_value_get_int64(v);
    if (G_VALUE_HOLDS_UINT64(v)) return g_value_get_uint64(v);
    if (G_VALUE_HOLDS_DOUBLE(v)) return std::round(g_value_get_double(v) * 100) / 100;
    if (G_VALUE_HOLDS_FLOAT(v)) return std::round(g_value_get_float(v) * 100) / 100;
    if (GST_VALUE_HOLDS_LIST(v) || GST_VALUE_HOLDS_ARRAY(v)) {
        Json a = Json::array();
        const bool list = GST_VALUE_HOLDS_LIST(v);
        const guint n = list ? gst_value_list_get_size(v) : gst_value_array_get_size(v);
        for (guint i = 0; i < n; ++i)
            a.push_back(value_json(list ? gst_value_list_get_value(v, i)
                                        : gst_value_array_get_value(v, i)));
        return a;
    }
    G_GNUC_BEGIN_IGNORE_DEPRECATIONS
    if (G_VALUE_HOLDS(v, g_value_array_get_type())) {  // level's rms and peak
        Json a = Json::array();
        if (auto* arr = static_cast<GValueArray*>(g_value_get_boxed(v)))
            for (guint i = 0; i < arr->n_values; ++i) a.push_back(value_json(&arr->values[i]));
        return a;
    }
    G_GNUC_END_IGNORE_DEPRECATIONS
    if (GST_VALUE_HOLDS_STRUCTURE(v)) {
        Json o = Json::object();
        const GstStructure* s = gst_value_get_structure(v);
        for (int i = 0; i < gst_structure_n_fields(s); ++i) {
            const char* f = gst_structure_nth_field_name(s, static_cast<guint>(i));
            o[f] = value_json(gst_structure_get_value(s, f));
        }
        return o;
    }
    return nullptr;
}

// Seconds of media time a message is about, from the fields analysis elements give it.
Json media_time(const GstStructure* s) {
    for (const char* f : {"stream-time", "timestamp"}) {
        GstClockTime t = GST_CLOCK_TIME_NONE;
        if (gst_structure_get_clock_time(s, f, &t) && GST_CLOCK_TIME_IS_VALID(t))
            return std::round(static_cast<double>(t) / 1e6) / 1000;
    }
    return nullptr;
}

struct FilterCore : Element::Core {
    FilterOptions opt;
    Filter::EventFn on_event;
    std::mutex mutex;
    unsigned made = 0;
    struct Counts {
        std::atomic<unsigned long long> in{0}, out{0}, frames{0};
        GstElement* queue = nullptr;  // the leaky queue of a live branch; owned by the bin
    };
    std::map<std::string, std::shared_ptr<Counts>> counts;  // by kind (mutex)

    FilterCore(FilterOptions o, Filter::EventFn fn)
        : Core("filter"), opt(std::move(o)), on_event(std::move(fn)) {}

    bool changes(const std::string& kind) const {
        for (const auto& s : opt.stages)
            if (s.kind == kind && !s.analysis) return true;
        return false;
    }
    // --video-codec, --audio-codec or --max-bitrate ask for what the stream as it came is not,
    // filtered or not: it is decoded and encoded again.
    bool recodes(const std::string& kind, const GstCaps* upstream) const {
        if (kind == "video" && opt.max_video_kbps) return true;
        // "raw" (what null: and display: ask for) means only "do not encode what is filtered".
        const std::string& want = kind == "video" ? opt.video_codec : opt.audio_codec;
        if (want.empty() || want == "raw") return false;
        return media::media_of_codec(want) != media_of(upstream);
    }
    bool alters(const std::string& kind, const GstCaps* upstream) const {
        return changes(kind) || recodes(kind, upstream);
    }
    // Whether the decoder in front of kind's branch may be held to kDecodedFrames frames out
    // at a time (media::bound_decoded_frames): a file (live input has its leaky queue instead),
    // decoded here and encoded again, through stages known to let each frame go once done with it.
    // A fragment may hold one (videorate does), and so does fps; a raw output's sink keeps
    // its last frame.
    bool bounds_decoder(const std::string& kind, const GstCaps* upstream) const {
        static const std::set<std::string> kLetGo = {"flip",      "rotate", "scale",
                                                     "grayscale", "text",   "clock"};
        // VP8 only: vp8dec copies each frame out of libvpx into a buffer of the pool, so the
        // bound holds. avdec_* makes its own pool when offered fewer than 32 buffers, vp9dec
        // hands out libvpx's own frames, and mpeg2dec keeps its reference frames in the pool
        // (with two it would wait forever).
        if (opt.live || kind != "video" || media_of(upstream) != "video/x-vp8" ||
            !alters(kind, upstream) || encode_tail(kind, upstream).empty())
            return false;
        for (const auto& s : opt.stages)
            if (s.kind == kind && !kLetGo.count(s.name)) return false;
        return true;
    }
    bool watches(const std::string& kind) const {
        for (const auto& s : opt.stages)
            if (s.kind == kind && s.analysis) return true;
        return false;
    }

    // A picture that cannot be read fails in its element with a message that names no file
    // (gdkpixbufoverlay: "Could not load overlay image."): the stage's file is named here.
    std::string describe_error(const GError* e, ErrorCode code) const override {
        std::string text = Core::describe_error(e, code);
        // A picture loader's failures: not a decoder's on the stream, which has its type.
        if ((e->domain == GST_RESOURCE_ERROR && e->code == GST_RESOURCE_ERROR_OPEN_READ) ||
            (e->domain == GST_STREAM_ERROR && e->code == GST_STREAM_ERROR_TYPE_NOT_FOUND))
            for (const auto& s : opt.stages)
                if (!s.file.empty())
                    text += " (filter " + s.name + " reads " + s.file +
                            ": is it a PNG or JPEG picture?)";
        return text;
    }

    bool takes_kind(const std::string& kind) const override {
        return kind == "video" || kind == "audio";
    }
    bool takes_as_is(const GstCaps* caps) const override {
        const std::string media = media_of(caps);
        return !alters(kind_of(caps), caps) || media == "video/x-raw" || media == "audio/x-raw";
    }
    std::string encoder(const std::string&) const override { return {}; }

    // What filtered media of kind is encoded into, given what came in.
    std::string encode_tail(const std::string& kind, const GstCaps* upstream) const {
        const std::string& want = kind == "video" ? opt.video_codec : opt.audio_codec;
        if (want == "raw") return {};
        const std::string in = media_of(upstream);
        const std::string media = want.empty() ? in : media::media_of_codec(want);
        unsigned kbps = kind == "video" ? opt.max_video_kbps : 0;
        if (kind == "video" && !kbps) {
            // Enough for the picture that came in: about 2 bits a pixel a second.
            gint w = 0, h = 0;
            const GstStructure* s = upstream && gst_caps_get_size(upstream)
                                        ? gst_caps_get_structure(upstream, 0)
                                        : nullptr;
            if (s && gst_structure_get_int(s, "width", &w) &&
                gst_structure_get_int(s, "height", &h))
                kbps =
                    std::max(300u, static_cast<unsigned>(w) * static_cast<unsigned>(h) * 2 / 1000);
        }
        return media::encoder_for_media(media, kbps);
    }

    // The stages of kind, each behind a converter (a stage may want another pixel format);
    // analysis stages may end in something that is not media (pocketsphinx gives text).
    std::string stages_of(const std::string& kind, bool media_out, const GstCaps* upstream) const {
        const std::string convert = kind == "video" ? "videoconvert" : "audioconvert";
        FrameInfo f;
        if (upstream && gst_caps_get_size(upstream)) {
            const GstStructure* st = gst_caps_get_structure(upstream, 0);
            gst_structure_get_int(st, "width", &f.width);
            gst_structure_get_int(st, "height", &f.height);
            gst_structure_get_fraction(st, "framerate", &f.fps_n, &f.fps_d);
        }
        std::string d;
        for (const auto& s : opt.stages) {
            if (s.kind != kind) continue;
            // Said now, in the user's terms; the element would refuse the caps ("not-negotiated").
            if ((f.width > 0 && unsigned(f.width) < s.min_width) ||
                (f.height > 0 && unsigned(f.height) < s.min_height))
                throw Error(ErrorCode::InvalidArgument,
                            "filter " + s.name + ": it cuts " + std::to_string(s.min_width - 1) +
                                " of " + std::to_string(f.width) + " pixels across and " +
                                std::to_string(s.min_height - 1) + " of " +
                                std::to_string(f.height) + " down, which leaves nothing");
            d += " ! " + convert + " ! " + fill_frame(s.description, f);
        }
        return media_out ? d + " ! " + convert : d;
    }

    // The queue that starts a branch: it leaks on live input.
    std::string entry_queue(const std::string& queue_name) const {
        return opt.live ? "queue name=" + queue_name + " leaky=downstream max-size-buffers=" +
                              std::to_string(kLiveQueueFrames) + " max-size-bytes=0 max-size-time=0"
                        : "queue name=" + queue_name +
                              " max-size-buffers=1 max-size-bytes=0 max-size-time=0";
    }

    // The branch for one stream, gst-launch syntax: its first element is "in", the one whose
    // src pad goes downstream "out".
    std::string branch(const std::string& kind, const GstCaps* upstream) const {
        if (alters(kind, upstream)) {
            const std::string tail = encode_tail(kind, upstream);
            // The decoder runs on a thread of its own (it decodes the next frame while this
            // one is filtered, and hands it over once this one is done); filtering and
            // encoding share the next. A thread for the encoder too was slower and took a third
            // more CPU: libvpx's encoder threads spin while they wait for each other, and on
            // two cores another busy thread takes their time (scripts/bench/filter_throughput).
            return entry_queue("in") + stages_of(kind, true, upstream) +
                   (tail.empty() ? "" : " ! " + tail) + " ! identity name=out";
        }
        if (watches(kind)) {
            const std::string media = media_of(upstream);
            const bool raw = media == "video/x-raw" || media == "audio/x-raw";
            std::string copy =
                raw ? std::string()
                    : " ! " + media::decoder_for(const_cast<GstCaps*>(upstream), media);
            // The copy's queue leaks on live input only: on a file the analysis sees every
            // frame, and the file waits for it.
            return "tee name=in ! queue max-size-buffers=0 max-size-bytes=0 "
                   "max-size-time=3000000000 ! " +
                   same(upstream) + " in. ! " + entry_queue("copy") + copy +
                   stages_of(kind, false, upstream) + " ! fakesink sync=false async=false";
        }
        return "queue name=in ! " + same(upstream);
    }

    // The end of a branch that gives what it took. Its media type is stated, because connect()
    // reads what a pad gives before anything is linked upstream of it.
    static std::string same(const GstCaps* upstream) {
        const std::string media = media_of(upstream);
        return media.empty() ? "identity name=out" : "capsfilter name=out caps=" + media;
    }

    GstPad* request_sink_for(const std::string& kind, const GstCaps* upstream,
                             const std::string& /*arrives*/) override {
        std::lock_guard lock(mutex);
        const std::string desc = branch(kind, upstream);
        KMS_LOG(filter, INFO, "%s branch: %s", kind.c_str(), desc.c_str());
        GError* err = nullptr;
        GstElement* b = gst_parse_bin_from_description(desc.c_str(), FALSE, &err);
        gst::GErrorPtr error(err);
        if (!b) gst::throw_gerror(error.release(), ErrorCode::Runtime, "filter " + kind);
        gst_object_set_name(GST_OBJECT(b), (kind + "_branch_" + std::to_string(made)).c_str());
        gst_bin_add(GST_BIN(bin.get()), b);
        gst::ElementPtr in(gst_bin_get_by_name(GST_BIN(b), "in"));
        gst::ElementPtr out(gst_bin_get_by_name(GST_BIN(b), "out"));
        gst::PadPtr in_pad(gst_element_get_static_pad(in.get(), "sink"));
        gst::PadPtr out_pad(gst_element_get_static_pad(out.get(), "src"));
        if (bounds_decoder(kind, upstream))
            media::bound_decoded_frames(in_pad.get(), kDecodedFrames);
        // Pads of the branch's bin, then of the filter's.
        GstPad* bsink = gst_ghost_pad_new("sink", in_pad.get());
        GstPad* bsrc = gst_ghost_pad_new("src", out_pad.get());
        gst_pad_set_active(bsink, TRUE);
        gst_pad_set_active(bsrc, TRUE);
        gst_element_add_pad(b, bsink);
        gst_element_add_pad(b, bsrc);
        if (kind == "audio") watch_speech_position(b);
        auto c = std::make_shared<Counts>();
        counts[kind] = c;
        count(in_pad.get(), &c->in);
        count(out_pad.get(), &c->frames);
        // On live input the branch's leaky queue drops what cannot be taken in time: the
        // filter's own, or for analysis only the copy's (the media itself goes on whole).
        gst::ElementPtr leaky;
        if (opt.live && alters(kind, upstream))
            leaky = gst::ref(in.get());
        else if (opt.live && watches(kind))
            leaky.reset(gst_bin_get_by_name(GST_BIN(b), "copy"));
        if (leaky) {
            c->queue = leaky.get();  // borrowed: the bin keeps it
            gst::PadPtr qsrc(gst_element_get_static_pad(leaky.get(), "src"));
            count(qsrc.get(), &c->out);
        }
        gst_element_sync_state_with_parent(b);
        expose(bsrc, kind);
        return ghost(bsink, kind + "_in_" + std::to_string(made++));
    }

    // pocketsphinx's final results carry no time (timestamp GST_CLOCK_TIME_NONE in its 1.22
    // plugin). It also pushes each final hypothesis out of its src pad as text, from the same
    // call in which it read the audio that closed the utterance: a probe there dates the
    // transcript by where the probe on its sink pad saw it had read to, on that thread, before
    // the main loop is told (the bus message would be read later, the reading gone on).
    std::atomic<gint64> speech_read_to{-1};  // stream time, ns
    void watch_speech_position(GstElement* branch_bin) {
        GstIterator* it =
            gst_bin_iterate_all_by_element_factory_name(GST_BIN(branch_bin), "pocketsphinx");
        GValue v = G_VALUE_INIT;
        while (it && gst_iterator_next(it, &v) == GST_ITERATOR_OK) {
            GstElement* recogniser = GST_ELEMENT(g_value_get_object(&v));
            gst::PadPtr sink(gst_element_get_static_pad(recogniser, "sink"));
            gst::PadPtr src(gst_element_get_static_pad(recogniser, "src"));
            g_value_reset(&v);
            if (!sink) continue;
            auto* weak = new std::weak_ptr<Core>(weak_from_this());
            gst_pad_add_probe(
                sink.get(), GST_PAD_PROBE_TYPE_BUFFER,
                [](GstPad* pad, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                    GstBuffer* b = GST_PAD_PROBE_INFO_BUFFER(info);
                    auto self = static_cast<std::weak_ptr<Core>*>(d)->lock();
                    if (!self || !GST_BUFFER_PTS_IS_VALID(b)) return GST_PAD_PROBE_OK;
                    GstClockTime end = GST_BUFFER_PTS(b);
                    if (GST_BUFFER_DURATION_IS_VALID(b)) end += GST_BUFFER_DURATION(b);
                    // Stream time from the pad's segment (sticky; read without blocking).
                    gint64 t = static_cast<gint64>(end);
                    if (GstEvent* ev = gst_pad_get_sticky_event(pad, GST_EVENT_SEGMENT, 0)) {
                        const GstSegment* seg = nullptr;
                        gst_event_parse_segment(ev, &seg);
                        const guint64 st = gst_segment_to_stream_time(seg, GST_FORMAT_TIME, end);
                        if (st != GST_CLOCK_TIME_NONE) t = static_cast<gint64>(st);
                        gst_event_unref(ev);
                    }
                    static_cast<FilterCore*>(self.get())->speech_read_to = t;
                    return GST_PAD_PROBE_OK;
                },
                weak, [](gpointer d) { delete static_cast<std::weak_ptr<Core>*>(d); });
            if (src) watch_transcripts(src.get());
        }
        g_value_unset(&v);
        if (it) gst_iterator_free(it);
    }

    void watch_transcripts(GstPad* src) {
        auto* weak = new std::weak_ptr<Core>(weak_from_this());
        gst_pad_add_probe(
            src, GST_PAD_PROBE_TYPE_BUFFER,
            [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                auto self = static_cast<std::weak_ptr<Core>*>(d)->lock();
                GstMapInfo map;
                if (!self || !gst_buffer_map(GST_PAD_PROBE_INFO_BUFFER(info), &map, GST_MAP_READ))
                    return GST_PAD_PROBE_OK;
                const auto* chars = reinterpret_cast<const char*>(map.data);
                std::string text(chars, strnlen(chars, map.size));
                gst_buffer_unmap(GST_PAD_PROBE_INFO_BUFFER(info), &map);
                while (!text.empty() && std::isspace(static_cast<unsigned char>(text.back())))
                    text.pop_back();  // it ends each hypothesis with a newline
                const gint64 at = static_cast<FilterCore*>(self.get())->speech_read_to;
                std::weak_ptr<Core> w = self;
                if (!text.empty())
                    post_to_main([w, text, at] {
                        auto core = w.lock();
                        if (!core) return;
                        auto* f = static_cast<FilterCore*>(core.get());
                        if (!f->on_event) return;
                        Json fields{{"text", text}};
                        if (at >= 0) fields["time"] = std::round(double(at) / 1e6) / 1000;
                        f->on_event("transcript", fields);
                    });
                return GST_PAD_PROBE_OK;
            },
            weak, [](gpointer d) { delete static_cast<std::weak_ptr<Core>*>(d); });
    }

    // Adds one to n for each buffer through pad (streaming threads: an atomic only).
    static void count(GstPad* pad, std::atomic<unsigned long long>* n) {
        gst_pad_add_probe(
            pad, GST_PAD_PROBE_TYPE_BUFFER,
            [](GstPad*, GstPadProbeInfo*, gpointer data) {
                static_cast<std::atomic<unsigned long long>*>(data)->fetch_add(1);
                return GST_PAD_PROBE_OK;
            },
            n, nullptr);
    }

    void upstream_all_exposed() override { announce_all_exposed(); }

    void on_element_message(GstMessage* msg) override {
        const GstStructure* s = gst_message_get_structure(msg);
        if (!s || !on_event) return;
        // A field the element did not give is left out, not null.
        auto emit = [this](const std::string& type, Json fields) {
            for (auto it = fields.begin(); it != fields.end();)
                it = it->is_null() ? fields.erase(it) : std::next(it);
            this->on_event(type, fields);
        };
        const std::string what = gst_structure_get_name(s);
        const Json time = media_time(s);
        auto field = [&](const char* f) { return value_json(gst_structure_get_value(s, f)); };
        if (what == "barcode") {
            emit("code-found", Json{{"time", time},
                                    {"symbology", field("type")},
                                    {"text", field("symbol")},
                                    {"quality", field("quality")}});
        } else if (what == "level") {
            emit("level", Json{{"time", time}, {"rms", field("rms")}, {"peak", field("peak")}});
        } else if (what == "facedetect") {
            Json faces = Json::array();
            for (const auto& f : field("faces"))
                faces.push_back(Json{{"x", f.value("x", 0u)},
                                     {"y", f.value("y", 0u)},
                                     {"width", f.value("width", 0u)},
                                     {"height", f.value("height", 0u)}});
            emit("faces", Json{{"time", time}, {"count", faces.size()}, {"faces", faces}});
        }
        // pocketsphinx's messages are not used: its final hypotheses come out of its src pad
        // (watch_transcripts), and its "confidence" is no such thing (a log probability, in
        // an unsigned field).
    }
};

FilterCore& core_of(const Element& e) {
    return static_cast<FilterCore&>(e.core());
}

}  // namespace

Filter::Filter(FilterOptions options, EventFn on_event)
    : Element(std::make_shared<FilterCore>(std::move(options), std::move(on_event))) {
    const auto& o = core_of(*this).opt;
    if (o.stages.empty()) throw Error(ErrorCode::InvalidArgument, "no filter given");
    for (const auto& [codec, kind] :
         {std::pair{o.video_codec, "video"}, std::pair{o.audio_codec, "audio"}}) {
        if (codec.empty() || codec == "raw") continue;
        const std::string media = media::media_of_codec(codec);
        if (media.empty() || media.rfind(kind, 0) != 0)
            throw Error(ErrorCode::InvalidArgument,
                        "no " + std::string(kind) + " codec called " + codec);
    }
}

Filter::~Filter() = default;

unsigned long long Filter::dropped() const {
    auto& c = core_of(*this);
    std::lock_guard lock(c.mutex);
    unsigned long long n = 0;
    for (const auto& [kind, k] : c.counts) {
        if (!k->queue) continue;
        guint level = 0;
        g_object_get(k->queue, "current-level-buffers", &level, nullptr);
        const unsigned long long passed = k->out + level;
        if (k->in > passed) n += k->in - passed;
    }
    return n;
}

unsigned long long Filter::frames(const std::string& kind) const {
    auto& c = core_of(*this);
    std::lock_guard lock(c.mutex);
    auto it = c.counts.find(kind);
    return it == c.counts.end() ? 0 : it->second->frames.load();
}

}  // namespace kms
