#!/usr/bin/env bash
# kms-stun gather: candidates from libnice with their type, priority and timing; then --check
# between a host behind a Linux NAT and a public one, candidates exchanged over two fifos: a
# pair is selected through the NAT; with TURN and --relay-only on both sides, a relay pair.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$KMS_BUILD/apps/kms-stun


# Errors before gathering starts, with --json: one object with "error" (a name that does not
# resolve fails inside this namespace, which has no route anywhere).
set +e; "$S" gather --stun stun:nohost.invalid --json >e.json 2>e.err; RC=$?; set -e
expect_rc 4 "gather with a STUN server that does not resolve"
one_error e.json && jq -e '.error | test("cannot resolve nohost.invalid")' e.json >/dev/null ||
  fail "gather resolve failure, --json: '$(cat e.json)' / $(cat e.err)"
set +e; "$S" gather --relay-only --json >e.json 2>e.err; RC=$?; set -e
expect_rc 2 "gather --relay-only without --turn"
one_error e.json && jq -e '.error | test("--relay-only needs --turn")' e.json >/dev/null ||
  fail "gather usage error, --json: '$(cat e.json)'"
pass "gather errors before gathering, with --json: $(jq -c . e.json)"

nat_topology masquerade
bg stun ip netns exec srv "$S" server --listen 198.18.0.10:3478 -q -t 60 --events stun.jsonl
bg coturn ip netns exec srv sh -c "exec turnserver -n --listening-ip=198.18.0.10 --listening-port=3479 \
  --relay-ip=198.18.0.10 --no-tls --no-dtls --no-cli --lt-cred-mech --user=alice:wonderland \
  --realm=kms.test --log-file=stdout >coturn.log 2>&1"
ready "kms-stun server on 198.18.0.10:3478" 5 listening stun.jsonl
ready "coturn on 198.18.0.10:3479 (from behind the NAT)" 10 \
  ip netns exec cli "$S" binding stun:198.18.0.10:3479 --rto 50 --retries 2

# Gathering behind the NAT: host, server-reflexive (the NAT's address) and relayed candidates.
ip netns exec cli "$S" gather --bind 10.0.0.2 --stun stun:198.18.0.10 \
  --turn turn:alice:wonderland@198.18.0.10:3479 --json --events ev.jsonl >g.json || fail "gather: exit $?"
jq -e -s --argjson n "$(jq '.candidates | length' g.json)" \
  '([.[] | select(.type=="candidate")] | length) == $n and ([.[] | select(.type=="gathering-done")] | length) == 1' \
  ev.jsonl >/dev/null || fail "gather events: $(cat ev.jsonl)"
jq -e '[.candidates[].candidateType] | sort == ["host","relay","srflx"]' g.json >/dev/null || fail "candidates: $(cat g.json)"
jq -e '(.candidates[] | select(.candidateType=="srflx") | .address | startswith("198.18.0.1:"))
       and (.candidates[] | select(.candidateType=="relay") | .address | startswith("198.18.0.10:"))
       and (.candidates[] | select(.candidateType=="host") | .priority) > (.candidates[] | select(.candidateType=="relay") | .priority)
       and ([.candidates[].ms] | all(. >= 0)) and .gatheringMs > 0' g.json >/dev/null || fail "candidates: $(cat g.json)"
pass "gather: $(jq -r '[.candidates[] | "\(.candidateType) \(.address) \(.ms) ms"] | join(", ")' g.json)"
grep -q wonderland g.json && fail "the TURN password was printed"

# TURN over TCP: with UDP to coturn's port dropped, the relayed candidate can only come over the
# TCP connection, and says so (relayProtocol, as in W3C stats).
ip netns exec srv iptables -A INPUT -p udp --dport 3479 -j DROP
set +e
ip netns exec cli "$S" gather --bind 10.0.0.2 --turn "turn:alice:wonderland@198.18.0.10:3479?transport=tcp" \
  --relay-only --json -t 10 >gt.json 2>gt.err; RC_TCP=$?
ip netns exec cli "$S" gather --bind 10.0.0.2 --turn turn:alice:wonderland@198.18.0.10:3479 \
  --relay-only --json -t 3 >gu.json 2>gu.err; RC_UDP=$?
set -e
ip netns exec srv iptables -D INPUT -p udp --dport 3479 -j DROP
RC=$RC_TCP; expect_rc 0 "gather over TURN/TCP with UDP to the server dropped ($(cat gt.err))"
jq -e '[.candidates[] | select(.candidateType == "relay")] | length == 1 and .[0].relayProtocol == "tcp"
       and (.[0].address | startswith("198.18.0.10:"))' gt.json >/dev/null || fail "TURN/TCP: $(cat gt.json)"
RC=$RC_UDP; expect_rc 4 "gather over TURN/UDP with UDP to the server dropped (the control case)"
grep -q wonderland gt.json gt.err && fail "the TURN password was printed"
pass "gather over TURN/TCP: $(jq -r '.candidates[] | select(.candidateType == "relay") | "relay \(.address) via \(.relayProtocol)"' gt.json); over UDP, with UDP dropped, exit 4"
# TURN over TLS: libnice would send it unencrypted, so gather refuses it with 2 and says why,
# as text and as JSON, with the password hidden.
for mode in text json; do
  extra=(); [[ $mode == json ]] && extra=(--json)
  set +e; "$S" gather --turn "turns:alice:wonderland@127.0.0.1" "${extra[@]}" >tls.out 2>tls.err; RC=$?; set -e
  expect_rc 2 "gather --turn turns: ($mode)"
  grep -q "gather cannot reach a TURN server over TLS (libnice would send the requests unencrypted)" tls.err ||
    fail "gather turns: ($mode): $(cat tls.err)"
  grep -q wonderland tls.out tls.err && fail "the TURN password was printed"
  [[ $mode == text ]] || one_error tls.out || fail "gather turns: --json: $(cat tls.out)"
