#!/usr/bin/env bash
# NAT behaviour (RFC 5780) from kms-stun nat: against kms-stun server --alt, coturn and Debian's
# stun-server on loopback, then through real Linux NATs that the test builds from namespaces: a plain
# MASQUERADE keeps the mapping endpoint-independent and filters by address and port; with
# --random-fully every destination gets its own mapping; SNAT to a port range per destination
# address makes the mapping address-dependent; and a DNAT for addresses the client has sent to
# (iptables' recent match) makes the filtering address-dependent. Debian's stun-client
# (RFC 3489) and coturn's turnutils_natdiscovery read the same answers from kms-stun server.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$KMS_BUILD/apps/kms-stun


# Loopback holds 127.0.0.0/8, so one namespace gives an RFC 5780 server its two addresses.
bg srv "$S" server --listen 127.0.0.1:3478 --alt 127.0.0.2:3479 -t 30 -q --events srv.jsonl
ready "kms-stun server --alt on 127.0.0.1:3478" 5 listening srv.jsonl
"$S" nat stun:127.0.0.1 --json --events natev.jsonl >nat.json
# --events: one nat-test line per test, the same tests as the result's, in order.
# No NAT here: mapping I, then filtering I and II (answered from the other address and port).
jq -se --slurpfile r nat.json 'all(.type == "nat-test" and (.timestamp | type) == "number")
        and (map(del(.type, .timestamp)) == $r[0].tests)
        and (map(.test) == ["mapping I", "filtering I", "filtering II"])
        and (.[2].changeRequest == "ip+port" and .[2].from == "127.0.0.2:3479")' \
  natev.jsonl >/dev/null || fail "nat events: $(cat natev.jsonl)"
jq -e '.nat == false and .mapping == "endpoint-independent" and .filtering == "endpoint-independent"
       and .classic == "open internet" and .otherAddress == "127.0.0.2:3479" and .hairpinning == true' \
  nat.json >/dev/null || fail "loopback against kms-stun server --alt: $(cat nat.json)"
pass "no NAT on loopback (kms-stun server --alt); nat --events: $(jq -sr 'map(.test) | join(", ")' natev.jsonl)"
stop srv

# Debian's stun-server (stund, RFC 3489): its other address comes as CHANGED-ADDRESS.
bg stund stund -h 127.0.0.1 -a 127.0.0.2 -p 3486 -o 3487
ready "stund on 127.0.0.1:3486" 5 "$S" binding stun:127.0.0.1:3486 --rto 50 --retries 2
"$S" nat stun:127.0.0.1:3486 --json >stund.json || fail "nat against stund: exit $?"
jq -e '.nat == false and .filtering == "endpoint-independent" and .otherAddress == "127.0.0.2:3487"' \
  stund.json >/dev/null || fail "against stund: $(cat stund.json)"
"$S" binding stun:127.0.0.1:3486 --json >b.json || fail "binding against stund: exit $?"
jq -e '.software == "Vovida.org 0.97" and (.mapped | startswith("127.0.0.1:"))' b.json >/dev/null ||
  fail "binding against stund: $(cat b.json)"
pass "binding and nat against Debian's stun-server (RFC 3489)"
stop stund

# A server without a second address: inconclusive, exit 5, with the reason.
bg plain "$S" server --listen 127.0.0.1:3490 -t 30 -q --events plain.jsonl
ready "kms-stun server on 127.0.0.1:3490" 5 listening plain.jsonl
set +e; "$S" nat stun:127.0.0.1:3490 --json >inc.json 2>inc.err; RC=$?; set -e
expect_rc 5 "nat against a server without OTHER-ADDRESS"
jq -e '.result == "inconclusive" and (.reason | test("OTHER-ADDRESS"))' inc.json >/dev/null ||
  fail "inconclusive: $(cat inc.json)"
pass "inconclusive without OTHER-ADDRESS (exit 5)"
stop plain

# nat_case NAME MAPPING FILTERING CLASSIC [ARGS]: kms-stun nat from cli through the NAT to the
# server on 198.18.0.10 in srv must find exactly that behaviour.
nat_case() {
  local out=$1.json rc=0
  ip netns exec cli "$S" nat stun:198.18.0.10 --rto 50 --json ${5:-} >"$out" 2>"$1.err" || rc=$?
  (( rc == 0 )) || { cat "$1.err" >&2; fail "$1: exit $rc"; }
  jq -e --arg m "$2" --arg f "$3" --arg c "$4" '.nat == true and .mapping == $m and .filtering == $f
         and .classic == $c and (.mapped | startswith("198.18.0.1:")) and .hairpinning == false' "$out" >/dev/null ||
    fail "$1: $(cat "$out")"
  pass "$1: $(jq -r '"\(.mapping) mapping, \(.filtering) filtering (\(.classic))"' "$out")"
}
# srv_ready WHAT: a Binding request from srv itself gets its answer from 198.18.0.10:3478.
srv_ready() { ready "$1 on 198.18.0.10:3478" 10 ip netns exec srv "$S" binding stun:198.18.0.10 --rto 50 --retries 2; }

