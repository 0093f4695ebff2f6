#include "media/decoder.hpp"

#include "kms/error.hpp"
#include "webrtc/codecs.hpp"

namespace kms::media {

std::string decoder_for(GstCaps* caps, const std::string& media) {
    for (const auto& c : webrtc::all_codecs())
        if (media == c.media_type) return c.decode;
    GList* all =
        gst_element_factory_list_get_elements(GST_ELEMENT_FACTORY_TYPE_DECODER, GST_RANK_MARGINAL);
    GList* fit = gst_element_factory_list_filter(all, caps, GST_PAD_SINK, FALSE);
    fit = g_list_sort(fit, gst_plugin_feature_rank_compare_func);
    std::string name = fit ? GST_OBJECT_NAME(fit->data) : "";
    gst_plugin_feature_list_free(fit);
    gst_plugin_feature_list_free(all);
    if (name.empty())
        throw Error(ErrorCode::BadInput, "no decoder for the input's " + media +
                                             " stream; is gstreamer1.0-libav installed?");
    return name;
}

}  // namespace kms::media
