#!/usr/bin/env bash
# kms-stun turn and binding against coturn on loopback: long-term and REST credentials over
# UDP, TCP and TLS; a relay ping through Send indications and through a channel, to our own
# second socket and to kms-stun echo; wrong credentials exit 5 and say which part was refused;
# a bounded --load of allocations; no password or secret shows in any output, malformed URIs
# and usage errors included.
. "$(dirname "$0")/../lib/kms-test.sh"
S=$KMS_BUILD/apps/kms-stun

# no_secret SECRET FILES...: fails when SECRET appears in any of FILES.
no_secret() {
  local secret=$1; shift
  if grep -F -q -e "$secret" "$@"; then fail "'$secret' was printed: $(grep -F -h -e "$secret" "$@" | head -3)"; fi
}

# Secrets in malformed URIs and in usage errors never print, as text or as JSON (issue 6): each
# command must fail with 2 and say nothing that holds the password.
PW=TopSecret99
bad_uris=("turn:alice:$PW@127.0.0.1:0" "turn:alice:$PW@127.0.0.1?transport=bogus" "turn:alice:$PW@[::1"
          "turn:alice:$PW@" "turn:alice:$PW@127.0.0.1:99999" "turns:alice:$PW@127.0.0.1?transport=udp"
          "turn://alice:$PW@:3478" "turn:alice:Top?$PW@127.0.0.1:0" "turn:alice:Top/$PW@[::1")
cmds=()
for u in "${bad_uris[@]}"; do
  cmds+=("turn|$u" "turn|$u|-u|bob" "gather|--turn|$u" "gather|--turn|$u|--stun|stun:127.0.0.1" "binding|$u")
done
cmds+=("turn|turn:127.0.0.1:0|-u|alice|-p|$PW" "turn|turn:127.0.0.1?transport=bogus|--secret|$PW"
       "turn|turn:127.0.0.1|--password=$PW|--count|many" "turn|turn:127.0.0.1|-p$PW|--bogus"
       "turn|turn:127.0.0.1|--secret|$PW|--size|9" "turn|-p|$PW" "turn|--secret|$PW"
       "binding|stun:127.0.0.1|--secret|$PW" "binding|stun:127.0.0.1:0|-u|alice|-p|$PW"
       "nat|stun:127.0.0.1|-p|$PW" "gather|--turn|turn:127.0.0.1:0|-u|alice|-p|$PW"
       "gather|--stun|stun:127.0.0.1|--secret|$PW" "server|--listen|127.0.0.1:0|--user|alice:$PW|--bogus"
       "server|--listen|nowhere|--user|alice:$PW" "echo|--listen|127.0.0.1:0|-p|$PW")
n=0
for c in "${cmds[@]}"; do
  IFS='|' read -r -a args <<<"$c"
  for mode in text json; do
    extra=(-v); [[ $mode == json ]] && extra=(--json)
    set +e; "$S" "${args[@]}" "${extra[@]}" >sec.out 2>sec.err; RC=$?; set -e
    expect_rc 2 "kms-stun ${args[*]/$PW/***} ($mode)"
    [[ -s sec.err ]] || fail "kms-stun ${args[*]/$PW/***} ($mode): no message on stderr"
    no_secret "$PW" sec.out sec.err
    if [[ $mode == json ]]; then
      jq -se 'length == 1 and (.[0].error | length > 0)' sec.out >/dev/null ||
        fail "kms-stun ${args[*]/$PW/***} --json: '$(cat sec.out)'"
    fi
    n=$((n + 1))
  done
done
# What is left says what was wrong, with the URI shown as user:***@host.
set +e; "$S" turn "turn:alice:$PW@127.0.0.1:0" 2>sec.err; set -e
grep -qF "'turn:alice:***@127.0.0.1:0': bad port" sec.err || fail "redacted URI message: $(cat sec.err)"
pass "$n runs with a password in a malformed URI, -p, --password=, -p... or --secret: exit 2, no password in any output"

openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout key.pem \
  -out cert.pem -days 2 -subj /CN=localhost -addext subjectAltName=IP:127.0.0.1,DNS:localhost 2>/dev/null
