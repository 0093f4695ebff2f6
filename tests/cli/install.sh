#!/usr/bin/env bash
# libkms as a user gets it: `cmake --install` into a scratch prefix, then samples/libkms/record.cpp
# built with nothing but what the installed libkms.pc says, run for 2 s of test:av, and its
# file read back by ffprobe. Fails if libkms.pc leaves out a library the static libkms needs.
set -euo pipefail
build=$1
top=$(cd "$(dirname "$0")/../.." && pwd)
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
fail() { echo "FAIL: $*" >&2; exit 1; }

cmake --install "$build" --prefix "$work/prefix" >/dev/null
pc=$(find "$work/prefix" -name libkms.pc)
[[ -n $pc ]] || fail "no libkms.pc installed"
# The .pc names the prefix configured at build time; this one is installed elsewhere.
sed -i "s|^prefix=.*|prefix=$work/prefix|" "$pc"
export PKG_CONFIG_PATH=$(dirname "$pc")
flags=$(pkg-config --cflags --libs libkms) || fail "pkg-config libkms"
c++ -std=c++17 "$top/samples/libkms/record.cpp" $flags -o "$work/record" 2>"$work/cc.err" ||
  fail "the sample does not build with pkg-config's flags alone: $(head -5 "$work/cc.err")"
echo "ok: samples/libkms/record.cpp builds with \`pkg-config --cflags --libs libkms\`"

"$work/record" test:av "$work/out.webm" 2 || fail "the sample exited $?"
streams=$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$work/out.webm" | sort | paste -sd' ')
[[ $streams == "opus vp8" ]] || fail "the sample's file holds: $streams"
secs=$(ffprobe -v error -show_entries format=duration -of csv=p=0 "$work/out.webm")
awk -v s="$secs" 'BEGIN { exit !(s >= 1.5 && s <= 3) }' || fail "the sample's file lasts $secs s"
echo "ok: it records 2 s of test:av into a WebM that ffprobe reads (VP8 + Opus, $secs s)"
