#include "media/input_probe.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include <gst/pbutils/pbutils.h>

#include "gst/handles.hpp"
#include "kms/error.hpp"
#include "kms/probe.hpp"

namespace kms::media {

namespace {

struct DiscovererInfoUnref {
    void operator()(GstDiscovererInfo* i) const { gst_discoverer_info_unref(i); }
};

std::string media_type(GstDiscovererStreamInfo* s) {
    gst::CapsPtr caps(gst_discoverer_stream_info_get_caps(s));
    if (!caps || gst_caps_is_empty(caps.get())) return {};
    return gst_structure_get_name(gst_caps_get_structure(caps.get(), 0));
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
    if (!S_ISREG(st.st_mode)) return InputProbe{false, true, true, {}, {}, 0};
    const int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) throw Error(ErrorCode::BadInput, label + ": " + std::strerror(errno));
    ::close(fd);

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
        if (GST_IS_DISCOVERER_VIDEO_INFO(s) || GST_IS_DISCOVERER_AUDIO_INFO(s)) ++out.streams;
        if (GST_IS_DISCOVERER_VIDEO_INFO(s) && !out.video) {
            out.video = true;
            out.video_caps = media_type(s);
        } else if (GST_IS_DISCOVERER_AUDIO_INFO(s) && !out.audio) {
            out.audio = true;
            out.audio_caps = media_type(s);
        }
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
