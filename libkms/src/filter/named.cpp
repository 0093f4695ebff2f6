// The named filters and the parsing of a filter command line: each name builds a gst-launch
// description from plain arguments; anything else is a gst-launch fragment, checked here (every
// element exists, the elements link) so that a mistake is reported before the media starts.
#include <algorithm>
#include <cmath>
#include <map>
#include <regex>
#include <set>

#include <dlfcn.h>
#include <gst/gst.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>

#include "core/log.hpp"
#include "filter/in_place.hpp"
#include "gst/handles.hpp"
#include "kms/filter.hpp"
#include "kms/runtime.hpp"

namespace kms {

namespace {

constexpr const char* kFaceCascade =
    "/usr/share/opencv4/haarcascades/haarcascade_frontalface_default.xml";
constexpr const char* kSpeechModel = "/usr/share/pocketsphinx/model/en-us/en-us";

const std::vector<NamedFilterInfo> kNamed = {
    {"flip", "[h|v]", "mirror the picture, horizontally (default) or vertically"},
    {"rotate", "DEG", "rotate by DEG degrees clockwise (90, 180, 270 exactly; others by rotate)"},
    {"scale", "WxH", "scale the picture to W by H pixels"},
    {"crop", "", "cut off the edges: left=N right=N top=N bottom=N (pixels)"},
    {"fps", "N", "change the frame rate to N frames a second (drops or repeats frames)"},
    {"grayscale", "", "take the colour out of the picture"},
    {"text", "TEXT", "write TEXT on the picture (valign=top|center|bottom halign=left|...)"},
    {"clock", "", "write the wall-clock time on the picture"},
    {"image", "FILE", "lay a PNG/JPEG over the picture: x=N y=N width=N height=N alpha=0..1"},
    {"faces", "", "draw a circle round each face (OpenCV), and report them as faces events"},
    {"face-detect", "", "report faces (faces events with their boxes); the video is untouched"},
    {"qr", "", "report QR codes and barcodes (code-found events); the video is untouched"},
    {"level", "", "report the audio's RMS and peak in dB (level events); the audio is untouched"},
    {"speech", "", "speech to text in English (transcript events); the audio is untouched"},
    {"chroma", "COLOR", "replace COLOR (green, blue, #RRGGBB) by background=FILE (--background)"},
    {"volume", "FACTOR", "multiply the audio by FACTOR (0.5 halves it, 2 doubles it)"},
    {"resample", "RATE", "resample the audio to RATE Hz"},
};

// "a b" -> "\"a b\"", for a property value in a gst-launch description.
std::string quote(const std::string& v) {
    std::string q = "\"";
    for (char c : v) {
        if (c == '"' || c == '\\') q += '\\';
        q += c;
    }
    return q + "\"";
}

[[noreturn]] void bad(const std::string& name, const std::string& why) {
    throw Error(ErrorCode::InvalidArgument, "filter " + name + ": " + why);
}

unsigned positive(const std::string& name, const std::string& text, const char* what) {
    char* end = nullptr;
    const long v = std::strtol(text.c_str(), &end, 10);
    if (text.empty() || *end || v <= 0 || v > 100000)
        bad(name, text + " is not " + what + " (a positive whole number)");
    return static_cast<unsigned>(v);
}

// A filter whose arguments say everything: a KEY=VALUE after it is a mistake, not a property
// to pass on (volume 2 mute=true muted nothing, silently).
void no_options(const std::string& name, const std::vector<std::string>& opts) {
    if (!opts.empty())
        bad(name, "takes no KEY=VALUE options, and " + opts[0] +
                      " is not one (a gst-launch fragment sets any property)");
}

double number(const std::string& name, const std::string& text, const char* what) {
    char* end = nullptr;
    const double v = std::strtod(text.c_str(), &end);
    if (text.empty() || *end || !std::isfinite(v)) bad(name, text + " is not " + what);
    return v;
}

size_t edit_distance(const std::string& a, const std::string& b) {
    std::vector<size_t> row(b.size() + 1);
    for (size_t j = 0; j <= b.size(); ++j) row[j] = j;
    for (size_t i = 1; i <= a.size(); ++i) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= b.size(); ++j) {
            const size_t up = row[j];
            row[j] = std::min({row[j] + 1, row[j - 1] + 1, diag + (a[i - 1] != b[j - 1])});
            diag = up;
        }
    }
    return row[b.size()];
}

