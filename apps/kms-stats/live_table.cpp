#include "live_table.hpp"

#include <sys/ioctl.h>

#include <algorithm>
#include <cstdarg>

#include "report.hpp"

namespace kms::stats {

namespace {

[[gnu::format(printf, 1, 2)]] std::string text(const char* format, ...) {
    char buf[64];
    va_list args;
    va_start(args, format);
    std::vsnprintf(buf, sizeof buf, format, args);
    va_end(args);
    return buf;
}

}  // namespace

std::vector<std::string> live_table(const Summary& s, const std::string& status) {
    constexpr const char* kRow = "  %-9s %-3s %12s %5s %6s %7s %8s %8s";
    std::vector<std::string> out{status};
    char buf[256];
    std::snprintf(buf, sizeof buf, kRow, "stream", "mid", "bitrate", "fps", "lost", "loss",
                  "jitter", "rtt");
    out.push_back(buf);
    for (const auto& t : s.tracks) {
        // The newest interval, as the status line shows it: what is flowing now, not the
        // average since the start that the summary at the end gives.
        const std::string stream = (t.inbound ? "in  " : "out ") + t.kind;
        const std::string bitrate =
            t.bitrate_series.empty() ? "-" : bitrate_text(t.bitrate_series.back().v);
        const std::string fps =
            t.kind == "video" && !t.fps_series.empty() ? text("%.1f", t.fps_series.back().v) : "-";
        std::string lost = "-", loss = "-", jitter = "-", rtt = "-";
        if (t.inbound && t.lost_reported) {
            const double total = double(t.lost) + double(t.original());
            lost = std::to_string(t.lost);
            loss = text("%.2f%%", total > 0 ? 100 * double(t.lost) / total : 0.0);
        }
        if (t.inbound && t.jitter_last) jitter = text("%.1f ms", *t.jitter_last * 1000);
        if (t.rtt_last) rtt = text("%.1f ms", *t.rtt_last * 1000);
        std::snprintf(buf, sizeof buf, kRow, stream.c_str(), t.mid.empty() ? "-" : t.mid.c_str(),
                      bitrate.c_str(), fps.c_str(), lost.c_str(), loss.c_str(), jitter.c_str(),
                      rtt.c_str());
        out.push_back(buf);
    }
    return out;
}

void LiveTable::show(const std::vector<std::string>& lines, bool force) {
    if (left_ || lines == shown_) return;
    const auto now = std::chrono::steady_clock::now();
    if (!force && height_ > 0 && now - drawn_ < std::chrono::seconds(1)) return;
    // A line wider than the terminal wraps and a block taller than it scrolls; either way the
    // cursor would no longer go back to the table's first line, so neither is drawn whole.
    size_t cols = 0, rows = 0;
    struct winsize ws = {};
    if (::ioctl(::fileno(out_), TIOCGWINSZ, &ws) == 0) {
        cols = ws.ws_col;
        rows = ws.ws_row;
    }
    const size_t n = rows > 1 ? std::min(lines.size(), rows - 1) : lines.size();
    // One write per frame: up to the first line of the last one (ESC [ n A), then each line
    // cleared (ESC [ K) and written, then anything a taller table left below erased (ESC [ J).
    std::string frame;
    if (height_ > 0) frame += "\033[" + std::to_string(height_) + "A";
    for (size_t i = 0; i < n; ++i) {
        frame += "\r\033[K";
        // A kind or mid is whatever the events said: no control byte of theirs reaches the
        // terminal, where it could move the cursor too.
        for (char c : lines[i].substr(0, cols > 1 ? cols - 1 : std::string::npos))
            frame += (static_cast<unsigned char>(c) < 0x20 || c == 0x7f) ? '?' : c;
        frame += '\n';
    }
    frame += "\033[J";
    std::fwrite(frame.data(), 1, frame.size(), out_);
    std::fflush(out_);
    shown_ = lines;
    height_ = n;
    drawn_ = now;
}

}  // namespace kms::stats
