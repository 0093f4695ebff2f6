// Limits on what a muxer writes: a byte cap (kms-record --max-size) and a floor of free disk
// space (--min-free). Both are checked as the muxer writes, on its streaming thread, and the
// streams into it are ended there: a file read faster than real time cannot run past either
// before anyone looks, and the muxer still has room to finish the file with its index. Private
// to libkms.
#pragma once

#include <gst/gst.h>

#include <functional>
#include <memory>
#include <string>

namespace kms::sink {

class SizeCap {
  public:
    /// bytes: the cap (0: none). folder and min_free: the disk guard (min_free 0: none).
    SizeCap(unsigned long long bytes, std::string folder, unsigned long long min_free);

    /// Counts the bytes that go out of this pad (the muxer's source pad, or the file sink's
    /// sink pad), and looks at the free space as they are written (every second, and sooner as
    /// the disk fills). A stream start on it begins a new file (segments).
    void watch_output(GstPad* pad);
    /// Once a limit is reached, this muxer input takes no more buffers: its stream gets an end
    /// of stream, so the muxer finishes the file with what it has.
    void watch_input(GstPad* mux_sink);
    /// Runs once on the main loop when the cap is reached. Set before the media starts.
    void on_reached(std::function<void()> fn);
    /// Runs once on the main loop when the disk guard stops the file, with the bytes free then.
    void on_disk_low(std::function<void(unsigned long long free_bytes)> fn);

    /// Bytes free for an unprivileged writer on the file system holding folder; -1 when it
    /// cannot be read.
    static long long free_space(const std::string& folder);
    /// What the guard keeps free for a file begun seconds ago: min_free, and 32 bytes a second
    /// for the index its muxer writes at the end, which grows with the file's length (a
    /// Matroska cue per key frame or cluster, an MP4 mfra entry per fragment and track).
    static unsigned long long reserve(unsigned long long min_free, unsigned long long seconds);

    struct State;

  private:
    std::shared_ptr<State> state_;
};

}  // namespace kms::sink
