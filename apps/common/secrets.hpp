// Secrets on a command line (passwords, shared secrets), so that no message echoes them: CLI11
// quotes arguments in its usage errors ("The following arguments were not expected: S3cret").
#pragma once

#include <set>
#include <string>
#include <vector>

namespace kms::app {

/// The values of the given options (`--opt VALUE`, `--opt=VALUE`, and `-pVALUE` for a one-letter
/// `-p`), the password of a `--user USER:PASS` when "--user" is listed, and the password of any
/// USER:PASS@ URI on the command line.
std::set<std::string> secrets_of(int argc, char** argv, const std::vector<std::string>& options);

/// text with every secret shown as ***, longest first so that no part of one survives.
std::string hide(std::string text, const std::set<std::string>& secrets);

}  // namespace kms::app
