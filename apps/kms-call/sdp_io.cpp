#include <atomic>
#include <cerrno>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <thread>

#include "kms-call/sdp_io.hpp"

namespace kms::app {

namespace {

std::FILE* open_input(const std::string& path, std::string* error) {
    if (path == "-") return stdin;
    std::FILE* f = std::fopen(path.c_str(), "r");
    if (!f) *error = path + ": " + std::strerror(errno);
    return f;
}

bool next_line(std::FILE* f, std::string& line) {
    line.clear();
    char* buf = nullptr;
    size_t cap = 0;
    ssize_t n = getline(&buf, &cap, f);
    if (n >= 0) {
        line.assign(buf, static_cast<size_t>(n));
        if (!line.empty() && line.back() == '\n') line.pop_back();
    }
    std::free(buf);
    return n >= 0;
}

}  // namespace

void read_sdp_async(Loop&, const std::string& path, SdpFormat format,
                    std::function<void(SdpRead)> done, std::function<void(std::string)> lines,
                    std::function<void()> closed) {
    std::thread([path, format, done = std::move(done), lines = std::move(lines),
                 closed = std::move(closed)] {
        SdpRead r;
        std::FILE* f = open_input(path, &r.error);
        if (!f) {
            post_to_main([done, r] { done(r); });
            return;
        }
        SdpFramer framer(format);
        std::string line;
        bool complete = false;
        bool more = true;
        while (!complete && (more = next_line(f, line))) {
            complete = framer.feed(line);
            if (framer.too_large()) {
                r.error = "the description is larger than 256 KiB";
                break;
            }
        }
        if (!complete && r.error.empty()) {
            if (!more && framer.finish() && format == SdpFormat::Sdp) {
                complete = true;
            } else {
                r.eof = framer.text().empty();
                r.error = r.eof ? "the input closed before a description arrived"
                                : "the input closed in the middle of a description";
            }
        }
        if (complete) {
            std::string why;
            if (auto env = decode_sdp(framer.text(), format, &why)) {
                r.ok = true;
                r.sdp = env->sdp;
                r.type = env->type;
            } else {
                r.error = why;
                // The commonest mistake: a plain SDP read as JSON.
                if (format != SdpFormat::Sdp && framer.text().rfind("v=", 0) == 0)
                    r.error += "; this is plain SDP: give --sdp-format sdp";
            }
        }
        post_to_main([done, r] { done(r); });
        if (!lines || !r.ok) {
            if (f != stdin) std::fclose(f);
            return;
        }
        while (next_line(f, line)) post_to_main([lines, line] { lines(line); });
        if (closed) post_to_main(closed);
        if (f != stdin) std::fclose(f);
    }).detach();
}

void read_lines_async(Loop&, std::function<void(std::string)> lines, std::function<void()> closed) {
    std::thread([lines = std::move(lines), closed = std::move(closed)] {
        std::string line;
        while (next_line(stdin, line)) post_to_main([lines, line] { lines(line); });
        if (closed) post_to_main(closed);
    }).detach();
}

std::atomic<int> g_writes{0};

void write_async(Loop&, const std::string& path, std::string text,
                 std::function<void(std::string)> done) {
    ++g_writes;
    std::thread([path, text = std::move(text), done = std::move(done)] {
        std::string error;
        std::FILE* f = path == "-" ? stdout : std::fopen(path.c_str(), "w");
        if (!f) {
            error = path + ": " + std::strerror(errno);
        } else {
            if (std::fwrite(text.data(), 1, text.size(), f) != text.size() || std::fflush(f) != 0)
                error = (path == "-" ? std::string("stdout") : path) + ": " + std::strerror(errno);
            if (f != stdout) std::fclose(f);
        }
        --g_writes;
        post_to_main([done, error] { done(error); });
    }).detach();
}

bool wait_writes(double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    while (g_writes > 0) {
        if (std::chrono::steady_clock::now() > until) return false;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return true;
}

}  // namespace kms::app
