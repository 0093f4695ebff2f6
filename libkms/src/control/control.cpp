// The control socket: a listening UNIX socket watched by the main loop. Each client sends one
// line, gets one JSON document and a newline, and is closed. Reads never block the loop: the
// client's socket is non-blocking and watched until its line is complete. An answer (a few kB)
// fits the socket's buffer at once; only when it does not does the loop wait for the client, at
// most 100 ms in all, and a client that still has not read it loses the rest.
#include "kms/control.hpp"

#include <fcntl.h>
#include <poll.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include <glib-unix.h>
#include <glib.h>

#include "kms/error.hpp"

namespace kms {

namespace {

constexpr size_t kMaxRequest = 1024;

sockaddr_un address(const std::string& path) {
    sockaddr_un a = {};
    a.sun_family = AF_UNIX;
    if (path.empty() || path.size() >= sizeof a.sun_path)
        throw Error(ErrorCode::InvalidArgument, "control socket " + path + ": a path of 1 to " +
                                                    std::to_string(sizeof a.sun_path - 1) +
                                                    " characters");
    std::memcpy(a.sun_path, path.c_str(), path.size());
    return a;
}

std::string errno_text() {
    return std::strerror(errno);
}

}  // namespace

struct ControlServer::Impl : std::enable_shared_from_this<Impl> {
    std::string path;
    Handler handler;
    int fd = -1;
    guint watch = 0;
    struct Client {
        std::weak_ptr<Impl> server;
        int fd;
        std::string line;
        guint watch = 0;
    };

    ~Impl() {
        if (watch) g_source_remove(watch);
        if (fd >= 0) ::close(fd);
    }

