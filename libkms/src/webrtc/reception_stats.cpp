#include "webrtc/reception_stats.hpp"

#include <gst/rtp/rtp.h>

#include <algorithm>

namespace kms::webrtc {

namespace {
// RFC 3550 A.1's bounds: a step forward of less than kMaxDropout is the stream going on (a
// wrap when the number got smaller); one back of less than kMaxMisorder is a late or duplicate
// packet; anything else is a jump that two packets in a row must confirm.
constexpr guint16 kMaxDropout = 3000;
constexpr guint16 kMaxMisorder = 100;
// A source quiet for this long gets no more blocks; after kForgetUs it is forgotten (the peer
// picks its SSRCs, so the map must not grow for ever).
constexpr gint64 kStaleUs = 5 * G_USEC_PER_SEC;
constexpr gint64 kForgetUs = 30 * G_USEC_PER_SEC;
constexpr gint32 kMaxLost = 0x7fffff, kMinLost = -0x800000;  // 24 signed bits (§6.4.1)
// Bytes of an RR before its blocks (header and sender SSRC), and of a block.
constexpr gsize kRrHeader = 8, kBlock = 24;

void put32(guint8* at, guint32 v) {
    at[0] = static_cast<guint8>(v >> 24);
    at[1] = static_cast<guint8>(v >> 16);
    at[2] = static_cast<guint8>(v >> 8);
    at[3] = static_cast<guint8>(v);
}
}  // namespace

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
        s.max_seq = seq;
        s.base_seq = seq;
    } else if (udelta < kMaxDropout) {
        if (seq < s.max_seq) s.cycles += 0x10000;
        s.max_seq = seq;
    } else if (udelta <= 0x10000 - kMaxMisorder) {
        // A jump: one packet of garbage, or the source renumbered (two in a row say so).
        if (seq != s.bad_seq) {
            s.bad_seq = (seq + 1u) & 0xffffu;
            return;
        }
        // A.1 would start counting again from zero; the peer computes loss from differences
        // between reports, so the numbering moves on instead, and the gap is not a loss.
        const guint32 before = s.cycles + s.max_seq;
        if (seq < s.max_seq) s.cycles += 0x10000;
        s.max_seq = seq;
        s.base_seq += s.cycles + s.max_seq - before - 1;
        s.bad_seq = 0x10000;
    }  // else late or duplicate: counted, as A.1 does
    ++s.received;
}

void ReceptionStats::on_rtcp(GstBuffer* rtcp, gint64 now_us) {
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
        it->second.sr_arrival_us = now_us;
    }
    gst_rtcp_buffer_unmap(&buf);
}

std::optional<gint64> ReceptionStats::packets_lost(guint32 ssrc) {
    std::lock_guard lock(mutex_);
    auto it = sources_.find(ssrc);
    if (it == sources_.end()) return std::nullopt;
    const Source& s = it->second;
    return gint64{s.cycles + s.max_seq} - s.base_seq + 1 - s.received;
}

ReportBlock ReceptionStats::block(guint32 ssrc, Source& s, gint64 now_us) {
    ReportBlock b;
    b.ssrc = ssrc;
    b.highest_seq = s.cycles + s.max_seq;
    // A.3, in 64 bits so that no wrap makes nonsense.
    const gint64 expected = gint64{b.highest_seq} - s.base_seq + 1;
    b.packets_lost =
        static_cast<gint32>(std::clamp<gint64>(expected - s.received, kMinLost, kMaxLost));
    const gint64 expected_interval = expected - s.expected_prior;
    const gint64 lost_interval = expected_interval - (gint64{s.received} - s.received_prior);
    if (expected_interval > 0 && lost_interval > 0)
        b.fraction_lost =
            static_cast<guint8>(std::min<gint64>((lost_interval << 8) / expected_interval, 255));
    if (s.sr_arrival_us >= 0) {
        b.lsr = s.lsr;
        const gint64 since = std::max<gint64>(now_us - s.sr_arrival_us, 0);
        b.dlsr = static_cast<guint32>(since * 65536 / G_USEC_PER_SEC);
    }
    s.expected_prior = static_cast<guint32>(expected);
    s.received_prior = s.received;
    s.reported_us = now_us;
    return b;
}

std::vector<ReportBlock> ReceptionStats::blocks(gint64 now_us, size_t max,
                                                const std::function<guint32(guint32)>& jitter) {
    std::vector<ReportBlock> out;
    {
        std::lock_guard lock(mutex_);
        std::vector<std::pair<gint64, guint32>> due;  // least recently reported first
        for (auto it = sources_.begin(); it != sources_.end();) {
            if (now_us - it->second.last_us > kForgetUs) {
                it = sources_.erase(it);
                continue;
            }
            if (now_us - it->second.last_us <= kStaleUs)
                due.emplace_back(it->second.reported_us, it->first);
            ++it;
        }
        std::sort(due.begin(), due.end());
        due.resize(std::min({due.size(), max, size_t{GST_RTCP_MAX_RB_COUNT}}));
        for (const auto& [when, ssrc] : due) out.push_back(block(ssrc, sources_[ssrc], now_us));
        if (!out.empty()) last_block_us_ = now_us;
    }
    // Outside the lock: rtpsession takes its own.
    if (jitter)
        for (auto& b : out) b.jitter = jitter(b.ssrc);
    return out;
}

