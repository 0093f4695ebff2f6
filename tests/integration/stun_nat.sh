#!/usr/bin/env bash
# NAT behaviour (RFC 5780) from kms-stun nat: against kms-stun server --alt, coturn and Debian's
# stun-server on loopback, then through real Linux NATs that the test builds from namespaces: a plain
# MASQUERADE keeps the mapping endpoint-independent and filters by address and port; with
# --random-fully every destination gets its own mapping. Debian's stun-client (RFC 3489) and
# coturn's turnutils_natdiscovery read the same answers from kms-stun server.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$KMS_BUILD/apps/kms-stun

# Loopback holds 127.0.0.0/8, so one namespace gives an RFC 5780 server its two addresses.
bg srv "$S" server --listen 127.0.0.1:3478 --alt 127.0.0.2:3479 -t 30 -q
sleep 0.3
"$S" nat stun:127.0.0.1 --json >nat.json
jq -e '.nat == false and .mapping == "endpoint-independent" and .filtering == "endpoint-independent"
       and .classic == "open internet" and .otherAddress == "127.0.0.2:3479" and .hairpinning == true' \
  nat.json >/dev/null || fail "loopback against kms-stun server --alt: $(cat nat.json)"
pass "no NAT on loopback (kms-stun server --alt)"
kill "$PID_srv"

# Debian's stun-server (stund, RFC 3489): its other address comes as CHANGED-ADDRESS.
bg stund stund -h 127.0.0.1 -a 127.0.0.2 -p 3486 -o 3487
sleep 0.3
"$S" nat stun:127.0.0.1:3486 --json >stund.json || fail "nat against stund: exit $?"
jq -e '.nat == false and .filtering == "endpoint-independent" and .otherAddress == "127.0.0.2:3487"' \
  stund.json >/dev/null || fail "against stund: $(cat stund.json)"
"$S" binding stun:127.0.0.1:3486 --json >b.json || fail "binding against stund: exit $?"
jq -e '.software == "Vovida.org 0.97" and (.mapped | startswith("127.0.0.1:"))' b.json >/dev/null ||
  fail "binding against stund: $(cat b.json)"
pass "binding and nat against Debian's stun-server (RFC 3489)"
kill "$PID_stund"

# A server without a second address: inconclusive, exit 5, with the reason.
bg plain "$S" server --listen 127.0.0.1:3490 -t 30 -q
sleep 0.3
set +e; "$S" nat stun:127.0.0.1:3490 --json >inc.json 2>inc.err; RC=$?; set -e
expect_rc 5 "nat against a server without OTHER-ADDRESS"
jq -e '.result == "inconclusive" and (.reason | test("OTHER-ADDRESS"))' inc.json >/dev/null ||
  fail "inconclusive: $(cat inc.json)"
pass "inconclusive without OTHER-ADDRESS (exit 5)"
kill "$PID_plain"

# nat_case MODE SERVER EXPECTED_MAPPING: kms-stun nat from cli through the NAT to SERVER in srv.
nat_case() {
  local out=$1.json
  ip netns exec cli "$S" nat stun:198.18.0.10 --rto 50 --json ${4:-} >"$out" 2>"$1.err" ||
    { cat "$1.err" >&2; fail "$1: exit $?"; }
  jq -e --arg m "$3" '.nat == true and .mapping == $m and .filtering == "address-and-port-dependent"
         and (.mapped | startswith("198.18.0.1:")) and .hairpinning == false' "$out" >/dev/null ||
    fail "$1: $(cat "$out")"
  pass "$1: $(jq -r '"\(.mapping) mapping, \(.filtering) filtering (\(.classic))"' "$out")"
}

nat_topology masquerade
# The NAT forgets idle UDP mappings after 3 s here, so the lifetime probe can see one die.
ip netns exec nat sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3
bg ksrv ip netns exec srv "$S" server --listen 198.18.0.10:3478 --alt 198.18.0.11:3479 -t 60 -q
sleep 0.3
nat_case "MASQUERADE, kms-stun server" "" endpoint-independent "--lifetime 8"
jq -e '.lifetime.aliveAfterS == 2 and .lifetime.goneAfterS == 4' "MASQUERADE, kms-stun server.json" >/dev/null ||
  fail "lifetime with a 3 s conntrack timeout: $(jq -c .lifetime "MASQUERADE, kms-stun server.json")"
pass "mapping lifetime: alive after 2 s idle, gone after 4 s (conntrack timeout 3 s)"

# RFC 3489 and RFC 5780 clients of others against kms-stun server through the same NAT.
ip netns exec cli timeout 30 stun 198.18.0.10 >stun-client.out 2>&1 || true
grep -q "Independent Mapping, Port Dependent Filter" stun-client.out ||
  fail "Debian stun-client: $(cat stun-client.out)"
pass "Debian stun-client (RFC 3489): $(grep -o 'Independent Mapping[^,]*, Port Dependent Filter' stun-client.out)"
ip netns exec cli timeout 30 turnutils_natdiscovery -m -f 198.18.0.10 >natdisc.out 2>&1 || true
grep -q "NAT with Endpoint Independent Mapping" natdisc.out && grep -q "NAT with Address and Port Dependent Filtering" natdisc.out ||
  fail "turnutils_natdiscovery: $(cat natdisc.out)"
pass "turnutils_natdiscovery agrees"
kill "$PID_ksrv"

# coturn with two addresses is an RFC 5780 server too.
bg coturn ip netns exec srv turnserver -n --listening-ip=198.18.0.10 --listening-ip=198.18.0.11 \
  --no-tls --no-dtls --no-cli --stun-only --log-file=stdout >coturn.log 2>&1
sleep 1
nat_case "MASQUERADE, coturn" "" endpoint-independent
kill "$PID_coturn"

# And Debian's stun-server behind the same NAT.
bg stund2 ip netns exec srv stund -h 198.18.0.10 -a 198.18.0.11
sleep 0.3
nat_case "MASQUERADE, stund" "" endpoint-independent
kill "$PID_stund2"

# MASQUERADE --random-fully: a new random port per destination.
ip netns exec nat iptables -t nat -F
ip netns exec nat iptables -t nat -A POSTROUTING -o n1 -j MASQUERADE --random-fully
bg ksrv2 ip netns exec srv "$S" server --listen 198.18.0.10:3478 --alt 198.18.0.11:3479 -t 60 -q
sleep 0.3
nat_case "MASQUERADE --random-fully" "" address-and-port-dependent
jq -e '.classic == "symmetric"' "MASQUERADE --random-fully.json" >/dev/null || fail "classic name"
pass "RFC 5780 behind real NATs"
