#!/usr/bin/env bash
# kms-record from HTTP: a file served on loopback by a local file server (python3 -m http.server,
# bound to 127.0.0.1 on a port the kernel picks) is recorded untouched into WebM, and a URL the
# server does not have exits 4 (network: what a remote server answers, as RTSP's 404 does) and
# leaves no file.
. "$(dirname "$0")/../lib/kms-test.sh"
R=$BUILD/apps/kms-record
codecs() { ffprobe -v error -show_entries stream=codec_name -of csv=p=0 "$1" | sort | paste -sd, -; }
duration() { ffprobe -v error -show_entries format=duration -of csv=p=0 "$1"; }
run() { set +e; "$@"; RC=$?; set -e; }

mkdir www
gst-launch-1.0 -q -e videotestsrc num-buffers=120 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 ! webmmux name=m ! filesink location=www/talk.webm \
  audiotestsrc num-buffers=190 samplesperbuffer=1024 ! audio/x-raw,rate=48000 ! opusenc ! m.
src=$(duration www/talk.webm)

# The server says where it listens once it does (unbuffered, or the line waits in a buffer).
python3 -u -m http.server 0 --bind 127.0.0.1 --directory www >http.out 2>http.err & PIDS+=($!)
ready "the HTTP server" 10 grep -q "Serving HTTP on 127.0.0.1 port" http.out
port=$(sed -n 's/.*Serving HTTP on 127.0.0.1 port \([0-9]*\).*/\1/p' http.out)

# 1. A WebM over HTTP into WebM: nothing decoded, the source's codecs and duration, fetched from
#    the server.
run "$R" "http://127.0.0.1:$port/talk.webm" -o http.webm --json --events ev1.jsonl >res1.json 2>err1
expect_rc 0 "http -> webm"
[[ $(codecs http.webm) == "opus,vp8" ]] || fail "http -> webm: codecs $(codecs http.webm)"
jq -e '.transcoded == "no" and ([.tracks[] | .passthrough] | all) and (.tracks | length) == 2' res1.json >/dev/null ||
  fail "http -> webm: result $(cat res1.json)"
! grep -q '"transcoding"' ev1.jsonl || fail "http -> webm: a transcoding event"
d=$(duration http.webm)
within "$(echo "($d - $src)^2" | bc -l)" 0.04 || fail "http -> webm: $d s of the source's $src s"
grep -q '"GET /talk.webm HTTP/1.1" 200' http.err || fail "http -> webm: the server saw no GET: $(cat http.err)"
pass "a WebM served over HTTP is recorded untouched: vp8 and opus, $d s of $src s"

# 2. A URL the server does not have: 4, the server's answer said, no file left.
run "$R" "http://127.0.0.1:$port/missing.webm" -o missing.webm --json >res2.json 2>err2
expect_rc 4 "404"
grep -q "missing.webm: .*not found" <(tr 'A-Z' 'a-z' <err2) || fail "404: stderr says $(cat err2)"
jq -e '.error | test("not found"; "i")' res2.json >/dev/null || fail "404: result $(cat res2.json)"
[[ ! -e missing.webm ]] || fail "404: a file was left"
pass "a URL the server answers 404 for exits 4 and leaves no file"

# 3. A server that is not there (nothing listens on the port): 4 at once, saying so, no file.
run "$R" "http://127.0.0.1:1/talk.webm" -o refused.webm --json >res3.json 2>err3
expect_rc 4 "refused"
grep -qi "refused" err3 || fail "refused: stderr says $(cat err3)"
[[ ! -e refused.webm ]] || fail "refused: a file was left"
pass "a server that refuses the connection exits 4 and says so"
