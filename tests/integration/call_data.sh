#!/usr/bin/env bash
# A data channel beside no media: a line typed on each side arrives on the other's stdout, and
# closing one side ends the other cleanly (exit 0). An answerer given no --data takes the
# offerer's channel, as the man page's chat example has it.
. "$(dirname "$0")/../lib/kms-test.sh"

# start ANSWERER-OPTIONS...: a chat offer and an answerer; each side's stdin is a fifo we write
# to once the channel is open (fds 3 and 4).
OFFER_ARGS=()
start() {
  rm -f o a in_off in_ans off.jsonl ans.jsonl off.out ans.out; mkfifo o a in_off in_ans
  "$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --data chat --no-audio --no-video \
    --events off.jsonl "${OFFER_ARGS[@]}" <in_off >off.out 2>off.err &
  PIDS+=($!); PID_off=$!
  "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a "$@" \
    --events ans.jsonl <in_ans >ans.out 2>ans.err &
  PIDS+=($!); PID_ans=$!
  exec 3>in_off 4>in_ans
  for i in $(seq 100); do
    grep -q '"state":"open"' off.jsonl 2>/dev/null && grep -q '"state":"open"' ans.jsonl 2>/dev/null && break
    sleep 0.1
  done
  grep -q '"state":"open"' ans.jsonl || { show_logs; fail "the data channel did not open (answer $*)"; }
}
start --data chat --no-audio --no-video
echo "hello from the offerer" >&3
echo "and hello back, with ünïcode" >&4
for n in 1 2 3 4 5; do echo "offerer line $n" >&3; echo "answerer line $n" >&4; done
for i in $(seq 50); do
  grep -q "hello from the offerer" ans.out && grep -q "hello back" off.out && break
  sleep 0.1
done
grep -qx "hello from the offerer" ans.out || fail "the answerer did not print the offerer's line"
grep -qx "and hello back, with ünïcode" off.out || fail "the offerer did not print the answerer's line"
for i in $(seq 50); do grep -q "offerer line 5" ans.out && grep -q "answerer line 5" off.out && break; sleep 0.1; done
[[ $(grep -c "^offerer line [1-5]$" ans.out) == 5 && $(grep -c "^answerer line [1-5]$" off.out) == 5 ]] ||
  fail "of 5 lines each way, $(grep -c "^offerer line" ans.out) and $(grep -c "^answerer line" off.out) arrived"
kill -TERM "$PID_off"
wait_for "$PID_off" 10; expect_rc 0 "offerer after SIGTERM"
wait_for "$PID_ans" 10; expect_rc 0 "answerer after the peer closed the channel"
jq -e -s '[.[] | select(.type=="remote-closed")] | length == 1' ans.jsonl >/dev/null || fail "no remote-closed event"
reason=$(jq -r -s '[.[] | select(.type=="remote-closed")][0].reason' ans.jsonl)
[[ $reason == "data channel closed by the peer" || $reason == "RTCP BYE from the peer" || $reason == "DTLS closed by the peer" ]] ||
  fail "the call ended for '$reason'"
echo "ended: $reason"
pass "data channel both ways, orderly close"

# The answerer with no --data (it was 5, "nothing to carry", and sent none of its stdin), and a
# chat quiet for longer than --ice-timeout: only SCTP's heartbeat comes then (both ended,
# "nothing heard from the peer", 4).
exec 3>&- 4>&-
OFFER_ARGS=(--ice-timeout 3)
start --ice-timeout 3
sleep 7
kill -0 "$PID_off" "$PID_ans" 2>/dev/null || { show_logs; fail "a quiet chat ended within 7 s (--ice-timeout 3)"; }
echo "to a plain answerer" >&3
echo "from a plain answerer" >&4
for i in $(seq 50); do grep -q "to a plain" ans.out && grep -q "from a plain" off.out && break; sleep 0.1; done
grep -qx "to a plain answerer" ans.out && grep -qx "from a plain answerer" off.out ||
  { show_logs; fail "plain answerer: lines did not cross (ans.out: $(cat ans.out); off.out: $(cat off.out))"; }
