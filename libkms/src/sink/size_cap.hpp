// A byte cap on a muxer's output (kms-record --max-size). The size is counted as the muxer
// writes, on its streaming thread, and the streams into it are ended there: a file read
// faster than real time cannot run past the cap before anyone looks. Private to libkms.
#pragma once

#include <gst/gst.h>

#include <functional>
#include <memory>

namespace kms::sink {

class SizeCap {
  public:
    explicit SizeCap(unsigned long long bytes);

    /// Counts the bytes that go out of this pad (the muxer's source pad).
    void watch_output(GstPad* mux_src);
    /// Once the cap is reached, this muxer input takes no more buffers: its stream gets an end
    /// of stream, so the muxer finishes the file with what it has.
    void watch_input(GstPad* mux_sink);
    /// Runs once on the main loop when the cap is reached. Set before the media starts.
    void on_reached(std::function<void()> fn);

    struct State;

  private:
    std::shared_ptr<State> state_;
};

}  // namespace kms::sink
