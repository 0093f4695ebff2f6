// WebRtcEndpoint::Impl: The call's graph: webrtcbin and its ICE options, the recording, the offer's
// transceivers, the data channel, the senders and a file or stdin input.
#include "webrtc/endpoint_impl.hpp"

#include <gst/rtp/rtp.h>

namespace kms {

GstElement* WebRtcEndpoint::Impl::parse_bin(const std::string& description) {
    GError* err = nullptr;
    GstElement* bin = gst_parse_bin_from_description(description.c_str(), TRUE, &err);
    if (!bin) gst::throw_gerror(err, ErrorCode::Runtime, "cannot build '" + description + "'");
    if (err) g_error_free(err);
    return bin;
}

void WebRtcEndpoint::Impl::build() {
    // dtlsdec makes the process's RSA-2048 DTLS certificate when the first one is created
    // (about 200 ms here). Make it now on another core, while we build and, for the answerer,
    // while the offer is on its way, rather than inside create-offer/answer.
    mark("runtimeReady");
    certificate_warmup = std::thread([this] {
        if (GstElement* e = gst_element_factory_make("dtlsdec", nullptr))
            gst_object_unref(gst_object_ref_sink(e));
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
    if (std::any_of(opt.send.begin(), opt.send.end(),
                    [](const MediaUri& s) { return s.kind == MediaUri::Kind::Test; }))
        needs.push_back({"videotestsrc", "gstreamer1.0-plugins-base"});
    require_elements(needs);
    mark("pluginsChecked");

    // Named after the program, as it shows in GST_DEBUG logs and dot files.
    const char* program = g_get_prgname();
    pipeline.reset(
        GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new(program ? program : "kms-webrtc"))));
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
    mark("pipelineBuilt");
    // webrtcbin refuses data channels while it is in the NULL state.
    if (opt.role == Role::Offerer && !opt.data_label.empty()) create_channel();
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

// The recording is a Sink (sink/): the same files kms-record writes. Its errors read
// "-o PATH: ...", as the option the user typed.
void WebRtcEndpoint::Impl::build_output() {
    if (opt.output.kind != MediaUri::Kind::File && opt.output.kind != MediaUri::Kind::Stdio) return;
    const std::string container = opt.output.kind == MediaUri::Kind::Stdio
                                      ? "matroska"
                                      : container_for_path(opt.output.location);
    if (container != "webm" && container != "mp4" && container != "matroska")
        throw Error(ErrorCode::InvalidArgument,
                    "-o " + opt.output.location +
                        ": unknown container; end the name in .webm, .mkv or .mp4");
    try {
        output = std::make_unique<Sink>(opt.output);
    } catch (const Error& e) {
        throw Error(e.code(), std::string("-o ") + e.what());
    }
    output_bin = output->core().bin.get();
    gst_bin_add(GST_BIN(pipeline.get()), output_bin);  // takes its own reference
    // Its file or stdout: the end of stream there means the file is complete.
    gst::ElementPtr out(gst_bin_get_by_name(GST_BIN(output_bin), "out"));
    if (out) watch_eos(out.get());
}

void WebRtcEndpoint::Impl::watch_eos(GstElement* sink) {
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
    if (cb.data_open) cb.data_open();
}

void WebRtcEndpoint::Impl::on_channel_close() {
    events.emit("data-channel", Json{{"state", "closed"}});
    if (!stopping && data_open) {
        // The peer closed the channel: an orderly end of the call.
        events.emit("remote-closed", Json{{"reason", "data channel closed by the peer"}});
        wind_down(CallEnd{});
    }
}

// Links a raw source for one kind to an encoder bin ending in the payloader, and that to
// webrtcbin's sink_<mline>.
void WebRtcEndpoint::Impl::link_sender(Track& t) {
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
            if (size_t p = enc.find(key); p != std::string::npos) enc.replace(p, key.size(), value);
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
    std::string tail = enc + " ! " + c.pay + " pt=" + std::to_string(t.pt) + " mtu=1200 name=pay";
    if (s.kind == MediaUri::Kind::File || s.kind == MediaUri::Kind::Stdio) {
        // The input's streams appear later, from one parsebin shared by both kinds.
        GstPad* sink =
            gst_element_request_pad_simple(webrtc, ("sink_" + std::to_string(t.mline)).c_str());
        if (!sink)
            throw Error(ErrorCode::Runtime, "webrtcbin gave no pad for the " + t.kind + " sender");
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
void WebRtcEndpoint::Impl::configure_payloader(GstElement* bin, const Track& t) {
    GstElement* pay = gst_bin_get_by_name(GST_BIN(bin), "pay");
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
    if (sent) sent_ssrcs.insert(ssrc);
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

// A file or stdin: a Source (source/), made and probed with the endpoint, held until
// start_input(). Each stream it finds goes to the track of its kind: untouched when it is
// already in the negotiated codec (passthrough), else decoded and encoded. clocksync paces it
// at real time, since nothing downstream of webrtcbin waits for the clock.
void WebRtcEndpoint::Impl::open_input() {
    if (input_opened || !input) return;
    input_opened = true;
    Element::Core& core = input->core();
    gst_bin_add(GST_BIN(pipeline.get()), core.bin.get());  // takes its own reference
    core.prepare();  // held: the file is not read before release()
    gst_element_sync_state_with_parent(core.bin.get());
    std::weak_ptr<Impl> weak = weak_from_this();
    core.when_all_exposed([weak] {
        if (auto self = weak.lock()) self->post([](Impl& i) { i.check_input_tracks(); });
    });
    core.listen([weak](GstPad* pad, const std::string&) {
        if (auto self = weak.lock()) self->on_input_pad(pad);
    });
    start_input();
}

// A file or stdin is held until the peer can decrypt what we send: a passthrough stream
// cannot make a new key frame, so its first one must not be sent into SRTP the peer has no
// keys for yet. The DTLS side that finishes first would otherwise start while the other side
// is still reading the last handshake flight. The proof is SRTP or SRTCP from the peer that
// decrypts here; a peer that sends neither is given 1.5 s after our own check.
void WebRtcEndpoint::Impl::start_input() {
    if (!input_opened || input_started || !verified || stopping) return;
    if (!peer_keyed && !input_grace_over) return;
    input_started = true;
    KMS_LOG(webrtc, INFO, "input starts: %s",
            peer_keyed ? "the peer's SRTP decrypts" : "grace over");
    input->release();
}

// Streaming thread.
void WebRtcEndpoint::Impl::on_input_pad(GstPad* pad) {
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
            // The Source gives each stream a queue of its own: one demuxer thread feeds both
            // kinds, and each clocksync holds its own kind back to real time.
            desc = passthrough ? std::string("clocksync ! ") + c.pay +
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
    if (target) {
        Json ev{{"kind", kind},
                {"caps", media},
                {"codec", target->codec->name},
                {"passthrough", passthrough}};
        post([ev](Impl& s) { s.events.emit("input", ev); });
    }
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

void WebRtcEndpoint::Impl::check_input_tracks() {
    for (const auto& t : tracks)
        if (t.webrtc_sink && !t.fed)
            events.emit("warning",
                        Json{{"message", "the input has no " + t.kind + " stream to send"}});
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
