// The codec layer: what connect() puts between two elements for one stream. Nothing when the
// downstream element takes the stream as it is (passthrough); a decoder and an encoder when it
// does not.
#pragma once

#include <string>

#include <gst/gst.h>

namespace kms::media {

struct Chain {
    std::string description;  ///< gst-launch syntax, one bin with a sink and a src pad
    bool passthrough = true;
};

/// The chain for a stream with caps: when as_is, only the stream's parser, which lets a muxer
/// pick the H.264 stream format ("" for none: a direct link); else a queue (decoding gets a
/// thread of its own), the decoder unless the stream is raw, and encoder ("" keeps it raw).
/// Throws Error(BadInput) when nothing decodes the stream.
Chain chain_for(const GstCaps* caps, bool as_is, const std::string& encoder);

/// A parser that converts between the stream formats muxers take ("h264parse"), or "".
std::string parser_for(const std::string& media);

/// What a container encodes raw media of kind into when it must: "webm" and "matroska" VP8 and
/// Opus, "mp4" H.264 and AAC, "ogg" Opus. "" when the container takes no such kind.
std::string encoder_for_container(const std::string& container, const std::string& kind);

/// An encoder into media ("video/x-vp8", "audio/x-opus"), from raw media, gst-launch syntax;
/// kbps 0 for the encoder's default. "" when kms has none for it.
std::string encoder_for_media(const std::string& media, unsigned kbps);

/// The media type of a codec name: vp8 vp9 h264 h265 opus vorbis aac; "" for another name.
std::string media_of_codec(const std::string& codec);

}  // namespace kms::media
