// whatsapp-web.js, unmodified, against FlowHQ's WhatsApp Web simulator: the proof that the page the
// simulator serves offers what the maintained client reads from the real web.whatsapp.com.
//
// Run by tests/conformance/test_whatsapp_web_js.py, which starts the simulator with a TLS listener
// and passes, in the environment:
//   SIM_URL      the simulator's control API (http://127.0.0.1:<port>/)
//   SIM_TLS_PORT where https://web.whatsapp.com/ is routed (Chromium's --host-resolver-rules)
//   CHROMIUM     the system Chromium; DATA_DIR a folder of its own; PHONE, CUSTOMER digits
// Each step prints one JSON line {"step", ...}; the last is {"step": "done"}. Any failure exits 1.
'use strict';

const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');
const { Client, LocalAuth } = require('whatsapp-web.js');

const { SIM_URL, SIM_TLS_PORT, CHROMIUM, DATA_DIR, PHONE, CUSTOMER } = process.env;
const STEP_TIMEOUT_MS = 60000; // generous: a busy CI machine runs other browsers beside this one

function report(step, details = {}) {
  process.stdout.write(`${JSON.stringify({ step, ...details })}\n`);
}

async function control(method, route, body) {
  const response = await fetch(new URL(route, SIM_URL), {
    method,
    headers: { 'Content-Type': 'application/json' },
    body: body === undefined ? undefined : JSON.stringify(body),
  });
  const data = await response.json();
  if (!response.ok) throw new Error(`${method} ${route} → ${response.status} ${JSON.stringify(data)}`);
  return data;
}

// The next `event` of `client` that satisfies `accept`, within the step timeout.
function next(client, event, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      client.off(event, listener);
      reject(new Error(`no '${event}' event within ${STEP_TIMEOUT_MS} ms`));
    }, STEP_TIMEOUT_MS);
    function listener(...args) {
      if (!accept(...args)) return;
      clearTimeout(timer);
      client.off(event, listener);
      resolve(args);
    }
    client.on(event, listener);
  });
}

// Asserts that no `event` satisfying `accept` comes for `ms`.
function none(client, event, ms, accept = () => true) {
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => { client.off(event, listener); resolve(); }, ms);
    function listener(...args) {
      if (!accept(...args)) return;
      clearTimeout(timer);
      client.off(event, listener);
      reject(new Error(`unexpected '${event}' event: ${JSON.stringify(args[0] && args[0].body)}`));
    }
    client.on(event, listener);
  });
}

