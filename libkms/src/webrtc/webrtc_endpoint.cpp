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
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <cctype>
#include <cerrno>
#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include "core/log.hpp"
#include "core/process.hpp"
#include "gst/handles.hpp"
#include "kms/runtime.hpp"
#include "kms/sdp.hpp"
#include "kms/webrtc_endpoint.hpp"
#include "media/decoder.hpp"
#include "media/input_probe.hpp"
#include "stats/stats_json.hpp"
#include "webrtc/bundle.hpp"
#include "webrtc/codecs.hpp"
#include "webrtc/dtls_verify.hpp"
#include "webrtc/ice_config.hpp"

namespace kms {

using media::decoder_for;
using stats::enum_nick;
using stats::stats_to_json;
using webrtc::certificate_fingerprint;
using webrtc::check_resolves;
using webrtc::CodecInfo;
using webrtc::resolve_bind;
using webrtc::webrtcbin_turn_uri;

namespace {

using Clock = std::chrono::steady_clock;

// 2.5 -> "2.5", 3 -> "3"
std::string fmt_seconds(double s) {
    char buf[32];
    std::snprintf(buf, sizeof buf, "%g", s);
    return buf;
}

std::string direction_name(GstWebRTCRTPTransceiverDirection d) {
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

}  // namespace

struct WebRtcEndpoint::Impl : std::enable_shared_from_this<Impl> {
    static constexpr auto kBuffers =
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST);
    // Counted on streaming threads, read on the main thread.
    struct TrackCounts {
        std::atomic<unsigned long long> frames_in{0}, frames_out{0};
        std::atomic<guint32> rx_ssrc{0};  // the peer's SSRC filed under this m-line
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
        std::string convert;
        std::string encode_tail;
        bool fed = false;
    };

    WebRtcOptions opt;
    Callbacks cb;
    EventWriter& events;

    gst::ElementPtr pipeline;
    GstElement* webrtc = nullptr;  // owned by pipeline
    GstElement* mux = nullptr;     // owned by pipeline
    GstElement* file_sink = nullptr;
    std::mutex mux_mutex;  // mux_pads and mux_closed: streaming threads link, main thread closes
    std::map<int, gst::PadPtr> mux_pads;  // by m-line; requested before media flows
    std::set<int> mux_closed;             // m-lines left out of the recording
    bool mux_deadline_armed = false;
    bool mux_is_mp4 = false;
    std::mutex signals_mutex;  // connect() runs on webrtcbin's threads too
    std::vector<gst::SignalConnection> signals;
    guint bus_watch = 0;
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
    std::vector<GstElement*> rx_entries;  // borrowed: the first element of each receive branch
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
    // What a --send file holds, from the probe at start (input_probe.cpp).
    struct SourceKinds {
        bool known = false, video = false, audio = false;
    };
    std::vector<SourceKinds> source_kinds;   // per opt.send entry; files only
    int input_source = -1;                   // the opt.send entry that is a file or stdin
    std::string stream_id;                   // a=msid's stream: one for the call, our RTCP CNAME
    int rx_mid_ext = 0;                      // the MID extension's id in what the peer sends
    std::map<guint32, int> announced_rx;     // the peer's a=ssrc lines: SSRC to m-line
    std::map<guint32, std::string> rx_mids;  // SSRC to the MID its packets carried (ssrc_mutex)
    Clock::time_point verified_at{};
    std::set<guint32> byes;  // the peer's SSRCs that said BYE
    bool bye_watch = false;
    static constexpr int64_t kByeQuietUs = 1000000;  // after a BYE, this long without media ends it
    static constexpr double kExpectTracksS = 5;  // a negotiated track not there by then is missing
    std::map<std::string, unsigned> candidates_by_type;  // local ones, from on-ice-candidate
    bool data_open = false;
    unsigned eos_pending = 0;
    std::set<GstWebRTCDTLSTransport*> watched_dtls;

    // Touched from streaming threads.
    std::atomic<bool> verified{false};
    std::mutex verify_mutex;
    std::condition_variable verify_cv;
    std::atomic<bool> gate_closed{false};  // after stop(): drop what still arrives
    std::atomic<int64_t> last_rx_us{0};
    std::atomic<int64_t> last_media_us{0};  // RTP of a received track, after the DTLS check
    std::atomic<unsigned long long> frames_video{0}, frames_audio{0}, sent_video{0}, sent_audio{0};
    std::atomic<unsigned long long> dc_sent{0}, dc_received{0};
    std::atomic<unsigned long long> rx_bytes{0};
    std::atomic<long long> packets_lost{0};
    // A file or stdin input; we hold a reference of our own, since they join the pipeline only
    // when start_input() lets them.
    GstElement* input_parse = nullptr;
    GstElement* input_src = nullptr;
    std::vector<GstElement*> input_bins;  // borrowed: each stream's branch (input_mutex)
    bool input_started = false;
    bool input_grace_over = false;
    std::atomic<bool> peer_keyed{false};  // SRTP from the peer decrypted: its keys are in place
    std::mutex input_mutex;
    int inputs_running = 0;
    std::mutex ssrc_mutex;
    // webrtcbin 1.22's stats give every SSRC of a bundle one codec, so we learn each SSRC's kind.
    std::map<guint32, std::string> ssrc_kind;
    std::set<guint32> sent_ssrcs;  // ours, to find the peer's receiver reports about them
    std::mutex timing_mutex;
    std::map<std::string, double> milestones;
    std::map<std::string, bool> flowing;

    Impl(WebRtcOptions o, Callbacks c, EventWriter& e)
        : opt(std::move(o)), cb(std::move(c)), events(e) {}

    std::thread certificate_warmup;

    ~Impl() {
        if (certificate_warmup.joinable()) certificate_warmup.join();
        cancel_timers();
        if (bus_watch) g_source_remove(bus_watch);
        signals.clear();
        if (pipeline) gst_element_set_state(pipeline.get(), GST_STATE_NULL);
        for (GstElement* e : {input_src, input_parse})
            if (e) {
                gst_element_set_state(e, GST_STATE_NULL);
                gst_object_unref(e);
            }
    }

    // ---- plumbing ------------------------------------------------------------------------------

    // One-shot timers remove themselves when they fire, so look each one up first.
    void cancel_timers() {
        for (guint t : timers)
            if (GSource* src = g_main_context_find_source_by_id(nullptr, t)) g_source_destroy(src);
        timers.clear();
    }

    template <typename F>
    void post(F&& fn) {
        struct Job {
            std::weak_ptr<Impl> self;
            std::function<void(Impl&)> fn;
        };
        auto* job = new Job{weak_from_this(), std::forward<F>(fn)};
        // Queued, never run in place (see post_to_main): this is called from streaming threads.
        GSource* src = g_idle_source_new();
        g_source_set_priority(src, G_PRIORITY_DEFAULT);
        g_source_set_callback(
            src,
            [](gpointer data) -> gboolean {
                auto* j = static_cast<Job*>(data);
                if (auto self = j->self.lock(); self && !self->ended) j->fn(*self);
                return G_SOURCE_REMOVE;
            },
            job, [](gpointer data) { delete static_cast<Job*>(data); });
        g_source_attach(src, nullptr);
        g_source_unref(src);
    }

    void add_timer(unsigned ms, std::function<bool(Impl&)> fn) {
        struct Job {
            std::weak_ptr<Impl> self;
            std::function<bool(Impl&)> fn;
        };
        auto* job = new Job{weak_from_this(), std::move(fn)};
        timers.push_back(g_timeout_add_full(
            G_PRIORITY_DEFAULT, ms,
            [](gpointer data) -> gboolean {
                auto* j = static_cast<Job*>(data);
                auto self = j->self.lock();
                if (!self || self->ended) return G_SOURCE_REMOVE;
                return j->fn(*self) ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
            },
            job, [](gpointer data) { delete static_cast<Job*>(data); }));
    }

    // A C signal handler whose user data is a weak reference to this Impl.
    void connect(gpointer instance, const char* signal, GCallback handler) {
        gulong id = g_signal_connect_data(
            instance, signal, handler, weak_ref(),
            [](gpointer data, GClosure*) { drop_weak_ref(data); }, static_cast<GConnectFlags>(0));
        std::lock_guard lock(signals_mutex);
        signals.emplace_back(instance, id);
    }

    static std::shared_ptr<Impl> from(gpointer data) {
        return static_cast<std::weak_ptr<Impl>*>(data)->lock();
    }

    // A new weak reference to hand to a C callback as user data, and its destroy function.
    gpointer weak_ref() { return new std::weak_ptr<Impl>(weak_from_this()); }
    static void drop_weak_ref(gpointer data) { delete static_cast<std::weak_ptr<Impl>*>(data); }

    // A pad probe whose callback gets this Impl through from(user data).
    void probe(GstPad* pad, GstPadProbeType mask, GstPadProbeCallback callback) {
        gst_pad_add_probe(pad, mask, callback, weak_ref(), drop_weak_ref);
    }

    // Streaming threads: true once the peer's certificate is verified; false when the call is
    // ending or the check did not come in time.
    bool wait_verified() {
        if (gate_closed) return false;
        if (verified) return true;
        std::unique_lock lock(verify_mutex);
        verify_cv.wait_for(lock, std::chrono::duration<double>(opt.ice_timeout_s),
                           [this] { return verified.load() || gate_closed.load(); });
        return verified && !gate_closed;
    }

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

    double mark(const std::string& milestone) {
        std::lock_guard lock(timing_mutex);
        auto it = milestones.find(milestone);
        if (it != milestones.end()) return it->second;
        double t = process_uptime_ms();
        milestones[milestone] = t;
        return t;
    }

    void fail(ErrorCode code, const std::string& message) {
        if (ended) return;
        KMS_LOG(webrtc, ERROR, "%s", message.c_str());
        if (stopping) return;  // the peer going away while we wind down changes nothing
        events.emit("error", Json{{"code", to_string(code)}, {"message", message}});
        wind_down(CallEnd{false, code, message});
    }

    void finish(const CallEnd& end) {
        if (ended) return;
        ended = true;
        {
            std::lock_guard lock(verify_mutex);
            gate_closed = true;
        }
        verify_cv.notify_all();
        emit_timing();
        emit_summary();
        cancel_timers();
        if (pipeline) gst_element_set_state(pipeline.get(), GST_STATE_NULL);
        if (cb.ended) cb.ended(end);
    }

    // ---- building the graph --------------------------------------------------------------------

    GstElement* make(const char* factory, const char* name = nullptr) {
        GstElement* e = gst_element_factory_make(factory, name);
        if (!e)
            throw Error(ErrorCode::MissingPlugin,
                        std::string("cannot create GStreamer element ") + factory);
        return e;
    }

    GstElement* parse_bin(const std::string& description) {
        GError* err = nullptr;
        GstElement* bin = gst_parse_bin_from_description(description.c_str(), TRUE, &err);
        if (!bin) gst::throw_gerror(err, ErrorCode::Runtime, "cannot build '" + description + "'");
        if (err) g_error_free(err);
        return bin;
    }

    void build() {
        // dtlsdec makes the process's RSA-2048 DTLS certificate when the first one is created
        // (about 200 ms here). Make it now on another core, while we build and, for the answerer,
        // while the offer is on its way, rather than inside create-offer/answer.
        certificate_warmup = std::thread([] {
            if (GstElement* e = gst_element_factory_make("dtlsdec", nullptr))
                gst_object_unref(gst_object_ref_sink(e));
        });
        std::vector<PluginNeed> needs = {{"webrtcbin", "gstreamer1.0-plugins-bad"},
                                         {"nicesrc", "gstreamer1.0-nice"},
                                         {"dtlssrtpenc", "gstreamer1.0-plugins-bad"},
                                         {"srtpenc", "gstreamer1.0-plugins-bad"},
                                         {"rtpbin", "gstreamer1.0-plugins-good"}};
        if (!opt.data_label.empty()) needs.push_back({"sctpenc", "gstreamer1.0-plugins-bad"});
        for (const auto* list : {&opt.video_codecs, &opt.audio_codecs})
            for (const auto& name : *list)
                if (const CodecInfo* c = webrtc::find_codec(name))
                    needs.insert(needs.end(), c->needs.begin(), c->needs.end());
        if (std::any_of(opt.send.begin(), opt.send.end(),
                        [](const MediaUri& s) { return s.kind == MediaUri::Kind::Test; }))
            needs.push_back({"videotestsrc", "gstreamer1.0-plugins-base"});
        require_elements(needs);

        pipeline.reset(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new("kms-call"))));
        webrtc = make("webrtcbin", "webrtc");
        gst_bin_add(GST_BIN(pipeline.get()), webrtc);
        g_object_set(webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency", 100u,
                     nullptr);
        name_the_stream();
        if (!opt.ice.stun.empty()) {
            const std::string stun = webrtc::webrtcbin_stun_uri(opt.ice.stun);
            check_resolves(opt.ice.stun, "--stun");
            g_object_set(webrtc, "stun-server", stun.c_str(), nullptr);
        }
        for (const auto& t : opt.ice.turn) {
            const std::string uri = webrtcbin_turn_uri(t, opt.ice);
            check_resolves(t, "--turn");
            gboolean ok = FALSE;
            g_signal_emit_by_name(webrtc, "add-turn-server", uri.c_str(), &ok);
            if (!ok)
                throw Error(ErrorCode::InvalidArgument,
                            "--turn " + redact_url(t) + ": webrtcbin refused it");
        }
        if (opt.ice.relay_only)
            g_object_set(webrtc, "ice-transport-policy", GST_WEBRTC_ICE_TRANSPORT_POLICY_RELAY,
                         nullptr);

        GstWebRTCICE* ice_raw = nullptr;
        g_object_get(webrtc, "ice-agent", &ice_raw, nullptr);
        gst::ObjectPtr<GstWebRTCICE> ice(ice_raw);
        if (ice) {
            for (const auto& b : opt.ice.bind)
                for (const auto& addr : resolve_bind(b)) {
                    gboolean ok = FALSE;
                    g_signal_emit_by_name(ice.get(), "add-local-ip-address", addr.c_str(), &ok);
                    if (!ok)
                        throw Error(ErrorCode::InvalidArgument,
                                    "--bind " + addr + ": the ICE agent refused it");
                }
            if (opt.ice.port_min)
                g_object_set(ice.get(), "min-rtp-port", opt.ice.port_min, "max-rtp-port",
                             opt.ice.port_max, nullptr);
            // libnice asks the LAN's router for a UPnP port mapping and waits 200 ms for it before
            // gathering completes; a command-line peer wants neither the delay nor the mapping.
            GObject* agent = nullptr;
            if (g_object_class_find_property(G_OBJECT_GET_CLASS(ice.get()), "agent"))
                g_object_get(ice.get(), "agent", &agent, nullptr);
            if (agent) {
                if (g_object_class_find_property(G_OBJECT_GET_CLASS(agent), "upnp"))
                    g_object_set(agent, "upnp", FALSE, nullptr);
                g_object_unref(agent);
            }
        }

