#!/usr/bin/env bash
# Headless Chromium (Debian's, driven by playwright-core) and kms-call in one private namespace:
# kms-call as answerer and as offerer with the json SDP format; each side decodes the other's
# video and audio (the browser's getStats and kms-call's own stats), with one video each way and
# with two.
. "$(dirname "$0")/../lib/kms-test.sh"

[[ -d $TOP/tests/browser/node_modules/playwright-core ]] || fail "playwright-core is not installed: run scripts/setup"
for role in answer offer; do
  out=$(timeout 60 node "$TOP/tests/browser/call.mjs" --kms "$KMS_CALL" --role "$role" --dir "$WORK" --seconds 4) ||
    fail "kms-call as $role with Chromium: $out"
  echo "$out"
  echo "ok: kms-call as $role with Chromium"
done
# The man page's own example: a browser's offer answered in H.264.
out=$(timeout 60 node "$TOP/tests/browser/call.mjs" --kms "$KMS_CALL" --role answer --codec h264 --dir "$WORK" --seconds 4) ||
  fail "kms-call answering Chromium in H.264: $out"
echo "$out"
echo "ok: kms-call answers Chromium in H.264"
# A camera and a screen-like second track (canvas.captureStream()) against two --send video
# sources, both ways: every video each side sends is decoded on the other, stream by stream.
for role in answer offer; do
  out=$(timeout 60 node "$TOP/tests/browser/call.mjs" --kms "$KMS_CALL" --role "$role" --videos 2 --dir "$WORK" --seconds 5) ||
    fail "kms-call as $role with Chromium, two videos each way: $out"
  echo "$out"
  echo "ok: two videos each way, kms-call as $role"
done
# Cross-check with an independent implementation: the bytes Chromium's getStats says it sent
# and received, per kind, against what kms-stats reads from kms-call's events (within 5%).
out=$(timeout 60 node "$TOP/tests/browser/call.mjs" --kms "$KMS_CALL" --role answer --bytes "$BUILD/apps/kms-stats" \
  --dir "$WORK/bytes" --seconds 6) || fail "bytes, Chromium against kms-stats: $out"
echo "$out" | jq -c .bytes
echo "ok: Chromium's getStats and kms-stats agree on the bytes each way within 5%"
pass "browser calls"
