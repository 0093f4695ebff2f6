#include <glib-unix.h>
#include <glib.h>

#include <map>

#include "gst/tsan.hpp"
#include "kms/loop.hpp"

namespace kms {

struct Loop::Impl {
    GMainContext* context = nullptr;
    GMainLoop* loop = nullptr;
    bool quit_requested = false;
    std::map<unsigned, GSource*> sources;
};

namespace {

struct Once {
    std::function<void()> fn;
};
struct Repeat {
    std::function<bool()> fn;
};

gboolean run_once(gpointer data) {
    tsan::acquire(data);
    static_cast<Once*>(data)->fn();
    return G_SOURCE_REMOVE;
}
gboolean run_repeat(gpointer data) {
    return static_cast<Repeat*>(data)->fn() ? G_SOURCE_CONTINUE : G_SOURCE_REMOVE;
}
void free_once(gpointer data) {
    tsan::acquire(data);
    delete static_cast<Once*>(data);
}
void free_repeat(gpointer data) {
    delete static_cast<Repeat*>(data);
}

}  // namespace

Loop::Loop() : impl_(std::make_unique<Impl>()) {
    impl_->context = g_main_context_default();
    impl_->loop = g_main_loop_new(impl_->context, FALSE);
}

Loop::~Loop() {
    for (auto& [id, src] : impl_->sources) {
        g_source_destroy(src);
        g_source_unref(src);
    }
    g_main_loop_unref(impl_->loop);
}

void Loop::run() {
    if (impl_->quit_requested) return;
    g_main_loop_run(impl_->loop);
}

void Loop::quit() {
    impl_->quit_requested = true;
    g_main_loop_quit(impl_->loop);
}

void Loop::post(std::function<void()> fn) {
    post_to_main(std::move(fn));
}

// Always queued, never run in place: g_main_context_invoke() runs the function at once on the
// calling thread when it can acquire the context, which a worker thread can do while the main
// thread is between loop runs (tearing down), and the function then races the main thread.
void post_to_main(std::function<void()> fn) {
    GSource* src = g_idle_source_new();
    g_source_set_priority(src, G_PRIORITY_DEFAULT);
    auto* once = new Once{std::move(fn)};
    // GMainContext's queue is guarded by a lock inside GLib that ThreadSanitizer cannot see.
    tsan::release(once);
    g_source_set_callback(src, run_once, once, free_once);
    g_source_attach(src, g_main_context_default());
    g_source_unref(src);
}

unsigned Loop::after(unsigned ms, std::function<void()> fn) {
    GSource* src = g_timeout_source_new(ms);
    g_source_set_callback(src, run_once, new Once{std::move(fn)}, free_once);
    unsigned id = g_source_attach(src, impl_->context);
    impl_->sources[id] = src;
    return id;
}

unsigned Loop::every(unsigned ms, std::function<bool()> fn) {
    GSource* src = g_timeout_source_new(ms);
    g_source_set_callback(src, run_repeat, new Repeat{std::move(fn)}, free_repeat);
    unsigned id = g_source_attach(src, impl_->context);
    impl_->sources[id] = src;
    return id;
}

unsigned Loop::watch_fd(int fd, bool write, std::function<bool()> fn) {
    const auto cond = static_cast<GIOCondition>((write ? G_IO_OUT : G_IO_IN) | G_IO_HUP | G_IO_ERR);
    GSource* src = g_unix_fd_source_new(fd, cond);
    GUnixFDSourceFunc call = [](gint, GIOCondition, gpointer data) { return run_repeat(data); };
    g_source_set_callback(src, reinterpret_cast<GSourceFunc>(reinterpret_cast<void (*)()>(call)),
                          new Repeat{std::move(fn)}, free_repeat);
    unsigned id = g_source_attach(src, impl_->context);
    impl_->sources[id] = src;
    return id;
}

void Loop::cancel(unsigned id) {
    auto it = impl_->sources.find(id);
    if (it == impl_->sources.end()) return;
    g_source_destroy(it->second);
    g_source_unref(it->second);
    impl_->sources.erase(it);
}

void Loop::on_signal(int signum, std::function<void()> fn) {
    auto* r = new Repeat{[f = std::move(fn)] {
        f();
        return true;
    }};
    g_unix_signal_add_full(G_PRIORITY_HIGH, signum, run_repeat, r, free_repeat);
}

}  // namespace kms
