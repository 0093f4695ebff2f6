// WebRtcEndpoint::Impl, private to libkms: the state of one call and the declarations of its
// parts, defined in endpoint_build.cpp (the graph: transceivers, senders, inputs),
// endpoint_receive.cpp (received streams, filed by m-line), endpoint_negotiation.cpp (SDP),
// endpoint_transport.cpp (ICE, DTLS, the fingerprint check), endpoint_stats.cpp (W3C stats,
// bitrate, media flow, timing) and endpoint_lifecycle.cpp (plumbing, bus, shutdown).
//
// WebRtcEndpoint on webrtcbin.
//
// Negotiation order (GStreamer 1.22): webrtcbin connects a requested sink pad to its transceiver
// only when the signalling state returns to stable. So both roles learn the negotiated codec from
// the peer's SDP first, then request "sink_<mline>" pads and link encoders, and only then apply
// the description that makes the state stable (the answer: local for the answerer, remote for
// the offerer).
//
// Threads: webrtcbin signals and promise replies arrive on GStreamer threads. Each handler holds
// a weak reference to Impl and hands the work to the main context; nothing blocks there.
//
// As an element (EndpointCore): a stream connected in is a feed, held at an identity until the
// negotiation gives it an m-line and a codec (link_feeds()); each m-line received is exposed,
// encoded as it arrived, once its first packet is through depayloading.
#pragma once

#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/video/video.h>
#include <gst/webrtc/webrtc.h>
#include <openssl/crypto.h>

#include "core/log.hpp"
#include "core/process.hpp"
#include "gst/handles.hpp"
#include "kms/loop.hpp"
#include "kms/runtime.hpp"
#include "kms/sdp.hpp"
#include "kms/uri.hpp"
#include "kms/webrtc_endpoint.hpp"
#include "media/decoder.hpp"
#include "pipeline/element.hpp"
#include "stats/stats_json.hpp"
#include "webrtc/bundle.hpp"
#include "webrtc/codecs.hpp"
#include "webrtc/dtls_verify.hpp"
#include "webrtc/ice_config.hpp"
#include "webrtc/receiver_reports.hpp"
#include "webrtc/reception_stats.hpp"

namespace kms {

using media::decoder_for;
using stats::enum_nick;
using stats::stats_to_json;
using webrtc::certificate_fingerprint;
using webrtc::check_resolves;
using webrtc::CodecInfo;
using webrtc::resolve_bind;
using webrtc::webrtcbin_turn_uri;

using Clock = std::chrono::steady_clock;

// 2.5 -> "2.5", 3 -> "3"
inline std::string fmt_seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", s);
    return buf;
}

inline std::string direction_name(GstWebRTCRTPTransceiverDirection d) {
    switch (d) {
        case GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY:
            return "sendonly";
        case GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY:
            return "recvonly";
        case GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE:
            return "inactive";
        default:
            return "sendrecv";
    }
}

// What the Pipeline sees of the endpoint (pipeline/element.hpp). Its bin holds webrtcbin and
// every branch around it; the Impl does the work.
struct EndpointCore : Element::Core {
    EndpointCore() : Core("webrtc") {}
    std::weak_ptr<WebRtcEndpoint::Impl> impl;
    std::atomic<unsigned> feeds_made{0};

    bool ends_with_eos() const override { return false; }
    bool takes_kind(const std::string& kind) const override;
    bool takes_as_is(const GstCaps* caps) const override;
    GstPad* request_sink_from(Core& from, const std::string& kind, const GstCaps* caps,
                              const std::string& arrives) override;
    void upstream_connected(Core& from) override;
    void send_eos() override;
    bool handle_error(GstMessage* msg) override;
    // Every received stream that will come has come (or the wait for the rest is over).
    void all_given() { announce_all_exposed(); }
};

