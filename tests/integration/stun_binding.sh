#!/usr/bin/env bash
# kms-stun binding against coturn and against kms-stun server; coturn's own client against
# kms-stun server; retransmissions end in exit 4 when nobody answers, after as many requests as
# --retries says (counted by iptables), and so does a binding that SIGINT or SIGTERM interrupts;
# --json prints one object with "error" on every failure; --listen ADDR:0 names its port; the
# echo peer echoes.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$BUILD/apps/kms-stun


turnserver -n --listening-ip=127.0.0.1 --listening-port=3478 --no-tls --no-dtls --stun-only --no-cli \
  --log-file=stdout >turn.log 2>&1 &
PIDS+=($!)
"$S" server --listen 127.0.0.1:3479 --json --events server.jsonl >server.json 2>server.err &
PIDS+=($!); PID_server=$!
ready "coturn on 127.0.0.1:3478" 10 "$S" binding stun:127.0.0.1:3478 --rto 50 --retries 2
ready "kms-stun server on 127.0.0.1:3479" 10 listening server.jsonl

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

# Nobody at the port: RFC 8489 retransmissions, then exit 4 in about (1+2+16) x RTO. iptables
# counts what really left for the port: --retries 3 is three requests, and the message says so.
iptables -I OUTPUT -o lo -p udp --dport 3999 -j ACCEPT
sent_to_3999() { iptables -nvxL OUTPUT | awk '$0 ~ /dpt:3999/ { print $1 }'; }
some_sent_to_3999() { (( $(sent_to_3999) >= 1 )); }
start=$(date +%s.%N)
set +e; "$S" binding stun:127.0.0.1:3999 --rto 50 --retries 3 2>none.err >none.out; RC=$?; set -e
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
expect_rc 4 "no server"
(( $(echo "$elapsed > 0.9 && $elapsed < 3" | bc) )) || fail "retransmission schedule took ${elapsed}s"
[[ $(sent_to_3999) == 3 ]] || fail "--retries 3 sent $(sent_to_3999) requests"
grep -q "after 3 requests" none.err || fail "--retries 3 message: $(cat none.err)"
iptables -Z OUTPUT
set +e; "$S" binding stun:127.0.0.1:3999 --rto 20 --retries 5 --json 2>/dev/null >none.json; RC=$?; set -e
expect_rc 4 "no server, --json"
[[ $(sent_to_3999) == 5 ]] || fail "--retries 5 sent $(sent_to_3999) requests"
one_error none.json && jq -e '.requests == 5 and .error == "no response"' none.json >/dev/null ||
  fail "no server, --json: $(cat none.json)"
pass "no answer exits 4 after ${elapsed}s and 3 requests (iptables counted 3; with --retries 5, 5)"

# A binding interrupted while nobody has answered is still "no answer": 4, with its JSON.
for sig in INT TERM; do
  iptables -Z OUTPUT
  "$S" binding stun:127.0.0.1:3999 --rto 2000 --retries 7 --json >int.json 2>int.err &
  pid=$!; PIDS+=($pid)
  ready "the first request to 127.0.0.1:3999 (SIG$sig test)" 5 some_sent_to_3999
  kill -$sig $pid
  wait_for $pid 5; expect_rc 4 "binding interrupted by SIG$sig before an answer"
  one_error int.json && jq -e '.requests == 1' int.json >/dev/null || fail "SIG$sig: $(cat int.json)"
  grep -q "no response from 127.0.0.1:3999 (udp) after 1 request " int.err || fail "SIG$sig: $(cat int.err)"
done
pass "SIGINT and SIGTERM during an unanswered binding exit 4"

# --json on failures that come before any result: one object with "error".
set +e; "$S" binding stun:nohost.invalid --json >res.json 2>res.err; RC=$?; set -e
expect_rc 4 "a name that does not resolve"
one_error res.json && jq -e '.error | test("cannot resolve nohost.invalid")' res.json >/dev/null ||
  fail "resolve failure, --json: $(cat res.json) / $(cat res.err)"
set +e; "$S" nat stun:nohost.invalid --json >res.json 2>/dev/null; RC=$?; set -e
expect_rc 4 "nat: a name that does not resolve"
one_error res.json || fail "nat resolve failure, --json: $(cat res.json)"
pass "a resolve failure with --json: $(jq -c . res.json)"

