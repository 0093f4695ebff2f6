// Source: a GstBin that gives one ghost src pad per stream of a media URI. Test patterns and
// devices make raw media at once; files, stdin and HTTP go through parsebin (a Matroska or WebM
// file straight through its demuxer), which finds their streams (still encoded: passthrough is
// the default) as the demuxer meets them.
#include "kms/source.hpp"

#include <gio/gio.h>

#include <algorithm>
#include <atomic>
#include <cstring>
#include <set>

#include "core/log.hpp"
#include "kms/loop.hpp"
#include "kms/rtp.hpp"
#include "kms/runtime.hpp"
#include "media/input_probe.hpp"
#include "pipeline/element.hpp"
#include "source/depay.hpp"
#include "source/rtp_stats.hpp"

namespace kms {

// souphttpsrc 1.22 keeps a server that cannot be reached to its debug log, and fails with
// "Internal data stream error": the server is tried here first (a TCP connection, each attempt
// 10 s at most), so that a refusal or a timeout says so and exits as a network failure. What
// the server answers (404) is still souphttpsrc's to tell.
void reach_http_server(const MediaUri& uri) {
    // Through a proxy souphttpsrc takes from the environment, the server may be out of our
    // reach and still in the proxy's: the proxy tells.
    for (const char* v :
         {"http_proxy", "https_proxy", "all_proxy", "HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY"})
        if (const char* p = g_getenv(v); p && *p) return;
    std::unique_ptr<GSocketClient, decltype(&g_object_unref)> client{g_socket_client_new(),
                                                                     g_object_unref};
    g_socket_client_set_timeout(client.get(), 10);
    const bool tls = uri.location.rfind("https:", 0) == 0;
    GError* raw = nullptr;
    GSocketConnection* conn = g_socket_client_connect_to_uri(client.get(), uri.location.c_str(),
                                                             tls ? 443 : 80, nullptr, &raw);
    if (conn) g_object_unref(conn);
    gst::GErrorPtr err(raw);
    if (!conn)
        throw Error(ErrorCode::Network,
                    uri.redacted() + ": " + (err ? err->message : "cannot be reached"));
}

namespace {

const char* const kBase = "gstreamer1.0-plugins-base";
const char* const kGood = "gstreamer1.0-plugins-good";

struct SourceCore : Element::Core {
    MediaUri uri;
    SourceOptions opt;
    gst::ElementPtr reader;  // filesrc, fdsrc or souphttpsrc: out of the bin until join()
    gst::ElementPtr parse;   // parsebin, likewise
    std::vector<gst::SignalConnection> signals;
    bool held = false;
    bool prepared = false;
    bool joined = false;
    gint64 start_offset = 0;      // the pipeline's running time when reading started (ns)
    bool rtsp_pads_done = false;  // rtspsrc said no-more-pads (mutex)
    unsigned rtsp_selected = 0;   // streams rtspsrc set up (select-stream; mutex)
    unsigned rtsp_pads = 0;       // its pads so far (mutex)
    unsigned rtsp_parsing = 0;    // their parsebins yet to expose a stream (mutex)
    std::function<void()> ended;

    std::mutex mutex;                // heads and the counts: streaming threads add streams
    std::vector<gst::PadPtr> heads;  // each stream's queue sink: where stop() sends EOS
    // rtspsrc or the udpsrcs of rtp://: where stop() sends EOS for streams without a queue
    // (set while building, before streaming threads run).
    std::vector<gst::ElementPtr> net_sources;
    unsigned running = 0;
    // A file with one stream only: its demuxer interleaves nothing, so its queue need not
    // hold seconds of it.
    bool lone_stream = false;
    bool all_pads = false;  // parsebin said no-more-pads (or the streams were made up front)
    bool ended_sent = false;

    SourceCore(const MediaUri& u, SourceOptions o) : Core("source"), uri(u), opt(std::move(o)) {}

    bool wants(const std::string& kind) const {
        return opt.kinds.empty() ||
               std::find(opt.kinds.begin(), opt.kinds.end(), kind) != opt.kinds.end();
    }

