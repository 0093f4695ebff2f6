// Files that take their names only once they hold bytes. Each is written under a hidden name
// beside its own (paths.hpp's hidden_name: "rec/.cam-2.mp4.part") and renamed when its first
// bytes are on disk, or once it is finished. MP4 writes nothing a player can use until its
// first fragment closes, a second in, and filesink batches 64 kB before its first write: a
// recording killed before then (SIGKILL, power loss) left an empty file under a recording's
// name, or in place of the recording it was to replace. Now it leaves a hidden .part file,
// which no pattern names. Private to libkms.
#pragma once

#include <sys/stat.h>

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

    /// Makes the hidden file that path is to be written under, and returns its name; "" when
    /// the folder takes no new file, or when the hidden file is another recording's (then
    /// *busy is set: held by one that runs, or holding bytes it could not move aside). With
    /// like (the file it replaces), it gets like's mode and, when we may, its owner, as
    /// writing over it would keep. With name_free, path must not exist once the hidden file
    /// is held: if it does (another recording named its file so since the caller looked),
    /// nothing is staged and *busy is set. Any thread (splitmuxsink names its files on its
    /// own; a busy hidden file is looked at again for up to 30 ms).
    std::string stage(const std::string& path, const struct stat* like = nullptr,
                      bool* busy = nullptr, bool name_free = false);
    /// Watches the buffers into the file sink (its sink pad): the file being written takes
    /// its name once it holds bytes (what filesink holds at the end comes with finish()). The probe
    /// keeps this alive (make it with make_shared).
    void watch(GstPad* file_sink_pad);
    /// The file written under hidden is finished: returns its name, after giving it that name
    /// if it had not yet; "" when it holds nothing (it is removed). Any thread.
    std::string finish(const std::string& hidden);
    /// How many files have taken their names.
    unsigned named() const { return named_count_.load(); }

  private:
    // Streaming thread: the file being written takes its name if it holds bytes.
    void check();
    struct Pending {
        std::string path;    // the name it takes
        int exit_slot = -1;  // remove_at_exit() while it is empty
        int lock_fd = -1;    // the hidden file, flock()ed until it has its name
    };
    std::mutex mutex_;
    std::map<std::string, Pending> pending_;    // hidden name -> not yet renamed (mutex_)
    std::map<std::string, std::string> named_;  // hidden name -> renamed, not finished (mutex_)
    std::string current_;                       // the hidden name being written (mutex_)
    std::atomic<bool> waiting_{false};          // current_ has not its name yet
    std::atomic<unsigned> named_count_{0};
};

}  // namespace kms::sink
