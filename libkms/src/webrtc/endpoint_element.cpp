// EndpointCore: the WebRtcEndpoint as an element of a Pipeline. What is connected in becomes a
// feed of the sender of its m-line; what the peer sends is exposed per m-line (endpoint_receive).
#include "webrtc/endpoint_impl.hpp"

namespace kms {

bool EndpointCore::takes_kind(const std::string& kind) const {
    auto self = impl.lock();
    if (!self || self->opt.direction == MediaDirection::RecvOnly) return false;
    return kind == "video" ? self->opt.video : kind == "audio" && self->opt.audio;
}

// Raw media is encoded into the negotiated codec here, and a stream in a codec WebRTC carries
// may be sent as it is: which codec the call uses is known only once the peer has answered, so
// the choice is made then (link_feed()), not by connect().
bool EndpointCore::takes_as_is(const GstCaps* caps) const {
    const std::string media = media_of(caps);
    if (media == "video/x-raw" || media == "audio/x-raw") return true;
    return webrtc::find_codec_by_media(media) != nullptr;
}

void EndpointCore::upstream_connected(Core& from) {
    auto self = impl.lock();
    if (!self) return;
    WebRtcEndpoint::Impl::Slot slot;
    slot.from = &from;
    // A fifo's streams are unknown until it is read: it is offered both kinds.
    slot.known = !from.known.empty();
    for (const auto& s : from.known) (s.kind == "video" ? slot.video : slot.audio) = true;
    slot.finite = from.finite();
    int index = 0;
    {
        std::lock_guard lock(self->feeds_mutex);
        index = static_cast<int>(self->slots.size());
        self->slots.push_back(slot);
    }
    // Once it has shown every stream, an m-line it was to feed and did not is said.
    std::weak_ptr<WebRtcEndpoint::Impl> weak = self;
    from.when_all_exposed([weak, index] {
        if (auto s = weak.lock())
            s->post([index](WebRtcEndpoint::Impl& i) { i.check_feeds(index); });
    });
}

// Any thread: a demuxer's streams appear on its streaming thread. Before the negotiation the
// identity drops what comes (a live source runs from the start); after it, the stream's first
// buffer waits there for link_feeds(), moments later: a held file's first key frame is the only
// one passthrough has.
GstPad* EndpointCore::request_sink_from(Core& from, const std::string& kind, const GstCaps* caps,
                                        const std::string& arrives) {
    auto self = impl.lock();
    if (!self) return nullptr;
    int slot = -1;
    {
        std::lock_guard lock(self->feeds_mutex);
        for (size_t i = 0; i < self->slots.size(); ++i)
            if (self->slots[i].from == &from) slot = static_cast<int>(i);
    }
    if (slot < 0) return nullptr;
    auto feed = std::make_shared<WebRtcEndpoint::Impl::Feed>();
    feed->slot = slot;
    feed->kind = kind;
    // What reaches us: the stream as it is, or raw from the decoder connect() put in between.
    feed->media = arrives.empty() ? media_of(caps) : arrives;
    feed->caps.reset(gst_caps_copy(caps));
    feed->entry = make_element("identity", "gstreamer1.0-plugins-base");
    gst_bin_add(GST_BIN(bin.get()), feed->entry);
    gst::PadPtr in(gst_element_get_static_pad(feed->entry, "sink"));
    if (self->senders_ready)
        feed->block = gst_pad_add_probe(
            in.get(),
            static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BLOCK | GST_PAD_PROBE_TYPE_BUFFER |
                                         GST_PAD_PROBE_TYPE_BUFFER_LIST),
            [](GstPad*, GstPadProbeInfo*, gpointer) { return GST_PAD_PROBE_OK; }, nullptr, nullptr);
    else
        self->drop_until_linked(feed);
    gst_element_sync_state_with_parent(feed->entry);
    GstPad* pad = ghost(in.get(), "send_" + std::to_string(feeds_made++));
    {
        std::lock_guard lock(self->feeds_mutex);
        self->feeds.push_back(feed);
    }
    self->post([](WebRtcEndpoint::Impl& s) { s.link_feeds(); });
    return pad;
}

void WebRtcEndpoint::Impl::drop_until_linked(const std::shared_ptr<Feed>& f) {
    gst::PadPtr in(gst_element_get_static_pad(f->entry, "sink"));
    gst_pad_add_probe(
        in.get(),
        static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
        [](GstPad*, GstPadProbeInfo*, gpointer d) {
            auto& feed = **static_cast<std::shared_ptr<Feed>*>(d);
            return feed.linked ? GST_PAD_PROBE_OK : GST_PAD_PROBE_DROP;
        },
        new std::shared_ptr<Feed>(f),
        [](gpointer d) { delete static_cast<std::shared_ptr<Feed>*>(d); });
    if (f->block) {
        gst_pad_remove_probe(in.get(), f->block);
        f->block = 0;
    }
}

// Pipeline::stop(), on a GStreamer thread: what was received ends, so that the files it goes
// to are finished.
void EndpointCore::send_eos() {
    if (auto self = impl.lock()) self->end_received();
}

// Errors inside the endpoint end the call its own way (a goodbye to the peer, then the caller
// finishes the recording). Without the endpoint (destroyed before its pipeline) the pipeline
// deals with them.
bool EndpointCore::handle_error(GstMessage* msg) {
    auto self = impl.lock();
    if (!self) return false;
    self->on_error(msg);
    return true;
}

}  // namespace kms
