// WebRtcEndpoint::Impl: The call's graph: webrtcbin and its ICE options, the offer's
// transceivers, the data channel, and the senders fed by what is connected in (EndpointCore).
#include "webrtc/endpoint_impl.hpp"

#include <cmath>
#include <cstring>

#include <gst/rtp/rtp.h>

#include "webrtc/dtls_cert.hpp"

namespace kms {

namespace {
constexpr guint64 kTsOffsetStepNs = 5 * GST_MSECOND;
}  // namespace

// webrtcbin 1.22 has no certificate option and no signal for a new transport, but each of its
// DTLS transports adds a dtlssrtpdec to it before any of the transport's elements starts: so
// before dtlssrtpenc takes the connection dtlsdec made (on its way to READY), and before
// create-offer/answer read the certificate for a=fingerprint. Given the PEM then, the whole
// transport uses it; one that has started already is left with dtlsdec's default, which
// put_fingerprint() then refuses.
void WebRtcEndpoint::Impl::give_certificate() {
    g_signal_connect_data(
        webrtc, "deep-element-added",
        G_CALLBACK(+[](GstBin*, GstBin*, GstElement* e, gpointer pem) {
            GstElementFactory* f = gst_element_get_factory(e);
            if (f && std::strcmp(GST_OBJECT_NAME(f), "dtlssrtpdec") == 0 &&
                GST_STATE(e) == GST_STATE_NULL)
                g_object_set(e, "pem", static_cast<std::string*>(pem)->c_str(), nullptr);
        }),
        new std::string(dtls_pem),
        [](gpointer d, GClosure*) {
            auto* pem = static_cast<std::string*>(d);
            OPENSSL_cleanse(pem->data(), pem->size());  // the private key
            delete pem;
        },
        GConnectFlags(0));
}

// A jitter buffer holds the first packet for its whole latency (100 ms) before it gives
// anything out; with faststart it starts as soon as a few packets arrived in sequence, so the
// first frame is shown that much sooner (scripts/bench/call_setup's firstRtp phase). Later
// packets keep the full latency. webrtcbin's rtpbin is named "rtpbin" and is made with it.
//
// And whether it asks for lost packets again (NACK): webrtcbin 1.22's own handler of this
// signal (on_rtpbin_new_jitterbuffer) sets do-retransmission once for every SSRC its bundle
// knows, not for this one, so the last m-line it lists wins: with audio (do-nack off) after
// video, video never asked for anything again. This handler runs after webrtcbin's (connected
// when it made rtpbin) and decides per SSRC: the peer's SSRCs on audio m-lines do not NACK,
// others do when a video m-line was agreed. Streaming thread: it reads only what
// set_remote() wrote under ssrc_mutex before any media could come.
void WebRtcEndpoint::Impl::tune_jitter_buffers() {
    GstElement* rtpbin = gst_bin_get_by_name(GST_BIN(webrtc), "rtpbin");
    if (!rtpbin) return;
    // Lip sync moves a stream's times once the peer's first sender report says how its
    // streams line up (after DTLS, a second or two in), by up to 400 ms at once: a recording's
    // audio then stepped back in time, which players and ffmpeg take badly ("non monotonically
    // increasing dts"). Moved at most this much a frame, the times only ever go forward (a
    // frame lasts 10 ms or more) and the streams line up within a few seconds.
    g_object_set(rtpbin, "max-ts-offset-adjustment", guint64(kTsOffsetStepNs), nullptr);
    struct Ctx {
        std::weak_ptr<Impl> self;
    };
    g_signal_connect_data(
        rtpbin, "new-jitterbuffer",
        G_CALLBACK(+[](GstElement*, GstElement* jb, guint, guint ssrc, gpointer d) {
            if (g_object_class_find_property(G_OBJECT_GET_CLASS(jb), "faststart-min-packets"))
                g_object_set(jb, "faststart-min-packets", kFaststartPackets, nullptr);
            auto self = static_cast<Ctx*>(d)->self.lock();
            if (!self) return;
            bool nack = false;
            {
                std::lock_guard lock(self->ssrc_mutex);
                nack = self->rx_nack_video && !self->rx_audio_ssrcs.count(ssrc);
            }
            g_object_set(jb, "do-retransmission", nack, nullptr);
        }),
        new Ctx{weak_from_this()}, [](gpointer d, GClosure*) { delete static_cast<Ctx*>(d); },
        GConnectFlags(0));
    gst_object_unref(rtpbin);
}

void WebRtcEndpoint::Impl::build() {
    // Our own DTLS certificate, given to each transport as webrtcbin makes it (give_certificate).
    // The first dtlsdec still makes a default one, which no transport of ours uses: made cheap
    // (dtls_cert.hpp), on another core, before webrtcbin's first dtlsdec would wait for it.
    mark("runtimeReady");
    dtls_pem = webrtc::make_certificate(opt.dtls_key == DtlsKey::Rsa ? webrtc::CertKey::Rsa
                                                                     : webrtc::CertKey::Ecdsa);
    certificate_warmup = std::thread([this] {
        webrtc::create_unused_default_certificate();
        mark("certificateReady");  // joined in ~Impl: this outlives the thread
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
    require_elements(needs);
    mark("pluginsChecked");

    webrtc = make("webrtcbin", "webrtc");
    gst_bin_add(GST_BIN(bin.get()), webrtc);
    g_object_set(webrtc, "bundle-policy", GST_WEBRTC_BUNDLE_POLICY_MAX_BUNDLE, "latency", 100u,
                 nullptr);
    name_the_stream();
    tune_jitter_buffers();
    give_certificate();
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
            // libnice's check pacing (Ta, 20 ms) is kept. 5 ms took ICE on loopback from 75 to
            // 30 ms, but RFC 8445 §14.2 allows a Ta other than its default (50 ms) only when
            // announced with a=ice-pacing and agreed, and NATs limit how fast they make bindings.
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
}

// One RTCP CNAME for the call (RFC 7022: random per session), which is also the a=msid stream
// id of every track: webrtcbin writes the CNAME where a sink pad has no msid of its own, and
// rtpbin's default, user<N>@host-<hex>, holds an '@' that an msid-id may not (RFC 8830).
void WebRtcEndpoint::Impl::name_the_stream() {
    char id[24];
    std::snprintf(id, sizeof id, "kms-%08x%08x", g_random_int(), g_random_int());
    stream_id = id;
    gst::ElementPtr rtpbin(gst_bin_get_by_name(GST_BIN(webrtc), "rtpbin"));
    if (!rtpbin) return;
    GstStructure* sdes = nullptr;
    g_object_get(rtpbin.get(), "sdes", &sdes, nullptr);
    gst::StructurePtr owned(sdes ? sdes : gst_structure_new_empty("application/x-rtp-source-sdes"));
    gst_structure_set(owned.get(), "cname", G_TYPE_STRING, id, nullptr);
    g_object_set(rtpbin.get(), "sdes", owned.get(), nullptr);
}

// Without fmtp for an answer's preferences: create-answer keeps the offer's fmtp, and an
// H.264 profile-level-id of ours would not fit what the encoder makes (the payloader's caps
// must intersect the preferences).
GstCaps* WebRtcEndpoint::Impl::codec_caps(const CodecInfo& c, int pt, bool fmtp) {
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
void WebRtcEndpoint::Impl::add_offer_transceivers() {
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

void WebRtcEndpoint::Impl::create_channel() {
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
void WebRtcEndpoint::Impl::hook_channel(GstWebRTCDataChannel* ch) {
    connect(ch, "on-open", G_CALLBACK(+[](GstWebRTCDataChannel*, gpointer d) {
                if (auto self = from(d)) self->post([](Impl& s) { s.on_channel_open(); });
            }));
    connect(ch, "on-close", G_CALLBACK(+[](GstWebRTCDataChannel*, gpointer d) {
                if (auto self = from(d)) self->post([](Impl& s) { s.on_channel_close(); });
            }));
    connect(ch, "on-message-string", G_CALLBACK(+[](GstWebRTCDataChannel*, gchar* str, gpointer d) {
                if (auto self = from(d)) {
                    std::string msg = str ? str : "";
                    self->dc_received++;
                    self->post([msg](Impl& s) {
                        if (s.cb.data_message) s.cb.data_message(msg);
                    });
                }
            }));
}

void WebRtcEndpoint::Impl::adopt_channel(gst::ObjectPtr<GstWebRTCDataChannel> ch) {
    if (channel) return;  // one channel per call
    channel = std::move(ch);
    GstWebRTCDataChannelState state{};
    g_object_get(channel.get(), "ready-state", &state, nullptr);
    if (state == GST_WEBRTC_DATA_CHANNEL_STATE_OPEN) on_channel_open();
}

void WebRtcEndpoint::Impl::on_channel_open() {
    if (data_open || !channel) return;  // adopt_channel() opens it when it comes first
    data_open = true;
    gchar* label = nullptr;
    g_object_get(channel.get(), "label", &label, nullptr);
    gst::GCharPtr owned(label);
    events.emit("data-channel", Json{{"label", label ? label : ""}, {"state", "open"}});
    if (cb.data_open) cb.data_open(label ? label : "");
}

void WebRtcEndpoint::Impl::on_channel_close() {
    events.emit("data-channel", Json{{"state", "closed"}});
    if (!stopping && data_open) {
        // The peer closed the channel: an orderly end of the call.
        events.emit("remote-closed", Json{{"reason", "data channel closed by the peer"}});
        wind_down(CallEnd{});
    }
}

// The caps that hold a picture of CAPS to the pixels of a 16:9 picture of LINES lines, its
// shape kept and both sides even (4:2:0): 4:3 VGA under 180 lines is 276x206, a portrait
// 1080x1920 is 180x320 or so. Empty when the picture is small enough, or its size is not known yet
// (then at most LINES high).
std::string WebRtcEndpoint::Impl::scaled_caps(GstCaps* caps, unsigned lines, Json& said) {
    int w = 0, h = 0, par_n = 1, par_d = 1;
    const GstStructure* st =
        caps && gst_caps_get_size(caps) ? gst_caps_get_structure(caps, 0) : nullptr;
    if (!st || !gst_structure_get_int(st, "width", &w) ||
        !gst_structure_get_int(st, "height", &h) || w <= 0 || h <= 0) {
        said["maxHeight"] = lines;
        return "video/x-raw,pixel-aspect-ratio=1/1,height=[1," + std::to_string(lines) + "] ! ";
    }
    gst_structure_get_fraction(st, "pixel-aspect-ratio", &par_n, &par_d);
    const double shown_w = double(w) * (par_n > 0 && par_d > 0 ? double(par_n) / par_d : 1.0);
    const double budget = double(lines) * lines * 16 / 9;
    if (shown_w * h <= budget) return "";
    const double k = std::sqrt(budget / (shown_w * h));
    auto even = [](double v) { return std::max(2, static_cast<int>(v / 2) * 2); };
    const int out_w = even(shown_w * k), out_h = even(h * k);
    said["width"] = out_w;
    said["height"] = out_h;
    return "video/x-raw,pixel-aspect-ratio=1/1,width=" + std::to_string(out_w) +
           ",height=" + std::to_string(out_h) + " ! ";
}

// The most lines of 16:9 video worth encoding under the call's cap (--max-bitrate, the peer's
// b=AS): libwebrtc's default VP8 bitrate limits per frame size (320x180 below 300 kbit/s,
// 480x270 below 500, 640x360 below 800, 960x540 below 1500, 1280x720 below 2500). At 150
// kbit/s a VGA picture made every frame so large that the encoder kept to the cap by sending 5
// frames a second, and its key frames still overshot a cap of 100 by 15 %. 0: no cap, or one
// high enough for anything.
unsigned WebRtcEndpoint::Impl::max_video_lines() const {
    unsigned cap = opt.max_bitrate_kbps;
    if (remote_video_limit_kbps && (!cap || remote_video_limit_kbps < cap))
        cap = remote_video_limit_kbps;
    if (!cap) return 0;
    static constexpr std::pair<unsigned, unsigned> kLimits[] = {
        {300, 180}, {500, 270}, {800, 360}, {1500, 540}, {2500, 720}};
    for (const auto& [below_kbps, lines] : kLimits)
        if (cap < below_kbps) return lines;
    return 0;
}

// The encoder of a track, at the bitrate the call starts with (video).
std::string WebRtcEndpoint::Impl::encoder_for(const Track& t) {
    std::string enc = t.codec->encode;
    if (t.kind != "video") return enc;
    unsigned kbps = opt.start_bitrate_kbps ? opt.start_bitrate_kbps : 1000;
    if (opt.max_bitrate_kbps) kbps = std::min(kbps, opt.max_bitrate_kbps);
    if (remote_video_limit_kbps) kbps = std::min(kbps, remote_video_limit_kbps);
    kbps = std::max(kbps, opt.min_bitrate_kbps);
    video_bitrate_kbps = kbps;
    auto replace = [&](const std::string& key, const std::string& value) {
        if (size_t p = enc.find(key); p != std::string::npos) enc.replace(p, key.size(), value);
    };
    replace("{bps}", std::to_string(kbps * 1000));
    replace("{kbps}", std::to_string(kbps));
    return enc;
}

// webrtcbin's sink_<mline> for a track we send on; its feed is linked to it by link_feeds(),
// now or when the stream comes.
void WebRtcEndpoint::Impl::link_sender(Track& t) {
    GstPad* sink =
        gst_element_request_pad_simple(webrtc, ("sink_" + std::to_string(t.mline)).c_str());
    if (!sink)
        throw Error(ErrorCode::Runtime, "webrtcbin gave no pad for the " + t.kind + " sender");
    t.webrtc_sink = std::shared_ptr<GstPad>(sink, gst_object_unref);
    t.transceiver = pad_transceiver(sink);
    // webrtcbin ties a sink pad to its transceiver when the signalling state becomes stable
    // only if the pad has caps by then; a held file's stream comes later (after the DTLS
    // check), so give the pad the negotiated caps now. Without them an answerer's pad stays
    // blocked for the whole call.
    gst_pad_send_event(sink, gst_event_new_stream_start(("kms-send-" + t.kind).c_str()));
    gst_pad_send_event(sink, gst_event_new_caps(gst::CapsPtr(codec_caps(*t.codec, t.pt)).get()));
}

// The transceiver webrtcbin ties a sink_N pad to (it makes one when N has none yet).
std::shared_ptr<GstWebRTCRTPTransceiver> WebRtcEndpoint::Impl::pad_transceiver(GstPad* pad) {
    GstWebRTCRTPTransceiver* trans = nullptr;
    if (g_object_class_find_property(G_OBJECT_GET_CLASS(pad), "transceiver"))
        g_object_get(pad, "transceiver", &trans, nullptr);
    return adopt(trans);
}

std::shared_ptr<GstWebRTCRTPTransceiver> WebRtcEndpoint::Impl::adopt(
    GstWebRTCRTPTransceiver* trans) {
    if (!trans) return nullptr;
    return {trans, [](GstWebRTCRTPTransceiver* t) { gst_object_unref(t); }};
}

// Our SSRC (announced in a=ssrc) and the header extensions agreed for the m-line.
void WebRtcEndpoint::Impl::configure_payloader(GstElement* chain, const Track& t) {
    GstElement* pay = gst_bin_get_by_name(GST_BIN(chain), "pay");
    if (!pay) return;
    gst::ElementPtr owned(pay);
    if (t.ssrc) g_object_set(pay, "ssrc", t.ssrc, nullptr);
    if (!webrtc::add_extensions(pay, t.ext, t.mid))
        KMS_LOG(webrtc, WARNING, "this GStreamer lacks the MID or TWCC header extension");
    gst::PadPtr src(gst_element_get_static_pad(pay, "src"));
    webrtc::hide_mid_from_caps_queries(src.get());
}

void WebRtcEndpoint::Impl::count_sent(GstPad* pad, const Track& t) {
    learn_ssrc_on(pad, t.kind == "video" ? "video" : "audio", true);
    count_frames(pad, t, false);
    count_rtp_out(pad, t);
}

// The RTP packets and payload bytes of a track on their way into webrtcbin: what outbound-rtp
// reports as sent. The RTP session's own counters start over when its source is replaced early
// in a call, and then fall short of what the peer counts.
void WebRtcEndpoint::Impl::count_rtp_out(GstPad* pad, const Track& t) {
    auto* n = new std::shared_ptr<TrackCounts>(t.n);
    gst_pad_add_probe(
        pad, kBuffers,
        [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
            TrackCounts& c = **static_cast<std::shared_ptr<TrackCounts>*>(d);
            auto add = [&c](GstBuffer* buf) {
                GstRTPBuffer rtp = GST_RTP_BUFFER_INIT;
                if (!gst_rtp_buffer_map(buf, GST_MAP_READ, &rtp)) return;
                c.rtp_out += 1;
                c.payload_out += gst_rtp_buffer_get_payload_len(&rtp);
                gst_rtp_buffer_unmap(&rtp);
            };
            if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST) {
                GstBufferList* list = GST_PAD_PROBE_INFO_BUFFER_LIST(info);
                for (guint i = 0; i < gst_buffer_list_length(list); ++i)
                    add(gst_buffer_list_get(list, i));
            } else {
                add(GST_PAD_PROBE_INFO_BUFFER(info));
            }
            return GST_PAD_PROBE_OK;
        },
        n, [](gpointer d) { delete static_cast<std::shared_ptr<TrackCounts>*>(d); });
}

// Counts a track's frames through a pad: decoded ones after its decoder (in), or RTP video
// frames (the marker bit ends one, RFC 7741 §4.1) and audio packets on their way out.
void WebRtcEndpoint::Impl::count_frames(GstPad* pad, const Track& t, bool in) {
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

void WebRtcEndpoint::Impl::learn_ssrc(GstBuffer* buf, const char* kind, bool sent) {
    const guint32 ssrc = webrtc::read_ssrc(buf);
    if (!ssrc) return;
    std::lock_guard lock(ssrc_mutex);
    ssrc_kind.emplace(ssrc, kind);
    if (!sent) return;
    sent_ssrcs.insert(ssrc);
    reports.watch(ssrc);
}

// Learns the SSRC of the first RTP packet through the pad, then removes itself.
void WebRtcEndpoint::Impl::learn_ssrc_on(GstPad* pad, const char* kind, bool sent) {
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

// The peer can decrypt what we send: a held source (a file, stdin) may start. A passthrough
// stream cannot make a new key frame, so its first one must not be sent into SRTP the peer
// has no keys for yet. The DTLS side that finishes first would otherwise start while the other
// side is still reading the last handshake flight. The proof is SRTP or SRTCP from the peer
// that decrypts here; a peer that sends neither is given 1.5 s after our own check.
void WebRtcEndpoint::Impl::start_input() {
    if (input_started || !verified || stopping) return;
    if (!peer_keyed && !input_grace_over) return;
    input_started = true;
    KMS_LOG(webrtc, INFO, "sending may start: %s",
            peer_keyed ? "the peer's SRTP decrypts" : "grace over");
    if (cb.ready_to_send) cb.ready_to_send();
}

// Each feed goes to the track its source and kind were given: untouched when it is already in
// the negotiated codec (passthrough), else decoded (unless raw) and encoded. Main thread.
void WebRtcEndpoint::Impl::link_feeds() {
    std::vector<std::shared_ptr<Feed>> waiting;
    {
        std::lock_guard lock(feeds_mutex);
        for (auto& f : feeds)
            if (!f->taken) waiting.push_back(f);
    }
    for (auto& f : waiting) {
        for (auto& t : tracks)
            if (t.source == f->slot && t.kind == f->kind && t.codec && t.send && t.webrtc_sink &&
                !t.fed) {
                f->taken = t.fed = true;
                try {
                    link_feed(*f, t);
                } catch (const Error& e) {
                    return fail(e.code(), e.what());
                }
                break;
            }
        // A stream no m-line sends (a file's second video, a kind the peer refused) is dropped
        // rather than held, so that it does not stall the source's other streams.
        if (!f->taken && senders_ready) {
            f->taken = true;
            drop_until_linked(f);
        }
    }
}

void WebRtcEndpoint::Impl::link_feed(Feed& f, Track& t) {
    const CodecInfo& c = *t.codec;
    const bool video = t.kind == "video";
    const bool raw = f.media == "video/x-raw" || f.media == "audio/x-raw";
    // --max-bitrate needs an encoder to hold it, so it turns passthrough off.
    const bool passthrough = f.media == c.media_type && !(video && opt.max_bitrate_kbps);
    const std::string pay =
        c.pay + std::string(" pt=") + std::to_string(t.pt) + " mtu=1200 name=pay";
    const unsigned lines = video ? max_video_lines() : 0;
    Json scaled = Json::object();  // what the input event says of it
    const std::string scale = lines ? scaled_caps(f.caps.get(), lines, scaled) : std::string();
    const std::string convert =
        // Counted in buffers: a time limit misreads a late-joining source (see the receive
        // queues in endpoint_receive.cpp). Ten audio buffers are 100-200 ms.
        video ? "videoconvert ! videoscale ! " + scale +
                    "queue max-size-buffers=2 max-size-bytes=0 max-size-time=0 leaky=downstream ! "
              : "audioconvert ! queue max-size-buffers=10 max-size-bytes=0 max-size-time=0 "
                "leaky=downstream ! ";
    std::string desc = pay;
    if (!passthrough)
        desc = (raw ? std::string() : decoder_for(f.caps.get(), f.media) + " ! ") + convert +
               encoder_for(t) + " ! " + pay;
    GstElement* chain = make_bin(desc);
    configure_payloader(chain, t);
    gst_bin_add(GST_BIN(bin.get()), chain);
    if (!passthrough) {
        t.encoder = gst_bin_get_by_name(GST_BIN(chain), video ? "venc" : "aenc");
        if (t.encoder) gst_object_unref(t.encoder);  // borrowed; the chain owns it
    }
    gst::PadPtr out(gst_element_get_static_pad(chain, "src"));
    if (GstPadLinkReturn r = gst_pad_link(out.get(), t.webrtc_sink.get()); r != GST_PAD_LINK_OK)
        throw Error(ErrorCode::Runtime, "cannot link the " + t.kind + " sender to webrtcbin (" +
                                            gst_pad_link_get_name(r) + ")");
    count_sent(out.get(), t);
    feed_chains.push_back(chain);
    bool finite = false;
    {
        std::lock_guard lock(feeds_mutex);
        finite = slots.at(static_cast<size_t>(f.slot)).finite;
    }
    if (finite) watch_input_eos(out.get());
    gst_element_sync_state_with_parent(chain);
    gst::PadPtr in(gst_element_get_static_pad(chain, "sink"));
    gst::PadPtr entry(gst_element_get_static_pad(f.entry, "src"));
    if (GstPadLinkReturn r = gst_pad_link(entry.get(), in.get()); r != GST_PAD_LINK_OK)
        throw Error(ErrorCode::BadInput,
                    "cannot send the " + f.media + " stream (" + gst_pad_link_get_name(r) + ")");
    f.linked = true;
    if (f.block) {
        gst::PadPtr sink(gst_element_get_static_pad(f.entry, "sink"));
        gst_pad_remove_probe(sink.get(), f.block);
        f.block = 0;
    }
    Json input{
        {"kind", t.kind}, {"caps", f.media}, {"codec", c.name}, {"passthrough", passthrough}};
    if (!scale.empty() && !passthrough) input["scaledTo"] = scaled;
    events.emit("input", input);
}

// A source that has shown every stream it has, and fed none of an m-line made for it (stdin is
// offered both kinds before it is read): the peer should not wait for it.
void WebRtcEndpoint::Impl::check_feeds(int slot) {
    if (!senders_ready || stopping) return;
    for (const auto& t : tracks)
        if (t.source == slot && t.send && t.codec && !t.fed)
            events.emit("warning",
                        Json{{"message", "the input has no " + t.kind + " stream to send"}});
}

// When every stream of a file has ended, the call has nothing more to send: end it cleanly.
void WebRtcEndpoint::Impl::watch_input_eos(GstPad* pad) {
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

// ---- receiving -----------------------------------------------------------------------------

// Runs on a streaming thread: webrtcbin pushes into the pad as soon as this returns, so the
// branch must be linked here, not later on the main loop (an unlinked pad errors out).
void WebRtcEndpoint::Impl::on_pad_added(GstPad* pad) {
    if (GST_PAD_DIRECTION(pad) != GST_PAD_SRC) return;
    try {
        link_receiver(pad);
    } catch (const Error& e) {
        ErrorCode code = e.code();
        std::string msg = e.what();
        post([code, msg](Impl& s) { s.fail(code, msg); });
    }
}

}  // namespace kms
