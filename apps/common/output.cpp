#include <cmath>
#include <cstdio>

#include "common/output.hpp"

namespace kms::app {

std::string to_text(const Json& v) {
    if (v.is_string()) return v.get<std::string>();
    if (v.is_number_float()) {
        char buf[64];
        double d = v.get<double>();
        std::snprintf(buf, sizeof buf, std::fabs(d) >= 100 ? "%.0f" : "%.1f", d);
        return buf;
    }
    return v.dump();
}

void Output::field(const std::string& key, const std::string& label, const Json& value) {
    if (json_) {
        doc_[key] = value;
        return;
    }
    std::fprintf(out_, "%s: %s\n", label.c_str(), to_text(value).c_str());
}

void Output::object(const std::string& key, const std::string& label, const Json& value) {
    if (json_) {
        doc_[key] = value;
        return;
    }
    std::fprintf(out_, "%s:\n", label.c_str());
    for (auto it = value.begin(); it != value.end(); ++it)
        std::fprintf(out_, "  %s: %s\n", it.key().c_str(), to_text(it.value()).c_str());
}

void Output::finish() {
    if (json_) std::fprintf(out_, "%s\n", doc_.dump().c_str());
    std::fflush(out_);
}

}  // namespace kms::app
