#!/usr/bin/env bash
# Every kms tool keeps cli-contract.md: --help with examples, --version, usage errors exit 2, man
# pages with every section and no groff warnings. The shared checker runs when it is beside the
# project; the checks below hold on their own either way.
set -euo pipefail
BUILD=$(cd "${1:-build}" && pwd)
TOP=$(cd "$(dirname "$0")/../.." && pwd)
fail() { echo "FAIL: $*" >&2; exit 1; }
# Scratch files in a directory of our own, whatever directory the test is run from.
scratch=$(mktemp -d); trap 'rm -rf "$scratch"' EXIT

shared=$TOP/../shared/checks/cli-contract
if [[ -x $shared ]]; then (cd "$TOP" && "$shared" "$BUILD") || fail "the shared cli-contract check"; fi
cd "$scratch"

for bin in "$BUILD"/apps/kms-*; do
  [[ -x $bin && -f $bin ]] || continue
  t=$(basename "$bin")
  help=$("$bin" --help) || fail "$t --help exits non-zero"
  grep -q EXAMPLES <<<"$help" || fail "$t --help has no EXAMPLES"
  grep -q -- "--json" <<<"$help" || fail "$t --help lacks --json"
  grep -q -- "--events" <<<"$help" || fail "$t --help lacks --events"
  v=$("$bin" --version) || fail "$t --version exits non-zero"
  [[ $v =~ ^$t\ [0-9]+\.[0-9]+\.[0-9]+\ \(libkms\ [0-9.]+,\ GStreamer\ 1\.[0-9.]+\)$ ]] || fail "$t --version: $v"
  set +e
  "$bin" --no-such-option >/dev/null 2>err; rc=$?
  set -e
  [[ $rc == 2 ]] || fail "$t: unknown option exits $rc"
  grep -q "$t" err || fail "$t: usage error does not name the tool"
  man=$TOP/man/$t.1
  [[ -f $man ]] || fail "no man page for $t"
  w=$(groff -man -ww -z "$man" 2>&1) ; [[ -z $w ]] || fail "$t.1 warns: $w"
  grep -q "EXIT STATUS" "$man" || fail "$t.1 has no EXIT STATUS"
  echo "ok: $t"
done

# kms-call specifics: each usage error exits 2 with a message naming the problem.
K=$BUILD/apps/kms-call
check2() { set +e; "$K" "$@" --sdp-out /dev/null </dev/null >/dev/null 2>err; local rc=$?; set -e
  [[ $rc == 2 ]] || fail "kms-call $*: exit $rc, expected 2"; [[ -s err ]] || fail "kms-call $*: no message"; }
check2 offer --send foo:bar
check2 offer --sdp-format xml
check2 offer --stats-interval -1
check2 dial
check2
check2 offer answer
grep -q "unknown URI scheme 'foo:'" <("$K" offer --send foo:bar 2>&1) || fail "unknown scheme message"
w=$(groff -man -ww -z "$TOP/man/kms.7" 2>&1); [[ -z $w ]] || fail "kms.7 warns: $w"
echo "ok: usage errors"

# A missing GStreamer plugin exits 69 and names the Debian package to install.
reg=$(mktemp -d); trap 'rm -rf "$reg"' EXIT
set +e
GST_PLUGIN_SYSTEM_PATH_1_0=/nonexistent GST_PLUGIN_PATH_1_0=/nonexistent GST_REGISTRY_1_0=$reg/registry.bin \
  "$K" offer --sdp-out /dev/null </dev/null >/dev/null 2>err; rc=$?
set -e
[[ $rc == 69 ]] || fail "missing plugins: exit $rc, expected 69"
grep -q "webrtcbin" err && grep -q "apt-get install gstreamer1.0-plugins-bad" err || fail "missing plugins message: $(cat err)"
echo "ok: missing plugins exit 69 naming the package"