// The named filter or installed element whose name is nearest to name.
std::string closest(const std::string& name) {
    std::string best;
    size_t best_d = SIZE_MAX;
    auto consider = [&](const std::string& cand, const std::string& label) {
        const size_t d = edit_distance(name, cand);
        if (d < best_d) best_d = d, best = label;
    };
    for (const auto& n : kNamed) consider(n.name, std::string(n.name) + " (a named filter)");
    GList* list = gst_registry_get_feature_list(gst_registry_get(), GST_TYPE_ELEMENT_FACTORY);
    for (GList* l = list; l; l = l->next)
        consider(GST_OBJECT_NAME(l->data), GST_OBJECT_NAME(l->data));
    gst_plugin_feature_list_free(list);
    return best_d <= std::max<size_t>(3, name.size() / 2) ? best : std::string();
}

// What a stage needs installed, by element.
const std::map<std::string, std::string> kTextAliases = {
    {"font", "font-desc"}, {"valign", "valignment"}, {"halign", "halignment"}};

const std::map<std::string, std::string> kPackages = {
    {"textoverlay", "gstreamer1.0-x"},
    {"clockoverlay", "gstreamer1.0-x"},
    {"facedetect", "gstreamer1.0-opencv"},
    {"zbar", "gstreamer1.0-plugins-bad"},
    {"rotate", "gstreamer1.0-plugins-bad"},
    {"alpha", "gstreamer1.0-plugins-good"},
    {"compositor", "gstreamer1.0-plugins-base"},
    {"imagefreeze", "gstreamer1.0-plugins-good"},
    {"pocketsphinx", "gstreamer1.0-pocketsphinx"},
    {"gdkpixbufoverlay", "gstreamer1.0-plugins-good"},
    {"videoflip", "gstreamer1.0-plugins-good"},
    {"videocrop", "gstreamer1.0-plugins-good"},
    {"level", "gstreamer1.0-plugins-good"},
    {"volume", "gstreamer1.0-plugins-base"},
    {"videorate", "gstreamer1.0-plugins-base"},
    {"videoscale", "gstreamer1.0-plugins-base"},
    {"audioresample", "gstreamer1.0-plugins-base"},
};

void need(const std::string& element) {
    require_elements({{element, kPackages.count(element) ? kPackages.at(element)
                                                         : "the GStreamer plugin that has it"}});
}

void need_file(const char* path, const char* package) {
    if (::access(path, R_OK) != 0)
        throw Error(ErrorCode::MissingPlugin,
                    std::string(path) + " is missing; install " + package);
}

// The pocketsphinx library prints its whole configuration, a hundred lines, to stderr when the
// element starts. It logs through sphinxbase, which takes a FILE* to log to (NULL: nowhere);
// the plugin links the same library, so setting it here before the element exists is enough.
void quiet_pocketsphinx() {
    if (std::getenv("KMS_SPEECH_LOG")) return;
    void* lib = ::dlopen("libsphinxbase.so.3", RTLD_NOW | RTLD_GLOBAL);
    if (!lib) return;
    using SetLog = void* (*)(FILE*);
    if (auto set = reinterpret_cast<SetLog>(::dlsym(lib, "err_set_logfp"))) set(nullptr);
}

// KEY=VALUE options of a named filter, renamed to its element's properties.
std::string properties(const std::string& name, const std::vector<std::string>& opts,
                       const std::map<std::string, std::string>& aliases) {
    std::string out;
    for (const auto& o : opts) {
        const auto eq = o.find('=');
        std::string key = o.substr(0, eq);
        if (auto it = aliases.find(key); it != aliases.end()) key = it->second;
        if (key.empty()) bad(name, "option " + o + " has no name");
        out += " " + key + "=" + quote(o.substr(eq + 1));
    }
    return out;
}

