// Per-stream RTP figures of an rtsp:// or rtp:// Source, in W3C inbound-rtp terms: packets and
// payload bytes counted where the jitter buffer lets them out, frames where the depayloaded
// stream leaves the source, loss and jitter from the jitter buffer's own statistics.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <memory>
#include <string>
#include <vector>

#include "kms/source.hpp"

namespace kms::source {

/// One RTP stream's counters. Streaming threads touch only the atomics; kind is set before
/// the stream flows.
struct RtpCounters {
    RtpCounters() { g_weak_ref_init(&jitter_buffer, nullptr); }
    ~RtpCounters() { g_weak_ref_clear(&jitter_buffer); }
    RtpCounters(const RtpCounters&) = delete;
    RtpCounters& operator=(const RtpCounters&) = delete;

    std::string kind;
    std::atomic<guint32> ssrc{0};
    std::atomic<guint64> packets{0}, bytes{0}, frames{0};
    std::atomic<bool> exposed{false};  // its parsebin has shown its stream
    std::atomic<bool> demuxed{false};  // a demuxer in its parsebin (MPEG-TS over RTP)
    std::atomic<bool> direct{false};   // depayloader ! parser, no parsebin (source/depay.hpp)
    // The stream's jitter buffer: ours for rtp://, found by SSRC for rtsp:// (rtspsrc's), then
    // kept, since a stopped pipeline's caps no longer say which buffer was whose.
    GWeakRef jitter_buffer;
};

/// Counts RTP packets, their payload bytes and their SSRC on PAD (out of a jitter buffer).
void count_rtp(GstPad* pad, const std::shared_ptr<RtpCounters>& c);
/// Counts the depayloaded frames (buffers) on PAD.
void count_frames(GstPad* pad, const std::shared_ptr<RtpCounters>& c);
/// The figures of each stream, with the jitter buffers in BIN matched to the streams by SSRC
/// (rtspsrc's, whose caps carry it) or by kind (ours for rtp://). Main thread.
std::vector<RtpStreamStats> collect(GstBin* bin,
                                    const std::vector<std::shared_ptr<RtpCounters>>& streams);

}  // namespace kms::source
