// WebRtcEndpoint::Impl: Received streams: each filed under its m-line (MID, then a=ssrc, then
// payload type), decoded and counted, and given downstream as a stream of its own.
#include "webrtc/endpoint_impl.hpp"

namespace kms {

namespace {
constexpr guint kEntryQueueBytes = 8u << 20;     // received RTP, before the depayloader
constexpr guint kExposedQueueBytes = 16u << 20;  // received frames, before the muxer
}  // namespace

void WebRtcEndpoint::Impl::link_receiver(GstPad* pad) {
    gst::CapsPtr caps(gst_pad_get_current_caps(pad));
    if (!caps) caps.reset(gst_pad_query_caps(pad, nullptr));
    const GstStructure* st = gst_caps_get_structure(caps.get(), 0);
    const char* enc = gst_structure_get_string(st, "encoding-name");
    const CodecInfo* c = enc ? webrtc::find_codec(enc) : nullptr;
    int pt = -1;
    gst_structure_get_int(st, "payload", &pt);
    const char* filed_by = nullptr;
    Track* t = c ? track_for(received_ssrc(pad), c->kind, pt, filed_by) : nullptr;
    if (!t) {
        // Not a codec we speak, or an m-line we did not agree to receive: drop it, unseen.
        // Linked all the same: an unlinked pad would stop the whole session.
        KMS_LOG(webrtc, INFO,
                "dropping a stream the negotiation does not let us receive: %" GST_PTR_FORMAT,
                static_cast<void*>(caps.get()));
        GstElement* sink = make_bin("fakesink sync=false async=false");
        gst_bin_add(GST_BIN(bin.get()), sink);
        gst_element_sync_state_with_parent(sink);
        gst::PadPtr ssink(gst_element_get_static_pad(sink, "sink"));
        gst_pad_link(pad, ssink.get());
        return;
    }
    const bool video = std::string_view(c->kind) == "video";
    // Leaky: a slow branch, or one still gated, drops its oldest packets rather than making
    // webrtcbin's thread wait. Sized in bytes, never in time: until its first buffer has left, a
    // queue measures its time level from the start of the segment, so a stream that begins
    // seconds into the pipeline's life (a peer that starts late) looks like a full queue, and
    // the first key frame's packets, arriving back to back, were dropped. 8 MiB is seconds of
    // video at any rate a call carries: room for the gate and a key frame interval.
    GstElement* entry = make("queue");
    g_object_set(entry, "max-size-buffers", 0u, "max-size-bytes", kEntryQueueBytes, "max-size-time",
                 guint64(0), "leaky", 2 /* downstream */, nullptr);
    GstElement* depay = make(c->depay);
    if (video) ask_for_key_frames(depay);
    GstElement* tee = make("tee");
    g_object_set(tee, "allow-not-linked", TRUE, nullptr);
    gst_bin_add_many(GST_BIN(bin.get()), entry, depay, tee, nullptr);
    gst_element_link_many(entry, depay, tee, nullptr);

    // Decoding branch: frames are counted after the decoder (framesDecoded), then dropped.
    GstElement* decode = make_bin(std::string("queue ! ") + c->decode +
                                  " name=dec ! fakesink sync=false async=false name=sink");
    gst_bin_add(GST_BIN(bin.get()), decode);
    link_tee(tee, decode);
    GstElement* dec = gst_bin_get_by_name(GST_BIN(decode), "dec");
    if (dec) {
        gst::PadPtr dsrc(gst_element_get_static_pad(dec, "src"));
        count_frames(dsrc.get(), *t, true);
        gst_object_unref(dec);
    }
    // What arrived, untouched (passthrough), downstream: a stream of its own per m-line, so a
    // camera and a screen become two video tracks of a recording.
    const std::string what = describe(*t);
    expose_received(*t, *c, tee);
    gst_element_sync_state_with_parent(decode);
    gst_element_sync_state_with_parent(tee);
    gst_element_sync_state_with_parent(depay);
    gst_element_sync_state_with_parent(entry);

    gst::PadPtr entry_sink(gst_element_get_static_pad(entry, "sink"));
    gst::PadPtr entry_src(gst_element_get_static_pad(entry, "src"));
    // Counted per packet with an atomic, not the timing mutex and a string. Not dropped while
    // unverified: GStreamer calls every probe of a pad before a blocking one waits, so a drop
    // here would throw away what the gate below is there to hold (the first key frame of a
    // passthrough sender, when the peer starts before our check has run). Dropped once the
    // call is closing.
    probe(entry_src.get(), GST_PAD_PROBE_TYPE_BUFFER,
          [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
              auto self = from(d);
              if (!self || self->gate_closed) return GST_PAD_PROBE_DROP;
              if (!self->first_rtp_seen.exchange(true)) self->mark("firstRtp");
              self->rx_bytes += gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info));
              self->last_media_us = g_get_monotonic_time();
              return GST_PAD_PROBE_OK;
          });
    learn_ssrc_on(entry_sink.get(), c->kind);
    // Only where the peer takes PLI: a peer that offered "ccm fir" alone still gets its FIR.
    gboolean pli = FALSE;
    if (video && gst_structure_get_boolean(st, "rtcp-fb-nack-pli", &pli) && pli)
        picture_loss_as_pli(entry_src.get());
    {
        // Until the peer's certificate matches its fingerprint, nothing received is used.
        // What arrives before our check waits in the entry queue, behind a blocked pad (no
        // thread of ours waits): it may be the only key frame a passthrough sender has.
        // open_gates() unblocks it once the check passes.
        std::lock_guard lock(rx_mutex);
        RxEntry e{entry, gst::ref(entry_src.get()), 0, video};
        if (!verified)
            e.block = gst_pad_add_probe(
                entry_src.get(),
                static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BLOCK |
                                             GST_PAD_PROBE_TYPE_DATA_DOWNSTREAM),
                [](GstPad*, GstPadProbeInfo*, gpointer) { return GST_PAD_PROBE_OK; }, nullptr,
                nullptr);
        rx_entries.push_back(std::move(e));
    }
    if (gst_pad_link(pad, entry_sink.get()) != GST_PAD_LINK_OK)
        throw Error(ErrorCode::Runtime, "cannot link the received " + what);
    // filedBy: how the stream found its m-line (RFC 8843 §9.2 order: mid, ssrc, payload-type).
    Json ev{{"direction", "in"}, {"kind", c->kind}, {"codec", c->name}, {"filedBy", filed_by}};
    if (!t->mid.empty()) ev["mid"] = t->mid;
    // Events are written on the main context, so they come out in order.
    post([ev](Impl& s) { s.events.emit("track", ev); });
}

