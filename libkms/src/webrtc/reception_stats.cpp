#include "webrtc/reception_stats.hpp"

#include <gst/rtp/rtp.h>

#include <algorithm>
#include <vector>

namespace kms::webrtc {

namespace {
// RFC 3550 A.1's bounds: a step forward of less than kMaxDropout is the stream going on (a
// wrap when the number got smaller); one back of less than kMaxMisorder is a late or duplicate
// packet; anything else is a jump that two packets in a row must confirm.
constexpr guint16 kMaxDropout = 3000;
constexpr guint16 kMaxMisorder = 100;
// A source quiet for this long has left: no more blocks about it.
constexpr gint64 kStaleUs = 5 * G_USEC_PER_SEC;
constexpr gint32 kMaxLost = 0x7fffff, kMinLost = -0x800000;  // 24 signed bits (§6.4.1)
}  // namespace

void ReceptionStats::restart(Source& s, guint16 seq) {
    s.max_seq = seq;
    s.cycles = 0;
    s.base_seq = seq;
    s.bad_seq = 0x10000;
    s.received = 0;
    s.expected_prior = 0;
    s.received_prior = 0;
}

void ReceptionStats::on_rtp(GstBuffer* rtp, gint64 now_us) {
    guint8 h[12];
    // Bytes from the network (decrypted, so authenticated, but the peer's to choose).
    if (!rtp || gst_buffer_extract(rtp, 0, h, sizeof h) != sizeof h || (h[0] >> 6) != 2) return;
    const auto seq = static_cast<guint16>((h[2] << 8) | h[3]);
    const guint32 ssrc =
        (guint32{h[8]} << 24) | (guint32{h[9]} << 16) | (guint32{h[10]} << 8) | h[11];
    std::lock_guard lock(mutex_);
    auto [it, fresh] = sources_.try_emplace(ssrc);
    Source& s = it->second;
    s.last_us = now_us;
    const auto udelta = static_cast<guint16>(seq - s.max_seq);
    if (fresh) {
        restart(s, seq);
    } else if (udelta < kMaxDropout) {
        if (seq < s.max_seq) s.cycles += 0x10000;
        s.max_seq = seq;
    } else if (udelta <= 0x10000 - kMaxMisorder) {
        // A jump: the source restarted its numbers, or one packet was garbage.
        if (seq != s.bad_seq) {
            s.bad_seq = (seq + 1u) & 0xffffu;
            return;
        }
        restart(s, seq);
    }  // else late or duplicate: counted, as A.1 does
    ++s.received;
}

void ReceptionStats::on_rtcp(GstBuffer* rtcp, guint64 arrival_ntp) {
    if (!rtcp || !gst_rtcp_buffer_validate_reduced(rtcp)) return;
    GstRTCPBuffer buf = GST_RTCP_BUFFER_INIT;
    if (!gst_rtcp_buffer_map(rtcp, GST_MAP_READ, &buf)) return;
    GstRTCPPacket p;
    std::lock_guard lock(mutex_);
    for (gboolean more = gst_rtcp_buffer_get_first_packet(&buf, &p); more;
         more = gst_rtcp_packet_move_to_next(&p)) {
        if (gst_rtcp_packet_get_type(&p) != GST_RTCP_TYPE_SR) continue;
        guint32 ssrc = 0, rtptime = 0, packets = 0, octets = 0;
        guint64 ntp = 0;
        gst_rtcp_packet_sr_get_sender_info(&p, &ssrc, &ntp, &rtptime, &packets, &octets);
        auto it = sources_.find(ssrc);  // only sources whose RTP we count
        if (it == sources_.end()) continue;
        it->second.lsr = static_cast<guint32>(ntp >> 16);
        it->second.sr_arrival_ntp = arrival_ntp;
    }
    gst_rtcp_buffer_unmap(&buf);
}

ReportBlock ReceptionStats::block(guint32 ssrc, Source& s, guint64 now_ntp) const {
    ReportBlock b;
    b.ssrc = ssrc;
    b.highest_seq = s.cycles + s.max_seq;
    // A.3, in 64 bits so that neither a wrap nor a jump back makes nonsense.
    const gint64 expected = gint64{b.highest_seq} - s.base_seq + 1;
    b.packets_lost =
        static_cast<gint32>(std::clamp<gint64>(expected - s.received, kMinLost, kMaxLost));
    const gint64 expected_interval = expected - s.expected_prior;
    const gint64 lost_interval = expected_interval - (gint64{s.received} - s.received_prior);
    if (expected_interval > 0 && lost_interval > 0)
        b.fraction_lost =
            static_cast<guint8>(std::min<gint64>((lost_interval << 8) / expected_interval, 255));
    if (s.sr_arrival_ntp) {
        b.lsr = s.lsr;
        b.dlsr = static_cast<guint32>((now_ntp - s.sr_arrival_ntp) >> 16);
    }
    return b;
}

void ReceptionStats::start_interval() {
    for (auto& [ssrc, s] : sources_) {
        s.expected_prior = s.cycles + s.max_seq - s.base_seq + 1;
        s.received_prior = s.received;
    }
}

std::map<guint32, ReportBlock> ReceptionStats::blocks(
    guint64 now_ntp, gint64 now_us, const std::function<guint32(guint32)>& jitter) {
    std::map<guint32, ReportBlock> out;
    {
        std::lock_guard lock(mutex_);
        for (auto& [ssrc, s] : sources_) {
            if (now_us - s.last_us > kStaleUs || out.size() == GST_RTCP_MAX_RB_COUNT) continue;
            out[ssrc] = block(ssrc, s, now_ntp);
        }
        start_interval();
        last_block_us_ = now_us;
    }
    // Outside the lock: rtpsession takes its own.
    if (jitter)
        for (auto& [ssrc, b] : out) b.jitter = jitter(ssrc);
    return out;
}

bool ReceptionStats::supplement(GstBuffer* rtcp, bool early, guint64 now_ntp, gint64 now_us,
                                const std::function<guint32(guint32)>& jitter) {
    GstRTCPBuffer buf = GST_RTCP_BUFFER_INIT;
    if (!rtcp || !gst_buffer_is_writable(rtcp)) return false;
    const gsize size = gst_buffer_get_size(rtcp);
    if (!gst_rtcp_buffer_map(rtcp, GST_MAP_READWRITE, &buf)) return false;
    GstRTCPPacket p;
    guint32 own = 0;
    bool has_blocks = false;
    // gst_rtcp_buffer_add_packet writes after the last packet it can read but grows the buffer
    // from its end: bytes after the packets would end up in the middle. rtpsession's own
    // packets fill their buffer, and none is padded (only the last packet may be, RFC 3550
    // §6.4.1); anything else is left alone.
    gsize end = 0;
    bool padded = false;
    for (gboolean more = gst_rtcp_buffer_get_first_packet(&buf, &p); more;
         more = gst_rtcp_packet_move_to_next(&p)) {
        end = p.offset + (gst_rtcp_packet_get_length(&p) + 1u) * 4u;
        padded = gst_rtcp_packet_get_padding(&p);
    }
    if (end == size && !padded && gst_rtcp_buffer_get_first_packet(&buf, &p)) {
        const GstRTCPType type = gst_rtcp_packet_get_type(&p);
        if (type == GST_RTCP_TYPE_SR) {
            guint32 rtptime = 0, packets = 0, octets = 0;
            guint64 ntp = 0;
            gst_rtcp_packet_sr_get_sender_info(&p, &own, &ntp, &rtptime, &packets, &octets);
        } else if (type == GST_RTCP_TYPE_RR) {
            own = gst_rtcp_packet_rr_get_ssrc(&p);
        }
        has_blocks = (type == GST_RTCP_TYPE_SR || type == GST_RTCP_TYPE_RR) &&
                     gst_rtcp_packet_get_rb_count(&p) > 0;
    }
    bool due = false;
    {
        std::lock_guard lock(mutex_);
        if (has_blocks) {
            start_interval();
            last_block_us_ = now_us;
        }
        due = early && !has_blocks && own && !sources_.empty() &&
              now_us - last_block_us_ >= kMaxSilenceUs;
    }
    std::map<guint32, ReportBlock> out;
    if (due) out = blocks(now_ntp, now_us, jitter);
    bool added = false;
    // gst_rtcp_buffer_add_packet appends after the last packet, where there is room left of the
    // MTU rtpsession allocated.
    if (!out.empty() && gst_rtcp_buffer_add_packet(&buf, GST_RTCP_TYPE_RR, &p)) {
        gst_rtcp_packet_rr_set_ssrc(&p, own);
        for (const auto& [ssrc, b] : out)
            added |= gst_rtcp_packet_add_rb(&p, b.ssrc, b.fraction_lost, b.packets_lost,
                                            b.highest_seq, b.jitter, b.lsr, b.dlsr) != FALSE;
        if (!added) gst_rtcp_packet_remove(&p);
    }
    gst_rtcp_buffer_unmap(&buf);
    return added;
}

}  // namespace kms::webrtc
