#!/usr/bin/env bash
# What kms-call(1) promises and no other test runs: SDP over stdin/stdout, base64, --sdp-timeout,
# --stun and a call through a Linux NAT, --port-range, test:video alone, -o -, --events -, --json.
. "$(dirname "$0")/../lib/kms-test.sh"

# The pipe form: SDP on stdout and stdin (the defaults), through one fifo.
rm -f back; mkfifo back
start=$(date +%s.%N)
set +e
timeout -s KILL 30 "$KMS_CALL" offer --bind 127.0.0.1 -t 3 --events pipe_off.jsonl -q <back |
  timeout -s KILL 30 "$KMS_CALL" answer --bind 127.0.0.1 -t 3 --events pipe_ans.jsonl -q >back
codes=("${PIPESTATUS[@]}"); set -e
[[ ${codes[0]} == 0 && ${codes[1]} == 0 ]] || fail "pipe form: exits ${codes[*]}"
(( $(ev pipe_off.jsonl summary videoFramesDecoded) > 30 )) || fail "pipe form: no video decoded"
echo "ok: SDP over stdin and stdout"

# base64, as in Pion's examples.
CALL_DEADLINE=20 call_pair "-t 3 --sdp-format base64" "-t 3 --sdp-format base64"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "base64: exits $RC_OFF/$RC_ANS"; }
(( $(ev off.jsonl summary videoFramesDecoded) > 30 )) || fail "base64: no video decoded"
echo "ok: --sdp-format base64"

# --sdp-timeout: nobody answers; 4 after about a second.
rm -f never; mkfifo never; exec 5<>never
start=$(date +%s.%N)
timeout -s KILL 20 "$KMS_CALL" offer --bind 127.0.0.1 --sdp-timeout 1 --sdp-out /dev/null --sdp-in never \
  </dev/null 2>st.err && RC=0 || RC=$?
secs=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 4 "--sdp-timeout 1"
(( $(echo "$secs > 0.9 && $secs < 3" | bc) )) || fail "--sdp-timeout 1 ended after ${secs}s"
grep -q "sdp-timeout" st.err || fail "--sdp-timeout: message: $(tail -1 st.err)"
exec 5>&-
echo "ok: --sdp-timeout 1 exits 4 after ${secs}s"

# --port-range: the selected local candidate uses a port from it.
CALL_DEADLINE=20 call_pair "-t 3 --port-range 41000-41010" "-t 3"
[[ $RC_OFF == 0 ]] || { show_logs; fail "--port-range: exit $RC_OFF"; }
port=$(jq -s '[.[] | select(.type=="selected-candidate-pair")][0].local.port' off.jsonl)
(( port >= 41000 && port <= 41010 )) || fail "--port-range 41000-41010: selected local port $port"
echo "ok: --port-range (local port $port)"

# test:video alone in a sendrecv call sends no tone; -o - writes Matroska to stdout.
rm -f o a; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --send test:video -t 3 -q </dev/null >/dev/null 2>off.err &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 3 -o - --events ans.jsonl -q </dev/null >piped.mkv 2>ans.err &
PIDS+=($!); PID_ans=$!
wait_for "$PID_off" 20; expect_rc 0 "test:video offerer"
wait_for "$PID_ans" 20; expect_rc 0 "answerer with -o -"
[[ $(ev ans.jsonl summary audioFramesDecoded) == 0 ]] || fail "test:video sent audio too"
codecs=$(ffprobe -v error -show_entries stream=codec_name -of csv=p=0 piped.mkv | sort | tr '\n' ,)
[[ $codecs == vp8, ]] || fail "-o -: the stream holds '$codecs'"
echo "ok: test:video sends no tone; -o - is a Matroska stream ffprobe reads"

# --send from a pipe (bash's <(...)): not probed, so nothing is read before the call, and the
# whole stream arrives.
gst-launch-1.0 -q -e videotestsrc num-buffers=90 pattern=ball ! video/x-raw,width=320,height=240,framerate=30/1 \
  ! vp8enc deadline=1 ! webmmux ! filesink location=v.webm