    // A stream's tail inside the bin: a queue (each stream its own thread, so one demuxer
    // feeding two kinds never waits on one of them), paced at real time when asked. An RTP
    // stream straight out of its depayloader needs no queue: its jitter buffer already gives
    // it a thread of its own, and the end of stream enters at the source (send_eos()).
    void add_stream(GstPad* src, const std::string& kind, bool pace, const std::string& head = "",
                    const std::shared_ptr<source::RtpCounters>& rtp = nullptr) {
        const bool direct = rtp && rtp->direct && !pace;
        GstElement* tail = nullptr;  // none when the stream is exposed as it comes
        gst::PadPtr in, out;
        if (!direct || !head.empty()) {
            std::string desc =
                direct ? head.substr(0, head.rfind(" ! "))
                : lone_stream
                    ? head + "queue max-size-buffers=3 max-size-bytes=0 max-size-time=0"
                    : head + "queue max-size-buffers=0 max-size-bytes=0 max-size-time=2000000000";
            if (pace) desc += " ! clocksync";
            tail = make_bin(desc);
            gst_bin_add(GST_BIN(bin.get()), tail);
            in.reset(gst_element_get_static_pad(tail, "sink"));
            out.reset(gst_element_get_static_pad(tail, "src"));
            // A source that starts late (held until a peer can use it) plays from when it
            // starts: its timestamps begin at 0, which in running time is long past, so
            // clocksync would let everything up to now through at once, and RTCP would date it
            // wrongly.
            if (pace && start_offset) gst_pad_set_offset(in.get(), start_offset);
        }
        GstPad* end = tail ? out.get() : src;
        watch_eos(end);
        if (rtp) source::count_frames(end, rtp);
        {
            std::lock_guard lock(mutex);
            if (!direct) heads.push_back(gst::ref(in.get()));
            ++running;
        }
        if (tail) {
            gst_element_sync_state_with_parent(tail);
            // Linked first: whoever takes the stream asks what it carries.
            if (GstPadLinkReturn r = gst_pad_link(src, in.get()); r != GST_PAD_LINK_OK)
                KMS_LOG(source, WARNING, "cannot link a %s stream: %s", kind.c_str(),
                        gst_pad_link_get_name(r));
        }
        expose(end, kind);
    }

    void watch_eos(GstPad* pad) {
        auto* weak = new std::weak_ptr<Core>(weak_from_this());
        gst_pad_add_probe(
            pad, GST_PAD_PROBE_TYPE_EVENT_DOWNSTREAM,
            [](GstPad*, GstPadProbeInfo* info, gpointer d) -> GstPadProbeReturn {
                if (GST_EVENT_TYPE(GST_PAD_PROBE_INFO_EVENT(info)) != GST_EVENT_EOS)
                    return GST_PAD_PROBE_OK;
                if (auto self = static_cast<std::weak_ptr<Core>*>(d)->lock())
                    static_cast<SourceCore*>(self.get())->stream_ended();
                return GST_PAD_PROBE_OK;
            },
            weak, [](gpointer d) { delete static_cast<std::weak_ptr<Core>*>(d); });
    }

    void stream_ended() {
        {
            std::lock_guard lock(mutex);
            if (running) --running;
            if (running || !all_pads || ended_sent) return;
            ended_sent = true;
        }
        std::weak_ptr<Core> weak = weak_from_this();
        post_to_main([weak] {
            auto self = weak.lock();
            auto* s = static_cast<SourceCore*>(self.get());
            if (s && s->ended) s->ended();
        });
    }

    void build_test() {
        require_elements({{"videotestsrc", kBase}, {"audiotestsrc", kBase}});
        if (uri.video && wants("video")) {
            // I420, what every encoder takes. Left open, the format was fixed before anything
            // downstream was linked, to the first videotestsrc offers: ABGR64, 8 bytes a
            // pixel, five times the memory of each frame and a conversion for every one.
            GstElement* v =
                make_bin("videotestsrc is-live=true pattern=" + uri.param("pattern", "smpte") +
                         " ! capsfilter caps=video/x-raw,format=I420,width=" +
                         std::to_string(uri.param_int("width", 640)) +
                         ",height=" + std::to_string(uri.param_int("height", 480)) +
                         ",framerate=" + std::to_string(uri.param_int("fps", 30)) + "/1");
            add_live(v, "video");
        }
        if (uri.audio && wants("audio")) {
            GstElement* a = make_bin("audiotestsrc is-live=true wave=" + uri.param("wave", "sine") +
                                     " freq=" + std::to_string(uri.param_int("freq", 440)) +
                                     " samplesperbuffer=960 ! capsfilter caps=audio/x-raw,rate=" +
                                     std::to_string(uri.param_int("rate", 48000)) +
                                     ",channels=" + std::to_string(uri.param_int("channels", 2)));
            add_live(a, "audio");
        }
        all_pads = true;
        announce_all_exposed();
    }

