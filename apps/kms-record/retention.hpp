// kms-record's retention across runs: the segments an earlier run left under the same pattern.
#pragma once

#include <string>
#include <vector>

#include "kms/sink.hpp"

namespace kms::recording {

/// The files that a segment pattern ("/srv/rec/%Y/%m/cam-%Y%m%d-%H.mkv", with %i for the index)
/// names and that exist now, oldest first by modification time: what earlier runs recorded.
/// Each is a Segment with its path and size. Fields match what they can print (%Y four digits,
/// %m two, %i digits); fields with no fixed shape (%b, %Z) match any text without a slash.
std::vector<Segment> existing_segments(const std::string& pattern);

/// The regular expression existing_segments() matches a path against (for the tests).
std::string pattern_regex(const std::string& pattern);

/// --max-files and --max-total-size: the files kept, oldest first, and which must go.
class Retention {
  public:
    Retention(unsigned max_files, unsigned long long max_bytes)
        : max_files_(max_files), max_bytes_(max_bytes) {}
    bool active() const { return max_files_ || max_bytes_; }
    /// A file, newer than those already added; one of the same path is replaced by it.
    void add(Segment file);
    /// Takes out the oldest files while over a limit, never the newest, and returns them:
    /// the caller deletes them.
    std::vector<Segment> over();

  private:
    unsigned max_files_;
    unsigned long long max_bytes_;
    std::vector<Segment> kept_;
    unsigned long long bytes_ = 0;
};

}  // namespace kms::recording
