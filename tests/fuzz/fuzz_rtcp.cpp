// libFuzzer target for the reader of the peer's RTCP receiver reports: any bytes as one RTCP
// packet from the network, with the SSRCs a first SR or RR block would name watched, so the
// fuzzer reaches the blocks. What it keeps must be a time or none, never more measurements
// than reports. The same bytes go to ReceptionStats as RTP (each 16-byte slice a packet) and
// as RTCP, and as an outgoing packet to supplement(): its blocks must stay within RFC 3550's
// fields, and what it appends must leave a valid compound packet.
#include <gst/gst.h>
#include <gst/rtp/rtp.h>

#include <algorithm>
#include <cstddef>
#include <cstdint>

#include "webrtc/receiver_reports.hpp"
#include "webrtc/reception_stats.hpp"

namespace {
guint32 be32(const uint8_t* p) {
    return (guint32{p[0]} << 24) | (guint32{p[1]} << 16) | (guint32{p[2]} << 8) | p[3];
}
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
    static const bool ready = (gst_init(nullptr, nullptr), true);
    (void)ready;
    kms::webrtc::ReceiverReports r;
    for (size_t at : {8u, 32u, 28u, 52u})  // an RR's first two blocks, an SR's
        if (size >= at + 4) r.watch(be32(data + at));
    GstBuffer* buf = gst_buffer_new_memdup(data, size);
    // The arrival time from the last 8 bytes, so the round-trip arithmetic sees any value.
    guint64 arrival = 0;
    for (size_t i = size >= 8 ? size - 8 : 0; i < size; ++i) arrival = (arrival << 8) | data[i];
    r.add(buf, arrival);

    kms::webrtc::ReceptionStats rx;
    // Monotonic times as the process sees them: within a few days of its start.
    const auto mono = static_cast<gint64>(arrival & 0xffffffffffULL);
    for (size_t at = 0; at + 12 <= size; at += 16) {
        GstBuffer* rtp = gst_buffer_new_memdup(data + at, std::min<size_t>(16, size - at));
        rx.on_rtp(rtp, mono + static_cast<gint64>(at));
        gst_buffer_unref(rtp);
    }
    rx.on_rtcp(buf, mono);
    const bool valid = gst_rtcp_buffer_validate_reduced(buf);
    GstBuffer* out = gst_buffer_new_allocate(nullptr, 1400, nullptr);
    gst_buffer_memset(out, 0, 0, 1400);
    gst_buffer_fill(out, 0, data, std::min<size_t>(size, 1400));
    gst_buffer_set_size(out, std::min<size_t>(size, 1400));
    if (rx.supplement(out, true, mono + G_USEC_PER_SEC * 2, nullptr) && valid &&
        !gst_rtcp_buffer_validate_reduced(out))
        __builtin_trap();
    gst_buffer_unref(out);
    for (const auto& b : rx.blocks(mono + G_USEC_PER_SEC * 3, 31, nullptr))
        if (b.packets_lost > 0x7fffff || b.packets_lost < -0x800000) __builtin_trap();
    gst_buffer_unref(buf);
    for (const auto& [ssrc, rep] : r.all())
        if (rep.ssrc != ssrc || rep.rtt > 60 || rep.rtt_measurements > rep.reports ||
            (rep.rtt_measurements > 0) != (rep.rtt >= 0))
            __builtin_trap();
    return 0;
}
