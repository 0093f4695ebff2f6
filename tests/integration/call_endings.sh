#!/usr/bin/env bash
# How calls end: a killed peer ends the other side with 4 within --ice-timeout plus 2 s; SIGTERM
# ends cleanly with 0 and the peer sees an orderly goodbye; no media within --media-timeout is 6.
. "$(dirname "$0")/../lib/kms-test.sh"

rm -f o a; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --events off.jsonl --ice-timeout 3 2>off.err </dev/null &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a --events ans.jsonl 2>ans.err </dev/null &
PIDS+=($!); PID_ans=$!
for i in $(seq 100); do grep -q '"framesDecoded":[1-9]' off.jsonl 2>/dev/null && break; sleep 0.1; done
grep -q '"framesDecoded":[1-9]' off.jsonl || { show_logs; fail "the call never carried media"; }
kill -9 "$PID_ans"
start=$(date +%s.%N)
wait_for "$PID_off" 10
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 4 "the offerer after its peer was killed"
echo "offerer noticed after ${elapsed}s"
(( $(echo "$elapsed < 5" | bc) )) || fail "took ${elapsed}s, more than ice-timeout 3 + 2"
grep -q "nothing heard from the peer\|ICE" off.err || fail "message: $(tail -1 off.err)"
echo "ok: killed peer ends the other side with 4"

# SIGTERM: clean exit 0 for both, the peer learns of it through RTCP BYE.
rm -f o a off.jsonl ans.jsonl; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --events off.jsonl -o rec.mkv 2>off.err </dev/null &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a --events ans.jsonl 2>ans.err </dev/null &
PIDS+=($!); PID_ans=$!
for i in $(seq 100); do grep -q '"framesDecoded":[1-9]' off.jsonl 2>/dev/null && break; sleep 0.1; done
sleep 1
kill -TERM "$PID_ans"
wait_for "$PID_ans" 10; expect_rc 0 "the answerer after SIGTERM"
wait_for "$PID_off" 10; expect_rc 0 "the offerer after the peer said goodbye"
jq -e -s '[.[] | select(.type=="remote-closed")] | length == 1' off.jsonl >/dev/null || fail "no remote-closed event"
# The goodbye is the RTCP BYE, not the DTLS close that follows it: a broken BYE must show.
jq -e -s '[.[] | select(.type=="remote-closed")][0].reason == "RTCP BYE from the peer"' off.jsonl >/dev/null ||
  fail "the offerer ended for $(jq -s -c '[.[] | select(.type=="remote-closed")][0].reason' off.jsonl)"
# A finalised Matroska file has a duration; an unfinalised one says N/A, which is not > 0.5.
dur=$(ffprobe -v error -show_entries format=duration -of csv=p=0 rec.mkv)
[[ $dur =~ ^[0-9.]+$ ]] && (( $(echo "$dur > 0.5" | bc) )) || fail "the recording was not finalised (duration $dur)"
echo "ok: SIGTERM ends both sides with 0, recording finalised"

# No media: the offerer sends from a stdin that never delivers, the answerer gives up after 2 s.
rm -f o a never; mkfifo o a never
exec 5<>never
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --sendonly --send - 2>off.err <never &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a --media-timeout 2 --events ans.jsonl 2>ans.err </dev/null &
PIDS+=($!); PID_ans=$!
start=$(date +%s.%N)
wait_for "$PID_ans" 15; expect_rc 6 "the answerer without media"
secs=$(echo "$(date +%s.%N) - $start" | bc)
(( $(echo "$secs > 1.5 && $secs < 4" | bc) )) || fail "--media-timeout 2 fired after ${secs}s"
grep -q "no media received within 2 s" ans.err || fail "message: $(tail -1 ans.err)"
echo "ok: no media exits 6"
pass "endings"