    void add_live(GstElement* producer, const std::string& kind) {
        gst_bin_add(GST_BIN(bin.get()), producer);
        gst::PadPtr src(gst_element_get_static_pad(producer, "src"));
        add_stream(src.get(), kind, false);
        known.push_back({kind, kind + "/x-raw"});
    }

    void build_device() {
        const bool video = uri.kind == MediaUri::Kind::V4l2;
        const char* factory = video                               ? "v4l2src"
                              : uri.kind == MediaUri::Kind::Pulse ? "pulsesrc"
                                                                  : "alsasrc";
        require_elements({{factory, video                               ? kGood
                                    : uri.kind == MediaUri::Kind::Pulse ? kGood
                                                                        : kBase}});
        std::string desc = factory;
        if (!uri.location.empty()) desc += std::string(" device=") + uri.location;
        desc += video ? " ! videoconvert" : " ! audioconvert";
        add_live(make_bin(desc), video ? "video" : "audio");
        all_pads = true;
        announce_all_exposed();
    }

    void build_parsed() {
        const bool file = uri.kind == MediaUri::Kind::File;
        std::string demuxer;
        if (file) {
            const media::InputProbe p = media::probe_input(uri.location, uri.location);
            demuxer = p.demuxer;
            lone_stream = p.known && p.streams == 1;
            // A fifo is not probed (reading it would eat its start): its streams are unknown.
            if (p.known && p.video && wants("video")) known.push_back({"video", p.video_caps});
            if (p.known && p.audio && wants("audio")) known.push_back({"audio", p.audio_caps});
            if (p.known && known.empty())
                throw Error(ErrorCode::BadInput, uri.location + ": holds no " + opt.kinds.front());
            reader.reset(GST_ELEMENT(
                gst_object_ref_sink(make_element("filesrc", "gstreamer1.0-plugins-base"))));
            g_object_set(reader.get(), "location", uri.location.c_str(), nullptr);
        } else if (uri.kind == MediaUri::Kind::Stdio) {
            reader.reset(GST_ELEMENT(
                gst_object_ref_sink(make_element("fdsrc", "gstreamer1.0-plugins-base"))));
            g_object_set(reader.get(), "fd", 0, nullptr);
        } else {
            reader.reset(GST_ELEMENT(gst_object_ref_sink(make_element("souphttpsrc", kGood))));
            g_object_set(reader.get(), "location", uri.location.c_str(), nullptr);
            reach_http_server(uri);
        }
        // A Matroska or WebM file goes straight to its demuxer (input_probe.hpp): parsebin's
        // typefinding and parsers would add nothing but memory.
        parse.reset(GST_ELEMENT(gst_object_ref_sink(demuxer.empty()
                                                        ? make_element("parsebin", kBase)
                                                        : make_element(demuxer.c_str(), kGood))));
        on_signal(parse.get(), "pad-added", G_CALLBACK(pad_handler<&SourceCore::on_parsed_pad>));
        on_signal(parse.get(), "no-more-pads",
                  G_CALLBACK(done_handler<&SourceCore::on_no_more_pads>));
    }