        connect(webrtc, "on-ice-candidate",
                G_CALLBACK(+[](GstElement*, guint mline, gchar* cand, gpointer d) {
                    if (auto self = from(d)) {
                        std::string c = cand ? cand : "";
                        self->post([mline, c](Impl& s) { s.on_candidate(mline, c); });
                    }
                }));
        for (const char* prop : {"notify::ice-gathering-state", "notify::ice-connection-state",
                                 "notify::connection-state"})
            connect(webrtc, prop, G_CALLBACK(+[](GstElement*, GParamSpec* spec, gpointer d) {
                        if (auto self = from(d)) {
                            std::string name = spec->name;
                            self->post([name](Impl& s) { s.on_state(name); });
                        }
                    }));
        connect(webrtc, "pad-added", G_CALLBACK(+[](GstElement*, GstPad* pad, gpointer d) {
                    if (auto self = from(d)) self->on_pad_added(pad);
                }));
        connect(webrtc, "on-data-channel",
                G_CALLBACK(+[](GstElement*, GstWebRTCDataChannel* ch, gpointer d) {
                    if (auto self = from(d)) {
                        // Hooked here, on webrtcbin's thread: messages the peer sends right after
                        // the channel opens would be lost in the time a post to the main loop
                        // takes.
                        self->hook_channel(ch);
                        auto owned = gst::ref(ch);
                        GstWebRTCDataChannel* raw = owned.release();
                        self->post([raw](Impl& s) {
                            s.adopt_channel(gst::ObjectPtr<GstWebRTCDataChannel>(raw));
                        });
                    }
                }));

        gst::BusPtr bus(gst_pipeline_get_bus(GST_PIPELINE(pipeline.get())));
        bus_watch = gst_bus_add_watch_full(
            bus.get(), G_PRIORITY_DEFAULT,
            [](GstBus*, GstMessage* msg, gpointer d) -> gboolean {
                if (auto self = from(d)) self->on_bus(msg);
                return G_SOURCE_CONTINUE;
            },
            weak_ref(), drop_weak_ref);

        build_output();

