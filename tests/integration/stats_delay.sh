#!/usr/bin/env bash
# Round-trip time a caller can trust: 50 ms added each way (tests/lib/delay_relay.py in front of
# coturn; the offerer reaches the answerer only through the relay, the answerer answers through
# coturn and back through the delay), and kms-stats reads a median round-trip time of 100 ms
# +- 20 from the offerer's events (RTCP receiver reports, W3C remote-inbound-rtp roundTripTime).
. "$(dirname "$0")/../lib/kms-test.sh"
S=$BUILD/apps/kms-stats
run() { set +e; "$@"; RC=$?; set -e; }

command -v turnserver >/dev/null || fail "coturn is not installed: run scripts/setup"
turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port=3478 --no-tls --no-dtls \
  --no-cli --lt-cred-mech --user=alice:s3cret --realm=kms.test --allow-loopback-peers \
  --pidfile="$WORK/turn.pid" --log-file=stdout >turn.log 2>&1 & PIDS+=($!)
ready "coturn on 127.0.0.1:3478" 5 "$BUILD/apps/kms-stun" binding stun:127.0.0.1:3478 --rto 100 --retries 2 -q
python3 "$TOP/tests/lib/delay_relay.py" 3479 3478 50 60 >relay.out 2>relay.err & PIDS+=($!)
ready "the delaying relay" 5 grep -q ready relay.out
# The relay's own delay, seen by a STUN binding through it: 100 ms there and back.
start=$(date +%s%N)
"$BUILD/apps/kms-stun" binding stun:127.0.0.1:3479 --rto 500 --retries 1 -q >/dev/null
rtt_stun=$(( ($(date +%s%N) - start) / 1000000 ))
(( rtt_stun >= 95 && rtt_stun < 400 )) || fail "a binding through the relay took $rtt_stun ms"

# ?transport=udp: the relay speaks UDP only. A bare turn: URI makes webrtcbin ask over TCP too,
# and that ask ends only when the refused connect reaches libnice; once in CI it did not within
# the 10 s of --ice-timeout.
CALL_DEADLINE=40 call_pair "-t 12 --turn turn:alice:s3cret@127.0.0.1:3479?transport=udp --ice-transport-policy relay" "-t 12"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; tail -5 turn.log; fail "the call: exits $RC_OFF/$RC_ANS"; }
run "$S" --events-in off.jsonl --json >sum.json
expect_rc 0 "kms-stats summary"
jq -e '.roundTripTime.samples > 0' sum.json >/dev/null || fail "no round-trip time: $(jq -c . sum.json)"
# Every report, the first too. The first sender report of a call is stamped before DTLS is up,
# and webrtcbin holds RTCP back until then: a round trip measured on it counted the handshake
# (212 ms in CI, 216 to 329 ms here in one call out of three, the others 101 to 109 ms). kms-call
# skips it (receiver_reports.cpp); the unit test has the rule, this the effect.
median_ms=$(jq '.roundTripTime.p50 * 1000 | round' sum.json)
(( median_ms >= 80 && median_ms <= 120 )) ||
  fail "median round-trip time ${median_ms} ms with 50 ms each way: $(jq -c .roundTripTime sum.json)"
run "$S" --events-in off.jsonl --assert 'rtt.min > 80ms' --assert 'rtt.p50 < 120ms' --assert 'rtt.max < 160ms'
expect_rc 0 "rtt assertions"
# The pair each side chose, with the candidate types the right way round (GStreamer 1.22.0
# swapped local and remote types in get-stats; fixed upstream in 1.22.5): the offerer relays,
# the answerer is reached on its host address.
pair() { jq -sr '[.[] | select(.type == "selected-candidate-pair")][0] | "\(.local.candidateType) \(.remote.candidateType)"' "$1"; }
[[ $(pair off.jsonl) == "relay host" && $(pair ans.jsonl) == "host relay" ]] ||
  fail "candidate types: offerer $(pair off.jsonl), answerer $(pair ans.jsonl)"
pass "50 ms each way: kms-stats reads a median round-trip time of ${median_ms} ms (mean $(jq '.roundTripTime.mean * 1000 | round' sum.json) ms) (a STUN binding through the relay: ${rtt_stun} ms); candidate types right on both sides"