# Two coturns: long-term credentials on 3478/5349, REST (shared secret) on 3480/5350.
common=(-n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --no-dtls --no-cli --allow-loopback-peers
        --cert=cert.pem --pkey=key.pem --realm=kms.test --log-file=stdout)
bg lt sh -c "exec turnserver ${common[*]} --lt-cred-mech --user=alice:wonderland >lt.log 2>&1"
bg rest sh -c "exec turnserver ${common[*]} --listening-port=3480 --tls-listening-port=5350 \
  --use-auth-secret --static-auth-secret=s3cret >rest.log 2>&1"
ready "coturn (REST) on 127.0.0.1:3480" 10 "$S" binding stun:127.0.0.1:3480 --rto 50 --retries 2
ready "coturn (long-term) on 127.0.0.1:3478" 10 "$S" binding stun:127.0.0.1 --rto 50 --retries 2
ready "coturn's TLS listener on 5349" 10 "$S" binding stuns:localhost --ca cert.pem --rto 50
ready "coturn's TLS listener on 5350" 10 "$S" binding stuns:localhost:5350 --ca cert.pem --rto 50

# Binding over the three transports.
for uri in "stun:127.0.0.1" "stun:127.0.0.1?transport=tcp" "stuns:localhost"; do
  "$S" binding "$uri" --ca cert.pem --count 3 --interval 20 --json >b.json 2>/dev/null ||
    fail "binding $uri: exit $?"
  jq -e '.received == 3 and (.mapped | startswith("127.0.0.1:")) and (.software | test("Coturn"))' b.json >/dev/null ||
    fail "binding $uri: $(cat b.json)"
done
jq -e '.transport == "tls" and (.tls | test("certificate verified"))' b.json >/dev/null || fail "tls: $(cat b.json)"
pass "binding over udp, tcp and tls (certificate checked against --ca)"
set +e; "$S" binding stuns:localhost -q 2>err; RC=$?; set -e
expect_rc 5 "stuns: with an untrusted certificate"
grep -q "not trusted" err || fail "untrusted certificate message: $(cat err)"
pass "an untrusted certificate exits 5"