    static gboolean on_listen(gint, GIOCondition, gpointer data) {
        auto* self = static_cast<Impl*>(data);
        const int c = ::accept4(self->fd, nullptr, nullptr, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (c < 0) return G_SOURCE_CONTINUE;
        // Another user's process: the socket's mode already keeps it out, unless it is root.
        ucred cred = {};
        socklen_t len = sizeof cred;
        if (::getsockopt(c, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0 ||
            (cred.uid != ::geteuid() && cred.uid != 0)) {
            ::close(c);
            return G_SOURCE_CONTINUE;
        }
        auto* client = new Client{self->weak_from_this(), c, {}, 0};
        client->watch = g_unix_fd_add(c, static_cast<GIOCondition>(G_IO_IN | G_IO_HUP | G_IO_ERR),
                                      on_client, client);
        return G_SOURCE_CONTINUE;
    }

    static gboolean on_client(gint, GIOCondition, gpointer data) {
        auto* client = static_cast<Client*>(data);
        char buf[256];
        bool done = false;
        for (;;) {
            const ssize_t n = ::read(client->fd, buf, sizeof buf);
            if (n > 0) {
                client->line.append(buf, static_cast<size_t>(n));
                if (client->line.find('\n') != std::string::npos ||
                    client->line.size() > kMaxRequest) {
                    done = true;
                    break;
                }
                continue;
            }
            if (n < 0 && errno == EINTR) continue;
            if (n < 0 && errno == EAGAIN) return G_SOURCE_CONTINUE;  // more to come
            done = true;  // the end, or an error: answer what came
            break;
        }
        if (done) {
            if (auto server = client->server.lock()) server->answer(*client);
            ::close(client->fd);
            delete client;
        }
        return G_SOURCE_REMOVE;
    }

    void answer(const Client& client) {
        std::string request = client.line.substr(0, client.line.find('\n'));
        while (!request.empty() && (request.back() == '\r' || request.back() == ' '))
            request.pop_back();
        Json reply;
        if (client.line.size() > kMaxRequest)
            reply = Json{{"error", "request too long"}};
        else
            try {
                reply = handler(request);
            } catch (const std::exception& e) {
                reply = Json{{"error", e.what()}};
            }
        const std::string text = reply.dump(-1, ' ', false, Json::error_handler_t::replace) + "\n";
        size_t off = 0;
        // The socket is non-blocking: a client that does not read its answer within 10 waits of
        // 10 ms loses the rest, so a stuck client costs the loop 100 ms at most.
        for (int tries = 0; off < text.size() && tries < 10; ++tries) {
            const ssize_t n = ::send(client.fd, text.data() + off, text.size() - off, MSG_NOSIGNAL);
            if (n > 0) {
                off += static_cast<size_t>(n);
            } else if (n < 0 && errno == EAGAIN) {
                pollfd p = {client.fd, POLLOUT, 0};
                ::poll(&p, 1, 10);
            } else if (!(n < 0 && errno == EINTR)) {
                break;
            }
        }
    }
};

ControlServer::ControlServer(const std::string& path, Handler handler)
    : impl_(std::make_shared<Impl>()) {
    impl_->path = path;
    impl_->handler = std::move(handler);
    const sockaddr_un a = address(path);
    struct stat st = {};
    if (::lstat(path.c_str(), &st) == 0) {
        if (!S_ISSOCK(st.st_mode))
            throw Error(ErrorCode::Io, "control socket " + path +
                                           ": a file that is not a socket "
                                           "is already there");
        // A socket someone answers on is in use; one nobody answers on was left by a crash.
        const int probe = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
        const bool live =
            probe >= 0 && ::connect(probe, reinterpret_cast<const sockaddr*>(&a), sizeof a) == 0;
        if (probe >= 0) ::close(probe);
        if (live)
            throw Error(ErrorCode::Io,
                        "control socket " + path + ": another process is listening there");
        ::unlink(path.c_str());
    }
    impl_->fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (impl_->fd < 0) throw Error(ErrorCode::Io, "control socket: " + errno_text());
    // Made 0600 from the start: bind() creates the file with the umask's mode, and a chmod
    // after it would leave a moment when others could connect.
    const mode_t old = ::umask(0177);
    const int bound = ::bind(impl_->fd, reinterpret_cast<const sockaddr*>(&a), sizeof a);
    const int err = errno;
    ::umask(old);
    if (bound != 0)
        throw Error(ErrorCode::Io, "control socket " + path + ": " + std::strerror(err));
    if (::listen(impl_->fd, 8) != 0)
        throw Error(ErrorCode::Io, "control socket " + path + ": " + errno_text());
    impl_->watch = g_unix_fd_add(impl_->fd, G_IO_IN, Impl::on_listen, impl_.get());
}

ControlServer::~ControlServer() {
    if (impl_->watch) g_source_remove(impl_->watch);
    impl_->watch = 0;
    ::unlink(impl_->path.c_str());
}

Json control_request(const std::string& path, const std::string& request, double timeout_s) {
    const sockaddr_un a = address(path);
    const int fd = ::socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) throw Error(ErrorCode::Network, "control socket: " + errno_text());
    struct Closer {
        int fd;
        ~Closer() { ::close(fd); }
    } closer{fd};
    if (::connect(fd, reinterpret_cast<const sockaddr*>(&a), sizeof a) != 0)
        throw Error(ErrorCode::Network,
                    path + ": " + errno_text() +
                        (errno == EACCES ? " (the socket belongs to another user)"
                         : errno == ENOENT || errno == ECONNREFUSED
                             ? " (is the tool running with --control?)"
                             : ""));
    const std::string line = request + "\n";
    if (::send(fd, line.data(), line.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(line.size()))
        throw Error(ErrorCode::Network, path + ": " + errno_text());
    std::string reply;
    const auto deadline =
        std::chrono::steady_clock::now() + std::chrono::milliseconds(long(timeout_s * 1000));
    for (;;) {
        const auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                              deadline - std::chrono::steady_clock::now())
                              .count();
        pollfd p = {fd, POLLIN, 0};
        if (left <= 0 || ::poll(&p, 1, static_cast<int>(left)) == 0)
            throw Error(ErrorCode::Network,
                        path + ": no answer within " + std::to_string(int(timeout_s)) + " s");
        char buf[4096];
        const ssize_t n = ::read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) break;
        reply.append(buf, static_cast<size_t>(n));
    }
    // Closed without a word: the tool was ending as we asked (it stops answering before it
    // removes its socket). That is the tool gone, not a bad answer.
    if (reply.empty())
        throw Error(ErrorCode::Network, path + ": closed without an answer; the tool is ending");
    try {
        return Json::parse(reply);
    } catch (const std::exception&) {
        throw Error(ErrorCode::BadInput, path + ": the answer is not JSON");
    }
}

}  // namespace kms
