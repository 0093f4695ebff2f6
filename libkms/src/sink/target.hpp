// Where a Sink's files go, looked at before anything starts: a missing or unwritable folder is
// the run's error at once (exit 7 with the path), not when the first buffer reaches the muxer.
// Private to libkms.
#pragma once

#include <memory>
#include <string>

#include "sink/staged.hpp"

namespace kms::sink {

/// Throws Error(Io) unless the fixed folder of a pattern whose folders have fields (made as
/// segments need them) is there and writable.
void check_segment_folder(const std::string& pattern);

/// Throws Error(Io) when the disk holding folder has less than min_free bytes free: a recording
/// that would stop at once (the disk guard, SinkOptions::min_free) is refused before it starts.
void check_free_space(const std::string& folder, unsigned long long min_free);

/// What prepare_file() found and made.
struct FileTarget {
    std::shared_ptr<StagedFiles> staged;  // set when the file is written under a hidden name
    std::string staging;                  // that hidden name; "" when written as it is
    bool made_check_file = false;         // path was made by the check and is there still
};

/// Opens path for writing as the check (Error(Io) with the reason otherwise). One file, not
/// segments, is then staged (staged.hpp) when it is new or ours with one name: a rename would
/// take another user's file (sticky /tmp) or split hard links, so such a file is written over
/// as it is. Error(Io) too when another running recording is writing path.
FileTarget prepare_file(const std::string& path, bool segmented);

}  // namespace kms::sink
