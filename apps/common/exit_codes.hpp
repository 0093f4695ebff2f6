// Exit status of every kms tool (cli-contract.md, "Exit status"). Only apps map errors to these.
#pragma once

#include "kms/error.hpp"

namespace kms::app {

enum Exit : int {
    kOk = 0,
    kFailure = 1,
    kUsage = 2,
    kBadInput = 3,
    kNetwork = 4,
    kNegotiation = 5,
    kNoMedia = 6,
    kOutput = 7,
    kAssert = 8,
    kMissingComponent = 69,  // sysexits.h EX_UNAVAILABLE
    kAborted = 130,          // 128 + SIGINT
};

constexpr int exit_code_for(ErrorCode code) {
    switch (code) {
        case ErrorCode::InvalidArgument:
            return kUsage;
        case ErrorCode::BadInput:
            return kBadInput;
        case ErrorCode::Network:
            return kNetwork;
        case ErrorCode::Negotiation:
            return kNegotiation;
        case ErrorCode::NoMedia:
            return kNoMedia;
        case ErrorCode::Io:
            return kOutput;
        case ErrorCode::MissingPlugin:
            return kMissingComponent;
        case ErrorCode::Runtime:
            return kFailure;
    }
    return kFailure;
}

}  // namespace kms::app
