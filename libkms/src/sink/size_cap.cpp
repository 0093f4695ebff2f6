// SizeCap: a counting probe on what the muxer writes and a cutting probe on each of its inputs,
// sharing one flag. What the muxer holds when a limit is reached (up to a fragment or a
// cluster) and its index at the end still come after it, as with ffmpeg's -fs; the disk guard
// keeps room for them.
#include "sink/size_cap.hpp"

#include <sys/statvfs.h>

#include <algorithm>
#include <atomic>
#include <utility>

#include "gst/handles.hpp"
#include "kms/loop.hpp"

namespace kms::sink {

struct SizeCap::State {
    const guint64 cap;
    const std::string folder;
    const guint64 min_free;
    std::atomic<guint64> written{0};
    std::atomic<bool> full{false};
    // The next look at the disk, after this many bytes or this monotonic time, and when the
    // file being written had its first bytes (0: none yet). The writer's thread only.
    guint64 check_at_bytes = 0;
    gint64 check_at_us = 0;
    gint64 file_began_us = 0;
    std::function<void()> reached;                     // main thread
    std::function<void(unsigned long long)> disk_low;  // main thread
    State(guint64 bytes, std::string dir, guint64 floor)
        : cap(bytes), folder(std::move(dir)), min_free(floor) {}
};

namespace {

using StatePtr = std::shared_ptr<SizeCap::State>;

// Looks at the disk every second, and sooner for a fast writer: after a quarter of what is
// left above the reserve, or 64 kB when that is less (a file read faster than real time).
// A disk far from full is so read once a second even on NFS, where each look is a round trip.
constexpr guint64 kCheckBytes = 64 * 1024;
constexpr gint64 kCheckUs = G_USEC_PER_SEC;

void free_state(gpointer d) {
    delete static_cast<StatePtr*>(d);
}

gsize size_of(GstPadProbeInfo* info) {
    if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
        return gst_buffer_list_calculate_size(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    return gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
}

// Whether the disk has less free than the file will still need; free_bytes says how much.
bool disk_low(SizeCap::State& s, guint64 total, long long& free_bytes) {
    if (s.folder.empty() || s.min_free == 0) return false;
    const gint64 now = g_get_monotonic_time();
    if (!s.file_began_us) s.file_began_us = now;
    if (total < s.check_at_bytes && now < s.check_at_us) return false;
    s.check_at_us = now + kCheckUs;
    free_bytes = SizeCap::free_space(s.folder);
    const guint64 need = SizeCap::reserve(s.min_free, (now - s.file_began_us) / G_USEC_PER_SEC);
    const guint64 left = free_bytes > 0 ? static_cast<guint64>(free_bytes) : 0;
    s.check_at_bytes = total + std::max(kCheckBytes, left > need ? (left - need) / 4 : 0);
    return free_bytes >= 0 && left < need;
}

// Streaming thread (the muxer's): bytes out, and the moment they reach a limit.
GstPadProbeReturn count(GstPad*, GstPadProbeInfo* info, gpointer d) {
    const StatePtr& s = *static_cast<StatePtr*>(d);
    if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM) {
        // A new file (splitmuxsink's next segment): its index starts from nothing.
        if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_STREAM_START)
            s->file_began_us = 0;
        return GST_PAD_PROBE_OK;
    }
    const gsize size = size_of(info);
    const guint64 total = s->written.fetch_add(size) + size;
    long long free_bytes = -1;
    const bool at_cap = s->cap && total >= s->cap;
    if (!at_cap && !disk_low(*s, total, free_bytes)) return GST_PAD_PROBE_OK;
    if (s->full.exchange(true)) return GST_PAD_PROBE_REMOVE;
    post_to_main([weak = std::weak_ptr<SizeCap::State>(s), at_cap, free_bytes] {
        auto st = weak.lock();
        if (!st) return;
        if (at_cap && st->reached) st->reached();
        if (!at_cap && st->disk_low) st->disk_low(static_cast<unsigned long long>(free_bytes));
    });
    // Counting is over: what the muxer still writes is not measured against anything.
    return GST_PAD_PROBE_REMOVE;
}

// Streaming thread (upstream's): past a limit, a buffer ends its stream instead. The end of
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

SizeCap::SizeCap(unsigned long long bytes, std::string folder, unsigned long long min_free)
    : state_(std::make_shared<State>(bytes, std::move(folder), min_free)) {}

void SizeCap::watch_output(GstPad* pad) {
    gst_pad_add_probe(pad, GstPadProbeType(kBuffers | GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM), count,
                      new StatePtr(state_), free_state);
}

void SizeCap::watch_input(GstPad* mux_sink) {
    gst_pad_add_probe(mux_sink, kBuffers, cut, new StatePtr(state_), free_state);
}

void SizeCap::on_reached(std::function<void()> fn) {
    state_->reached = std::move(fn);
}

void SizeCap::on_disk_low(std::function<void(unsigned long long)> fn) {
    state_->disk_low = std::move(fn);
}

long long SizeCap::free_space(const std::string& folder) {
    struct statvfs st = {};
    if (::statvfs(folder.empty() ? "." : folder.c_str(), &st) != 0) return -1;
    return static_cast<long long>(st.f_bavail) * static_cast<long long>(st.f_frsize);
}

unsigned long long SizeCap::reserve(unsigned long long min_free, unsigned long long seconds) {
    return min_free + 32 * seconds;
}

}  // namespace kms::sink
