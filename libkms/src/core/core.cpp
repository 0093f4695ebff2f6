#include <atomic>
#include <chrono>
#include <mutex>
#include <sstream>

#include <gst/gst.h>

#include "core/log.hpp"
#include "kms/error.hpp"
#include "kms/events.hpp"
#include "kms/runtime.hpp"
#include "kms/version.hpp"

#ifndef KMS_VERSION
#error "KMS_VERSION must be defined by the build"
#endif

namespace kms {

namespace {
GstDebugCategory* cat_core = nullptr;
GstDebugCategory* cat_webrtc = nullptr;
GstDebugCategory* cat_pipeline = nullptr;
GstDebugCategory* cat_source = nullptr;
GstDebugCategory* cat_sink = nullptr;
GstDebugCategory* cat_filter = nullptr;
}  // namespace

namespace log {
GstDebugCategory* core() {
    return cat_core;
}
GstDebugCategory* webrtc() {
    return cat_webrtc;
}
GstDebugCategory* pipeline() {
    return cat_pipeline;
}
GstDebugCategory* source() {
    return cat_source;
}
GstDebugCategory* sink() {
    return cat_sink;
}
GstDebugCategory* filter() {
    return cat_filter;
}
}  // namespace log

const char* to_string(ErrorCode code) noexcept {
    switch (code) {
        case ErrorCode::Runtime:
            return "runtime";
        case ErrorCode::InvalidArgument:
            return "invalid-argument";
        case ErrorCode::BadInput:
            return "bad-input";
        case ErrorCode::Network:
            return "network";
        case ErrorCode::Negotiation:
            return "negotiation";
        case ErrorCode::NoMedia:
            return "no-media";
        case ErrorCode::Io:
            return "io";
        case ErrorCode::MissingPlugin:
            return "missing-plugin";
    }
    return "runtime";
}

const char* version() noexcept {
    return KMS_VERSION;
}

std::string gstreamer_version() {
    guint major = 0, minor = 0, micro = 0, nano = 0;
    gst_version(&major, &minor, &micro, &nano);
    std::ostringstream s;
    s << major << '.' << minor << '.' << micro;
    return s.str();
}

void init() {
    static std::once_flag once;
    std::call_once(once, [] {
        gst_init(nullptr, nullptr);
        GST_DEBUG_CATEGORY_INIT(cat_core, "kms-core", 0, "kms core");
        GST_DEBUG_CATEGORY_INIT(cat_webrtc, "kms-webrtc", 0, "kms WebRTC endpoint");
        GST_DEBUG_CATEGORY_INIT(cat_pipeline, "kms-pipeline", 0, "kms pipeline and connect()");
        GST_DEBUG_CATEGORY_INIT(cat_source, "kms-source", 0, "kms media sources");
        GST_DEBUG_CATEGORY_INIT(cat_sink, "kms-sink", 0, "kms media sinks");
        GST_DEBUG_CATEGORY_INIT(cat_filter, "kms-filter", 0, "kms media filters");
    });
}

namespace {
std::atomic<int> g_library_verbosity{0};
}  // namespace

void set_library_verbosity(int verbose) {
    g_library_verbosity = verbose;
    // libnice's "Could not ..." warnings and plugins' g_warning() are for -v, not for cron mail.
    // GLib takes a writer function once per process.
    static std::once_flag once;
    std::call_once(once, [] {
        g_log_set_writer_func(
            [](GLogLevelFlags level, const GLogField* fields, gsize n, gpointer) {
                if (g_library_verbosity < 1 &&
                    !(level & (G_LOG_LEVEL_ERROR | G_LOG_LEVEL_CRITICAL)))
                    return G_LOG_WRITER_HANDLED;
                return g_log_writer_default(level, fields, n, nullptr);
            },
            nullptr, nullptr);
    });
}

bool has_element(const std::string& element) {
    init();
    GstElementFactory* f = gst_element_factory_find(element.c_str());
    if (!f) return false;
    gst_object_unref(f);
    return true;
}

void require_elements(const std::vector<PluginNeed>& needs) {
    std::string missing;
    std::string packages;
    for (const auto& n : needs) {
        if (has_element(n.element)) continue;
        missing += (missing.empty() ? "" : ", ") + n.element;
        if (packages.find(n.package) == std::string::npos)
            packages += (packages.empty() ? "" : " ") + n.package;
    }
    if (!missing.empty())
        throw Error(ErrorCode::MissingPlugin, "GStreamer element(s) " + missing +
                                                  " not installed; install them with: apt-get "
                                                  "install " +
                                                  packages);
}

double now_ms() {
    using namespace std::chrono;
    return duration<double, std::milli>(system_clock::now().time_since_epoch()).count();
}

}  // namespace kms