// Video that lost what NACK could not bring back (a burst, a blackout, a queue that overflowed)
// cannot be decoded until the next key frame, which a sender may not make for seconds. As a
// browser does, the depayloader then gives out nothing until a key frame (no broken frames to
// the decoder or into a recording) and asks for one at once: its upstream force-key-unit event
// becomes a PLI from rtpsession (picture_loss_as_pli()).
void WebRtcEndpoint::Impl::ask_for_key_frames(GstElement* depay) {
    GObjectClass* k = G_OBJECT_GET_CLASS(depay);
    if (g_object_class_find_property(k, "request-keyframe"))
        g_object_set(depay, "request-keyframe", TRUE, nullptr);
    if (g_object_class_find_property(k, "wait-for-keyframe"))
        g_object_set(depay, "wait-for-keyframe", TRUE, nullptr);
}

// The depayloader asks for a key frame with all-headers set, which rtpsession sends as a FIR
// when the peer offered "ccm fir" (and as nothing when it offered neither). RFC 5104 §4.3.1.2 keeps
// FIR for a decoder that joins late and asks for PLI on loss, as browsers send; the sender's
// rtpsession counts PLIs per stream (pliCount), FIRs not at all. So on the way up, the request is a
// PLI.
void WebRtcEndpoint::Impl::picture_loss_as_pli(GstPad* pad) {
    gst_pad_add_probe(
        pad, GST_PAD_PROBE_TYPE_EVENT_UPSTREAM,
        [](GstPad*, GstPadProbeInfo* info, gpointer) -> GstPadProbeReturn {
            GstEvent* e = GST_PAD_PROBE_INFO_EVENT(info);
            gboolean all_headers = FALSE;
            guint count = 0;
            if (!gst_video_event_is_force_key_unit(e) ||
                !gst_video_event_parse_upstream_force_key_unit(e, nullptr, &all_headers, &count) ||
                !all_headers)
                return GST_PAD_PROBE_OK;
            GST_PAD_PROBE_INFO_DATA(info) =
                gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, FALSE, count);
            gst_event_unref(e);
            return GST_PAD_PROBE_OK;
        },
        nullptr, nullptr);
}

