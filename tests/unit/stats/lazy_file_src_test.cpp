// The probe's lazy file source: it serves a file's byte ranges in pull mode as filesrc does, and
// reads a range only when its buffer is mapped.
#include <gst/gst.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "kms/runtime.hpp"
#include "lazy_file_src.hpp"

using kms::stats::lazy_file_src_new;

namespace {

std::vector<guint8> pattern(size_t n, int salt) {
    std::vector<guint8> v(n);
    for (size_t i = 0; i < n; ++i) v[i] = static_cast<guint8>((i * 7 + salt) % 251);
    return v;
}

void write_file(const std::string& path, const std::vector<guint8>& bytes) {
    std::ofstream(path, std::ios::binary)
        .write(reinterpret_cast<const char*>(bytes.data()), std::streamsize(bytes.size()));
}

std::vector<guint8> bytes_of(GstBuffer* buf) {
    GstMapInfo info;
    if (!gst_buffer_map(buf, &info, GST_MAP_READ)) return {};
    std::vector<guint8> v(info.data, info.data + info.size);
    gst_buffer_unmap(buf, &info);
    return v;
}

// A pulled source: the pad activated in pull mode, as qtdemux activates it.
struct Pulled {
    GstElement* src;
    GstPad* pad;
    explicit Pulled(const std::string& path) {
        GError* err = nullptr;
        src = GST_ELEMENT(gst_object_ref_sink(lazy_file_src_new(path, &err)));
        pad = gst_element_get_static_pad(src, "src");
        REQUIRE(gst_pad_activate_mode(pad, GST_PAD_MODE_PULL, TRUE));
    }
    ~Pulled() {
        gst_pad_activate_mode(pad, GST_PAD_MODE_PULL, FALSE);
        gst_object_unref(pad);
        gst_object_unref(src);
    }
    GstFlowReturn pull(guint64 at, guint size, GstBuffer** buf) {
        *buf = nullptr;
        return gst_pad_get_range(pad, at, size, buf);
    }
};

}  // namespace

TEST_CASE("lazy file source serves byte ranges as filesrc would", "[stats][lazy]") {
    kms::init();
    const std::string path =
        (std::filesystem::temp_directory_path() / ("kms-lazy-" + std::to_string(getpid()) + ".bin"))
            .string();
    const auto bytes = pattern(100000, 0);
    write_file(path, bytes);
    {
        Pulled p(path);
        GstBuffer* buf = nullptr;
        REQUIRE(p.pull(1000, 5000, &buf) == GST_FLOW_OK);
        CHECK(gst_buffer_get_size(buf) == 5000);
        CHECK(bytes_of(buf) == std::vector<guint8>(bytes.begin() + 1000, bytes.begin() + 6000));

        // A region of it (what a demuxer's sub-buffer takes) and a deep copy read the same.
        GstBuffer* part = gst_buffer_copy_region(buf, GST_BUFFER_COPY_MEMORY, 10, 20);
        CHECK(bytes_of(part) == std::vector<guint8>(bytes.begin() + 1010, bytes.begin() + 1030));
        GstBuffer* deep = gst_buffer_copy_deep(buf);
        CHECK(bytes_of(deep) == bytes_of(buf));
        gst_buffer_unref(part);
        gst_buffer_unref(deep);
        gst_buffer_unref(buf);

        // The last range is cut at the end of the file; past it is the end of the stream.
        REQUIRE(p.pull(99990, 100, &buf) == GST_FLOW_OK);
        CHECK(gst_buffer_get_size(buf) == 10);
        CHECK(bytes_of(buf) == std::vector<guint8>(bytes.end() - 10, bytes.end()));
        gst_buffer_unref(buf);
        CHECK(p.pull(100000, 100, &buf) == GST_FLOW_EOS);
    }
    std::filesystem::remove(path);
}

TEST_CASE("lazy file source reads a range only when it is mapped", "[stats][lazy]") {
    kms::init();
    const std::string path = (std::filesystem::temp_directory_path() /
                              ("kms-lazy2-" + std::to_string(getpid()) + ".bin"))
                                 .string();
    write_file(path, pattern(100000, 0));
    {
        Pulled p(path);
        GstBuffer* unread = nullptr;
        GstBuffer* cut = nullptr;
        REQUIRE(p.pull(0, 4096, &unread) == GST_FLOW_OK);
        REQUIRE(p.pull(90000, 4096, &cut) == GST_FLOW_OK);
        // The file changes under the pulled buffers: the first, mapped only now, reads the new
        // bytes (nothing was read when it was pulled)...
        const auto changed = pattern(100000, 3);
        write_file(path, std::vector<guint8>(changed.begin(), changed.begin() + 50000));
        CHECK(bytes_of(unread) == std::vector<guint8>(changed.begin(), changed.begin() + 4096));
        // ...and the second now lies past the end: its map fails, never zeros in its place.
        GstMapInfo info;
        CHECK_FALSE(gst_buffer_map(cut, &info, GST_MAP_READ));
        gst_buffer_unref(unread);
        gst_buffer_unref(cut);
    }
    std::filesystem::remove(path);
}

TEST_CASE("lazy file source refuses a file it cannot open", "[stats][lazy]") {
    kms::init();
    GError* err = nullptr;
    CHECK(lazy_file_src_new("/nonexistent/kms-lazy.mp4", &err) == nullptr);
    REQUIRE(err != nullptr);
    CHECK(std::string(err->message).find("/nonexistent/kms-lazy.mp4") != std::string::npos);
    g_error_free(err);
}