        if (opt.role == Role::Offerer) add_offer_transceivers();
        if (gst_element_set_state(pipeline.get(), GST_STATE_PLAYING) == GST_STATE_CHANGE_FAILURE)
            throw Error(ErrorCode::Runtime,
                        "the pipeline would not start (run with GST_DEBUG=3 for details)");
        // webrtcbin refuses data channels while it is in the NULL state.
        if (opt.role == Role::Offerer && !opt.data_label.empty()) create_channel();
    }

    // One RTCP CNAME for the call (RFC 7022: random per session), which is also the a=msid stream
    // id of every track: webrtcbin writes the CNAME where a sink pad has no msid of its own, and
    // rtpbin's default, user<N>@host-<hex>, holds an '@' that an msid-id may not (RFC 8830).
    void name_the_stream() {
        char id[24];
        std::snprintf(id, sizeof id, "kms-%08x%08x", g_random_int(), g_random_int());
        stream_id = id;
        gst::ElementPtr rtpbin(gst_bin_get_by_name(GST_BIN(webrtc), "rtpbin"));
        if (!rtpbin) return;
        GstStructure* sdes = nullptr;
        g_object_get(rtpbin.get(), "sdes", &sdes, nullptr);
        gst::StructurePtr owned(sdes ? sdes
                                     : gst_structure_new_empty("application/x-rtp-source-sdes"));
        gst_structure_set(owned.get(), "cname", G_TYPE_STRING, id, nullptr);
        g_object_set(rtpbin.get(), "sdes", owned.get(), nullptr);
    }

    void build_output() {
        if (opt.output.kind != MediaUri::Kind::File && opt.output.kind != MediaUri::Kind::Stdio)
            return;
        std::string container = opt.output.kind == MediaUri::Kind::Stdio
                                    ? "matroska"
                                    : container_for_path(opt.output.location);
        const char* muxer = container == "webm"       ? "webmmux"
                            : container == "mp4"      ? "mp4mux"
                            : container == "matroska" ? "matroskamux"
                                                      : nullptr;
        if (!muxer)
            throw Error(ErrorCode::InvalidArgument,
                        "-o " + opt.output.location +
                            ": unknown container; end the name in .webm, .mkv or .mp4");
        require_elements({{muxer, "gstreamer1.0-plugins-good"}});
        if (opt.output.kind == MediaUri::Kind::File) {
            // Found out now, not when the first packet reaches the muxer (exit 7, the path).
            const int fd =
                ::open(opt.output.location.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
            if (fd < 0)
                throw Error(ErrorCode::Io, "-o " + opt.output.location +
                                               ": cannot write: " + std::strerror(errno));
            ::close(fd);
        }
        mux = make(muxer, "mux");
        mux_is_mp4 = container == "mp4";
        if (container != "mp4")
            g_object_set(mux, "streamable", opt.output.kind == MediaUri::Kind::Stdio, nullptr);
        if (opt.output.kind == MediaUri::Kind::Stdio) {
            file_sink = make("fdsink", "out");
            g_object_set(file_sink, "fd", 1, "sync", FALSE, nullptr);
        } else {
            file_sink = make("filesink", "out");
            g_object_set(file_sink, "location", opt.output.location.c_str(), "sync", FALSE, "async",
                         FALSE, nullptr);
        }
        gst_bin_add_many(GST_BIN(pipeline.get()), mux, file_sink, nullptr);
        gst_element_link(mux, file_sink);
        watch_eos(file_sink);
    }

    void watch_eos(GstElement* sink) {
        ++eos_pending;
        gst::PadPtr pad(gst_element_get_static_pad(sink, "sink"));
        probe(pad.get(), GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
              [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                  if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS)
                      if (auto self = from(d)) self->post([](Impl& s) { s.on_sink_eos(); });
                  return GST_PAD_PROBE_OK;
              });
    }

    // Without fmtp for an answer's preferences: create-answer keeps the offer's fmtp, and an
    // H.264 profile-level-id of ours would not fit what the encoder makes (the payloader's caps
    // must intersect the preferences).
    GstCaps* codec_caps(const CodecInfo& c, int pt, bool fmtp = true) {
        std::string s = std::string("application/x-rtp, media=(string)") + c.kind +
                        ", encoding-name=(string)" + c.encoding_name + ", clock-rate=(int)" +
                        std::to_string(c.clock_rate) + ", payload=(int)" + std::to_string(pt);
        if (fmtp && *c.fmtp) s += std::string(", ") + c.fmtp;
        if (std::string_view(c.kind) == "video")
            s += ", rtcp-fb-nack=(boolean)true, rtcp-fb-nack-pli=(boolean)true, "
                 "rtcp-fb-ccm-fir=(boolean)true";
        GstCaps* caps = gst_caps_from_string(s.c_str());
        if (!caps) throw Error(ErrorCode::Runtime, "bad caps " + s);
        return caps;
    }

    // One m-line per send source of each kind (two video sources: two video m-lines), or one
    // receive-only m-line for a kind we only receive.
    void add_offer_transceivers() {
        for (const char* kind : {"video", "audio"}) {
            const bool video = std::string_view(kind) == "video";
            if (video ? !opt.video : !opt.audio) continue;
            const bool recv = opt.direction != MediaDirection::SendOnly;
            const std::vector<int> sources = sources_of(kind);
            const size_t lines = std::max(sources.size(), size_t(recv ? 1 : 0));
            for (size_t k = 0; k < lines; ++k) {
                const bool send = k < sources.size();
                const auto direction = send && recv ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV
                                       : send       ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY
                                                    : GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY;
                Track t;
                t.kind = kind;
                t.mline = static_cast<int>(tracks.size());
                t.source = send ? sources[k] : -1;
                t.ssrc = send ? new_ssrc(tracks) : 0;
                t.ext = webrtc::kOfferExtIds;
                gst::CapsPtr caps(gst_caps_new_empty());
                const auto& list = video ? opt.video_codecs : opt.audio_codecs;
                std::set<int> used;
                for (const auto& name : list) {
                    const CodecInfo* c = webrtc::find_codec(name);
                    int pt = c->default_pt;
                    while (used.count(pt)) ++pt;
                    used.insert(pt);
                    gst_caps_append(caps.get(), codec_caps(*c, pt));
                }
                webrtc::add_to_caps(caps.get(), t.ext, t.ssrc);
                GstWebRTCRTPTransceiver* trans = nullptr;
                g_signal_emit_by_name(webrtc, "add-transceiver", direction, caps.get(), &trans);
                if (!trans)
                    throw Error(ErrorCode::Runtime,
                                std::string("webrtcbin would not add a ") + kind + " transceiver");
                gst::ObjectPtr<GstWebRTCRTPTransceiver> owned(trans);
                // Video NACKs get retransmissions: webrtcbin negotiates RTX (RFC 4588) and puts
                // rtprtxsend/rtprtxreceive in the session. Not audio: browsers neither NACK it nor
                // take an a=ssrc-group:FID on an audio m-line.
                g_object_set(trans, "do-nack", video, nullptr);
                t.msid_track = GST_OBJECT_NAME(trans);
                tracks.push_back(t);
            }
        }
    }

    void create_channel() {
        gst::StructurePtr options(
            gst_structure_new("options", "ordered", G_TYPE_BOOLEAN, TRUE, nullptr));
        GstWebRTCDataChannel* ch = nullptr;
        g_signal_emit_by_name(webrtc, "create-data-channel", opt.data_label.c_str(), options.get(),
                              &ch);
        if (!ch)
            throw Error(ErrorCode::Runtime,
                        "webrtcbin would not create the data channel (is sctpenc installed?)");
        hook_channel(ch);
        adopt_channel(gst::ObjectPtr<GstWebRTCDataChannel>(ch));
    }

    // Any thread.
    void hook_channel(GstWebRTCDataChannel* ch) {
        connect(ch, "on-open", G_CALLBACK(+[](GstWebRTCDataChannel*, gpointer d) {
                    if (auto self = from(d)) self->post([](Impl& s) { s.on_channel_open(); });
                }));
        connect(ch, "on-close", G_CALLBACK(+[](GstWebRTCDataChannel*, gpointer d) {
                    if (auto self = from(d)) self->post([](Impl& s) { s.on_channel_close(); });
                }));
        connect(ch, "on-message-string",
                G_CALLBACK(+[](GstWebRTCDataChannel*, gchar* str, gpointer d) {
                    if (auto self = from(d)) {
                        std::string msg = str ? str : "";
                        self->dc_received++;
                        self->post([msg](Impl& s) {
                            if (s.cb.data_message) s.cb.data_message(msg);
                        });
                    }
                }));
    }

    void adopt_channel(gst::ObjectPtr<GstWebRTCDataChannel> ch) {
        if (channel) return;  // one channel per call
        channel = std::move(ch);
        GstWebRTCDataChannelState state{};
        g_object_get(channel.get(), "ready-state", &state, nullptr);
        if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) on_channel_open();
    }

    void on_channel_open() {
        if (data_open || !channel) return;  // adopt_channel() opens it when it comes first
        data_open = true;
        gchar* label = nullptr;
        g_object_get(channel.get(), "label", &label, nullptr);
        gst::GCharPtr owned(label);
        events.emit("data-channel", Json{{"label", label ? label : ""}, {"state", "open"}});
        if (cb.data_open) cb.data_open();
    }

    void on_channel_close() {
        events.emit("data-channel", Json{{"state", "closed"}});
        if (!stopping && data_open) {
            // The peer closed the channel: an orderly end of the call.
            events.emit("remote-closed", Json{{"reason", "data channel closed by the peer"}});
            wind_down(CallEnd{});
        }
    }

    // Links a raw source for one kind to an encoder bin ending in the payloader, and that to
    // webrtcbin's sink_<mline>.
    void link_sender(Track& t) {
        const CodecInfo& c = *t.codec;
        const bool video = t.kind == "video";
        unsigned kbps = 0;
        std::string enc = c.encode;
        if (video) {
            kbps = opt.start_bitrate_kbps ? opt.start_bitrate_kbps : 1000;
            if (opt.max_bitrate_kbps) kbps = std::min(kbps, opt.max_bitrate_kbps);
            if (remote_video_limit_kbps) kbps = std::min(kbps, remote_video_limit_kbps);
            kbps = std::max(kbps, opt.min_bitrate_kbps);
            video_bitrate_kbps = kbps;
            auto replace = [&](const std::string& key, const std::string& value) {
                if (size_t p = enc.find(key); p != std::string::npos)
                    enc.replace(p, key.size(), value);
            };
            replace("{bps}", std::to_string(kbps * 1000));
            replace("{kbps}", std::to_string(kbps));
        }
        std::string src;
        const MediaUri& s = opt.send.at(static_cast<size_t>(t.source));
        if (s.kind == MediaUri::Kind::Test) {
            if (video) {
                src = "videotestsrc is-live=true pattern=" + s.param("pattern", "smpte") +
                      " ! video/x-raw,width=" + std::to_string(s.param_int("width", 640)) +
                      ",height=" + std::to_string(s.param_int("height", 480)) +
                      ",framerate=" + std::to_string(s.param_int("fps", 30)) + "/1";
            } else {
                src = "audiotestsrc is-live=true wave=" + s.param("wave", "sine") +
                      " freq=" + std::to_string(s.param_int("freq", 440)) + " samplesperbuffer=960";
            }
        } else if (s.kind == MediaUri::Kind::V4l2 && video) {
            src = "v4l2src device=" + s.location;
        } else if (s.kind == MediaUri::Kind::Pulse && !video) {
            src = "pulsesrc" + (s.location.empty() ? std::string() : " device=" + s.location);
        } else if (s.kind == MediaUri::Kind::Alsa && !video) {
            src = "alsasrc device=" + s.location;
        }
        std::string convert =
            video ? "videoconvert ! videoscale ! queue max-size-buffers=2 leaky=downstream ! "
                  : "audioconvert ! queue max-size-time=100000000 leaky=downstream ! ";
        std::string tail =
            enc + " ! " + c.pay + " pt=" + std::to_string(t.pt) + " mtu=1200 name=pay";
        if (s.kind == MediaUri::Kind::File || s.kind == MediaUri::Kind::Stdio) {
            // The input's streams appear later, from one parsebin shared by both kinds.
            GstPad* sink =
                gst_element_request_pad_simple(webrtc, ("sink_" + std::to_string(t.mline)).c_str());
            if (!sink)
                throw Error(ErrorCode::Runtime,
                            "webrtcbin gave no pad for the " + t.kind + " sender");
            t.webrtc_sink = std::shared_ptr<GstPad>(sink, gst_object_unref);
            t.transceiver = pad_transceiver(sink);
            // webrtcbin ties a sink pad to its transceiver when the signalling state becomes
            // stable only if the pad has caps by then; the file's stream comes later (after the
            // DTLS check), so give the pad the negotiated caps now. Without them an answerer's
            // pad stays blocked for the whole call.
            gst_pad_send_event(sink, gst_event_new_stream_start(("kms-input-" + t.kind).c_str()));
            gst_pad_send_event(sink, gst_event_new_caps(gst::CapsPtr(codec_caps(c, t.pt)).get()));
            t.encode_tail = tail;
            t.convert = convert;
            input_source = t.source;
            open_input();
            return;
        }
        if (src.empty())
            throw Error(ErrorCode::InvalidArgument,
                        "--send " + s.redacted() + ": cannot send " + t.kind + " from this source");
        GstElement* bin = parse_bin(src + " ! " + convert + tail);
        configure_payloader(bin, t);
        gst_bin_add(GST_BIN(pipeline.get()), bin);
        t.encoder = gst_bin_get_by_name(GST_BIN(bin), video ? "venc" : "aenc");
        if (t.encoder) gst_object_unref(t.encoder);  // the bin keeps it alive; we only borrow
        std::string pad_name = "sink_" + std::to_string(t.mline);
        GstPad* sink = gst_element_request_pad_simple(webrtc, pad_name.c_str());
        if (!sink) throw Error(ErrorCode::Runtime, "webrtcbin gave no pad " + pad_name);
        gst::PadPtr sink_owned(sink);
        t.transceiver = pad_transceiver(sink);
        gst::PadPtr src_pad(gst_element_get_static_pad(bin, "src"));
        if (gst_pad_link(src_pad.get(), sink) != GST_PAD_LINK_OK)
            throw Error(ErrorCode::Runtime, "cannot link the " + t.kind + " sender to webrtcbin");
        gst_element_sync_state_with_parent(bin);
        count_sent(src_pad.get(), t);
    }

    // The transceiver webrtcbin ties a sink_N pad to (it makes one when N has none yet).
    static std::shared_ptr<GstWebRTCRTPTransceiver> pad_transceiver(GstPad* pad) {
        GstWebRTCRTPTransceiver* trans = nullptr;
        if (g_object_class_find_property(G_OBJECT_GET_CLASS(pad), "transceiver"))
            g_object_get(pad, "transceiver", &trans, nullptr);
        return adopt(trans);
    }

    static std::shared_ptr<GstWebRTCRTPTransceiver> adopt(GstWebRTCRTPTransceiver* trans) {
        if (!trans) return nullptr;
        return {trans, [](GstWebRTCRTPTransceiver* t) { gst_object_unref(t); }};
    }

    // Our SSRC (announced in a=ssrc) and the header extensions agreed for the m-line.
    void configure_payloader(GstElement* bin, const Track& t) {
        GstElement* pay = gst_bin_get_by_name(GST_BIN(bin), "pay");
        if (!pay) return;
        gst::ElementPtr owned(pay);
        if (t.ssrc) g_object_set(pay, "ssrc", t.ssrc, nullptr);
        if (!webrtc::add_extensions(pay, t.ext, t.mid))
            KMS_LOG(webrtc, WARNING, "this GStreamer lacks the MID or TWCC header extension");
        gst::PadPtr src(gst_element_get_static_pad(pay, "src"));
        webrtc::hide_mid_from_caps_queries(src.get());
    }

    void count_sent(GstPad* pad, const Track& t) {
        learn_ssrc_on(pad, t.kind == "video" ? "video" : "audio", true);
        count_frames(pad, t, false);
    }

    // Counts a track's frames through a pad: decoded ones after its decoder (in), or RTP video
    // frames (the marker bit ends one, RFC 7741 §4.1) and audio packets on their way out.
    void count_frames(GstPad* pad, const Track& t, bool in) {
        struct Ctx {
            std::weak_ptr<Impl> self;
            std::shared_ptr<TrackCounts> n;
            bool video, in;
            std::string kind, mid;
        };
        auto* ctx = new Ctx{weak_from_this(), t.n, t.kind == "video", in, t.kind, t.mid};
        gst_pad_add_probe(
            pad, kBuffers,
            [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                auto* c = static_cast<Ctx*>(d);
                auto marked = [](GstBuffer* buf) {
                    guint8 b1 = 0;
                    return gst_buffer_extract(buf, 1, &b1, 1) == 1 && (b1 & 0x80);
                };
                unsigned frames = 1;
                if (!c->in && c->video) {
                    frames = 0;
                    if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
                        GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
                        for (guint i = 0; i < gst_buffer_list_length(list); ++i)
                            frames += marked(gst_buffer_list_get(list, i));
                    } else {
                        frames = marked(GST_PAD_PROBE_INFO_BUFFER(info));
                    }
                }
                if (!frames) return GST_PAD_PROBE_OK;
                auto self = c->self.lock();
                if (!self) return GST_PAD_PROBE_OK;
                auto& total = c->in ? (c->video ? self->frames_video : self->frames_audio)
                                    : (c->video ? self->sent_video : self->sent_audio);
                const bool first_of_kind = (total += frames) == frames;
                auto& mine = c->in ? c->n->frames_in : c->n->frames_out;
                const bool first = (mine += frames) == frames;
                if (c->in && first_of_kind) self->mark("firstFrame");
                if (first) {
                    const std::string dir = c->in ? "in" : "out", kind = c->kind, mid = c->mid;
                    self->post([dir, kind, mid](Impl& s) { s.media_flow(dir, kind, mid, true); });
                }
                return GST_PAD_PROBE_OK;
            },
            ctx, [](gpointer d) { delete static_cast<Ctx*>(d); });
    }

    // RFC 3550 §5.1: the SSRC is bytes 8-11 of the RTP header.
    void learn_ssrc(GstBuffer* buf, const char* kind, bool sent) {
        guint8 h[12];
        if (gst_buffer_extract(buf, 0, h, sizeof h) != sizeof h) return;
        const guint32 ssrc =
            (guint32(h[8]) << 24) | (guint32(h[9]) << 16) | (guint32(h[10]) << 8) | h[11];
        std::lock_guard lock(ssrc_mutex);
        ssrc_kind.emplace(ssrc, kind);
        if (sent) sent_ssrcs.insert(ssrc);
    }

    // Learns the SSRC of the first RTP packet through the pad, then removes itself.
    void learn_ssrc_on(GstPad* pad, const char* kind, bool sent = false) {
        struct Ctx {
            std::weak_ptr<Impl> self;
            const char* kind;
            bool sent;
        };
        gst_pad_add_probe(
            pad, kBuffers,
            [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                auto* c = static_cast<Ctx*>(d);
                auto self = c->self.lock();
                if (!self) return GST_PAD_PROBE_REMOVE;
                GstBuffer* buf = (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
                                     ? gst_buffer_list_get(GST_PAD_PROBE_INFO_BUFFER_LIST(info), 0)
                                     : GST_PAD_PROBE_INFO_BUFFER(info);
                if (buf) self->learn_ssrc(buf, c->kind, c->sent);
                return GST_PAD_PROBE_REMOVE;
            },
            new Ctx{weak_from_this(), kind, sent}, [](gpointer d) { delete static_cast<Ctx*>(d); });
    }

    // A file or stdin: one source and one parsebin for both kinds. Each stream it finds goes to
    // the track of its kind: untouched when it is already in the negotiated codec (passthrough),
    // else decoded and encoded. clocksync paces it at real time, since nothing downstream of
    // webrtcbin waits for the clock.
    void open_input() {
        if (input_parse) return;
        const MediaUri& s = opt.send.at(static_cast<size_t>(input_source));
        GstElement* src = s.kind == MediaUri::Kind::Stdio ? make("fdsrc") : make("filesrc");
        if (s.kind == MediaUri::Kind::File)
            g_object_set(src, "location", s.location.c_str(), nullptr);
        input_parse = make("parsebin");
        // Both stay out of the pipeline until start_input(): parsebin reads a file in pull mode,
        // which activates filesrc's pad whatever filesrc's own state, so holding filesrc back
        // does not hold the file back.
        input_src = GST_ELEMENT(gst_object_ref_sink(src));
        gst_object_ref_sink(input_parse);
        connect(input_parse, "pad-added", G_CALLBACK(+[](GstElement*, GstPad* pad, gpointer d) {
                    if (auto self = from(d)) self->on_input_pad(pad);
                }));
        connect(input_parse, "no-more-pads", G_CALLBACK(+[](GstElement*, gpointer d) {
                    if (auto self = from(d)) self->post([](Impl& i) { i.check_input_tracks(); });
                }));
        start_input();
    }

    // A file or stdin is held until the peer can decrypt what we send: a passthrough stream
    // cannot make a new key frame, so its first one must not be sent into SRTP the peer has no
    // keys for yet. The DTLS side that finishes first would otherwise start while the other side
    // is still reading the last handshake flight. The proof is SRTP or SRTCP from the peer that
    // decrypts here; a peer that sends neither is given 1.5 s after our own check.
    void start_input() {
        if (!input_src || input_started || !verified || stopping) return;
        if (!peer_keyed && !input_grace_over) return;
        input_started = true;
        KMS_LOG(webrtc, INFO, "input starts: %s",
                peer_keyed ? "the peer's SRTP decrypts" : "grace over");
        gst_bin_add_many(GST_BIN(pipeline.get()), input_src, input_parse, nullptr);
        gst_element_link(input_src, input_parse);
        gst_element_sync_state_with_parent(input_parse);
        gst_element_sync_state_with_parent(input_src);
    }

    // Streaming thread.
    void on_input_pad(GstPad* pad) {
        gst::CapsPtr caps(gst_pad_get_current_caps(pad));
        if (!caps) caps.reset(gst_pad_query_caps(pad, nullptr));
        const std::string media = gst_structure_get_name(gst_caps_get_structure(caps.get(), 0));
        const std::string kind = media.rfind("video/", 0) == 0   ? "video"
                                 : media.rfind("audio/", 0) == 0 ? "audio"
                                                                 : "";
        Track* target = nullptr;
        {
            std::lock_guard lock(input_mutex);
            for (auto& t : tracks)
                if (t.kind == kind && t.webrtc_sink && !t.fed) {
                    t.fed = true;
                    target = &t;
                    break;
                }
        }
        bool passthrough = false;
        try {
            std::string desc = "fakesink sync=false async=false";  // a stream nobody negotiated
            if (target) {
                const CodecInfo& c = *target->codec;
                // --max-bitrate needs an encoder to hold it, so it turns passthrough off.
                passthrough = media == c.media_type && !(kind == "video" && opt.max_bitrate_kbps);
                // A queue per stream: one demuxer thread feeds both kinds, and each clocksync
                // holds its own kind back to real time.
                desc = "queue max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000 ! ";
                desc += passthrough ? std::string("clocksync ! ") + c.pay +
                                          " pt=" + std::to_string(target->pt) + " mtu=1200 name=pay"
                                    : decoder_for(caps.get(), media) + " ! clocksync ! " +
                                          target->convert + target->encode_tail;
            }
            GstElement* bin = parse_bin(desc);
            if (target) configure_payloader(bin, *target);
            gst_bin_add(GST_BIN(pipeline.get()), bin);
            {
                std::lock_guard lock(input_mutex);
                input_bins.push_back(bin);
            }
            gst::PadPtr bsink(gst_element_get_static_pad(bin, "sink"));
            if (target) {
                gst::PadPtr bsrc(gst_element_get_static_pad(bin, "src"));
                gst_pad_link(bsrc.get(), target->webrtc_sink.get());
                count_sent(bsrc.get(), *target);
                watch_input_eos(bsrc.get());
                if (!passthrough) {
                    GstElement* enc =
                        gst_bin_get_by_name(GST_BIN(bin), kind == "video" ? "venc" : "aenc");
                    if (enc) gst_object_unref(enc);  // borrowed; the bin owns it
                    Track* t = target;
                    post([t, enc](Impl&) { t->encoder = enc; });
                }
            }
            gst_element_sync_state_with_parent(bin);
            if (GstPadLinkReturn r = gst_pad_link(pad, bsink.get()); r != GST_PAD_LINK_OK)
                throw Error(ErrorCode::BadInput, "cannot use the input's " + media + " stream (" +
                                                     gst_pad_link_get_name(r) + ")");
        } catch (const Error& e) {
            ErrorCode code = e.code();
            std::string msg = e.what();
            post([code, msg](Impl& s) { s.fail(code, msg); });
            return;
        }
        if (target)
            events.emit("input", Json{{"kind", kind},
                                      {"caps", media},
                                      {"codec", target->codec->name},
                                      {"passthrough", passthrough}});
    }

    // When every stream of a file has ended, the call has nothing more to send: end it cleanly.
    void watch_input_eos(GstPad* pad) {
        post([](Impl& s) { ++s.inputs_running; });
        probe(pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
              [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                  if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) == GST_EVENT_EOS)
                      if (auto self = from(d))
                          self->post([](Impl& s) {
                              if (--s.inputs_running == 0 && !s.stopping) {
                                  s.events.emit("input-ended", Json::object());
                                  s.wind_down(CallEnd{});
                              }
                          });
                  return GST_PAD_PROBE_OK;
              });
    }

    void check_input_tracks() {
        for (const auto& t : tracks)
            if (t.webrtc_sink && !t.fed)
                events.emit("warning",
                            Json{{"message", "the input has no " + t.kind + " stream to send"}});
    }

    // ---- receiving -----------------------------------------------------------------------------

    // Runs on a streaming thread: webrtcbin pushes into the pad as soon as this returns, so the
    // branch must be linked here, not later on the main loop (an unlinked pad errors out).
    void on_pad_added(GstPad* pad) {
        if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
        try {
            link_receiver(pad);
        } catch (const Error& e) {
            ErrorCode code = e.code();
            std::string msg = e.what();
            post([code, msg](Impl& s) { s.fail(code, msg); });
        }
    }

    void link_receiver(GstPad* pad) {
        gst::CapsPtr caps(gst_pad_get_current_caps(pad));
        if (!caps) caps.reset(gst_pad_query_caps(pad, nullptr));
        const GstStructure* st = gst_caps_get_structure(caps.get(), 0);
        const char* enc = gst_structure_get_string(st, "encoding-name");
        const CodecInfo* c = enc ? webrtc::find_codec(enc) : nullptr;
        int pt = -1;
        gst_structure_get_int(st, "payload", &pt);
        Track* t = c ? track_for(received_ssrc(pad), c->kind, pt) : nullptr;
        if (!t) {
            // Not a codec we speak, or an m-line we did not agree to receive: drop it, unseen.
            // Linked all the same: an unlinked pad would stop the whole session.
            KMS_LOG(webrtc, INFO,
                    "dropping a stream the negotiation does not let us receive: %" GST_PTR_FORMAT,
                    static_cast<void*>(caps.get()));
            GstElement* sink = parse_bin("fakesink sync=false async=false");
            gst_bin_add(GST_BIN(pipeline.get()), sink);
            gst_element_sync_state_with_parent(sink);
            gst::PadPtr ssink(gst_element_get_static_pad(sink, "sink"));
            gst_pad_link(pad, ssink.get());
            return;
        }
        const bool video = std::string_view(c->kind) == "video";
        GstElement* entry = make("queue");
        GstElement* depay = make(c->depay);
        GstElement* tee = make("tee");
        g_object_set(tee, "allow-not-linked", TRUE, nullptr);
        gst_bin_add_many(GST_BIN(pipeline.get()), entry, depay, tee, nullptr);
        gst_element_link_many(entry, depay, tee, nullptr);

        // Decoding branch: frames are counted after the decoder, and shown or dropped.
        std::string sink_desc;
        if (opt.output.kind == MediaUri::Kind::Display)
            sink_desc = video ? "videoconvert ! autovideosink sync=false"
                              : "audioconvert ! audioresample ! autoaudiosink sync=false";
        else
            sink_desc = "fakesink sync=false async=false name=sink";
        GstElement* decode =
            parse_bin(std::string("queue ! ") + c->decode + " name=dec ! " + sink_desc);
        gst_bin_add(GST_BIN(pipeline.get()), decode);
        link_tee(tee, decode);
        GstElement* dec = gst_bin_get_by_name(GST_BIN(decode), "dec");
        if (dec) {
            gst::PadPtr dsrc(gst_element_get_static_pad(dec, "src"));
            count_frames(dsrc.get(), *t, true);
            gst_object_unref(dec);
        }

        // Recording branch: what arrived, untouched (passthrough), into the muxer: a track of its
        // own per m-line, so a camera and a screen become two video tracks.
        const std::string what = describe(*t);
        std::unique_lock mux_lock(mux_mutex);
        if (mux && mux_closed.count(t->mline)) {
            KMS_LOG(webrtc, WARNING, "%s arrived after the recording closed it out", what.c_str());
        } else if (mux && mux_pads.count(t->mline) && gst_pad_is_linked(mux_pads[t->mline].get())) {
            // A second SSRC on one m-line (the peer restarted its sender): decoded and counted;
            // the file keeps the first.
            KMS_LOG(webrtc, WARNING, "a second stream of %s is not recorded", what.c_str());
        } else if (mux) {
            // A queue that holds 5 s: other tracks get 2 s to arrive before the muxer gives up
            // on them, and a muxer that stalls drops old data rather than stalling the call.
            std::string parse = *c->mux_parse ? std::string(c->mux_parse) + " ! " : "";
            // RTP carries presentation times only. MP4 needs decoding times too, and takes the
            // PTS of a stream with B-frames as DTS badly (a 5 s call gave a 10 s track):
            // h264timestamper works them out from the SPS's frame reordering.
            if (std::string_view(c->name) == "h264" && mux_is_mp4) parse += "h264timestamper ! ";
            GstElement* rec = parse_bin(
                "queue max-size-buffers=0 max-size-bytes=0 max-size-time=5000000000 "
                "leaky=downstream ! " +
                parse + "identity name=last");
            gst_bin_add(GST_BIN(pipeline.get()), rec);
            link_tee(tee, rec);
            GstPad* mpad = mux_pad(*t);
            gst::PadPtr rsrc(gst_element_get_static_pad(rec, "src"));
            if (gst_pad_link(rsrc.get(), mpad) != GST_PAD_LINK_OK)
                throw Error(ErrorCode::Io, std::string("-o ") + opt.output.redacted() +
                                               ": the container cannot hold " + c->encoding_name +
                                               "; use .mkv");
            gst_element_sync_state_with_parent(rec);
            post([](Impl& s) { s.arm_mux_deadline(); });
        }
        mux_lock.unlock();
        gst_element_sync_state_with_parent(decode);
        gst_element_sync_state_with_parent(tee);
        gst_element_sync_state_with_parent(depay);
        gst_element_sync_state_with_parent(entry);

        gst::PadPtr entry_sink(gst_element_get_static_pad(entry, "sink"));
        // Until the peer's certificate matches its fingerprint, nothing received is used. What
        // arrives in the moment before our check is held, not dropped: it may be the only key
        // frame a passthrough sender has.
        probe(entry_sink.get(), GST_PAD_PROBE_TYPE_BUFFER,
              [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                  auto self = from(d);
                  if (!self || !self->wait_verified()) return GST_PAD_PROBE_DROP;
                  self->mark("firstRtp");
                  self->rx_bytes += gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
                  self->last_media_us = g_get_monotonic_time();
                  return GST_PAD_PROBE_OK;
              });
        learn_ssrc_on(entry_sink.get(), c->kind);
        {
            std::lock_guard lock(rx_mutex);
            rx_entries.push_back(entry);
        }
        if (gst_pad_link(pad, entry_sink.get()) != GST_PAD_LINK_OK)
            throw Error(ErrorCode::Runtime, "cannot link the received " + what);
        Json ev{{"direction", "in"}, {"kind", c->kind}, {"codec", c->name}};
        if (!t->mid.empty()) ev["mid"] = t->mid;
        events.emit("track", ev);
    }

    static std::string describe(const Track& t) {
        return t.kind + (t.mid.empty() ? "" : " (mid " + t.mid + ")");
    }

    // The SSRC of a webrtcbin src pad: its target is rtpbin's recv_rtp_src_SESSION_SSRC_PT.
    static guint32 received_ssrc(GstPad* pad) {
        if (!GST_IS_GHOST_PAD(pad)) return 0;
        gst::PadPtr target(gst_ghost_pad_get_target(GST_GHOST_PAD(pad)));
        if (!target) return 0;
        guint session = 0, ssrc = 0, pt = 0;
        if (std::sscanf(GST_OBJECT_NAME(target.get()), "recv_rtp_src_%u_%u_%u", &session, &ssrc,
                        &pt) != 3)
            return 0;
        return ssrc;
    }

    // Which of our m-lines a received stream belongs to (RFC 8843 §9.2): the MID its packets
    // carry, else the m-line whose a=ssrc announced it, else its payload type. Not webrtcbin's
    // own filing: 1.22 reads neither the MID extension nor, without a=ssrc, anything but the
    // first m-line of a bundle. nullptr when it is no m-line we receive on. Streaming thread;
    // tracks do not change once negotiated.
    Track* track_for(guint32 ssrc, const std::string& kind, int pt) {
        auto receiving = [&](Track& t) { return t.kind == kind && t.recv && t.codec; };
        auto claim = [&](Track& t) -> Track* {
            guint32 none = 0;
            t.n->rx_ssrc.compare_exchange_strong(none, ssrc);
            return receiving(t) ? &t : nullptr;
        };
        std::string mid;
        {
            std::lock_guard lock(ssrc_mutex);
            if (auto it = rx_mids.find(ssrc); ssrc && it != rx_mids.end()) mid = it->second;
        }
        if (!mid.empty())
            for (auto& t : tracks)
                if (t.mid == mid) return claim(t);
        if (auto it = announced_rx.find(ssrc); ssrc && it != announced_rx.end())
            for (auto& t : tracks)
                if (t.mline == it->second) return claim(t);
        Track* same_pt = nullptr;
        for (auto& t : tracks) {
            if (!receiving(t) || t.pt != pt) continue;
            if (t.n->rx_ssrc == 0) return claim(t);
            if (!same_pt) same_pt = &t;
        }
        if (same_pt) return same_pt;
        for (auto& t : tracks)
            if (t.kind == kind && t.pt == pt) return nullptr;  // an m-line we do not receive on
        for (auto& t : tracks)
            if (receiving(t)) return claim(t);
        return nullptr;
    }

    // Muxers refuse new pads once they have started writing, so every pad a call will need is
    // requested as soon as the negotiated tracks are known, before any media flows.
    GstPad* mux_pad(const Track& t) {
        auto it = mux_pads.find(t.mline);
        if (it != mux_pads.end()) return it->second.get();
        GstPad* pad =
            gst_element_request_pad_simple(mux, t.kind == "video" ? "video_%u" : "audio_%u");
        if (!pad)
            throw Error(ErrorCode::Io,
                        "-o " + opt.output.redacted() + ": the container takes no " + t.kind);
        mux_pads[t.mline].reset(pad);
        return pad;
    }

    void prepare_mux() {
        if (!mux) return;
        std::lock_guard lock(mux_mutex);
        for (const auto& t : tracks)
            if (t.recv && t.codec) mux_pad(t);
    }

    void link_tee(GstElement* tee, GstElement* branch) {
        GstPad* tpad = gst_element_request_pad_simple(tee, "src_%u");
        gst::PadPtr owned(tpad);
        gst::PadPtr bsink(gst_element_get_static_pad(branch, "sink"));
        gst_pad_link(tpad, bsink.get());
    }

    void media_flow(const std::string& direction, const std::string& kind, const std::string& mid,
                    bool on) {
        const std::string key = direction + kind + "/" + mid;
        if (flowing[key] == on) return;
        flowing[key] = on;
        Json e{{"direction", direction}, {"kind", kind}, {"state", on ? "flowing" : "not-flowing"}};
        if (!mid.empty()) e["mid"] = mid;
        events.emit("media-flow", e);
    }

    // ---- negotiation ---------------------------------------------------------------------------

    using PromiseHandler = void (Impl::*)(GstPromise*);

    GstPromise* promise(PromiseHandler handler) {
        struct Ctx {
            std::weak_ptr<Impl> self;
            PromiseHandler handler;
        };
        auto* ctx = new Ctx{weak_from_this(), handler};
        return gst_promise_new_with_change_func(
            [](GstPromise* p, gpointer d) {
                // The change function runs once per promise: it adopts the reference that
                // gst_promise_new_with_change_func() gave us (webrtcbin holds one of its own).
                // Adding one instead leaked every promise with its reply: 20 KB per stats
                // request, 4 KB/s at --stats-interval 5.
                std::shared_ptr<GstPromise> owned(p, gst_promise_unref);
                auto* c = static_cast<Ctx*>(d);
                auto self = c->self.lock();
                if (!self) return;
                PromiseHandler h = c->handler;
                self->post([owned, h](Impl& s) { (s.*h)(owned.get()); });
            },
            ctx, [](gpointer d) { delete static_cast<Ctx*>(d); });
    }

    // Whether a promise succeeded; on failure the call ends naming what went wrong. A success
    // may carry no structure (set-*-description replies with none).
    bool replied(GstPromise* p, const char* what, const GstStructure** reply = nullptr) {
        if (gst_promise_wait(p) != GST_PROMISE_RESULT_REPLIED) {
            fail(ErrorCode::Runtime, std::string(what) + " did not complete");
            return false;
        }
        const GstStructure* r = gst_promise_get_reply(p);
        GError* err = nullptr;
        if (r && gst_structure_has_field(r, "error") &&
            gst_structure_get(r, "error", G_TYPE_ERROR, &err, nullptr) && err) {
            gst::GErrorPtr owned(err);
            fail(ErrorCode::Negotiation, std::string(what) + " failed: " + err->message);
            return false;
        }
        if (reply) *reply = r;
        return true;
    }

    void start() {
        mark("start");
        if (opt.role == Role::Offerer) {
            g_signal_emit_by_name(webrtc, "create-offer", nullptr,
                                  promise(&Impl::on_offer_created));
        }
    }

    void limit_bandwidth(GstSDPMessage* sdp) {
        if (!opt.max_bitrate_kbps) return;
        for (guint i = 0; i < gst_sdp_message_medias_len(sdp); ++i) {
            auto* m = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, i));
            if (g_strcmp0(gst_sdp_media_get_media(m), "video") != 0) continue;
            // RFC 8866 §5.8 b=AS in kbit/s; RFC 3890 b=TIAS in bit/s, without IP/UDP overhead.
            gst_sdp_media_add_bandwidth(m, "AS", opt.max_bitrate_kbps);
            gst_sdp_media_add_bandwidth(m, "TIAS", opt.max_bitrate_kbps * 1000);
        }
    }

    void on_offer_created(GstPromise* p) {
        const GstStructure* r = nullptr;
        if (!replied(p, "creating the offer", &r)) return;
        if (!r) return fail(ErrorCode::Runtime, "webrtcbin made no offer");
        GstWebRTCSessionDescription* offer = nullptr;
        gst_structure_get(r, "offer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &offer, nullptr);
        gst::SessionDescriptionPtr owned(offer);
        if (!offer) return fail(ErrorCode::Runtime, "webrtcbin made no offer");
        limit_bandwidth(offer->sdp);
        describe_streams(offer->sdp);
        g_signal_emit_by_name(webrtc, "set-local-description", offer, promise(&Impl::on_local_set));
    }

    void on_local_set(GstPromise* p) {
        if (!replied(p, "setting the local description")) return;
        // Gathering gets --ice-timeout: without a usable interface, or with a server that never
        // answers, webrtcbin would wait for ever and no description would be written.
        add_timer(static_cast<unsigned>(opt.ice_timeout_s * 1000), [](Impl& s) {
            if (!s.local_sent) s.fail(ErrorCode::Network, s.gathering_failure());
            return false;
        });
        events.emit("signaling", Json{{"state", "local-description-set"}});
        if (opt.role == Role::Answerer) watch_transports();
        maybe_send_local();
    }

    std::string gathering_failure() const {
        std::string why = "ICE gathering did not finish within " + fmt_seconds(opt.ice_timeout_s) +
                          " s (--ice-timeout): ";
        if (candidates_by_type.empty())
            return why +
                   "no local candidates; is there a network interface? (in a namespace with "
                   "only lo, give --bind 127.0.0.1)";
        if (!opt.ice.stun.empty() && !candidates_by_type.count("srflx"))
            return why + "no answer from the STUN server " + opt.ice.stun;
        if (!opt.ice.turn.empty() && !candidates_by_type.count("relay"))
            return why + "no relay from the TURN server(s)";
        return why + "a server is still being asked";
    }

    void maybe_send_local() {
        if (local_sent) return;
        GstWebRTCICEGatheringState g{};
        g_object_get(webrtc, "ice-gathering-state", &g, nullptr);
        if (g != GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) return;
        GstWebRTCSessionDescription* desc = nullptr;
        g_object_get(webrtc, "local-description", &desc, nullptr);
        gst::SessionDescriptionPtr owned(desc);
        if (!desc) return;
        gst::GCharPtr text(gst_sdp_message_as_text(desc->sdp));
        local_sent = true;
        mark("sdpReady");
        events.emit(
            "local-description",
            Json{{"sdpType", desc->type == GST_WEBRTC_SDP_TYPE_OFFER ? "offer" : "answer"}});
        if (cb.local_description) cb.local_description(text.get());
        if (opt.role == Role::Answerer) start_watchdogs();
    }

    // Picks, for each offered m-line, the first codec (in the offer's order) that we accept.
    void choose_codecs(const Sdp& sdp) {
        tracks.clear();
        // Each send source of a kind takes the next m-line of that kind the peer receives on.
        std::map<std::string, std::vector<int>> unsent{{"video", sources_of("video")},
                                                       {"audio", sources_of("audio")}};
        for (size_t i = 0; i < sdp.media.size(); ++i) {
            const SdpMedia& m = sdp.media[i];
            if (m.kind != "audio" && m.kind != "video") continue;
            Track t;
            t.kind = m.kind;
            t.mline = static_cast<int>(i);
            t.mid = m.mid;
            if (m.rejected() || (m.kind == "video" ? !opt.video : !opt.audio)) {
                tracks.push_back(t);
                continue;
            }
            const auto& ours = m.kind == "video" ? opt.video_codecs : opt.audio_codecs;
            for (const auto& c : m.codecs) {
                const CodecInfo* info = webrtc::find_codec(c.name);
                if (!info || std::find(ours.begin(), ours.end(), info->name) == ours.end())
                    continue;
                if (info->clock_rate != c.clock_rate && c.clock_rate != 0) continue;
                t.codec = info;
                t.pt = c.payload;
                break;
            }
            if (!t.codec) {
                std::string theirs, mine;
                for (const auto& c : m.codecs)
                    if (c.name != "rtx" && c.name != "red" && c.name != "ulpfec" &&
                        c.name != "telephone-event" && !c.name.empty() &&
                        theirs.find(c.name) == std::string::npos)
                        theirs += (theirs.empty() ? "" : ", ") + c.name;
                for (const auto& c : ours) mine += (mine.empty() ? "" : ", ") + c;
                throw Error(ErrorCode::Negotiation,
                            "no common " + m.kind + " codec (line " + std::to_string(m.line) +
                                "): the peer offers " + (theirs.empty() ? "none" : theirs) +
                                "; we accept " + mine);
            }
            const bool peer_sends = m.direction == "sendrecv" || m.direction == "sendonly";
            const bool peer_recvs = m.direction == "sendrecv" || m.direction == "recvonly";
            auto& free = unsent[t.kind];
            t.send = peer_recvs && !free.empty();
            if (t.send) {
                t.source = free.front();
                free.erase(free.begin());
                t.ssrc = new_ssrc(tracks);
            }
            t.recv = peer_sends && opt.direction != MediaDirection::SendOnly;
            tracks.push_back(t);
        }
        check_something_to_carry("the offer");
    }

    // What the user asked for wins over what the peer proposed; when the two leave no media
    // either way (and no data channel), there is no call to make.
    void check_something_to_carry(const char* theirs) const {
        if (!opt.data_label.empty()) return;
        if (std::any_of(tracks.begin(), tracks.end(),
                        [](const Track& t) { return t.codec && (t.send || t.recv); }))
            return;
        const char* ours = opt.direction == MediaDirection::SendOnly ? "we only send (--sendonly)"
                           : opt.direction == MediaDirection::RecvOnly
                               ? "we only receive (--recvonly)"
                               : "we send and receive";
        throw Error(ErrorCode::Negotiation, std::string("nothing to carry: ") + ours + ", and " +
                                                theirs +
                                                " leaves no media line that goes either way");
    }

    // Whether send source i has this kind at all (an audio-only file offers no video).
    bool source_has(size_t i, const std::string& kind) const {
        const MediaUri& s = opt.send[i];
        if (s.kind == MediaUri::Kind::Test) return kind == "video" ? s.video : s.audio;
        if (s.kind == MediaUri::Kind::File && i < source_kinds.size() && source_kinds[i].known)
            return kind == "video" ? source_kinds[i].video : source_kinds[i].audio;
        if (s.kind == MediaUri::Kind::V4l2) return kind == "video";
        if (s.kind == MediaUri::Kind::Pulse || s.kind == MediaUri::Kind::Alsa)
            return kind == "audio";
        return true;
    }

    // The send sources that have this kind, in command-line order: each gets an m-line.
    std::vector<int> sources_of(const std::string& kind) const {
        std::vector<int> out;
        if (opt.direction == MediaDirection::RecvOnly) return out;
        for (size_t i = 0; i < opt.send.size(); ++i)
            if (source_has(i, kind)) out.push_back(static_cast<int>(i));
        return out;
    }

    static guint32 new_ssrc(const std::vector<Track>& taken) {
        for (;;) {
            const guint32 s = g_random_int();
            if (s && std::none_of(taken.begin(), taken.end(),
                                  [s](const Track& t) { return t.ssrc == s; }))
                return s;
        }
    }

    // The transceiver of an m-line: its negotiated MID and its name, which webrtcbin writes as
    // the track id of its a=ssrc msid lines (so a=msid says the same).

    // webrtcbin 1.22 answers with directions of its own (sendrecv for --sendonly, recvonly for
    // --no-audio), whatever the transceivers are told, so each m-line's direction is set here.
    std::pair<bool, bool> answer_direction(const Track& t) const {
        return {t.codec && t.send, t.codec && t.recv};
    }

    void set_answer_directions(GstSDPMessage* sdp) {
        for (const auto& t : tracks) {
            if (t.mline < 0 || static_cast<guint>(t.mline) >= gst_sdp_message_medias_len(sdp))
                continue;
            auto* m = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, t.mline));
            if (m->port == 0) continue;  // rejected by webrtcbin: no codec in common
            for (guint i = gst_sdp_media_attributes_len(m); i-- > 0;) {
                const char* key = gst_sdp_media_get_attribute(m, i)->key;
                for (const char* d : {"sendrecv", "sendonly", "recvonly", "inactive"})
                    if (g_strcmp0(key, d) == 0) {
                        gst_sdp_media_remove_attribute(m, i);
                        break;
                    }
            }
            auto [send, recv] = answer_direction(t);
            gst_sdp_media_add_attribute(m,
                                        send && recv ? "sendrecv"
                                        : send       ? "sendonly"
                                        : recv       ? "recvonly"
                                                     : "inactive",
                                        "");  // not NULL: gst_sdp_media_attributes_to_caps reads it
        }
    }

    // For the offerer: what the answer accepted, m-line by m-line.
    void read_answer(const Sdp& sdp) {
        size_t av = 0;
        for (size_t i = 0; i < sdp.media.size(); ++i) {
            const SdpMedia& m = sdp.media[i];
            if (m.kind != "audio" && m.kind != "video") continue;
            if (av >= tracks.size()) break;
            Track& t = tracks[av++];
            // RFC 8829 §5.3.1: an answer keeps the offer's m-lines in order and kind.
            if (m.kind != t.kind)
                throw Error(ErrorCode::BadInput, "answer SDP line " + std::to_string(m.line) +
                                                     ": m=" + m.kind +
                                                     " where the offer had m=" + t.kind);
            t.mline = static_cast<int>(i);
            t.mid = m.mid;
            if (m.rejected() || m.codecs.empty()) continue;
            for (const auto& c : m.codecs) {
                const CodecInfo* info = webrtc::find_codec(c.name);
                if (!info) continue;
                t.codec = info;
                t.pt = c.payload;
                break;
            }
            if (!t.codec)
                throw Error(ErrorCode::Negotiation, "the answer's " + m.kind + " line " +
                                                        std::to_string(m.line) +
                                                        " names no codec we offered");
            t.send = (m.direction == "sendrecv" || m.direction == "recvonly") && t.source >= 0;
            t.recv = (m.direction == "sendrecv" || m.direction == "sendonly") &&
                     opt.direction != MediaDirection::SendOnly;
        }
        bool any =
            std::any_of(tracks.begin(), tracks.end(), [](const Track& t) { return t.codec; });
        if (!any && !tracks.empty() && opt.data_label.empty())
            throw Error(ErrorCode::Negotiation,
                        "the answer rejected every media line; no common codec");
        check_something_to_carry("the answer");
    }

    unsigned remote_video_bandwidth(const std::string& text) {
        // The peer's b=AS on its video m-line caps what we send (RFC 8866 §5.8).
        unsigned limit = 0;
        GstSDPMessage* raw = nullptr;
        gst_sdp_message_new(&raw);
        gst::SdpMessagePtr msg(raw);
        if (gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(text.data()),
                                         static_cast<guint>(text.size()), msg.get()) != GST_SDP_OK)
            return 0;
        for (guint i = 0; i < gst_sdp_message_medias_len(msg.get()); ++i) {
            const GstSDPMedia* m = gst_sdp_message_get_media(msg.get(), i);
            if (g_strcmp0(gst_sdp_media_get_media(m), "video") != 0) continue;
            for (guint b = 0; b < gst_sdp_media_bandwidths_len(m); ++b) {
                const GstSDPBandwidth* bw = gst_sdp_media_get_bandwidth(m, b);
                if (g_strcmp0(bw->bwtype, "AS") == 0 && bw->bandwidth > 0) limit = bw->bandwidth;
            }
        }
        return limit;
    }

    void set_remote(const std::string& text) {
        if (remote_applied)
            throw Error(ErrorCode::InvalidArgument, "a remote description was already applied");
        SdpParse parsed = parse_sdp(text, true);
        if (!parsed) {
            const SdpError& e = parsed.error;
            std::string where = e.line ? "line " + std::to_string(e.line) + ": " : "";
            if (e.message.rfind("line ", 0) == 0) where.clear();
            throw Error(e.code, std::string(opt.role == Role::Offerer ? "answer" : "offer") +
                                    " SDP " + where + e.message);
        }
        const Sdp& sdp = *parsed.sdp;
        remote_fp_alg = sdp.fingerprint_algorithm;
        remote_fp = sdp.fingerprint;
        remote_video_limit_kbps = remote_video_bandwidth(sdp.text);
        gst::SdpMessagePtr msg;
        {
            GstSDPMessage* raw = nullptr;
            gst_sdp_message_new(&raw);
            msg.reset(raw);
            gst_sdp_message_parse_buffer(reinterpret_cast<const guint8*>(sdp.text.data()),
                                         static_cast<guint>(sdp.text.size()), msg.get());
        }
        remote_applied = true;
        mark("remoteDescription");
        announced_rx = webrtc::announced_ssrcs(msg.get());
        rx_mid_ext = webrtc::bundle_extmap_ids(msg.get()).mid;
        if (opt.role == Role::Answerer) {
            choose_codecs(sdp);
            agree_extensions(msg.get());
            prepare_mux();
            gst::SessionDescriptionPtr desc(
                gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_OFFER, msg.release()));
            g_signal_emit_by_name(webrtc, "set-remote-description", desc.get(),
                                  promise(&Impl::on_remote_offer_set));
        } else {
            read_answer(sdp);
            agree_extensions(msg.get());
            prepare_mux();
            link_senders();
            gst::SessionDescriptionPtr desc(
                gst_webrtc_session_description_new(GST_WEBRTC_SDP_TYPE_ANSWER, msg.release()));
            g_signal_emit_by_name(webrtc, "set-remote-description", desc.get(),
                                  promise(&Impl::on_remote_answer_set));
        }
    }

    // The header extensions of each m-line are the ones the peer's description gives it: an
    // offer's ids are the answer's (RFC 8285 §6), and an answer keeps of ours what it accepts.
    void agree_extensions(const GstSDPMessage* remote) {
        for (auto& t : tracks)
            if (t.mline >= 0 && static_cast<guint>(t.mline) < gst_sdp_message_medias_len(remote))
                t.ext = webrtc::extmap_ids(gst_sdp_message_get_media(remote, t.mline));
    }

    // Our SSRC, MID and TWCC on each m-line we send on, a=msid on it, and of the extensions only
    // those agreed (webrtcbin copies every one an offer lists into its answer).
    void describe_streams(GstSDPMessage* sdp) {
        for (const auto& t : tracks) {
            if (t.mline < 0 || static_cast<guint>(t.mline) >= gst_sdp_message_medias_len(sdp))
                continue;
            auto* m = const_cast<GstSDPMedia*>(gst_sdp_message_get_media(sdp, t.mline));
            // Port 0 is a rejected m-line in an answer, a bundle-only one in our offer.
            if (m->port == 0 && opt.role == Role::Answerer) continue;
            webrtc::keep_extmaps(m, t.ext);
            webrtc::drop_repeated(m, "ssrc");
            if (t.ssrc && !t.msid_track.empty()) webrtc::add_msid(m, stream_id, t.msid_track);
        }
    }

    void link_senders() {
        for (auto& t : tracks) {
            if (!t.codec || !t.send) continue;
            link_sender(t);
            Json ev{{"direction", "out"},
                    {"kind", t.kind},
                    {"codec", t.codec->name},
                    {"payloadType", t.pt},
                    {"ssrc", t.ssrc}};
            if (!t.mid.empty()) ev["mid"] = t.mid;
            events.emit("track", ev);
        }
    }

    // The answer: a transceiver per m-line with the one codec, direction, SSRC and extensions we
    // chose. webrtcbin 1.22 makes an answerer's transceivers only in create-answer, matching each
    // m-line to the first free transceiver whose codec preferences fit it, whatever its m-line;
    // the offer's a-mid in our preferences makes each fit its own m-line only.
    void on_remote_offer_set(GstPromise* p) {
        if (!replied(p, "applying the offer")) return;
        try {
            link_senders();  // sink_N pads: webrtcbin makes their transceivers
            for (auto& t : tracks) {
                if (!t.codec) continue;  // rejected: set_answer_directions() says so
                auto [send, recv] = answer_direction(t);
                GstWebRTCRTPTransceiverDirection dir =
                    send && recv ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDRECV
                    : send       ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_SENDONLY
                    : recv       ? GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_RECVONLY
                                 : GST_WEBRTC_RTP_TRANSCEIVER_DIRECTION_INACTIVE;
                gst::CapsPtr caps(codec_caps(*t.codec, t.pt, false));
                webrtc::add_to_caps(caps.get(), t.ext, send ? t.ssrc : 0);
                if (!t.mid.empty())
                    gst_caps_set_simple(caps.get(), "a-mid", G_TYPE_STRING, t.mid.c_str(), nullptr);
                if (!t.transceiver) {
                    GstWebRTCRTPTransceiver* trans = nullptr;
                    g_signal_emit_by_name(webrtc, "add-transceiver", dir, caps.get(), &trans);
                    t.transceiver = adopt(trans);
                }
                if (!t.transceiver)
                    throw Error(ErrorCode::Runtime,
                                "webrtcbin would not add a transceiver for " + describe(t));
                g_object_set(t.transceiver.get(), "direction", dir, "do-nack", t.kind == "video",
                             "codec-preferences", caps.get(), nullptr);
                t.msid_track = GST_OBJECT_NAME(t.transceiver.get());
                KMS_LOG(webrtc, INFO, "m-line %d: %s %s", t.mline, t.codec->name,
                        direction_name(dir).c_str());
            }
        } catch (const Error& e) {
            return fail(e.code(), e.what());
        }
        g_signal_emit_by_name(webrtc, "create-answer", nullptr, promise(&Impl::on_answer_created));
    }

    void on_answer_created(GstPromise* p) {
        const GstStructure* r = nullptr;
        if (!replied(p, "creating the answer", &r)) return;
        if (!r) return fail(ErrorCode::Negotiation, "webrtcbin made no answer");
        GstWebRTCSessionDescription* answer = nullptr;
        gst_structure_get(r, "answer", GST_TYPE_WEBRTC_SESSION_DESCRIPTION, &answer, nullptr);
        gst::SessionDescriptionPtr owned(answer);
        if (!answer) return fail(ErrorCode::Negotiation, "webrtcbin made no answer");
        limit_bandwidth(answer->sdp);
        set_answer_directions(answer->sdp);
        describe_streams(answer->sdp);
        g_signal_emit_by_name(webrtc, "set-local-description", answer,
                              promise(&Impl::on_local_set));
    }

    void on_remote_answer_set(GstPromise* p) {
        if (!replied(p, "applying the answer")) return;
        events.emit("signaling", Json{{"state", "stable"}});
        watch_transports();
        start_watchdogs();
    }

    // ---- ICE, DTLS and the fingerprint check ---------------------------------------------------

    void on_candidate(guint mline, const std::string& cand) {
        // "candidate:1 1 UDP 2015363327 127.0.0.1 40236 typ host"
        std::string c = cand.rfind("candidate:", 0) == 0 ? cand.substr(10) : cand;
        std::vector<std::string> f;
        size_t i = 0;
        while (i < c.size()) {
            size_t j = c.find(' ', i);
            if (j == std::string::npos) j = c.size();
            f.push_back(c.substr(i, j - i));
            i = j + 1;
        }
        Json ev{{"sdpMLineIndex", mline}, {"candidate", cand}};
        if (f.size() >= 8) {
            ev["foundation"] = f[0];
            ev["protocol"] = f[2];
            ev["priority"] = std::strtoul(f[3].c_str(), nullptr, 10);
            ev["address"] = f[4];
            ev["port"] = std::atoi(f[5].c_str());
            ev["candidateType"] = f[7];
            ++candidates_by_type[f[7]];
        }
        ev["elapsed"] = process_uptime_ms();
        events.emit("local-candidate", ev);
    }

    void on_state(const std::string& prop) {
        if (prop == "ice-gathering-state") {
            GstWebRTCICEGatheringState g{};
            g_object_get(webrtc, "ice-gathering-state", &g, nullptr);
            events.emit("ice-gathering-state",
                        Json{{"state", enum_nick(GST_TYPE_WEBRTC_ICE_GATHERING_STATE, g)}});
            if (g == GST_WEBRTC_ICE_GATHERING_STATE_COMPLETE) {
                mark("gathered");
                maybe_send_local();
            }
        } else if (prop == "ice-connection-state") {
            // webrtcbin 1.22 aggregates ICE over media transceivers only: a call with nothing
            // but a data channel stays "new" there, so the ICE transports speak for it.
            if (!has_media_tracks()) return;
            GstWebRTCICEConnectionState st{};
            g_object_get(webrtc, "ice-connection-state", &st, nullptr);
            report_ice(enum_nick(GST_TYPE_WEBRTC_ICE_CONNECTION_STATE, st));
        } else if (prop == "connection-state") {
            GstWebRTCPeerConnectionState s{};
            g_object_get(webrtc, "connection-state", &s, nullptr);
            events.emit("connection-state",
                        Json{{"state", enum_nick(GST_TYPE_WEBRTC_PEER_CONNECTION_STATE, s)}});
        }
    }

    bool has_media_tracks() const {
        return std::any_of(tracks.begin(), tracks.end(), [](const Track& t) { return t.codec; });
    }

    // One ice-connection-state event per change, in W3C order: webrtcbin 1.22 goes from checking
    // straight to completed, and says completed twice.
    void report_ice(const std::string& state) {
        if (state == ice_state) return;
        if (state == "completed" && ice_state != "connected") report_ice("connected");
        ice_state = state;
        events.emit("ice-connection-state", Json{{"state", state}});
        if (state == "connected" || state == "completed") {
            mark("iceConnected");
            if (!ice_connected_once) {
                ice_connected_once = true;
                ice_connected_at = Clock::now();
                last_rx_us = g_get_monotonic_time();
                watch_incoming();
            }
            disconnected = false;
        } else if (state == "disconnected") {
            if (!disconnected) disconnected_since = Clock::now();
            disconnected = true;
        } else if (state == "failed") {
            fail(ErrorCode::Network, ice_connected_once
                                         ? "ICE failed: the peer is gone or the path broke"
                                         : "ICE failed: no candidate pair worked; check --bind, "
                                           "--stun and --turn, and that the peer can reach us");
        }
    }

    void on_ice_transport(gst::ObjectPtr<GstWebRTCICETransport> t) {
        if (has_media_tracks()) return;
        GstWebRTCICEConnectionState st{};
        g_object_get(t.get(), "state", &st, nullptr);
        report_ice(enum_nick(GST_TYPE_WEBRTC_ICE_CONNECTION_STATE, st));
    }

    void watch_transports() {
        GArray* arr = nullptr;
        g_signal_emit_by_name(webrtc, "get-transceivers", &arr);
        std::vector<GstWebRTCDTLSTransport*> found;
        if (arr) {
            for (guint i = 0; i < arr->len; ++i) {
                auto* trans = g_array_index(arr, GstWebRTCRTPTransceiver*, i);
                GstWebRTCRTPReceiver* recv = nullptr;
                g_object_get(trans, "receiver", &recv, nullptr);
                if (!recv) continue;
                GstWebRTCDTLSTransport* dtls = nullptr;
                g_object_get(recv, "transport", &dtls, nullptr);
                gst_object_unref(recv);
                if (dtls) found.push_back(dtls);
            }
            g_array_unref(arr);
        }
        GstWebRTCSCTPTransport* sctp = nullptr;
        g_object_get(webrtc, "sctp-transport", &sctp, nullptr);
        if (sctp) {
            GstWebRTCDTLSTransport* dtls = nullptr;
            g_object_get(sctp, "transport", &dtls, nullptr);
            if (dtls) found.push_back(dtls);
            gst_object_unref(sctp);
        }
        for (auto* dtls : found) {
            gst::ObjectPtr<GstWebRTCDTLSTransport> owned(dtls);
            if (watched_dtls.count(dtls)) continue;
            watched_dtls.insert(dtls);
            GstWebRTCICETransport* ice_raw = nullptr;
            g_object_get(dtls, "transport", &ice_raw, nullptr);
            if (gst::ObjectPtr<GstWebRTCICETransport> ice(ice_raw); ice) {
                connect(ice.get(), "notify::state",
                        G_CALLBACK(+[](GstWebRTCICETransport* t, GParamSpec*, gpointer d) {
                            if (auto self = from(d)) {
                                GstWebRTCICETransport* raw = gst::ref(t).release();
                                self->post([raw](Impl& s) {
                                    s.on_ice_transport(gst::ObjectPtr<GstWebRTCICETransport>(raw));
                                });
                            }
                        }));
                on_ice_transport(gst::ref(ice.get()));
            }
            connect(dtls, "notify::state",
                    G_CALLBACK(+[](GstWebRTCDTLSTransport* t, GParamSpec*, gpointer d) {
                        if (auto self = from(d)) {
                            auto owned_t = gst::ref(t);
                            GstWebRTCDTLSTransport* raw = owned_t.release();
                            self->post([raw](Impl& s) {
                                s.on_dtls_state(gst::ObjectPtr<GstWebRTCDTLSTransport>(raw));
                            });
                        }
                    }));
            // The state may have changed before we connected.
            on_dtls_state(gst::ref(dtls));
        }
    }

    void on_dtls_state(gst::ObjectPtr<GstWebRTCDTLSTransport> t) {
        GstWebRTCDTLSTransportState state{};
        g_object_get(t.get(), "state", &state, nullptr);
        if (state == GST_WEBRTC_DTLS_TRANSPORT_STATE_NEW) return;
        events.emit("dtls-state",
                    Json{{"state", enum_nick(GST_TYPE_WEBRTC_DTLS_TRANSPORT_STATE, state)}});
        if (state == GST_WEBRTC_DTLS_TRANSPORT_STATE_FAILED)
            return fail(ErrorCode::Negotiation, "DTLS handshake failed");
        if (state == GST_WEBRTC_DTLS_TRANSPORT_STATE_CLOSED && !stopping && verified) {
            events.emit("remote-closed", Json{{"reason", "DTLS closed by the peer"}});
            return wind_down(CallEnd{});
        }
        if (state != GST_WEBRTC_DTLS_TRANSPORT_STATE_CONNECTED || verified) return;
        // webrtcbin 1.22 does not compare the peer's certificate with a=fingerprint
        // (stack-notes.md); without this check anyone on the path could sit in the middle.
        gchar* pem = nullptr;
        g_object_get(t.get(), "remote-certificate", &pem, nullptr);
        gst::GCharPtr owned(pem);
        if (!pem)
            return fail(ErrorCode::Negotiation,
                        "DTLS connected but the peer's certificate is unreadable");
        std::string got = certificate_fingerprint(pem, remote_fp_alg);
        if (got.empty() || got != remote_fp) {
            events.emit("fingerprint",
                        Json{{"verified", false}, {"expected", remote_fp}, {"actual", got}});
            return fail(ErrorCode::Negotiation,
                        "the peer's DTLS certificate does not match the SDP's a=fingerprint (" +
                            remote_fp_alg + " " + remote_fp + " expected, " + got +
                            " presented); someone may be in the middle of the call");
        }
        {
            std::lock_guard lock(verify_mutex);
            verified = true;
        }
        verify_cv.notify_all();
        if (input_src) {
            add_timer(1500, [](Impl& s) {
                s.input_grace_over = true;
                s.start_input();
                return false;
            });
            start_input();
        }
        mark("dtlsConnected");
        verified_at = Clock::now();
        const bool fatal = opt.media_timeout_s > 0;
        add_timer(static_cast<unsigned>((fatal ? opt.media_timeout_s : kExpectTracksS) * 1000),
                  [fatal](Impl& s) {
                      if (!s.stopping) s.check_expected_tracks(fatal);
                      return false;
                  });
        // Without periodic stats, one request still finds the selected candidate pair.
        if (opt.stats_interval_s <= 0)
            add_timer(500, [](Impl& s) {
                s.request_stats();
                return false;
            });
        events.emit("fingerprint", Json{{"verified", true}, {"algorithm", remote_fp_alg}});
    }

    // Every packet the peer sends (RTP, RTCP, DTLS, SCTP) passes a nicesrc; silence there for
    // --ice-timeout means the peer is gone even when ICE has not noticed.
    void watch_incoming() {
        // Receiver reports once a second instead of rtpsession's 5 s minimum (RFC 4585 lets AVPF
        // sessions go lower): the bitrate controller and the loss figures need timely feedback.
        for_each_inside("rtpsession", [](GstElement* e) {
            g_object_set(e, "rtcp-min-interval", static_cast<guint64>(GST_SECOND), nullptr);
        });
        for_each_inside("nicesrc", [this](GstElement* e) {
            gst::PadPtr src(gst_element_get_static_pad(e, "src"));
            probe(src.get(),
                  static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                               GST_PAD_PROBE_TYPE_BUFFER_LIST),
                  [](GstPad*, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
                      if (auto self = from(d)) self->last_rx_us = g_get_monotonic_time();
                      return GST_PAD_PROBE_OK;
                  });
        });
        for_each_inside("srtpdec", [this](GstElement* e) {
            gst::PadPtr rtp(gst_element_get_static_pad(e, "rtp_src"));
            if (rtp && rx_mid_ext)
                probe(rtp.get(),
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                                   GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                          if (auto self = from(d)) {
                              if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
                                  GstBufferList* l = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
                                  for (guint i = 0; i < gst_buffer_list_length(l); ++i)
                                      self->learn_mid(gst_buffer_list_get(l, i));
                              } else {
                                  self->learn_mid(GST_PAD_PROBE_INFO_BUFFER(info));
                              }
                          }
                          return GST_PAD_PROBE_OK;
                      });
            for (const char* name : {"rtp_src", "rtcp_src"}) {
                gst::PadPtr src(gst_element_get_static_pad(e, name));
                if (!src) continue;
                probe(src.get(),
                      static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                                   GST_PAD_PROBE_TYPE_BUFFER_LIST),
                      [](GstPad*, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
                          auto self = from(d);
                          if (self && !self->peer_keyed.exchange(true))
                              self->post([](Impl& s) { s.start_input(); });
                          return GST_PAD_PROBE_REMOVE;
                      });
            }
        });
        // The remote's RTCP BYE is an orderly goodbye.
        for_each_inside("rtpbin", [this](GstElement* e) {
            connect(e, "on-bye-ssrc", G_CALLBACK(+[](GstElement*, guint, guint ssrc, gpointer d) {
                        if (auto self = from(d)) self->post([ssrc](Impl& s) { s.on_bye(ssrc); });
                    }));
        });
    }

    // RFC 3550 §6.6: a BYE says one source left. A peer that sends several streams may end one
    // before the others (webrtcbin's rtpsession says BYE for the first of a bundle's streams to
    // end, as a file input's audio does a moment before its video, and nothing for the rest); the
    // call is over when every stream that came has left, or, after a BYE, when media stops.
    void on_bye(guint32 ssrc) {
        if (stopping) return;
        byes.insert(ssrc);
        std::string left;
        for (const auto& t : tracks) {
            const guint32 rx = t.n->rx_ssrc;
            if (!t.recv || !rx || byes.count(rx)) continue;
            left += (left.empty() ? "" : ", ") + describe(t);
        }
        if (left.empty()) return remote_bye();
        KMS_LOG(webrtc, INFO, "RTCP BYE for SSRC %u; still receiving %s", ssrc, left.c_str());
        if (bye_watch) return;
        bye_watch = true;
        add_timer(250, [](Impl& s) {
            if (s.stopping) return false;
            if (g_get_monotonic_time() - s.last_media_us < kByeQuietUs) return true;
            s.remote_bye();
            return false;
        });
    }

    void remote_bye() {
        events.emit("remote-closed", Json{{"reason", "RTCP BYE from the peer"}});
        wind_down(CallEnd{});
    }

    // The MID a new SSRC's packets carry, before rtpbin makes a pad for it (track_for() reads it).
    // Streaming thread.
    void learn_mid(GstBuffer* buf) {
        const guint32 ssrc = webrtc::read_ssrc(buf);
        if (!ssrc) return;
        std::lock_guard lock(ssrc_mutex);
        if (rx_mids.count(ssrc) || rx_mids.size() >= 64) return;
        // Senders put the MID in a stream's first packets at least (RFC 8843 §15.2); the first
        // one decides, so the rest cost a lookup only.
        rx_mids.emplace(ssrc, webrtc::read_mid(buf, rx_mid_ext));
    }

    void start_watchdogs() {
        const auto started = Clock::now();
        add_timer(250, [started](Impl& s) {
            const double since = std::chrono::duration<double>(Clock::now() - started).count();
            if (s.stopping) return false;
            if (!s.ice_connected_once && since > s.opt.ice_timeout_s) {
                s.fail(ErrorCode::Network,
                       "ICE did not connect within " + fmt_seconds(s.opt.ice_timeout_s) +
                           " s; check --bind, --stun and --turn, and that the peer can reach us");
                return false;
            }
            if (s.disconnected &&
                std::chrono::duration<double>(Clock::now() - s.disconnected_since).count() >
                    s.opt.ice_timeout_s) {
                s.fail(ErrorCode::Network, "ICE disconnected for more than " +
                                               fmt_seconds(s.opt.ice_timeout_s) +
                                               " s: the peer is gone");
                return false;
            }
            if (s.ice_connected_once && !s.verified &&
                std::chrono::duration<double>(Clock::now() - s.ice_connected_at).count() >
                    s.opt.ice_timeout_s) {
                s.fail(ErrorCode::Negotiation,
                       "ICE connected but the DTLS handshake did not finish within " +
                           fmt_seconds(s.opt.ice_timeout_s) + " s");
                return false;
            }
            if (s.ice_connected_once) {
                const double quiet = (g_get_monotonic_time() - s.last_rx_us) / 1e6;
                if (quiet > s.opt.ice_timeout_s) {
                    s.fail(ErrorCode::Network, "nothing heard from the peer for " +
                                                   std::to_string(int(quiet)) +
                                                   " s: it is gone or the path broke");
                    return false;
                }
            }
            // --media-timeout counts what arrives, whatever was negotiated: a peer that answered
            // recvonly, or sends nothing, is exactly what it is there to catch.
            if (s.opt.media_timeout_s > 0) {
                const int64_t last = s.last_media_us;
                const double quiet = last ? (g_get_monotonic_time() - last) / 1e6 : since;
                if (quiet > s.opt.media_timeout_s) {
                    const std::string secs = fmt_seconds(s.opt.media_timeout_s);
                    s.fail(ErrorCode::NoMedia,
                           last ? "media stopped: nothing received for " + secs +
                                      " s (--media-timeout)"
                                : "no media received within " + secs + " s (--media-timeout)");
                    return false;
                }
            }
            return true;
        });
        // Once a second whatever --stats-interval is (0 included): the bitrate follows the loss
        // the peer reports, and media-flow follows what is decoded.
        add_timer(1000, [](Impl& s) {
            if (s.stopping) return false;
            s.adapt_bitrate();
            s.check_flow();
            return true;
        });
        if (opt.stats_interval_s > 0)
            add_timer(static_cast<unsigned>(opt.stats_interval_s * 1000), [](Impl& s) {
                s.request_stats();
                return true;
            });
    }

    // ---- statistics ----------------------------------------------------------------------------

    void request_stats() {
        if (!verified) return;
        g_signal_emit_by_name(webrtc, "get-stats", nullptr, promise(&Impl::on_stats));
    }

    void on_stats(GstPromise* p) {
        if (gst_promise_wait(p) != GST_PROMISE_RESULT_REPLIED) return;
        const GstStructure* r = gst_promise_get_reply(p);
        if (!r) return;
        std::map<std::string, Json> by_id;
        std::vector<std::pair<std::string, Json>> out;
        const int n = gst_structure_n_fields(r);
        for (int i = 0; i < n; ++i) {
            const GValue* v = gst_structure_get_value(r, gst_structure_nth_field_name(r, i));
            if (!GST_VALUE_HOLDS_STRUCTURE(v)) continue;
            const GstStructure* s = gst_value_get_structure(v);
            GstWebRTCStatsType type{};
            if (!gst_structure_get_enum(s, "type", GST_TYPE_WEBRTC_STATS_TYPE,
                                        reinterpret_cast<gint*>(&type)))
                continue;
            Json j = stats_to_json(s);
            const std::string tname = enum_nick(GST_TYPE_WEBRTC_STATS_TYPE, type);
            if (j.contains("id")) by_id[j["id"].get<std::string>()] = j;
            out.emplace_back(tname, std::move(j));
        }
        auto kind_of = [&](Json& j) {
            if (j.contains("ssrc")) {
                std::lock_guard lock(ssrc_mutex);
                auto it = ssrc_kind.find(j["ssrc"].get<guint32>());
                if (it != ssrc_kind.end()) {
                    j["kind"] = it->second;
                    return;
                }
            }
            if (j.contains("kind")) return;
            if (j.contains("codecId") && by_id.count(j["codecId"].get<std::string>())) {
                const Json& codec = by_id[j["codecId"].get<std::string>()];
                std::string mime = codec.value("mimeType", "");
                if (mime.rfind("video", 0) == 0)
                    j["kind"] = "video";
                else if (mime.rfind("audio", 0) == 0)
                    j["kind"] = "audio";
            }
        };
        long long lost = 0;
        if (opt.stats_interval_s <= 0) {  // only the pair was asked for
            for (auto& [type, j] : out)
                if (type == "candidate-pair") report_pair(j, by_id);
            return;
        }
        for (auto& [type, j] : out) {
            if (type == "inbound-rtp") {
                lost += j.value("packetsLost", 0LL);
                kind_of(j);
                const std::string kind = j.value("kind", "");
                // Per stream when we know its m-line; the sum of its kind otherwise.
                const Track* t = track_of_ssrc(j, true);
                if (t) j["mid"] = t->mid;
                if (kind == "video")
                    j["framesDecoded"] = t ? t->n->frames_in.load() : frames_video.load();
                if (kind == "audio")
                    j["audioFramesDecoded"] = t ? t->n->frames_in.load() : frames_audio.load();
            } else if (type == "outbound-rtp") {
                kind_of(j);
                const Track* t = track_of_ssrc(j, false);
                if (t) j["mid"] = t->mid;
                if (j.value("kind", "") == "video") {
                    j["framesSent"] = t ? t->n->frames_out.load() : sent_video.load();
                    j["targetBitrate"] = video_bitrate_kbps * 1000;
                }
            } else if (type == "remote-inbound-rtp") {
                kind_of(j);
            } else if (type == "candidate-pair") {
                report_pair(j, by_id);
            } else if (type != "transport" && type != "remote-outbound-rtp" &&
                       type != "data-channel") {
                continue;
            }
            events.emit(type, j);
        }
        packets_lost = lost;
    }

    void report_pair(const Json& pair, std::map<std::string, Json>& by_id) {
        if (selected_pair_reported) return;
        auto cand = [&](const char* key) {
            Json c = Json::object();
            if (pair.contains(key) && by_id.count(pair[key].get<std::string>())) {
                const Json& s = by_id[pair[key].get<std::string>()];
                for (const char* f :
                     {"address", "port", "candidateType", "protocol", "priority", "url"})
                    if (s.contains(f)) c[f] = s[f];
            }
            return c;
        };
        selected_pair_reported = true;
        events.emit("selected-candidate-pair", Json{{"local", cand("localCandidateId")},
                                                    {"remote", cand("remoteCandidateId")}});
    }

    // A loss-based controller between --min-bitrate and --max-bitrate (the loss half of GCC,
    // draft-ietf-rmcat-gcc-02 §6): above 10 % loss back off, below 2 % grow by 8 %.
    // The fraction lost that the peer's last receiver report gives for our video SSRC, read
    // from rtpsession's own per-source statistics: webrtcbin 1.22's get-stats reports one
    // remote-inbound-rtp per bundled session, not one per SSRC. -1 when there is none yet.
    double video_fraction_lost() {
        guint32 video_ssrc = 0;
        {
            std::lock_guard lock(ssrc_mutex);
            for (const auto& [ssrc, kind] : ssrc_kind)
                if (kind == "video" && sent_ssrcs.count(ssrc)) video_ssrc = ssrc;
        }
        if (!video_ssrc) return -1;
        double loss = -1;
        for_each_inside("rtpsession", [&](GstElement* e) {
            GstStructure* raw = nullptr;
            g_object_get(e, "stats", &raw, nullptr);
            gst::StructurePtr stats(raw);
            const GValue* list =
                stats ? gst_structure_get_value(stats.get(), "source-stats") : nullptr;
            G_GNUC_BEGIN_IGNORE_DEPRECATIONS  // rtpsession 1.22 hands out a GValueArray
                if (!list || !G_VALUE_HOLDS(list, g_value_array_get_type())) return;
            G_GNUC_END_IGNORE_DEPRECATIONS
            auto* arr = static_cast<GValueArray*>(g_value_get_boxed(list));
            G_GNUC_BEGIN_IGNORE_DEPRECATIONS
            bool from_video = false;
            for (guint i = 0; arr && i < arr->n_values; ++i) {
                // A remote source keeps the last report block it sent us; rb-ssrc says which of
                // our SSRCs it was about. Prefer our video's; any other is the same path.
                const GstStructure* src = gst_value_get_structure(g_value_array_get_nth(arr, i));
                guint about = 0, fraction = 0, highest = 0;
                gint lost = 0;
                gboolean have_rb = FALSE;
                if (!gst_structure_get_boolean(src, "have-rb", &have_rb) || !have_rb ||
                    !gst_structure_get_uint(src, "rb-ssrc", &about) ||
                    !gst_structure_get_uint(src, "rb-fractionlost", &fraction))
                    continue;
                if (from_video && about != video_ssrc) continue;
                // The fraction is the report's own (RFC 3550 §6.4.1: 8 bits after the binary
                // point), but a block that reached us stale or about the other SSRC reads 0 for a
                // lossy path; the cumulative count against the highest sequence number since the
                // last report we used is the robust figure (RFC 3550 A.3).
                double f = fraction / 256.0;
                if (gst_structure_get_int(src, "rb-packetslost", &lost) &&
                    gst_structure_get_uint(src, "rb-exthighestseq", &highest)) {
                    auto& last = rb_seen[about];
                    if (last.first && highest > last.first) {
                        const double expected = highest - last.first;
                        f = std::clamp((lost - last.second) / expected, 0.0, 1.0);
                    } else if (last.first && highest == last.first) {
                        continue;  // no new report since the last look
                    }
                    last = {highest, lost};
                }
                loss = f;
                from_video = about == video_ssrc;
            }
            G_GNUC_END_IGNORE_DEPRECATIONS
        });
        return loss;
    }

    void adapt_bitrate() {
        if (!video_bitrate_kbps) return;
        // At most once a second (its timer's), so the rate of change stays the documented one.
        const auto now = Clock::now();
        if (now - last_adapt < std::chrono::milliseconds(900)) return;
        const double loss = video_fraction_lost();
        if (loss < 0) return;
        last_adapt = now;
        unsigned ceiling = opt.max_bitrate_kbps ? opt.max_bitrate_kbps : 2500;
        if (remote_video_limit_kbps) ceiling = std::min(ceiling, remote_video_limit_kbps);
        const unsigned floor = std::max(opt.min_bitrate_kbps, 30u);
        double next = video_bitrate_kbps;
        if (loss > 0.10)
            next *= (1.0 - 0.5 * loss);
        else if (loss < 0.02)
            next *= 1.08;
        unsigned kbps = std::clamp(static_cast<unsigned>(next), std::min(floor, ceiling), ceiling);
        if (kbps == video_bitrate_kbps) return;
        video_bitrate_kbps = kbps;
        for (auto& t : tracks) {
            if (t.kind != "video" || !t.encoder) continue;
            if (std::string_view(t.codec->name) == "h264")
                g_object_set(t.encoder, "bitrate", kbps, nullptr);
            else
                g_object_set(t.encoder, "target-bitrate", static_cast<gint>(kbps * 1000), nullptr);
        }
        events.emit(
            "bitrate",
            Json{{"kind", "video"}, {"targetBitrate", kbps * 1000}, {"fractionLost", loss}});
    }

    // The m-line of a stats entry's SSRC: the peer's (inbound) or ours (outbound).
    const Track* track_of_ssrc(const Json& j, bool inbound) const {
        if (!j.contains("ssrc") || !j["ssrc"].is_number()) return nullptr;
        const auto ssrc = j["ssrc"].get<guint32>();
        for (const auto& t : tracks)
            if (inbound ? t.n->rx_ssrc == ssrc : t.ssrc == ssrc) return &t;
        return nullptr;
    }

    std::map<guint, std::pair<guint, gint>> rb_seen;  // per SSRC of ours: highest seq, lost
    std::map<int, unsigned long long> last_frames;    // per m-line, at the last check
    void check_flow() {
        // Kurento's MediaFlowIn: a track that stopped delivering frames since the last report.
        for (const auto& t : tracks) {
            const auto n = t.n->frames_in.load();
            if (n > 0) media_flow("in", t.kind, t.mid, n != last_frames[t.mline]);
            last_frames[t.mline] = n;
        }
    }

    // Kurento's complaint list: a call that connects but never gets a track it agreed to
    // receive must say so. With --media-timeout it fails (exit 6); without, a warning.
    void check_expected_tracks(bool fatal) {
        std::string missing;
        for (auto& t : tracks) {
            if (!t.recv || !t.codec || t.n->frames_in > 0 || t.never_arrived_reported) continue;
            t.never_arrived_reported = true;
            missing += (missing.empty() ? "" : ", ") + describe(t);
            Json e{{"direction", "in"}, {"kind", t.kind}, {"state", "never-arrived"}};
            if (!t.mid.empty()) e["mid"] = t.mid;
            events.emit("media-flow", e);
        }
        if (missing.empty()) return;
        const std::string why = "negotiated but never received: " + missing +
                                (last_media_us ? " (other media arrived)" : "");
        if (fatal)
            return fail(ErrorCode::NoMedia, why + " within " + fmt_seconds(opt.media_timeout_s) +
                                                " s (--media-timeout)");
        events.emit("warning", Json{{"message", why}});
        KMS_LOG(webrtc, WARNING, "%s", why.c_str());
        if (cb.warning) cb.warning(why);
    }

    // ---- timing and summary ---------------------------------------------------------------------

    bool timing_emitted = false;

    void emit_timing() {
        if (timing_emitted) return;
        timing_emitted = true;
        Json milestones_json = Json::object();
        Json phases = Json::object();
        std::lock_guard lock(timing_mutex);
        auto at = [&](const char* k) { return milestones.count(k) ? milestones[k] : -1.0; };
        for (const char* k : {"start", "sdpReady", "remoteDescription", "iceConnected",
                              "dtlsConnected", "firstRtp", "firstFrame"})
            if (at(k) >= 0) milestones_json[k] = std::round(at(k) * 10) / 10;
        auto phase = [&](const char* name, const char* from, const char* to) {
            if (at(from) >= 0 && at(to) >= 0)
                phases[name] = std::round((at(to) - at(from)) * 10) / 10;
        };
        phase("gather", "start", "sdpReady");
        // ICE checks start once both descriptions are in place.
        if (at("iceConnected") >= 0 && at("sdpReady") >= 0 && at("remoteDescription") >= 0)
            phases["ice"] =
                std::round(
                    (at("iceConnected") - std::max(at("sdpReady"), at("remoteDescription"))) * 10) /
                10;
        phase("dtls", "iceConnected", "dtlsConnected");
        phase("firstRtp", "dtlsConnected", "firstRtp");
        phase("firstFrame", "firstRtp", "firstFrame");
        events.emit("timing", Json{{"phases", phases}, {"sinceProcessStart", milestones_json}});
    }

    void emit_summary() {
        Json per_track = Json::array();
        for (const auto& t : tracks) {
            if (!t.codec || (!t.send && !t.recv)) continue;
            Json j{{"kind", t.kind}, {"codec", t.codec->name}};
            if (!t.mid.empty()) j["mid"] = t.mid;
            if (t.recv)
                j[t.kind == "video" ? "framesDecoded" : "audioFramesDecoded"] =
                    t.n->frames_in.load();
            if (t.send)
                j[t.kind == "video" ? "framesSent" : "packetsSent"] = t.n->frames_out.load();
            per_track.push_back(j);
        }
        events.emit("summary", Json{{"videoFramesDecoded", frames_video.load()},
                                    {"audioFramesDecoded", frames_audio.load()},
                                    {"videoFramesSent", sent_video.load()},
                                    {"audioPacketsSent", sent_audio.load()},
                                    {"dataMessagesSent", dc_sent.load()},
                                    {"dataMessagesReceived", dc_received.load()},
                                    {"tracks", per_track}});
    }

    // ---- bus and shutdown ----------------------------------------------------------------------

    void on_bus(GstMessage* msg) {
        switch (GST_MESSAGE_TYPE(msg)) {
            case GST_MESSAGE_ERROR: {
                GError* err = nullptr;
                gchar* dbg = nullptr;
                gst_message_parse_error(msg, &err, &dbg);
                gst::GErrorPtr e(err);
                gst::GCharPtr d(dbg);
                if (stopping) {
                    // A write error while the muxer finalises (disk full, the reader of stdout
                    // gone) is the one error of a wind-down that loses something: report it.
                    if (pending_end.clean && is_output(GST_MESSAGE_SRC(msg))) {
                        pending_end =
                            CallEnd{false, ErrorCode::Io,
                                    describe_error(GST_MESSAGE_SRC(msg), e.get(), ErrorCode::Io)};
                        finish(pending_end);
                    }
                    return;
                }
                GST_DEBUG_BIN_TO_DOT_FILE_WITH_TS(GST_BIN(pipeline.get()), GST_DEBUG_GRAPH_SHOW_ALL,
                                                  "kms-error");
                ErrorCode code = ErrorCode::Runtime;
                if (e->domain == GST_RESOURCE_ERROR &&
                    (e->code == GST_RESOURCE_ERROR_OPEN_WRITE ||
                     e->code == GST_RESOURCE_ERROR_WRITE ||
                     e->code == GST_RESOURCE_ERROR_NO_SPACE_LEFT))
                    code = ErrorCode::Io;
                else if (e->domain == GST_RESOURCE_ERROR &&
                         (e->code == GST_RESOURCE_ERROR_NOT_FOUND ||
                          e->code == GST_RESOURCE_ERROR_OPEN_READ))
                    code = ErrorCode::BadInput;
                else if (e->domain == GST_STREAM_ERROR &&
                         (e->code == GST_STREAM_ERROR_TYPE_NOT_FOUND ||
                          e->code == GST_STREAM_ERROR_DECODE ||
                          e->code == GST_STREAM_ERROR_WRONG_TYPE))
                    code = ErrorCode::BadInput;
                gst::GCharPtr src_name(gst_object_get_path_string(GST_MESSAGE_SRC(msg)));
                KMS_LOG(webrtc, ERROR, "%s: %s", src_name.get(), d ? d.get() : "");
                fail(code, describe_error(GST_MESSAGE_SRC(msg), e.get(), code));
                break;
            }
            case GST_MESSAGE_WARNING: {
                GError* err = nullptr;
                gchar* dbg = nullptr;
                gst_message_parse_warning(msg, &err, &dbg);
                gst::GErrorPtr e(err);
                gst::GCharPtr d(dbg);
                KMS_LOG(webrtc, WARNING, "%s (%s)", e->message, d ? d.get() : "");
                break;
            }
            case GST_MESSAGE_LATENCY:
                gst_bin_recalculate_latency(GST_BIN(pipeline.get()));
                break;
            default:
                break;
        }
    }

    // A pipeline error in words a user can act on: which of their inputs or outputs failed and
    // what to do, rather than GStreamer's element path.
    static bool inside(GstObject* src, GstElement* el) {
        return el && (src == GST_OBJECT(el) || gst_object_has_as_ancestor(src, GST_OBJECT(el)));
    }
    bool is_output(GstObject* src) const { return inside(src, file_sink) || inside(src, mux); }
    bool is_input(GstObject* src) {
        if (inside(src, input_src) || inside(src, input_parse)) return true;
        std::lock_guard lock(input_mutex);
        return std::any_of(input_bins.begin(), input_bins.end(),
                           [src](GstElement* b) { return inside(src, b); });
    }

    std::string describe_error(GstObject* src, const GError* e, ErrorCode code) {
        if (is_output(src)) {
            const std::string where =
                opt.output.kind == MediaUri::Kind::Stdio ? "stdout" : opt.output.location;
            return "-o " + opt.output.redacted() + ": cannot write " + where + ": " + e->message +
                   (opt.output.kind == MediaUri::Kind::Stdio ? " (did the reader of stdout exit?)"
                                                             : " (is the disk full?)");
        }
        if (is_input(src) && input_source >= 0)
            return "--send " + opt.send[static_cast<size_t>(input_source)].redacted() + ": " +
                   e->message +
                   (code == ErrorCode::BadInput ? "; is it a media file GStreamer can read?" : "");
        if (code == ErrorCode::BadInput)
            return std::string("the media received from the peer: ") + e->message;
        return std::string(e->message) + " (in " + GST_OBJECT_NAME(src) +
               "; GST_DEBUG=3 shows more)";
    }

    // RFC 3550 §6.6: leave the session with an RTCP BYE so the peer ends at once rather than
    // after --ice-timeout. rtpsession schedules the BYE when EOS reaches its send_rtp_sink; the
    // EOS from our sources does not get through webrtcbin 1.22 to there, so send it directly
    // (these pads join the others in send_eos_async()).
    void bye_pads(std::vector<gst::PadPtr>& out) {
        for_each_inside("rtpsession", [&out](GstElement* e) {
            if (GstPad* pad = gst_element_get_static_pad(e, "send_rtp_sink")) out.emplace_back(pad);
        });
    }

    void on_sink_eos() {
        if (eos_pending) --eos_pending;
        if (!stopping || eos_pending) return;
        // The file is complete; a clean stop still leaves the BYE its time on the wire.
        const double left =
            kByeGraceMs -
            std::chrono::duration<double, std::milli>(Clock::now() - stop_started).count();
        if (!pending_end.clean || left <= 0) return finish(pending_end);
        add_timer(static_cast<unsigned>(left), [](Impl& s) {
            s.finish(s.pending_end);
            return false;
        });
    }

    // Ends the call: an orderly goodbye when clean, and in every case the recording is
    // finalised before the end is reported (a failure loses nothing already recorded).
    void wind_down(const CallEnd& end) {
        if (ended) return;
        if (stopping) return;
        stopping = true;
        stop_started = Clock::now();
        {
            std::lock_guard lock(verify_mutex);
            gate_closed = true;
        }
        verify_cv.notify_all();
        pending_end = end;
        // A call stopped before the check above still says what never came, if it had time to.
        if (end.clean && verified &&
            Clock::now() - verified_at > std::chrono::duration<double>(kExpectTracksS / 2))
            check_expected_tracks(false);
        events.emit("stopping", Json{{"clean", end.clean}});
        if (end.clean && channel && data_open) gst_webrtc_data_channel_close(channel.get());
        // A track that was negotiated but never arrived must not keep the file open; then what
        // did arrive ends, and a clean stop says goodbye (only to a peer we ever reached).
        std::vector<gst::PadPtr> pads = close_unfed_mux_pads();
        {
            std::lock_guard lock(rx_mutex);
            for (GstElement* e : rx_entries)
                pads.emplace_back(gst_element_get_static_pad(e, "sink"));
        }
        // A failing side says goodbye too, so its peer ends at once rather than after
        // --ice-timeout; but never to a peer whose certificate did not check out.
        const bool bye = ice_connected_once && verified;
        std::vector<gst::PadPtr> bye_to;
        if (bye) bye_pads(bye_to);
        send_eos_async(std::move(pads));
        // The BYE's EOS is waited for (300 ms at most, so a blocked sender cannot hold the stop),
        // so that the grace below starts once rtpsession has it: sent and forgotten, it could
        // reach rtpsession after finish() had already torn the session down, and the peer then
        // learnt of our end only from ICE, seconds later.
        if (!bye_to.empty()) {
            auto done = std::make_shared<std::promise<void>>();
            std::future<void> sent = done->get_future();
            std::thread([keep = gst::ref(pipeline.get()), pads = std::move(bye_to), done] {
                for (auto& pad : pads) gst_pad_send_event(pad.get(), gst_event_new_eos());
                done->set_value();
            }).detach();
            sent.wait_for(std::chrono::milliseconds(300));
        }
        // Before the tracks are known no pad of the muxer exists, and nothing will ever reach it.
        {
            std::lock_guard lock(mux_mutex);
            if (mux && mux_pads.empty() && eos_pending) --eos_pending;
        }
        // The RTCP thread sends the BYE within tens of milliseconds; 500 ms leaves it room. A
        // muxer gets up to 2.5 s to write its index: a stop ends within 3 s whatever happens.
        const unsigned wait = eos_pending ? 2500 : bye ? kByeGraceMs : 0;
        add_timer(wait, [](Impl& s) {
            if (s.eos_pending)
                s.events.emit("warning",
                              Json{{"message", "the recording was not finalised in time"}});
            s.finish(s.pending_end);
            return false;
        });
    }

    // EOS into each pad from a thread of its own. A pad whose streaming thread is blocked (a
    // muxer waiting for a track that never came, a sender before ICE) holds its stream lock, and
    // gst_pad_send_event() would wait for it, with the main loop, signals and timers stuck behind.
    // When the pipeline goes to NULL, flushing frees any thread still waiting.
    void send_eos_async(std::vector<gst::PadPtr> pads) {
        for (auto& pad : pads) {
            if (!pad) continue;
            std::thread([keep = gst::ref(pipeline.get()), pad = std::move(pad)] {
                gst_pad_send_event(pad.get(), gst_event_new_eos());
            }).detach();
        }
    }

    // Muxer pads of negotiated tracks that never arrived: closed (the caller sends their EOS),
    // so the muxer writes what did arrive. Any thread.
    std::vector<gst::PadPtr> close_unfed_mux_pads() {
        std::vector<gst::PadPtr> out;
        std::lock_guard lock(mux_mutex);
        for (auto& [mline, pad] : mux_pads)
            if (!gst_pad_is_linked(pad.get()) && mux_closed.insert(mline).second)
                out.push_back(gst::ref(pad.get()));
        return out;
    }

    // After the first received track links into the muxer, the others get 2 s to arrive; the
    // rest are left out so the file does not wait for them (and the call does not stall).
    void arm_mux_deadline() {
        if (mux_deadline_armed) return;
        mux_deadline_armed = true;
        add_timer(2000, [](Impl& s) {
            std::vector<gst::PadPtr> pads = s.close_unfed_mux_pads();
            if (pads.empty()) return false;
            std::string kinds;
            {
                std::lock_guard lock(s.mux_mutex);
                for (const auto& t : s.tracks)
                    if (s.mux_closed.count(t.mline))
                        kinds += (kinds.empty() ? "" : " and ") + describe(t);
            }
            s.events.emit("warning", Json{{"message", "the peer sent no " + kinds +
                                                          " within 2 s; recording without it"}});
            KMS_LOG(webrtc, WARNING, "the peer sent no %s; recording without it", kinds.c_str());
            if (s.cb.warning) s.cb.warning("the peer sent no " + kinds + "; recording without it");
            s.send_eos_async(std::move(pads));
            return false;
        });
    }

    // The caller asked to stop; asking again while winding down stops at once.
    void stop_graceful() {
        // Only the caller's own second stop cuts the wind-down short; one that comes while the
        // peer's goodbye or the input's end winds the call down lets the muxer finish.
        if (stop_asked) return finish(pending_end);
        stop_asked = true;
        if (stopping) return;
        if (ice_connected_once) return wind_down(CallEnd{});
        // A call that never connected did not happen, however it was stopped: scripts must not
        // read success from it.
        const std::string why = remote_applied ? "stopped before ICE connected"
                                               : "stopped before the peer's description came";
        events.emit("error", Json{{"code", to_string(ErrorCode::Network)}, {"message", why}});
        wind_down(CallEnd{false, ErrorCode::Network, why});
    }
};

