// Drives Debian's Chromium through playwright-core against kms-call, in the caller's network
// namespace. Usage: node call.mjs --kms PATH --role offer|answer --dir DIR [--seconds N]
//   [--codec vp8|vp9|h264] (kms-call's --video-codec; the negotiated codec must be it both ways)
// kms-call --role is the side kms-call plays; the browser plays the other. Prints one JSON line
// with the browser's and kms-call's counts; exits non-zero when media did not flow both ways.
import { chromium } from 'playwright-core';
import { execFileSync, spawn } from 'node:child_process';
import { createServer } from 'node:http';
import { existsSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

const args = Object.fromEntries(process.argv.slice(2).reduce((acc, a, i, all) =>
  (a.startsWith('--') ? [...acc, [a.slice(2), all[i + 1]]] : acc), []));
const role = args.role, seconds = Number(args.seconds || 4);
const dir = join(args.dir, role + (args.codec ? '-' + args.codec : ''));  // each run its own files: kms-call must never read a stale one
mkdirSync(dir, { recursive: true });
const deadline = (ms, what) => new Promise((_, reject) =>
  setTimeout(() => reject(new Error(`timed out: ${what}`)), ms));

// The page: a peer connection with the fake camera and microphone, driven from here.
const page_html = `<!doctype html><meta charset="utf-8"><title>kms browser peer</title><script>
let pc;
async function setup() {
  pc = new RTCPeerConnection();
  // Chromium decodes received audio only as playout pulls it: play it (into the fake output).
  pc.ontrack = e => { if (e.track.kind === 'audio') { const a = new Audio(); a.srcObject = e.streams[0] || new MediaStream([e.track]); a.play(); } };
  const stream = await navigator.mediaDevices.getUserMedia({video: {width: 320, height: 240}, audio: true});
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
async function counts() {
  const out = {state: pc.connectionState, video: 0, audio: 0, sentFrames: 0};
  (await pc.getStats()).forEach(s => {
    if (s.type === 'inbound-rtp' && s.kind === 'video') out.video = s.framesDecoded || 0;
    // Audio decoded, not packets: samples played out that were not concealment.
    if (s.type === 'inbound-rtp' && s.kind === 'audio')
      out.audio = (s.totalSamplesReceived || 0) - (s.concealedSamples || 0);
    if (s.type === 'outbound-rtp' && s.kind === 'video') out.sentFrames = s.framesEncoded || 0;
  });
  return out;
}
</script>`;

const server = createServer((req, res) => { res.setHeader('content-type', 'text/html'); res.end(page_html); });
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
    '--stats-interval', '0.5', '-q', ...(args.codec ? ['--video-codec', args.codec] : [])];
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
  const code = await Promise.race([exited, deadline((seconds + 15) * 1000, 'kms-call to end')]);
  const browser_counts = await page.evaluate('counts()');
  const lines = readFileSync(events, 'utf8').trim().split('\n').map(l => JSON.parse(l));
  const last = (type, kind) => lines.filter(e => e.type === type && e.kind === kind).pop() || {};
  result = {
    role, exit: code, browser: browser_counts,
    kms: { videoFramesDecoded: last('inbound-rtp', 'video').framesDecoded || 0,
           audioFramesDecoded: last('inbound-rtp', 'audio').audioFramesDecoded || 0,
           codecs: lines.filter(e => e.type === 'track').map(e => `${e.direction}:${e.codec}`) },
  };
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
const ok = result.exit === 0 && codec_ok && result.browser.video >= 20 && result.browser.audio >= 48000 &&
  result.kms.videoFramesDecoded >= 20 && result.kms.audioFramesDecoded >= 50;
process.exit(ok ? 0 : 1);
