#include "media/input_probe.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>
#include <cstring>

#include <gst/pbutils/pbutils.h>

#include "gst/handles.hpp"
#include "kms/error.hpp"
#include "kms/probe.hpp"
#include "pipeline/element.hpp"

namespace kms::media {

namespace {

struct DiscovererInfoUnref {
    void operator()(GstDiscovererInfo* i) const { gst_discoverer_info_unref(i); }
};

std::string media_type(GstDiscovererStreamInfo* s) {
    gst::CapsPtr caps(gst_discoverer_stream_info_get_caps(s));
    return media_of(caps.get());
}

// One audio or video stream found (kind "video" or "audio"): counted, and the first of its
// kind gives the probe's caps.
void note_stream(InputProbe& out, const std::string& kind, const std::string& media) {
    if (kind != "video" && kind != "audio") return;
    ++out.streams;
    bool& seen = kind == "video" ? out.video : out.audio;
    if (seen) return;
    seen = true;
    (kind == "video" ? out.video_caps : out.audio_caps) = media;
}

// The demuxer a file's first bytes name, for the formats read without typefinding: an EBML
// header is Matroska or WebM (matroskademux reads both). "" for anything else.
const char* demuxer_of(int fd) {
    unsigned char head[4] = {};
    if (::pread(fd, head, sizeof head, 0) != static_cast<ssize_t>(sizeof head)) return "";
    if (head[0] == 0x1A && head[1] == 0x45 && head[2] == 0xDF && head[3] == 0xA3)
        return "matroskademux";
    return "";
}

// The demuxer alone reads the headers: its pads, their caps and the duration are known once it
// says no-more-pads, before any frame. Not known (the caller asks the discoverer, which says
// what is wrong) when it fails, times out or finds neither audio nor video.
InputProbe probe_demuxed(const std::string& path, const char* demuxer, double timeout_s) {
    InputProbe out;
    gst::ElementPtr pipe(GST_ELEMENT(gst_object_ref_sink(gst_pipeline_new("kms-probe"))));
    GstElement* src = gst_element_factory_make("filesrc", nullptr);
    GstElement* demux = gst_element_factory_make(demuxer, nullptr);
    if (!src || !demux) {
        if (src) gst_object_unref(gst_object_ref_sink(src));
        if (demux) gst_object_unref(gst_object_ref_sink(demux));
        return out;
    }
    g_object_set(src, "location", path.c_str(), nullptr);
    gst_bin_add_many(GST_BIN(pipe.get()), src, demux, nullptr);
    if (!gst_element_link(src, demux)) return out;
    std::atomic<bool> all{false};
    g_signal_connect(demux, "no-more-pads", G_CALLBACK(+[](GstElement*, gpointer d) {
                         static_cast<std::atomic<bool>*>(d)->store(true);
                     }),
                     &all);
    gst_element_set_state(pipe.get(), GST_STATE_PAUSED);
    gst::BusPtr bus(gst_element_get_bus(pipe.get()));
    const gint64 deadline = g_get_monotonic_time() + gint64(timeout_s * G_USEC_PER_SEC);
    bool failed = false;
    while (!all && !failed && g_get_monotonic_time() < deadline) {
        GstMessage* m = gst_bus_timed_pop_filtered(bus.get(), 10 * GST_MSECOND, GST_MESSAGE_ERROR);
        if (m) {
            // Its pads are unlinked: once it has shown them, its first push fails so.
            failed = !all;
            gst_message_unref(m);
        }
    }
    if (all && !failed) {
        GstIterator* it = gst_element_iterate_src_pads(demux);
        GValue item = G_VALUE_INIT;
        while (gst_iterator_next(it, &item) == GST_ITERATOR_OK) {
            gst::CapsPtr caps(gst_pad_get_current_caps(GST_PAD(g_value_get_object(&item))));
            note_stream(out, kind_of(caps.get()), media_of(caps.get()));
            g_value_reset(&item);
        }
        g_value_unset(&item);
        gst_iterator_free(it);
        gint64 duration = -1;
        if (gst_element_query_duration(demux, GST_FORMAT_TIME, &duration) && duration > 0)
            out.duration_s = double(duration) / GST_SECOND;
        out.known = out.video || out.audio;
        if (out.known) out.demuxer = demuxer;
    }
    gst_element_set_state(pipe.get(), GST_STATE_NULL);
    return out;
}

}  // namespace

InputProbe probe_input(const std::string& path, const std::string& label, double timeout_s) {
    // open() first: its errno says "No such file" or "Permission denied" in plain words, where
    // the discoverer would say "Resource not found".
    // A pipe or fifo (--send <(ffmpeg ...)) is not probed: what the discoverer read would be
    // missing from the call, and opening a fifo twice breaks its writer.
    struct stat st = {};
    if (::stat(path.c_str(), &st) != 0)
        throw Error(ErrorCode::BadInput, label + ": " + std::strerror(errno));
    if (!S_ISREG(st.st_mode)) {
        InputProbe unknown;  // streams of any kind may come
        unknown.video = unknown.audio = true;
        return unknown;
    }
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(ErrorCode::BadInput, label + ": " + std::strerror(errno));
    const char* demuxer = demuxer_of(fd);
    ::close(fd);
    if (*demuxer) {
        InputProbe p = probe_demuxed(path, demuxer, timeout_s);
        if (p.known) return p;
    }

    GError* err = nullptr;
    gst::ObjectPtr<GstDiscoverer> disc(
        gst_discoverer_new(static_cast<GstClockTime>(timeout_s * GST_SECOND), &err));
    if (!disc) gst::throw_gerror(err, ErrorCode::Runtime, "cannot probe " + label);
    gst::GCharPtr uri(gst_filename_to_uri(path.c_str(), &err));
    if (!uri) gst::throw_gerror(err, ErrorCode::BadInput, label);
    std::unique_ptr<GstDiscovererInfo, DiscovererInfoUnref> info(
        gst_discoverer_discover_uri(disc.get(), uri.get(), &err));
    gst::GErrorPtr owned_err(err);
    const GstDiscovererResult result =
        info ? gst_discoverer_info_get_result(info.get()) : GST_DISCOVERER_ERROR;
    if (result == GST_DISCOVERER_TIMEOUT)
        throw Error(ErrorCode::BadInput,
                    label + ": no media found within " + std::to_string(int(timeout_s)) + " s");
    if (result == GST_DISCOVERER_MISSING_PLUGINS)
        throw Error(ErrorCode::MissingPlugin,
                    label + ": GStreamer has no plugin for this format (try gstreamer1.0-libav)");
    if (result != GST_DISCOVERER_OK)
        throw Error(ErrorCode::BadInput,
                    label + ": not a media file GStreamer can read" +
                        (owned_err ? std::string(" (") + owned_err->message + ")" : ""));

    InputProbe out;
    out.known = true;
    const GstClockTime duration = gst_discoverer_info_get_duration(info.get());
    if (GST_CLOCK_TIME_IS_VALID(duration)) out.duration_s = double(duration) / GST_SECOND;
    GList* streams = gst_discoverer_info_get_stream_list(info.get());
    for (GList* l = streams; l; l = l->next) {
        auto* s = static_cast<GstDiscovererStreamInfo*>(l->data);
        note_stream(out,
                    GST_IS_DISCOVERER_VIDEO_INFO(s)   ? "video"
                    : GST_IS_DISCOVERER_AUDIO_INFO(s) ? "audio"
                                                      : "",
                    media_type(s));
    }
    gst_discoverer_stream_info_list_free(streams);
    if (!out.video && !out.audio)
        throw Error(ErrorCode::BadInput, label + ": holds neither audio nor video");
    return out;
}

}  // namespace kms::media

namespace kms {

MediaInfo probe_media(const std::string& path) {
    const media::InputProbe p = media::probe_input(path, path);
    MediaInfo info;
    info.duration_s = p.duration_s;
    if (p.known && p.video) info.streams.push_back({"video", p.video_caps});
    if (p.known && p.audio) info.streams.push_back({"audio", p.audio_caps});
    return info;
}

}  // namespace kms
