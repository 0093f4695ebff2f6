// The peer's receiver report blocks about our streams: every block of a packet read, the
// round-trip time as RFC 3550 §6.4.1 computes it (with the 32-bit wrap), blocks about other SSRCs
// and malformed packets ignored.
#include <gst/rtp/rtp.h>
#include <catch2/catch.hpp>

#include <ctime>
#include <vector>

#include "webrtc/receiver_reports.hpp"

namespace {

using kms::webrtc::ReceiverReports;

struct Block {
    guint32 ssrc;
    guint8 fraction;
    gint32 lost;
    guint32 highest, jitter, lsr, dlsr;
};

// One RTCP packet: an SR (when sr) or RR from SSRC 99 carrying blocks, then an SDES as
// compound packets have.
GstBuffer* rtcp_packet(const std::vector<Block>& blocks, bool sr = false) {
    gst_init(nullptr, nullptr);  // GstBuffer needs it (idempotent)
    GstBuffer* buf = gst_rtcp_buffer_new(1400);
    GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
    gst_rtcp_buffer_map(buf, GST_MAP_READWRITE, &rtcp);
    GstRTCPPacket p;
    gst_rtcp_buffer_add_packet(&rtcp, sr ? GST_RTCP_TYPE_SR : GST_RTCP_TYPE_RR, &p);
    if (sr)
        gst_rtcp_packet_sr_set_sender_info(&p, 99, 0x1234567800000000ULL, 1000, 10, 1000);
    else
        gst_rtcp_packet_rr_set_ssrc(&p, 99);
    for (const Block& b : blocks)
        gst_rtcp_packet_add_rb(&p, b.ssrc, b.fraction, b.lost, b.highest, b.jitter, b.lsr, b.dlsr);
    gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_SDES, &p);
    gst_rtcp_packet_sdes_add_item(&p, 99);
    gst_rtcp_packet_sdes_add_entry(&p, GST_RTCP_SDES_CNAME, 4,
                                   reinterpret_cast<const guint8*>("kms1"));
    gst_rtcp_buffer_unmap(&rtcp);
    return buf;
}

// An NTP arrival time whose middle 32 bits are mid.
guint64 arrival(guint32 mid) {
    return static_cast<guint64>(mid) << 16;
}

}  // namespace

TEST_CASE("receiver reports: every block of a packet, about each SSRC we watch") {
    ReceiverReports r;
    r.watch(1);
    r.watch(2);
    // LSR and DLSR in 1/65536 s: the report came 0x1000 (1/16 s) after LSR + DLSR.
    GstBuffer* b = rtcp_packet({{1, 64, 5, 1000, 90, 0x10000, 0x8000},
                                {3, 0, 0, 7, 0, 0x10000, 0x8000},
                                {2, 0, -1, 500, 30, 0x10000, 0x4000}});
    r.add(b, arrival(0x10000 + 0x8000 + 0x1000));
    gst_buffer_unref(b);

    const auto all = r.all();
    REQUIRE(all.size() == 2);  // 3 is not ours
    const auto one = r.latest(1);
    REQUIRE(one);
    CHECK(one->fraction_lost == Approx(0.25));
    CHECK(one->packets_lost == 5);
    CHECK(one->highest_seq == 1000);
    CHECK(one->jitter == 90);
    CHECK(one->rtt == Approx(1.0 / 16));
    CHECK(one->rtt_measurements == 1);
    CHECK(one->reports == 1);
    const auto two = r.latest(2);
    REQUIRE(two);
    CHECK(two->packets_lost == -1);
    CHECK(two->rtt == Approx((0x8000 - 0x4000 + 0x1000) / 65536.0));
    CHECK_FALSE(r.latest(3));
}

TEST_CASE("receiver reports: a sender report's blocks count too, and totals add up") {
    ReceiverReports r;
    r.watch(7);
    for (guint32 i = 1; i <= 3; ++i) {
        GstBuffer* b = rtcp_packet({{7, 0, 0, 100 * i, 0, 0x20000, 0}}, true);
        r.add(b, arrival(0x20000 + 0x100 * i));
        gst_buffer_unref(b);
    }
    const auto s = r.latest(7);
    REQUIRE(s);
    CHECK(s->reports == 3);
    CHECK(s->rtt_measurements == 3);
    CHECK(s->highest_seq == 300);
    CHECK(s->rtt == Approx(0x300 / 65536.0));
    CHECK(s->total_rtt == Approx((0x100 + 0x200 + 0x300) / 65536.0));
}