    // An RTSP camera: rtspsrc gives one RTP pad per stream when the pipeline plays; a parsebin
    // on each finds the depayloader and parser, so the stream stays encoded.
    void build_rtsp() {
        require_elements({{"rtspsrc", kGood}, {"parsebin", kBase}});
        GstElement* rtsp = make_element("rtspsrc", kGood, "rtsp");
        // 200 ms of jitter buffer: a LAN camera's reordering, without a second of delay.
        g_object_set(rtsp, "location", uri.location.c_str(), "latency", 200u, nullptr);
        if (!opt.rtsp_transport.empty())
            gst_util_set_object_arg(G_OBJECT(rtsp), "protocols", opt.rtsp_transport.c_str());
        gst_bin_add(GST_BIN(bin.get()), rtsp);
        net_sources.emplace_back(GST_ELEMENT(gst_object_ref(rtsp)));
        on_signal(rtsp, "pad-added", G_CALLBACK(pad_handler<&SourceCore::on_rtsp_pad_added>));
        on_signal(rtsp, "no-more-pads", G_CALLBACK(done_handler<&SourceCore::on_rtsp_pads_done>));
        on_signal(rtsp, "select-stream",
                  G_CALLBACK(+[](GstElement*, guint, GstCaps*, gpointer d) -> gboolean {
                      std::shared_ptr<Core> keep;
                      if (SourceCore* s = self_of(d, keep)) {
                          std::lock_guard lock(s->mutex);
                          ++s->rtsp_selected;
                      }
                      return TRUE;
                  }));
        on_signal(rtsp, "element-added", G_CALLBACK(+[](GstBin*, GstElement* e, gpointer) {
                      if (is_udpsrc(e)) no_sender_address(e);
                  }));
    }

    static bool is_udpsrc(GstElement* e) {
        GstElementFactory* f = gst_element_get_factory(e);
        return f && std::strcmp(GST_OBJECT_NAME(f), "udpsrc") == 0;
    }

    // udpsrc makes two GObjects and a meta per packet to say who sent it; only rtpsession's
    // SSRC collision check reads that, and a recorder of one sender has none to check. Some
    // 200 packets a second of a 2 Mbit/s camera, per recording (scripts/bench/record_parallel).
    static void no_sender_address(GstElement* udpsrc) {
        g_object_set(udpsrc, "retrieve-sender-address", FALSE, nullptr);
    }

    // RTP described by an SDP file: a udpsrc and a jitter buffer per stream, then RTSP's path
    // (a parsebin per stream). Not sdpsrc: its rtpbin makes a pad per SSRC, and a sender that
    // restarts (a new SSRC) breaks it; a jitter buffer alone starts over on the new sequence.
    // RTCP is not read: each stream is timed by its own arrival, which a recorder rebases.
    void build_rtp() {
        require_elements({{"udpsrc", kGood}, {"rtpjitterbuffer", kGood}, {"parsebin", kBase}});
        std::vector<RtpStream> streams;
        for (auto& st : rtp_streams(uri))
            if (wants(st.kind)) streams.push_back(std::move(st));
        if (streams.empty())
            throw Error(ErrorCode::BadInput,
                        uri.param("sdp", "") + ": describes no " + opt.kinds.front());
        for (const auto& st : streams) {
            known.push_back({st.kind, "application/x-rtp"});
            // A multicast address is joined; a unicast one is bound (0.0.0.0 or :: for any).
            // 2 MB of socket buffer rides out a burst of a large key frame.
            GstElement* rx = make_element("udpsrc", kGood);
            gst::CapsPtr caps(gst_caps_from_string(st.caps.c_str()));
            g_object_set(rx, "address", st.address.c_str(), "port", st.port, "caps", caps.get(),
                         "buffer-size", 2 * 1024 * 1024,
                         // Another listener on the port is an error, not a silent share.
                         "reuse", st.multicast, nullptr);
            no_sender_address(rx);
            GstElement* jb = make_element("rtpjitterbuffer", kGood);
            g_object_set(jb, "latency", 200u, nullptr);
            gst_bin_add_many(GST_BIN(bin.get()), rx, jb, nullptr);
            gst_element_link(rx, jb);
            net_sources.emplace_back(GST_ELEMENT(gst_object_ref(rx)));
            gst::PadPtr out(gst_element_get_static_pad(jb, "src"));
            if (auto rtp = on_rtsp_pad(out.get())) g_weak_ref_set(&rtp->jitter_buffer, jb);
        }
        on_rtsp_pads_done();
    }

