// The process's main loop: one per process, on the main thread (see architecture.md).
#pragma once

#include <functional>
#include <memory>

namespace kms {

class Loop {
  public:
    Loop();
    ~Loop();
    Loop(const Loop&) = delete;
    Loop& operator=(const Loop&) = delete;

    /// Runs until quit(). Returns at once if quit() was already called.
    void run();
    void quit();

    /// Calls fn on the loop's thread; safe from any thread.
    void post(std::function<void()> fn);

    /// Calls fn once after ms milliseconds; returns an id for cancel().
    unsigned after(unsigned ms, std::function<void()> fn);

    /// Calls fn every ms milliseconds while it returns true.
    unsigned every(unsigned ms, std::function<bool()> fn);

    /// Calls fn each time fd is readable (or writable, with write), has hung up or has an error,
    /// while fn returns true; returns an id for cancel(). The fd stays the caller's to close.
    unsigned watch_fd(int fd, bool write, std::function<bool()> fn);

    void cancel(unsigned id);

    /// Calls fn on the loop's thread each time the Unix signal arrives (SIGINT, SIGTERM, SIGHUP).
    void on_signal(int signum, std::function<void()> fn);

  private:
    struct Impl;
    std::unique_ptr<Impl> impl_;
};

/// Calls fn on the main loop's thread (the process's default main context); safe from any thread
/// and at any time, even after the Loop is gone (fn then never runs). Threads that outlive a
/// Loop, such as a reader blocked on a fifo, post through this, never through a Loop reference.
void post_to_main(std::function<void()> fn);

}  // namespace kms
