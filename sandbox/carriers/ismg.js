'use strict';
// A CMPP 2.0/3.0 ISMG simulator for tests and the demo, written from the CMPP
// specifications (2.0 and 3.0, section 7.4), independently of sms/cmpp/codec.py.
//
//   node sandbox/carriers/ismg.js --port P --control-port C [--sp-id 901234] [--secret s]
//
// The version of each connection is the CONNECT's Version octet (0x20 or 0x30; higher is
// refused with status 4). It checks AuthenticatorSource (status 3 on a wrong secret, 2 on
// an unknown SP id), answers SUBMITs with generated Msg_Ids, sends status reports as
// DELIVER, answers ACTIVE_TEST and TERMINATE, and sends MOs posted to the control port.
// Faults: see common.js FAULT_DEFAULTS. Control: GET /stats, POST /config, /mo, /reset.

const net = require('net');
const crypto = require('crypto');
const c = require('./common');

const CONNECT = 0x1, TERMINATE = 0x2, SUBMIT = 0x4, DELIVER = 0x5, ACTIVE_TEST = 0x8;
const RESP = 0x80000000;

const config = c.parseArgs(process.argv.slice(2), Object.assign({
  port: 0, control_port: 0, sp_id: '901234', secret: 'secret', ismg_code: 123456,
  active_test_every_s: 0,
}, c.FAULT_DEFAULTS));
const log = c.makeLogger('ismg');
const faults = new c.Faults();

let stats, accepted;
function reset() {
  stats = { connections: 0, logins: 0, logins_refused: 0, submits: 0, accepted: 0,
            flow_controlled: 0, unanswered: 0, reports_sent: 0, reports_acked: 0, mo_sent: 0,
            mo_acked: 0, redelivered: 0, active_tests: 0, active_test_resps: 0, active_tests_sent: 0, terminates: 0, cuts: 0,
            malformed: 0, held: 0, last_submits: [], versions: [] };
  accepted = new c.Accepted();
  faults.reset();
  return { ok: true };
}
reset();

const sessions = new Set();
// Status reports due with no logged-in link, or sent and never acknowledged when their link
// closed: an ISMG keeps them and delivers them after the SP's next login (store and
// forward), as real ones do.
const reports = new c.ReportStore(() => [...sessions]);
let msgSeq = 0;
let smscSeq = 0;

// Msg_Id: month 4 bits, day 5, hour 5, minute 6, second 6, ISMG code 22, sequence 16.
function newMsgId() {
  const b = c.beijing();
  msgSeq = (msgSeq + 1) & 0xffff;
  let v = BigInt(b.M);
  v = (v << 5n) | BigInt(b.D);
  v = (v << 5n) | BigInt(b.h);
  v = (v << 6n) | BigInt(b.m);
  v = (v << 6n) | BigInt(b.s);
  v = (v << 22n) | BigInt(config.ismg_code & 0x3fffff);
  v = (v << 16n) | BigInt(msgSeq);
  const buf = Buffer.alloc(8);
  buf.writeBigUInt64BE(v);
  return buf;
}

function md5(...parts) { return crypto.createHash('md5').update(Buffer.concat(parts)).digest(); }