// Kurento's chroma: alpha keys COLOR out, and a compositor lays what is left over a still
// picture, scaled to the frame ({width} and {height}, filled in when the stream arrives). The
// picture is one frame that the compositor repeats until the video ends (repeat-after-eos), at
// the video's rate ({rate}), not the fastest of its inputs'.
std::string chroma(const std::string& color, const std::vector<std::string>& opts) {
    const std::string name = "chroma";
    std::string background;
    double angle = 30;
    for (const auto& o : opts) {
        const auto eq = o.find('=');
        const std::string key = o.substr(0, eq), value = o.substr(eq + 1);
        if (key == "background")
            background = value;
        else if (key == "similarity")
            angle = number(name, value, "an angle");
        else
            bad(name, "expected background=FILE or similarity=DEGREES, not " + o);
    }
    if (background.empty()) bad(name, "say what goes behind: background=FILE or --background FILE");
    if (::access(background.c_str(), R_OK) != 0)
        throw Error(ErrorCode::BadInput, "filter chroma: cannot read " + background);
    unsigned r = 0, g = 0, b = 0;
    if (color == "green")
        g = 255;
    else if (color == "blue")
        b = 255;
    else if (color.size() == 7 && color[0] == '#' &&
             std::sscanf(color.c_str() + 1, "%02x%02x%02x", &r, &g, &b) == 3)
        ;
    else
        bad(name, "expected green, blue or #RRGGBB, not " + color);
    need("alpha");
    need("compositor");
    need("imagefreeze");
    static unsigned made = 0;
    // The compositor comes last, so that the next stage links to what it makes.
    const std::string mix = "chroma_mix" + std::to_string(made++);
    return "alpha method=custom target-r=" + std::to_string(r) + " target-g=" + std::to_string(g) +
           " target-b=" + std::to_string(b) + " angle=" + std::to_string(angle) + " ! " + mix +
           ".sink_0  filesrc location=" + quote(background) +
           " ! decodebin ! videoconvert ! videoscale ! imagefreeze num-buffers=1 ! " + mix +
           ".sink_1  compositor name=" + mix +
           " sink_0::zorder=1 sink_1::zorder=0 sink_1::repeat-after-eos=true "
           "sink_1::width={width} sink_1::height={height} ! capsfilter caps=video/x-raw{rate}";
}

