// kmsflip and kmsgrayscale against GStreamer's own videoflip and videobalance: the same frame
// in, the same pixels out, for every format they take and for sizes that are odd and not a
// multiple of the eight bytes kmsflip moves at a time.
#include <catch2/catch.hpp>

#include <gst/app/gstappsink.h>
#include <gst/app/gstappsrc.h>
#include <gst/gst.h>
#include <gst/video/video.h>

#include <string>
#include <vector>

#include "filter/in_place.hpp"
#include "kms/runtime.hpp"

namespace {

// The visible bytes of each plane of the one frame that description ends in (an appsink named
// out), row by row: what a stride pads on is left out.
std::vector<std::string> planes_of(const std::string& description) {
    GError* err = nullptr;
    GstElement* pipe = gst_parse_launch(description.c_str(), &err);
    if (!pipe) FAIL(description << ": " << (err ? err->message : "?"));
    GstElement* out = gst_bin_get_by_name(GST_BIN(pipe), "out");
    gst_element_set_state(pipe, GST_STATE_PLAYING);
    GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 5 * GST_SECOND);
    std::vector<std::string> planes;
    if (sample) {
        GstVideoInfo info;
        GstVideoFrame frame;
        REQUIRE(gst_video_info_from_caps(&info, gst_sample_get_caps(sample)));
        REQUIRE(gst_video_frame_map(&frame, &info, gst_sample_get_buffer(sample), GST_MAP_READ));
        for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(&frame); ++p) {
            guint c = 0;
            while (GST_VIDEO_FORMAT_INFO_PLANE(info.finfo, c) != p) ++c;
            const auto* data = static_cast<const char*>(GST_VIDEO_FRAME_PLANE_DATA(&frame, p));
            const int stride = GST_VIDEO_FRAME_PLANE_STRIDE(&frame, p);
            const size_t row = size_t(GST_VIDEO_FRAME_COMP_WIDTH(&frame, c)) *
                               GST_VIDEO_FRAME_COMP_PSTRIDE(&frame, c);
            std::string bytes;
            for (int y = 0; y < GST_VIDEO_FRAME_COMP_HEIGHT(&frame, c); ++y)
                bytes.append(data + ptrdiff_t(y) * stride, row);
            planes.push_back(bytes);
        }
        gst_video_frame_unmap(&frame);
        gst_sample_unref(sample);
    }
    gst_element_set_state(pipe, GST_STATE_NULL);
    gst_object_unref(out);
    gst_object_unref(pipe);
    if (planes.empty()) FAIL(description << ": no frame");
    return planes;
}

std::string frame_of(const std::string& format, int w, int h, const std::string& element) {
    return "videotestsrc num-buffers=1 pattern=smpte ! video/x-raw,format=" + format +
           ",width=" + std::to_string(w) + ",height=" + std::to_string(h) + " ! " + element +
           " ! appsink name=out sync=false";
}

}  // namespace

TEST_CASE("kmsflip mirrors as videoflip does, in every format it takes", "[elements][filter]") {
    kms::init();
    kms::filter::register_in_place_elements();
    const char* formats[] = {"I420", "YV12", "Y444", "NV12", "NV21", "GRAY8", "AYUV", "RGBx",
                             "BGRx", "xRGB", "xBGR", "RGBA", "BGRA", "ARGB",  "ABGR"};
    const std::pair<int, int> sizes[] = {{64, 36}, {65, 37}, {17, 3}, {2, 2}};
    for (const char* f : formats)
        for (const auto& [w, h] : sizes)
            for (const bool vertical : {false, true}) {
                INFO(f << " " << w << "x" << h << (vertical ? " vertical" : " horizontal"));
                const auto want = planes_of(frame_of(
                    f, w, h,
                    std::string("videoflip video-direction=") + (vertical ? "vert" : "horiz")));
                const auto got = planes_of(frame_of(
                    f, w, h, std::string("kmsflip vertical=") + (vertical ? "true" : "false")));
                const auto input = planes_of(frame_of(f, w, h, "identity"));
                CHECK(got == want);
                CHECK(got != input);
            }
}

