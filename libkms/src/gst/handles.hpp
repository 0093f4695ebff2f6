// RAII owners for GLib/GStreamer/OpenSSL handles. Business code never calls *_unref by hand.
//
// Floating references: gst_element_factory_make() and gst_parse_bin_from_description() return
// a floating reference; gst_bin_add() sinks it, so an element added to a bin is owned by the bin
// and must not be wrapped in GstPtr afterwards unless we take a reference of our own (ref()).
#pragma once

#include <memory>
#include <string>
#include <utility>

#include <gst/gst.h>
#include <gst/sdp/sdp.h>
#include <gst/webrtc/webrtc.h>

#include "kms/error.hpp"

namespace kms::gst {

struct ObjectUnref {
    void operator()(gpointer p) const { gst_object_unref(p); }
};
template <typename T>
using ObjectPtr = std::unique_ptr<T, ObjectUnref>;
using ElementPtr = ObjectPtr<GstElement>;
using PadPtr = ObjectPtr<GstPad>;
using BusPtr = ObjectPtr<GstBus>;

/// Takes a new reference and owns it.
template <typename T>
ObjectPtr<T> ref(T* obj) {
    return ObjectPtr<T>(obj ? static_cast<T*>(gst_object_ref(obj)) : nullptr);
}

struct GFreeDeleter {
    void operator()(gpointer p) const { g_free(p); }
};
using GCharPtr = std::unique_ptr<gchar, GFreeDeleter>;

struct GErrorDeleter {
    void operator()(GError* e) const { g_error_free(e); }
};
using GErrorPtr = std::unique_ptr<GError, GErrorDeleter>;

struct CapsUnref {
    void operator()(GstCaps* c) const { gst_caps_unref(c); }
};
using CapsPtr = std::unique_ptr<GstCaps, CapsUnref>;

struct StructureFree {
    void operator()(GstStructure* s) const { gst_structure_free(s); }
};
using StructurePtr = std::unique_ptr<GstStructure, StructureFree>;

struct PromiseUnref {
    void operator()(GstPromise* p) const { gst_promise_unref(p); }
};
using PromisePtr = std::unique_ptr<GstPromise, PromiseUnref>;

struct SdpMessageFree {
    void operator()(GstSDPMessage* m) const { gst_sdp_message_free(m); }
};
using SdpMessagePtr = std::unique_ptr<GstSDPMessage, SdpMessageFree>;

struct SessionDescriptionFree {
    void operator()(GstWebRTCSessionDescription* d) const {
        gst_webrtc_session_description_free(d);
    }
};
using SessionDescriptionPtr = std::unique_ptr<GstWebRTCSessionDescription, SessionDescriptionFree>;

struct IterFree {
    void operator()(GstIterator* it) const { gst_iterator_free(it); }
};
using IteratorPtr = std::unique_ptr<GstIterator, IterFree>;

/// A GError becomes a kms::Error at once, with its message.
[[noreturn]] inline void throw_gerror(GError* raw, ErrorCode code, const std::string& what) {
    GErrorPtr err(raw);
    throw Error(code, what + (err ? std::string(": ") + err->message : std::string()));
}

/// A signal handler connection that disconnects when it goes out of scope.
class SignalConnection {
  public:
    SignalConnection() = default;
    SignalConnection(gpointer instance, gulong id)
        : instance_(instance ? g_object_ref(instance) : nullptr), id_(id) {}
    ~SignalConnection() { reset(); }
    SignalConnection(SignalConnection&& o) noexcept
        : instance_(std::exchange(o.instance_, nullptr)), id_(std::exchange(o.id_, 0)) {}
    SignalConnection& operator=(SignalConnection&& o) noexcept {
        if (this != &o) {
            reset();
            instance_ = std::exchange(o.instance_, nullptr);
            id_ = std::exchange(o.id_, 0);
        }
        return *this;
    }
    SignalConnection(const SignalConnection&) = delete;
    SignalConnection& operator=(const SignalConnection&) = delete;

    void reset() {
        if (instance_) {
            if (id_ && g_signal_handler_is_connected(instance_, id_))
                g_signal_handler_disconnect(instance_, id_);
            g_object_unref(instance_);
        }
        instance_ = nullptr;
        id_ = 0;
    }

  private:
    gpointer instance_ = nullptr;
    gulong id_ = 0;
};

// In a buffer probe: takes the buffer (or list) and answers upstream with EOS, so a stream
// cut here is not read on for nothing. HANDLED, not DROP: only then does 1.22 return the flow
// given here.
inline GstPadProbeReturn answer_eos(GstPadProbeInfo* info) {
    if (GST_PAD_PROBE_INFO_TYPE(info) & GST_PAD_PROBE_TYPE_BUFFER_LIST)
        gst_buffer_list_unref(GST_PAD_PROBE_INFO_BUFFER_LIST(info));
    else
        gst_buffer_unref(GST_PAD_PROBE_INFO_BUFFER(info));
    GST_PAD_PROBE_INFO_DATA(info) = nullptr;
    GST_PAD_PROBE_INFO_FLOW_RETURN(info) = GST_FLOW_EOS;
    return GST_PAD_PROBE_HANDLED;
}

}  // namespace kms::gst