namespace {

// A container that cannot hold a codec is refused before the call, not when the first packet
// reaches the muxer: the codec lists are cut to what the file can hold (MP4: H.264 and Opus;
// WebM: VP8, VP9 and Opus; Matroska: all), and a list left empty is an output error.
void fit_codecs_to_container(WebRtcOptions& o) {
    if (o.output.kind != MediaUri::Kind::File) return;
    const std::string container = container_for_path(o.output.location);
    std::vector<std::string> video, audio;
    if (container == "mp4")
        video = {"h264"}, audio = {"opus"};
    else if (container == "webm")
        video = {"vp8", "vp9"}, audio = {"opus"};
    else
        return;
    auto cut = [&](std::vector<std::string>& list, const std::vector<std::string>& fit, bool wanted,
                   const char* kind) {
        std::vector<std::string> kept;
        for (const auto& c : list)
            if (std::find(fit.begin(), fit.end(), c) != fit.end()) kept.push_back(c);
        if (kept.empty() && wanted) {
            std::string fits;
            for (const auto& f : fit) fits += (fits.empty() ? "" : ", ") + f;
            throw Error(ErrorCode::Io, "-o " + o.output.location + ": a ." + container +
                                           " file holds " + kind + " in " + fits +
                                           " only; use .mkv, or --" + kind + "-codec " + fit[0]);
        }
        if (!kept.empty()) list = kept;
    };
    const bool recv = o.direction != MediaDirection::SendOnly;
    cut(o.video_codecs, video, o.video && recv, "video");
    cut(o.audio_codecs, audio, o.audio && recv, "audio");
}

}  // namespace

