// kms-call's SDP input and output over fifos: the main loop keeps running while the other end
// is not open yet, no thread is started for it, and what is written arrives whole.
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <thread>

#include "kms-call/sdp_io.hpp"

namespace {

std::string fifo(const char* name) {
    char tmpl[] = "/tmp/kms-sdpio.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    std::string path = std::string(tmpl) + "/" + name;
    REQUIRE(mkfifo(path.c_str(), 0600) == 0);
    return path;
}

size_t threads() {
    return static_cast<size_t>(std::distance(std::filesystem::directory_iterator("/proc/self/task"),
                                             std::filesystem::directory_iterator{}));
}

const char* kOffer = "v=0\no=- 1 1 IN IP4 127.0.0.1\ns=-\nt=0 0\n";

}  // namespace

TEST_CASE("a description read from a fifo whose writer comes late", "[call][sdp_io]") {
    const std::string path = fifo("in");
    kms::Loop loop;
    kms::app::SdpRead got;
    std::vector<std::string> lines;
    bool closed = false;
    int ticks = 0, ticks_at_read = -1;
    const size_t before = threads();
    size_t while_waiting = 0;
    kms::app::read_sdp_async(
        loop, path, kms::SdpFormat::Sdp,
        [&](kms::app::SdpRead r) {
            got = r;
            ticks_at_read = ticks;
        },
        [&](std::string l) { lines.push_back(l); },
        [&] {
            closed = true;
            loop.quit();
        });
    loop.every(20, [&] {
        if (++ticks == 3) while_waiting = threads();
        return true;
    });
    // The peer opens its end 300 ms later, in another process, as a shell's peer would.
    REQUIRE(std::system(("(sleep 0.3; printf '" + std::string(kOffer) + "\\nhello\\nlast' > " +
                         path + ") &")
                            .c_str()) == 0);
    loop.after(5000, [&] { loop.quit(); });
    loop.run();
    CHECK(while_waiting == before);  // no reader thread
    CHECK(ticks_at_read >= 10);      // the loop ran all the while
    REQUIRE(got.ok);
    CHECK(got.sdp.rfind("v=0", 0) == 0);
    CHECK(lines == std::vector<std::string>{"hello", "last"});
    CHECK(closed);
}

TEST_CASE("a fifo that closes before a description says so", "[call][sdp_io]") {
    const std::string path = fifo("in");
    kms::Loop loop;
    kms::app::SdpRead got;
    kms::app::read_sdp_async(loop, path, kms::SdpFormat::BrowserJson, [&](kms::app::SdpRead r) {
        got = r;
        loop.quit();
    });
    REQUIRE(std::system(("(sleep 0.1; : > " + path + ") &").c_str()) == 0);
    loop.after(5000, [&] { loop.quit(); });
    loop.run();
    CHECK_FALSE(got.ok);
    CHECK(got.eof);
    CHECK(got.error == "the input closed before a description arrived");
}

TEST_CASE("a missing input is named", "[call][sdp_io]") {
    kms::Loop loop;
    kms::app::SdpRead got;
    kms::app::read_sdp_async(loop, "/nonexistent/o", kms::SdpFormat::Sdp, [&](kms::app::SdpRead r) {
        got = r;
        loop.quit();
    });
    loop.after(5000, [&] { loop.quit(); });
    loop.run();
    CHECK_FALSE(got.ok);
    CHECK(got.error == "/nonexistent/o: No such file or directory");
}

TEST_CASE("a description written to a fifo whose reader comes late", "[call][sdp_io]") {
    const std::string path = fifo("out"), copy = path + ".copy";
    const std::string text(100000, 'a');  // more than a pipe holds: written as the reader reads
    kms::Loop loop;
    int ticks = 0;
    std::string error = "not called";
    const size_t before = threads();
    size_t while_waiting = 0;
    kms::app::write_async(loop, path, text, [&](std::string e) {
        error = e;
        loop.quit();
    });
    loop.every(20, [&] {
        if (++ticks == 3) while_waiting = threads();
        return true;
    });
    REQUIRE(std::system(("(sleep 0.3; cat " + path + " > " + copy + ") &").c_str()) == 0);
    loop.after(5000, [&] { loop.quit(); });
    loop.run();
    CHECK(while_waiting == before);
    CHECK(ticks >= 10);
    CHECK(error.empty());
    CHECK(kms::app::wait_writes(1.0));
    std::this_thread::sleep_for(std::chrono::milliseconds(100));  // cat's own write
    std::ifstream in(copy);
    std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(back == text);
}

TEST_CASE("after the loop, wait_writes finishes a write or gives up in time", "[call][sdp_io]") {
    const std::string path = fifo("out"), copy = path + ".copy", nobody = fifo("nobody");
    {
        kms::Loop loop;
        kms::app::write_async(loop, path, kOffer, [](std::string) {});
        kms::app::write_async(loop, nobody, kOffer, [](std::string) {});
        loop.after(50, [&] { loop.quit(); });
        loop.run();
    }
    REQUIRE(std::system(("(sleep 0.2; cat " + path + " > " + copy + ") &").c_str()) == 0);
    const auto start = std::chrono::steady_clock::now();
    CHECK_FALSE(kms::app::wait_writes(1.0));  // `nobody` never gets a reader
    const double took =
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    CHECK(took >= 0.9);
    CHECK(took < 1.5);
    std::this_thread::sleep_for(std::chrono::milliseconds(100));
    std::ifstream in(copy);
    std::string back((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    CHECK(back == kOffer);
}

TEST_CASE("a path that is a socket is refused at once, not waited for as a fifo",
          "[call][sdp_io]") {
    char tmpl[] = "/tmp/kms-sdpio.XXXXXX";
    REQUIRE(mkdtemp(tmpl) != nullptr);
    const std::string path = std::string(tmpl) + "/sock";
    const int s = socket(AF_UNIX, SOCK_STREAM, 0);
    sockaddr_un addr{};
    addr.sun_family = AF_UNIX;
    std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
    REQUIRE(bind(s, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
    kms::Loop loop;
    std::string error;
    kms::app::write_async(loop, path, kOffer, [&](std::string e) {
        error = e;
        loop.quit();
    });
    loop.after(2000, [&] { loop.quit(); });
    loop.run();
    close(s);
    CHECK(error == path + ": No such device or address");
}
