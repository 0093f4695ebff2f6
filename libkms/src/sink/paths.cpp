// Sink file names: see paths.hpp.
#include "sink/paths.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cctype>
#include <cerrno>
#include <cstdio>

#include "kms/sink.hpp"

namespace kms::sink {

// The hidden file is looked at first: a recording renames it to path, and looking at path
// first could miss both. One nobody holds that is empty is what a run killed early left, and
// free (StagedFiles::stage() takes it over); one with bytes is a recording no one named.
bool name_taken(const std::string& path) {
    const std::string hidden = hidden_name(path);
    const int fd = ::open(hidden.c_str(), O_RDONLY | O_CLOEXEC);
    // There but not for us to look at is taken; a name too long for a hidden file (it is six
    // bytes longer) or a folder not there yet is down to the name itself.
    struct stat hs = {};
    if (fd < 0 && errno != ENOENT && ::lstat(hidden.c_str(), &hs) == 0) return true;
    if (fd >= 0) {
        struct stat st = {};
        // A lock refused for any reason: held, or a file system without locks (ENOLCK), where
        // nothing tells a recording's file from a leftover.
        const bool held = ::flock(fd, LOCK_SH | LOCK_NB) != 0;
        const bool kept = ::fstat(fd, &st) != 0 || st.st_size > 0;
        ::close(fd);
        if (held || kept) return true;
    }
    struct stat st = {};
    return ::lstat(path.c_str(), &st) == 0;
}

std::string free_sibling(const std::string& path) {
    const size_t slash = path.rfind('/');
    size_t dot = path.rfind('.');
    if (dot == std::string::npos || (slash != std::string::npos && dot < slash) ||
        dot == (slash == std::string::npos ? 0 : slash + 1))
        dot = path.size();
    std::string candidate = path;
    for (unsigned n = 1; n < 100000; ++n) {
        candidate = path.substr(0, dot) + "-" + std::to_string(n) + path.substr(dot);
        if (!name_taken(candidate)) break;
    }
    return candidate;
}

std::string hidden_name(const std::string& path) {
    const size_t slash = path.rfind('/');
    const size_t base = slash == std::string::npos ? 0 : slash + 1;
    return path.substr(0, base) + "." + path.substr(base) + ".part";
}

bool folder_has_fields(const std::string& pattern) {
    const size_t pct = pattern.find('%');
    return pct != std::string::npos && pattern.find('/', pct) != std::string::npos;
}

std::string fixed_folder(const std::string& pattern) {
    const std::string head = pattern.substr(0, pattern.find('%'));
    const size_t slash = head.rfind('/');
    return slash == std::string::npos ? "." : slash == 0 ? "/" : head.substr(0, slash);
}

void make_folders(const std::string& path, size_t keep) {
    for (size_t slash = path.find('/', keep + 1); slash != std::string::npos;
         slash = path.find('/', slash + 1))
        ::mkdir(path.substr(0, slash).c_str(), 0777);
}

std::string segment_name(const std::string& pattern, unsigned index, time_t started,
                         unsigned& index_skip) {
    // Never over a file that is there: a restarted recording numbers from 0 again, and an
    // earlier run's segment of the same name would be lost.
    std::string path;
    if (Sink::segment_path(pattern, 0, started) == Sink::segment_path(pattern, 1, started)) {
        // No %i: the fields alone name it (cam-%Y%m%d-%H.mkv), and two segments of one hour
        // would share a name. A taken name gets -1, -2... before its extension, as a file
        // manager's copy does.
        path = Sink::segment_path(pattern, index, started);
        if (name_taken(path)) path = free_sibling(path);
    } else {
        for (unsigned tries = 0; tries < 100000; ++tries, ++index_skip) {
            path = Sink::segment_path(pattern, index + index_skip, started);
            if (!name_taken(path)) break;
        }
    }
    make_folders(path, fixed_folder(pattern).size());
    return path;
}

}  // namespace kms::sink

namespace kms {

void Sink::make_dated_folders(const std::string& pattern, const std::string& path) {
    if (sink::folder_has_fields(pattern))
        sink::make_folders(path, sink::fixed_folder(pattern).size());
}

std::string Sink::segment_path(const std::string& pattern, unsigned index, time_t t) {
    // %i and %0Ni first (strftime has no %i), then strftime; "%%" stays for strftime.
    std::string p;
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] != '%' || i + 1 == pattern.size()) {
            p += pattern[i];
            continue;
        }
        size_t j = i + 1;
        int width = 0;
        bool zero = false;
        if (pattern[j] == '0') zero = true;
        while (j < pattern.size() && std::isdigit(static_cast<unsigned char>(pattern[j])))
            width = width * 10 + (pattern[j++] - '0');
        if (j < pattern.size() && pattern[j] == 'i') {
            char num[32];
            if (zero)
                std::snprintf(num, sizeof num, "%0*u", width, index);
            else
                std::snprintf(num, sizeof num, "%*u", width, index);
            p += num;
            i = j;
        } else {
            p += pattern.substr(i, 2);
            ++i;
        }
    }
    std::tm tm = {};
    localtime_r(&t, &tm);
    char out[4096];
    // The user's path is the format, by design (as date +FORMAT).
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
    const size_t n = std::strftime(out, sizeof out, p.c_str(), &tm);
#pragma GCC diagnostic pop
    return n ? std::string(out, n) : p;
}

}  // namespace kms