grep -q "data channel 'chat' open" ans.err || fail "plain answerer: $(cat ans.err)"
kill -TERM "$PID_off"
wait_for "$PID_off" 10; expect_rc 0 "offerer after SIGTERM"
wait_for "$PID_ans" 10; expect_rc 0 "plain answerer after the peer closed the channel"
pass "an answerer without --data takes the offer's channel"

# The same answerer reading the offer from stdin, as the man page's chat example pipes it: the
# lines that follow the offer on stdin go to the channel, those typed before it opened too.
exec 3>&- 4>&-
rm -f o a in_ans ans.jsonl off.out; mkfifo o a in_ans
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --data chat --no-audio --no-video -t 15 \
  </dev/null >off.out 2>off.err &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-out a --events ans.jsonl -t 15 <in_ans >ans.out 2>ans.err &
PIDS+=($!); PID_ans=$!
exec 4>in_ans
timeout 10 cat o >&4 || { show_logs; fail "offer on stdin: no offer came"; }
echo "typed with the offer" >&4
for i in $(seq 100); do grep -q '"state":"open"' ans.jsonl 2>/dev/null && break; sleep 0.1; done
echo "typed after the channel opened" >&4
for i in $(seq 100); do grep -q "typed after" off.out && break; sleep 0.1; done
[[ $(cat off.out) == "typed with the offer
typed after the channel opened" ]] || { show_logs; fail "offer on stdin: the offerer printed '$(cat off.out)'"; }
kill -TERM "$PID_off"
wait_for "$PID_off" 10; expect_rc 0 "offerer after SIGTERM (offer on stdin)"
wait_for "$PID_ans" 10; expect_rc 0 "answerer with the offer on stdin, after the peer closed"
exec 4>&-
pass "an answerer reading the offer from stdin sends the lines after it, those before the channel opened too"

# An offer with no data channel on stdin, and lines after it: the answerer says once that they
# go nowhere (it used to keep them for a channel that would never open, and say nothing).
rm -f o a in_ans; mkfifo o a in_ans
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --send test:video --no-audio -t 3 \
  </dev/null >/dev/null 2>off.err &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-out a --no-audio -t 3 <in_ans >/dev/null 2>ans.err &
PIDS+=($!); PID_ans=$!
exec 4>in_ans
timeout 10 cat o >&4 || { show_logs; fail "no channel: no offer came"; }
printf 'one\ntwo\n' >&4
exec 4>&-
wait_for "$PID_ans" 15; expect_rc 0 "answerer to an offer without a channel, lines on stdin"
wait_for "$PID_off" 15; expect_rc 0 "offerer without a channel"
[[ $(grep -c "no data channel: lines on stdin are dropped" ans.err) == 1 ]] ||
  { show_logs; fail "no channel: the answerer said '$(cat ans.err)'"; }
pass "an answerer whose offer has no data channel says once that the lines after it are dropped"

# An answerer offered a channel on a machine without the SCTP plugin: 69, naming its package,
# before any media is set up (it used to get that far and fail inside webrtcbin).
exec 3>&- 4>&-
mkdir plugins
for p in "$(pkg-config --variable=pluginsdir gstreamer-1.0)"/*.so; do
  [[ $(basename "$p") == libgstsctp.so ]] || ln -s "$p" plugins/
done
rm -f o a; mkfifo o a
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --data chat --no-audio --no-video -t 20 \
  </dev/null >/dev/null 2>off.err &
PIDS+=($!); PID_off=$!
GST_REGISTRY=$WORK/registry.bin GST_PLUGIN_SYSTEM_PATH_1_0=$WORK/plugins \
  "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a </dev/null >/dev/null 2>ans.err &
PIDS+=($!); PID_ans=$!
wait_for "$PID_ans" 15; expect_rc 69 "an offered channel without the SCTP plugin"
grep -q "sctpenc.*gstreamer1.0-plugins-bad\|gstreamer1.0-plugins-bad.*sctpenc" ans.err || fail "no SCTP: $(cat ans.err)"
kill "$PID_off" 2>/dev/null || true
pass "an offered channel without the SCTP plugin: 69, naming gstreamer1.0-plugins-bad"