# Garbage and a request with a broken FINGERPRINT are counted, not answered.
exec 3<>/dev/udp/127.0.0.1/3479
printf 'not stun at all' >&3
kill -TERM "$PID_server"; wait_for "$PID_server" 5; expect_rc 0 "server after SIGTERM"
jq -e '.requests >= 6 and .responses >= 6 and .malformed >= 1' server.json >/dev/null || fail "server counters: $(cat server.json)"
[[ $(jq -s '[.[] | select(.type=="stun-request")] | length' server.jsonl) == $(jq .responses server.json) ]] ||
  fail "server events do not match its counters"
echo "ok: server counters $(cat server.json)"

# The echo peer, on a port of its choosing (--listen ADDR:0).
"$S" echo --listen 127.0.0.1:0 -t 3 --json --events echo.jsonl >echo.json 2>echo.err &
PIDS+=($!); PID_echo=$!
ready "kms-stun echo --listen 127.0.0.1:0" 5 listening echo.jsonl
echo_port=$(listening echo.jsonl | cut -d: -f2)
[[ $echo_port =~ ^[0-9]+$ && $echo_port != 0 ]] || fail "echo port: $(cat echo.jsonl)"
grep -q "UDP echo on 127.0.0.1:$echo_port\$" echo.err || fail "echo's start-up line: $(cat echo.err)"
exec 4<>/dev/udp/127.0.0.1/$echo_port
printf 'ping-42' >&4
reply=$(timeout 2 head -c 7 <&4)
[[ $reply == ping-42 ]] || fail "echo: got '$reply'"
wait_for "$PID_echo" 5; expect_rc 0 "echo after --duration"
jq -e --arg l "127.0.0.1:$echo_port" '.packets == 1 and .bytes == 7 and .listen == $l' echo.json >/dev/null ||
  fail "echo counters: $(cat echo.json)"
pass "echo --listen 127.0.0.1:0 took port $echo_port and echoed"

# A server on ports of its choosing: the start-up line, the event and the JSON name the same
# ports, and a client reaches it there (RFC 5780 mode, so --alt's port too).
"$S" server --listen 127.0.0.1:0 --alt 127.0.0.2:0 -t 20 --json --events any.jsonl >any.json 2>any.err &
PIDS+=($!); PID_any=$!
ready "kms-stun server --listen 127.0.0.1:0" 5 listening any.jsonl
any=$(listening any.jsonl); alt=$(jq -r 'select(.type=="listening") | .alt' any.jsonl)
[[ $any =~ ^127\.0\.0\.1:[1-9][0-9]*$ && $alt =~ ^127\.0\.0\.2:[1-9][0-9]*$ ]] || fail "server ports: $(cat any.jsonl)"
grep -q "STUN server on $any with RFC 5780 alternate $alt\$" any.err || fail "server's start-up line: $(cat any.err)"
"$S" binding "stun:$any" --json >anyb.json || fail "binding to $any: exit $?"
jq -e --arg a "$alt" '.otherAddress == $a' anyb.json >/dev/null || fail "binding to $any: $(cat anyb.json)"
kill -TERM $PID_any; wait_for $PID_any 5; expect_rc 0 "server --listen :0 after SIGTERM"
jq -e --arg l "$any" --arg a "$alt" '.listen == $l and .alt == $a and .responses == 1' any.json >/dev/null ||
  fail "server --listen :0 counters: $(cat any.json)"
pass "server --listen 127.0.0.1:0 --alt 127.0.0.2:0 took $any and $alt"

# IPv6 on loopback.
bg v6 "$S" server --listen '[::1]:3483' -t 20 -q --events v6srv.jsonl
ready "kms-stun server on [::1]:3483" 5 listening v6srv.jsonl
"$S" binding 'stun:[::1]:3483' -6 --json >v6.json || fail "binding over IPv6: exit $?"
jq -e '.mapped | startswith("[::1]:")' v6.json >/dev/null || fail "IPv6: $(cat v6.json)"
pass "IPv6: mapped $(jq -r .mapped v6.json)"

