'use strict';
// An SMGP 3.0 SMGW simulator for tests and the demo, written from the SMGP 3.0
// specification (section 6), independently of sms/smgp/codec.py.
//
//   node sandbox/carriers/smgw.js --port P --control-port C [--client-id 90123456] [--secret s]
//
// It checks AuthenticatorClient (status 21 on a wrong secret or unknown ClientID, 22 for a
// version above 0x30), answers Submits with generated BCD MsgIDs, sends status reports as
// Deliver with IsReport = 1, answers Active_Test and Exit, and sends MOs posted to the
// control port. Faults: see common.js FAULT_DEFAULTS. Control: GET /stats, POST /config,
// /mo, /reset.

const net = require('net');
const crypto = require('crypto');
const c = require('./common');

const LOGIN = 0x1, SUBMIT = 0x2, DELIVER = 0x3, ACTIVE_TEST = 0x4, EXIT = 0x6;
const RESP = 0x80000000;
const TAGS = { 0x0001: 'tp_pid', 0x0002: 'tp_udhi', 0x0003: 'link_id', 0x0009: 'pk_total',
               0x000a: 'pk_number', 0x000d: 'src_term_type' };

const config = c.parseArgs(process.argv.slice(2), Object.assign({
  port: 0, control_port: 0, client_id: '90123456', secret: 'secret', smgw_code: 123456,
  active_test_every_s: 0,
}, c.FAULT_DEFAULTS));
const log = c.makeLogger('smgw');
const faults = new c.Faults();

let stats, accepted;
function reset() {
  stats = { connections: 0, logins: 0, logins_refused: 0, submits: 0, accepted: 0,
            flow_controlled: 0, unanswered: 0, reports_sent: 0, reports_acked: 0, mo_sent: 0,
            mo_acked: 0, redelivered: 0, active_tests: 0, active_test_resps: 0, active_tests_sent: 0, exits: 0, cuts: 0,
            malformed: 0, held: 0, last_submits: [] };
  accepted = new c.Accepted();
  faults.reset();
  return { ok: true };
}
reset();

const sessions = new Set();
// Status reports due with no logged-in link, or sent and never acknowledged when their link
// closed: kept and delivered after the client's next login (store and forward).
const reports = new c.ReportStore(() => [...sessions]);
let msgSeq = 0;

// MsgID: 10 octets BCD = SMGW code (6 digits) + MMDDHHMM (8) + sequence (6).
function newMsgId() {
  const b = c.beijing();
  msgSeq = (msgSeq + 1) % 1000000;
  const digits = c.pad(config.smgw_code % 1000000, 6) + c.pad(b.M, 2) + c.pad(b.D, 2) +
                 c.pad(b.h, 2) + c.pad(b.m, 2) + c.pad(msgSeq, 6);
  return Buffer.from(digits, 'hex');
}

function md5(...parts) { return crypto.createHash('md5').update(Buffer.concat(parts)).digest(); }

function beijingLong() {
  const b = c.beijing();
  return c.pad(b.Y, 4) + c.pad(b.M, 2) + c.pad(b.D, 2) + c.pad(b.h, 2) + c.pad(b.m, 2) +
         c.pad(b.s, 2);
}

class Session {
  constructor(socket) {
    this.socket = socket;
    this.loggedIn = false;
    this.seq = 0;
    this.timers = new Set();
    this.pending = new Map();
    sessions.add(this);
    stats.connections++;
    socket.setNoDelay(true);
    c.framer(socket, 12, f => this.frame(f), e => { stats.malformed++; log('framing', e.message); });
    socket.on('close', () => {
      sessions.delete(this);
      for (const t of this.timers) clearTimeout(t);
      reports.keepPending(this.pending);
    });
    socket.on('error', () => {});
  }

  live() { return this.loggedIn && !this.socket.destroyed; }

  later(ms, fn) {
    if (ms <= 0) return fn();
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
  }

  send(requestId, sequence, body) {
    if (this.socket.destroyed) return;
    this.socket.write(Buffer.concat([c.u32(12 + body.length), c.u32(requestId), c.u32(sequence),
                                     body]));
  }

