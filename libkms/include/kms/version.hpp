// Version of libkms and of the media framework it runs on.
#pragma once

#include <string>

namespace kms {

/// libkms version, "X.Y.Z".
const char* version() noexcept;

/// Version of the GStreamer library loaded at run time, "X.Y.Z".
std::string gstreamer_version();

}  // namespace kms
