// What the peer's RTCP receiver report blocks (RFC 3550 §6.4) say about the streams we send:
// loss, jitter and the round-trip time, per SSRC of ours. webrtcbin 1.22's get-stats cannot give
// these per stream: rtpsession keeps only the last report block each remote source sent (a peer
// reporting on our audio and video in one packet leaves just one of them), and get-stats files
// the bundle's remote-inbound-rtp under one SSRC, at times with no round-trip time for a whole
// call. So kms reads every block of every RTCP packet that reaches it. Private to libkms.
#pragma once

#include <gst/gst.h>

#include <map>
#include <mutex>
#include <optional>
#include <set>

namespace kms::webrtc {

/// The newest report block about one of our SSRCs, with the round-trip times of all of them.
struct RemoteReport {
    guint32 ssrc = 0;
    double fraction_lost = 0;  // of the report's own interval, 0..1 (RFC 3550 §6.4.1)
    gint32 packets_lost = 0;   // cumulative; below 0 when duplicates outnumber losses
    guint32 highest_seq = 0;   // extended highest sequence number received
    guint32 jitter = 0;        // interarrival jitter, in RTP timestamp units
    double rtt = -1;           // seconds, from the newest block that gives one; -1 while none has
    double total_rtt = 0;      // the sum of every round-trip time measured (W3C totalRoundTripTime)
    unsigned long long rtt_measurements = 0;
    unsigned long long reports = 0;  // blocks received about this SSRC
};

/// Collects the report blocks about a set of our SSRCs from the RTCP packets the peer sends.
/// add() runs on a streaming thread, the readers anywhere: each call takes the lock.
class ReceiverReports {
  public:
    /// Starts keeping the blocks about ssrc; blocks about any other SSRC are ignored.
    void watch(guint32 ssrc);

    /// Reads the SR and RR packets of one RTCP compound packet that arrived at ntp_arrival (a
    /// 64-bit NTP timestamp, as now_ntp() gives). Anything that does not parse is skipped.
    void add(GstBuffer* rtcp, guint64 ntp_arrival);

    /// Our sender reports leave from ntp on (DTLS connected: webrtcbin holds RTCP back until
    /// then). A block answering one stamped earlier gives no round-trip time: that report
    /// waited at the block, and the time would count the handshake (twice the path, seen).
    void sending_from(guint64 ntp);

    /// The newest report about ssrc, if any has come.
    std::optional<RemoteReport> latest(guint32 ssrc) const;
    /// Every SSRC watched that has a report, in SSRC order.
    std::map<guint32, RemoteReport> all() const;

    /// Now as a 64-bit NTP timestamp from the real-time clock, the clock rtpsession puts into
    /// its sender reports by default (ntp-time-source=ntp), so LSR compares with it.
    static guint64 now_ntp();

    /// The round-trip time a block gives (RFC 3550 §6.4.1: arrival - LSR - DLSR, in 1/65536 s,
    /// modulo 2^32), or -1 when it gives none: no sender report of ours has reached the peer
    /// (LSR 0), or the result is not a plausible time (the clocks disagree).
    static double round_trip(guint64 ntp_arrival, guint32 lsr, guint32 dlsr);

  private:
    void add_block(guint32 ssrc, guint8 fraction, gint32 lost, guint32 highest, guint32 jitter,
                   guint32 lsr, guint32 dlsr, guint64 ntp_arrival);

    mutable std::mutex mutex_;
    std::set<guint32> watched_;
    std::map<guint32, RemoteReport> reports_;
    guint32 sending_from_ = 0;  // the middle 32 bits of an NTP time, as LSR; 0: not yet known
};

}  // namespace kms::webrtc