rm -f o a; mkfifo o a
bash -c "exec '$KMS_CALL' offer --bind 127.0.0.1 --sdp-out o --sdp-in a --send <(cat v.webm) -q </dev/null >/dev/null 2>off.err" &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 15 -o fromfd.mkv -q </dev/null >/dev/null 2>ans.err &
PIDS+=($!); PID_ans=$!
wait_for "$PID_off" 20; expect_rc 0 "offerer sending from a pipe"
wait_for "$PID_ans" 20; expect_rc 0 "answerer"
n=$(ffprobe -v error -count_packets -select_streams v:0 -show_entries stream=nb_read_packets -of csv=p=0 fromfd.mkv)
(( n >= 80 )) || fail "--send <(...): $n of 90 frames arrived"
echo "ok: --send from a pipe: $n of 90 frames"

# -o - into a reader that goes away: 7, saying so, not GStreamer's element path.
rm -f o a; mkfifo o a
(set +e; "$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a -o - -t 6 -q </dev/null 2>pipe.err | head -c 2000 >/dev/null
 echo "${PIPESTATUS[0]}" >pipe.rc) &
PIDS+=($!)
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 6 -q </dev/null >/dev/null 2>&1 &
PIDS+=($!); PID_ans=$!
for i in $(seq 100); do [[ -s pipe.rc ]] && break; sleep 0.1; done
[[ $(cat pipe.rc 2>/dev/null) == 7 ]] || fail "-o - into a closed pipe: exit $(cat pipe.rc 2>/dev/null)"
grep -q "cannot write stdout" pipe.err || fail "-o - into a closed pipe: $(tail -1 pipe.err)"
! grep -q "GstPipeline" pipe.err || fail "GStreamer's element path reached the user: $(tail -1 pipe.err)"
wait_for "$PID_ans" 10
echo "ok: -o - into a reader that went away exits 7"

# --events - with the SDP in files: every stdout line is an event; --json: one object at the end.
rm -f o a; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a -t 3 --events - -q </dev/null >ev.out 2>off.err &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a -t 3 --json -q </dev/null >json.out 2>ans.err &
PIDS+=($!); PID_ans=$!
wait_for "$PID_off" 20; expect_rc 0 "offerer with --events -"
wait_for "$PID_ans" 20; expect_rc 0 "answerer with --json"
jq -e -s 'length > 10 and all(has("type") and has("timestamp"))' ev.out >/dev/null || fail "--events -: not JSON lines"
jq -e -s 'length == 1 and .[0].result == "ok" and .[0].videoFramesDecoded > 30' json.out >/dev/null ||
  fail "--json: $(cat json.out)"
echo "ok: --events - and --json on stdout"

# Through a Linux NAT, with a STUN server on the far side: the offerer behind the NAT learns its
# public address (srflx 198.18.0.1) and the call connects and carries media.
nat_topology
ip netns exec srv "$BUILD/apps/kms-stun" server --listen 198.18.0.10:3478 >stun.out 2>stun.err &
PIDS+=($!)
for i in $(seq 50); do
  ip netns exec cli "$BUILD/apps/kms-stun" binding stun:198.18.0.10:3478 --rto 100 --retries 2 -q >/dev/null 2>&1 && break
  [[ $i == 50 ]] && fail "the STUN server in srv did not answer"
  sleep 0.1
done
rm -f o a; mkfifo o a
ip netns exec cli "$KMS_CALL" offer --bind 10.0.0.2 --stun stun:198.18.0.10:3478 --sdp-out o --sdp-in a -t 4 \
  --events off.jsonl -q </dev/null >/dev/null 2>off.err &
PIDS+=($!); PID_off=$!
ip netns exec srv "$KMS_CALL" answer --bind 198.18.0.10 --sdp-in o --sdp-out a -t 4 --events ans.jsonl -q \
  </dev/null >/dev/null 2>ans.err &
PIDS+=($!); PID_ans=$!
wait_for "$PID_off" 20; expect_rc 0 "offerer behind the NAT"
wait_for "$PID_ans" 20; expect_rc 0 "answerer on the far side"
jq -e -s '[.[] | select(.type=="local-candidate" and .candidateType=="srflx" and .address=="198.18.0.1")] | length > 0' \
  off.jsonl >/dev/null || fail "no srflx candidate 198.18.0.1 behind the NAT"
(( $(ev ans.jsonl summary videoFramesDecoded) > 30 && $(ev off.jsonl summary videoFramesDecoded) > 30 )) ||
  fail "through the NAT: video decoded $(ev off.jsonl summary videoFramesDecoded)/$(ev ans.jsonl summary videoFramesDecoded)"
echo "ok: a call through a NAT with --stun (srflx 198.18.0.1)"
pass "coverage of the man page's promises"
