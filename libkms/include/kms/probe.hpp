// What a media file holds, as its container declares it.
#pragma once

#include <string>
#include <vector>

#include "kms/pipeline.hpp"

namespace kms {

struct MediaInfo {
    std::vector<StreamInfo> streams;  ///< the first stream of each kind
    double duration_s = 0;            ///< 0 when the container does not say
};

/// Reads the file's headers (GStreamer's discoverer, 5 s at most). Throws Error(BadInput) with
/// the path and what is wrong; a fifo or pipe gives no streams, since reading it would eat it.
MediaInfo probe_media(const std::string& path);

}  // namespace kms
