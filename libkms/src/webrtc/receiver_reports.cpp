#include "webrtc/receiver_reports.hpp"

#include <gst/rtp/rtp.h>

namespace kms::webrtc {

namespace {
// Seconds from 1900 (NTP's epoch) to 1970 (the real-time clock's).
constexpr guint64 kNtpUnixOffset = 2208988800ULL;
// A round-trip time longer than this is a clock disagreement, not a path (RFC 3550 leaves
// the bound to us; a minute is far past any call that still works).
constexpr double kMaxRtt = 60.0;
}  // namespace

void ReceiverReports::watch(guint32 ssrc) {
    std::lock_guard lock(mutex_);
    watched_.insert(ssrc);
}

guint64 ReceiverReports::now_ntp() {
    const gint64 us = g_get_real_time();
    const guint64 secs = static_cast<guint64>(us / G_USEC_PER_SEC) + kNtpUnixOffset;
    const guint64 frac = (static_cast<guint64>(us % G_USEC_PER_SEC) << 32) / G_USEC_PER_SEC;
    return (secs << 32) | frac;
}

double ReceiverReports::round_trip(guint64 ntp_arrival, guint32 lsr, guint32 dlsr) {
    if (lsr == 0) return -1;
    // The middle 32 bits of the arrival time, the unit LSR and DLSR are in; the arithmetic
    // wraps as the 32-bit fields do.
    const auto arrival = static_cast<guint32>(ntp_arrival >> 16);
    const guint32 d = arrival - lsr - dlsr;
    const double secs = d / 65536.0;
    return secs <= kMaxRtt ? secs : -1;
}

void ReceiverReports::add(GstBuffer* rtcp, guint64 ntp_arrival) {
    // Bytes from the network: only well-formed RTCP (compound or reduced-size, RFC 5506).
    if (!rtcp || !gst_rtcp_buffer_validate_reduced(rtcp)) return;
    GstRTCPBuffer buf = GST_RTCP_BUFFER_INIT;
    if (!gst_rtcp_buffer_map(rtcp, GST_MAP_READ, &buf)) return;
    GstRTCPPacket packet;
    for (gboolean more = gst_rtcp_buffer_get_first_packet(&buf, &packet); more;
         more = gst_rtcp_packet_move_to_next(&packet)) {
        const GstRTCPType type = gst_rtcp_packet_get_type(&packet);
        if (type != GST_RTCP_TYPE_SR && type != GST_RTCP_TYPE_RR) continue;
        const guint count = gst_rtcp_packet_get_rb_count(&packet);
        for (guint i = 0; i < count; ++i) {
            guint32 ssrc = 0, highest = 0, jitter = 0, lsr = 0, dlsr = 0;
            guint8 fraction = 0;
            gint32 lost = 0;
            gst_rtcp_packet_get_rb(&packet, i, &ssrc, &fraction, &lost, &highest, &jitter, &lsr,
                                   &dlsr);
            add_block(ssrc, fraction, lost, highest, jitter, lsr, dlsr, ntp_arrival);
        }
    }
    gst_rtcp_buffer_unmap(&buf);
}

void ReceiverReports::add_block(guint32 ssrc, guint8 fraction, gint32 lost, guint32 highest,
                                guint32 jitter, guint32 lsr, guint32 dlsr, guint64 ntp_arrival) {
    std::lock_guard lock(mutex_);
    if (!watched_.count(ssrc)) return;
    RemoteReport& r = reports_[ssrc];
    r.ssrc = ssrc;
    r.fraction_lost = fraction / 256.0;
    r.packets_lost = lost;
    r.highest_seq = highest;
    r.jitter = jitter;
    ++r.reports;
    // Modulo 2^32, as LSR wraps: a report stamped before sending_from_ waited at the block.
    if (sending_from_ && static_cast<gint32>(lsr - sending_from_) < 0) return;
    const double rtt = round_trip(ntp_arrival, lsr, dlsr);
    if (rtt < 0) return;
    r.rtt = rtt;
    r.total_rtt += rtt;
    ++r.rtt_measurements;
}

void ReceiverReports::sending_from(guint64 ntp) {
    std::lock_guard lock(mutex_);
    const auto mid = static_cast<guint32>(ntp >> 16);
    if (!sending_from_ || static_cast<gint32>(mid - sending_from_) > 0) sending_from_ = mid;
}

std::optional<RemoteReport> ReceiverReports::latest(guint32 ssrc) const {
    std::lock_guard lock(mutex_);
    auto it = reports_.find(ssrc);
    if (it == reports_.end()) return std::nullopt;
    return it->second;
}

std::map<guint32, RemoteReport> ReceiverReports::all() const {
    std::lock_guard lock(mutex_);
    return reports_;
}

}  // namespace kms::webrtc