std::string WebRtcEndpoint::Impl::describe(const Track& t) {
    return t.kind + (t.mid.empty() ? "" : " (mid " + t.mid + ")");
}

// The SSRC of a webrtcbin src pad: its target is rtpbin's recv_rtp_src_SESSION_SSRC_PT.
guint32 WebRtcEndpoint::Impl::received_ssrc(GstPad* pad) {
    if (!GST_IS_GHOST_PAD(pad)) return 0;
    gst::PadPtr target(gst_ghost_pad_get_target(GST_GHOST_PAD(pad)));
    if (!target) return 0;
    guint session = 0, ssrc = 0, pt = 0;
    if (std::sscanf(GST_OBJECT_NAME(target.get()), "recv_rtp_src_%u_%u_%u", &session, &ssrc, &pt) !=
        3)
        return 0;
    return ssrc;
}

// Which of our m-lines a received stream belongs to (RFC 8843 §9.2): the MID its packets
// carry, else the m-line whose a=ssrc announced it, else its payload type. Not webrtcbin's
// own filing: 1.22 reads neither the MID extension nor, without a=ssrc, anything but the
// first m-line of a bundle. nullptr when it is no m-line we receive on. Streaming thread;
// tracks do not change once negotiated.
auto WebRtcEndpoint::Impl::track_for(guint32 ssrc, const std::string& kind, int pt,
                                     const char*& filed_by) -> Track* {
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
    filed_by = "mid";
    if (!mid.empty())
        for (auto& t : tracks)
            if (t.mid == mid) return claim(t);
    filed_by = "ssrc";
    if (auto it = announced_rx.find(ssrc); ssrc && it != announced_rx.end())
        for (auto& t : tracks)
            if (t.mline == it->second) return claim(t);
    filed_by = "payload-type";
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

// The first stream of an m-line goes downstream, parsed as a muxer takes it (RTP carries
// presentation times only: h264timestamper works out an H.264 stream's decoding times from its
// SPS, which MP4 needs). Streaming thread: the Pipeline links it at once.
void WebRtcEndpoint::Impl::expose_received(Track& t, const CodecInfo& c, GstElement* tee) {
    const std::string what = describe(t);
    {
        std::lock_guard lock(expose_mutex);
        if (!core->listened()) return;  // nothing downstream: decoded and counted only
        if (t.given) {
            // A second SSRC on one m-line (the peer restarted its sender): decoded and
            // counted; downstream keeps the first.
            KMS_LOG(webrtc, WARNING, "a second stream of %s is not passed on", what.c_str());
            return;
        }
        if (core->all_exposed() || give_all_asked) {
            KMS_LOG(webrtc, WARNING, "%s arrived after the recording left it out", what.c_str());
            return;
        }
        t.given = true;
        ++exposing;
    }
    std::string parse = *c.mux_parse ? std::string(c.mux_parse) + " ! " : "";
    if (std::string_view(c.name) == "h264") parse += "h264timestamper ! ";
    // A queue with room for seconds of media: other tracks get 2 s to arrive before the muxer
    // starts without them, and a muxer that stalls drops old data rather than stalling the
    // call. In bytes, as the entry queue and for its reason: a muxer waiting for the other
    // track holds the first frame, which a time limit then took for seconds old.
    GstElement* rec =
        make_bin("queue max-size-buffers=0 max-size-bytes=" + std::to_string(kExposedQueueBytes) +
                 " max-size-time=0 leaky=downstream ! " + parse + "identity name=last");
    gst_bin_add(GST_BIN(bin.get()), rec);
    link_tee(tee, rec);
    gst_element_sync_state_with_parent(rec);
    gst::PadPtr out(gst_element_get_static_pad(rec, "src"));
    core->expose(out.get(), t.kind);
    // All given once every m-line we receive on is linked downstream: counted after expose()
    // returns, so that no stream is still on its way when the muxer is told to start.
    bool all = false;
    {
        std::lock_guard lock(expose_mutex);
        --exposing;
        all = ++exposed == std::count_if(tracks.begin(), tracks.end(),
                                         [](const Track& x) { return x.recv && x.codec; });
        all = all || (give_all_asked && exposing == 0);
    }
    if (all) return core->all_given();
    post([](Impl& s) { s.arm_expose_deadline(); });
}

// Downstream may start with what it has: now, or once a stream on its way is linked.
void WebRtcEndpoint::Impl::give_all() {
    {
        std::lock_guard lock(expose_mutex);
        give_all_asked = true;
        if (exposing) return;  // the thread exposing it says so when done
    }
    core->all_given();
}

// After the first received stream, the others get 2 s to arrive; then downstream starts
// without them (a muxer takes no new track once it writes), and the call goes on.
void WebRtcEndpoint::Impl::arm_expose_deadline() {
    if (expose_deadline_armed) return;
    expose_deadline_armed = true;
    add_timer(2000, [](Impl& s) {
        if (s.core->all_exposed()) return false;
        std::string kinds;
        {
            std::lock_guard lock(s.expose_mutex);
            for (const auto& t : s.tracks)
                if (t.recv && t.codec && !t.given)
                    kinds += (kinds.empty() ? "" : " and ") + describe(t);
        }
        s.give_all();
        if (kinds.empty()) return false;
        s.warn("the peer sent no " + kinds + " within 2 s; recording without it");
        return false;
    });
}

// Main thread, once the fingerprint checks out (open) or the call ends (close): held
// packets flow, or are dropped so that the end of stream can pass. Video asks for a key
// frame, since the oldest packets may have been dropped while the gate was shut.
void WebRtcEndpoint::Impl::open_gates(bool open) {
    std::lock_guard lock(rx_mutex);
    for (auto& e : rx_entries) {
        if (!e.block) continue;
        gst_pad_remove_probe(e.src.get(), e.block);
        e.block = 0;
        // Upstream through webrtcbin to rtpsession, which sends the peer a PLI.
        if (open && e.video)
            gst_element_send_event(
                e.queue, gst_video_event_new_upstream_force_key_unit(GST_CLOCK_TIME_NONE, TRUE, 0));
    }
}

void WebRtcEndpoint::Impl::link_tee(GstElement* tee, GstElement* branch) {
    GstPad* tpad = gst_element_request_pad_simple(tee, "src_%u");
    gst::PadPtr owned(tpad);
    gst::PadPtr bsink(gst_element_get_static_pad(branch, "sink"));
    gst_pad_link(tpad, bsink.get());
}

void WebRtcEndpoint::Impl::media_flow(const std::string& direction, const std::string& kind,
                                      const std::string& mid, bool on) {
    if (direction == "out" && on && !verified) {
        // webrtcbin drops what we send until DTLS is up: it flows once the peer can decrypt it.
        held_flows.emplace_back(kind, mid);
        return;
    }
    const std::string key = direction + kind + "/" + mid;
    if (flowing[key] == on) return;
    flowing[key] = on;
    Json e{{"direction", direction}, {"kind", kind}, {"state", on ? "flowing" : "not-flowing"}};
    if (!mid.empty()) e["mid"] = mid;
    events.emit("media-flow", e);
}

}  // namespace kms
