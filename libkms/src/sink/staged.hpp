// Segment files that take their names only once they hold bytes. Each is written under a
// hidden name beside its own (paths.hpp's hidden_name: "rec/.cam-2.mp4.part") and renamed
// when its first bytes are on disk, or when it is finished. MP4 writes nothing a player can
// use until its first fragment closes, a second in, and filesink batches 64 kB before its
// first write: a recording killed then (SIGKILL, power loss) left an empty file under a
// recording's name. Now it leaves a hidden .part file, which no pattern names. Private to
// libkms.
#pragma once

#include <gst/gst.h>

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace kms::sink {

class StagedFiles : public std::enable_shared_from_this<StagedFiles> {
  public:
    StagedFiles() = default;
    ~StagedFiles();
    StagedFiles(const StagedFiles&) = delete;
    StagedFiles& operator=(const StagedFiles&) = delete;

    /// splitmuxsink's thread (format-location): the name to write the file named path under.
    std::string stage(const std::string& path);
    /// Watches the buffers into the file sink (its sink pad): the file being written takes
    /// its name once it holds bytes. The probe keeps this alive (make it with make_shared).
    void watch(GstPad* file_sink_pad);
    /// Main thread: the file written under hidden is finished. Returns its name, after giving
    /// it the name if it did not have it yet; "" when it holds nothing (it is removed).
    std::string finish(const std::string& hidden);

  private:
    // Streaming thread: renames the file being written if it now holds bytes.
    void check();
    struct Pending {
        std::string path;    // the name it takes
        int exit_slot = -1;  // remove_at_exit() while it is empty
    };
    std::mutex mutex_;
    std::map<std::string, Pending> pending_;    // hidden name -> not yet renamed (mutex_)
    std::map<std::string, std::string> named_;  // hidden name -> renamed, not finished (mutex_)
    std::string current_;                       // the hidden name being written (mutex_)
    std::atomic<bool> waiting_{false};          // current_ has not its name yet
};

}  // namespace kms::sink
