// RAII owners for the few GStreamer and GLib handles kms-stats holds. The floating-reference
// rule: gst_element_factory_make() returns a floating reference that gst_bin_add() sinks, so an
// element added to a bin is owned by the bin and needs no owner here.
#pragma once

#include <gst/gst.h>

#include <memory>

namespace kms::stats {

struct GstObjectUnref {
    void operator()(gpointer p) const {
        if (p) gst_object_unref(p);
    }
};
struct GstCapsUnref {
    void operator()(GstCaps* c) const {
        if (c) gst_caps_unref(c);
    }
};
struct GFree {
    void operator()(gpointer p) const { g_free(p); }
};
struct GErrorFree {
    void operator()(GError* e) const {
        if (e) g_error_free(e);
    }
};
struct GstMessageUnref {
    void operator()(GstMessage* m) const {
        if (m) gst_message_unref(m);
    }
};

using ElementPtr = std::unique_ptr<GstElement, GstObjectUnref>;
using BusPtr = std::unique_ptr<GstBus, GstObjectUnref>;
using PadPtr = std::unique_ptr<GstPad, GstObjectUnref>;
using CapsPtr = std::unique_ptr<GstCaps, GstCapsUnref>;
using CharPtr = std::unique_ptr<gchar, GFree>;
using ErrorPtr = std::unique_ptr<GError, GErrorFree>;
using MessagePtr = std::unique_ptr<GstMessage, GstMessageUnref>;

}  // namespace kms::stats
