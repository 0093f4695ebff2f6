// libkms's GStreamer debug categories, one per module: GST_DEBUG=kms*:5 shows our lines among
// GStreamer's. Private to libkms.
#pragma once

#include <gst/gst.h>

namespace kms::log {

GstDebugCategory* core();
GstDebugCategory* webrtc();
GstDebugCategory* pipeline();
GstDebugCategory* source();
GstDebugCategory* sink();
GstDebugCategory* filter();

}  // namespace kms::log

#define KMS_LOG(cat, level, ...) \
    GST_CAT_LEVEL_LOG(::kms::log::cat(), GST_LEVEL_##level, nullptr, __VA_ARGS__)