    // Every stream is exposed once rtspsrc (or build_rtp()) has made all its pads and the
    // parsebin of each has exposed its stream. rtspsrc 1.22 says no-more-pads from the thread
    // of the last stream to come, but another stream's thread may not yet have added its pad
    // (it marks the stream added, lets go of its lock, then adds the pad): so the pads are
    // also counted against the streams it set up, or a camera's audio, exposed at once, would
    // start the file before its video came (record_rtsp, one run in five).
    void on_rtsp_pads_done() { rtsp_progress(true); }
    void on_rtsp_stream_done() { rtsp_progress(false); }
    void rtsp_progress(bool all_rtp_pads) {
        {
            std::lock_guard lock(mutex);
            if (all_rtp_pads)
                rtsp_pads_done = true;
            else if (rtsp_parsing)
                --rtsp_parsing;
            if (!rtsp_pads_done || rtsp_pads < rtsp_selected || rtsp_parsing) return;
        }
        announce_all_exposed();
    }

    // Streaming thread (rtspsrc's): the stream's depayloader and parser, or a parsebin for
    // what needs a demuxer (source/depay.hpp), linked before returning.
    void on_rtsp_pad_added(GstPad* pad) { on_rtsp_pad(pad); }
    std::shared_ptr<source::RtpCounters> on_rtsp_pad(GstPad* pad) {
        {
            // Counted before anything can flow: another stream may be exposed meanwhile.
            std::lock_guard lock(mutex);
            ++rtsp_pads;
            ++rtsp_parsing;
        }
        auto rtp = std::make_shared<source::RtpCounters>();
        gst::CapsPtr caps(gst_pad_query_caps(pad, nullptr));
        if (caps && gst_caps_get_size(caps.get()) > 0)
            if (const char* media =
                    gst_structure_get_string(gst_caps_get_structure(caps.get(), 0), "media"))
                rtp->kind = media;
        const std::vector<std::string> chain = source::depay_chain(caps.get());
        GstElement* head = chain.empty() ? nullptr : depay_rtp(chain, rtp);
        if (!head) head = parse_rtp(rtp);
        if (!head) {
            rtsp_progress(false);  // nothing will expose it
            return nullptr;
        }
        source::count_rtp(pad, rtp);
        {
            std::lock_guard lock(mutex);
            rtp_counters.push_back(rtp);
        }
        gst::PadPtr in(gst_element_get_static_pad(head, "sink"));
        if (GstPadLinkReturn r = gst_pad_link(pad, in.get()); r != GST_PAD_LINK_OK)
            KMS_LOG(source, WARNING, "cannot link an RTSP stream: %s", gst_pad_link_get_name(r));
        return rtp;
    }

    // The counters of an RTSP or RTP stream ride on the element its parsed stream leaves.
    static void carry_counters(GstElement* e, const std::shared_ptr<source::RtpCounters>& rtp) {
        g_object_set_data_full(
            G_OBJECT(e), "kms-rtp", new std::shared_ptr<source::RtpCounters>(rtp),
            [](gpointer d) { delete static_cast<std::shared_ptr<source::RtpCounters>*>(d); });
    }

    // depayloader ! parser, in the bin and playing; the stream is taken (on_parsed_pad) at its
    // first buffer, when its caps are known. Linking then is safe: the pad sends its sticky
    // events (stream-start, caps, segment) in order to a peer found by a probe.
    GstElement* depay_rtp(const std::vector<std::string>& chain,
                          const std::shared_ptr<source::RtpCounters>& rtp) {
        std::vector<GstElement*> made;
        for (const auto& factory : chain) {
            GstElement* e = gst_element_factory_make(factory.c_str(), nullptr);
            if (!e) break;
            made.push_back(e);
        }
        if (made.size() != chain.size()) {
            for (GstElement* e : made) gst_object_unref(gst_object_ref_sink(e));
            return nullptr;
        }
        // After lost packets (or a sender that restarted) a depayloader would pass frames
        // whose references are gone, and a passthrough file would carry the smear: it waits
        // for the next key frame instead.
        if (g_object_class_find_property(G_OBJECT_GET_CLASS(made[0]), "wait-for-keyframe"))
            g_object_set(made[0], "wait-for-keyframe", TRUE, nullptr);
        for (size_t i = 0; i < made.size(); ++i) {
            gst_bin_add(GST_BIN(bin.get()), made[i]);
            if (i) gst_element_link(made[i - 1], made[i]);
        }
        carry_counters(made.back(), rtp);
        rtp->direct = true;
        gst::PadPtr out(gst_element_get_static_pad(made.back(), "src"));
        auto* weak = new std::weak_ptr<Core>(weak_from_this());
        gst_pad_add_probe(
            out.get(),
            static_cast<GstPadProbeType>(GST_PAD_PROBE_TYPE_BUFFER |
                                         GST_PAD_PROBE_TYPE_BUFFER_LIST),
            [](GstPad* p, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
                if (auto self = static_cast<std::weak_ptr<Core>*>(d)->lock())
                    static_cast<SourceCore*>(self.get())->on_parsed_pad(p);
                return GST_PAD_PROBE_REMOVE;
            },
            weak, [](gpointer d) { delete static_cast<std::weak_ptr<Core>*>(d); });
        for (auto it = made.rbegin(); it != made.rend(); ++it)
            gst_element_sync_state_with_parent(*it);
        return made.front();
    }

