// SizeCap: a counting probe on the muxer's output and a cutting probe on each of its inputs,
// sharing one flag. What the muxer holds when the cap is reached (up to a fragment or a
// cluster) and its index at the end still come after it, as with ffmpeg's -fs.
#include "sink/size_cap.hpp"

#include <atomic>
#include <utility>

#include "gst/handles.hpp"
#include "kms/loop.hpp"

namespace kms::sink {

struct SizeCap::State {
    const guint64 cap;
    std::atomic<guint64> written{0};
    std::atomic<bool> full{false};
    std::function<void()> reached;  // main thread
    explicit State(guint64 bytes) : cap(bytes) {}
};

namespace {

using StatePtr = std::shared_ptr<SizeCap::State>;

void free_state(gpointer d) {
    delete static_cast<StatePtr*>(d);
}

gsize size_of(GstPadProbeInfo* info) {
    if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
        return gst_buffer_list_calculate_size(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    return gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
}

// Streaming thread (the muxer's): bytes out, and the moment they reach the cap.
GstPadProbeReturn count(GstPad*, GstPadProbeInfo* info, gpointer d) {
    const StatePtr& s = *static_cast<StatePtr*>(d);
    const gsize size = size_of(info);
    const guint64 total = s->written.fetch_add(size) + size;
    if (total < s->cap || s->full.exchange(true)) return GST_PAD_PROBE_OK;
    post_to_main([weak = std::weak_ptr<SizeCap::State>(s)] {
        if (auto st = weak.lock(); st && st->reached) st->reached();
    });
    // Counting is over: what the muxer still writes is not measured against anything.
    return GST_PAD_PROBE_REMOVE;
}

// Streaming thread (upstream's): past the cap, a buffer ends its stream instead. The end of
// stream goes in once; upstream is told EOS, so a file is not read to its end for nothing.
GstPadProbeReturn cut(GstPad* pad, GstPadProbeInfo* info, gpointer d) {
    const StatePtr& s = *static_cast<StatePtr*>(d);
    if (!s->full.load(std::memory_order_relaxed)) return GST_PAD_PROBE_OK;
    if (!GST_PAD_IS_EOS(pad)) gst_pad_send_event(pad, gst_event_new_eos());
    return gst::answer_eos(info);
}

constexpr auto kBuffers =
    GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST);

}  // namespace

SizeCap::SizeCap(unsigned long long bytes) : state_(std::make_shared<State>(bytes)) {}

void SizeCap::watch_output(GstPad* mux_src) {
    gst_pad_add_probe(mux_src, kBuffers, count, new StatePtr(state_), free_state);
}

void SizeCap::watch_input(GstPad* mux_sink) {
    gst_pad_add_probe(mux_sink, kBuffers, cut, new StatePtr(state_), free_state);
}

void SizeCap::on_reached(std::function<void()> fn) {
    state_->reached = std::move(fn);
}

}  // namespace kms::sink