struct WebRtcEndpoint::Impl : std::enable_shared_from_this<Impl> {
    static constexpr auto kBuffers =
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST);
    // Counted on streaming threads, read on the main thread.
    struct TrackCounts {
        std::atomic<unsigned long long> frames_in{0}, frames_out{0};
        std::atomic<guint32> rx_ssrc{0};  // the peer's SSRC filed under this m-line
        // RTP this m-line handed to webrtcbin: packets, and their payload bytes (W3C bytesSent)
        std::atomic<unsigned long long> rtp_out{0}, payload_out{0};
    };
    struct Track {
        std::string kind;
        const CodecInfo* codec = nullptr;
        int pt = -1;
        int mline = -1;
        bool send = false;
        bool recv = false;
        int source = -1;         // index into opt.send of what this m-line sends
        guint32 ssrc = 0;        // what we send with (a=ssrc)
        std::string mid;         // once negotiated
        std::string msid_track;  // the track id in a=msid: the transceiver's name
        webrtc::ExtIds ext;      // header extensions agreed for this m-line
        std::shared_ptr<TrackCounts> n = std::make_shared<TrackCounts>();
        bool never_arrived_reported = false;
        GstElement* encoder = nullptr;  // borrowed; owned by the pipeline
        // File and stdin inputs: the webrtcbin pad waiting for the stream, and how to encode it.
        std::shared_ptr<GstPad> webrtc_sink;
        std::shared_ptr<GstWebRTCRTPTransceiver> transceiver;  // the answerer's, once made
        bool fed = false;    // a feed is linked to it (link_feeds())
        bool given = false;  // what arrives on it is exposed downstream (expose_mutex)
    };
    // A stream connected into the endpoint: dropped at its identity until link_feeds() gives
    // it the sender of its m-line.
    struct Feed {
        int slot = -1;  // index into slots: which upstream element it comes from
        std::string kind, media;
        gst::CapsPtr caps;
        GstElement* entry = nullptr;  // borrowed: its identity in the bin
        std::atomic<bool> linked{false};
        gulong block = 0;    // the probe holding its first buffer until it is linked, or 0
        bool taken = false;  // main thread
    };
    // What an upstream element gives, as connect() told us (offer an m-line per kind of each).
    struct Slot {
        const Element::Core* from = nullptr;
        bool known = false, video = false, audio = false;
        bool finite = false;  // its end (a file's) ends the call
    };

    WebRtcOptions opt;
    Callbacks cb;
    EventWriter& events;

    std::shared_ptr<EndpointCore> core;
    gst::ElementPtr bin;           // core's bin, in the caller's Pipeline
    GstElement* webrtc = nullptr;  // owned by bin
    std::mutex expose_mutex;       // Track::given: streaming threads expose
    long exposed = 0;              // streams exposed (expose_mutex)
    int exposing = 0;              // streams being exposed right now (expose_mutex)
    bool give_all_asked = false;   // all_given() waits for exposing to reach 0 (expose_mutex)
    void give_all();
    bool expose_deadline_armed = false;
    std::vector<Slot> slots;               // feeds_mutex
    std::vector<GstElement*> feed_chains;  // borrowed: link_feed()'s bins (main thread)
    std::mutex feeds_mutex;
    std::vector<std::shared_ptr<Feed>> feeds;
    std::atomic<bool> senders_ready{
        false};  // link_senders() ran: each m-line we send on has a codec
    void drop_until_linked(const std::shared_ptr<Feed>& f);
    std::mutex signals_mutex;  // connect() runs on webrtcbin's threads too
    std::vector<gst::SignalConnection> signals;
    gst::ObjectPtr<GstWebRTCDataChannel> channel;
    std::vector<Track> tracks;
    std::vector<guint> timers;

    // Negotiation state (main thread only).
    bool local_sent = false;
    bool remote_applied = false;
    bool ice_connected_once = false;
    bool stopping = false;
    bool stop_asked = false;  // stop() was called once
    bool ended = false;
    CallEnd pending_end;
    Clock::time_point stop_started{};
    static constexpr unsigned kByeGraceMs = 500;
    std::mutex rx_mutex;
    struct RxEntry {
        GstElement* queue;  // borrowed: the first element of a receive branch
        gst::PadPtr src;    // its src pad, blocked until the fingerprint is checked
        gulong block = 0;   // that blocking probe, 0 once removed
        bool video = false;
    };
    std::vector<RxEntry> rx_entries;
    std::string remote_fp_alg;
    std::string remote_fp;
    unsigned remote_video_limit_kbps = 0;
    unsigned video_bitrate_kbps = 0;
    Clock::time_point last_adapt = Clock::now();
    Clock::time_point disconnected_since{};
    Clock::time_point ice_connected_at{};
    bool disconnected = false;
    bool selected_pair_reported = false;
    std::string ice_state = "new";
    std::string stream_id;                   // a=msid's stream: one for the call, our RTCP CNAME
    int rx_mid_ext = 0;                      // the MID extension's id in what the peer sends
    std::map<guint32, int> announced_rx;     // the peer's a=ssrc lines: SSRC to m-line
    std::map<guint32, guint32> rx_repair;    // the peer's a=ssrc-group:FID: RTX SSRC to media
    std::map<guint32, guint32> tx_repair;    // ours, from the description we send
    std::map<guint32, std::string> rx_mids;  // SSRC to the MID its packets carried (ssrc_mutex)
    Clock::time_point verified_at{};
    std::set<guint32> byes;  // the peer's SSRCs that said BYE
    bool bye_watch = false;
    bool bye_all = false;                            // every stream that came has said BYE
    static constexpr int64_t kByeQuietUs = 1000000;  // after a BYE, this long without media ends it
    static constexpr int64_t kByeAllQuietUs = 300000;  // the same when every stream said BYE
    static constexpr double kExpectTracksS = 5;  // a negotiated track not there by then is missing
    std::map<std::string, unsigned> candidates_by_type;  // local ones, from on-ice-candidate
    bool data_open = false;
    bool remote_data = false;  // the offer has a data channel line (choose_codecs())
    std::set<GstWebRTCDTLSTransport*> watched_dtls;

    // Touched from streaming threads.
    std::atomic<bool> verified{false};
    std::atomic<bool> first_rtp_seen{false};
    std::atomic<bool> gate_closed{false};  // after stop(): drop what still arrives
    std::atomic<int64_t> last_rx_us{0};
    std::atomic<int64_t> last_media_us{0};  // RTP of a received track, after the DTLS check
    std::atomic<unsigned long long> frames_video{0}, frames_audio{0}, sent_video{0}, sent_audio{0};
    std::atomic<unsigned long long> dc_sent{0}, dc_received{0};
    std::atomic<unsigned long long> rx_bytes{0};
    std::atomic<long long> packets_lost{0};
    // Held sources (a file, stdin) start once the peer can decrypt what we send.
    bool input_started = false;
    bool input_grace_over = false;
    std::atomic<bool> peer_keyed{false};  // SRTP from the peer decrypted: its keys are in place
    int inputs_running = 0;
    std::mutex ssrc_mutex;
    // webrtcbin 1.22's stats give every SSRC of a bundle one codec, so we learn each SSRC's kind.
    std::map<guint32, std::string> ssrc_kind;
    // What the peer's description says for our jitter buffers' NACKs (tune_jitter_buffers).
    std::set<guint32> rx_audio_ssrcs;  // announced on its audio m-lines
    bool rx_nack_video = false;        // a video m-line: its SSRCs are asked for losses
    std::set<guint32> sent_ssrcs;      // ours, to find the peer's receiver reports about them
    webrtc::ReceiverReports reports;   // what the peer's RTCP says about each of sent_ssrcs
    webrtc::ReceptionStats reception;  // what we receive, for the blocks rtpsession leaves out
    std::mutex timing_mutex;
    std::map<std::string, double> milestones;
    std::map<std::string, bool> flowing;
    std::vector<std::pair<std::string, std::string>> held_flows;  // kind, mid: sent before DTLS

    Impl(WebRtcOptions o, Callbacks c, EventWriter& e)
        : opt(std::move(o)), cb(std::move(c)), events(e) {}

    std::thread certificate_warmup;
    std::string dtls_pem;  // our certificate and key (build()), given to every DTLS transport

    ~Impl() {
        if (certificate_warmup.joinable()) certificate_warmup.join();
        OPENSSL_cleanse(dtls_pem.data(), dtls_pem.size());  // the private key
        cancel_timers();
        signals.clear();
    }

    // ---- plumbing (endpoint_lifecycle.cpp) -------------------------------------------------
    void cancel_timers();

    template <typename F>
    void post(F&& fn) {
        // Queued, never run in place (see post_to_main): this is called from streaming threads.
        post_to_main(
            [self = weak_from_this(), job = std::function<void(Impl&)>(std::forward<F>(fn))] {
                if (auto impl = self.lock(); impl && !impl->ended) job(*impl);
            });
    }
    void add_timer(unsigned ms, std::function<bool(Impl&)> fn);
    void connect(gpointer instance, const char* signal, GCallback handler);
    static std::shared_ptr<Impl> from(gpointer data);
    gpointer weak_ref();
    static void drop_weak_ref(gpointer data);
    void probe(GstPad* pad, GstPadProbeType mask, GstPadProbeCallback callback);

    // Every element made by factory inside webrtcbin, however deep.
    template <typename F>
    void for_each_inside(const char* factory, F&& fn) {
        gst::IteratorPtr it(gst_bin_iterate_recurse(GST_BIN(webrtc)));
        GValue item = G_VALUE_INIT;
        while (gst_iterator_next(it.get(), &item) == GST_ITERATOR_OK) {
            auto* e = GST_ELEMENT(g_value_get_object(&item));
            GstElementFactory* f = gst_element_get_factory(e);
            if (f && g_strcmp0(GST_OBJECT_NAME(f), factory) == 0) fn(e);
            g_value_reset(&item);
        }
        g_value_unset(&item);
    }
    double mark(const std::string& milestone);
    void fail(ErrorCode code, const std::string& message);
    void finish(const CallEnd& end);
    GstElement* make(const char* factory, const char* name = nullptr);

    // ---- the graph (endpoint_build.cpp) -----------------------------------------------------
    void build();
    void tune_jitter_buffers();
    void give_certificate();
    static constexpr guint kFaststartPackets = 3;  // in sequence, before a jitter buffer starts
    void name_the_stream();
    GstCaps* codec_caps(const CodecInfo& c, int pt, bool fmtp = true);
    void add_offer_transceivers();
    void create_channel();
    void hook_channel(GstWebRTCDataChannel* ch);
    void adopt_channel(gst::ObjectPtr<GstWebRTCDataChannel> ch);
    void on_channel_open();
    void on_channel_close();
    void link_sender(Track& t);
    std::string encoder_for(const Track& t);
    unsigned max_video_lines() const;
    static std::string scaled_caps(GstCaps* caps, unsigned lines, Json& said);
    void link_feeds();
    void link_feed(Feed& f, Track& t);
    void check_feeds(int slot);
    static std::shared_ptr<GstWebRTCRTPTransceiver> pad_transceiver(GstPad* pad);
    static std::shared_ptr<GstWebRTCRTPTransceiver> adopt(GstWebRTCRTPTransceiver* trans);
    void configure_payloader(GstElement* chain, const Track& t);
    void count_sent(GstPad* pad, const Track& t);
    void count_frames(GstPad* pad, const Track& t, bool in);
    static void count_rtp_out(GstPad* pad, const Track& t);
    void learn_ssrc(GstBuffer* buf, const char* kind, bool sent);
    void learn_ssrc_on(GstPad* pad, const char* kind, bool sent = false);
    void start_input();
    void watch_input_eos(GstPad* pad);
    static bool inside(GstObject* src, GstElement* el);

    // ---- receiving (endpoint_receive.cpp) ---------------------------------------------------
    void on_pad_added(GstPad* pad);
    void link_receiver(GstPad* pad);
    static void ask_for_key_frames(GstElement* depay);
    static void picture_loss_as_pli(GstPad* pad);
    static std::string describe(const Track& t);
    static guint32 received_ssrc(GstPad* pad);
    Track* track_for(guint32 ssrc, const std::string& kind, int pt, const char*& filed_by);
    void expose_received(Track& t, const CodecInfo& c, GstElement* tee);
    void arm_expose_deadline();
    void link_tee(GstElement* tee, GstElement* branch);
    void open_gates(bool open);
    void media_flow(const std::string& direction, const std::string& kind, const std::string& mid,
                    bool on);

    // ---- negotiation (endpoint_negotiation.cpp) ---------------------------------------------

    using PromiseHandler = void (Impl::*)(GstPromise*);
    GstPromise* promise(PromiseHandler handler);
    bool replied(GstPromise* p, const char* what, const GstStructure** reply = nullptr);
    void start();
    void limit_bandwidth(GstSDPMessage* sdp);
    static void own_origin(GstSDPMessage* sdp);
    bool put_fingerprint(GstSDPMessage* sdp) const;
    void on_offer_created(GstPromise* p);
    void on_local_set(GstPromise* p);
    // A warning: the event, the log and the caller's callback (stderr in kms-call).
    void warn(const std::string& message);
    // Why the candidates found by --ice-timeout are not enough to call with; "" when they are.
    std::string gathering_failure() const;
    // Sends the local description once gathering is complete, or at once when told to.
    void maybe_send_local(bool even_if_gathering = false);
    void choose_codecs(const Sdp& sdp);
    void check_something_to_carry(const char* theirs) const;
    bool source_has(size_t i, const std::string& kind) const;
    std::vector<int> sources_of(const std::string& kind) const;
    static guint32 new_ssrc(const std::vector<Track>& taken);
    std::pair<bool, bool> answer_direction(const Track& t) const;
    void set_answer_directions(GstSDPMessage* sdp);
    void read_answer(const Sdp& sdp);
    unsigned remote_video_bandwidth(const Sdp& sdp);
    void set_remote(const std::string& text);
    void agree_extensions(const GstSDPMessage* remote);
    void describe_streams(GstSDPMessage* sdp);
    void link_senders();
    void on_remote_offer_set(GstPromise* p);
    void on_answer_created(GstPromise* p);
    void on_remote_answer_set(GstPromise* p);

    // ---- ICE, DTLS, the fingerprint check, what arrives (endpoint_transport.cpp) -------------
    void on_candidate(guint mline, const std::string& cand);
    void on_state(const std::string& prop);
    bool has_media_tracks() const;
    void report_ice(const std::string& state);
    void on_ice_transport(gst::ObjectPtr<GstWebRTCICETransport> t);
    void watch_transports();
    void on_dtls_state(gst::ObjectPtr<GstWebRTCDTLSTransport> t);
    void watch_incoming();
    void on_bye(guint32 ssrc);
    void remote_bye();
    void learn_mid(GstBuffer* buf);
    void keep_report_blocks(GstElement* rtpsession);
    void start_watchdogs();

    // ---- statistics, bitrate, media flow (endpoint_stats.cpp) -------------------------------
    void request_stats();
    struct RtpCounts {
        bool internal = false;  // one of ours
        long long lost = 0;
        guint64 packets_received = 0, octets_received = 0, packets_sent = 0, octets_sent = 0;
        // RTCP feedback about this stream: the peer's, sent by us, or ours, received by us.
        guint nack = 0, pli = 0, fir = 0;
    };
    std::map<guint32, RtpCounts> rtp_counts();
    std::map<guint32, RtpCounts> known_counts;  // the newest of each SSRC (main thread)
    void refresh_counts();
    std::map<std::string, std::pair<std::string, Json>> last_rtp;  // type+SSRC: the last event
    void emit_final_stats();
    static void own_sent(Json& j, const Track& t);
    void own_decoded(Json& j, const Track* t) const;
    void add_repairs(Json& j, bool inbound) const;
    static void add_feedback(Json& j, const RtpCounts& c);
    void on_stats(GstPromise* p);
    void report_pair(const Json& pair, std::map<std::string, Json>& by_id);
    void emit_remote_inbound(const std::map<guint32, Json>& outbound);
    double video_fraction_lost();
    void adapt_bitrate();
    const Track* track_of_ssrc(const Json& j, bool inbound) const;

    std::map<guint, std::pair<guint, gint>> rb_seen;  // per SSRC of ours: highest seq, lost
    std::map<int, unsigned long long> last_frames;    // per m-line, at the last check
    unsigned flow_ticks = 0;
    void check_flow();
    void check_expected_tracks(bool fatal);

    // ---- timing and summary (endpoint_stats.cpp) --------------------------------------------

    bool timing_emitted = false;
    void emit_timing();
    void emit_summary();

    // ---- errors and shutdown (endpoint_lifecycle.cpp) ---------------------------------------
    void on_error(GstMessage* msg);
    std::string describe_error(GstObject* src, const GError* e, ErrorCode code);
    void bye_pads(std::vector<gst::PadPtr>& out);
    void wind_down(const CallEnd& end);
    void send_eos_async(std::vector<gst::PadPtr> pads);
    void end_received();
    void stop_graceful();
    void abort(const Error& e);
};

}  // namespace kms
