#include "common/secrets.hpp"

#include <algorithm>
#include <vector>

#include "kms/uri.hpp"

namespace kms::app {

std::set<std::string> secrets_of(int argc, char** argv, const std::vector<std::string>& options) {
    std::set<std::string> out;
    auto add = [&](const std::string& s) {
        if (!s.empty()) out.insert(s);
    };
    for (int i = 1; i < argc; ++i) {
        const std::string a = argv[i];
        const std::string next = i + 1 < argc ? argv[i + 1] : "";
        // A mistyped option can still be a password's (--turn-pasword S3cret): any option whose
        // name looks like pas(s), pwd or secret hides its value too.
        if (a.size() > 2 && a[0] == '-' &&
            (a.find("pas") != std::string::npos || a.find("pwd") != std::string::npos ||
             a.find("secr") != std::string::npos)) {
            const size_t eq = a.find('=');
            add(eq == std::string::npos ? next : a.substr(eq + 1));
        }
        for (const std::string& o : options) {
            std::string value;
            if (a == o)
                value = next;
            else if (a.rfind(o + "=", 0) == 0)
                value = a.substr(o.size() + 1);
            else if (o == "-p" && a.size() > 2 && a.rfind("-p", 0) == 0)
                value = a.substr(2);
            else
                continue;
            if (o == "--user") {
                const size_t colon = value.find(':');
                value = colon == std::string::npos ? "" : value.substr(colon + 1);
            }
            add(value);
        }
        // user:PASS@ in a URI: what redact_url hides.
        const std::string r = redact_url(a);
        if (r != a) {
            const size_t star = r.find(":***@");
            const size_t at = a.rfind('@');
            if (star != std::string::npos && at != std::string::npos && at > star + 1)
                add(a.substr(star + 1, at - star - 1));
        }
    }
    return out;
}

std::string hide(std::string text, const std::set<std::string>& secrets) {
    std::vector<std::string> by_length(secrets.begin(), secrets.end());
    std::sort(by_length.begin(), by_length.end(),
              [](const std::string& a, const std::string& b) { return a.size() > b.size(); });
    for (const auto& s : by_length)
        for (size_t at = text.find(s); at != std::string::npos; at = text.find(s, at + 3))
            text.replace(at, s.size(), "***");
    return text;
}

}  // namespace kms::app
