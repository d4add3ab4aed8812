'use strict';
// An SGIP 1.2 SMG simulator for tests and the demo, written from the SGIP 1.2
// specification (section 4), independently of sms/sgip/codec.py.
//
//   node sandbox/carriers/smg.js --port P --control-port C --sp-port L
//        [--login-name hotline] [--password secret]
//        [--sp-login-name smg] [--sp-password secret]
//
// The SP binds here (login type 1) and submits; a wrong name or password gets Result 1.
// Like a real SMG, it sends Deliver (MO) and Report (status reports) over its OWN
// connection to the SP's listener (127.0.0.1:sp_port): it connects, binds with login
// type 2 and sp_login_name/sp_password, sends, and unbinds after callback_idle_ms of
// quiet. SGIP has no keep-alive: with sp_idle_ms > 0 the SMG also unbinds an SP link that
// was quiet that long (Unbind, waits for Unbind_Resp, closes), and an SP's Unbind on the
// SMG's own connection is answered and closes it.
// Faults: see common.js FAULT_DEFAULTS. Control: GET /stats, POST /config, /mo, /reset.

const net = require('net');
const c = require('./common');

const BIND = 0x1, UNBIND = 0x2, SUBMIT = 0x3, DELIVER = 0x4, REPORT = 0x5;
const RESP = 0x80000000;

const config = c.parseArgs(process.argv.slice(2), Object.assign({
  port: 0, control_port: 0, login_name: 'hotline', password: 'secret', sp_port: 0,
  sp_login_name: 'smg', sp_password: 'secret', node_id: 3020012345, callback_idle_ms: 1000,
  sp_idle_ms: 0,
}, c.FAULT_DEFAULTS));
const log = c.makeLogger('smg');
const faults = new c.Faults();

let stats, accepted;
function reset() {
  stats = { connections: 0, logins: 0, logins_refused: 0, submits: 0, accepted: 0,
            flow_controlled: 0, unanswered: 0, reports_sent: 0, reports_acked: 0, mo_sent: 0,
            mo_acked: 0, unbinds: 0, cuts: 0, malformed: 0, held: 0, callback_connections: 0,
            callback_binds: 0, callback_binds_refused: 0, callback_unbinds: 0,
            callback_unbinds_received: 0, idle_unbinds_sent: 0, idle_unbind_resps: 0,
            last_submits: [] };
  accepted = new c.Accepted();
  faults.reset();
  return { ok: true };
}
reset();

const sessions = new Set();
let counter = 0;

// Sequence number: node id (u32), MMDDHHMMSS (u32), counter (u32).
function newSequence() {
  counter = (counter + 1) >>> 0;
  return Buffer.concat([c.u32(config.node_id), c.u32(Number(c.mmddhhmmss())), c.u32(counter)]);
}

function frameOf(commandId, sequence, body) {
  return Buffer.concat([c.u32(20 + body.length), c.u32(commandId), sequence, body]);
}

const RESERVE = Buffer.alloc(8);
function resultBody(result) { return Buffer.concat([c.u8(result), RESERVE]); }

function seqString(seq) {
  return `${seq.readUInt32BE(0)}-${c.pad(seq.readUInt32BE(4), 10)}-${seq.readUInt32BE(8)}`;
}

class Session {
  constructor(socket) {
    this.socket = socket;
    this.bound = false;
    this.timers = new Set();
    this.idle = null;
    sessions.add(this);
    stats.connections++;
    socket.setNoDelay(true);
    c.framer(socket, 20, f => this.frame(f), e => { stats.malformed++; log('framing', e.message); });
    socket.on('close', () => {
      sessions.delete(this);
      clearTimeout(this.idle);
      for (const t of this.timers) clearTimeout(t);
    });
    socket.on('error', () => {});
  }

  later(ms, fn) {
    if (ms <= 0) return fn();
    const t = setTimeout(() => { this.timers.delete(t); fn(); }, ms);
    this.timers.add(t);
  }

  send(commandId, sequence, body) {
    if (!this.socket.destroyed) this.socket.write(frameOf(commandId, sequence, body));
  }

  // Nothing from the SP for sp_idle_ms (and no answer of ours still due): Unbind it.
  idleLater() {
    clearTimeout(this.idle);
    if (!config.sp_idle_ms || !this.bound) return;
    this.idle = setTimeout(() => {
      if (this.socket.destroyed) return;
      if (this.timers.size) return this.idleLater();
      stats.idle_unbinds_sent++;
      log('SP link idle: Unbind');
      this.send(UNBIND, newSequence(), Buffer.alloc(0));
    }, config.sp_idle_ms);
  }

