// Report blocks about what we receive, written by kms when rtpsession 1.22 leaves them out.
//
// rtpsession (RFC 4585 scheduling) turns a regular RTCP packet into an early one whenever an
// early packet is pending when the regular one is due, and early packets carry no report blocks
// (rtpsession.c, is_rtcp_time and generate_rtcp). A receiver that asks for retransmissions all
// the time, as a jitter buffer does on a lossy link, always has one pending: its peer then hears
// nothing about loss, jitter or the round trip for as long as the loss lasts, and a sender that
// adapts its bitrate to receiver reports never backs off. Unchanged through GStreamer main.
//
// So kms counts each of the peer's SSRCs itself as RFC 3550 appendix A.1 and A.3 do, and when
// an outgoing packet is early and no report block has left for a second, it appends an RR with
// a block per source (RFC 3550 §6.1 allows more than one report packet in a compound packet).
// Private to libkms.
#pragma once

#include <gst/gst.h>
#include <gst/rtp/gstrtcpbuffer.h>

#include <functional>
#include <map>
#include <mutex>
#include <optional>
#include <vector>

namespace kms::webrtc {

/// One report block as RFC 3550 §6.4.1 lays it out.
struct ReportBlock {
    guint32 ssrc = 0;
    guint8 fraction_lost = 0;  // since the previous block about this source, in 1/256
    gint32 packets_lost = 0;   // cumulative, clamped to 24 signed bits
    guint32 highest_seq = 0;   // extended highest sequence number received
    guint32 jitter = 0;
    guint32 lsr = 0;   // middle 32 bits of the NTP time of the source's last SR, 0 if none
    guint32 dlsr = 0;  // since that SR arrived, in 1/65536 s
};

/// Counts the RTP the peer sends and writes report blocks about it. on_rtp() and on_rtcp() run
/// on streaming threads and supplement() on rtpsession's RTCP thread: each call takes the lock.
/// Times are the monotonic clock's, in microseconds.
class ReceptionStats {
  public:
    /// Counts one decrypted RTP packet that arrived at now_us. Anything that is not RTP
    /// version 2 is ignored.
    void on_rtp(GstBuffer* rtp, gint64 now_us);
    /// Notes the sender reports in one incoming RTCP compound packet, arrived at now_us.
    void on_rtcp(GstBuffer* rtcp, gint64 now_us);

    /// Blocks about up to max sources heard from in the last few seconds, those reported least
    /// recently first, as of now_us. Each fraction covers the time since the previous block
    /// about its source, and the next one starts from here. jitter(ssrc) gives the
    /// interarrival jitter (rtpsession measures it).
    std::vector<ReportBlock> blocks(gint64 now_us, size_t max,
                                    const std::function<guint32(guint32)>& jitter);

    /// Called with each RTCP compound packet rtpsession is about to send (its on-sending-rtcp
    /// signal). A regular packet's report blocks get our loss figures for the sources we count,
    /// so that the peer reads one series whoever wrote the block (rtpsession's counting differs
    /// from A.1's in details, and its fractions would span our blocks). An early packet, when
    /// no block has left for kMaxSilenceUs, gains an RR from the packet's own SSRC with
    /// blocks() in it. True when the packet changed.
    bool supplement(GstBuffer* rtcp, bool early, gint64 now_us,
                    const std::function<guint32(guint32)>& jitter);

    /// RTP packets of ssrc lost so far (RFC 3550 A.3: expected less received; below 0 when
    /// some came twice), or nothing for a source not heard from lately. rtpsession's own
    /// count reads -1 on a call that lost nothing: its probation counts the first packet
    /// and starts the sequence at the second.
    std::optional<gint64> packets_lost(guint32 ssrc);

    /// Longest stretch without a report block before supplement() writes one: the regular
    /// interval kms asks rtpsession for is one second.
    static constexpr gint64 kMaxSilenceUs = 1000000;

  private:
    struct Source {
        guint16 max_seq = 0;
        guint32 cycles = 0;  // sequence number wraps, times 65536
        guint32 base_seq = 0;
        guint32 bad_seq = 0x10000;  // a jump's next sequence number (A.1); above 16 bits: none
        guint32 received = 0;
        guint32 expected_prior = 0;
        guint32 received_prior = 0;
        gint64 last_us = 0;      // when its last packet arrived
        gint64 reported_us = 0;  // when a block about it last left
        guint32 lsr = 0;
        gint64 sr_arrival_us = -1;  // when its last SR came; below 0: none yet
    };
    static ReportBlock block(guint32 ssrc, Source& s, gint64 now_us);  // and a new interval
    bool rewrite(GstRTCPPacket& report, guint8* data, gint64 now_us);

    std::mutex mutex_;
    std::map<guint32, Source> sources_;
    gint64 last_block_us_ = 0;  // when a report block last left, ours or rtpsession's
};

}  // namespace kms::webrtc
