// libFuzzer target for the reader of the peer's RTCP receiver reports: any bytes as one RTCP
// packet from the network, with the SSRCs a first SR or RR block would name watched, so the
// fuzzer reaches the blocks. What it keeps must be a time or none, never more measurements
// than reports.
#include <gst/gst.h>

#include <cstddef>
#include <cstdint>

#include "webrtc/receiver_reports.hpp"

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
    gst_buffer_unref(buf);
    for (const auto& [ssrc, rep] : r.all())
        if (rep.ssrc != ssrc || rep.rtt > 60 || rep.rtt_measurements > rep.reports ||
            (rep.rtt_measurements > 0) != (rep.rtt >= 0))
            __builtin_trap();
    return 0;
}