# A lossy path: 30 % of the requests to this server are dropped (iptables statistic, in this
# namespace); with one send per transaction the ping's loss must show it.
bg lossy "$S" server --listen 127.0.0.1:3485 -t 20 -q --events lossy.jsonl
ready "kms-stun server on 127.0.0.1:3485" 5 listening lossy.jsonl
iptables -A INPUT -p udp --dport 3485 -m statistic --mode random --probability 0.3 -j DROP
"$S" binding stun:127.0.0.1:3485 --count 100 --interval 2 --rto 5 --retries 1 --json >l.json 2>/dev/null ||
  fail "lossy ping: exit $?"
jq -e '.sent == 100 and .received > 45 and .received < 95 and .loss == (100 - .received)' l.json >/dev/null ||
  fail "lossy ping: $(cat l.json)"
pass "30 % drop: $(jq -r '"\(.received)/\(.sent) answered, loss \(.loss) %"' l.json)"

# Long-term credentials on kms-stun server: 401 then success with the right password, 5 without.
bg auth "$S" server --listen 127.0.0.1:3481 --user alice:wonderland --realm kms.test -t 20 -q --events auth.jsonl
ready "kms-stun server --user on 127.0.0.1:3481" 5 listening auth.jsonl
"$S" binding stun:127.0.0.1:3481 -u alice -p wonderland --count 2 --interval 10 --json >a.json ||
  fail "binding with credentials: exit $?"
jq -e '.received == 2' a.json >/dev/null || fail "credentials: $(cat a.json)"
set +e; "$S" binding stun:127.0.0.1:3481 -u alice -p Wr0ng --json >a.json 2>a.err; RC=$?; set -e
expect_rc 5 "binding with a wrong password"
grep -q "401" a.err || fail "wrong password: $(cat a.err)"
set +e; "$S" binding stun:127.0.0.1:3481 --json >/dev/null 2>&1; RC=$?; set -e
expect_rc 5 "binding without credentials"
pass "server --user: long-term credentials"

# 420 and 438, and the counters by code. Without --alt, CHANGE-REQUEST gets 420: the client
# exits 5 naming it, and --control counts both requests under errors."420".
bg plain "$S" server --listen 127.0.0.1:3487 --control plain.sock -t 30 -q --events plain.jsonl
ready "kms-stun server on 127.0.0.1:3487" 5 listening plain.jsonl
for change in port ip+port; do
  set +e; "$S" binding stun:127.0.0.1:3487 --change-request $change --json >cr.json 2>cr.err; RC=$?; set -e
  expect_rc 5 "--change-request $change to a server without --alt"
  jq -e '.error == "420 Unknown Attribute"' cr.json >/dev/null || fail "420, --json: $(cat cr.json)"
  grep -q "answered 420 Unknown Attribute" cr.err || fail "420 message: $(cat cr.err)"
done
counters=$(socat -t 2 - UNIX-CONNECT:plain.sock)
jq -e '.requests == 2 and .changeRequests == 2 and .errors == {"400": 0, "401": 0, "420": 2, "438": 0}' \
  <<<"$counters" >/dev/null || fail "420 counters: $counters"
[[ $(jq -s '[.[] | select(.type == "stun-request" and .code == 420)] | length' plain.jsonl) == 2 ]] ||
  fail "420 events: $(cat plain.jsonl)"