    // A parsebin, in the bin and playing, for a stream that needs more than a depayloader.
    GstElement* parse_rtp(const std::shared_ptr<source::RtpCounters>& rtp) {
        GstElement* parser = gst_element_factory_make("parsebin", nullptr);
        if (!parser) return nullptr;
        // One RTP stream gives one parsed pad, and on_parsed_pad() counts the stream done
        // when it comes. Not "no-more-pads": parsebin 1.22 never emits it, so every camera
        // waited out the 2.5 s fallback hold (its first seconds piled up in the queue).
        on_signal(parser, "pad-added", G_CALLBACK(pad_handler<&SourceCore::on_parsed_pad>));
        // After lost packets (or a sender that restarted) a depayloader would pass frames whose
        // references are gone, and a passthrough file would carry the smear: it waits for the
        // next key frame instead.
        on_signal(parser, "element-added", G_CALLBACK(+[](GstBin* b, GstElement* e, gpointer) {
                      if (g_object_class_find_property(G_OBJECT_GET_CLASS(e), "wait-for-keyframe"))
                          g_object_set(e, "wait-for-keyframe", TRUE, nullptr);  // as above
                      GstElementFactory* f = gst_element_get_factory(e);
                      const char* klass =
                          f ? gst_element_factory_get_metadata(f, GST_ELEMENT_METADATA_KLASS)
                            : nullptr;
                      auto* c = static_cast<std::shared_ptr<source::RtpCounters>*>(
                          g_object_get_data(G_OBJECT(b), "kms-rtp"));
                      if (c && klass && strstr(klass, "Demux")) (*c)->demuxed = true;
                  }));
        carry_counters(parser, rtp);
        gst_bin_add(GST_BIN(bin.get()), parser);
        gst_element_sync_state_with_parent(parser);
        return parser;
    }

    // Signal handlers that call a member through the weak reference they are given.
    static SourceCore* self_of(gpointer d, std::shared_ptr<Core>& keep) {
        keep = static_cast<std::weak_ptr<Core>*>(d)->lock();
        return static_cast<SourceCore*>(keep.get());
    }
    template <void (SourceCore::*Fn)(GstPad*)>
    static void pad_handler(GstElement*, GstPad* pad, gpointer d) {
        std::shared_ptr<Core> keep;
        if (SourceCore* s = self_of(d, keep)) (s->*Fn)(pad);
    }
    template <void (SourceCore::*Fn)()>
    static void done_handler(GstElement*, gpointer d) {
        std::shared_ptr<Core> keep;
        if (SourceCore* s = self_of(d, keep)) (s->*Fn)();
    }

    // Connects a handler that gets a weak reference to this core.
    void on_signal(GstElement* e, const char* signal, GCallback fn) {
        auto* weak = new std::weak_ptr<Core>(weak_from_this());
        std::lock_guard lock(mutex);
        signals.emplace_back(
            e, g_signal_connect_data(
                   e, signal, fn, weak,
                   [](gpointer d, GClosure*) { delete static_cast<std::weak_ptr<Core>*>(d); },
                   GConnectFlags(0)));
    }

