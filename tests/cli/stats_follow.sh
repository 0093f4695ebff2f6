#!/usr/bin/env bash
# kms-stats --follow on a terminal (issue 10): an event stream that grows for four seconds is read
# under script(1), which gives it a pty. The pty shows a table (a header and a row per stream)
# redrawn in place with ESC [ n A, whose figures change from one draw to the next, at most once a
# second; the summary at the end is the one the whole file gives. The same command into a pipe
# writes no escape byte, and its --json is that of the whole file. SIGINT leaves the table and
# still prints the summary.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$BUILD/apps/kms-stats
ESC=$'\033'

# Four seconds of a call's stats events, one set each quarter of a second: received video (loss
# growing) and audio, sent video with the peer's round-trip time to it. grow FILE STEPS [END]
grow() {
  local f=$1 steps=$2 t0=1732412345000 i ts
  for ((i = 0; i < steps; i++)); do
    ts=$((t0 + i * 250))
    printf '{"type":"inbound-rtp","timestamp":%d,"kind":"video","ssrc":11,"mid":"1","packetsReceived":%d,"packetsLost":%d,"bytesReceived":%d,"framesDecoded":%d,"jitter":%s}\n' \
      "$ts" $((i * 100)) $((i * i / 4)) $((i * (i + 20) * 1000)) $((i * (6 + i % 3))) "0.00$((i % 7 + 1))"
    printf '{"type":"inbound-rtp","timestamp":%d,"kind":"audio","ssrc":12,"mid":"0","packetsReceived":%d,"packetsLost":0,"bytesReceived":%d,"jitter":0.002}\n' \
      "$ts" $((i * 12)) $((i * 2000))
    printf '{"type":"outbound-rtp","timestamp":%d,"kind":"video","ssrc":21,"mid":"1","packetsSent":%d,"bytesSent":%d,"framesSent":%d}\n' \
      "$ts" $((i * 90)) $((i * 30000)) $((i * 7))
    printf '{"type":"remote-inbound-rtp","timestamp":%d,"kind":"video","ssrc":21,"roundTripTime":0.0%d}\n' \
      "$ts" $((10 + i))
    sleep 0.25
  done >>"$f"
  [[ -z ${3:-} ]] || printf '{"type":"summary","timestamp":%d}\n' $((t0 + steps * 250)) >>"$f"
}
# The pty's output as lines, carriage returns made line ends (each row is drawn as CR ESC[K row).
lines() { tr '\r' '\n' <"$1"; }

# 1. A terminal and a pipe follow the same growing file.
: >ev.jsonl
start=$(date +%s%3N)
bg tty sh -c "exec script -qefc 'exec $S --follow --events-in ev.jsonl >tty.sum' tty.out >/dev/null"
bg pipe sh -c "exec $S --follow --events-in ev.jsonl >pipe.out 2>pipe.err"
bg json sh -c "exec $S --follow --json --events-in ev.jsonl >pipe.json 2>json.err"
grow ev.jsonl 16 end
for p in tty pipe json; do
  eval "wait_for \$PID_$p 5"
  expect_rc 0 "--follow ($p)"
done
secs=$((($(date +%s%3N) - start + 999) / 1000))  # whole seconds, rounded up

grep -aqE "^${ESC}\[K +stream +mid +bitrate +fps +lost +loss +jitter +rtt$" <(lines tty.out) ||
  fail "no table header on the terminal: $(cat -v tty.out | head -5)"
grep -aqE "^${ESC}\[K +in +video +1 +[0-9.]+ kbit/s +[0-9.]+ +[0-9]+ +[0-9.]+% +[0-9.]+ ms +- *$" <(lines tty.out) ||
  fail "no received video row: $(cat -v tty.out | head -8)"
grep -aqE "^${ESC}\[K +out +video +1 +[0-9.]+ kbit/s +[0-9.]+ +- +- +- +[0-9.]+ ms *$" <(lines tty.out) ||
  fail "no sent video row with a round-trip time: $(cat -v tty.out | head -8)"
# The status line every tool draws stays the table's first line.
grep -aqE "^${ESC}\[K +[0-9.]+ s  video [0-9]+ kbit/s [0-9]+ fps loss" <(lines tty.out) ||
  fail "no status line above the table: $(cat -v tty.out | head -3)"
# Redrawn in place (the cursor back up over the table), with figures that change, at most once
# a second (and once more at the end).
redraws=$(grep -aoE "${ESC}\[[0-9]+A" tty.out | wc -l)
rows=$(lines tty.out | grep -aE "^${ESC}\[K +in +video " | sort -u | wc -l)
(( redraws >= 2 )) || fail "the table was drawn $((redraws + 1)) times in $secs s"
(( redraws <= secs + 1 )) || fail "the table was drawn $((redraws + 1)) times in $secs s: more than once a second"
(( rows >= 3 )) || fail "the received video row changed $rows times: $(lines tty.out | grep -a 'in  *video' | cat -v)"
# The summary at the end: the whole file's.
"$S" --events-in ev.jsonl >whole.txt
cmp -s tty.sum whole.txt || fail "the summary after the table: $(diff tty.sum whole.txt)"
pass "a terminal: a table drawn $((redraws + 1)) times in $secs s, $rows different received video rows, then the summary"

# Into a pipe: not one escape byte, the text summary and the JSON as without --follow.
! grep -aq "$ESC" pipe.out pipe.err pipe.json json.err || fail "an escape byte in a pipe: $(cat -v pipe.err pipe.out | head -5)"
cmp -s pipe.out whole.txt || fail "the summary into a pipe: $(diff pipe.out whole.txt)"
[[ $(jq -c 'del(.input)' pipe.json) == "$("$S" --json --events-in ev.jsonl | jq -c 'del(.input)')" ]] ||
  fail "--follow --json into a pipe: $(cat pipe.json)"
pass "a pipe: no escape byte; the text and --json summaries as without --follow"

# 2. SIGINT: the table stays with the message under it, and the summary of what was read follows.
: >int.jsonl
bg int sh -c "exec script -qefc 'exec $S --follow --events-in int.jsonl >int.sum' int.out >/dev/null"
grow int.jsonl 6
child=$(pgrep -P "$PID_int") || fail "no kms-stats under script"
kill -INT "$child"
wait_for "$PID_int" 5
expect_rc 0 "--follow stopped by SIGINT"
lines int.out | grep -aqE "^${ESC}\[K +in +video +1 " || fail "no table before SIGINT: $(cat -v int.out)"
[[ $(lines int.out | grep -an "stopping" | cut -d: -f1) -gt $(lines int.out | grep -anE "in +video" | tail -1 | cut -d: -f1) ]] ||
  fail "the table was drawn over the stopping message: $(cat -v int.out)"
"$S" --events-in int.jsonl >int.whole
cmp -s int.sum int.whole || fail "the summary after SIGINT: $(diff int.sum int.whole)"
pass "SIGINT: the table stays, 'stopping' under it, and the summary follows"
