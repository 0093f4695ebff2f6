// The files remove_at_exit() keeps: fixed slots, so that a signal handler can walk them with
// nothing but atomics, stat and unlink (all async-signal-safe), whatever the other threads do.
#include <sys/stat.h>
#include <unistd.h>

#include <atomic>
#include <climits>
#include <cstring>
#include <iterator>
#include <string>

#include "kms/runtime.hpp"

namespace kms {

namespace {

enum : int { kFree = 0, kClaimed = 1, kReady = 2 };

struct Slot {
    std::atomic<int> state{kFree};
    bool only_if_empty = false;
    char path[PATH_MAX] = {};
};
static_assert(std::atomic<int>::is_always_lock_free, "a signal handler reads it");

Slot g_slots[16];

}  // namespace

int remove_at_exit(const std::string& path, bool only_if_empty) {
    if (path.empty() || path.size() >= PATH_MAX) return -1;
    for (int i = 0; i < int(std::size(g_slots)); ++i) {
        int expected = kFree;
        if (!g_slots[i].state.compare_exchange_strong(expected, kClaimed)) continue;
        std::memcpy(g_slots[i].path, path.c_str(), path.size() + 1);
        g_slots[i].only_if_empty = only_if_empty;
        g_slots[i].state.store(kReady);  // release: the path is whole before it is seen
        return i;
    }
    return -1;
}

void forget_at_exit(int slot) {
    if (slot >= 0 && slot < int(std::size(g_slots))) g_slots[slot].state.store(kFree);
}

void remove_registered_files() noexcept {
    for (Slot& s : g_slots) {
        if (s.state.load() != kReady) continue;
        struct stat st = {};
        if (s.only_if_empty && (::stat(s.path, &st) != 0 || !S_ISREG(st.st_mode) || st.st_size))
            continue;
        ::unlink(s.path);
    }
}

}  // namespace kms