  nextSeq() { this.seq = (this.seq % 0x7fffffff) + 1; return this.seq; }

  frame(buf) {
    const requestId = buf.readUInt32BE(4), sequence = buf.readUInt32BE(8);
    const cur = new c.Cursor(buf, 12);
    try {
      if (requestId === LOGIN) return this.login(cur, sequence);
      if (!this.loggedIn) { stats.malformed++; return this.socket.destroy(); }
      if (requestId === SUBMIT) return this.submit(cur, sequence);
      if (requestId === ACTIVE_TEST) {
        stats.active_tests++;
        return this.send(ACTIVE_TEST + RESP, sequence, Buffer.alloc(0));
      }
      if (requestId === (ACTIVE_TEST + RESP)) { stats.active_test_resps++; return; }
      if (requestId === EXIT) {
        stats.exits++;
        this.send(EXIT + RESP, sequence, Buffer.alloc(0));
        return this.socket.end();
      }
      if (requestId === (DELIVER + RESP)) {
        cur.bytes(10);
        const status = cur.u32();
        const p = this.pending.get(sequence), kind = p && p.kind;
        this.pending.delete(sequence);
        if (kind === 'report') stats.reports_acked++;
        if (kind === 'mo') stats.mo_acked++;
        if (status !== 0) log('Deliver_Resp status', status);
        return;
      }
      if (requestId === (EXIT + RESP)) return;
      stats.malformed++;
      log('unknown RequestID', requestId.toString(16));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      stats.malformed++;
      log('malformed', requestId.toString(16), e.message);
    }
  }

  login(cur, sequence) {
    const clientId = cur.str(8), auth = cur.bytes(16), mode = cur.u8(), ts = cur.u32();
    const version = cur.u8();
    if (cur.left !== 0) throw new RangeError('Login length');
    const expected = md5(Buffer.from(clientId, 'latin1'), Buffer.alloc(7),
                         Buffer.from(config.secret, 'latin1'),
                         Buffer.from(c.pad(ts, 10), 'latin1'));
    let status = 0;
    if (version > 0x30) status = 22;
    else if (clientId !== config.client_id || !expected.equals(auth) ||
             faults.refuseLogin(config)) status = 21;
    const serverAuth = md5(c.u32(status), auth, Buffer.from(config.secret, 'latin1'));
    if (status === 0 && config.wrong_authenticator) serverAuth[0] ^= 0xff;  // an impostor SMGW
    this.send(LOGIN + RESP, sequence, Buffer.concat([c.u32(status), serverAuth, c.u8(0x30)]));
    if (status !== 0) {
      stats.logins_refused++;
      log('refused Login, status', status);
      this.socket.end();
      return;
    }
    stats.logins++;
    this.loggedIn = true;
    this.mode = mode;
    log('Login ok, mode', mode);
    const kept = reports.deliverKept(this);
    if (kept) { stats.redelivered += kept; log('delivered', kept, 'kept reports'); }
  }

