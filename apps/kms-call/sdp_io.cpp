// SDP over stdio, files and fifos on the main loop, without threads: fds are watched for
// readiness and read or written only when that cannot block. Fifos are opened non-blocking, so
// a peer that has not opened its end yet never stalls the loop: a reader waits for its writer in
// poll() (Linux reports no hang-up before a fifo's first writer), and a writer retries its open
// until a reader is there.
#include <fcntl.h>
#include <poll.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <climits>
#include <cstdio>
#include <cstring>
#include <memory>
#include <vector>

#include "kms-call/sdp_io.hpp"

namespace kms::app {

namespace {

std::string io_error(const std::string& path, int err) {
    return (path == "-" ? std::string("stdin") : path) + ": " + std::strerror(err);
}

// One input: a description first (when done is set), then lines (when lines is set).
struct Reader {
    std::string path;
    SdpFormat format = SdpFormat::Sdp;
    std::function<void(SdpRead)> done;
    std::function<void(std::string)> lines;
    std::function<void()> closed;
    int fd = -1;
    bool own = false;  // opened here (not stdin): closed here
    SdpFramer framer{SdpFormat::Sdp};
    std::string partial;  // bytes after the last newline

    ~Reader() {
        if (own) close(fd);
    }

    // One line of input; false when nothing more is wanted from it.
    bool line(std::string l) {
        if (!done) {
            lines(std::move(l));
            return true;
        }
        if (framer.feed(l)) return finish_description(true);
        if (framer.too_large()) {
            SdpRead r;
            r.error = "the description is larger than 256 KiB";
            deliver(std::move(r));
            return false;
        }
        return true;
    }

    // The description is complete (or the input ended after all of one in plain SDP).
    bool finish_description(bool complete) {
        SdpRead r;
        if (!complete) {
            r.eof = framer.text().empty();
            r.error = r.eof ? "the input closed before a description arrived"
                            : "the input closed in the middle of a description";
            // JSON is framed by its braces, which plain SDP never closes.
            if (format != SdpFormat::Sdp && framer.text().rfind("v=", 0) == 0)
                r.error += "; this is plain SDP: give --sdp-format sdp";
        } else {
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
                // base64(1) wraps at 76 columns; the description is its first line alone.
                else if (format == SdpFormat::Base64Json)
                    r.error += " (base64 must be one line: base64 -w0)";
            }
        }
        const bool more = r.ok && lines;
        deliver(std::move(r));
        return more;
    }

    void deliver(SdpRead r) {
        auto d = std::move(done);
        done = nullptr;
        d(std::move(r));
    }

    // The fd is ready: false when this reader is finished.
    bool on_ready() {
        char buf[4096];
        const ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && (errno == EAGAIN || errno == EINTR)) return true;
        if (n <= 0) return at_end(n < 0 ? errno : 0);
        partial.append(buf, static_cast<size_t>(n));
        size_t start = 0;
        for (size_t nl; (nl = partial.find('\n', start)) != std::string::npos; start = nl + 1) {
            if (!line(partial.substr(start, nl - start))) return false;
        }
        partial.erase(0, start);
        return true;
    }

    bool at_end(int err) {
        if (!partial.empty() && !err) {
            std::string last;
            last.swap(partial);
            if (!line(std::move(last))) return false;
        }
        if (done) {
            if (err) {
                SdpRead r;
                r.error = io_error(path, err);
                deliver(std::move(r));
                return false;
            }
            // The input has ended whatever comes of it: a terminal reports no second end.
            if (!finish_description(framer.finish() && format == SdpFormat::Sdp)) return false;
        }
        if (closed) closed();
        return false;
    }
};

void start_reader(Loop& loop, std::unique_ptr<Reader> r) {
    if (r->path == "-") {
        r->fd = 0;
    } else {
        r->fd = open(r->path.c_str(), O_RDONLY | O_NONBLOCK | O_CLOEXEC);
        r->own = r->fd >= 0;
        if (r->fd < 0) {
            SdpRead e;
            e.error = io_error(r->path, errno);
            loop.post([done = std::move(r->done), e] { done(e); });
            return;
        }
    }
    std::shared_ptr<Reader> shared(std::move(r));
    loop.watch_fd(shared->fd, false, [shared] { return shared->on_ready(); });
}

// One description on its way out. Kept until written, for wait_writes().
struct Writer {
    std::string path;
    std::string text;
    size_t written = 0;
    int fd = -1;
    bool own = false;  // opened here: closed here
    bool finished = false;
    std::function<void(std::string)> done;

    ~Writer() {
        if (own) close(fd);
    }

