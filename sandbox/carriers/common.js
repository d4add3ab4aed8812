'use strict';
// What the three carrier simulators (ismg.js, smgw.js, smg.js) share: argument parsing,
// the fault knobs, the HTTP control port, masked logging, framing on a u32 length, and
// fixed-width field helpers. Written from the carriers' specifications, independently of
// the project's Python codecs (no code or tables shared with them), so that a
// misunderstanding on one side shows up as a failing test instead of passing both.
// Node built-ins only: no npm install step.

const http = require('http');

// --- arguments: --name value pairs, numbers parsed, kebab-case -> snake_case keys ---
function parseArgs(argv, defaults) {
  const out = Object.assign({}, defaults);
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i];
    if (!arg.startsWith('--')) throw new Error(`unexpected argument ${arg}`);
    const key = arg.slice(2).replace(/-/g, '_');
    if (!(key in defaults)) throw new Error(`unknown option ${arg}`);
    const kind = typeof defaults[key];
    if (kind === 'boolean') {
      const next = argv[i + 1];
      if (next === 'true' || next === 'false') { out[key] = next === 'true'; i++; }
      else out[key] = true;
    } else {
      const value = argv[++i];
      out[key] = kind === 'number' ? Number(value) : value;
    }
  }
  return out;
}

// --- privacy: never log a whole mobile (138****8000) ---
function maskMobile(number) {
  const s = String(number || '');
  if (s.length < 7) return '*'.repeat(s.length);
  return s.slice(0, 3) + '*'.repeat(s.length - 7) + s.slice(-4);
}

function maskText(text) {
  return String(text).replace(/(?<!\d)(\d{3})\d{4,}(\d{4})(?!\d)/g,
    (m, a, b) => a + '*'.repeat(m.length - 7) + b);
}

function makeLogger(name) {
  return (...parts) => {
    const line = parts.map(p => (typeof p === 'string' ? p : JSON.stringify(p))).join(' ');
    process.stdout.write(`${new Date().toISOString()} ${name}: ${maskText(line)}\n`);
  };
}

// --- time fields ---
function pad(n, width) { return String(n).padStart(width, '0'); }

function beijing(date) {
  // The carriers' clocks are Beijing time (UTC+8), whatever the machine's zone.
  const t = new Date((date ? date.getTime() : Date.now()) + 8 * 3600 * 1000);
  return { Y: t.getUTCFullYear(), M: t.getUTCMonth() + 1, D: t.getUTCDate(),
           h: t.getUTCHours(), m: t.getUTCMinutes(), s: t.getUTCSeconds() };
}

function yymmddhhmm(date) {
  const b = beijing(date);
  return pad(b.Y % 100, 2) + pad(b.M, 2) + pad(b.D, 2) + pad(b.h, 2) + pad(b.m, 2);
}

function mmddhhmmss(date) {
  const b = beijing(date);
  return pad(b.M, 2) + pad(b.D, 2) + pad(b.h, 2) + pad(b.m, 2) + pad(b.s, 2);
}

// --- fixed-width octet strings ---
function octets(text, size) {
  const buf = Buffer.alloc(size);
  Buffer.from(text || '', 'latin1').copy(buf, 0, 0, size);
  return buf;
}

function cstr(buf, start, size) {
  const slice = buf.subarray(start, start + size);
  const nul = slice.indexOf(0);
  return (nul < 0 ? slice : slice.subarray(0, nul)).toString('latin1');
}

// A cursor over a body: throws a RangeError on overrun, which the sims count as malformed.
class Cursor {
  constructor(buf, pos) { this.buf = buf; this.pos = pos || 0; }
  need(n) { if (this.pos + n > this.buf.length) throw new RangeError('body too short'); }
  u8() { this.need(1); return this.buf[this.pos++]; }
  u16() { this.need(2); const v = this.buf.readUInt16BE(this.pos); this.pos += 2; return v; }
  u32() { this.need(4); const v = this.buf.readUInt32BE(this.pos); this.pos += 4; return v; }
  bytes(n) { this.need(n); const v = this.buf.subarray(this.pos, this.pos + n); this.pos += n; return Buffer.from(v); }
  str(n) { this.need(n); const v = cstr(this.buf, this.pos, n); this.pos += n; return v; }
  get left() { return this.buf.length - this.pos; }
}

function u8(v) { return Buffer.from([v & 0xff]); }
function u16(v) { const b = Buffer.alloc(2); b.writeUInt16BE(v >>> 0); return b; }
function u32(v) { const b = Buffer.alloc(4); b.writeUInt32BE(v >>> 0); return b; }

