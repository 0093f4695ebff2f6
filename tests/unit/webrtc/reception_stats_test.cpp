// The report blocks kms writes about what it receives when rtpsession 1.22 sends none: RFC 3550
// A.1's counting (wraps, late and duplicate packets, jumps), A.3's loss figures, LSR and DLSR
// from the source's sender report, and when supplement() appends them to an outgoing packet.
// What it writes is read back with ReceiverReports, the reader the far end of a kms call uses.
#include <gst/rtp/rtp.h>
#include <catch2/catch.hpp>

#include <initializer_list>

#include "webrtc/receiver_reports.hpp"
#include "webrtc/reception_stats.hpp"

namespace {

using kms::webrtc::ReceiverReports;
using kms::webrtc::ReceptionStats;

constexpr gint64 kSecond = G_USEC_PER_SEC;

void rtp(ReceptionStats& r, guint32 ssrc, std::initializer_list<guint16> seqs, gint64 at = 0) {
    gst_init(nullptr, nullptr);
    for (guint16 seq : seqs) {
        GstBuffer* b = gst_rtp_buffer_new_allocate(20, 0, 0);
        GstRTPBuffer p = GST_RTP_BUFFER_INIT;
        gst_rtp_buffer_map(b, GST_MAP_WRITE, &p);
        gst_rtp_buffer_set_ssrc(&p, ssrc);
        gst_rtp_buffer_set_seq(&p, seq);
        gst_rtp_buffer_unmap(&p);
        r.on_rtp(b, at);
        gst_buffer_unref(b);
    }
}

// What rtpsession sends early: an RR from SSRC 99 with no block, its CNAME and a NACK, in a
// buffer of MTU size (rtpsession's gst_rtcp_buffer_new). With a block about SSRC 5 (its own
// figures: 9 lost, highest 1, jitter 33), a regular one; with bye, one that says BYE.
GstBuffer* outgoing(bool with_block = false, bool bye = false) {
    gst_init(nullptr, nullptr);
    GstBuffer* buf = gst_rtcp_buffer_new(1400);
    GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
    gst_rtcp_buffer_map(buf, GST_MAP_READWRITE, &rtcp);
    GstRTCPPacket p;
    gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_RR, &p);
    gst_rtcp_packet_rr_set_ssrc(&p, 99);
    if (with_block) gst_rtcp_packet_add_rb(&p, 5, 0, 9, 1, 33, 0, 0);
    gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_SDES, &p);
    gst_rtcp_packet_sdes_add_item(&p, 99);
    gst_rtcp_packet_sdes_add_entry(&p, GST_RTCP_SDES_CNAME, 4,
                                   reinterpret_cast<const guint8*>("kms1"));
    gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_RTPFB, &p);
    gst_rtcp_packet_fb_set_type(&p, GST_RTCP_RTPFB_TYPE_NACK);
    gst_rtcp_packet_fb_set_sender_ssrc(&p, 99);
    gst_rtcp_packet_fb_set_media_ssrc(&p, 5);
    gst_rtcp_packet_fb_set_fci_length(&p, 1);
    guint8* fci = gst_rtcp_packet_fb_get_fci(&p);
    fci[0] = 0, fci[1] = 3, fci[2] = 0, fci[3] = 0;
    if (bye) {
        gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_BYE, &p);
        gst_rtcp_packet_bye_add_ssrc(&p, 99);
    }
    gst_rtcp_buffer_unmap(&rtcp);
    return buf;
}

guint packets(GstBuffer* buf) {
    GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
    gst_rtcp_buffer_map(buf, GST_MAP_READ, &rtcp);
    const guint n = gst_rtcp_buffer_get_packet_count(&rtcp);
    gst_rtcp_buffer_unmap(&rtcp);
    return n;
}

// The block about SSRC 5 that blocks() gives now.
kms::webrtc::ReportBlock about5(ReceptionStats& r, gint64 now = 0) {
    for (const auto& b : r.blocks(now, 31, nullptr))
        if (b.ssrc == 5) return b;
    FAIL("no block about SSRC 5");
    return {};
}

// What the peer reads about SSRC 5 in a packet that arrived at arrival_ntp.
kms::webrtc::RemoteReport read5(GstBuffer* b, guint64 arrival_ntp = 0) {
    ReceiverReports peer;
    peer.watch(5);
    peer.add(b, arrival_ntp);
    const auto got = peer.latest(5);
    REQUIRE(got);
    return *got;
}

}  // namespace

