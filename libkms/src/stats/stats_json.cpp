#include "stats/stats_json.hpp"

#include <cctype>

namespace kms::stats {

std::string camel_case(std::string_view kebab) {
    std::string out;
    bool up = false;
    for (char c : kebab) {
        if (c == '-' || c == '_') {
            up = true;
            continue;
        }
        out += up ? static_cast<char>(std::toupper(static_cast<unsigned char>(c))) : c;
        up = false;
    }
    return out;
}

const char* enum_nick(GType type, int value) {
    GEnumClass* klass = static_cast<GEnumClass*>(g_type_class_ref(type));
    GEnumValue* v = g_enum_get_value(klass, value);
    const char* nick = v ? v->value_nick : "unknown";
    g_type_class_unref(klass);
    return nick;
}

Json stats_to_json(const GstStructure* s) {
    Json out = Json::object();
    const int n = gst_structure_n_fields(s);
    for (int i = 0; i < n; ++i) {
        const char* name = gst_structure_nth_field_name(s, i);
        const GValue* v = gst_structure_get_value(s, name);
        const std::string key = camel_case(name);
        if (key == "type" || key == "timestamp") continue;
        switch (G_TYPE_FUNDAMENTAL(G_VALUE_TYPE(v))) {
            case G_TYPE_STRING:
                if (g_value_get_string(v)) out[key] = g_value_get_string(v);
                break;
            case G_TYPE_BOOLEAN:
                out[key] = static_cast<bool>(g_value_get_boolean(v));
                break;
            case G_TYPE_INT:
                out[key] = g_value_get_int(v);
                break;
            case G_TYPE_UINT:
                out[key] = g_value_get_uint(v);
                break;
            case G_TYPE_INT64:
                out[key] = g_value_get_int64(v);
                break;
            case G_TYPE_UINT64:
                out[key] = g_value_get_uint64(v);
                break;
            case G_TYPE_DOUBLE:
                out[key] = g_value_get_double(v);
                break;
            case G_TYPE_FLOAT:
                out[key] = g_value_get_float(v);
                break;
            case G_TYPE_ENUM:
                out[key] = enum_nick(G_VALUE_TYPE(v), g_value_get_enum(v));
                break;
            default:
                break;  // nested structures (e.g. gst-rtpsource-stats) stay GStreamer's
        }
    }
    return out;
}

}  // namespace kms::stats