  frame(buf) {
    const commandId = buf.readUInt32BE(4), sequence = Buffer.from(buf.subarray(8, 20));
    const cur = new c.Cursor(buf, 20);
    this.idleLater();
    try {
      if (commandId === BIND) return this.bind(cur, sequence);
      if (!this.bound) { stats.malformed++; return this.socket.destroy(); }
      if (commandId === SUBMIT) return this.submit(cur, sequence);
      if (commandId === UNBIND) {
        stats.unbinds++;
        this.send(UNBIND + RESP, sequence, Buffer.alloc(0));
        return this.socket.end();
      }
      if (commandId === (UNBIND + RESP)) {
        stats.idle_unbind_resps++;
        return this.socket.end();
      }
      stats.malformed++;
      log('unknown Command ID', commandId.toString(16));
    } catch (e) {
      if (!(e instanceof RangeError)) throw e;
      stats.malformed++;
      log('malformed', commandId.toString(16), e.message);
    }
  }

  bind(cur, sequence) {
    const type = cur.u8(), name = cur.str(16), password = cur.str(16);
    cur.bytes(8);
    if (cur.left !== 0) throw new RangeError('Bind length');
    let result = 0;
    if (type !== 1) result = 4;
    else if (name !== config.login_name || password !== config.password ||
             faults.refuseLogin(config)) result = 1;
    this.send(BIND + RESP, sequence, resultBody(result));
    if (result !== 0) {
      stats.logins_refused++;
      log('refused Bind, result', result);
      this.socket.end();
      return;
    }
    stats.logins++;
    this.bound = true;
    log('Bind ok');
    this.idleLater();
  }

  submit(cur, sequence) {
    const s = {};
    s.sp_number = cur.str(21); s.charge_number = c.maskMobile(cur.str(21));
    const count = cur.u8();
    const users = [];
    for (let i = 0; i < count; i++) users.push(cur.str(21));
    s.corp_id = cur.str(5); s.service_type = cur.str(10); s.fee_type = cur.u8();
    s.fee_value = cur.str(6); s.given_value = cur.str(6); s.agent_flag = cur.u8();
    s.morelateto_mt_flag = cur.u8(); s.priority = cur.u8(); s.expire_time = cur.str(16);
    s.schedule_time = cur.str(16); s.report_flag = cur.u8(); s.tp_pid = cur.u8();
    s.tp_udhi = cur.u8(); s.message_coding = cur.u8(); s.message_type = cur.u8();
    const content = cur.bytes(cur.u32());
    cur.bytes(8);
    if (cur.left !== 0) throw new RangeError('Submit length');
    s.user_numbers = users.map(c.maskMobile);
    s.content_hex = content.toString('hex');
    s.sequence = seqString(sequence);
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
      return this.later(wait, () => this.send(SUBMIT + RESP, sequence, resultBody(11)));
    }
    stats.accepted++;
    for (const u of users) accepted.add(u, content);
    const resp = () => this.send(SUBMIT + RESP, sequence, resultBody(0));
    const reports = () => { for (const u of users) sendReport(sequence, u); };
    // ReportFlag: 0 report only failures, 1 always, 2 never, 3 billing only.
    const wantsReport = config.reports && (s.report_flag === 1 ||
                                           (s.report_flag === 0 && config.report_stat !== 'DELIVRD'));
    if (wantsReport && config.report_before_resp) {
      reports();
      return this.later(wait + config.report_delay_ms, resp);
    }
    this.later(wait, resp);
    // On the SMG's clock, not the link's: reports go over the SMG's own connection to the
    // SP, so the submitting link closing meanwhile must not lose them.
    if (wantsReport) setTimeout(reports, wait + config.report_delay_ms);
  }
}

// --- the SMG's own connection to the SP (Deliver and Report go there) ---
const callback = { socket: null, bound: false, queue: [], pending: new Map(), idle: null,
                   retry: null };

function enqueue(commandId, body, kind) {
  callback.queue.push({ commandId, body, kind });
  ensureCallback();
}