class Session {
  constructor(socket) {
    this.socket = socket;
    this.version = 0x30;
    this.loggedIn = false;
    this.seq = 0;
    this.timers = new Set();
    this.pending = new Map();  // DELIVER sequence -> {kind, body}, until its DELIVER_RESP
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

  get wide() { return this.version >= 0x30; }
  get termWidth() { return this.wide ? 32 : 21; }

  later(ms, fn) {
    if (ms <= 0) return fn();
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
  }

  send(commandId, sequence, body) {
    if (this.socket.destroyed) return;
    const head = Buffer.concat([c.u32(12 + body.length), c.u32(commandId), c.u32(sequence)]);
    this.socket.write(Buffer.concat([head, body]));
  }

  nextSeq() { this.seq = (this.seq % 0x7fffffff) + 1; return this.seq; }

  result(value) { return this.wide ? c.u32(value) : c.u8(value); }

  frame(buf) {
    const commandId = buf.readUInt32BE(4), sequence = buf.readUInt32BE(8);
    const cur = new c.Cursor(buf, 12);
    try {
      if (commandId === CONNECT) return this.connect(cur, sequence);
      if (!this.loggedIn) { stats.malformed++; return this.socket.destroy(); }
      if (commandId === SUBMIT) return this.submit(cur, sequence);
      if (commandId === ACTIVE_TEST) {
        stats.active_tests++;
        return this.send(ACTIVE_TEST + RESP, sequence, c.u8(0));
      }
      if (commandId === (ACTIVE_TEST + RESP)) { stats.active_test_resps++; return; }
      if (commandId === TERMINATE) {
        stats.terminates++;
        this.send(TERMINATE + RESP, sequence, Buffer.alloc(0));
        return this.socket.end();
      }
      if (commandId === (DELIVER + RESP)) {
        const msgId = cur.bytes(8), res = this.wide ? cur.u32() : cur.u8();
        const p = this.pending.get(sequence);
        this.pending.delete(sequence);
        if (!p) return;
        if (res !== 0) {
          log('DELIVER_RESP result', res, 'for', msgId.toString('hex'), '- sending it again');
          stats.redelivered++;
          if (p.kind === 'report') return reports.later(500, () => reports.forward(p.body, this));
          return this.later(500, () => this.sendDeliver(p.kind, p.body));
        }
        if (p.kind === 'report') stats.reports_acked++;
        if (p.kind === 'mo') stats.mo_acked++;
        return;
      }
      if (commandId === (TERMINATE + RESP)) return;
      stats.malformed++;
      log('unknown Command_Id', commandId.toString(16));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      stats.malformed++;
      log('malformed', commandId.toString(16), e.message);
    }
  }

  connect(cur, sequence) {
    const source = cur.str(6), auth = cur.bytes(16), version = cur.u8(), ts = cur.u32();
    if (cur.left !== 0) throw new RangeError('CONNECT length');
    this.version = version >= 0x30 ? 0x30 : 0x20;
    stats.versions.push(version);
    const expected = md5(Buffer.from(source, 'latin1'), Buffer.alloc(9),
                         Buffer.from(config.secret, 'latin1'),
                         Buffer.from(c.pad(ts, 10), 'latin1'));
    let status = 0;
    if (version > 0x30) status = 4;
    else if (source !== config.sp_id) status = 2;
    else if (!expected.equals(auth) || faults.refuseLogin(config)) status = 3;
    const statusRaw = this.wide ? c.u32(status) : c.u8(status);
    const ismgAuth = md5(statusRaw, auth, Buffer.from(config.secret, 'latin1'));
    if (status === 0 && config.wrong_authenticator) ismgAuth[0] ^= 0xff;  // an impostor ISMG
    this.send(CONNECT + RESP, sequence, Buffer.concat([statusRaw, ismgAuth, c.u8(0x30)]));
    if (status !== 0) {
      stats.logins_refused++;
      log('refused CONNECT from SP', source, 'status', status);
      this.socket.end();
      return;
    }
    stats.logins++;
    this.loggedIn = true;
    log(`CONNECT ok (version 0x${version.toString(16)})`);
    const kept = reports.deliverKept(this);
    if (kept) { stats.redelivered += kept; log('delivered', kept, 'kept reports'); }
  }

  submit(cur, sequence) {
    const w = this.termWidth;
    const s = {};
    cur.bytes(8);
    s.pk_total = cur.u8(); s.pk_number = cur.u8(); s.registered_delivery = cur.u8();
    s.msg_level = cur.u8(); s.service_id = cur.str(10); s.fee_user_type = cur.u8();
    s.fee_terminal_id = c.maskMobile(cur.str(w));
    if (this.wide) s.fee_terminal_type = cur.u8();
    s.tp_pid = cur.u8(); s.tp_udhi = cur.u8(); s.msg_fmt = cur.u8(); s.msg_src = cur.str(6);
    s.fee_type = cur.str(2); s.fee_code = cur.str(6); s.valid_time = cur.str(17);
    s.at_time = cur.str(17); s.src_id = cur.str(21);
    const count = cur.u8();
    const dests = [];
    for (let i = 0; i < count; i++) dests.push(cur.str(w));
    if (this.wide) s.dest_terminal_type = cur.u8();
    const content = cur.bytes(cur.u8());
    if (this.wide) s.link_id = cur.str(20); else cur.bytes(8);
    if (cur.left !== 0) throw new RangeError('SUBMIT length');
    s.dest_terminal_ids = dests.map(c.maskMobile);
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
                                              Buffer.concat([Buffer.alloc(8), this.result(8)])));
    }
    const msgId = newMsgId();
    stats.accepted++;
    for (const d of dests) accepted.add(d, content);
    const resp = () => this.send(SUBMIT + RESP, sequence, Buffer.concat([msgId, this.result(0)]));
    const report = () => { for (const d of dests) this.report(msgId, d, s.src_id); };
    const wantsReport = config.reports && s.registered_delivery === 1;
    if (wantsReport && config.report_before_resp) {
      report();
      return this.later(wait + config.report_delay_ms, resp);
    }
    this.later(wait, resp);
    // On the ISMG's clock, not the link's: a link closing meanwhile does not lose it.
    if (wantsReport) reports.later(wait + config.report_delay_ms, report);
  }

  deliverBody(msgId, destId, srcTerminal, registered, fmt, content) {
    return Buffer.concat([
      msgId, c.octets(destId, 21), c.octets('', 10), c.u8(0), c.u8(0), c.u8(fmt),
      c.octets(srcTerminal, this.termWidth), this.wide ? c.u8(0) : Buffer.alloc(0),
      c.u8(registered), c.u8(content.length), content,
      this.wide ? c.octets('', 20) : Buffer.alloc(8)]);
  }

  sendDeliver(kind, body) {
    if (this.socket.destroyed) { if (kind === 'report') reports.keep(body); return; }
    const seq = this.nextSeq();
    this.pending.set(seq, { kind, body });
    this.send(DELIVER, seq, body);
  }

  report(msgId, dest, srcId) {
    const now = c.yymmddhhmm();
    smscSeq = (smscSeq + 1) >>> 0;
    const content = Buffer.concat([msgId, c.octets(config.report_stat, 7), c.octets(now, 10),
                                   c.octets(now, 10), c.octets(dest, this.termWidth),
                                   c.u32(smscSeq)]);
    reports.forward(this.deliverBody(newMsgId(), srcId, dest, 1, 0, content), this);
    stats.reports_sent++;
  }
}

function injectMo(data) {
  const target = [...sessions].filter(s => s.loggedIn).pop();
  if (!target) return { ok: false, error: 'no logged-in session' };
  const { coding, content } = c.moContent(data.text || '');
  target.sendDeliver('mo', target.deliverBody(newMsgId(), data.destination, data.source, 0,
                                               coding, content));
  stats.mo_sent++;
  log('MO from', c.maskMobile(data.source));
  return { ok: true };
}

const server = net.createServer(socket => new Session(socket));
server.listen(config.port, '127.0.0.1', () => log('listening on 127.0.0.1:' + config.port));
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