// --- framing on a leading u32 total length ---
function framer(socket, minLength, onFrame, onError) {
  let buffer = Buffer.alloc(0);
  socket.on('data', chunk => {
    buffer = Buffer.concat([buffer, chunk]);
    while (buffer.length >= 4) {
      const length = buffer.readUInt32BE(0);
      if (length < minLength || length > 8192) {
        onError(new Error(`insane total length ${length}`));
        socket.destroy();
        return;
      }
      if (buffer.length < length) break;
      const frame = buffer.subarray(0, length);
      buffer = buffer.subarray(length);
      onFrame(Buffer.from(frame));
    }
  });
}

// --- fault knobs, shared by all three ---
const FAULT_DEFAULTS = {
  latency_ms: 0,            // before each submit response
  jitter_ms: 0,             // plus uniformly 0..jitter_ms
  flow_control_fraction: 0, // this share of submits gets the flow-control answer
  unanswered_fraction: 0,   // this share of submits is never answered
  report_delay_ms: 20,      // after the response (or before it, with report_before_resp)
  report_before_resp: false,
  reports: true,
  report_stat: 'DELIVRD',
  cut_every_s: 0,           // close every client connection every N seconds (0 = never)
  flow_control_every: 0,    // every Nth submit starts a burst of...
  flow_control_burst: 0,    // ...this many flow-control answers
  cut_after_submits: 0,     // once this many submits were accepted, leave the next ones
  cut_hold: 1,              // unanswered until this many are held, then cut the link (once)
  reject_logins: 0,         // refuse this many logins (as a wrong secret) before accepting
  wrong_authenticator: false, // accept logins but answer with a wrong gateway authenticator
};

// Deterministic fractions: an accumulator, so 0.25 means exactly every 4th submit.
class Fraction {
  constructor() { this.acc = 0; }
  hit(fraction) {
    if (!(fraction > 0)) return false;
    this.acc += fraction;
    if (this.acc >= 1 - 1e-9) { this.acc -= 1; return true; }
    return false;
  }
}

// The per-submit verdict of the fault knobs: 'ok', 'flow' (answer with flow control),
// 'silent' (never answer), 'hold' (never answer; the window fills) or 'cut' (hold this one
// too and close the link now). One instance per simulator.
class Faults {
  constructor() { this.reset(); }
  reset() {
    this.flow = new Fraction(); this.silent = new Fraction();
    this.seen = 0; this.burstLeft = 0; this.held = 0; this.loginsRefused = 0;
  }
  judge(config, acceptedSoFar) {
    this.seen++;
    if (config.cut_after_submits > 0 && acceptedSoFar >= config.cut_after_submits) {
      this.held++;
      if (this.held < Math.max(1, config.cut_hold)) return 'hold';
      this.held = 0;
      config.cut_after_submits = 0;  // one cut per setting, as smsc_sim does
      return 'cut';
    }
    if (this.silent.hit(config.unanswered_fraction)) return 'silent';
    if (config.flow_control_every > 0 && config.flow_control_burst > 0 && this.burstLeft === 0 &&
        this.seen % config.flow_control_every === 0) this.burstLeft = config.flow_control_burst;
    if (this.burstLeft > 0) { this.burstLeft--; return 'flow'; }
    if (this.flow.hit(config.flow_control_fraction)) return 'flow';
    return 'ok';
  }
  // True while reject_logins says this login must be refused (as with a wrong secret).
  refuseLogin(config) {
    if (this.loginsRefused < config.reject_logins) { this.loginsRefused++; return true; }
    return false;
  }
}

function delay(config) {
  return config.latency_ms + Math.random() * config.jitter_ms;
}

// Status reports belong to the gateway, not to the connection a submit came on (a real
// gateway stores and forwards them): one falls due on the gateway's clock, even when that
// link has closed meanwhile, and goes to a logged-in connection of the SP (the submit's
// own while it lives, else one of the same version); with none, or when its connection
// closes before acknowledging it, it is kept and delivered after the SP's next login.
// Sessions offer live(), version and sendDeliver('report', body).
class ReportStore {
  constructor(listSessions) { this.listSessions = listSessions; this.kept = []; }
  later(ms, fn) { if (ms <= 0) fn(); else setTimeout(fn, ms); }
  forward(body, preferred) {
    const target = preferred && preferred.live() ? preferred
      : this.listSessions().find(s => s.live() && (!preferred || s.version === preferred.version));
    if (target) target.sendDeliver('report', body); else this.kept.push(body);
  }
  keep(body) { this.kept.push(body); }
  // A closed session's unacknowledged DELIVERs ({kind, body} by sequence): its reports are kept.
  keepPending(pending) {
    for (const p of pending.values()) if (p.kind === 'report') this.kept.push(p.body);
    pending.clear();
  }
  // After a login: every kept report goes to that session; how many went.
  deliverKept(session) {
    const kept = this.kept.splice(0);
    for (const body of kept) session.sendDeliver('report', body);
    return kept.length;
  }
}