done
pass "gather --turn turns: is refused with 2: $(jq -r .error tls.out)"

# A wrong TURN password: no relayed candidate, exit 4 and the reason, as text and as JSON.
set +e; ip netns exec cli "$S" gather --bind 10.0.0.2 --turn turn:alice:Wr0ngPassw0rd@198.18.0.10:3479 -t 5 >/dev/null 2>err; RC=$?; set -e
expect_rc 4 "gather with a refused TURN server"
grep -q "no relayed candidate" err || fail "refused TURN: $(cat err)"
set +e; ip netns exec cli "$S" gather --bind 10.0.0.2 --turn turn:alice:Wr0ngPassw0rd@198.18.0.10:3479 -t 5 --json >r.json 2>>err; RC=$?; set -e
expect_rc 4 "gather with a refused TURN server, --json"
one_error r.json && jq -e '(.error | test("no relayed candidate")) and ([.candidates[].candidateType] == ["host"])' r.json >/dev/null ||
  fail "refused TURN, --json: $(cat r.json)"
grep -qF Wr0ngPassw0rd err r.json && fail "the wrong TURN password was printed"
pass "a refused TURN server exits 4, with the reason in .error"

# check_pair NAME "CLI ARGS" "SRV ARGS": both sides run --check over fifos; both must connect.
check_pair() {
  rm -f a2b b2a; mkfifo a2b b2a
  ip netns exec cli "$S" gather --check --bind 10.0.0.2 $2 --in b2a --out a2b --json -t 15 >a.json 2>a.err &
  local pa=$!; PIDS+=($pa)
  ip netns exec srv "$S" gather --check --bind 198.18.0.10 $3 --in a2b --out b2a --json -t 15 >b.json 2>b.err &
  local pb=$!; PIDS+=($pb)
  wait_for $pa 20; expect_rc 0 "$1: the side behind the NAT ($(cat a.err))"
  wait_for $pb 20; expect_rc 0 "$1: the public side ($(cat b.err))"
  jq -e '.state == "ready" and .rttMs > 0 and .selected.local.candidateType != null' a.json b.json >/dev/null ||
    fail "$1: $(cat a.json b.json)"
}
check_pair "through the NAT" "--stun stun:198.18.0.10" ""
# The public side sees the NAT's address: the server-reflexive or peer-reflexive candidate.
jq -e '.selected.remote.address | startswith("198.18.0.1:")' b.json >/dev/null || fail "remote: $(jq -c .selected b.json)"
pass "check through the NAT: $(jq -r '"\(.selected.local.candidateType) \(.selected.local.address) -> \(.selected.remote.candidateType) \(.selected.remote.address), rtt \(.rttMs) ms, connected after \(.connectedMs) ms"' a.json)"

turn="--turn turn:alice:wonderland@198.18.0.10:3479 --relay-only"
check_pair "relay only" "$turn" "$turn"
jq -e '.selected.local.candidateType == "relay" and .selected.remote.candidateType == "relay"' a.json b.json >/dev/null ||
  fail "relay only: $(jq -c .selected a.json b.json)"
pass "check with --relay-only: $(jq -r '"\(.selected.local.candidateType) \(.selected.local.address) -> \(.selected.remote.candidateType) \(.selected.remote.address), rtt \(.rttMs) ms"' a.json)"

# Over stdin and stdout, as with ssh: one side's stdout is the other's stdin, through a pipe one
# way and a fifo the other; the results go to stderr.
rm -f back; mkfifo back
"$S" gather --check --bind 127.0.0.1 --json -t 15 <back 2>p1.err |
  "$S" gather --check --bind 127.0.0.1 --json -t 15 >back 2>p2.err || fail "stdio pair: exit $?"
for f in p1.err p2.err; do
  jq -e '.state == "ready" and .selected.local.candidateType == "host" and .rttMs > 0' "$f" >/dev/null || fail "stdio: $(cat $f)"
done
pass "check over stdin/stdout: $(jq -r '"\(.selected.local.address) -> \(.selected.remote.address), rtt \(.rttMs) ms"' p1.err)"

# IPv6: a STUN server on ::1 that sees our host address (no NAT) is not an error.
bg v6 "$S" server --listen '[::1]:3478' -q -t 30 --events v6srv.jsonl
ready "kms-stun server on [::1]:3478" 5 listening v6srv.jsonl
"$S" gather --bind ::1 --stun 'stun:[::1]' --json >v6.json 2>v6.err || fail "IPv6 gather: exit $? ($(cat v6.err))"
jq -e '.candidates[0].address | startswith("[::1]:")' v6.json >/dev/null || fail "IPv6: $(cat v6.json)"
grep -q "no NAT in between" v6.err || fail "IPv6: $(cat v6.err)"
pass "IPv6 gathering against [::1]"

# A peer that never answers: 4 with the reason.
rm -f a2b b2a; mkfifo a2b b2a
( exec 3>b2a; echo '{"ufrag":"zzzz","pwd":"0123456789abcdefghijkl","candidates":["a=candidate:1 1 UDP 2015363327 198.18.0.99 9 typ host"]}' >&3; sleep 10 ) &
PIDS+=($!)
set +e; ip netns exec cli "$S" gather --check --bind 10.0.0.2 --in b2a --out /dev/null -t 4 --json >n.json 2>n.err; RC=$?; set -e
expect_rc 4 "check against a silent peer"
jq -e '.error | test("no candidate pair succeeded|every connectivity check failed")' n.json >/dev/null || fail "silent peer: $(cat n.json)"
pass "a silent peer exits 4: $(jq -r .error n.json)"
pass "kms-stun gather"