FilterStage named(const std::string& name, const std::vector<std::string>& args,
                  const std::vector<std::string>& opts) {
    FilterStage s;
    s.name = name;
    s.kind = "video";
    auto arg = [&](size_t i) { return i < args.size() ? args[i] : std::string(); };
    if (name == "flip") {
        const std::string d = arg(0).empty() ? "h" : arg(0);
        if (d != "h" && d != "v") bad(name, "expected h or v, not " + d);
        no_options(name, opts);
        filter::register_in_place_elements();
        s.description = std::string("kmsflip vertical=") + (d == "v" ? "true" : "false");
    } else if (name == "rotate") {
        no_options(name, opts);
        const double deg = number(name, arg(0), "an angle in degrees");
        const long whole = std::lround(deg);
        const long norm = ((whole % 360) + 360) % 360;
        if (std::fabs(deg - whole) < 1e-9 && norm % 90 == 0) {
            need("videoflip");
            const char* m = norm == 90    ? "90r"
                            : norm == 180 ? "180"
                            : norm == 270 ? "90l"
                                          : "identity";
            s.description = std::string("videoflip video-direction=") + m;
        } else {
            need("rotate");
            s.description = "rotate angle=" + std::to_string(deg * M_PI / 180.0);
        }
    } else if (name == "scale") {
        static const std::regex wxh("([0-9]+)x([0-9]+)");
        std::smatch m;
        const std::string a = arg(0);
        if (!std::regex_match(a, m, wxh)) bad(name, "expected WxH such as 1280x720, not " + a);
        no_options(name, opts);
        need("videoscale");
        // capsfilter spelt out: a bare caps string at the end of a description reads as an
        // element's name.
        s.description = "videoscale ! capsfilter caps=video/x-raw,width=" +
                        std::to_string(positive(name, m[1], "a width")) +
                        ",height=" + std::to_string(positive(name, m[2], "a height"));
    } else if (name == "crop") {
        need("videocrop");
        if (opts.empty()) bad(name, "say what to cut: left=N right=N top=N bottom=N");
        unsigned cut[4] = {0, 0, 0, 0};  // left, right, top, bottom
        for (const auto& o : opts) {
            const auto eq = o.find('=');
            const std::string key = o.substr(0, eq), value = o.substr(eq + 1);
            const int side = key == "left"     ? 0
                             : key == "right"  ? 1
                             : key == "top"    ? 2
                             : key == "bottom" ? 3
                                               : -1;
            if (side < 0) bad(name, "expected left=, right=, top= or bottom=, not " + o);
            char* end = nullptr;
            const long v = std::strtol(value.c_str(), &end, 10);
            // videocrop reads a negative number as "crop to fit" (-1) or ignores it silently.
            if (value.empty() || *end || v < 0 || v > 100000)
                bad(name, o + ": give a number of pixels, 0 or more");
            cut[side] = static_cast<unsigned>(v);
        }
        // What it cuts off, plus a pixel: a smaller picture is refused when it arrives.
        s.min_width = cut[0] + cut[1] + 1;
        s.min_height = cut[2] + cut[3] + 1;
        s.description = "videocrop" + properties(name, opts, {});
    } else if (name == "fps") {
        need("videorate");
        no_options(name, opts);
        s.description = "videorate ! capsfilter caps=video/x-raw,framerate=" +
                        std::to_string(positive(name, arg(0), "a frame rate")) + "/1";
    } else if (name == "grayscale") {
        no_options(name, opts);
        filter::register_in_place_elements();
        s.description = "kmsgrayscale";
    } else if (name == "text") {
        if (args.empty()) bad(name, "say what to write: text 'Hello'");
        need("textoverlay");
        s.description = "textoverlay text=" + quote(arg(0)) + properties(name, opts, kTextAliases);
    } else if (name == "clock") {
        need("clockoverlay");
        s.description = "clockoverlay" + properties(name, opts, kTextAliases);
    } else if (name == "image") {
        if (args.empty()) bad(name, "say which picture: image logo.png");
        if (::access(arg(0).c_str(), R_OK) != 0)
            throw Error(ErrorCode::BadInput, "filter image: cannot read " + arg(0));
        need("gdkpixbufoverlay");
        s.file = arg(0);
        s.description = "gdkpixbufoverlay location=" + quote(arg(0)) +
                        properties(name, opts,
                                   {{"x", "offset-x"},
                                    {"y", "offset-y"},
                                    {"width", "overlay-width"},
                                    {"height", "overlay-height"}});
    } else if (name == "faces" || name == "face-detect") {
        need("facedetect");
        need_file(kFaceCascade, "opencv-data");
        // facedetect also loads eye, nose and mouth cascades that Debian does not package;
        // OpenCV's complaint about each would reach stderr. Faces are found without them.
        ::setenv("OPENCV_LOG_LEVEL", "SILENT", 0);
        s.description = std::string("facedetect updates=on_change profile=") + kFaceCascade +
                        " display=" + (name == "faces" ? "true" : "false") +
                        properties(name, opts, {});
        s.analysis = name == "face-detect";
    } else if (name == "qr") {
        need("zbar");
        s.description = "zbar message=true cache=true" + properties(name, opts, {});
        s.analysis = true;
    } else if (name == "level") {
        need("level");
        s.kind = "audio";
        s.description = "level post-messages=true interval=100000000" + properties(name, opts, {});
        s.analysis = true;
    } else if (name == "speech") {
        need("pocketsphinx");
        quiet_pocketsphinx();
        need_file((std::string(kSpeechModel) + "/mdef").c_str(), "pocketsphinx-en-us");
        s.kind = "audio";
        s.description =
            "audioconvert ! audioresample ! audio/x-raw,rate=16000,channels=1 ! "
            "pocketsphinx" +
            properties(name, opts, {});
        s.analysis = true;
    } else if (name == "chroma") {
        s.description = chroma(arg(0), opts);
        for (const auto& o : opts)
            if (o.rfind("background=", 0) == 0) s.file = o.substr(11);
    } else if (name == "volume") {
        need("volume");
        s.kind = "audio";
        const double f = number(name, arg(0), "a factor such as 0.5");
        if (f < 0 || f > 10) bad(name, "the factor goes from 0 to 10");
        no_options(name, opts);
        s.description = "volume volume=" + std::to_string(f);
    } else if (name == "resample") {
        need("audioresample");
        s.kind = "audio";
        // Below 1 kHz nothing is audible and 1.22's encoders stall on it (resample 7 hung).
        const double rate = number(name, arg(0), "a sample rate in Hz");
        if (rate != std::floor(rate) || rate < 1000 || rate > 384000)
            bad(name, arg(0) + " Hz: give a whole number from 1000 to 384000 (16000, 48000)");
        no_options(name, opts);
        s.description =
            "audioresample ! capsfilter caps=audio/x-raw,rate=" + std::to_string(unsigned(rate));
    }
    return s;
}

size_t arity(const std::string& name) {
    for (const auto& n : kNamed)
        if (name == n.name) {
            const std::string a = n.args;
            return a.empty() || a[0] == '[' ? 0 : 1;
        }
    return 0;
}

}  // namespace

