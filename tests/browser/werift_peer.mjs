// werift (an independent TypeScript WebRTC stack that routes received RTP by the SSRCs and RIDs
// of the remote SDP) against kms-call, in the caller's network namespace, on 127.0.0.1 only.
// Usage: node werift_peer.mjs --kms PATH --role offer|answer --dir DIR [--seconds N] [--videos K]
//   [--kms-args JSON-ARRAY] [--kms-arg ARG]... [--require-mid] [--no-audio]
// --role is the side kms-call plays; werift plays the other. werift sends K VP8 video tracks, each
// encoded by its own gst-launch-1.0 into a UDP socket on 127.0.0.1 and written into a werift
// track, and receives whatever kms-call sends (when werift offers: an audio m-line receiving,
// unless --no-audio).
// Extra kms-call arguments: --kms-args '["--send","test:video"]' and/or repeated --kms-arg X.
// Prints one JSON line: kms-call's SDP (its a=ssrc/msid/extmap lines per m-line), werift's received
// packets per m-line (routed to a track, and as they came off the transport, with the header
// extensions seen), kms-call's exit status and last per-SSRC stats. Exits 0 only when media flowed
// both ways: every m-line on which kms-call sends and werift receives delivered packets to its
// werift track, and kms-call decoded frames of every video track werift sent on an accepted m-line.
// With --require-mid the MID header extension must also be negotiated on every m-line and carry
// that m-line's mid on every packet. Exit 1: media did not flow; 3: this harness failed.
import { spawn, execFileSync } from 'node:child_process';
import { createSocket } from 'node:dgram';
import { closeSync, constants as fsc, existsSync, mkdirSync, openSync, readFileSync, writeFileSync, writeSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';
import {
  MediaStreamTrack, RTCPeerConnection, RTP_EXTENSION_URI, useOPUS, usePCMU, useSdesMid, useVP8,
} from 'werift';

// ---- arguments
const argv = process.argv.slice(2);
const opt = { kmsArgs: [] };
for (let i = 0; i < argv.length; i++) {
  const a = argv[i];
  const value = () => { if (i + 1 >= argv.length) usage(`${a} needs a value`); return argv[++i]; };
  switch (a) {
    case '--kms': opt.kms = value(); break;
    case '--role': opt.role = value(); break;
    case '--dir': opt.dir = value(); break;
    case '--seconds': opt.seconds = Number(value()); break;
    case '--videos': opt.videos = Number(value()); break;
    case '--kms-args': {
      const v = JSON.parse(value());
      if (!Array.isArray(v)) usage('--kms-args takes a JSON array of strings');
      opt.kmsArgs.push(...v.map(String));
      break;
    }
    case '--kms-arg': opt.kmsArgs.push(value()); break;
    case '--require-mid': opt.requireMid = true; break;
    case '--no-audio': opt.noAudio = true; break;
    default: usage(`unknown argument ${a}`);
  }
}
function usage(msg) {
  console.error(`werift_peer: ${msg}\nusage: node werift_peer.mjs --kms PATH --role offer|answer --dir DIR` +
    ' [--seconds N] [--videos K] [--kms-args JSON] [--kms-arg ARG]... [--require-mid] [--no-audio]');
  process.exit(3);
}
if (!opt.kms || !['offer', 'answer'].includes(opt.role) || !opt.dir) usage('--kms, --role offer|answer and --dir are needed');
const seconds = opt.seconds ?? 5, videos = opt.videos ?? 1;
if (!(seconds > 0) || !(Number.isInteger(videos) && videos >= 0 && videos <= 4)) usage('bad --seconds or --videos');
// Each run its own files: kms-call must never read a stale description.
const dir = join(opt.dir, `werift-${opt.role}-v${videos}-${process.pid}`);
mkdirSync(dir, { recursive: true });

const LOOPBACK = '127.0.0.1';
const here = dirname(fileURLToPath(import.meta.url));
const weriftVersion = (() => {
  try { return JSON.parse(readFileSync(join(here, 'node_modules/werift/package.json'), 'utf8')).version; }
  catch { return 'unknown'; }
})();
const t0 = Date.now();
const log = process.env.WERIFT_PEER_DEBUG ? (...a) => console.error(`[werift_peer +${Date.now() - t0} ms]`, ...a) : () => {};
const sleep = ms => new Promise(r => setTimeout(r, ms));
const deadline = (ms, what) => new Promise((_, reject) => setTimeout(() => reject(new Error(`timed out after ${ms} ms: ${what}`)), ms));
const race = (p, ms, what) => Promise.race([p, deadline(ms, what)]);

// ---- what we report
const problems = [];        // why the run is not ok, in words
const notes = [];           // what werift did that is worth knowing, not a failure by itself
const children = new Set();
let kms = null, kmsExit = null, kmsStdout = '', kmsStderr = '';
let pc = null, watchdog = null, finishing = false;

function killChildren() {
  for (const c of children) if (c.exitCode === null && c.signalCode === null) { try { c.kill('SIGKILL'); } catch { /* gone */ } }
}
process.on('exit', killChildren);
for (const sig of ['SIGINT', 'SIGTERM']) process.on(sig, () => { killChildren(); process.exit(130); });
process.on('uncaughtException', e => {
  log('uncaught', e);
  problems.push(`werift threw: ${e?.stack?.split('\n').slice(0, 3).join(' | ') ?? e}`);
});
process.on('unhandledRejection', e => {
  log('unhandled rejection', e);
  notes.push(`unhandled rejection in werift: ${e?.message ?? e}`);
});

// ---- SDP, as text: the m-lines with the lines this test is about
function sdpSummary(sdp) {
  if (!sdp) return null;
  const lines = sdp.split(/\r?\n/).filter(Boolean);
  const session = { bundle: null, msidSemantic: null }, media = [];
  let cur = null;
  for (const l of lines) {
    if (l.startsWith('m=')) {
      const [kind, port, proto, ...pts] = l.slice(2).split(' ');
      cur = { kind, port: Number(port), proto, pts, bundleOnly: false, mid: null, direction: 'sendrecv',
        ssrc: [], ssrcGroup: [], msid: [], extmap: [], rid: [], simulcast: [], codecs: [] };
      media.push(cur);
      continue;
    }
    if (!cur) {
      if (l.startsWith('a=group:BUNDLE')) session.bundle = l.slice('a=group:BUNDLE'.length).trim().split(' ');
      if (l.startsWith('a=msid-semantic')) session.msidSemantic = l.slice(2);
      continue;
    }
    if (l.startsWith('a=mid:')) cur.mid = l.slice(6);
    else if (l === 'a=bundle-only') cur.bundleOnly = true;
    else if (/^a=(sendrecv|sendonly|recvonly|inactive)$/.test(l)) cur.direction = l.slice(2);
    else if (l.startsWith('a=ssrc-group:')) cur.ssrcGroup.push(l.slice(2));
    else if (l.startsWith('a=ssrc:')) cur.ssrc.push(l.slice(2));
    else if (l.startsWith('a=msid:')) cur.msid.push(l.slice(2));
    else if (l.startsWith('a=extmap:')) cur.extmap.push(l.slice(2));
    else if (l.startsWith('a=rid:')) cur.rid.push(l.slice(2));
    else if (l.startsWith('a=simulcast:')) cur.simulcast.push(l.slice(2));
    else if (l.startsWith('a=rtpmap:')) cur.codecs.push(l.slice(9));
  }
  return { session, media };
}
// id -> uri of an m-line's a=extmap lines
const extmapOf = m => Object.fromEntries((m?.extmap ?? []).map(e => {
  const [, id, uri] = e.match(/^extmap:(\d+)(?:\/\S+)?\s+(\S+)/) ?? [];
  return [Number(id), uri];
}).filter(([id]) => id));
const ssrcsOf = m => [...new Set((m?.ssrc ?? []).map(s => Number(s.split(/[: ]/)[1])))];
const sends = dir => dir === 'sendrecv' || dir === 'sendonly';
const receives = dir => dir === 'sendrecv' || dir === 'recvonly';

// A header extension's payload as text when its URI says it is one, else hex.
const TEXT_EXTENSIONS = new Set([RTP_EXTENSION_URI.sdesMid, RTP_EXTENSION_URI.sdesRTPStreamID, RTP_EXTENSION_URI.repairedRtpStreamId]);
function noteExtensions(table, header, idToUri) {
  for (const e of header.extensions ?? []) {
    const uri = idToUri[e.id] ?? null;
    const v = uri && TEXT_EXTENSIONS.has(uri) ? e.payload.toString('utf8') : e.payload.toString('hex');
    let t = table[e.id];
    if (!t) {
      t = table[e.id] = { uri, packets: 0, values: [], distinct: 0 };
      Object.defineProperty(t, 'seen', { value: new Set() });  // (not printed)
    }
    t.packets++;
    if (!t.seen.has(v) && t.seen.size < 65536) {
      t.seen.add(v);
      t.distinct = t.seen.size;
      if (t.values.length < 4) t.values.push(v);  // the first few, for the report
    }
  }
}

// ---- werift
function newPeer() {
  const p = new RTCPeerConnection({
    iceServers: [],                      // no STUN or TURN server (and see quietIce below)
    iceUseIpv4: true, iceUseIpv6: false, iceUseTcp: false,
    // werift leaves internal interfaces out of its host candidates; loopback is named here, and
    // its sockets are bound to it.
    iceAdditionalHostAddresses: [LOOPBACK],
    iceInterfaceAddresses: { udp4: LOOPBACK },
    iceFilterCandidatePair: pair => pair.remoteCandidate?.host === LOOPBACK,
    codecs: { video: [useVP8()], audio: [useOPUS(), usePCMU()] },
    // werift negotiates only the header extensions listed here (default: none).
    headerExtensions: { video: [useSdesMid()], audio: [useSdesMid()] },
  });
  return p;
}
// werift's ICE agent falls back to stun.l.google.com:19302 when no STUN server is configured, and
// gathers every non-internal interface: before any gathering, each agent gets no STUN server and
// 127.0.0.1 as its only host address. (Its own fields, werift 0.24: Connection.stunServer and
// Connection.getCandidatePromises.)
function quietIce(p) {
  for (const t of p.iceTransports) {
    const c = t.connection;
    if (!c || c.__kmsQuiet) continue;
    // Without these fields (another werift) the agent would ask Google's STUN server: refuse to
    // run rather than rely on the test's private network namespace alone.
    if (!('stunServer' in c) || typeof c.getCandidatePromises !== 'function')
      throw new Error('werift ICE internals changed: cannot keep it off public STUN servers');
    c.stunServer = undefined;
    const gatherOn = c.getCandidatePromises.bind(c);
    c.getCandidatePromises = (addresses, timeout) => gatherOn(addresses.filter(a => a === LOOPBACK), timeout);
    c.__kmsQuiet = true;
    log('ICE agent: no STUN server, host candidates on', LOOPBACK, 'only');
  }
  if (!p.iceTransports.length) throw new Error('werift made no ICE transport before gathering');
}
function waitGathered(p, ms) {
  return race(new Promise(r => {
    if (p.iceGatheringState === 'complete') return r();
    p.iceGatheringStateChange.subscribe(s => s === 'complete' && r());
  }), ms, 'werift ICE gathering');
}

// What werift receives: per transceiver (routed by werift to a track), and per SSRC as it comes
// off the DTLS transport, before werift's router.
const rx = { bySsrc: {}, tracks: new Map() };   // tracks: transceiver -> {packets, bySsrc, extensions}
let remoteExt = {};                              // id -> uri from kms-call's SDP (BUNDLE: shared ids)
const tapped = new Set();
const ssrcEntry = h => rx.bySsrc[h.ssrc] ??= { packets: 0, payloadType: h.payloadType, routed: 0, extensions: {} };
function tapTransports(p) {
  for (const d of p.dtlsTransports) {
    if (tapped.has(d)) continue;
    tapped.add(d);
    d.onRtp.subscribe(rtp => {
      const s = ssrcEntry(rtp.header);
      s.packets++;
      noteExtensions(s.extensions, rtp.header, remoteExt);
    });
  }
}
function tapTrack(transceiver, track) {
  const r = rx.tracks.get(transceiver);
  if (!track || r.seen.has(track)) return;
  r.seen.add(track);
  track.onReceiveRtp.subscribe(rtp => {
    r.packets++;
    r.bySsrc[rtp.header.ssrc] = (r.bySsrc[rtp.header.ssrc] ?? 0) + 1;
    ssrcEntry(rtp.header).routed++;  // (werift's router may run before the transport tap)
    const ids = Object.fromEntries((transceiver.headerExtensions ?? []).map(e => [e.id, e.uri]));
    noteExtensions(r.extensions, rtp.header, { ...remoteExt, ...ids });
  });
}
function tapReceivers(p) {
  for (const t of p.getTransceivers()) {
    if (!rx.tracks.has(t)) {
      rx.tracks.set(t, { packets: 0, bySsrc: {}, extensions: {}, seen: new Set() });
      t.onTrack.subscribe(track => tapTrack(t, track));
    }
    for (const track of t.receiver.tracks ?? []) tapTrack(t, track);
  }
}

// What werift sends: K local tracks, each fed by a VP8 encoder through a UDP socket on loopback.
const senders = [];
async function makeSources() {
  for (let i = 0; i < videos; i++) {
    const track = new MediaStreamTrack({ kind: 'video' });
    const sock = createSocket('udp4');
    await new Promise((r, j) => { sock.once('error', j); sock.bind(0, LOOPBACK, r); });
    const s = { index: i, track, sock, port: sock.address().port, packetsIn: 0, packetsWritten: 0, gst: null, transceiver: null };
    sock.on('message', msg => {
      s.packetsIn++;
      if (pc?.connectionState !== 'connected') return;
      try { track.writeRtp(msg); s.packetsWritten++; } catch (e) { notes.push(`writeRtp: ${e.message}`); }
    });
    senders.push(s);
  }
}
function startEncoders() {
  for (const s of senders) {
    if (s.gst) continue;
    // A keyframe every 15 frames: kms-call's decoder starts on the next one, whenever media begins.
    const pattern = ['smpte', 'ball', 'snow', 'pinwheel'][s.index];
    s.gst = spawn('gst-launch-1.0', ['-q',
      'videotestsrc', 'is-live=true', `pattern=${pattern}`, '!',
      'video/x-raw,width=320,height=240,framerate=30/1', '!',
      'vp8enc', 'deadline=1', 'keyframe-max-dist=15', 'target-bitrate=400000', '!',
      'rtpvp8pay', 'pt=96', 'mtu=1200', 'picture-id-mode=15-bit', '!',
      'udpsink', `host=${LOOPBACK}`, `port=${s.port}`, `bind-address=${LOOPBACK}`, 'sync=false', 'async=false'],
    { stdio: ['ignore', 'ignore', 'pipe'] });
    children.add(s.gst);
    s.gstErr = '';
    s.gst.stderr.on('data', d => { s.gstErr = (s.gstErr + d).slice(-500); });
    s.gst.on('error', e => problems.push(`gst-launch-1.0 for video ${s.index}: ${e.message}`));
  }
}

// ---- kms-call
const events = join(dir, 'kms.jsonl');
function runKms(sdpArgs) {
  const a = [opt.role, '--bind', LOOPBACK, '--sdp-format', 'json', '-t', String(seconds), '--json',
    '--events', events, '--stats-interval', '0.5', '--sdp-timeout', '20', ...opt.kmsArgs, ...sdpArgs];
  kms = spawn(opt.kms, a, { stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(kms);
  kms.stdout.on('data', d => { kmsStdout += d; });
  kms.stderr.on('data', d => { kmsStderr = (kmsStderr + d).slice(-4000); });
  const exited = new Promise(r => kms.on('exit', (code, sig) => { kmsExit = code ?? `signal ${sig}`; r(kmsExit); }));
  kms.on('error', e => problems.push(`kms-call did not start: ${e.message}`));
  return { argv: a, exited };
}
async function waitFile(path, ms) {
  const end = Date.now() + ms;
  while (Date.now() < end) {
    if (existsSync(path)) { const t = readFileSync(path, 'utf8'); if (t.endsWith('\n')) return t.trim(); }
    if (kmsExit !== null) throw new Error(`kms-call exited (${kmsExit}) without writing ${path}`);
    await sleep(50);
  }
  throw new Error(`no description in ${path} after ${ms} ms`);
}
// Writes into a fifo without ever blocking: the open fails (ENXIO) until kms-call reads it.
async function writeFifo(path, text, ms) {
  const end = Date.now() + ms;
  for (;;) {
    try {
      const fd = openSync(path, fsc.O_WRONLY | fsc.O_NONBLOCK);
      try { writeSync(fd, text); } finally { closeSync(fd); }
      return;
    } catch (e) {
      if (e.code !== 'ENXIO' || Date.now() > end || kmsExit !== null) throw new Error(`writing ${path}: ${e.code ?? e.message}`);
      await sleep(50);
    }
  }
}

// ---- the call
const result = { role: opt.role, videos, seconds, werift: { version: weriftVersion } };
let kmsSdp = null, weriftSdp = null, kmsArgv = null;

async function call() {
  await makeSources();
  pc = newPeer();
  pc.connectionStateChange.subscribe(s => {
    (result.werift.states ??= []).push(s);
    if (s === 'connected') startEncoders();
  });
  const addOwn = () => {
    for (const s of senders) s.transceiver = pc.addTransceiver(s.track, { direction: 'sendrecv' });
  };
  let exited;
  if (opt.role === 'answer') {
    // werift offers: K video m-lines sending and receiving, an audio one receiving.
    addOwn();
    if (!opt.noAudio) pc.addTransceiver('audio', { direction: 'recvonly' });
    const offer = await pc.createOffer();
    quietIce(pc);
    await pc.setLocalDescription(offer);
    await waitGathered(pc, 10000);
    weriftSdp = pc.localDescription.sdp;
    writeFileSync(join(dir, 'offer.json'), JSON.stringify({ type: 'offer', sdp: weriftSdp }) + '\n');
    ({ argv: kmsArgv, exited } = runKms(['--sdp-in', join(dir, 'offer.json'), '--sdp-out', join(dir, 'answer.json')]));
    const answer = JSON.parse(await waitFile(join(dir, 'answer.json'), 20000));
    kmsSdp = answer.sdp;
    remoteExt = Object.assign({}, ...sdpSummary(kmsSdp).media.map(extmapOf));
    try { await pc.setRemoteDescription(answer); }
    catch (e) { problems.push(`werift refused kms-call's answer: ${e.message}`); return { exited }; }
  } else {
    // kms-call offers.
    execFileSync('mkfifo', [join(dir, 'answer.fifo')]);
    ({ argv: kmsArgv, exited } = runKms(['--sdp-out', join(dir, 'offer.json'), '--sdp-in', join(dir, 'answer.fifo')]));
    const offer = JSON.parse(await waitFile(join(dir, 'offer.json'), 20000));
    kmsSdp = offer.sdp;
    remoteExt = Object.assign({}, ...sdpSummary(kmsSdp).media.map(extmapOf));
    try { await pc.setRemoteDescription(offer); }
    catch (e) { problems.push(`werift refused kms-call's offer: ${e.message}`); return { exited }; }
    // Then each track takes one of the video transceivers the offer made, in m-line order
    // (transceivers added before would each keep an ICE transport of their own when the offer has
    // fewer video m-lines, and werift's connection state would end 'failed').
    for (const s of senders) {
      const free = pc.getTransceivers().find(t => t.kind === 'video' && t.mid != null && !t.stopped && !t.sender.track);
      if (!free) { notes.push(`kms-call's offer has no video m-line left for werift's video ${s.index}`); continue; }
      const sender = pc.addTrack(s.track);
      s.transceiver = pc.getTransceivers().find(t => t.sender === sender);
    }
    const answer = await pc.createAnswer();
    quietIce(pc);
    await pc.setLocalDescription(answer);
    await waitGathered(pc, 10000);
    weriftSdp = pc.localDescription.sdp;
    await writeFifo(join(dir, 'answer.fifo'), JSON.stringify({ type: 'answer', sdp: weriftSdp }) + '\n', 10000);
  }
  tapTransports(pc);
  tapReceivers(pc);
  try {
    await race(new Promise((r, j) => {
      if (pc.connectionState === 'connected') return r();
      pc.connectionStateChange.subscribe(s => {
        if (s === 'connected') r();
        if (s === 'failed') j(new Error('werift: connection failed'));
      });
      exited.then(code => j(new Error(`kms-call exited (${code}) before werift connected`)));
    }), 20000, 'werift to connect');
  } catch (e) { problems.push(e.message); }
  tapReceivers(pc);  // tracks werift made once media began
  return { exited };  // (an object: an async function would wait for a promise it returned)
}

let exited = null;
log('start', opt.role, videos);
watchdog = setTimeout(() => { problems.push(`harness deadline of ${seconds + 60} s`); finish(3); }, (seconds + 60) * 1000);
try {
  ({ exited } = await call());
} catch (e) {
  problems.push(`harness: ${e.message}`);
}
log('call set up; waiting for kms-call', problems);
if (exited) {
  try { await race(exited, (seconds + 25) * 1000, 'kms-call to end'); }
  catch (e) { problems.push(e.message); }
}
await finish();

// ---- the verdict
async function finish(forced) {
  if (finishing) return;
  finishing = true;
  log('finish', forced, kmsExit);
  clearTimeout(watchdog);
  for (const s of senders) {
    if (s.gst && s.gst.exitCode === null) s.gst.kill('SIGKILL');
    try { s.sock.close(); } catch { /* closed */ }
  }
  if (kms && kmsExit === null) { kms.kill('SIGKILL'); problems.push('kms-call was killed'); }
  try { await verdict(forced); }
  catch (e) {
    killChildren();
    console.log(JSON.stringify({ ...result, ok: false, problems: [...problems, `harness: ${e.stack}`], kmsExit }));
    process.exit(3);
  }
}
async function verdict(forced) {
  log('verdict');

  const kSum = sdpSummary(kmsSdp), wSum = sdpSummary(weriftSdp);
  // kms-call's events: its last stats per SSRC, its track events, its --json result.
  let evs = [];
  try {
    evs = readFileSync(events, 'utf8').split('\n').filter(Boolean)
      .map(l => { try { return JSON.parse(l); } catch { return null; } }).filter(Boolean);
  } catch { /* no events */ }
  const lastIn = {};
  for (const e of evs) if (e.type === 'inbound-rtp') lastIn[e.ssrc] = e;
  const kmsIn = Object.values(lastIn).map(e => ({
    ssrc: e.ssrc, kind: e.kind, ...(e.mid !== undefined ? { mid: e.mid } : {}),
    packetsReceived: e.packetsReceived ?? 0,
    ...(e.kind === 'video' ? { framesDecoded: e.framesDecoded ?? 0 } : { audioFramesDecoded: e.audioFramesDecoded ?? 0 }),
  }));
  for (const e of kmsIn)
    if (e.kind === 'video' && e.framesDecoded > e.packetsReceived)
      notes.push(`kms-call reports ${e.framesDecoded} frames decoded for SSRC ${e.ssrc} from ` +
        `${e.packetsReceived} packets: not a count of that stream alone`);
  let kmsJson = null;
  try { kmsJson = JSON.parse(kmsStdout.trim().split('\n').pop()); } catch { /* none */ }

  // Per m-line, from werift's side.
  const mlines = [];
  const transceivers = pc ? pc.getTransceivers() : [];
  (kSum?.media ?? []).forEach((km, i) => {
    if (km.kind === 'application') return;
    const t = transceivers.find(x => x.mid != null && x.mid === km.mid) ?? transceivers.find(x => x.mLineIndex === i);
    const r = t && rx.tracks.get(t);
    const extIds = extmapOf(km);
    const midId = Number(Object.keys(extIds).find(id => extIds[id] === RTP_EXTENSION_URI.sdesMid)) || null;
    const weriftExt = Object.fromEntries((t?.headerExtensions ?? []).map(e => [e.id, e.uri]));
    const wm = wSum?.media?.[i];
    // kms-call's direction for this m-line as the peer sees it: its SDP line is its own view.
    // (Port 0 rejects an m-line unless a=bundle-only says it rides on the BUNDLE transport.)
    const kmsDir = km.port === 0 && !km.bundleOnly ? 'inactive' : km.direction;
    const weriftDir = t?.currentDirection ?? (wm ? wm.direction : null);
    const own = senders.find(s => s.transceiver === t);
    mlines.push({
      index: i, mid: km.mid, kind: km.kind, kmsDirection: kmsDir, weriftDirection: weriftDir ?? null,
      kmsSdp: { ssrc: km.ssrc, ssrcGroup: km.ssrcGroup, msid: km.msid, extmap: km.extmap, rid: km.rid },
      kmsSsrcs: ssrcsOf(km),
      midExtensionId: midId, weriftNegotiatedExtensions: weriftExt,
      received: r ? { packets: r.packets, bySsrc: r.bySsrc, extensions: r.extensions } : null,
      midsSeen: r ? (Object.entries(r.extensions).filter(([id]) => Number(id) === midId).flatMap(([, v]) => v.values)) : [],
      weriftSends: own ? { video: own.index, ssrc: own.transceiver.sender.ssrc,
        packetsFromEncoder: own.packetsIn, packetsWritten: own.packetsWritten } : null,
    });
  });
  // Packets werift decrypted but routed to no track (werift routes by a=ssrc / a=rid only).
  const transport = Object.fromEntries(Object.entries(rx.bySsrc).map(([ssrc, s]) => {
    const midExt = Object.values(s.extensions).find(e => e.uri === RTP_EXTENSION_URI.sdesMid);
    return [ssrc, { packets: s.packets, routedToTrack: s.routed, payloadType: s.payloadType,
      mid: midExt?.values ?? null, extensions: s.extensions }];
  }));

  // Media both ways?
  const MIN_PACKETS = 20, MIN_FRAMES = 15;
  if (kmsExit !== 0) problems.push(`kms-call exited ${kmsExit}`);
  if (!kSum) problems.push('kms-call wrote no description');
  for (const m of mlines) {
    const kmsSends = sends(m.kmsDirection), weriftRecv = m.weriftDirection && receives(m.weriftDirection);
    if (kmsSends && weriftRecv) {
      const got = m.received?.packets ?? 0;
      if (got < MIN_PACKETS) {
        const all = Object.entries(rx.bySsrc);
        const heard = all.map(([ssrc, x]) => {
          const mids = Object.values(x.extensions).find(e => e.uri === RTP_EXTENSION_URI.sdesMid)?.values;
          return `SSRC ${ssrc} pt ${x.payloadType}${mids ? ` MID ${mids.join('/')}` : ''}: ${x.packets}, ${x.routed} to a track`;
        }).join('; ');
        problems.push(`werift's ${m.kind} track (mid ${m.mid}) got ${got} RTP packets from kms-call; ` +
          (m.kmsSsrcs.length ? `kms-call's m-line has a=ssrc ${m.kmsSsrcs.join(',')}`
            : 'kms-call\'s m-line has no a=ssrc (werift routes by SSRC or RID)') +
          `; werift decrypted ${all.length ? heard : 'no RTP at all'}`);
      }
      const midOk = m.midExtensionId && m.weriftNegotiatedExtensions[m.midExtensionId] === RTP_EXTENSION_URI.sdesMid;
      if (midOk && got) {
        const e = m.received.extensions[m.midExtensionId];
        if (!e || e.packets !== got || e.distinct !== 1 || e.values[0] !== m.mid)
          problems.push(`MID header extension (id ${m.midExtensionId}) on mid ${m.mid}: ` +
            (e ? `in ${e.packets} of ${got} packets, values ${JSON.stringify(e.values)}` : `in none of ${got} packets`));
      } else if (!midOk && opt.requireMid) {
        problems.push(`MID header extension not negotiated on mid ${m.mid} (kms-call's extmap: ${JSON.stringify(m.kmsSdp.extmap)})`);
      }
    }
    if (m.weriftSends && receives(m.kmsDirection) && m.weriftDirection && sends(m.weriftDirection)) {
      const inb = lastIn[m.weriftSends.ssrc];
      if (!inb || (inb.framesDecoded ?? 0) < MIN_FRAMES)
        problems.push(`kms-call decoded ${inb?.framesDecoded ?? 0} frames of werift's video ${m.weriftSends.video} ` +
          `(ssrc ${m.weriftSends.ssrc}, mid ${m.mid}; ${m.weriftSends.packetsWritten} packets sent)`);
    }
  }
  for (const s of senders) {
    const m = mlines.find(x => x.weriftSends?.video === s.index);
    if (!m || !sends(m.weriftDirection ?? '') || !receives(m.kmsDirection))
      problems.push(`werift's video ${s.index} was not negotiated to kms-call` +
        (m ? ` (mid ${m.mid}: werift ${m.weriftDirection}, kms-call ${m.kmsDirection})` : ' (no m-line)'));
    if (s.gst && s.packetsIn === 0) problems.push(`encoder ${s.index} produced nothing: ${s.gstErr ?? ''}`);
  }
  if (kSum && !mlines.some(m => sends(m.kmsDirection) && m.weriftDirection && receives(m.weriftDirection)))
    problems.push('no m-line carries media from kms-call to werift');

  Object.assign(result, {
    ok: problems.length === 0,
    problems, notes,
    kmsExit, kmsArgv, kmsResult: kmsJson,
    kmsSdp: kSum && { bundle: kSum.session.bundle, msidSemantic: kSum.session.msidSemantic,
      media: kSum.media.map(m => ({ kind: m.kind, port: m.port, ...(m.bundleOnly ? { bundleOnly: true } : {}),
        mid: m.mid, direction: m.direction, codecs: m.codecs.slice(0, 4), ssrc: m.ssrc, msid: m.msid, extmap: m.extmap })) },
    weriftSdp: wSum && { media: wSum.media.map(m => ({ kind: m.kind, port: m.port, mid: m.mid, direction: m.direction,
      ssrc: m.ssrc.filter(x => / cname:/.test(x)), extmap: m.extmap })) },
    mlines, transport,
    kms: { inbound: kmsIn, tracks: evs.filter(e => e.type === 'track').map(({ type, timestamp, ...e }) => e),
      videoFramesDecoded: kmsJson?.videoFramesDecoded ?? null, audioFramesDecoded: kmsJson?.audioFramesDecoded ?? null,
      stderr: problems.length && kmsStderr.trim() ? kmsStderr.trim().split('\n').slice(-6) : undefined },
    werift: { ...result.werift, connectionState: pc?.connectionState ?? null },
  });
  log('closing');
  try { await race(pc?.close() ?? Promise.resolve(), 2000, 'werift close'); } catch { /* closing is best effort */ }
  log('closed');
  console.log(JSON.stringify(result));
  killChildren();
  process.exit(forced ?? (result.ok ? 0 : 1));
}
