// --follow on a terminal: the figures of each stream as a small table, redrawn in place with
// plain ANSI (cursor up, clear line) as top and watch do. Nothing here is measured: the table
// shows what the summariser has already worked out.
#pragma once

#include <chrono>
#include <cstdio>
#include <string>
#include <vector>

#include "summary.hpp"

namespace kms::stats {

/// The lines of the table: the status line, a header, then one row per RTP stream (received
/// first): its direction and kind, mid, the newest interval's bitrate and frame rate, packets
/// lost and the loss ratio so far, the newest jitter and the newest round-trip time.
std::vector<std::string> live_table(const Summary& s, const std::string& status);

/// A block of lines on a terminal, each draw written over the one before.
class LiveTable {
  public:
    explicit LiveTable(std::FILE* out) : out_(out) {}

    /// Draws lines over the previous ones when they differ from what is shown, at most once a
    /// second (the first draw at once); force draws any change now, as the last one.
    void show(const std::vector<std::string>& lines, bool force = false);
    /// Something else has been written under the table: it stays as it was last drawn, and is
    /// never drawn over again.
    void leave() { left_ = true; }

  private:
    std::FILE* out_;
    std::vector<std::string> shown_;
    size_t height_ = 0;  ///< lines drawn last time, all ended by a newline
    std::chrono::steady_clock::time_point drawn_;
    bool left_ = false;
};

}  // namespace kms::stats
