// Reads RTP from a tcpdump capture and reports, per SSRC, the packets and the header extensions
// they carry (RFC 8285 one- and two-byte forms). SRTP leaves the RTP header and its extensions
// in the clear, so a capture of a WebRTC call shows them.
// Usage: node rtp_ext.mjs FILE.pcap MID_ID TWCC_ID
// Prints one JSON object: {"SSRC": {"packets": N, "pt": {...}, "mids": {"MID": N}, "twcc": N,
// "twccSeqs": [first, last]}}.
import { readFileSync } from 'node:fs';

const [file, midArg, twccArg] = process.argv.slice(2);
const midId = Number(midArg), twccId = Number(twccArg);
const buf = readFileSync(file);
const magic = buf.readUInt32LE(0);
const le = magic === 0xa1b2c3d4 || magic === 0xa1b23c4d;
if (!le && buf.readUInt32BE(0) !== 0xa1b2c3d4 && buf.readUInt32BE(0) !== 0xa1b23c4d) {
  console.error(`${file}: not a classic pcap file`);
  process.exit(2);
}
const u32 = (o) => (le ? buf.readUInt32LE(o) : buf.readUInt32BE(o));
const linkType = u32(20);
const linkHeader = { 0: 4, 1: 14, 101: 0, 108: 4, 113: 16, 276: 20 }[linkType];
if (linkHeader === undefined) {
  console.error(`${file}: link type ${linkType} not handled`);
  process.exit(2);
}

const out = {};
const elements = (p, start, end, twoByte) => {
  const found = [];
  let i = start;
  while (i < end) {
    if (p[i] === 0) { i++; continue; }  // padding
    let id, len;
    if (twoByte) { id = p[i]; len = p[i + 1]; i += 2; }
    else { id = p[i] >> 4; len = (p[i] & 0x0f) + 1; i += 1; if (id === 15) break; }
    found.push([id, p.subarray(i, i + len)]);
    i += len;
  }
  return found;
};

for (let off = 24; off + 16 <= buf.length;) {
  const caplen = u32(off + 8);
  const pkt = buf.subarray(off + 16, off + 16 + caplen);
  off += 16 + caplen;
  const ip = pkt.subarray(linkHeader);
  if (ip.length < 28 || ip[0] >> 4 !== 4 || ip[9] !== 17) continue;
  const udp = ip.subarray((ip[0] & 0x0f) * 4);
  const p = udp.subarray(8);
  // RTP version 2 with a payload type outside 64-95, where RTCP's packet types fall (RFC 5761 §4).
  if (p.length < 12 || p[0] >> 6 !== 2) continue;
  const pt = p[1] & 0x7f;
  if (pt >= 64 && pt <= 95) continue;
  const ssrc = p.readUInt32BE(8);
  const s = (out[ssrc] ??= { packets: 0, pt: {}, mids: {}, twcc: 0 });
  s.packets++;
  s.pt[pt] = (s.pt[pt] || 0) + 1;
  if (!(p[0] & 0x10)) continue;  // no extension
  const at = 12 + (p[0] & 0x0f) * 4;
  if (p.length < at + 4) continue;
  const profile = p.readUInt16BE(at), words = p.readUInt16BE(at + 2);
  const oneByte = profile === 0xbede, twoByte = (profile & 0xfff0) === 0x1000;
  if (!oneByte && !twoByte) continue;
  for (const [id, data] of elements(p, at + 4, at + 4 + words * 4, twoByte)) {
    if (id === midId) {
      const mid = data.toString('latin1').replace(/\0+$/, '');
      s.mids[mid] = (s.mids[mid] || 0) + 1;
    } else if (id === twccId && data.length >= 2) {
      s.twcc++;
      const seq = data.readUInt16BE(0);
      s.twccSeqs = s.twccSeqs ? [s.twccSeqs[0], seq] : [seq, seq];
    }
  }
}
console.log(JSON.stringify(out));
