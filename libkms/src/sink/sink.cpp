// Sink: a GstBin that takes one sink pad per stream. A container file or stdout gets a muxer
// whose own pad templates say what goes in untouched; null: discards; display: shows and plays.
#include "kms/sink.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.hpp"
#include "kms/runtime.hpp"
#include "media/transcoder.hpp"
#include "pipeline/element.hpp"

namespace kms {

namespace {

struct Muxer {
    const char* container;
    const char* factory;
    const char* package;
};

const Muxer kMuxers[] = {
    {"webm", "webmmux", "gstreamer1.0-plugins-good"},
    {"matroska", "matroskamux", "gstreamer1.0-plugins-good"},
    {"mp4", "mp4mux", "gstreamer1.0-plugins-good"},
    {"ogg", "oggmux", "gstreamer1.0-plugins-base"},
};

struct SinkCore : Element::Core {
    MediaUri uri;
    std::string container;      // "" for null: and display:
    GstElement* mux = nullptr;  // borrowed: the bin owns it
    std::mutex mutex;
    unsigned made = 0;

    SinkCore(const MediaUri& u) : Core("sink"), uri(u) {}

    std::string where() const {
        return uri.kind == MediaUri::Kind::Stdio ? std::string("stdout") : uri.location;
    }

    void build_container(const std::string& format) {
        container = !format.empty()                     ? format
                    : uri.kind == MediaUri::Kind::Stdio ? "matroska"
                                                        : container_for_path(uri.location);
        if (container == "mkv") container = "matroska";
        const Muxer* m = nullptr;
        for (const auto& candidate : kMuxers)
            if (container == candidate.container) m = &candidate;
        if (!m)
            throw Error(ErrorCode::InvalidArgument,
                        uri.redacted() + ": unknown container" +
                            (format.empty() ? "; end the name in .webm, .mkv or .mp4"
                                            : " '" + format + "' (try webm, mkv, mp4)"));
        require_elements({{m->factory, m->package}});
        if (uri.kind == MediaUri::Kind::File) {
            // Found out now, not when the first buffer reaches the muxer.
            const int fd = ::open(uri.location.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
            if (fd < 0)
                throw Error(ErrorCode::Io,
                            uri.location + ": cannot write: " + std::strerror(errno));
            ::close(fd);
        }
        mux = make_element(m->factory, m->package, "mux");
        const bool stream = uri.kind == MediaUri::Kind::Stdio;
        if (container == "webm" || container == "matroska") {
            // A pipe cannot be seeked back to write the index; and clusters of at most a
            // second leave a killed recording playable up to its last second.
            g_object_set(mux, "streamable", stream, nullptr);
            if (g_object_class_find_property(G_OBJECT_GET_CLASS(mux), "max-cluster-duration"))
                g_object_set(mux, "max-cluster-duration", GST_SECOND, nullptr);
        }
        if (container == "mp4" && !stream) {
            // Fragments of a second, so a killed recording plays up to its last second. Plain
            // fragmented MP4 (moov, then moof+mdat pairs, an mfra index at the end), not
            // first-moov-then-finalise: in that mode 1.22's mp4mux writes a track's samples as
            // they interleave, one run each, and drops the sizes of a run whose first sample
            // has the size the fragment began with (atoms.c, atom_traf_add_samples); ffmpeg
            // then refuses the killed file. Here each fragment holds one run per track.
            g_object_set(mux, "fragment-duration", 1000u, nullptr);
        }
        GstElement* out = nullptr;
        if (stream) {
            out = make_element("fdsink", "gstreamer1.0-plugins-base", "out");
            g_object_set(out, "fd", 1, "sync", FALSE, nullptr);
        } else {
            out = make_element("filesink", "gstreamer1.0-plugins-base", "out");
            g_object_set(out, "location", uri.location.c_str(), "sync", FALSE, "async", FALSE,
                         nullptr);
        }
        gst_bin_add_many(GST_BIN(bin.get()), mux, out, nullptr);
        if (!gst_element_link(mux, out))
            throw Error(ErrorCode::Runtime, "cannot link " + container + " to its output");
    }

    GstPadTemplate* mux_template(const std::string& kind) const {
        return mux ? gst_element_get_pad_template(mux, (kind + "_%u").c_str()) : nullptr;
    }

    bool takes_kind(const std::string& kind) const override {
        if (!mux) return kind == "video" || kind == "audio";
        // Only kinds kms can also encode for it: Ogg's video pad wants Theora.
        return mux_template(kind) != nullptr && !encoder(kind).empty();
    }

    bool takes_as_is(const GstCaps* caps) const override {
        const std::string media = media_of(caps);
        const bool raw = media == "video/x-raw" || media == "audio/x-raw";
        if (uri.kind == MediaUri::Kind::Display) return raw;
        if (!mux) return true;  // null: takes anything
        if (raw) return false;  // a container of raw frames is never what anyone wants
        GstPadTemplate* t = mux_template(kind_of(caps));
        if (!t) return false;
        gst::CapsPtr tcaps(gst_pad_template_get_caps(t));
        for (guint i = 0; i < gst_caps_get_size(tcaps.get()); ++i)
            if (media == gst_structure_get_name(gst_caps_get_structure(tcaps.get(), i)))
                return true;
        return false;
    }

    std::string encoder(const std::string& kind) const override {
        return mux ? media::encoder_for_container(container, kind) : std::string();
    }

    GstPad* request_sink(const std::string& kind) override {
        std::lock_guard lock(mutex);
        GstPad* target = nullptr;
        gst::PadPtr owned;
        if (mux) {
            target = gst_element_request_pad_simple(mux, (kind + "_%u").c_str());
            if (!target) return nullptr;
            owned.reset(target);  // the muxer keeps its own reference
            // An empty buffer (a jitter buffer's lost packet, an RTP gap) becomes an empty
            // sample, and a fragmented MP4 with one is unreadable to ffmpeg until finalised.
            gst_pad_add_probe(
                target, GST_PAD_PROBE_TYPE_BUFFER,
                [](GstPad*, GstPadProbeInfo* info, gpointer) {
                    return gst_buffer_get_size(GST_PAD_PROBE_INFO_BUFFER(info)) == 0
                               ? GST_PAD_PROBE_DROP
                               : GST_PAD_PROBE_OK;
                },
                nullptr, nullptr);
        } else {
            const bool video = kind == "video";
            std::string desc = "fakesink sync=false async=false";
            if (uri.kind == MediaUri::Kind::Display)
                desc = video ? "videoconvert ! videoscale ! autovideosink sync=false"
                             : "audioconvert ! audioresample ! autoaudiosink sync=false";
            GstElement* end = make_bin(desc);
            gst_bin_add(GST_BIN(bin.get()), end);
            gst_element_sync_state_with_parent(end);
            owned.reset(gst_element_get_static_pad(end, "sink"));
            target = owned.get();
        }
        return ghost(target, kind + "_in_" + std::to_string(made++));
    }

    std::string describe_error(const GError* e, ErrorCode code) const override {
        if (code == ErrorCode::Io || uri.kind == MediaUri::Kind::File ||
            uri.kind == MediaUri::Kind::Stdio)
            return uri.redacted() + ": cannot write " + where() + ": " + e->message +
                   (uri.kind == MediaUri::Kind::Stdio ? " (did the reader of stdout exit?)"
                                                      : " (is the disk full?)");
        return uri.redacted() + ": " + e->message;
    }
};

SinkCore& core_of(const Element& e) {
    return static_cast<SinkCore&>(e.core());
}

}  // namespace

Sink::Sink(const MediaUri& uri, SinkOptions options) : Element(std::make_shared<SinkCore>(uri)) {
    init();
    auto& c = core_of(*this);
    switch (uri.kind) {
        case MediaUri::Kind::File:
        case MediaUri::Kind::Stdio:
            c.build_container(options.format);
            break;
        case MediaUri::Kind::Null:
            break;
        case MediaUri::Kind::Display:
            require_elements({{"autovideosink", "gstreamer1.0-plugins-good"},
                              {"autoaudiosink", "gstreamer1.0-plugins-good"}});
            break;
        default:
            throw Error(ErrorCode::InvalidArgument,
                        uri.redacted() + ": this kind of sink is not supported yet");
    }
}

Sink::~Sink() = default;

std::string Sink::container() const {
    return core_of(*this).container;
}

bool Sink::takes_as_is(const std::string& media) const {
    gst::CapsPtr caps(gst_caps_new_empty_simple(media.c_str()));
    return core_of(*this).takes_as_is(caps.get());
}

}  // namespace kms