TEST_CASE("kmsgrayscale sets the chroma to 128 and leaves the luma", "[elements][filter]") {
    kms::init();
    kms::filter::register_in_place_elements();
    const char* formats[] = {"I420", "YV12", "Y42B", "Y444", "Y41B", "NV12", "NV21"};
    for (const char* f : formats) {
        INFO(f);
        const auto input = planes_of(frame_of(f, 65, 37, "identity"));
        const auto got = planes_of(frame_of(f, 65, 37, "kmsgrayscale"));
        REQUIRE(got.size() == input.size());
        CHECK(got[0] == input[0]);
        for (size_t p = 1; p < got.size(); ++p) {
            CHECK(got[p] == std::string(got[p].size(), char(128)));
            CHECK(input[p] != got[p]);
        }
        CHECK(got == planes_of(frame_of(f, 65, 37, "videobalance saturation=0")));
    }
}

TEST_CASE("kmsflip moves a region of interest and a crop with the picture", "[elements][filter]") {
    kms::init();
    kms::filter::register_in_place_elements();
    for (const bool vertical : {false, true}) {
        INFO((vertical ? "vertical" : "horizontal"));
        GError* err = nullptr;
        GstElement* pipe = gst_parse_launch(
            (std::string("appsrc name=in format=time caps=video/x-raw,format=I420,width=64,"
                         "height=36,framerate=30/1 ! kmsflip vertical=") +
             (vertical ? "true" : "false") + " ! appsink name=out sync=false")
                .c_str(),
            &err);
        REQUIRE(pipe);
        GstElement* in = gst_bin_get_by_name(GST_BIN(pipe), "in");
        GstElement* out = gst_bin_get_by_name(GST_BIN(pipe), "out");
        gst_element_set_state(pipe, GST_STATE_PLAYING);
        GstBuffer* b = gst_buffer_new_allocate(nullptr, 64 * 36 * 3 / 2, nullptr);
        gst_buffer_memset(b, 0, 16, 64 * 36 * 3 / 2);
        GST_BUFFER_PTS(b) = 0;
        // A face at x 10..30, y 4..12; a crop of x 2..50, y 1..31.
        gst_buffer_add_video_region_of_interest_meta(b, "face", 10, 4, 20, 8);
        GstVideoCropMeta* crop = gst_buffer_add_video_crop_meta(b);
        crop->x = 2;
        crop->y = 1;
        crop->width = 48;
        crop->height = 30;
        REQUIRE(gst_app_src_push_buffer(GST_APP_SRC(in), b) == GST_FLOW_OK);
        GstSample* sample = gst_app_sink_try_pull_sample(GST_APP_SINK(out), 5 * GST_SECOND);
        REQUIRE(sample);
        GstBuffer* got = gst_sample_get_buffer(sample);
        auto* roi = gst_buffer_get_video_region_of_interest_meta(got);
        auto* c = gst_buffer_get_video_crop_meta(got);
        REQUIRE(roi);
        REQUIRE(c);
        if (vertical) {
            CHECK((roi->x == 10 && roi->y == 36 - 4 - 8 && roi->w == 20 && roi->h == 8));
            CHECK((c->x == 2 && c->y == 36 - 1 - 30 && c->width == 48 && c->height == 30));
        } else {
            CHECK((roi->x == 64 - 10 - 20 && roi->y == 4 && roi->w == 20 && roi->h == 8));
            CHECK((c->x == 64 - 2 - 48 && c->y == 1 && c->width == 48 && c->height == 30));
        }
        gst_sample_unref(sample);
        gst_element_set_state(pipe, GST_STATE_NULL);
        gst_object_unref(in);
        gst_object_unref(out);
        gst_object_unref(pipe);
    }
}