async function waitForOutbox(predicate, what) {
  const deadline = Date.now() + STEP_TIMEOUT_MS;
  for (;;) {
    const outbox = await control('GET', `/_sim/phones/${PHONE}/outbox`);
    const found = outbox.filter(predicate);
    if (found.length) return found;
    if (Date.now() > deadline) throw new Error(`${what} never reached the outbox: ${JSON.stringify(outbox)}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

function newClient() {
  const args = [
    `--host-resolver-rules=MAP web.whatsapp.com 127.0.0.1:${SIM_TLS_PORT}`,
    '--ignore-certificate-errors',
    // web.whatsapp.com is public; here it is mapped to loopback. A page whatsapp-web.js serves from
    // its web-version cache has no address at all, and Chromium's Local Network Access checks would
    // keep it from opening its WebSocket to the (loopback) simulator.
    '--disable-features=LocalNetworkAccessChecks,LocalNetworkAccessChecksWebSockets',
    '--disable-gpu', '--disable-dev-shm-usage', '--no-first-run', '--disable-background-networking',
    '--disable-component-update', '--disable-sync', '--disable-extensions',
  ];
  if (os.userInfo().uid === 0) args.push('--no-sandbox'); // Chromium cannot sandbox itself as root
  // The bot's own flags (workers/bot/browser.py), so that the page is proven to work with them;
  // puppeteer merges every --disable-features into one list.
  args.push(...JSON.parse(process.env.BOT_CHROMIUM_ARGS || '[]'));
  return new Client({
    authStrategy: new LocalAuth({ dataPath: path.join(DATA_DIR, 'auth') }),
    webVersionCache: { type: 'local', path: path.join(DATA_DIR, 'web-cache') },
    puppeteer: { executablePath: CHROMIUM, headless: true, args },
  });
}

let seq = 0;
const messageId = () => `CONF${Date.now().toString(16).toUpperCase()}${(seq += 1)}`;

async function exchangeMessages(client, round) {
  // A direct message from a customer: `message`, from the customer, not from us.
  const text = `hello from the customer (${round})`;
  const [incoming] = await Promise.all([
    next(client, 'message', (m) => m.body === text),
    control('POST', `/_sim/phones/${PHONE}/messages`, { id: messageId(), from: CUSTOMER, body: text }),
  ]).then(([[message]]) => [message]);
  assert.equal(incoming.from, `${CUSTOMER}@c.us`);
  assert.equal(incoming.fromMe, false);
  assert.equal(incoming.type, 'chat');
  assert.equal(incoming.id.fromMe, false);
  assert.equal(incoming.id.remote, `${CUSTOMER}@c.us`);
  report('message', { round, from: incoming.from, body: incoming.body, fromMe: incoming.fromMe });

  // msg.reply() and client.sendMessage() reach the customer.
  const replyText = `a quoted reply (${round})`;
  const reply = await incoming.reply(replyText);
  assert.ok(reply, 'reply() returned no message');
  assert.equal(reply.fromMe, true);
  const [replied] = await waitForOutbox((m) => m.body === replyText, 'the reply');
  assert.equal(replied.to, CUSTOMER);
  assert.equal(replied.id, reply.id.id);
  report('reply', { round, id: reply.id.id, outbox: replied });

  const sendText = `sent with sendMessage (${round})`;
  const sent = await client.sendMessage(`${CUSTOMER}@c.us`, sendText);
  assert.equal(sent.body, sendText);
  const [delivered] = await waitForOutbox((m) => m.body === sendText, 'the sent message');
  assert.equal(delivered.id, sent.id.id);
  report('sendMessage', { round, id: sent.id.id, outbox: delivered });
}

async function main() {
  for (const name of ['SIM_URL', 'SIM_TLS_PORT', 'CHROMIUM', 'DATA_DIR', 'PHONE', 'CUSTOMER']) {
    assert.ok(process.env[name], `${name} is not set`);
  }

  // 1. First start: the QR (five fields), a scan through the control API, authenticated, ready.
  let client = newClient();
  const firstQr = next(client, 'qr');
  const authenticated = next(client, 'authenticated');
  const ready = next(client, 'ready');
  client.initialize().catch((err) => { report('initialize failed', { error: String(err) }); process.exit(1); });
  const [qr] = await firstQr;
  const fields = qr.split(',');
  assert.equal(fields.length, 5, `the QR has ${fields.length} fields: ${qr}`);
  assert.match(fields[0], /^2@/);
  report('qr', { fields: fields.length, platform: fields[4] });
  await control('POST', '/_sim/scan', { qr, phone: PHONE, name: 'Conformance' });
  await authenticated;
  await ready;
  assert.equal(client.info.wid.user, PHONE);
  assert.equal(client.info.wid._serialized, `${PHONE}@c.us`);
  assert.equal(client.info.pushname, 'Conformance');
  report('ready', { wid: client.info.wid._serialized, version: await client.getWWebVersion() });

  await exchangeMessages(client, 1);

  // 2. A message typed on the linked phone: message_create (fromMe), never message.
  const ownText = 'typed on the phone';
  const silence = none(client, 'message', 2000, (m) => m.body === ownText);
  const [[created]] = await Promise.all([
    next(client, 'message_create', (m) => m.body === ownText),
    control('POST', `/_sim/phones/${PHONE}/messages`, { kind: 'own', id: messageId(), to: CUSTOMER, body: ownText }),
  ]);
  assert.equal(created.fromMe, true);
  assert.equal(created.to, `${CUSTOMER}@c.us`);
  await silence;
  report('message_create', { fromMe: created.fromMe, to: created.to, message: false });

  // 3. A restart on the same profile comes back linked: ready without a QR.
  await client.destroy();
  client = newClient();
  const noQr = none(client, 'qr', 8000);
  const readyAgain = next(client, 'ready');
  client.initialize().catch((err) => { report('initialize failed', { error: String(err) }); process.exit(1); });
  await readyAgain;
  assert.equal(client.info.wid.user, PHONE);
  report('ready again', { wid: client.info.wid._serialized });
  await exchangeMessages(client, 2);
  await noQr;

  // 4. The phone unlinks the device: disconnected, and the page offers a new QR.
  const freshQr = next(client, 'qr');
  const [[reason]] = await Promise.all([
    next(client, 'disconnected'),
    control('POST', `/_sim/phones/${PHONE}/logout`),
  ]);
  report('disconnected', { reason });
  const [newQr] = await freshQr;
  assert.equal(newQr.split(',').length, 5);
  assert.notEqual(newQr, qr);
  report('qr after logout', { fields: newQr.split(',').length });
  finished = true;
  await client.destroy().catch(() => undefined);
  report('done');
  process.exit(0);
}

// whatsapp-web.js re-injects on every navigation; once we close the browser, what it still had in
// flight fails with "Target closed" — that is the end of the run, not a failure of the page.
let finished = false;
process.on('unhandledRejection', (err) => {
  if (finished) return;
  report('failed', { error: err && err.stack ? err.stack : String(err) });
  process.exit(1);
});

main().catch((err) => {
  report('failed', { error: err && err.stack ? err.stack : String(err) });
  process.exit(1);
});
