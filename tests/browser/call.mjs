// Drives Debian's Chromium through playwright-core against kms-call, in the caller's network
// namespace. Usage: node call.mjs --kms PATH --role offer|answer --dir DIR [--seconds N]
//   [--codec vp8|vp9|h264] (kms-call's --video-codec; the negotiated codec must be it both ways)
//   [--videos 2] (a camera and a second video track, a canvas.captureStream(), in the browser;
//   two --send video sources in kms-call: each side must decode both of the other's videos)
//   [--dtls-key ecdsa|rsa] (kms-call's; the browser reports the certificate it was shown)
//   [--bytes PATH_TO_KMS_STATS] (the bytes each side says it sent and the other received, per
//   kind, must agree within 5%: the browser's getStats against kms-stats on kms-call's events)
// kms-call --role is the side kms-call plays; the browser plays the other. Prints one JSON line
// with the browser's and kms-call's counts; exits non-zero when media did not flow both ways.
import { chromium } from 'playwright-core';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) =>
  (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const role = args.role, seconds = Number(args.seconds || 4), videos = Number(args.videos || 1);
const dir = join(args.dir, role + (args.codec ? '-' + args.codec : '') + (videos > 1 ? '-v' + videos : ''));  // each run its own files: kms-call must never read a stale one
mkdirSync(dir, { recursive: true });
const deadline = (ms, what) => new Promise((_, reject) =>
  setTimeout(() => reject(new Error(`timed out: ${what}`)), ms));

// --bytes KMS_STATS: what kms-stats reads from kms-call's events against what the browser's
// getStats counted, per kind and direction, once each flow has ended: the browser stops
// sending 2 s before kms-call stops, and is read again after kms-call has gone. Totals, not
// rates at some moment, so no clock or sampling lag of either side matters.
async function cross_check(page) {
  await new Promise(r => setTimeout(r, 800));
  const samples = await page.evaluate('samples');
  const last = samples[samples.length - 1];
  const summary = JSON.parse(execFileSync(args.bytes, ['--events-in', join(dir, `kms-${role}.jsonl`), '--json']));
  // One stream per SSRC the browser sends: its retransmissions (RTX, on an SSRC of their own)
  // count in their media stream, as the browser counts them, not as a stream of their own.
  const sorted = (a) => [...a].sort((x, y) => x - y).join(',');
  const out = {ssrcs: {kms: sorted(summary.inbound.filter(x => x.bytesReceived > 0).map(x => x.ssrc)),
    browser: sorted(last.ssrcs)}};
  for (const kind of ['video', 'audio']) {
    const kms_in = summary.inbound.filter(x => x.kind === kind).reduce((n, x) => n + x.bytesReceived, 0);
    const kms_out = summary.outbound.filter(x => x.kind === kind).reduce((n, x) => n + x.bytesSent, 0);
    out[kind] = { kmsReceived: kms_in, browserSent: last.out[kind], kmsSent: kms_out, browserReceived: last.in[kind] };
    out[kind].received_ratio = +(kms_in / last.out[kind]).toFixed(4);
    out[kind].sent_ratio = +(kms_out / last.in[kind]).toFixed(4);
  }
  return out;
}

// The page: a peer connection with the fake camera and microphone, driven from here.
const page_html = `<!doctype html><meta charset="utf-8"><title>kms browser peer</title><script>
let pc;
// A second video track that moves: a canvas drawn 20 times a second.
function canvasTrack() {
  const c = document.createElement('canvas'); c.width = 320; c.height = 240;
  const g = c.getContext('2d'); let n = 0;
  setInterval(() => { g.fillStyle = '#204080'; g.fillRect(0, 0, 320, 240);
    g.fillStyle = '#f0c020'; g.fillRect((n += 7) % 300, 100, 20, 20); }, 50);
  return c.captureStream(20).getVideoTracks()[0];
}
async function setup() {
  pc = new RTCPeerConnection();
  // Chromium decodes received audio only as playout pulls it: play it (into the fake output).
  pc.ontrack = e => { if (e.track.kind === 'audio') { const a = new Audio(); a.srcObject = e.streams[0] || new MediaStream([e.track]); a.play(); } };
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 320, height: 240}, audio: true});
  if (VIDEOS > 1) stream.addTrack(canvasTrack());
  for (const t of stream.getTracks()) pc.addTrack(t, stream);
}
function gathered() {
  return new Promise(r => { if (pc.iceGatheringState === 'complete') r();
    else pc.addEventListener('icegatheringstatechange', () => pc.iceGatheringState === 'complete' && r()); });
}
async function makeOffer() { await setup(); await pc.setLocalDescription(await pc.createOffer()); await gathered();
  return JSON.stringify({type: 'offer', sdp: pc.localDescription.sdp}); }
async function takeAnswer(json) { await pc.setRemoteDescription(JSON.parse(json)); }
async function makeAnswer(json) { await setup(); await pc.setRemoteDescription(JSON.parse(json));
  await pc.setLocalDescription(await pc.createAnswer()); await gathered();
  return JSON.stringify({type: 'answer', sdp: pc.localDescription.sdp}); }
// --bytes: the byte counters every 200 ms, each with the time it was read (ms since the epoch).
const samples = [];
function stopSending() { for (const s of pc.getSenders()) s.replaceTrack(null); }
function sampleBytes() {
  setInterval(async () => {
    // The time the browser took the figures (RTCStats timestamp), not the time they were
    // asked for: getStats answers some tens of ms later.
    const s = {t: 0, out: {video: 0, audio: 0}, in: {video: 0, audio: 0}, ssrcs: []};
    (await pc.getStats()).forEach(r => {
      if (r.type === 'outbound-rtp') { s.out[r.kind] += r.bytesSent || 0; s.t = r.timestamp;
        if (typeof r.ssrc === 'number' && r.bytesSent > 0) s.ssrcs.push(r.ssrc); }
      if (r.type === 'inbound-rtp') { s.in[r.kind] += r.bytesReceived || 0; s.t = r.timestamp; }
    });
    if (s.t) samples.push(s);
  }, 200);
}
async function counts() {
  const out = {state: pc.connectionState, video: 0, audio: 0, sentFrames: 0, videos: []};
  const report = await pc.getStats();
  report.forEach(s => {
    // The certificate kms-call showed in its DTLS handshake, DER in base64.
    if (s.type === 'transport' && s.remoteCertificateId)
      out.peerCertificate = (report.get(s.remoteCertificateId) || {}).base64Certificate;
    if (s.type === 'inbound-rtp' && s.kind === 'video') {
      out.videos.push({mid: s.mid, framesDecoded: s.framesDecoded || 0});
      out.video = Math.min(...out.videos.map(v => v.framesDecoded));
    }
    // Audio decoded, not packets: samples played out that were not concealment.
    if (s.type === 'inbound-rtp' && s.kind === 'audio')
      out.audio = (s.totalSamplesReceived || 0) - (s.concealedSamples || 0);
    if (s.type === 'outbound-rtp' && s.kind === 'video') out.sentFrames = s.framesEncoded || 0;
  });
  return out;
}
</script>`;

const server = createServer((req, res) => {
  res.setHeader('content-type', 'text/html');
  res.end(page_html.replace('let pc;', `let pc; const VIDEOS = ${videos};`));
});
await new Promise(r => server.listen(0, '127.0.0.1', r));
const url = `http://localhost:${server.address().port}/`;

const browser = await chromium.launch({
  executablePath: '/usr/bin/chromium',
  args: ['--headless', '--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run',
    '--disable-background-networking', '--disable-component-update', '--disable-sync',
    '--use-fake-device-for-media-stream', '--use-fake-ui-for-media-stream',
    '--allow-loopback-in-peer-connection', '--autoplay-policy=no-user-gesture-required'],  // playwright gives it a new empty profile
});
let kms;
let result = {};
try {
  const page = await browser.newPage();
  await page.goto(url);
  const events = join(dir, `kms-${role}.jsonl`);
  const common = ['--bind', '127.0.0.1', '--sdp-format', 'json', '-t', String(seconds), '--events', events,
    '--stats-interval', '0.5', '-q', ...(args.codec ? ['--video-codec', args.codec] : []),
    ...(args['dtls-key'] ? ['--dtls-key', args['dtls-key']] : []),
    ...(videos > 1 ? ['--send', 'test:av', '--send', 'test:video?pattern=ball'] : [])];
  const wait_file = async (path) => {
    for (let i = 0; i < 200; i++) {
      if (existsSync(path)) { const t = readFileSync(path, 'utf8'); if (t.endsWith('\n')) return t.trim(); }
      await new Promise(r => setTimeout(r, 50));
    }
    throw new Error(`no SDP in ${path}`);
  };
  let exited;
  const run = (argv) => {
    kms = spawn(args.kms, argv, { stdio: ['ignore', 'ignore', 'inherit'] });
    exited = new Promise(r => kms.on('exit', code => r(code)));
  };
  if (role === 'answer') {
    const offer = await Promise.race([page.evaluate('makeOffer()'), deadline(10000, 'browser offer')]);
    writeFileSync(join(dir, 'offer.json'), offer + '\n');
    run(['answer', ...common, '--sdp-in', join(dir, 'offer.json'), '--sdp-out', join(dir, 'answer.json')]);
    const answer = await wait_file(join(dir, 'answer.json'));
    await page.evaluate(a => takeAnswer(a), answer);
  } else {
    // The answer goes through a fifo that kms-call opens as soon as its offer is out.
    execFileSync('mkfifo', [join(dir, 'answer.fifo')]);
    run(['offer', ...common, '--sdp-out', join(dir, 'offer.json'), '--sdp-in', join(dir, 'answer.fifo')]);
    const offer = await wait_file(join(dir, 'offer.json'));
    const answer = await Promise.race([page.evaluate(o => makeAnswer(o), offer), deadline(10000, 'browser answer')]);
    writeFileSync(join(dir, 'answer.fifo'), answer + '\n');
  }
  if (args.bytes) {
    await page.evaluate('sampleBytes()');
    setTimeout(() => page.evaluate('stopSending()').catch(() => {}), (seconds - 2) * 1000);
  }
  const code = await Promise.race([exited, deadline((seconds + 15) * 1000, 'kms-call to end')]);
  const browser_counts = await page.evaluate('counts()');
  const lines = readFileSync(events, 'utf8').trim().split('\n').map(l => JSON.parse(l));
  const last = (type, kind) => lines.filter(e => e.type === type && e.kind === kind).pop() || {};
  const summary = lines.filter(e => e.type === 'summary').pop() || {};
  result = {
    role, exit: code, browser: browser_counts,
    kms: { videoFramesDecoded: last('inbound-rtp', 'video').framesDecoded || 0,
           audioFramesDecoded: last('inbound-rtp', 'audio').audioFramesDecoded || 0,
           videos: (summary.tracks || []).filter(t => t.kind === 'video' && 'framesDecoded' in t)
             .map(t => ({ mid: t.mid, framesDecoded: t.framesDecoded })),
           codecs: lines.filter(e => e.type === 'track').map(e => `${e.direction}:${e.codec}`) },
  };
  if (args.bytes) result.bytes = await cross_check(page);
} finally {
  if (kms && kms.exitCode === null) kms.kill('SIGKILL');
  await browser.close();
  server.close();
}
console.log(JSON.stringify(result));
// A few seconds of call: at least 1 s of video (the fake camera runs at 20 fps) and 1 s of audio
// decoded on each side, and, when a codec was asked for, that codec both ways.
const codec_ok = !args.codec ||
  (result.kms.codecs.includes(`in:${args.codec}`) && result.kms.codecs.includes(`out:${args.codec}`));
// Every video the other side sends, decoded: as many inbound videos as it sends, each >= 20 frames.
const all_videos = (list) => list.length === videos && list.every(v => v.framesDecoded >= 20);
const ok = result.exit === 0 && codec_ok && all_videos(result.browser.videos) &&
  result.browser.audio >= 48000 && all_videos(result.kms.videos) && result.kms.audioFramesDecoded >= 50;
// --bytes: the two counts of each flow agree within 5%, both ways, and kms-call reports the
// streams the browser sends, no more.
const near = (r) => r > 0.95 && r < 1.05;
const bytes_ok = !args.bytes || (result.bytes.ssrcs.kms === result.bytes.ssrcs.browser &&
  ['video', 'audio'].every(k => near(result.bytes[k].received_ratio) && near(result.bytes[k].sent_ratio)));
process.exit(ok && bytes_ok ? 0 : 1);
