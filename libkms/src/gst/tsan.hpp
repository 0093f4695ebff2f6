// Happens-before annotations for ThreadSanitizer at the hand-offs kms makes through GLib and
// GStreamer. They compile to nothing unless the build is KMS_SANITIZE=thread.
//
// Why: only kms is instrumented. GLib's thread pool queue and GStreamer's atomic reference
// counts synchronise threads in code TSan cannot see, so an object kms hands to another thread
// that way (a job for GStreamer's thread pool, a bus message the last holder frees elsewhere)
// looks to TSan like a race. Locks are taught separately (tests/sanitizers/glib_tsan.c).
#pragma once

#include <gst/gst.h>

#if defined(__SANITIZE_THREAD__)
#include <sanitizer/tsan_interface.h>
#endif

namespace kms::tsan {

#if defined(__SANITIZE_THREAD__)
/// What this thread did before is visible to the thread that later calls acquire(addr).
inline void release(const void* addr) {
    __tsan_release(const_cast<void*>(addr));
}
inline void acquire(const void* addr) {
    __tsan_acquire(const_cast<void*>(addr));
}
/// What this thread did with obj is visible to the thread that frees it, wherever that is: a
/// weak reference's notify runs on that thread just before the memory goes.
inline void hand_back(GstMiniObject* obj) {
    release(obj);
    gst_mini_object_weak_ref(
        obj, [](gpointer, GstMiniObject* gone) { acquire(gone); }, nullptr);
}
#else
inline void release(const void*) {}
inline void acquire(const void*) {}
inline void hand_back(GstMiniObject*) {}
#endif

}  // namespace kms::tsan
