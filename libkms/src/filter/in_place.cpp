#include "filter/in_place.hpp"

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <mutex>

#include <gst/video/gstvideofilter.h>
#include <gst/video/video.h>

namespace kms::filter {

namespace {

// ---- Pixels. A row holds n elements of size bytes each (1, 2 or 4); nothing else is touched,
// so the padding at the end of a stride stays as it was.

// Reverses n bytes, eight at a time from both ends (std::reverse goes byte by byte).
void reverse_bytes(uint8_t* p, size_t n) {
    uint8_t* a = p;
    uint8_t* b = p + n;
    while (b - a >= 16) {
        b -= 8;
        uint64_t x, y;
        std::memcpy(&x, a, 8);
        std::memcpy(&y, b, 8);
        x = __builtin_bswap64(x);
        y = __builtin_bswap64(y);
        std::memcpy(a, &y, 8);
        std::memcpy(b, &x, 8);
        a += 8;
    }
    std::reverse(a, b);
}

template <size_t Size>
struct Element {
    uint8_t bytes[Size];
};

void reverse_row(uint8_t* row, size_t n, int size) {
    switch (size) {
        case 1:
            reverse_bytes(row, n);
            break;
        case 2:
            std::reverse(reinterpret_cast<Element<2>*>(row),
                         reinterpret_cast<Element<2>*>(row) + n);
            break;
        default:
            std::reverse(reinterpret_cast<Element<4>*>(row),
                         reinterpret_cast<Element<4>*>(row) + n);
            break;
    }
}

// A plane's size: the width and height of the first component it holds, and the bytes of one
// of its elements (2 for NV12's interleaved UV).
struct Plane {
    uint8_t* data = nullptr;
    int stride = 0;
    int width = 0;
    int height = 0;
    int element = 1;
};

Plane plane_of(GstVideoFrame* frame, guint p) {
    Plane pl;
    pl.data = static_cast<uint8_t*>(GST_VIDEO_FRAME_PLANE_DATA(frame, p));
    pl.stride = GST_VIDEO_FRAME_PLANE_STRIDE(frame, p);
    for (guint c = 0; c < GST_VIDEO_FRAME_N_COMPONENTS(frame); ++c) {
        if (GST_VIDEO_FORMAT_INFO_PLANE(frame->info.finfo, c) != p) continue;
        pl.width = GST_VIDEO_FRAME_COMP_WIDTH(frame, c);
        pl.height = GST_VIDEO_FRAME_COMP_HEIGHT(frame, c);
        pl.element = GST_VIDEO_FRAME_COMP_PSTRIDE(frame, c);
        break;
    }
    return pl;
}

void mirror(GstVideoFrame* frame, bool vertical) {
    for (guint p = 0; p < GST_VIDEO_FRAME_N_PLANES(frame); ++p) {
        const Plane pl = plane_of(frame, p);
        if (vertical) {
            const size_t bytes = static_cast<size_t>(pl.width) * pl.element;
            for (int top = 0, bottom = pl.height - 1; top < bottom; ++top, --bottom)
                std::swap_ranges(pl.data + static_cast<ptrdiff_t>(top) * pl.stride,
                                 pl.data + static_cast<ptrdiff_t>(top) * pl.stride + bytes,
                                 pl.data + static_cast<ptrdiff_t>(bottom) * pl.stride);
        } else {
            for (int y = 0; y < pl.height; ++y)
                reverse_row(pl.data + static_cast<ptrdiff_t>(y) * pl.stride,
                            static_cast<size_t>(pl.width), pl.element);
        }
    }
}

// Every chroma sample to 128, the middle of its range in both full and limited range: the
// picture keeps its luma, as with videobalance saturation=0 or ffmpeg's hue=s=0.
void drain_colour(GstVideoFrame* frame) {
    for (guint p = 1; p < GST_VIDEO_FRAME_N_PLANES(frame); ++p) {
        const Plane pl = plane_of(frame, p);
        const size_t bytes = static_cast<size_t>(pl.width) * pl.element;
        for (int y = 0; y < pl.height; ++y)
            std::memset(pl.data + static_cast<ptrdiff_t>(y) * pl.stride, 128, bytes);
    }
}

// ---- The elements. Formats whose planes hold whole elements of 1, 2 or 4 bytes (no packed
// 4:2:2, no 24-bit RGB, no more than 8 bits a sample).

// The formats GStreamer's videoflip and videobalance take too, so that the unit test holds
// every one to what they make.
constexpr const char* kFlipCaps =
    "video/x-raw, format=(string){ I420, YV12, Y444, NV12, NV21, GRAY8, AYUV, RGBx, BGRx, "
    "xRGB, xBGR, RGBA, BGRA, ARGB, ABGR }";
constexpr const char* kGrayCaps =
    "video/x-raw, format=(string){ I420, YV12, Y42B, Y444, Y41B, NV12, NV21 }";

void add_templates(GstElementClass* klass, const char* caps_text) {
    GstCaps* caps = gst_caps_from_string(caps_text);
    gst_element_class_add_pad_template(
        klass, gst_pad_template_new("sink", GST_PAD_SINK, GST_PAD_ALWAYS, caps));
    gst_element_class_add_pad_template(
        klass, gst_pad_template_new("src", GST_PAD_SRC, GST_PAD_ALWAYS, caps));
    gst_caps_unref(caps);
}

// Always in place: basetransform hands over a writable buffer, copying only one that is shared.
void in_place_init(GTypeInstance* instance, gpointer) {
    gst_base_transform_set_in_place(GST_BASE_TRANSFORM(instance), TRUE);
}

// kmsflip
struct Flip {
    GstVideoFilter parent;
    gboolean vertical;
};

enum { PROP_0, PROP_VERTICAL };

void flip_set_property(GObject* object, guint id, const GValue* value, GParamSpec* spec) {
    auto* self = reinterpret_cast<Flip*>(object);
    if (id == PROP_VERTICAL) {
        GST_OBJECT_LOCK(object);
        self->vertical = g_value_get_boolean(value);
        GST_OBJECT_UNLOCK(object);
    } else {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, spec);
    }
}

void flip_get_property(GObject* object, guint id, GValue* value, GParamSpec* spec) {
    auto* self = reinterpret_cast<Flip*>(object);
    if (id == PROP_VERTICAL) {
        GST_OBJECT_LOCK(object);
        g_value_set_boolean(value, self->vertical);
        GST_OBJECT_UNLOCK(object);
    } else {
        G_OBJECT_WARN_INVALID_PROPERTY_ID(object, id, spec);
    }
}

// A span [at, at + size) of a line `length` long, seen in the mirror.
guint mirrored(guint at, guint size, guint length) {
    return at + size < length ? length - at - size : 0;
}

// Metas that say where something is in the picture follow the pixels: a face found upstream
// (region of interest) stays on the face, a crop keeps the same part of the picture. An
// overlay composition is left where it is, to be drawn unmirrored (text stays readable).
void mirror_metas(GstBuffer* buffer, guint width, guint height, bool vertical) {
    gpointer state = nullptr;
    while (GstMeta* m = gst_buffer_iterate_meta(buffer, &state)) {
        if (m->info->api == GST_VIDEO_CROP_META_API_TYPE) {
            auto* c = reinterpret_cast<GstVideoCropMeta*>(m);
            if (vertical)
                c->y = mirrored(c->y, c->height, height);
            else
                c->x = mirrored(c->x, c->width, width);
        } else if (m->info->api == GST_VIDEO_REGION_OF_INTEREST_META_API_TYPE) {
            auto* r = reinterpret_cast<GstVideoRegionOfInterestMeta*>(m);
            if (vertical)
                r->y = mirrored(r->y, r->h, height);
            else
                r->x = mirrored(r->x, r->w, width);
        }
    }
}

GstFlowReturn flip_frame(GstVideoFilter* filter, GstVideoFrame* frame) {
    GST_OBJECT_LOCK(filter);
    const bool vertical = reinterpret_cast<Flip*>(filter)->vertical;
    GST_OBJECT_UNLOCK(filter);
    mirror(frame, vertical);
    mirror_metas(frame->buffer, GST_VIDEO_FRAME_WIDTH(frame), GST_VIDEO_FRAME_HEIGHT(frame),
                 vertical);
    return GST_FLOW_OK;
}

void flip_class_init(gpointer klass, gpointer) {
    auto* object = G_OBJECT_CLASS(klass);
    object->set_property = flip_set_property;
    object->get_property = flip_get_property;
    g_object_class_install_property(
        object, PROP_VERTICAL,
        g_param_spec_boolean("vertical", "Vertical", "Mirror top to bottom (else left to right)",
                             FALSE,
                             static_cast<GParamFlags>(G_PARAM_READWRITE | G_PARAM_STATIC_STRINGS)));
    auto* element = GST_ELEMENT_CLASS(klass);
    gst_element_class_set_static_metadata(element, "kms mirror", "Filter/Effect/Video",
                                          "Mirrors the picture in place", "kms");
    add_templates(element, kFlipCaps);
    GST_VIDEO_FILTER_CLASS(klass)->transform_frame_ip = flip_frame;
}

// kmsgrayscale
GstFlowReturn gray_frame(GstVideoFilter*, GstVideoFrame* frame) {
    drain_colour(frame);
    return GST_FLOW_OK;
}

void gray_class_init(gpointer klass, gpointer) {
    auto* element = GST_ELEMENT_CLASS(klass);
    gst_element_class_set_static_metadata(element, "kms grayscale", "Filter/Effect/Video",
                                          "Takes the colour out of the picture in place", "kms");
    add_templates(element, kGrayCaps);
    GST_VIDEO_FILTER_CLASS(klass)->transform_frame_ip = gray_frame;
}

GType make_type(const char* name, gsize instance_size, GClassInitFunc class_init) {
    GTypeInfo info{};
    info.class_size = sizeof(GstVideoFilterClass);
    info.class_init = class_init;
    info.instance_size = static_cast<guint16>(instance_size);
    info.instance_init = in_place_init;
    return g_type_register_static(GST_TYPE_VIDEO_FILTER, name, &info, GTypeFlags(0));
}

}  // namespace

void register_in_place_elements() {
    static std::once_flag once;
    std::call_once(once, [] {
        gst_element_register(nullptr, "kmsflip", GST_RANK_NONE,
                             make_type("KmsFlip", sizeof(Flip), flip_class_init));
        gst_element_register(nullptr, "kmsgrayscale", GST_RANK_NONE,
                             make_type("KmsGrayscale", sizeof(GstVideoFilter), gray_class_init));
    });
}

}  // namespace kms::filter