// Counts accepted submits by destination + content; a second acceptance is a duplicate.
class Accepted {
  constructor() { this.counts = new Map(); }
  add(dest, content) {
    const key = dest + ':' + content.toString('hex');
    this.counts.set(key, (this.counts.get(key) || 0) + 1);
  }
  get distinct() { return this.counts.size; }
  get duplicates() { let n = 0; for (const v of this.counts.values()) n += v > 1 ? v - 1 : 0; return n; }
}

// --- the HTTP control port: GET /stats, POST /config, /mo, /reset ---
function controlServer(port, handlers, log) {
  const server = http.createServer((req, res) => {
    let body = '';
    req.on('data', c => { body += c; });
    req.on('end', () => {
      const reply = (code, obj) => {
        res.writeHead(code, { 'content-type': 'application/json' });
        res.end(JSON.stringify(obj));
      };
      try {
        if (req.method === 'GET' && req.url === '/stats') return reply(200, handlers.stats());
        if (req.method !== 'POST') return reply(404, { error: 'unknown path' });
        const data = body ? JSON.parse(body) : {};
        if (req.url === '/config') return reply(200, handlers.config(data));
        if (req.url === '/mo') return reply(200, handlers.mo(data));
        if (req.url === '/reset') return reply(200, handlers.reset());
        return reply(404, { error: 'unknown path' });
      } catch (e) {
        log('control error', e.message);
        return reply(400, { error: e.message });
      }
    });
  });
  server.listen(port, '127.0.0.1');
  return server;
}

function applyConfig(config, changes) {
  for (const [key, value] of Object.entries(changes)) {
    if (!(key in config)) throw new Error(`unknown setting ${key}`);
    config[key] = value;
  }
  return { ok: true };
}

// Text of an MO as content bytes: ASCII when it fits, else UCS2 (big-endian).
function moContent(text) {
  if (/^[\x00-\x7f]*$/.test(text)) return { coding: 0, content: Buffer.from(text, 'latin1') };
  const le = Buffer.from(text, 'utf16le');
  const be = Buffer.alloc(le.length);
  for (let i = 0; i < le.length; i += 2) { be[i] = le[i + 1]; be[i + 1] = le[i]; }
  return { coding: 8, content: be };
}

// Close every client connection every cut_every_s seconds (re-read on each tick).
// listSockets() gives the connections to cut; onCut(n) counts them.
function cutter(config, listSockets, onCut, log) {
  let last = Date.now();
  setInterval(() => {
    if (!(config.cut_every_s > 0)) { last = Date.now(); return; }
    if (Date.now() - last < config.cut_every_s * 1000) return;
    last = Date.now();
    const sockets = listSockets();
    for (const s of sockets) s.destroy();
    if (sockets.length) { onCut(sockets.length); log('cut', sockets.length, 'link(s)'); }
  }, 100).unref();
}

// Send a keep-alive to every logged-in session every active_test_every_s seconds (0 = never;
// re-read on each tick), as a gateway does on an idle link. send(session) writes it.
function keepAlive(config, listSessions, send) {
  let last = Date.now();
  setInterval(() => {
    if (!(config.active_test_every_s > 0)) { last = Date.now(); return; }
    if (Date.now() - last < config.active_test_every_s * 1000) return;
    last = Date.now();
    for (const session of listSessions()) send(session);
  }, 50).unref();
}

// The configuration as /stats shows it: without the secrets.
function publicConfig(config) {
  const out = {};
  for (const [k, v] of Object.entries(config)) if (!/secret|password/.test(k)) out[k] = v;
  return out;
}

module.exports = {
  parseArgs, maskMobile, maskText, makeLogger, pad, yymmddhhmm, mmddhhmmss, beijing, octets,
  cstr, Cursor, u8, u16, u32, framer, FAULT_DEFAULTS, Fraction, Faults, delay, Accepted,
  controlServer, applyConfig, moContent, cutter, publicConfig, keepAlive, ReportStore,
};