pass "CHANGE-REQUEST without --alt: 420, exit 5, counted ($(jq -c .errors <<<"$counters"))"
# With --alt, CHANGE-REQUEST is honoured: the answer comes from the other IP, port or both, as
# the server's RESPONSE-ORIGIN says, and the client takes it (exit 0).
bg alt "$S" server --listen 127.0.0.1:3489 --alt 127.0.0.2:3490 -t 30 -q --events alt.jsonl
ready "kms-stun server --alt on 127.0.0.1:3489" 5 listening alt.jsonl
for pair in ip=127.0.0.2:3489 port=127.0.0.1:3490 ip+port=127.0.0.2:3490; do
  change=${pair%%=*}; want=${pair#*=}
  "$S" binding stun:127.0.0.1:3489 --change-request "$change" --json >cr.json 2>cr.err ||
    fail "--change-request $change to a server with --alt: exit $? ($(cat cr.err))"
  jq -e --arg w "$want" '.responseOrigin == $w and .otherAddress == "127.0.0.2:3490"' cr.json >/dev/null ||
    fail "--change-request $change: $(cat cr.json), expected the answer from $want"
done
pass "CHANGE-REQUEST with --alt: answers from 127.0.0.2:3489, 127.0.0.1:3490 and 127.0.0.2:3490"
# A nonce from before a restart is stale to the new server (its key is new): 438, and the
# client's ping takes the new nonce and loses nothing. The first server counts its one 401 at
# exit, the second its 438 and no 401.
bg n1 "$S" server --listen 127.0.0.1:3488 --user alice:wonderland -t 30 --json --events n1.jsonl >n1.json 2>n1.err
ready "kms-stun server --user on 127.0.0.1:3488" 5 listening n1.jsonl
"$S" binding stun:127.0.0.1:3488 -u alice -p wonderland --count 40 --interval 50 --rto 50 --json \
  --events nping.jsonl >nping.json 2>nping.err &
pid=$!; PIDS+=($pid)
answered() { (( $(jq -s '[.[] | select(.type == "stun-response")] | length' nping.jsonl 2>/dev/null || echo 0) >= $1 )); }
ready "3 answers to the ping before the restart" 5 answered 3
kill -TERM "$PID_n1"; wait_for "$PID_n1" 5; expect_rc 0 "the first --user server after SIGTERM"
bg n2 "$S" server --listen 127.0.0.1:3488 --user alice:wonderland -t 30 --json --events n2.jsonl >n2.json 2>n2.err
listening_or_gone() { listening n2.jsonl || ! kill -0 "$PID_n2"; }
ready "the restarted kms-stun server on 127.0.0.1:3488" 5 listening_or_gone
listening n2.jsonl >/dev/null || fail "the restarted kms-stun server exited: $(cat n2.err)"
wait_for $pid 15; expect_rc 0 "a ping across a server restart ($(cat nping.err))"
kill -TERM "$PID_n2"; wait_for "$PID_n2" 5; expect_rc 0 "the second --user server after SIGTERM"
jq -e '.sent == 40 and .received == 40' nping.json >/dev/null || fail "ping across the restart: $(cat nping.json)"
jq -e '.errors["401"] == 1 and .errors["438"] == 0 and .unauthorized == 1' n1.json >/dev/null || fail "first server: $(cat n1.json)"
jq -e '.errors["438"] >= 1 and .errors["401"] == 0 and .unauthorized == .errors["438"] and .responses == .requests' n2.json >/dev/null ||
  fail "restarted server: $(cat n2.json)"
[[ $(jq -s '[.[] | select(.type == "stun-request" and .code == 438)] | length' n2.jsonl) == $(jq '.errors["438"]' n2.json) ]] ||
  fail "438 events do not match the counter: $(cat n2.jsonl | head -5)"
pass "a nonce from before a restart: 438, the ping carries on (40/40), counted ($(jq -c .errors n2.json))"

# A per-source rate limit, and the counters over --control while the server runs.
bg rate "$S" server --listen 127.0.0.1:3482 --rate 5 --control ctl.sock -t 20 -q --events rate.jsonl
ready "kms-stun server --rate on 127.0.0.1:3482" 5 listening rate.jsonl
"$S" binding stun:127.0.0.1:3482 --count 20 --interval 0 --rto 20 --retries 1 --json >r.json 2>/dev/null || true
counters=$(socat -t 2 - UNIX-CONNECT:ctl.sock)
jq -e '.limited > 0 and .responses >= 5 and .responses < 20 and .requests == 20' <<<"$counters" >/dev/null ||
  fail "rate limit: $counters; client $(jq -c '[.sent,.received]' r.json)"
pass "server --rate 5: $(jq -r '"\(.responses) of \(.requests) answered, \(.limited) limited"' <<<"$counters") (read over --control)"

# Usage errors: 2, and with --json one object with "error".
for args in "binding" "binding http://x" "binding stuns:x?transport=udp" "binding stun:x?transport=sctp" "binding turn:x" "server" \
            "server --listen nowhere" "binding stun:127.0.0.1 --retries 0" "echo --listen 127.0.0.1" \
            "gather --stun turn:127.0.0.1" "binding stun:127.0.0.1 --bogus"; do
  set +e; "$S" $args >/dev/null 2>err; RC=$?; set -e
  expect_rc 2 "kms-stun $args"
  set +e; "$S" $args --json >usage.json 2>err; RC=$?; set -e
  expect_rc 2 "kms-stun $args --json"
  one_error usage.json || fail "kms-stun $args --json: '$(cat usage.json)'"
done
pass "kms-stun binding, server and echo"
