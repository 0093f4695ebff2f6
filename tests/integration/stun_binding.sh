#!/usr/bin/env bash
# kms-stun binding against coturn and against kms-stun server; coturn's own client against
# kms-stun server; retransmissions end in exit 4 when nobody answers; the echo peer echoes.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$BUILD/apps/kms-stun

turnserver -n --listening-ip=127.0.0.1 --listening-port=3478 --no-tls --no-dtls --stun-only --no-cli \
  --log-file=stdout >turn.log 2>&1 &
PIDS+=($!)
"$S" server --listen 127.0.0.1:3479 --json --events server.jsonl >server.json 2>server.err &
PIDS+=($!); PID_server=$!
for i in $(seq 50); do grep -q "Total General servers" turn.log 2>/dev/null && grep -q "STUN server on" server.err && break; sleep 0.1; done

# coturn: the mapped address is ours on loopback, the software is coturn's.
out=$("$S" binding stun:127.0.0.1:3478 --json)
echo "$out"
jq -e '.mapped | test("^127\\.0\\.0\\.1:[0-9]+$")' <<<"$out" >/dev/null || fail "coturn: mapped address"
jq -e '.software | test("Coturn")' <<<"$out" >/dev/null || fail "coturn: software"
jq -e '.rttMs > 0' <<<"$out" >/dev/null || fail "coturn: rtt"
echo "ok: binding against coturn"

# A ping against kms-stun server from a fixed local port: the mapped address is that port.
out=$("$S" binding stun:127.0.0.1:3479 --bind 127.0.0.1:45678 --count 5 --interval 20 --json --events ping.jsonl 2>/dev/null)
echo "$out"
jq -e '.mapped == "127.0.0.1:45678" and .sent == 5 and .received == 5 and .loss == 0' <<<"$out" >/dev/null ||
  fail "kms-stun server: ping"
jq -e '.rttMs.min <= .rttMs.mean and .rttMs.mean <= .rttMs.max' <<<"$out" >/dev/null || fail "rtt summary"
[[ $(jq -s '[.[] | select(.type=="stun-response" and .mapped=="127.0.0.1:45678")] | length' ping.jsonl) == 5 ]] ||
  fail "ping: events $(cat ping.jsonl)"
echo "ok: ping against kms-stun server"

# coturn's reference client reads kms-stun server's answer.
turnutils_stunclient -p 3479 127.0.0.1 >client.out 2>&1 || true
grep -q "UDP reflexive addr: 127.0.0.1:" client.out || fail "turnutils_stunclient: $(cat client.out)"
echo "ok: turnutils_stunclient against kms-stun server"

# Nobody at the port: RFC 8489 retransmissions, then exit 4 in about (1+2+16) x RTO.
start=$(date +%s.%N)
set +e; "$S" binding stun:127.0.0.1:3999 --rto 50 --retries 3 -q; RC=$?; set -e
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 4 "no server"
(( $(echo "$elapsed > 0.9 && $elapsed < 3" | bc) )) || fail "retransmission schedule took ${elapsed}s"
echo "ok: no answer exits 4 after ${elapsed}s"

# Garbage and a request with a broken FINGERPRINT are counted, not answered.
exec 3<>/dev/udp/127.0.0.1/3479
printf 'not stun at all' >&3
kill -TERM "$PID_server"; wait_for "$PID_server" 5; expect_rc 0 "server after SIGTERM"
jq -e '.requests >= 6 and .responses >= 6 and .malformed >= 1' server.json >/dev/null || fail "server counters: $(cat server.json)"
[[ $(jq -s '[.[] | select(.type=="stun-request")] | length' server.jsonl) == $(jq .responses server.json) ]] ||
  fail "server events do not match its counters"
echo "ok: server counters $(cat server.json)"