std::string fill_frame(std::string d, const FrameInfo& f) {
    const std::pair<const char*, std::string> fields[] = {
        {"{width}", std::to_string(f.width)},
        {"{height}", std::to_string(f.height)},
        {"{rate}", f.fps_n > 0 && f.fps_d > 0
                       ? ",framerate=" + std::to_string(f.fps_n) + "/" + std::to_string(f.fps_d)
                       : std::string()}};
    for (const auto& [key, value] : fields)
        for (size_t at; (at = d.find(key)) != std::string::npos;)
            d.replace(at, std::strlen(key), value);
    return d;
}

namespace {

// KEY=VALUE, the value free to hold spaces: font="Sans 40".
bool is_option(const std::string& token) {
    static const std::regex option("^[A-Za-z][A-Za-z0-9_-]*=.*");
    return std::regex_match(token, option);
}

const char* args_of(const std::string& name) {
    for (const auto& n : kNamed)
        if (name == n.name) return n.args;
    return "";
}

bool is_named(const std::string& name) {
    return std::any_of(kNamed.begin(), kNamed.end(),
                       [&](const NamedFilterInfo& n) { return name == n.name; });
}

// Which kind a fragment works on, from what its first element takes.
std::string fragment_kind(GstElement* bin, const std::string& text) {
    gst::PadPtr in(gst_element_get_static_pad(bin, "sink"));
    if (!in) bad(text, "it has no free input (a fragment must take media in)");
    gst::CapsPtr caps(gst_pad_query_caps(in.get(), nullptr));
    auto takes = [&](const char* media) {
        gst::CapsPtr want(gst_caps_from_string(media));
        return caps && gst_caps_can_intersect(caps.get(), want.get());
    };
    if (takes("video/x-raw")) return "video";
    if (takes("audio/x-raw")) return "audio";
    bad(text, "it takes neither raw video nor raw audio");
}

// videoflip's older property `method` does nothing when gst_parse sets it in 1.22: the parser
// gives an element its properties at construction, where video-direction (the same setting,
// default identity) is applied after it. `videoflip method=horizontal-flip`, which every
// tutorial shows, then passed the picture through unchanged. The same choice is made through
// video-direction instead (the two enums share their values; only the nicknames differ).
std::string videoflip_method_as_direction(const std::string& text) {
    static const std::regex method(R"((\bvideoflip\b[^!]*?)\bmethod=("?)([A-Za-z0-9-]+)\2)");
    static const std::map<std::string, std::string> nick = {{"none", "identity"},
                                                            {"clockwise", "90r"},
                                                            {"rotate-180", "180"},
                                                            {"counterclockwise", "90l"},
                                                            {"horizontal-flip", "horiz"},
                                                            {"vertical-flip", "vert"},
                                                            {"upper-left-diagonal", "ul-lr"},
                                                            {"upper-right-diagonal", "ur-ll"},
                                                            {"automatic", "auto"}};
    std::string out;
    auto from = text.cbegin();
    std::smatch m;
    while (std::regex_search(from, text.cend(), m, method)) {
        const auto it = nick.find(m[3].str());
        out.append(from, m[0].first);
        // An unknown value is left as written, so that the error names method, not the
        // property the user never typed.
        out += it == nick.end() ? m[0].str() : m[1].str() + "video-direction=" + it->second;
        from = m[0].second;
    }
    return out.append(from, text.cend());
}