    ErrorCode classify(const GError* e, ErrorCode code) const override {
        // A camera or server that cannot be reached, refuses us or goes away is the network's
        // failure, not the input's.
        if ((uri.kind == MediaUri::Kind::Rtsp || uri.kind == MediaUri::Kind::Http ||
             uri.kind == MediaUri::Kind::Rtp) &&
            e->domain == GST_RESOURCE_ERROR)
            return ErrorCode::Network;
        return code;
    }

    // Streaming thread: linked before returning, as parsebin pushes at once.
    void on_parsed_pad(GstPad* pad) {
        std::shared_ptr<source::RtpCounters> rtp = counters_of(pad);
        take_parsed_pad(pad, rtp);
        // An RTSP or RTP stream's own parsebin has shown its stream (or left it out): done,
        // once. Not when a demuxer inside it (MPEG-TS over RTP) may show more: those wait for
        // the fallback hold, as every stream did before.
        if (rtp && !rtp->demuxed && !rtp->exposed.exchange(true)) on_rtsp_stream_done();
    }
    // An RTSP or RTP stream's counters ride on its parsebin (on_rtsp_pad).
    static std::shared_ptr<source::RtpCounters> counters_of(GstPad* pad) {
        gst::ElementPtr parent{gst_pad_get_parent_element(pad)};
        auto* c = parent ? static_cast<std::shared_ptr<source::RtpCounters>*>(
                               g_object_get_data(G_OBJECT(parent.get()), "kms-rtp"))
                         : nullptr;
        return c ? *c : nullptr;
    }
    void take_parsed_pad(GstPad* pad, const std::shared_ptr<source::RtpCounters>& rtp) {
        gst::CapsPtr caps = caps_of(pad);
        const std::string kind = kind_of(caps.get());
        if (kind.empty() || !wants(kind)) {
            KMS_LOG(source, INFO, "%s: leaving out a stream of %s", uri.redacted().c_str(),
                    media_of(caps.get()).c_str());
            GstElement* sink = make_bin("fakesink sync=false async=false");
            gst_bin_add(GST_BIN(bin.get()), sink);
            gst_element_sync_state_with_parent(sink);
            gst::PadPtr in(gst_element_get_static_pad(sink, "sink"));
            gst_pad_link(pad, in.get());
            // stop() ends it too: a fakesink that takes on would keep a demuxer reading (its
            // flow combiner hears EOS only when every stream does) and hold the stop back.
            std::lock_guard lock(mutex);
            heads.push_back(std::move(in));
            return;
        }
        // Opus depayloaded from RTP (RFC 7587) has no header, so its caps lack the rate and
        // the stream header that muxers need; opusparse makes both (parsebin skips it there).
        const GstStructure* st = gst_caps_get_structure(caps.get(), 0);
        const bool bare_opus =
            gst_structure_has_name(st, "audio/x-opus") && !gst_structure_has_field(st, "rate");
        add_stream(pad, kind, opt.realtime, bare_opus ? "opusparse ! " : "", rtp);
        // parsebin 1.22 says no-more-pads only for some inputs, but it adds all the pads it
        // has found before any of them carries data: once every kind the probe saw in a file
        // is here, nothing else is coming.
        bool all = false;
        {
            std::lock_guard lock(mutex);
            seen_kinds.insert(kind);
            all = !known.empty() &&
                  std::all_of(known.begin(), known.end(),
                              [&](const StreamInfo& s) { return seen_kinds.count(s.kind) > 0; });
        }
        if (all) {
            announce_all_exposed();
            return;
        }
        // A parsebin per stream: rtsp_progress() tells.
        if (uri.kind == MediaUri::Kind::Rtsp || uri.kind == MediaUri::Kind::Rtp) return;
        // Without a probe (stdin, http) the first data tells: parsebin adds every pad of its
        // group before it lets any of them push.
        auto* weak = new std::weak_ptr<Core>(weak_from_this());
        gst_pad_add_probe(
            pad, GST_PAD_PROBE_TYPE_BUFFER,
            [](GstPad*, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
                if (auto self = static_cast<std::weak_ptr<Core>*>(d)->lock())
                    static_cast<SourceCore*>(self.get())->announce_all_exposed();
                return GST_PAD_PROBE_REMOVE;
            },
            weak, [](gpointer d) { delete static_cast<std::weak_ptr<Core>*>(d); });
    }
    std::set<std::string> seen_kinds;  // parsebin's streams so far (mutex)
    std::vector<std::shared_ptr<source::RtpCounters>> rtp_counters;  // rtsp://, rtp:// (mutex)