  submit(cur, sequence) {
    const s = {};
    s.msg_type = cur.u8(); s.need_report = cur.u8(); s.priority = cur.u8();
    s.service_id = cur.str(10); s.fee_type = cur.str(2); s.fee_code = cur.str(6);
    s.fixed_fee = cur.str(6); s.msg_format = cur.u8(); s.valid_time = cur.str(17);
    s.at_time = cur.str(17); s.src_term_id = cur.str(21);
    s.charge_term_id = c.maskMobile(cur.str(21));
    const count = cur.u8();
    const dests = [];
    for (let i = 0; i < count; i++) dests.push(cur.str(21));
    const content = cur.bytes(cur.u8());
    cur.bytes(8);
    s.tlvs = {};
    while (cur.left > 0) {
      const tag = cur.u16(), len = cur.u16(), value = cur.bytes(len);
      const name = TAGS[tag] || 'tag_' + tag.toString(16);
      s.tlvs[name] = name === 'link_id' ? c.cstr(value, 0, len) : (len === 1 ? value[0] : value.toString('hex'));
    }
    s.dest_term_ids = dests.map(c.maskMobile);
    s.content_hex = content.toString('hex');
    s.sequence = sequence;
    stats.submits++;
    stats.last_submits.push(s);
    if (stats.last_submits.length > 20) stats.last_submits.shift();

    const verdict = faults.judge(config, stats.accepted);
    if (verdict === 'silent') { stats.unanswered++; return; }
    if (verdict === 'hold' || verdict === 'cut') {
      stats.held++;
      if (verdict === 'cut') { stats.cuts++; log('cut a link with', config.cut_hold, 'held'); this.socket.destroy(); }
      return;
    }
    const wait = c.delay(config);
    if (verdict === 'flow') {
      stats.flow_controlled++;
      return this.later(wait, () => this.send(SUBMIT + RESP, sequence,
                                              Buffer.concat([Buffer.alloc(10), c.u32(1)])));
    }
    const msgId = newMsgId();
    stats.accepted++;
    for (const d of dests) accepted.add(d, content);
    const resp = () => this.send(SUBMIT + RESP, sequence, Buffer.concat([msgId, c.u32(0)]));
    const report = () => { for (const d of dests) this.report(msgId, d, s.src_term_id, content); };
    const wantsReport = config.reports && s.need_report === 1;
    if (wantsReport && config.report_before_resp) {
      report();
      return this.later(wait + config.report_delay_ms, resp);
    }
    this.later(wait, resp);
    // On the SMGW's clock, not the link's: a link closing meanwhile does not lose it.
    if (wantsReport) reports.later(wait + config.report_delay_ms, report);
  }

  deliverBody(isReport, fmt, src, dest, content) {
    return Buffer.concat([newMsgId(), c.u8(isReport), c.u8(fmt), c.octets(beijingLong(), 14),
                          c.octets(src, 21), c.octets(dest, 21), c.u8(content.length), content,
                          Buffer.alloc(8)]);
  }

  sendDeliver(kind, body) {
    if (this.socket.destroyed) { if (kind === 'report') reports.keep(body); return; }
    const seq = this.nextSeq();
    this.pending.set(seq, { kind, body });
    this.send(DELIVER, seq, body);
  }

  report(msgId, dest, srcTermId, content) {
    const now = c.yymmddhhmm();
    const text = Buffer.alloc(20);
    content.copy(text, 0, 0, 20);
    const report = Buffer.concat([
      Buffer.from('id:'), msgId, Buffer.from(' sub:001 dlvrd:001 submit date:'),
      c.octets(now, 10), Buffer.from(' done date:'), c.octets(now, 10), Buffer.from(' stat:'),
      c.octets(config.report_stat, 7), Buffer.from(' err:'),
      Buffer.from(config.report_stat === 'DELIVRD' ? '000' : '001'), Buffer.from(' text:'),
      text]);
    reports.forward(this.deliverBody(1, 0, dest, srcTermId, report), this);
    stats.reports_sent++;
  }
}

function injectMo(data) {
  const target = [...sessions].filter(s => s.loggedIn).pop();
  if (!target) return { ok: false, error: 'no logged-in session' };
  const { coding, content } = c.moContent(data.text || '');
  target.sendDeliver('mo', target.deliverBody(0, coding, data.source, data.destination, content));
  stats.mo_sent++;
  log('MO from', c.maskMobile(data.source));
  return { ok: true };
}

net.createServer(socket => new Session(socket))
  .listen(config.port, '127.0.0.1', () => log('listening on 127.0.0.1:' + config.port));
c.cutter(config, () => [...sessions].map(s => s.socket), n => { stats.cuts += n; }, log);
c.keepAlive(config, () => [...sessions].filter(s => s.loggedIn), s => {
  stats.active_tests_sent++;
  s.send(ACTIVE_TEST, s.nextSeq(), Buffer.alloc(0));
});
if (config.control_port) {
  c.controlServer(config.control_port, {
    stats: () => Object.assign({}, stats, { distinct_accepted: accepted.distinct,
                                            duplicates: accepted.duplicates,
                                            sessions: sessions.size,
                                            config: c.publicConfig(config) }),
    config: changes => c.applyConfig(config, changes),
    mo: injectMo,
    reset,
  }, log);
}
process.on('SIGTERM', () => process.exit(0));
