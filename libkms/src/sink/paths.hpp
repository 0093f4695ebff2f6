// The names a Sink gives its files: path patterns with strftime fields and %i, the folders they
// name, and the rule that a segment never takes the name of a file that is there. Private to
// libkms.
#pragma once

#include <ctime>
#include <string>

namespace kms::sink {

/// The hidden name a file is written under until it has bytes on disk: "rec/.cam-2.mp4.part"
/// for "rec/cam-2.mp4" (staged.hpp). A name whose hidden file is there is taken.
std::string hidden_name(const std::string& path);

/// Whether path is taken: a file (or link) is there, or its hidden file is a recording's (held
/// by one that runs, holding bytes one could not name, or on a file system without locks).
bool name_taken(const std::string& path);

/// path with -N before its extension, the first N from 1 whose name is not taken.
std::string free_sibling(const std::string& path);

/// "rec/%Y/%m/cam-%i.mkv": fields (strftime or the index) in a folder's name, not only the file's.
bool folder_has_fields(const std::string& pattern);

/// The folder a pattern's files go in, up to its first field: "/srv/rec/%Y/%m/cam.mkv" gives
/// "/srv/rec", "%Y/cam.mkv" gives ".".
std::string fixed_folder(const std::string& pattern);

/// Makes the folders of path below its first `keep` characters (which exist), as mkdir -p.
/// Failures are left to the file's own open, which reports them as the recording's error.
void make_folders(const std::string& path, size_t keep);

/// The path of segment `index` of pattern, begun at `started`, that names no file there yet;
/// its folders are made. A pattern with %i moves the index on past taken names (index_skip
/// keeps how far, for the segments after); one without gets -1, -2... before its extension.
std::string segment_name(const std::string& pattern, unsigned index, time_t started,
                         unsigned& index_skip);

}  // namespace kms::sink