    // 1 opened, 0 not yet (a fifo without a reader), -1 failed (done was called).
    int try_open() {
        if (path == "-") {
            std::fflush(stdout);  // what stdio holds goes first
            // A terminal blocks a write while its output is stopped (Ctrl-S, a pty nobody
            // reads), whatever poll() says: it is opened anew, non-blocking, which leaves the
            // shell's own open file as it was. A pipe is written as poll() allows, below.
            fd = isatty(1) ? open("/proc/self/fd/1", O_WRONLY | O_NONBLOCK | O_NOCTTY | O_CLOEXEC)
                           : -1;
            own = fd >= 0;
            if (!own) fd = 1;
            return 1;
        }
        fd = open(path.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NONBLOCK | O_CLOEXEC, 0666);
        own = fd >= 0;
        if (own) return 1;
        // ENXIO is also a socket's or an absent device's answer: only a fifo is waited for.
        struct stat st {};
        if (errno == ENXIO && stat(path.c_str(), &st) == 0 && S_ISFIFO(st.st_mode)) return 0;
        finish(io_error(path, errno));
        return -1;
    }

    // Writes what it can; false once finished. A stdout that is a pipe is not ours to make
    // non-blocking: it is written only when poll() says so, at most PIPE_BUF at a time, which a
    // pipe then takes whole.
    bool write_some() {
        const size_t chunk = std::min<size_t>(text.size() - written, PIPE_BUF);
        const ssize_t n = write(fd, text.data() + written, chunk);
        if (n < 0) {
            if (errno == EAGAIN || errno == EINTR) return true;
            finish((path == "-" ? std::string("stdout") : path) + ": " + std::strerror(errno));
            return false;
        }
        written += static_cast<size_t>(n);
        if (written < text.size()) return true;
        finish("");
        return false;
    }

    void finish(const std::string& error) {
        finished = true;
        if (own) close(fd);
        own = false;
        fd = -1;
        if (done) done(error);
    }
};

std::vector<std::shared_ptr<Writer>> g_writers;

void watch_writer(Loop& loop, const std::shared_ptr<Writer>& w) {
    loop.watch_fd(w->fd, true, [w] { return !w->finished && w->write_some(); });
}

}  // namespace

void read_sdp_async(Loop& loop, const std::string& path, SdpFormat format,
                    std::function<void(SdpRead)> done, std::function<void(std::string)> lines,
                    std::function<void()> closed) {
    auto r = std::make_unique<Reader>();
    r->path = path;
    r->format = format;
    r->framer = SdpFramer(format);
    r->done = std::move(done);
    r->lines = std::move(lines);
    r->closed = std::move(closed);
    start_reader(loop, std::move(r));
}

void read_lines_async(Loop& loop, std::function<void(std::string)> lines,
                      std::function<void()> closed) {
    auto r = std::make_unique<Reader>();
    r->path = "-";
    r->lines = std::move(lines);
    r->closed = std::move(closed);
    start_reader(loop, std::move(r));
}

void write_async(Loop& loop, const std::string& path, std::string text,
                 std::function<void(std::string)> done) {
    auto w = std::make_shared<Writer>();
    w->path = path;
    w->text = std::move(text);
    // done is called on a later turn of the loop, never from inside write_async.
    w->done = [&loop, done = std::move(done)](std::string error) {
        loop.post([done, error] { done(error); });
    };
    std::erase_if(g_writers, [](const auto& old) { return old->finished; });
    g_writers.push_back(w);
    const int opened = w->try_open();
    if (opened > 0) return watch_writer(loop, w);
    if (opened < 0) return;
    // A fifo nobody reads yet: ask again until someone does (wait_writes bounds it at exit).
    loop.every(20, [&loop, w] {
        if (w->finished) return false;
        const int now = w->try_open();
        if (now > 0) watch_writer(loop, w);
        return now == 0;
    });
}

bool wait_writes(double seconds) {
    const auto until = std::chrono::steady_clock::now() + std::chrono::duration<double>(seconds);
    for (auto& w : g_writers) {
        w->done = nullptr;  // the loop has ended: nobody is left to tell
        while (!w->finished) {
            const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                until - std::chrono::steady_clock::now());
            if (left.count() <= 0) return false;
            if (w->fd < 0) {
                if (w->try_open() == 0) poll(nullptr, 0, 5);
                continue;
            }
            pollfd p{w->fd, POLLOUT, 0};
            if (poll(&p, 1, static_cast<int>(left.count())) > 0) w->write_some();
        }
    }
    return true;
}

}  // namespace kms::app
