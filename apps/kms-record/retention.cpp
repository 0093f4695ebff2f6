#include "retention.hpp"

#include <glob.h>
#include <sys/stat.h>

#include <algorithm>
#include <cctype>
#include <cstring>
#include <regex>

namespace kms::recording {

namespace {

// What a field can print: strftime's numeric fields in their width, the index in digits. A
// field with a flag or a width ("%-d", "%_H", "%3i") may print fewer digits or spaces.
std::string field_regex(char conversion, bool modified) {
    if (modified && std::strchr("YGmdHMSyIUVWCgeklju", conversion)) return "[ 0-9]+";
    if (modified && (conversion == 'i' || conversion == 's')) return "[ 0-9]+";
    switch (conversion) {
        case 'Y':
        case 'G':
            return "[0-9]{4}";
        case 'm':
        case 'd':
        case 'H':
        case 'M':
        case 'S':
        case 'y':
        case 'I':
        case 'U':
        case 'V':
        case 'W':
        case 'C':
        case 'g':
            return "[0-9]{2}";
        case 'e':
        case 'k':
        case 'l':
            return "[ 0-9][0-9]";
        case 'j':
            return "[0-9]{3}";
        case 'u':
        case 'w':
            return "[0-9]";
        case 's':
        case 'i':
            return "[0-9]+";
        case 'F':
            return "[0-9]{4}-[0-9]{2}-[0-9]{2}";
        case 'T':
            return "[0-9]{2}:[0-9]{2}:[0-9]{2}";
        case 'R':
            return "[0-9]{2}:[0-9]{2}";
        default:
            return "[^/]+";
    }
}

// Walks the pattern: literal text to lit(), a field to field(conversion), "%%" as literal "%".
template <typename Lit, typename Field>
void walk(const std::string& pattern, Lit lit, Field field) {
    for (size_t i = 0; i < pattern.size(); ++i) {
        if (pattern[i] != '%' || i + 1 == pattern.size()) {
            lit(pattern[i]);
            continue;
        }
        size_t j = i + 1;
        if (pattern[j] == '%') {
            lit('%');
            i = j;
            continue;
        }
        // Flags, width and E/O modifiers: "%02i", "%-d", "%Ey".
        while (j < pattern.size() &&
               (std::isdigit(static_cast<unsigned char>(pattern[j])) || pattern[j] == '-' ||
                pattern[j] == '_' || pattern[j] == '0' || pattern[j] == '^' || pattern[j] == '#' ||
                pattern[j] == 'E' || pattern[j] == 'O'))
            ++j;
        if (j == pattern.size()) {
            for (size_t k = i; k < j; ++k) lit(pattern[k]);
            return;
        }
        field(pattern[j], j > i + 1);
        i = j;
    }
}

}  // namespace

std::string pattern_regex(const std::string& pattern) {
    std::string re;
    walk(
        pattern,
        [&](char c) {
            if (std::strchr("\\^$.|?*+()[]{}", c)) re += '\\';
            re += c;
        },
        [&](char c, bool modified) { re += "(" + field_regex(c, modified) + ")"; });
    return re;
}

std::vector<Segment> existing_segments(const std::string& pattern) {
    std::string g;  // the glob: every field a '*', glob's own characters escaped
    walk(
        pattern,
        [&](char c) {
            if (std::strchr("\\*?[", c)) g += '\\';
            g += c;
        },
        [&](char, bool) { g += '*'; });
    const std::regex re(pattern_regex(pattern));
    glob_t found = {};
    std::vector<std::pair<timespec, Segment>> files;
    if (::glob(g.c_str(), 0, nullptr, &found) == 0) {
        for (size_t i = 0; i < found.gl_pathc; ++i) {
            const std::string path = found.gl_pathv[i];
            struct stat st = {};
            if (!std::regex_match(path, re) || ::stat(path.c_str(), &st) != 0 ||
                !S_ISREG(st.st_mode))
                continue;
            Segment s;
            s.path = path;
            s.bytes = st.st_size;
            files.push_back({st.st_mtim, s});
        }
    }
    ::globfree(&found);
    std::sort(files.begin(), files.end(), [](const auto& a, const auto& b) {
        if (a.first.tv_sec != b.first.tv_sec) return a.first.tv_sec < b.first.tv_sec;
        if (a.first.tv_nsec != b.first.tv_nsec) return a.first.tv_nsec < b.first.tv_nsec;
        return a.second.path < b.second.path;
    });
    std::vector<Segment> out;
    for (auto& [t, s] : files) out.push_back(std::move(s));
    return out;
}

void Retention::add(Segment file) {
    for (auto it = kept_.begin(); it != kept_.end();)
        if (it->path == file.path) {
            bytes_ -= static_cast<unsigned long long>(it->bytes);
            it = kept_.erase(it);
        } else {
            ++it;
        }
    bytes_ += static_cast<unsigned long long>(file.bytes);
    kept_.push_back(std::move(file));
}

std::vector<Segment> Retention::over() {
    std::vector<Segment> gone;
    while (kept_.size() > 1 &&
           ((max_files_ && kept_.size() > max_files_) || (max_bytes_ && bytes_ > max_bytes_))) {
        bytes_ -= static_cast<unsigned long long>(kept_.front().bytes);
        gone.push_back(std::move(kept_.front()));
        kept_.erase(kept_.begin());
    }
    return gone;
}

}  // namespace kms::recording
