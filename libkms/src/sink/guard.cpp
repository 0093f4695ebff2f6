// The guard before a muxer input: see guard.hpp. Streaming thread only, one state per pad.
#include "sink/guard.hpp"

#include <utility>

#include "core/log.hpp"
#include "gst/handles.hpp"

namespace kms::sink {

namespace {

struct GuardState {
    bool audio = false;
    SizeChanged size_changed;
    gst::CapsPtr given;       // what the muxer was given
    gst::CapsPtr seen;        // the caps last judged, and whether they went through: a dropped
    bool seen_passed = true;  // sticky event is offered again before every buffer
    std::string size;         // the size last seen, given or not
    bool in_order = false;    // frames decode in the order of their times (audio, VP8, VP9)
    GstClockTime last = GST_CLOCK_TIME_NONE;  // where the last frame ended (an untimed frame's)
    // Since the last segment event: the decode time of the last frame passed, and where it
    // ended; and whether video is left out until a key frame past it.
    GstClockTime decoded = GST_CLOCK_TIME_NONE;
    GstClockTime ended = GST_CLOCK_TIME_NONE;
    bool skipping = false;
    bool stepped = false;  // a step back was logged
};

// When a frame is decoded, if that is known: its DTS, or its PTS in a stream that does not
// reorder. An H.264 frame with a PTS only may come before the one it follows (B-frames).
GstClockTime decode_time(const GuardState& g, GstBuffer* b) {
    if (GST_BUFFER_DTS_IS_VALID(b)) return GST_BUFFER_DTS(b);
    return g.in_order ? GST_BUFFER_PTS(b) : GST_CLOCK_TIME_NONE;
}

// A step back larger than this is a new timeline (a camera's clock set back an hour), not a
// correction: its frames go on as they come, as leaving them out would lose the recording.
constexpr GstClockTime kLargestStep = 2 * GST_SECOND;

GstClockTime half_duration(GstBuffer* b) {
    return GST_BUFFER_DURATION_IS_VALID(b) ? GST_BUFFER_DURATION(b) / 2 : 0;
}

// How far a frame's time lies before what was written: audio against where the last frame
// ended (an overlap of less than half a frame is jitter), video against the last decode time.
// 0 when it does not.
GstClockTime step_of(const GuardState& g, GstBuffer* b) {
    const GstClockTime t = decode_time(g, b);
    if (!GST_CLOCK_TIME_IS_VALID(t)) return 0;
    if (g.audio)
        return GST_CLOCK_TIME_IS_VALID(g.ended) && t + half_duration(b) < g.ended ? g.ended - t : 0;
    return GST_CLOCK_TIME_IS_VALID(g.decoded) && t < g.decoded ? g.decoded - t : 0;
}

void log_step(GuardState* g, GstClockTime back) {
    if (std::exchange(g->stepped, true)) return;
    KMS_LOG(sink, WARNING,
            "%s times stepped back %" GST_TIME_FORMAT "; %s, so the file's times go forward",
            g->audio ? "audio" : "video", GST_TIME_ARGS(back),
            g->audio ? "its frames up to where it was are left out"
                     : "its frames up to a key frame past where it was are left out");
}

// Whether the frame is left out: its time is already in the file. Video, whose frames need
// those before them, is left out up to a key frame past where it was.
bool left_out(GuardState* g, GstBuffer* buf) {
    const GstClockTime back = step_of(*g, buf);
    if (back > kLargestStep) {
        g->decoded = g->ended = GST_CLOCK_TIME_NONE;
        g->skipping = false;
        return false;
    }
    if (back > 0) log_step(g, back);
    if (g->audio) return back > 0;
    if (back > 0) g->skipping = true;
    if (!g->skipping) return false;
    if (back == 0 && !GST_BUFFER_FLAG_IS_SET(buf, GST_BUFFER_FLAG_DELTA_UNIT)) {
        g->skipping = false;
        return false;
    }
    return true;
}

// A frame went on: the times the next are judged against. The dry run over a buffer list
// (guard_time) takes the same steps, so its verdict is the pass's.
void passed(GuardState* g, GstBuffer* buf) {
    if (GstClockTime t = decode_time(*g, buf); GST_CLOCK_TIME_IS_VALID(t)) g->decoded = t;
    g->ended =
        GST_BUFFER_PTS(buf) + (GST_BUFFER_DURATION_IS_VALID(buf) ? GST_BUFFER_DURATION(buf) : 0);
}

// The frame as it goes on (buf, or a writable copy given its time), or nullptr when it is left
// out; takes buf. A frame without a time (1.22's h264parse gives one out of RTP at a key frame
// now and then) takes its decode time, or starts where the frame before ended: mp4mux stops
// the whole recording on such a frame, and a frame dropped there would cost the GOP.
GstBuffer* timed(GuardState* g, GstBuffer* buf) {
    if (!GST_BUFFER_PTS_IS_VALID(buf)) {
        const GstClockTime t = GST_BUFFER_DTS_IS_VALID(buf) ? GST_BUFFER_DTS(buf) : g->last;
        if (!GST_CLOCK_TIME_IS_VALID(t)) return buf;
        buf = gst_buffer_make_writable(buf);
        GST_BUFFER_PTS(buf) = t;
        g->last = t + GST_MSECOND;  // a second frame without a time comes after this one
        return buf;
    }
    if (left_out(g, buf)) {
        gst_buffer_unref(buf);
        return nullptr;
    }
    passed(g, buf);
    // Where the next frame starts: this one's end, or a millisecond on.
    g->last =
        GST_BUFFER_PTS(buf) + (GST_BUFFER_DURATION_IS_VALID(buf) && GST_BUFFER_DURATION(buf) > 0
                                   ? GST_BUFFER_DURATION(buf)
                                   : GST_MSECOND);
    return buf;
}

GstPadProbeReturn guard_time(GuardState* g, GstPadProbeInfo* info) {
    if (!(GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)) {
        GstBuffer* buf = timed(g, GST_PAD_PROBE_INFO_BUFFER(info));
        GST_PAD_PROBE_INFO_DATA(info) = buf;
        return buf ? GST_PAD_PROBE_OK : GST_PAD_PROBE_HANDLED;
    }
    // A list (a proxy pad passes them on whole): each frame as above, the list copied only
    // when one needs a time or steps back.
    GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
    // A dry run on a copy of the state says whether any frame would change.
    bool fix = false;
    GuardState probe_state;
    probe_state.audio = g->audio;
    probe_state.in_order = g->in_order;
    probe_state.decoded = g->decoded;
    probe_state.ended = g->ended;
    probe_state.skipping = g->skipping;
    probe_state.stepped = true;  // the dry run logs nothing
    for (guint i = 0; i < gst_buffer_list_length(list) && !fix; ++i) {
        GstBuffer* b = gst_buffer_list_get(list, i);
        fix = !GST_BUFFER_PTS_IS_VALID(b) || left_out(&probe_state, b);
        passed(&probe_state, b);
    }
    if (fix) list = gst_buffer_list_make_writable(list);
    // A frame set to nullptr here is taken out of the (writable) list.
    gst_buffer_list_foreach(
        list,
        [](GstBuffer** buf, guint, gpointer d) -> gboolean {
            *buf = timed(static_cast<GuardState*>(d), *buf);
            return TRUE;
        },
        g);
    GST_PAD_PROBE_INFO_DATA(info) = list;
    if (gst_buffer_list_length(list) > 0) return GST_PAD_PROBE_OK;
    gst_buffer_list_unref(list);
    GST_PAD_PROBE_INFO_DATA(info) = nullptr;
    return GST_PAD_PROBE_HANDLED;
}

std::string size_of(const GstCaps* caps) {
    int w = 0, h = 0;
    const GstStructure* st = gst_caps_get_structure(caps, 0);
    gst_structure_get_int(st, "width", &w);
    gst_structure_get_int(st, "height", &h);
    return std::to_string(w) + "x" + std::to_string(h);
}

// The first caps go through, and so do they when the stream comes back to them; other caps of
// the same codec are dropped (a dropped sticky event is offered again before each buffer: each
// offer is dropped alike). Each change of size is reported once. Audio caps go through.
GstPadProbeReturn guard_caps(GstPad*, GstPadProbeInfo* info, gpointer d) {
    auto* g = static_cast<GuardState*>(d);
    if (GST_PAD_PROBE_INFO_TYPE(info) &
        (GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST))
        return guard_time(g, info);
    GstEvent* ev = GST_PAD_PROBE_INFO_EVENT(info);
    // A new segment may start its times anywhere: they are judged afresh.
    if (GST_EVENT_TYPE(ev) == GST_EVENT_SEGMENT) {
        g->decoded = g->ended = GST_CLOCK_TIME_NONE;
        g->skipping = false;
    }
    if (GST_EVENT_TYPE(ev) != GST_EVENT_CAPS) return GST_PAD_PROBE_OK;
    GstCaps* caps = nullptr;
    gst_event_parse_caps(ev, &caps);
    if (gst_caps_get_size(caps) > 0) {
        const char* name = gst_structure_get_name(gst_caps_get_structure(caps, 0));
        g->in_order =
            g->audio || g_str_equal(name, "video/x-vp8") || g_str_equal(name, "video/x-vp9");
    }
    if (g->audio) return GST_PAD_PROBE_OK;
    if (caps == g->seen.get()) return g->seen_passed ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
    g->seen.reset(gst_caps_ref(caps));
    g->seen_passed = true;
    if (!g->given || gst_caps_get_size(caps) == 0 ||
        !gst_structure_has_name(
            gst_caps_get_structure(caps, 0),
            gst_structure_get_name(gst_caps_get_structure(g->given.get(), 0)))) {
        g->given.reset(gst_caps_ref(caps));
        g->size = size_of(caps);
        return GST_PAD_PROBE_OK;
    }
    const bool first = gst_caps_is_equal(caps, g->given.get());
    const std::string to = size_of(caps);
    if (to != g->size) {
        const std::string from = g->size;
        g->size = to;
        KMS_LOG(sink, INFO, "video size %s -> %s, in the same file", from.c_str(), to.c_str());
        if (g->size_changed) g->size_changed(from, to);
    }
    g->seen_passed = first;
    return first ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
}

}  // namespace

void add_guard(GstPad* src, const std::string& kind, SizeChanged size_changed) {
    auto* state = new GuardState;
    state->audio = kind == "audio";
    state->in_order = state->audio;
    state->size_changed = std::move(size_changed);
    gst_pad_add_probe(src,
                      GstPadProbeType(GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM |
                                      GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      guard_caps, state, [](gpointer d) { delete static_cast<GuardState*>(d); });
}

}  // namespace kms::sink
