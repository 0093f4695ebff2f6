#!/usr/bin/env bash
# Bad input never crashes or hangs kms-call: malformed SDP exits 3 naming the line, SDP a WebRTC
# peer cannot use exits 5, a certificate that does not match the fingerprint exits 5 before any
# media is used, and no common codec exits 5 naming both sides' codecs.
. "$(dirname "$0")/../lib/kms-test.sh"

n=0
for f in "$DATA"/sdp/bad/*.sdp; do
  name=$(basename "$f")
  line=$(sed -E 's/.*\.L([0-9]+)\.sdp/\1/' <<<"$name")
  set +e; timeout 20 "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in "$f" --sdp-out /dev/null -q 2>err; RC=$?; set -e
  expect_rc 3 "$name"
  # From a stream an empty line ends the description, so that one is cut short instead.
  if (( line > 0 )) && [[ $name != empty-line-inside* ]]; then grep -qE "line $line([^0-9]|$)" err || fail "$name: message does not name line $line: $(cat err)"; fi
  n=$((n + 1))
done
echo "ok: $n malformed offers exit 3"
for f in "$DATA"/sdp/bad/{not-key-value.L6,m-port-too-big.L8,fingerprint-bad-hex.L14}.sdp; do
  set +e; timeout 20 "$KMS_CALL" offer --bind 127.0.0.1 --sdp-in "$f" --sdp-out /dev/null -q 2>err; RC=$?; set -e
  expect_rc 3 "$(basename "$f") as an answer"
  grep -q "^kms-call: answer SDP line" err || fail "the message does not say it was the answer: $(cat err)"
done
echo "ok: malformed answers exit 3"
for f in "$DATA"/sdp/refused/*.sdp; do
  set +e; timeout 20 "$KMS_CALL" answer --bind 127.0.0.1 --sdp-in "$f" --sdp-out /dev/null -q 2>err; RC=$?; set -e
  expect_rc 5 "$(basename "$f")"
done
grep -q "missing a=fingerprint (DTLS needs one)" <("$KMS_CALL" answer --sdp-in "$DATA/sdp/refused/no-fingerprint.sdp" \
  --sdp-out /dev/null -q 2>&1) || fail "no fingerprint: message"
echo "ok: SDP without fingerprint, ICE credentials or SRTP exits 5"

# A man in the middle: one byte of the answer's fingerprint changed on its way to the offerer.
rm -f o a a_raw; mkfifo o a a_raw
"$KMS_CALL" offer --bind 127.0.0.1 --sdp-out o --sdp-in a --events off.jsonl --ice-timeout 3 2>off.err </dev/null &
PIDS+=($!); PID_off=$!
"$KMS_CALL" answer --bind 127.0.0.1 --sdp-in o --sdp-out a_raw --events ans.jsonl --ice-timeout 3 2>ans.err </dev/null &
PIDS+=($!); PID_ans=$!
awk '/^a=fingerprint:sha-256 / { p = substr($2, 1, 2); $2 = (p == "00" ? "01" : "00") substr($2, 3) } { print }' \
  <a_raw >a &
PIDS+=($!)
wait_for "$PID_off" 15; expect_rc 5 "the offerer seeing a forged fingerprint"
grep -q "does not match the SDP's a=fingerprint" off.err || fail "mismatch message: $(tail -2 off.err)"
[[ $(jq -s '[.[] | select(.type=="fingerprint")][0].verified' off.jsonl) == false ]] || fail "fingerprint event"
[[ $(jq -s '[.[] | select(.type=="summary")][0].videoFramesDecoded' off.jsonl) == 0 ]] ||
  fail "media was used before the fingerprint check"
wait_for "$PID_ans" 15
[[ $RC == 4 || $RC == 5 ]] || fail "the answerer, left alone, should end with 4 or 5, not $RC"
echo "ok: fingerprint mismatch refused with 5"

# No common codec: the answerer names both sides' codecs; the offerer, left without an answer, 5.
call_pair "--video-codec vp8 --no-audio" "--video-codec h264 --no-audio"
[[ $RC_ANS == 5 && $RC_OFF == 5 ]] || { show_logs; fail "no common codec: exits $RC_OFF/$RC_ANS"; }
grep -q "no common video codec.*offers vp8; we accept h264" ans.err || fail "codec message: $(tail -1 ans.err)"
echo "ok: no common codec exits 5"

# Unusable options are usage errors, before anything starts.
for args in "--send foo:bar" "-o smb://x/y" "--video-codec av2" "--port-range 9-1" "--bind 256.1.1.1" "--bind 192.0.2.1" \
            "--turn stun:x" "--ice-transport-policy relay" "--max-bitrate 10 --min-bitrate 20" "--send -"; do
  set +e; timeout 10 "$KMS_CALL" offer $args --sdp-out /dev/null -q 2>err </dev/null; RC=$?; set -e
  expect_rc 2 "kms-call offer $args"
  [[ -s err ]] || fail "kms-call offer $args printed no message"
done
echo "ok: bad options exit 2"
# --json on a run refused before the call: its one object on stdout (it wrote nothing).
for c in "-o /nonexistent/dir/x.webm:7:io" "--send /nonexistent.webm:3:bad-input"; do
  IFS=: read -r args want kind <<<"$c"
  set +e; timeout 20 "$KMS_CALL" --json offer --bind 127.0.0.1 $args </dev/null >out.json 2>err; RC=$?; set -e
  expect_rc "$want" "--json offer $args"
  jq -e --arg k "$kind" '.result == $k and (.error | length > 0)' out.json >/dev/null ||
    fail "--json offer $args: stdout $(cat out.json)"
done
echo "ok: --json gives its object for a run refused before the call"
# Descriptions in the wrong dress are named for what they are: base64(1)'s wrapped lines, and
# plain SDP read as JSON (it said "closed in the middle of a description").
jq -Rs '{type: "offer", sdp: .}' "$DATA/sdp/kms-offer.sdp" | base64 >wrapped.b64
(( $(wc -l <wrapped.b64) > 1 )) || fail "base64 did not wrap"
set +e; timeout 20 "$KMS_CALL" answer --bind 127.0.0.1 --sdp-format base64 --sdp-in wrapped.b64 --sdp-out /dev/null -q 2>err; RC=$?; set -e
expect_rc 3 "wrapped base64"
grep -q "base64 must be one line" err || fail "wrapped base64: $(cat err)"
set +e; timeout 20 "$KMS_CALL" answer --bind 127.0.0.1 --sdp-format json --sdp-in "$DATA/sdp/kms-offer.sdp" --sdp-out /dev/null -q 2>err; RC=$?; set -e
expect_rc 3 "plain SDP as json"
grep -q "this is plain SDP" err || fail "plain SDP as json: $(cat err)"
echo "ok: wrapped base64 and plain SDP as JSON named"
# --help says what 0 means, and lists only the exit statuses kms-call has.
"$KMS_CALL" offer --help >help.txt
grep -q -- "--max-bitrate KBPS (default none)" help.txt && grep -q -- "--start-bitrate KBPS (default 1000)" help.txt ||
  fail "--help: $(grep -- -bitrate help.txt)"
! grep -q "assertion" help.txt || fail "--help lists kms-stats's status 8"
pass "refusals"
