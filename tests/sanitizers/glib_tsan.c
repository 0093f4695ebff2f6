/* Teaches ThreadSanitizer GLib's locks. Linked first into every program of a KMS_SANITIZE=thread
 * build (CMakeLists.txt), never into any other build.
 *
 * Why: on Linux GLib's GMutex and GCond are raw futexes, not pthread objects, so TSan sees no
 * lock at all when GStreamer hands a buffer, an event or a bus message from one thread to another
 * (GstQueue, GstBus, GMainContext all guard their hand-offs with GMutex and GCond). Every object
 * kms then reads on the receiving thread looks like a race with the thread that made it. Only
 * kms's code is instrumented, so rebuilding GLib is not the answer; interposing its lock calls is.
 *
 * How: the programs define g_mutex_lock and friends themselves. The dynamic linker resolves the
 * calls other libraries make to them (GStreamer's core and plugins) to these, which call GLib's
 * real functions and tell TSan that a lock was taken (acquire) or given back (release) on the
 * GMutex's address. That is exactly the happens-before a mutex gives; nothing else changes.
 * GLib's calls to its own locks are bound inside libglib and are not seen: hand-offs through
 * GMainContext, GAsyncQueue or GThreadPool are marked by kms itself (libkms/src/gst/tsan.hpp).
 * GRecMutex and GRWLock are pthread objects in GLib and TSan already intercepts them. */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <glib.h>
#include <sanitizer/tsan_interface.h>
#include <stdio.h>
#include <stdlib.h>

static void* real(const char* name) {
    void* fn = dlsym(RTLD_NEXT, name);
    if (!fn) {
        fprintf(stderr, "glib_tsan: no %s after this library: %s\n", name, dlerror());
        abort();
    }
    return fn;
}

/* Looked up once per function, on first use: GLib may lock before any constructor of ours runs.
 * A data race on the cached pointer itself is benign (every thread stores the same value) but is
 * kept out of TSan's sight by the atomic load and store. */
typedef void (*mutex_fn)(GMutex*);
typedef gboolean (*trylock_fn)(GMutex*);
typedef void (*wait_fn)(GCond*, GMutex*);
typedef gboolean (*wait_until_fn)(GCond*, GMutex*, gint64);

#define REAL(name, type)                                                \
    static type cached_##name;                                          \
    type fn_##name = __atomic_load_n(&cached_##name, __ATOMIC_ACQUIRE); \
    if (!fn_##name) {                                                   \
        fn_##name = (type)real(#name);                                  \
        __atomic_store_n(&cached_##name, fn_##name, __ATOMIC_RELEASE);  \
    }

void g_mutex_lock(GMutex* mutex) {
    REAL(g_mutex_lock, mutex_fn);
    fn_g_mutex_lock(mutex);
    __tsan_acquire(mutex);
}

gboolean g_mutex_trylock(GMutex* mutex) {
    REAL(g_mutex_trylock, trylock_fn);
    gboolean taken = fn_g_mutex_trylock(mutex);
    if (taken) __tsan_acquire(mutex);
    return taken;
}

void g_mutex_unlock(GMutex* mutex) {
    REAL(g_mutex_unlock, mutex_fn);
    __tsan_release(mutex);
    fn_g_mutex_unlock(mutex);
}

/* A wait gives the mutex back and takes it again before it returns. */
void g_cond_wait(GCond* cond, GMutex* mutex) {
    REAL(g_cond_wait, wait_fn);
    __tsan_release(mutex);
    fn_g_cond_wait(cond, mutex);
    __tsan_acquire(mutex);
}

gboolean g_cond_wait_until(GCond* cond, GMutex* mutex, gint64 end_time) {
    REAL(g_cond_wait_until, wait_until_fn);
    __tsan_release(mutex);
    gboolean signalled = fn_g_cond_wait_until(cond, mutex, end_time);
    __tsan_acquire(mutex);
    return signalled;
}
