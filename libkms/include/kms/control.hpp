// A control socket: a UNIX socket a running tool answers on, one JSON document per request, so
// that another process (kms-stats --attach) can read its statistics and state while it runs.
// The shell's getStats.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "kms/events.hpp"

namespace kms {

class ControlServer {
  public:
    /// Answers one request line ("stats", "state"); runs on the main loop.
    using Handler = std::function<Json(const std::string& request)>;

    /// Listens on path, a socket only its owner can open (mode 0600; peers of another user are
    /// also refused by their credentials). A stale socket file left by a killed tool is
    /// replaced; a live one, or any other file, is not: Error(Io). Requests are served on the
    /// main loop's thread, between its other work. Call from that thread.
    ControlServer(const std::string& path, Handler handler);
    /// Stops listening and removes the socket file.
    ~ControlServer();
    ControlServer(const ControlServer&) = delete;
    ControlServer& operator=(const ControlServer&) = delete;

  private:
    struct Impl;
    std::shared_ptr<Impl> impl_;
};

/// Sends request to the control socket at path and returns the answer. Throws Error(Network)
/// when nothing listens there or the owner's permissions refuse us, Error(BadInput) when the
/// answer is not JSON, Error(Network) when none comes within timeout_s.
Json control_request(const std::string& path, const std::string& request, double timeout_s = 5);

}  // namespace kms