TEST_CASE("receiver reports: no round-trip time without LSR, or from clocks that disagree") {
    ReceiverReports r;
    r.watch(1);
    // LSR 0: the peer has had no sender report of ours yet (RFC 3550 §6.4.1).
    GstBuffer* b = rtcp_packet({{1, 0, 0, 10, 0, 0, 0}});
    r.add(b, arrival(0x50000));
    gst_buffer_unref(b);
    auto s = r.latest(1);
    REQUIRE(s);
    CHECK(s->reports == 1);
    CHECK(s->rtt < 0);
    CHECK(s->rtt_measurements == 0);
    // A report that reads as arriving before our sender report left: not a time.
    b = rtcp_packet({{1, 0, 0, 20, 0, 0x50000, 0x100}});
    r.add(b, arrival(0x50000));
    gst_buffer_unref(b);
    s = r.latest(1);
    CHECK(s->reports == 2);
    CHECK(s->highest_seq == 20);
    CHECK(s->rtt < 0);
}

TEST_CASE("receiver reports: the middle 32 bits wrap") {
    CHECK(ReceiverReports::round_trip(arrival(0x00000800), 0xFFFFF000, 0x800) ==
          Approx(0x1000 / 65536.0));
    CHECK(ReceiverReports::round_trip(arrival(0x10000), 0x10000, 0) == 0.0);
    CHECK(ReceiverReports::round_trip(arrival(0x10000), 0, 0) < 0);
}

TEST_CASE("receiver reports: malformed packets change nothing") {
    gst_init(nullptr, nullptr);
    ReceiverReports r;
    r.watch(1);
    GstBuffer* good = rtcp_packet({{1, 0, 0, 10, 0, 0, 0}});
    GstMapInfo map;
    gst_buffer_map(good, &map, GST_MAP_READ);
    std::vector<guint8> bytes(map.data, map.data + map.size);
    gst_buffer_unmap(good, &map);
    gst_buffer_unref(good);
    // Each would give a block about SSRC 1 to a reader that did not validate: the packet cut
    // short inside its block, a length that runs past the end, and RTP version 1.
    std::vector<std::vector<guint8>> bad{{bytes.begin(), bytes.begin() + 28}, bytes, bytes};
    bad[1][3] = 200;
    bad[2][0] = static_cast<guint8>((bad[2][0] & 0x3f) | 0x40);
    for (const auto& v : bad) {
        GstBuffer* b = gst_buffer_new_memdup(v.data(), v.size());
        r.add(b, arrival(0x50000));
        gst_buffer_unref(b);
    }
    r.add(nullptr, 0);
    CHECK(r.all().empty());
}

TEST_CASE("receiver reports: now is NTP time from the real-time clock") {
    const guint64 ntp = ReceiverReports::now_ntp();
    gst_init(nullptr, nullptr);
    const auto unix_secs = static_cast<long long>(ntp >> 32) - 2208988800LL;
    CHECK(std::llabs(unix_secs - static_cast<long long>(std::time(nullptr))) <= 1);
}

TEST_CASE(
    "receiver reports: no round-trip time from a sender report stamped before DTLS let it "
    "leave") {
    ReceiverReports r;
    r.watch(1);
    // Sending opens at 0x60000; the first sender report was stamped 0x6000 (about 0.1 s) before
    // and waited at webrtcbin's block: its round trip would count that wait.
    r.sending_from(arrival(0x60000));
    GstBuffer* b = rtcp_packet({{1, 0, 0, 10, 0, 0x60000 - 0x6000, 0x100}});
    r.add(b, arrival(0x60000 + 0x1000 + 0x100));
    gst_buffer_unref(b);
    auto s = r.latest(1);
    REQUIRE(s);
    CHECK(s->reports == 1);  // the block counts; its time does not
    CHECK(s->rtt_measurements == 0);
    // The next, stamped once sending was open, measures the path.
    b = rtcp_packet({{1, 0, 0, 20, 0, 0x60800, 0x100}});
    r.add(b, arrival(0x60800 + 0x100 + 0x1000));
    gst_buffer_unref(b);
    s = r.latest(1);
    CHECK(s->rtt_measurements == 1);
    CHECK(s->rtt == Approx(0x1000 / 65536.0));
}
