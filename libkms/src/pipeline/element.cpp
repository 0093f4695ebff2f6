// Element::Core and the helpers every element uses to build its GStreamer side
// (element.hpp). Pipeline is in pipeline.cpp.
#include "pipeline/element.hpp"

#include <utility>

#include "core/log.hpp"
#include "gst/handles.hpp"
#include "kms/runtime.hpp"

namespace kms {

// ---- helpers ---------------------------------------------------------------------------------

std::string media_of(const GstCaps* caps) {
    if (!caps || gst_caps_is_empty(caps) || gst_caps_is_any(caps)) return {};
    return gst_structure_get_name(gst_caps_get_structure(caps, 0));
}

std::string kind_of(const GstCaps* caps) {
    const std::string m = media_of(caps);
    if (m.rfind("video/", 0) == 0 || m.rfind("image/", 0) == 0) return "video";
    if (m.rfind("audio/", 0) == 0) return "audio";
    return {};
}

gst::CapsPtr caps_of(GstPad* pad) {
    gst::CapsPtr caps(gst_pad_get_current_caps(pad));
    if (!caps) caps.reset(gst_pad_query_caps(pad, nullptr));
    return caps;
}

GstElement* make_bin(const std::string& description) {
    GError* err = nullptr;
    GstElement* bin = gst_parse_bin_from_description(description.c_str(), TRUE, &err);
    if (!bin) gst::throw_gerror(err, ErrorCode::Runtime, "cannot build '" + description + "'");
    if (err) g_error_free(err);  // a warning: the bin is usable
    return bin;
}

GstElement* make_element(const char* factory, const char* package, const char* name) {
    GstElement* e = gst_element_factory_make(factory, name);
    if (!e)
        throw Error(ErrorCode::MissingPlugin, std::string("GStreamer element '") + factory +
                                                  "' is missing; install " + package);
    return e;
}

BusProblem parse_problem(GstMessage* msg) {
    GError* err = nullptr;
    gchar* dbg = nullptr;
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_ERROR)
        gst_message_parse_error(msg, &err, &dbg);
    else
        gst_message_parse_warning(msg, &err, &dbg);
    return BusProblem{gst::GErrorPtr(err), gst::GCharPtr(dbg)};
}

void on_routine_message(GstMessage* msg, GstElement* pipeline, GstDebugCategory* cat) {
    if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_WARNING) {
        const BusProblem p = parse_problem(msg);
        GST_CAT_WARNING(cat, "%s (%s)", p.error->message, p.detail());
    } else if (GST_MESSAGE_TYPE(msg) == GST_MESSAGE_LATENCY) {
        gst_bin_recalculate_latency(GST_BIN(pipeline));
    }
}

ErrorCode error_code_of(const GError* e) {
    if (e->domain == GST_RESOURCE_ERROR &&
        (e->code == GST_RESOURCE_ERROR_OPEN_WRITE || e->code == GST_RESOURCE_ERROR_WRITE ||
         e->code == GST_RESOURCE_ERROR_NO_SPACE_LEFT))
        return ErrorCode::Io;
    if (e->domain == GST_RESOURCE_ERROR &&
        (e->code == GST_RESOURCE_ERROR_NOT_FOUND || e->code == GST_RESOURCE_ERROR_OPEN_READ ||
         e->code == GST_RESOURCE_ERROR_READ))
        return ErrorCode::BadInput;
    if (e->domain == GST_STREAM_ERROR &&
        (e->code == GST_STREAM_ERROR_TYPE_NOT_FOUND || e->code == GST_STREAM_ERROR_DECODE ||
         e->code == GST_STREAM_ERROR_WRONG_TYPE || e->code == GST_STREAM_ERROR_DEMUX))
        return ErrorCode::BadInput;
    if (e->domain == GST_CORE_ERROR && e->code == GST_CORE_ERROR_MISSING_PLUGIN)
        return ErrorCode::MissingPlugin;
    return ErrorCode::Runtime;
}

// ---- Element ---------------------------------------------------------------------------------

Element::Core::Core(std::string element_name) : name(std::move(element_name)) {
    init();
    bin.reset(GST_ELEMENT(gst_object_ref_sink(gst_bin_new(name.c_str()))));
}

Element::Core::~Core() = default;

GstPad* Element::Core::ghost(GstPad* target, const std::string& pad_name) {
    GstPad* g = gst_ghost_pad_new(pad_name.c_str(), target);
    if (!g) {  // the link to target failed (callers say what that means)
        KMS_LOG(pipeline, WARNING, "cannot ghost %s as %s", GST_OBJECT_NAME(target),
                pad_name.c_str());
        return nullptr;
    }
    gst_pad_set_active(g, TRUE);
    gst_element_add_pad(bin.get(), g);  // takes the floating reference
    return g;
}

void Element::Core::expose(GstPad* target, const std::string& kind) {
    PadListener fn;
    GstPad* pad = nullptr;
    {
        std::lock_guard lock(mutex_);
        pad = ghost(target, kind + "_" + std::to_string(next_++));
        if (!pad) return;  // logged: the stream stays inside, unconnected
        exposed_.emplace_back(gst::ref(pad), kind);
        fn = listener_;
    }
    if (fn) fn(pad, kind);
}

void Element::Core::listen(PadListener fn) {
    std::vector<std::pair<gst::PadPtr, std::string>> before;
    {
        std::lock_guard lock(mutex_);
        listener_ = fn;
        for (auto& [pad, kind] : exposed_) before.emplace_back(gst::ref(pad.get()), kind);
    }
    for (auto& [pad, kind] : before) fn(pad.get(), kind);
}

bool Element::Core::listened() const {
    std::lock_guard lock(mutex_);
    return static_cast<bool>(listener_);
}

void Element::Core::when_all_exposed(std::function<void()> fn) {
    {
        std::lock_guard lock(mutex_);
        if (!all_exposed_) {
            exposed_listeners_.push_back(std::move(fn));
            return;
        }
    }
    fn();
}

void Element::Core::announce_all_exposed() {
    std::vector<std::function<void()>> fns;
    {
        std::lock_guard lock(mutex_);
        if (all_exposed_.exchange(true)) return;
        fns.swap(exposed_listeners_);
    }
    for (auto& fn : fns) fn();
}

std::string Element::Core::describe_error(const GError* e, ErrorCode) const {
    return name + ": " + e->message;
}

Element::Element(std::shared_ptr<Core> core) : core_(std::move(core)) {}
Element::~Element() = default;

std::string Element::name() const {
    return core_->name;
}

std::vector<StreamInfo> Element::streams() const {
    return core_->known;
}

}  // namespace kms
