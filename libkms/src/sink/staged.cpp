// StagedFiles: see staged.hpp.
#include "sink/staged.hpp"

#include <sys/stat.h>
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
    // Files never finished (the pipeline stopped at once): those with bytes take their names.
    for (auto& [hidden, p] : pending_) {
        forget_at_exit(p.exit_slot);
        if (size_of(hidden) > 0)
            rename_to(hidden, p.path);
        else
            ::unlink(hidden.c_str());
    }
}

std::string StagedFiles::stage(const std::string& path) {
    const std::string hidden = hidden_name(path);
    std::lock_guard lock(mutex_);
    pending_[hidden] = Pending{path, remove_at_exit(hidden, true)};
    current_ = hidden;
    waiting_ = true;
    return hidden;
}

void StagedFiles::check() {
    std::lock_guard lock(mutex_);
    auto it = pending_.find(current_);
    if (it == pending_.end()) {
        waiting_ = false;
        return;
    }
    // filesink writes in batches of 64 kB, after this probe: a batch is on disk by the next.
    if (size_of(current_) <= 0) return;
    if (rename_to(current_, it->second.path)) named_[current_] = it->second.path;
    forget_at_exit(it->second.exit_slot);
    pending_.erase(it);
    waiting_ = false;
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
    if (size_of(hidden) > 0) return rename_to(hidden, p.path) ? p.path : hidden;
    ::unlink(hidden.c_str());
    return std::string();
}

}  // namespace kms::sink