WebRtcEndpoint::WebRtcEndpoint(WebRtcOptions options, Callbacks callbacks, EventWriter& events) {
    init();
    if (options.send.empty()) options.send.push_back(parse_source_uri("test:av"));
    if (std::count_if(options.send.begin(), options.send.end(), [](const MediaUri& s) {
            return s.kind == MediaUri::Kind::File || s.kind == MediaUri::Kind::Stdio;
        }) > 1)
        throw Error(ErrorCode::InvalidArgument,
                    "--send takes one file or stdin at most; the others may be test:, v4l2:, "
                    "pulse: or alsa:");
    options.video_codecs = webrtc::check_codec_list(options.video_codecs, "video");
    options.audio_codecs = webrtc::check_codec_list(options.audio_codecs, "audio");
    if (!options.audio && !options.video && options.data_label.empty())
        throw Error(ErrorCode::InvalidArgument,
                    "--no-audio and --no-video leave nothing to do; add --data LABEL");
    if (options.max_bitrate_kbps && options.min_bitrate_kbps > options.max_bitrate_kbps)
        throw Error(ErrorCode::InvalidArgument, "--min-bitrate is above --max-bitrate");
    if (options.ice.port_min > options.ice.port_max)
        throw Error(ErrorCode::InvalidArgument, "--port-range LO-HI needs LO <= HI");
    fit_codecs_to_container(options);
    impl_ = std::make_shared<Impl>(std::move(options), std::move(callbacks), events);
    impl_->source_kinds.resize(impl_->opt.send.size());
    for (size_t i = 0; i < impl_->opt.send.size(); ++i) {
        const MediaUri& s = impl_->opt.send[i];
        if (s.kind != MediaUri::Kind::File) continue;
        const media::InputProbe probe = media::probe_input(s.location);
        impl_->source_kinds[i] = {probe.known, probe.video, probe.audio};
    }
    impl_->build();
}

