// SDP over stdio, files and fifos, on threads of their own so that a blocking open() or read()
// of a fifo never stalls the main loop.
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
/// main loop's thread (post_to_main: the threads may outlive the Loop). When lines is set, every
/// later line of the same input goes to lines, and closed is called at the end of the input.
void read_sdp_async(Loop& loop, const std::string& path, SdpFormat format,
                    std::function<void(SdpRead)> done, std::function<void(std::string)> lines = {},
                    std::function<void()> closed = {});

/// Reads lines of stdin and hands each to lines on the loop's thread; closed at end of input.
void read_lines_async(Loop& loop, std::function<void(std::string)> lines,
                      std::function<void()> closed);

/// Writes text to path ("-" = stdout) and calls done(error or "") on the loop's thread.
void write_async(Loop& loop, const std::string& path, std::string text,
                 std::function<void(std::string)> done);

/// Waits up to seconds for every write_async() to finish (a description written to stdout comes
/// before the --json result); false when one is still blocked (a fifo nobody opens).
bool wait_writes(double seconds);

}  // namespace kms::app