# turn_ok NAME TRANSPORT ARGS...: an allocation over TRANSPORT and a ping with every packet
# back, sent as ChannelData after a successful ChannelBind when ARGS say --channel and as Send
# indications with no ChannelBind otherwise; the password or secret of ARGS in no output.
turn_ok() {
  local name=$1 transport=$2; shift 2
  local via="Send indications" channel=false prev="" a secrets=()
  for a in "$@"; do
    [[ $a == --channel ]] && { via=ChannelData; channel=true; }
    [[ $prev == -p || $prev == --secret ]] && secrets+=("$a")
    [[ $a =~ ^turns?:[^:@]+:([^@]+)@ ]] && secrets+=("${BASH_REMATCH[1]}")
    prev=$a
  done
  (( ${#secrets[@]} > 0 )) || fail "$name: no secret in the arguments to look for"
  "$S" turn "$@" --ca cert.pem --count 20 --interval 5 --json >t.json 2>t.err ||
    { cat t.err >&2; fail "$name: exit $?"; }
  jq -e --arg t "$transport" --arg via "$via" --argjson ch $channel '
         .received == .sent and .sent == 20 and .loss == 0 and (.relayed | startswith("127.0.0.1:"))
         and .transport == $t and .via == $via
         and ([.trace[] | select(.request == "ChannelBind" and .response == "success")] | length) == (if $ch then 1 else 0 end)
         and ([.trace[] | select(.request == "ChannelBind")] | length) == (if $ch then 1 else 0 end)
         and .rttMs.mean > 0 and (.trace | length >= 3) and .trace[0].response == "401 Unauthorized"
         and .trace[1].response == "success" and .trace[1].integrity == "verified"' t.json >/dev/null || fail "$name: $(cat t.json)"
  # The same run as text, for the trace lines people read.
  "$S" turn "$@" --ca cert.pem --count 2 --interval 5 -v >t.txt 2>&1 || { cat t.txt >&2; fail "$name (text): exit $?"; }
  for a in "${secrets[@]}"; do no_secret "$a" t.json t.err t.txt; done
  pass "$name: $(jq -r '"\(.transport), relayed \(.relayed), \(.received)/\(.sent) back via \(.via), rtt \(.rttMs.mean) ms, jitter \(.jitterMs) ms"' t.json)"
}
turn_ok "long-term, udp" udp turn:127.0.0.1 -u alice -p wonderland
turn_ok "long-term, udp, channel" udp turn:alice:wonderland@127.0.0.1 --channel
turn_ok "long-term, tcp" tcp "turn:127.0.0.1?transport=tcp" -u alice -p wonderland --channel
turn_ok "long-term, tcp, Send indications" tcp "turn:alice:wonderland@127.0.0.1?transport=tcp"
turn_ok "long-term, tls" tls turns:localhost -u alice -p wonderland
turn_ok "REST, udp" udp turn:127.0.0.1:3480 --secret s3cret
turn_ok "REST, tls, channel" tls turns:localhost:5350 --secret s3cret -u bob --channel

# An echo peer elsewhere.
bg echo "$S" echo --listen 127.0.0.1:4000 -t 20 -q --events echo.jsonl
ready "kms-stun echo on 127.0.0.1:4000" 5 listening echo.jsonl
turn_ok "to kms-stun echo" udp turn:127.0.0.1 -u alice -p wonderland --peer 127.0.0.1:4000
jq -e '.peer == "127.0.0.1:4000"' t.json >/dev/null || fail "peer: $(jq -c .peer t.json)"

# A lossy path: 30 % of what the relay sends to the echo peer is dropped (iptables statistic;
# this namespace's own rule). The loss must show, and only the packets that came back count.
iptables -A INPUT -p udp --dport 4000 -m statistic --mode random --probability 0.3 -j DROP
"$S" turn turn:127.0.0.1 -u alice -p wonderland --peer 127.0.0.1:4000 --count 200 --interval 2 \
  --json >lossy.json 2>/dev/null || fail "lossy relay: exit $?"
jq -e '.sent == 200 and .received < 190 and .received > 90 and .loss == ((200 - .received) / 2)
       and .rttMs.max >= .rttMs.mean and .rttMs.mean >= .rttMs.min' lossy.json >/dev/null ||
  fail "lossy relay: $(jq -c 'del(.trace)' lossy.json)"
pass "30 % drop towards the peer: $(jq -r '"\(.received)/\(.sent) back, loss \(.loss) %"' lossy.json)"
iptables -D INPUT -p udp --dport 4000 -m statistic --mode random --probability 0.3 -j DROP

# Refusals: 5, with the part refused.
set +e; "$S" turn turn:127.0.0.1 -u alice -p Wr0ngPassw0rd --json >w.json 2>w.err; RC=$?; set -e
expect_rc 5 "wrong password"
grep -q "refused: username or the password's key" w.err || fail "wrong password message: $(cat w.err)"
jq -e '.trace | length == 2 and .[1].response == "401 Unauthorized" and .[1].authenticated' w.json >/dev/null ||
  fail "wrong password trace: $(cat w.json)"
grep -q Wr0ngPassw0rd w.json w.err && fail "the wrong password was printed"
pass "a wrong password exits 5: $(tail -1 w.err | cut -c11-130)..."
set +e; "$S" turn turn:127.0.0.1 -u alice -p wonderland --realm other.test 2>w.err >/dev/null; RC=$?; set -e
expect_rc 5 "an account in another realm"
grep -q "refused: realm" w.err || fail "realm message: $(cat w.err)"
set +e; "$S" turn turn:127.0.0.1:3480 --secret nope 2>w.err >/dev/null; RC=$?; set -e
expect_rc 5 "a wrong REST secret"
grep -q "shared secret differs" w.err || fail "REST message: $(cat w.err)"
set +e; "$S" turn turn:127.0.0.1 2>w.err >/dev/null; RC=$?; set -e
expect_rc 5 "no credentials"
grep -q "wants credentials" w.err || fail "no-credentials message: $(cat w.err)"
pass "realm, REST secret and missing credentials refused with 5 and their reason"

# Nonces that go stale after a second (coturn --stale-nonce=1, counted in whole seconds, so the
# ping lasts 3 s): the Refresh at the end meets
# 438, takes the new nonce and succeeds.
bg stale sh -c "exec turnserver ${common[*]} --listening-port=3482 --tls-listening-port=5352 \
  --lt-cred-mech --user=alice:wonderland --stale-nonce=1 >stale.log 2>&1"
ready "coturn (stale nonces) on 127.0.0.1:3482" 10 "$S" binding stun:127.0.0.1:3482 --rto 50 --retries 2
"$S" turn turn:127.0.0.1:3482 -u alice -p wonderland --count 50 --interval 60 --json >s.json 2>/dev/null ||
  fail "stale nonce: exit $?"
jq -e '[.trace[].response] | index("438 Stale nonce") != null and last == "success"' s.json >/dev/null ||
  fail "stale nonce: $(jq -c '[.trace[].response]' s.json)"
pass "438 Stale Nonce: $(jq -r '[.trace[] | "\(.request) \(.response)"] | join(", ")' s.json)"

# A stream as fast as the path takes it (--interval 0), bounded by --count. A burst of 100 small
# packets fits in every socket buffer on the way, so all of them must come back, through a
# channel and through Send indications.
for via in --channel ""; do
  "$S" turn turn:127.0.0.1 -u alice -p wonderland --count 100 --interval 0 --size 100 $via \
    --json >burst.json 2>/dev/null || fail "burst ${via:-(Send)}: exit $?"
  jq -e '.sent == 100 and .received == 100 and .loss == 0 and .seconds < 5' burst.json >/dev/null ||
    fail "burst ${via:-(Send)}: $(jq -c 'del(.trace)' burst.json)"
done
# 3000 packets of 1000 bytes overflow buffers on loopback (how many come back depends on the
# load of the machine: 10 % to 95 % here), so the figures are checked against each other: all
# sent in far less than the 60 s the default 20 ms interval would take, and kbit/s and loss as
# the counts make them.
"$S" turn turn:127.0.0.1 -u alice -p wonderland --count 3000 --interval 0 --size 1000 --channel \
  --json >st.json 2>/dev/null || fail "stream: exit $?"
jq -e '.sent == 3000 and .received > 0 and .received <= .sent and .seconds > 0 and .seconds < 10
       and .via == "ChannelData"
       and ((.kbps - .received * 8 / .seconds) | fabs) <= 0.01 * .kbps + 1
       and ((.loss - 100 * (.sent - .received) / .sent) | fabs) < 0.001' st.json >/dev/null ||
  fail "stream: $(jq -c 'del(.trace)' st.json)"
pass "stream: bursts of 100 all back; $(jq -r '"\(.received)/\(.sent) back in \(.seconds) s, \(.kbps) kbit/s"' st.json)"

# A bounded load: 200 allocations held at once, then released.
set +e; "$S" turn turn:127.0.0.1:3480 --secret s3cret --load 200 -t 30 --json -q >l.json; RC=$?; set -e
expect_rc 0 "load: $(jq -c .load l.json 2>/dev/null)"
jq -e '.load.allocated == 200 and .load.perSecond > 0' l.json >/dev/null || fail "load: $(cat l.json)"
pass "load: $(jq -r '"\(.load.allocated) allocations in \(.load.seconds) s, p95 \(.load.allocateMs.p95) ms"' l.json)"

# A third coturn for limits and names: its certificate is for turn.kms.test only (not localhost,
# not 127.0.0.1), it grants lifetimes up to 900 s, 4 allocations per user, and relays from ports
# 30000-30100, below the kernel's ephemeral range, so a rule for them touches nothing else.
# coturn charges a UDP client's quota until the session times out, even after Refresh 0, so
# each check below runs as a user of its own: alice TLS, dave --lifetime, erin exit 6, frank
# --events, carol --load.
openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes -keyout other-key.pem \
  -out other.pem -days 2 -subj /CN=turn.kms.test -addext subjectAltName=DNS:turn.kms.test 2>/dev/null
bg limits sh -c "exec turnserver -n --listening-ip=127.0.0.1 --relay-ip=127.0.0.1 --no-dtls --no-cli \
  --allow-loopback-peers --cert=other.pem --pkey=other-key.pem --realm=kms.test --log-file=stdout \
  --listening-port=3484 --tls-listening-port=5354 --lt-cred-mech --user=alice:wonderland \
  --user=carol:looking --user=dave:d4ve --user=erin:3rin --user=frank:fr4nk --user-quota=4 --max-allocate-lifetime=900 --min-port=30000 --max-port=30100 >limits.log 2>&1"
ready "coturn (limits) on 127.0.0.1:3484" 10 "$S" binding stun:127.0.0.1:3484 --rto 50 --retries 2
ready "coturn's TLS listener on 5354" 10 "$S" binding stuns:127.0.0.1:5354 --insecure --rto 50

# A certificate that is trusted (--ca) but names another host: 5, naming both sides of the
# mismatch, by host name and by IP address, as text and as JSON; no allocation was attempted.
set +e; "$S" binding stuns:localhost:5354 --ca other.pem >mm.out 2>mm.err; RC=$?; set -e
expect_rc 5 "stuns:localhost with a certificate for turn.kms.test"
grep -qF "certificate of 127.0.0.1:5354 is for DNS:turn.kms.test, not localhost (hostname mismatch" mm.err ||
  fail "hostname mismatch message: $(cat mm.err)"
set +e; "$S" turn turns:127.0.0.1:5354 --ca other.pem -u alice -p wonderland --json >mm.json 2>mm.err; RC=$?; set -e
expect_rc 5 "turns:127.0.0.1 with a certificate for turn.kms.test"
jq -se 'length == 1 and (.[0].error | test("is for DNS:turn.kms.test, not 127.0.0.1 \\(IP address mismatch"))' mm.json >/dev/null ||
  fail "IP mismatch, --json: $(cat mm.json)"
grep -q "IP address mismatch" mm.err || fail "IP mismatch message: $(cat mm.err)"
no_secret wonderland mm.json mm.err
# --insecure: the same servers work, and every output says the certificate was not checked.
"$S" binding stuns:localhost:5354 --insecure >ins.txt 2>&1 || fail "binding --insecure: exit $?"
grep -q "certificate NOT verified (--insecure)" ins.txt || fail "binding --insecure, text: $(cat ins.txt)"
"$S" binding stuns:localhost:5354 --insecure --json >ins.json 2>/dev/null || fail "binding --insecure --json: exit $?"
jq -e '.transport == "tls" and (.tls | test("certificate NOT verified \\(--insecure\\)")) and (.mapped | startswith("127.0.0.1:"))' \
  ins.json >/dev/null || fail "binding --insecure --json: $(cat ins.json)"
"$S" turn turns:127.0.0.1:5354 --insecure -u alice -p wonderland --count 3 --interval 5 >ins.txt 2>&1 ||
  fail "turn --insecure: exit $?"
grep -q "certificate NOT verified (--insecure)" ins.txt || fail "turn --insecure, text: $(cat ins.txt)"
"$S" turn turns:127.0.0.1:5354 --insecure -u alice -p wonderland --count 3 --interval 5 --json >ins.json 2>/dev/null ||
  fail "turn --insecure --json: exit $?"
jq -e '.transport == "tls" and (.tls | test("certificate NOT verified \\(--insecure\\)")) and .received == 3' \
  ins.json >/dev/null || fail "turn --insecure --json: $(jq -c 'del(.trace)' ins.json)"
pass "a certificate for another name exits 5 ($(cut -c11-95 mm.err)...); --insecure works and says so"

# --lifetime: what the server granted comes back, in the result and in the Allocate's step:
# asked for, when coturn allows it; its --max-allocate-lifetime when more is asked for; RFC
# 8656's 600 s floor below that (coturn raises shorter requests to its default).
for want in "700 700" "3000 900" "60 600"; do
  read -r asked granted <<<"$want"
  "$S" turn turn:127.0.0.1:3484 -u dave -p d4ve --lifetime "$asked" --count 1 --json >lt.json 2>/dev/null ||
    fail "--lifetime $asked: exit $?"
  jq -e --argjson g "$granted" '.lifetime == $g and ([.trace[] | select(.request == "Allocate" and .response == "success") | .lifetime] == [$g])' \
    lt.json >/dev/null || fail "--lifetime $asked: expected $granted, got $(jq -c '[.lifetime, [.trace[] | {request, lifetime}]]' lt.json)"
done
"$S" turn turn:127.0.0.1:3484 -u dave -p d4ve --lifetime 3000 --count 1 2>lt.err >lt.out || fail "--lifetime (text): exit $?"
grep -q "lifetime 900" lt.err && grep -q "lifetime (s): 900" lt.out || fail "--lifetime 3000 (text): $(cat lt.out lt.err)"
pass "--lifetime: 700 granted as asked, 3000 capped to 900, 60 raised to 600"

# Nothing back through the relay: 6, with the reason, as text and JSON. To a port where nothing
# echoes, and to our own second socket when a rule drops what reaches the relay's ports.
set +e; "$S" turn turn:127.0.0.1:3484 -u erin -p 3rin --peer 127.0.0.1:4999 --count 5 --interval 5 \
  --json >n6.json 2>n6.err; RC=$?; set -e
expect_rc 6 "a peer that echoes nothing"
jq -e '.sent == 5 and .received == 0 and .loss == 100 and (.error | test("no packet came back through the relay 127.0.0.1:30[0-9]+ from 127.0.0.1:4999"))' \
  n6.json >/dev/null || fail "silent peer: $(jq -c 'del(.trace)' n6.json)"
grep -q "kms-stun: no packet came back through the relay" n6.err || fail "silent peer message: $(cat n6.err)"
iptables -A INPUT -p udp --dport 30000:30100 -j DROP
set +e; "$S" turn turn:127.0.0.1:3484 -u erin -p 3rin --count 5 --interval 5 --json >n6b.json 2>n6b.err; RC=$?; set -e
iptables -D INPUT -p udp --dport 30000:30100 -j DROP
expect_rc 6 "a relay whose incoming traffic is dropped"
jq -e '.error | test("never came back as a Data indication")' n6b.json >/dev/null || fail "dropped relay: $(jq -c 'del(.trace)' n6b.json)"
grep -q "never came back" n6b.err || fail "dropped relay message: $(cat n6b.err)"
pass "nothing back through the relay exits 6: $(jq -r .error n6.json)"

# --events: one turn-step line per request, the same as the trace, and no password in them.
"$S" turn turn:127.0.0.1:3484 -u frank -p fr4nk --channel --count 2 --interval 5 --json \
  --events tev.jsonl >tev.json 2>/dev/null || fail "turn --events: exit $?"
jq -se --slurpfile r tev.json 'all(.type == "turn-step" and (.timestamp | type) == "number")
        and (map(del(.type, .timestamp)) == $r[0].trace)
        and (map(.request) == ["Allocate", "Allocate", "CreatePermission", "ChannelBind", "Refresh"])' tev.jsonl >/dev/null ||
  fail "turn events: $(cat tev.jsonl)"
no_secret fr4nk tev.jsonl
pass "turn --events: $(jq -sr 'map("\(.step) \(.request) \(.response)") | join(", ")' tev.jsonl)"

# A partial --load: 4 allocations per user, so of the first allocation and 6 more, 3 more are
# made and 3 refused with 486. 5 (not every allocation made), with the counts and the reason.
set +e; "$S" turn turn:127.0.0.1:3484 -u carol -p looking --load 6 --json >pl.json 2>pl.err; RC=$?; set -e
expect_rc 5 "a --load that the user quota cuts short"
jq -e '.load.requested == 6 and .load.allocated == 3 and .load.failed == {"486 Allocation Quota Reached": 3}
       and (.error == "3 of 6 --load allocations made, 3 failed: 486 Allocation Quota Reached (3)")' pl.json >/dev/null ||
  fail "partial load: $(jq -c '{load, error}' pl.json)"
grep -qF "kms-stun: 3 of 6 --load allocations made, 3 failed: 486 Allocation Quota Reached (3)" pl.err ||
  fail "partial load message: $(cat pl.err)"
pass "partial --load exits 5: $(jq -r .error pl.json)"

# No server: 4.
set +e; "$S" turn turn:127.0.0.1:3999 -u a -p b --rto 50 --retries 2 2>/dev/null >/dev/null; RC=$?; set -e
expect_rc 4 "no TURN server"
pass "kms-stun turn against coturn"