function ensureCallback() {
  if (!callback.queue.length && !callback.socket) return;
  if (callback.socket || callback.retry) { flush(); return; }
  if (!config.sp_port) { log('no sp_port: keeping', callback.queue.length, 'for later'); return; }
  const socket = net.connect(config.sp_port, '127.0.0.1');
  callback.socket = socket;
  callback.bound = false;
  stats.callback_connections++;
  socket.setNoDelay(true);
  socket.on('connect', () => {
    const body = Buffer.concat([c.u8(2), c.octets(config.sp_login_name, 16),
                                c.octets(config.sp_password, 16), RESERVE]);
    socket.write(frameOf(BIND, newSequence(), body));
  });
  c.framer(socket, 20, f => callbackFrame(socket, f), e => log('callback framing', e.message));
  const gone = () => {
    if (callback.socket !== socket) return;
    callback.socket = null;
    callback.bound = false;
    clearTimeout(callback.idle);
    // What was sent but not answered goes again on the next connection.
    for (const item of callback.pending.values()) callback.queue.unshift(item);
    callback.pending.clear();
    if (callback.queue.length) {
      callback.retry = setTimeout(() => { callback.retry = null; ensureCallback(); }, 500);
    }
  };
  socket.on('close', gone);
  socket.on('error', e => log('callback connection:', e.code || e.message));
}

function callbackFrame(socket, buf) {
  const commandId = buf.readUInt32BE(4);
  const sequence = seqString(buf.subarray(8, 20));
  const cur = new c.Cursor(buf, 20);
  try {
    if (commandId === (BIND + RESP)) {
      const result = cur.u8();
      if (result !== 0) {
        stats.callback_binds_refused++;
        log('the SP refused our Bind, result', result);
        socket.end();
        return;
      }
      stats.callback_binds++;
      callback.bound = true;
      return flush();
    }
    if (commandId === (DELIVER + RESP) || commandId === (REPORT + RESP)) {
      const result = cur.u8();
      const item = callback.pending.get(sequence);
      callback.pending.delete(sequence);
      if (item && result === 0) stats[item.kind === 'report' ? 'reports_acked' : 'mo_acked']++;
      if (result !== 0) log('the SP answered result', result);
      return idleLater();
    }
    if (commandId === UNBIND) {
      stats.callback_unbinds_received++;
      socket.write(frameOf(UNBIND + RESP, buf.subarray(8, 20), Buffer.alloc(0)));
      return socket.end();
    }
    if (commandId === (UNBIND + RESP)) return socket.end();
  } catch (e) {
    if (!(e instanceof RangeError)) throw e;
    stats.malformed++;
  }
}

function flush() {
  if (!callback.socket || !callback.bound) return;
  while (callback.queue.length) {
    const item = callback.queue.shift();
    const seq = newSequence();
    callback.pending.set(seqString(seq), item);
    callback.socket.write(frameOf(item.commandId, seq, item.body));
  }
  idleLater();
}

function idleLater() {
  clearTimeout(callback.idle);
  callback.idle = setTimeout(() => {
    if (callback.socket && callback.bound && !callback.pending.size && !callback.queue.length) {
      stats.callback_unbinds++;
      callback.socket.write(frameOf(UNBIND, newSequence(), Buffer.alloc(0)));
    }
  }, config.callback_idle_ms);
}

function sendReport(submitSequence, user) {
  const delivered = config.report_stat === 'DELIVRD';
  const body = Buffer.concat([submitSequence, c.u8(0), c.octets(user, 21),
                              c.u8(delivered ? 0 : 2), c.u8(delivered ? 0 : 1), RESERVE]);
  stats.reports_sent++;
  enqueue(REPORT, body, 'report');
}

function injectMo(data) {
  const { coding, content } = c.moContent(data.text || '');
  const body = Buffer.concat([c.octets(data.source, 21), c.octets(data.destination, 21),
                              c.u8(0), c.u8(0), c.u8(coding), c.u32(content.length), content,
                              RESERVE]);
  stats.mo_sent++;
  log('MO from', c.maskMobile(data.source));
  enqueue(DELIVER, body, 'mo');
  return { ok: true };
}

net.createServer(socket => new Session(socket))
  .listen(config.port, '127.0.0.1', () => log('listening on 127.0.0.1:' + config.port));
c.cutter(config, () => [...sessions].map(s => s.socket), n => { stats.cuts += n; }, log);
if (config.control_port) {
  c.controlServer(config.control_port, {
    stats: () => Object.assign({}, stats, { distinct_accepted: accepted.distinct,
                                            duplicates: accepted.duplicates,
                                            sessions: sessions.size,
                                            callback_queued: callback.queue.length,
                                            config: c.publicConfig(config) }),
    config: changes => { const r = c.applyConfig(config, changes); ensureCallback(); return r; },
    mo: injectMo,
    reset,
  }, log);
}
process.on('SIGTERM', () => process.exit(0));
