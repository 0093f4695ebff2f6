// remove_at_exit(): what a process that ends by _exit (a second signal, the stop's deadline)
// leaves behind. Each case runs in a child that exits the way the tools do, and the parent
// looks at the files.
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include <cstdio>
#include <cstdlib>
#include <string>

#include "kms/runtime.hpp"

namespace {

std::string temp_file(const char* content) {
    char name[] = "/tmp/kms-exit-files-XXXXXX";
    const int fd = ::mkstemp(name);
    REQUIRE(fd >= 0);
    if (*content) REQUIRE(::write(fd, content, std::char_traits<char>::length(content)) > 0);
    ::close(fd);
    return name;
}

bool exists(const std::string& path) {
    struct stat st = {};
    return ::stat(path.c_str(), &st) == 0;
}

// Runs fn in a child, which then removes what is registered and _exits.
template <typename Fn>
void in_child_then_exit(Fn fn) {
    const pid_t pid = ::fork();
    REQUIRE(pid >= 0);
    if (pid == 0) {
        fn();
        kms::remove_registered_files();
        _exit(130);
    }
    int status = 0;
    REQUIRE(::waitpid(pid, &status, 0) == pid);
    CHECK(WIFEXITED(status));
}

}  // namespace

TEST_CASE("files registered to go at exit: gone, kept when forgotten, kept when no longer empty",
          "[exit]") {
    const std::string staging = temp_file("half a recording");
    const std::string made_empty = temp_file("");
    const std::string made_written = temp_file("");
    const std::string forgotten = temp_file("");
    in_child_then_exit([&] {
        kms::remove_at_exit(staging, false);
        kms::remove_at_exit(made_empty, true);
        kms::remove_at_exit(made_written, true);
        FILE* f = std::fopen(made_written.c_str(), "w");
        std::fputs("media", f);
        std::fclose(f);
        kms::forget_at_exit(kms::remove_at_exit(forgotten, false));
    });
    CHECK_FALSE(exists(staging));
    CHECK_FALSE(exists(made_empty));
    CHECK(exists(made_written));  // media reached it: it stays, whatever it holds
    CHECK(exists(forgotten));
    ::unlink(made_written.c_str());
    ::unlink(forgotten.c_str());
}

TEST_CASE("remove_at_exit has 16 slots, and a freed one is taken again", "[exit]") {
    int slots[16];
    for (int& s : slots) {
        s = kms::remove_at_exit("/nonexistent/kms-exit-files", false);
        REQUIRE(s >= 0);
    }
    CHECK(kms::remove_at_exit("/nonexistent/one-more", false) == -1);
    kms::forget_at_exit(slots[3]);
    CHECK(kms::remove_at_exit("/nonexistent/again", false) == slots[3]);
    kms::forget_at_exit(slots[3]);
    for (int s : slots) kms::forget_at_exit(s);
}