# The echo peer.
"$S" echo --listen 127.0.0.1:4000 -t 3 --json >echo.json 2>/dev/null &
PIDS+=($!); PID_echo=$!
sleep 0.3
exec 4<>/dev/udp/127.0.0.1/4000
printf 'ping-42' >&4
reply=$(timeout 2 head -c 7 <&4)
[[ $reply == ping-42 ]] || fail "echo: got '$reply'"
wait_for "$PID_echo" 5; expect_rc 0 "echo after --duration"
jq -e '.packets == 1 and .bytes == 7' echo.json >/dev/null || fail "echo counters: $(cat echo.json)"

# IPv6 on loopback.
bg v6 "$S" server --listen '[::1]:3483' -t 20 -q
sleep 0.3
"$S" binding 'stun:[::1]:3483' -6 --json >v6.json || fail "binding over IPv6: exit $?"
jq -e '.mapped | startswith("[::1]:")' v6.json >/dev/null || fail "IPv6: $(cat v6.json)"
pass "IPv6: mapped $(jq -r .mapped v6.json)"

# A lossy path: 30 % of the requests to this server are dropped (iptables statistic, in this
# namespace); with one send per transaction the ping's loss must show it.
bg lossy "$S" server --listen 127.0.0.1:3485 -t 20 -q
iptables -A INPUT -p udp --dport 3485 -m statistic --mode random --probability 0.3 -j DROP
sleep 0.3
"$S" binding stun:127.0.0.1:3485 --count 100 --interval 2 --rto 5 --retries 1 --json >l.json 2>/dev/null ||
  fail "lossy ping: exit $?"
jq -e '.sent == 100 and .received > 45 and .received < 95 and .loss == (100 - .received)' l.json >/dev/null ||
  fail "lossy ping: $(cat l.json)"
pass "30 % drop: $(jq -r '"\(.received)/\(.sent) answered, loss \(.loss) %"' l.json)"

# Long-term credentials on kms-stun server: 401 then success with the right password, 5 without.
bg auth "$S" server --listen 127.0.0.1:3481 --user alice:wonderland --realm kms.test -t 20 -q
sleep 0.3
"$S" binding stun:127.0.0.1:3481 -u alice -p wonderland --count 2 --interval 10 --json >a.json ||
  fail "binding with credentials: exit $?"
jq -e '.received == 2' a.json >/dev/null || fail "credentials: $(cat a.json)"
set +e; "$S" binding stun:127.0.0.1:3481 -u alice -p Wr0ng --json >a.json 2>a.err; RC=$?; set -e
expect_rc 5 "binding with a wrong password"
grep -q "401" a.err || fail "wrong password: $(cat a.err)"
set +e; "$S" binding stun:127.0.0.1:3481 --json >/dev/null 2>&1; RC=$?; set -e
expect_rc 5 "binding without credentials"
pass "server --user: long-term credentials"

# A per-source rate limit, and the counters over --control while the server runs.
bg rate "$S" server --listen 127.0.0.1:3482 --rate 5 --control ctl.sock -t 20 -q
sleep 0.3
"$S" binding stun:127.0.0.1:3482 --count 20 --interval 0 --rto 20 --retries 1 --json >r.json 2>/dev/null || true
counters=$(socat -t 2 - UNIX-CONNECT:ctl.sock)
jq -e '.limited > 0 and .responses >= 5 and .responses < 20 and .requests == 20' <<<"$counters" >/dev/null ||
  fail "rate limit: $counters; client $(jq -c '[.sent,.received]' r.json)"
pass "server --rate 5: $(jq -r '"\(.responses) of \(.requests) answered, \(.limited) limited"' <<<"$counters") (read over --control)"

# Usage errors.
for args in "binding" "binding http://x" "binding stuns:x?transport=udp" "binding stun:x?transport=sctp" "binding turn:x" "server" \
            "server --listen nowhere" "binding stun:127.0.0.1 --retries 0"; do
  set +e; "$S" $args >/dev/null 2>err; RC=$?; set -e
  expect_rc 2 "kms-stun $args"
done
pass "kms-stun binding, server and echo"
