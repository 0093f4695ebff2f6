#!/usr/bin/env bash
# TURN: with --ice-transport-policy relay both sides reach each other only through coturn, with
# long-term credentials; the selected pair is a relay pair and media decodes.
. "$(dirname "$0")/../lib/kms-test.sh"

command -v turnserver >/dev/null || fail "coturn is not installed: run scripts/setup"
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
  -out cert.pem -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1 2>/dev/null
turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --listening-port=3478 --tls-listening-port=5349 \
  --cert=cert.pem --pkey=key.pem --no-dtls \
  --no-cli --lt-cred-mech --user=alice:s3cret --realm=kms.test --allow-loopback-peers \
  --pidfile="$WORK/turn.pid" --log-file=stdout >turn.log 2>&1 &
PIDS+=($!)
# Ready when it answers a STUN binding, not when its log says so; fail if it never does.
ready=""
for i in $(seq 50); do
  "$BUILD/apps/kms-stun" binding stun:127.0.0.1:3478 --rto 100 --retries 2 -q >/dev/null 2>&1 && { ready=1; break; }
  sleep 0.1
done
[[ -n $ready ]] || { tail -5 turn.log; fail "coturn did not answer on 127.0.0.1:3478 within 5 s"; }

call_pair "-t 4 --turn turn:alice:s3cret@127.0.0.1:3478 --ice-transport-policy relay" \
          "-t 4 --turn turn:127.0.0.1:3478?transport=udp --turn-user alice --turn-password s3cret --ice-transport-policy relay"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; tail -5 turn.log; fail "relay call: exits $RC_OFF/$RC_ANS"; }
for side in off ans; do
  t=$(jq -r -s '[.[] | select(.type=="selected-candidate-pair")][0].local.candidateType' $side.jsonl)
  [[ $t == relay ]] || fail "$side: selected local candidate is $t, not relay"
  jq -e -s '[.[] | select(.type=="local-candidate")] | all(.candidateType == "relay")' $side.jsonl >/dev/null ||
    fail "$side: gathered non-relay candidates under the relay policy"
  v=$(jq -s '[.[] | select(.type=="summary")][0].videoFramesDecoded' $side.jsonl)
  (( v > 30 )) || fail "$side decoded $v frames through the relay"
  echo "ok: $side through the relay ($v frames)"
done
grep -q "s3cret" off.err ans.err off.jsonl ans.jsonl && fail "the TURN password was printed"

# TURN over TCP: each side reaches coturn over a TCP connection (seen with ss mid-call); the
# relayed address itself is UDP.
(sleep 2.5; ss -Htn state established '( dport = :3478 )' >tcp.txt) &
call_pair "-t 4 --turn turn:alice:s3cret@127.0.0.1:3478?transport=tcp --ice-transport-policy relay" \
          "-t 4 --turn turn:alice:s3cret@127.0.0.1:3478?transport=tcp --ice-transport-policy relay"
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; tail -5 turn.log; fail "TURN/TCP call: exits $RC_OFF/$RC_ANS"; }
for side in off ans; do
  v=$(jq -s '[.[] | select(.type=="summary")][0].videoFramesDecoded' $side.jsonl)
  (( v > 30 )) || fail "$side decoded $v frames through the relay over TCP"
  jq -e -s '[.[] | select(.type=="local-candidate")] | length > 0 and all(.candidateType == "relay")' $side.jsonl \
    >/dev/null || fail "$side: gathered no relay candidate over TCP"
done
(( $(wc -l <tcp.txt) >= 2 )) || fail "mid-call, $(wc -l <tcp.txt) TCP connections to coturn, not one per side"
echo "ok: both sides through the relay over TCP"

# A bare turn: URI asks over UDP and TCP. When a firewall swallows the TCP ask, libnice waits
# 7.9 s for it; at --ice-timeout the offer goes out with the relay candidate UDP gave, and a
# warning says so (before, the call failed with exit 4).
iptables -A OUTPUT -p tcp --dport 3478 -j DROP
call_pair "-t 6 --ice-timeout 2 --turn turn:alice:s3cret@127.0.0.1:3478 --ice-transport-policy relay" "-t 6"
iptables -D OUTPUT -p tcp --dport 3478 -j DROP
[[ $RC_OFF == 0 && $RC_ANS == 0 ]] || { show_logs; fail "TCP swallowed: exits $RC_OFF/$RC_ANS"; }
grep -q "warning: ICE gathering did not finish within 2 s (--ice-timeout); sending the 1 candidate" off.err ||
  fail "TCP swallowed: no warning on stderr: $(cat off.err)"
v=$(jq -s '[.[] | select(.type=="summary")][0].videoFramesDecoded' ans.jsonl)
(( v > 30 )) || fail "TCP swallowed: the answerer decoded $v frames"
echo "ok: TURN's TCP ask swallowed: the offer went out at --ice-timeout with the UDP relay ($v frames)"

# turns: is refused before anything is sent: libnice would speak plain TCP to the TLS port
# (seen through a relaying proxy: a clear-text Allocate, 0x0003 and the magic cookie).
timeout 10 "$KMS_CALL" offer --bind 127.0.0.1 --turn turns:alice:s3cret@127.0.0.1:5349 </dev/null \
  >tls.out 2>tls.err && RC=0 || RC=$?
expect_rc 2 "turns:"
grep -q "TURN over TLS is not available" tls.err || fail "turns: message: $(cat tls.err)"
grep -q s3cret tls.err tls.out && fail "turns: refusal printed the password"
[[ ! -s tls.out ]] || fail "turns: an offer went out"
echo "ok: turns: is refused (libnice would send it in the clear), exit 2"
pass "TURN relay over UDP and TCP; a swallowed TCP ask; turns: refused"
