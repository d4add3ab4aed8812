// A real SMPP SMSC (node-smpp) for end-to-end tests and the demo, on loopback only.
//
//   node server.js --port 2775 --control-port 2776 [--system-id hotline] [--password pw]
//                  [--dlr-delay-ms 50] [--dlr-stat DELIVRD]
//
// Accepts binds with the configured credentials, answers submit_sm with a decimal
// message id, sends one DLR (esm_class 4) per submit_sm asking for one after the
// delay, answers enquire_link and unbind. The control API (HTTP JSON on the same
// host): GET /stats; POST /mo {"source","destination","text"} injects an MO
// message. Mobiles are masked in everything it logs.
'use strict';

const http = require('http');
const smpp = require('smpp');

function args(argv) {
  const out = {host: '127.0.0.1', port: 2775, controlPort: 0, systemId: 'hotline',
               password: process.env.SMSC_PASSWORD || 'secret', dlrDelayMs: 50,
               dlrStat: 'DELIVRD'};
  const names = {'--host': 'host', '--port': 'port', '--control-port': 'controlPort',
                 '--system-id': 'systemId', '--password': 'password',
                 '--dlr-delay-ms': 'dlrDelayMs', '--dlr-stat': 'dlrStat'};
  for (let i = 2; i < argv.length; i += 2) {
    const key = names[argv[i]];
    if (!key) { throw new Error('unknown option ' + argv[i]); }
    out[key] = ['port', 'controlPort', 'dlrDelayMs'].includes(key) ? Number(argv[i + 1])
                                                                    : argv[i + 1];
  }
  return out;
}

function maskMobile(s) {
  s = String(s || '');
  return s.length < 7 ? '*'.repeat(s.length) : s.slice(0, 3) + '*'.repeat(s.length - 7) + s.slice(-4);
}

function log(line) {
  process.stdout.write(new Date().toISOString() + ' smsc: ' + line + '\n');
}

function yymmddhhmm(d) {
  const p = (n) => String(n).padStart(2, '0');
  return p(d.getUTCFullYear() % 100) + p(d.getUTCMonth() + 1) + p(d.getUTCDate()) +
    p(d.getUTCHours()) + p(d.getUTCMinutes());
}

const opts = args(process.argv);
const stats = {binds: 0, bind_commands: {}, binds_refused: 0, submits: 0, dlrs_sent: 0,
               dlrs_acked: 0,
               mo_sent: 0, mo_acked: 0, enquire_links: 0, unbinds: 0, sessions: 0,
               submitted: []};
const receivers = new Set();
let nextId = 5000;

const server = smpp.createServer({debug: false}, (session) => {
  let bound = false;
  stats.sessions += 1;
  session.on('error', (e) => log('session error: ' + e.message));
  const bind = (pdu) => {
    session.pause();
    if (pdu.system_id !== opts.systemId || pdu.password !== opts.password) {
      stats.binds_refused += 1;
      log('bind refused for system_id ' + pdu.system_id);
      session.send(pdu.response({command_status: smpp.ESME_RBINDFAIL}));
      session.resume();
      return;
    }
    bound = true;
    stats.binds += 1;
    stats.bind_commands[pdu.command] = (stats.bind_commands[pdu.command] || 0) + 1;
    if (pdu.command !== 'bind_transmitter') { receivers.add(session); }
    log(pdu.command + ' ok');
    session.send(pdu.response({system_id: 'node-smsc'}));
    session.resume();
  };
  session.on('bind_transceiver', bind);
  session.on('bind_transmitter', bind);
  session.on('bind_receiver', bind);
  session.on('submit_sm', (pdu) => {
    if (!bound) {
      session.send(pdu.response({command_status: smpp.ESME_RINVBNDSTS}));
      return;
    }
    stats.submits += 1;
    nextId += 1;
    const id = String(nextId);
    const sm = pdu.short_message;
    const udh = sm && sm.udh ? sm.udh.map((b) => Buffer.from(b).toString('hex')) : [];
    const text = sm && typeof sm === 'object' && 'message' in sm ? String(sm.message) : String(sm);
    stats.submitted.push({id: id, destination: maskMobile(pdu.destination_addr),
                          data_coding: pdu.data_coding, esm_class: pdu.esm_class,
                          udh: udh, chars: text.length});
    if (stats.submitted.length > 1000) { stats.submitted.shift(); }
    session.send(pdu.response({message_id: id}));
    if ((pdu.registered_delivery & 1) === 0) { return; }
    setTimeout(() => {
      const target = receivers.has(session) ? session : receivers.values().next().value;
      if (!target) { return; }
      const now = yymmddhhmm(new Date());
      target.deliver_sm({
        source_addr: pdu.destination_addr,
        destination_addr: pdu.source_addr,
        esm_class: 4,
        short_message: 'id:' + id + ' sub:001 dlvrd:001 submit date:' + now + ' done date:' +
          now + ' stat:' + opts.dlrStat + ' err:000 text:',
      }, (resp) => { if (resp.command_status === 0) { stats.dlrs_acked += 1; } });
      stats.dlrs_sent += 1;
    }, opts.dlrDelayMs);
  });
  session.on('enquire_link', (pdu) => {
    stats.enquire_links += 1;
    session.send(pdu.response());
  });
  session.on('unbind', (pdu) => {
    stats.unbinds += 1;
    receivers.delete(session);
    session.send(pdu.response());
    session.close();
  });
  session.on('close', () => receivers.delete(session));
});

server.listen(opts.port, opts.host, () => log('listening on ' + opts.host + ':' + opts.port));

if (opts.controlPort) {
  http.createServer((req, res) => {
    let body = '';
    req.on('data', (c) => { body += c; });
    req.on('end', () => {
      res.setHeader('content-type', 'application/json');
      if (req.method === 'GET') {
        res.end(JSON.stringify(stats));
        return;
      }
      if (req.method === 'POST' && req.url === '/mo') {
        let mo;
        try { mo = JSON.parse(body); } catch (e) { res.statusCode = 400; res.end('{}'); return; }
        const target = receivers.values().next().value;
        if (!target) { res.end(JSON.stringify({ok: false})); return; }
        target.deliver_sm({source_addr: mo.source, destination_addr: mo.destination,
                           short_message: mo.text},
                          (resp) => { if (resp.command_status === 0) { stats.mo_acked += 1; } });
        stats.mo_sent += 1;
        log('MO from ' + maskMobile(mo.source));
        res.end(JSON.stringify({ok: true}));
        return;
      }
      res.statusCode = 404;
      res.end('{}');
    });
  }).listen(opts.controlPort, opts.host, () => log('control on ' + opts.host + ':' + opts.controlPort));
}

process.on('SIGTERM', () => { server.close(); process.exit(0); });