// rtpsession's own blocks get our loss figures (fraction, cumulative, highest) for the sources
// we count; its jitter, LSR and DLSR stay. gst_rtcp_packet_set_rb is a stub in 1.22, so the
// fixed-layout fields are written in place.
bool ReceptionStats::rewrite(GstRTCPPacket& report, guint8* data, gint64 now_us) {
    const bool sr = gst_rtcp_packet_get_type(&report) == GST_RTCP_TYPE_SR;
    const gsize header = sr ? 28 : kRrHeader;
    const gsize bytes = (gst_rtcp_packet_get_length(&report) + 1u) * 4u;
    // Only blocks inside the packet: its count field may claim more than its length holds.
    const guint count = std::min<guint>(gst_rtcp_packet_get_rb_count(&report),
                                        bytes > header ? (bytes - header) / kBlock : 0);
    bool changed = false;
    std::lock_guard lock(mutex_);
    for (guint i = 0; i < count; ++i) {
        guint32 ssrc = 0, highest = 0, jitter = 0, lsr = 0, dlsr = 0;
        guint8 fraction = 0;
        gint32 lost = 0;
        gst_rtcp_packet_get_rb(&report, i, &ssrc, &fraction, &lost, &highest, &jitter, &lsr, &dlsr);
        auto it = sources_.find(ssrc);
        if (it == sources_.end()) continue;
        const ReportBlock b = block(ssrc, it->second, now_us);
        guint8* at = data + report.offset + header + i * kBlock;
        put32(at + 4, (guint32{b.fraction_lost} << 24) | (b.packets_lost & 0xffffff));
        put32(at + 8, b.highest_seq);
        changed = true;
    }
    if (count) last_block_us_ = now_us;
    return changed;
}

bool ReceptionStats::supplement(GstBuffer* rtcp, bool early, gint64 now_us,
                                const std::function<guint32(guint32)>& jitter) {
    if (!rtcp || !gst_buffer_is_writable(rtcp)) return false;
    const gsize size = gst_buffer_get_size(rtcp);
    GstRTCPBuffer buf = GST_RTCP_BUFFER_INIT;
    if (!gst_rtcp_buffer_map(rtcp, GST_MAP_READWRITE, &buf)) return false;
    GstRTCPPacket p;
    // gst_rtcp_buffer_add_packet writes after the last packet it can read but grows the buffer
    // from its end, so bytes after the packets would end up in the middle; only the last
    // packet may be padded (RFC 3550 §6.4.1), and a BYE should stay last (§6.1). rtpsession's
    // packets are like that; anything else gets no RR appended.
    gsize end = 0;
    bool padded = false, bye = false;
    for (gboolean more = gst_rtcp_buffer_get_first_packet(&buf, &p); more;
         more = gst_rtcp_packet_move_to_next(&p)) {
        end = p.offset + (gst_rtcp_packet_get_length(&p) + 1u) * 4u;
        padded = gst_rtcp_packet_get_padding(&p);
        bye |= gst_rtcp_packet_get_type(&p) == GST_RTCP_TYPE_BYE;
    }
    guint32 own = 0;
    bool changed = false, silent = false;
    if (gst_rtcp_buffer_get_first_packet(&buf, &p)) {
        const GstRTCPType type = gst_rtcp_packet_get_type(&p);
        if (type == GST_RTCP_TYPE_SR) {
            guint32 rtptime = 0, packets = 0, octets = 0;
            guint64 ntp = 0;
            gst_rtcp_packet_sr_get_sender_info(&p, &own, &ntp, &rtptime, &packets, &octets);
        } else if (type == GST_RTCP_TYPE_RR) {
            own = gst_rtcp_packet_rr_get_ssrc(&p);
        } else if (type == GST_RTCP_TYPE_RTPFB || type == GST_RTCP_TYPE_PSFB) {
            own = gst_rtcp_packet_fb_get_sender_ssrc(&p);  // a reduced-size packet (RFC 5506)
        }
        if (type == GST_RTCP_TYPE_SR || type == GST_RTCP_TYPE_RR)
            changed = rewrite(p, buf.map.data, now_us);
        std::lock_guard lock(mutex_);
        silent = now_us - last_block_us_ >= kMaxSilenceUs;
    }
    // Room for the RR: gst_rtcp_packet_add_rb wants a byte to spare after each block.
    const gsize room = end == size && buf.map.maxsize > end + kRrHeader
                           ? (buf.map.maxsize - end - kRrHeader - 1) / kBlock
                           : 0;
    std::vector<ReportBlock> out;
    if (early && silent && own && !bye && !padded && room) out = blocks(now_us, room, jitter);
    if (!out.empty() && gst_rtcp_buffer_add_packet(&buf, GST_RTCP_TYPE_RR, &p)) {
        gst_rtcp_packet_rr_set_ssrc(&p, own);
        for (const auto& b : out)
            changed |= gst_rtcp_packet_add_rb(&p, b.ssrc, b.fraction_lost, b.packets_lost,
                                              b.highest_seq, b.jitter, b.lsr, b.dlsr) != FALSE;
    }
    gst_rtcp_buffer_unmap(&buf);
    return changed;
}

}  // namespace kms::webrtc
