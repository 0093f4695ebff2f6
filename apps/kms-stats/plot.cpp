// plot: the summary's time series as an SVG that any browser shows, one panel per figure
// (bitrate, frame rate, loss, round-trip time) over one time axis.
#include <algorithm>
#include <cmath>
#include <cstdio>
#include <iterator>
#include <map>
#include <sstream>

#include "summary.hpp"

namespace kms::stats {

namespace {

constexpr double kWidth = 900, kPanelHeight = 180, kLeft = 80, kRight = 150, kTop = 50, kGap = 60;

struct Line {
    std::string label;
    std::string colour;
    bool dashed = false;
    Series points;
};

struct Panel {
    std::string title, unit;
    std::vector<Line> lines;
};

// A tick step of 1, 2 or 5 times a power of ten, giving about five ticks over span.
double tick_step(double span) {
    if (span <= 0) return 1;
    const double raw = span / 5;
    const double p = std::pow(10.0, std::floor(std::log10(raw)));
    for (double m : {1.0, 2.0, 5.0, 10.0})
        if (raw <= m * p) return m * p;
    return 10 * p;
}

std::string fmt(double v) {
    char buf[32];
    if (v != 0 && std::fabs(v) < 0.01)
        std::snprintf(buf, sizeof buf, "%.3g", v);
    else
        std::snprintf(buf, sizeof buf, "%g", std::round(v * 1000) / 1000);
    return buf;
}

std::string escape(const std::string& s) {
    std::string out;
    for (char c : s) {
        if (c == '<')
            out += "&lt;";
        else if (c == '>')
            out += "&gt;";
        else if (c == '&')
            out += "&amp;";
        else if (c == '"')
            out += "&quot;";
        else
            out += c;
    }
    return out;
}

void draw_panel(std::ostringstream& o, const Panel& p, double top, double t_max) {
    const double plot_w = kWidth - kLeft - kRight;
    double y_max = 0;
    for (const auto& l : p.lines)
        for (const auto& pt : l.points) y_max = std::max(y_max, pt.v);
    const double y_step = tick_step(y_max > 0 ? y_max : 1);
    y_max = std::max(y_step, std::ceil(y_max / y_step) * y_step);
    const double x_step = tick_step(t_max);
    auto X = [&](double t) { return kLeft + plot_w * t / t_max; };
    auto Y = [&](double v) { return top + kPanelHeight * (1 - v / y_max); };

    o << "<g class=\"panel\">\n";
    o << "<text x=\"" << kLeft << "\" y=\"" << top - 10 << "\" font-size=\"14\" "
      << "font-weight=\"bold\">" << escape(p.title) << "</text>\n";
    // Grid and y-axis labels.
    for (double v = 0; v <= y_max + y_step / 2; v += y_step) {
        o << "<line x1=\"" << kLeft << "\" y1=\"" << Y(v) << "\" x2=\"" << kLeft + plot_w
          << "\" y2=\"" << Y(v) << "\" stroke=\"#ddd\"/>\n";
        o << "<text x=\"" << kLeft - 6 << "\" y=\"" << Y(v) + 4
          << "\" font-size=\"11\" text-anchor=\"end\">" << fmt(v) << "</text>\n";
    }
    for (double t = 0; t <= t_max + x_step / 2; t += x_step)
        o << "<text x=\"" << X(t) << "\" y=\"" << top + kPanelHeight + 15
          << "\" font-size=\"11\" text-anchor=\"middle\">" << fmt(t) << "</text>\n";
    // Axes, with their labels: y says the unit, x the time.
    o << "<line class=\"axis\" x1=\"" << kLeft << "\" y1=\"" << top << "\" x2=\"" << kLeft
      << "\" y2=\"" << top + kPanelHeight << "\" stroke=\"black\"/>\n";
    o << "<line class=\"axis\" x1=\"" << kLeft << "\" y1=\"" << top + kPanelHeight << "\" x2=\""
      << kLeft + plot_w << "\" y2=\"" << top + kPanelHeight << "\" stroke=\"black\"/>\n";
    const double mid = top + kPanelHeight / 2;
    o << "<text class=\"y-label\" x=\"20\" y=\"" << mid << "\" font-size=\"12\" "
      << "text-anchor=\"middle\" transform=\"rotate(-90 20 " << mid << ")\">" << escape(p.unit)
      << "</text>\n";
    o << "<text class=\"x-label\" x=\"" << kLeft + plot_w / 2 << "\" y=\""
      << top + kPanelHeight + 32 << "\" font-size=\"12\" text-anchor=\"middle\">time (s)</text>\n";
    bool any = false;
    double legend_y = top + 10;
    for (const auto& l : p.lines) {
        if (l.points.empty()) continue;
        any = true;
        o << "<polyline class=\"series\" data-label=\"" << escape(l.label)
          << "\" fill=\"none\" stroke=\"" << l.colour << "\" stroke-width=\"1.5\""
          << (l.dashed ? " stroke-dasharray=\"5,3\"" : "") << " points=\"";
        for (size_t i = 0; i < l.points.size(); ++i) {
            char buf[48];
            std::snprintf(buf, sizeof buf, "%s%.1f,%.1f", i ? " " : "", X(l.points[i].t),
                          Y(l.points[i].v));
            o << buf;
        }
        o << "\"/>\n";
        o << "<line x1=\"" << kWidth - kRight + 10 << "\" y1=\"" << legend_y << "\" x2=\""
          << kWidth - kRight + 30 << "\" y2=\"" << legend_y << "\" stroke=\"" << l.colour
          << "\" stroke-width=\"2\"" << (l.dashed ? " stroke-dasharray=\"5,3\"" : "") << "/>\n";
        o << "<text x=\"" << kWidth - kRight + 35 << "\" y=\"" << legend_y + 4
          << "\" font-size=\"11\">" << escape(l.label) << "</text>\n";
        legend_y += 16;
    }
    if (!any)
        o << "<text x=\"" << kLeft + plot_w / 2 << "\" y=\"" << mid
          << "\" font-size=\"12\" fill=\"#888\" text-anchor=\"middle\">no data in the events"
          << "</text>\n";
    o << "</g>\n";
}

// The nth stream (from 0) of a direction and kind: the first in the kind's colour, the others
// in colours of their own, so two cameras are two lines one can tell apart.
const char* colour(const std::string& kind, bool inbound, unsigned nth) {
    static const char* const kMore[] = {"#2ca02c", "#9467bd", "#8c564b", "#e377c2"};
    if (nth > 0) return kMore[(nth - 1) % std::size(kMore)];
    if (kind == "video") return inbound ? "#1f77b4" : "#17becf";
    if (kind == "audio") return inbound ? "#ff7f0e" : "#bcbd22";
    return "#7f7f7f";
}

Series scaled(const Series& s, double f) {
    Series out = s;
    for (auto& p : out) p.v *= f;
    return out;
}

}  // namespace

std::string plot_svg(const Summary& s) {
    std::vector<Panel> panels{{"Bitrate", "kbit/s", {}},
                              {"Frame rate", "frames per second", {}},
                              {"Packet loss", "% of packets", {}},
                              {"Round-trip time", "ms", {}}};
    std::map<std::pair<bool, std::string>, unsigned> streams;  // of a direction and kind
    for (const auto& t : s.tracks) ++streams[{t.inbound, t.kind}];
    std::map<std::pair<bool, std::string>, unsigned> drawn;
    for (const auto& t : s.tracks) {
        std::string who = std::string(t.inbound ? "received " : "sent ") + t.kind;
        // Two streams of a kind (simulcast, two cameras) are told apart in the legend.
        if (streams[{t.inbound, t.kind}] > 1)
            who += t.mid.empty() ? " ssrc " + std::to_string(t.ssrc) : " mid " + t.mid;
        const char* c = colour(t.kind, t.inbound, drawn[{t.inbound, t.kind}]++);
        panels[0].lines.push_back({who, c, !t.inbound, scaled(t.bitrate_series, 1e-3)});
        if (t.kind == "video") panels[1].lines.push_back({who, c, !t.inbound, t.fps_series});
        if (t.inbound) panels[2].lines.push_back({who, c, false, scaled(t.loss_series, 100)});
    }
    panels[3].lines.push_back({"round-trip time", "#d62728", false, s.rtt.series});
    const double t_max = std::max(1.0, s.duration);
    const double height = kTop + double(panels.size()) * (kPanelHeight + kGap) + 10;
    std::ostringstream o;
    o << "<?xml version=\"1.0\" encoding=\"UTF-8\"?>\n"
      << "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" << kWidth << "\" height=\"" << height
      << "\" viewBox=\"0 0 " << kWidth << ' ' << height << "\" font-family=\"sans-serif\">\n"
      << "<title>" << escape(s.input) << "</title>\n"
      << "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      << "<text x=\"" << kLeft << "\" y=\"22\" font-size=\"16\">kms-stats: " << escape(s.input)
      << "</text>\n";
    double top = kTop + 20;
    for (const auto& p : panels) {
        draw_panel(o, p, top, t_max);
        top += kPanelHeight + kGap;
    }
    o << "</svg>\n";
    return o.str();
}

}  // namespace kms::stats
