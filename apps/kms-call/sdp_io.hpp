// SDP over stdio, files and fifos, read and written on the main loop only when that cannot
// block, so a fifo whose other end is not open yet never stalls it.
#pragma once

#include <functional>
#include <string>

#include "kms/loop.hpp"
#include "kms/sdp.hpp"

namespace kms::app {

struct SdpRead {
    bool ok = false;
    std::string sdp;    ///< the description, unwrapped from its format
    std::string type;   ///< "offer"/"answer" when the format carries it
    std::string error;  ///< why not ok
    bool eof = false;   ///< the input closed before a description arrived
};

/// Reads one description from path ("-" = stdin) in the given format and hands it to done on the
/// loop. When lines is set, every later line of the same input goes to lines, and closed is
/// called at the end of the input. The loop must outlive the reading.
void read_sdp_async(Loop& loop, const std::string& path, SdpFormat format,
                    std::function<void(SdpRead)> done, std::function<void(std::string)> lines = {},
                    std::function<void()> closed = {});

/// Reads lines of stdin and hands each to lines on the loop; closed at end of input.
void read_lines_async(Loop& loop, std::function<void(std::string)> lines,
                      std::function<void()> closed);

/// Writes text to path ("-" = stdout) and calls done(error or "") on a later turn of the loop.
void write_async(Loop& loop, const std::string& path, std::string text,
                 std::function<void(std::string)> done);

/// After the loop has ended: finishes every write_async() within seconds, without the loop (a
/// description written to stdout comes before the --json result); false when one is still
/// blocked (a fifo nobody opens). Their done callbacks are not called.
bool wait_writes(double seconds);

}  // namespace kms::app
