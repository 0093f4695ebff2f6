#!/usr/bin/env bash
# kms-stats --attach: the control socket (--control PATH) of a live kms-call and a live
# kms-record answers with snapshots whose counters grow between two reads; the socket is the
# owner's only (mode 0600: another user's connect is refused); a stale socket left by a killed
# tool is replaced, any other file at the path is refused.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$BUILD/apps/kms-stats
R=$BUILD/apps/kms-record
run() { set +e; "$@"; RC=$?; set -e; }
# The sockets live where another user may look (the scratch directory is 0700 otherwise), so
# that only the socket's own mode keeps them out.
chmod 711 "$WORK"; mkdir -m 755 ctl
wait_socket() { ready "the control socket $1" 15 test -S "$1"; }

# 1. A live call: the answerer's inbound video grows between two reads a second and a half apart.
mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a -t 10 2>off.err >/dev/null </dev/null & PIDS+=($!)
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 10 --control ctl/call.sock \
  2>ans.err >/dev/null </dev/null & PIDS+=($!)
wait_socket ctl/call.sock
[[ $(stat -c %a ctl/call.sock) == 600 ]] || fail "the socket's mode is $(stat -c %a ctl/call.sock)"
video_in() {
  jq -e '[.stats[] | select(.type == "inbound-rtp" and .kind == "video") | .packetsReceived] | max' "$1"
}
for _ in $(seq 50); do  # until the first stats have come (once a second)
  "$S" --attach ctl/call.sock --json >snap1.json
  video_in snap1.json >/dev/null 2>&1 && break
  sleep 0.2
done
sleep 1.5
run "$S" --attach ctl/call.sock --json >snap2.json
expect_rc 0 "attach to kms-call"
a=$(video_in snap1.json); b=$(video_in snap2.json)
(( b > a )) || fail "kms-call: video packetsReceived $a then $b"
jq -e '.tool == "kms-call" and .state.role == "answer" and .state.bytesReceived > 0' snap2.json >/dev/null ||
  fail "kms-call state: $(jq -c .state snap2.json)"
pass "kms-call --control: inbound video packets $a then $b, 1.5 s apart; the socket is 0600"

# 1b. Thresholds on the running call: two reads a second apart give its rates; a frame rate
#     the call cannot reach exits 8 naming what was measured.
run "$S" --attach ctl/call.sock --assert 'video.fps > 5' --assert 'video.bitrate > 50kbps' 2>as1.err
expect_rc 0 "attach --assert that holds"
run "$S" --attach ctl/call.sock --assert 'video.fps > 1000' -q 2>as2.err
expect_rc 8 "attach --assert that fails"
grep -q "video.fps > 1000: measured [0-9.]*fps" as2.err || fail "attach --assert: $(cat as2.err)"
pass "--attach --assert on the live call: $(grep -o 'measured [0-9.]*fps' as2.err)"

# 2. Another user cannot open it.
set +e
setpriv --reuid=65534 --regid=65534 --clear-groups -- /usr/bin/python3 -c "
import socket, sys
s = socket.socket(socket.AF_UNIX)
try:
    s.connect('$WORK/ctl/call.sock')
except PermissionError:
    sys.exit(13)
sys.exit(0)"
rc=$?; set -e
[[ $rc == 13 ]] || fail "another user's connect: exit $rc, not refused"
pass "another user's connect is refused"

# 3. Text for people, with --interval, until the call ends: the tool gone is not an error.
#    With -q no text at all; the events still come.
run "$S" --attach ctl/call.sock -q --events quiet.ev >quiet.out
expect_rc 0 "attach -q"
[[ ! -s quiet.out ]] && grep -q '"attach"' quiet.ev || fail "attach -q printed: $(head -3 quiet.out)"
run "$S" --attach ctl/call.sock --interval 0.5 >text.out 2>text.err
expect_rc 0 "attach --interval until the call ends"
grep -q "^kms-call" text.out && grep -q "inbound-rtp" text.out || fail "text: $(head -5 text.out)"
grep -q "the tool is gone" text.err || fail "text: $(cat text.err)"
[[ ! -e ctl/call.sock ]] || fail "kms-call left its socket behind"
pass "--interval prints snapshots until the call ends ($(grep -c '^kms-call' text.out) reads) and the socket goes with it"

# 4. A live recording: the bytes written grow.
"$R" -q test:av -t 8 -o rec.mkv --control ctl/rec.sock & PIDS+=($!)
wait_socket ctl/rec.sock
sleep 1.5
"$S" --attach ctl/rec.sock --json >r1.json
sleep 1.5
"$S" --attach ctl/rec.sock --json >r2.json
a=$(jq .state.bytesWritten r1.json); b=$(jq .state.bytesWritten r2.json)
(( b > a )) || fail "kms-record: bytesWritten $a then $b"
jq -e '.state.state == "recording" and (.state.tracks | length) == 2' r2.json >/dev/null ||
  fail "kms-record state: $(jq -c .state r2.json)"
pass "kms-record --control: $a then $b bytes written, 1.5 s apart"

# 5. Nothing listening: 4; a stale socket is replaced; a plain file is refused (7).
run "$S" --attach ctl/none.sock 2>err
expect_rc 4 "attach to nothing"
grep -q "is the tool running with --control" err || fail "nothing: $(cat err)"
python3 -c "import socket; socket.socket(socket.AF_UNIX).bind('$WORK/ctl/stale.sock')"
run "$R" -q test:av -t 1 -o stale.mkv --control ctl/stale.sock
expect_rc 0 "a stale socket"
: >ctl/file
run "$R" -q test:av -t 1 -o file.mkv --control ctl/file 2>err
expect_rc 7 "a file at the path"
grep -q "not a socket" err || fail "file: $(cat err)"
pass "no listener exits 4; a stale socket is replaced; a plain file at the path exits 7"
