// The codecs kms-call speaks (Kurento's media profile) and how GStreamer encodes, packs and
// decodes each. Private to libkms.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "kms/runtime.hpp"

namespace kms::webrtc {

struct CodecInfo {
    const char* name;           ///< option name: "vp8"
    const char* kind;           ///< "video" / "audio"
    const char* encoding_name;  ///< RTP encoding-name: "VP8"
    int clock_rate;
    int default_pt;          ///< what our offers use
    const char* fmtp;        ///< extra caps fields for the offer, GstCaps syntax, may be ""
    const char* encode;      ///< raw → encoded, gst-launch syntax; {bps}/{kbps} are replaced
    const char* pay;         ///< payloader element
    const char* depay;       ///< depayloader element
    const char* decode;      ///< encoded → raw, gst-launch syntax
    const char* mux_parse;   ///< what goes between depayloader and a muxer ("" for nothing)
    const char* media_type;  ///< the encoded caps a file or stream carries, e.g. "video/x-vp8"
    std::vector<PluginNeed> needs;
};

/// All codecs, in the default preference order per kind.
const std::vector<CodecInfo>& all_codecs();

/// The codec with this option name or RTP encoding name (case-insensitive), or nullptr.
const CodecInfo* find_codec(std::string_view name);

/// The codec whose encoded streams have this media type ("video/x-vp8"), or nullptr.
const CodecInfo* find_codec_by_media(std::string_view media);

/// Validates a --video-codec/--audio-codec list; throws Error(InvalidArgument).
std::vector<std::string> check_codec_list(const std::vector<std::string>& names, const char* kind);

}  // namespace kms::webrtc
