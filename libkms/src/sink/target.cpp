// Sink targets: see target.hpp.
#include "sink/target.hpp"

#include <fcntl.h>
#include <unistd.h>

#include <sys/stat.h>

#include <cerrno>
#include <cstdio>
#include <cstring>

#include "kms/error.hpp"
#include "kms/sink.hpp"
#include "sink/paths.hpp"
#include "sink/size_cap.hpp"

namespace kms {

std::string human_bytes(long long n) {
    char buf[32];
    if (n < 1000)
        std::snprintf(buf, sizeof buf, "%lld B", n);
    else if (n < 1000 * 1000)
        std::snprintf(buf, sizeof buf, "%.1f kB", n / 1e3);
    else if (n < 1000LL * 1000 * 1000)
        std::snprintf(buf, sizeof buf, "%.1f MB", n / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.1f GB", n / 1e9);
    return buf;
}

namespace sink {

void check_segment_folder(const std::string& pattern) {
    const std::string base = fixed_folder(pattern);
    struct stat st = {};
    std::string why;
    if (::stat(base.c_str(), &st) != 0)
        why = std::strerror(errno);
    else if (!S_ISDIR(st.st_mode))
        why = "not a folder";
    else if (::access(base.c_str(), W_OK | X_OK) != 0)
        why = std::strerror(errno);
    if (!why.empty()) throw Error(ErrorCode::Io, base + ": cannot write segments here: " + why);
}

void check_free_space(const std::string& folder, unsigned long long min_free) {
    const long long free_bytes = SizeCap::free_space(folder);
    if (min_free == 0 || free_bytes < 0 || static_cast<unsigned long long>(free_bytes) >= min_free)
        return;
    throw Error(ErrorCode::Io,
                folder + ": its disk has " + human_bytes(free_bytes) + " free, less than the " +
                    human_bytes(static_cast<long long>(min_free)) + " a recording leaves free");
}

FileTarget prepare_file(const std::string& path, bool segmented) {
    FileTarget t;
    struct stat st = {};
    // lstat: a symbolic link is written through, as before, not replaced by a file.
    const bool existed = ::lstat(path.c_str(), &st) == 0;
    const int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
    if (fd < 0) throw Error(ErrorCode::Io, path + ": cannot write: " + std::strerror(errno));
    struct stat made = {};
    const bool known = ::fstat(fd, &made) == 0;
    ::close(fd);
    t.made_check_file = !existed;
    if (segmented ||
        (existed && !(S_ISREG(st.st_mode) && st.st_uid == ::geteuid() && st.st_nlink == 1)))
        return t;
    // The check file goes, but only if it is still ours: another recording may have given
    // its own file this name since.
    auto remove_check_file = [&] {
        struct stat now = {};
        if (known && ::lstat(path.c_str(), &now) == 0 && now.st_dev == made.st_dev &&
            now.st_ino == made.st_ino && now.st_size == 0)
            ::unlink(path.c_str());
        t.made_check_file = false;
    };
    t.staged = std::make_shared<StagedFiles>();
    bool busy = false;
    t.staging = t.staged->stage(path, existed ? &st : nullptr, &busy);
    if (busy) {
        if (t.made_check_file) remove_check_file();
        throw Error(ErrorCode::Io, path + ": another recording is writing it (" +
                                       hidden_name(path) + " is held; remove it if none runs)");
    }
    if (t.made_check_file && !t.staging.empty()) remove_check_file();
    return t;
}

}  // namespace sink
}  // namespace kms
