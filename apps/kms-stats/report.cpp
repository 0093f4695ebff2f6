#include "report.hpp"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdio>
#include <cstring>
#include <map>
#include <sstream>

#include "kms/error.hpp"

namespace kms::stats {

double round_to(double v, int digits) {
    const double f = std::pow(10.0, digits);
    return std::round(v * f) / f;
}

std::string seconds_text(double s) {
    char buf[48];
    if (std::fabs(s) < 1 && s != 0)
        std::snprintf(buf, sizeof buf, "%.1f ms", s * 1000);
    else
        std::snprintf(buf, sizeof buf, "%.2f s", s);
    return buf;
}

std::string bitrate_text(double bps) {
    char buf[48];
    if (bps >= 1e6)
        std::snprintf(buf, sizeof buf, "%.2f Mbit/s", bps / 1e6);
    else
        std::snprintf(buf, sizeof buf, "%.1f kbit/s", bps / 1e3);
    return buf;
}

namespace {

// Label values escape backslash, double quote and newline (exposition format, "Text format
// details"); HELP text escapes backslash and newline.
std::string escape(const std::string& s, bool quote) {
    std::string out;
    for (char c : s) {
        if (c == '\\')
            out += "\\\\";
        else if (c == '\n')
            out += "\\n";
        else if (c == '"' && quote)
            out += "\\\"";
        else
            out += c;
    }
    return out;
}

std::string number(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    char buf[64];
    std::snprintf(buf, sizeof buf, "%.17g", v);
    return buf;
}

}  // namespace

std::string prometheus_text(const Samples& samples) {
    // Every sample of a name together, under one HELP and one TYPE, in first-seen order.
    std::vector<std::string> order;
    std::map<std::string, std::vector<const Sample*>> by_name;
    for (const auto& s : samples) {
        auto& v = by_name[s.name];
        if (v.empty()) order.push_back(s.name);
        v.push_back(&s);
    }
    std::ostringstream out;
    for (const auto& name : order) {
        const auto& group = by_name[name];
        std::string help;
        for (const auto* s : group)
            if (help.empty()) help = s->help;
        out << "# HELP " << name << ' ' << escape(help, false) << '\n';
        out << "# TYPE " << name << ' ' << group.front()->type << '\n';
        for (const auto* s : group) {
            out << name;
            if (!s->labels.empty()) {
                out << '{';
                for (size_t i = 0; i < s->labels.size(); ++i)
                    out << (i ? "," : "") << s->labels[i].first << "=\""
                        << escape(s->labels[i].second, true) << '"';
                out << '}';
            }
            out << ' ' << number(s->value) << '\n';
        }
    }
    return out.str();
}

void write_prometheus(const std::string& path, const Samples& samples) {
    const std::string text = prometheus_text(samples);
    const auto slash = path.rfind('/');
    const std::string dir = slash == std::string::npos ? "." : path.substr(0, slash + 1);
    const std::string base = slash == std::string::npos ? path : path.substr(slash + 1);
    // A dot name: node_exporter reads only *.prom, so the temporary file is never collected.
    std::string tmp = (slash == std::string::npos ? "" : dir) + "." + base + ".XXXXXX";
    const int fd = ::mkstemp(tmp.data());
    auto fail = [&](const char* what) {
        const std::string reason = std::strerror(errno);
        if (fd >= 0) {
            ::close(fd);
            ::unlink(tmp.c_str());
        }
        throw Error(ErrorCode::Io,
                    "--prometheus " + path + ": cannot " + what + " (" + reason + ")");
    };
    if (fd < 0) fail("create a temporary file beside it");
    size_t done = 0;
    while (done < text.size()) {
        const ssize_t n = ::write(fd, text.data() + done, text.size() - done);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) fail("write");
        done += static_cast<size_t>(n);
    }
    // mkstemp makes it 0600; the collector usually runs as another user.
    if (::fchmod(fd, 0644) != 0) fail("set its mode");
    if (::fsync(fd) != 0) fail("sync");
    if (::close(fd) != 0) {
        const int saved = errno;
        ::unlink(tmp.c_str());
        errno = saved;
        throw Error(ErrorCode::Io,
                    "--prometheus " + path + ": cannot write (" + std::strerror(errno) + ")");
    }
    if (::rename(tmp.c_str(), path.c_str()) != 0) {
        const std::string reason = std::strerror(errno);
        ::unlink(tmp.c_str());
        throw Error(ErrorCode::Io,
                    "--prometheus " + path + ": cannot rename into place (" + reason + ")");
    }
}

}  // namespace kms::stats