nat_topology masquerade
# The NAT forgets idle UDP mappings after 3 s here, so the lifetime probe can see one die.
ip netns exec nat sysctl -qw net.netfilter.nf_conntrack_udp_timeout=3
bg ksrv ip netns exec srv "$S" server --listen 198.18.0.10:3478 --alt 198.18.0.11:3479 -t 60 -q
srv_ready "kms-stun server"
nat_case "MASQUERADE, kms-stun server" endpoint-independent address-and-port-dependent \
  "port-restricted cone" "--lifetime 8"
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
stop ksrv

# coturn with two addresses is an RFC 5780 server too.
bg coturn ip netns exec srv sh -c "exec turnserver -n --listening-ip=198.18.0.10 --listening-ip=198.18.0.11 \
  --no-tls --no-dtls --no-cli --stun-only --log-file=stdout >coturn.log 2>&1"
srv_ready coturn
nat_case "MASQUERADE, coturn" endpoint-independent address-and-port-dependent "port-restricted cone"
stop coturn

# And Debian's stun-server behind the same NAT.
bg stund2 ip netns exec srv stund -h 198.18.0.10 -a 198.18.0.11
srv_ready stund
nat_case "MASQUERADE, stund" endpoint-independent address-and-port-dependent "port-restricted cone"
stop stund2

# MASQUERADE --random-fully: a new random port per destination.
ip netns exec nat iptables -t nat -F
ip netns exec nat iptables -t nat -A POSTROUTING -o n1 -j MASQUERADE --random-fully
bg ksrv2 ip netns exec srv "$S" server --listen 198.18.0.10:3478 --alt 198.18.0.11:3479 -t 60 -q
srv_ready "kms-stun server"
nat_case "MASQUERADE --random-fully" address-and-port-dependent address-and-port-dependent symmetric

# Address-dependent mapping: SNAT to one port range per destination address. Linux reuses a
# source's existing mapping when it falls in the rule's range, so every port of one address
# shares a mapping and another address gets another one.
ip netns exec nat iptables -t nat -F
ip netns exec nat iptables -t nat -A POSTROUTING -o n1 -p udp -d 198.18.0.10 -j SNAT --to-source 198.18.0.1:20000-29999
ip netns exec nat iptables -t nat -A POSTROUTING -o n1 -p udp -d 198.18.0.11 -j SNAT --to-source 198.18.0.1:30000-39999
nat_case "SNAT per destination address" address-dependent address-and-port-dependent symmetric
jq -e '[.tests[] | select(.test | startswith("mapping")) | .mapped | split(":")[1] | tonumber]
       | length == 3 and .[0] >= 20000 and .[0] < 30000 and .[1] >= 30000 and .[1] == .[2]' \
  "SNAT per destination address.json" >/dev/null ||
  fail "mappings per address: $(jq -c '[.tests[] | {test, to, mapped}]' "SNAT per destination address.json")"

# Address-dependent filtering: MASQUERADE (endpoint-independent mapping, ports kept), and a DNAT
# to the client for a new flow from any port of an address the client has sent to (the recent
# match remembers the destinations), so only other addresses stay filtered.
ip netns exec nat iptables -t nat -F
ip netns exec nat iptables -t nat -A POSTROUTING -o n1 -j MASQUERADE
ip netns exec nat iptables -t mangle -A PREROUTING -i n0 -p udp -m recent --name sentto --rdest --set
ip netns exec nat iptables -t nat -A PREROUTING -i n1 -p udp -m recent --name sentto --rsource --rcheck \
  -j DNAT --to-destination 10.0.0.2
nat_case "DNAT from addresses sent to" endpoint-independent address-dependent "restricted cone"
jq -e '[.tests[] | select(.test | startswith("filtering")) | {(.test): .answered}] | add
       == {"filtering I": true, "filtering II": false, "filtering III": true}' \
  "DNAT from addresses sent to.json" >/dev/null ||
  fail "filtering tests: $(jq -c '[.tests[] | select(.test | startswith("filtering"))]' "DNAT from addresses sent to.json")"
pass "RFC 5780 behind real NATs: all three mapping behaviours, address-dependent and address-and-port-dependent filtering"
