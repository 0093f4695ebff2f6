#!/usr/bin/env bash
# Headless Chromium (Debian's, driven by playwright-core) and kms-call in one private namespace:
# kms-call as answerer and as offerer with the json SDP format; each side decodes the other's
# video and audio (the browser's getStats and kms-call's own stats), with one video each way and
# with two.
. "$(dirname "$0")/../lib/kms-test.sh"

[[ -d $TOP/tests/browser/node_modules/playwright-core ]] || fail "playwright-core is not installed: run scripts/setup"
# The certificate kms-call showed Chromium in the DTLS handshake, as openssl reads it.
peer_key() { jq -r '.browser.peerCertificate // empty' <<<"$1" | base64 -d |
  openssl x509 -inform DER -noout -text | grep -E -o 'id-ecPublicKey|rsaEncryption|Public-Key: \([0-9]+ bit\)' |
  paste -sd' ' -; }
for role in answer offer; do
  out=$(timeout 60 node "$TOP/tests/browser/call.mjs" --kms "$KMS_CALL" --role "$role" --dir "$WORK" --seconds 4) ||
    fail "kms-call as $role with Chromium: $out"
  echo "$out"
  key=$(peer_key "$out")
  [[ $key == "id-ecPublicKey Public-Key: (256 bit)" ]] ||
    fail "kms-call as $role: Chromium was shown '$key', not kms-call's default ECDSA P-256 certificate"
  echo "ok: kms-call as $role with Chromium, which checked its ECDSA certificate"
done
# The man page's own example: a browser's offer answered in H.264; and an RSA certificate.
out=$(timeout 60 node "$TOP/tests/browser/call.mjs" --kms "$KMS_CALL" --role answer --codec h264 --dtls-key rsa \
  --dir "$WORK" --seconds 4) || fail "kms-call answering Chromium in H.264: $out"
echo "$out"
key=$(peer_key "$out")
[[ $key == "rsaEncryption Public-Key: (2048 bit)" ]] || fail "--dtls-key rsa: Chromium was shown '$key'"
echo "ok: kms-call answers Chromium in H.264, with an RSA-2048 certificate"
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