TEST_CASE("reception stats: sequence numbers counted as RFC 3550 A.1 does") {
    ReceptionStats r;
    SECTION("a wrap, a loss, a late and a duplicate packet") {
        // 65534, 65535, 0, [1 lost], 3, 2 (late), 3 (again), 4: expected 7, received 7.
        rtp(r, 5, {65534, 65535, 0, 3, 2, 3, 4});
        const auto b = about5(r);
        CHECK(b.highest_seq == 0x10000 + 4);
        CHECK(b.packets_lost == 0);  // the duplicate makes up for the loss, as §6.4.1 says
        CHECK(b.fraction_lost == 0);
    }
    SECTION("losses, and the fraction covers the time since the previous block") {
        rtp(r, 5, {10, 11, 14, 15, 18, 19});  // 10 expected, 6 received
        auto b = about5(r);
        CHECK(b.highest_seq == 19);
        CHECK(b.packets_lost == 4);
        CHECK(b.fraction_lost == 4 * 256 / 10);
        rtp(r, 5, {20, 21, 22, 23});  // none lost since
        b = about5(r);
        CHECK(b.packets_lost == 4);
        CHECK(b.fraction_lost == 0);
        rtp(r, 5, {25});  // one of two
        CHECK(about5(r).fraction_lost == 128);
    }
    SECTION("a jump is believed when the next packet follows it, and is no loss") {
        rtp(r, 5, {100, 101, 30000});  // one stray number: not counted
        auto b = about5(r);
        CHECK(b.highest_seq == 101);
        CHECK(b.packets_lost == 0);
        rtp(r, 5, {30001, 30002});  // the source renumbered: counted from there
        b = about5(r);
        CHECK(b.highest_seq == 30002);
        CHECK(b.packets_lost == 0);
        CHECK(b.fraction_lost == 0);
    }
    SECTION("a jump back still moves the highest number on") {
        rtp(r, 5, {1000, 1001, 500, 501, 503});
        const auto b = about5(r);
        CHECK(b.highest_seq == 0x10000 + 503);
        CHECK(b.packets_lost == 1);  // 502
    }
    SECTION("sources apart; quiet ones left out, then forgotten; not RTP is ignored") {
        rtp(r, 5, {1, 2}, 0);
        rtp(r, 6, {7, 9}, 4 * kSecond);
        GstBuffer* junk = gst_buffer_new_allocate(nullptr, 8, nullptr);
        gst_buffer_memset(junk, 0, 0x80, 8);
        r.on_rtp(junk, 4 * kSecond);
        gst_buffer_unref(junk);
        auto all = r.blocks(4 * kSecond, 31, nullptr);
        REQUIRE(all.size() == 2);
        CHECK(all[0].ssrc + all[1].ssrc == 11);
        CHECK(r.blocks(6 * kSecond, 31, nullptr).size() == 1);  // 5 is quiet
        CHECK(r.blocks(40 * kSecond, 31, nullptr).empty());
        rtp(r, 5, {3}, 41 * kSecond);  // forgotten: counted afresh
        CHECK(about5(r, 41 * kSecond).highest_seq == 3);
    }
    SECTION("at most max blocks, the least recently reported first") {
        rtp(r, 5, {1});
        rtp(r, 6, {1});
        rtp(r, 7, {1});
        auto first = r.blocks(1, 2, nullptr);
        REQUIRE(first.size() == 2);
        auto next = r.blocks(2, 2, nullptr);
        REQUIRE(next.size() == 2);
        CHECK(next[0].ssrc != first[0].ssrc);
        CHECK(next[0].ssrc != first[1].ssrc);  // the one left out goes first
    }
}

