#include "assertions.hpp"

#include <cctype>
#include <cmath>
#include <cstdio>
#include <cstdlib>

namespace kms::stats {

namespace {

const char* dim_name(Dim d) {
    switch (d) {
        case Dim::Ratio:
            return "a ratio (%, or a fraction)";
        case Dim::Seconds:
            return "a time (s, ms, us)";
        case Dim::Bitrate:
            return "a bitrate (bps, kbps, Mbps, Gbps)";
        case Dim::Fps:
            return "a frame rate (fps)";
        case Dim::Count:
            return "a plain number";
    }
    return "";
}

struct Unit {
    const char* text;
    Dim dim;
    double factor;  // to the base unit
};
// Longest first, so "ms" is not read as "m" then "s".
const Unit kUnits[] = {
    {"kbps", Dim::Bitrate, 1e3}, {"Mbps", Dim::Bitrate, 1e6}, {"Gbps", Dim::Bitrate, 1e9},
    {"bps", Dim::Bitrate, 1},    {"fps", Dim::Fps, 1},        {"ms", Dim::Seconds, 1e-3},
    {"us", Dim::Seconds, 1e-6},  {"s", Dim::Seconds, 1},      {"%", Dim::Ratio, 1e-2}};

std::string shown(double v, const Assertion& a) {
    char buf[64];
    double f = 1;
    for (const auto& u : kUnits)
        if (a.unit == u.text) f = u.factor;
    std::string unit = a.unit;
    if (unit.empty()) {
        // No unit typed: the figure in the unit people read it in.
        switch (a.dim) {
            case Dim::Ratio:
                f = 1e-2, unit = "%";
                break;
            case Dim::Seconds:
                f = 1e-3, unit = "ms";
                break;
            case Dim::Bitrate:
                f = 1e3, unit = "kbps";
                break;
            case Dim::Fps:
                unit = "fps";
                break;
            case Dim::Count:
                break;
        }
    }
    // A count is whole (gaps, key frames): "measured 1", not "1.00".
    const bool whole = a.dim == Dim::Count && v == std::floor(v);
    std::snprintf(buf, sizeof buf, "%.*f%s", whole || std::fabs(v / f) >= 100 ? 0 : 2, v / f,
                  unit.c_str());
    return buf;
}

}  // namespace

const std::vector<KnownMetric>& probe_metric_names() {
    static const std::vector<KnownMetric> names = [] {
        std::vector<KnownMetric> v{{"duration", Dim::Seconds},
                                   {"bitrate", Dim::Bitrate},
                                   {"gaps", Dim::Count},
                                   {"gap.max", Dim::Seconds},
                                   {"av.offset", Dim::Seconds}};
        for (const char* k : {"video.", "audio."}) {
            for (auto [n, d] : std::vector<std::pair<const char*, Dim>>{
                     {"fps", Dim::Fps},
                     {"bitrate", Dim::Bitrate},
                     {"bitrate.peak", Dim::Bitrate},
                     {"duration", Dim::Seconds},
                     {"frames", Dim::Count},
                     {"gaps", Dim::Count},
                     {"width", Dim::Count},
                     {"height", Dim::Count},
                     {"keyframe.interval", Dim::Seconds},
                     {"keyframe.interval.max", Dim::Seconds}}) {
                v.push_back({std::string(k) + n, d});
            }
        }
        return v;
    }();
    return names;
}

const std::vector<KnownMetric>& summary_metric_names() {
    static const std::vector<KnownMetric> names{{"loss", Dim::Ratio},
                                                {"video.loss", Dim::Ratio},
                                                {"audio.loss", Dim::Ratio},
                                                {"packetsLost", Dim::Count},
                                                {"video.packetsLost", Dim::Count},
                                                {"audio.packetsLost", Dim::Count},
                                                {"bitrate", Dim::Bitrate},
                                                {"video.bitrate", Dim::Bitrate},
                                                {"audio.bitrate", Dim::Bitrate},
                                                {"video.fps", Dim::Fps},
                                                {"jitter", Dim::Seconds},
                                                {"video.jitter", Dim::Seconds},
                                                {"audio.jitter", Dim::Seconds},
                                                {"rtt", Dim::Seconds},
                                                {"rtt.min", Dim::Seconds},
                                                {"rtt.mean", Dim::Seconds},
                                                {"rtt.p50", Dim::Seconds},
                                                {"rtt.p95", Dim::Seconds},
                                                {"rtt.max", Dim::Seconds},
                                                {"video.rtt", Dim::Seconds},
                                                {"video.rtt.min", Dim::Seconds},
                                                {"video.rtt.mean", Dim::Seconds},
                                                {"video.rtt.p50", Dim::Seconds},
                                                {"video.rtt.p95", Dim::Seconds},
                                                {"video.rtt.max", Dim::Seconds},
                                                {"audio.rtt", Dim::Seconds},
                                                {"audio.rtt.min", Dim::Seconds},
                                                {"audio.rtt.mean", Dim::Seconds},
                                                {"audio.rtt.p50", Dim::Seconds},
                                                {"audio.rtt.p95", Dim::Seconds},
                                                {"audio.rtt.max", Dim::Seconds},
                                                {"sent.bitrate", Dim::Bitrate},
                                                {"sent.video.fps", Dim::Fps},
                                                {"setup", Dim::Seconds},
                                                {"duration", Dim::Seconds}};
    return names;
}

Assertion parse_assertion(const std::string& text, const std::vector<KnownMetric>& known) {
    Assertion a;
    a.text = text;
    size_t i = 0;
    auto skip = [&] {
        while (i < text.size() && std::isspace(static_cast<unsigned char>(text[i]))) ++i;
    };
    skip();
    const size_t metric_at = i;
    if (i >= text.size() || !std::isalpha(static_cast<unsigned char>(text[i])))
        throw AssertSyntax(i, "expected a metric name such as loss, rtt.p95 or video.fps");
    while (i < text.size()) {
        const char c = text[i];
        if (std::isalnum(static_cast<unsigned char>(c)) || c == '_' || c == '-') {
            ++i;
        } else if (c == '.' && i + 1 < text.size() &&
                   std::isalpha(static_cast<unsigned char>(text[i + 1]))) {
            ++i;
        } else {
            break;
        }
    }
    a.metric = text.substr(metric_at, i - metric_at);
    bool found = false;
    for (const auto& k : known)
        if (a.metric == k.name) {
            a.dim = k.dim;
            found = true;
        }
    if (!found) {
        std::string names;
        for (const auto& k : known) names += (names.empty() ? "" : ", ") + k.name;
        throw AssertSyntax(metric_at, "unknown metric '" + a.metric + "'; known: " + names);
    }
    skip();
    const size_t op_at = i;
    for (const char* op : {"<=", ">=", "==", "!=", "<", ">"}) {
        if (text.compare(i, std::char_traits<char>::length(op), op) == 0) {
            a.op = op;
            i += a.op.size();
            break;
        }
    }
    if (a.op.empty()) throw AssertSyntax(op_at, "expected a comparison: < <= > >= == !=");
    skip();
    const size_t number_at = i;
    size_t digits = 0;
    while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i]))) ++i, ++digits;
    if (i < text.size() && text[i] == '.') {
        ++i;
        size_t fraction = 0;
        while (i < text.size() && std::isdigit(static_cast<unsigned char>(text[i])))
            ++i, ++fraction;
        // "5." is refused as the grammar says: a point is followed by digits.
        if (fraction == 0 && digits > 0) throw AssertSyntax(i, "expected a digit after the point");
        digits += fraction;
    }
    if (digits == 0) throw AssertSyntax(number_at, "expected a number");
    a.threshold = std::strtod(text.substr(number_at, i - number_at).c_str(), nullptr);
    skip();
    const size_t unit_at = i;
    if (i < text.size()) {
        const Unit* unit = nullptr;
        for (const auto& u : kUnits) {
            const size_t n = std::char_traits<char>::length(u.text);
            if (text.compare(i, n, u.text) == 0 &&
                (i + n == text.size() || !std::isalnum(static_cast<unsigned char>(text[i + n])))) {
                unit = &u;
                break;
            }
        }
        if (!unit)
            throw AssertSyntax(unit_at,
                               "expected a unit (% s ms us bps kbps Mbps Gbps fps) or "
                               "the end");
        if (unit->dim != a.dim)
            throw AssertSyntax(unit_at, "'" + std::string(unit->text) + "' does not suit " +
                                            a.metric + ", which is " + dim_name(a.dim));
        a.unit = unit->text;
        a.threshold *= unit->factor;
        i += a.unit.size();
        skip();
        if (i < text.size()) throw AssertSyntax(i, "unexpected text after the unit");
    } else if (a.dim == Dim::Ratio && a.threshold > 1) {
        // A bare ratio is a fraction of 1: 'loss < 150' held for every call, and 'loss < 5'
        // reads as 500 %. The percent sign says what was meant.
        throw AssertSyntax(unit_at, a.metric + " is a ratio (0.01 is 1%): write " +
                                        text.substr(number_at, i - number_at) +
                                        "% or a number up to 1");
    }
    return a;
}

std::string caret_message(const std::string& text, const AssertSyntax& e) {
    return std::string("--assert: ") + e.what() + "\n  " + text + "\n  " +
           std::string(e.column(), ' ') + "^";
}

Verdict evaluate(const Assertion& a, const Metrics& metrics) {
    Verdict v;
    for (const auto& m : metrics)
        if (m.name == a.metric) {
            v.measured = true;
            v.value = m.value;
        }
    if (!v.measured) {
        v.line = a.text + ": not measured (the input has nothing that gives " + a.metric + ")";
        return v;
    }
    const double x = v.value, t = a.threshold;
    v.ok = a.op == "<"    ? x < t
           : a.op == "<=" ? x <= t
           : a.op == ">"  ? x > t
           : a.op == ">=" ? x >= t
           : a.op == "==" ? x == t
                          : x != t;
    v.line = a.text + ": measured " + shown(x, a);
    return v;
}

}  // namespace kms::stats
