// StagedFiles: see staged.hpp.
#include "sink/staged.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "core/log.hpp"
#include "kms/runtime.hpp"
#include "sink/paths.hpp"

namespace kms::sink {

namespace {

long long size_of(const std::string& path) {
    struct stat st = {};
    return ::stat(path.c_str(), &st) == 0 ? st.st_size : -1;
}

bool rename_to(const std::string& from, const std::string& to) {
    if (::rename(from.c_str(), to.c_str()) == 0) return true;
    KMS_LOG(sink, WARNING, "cannot rename %s to %s: %s", from.c_str(), to.c_str(),
            std::strerror(errno));
    return false;
}

}  // namespace

StagedFiles::~StagedFiles() {
    // Files never finished (the pipeline stopped at once): what holds bytes takes its name.
    for (auto& [hidden, p] : pending_) {
        forget_at_exit(p.exit_slot);
        if (size_of(hidden) > 0)
            rename_to(hidden, p.path);
        else
            ::unlink(hidden.c_str());
        ::close(p.lock_fd);
    }
}

std::string StagedFiles::stage(const std::string& path, const struct stat* like, bool* busy,
                               bool name_free) {
    if (busy) *busy = false;
    const std::string hidden = hidden_name(path);
    // Held locked until it has its name, which tells another recording (paths.cpp,
    // name_taken()) that it is being written. An empty one that nobody holds is what a run
    // killed early left, and is taken over; one another recording holds is left alone.
    int held_elsewhere = 0;
    for (int attempt = 0; attempt < 4; ++attempt) {
        const int fd = ::open(hidden.c_str(), O_WRONLY | O_CREAT | O_CLOEXEC, 0666);
        if (fd < 0) return {};
        // A file system without locks (ENOLCK, EOPNOTSUPP) is written to unlocked.
        const bool locked = ::flock(fd, LOCK_EX | LOCK_NB) == 0;
        if (!locked && errno == EWOULDBLOCK) {
            ::close(fd);
            // Another recording's name_taken() holds it shared for a moment: looked at again
            // a little later, a few times, before it counts as being written.
            if (++held_elsewhere < 4) {
                g_usleep(10000);
                --attempt;
                continue;
            }
            if (busy) *busy = true;
            return {};
        }
        // What is locked must be what has the hidden name still: the recording that held it
        // may have renamed it (or a run removed it) between the open and the lock.
        struct stat held = {}, named = {};
        if (::fstat(fd, &held) != 0 || ::stat(hidden.c_str(), &named) != 0 ||
            held.st_dev != named.st_dev || held.st_ino != named.st_ino) {
            ::close(fd);
            continue;
        }
        if (held.st_size > 0) {
            // A recording no one named (killed between its first write and the rename, or the
            // rename failed): kept, under a free name of its own.
            const std::string kept = locked ? free_sibling(path) : std::string();
            const bool moved = !kept.empty() && ::rename(hidden.c_str(), kept.c_str()) == 0;
            ::close(fd);
            if (!moved) {
                if (busy) *busy = true;
                return {};
            }
            KMS_LOG(sink, WARNING, "%s held a recording that never took its name: it is %s now",
                    hidden.c_str(), kept.c_str());
            continue;
        }
        struct stat there = {};
        if (name_free && ::lstat(path.c_str(), &there) == 0) {
            // Another recording named its file path since the caller looked: ours would
            // replace it when it takes the name.
            ::unlink(hidden.c_str());
            ::close(fd);
            if (busy) *busy = true;
            return {};
        }
        if (like) {
            (void)!::fchown(fd, like->st_uid, like->st_gid);
            (void)!::fchmod(fd, like->st_mode & 07777);
        }
        std::lock_guard lock(mutex_);
        pending_[hidden] = Pending{path, remove_at_exit(hidden, true), fd};
        current_ = hidden;
        waiting_ = true;
        return hidden;
    }
    return {};
}

void StagedFiles::check() {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(current_);
    if (it == pending_.end()) {
        waiting_ = false;
        return;
    }
    // filesink writes in batches of 64 kB, after this probe: a batch is on disk by the next.
    // What it holds at the end is written on its end of stream, after which finish() names
    // the file (the sink's on_ended, splitmuxsink's fragment-closed).
    if (size_of(current_) <= 0) return;
    waiting_ = false;
    // Should the rename fail, the file stays pending: finish() and the end try again.
    if (!rename_to(current_, it->second.path)) return;
    named_[current_] = it->second.path;
    ++named_count_;
    forget_at_exit(it->second.exit_slot);
    ::close(it->second.lock_fd);  // it has its name: that name is taken now
    pending_.erase(it);
}

void StagedFiles::watch(GstPad* file_sink_pad) {
    gst_pad_add_probe(
        file_sink_pad, GstPadProbeType(GST_PAD_PROBE_TYPE_BUFFER | GST_PAD_PROBE_TYPE_BUFFER_LIST),
        [](GstPad*, GstPadProbeInfo*, gpointer d) -> GstPadProbeReturn {
            auto& self = *static_cast<std::shared_ptr<StagedFiles>*>(d);
            if (self->waiting_.load(std::memory_order_relaxed)) self->check();
            return GST_PAD_PROBE_OK;
        },
        new std::shared_ptr<StagedFiles>(shared_from_this()),
        [](gpointer d) { delete static_cast<std::shared_ptr<StagedFiles>*>(d); });
}

std::string StagedFiles::finish(const std::string& hidden) {
    std::lock_guard lock(mutex_);
    if (auto it = named_.find(hidden); it != named_.end()) {
        std::string path = it->second;
        named_.erase(it);
        return path;
    }
    auto it = pending_.find(hidden);
    if (it == pending_.end()) return hidden;  // not one of ours: as it is
    Pending p = it->second;
    pending_.erase(it);
    if (current_ == hidden) waiting_ = false;
    forget_at_exit(p.exit_slot);
    if (size_of(hidden) > 0) {
        const bool named = rename_to(hidden, p.path);
        ::close(p.lock_fd);
        if (!named) {
            KMS_LOG(sink, ERROR, "the recording stays under %s", hidden.c_str());
            return hidden;
        }
        ++named_count_;
        return p.path;
    }
    ::unlink(hidden.c_str());
    ::close(p.lock_fd);
    return std::string();
}

}  // namespace kms::sink