// A fragment, checked: every element exists and the chain links.
FilterStage fragment(const std::string& given) {
    const std::string text = videoflip_method_as_direction(given);
    if (text != given) KMS_LOG(filter, INFO, "'%s' runs as '%s'", given.c_str(), text.c_str());
    filter::register_in_place_elements();  // kmsflip and kmsgrayscale may be named too
    GError* err = nullptr;
    // Without FATAL_ERRORS a link failure still gives the bin, whose pads then say why.
    GstElement* parsed =
        gst_parse_bin_from_description_full(text.c_str(), TRUE, nullptr, GST_PARSE_FLAG_NONE, &err);
    gst::ElementPtr bin(parsed ? GST_ELEMENT(gst_object_ref_sink(parsed)) : nullptr);
    gst::GErrorPtr error(err);
    if (!bin || error) {
        const std::string msg = error ? error->message : "it does not parse";
        if (error && error->domain == GST_PARSE_ERROR &&
            error->code == GST_PARSE_ERROR_NO_SUCH_ELEMENT) {
            std::smatch m;
            static const std::regex quoted("\"([^\"]+)\"");
            const std::string missing =
                std::regex_search(msg, m, quoted) ? m[1].str() : text.substr(0, text.find(' '));
            const std::string near = closest(missing);
            throw Error(ErrorCode::InvalidArgument,
                        "filter '" + text + "': no filter or element called " + missing +
                            (near.empty() ? std::string() : "; the closest is " + near));
        }
        if (error && error->domain == GST_PARSE_ERROR && error->code == GST_PARSE_ERROR_LINK) {
            // "could not link videoflip0 to audioconvert0": say what each side would take.
            static const std::regex names("link ([^ ]+) to ([^ ,]+)");
            std::smatch m;
            std::string detail;
            if (std::regex_search(msg, m, names)) {
                // The parser's names are the factory's and a number: "videoflip0".
                auto caps = [](const std::string& element, const char* dir) -> std::string {
                    const std::string factory =
                        element.substr(0, element.find_last_not_of("0123456789") + 1);
                    gst::ElementPtr e(gst_element_factory_make(factory.c_str(), nullptr));
                    if (e) gst_object_ref_sink(e.get());
                    gst::PadPtr p(e ? gst_element_get_static_pad(e.get(), dir) : nullptr);
                    if (!p) return "?";
                    gst::CapsPtr c(gst_pad_query_caps(p.get(), nullptr));
                    if (gst_caps_is_any(c.get())) return "anything";
                    std::set<std::string> media;  // "video/x-raw", not every format
                    std::string t;
                    for (guint i = 0; i < gst_caps_get_size(c.get()); ++i) {
                        const std::string n =
                            gst_structure_get_name(gst_caps_get_structure(c.get(), i));
                        if (media.insert(n).second) t += (t.empty() ? "" : " or ") + n;
                    }
                    return t;
                };
                detail = ": " + m[1].str() + "'s src pad gives " + caps(m[1].str(), "src") +
                         ", and " + m[2].str() + "'s sink pad takes " + caps(m[2].str(), "sink");
            }
            throw Error(ErrorCode::BadInput,
                        "filter '" + text + "': " + msg + (detail.empty() ? "" : detail));
        }
        throw Error(ErrorCode::InvalidArgument, "filter '" + text + "': " + msg);
    }
    FilterStage st;
    st.name = st.description = text;
    st.kind = fragment_kind(bin.get(), text);
    return st;
}

// A named filter's description builds: its options name real properties with fitting values.
void check(const FilterStage& st) {
    GError* err = nullptr;
    const std::string d = fill_frame(st.description, FrameInfo{640, 480, 30, 1});
    GstElement* b = gst_parse_bin_from_description(d.c_str(), TRUE, &err);
    gst::ElementPtr bin(b ? GST_ELEMENT(gst_object_ref_sink(b)) : nullptr);
    gst::GErrorPtr error(err);
    if (error) bad(st.name, error->message);
}

}  // namespace

const std::vector<NamedFilterInfo>& named_filters() {
    return kNamed;
}

std::vector<FilterStage> parse_filters(const std::vector<std::string>& args,
                                       const std::string& background) {
    init();
    std::vector<FilterStage> out;
    for (size_t i = 0; i < args.size();) {
        const std::string& token = args[i++];
        if (is_option(token))
            throw Error(ErrorCode::InvalidArgument,
                        "filter option " + token + " comes before any filter");
        if (is_named(token)) {
            std::vector<std::string> fargs, opts;
            const size_t n = arity(token);
            for (size_t k = 0; k < n; ++k) {
                if (i >= args.size())
                    bad(token, std::string("expected ") + args_of(token) + " after it");
                fargs.push_back(args[i++]);
            }
            // flip's optional direction.
            if (token == "flip" && i < args.size() && (args[i] == "h" || args[i] == "v"))
                fargs.push_back(args[i++]);
            while (i < args.size() && is_option(args[i])) opts.push_back(args[i++]);
            if (token == "chroma" && !background.empty() &&
                std::none_of(opts.begin(), opts.end(),
                             [](const std::string& o) { return o.rfind("background=", 0) == 0; }))
                opts.push_back("background=" + background);
            FilterStage st = named(token, fargs, opts);
            check(st);
            out.push_back(std::move(st));
            continue;
        }
        // A fragment; KEY=VALUE tokens after it belong to its last element.
        std::string text = token;
        while (i < args.size() && is_option(args[i])) {
            const std::string& o = args[i++];
            const auto eq = o.find('=');
            text += " " + o.substr(0, eq + 1) + quote(o.substr(eq + 1));
        }
        out.push_back(fragment(text));
    }
    return out;
}

}  // namespace kms