WebRtcEndpoint::~WebRtcEndpoint() = default;

void WebRtcEndpoint::start() {
    impl_->start();
}

void WebRtcEndpoint::set_remote_description(const std::string& sdp) {
    impl_->set_remote(sdp);
}

bool WebRtcEndpoint::send_data(const std::string& message) {
    if (!impl_->channel || !impl_->data_open) return false;
    GError* err = nullptr;
    if (!gst_webrtc_data_channel_send_string_full(impl_->channel.get(), message.c_str(), &err)) {
        gst::GErrorPtr owned(err);
        const std::string why = err ? err->message : "the channel refused it";
        KMS_LOG(webrtc, WARNING, "data channel: %s", why.c_str());
        impl_->events.emit("warning", Json{{"message", "data channel: " + why}});
        return false;
    }
    impl_->dc_sent++;
    return true;
}

void WebRtcEndpoint::stop() {
    impl_->stop_graceful();
}

CallSummary WebRtcEndpoint::summary() const {
    CallSummary s;
    s.video_frames_decoded = impl_->frames_video;
    s.audio_frames_decoded = impl_->frames_audio;
    s.video_frames_sent = impl_->sent_video;
    s.audio_frames_sent = impl_->sent_audio;
    s.data_messages_sent = impl_->dc_sent;
    s.data_messages_received = impl_->dc_received;
    s.bytes_received = impl_->rx_bytes;
    s.packets_lost = impl_->packets_lost;
    s.video_target_kbps = impl_->video_bitrate_kbps;
    return s;
}

}  // namespace kms