    void on_no_more_pads() {
        announce_all_exposed();
        {
            std::lock_guard lock(mutex);
            all_pads = true;
            if (running) return;
        }
        stream_ended();
    }

    void join() {
        if (joined || !reader) return;
        joined = true;
        if (gst::ObjectPtr<GstClock> clock{gst_element_get_clock(bin.get())}) {
            const GstClockTime now = gst_clock_get_time(clock.get());
            const GstClockTime base = gst_element_get_base_time(bin.get());
            if (now > base) start_offset = static_cast<gint64>(now - base);
        }
        KMS_LOG(source, INFO, "%s: reading starts at %.3f s", uri.redacted().c_str(),
                start_offset / 1e9);
        // Not floating (we hold them): the bin takes references of its own.
        gst_bin_add_many(GST_BIN(bin.get()), reader.get(), parse.get(), nullptr);
        gst_element_link(reader.get(), parse.get());
        gst_element_sync_state_with_parent(parse.get());
        gst_element_sync_state_with_parent(reader.get());
    }

    void prepare() override {
        prepared = true;
        if (!held) join();
    }

    void send_eos() override {
        std::vector<gst::PadPtr> pads;
        {
            std::lock_guard lock(mutex);
            for (auto& p : heads) pads.push_back(gst::ref(p.get()));
        }
        for (auto& p : pads) gst_pad_send_event(p.get(), gst_event_new_eos());
        // RTP streams without a queue: at their network sources, as gst-launch -e does, so
        // the end follows what the jitter buffers hold and never waits on a busy stream.
        for (auto& e : net_sources) gst_element_send_event(e.get(), gst_event_new_eos());
    }

    bool finite() const override {
        return uri.kind == MediaUri::Kind::File || uri.kind == MediaUri::Kind::Stdio ||
               uri.kind == MediaUri::Kind::Http;
    }

    std::string describe_error(const GError* e, ErrorCode code) const override {
        std::string text = e->message;
        if (code == ErrorCode::BadInput) {
            if (!text.empty() && text.back() == '.') text.pop_back();  // "...data.; is it"
            text += "; is it a media file GStreamer can read?";
        }
        return uri.redacted() + ": " + text;
    }
};

SourceCore& core_of(const Element& e) {
    return static_cast<SourceCore&>(e.core());
}

}  // namespace

Source::Source(const MediaUri& uri, SourceOptions options)
    : Element(std::make_shared<SourceCore>(uri, std::move(options))) {
    init();
    auto& c = core_of(*this);
    switch (uri.kind) {
        case MediaUri::Kind::Test:
            c.build_test();
            break;
        case MediaUri::Kind::V4l2:
        case MediaUri::Kind::Pulse:
        case MediaUri::Kind::Alsa:
            c.build_device();
            break;
        case MediaUri::Kind::File:
        case MediaUri::Kind::Stdio:
        case MediaUri::Kind::Http:
            c.build_parsed();
            break;
        case MediaUri::Kind::Rtsp:
            c.build_rtsp();
            break;
        case MediaUri::Kind::Rtp:
            c.build_rtp();
            break;
        default:
            throw Error(ErrorCode::InvalidArgument,
                        uri.redacted() + ": this kind of source is not supported yet");
    }
}

Source::~Source() = default;

void Source::hold() {
    core_of(*this).held = true;
}

void Source::release() {
    auto& c = core_of(*this);
    c.held = false;
    if (c.prepared) c.join();
}

std::vector<RtpStreamStats> Source::rtp_stats() const {
    auto& c = core_of(*this);
    std::vector<std::shared_ptr<source::RtpCounters>> streams;
    {
        std::lock_guard lock(c.mutex);
        streams = c.rtp_counters;
    }
    return source::collect(GST_BIN(c.bin.get()), streams);
}

void Source::on_ended(std::function<void()> fn) {
    core_of(*this).ended = std::move(fn);
}

const MediaUri& Source::uri() const {
    return core_of(*this).uri;
}

}  // namespace kms