TEST_CASE("reception stats: an early packet after a second without blocks gains an RR") {
    ReceptionStats r;
    rtp(r, 5, {1, 2, 4, 5}, 0);
    // The source's sender report, arrived at 1.25 s: LSR is its NTP time's middle 32 bits,
    // DLSR counts from its arrival in 1/65536 s.
    GstBuffer* sr = gst_rtcp_buffer_new(1400);
    GstRTCPBuffer rtcp = GST_RTCP_BUFFER_INIT;
    gst_rtcp_buffer_map(sr, GST_MAP_READWRITE, &rtcp);
    GstRTCPPacket p;
    gst_rtcp_buffer_add_packet(&rtcp, GST_RTCP_TYPE_SR, &p);
    const guint64 sr_ntp = 0x0000100012340000ULL;
    gst_rtcp_packet_sr_set_sender_info(&p, 5, sr_ntp, 0, 4, 400);
    gst_rtcp_buffer_unmap(&rtcp);
    r.on_rtcp(sr, kSecond + kSecond / 4);
    gst_buffer_unref(sr);
    auto jitter = [](guint32 ssrc) { return ssrc == 5 ? 77u : 0u; };

    // A regular packet without blocks is rtpsession's business.
    GstBuffer* b = outgoing();
    CHECK_FALSE(r.supplement(b, false, 2 * kSecond, jitter));
    CHECK(packets(b) == 3);
    gst_buffer_unref(b);

    // An early one, a second after the last block: an RR of SSRC 99 is appended.
    b = outgoing();
    REQUIRE(r.supplement(b, true, 2 * kSecond, jitter));
    REQUIRE(packets(b) == 4);
    REQUIRE(gst_rtcp_buffer_validate(b));
    GstRTCPBuffer out = GST_RTCP_BUFFER_INIT;
    gst_rtcp_buffer_map(b, GST_MAP_READ, &out);
    gst_rtcp_buffer_get_first_packet(&out, &p);
    for (int i = 0; i < 3; ++i) gst_rtcp_packet_move_to_next(&p);
    CHECK(gst_rtcp_packet_get_type(&p) == GST_RTCP_TYPE_RR);
    CHECK(gst_rtcp_packet_rr_get_ssrc(&p) == 99);
    gst_rtcp_buffer_unmap(&out);
    // Read as the peer reads it, 3/4 s after the SR was sent by its clock.
    auto got = read5(b, sr_ntp + (guint64{3} << 30));
    gst_buffer_unref(b);
    CHECK(got.packets_lost == 1);
    CHECK(got.highest_seq == 5);
    CHECK(got.fraction_lost == Approx(1 / 5.0).epsilon(0.02));
    CHECK(got.jitter == 77);
    CHECK(got.rtt == Approx(0.0).margin(1e-4));  // LSR + DLSR is exactly when it came

    // Within a second of that one: nothing more.
    b = outgoing();
    CHECK_FALSE(r.supplement(b, true, 2 * kSecond + kSecond / 2, jitter));
    CHECK(packets(b) == 3);
    gst_buffer_unref(b);
    // rtpsession's own block gets our figures and keeps its jitter, and starts the second
    // again.
    rtp(r, 5, {7}, 3 * kSecond);
    b = outgoing(true);
    CHECK(r.supplement(b, false, 3 * kSecond + kSecond / 2, jitter));
    got = read5(b);
    gst_buffer_unref(b);
    CHECK(got.packets_lost == 2);
    CHECK(got.highest_seq == 7);
    CHECK(got.fraction_lost == Approx(0.5).epsilon(0.02));  // 6 of 6, 7
    CHECK(got.jitter == 33);
    b = outgoing();
    CHECK_FALSE(r.supplement(b, true, 4 * kSecond, jitter));
    gst_buffer_unref(b);
    // An early packet that says BYE keeps it last.
    b = outgoing(false, true);
    CHECK_FALSE(r.supplement(b, true, 4 * kSecond + kSecond / 2, jitter));
    gst_buffer_unref(b);
    b = outgoing();
    CHECK(r.supplement(b, true, 4 * kSecond + kSecond / 2, jitter));
    gst_buffer_unref(b);
}

TEST_CASE("packets_lost: 0 from the first packet on, gaps counted, duplicates below 0") {
    ReceptionStats r;
    CHECK_FALSE(r.packets_lost(7).has_value());
    rtp(r, 7, {100, 101, 102, 103});
    // rtpsession's probation reads -1 here.
    CHECK(r.packets_lost(7) == 0);
    rtp(r, 7, {105, 106});
    CHECK(r.packets_lost(7) == 1);
    rtp(r, 7, {106});
    CHECK(r.packets_lost(7) == 0);
    rtp(r, 7, {65535, 0, 1});  // a jump: two in a row renumber, no loss
    CHECK(r.packets_lost(7) == 0);
    CHECK_FALSE(r.packets_lost(8).has_value());
}
