/*
 * The simulated WhatsApp Web page. It exposes window.require(name) with the handful of modules a
 * driver reads on the real page (the way whatsapp-web.js does), keeps its link in IndexedDB, and
 * talks to the simulator over one WebSocket. simulator/README.md is the contract; keep it in step.
 */
(function () {
  'use strict';

  const config = document.currentScript.dataset;
  const PING_INTERVAL_MS = Number(config.pingIntervalMs);
  const PING_TIMEOUT_MS = Number(config.pingTimeoutMs);
  const SERVER = 'c.us';

  // --- Backbone-like models ----------------------------------------------------------------------

  class Events {
    constructor() { this._handlers = new Map(); }

    on(event, callback) {
      if (!this._handlers.has(event)) this._handlers.set(event, []);
      this._handlers.get(event).push(callback);
      return this;
    }

    off(event, callback) {
      if (event === undefined) this._handlers.clear();
      else this._handlers.set(event, callback ? (this._handlers.get(event) || []).filter((h) => h !== callback) : []);
      return this;
    }

    listenerCount(event) { return (this._handlers.get(event) || []).length; }

    trigger(event, ...args) {
      for (const callback of [...(this._handlers.get(event) || [])]) {
        try { callback(...args); } catch (err) { console.error(`${event} listener failed`, err); }
      }
    }
  }

  const Socket = Object.assign(new Events(), { state: 'OPENING', lastPongAt: null });
  const Conn = Object.assign(new Events(), { ref: null, wid: null, pushname: '' });
  const Cmd = new Events();

  // Incoming messages that arrive while nobody listens to Msg 'add' wait here, unacknowledged, and
  // are emitted when the first 'add' listener registers: a driver that attaches right after
  // CONNECTED still sees the messages queued while it was offline (the real page's catch-up).
  const held = [];

  class MsgCollection extends Events {
    constructor() { super(); this._byId = new Map(); }

    on(event, callback) {
      super.on(event, callback);
      if (event === 'add') queueMicrotask(releaseHeld);
      return this;
    }

    get(id) { return this._byId.get(typeof id === 'string' ? id : id && id._serialized); }

    add(model) { this._byId.set(model.id._serialized, model); this.trigger('add', model); }

    // History loaded from storage at boot: no 'add' event, as on the real page.
    restore(model) { this._byId.set(model.id._serialized, model); }

    getModelsArray() { return [...this._byId.values()]; }

    reset() { this._byId.clear(); }
  }

  class ChatCollection extends Events {
    constructor() { super(); this._byId = new Map(); }

    get(id) { return this._byId.get(typeof id === 'string' ? id : id && id._serialized); }

    getModelsArray() { return [...this._byId.values()]; }

    findOrAdd(wid) {
      let chat = this.get(wid);
      if (!chat) {
        chat = { id: wid, name: wid.user, t: Math.floor(Date.now() / 1000) };
        this._byId.set(wid._serialized, chat);
        this.trigger('add', chat);
        render();
      }
      return chat;
    }

    reset() { this._byId.clear(); }
  }

  const Msg = new MsgCollection();
  const Chat = new ChatCollection();

  function createWid(id) {
    const text = String(id);
    const at = text.indexOf('@');
    const user = at < 0 ? text : text.slice(0, at);
    const server = at < 0 ? SERVER : text.slice(at + 1);
    return { user, server, _serialized: `${user}@${server}` };
  }

  function toWid(widOrString) {
    return typeof widOrString === 'string' ? createWid(widOrString) : createWid(widOrString._serialized);
  }

  function messageModel({ id, fromMe, remote, from, to, body, t, notifyName, isNewMsg = true }) {
    const model = {
      id: { fromMe, remote, id, _serialized: `${fromMe}_${remote}_${id}` },
      from, to, body, t, type: 'chat', isNewMsg, fromMe, notifyName,
    };
    // Like the real models: a plain copy that survives page.evaluate's JSON.
    Object.defineProperty(model, 'serialize', { value: () => JSON.parse(JSON.stringify(model)) });
    return model;
  }

  // --- the browser's own storage -------------------------------------------------------------------

  // IndexedDB, as WhatsApp keeps its keys: a transaction is on disk once it completes, so a browser
  // killed right after linking still comes back linked (Chromium batches localStorage writes for a
  // minute or more). Reads come from a copy loaded before the page starts; writes go through.
  // The message history ('msgs') lives there too: what the page received survives a restart, so a
  // driver that died between the page taking a message and handling it can find it again.
  const DB_NAME = 'wawc';
  const DB_STORE = 'user';
  const HISTORY_STORE = 'msgs';
  const HISTORY_LIMIT = 1000;
  const cached = new Map();
  const history = [];
  let db = null;

  function readAll(store, each) {
    return new Promise((resolve, reject) => {
      const tx = db.transaction(store, 'readonly');
      const cursor = tx.objectStore(store).openCursor();
      cursor.onsuccess = () => {
        const at = cursor.result;
        if (at) { each(at.key, at.value); at.continue(); }
      };
      tx.oncomplete = () => resolve();
      tx.onerror = () => reject(tx.error);
    });
  }

  function openStorage() {
    return new Promise((resolve, reject) => {
      const request = indexedDB.open(DB_NAME, 2);
      request.onupgradeneeded = () => {
        for (const store of [DB_STORE, HISTORY_STORE]) {
          if (!request.result.objectStoreNames.contains(store)) request.result.createObjectStore(store);
        }
      };
      request.onerror = () => reject(request.error);
      request.onsuccess = () => {
        db = request.result;
        readAll(DB_STORE, (key, value) => cached.set(key, value))
          .then(() => readAll(HISTORY_STORE, (_key, value) => history.push(value)))
          .then(resolve, reject);
      };
    });
  }

  // Resolves once the message is on disk: only then is it acknowledged to the service.
  function remember(model) {
    return new Promise((resolve) => {
      const tx = db.transaction(HISTORY_STORE, 'readwrite', { durability: 'strict' });
      tx.objectStore(HISTORY_STORE).put(model.serialize(), model.id._serialized);
      tx.oncomplete = () => resolve();
      tx.onerror = () => resolve();
    });
  }

  function restoreHistory() {
    history.sort((a, b) => a.t - b.t);
    const stale = history.splice(0, Math.max(0, history.length - HISTORY_LIMIT));
    if (stale.length) {
      const tx = db.transaction(HISTORY_STORE, 'readwrite');
      for (const old of stale) tx.objectStore(HISTORY_STORE).delete(old.id._serialized);
    }
    for (const saved of history) {
      Chat.findOrAdd(createWid(saved.id.remote));
      Msg.restore(messageModel(Object.assign({}, saved, saved.id, { isNewMsg: false })));
    }
  }

  function forgetHistory() {
    db.transaction(HISTORY_STORE, 'readwrite').objectStore(HISTORY_STORE).clear();
  }

  function persist(key, value) {
    const tx = db.transaction(DB_STORE, 'readwrite', { durability: 'strict' });
    if (value === null) tx.objectStore(DB_STORE).delete(key);
    else tx.objectStore(DB_STORE).put(value, key);
  }

  const storage = {
    get(key) { return cached.has(key) ? cached.get(key) : null; },
    set(key, value) { cached.set(key, value); persist(key, value); },
    remove(key) { cached.delete(key); persist(key, null); },
  };

  function randomBytes(n) { const bytes = new Uint8Array(n); crypto.getRandomValues(bytes); return bytes; }
  function randomB64(n) { return btoa(String.fromCharCode(...randomBytes(n))); }
  function randomHex(n) { return [...randomBytes(n)].map((b) => b.toString(16).padStart(2, '0')).join(''); }

  function loadOrCreate(key, create) {
    let value = storage.get(key);
    if (value === null) { value = create(); storage.set(key, value); }
    return value;
  }

  // Generated once per browser profile (at boot, below); logout forgets the link, not the identity.
  let deviceId = null;
  let keys = null;

  function linkedPhone() {
    const bundle = storage.get('WASecretBundle');
    return bundle && bundle.deviceId === deviceId ? bundle.wid : null;
  }

  function rememberLink(wid, pushname) {
    storage.set('WASecretBundle', { deviceId, wid, pushname });
    storage.set('last-wid-md', `${wid}@${SERVER}`);
  }

  function forgetLink() {
    storage.remove('WASecretBundle');
    storage.remove('last-wid-md');
  }

  // --- state changes -------------------------------------------------------------------------------

  function setState(state, { silent = false } = {}) {
    if (Socket.state === state) return;
    Socket.state = state;
    transmit({ type: 'state', state });
    render();
    if (!silent) Socket.trigger('change:state', Socket, state);
  }

  function setRef(ref) {
    if (Conn.ref === ref) return;
    Conn.ref = ref;
    render();
    Conn.trigger('change:ref', Conn, ref);
  }

  function onRef(ref) {
    if (linkedPhone() !== null) onLogout(); // the service no longer knows our link
    setRef(ref);
    setState('UNPAIRED');
  }

  function onPaired({ wid, pushname }) {
    rememberLink(wid, pushname);
    setRef(null);
    setState('PAIRING');
    hello();
  }

  function onConnected({ wid, pushname }) {
    rememberLink(wid, pushname);
    Conn.wid = createWid(wid);
    Conn.pushname = pushname;
    setState('CONNECTED');
  }

  function onLogout() {
    forgetLink();
    Conn.wid = null;
    Conn.pushname = '';
    held.length = 0;
    Msg.reset();
    Chat.reset();
    forgetHistory();
    setRef(null);
    Cmd.trigger('logout');
    setState('UNPAIRED');
  }

  function onIncoming({ seq, id, from, body, t, name }) {
    const remote = `${from}@${SERVER}`;
    Chat.findOrAdd(createWid(remote));
    const model = messageModel({
      id, fromMe: false, remote, from: remote, to: Conn.wid ? Conn.wid._serialized : null, body, t, notifyName: name || '',
    });
    held.push({ seq, model });
    releaseHeld();
  }

  function releaseHeld() {
    while (held.length && Msg.listenerCount('add')) {
      const { seq, model } = held.shift();
      Msg.add(model);
      remember(model).then(() => transmit({ type: 'ack', seq }));
    }
  }

  // --- sending -------------------------------------------------------------------------------------

  const pendingSends = new Map();
  let nextRequest = 1;

  // options.id: a client-chosen message id; the server treats it as an idempotency key.
  function sendTextMsgToChat(chat, text, options) {
    return new Promise((resolve, reject) => {
      if (Socket.state !== 'CONNECTED' || !isOpen()) {
        reject(new Error(`cannot send: socket state is ${Socket.state}`));
        return;
      }
      if (!chat || !chat.id || !chat.id.user) {
        reject(new Error('sendTextMsgToChat needs a chat model'));
        return;
      }
      const req = nextRequest++;
      const timer = setTimeout(() => {
        pendingSends.delete(req);
        reject(new Error(`message not acknowledged by the server within ${PING_TIMEOUT_MS} ms`));
      }, PING_TIMEOUT_MS);
      pendingSends.set(req, { resolve, reject, timer, chat, body: String(text) });
      const id = options && options.id ? String(options.id) : undefined;
      transmit({ type: 'send', req, to: chat.id.user, body: String(text), id });
    });
  }

  function onSent({ req, id, t }) {
    const pending = pendingSends.get(req);
    if (!pending) return;
    pendingSends.delete(req);
    clearTimeout(pending.timer);
    const remote = pending.chat.id._serialized;
    Msg.add(messageModel({
      id, fromMe: true, remote, from: Conn.wid._serialized, to: remote, body: pending.body, t, notifyName: '',
    }));
    pending.resolve({ messageSendResult: 'OK', id });
  }

  function onSendError({ req, error }) {
    const pending = pendingSends.get(req);
    if (!pending) return;
    pendingSends.delete(req);
    clearTimeout(pending.timer);
    pending.reject(new Error(error));
  }

  function failPendingSends(reason) {
    for (const { reject, timer } of pendingSends.values()) { clearTimeout(timer); reject(new Error(reason)); }
    pendingSends.clear();
  }

  // --- the connection ------------------------------------------------------------------------------
  // One socket per page load. When it closes or stops answering the page goes to TIMEOUT and stays
  // there: reconnecting is the driver's job (it reloads the page).

  let socket = null;
  let heartbeat = null;
  // When the oldest unanswered ping went out (null: none outstanding). Measured per ping rather
  // than from the last pong, so a background tab whose timers Chromium throttles does not time out.
  let awaitingPongSince = null;
  let answered = false; // the service has sent something other than a pong on this socket

  function isOpen() { return socket !== null && socket.readyState === WebSocket.OPEN; }

  function transmit(frame) { if (isOpen()) socket.send(JSON.stringify(frame)); }

  function hello() { transmit({ type: 'hello', keys, wid: linkedPhone() }); }

  function ping() {
    if (awaitingPongSince === null) awaitingPongSince = Date.now();
    transmit({ type: 'ping' });
  }

  function connect() {
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/_sim/ws?device=${encodeURIComponent(deviceId)}`);
    awaitingPongSince = Date.now(); // opening counts as a ping: no answer, no connection
    heartbeat = setInterval(beat, PING_INTERVAL_MS);
    socket.onopen = () => { hello(); ping(); };
    socket.onmessage = (event) => dispatch(JSON.parse(event.data));
    socket.onclose = () => giveUp({ silent: false });
  }

  function onPong() {
    Socket.lastPongAt = Date.now();
    // Until the service has answered the hello, the opening still counts as unanswered: a hello
    // lost in a silent drop must end in TIMEOUT, not in an OPENING page that waits forever.
    if (answered) awaitingPongSince = null;
  }

  function beat() {
    // No pong for too long: the socket died and nobody was told. The state flips without an event,
    // which is what a driver's own heartbeat must notice by reading Socket.state.
    if (awaitingPongSince !== null && Date.now() - awaitingPongSince > PING_TIMEOUT_MS) giveUp({ silent: true });
    else ping();
  }

  function giveUp({ silent }) {
    if (socket === null) return;
    clearInterval(heartbeat);
    const dead = socket;
    socket = null;
    dead.onclose = null;
    dead.close();
    failPendingSends('socket closed before the server acknowledged the message');
    if (Socket.state !== 'CONFLICT') setState('TIMEOUT', { silent });
  }

  function dispatch(frame) {
    if (frame.type !== 'pong') answered = true;
    switch (frame.type) {
      case 'pong': onPong(); break;
      case 'ref': onRef(frame.ref); break;
      case 'paired': onPaired(frame); break;
      case 'connected': onConnected(frame); break;
      case 'msg': onIncoming(frame); break;
      case 'sent': onSent(frame); break;
      case 'send-error': onSendError(frame); break;
      case 'logout': onLogout(); break;
      case 'conflict': setState('CONFLICT'); giveUp({ silent: false }); break;
      default: console.warn('unknown frame from the simulator', frame);
    }
  }

  // --- the DOM (the cheap fallback a driver may read) ---------------------------------------------

  function element(tag, attributes = {}, text = '') {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function qrPayload() { return `${Conn.ref},${keys.noise},${keys.identity},${keys.adv}`; }

  // A picture that changes with every ref so a human sees it rotate; it is not a scannable QR code
  // (the simulator's /_sim/ page links devices instead of a camera).
  const CELLS = 33;

  function finderCell(x, y) {
    const lx = x < 7 ? x : x - (CELLS - 7);
    const ly = y < 7 ? y : y - (CELLS - 7);
    if (lx < 0 || ly < 0 || (x >= 7 && y >= 7)) return null;
    return lx === 0 || lx === 6 || ly === 0 || ly === 6 || (lx >= 2 && lx <= 4 && ly >= 2 && ly <= 4);
  }

  function drawPattern(canvas, text) {
    const size = canvas.width / CELLS;
    const ctx = canvas.getContext('2d');
    let seed = 2166136261;
    for (const ch of text) seed = Math.imul(seed ^ ch.charCodeAt(0), 16777619);
    ctx.fillStyle = '#fff';
    ctx.fillRect(0, 0, canvas.width, canvas.height);
    ctx.fillStyle = '#111b21';
    for (let y = 0; y < CELLS; y++) {
      for (let x = 0; x < CELLS; x++) {
        seed ^= seed << 13; seed ^= seed >>> 17; seed ^= seed << 5;
        const finder = finderCell(x, y);
        if (finder === null ? seed & 1 : finder) ctx.fillRect(x * size, y * size, size, size);
      }
    }
  }

  function view() {
    if (Socket.state === 'UNPAIRED' && Conn.ref) {
      const payload = qrPayload();
      const existing = document.querySelector('div[data-ref]');
      if (existing) {
        if (existing.getAttribute('data-ref') !== payload) {
          existing.setAttribute('data-ref', payload);
          drawPattern(existing.querySelector('canvas'), payload);
        }
        return null;
      }
      const landing = element('div', { class: 'landing' });
      const intro = element('div');
      intro.append(element('h1', {}, 'Use WhatsApp on your computer'),
        element('p', {}, 'Open WhatsApp on your phone, tap Linked devices and scan this code.'));
      const qr = element('div', { 'data-ref': payload });
      const canvas = element('canvas', { 'aria-label': 'Scan me!', role: 'img', width: '264', height: '264' });
      drawPattern(canvas, payload);
      qr.append(canvas);
      landing.append(intro, qr);
      return landing;
    }
    if (Socket.state === 'CONNECTED') {
      const pane = element('div', { id: 'pane-side', 'aria-label': 'Chat list' });
      pane.append(element('div', { class: 'header' }, `${Conn.pushname || Conn.wid.user} (+${Conn.wid.user})`));
      const chats = Chat.getModelsArray();
      if (!chats.length) pane.append(element('div', { class: 'empty' }, 'No chats yet'));
      for (const chat of chats) pane.append(element('div', { class: 'chat', role: 'row' }, `+${chat.id.user}`));
      return pane;
    }
    const messages = {
      OPENING: 'Loading your chats…',
      PAIRING: 'Logging in…',
      UNPAIRED: 'Loading a QR code…',
      TIMEOUT: 'Computer not connected. Reload the page to reconnect.',
      CONFLICT: 'WhatsApp is open in another window.',
    };
    const bad = Socket.state === 'TIMEOUT' || Socket.state === 'CONFLICT';
    return element('div', { class: bad ? 'status bad' : 'status' }, messages[Socket.state] || Socket.state);
  }

  function render() {
    const app = document.getElementById('app');
    if (!app) return;
    const next = view();
    if (next !== null) app.replaceChildren(next);
  }

  // --- the module system ---------------------------------------------------------------------------

  const modules = {
    WAWebSocketModel: { Socket },
    WAWebConnModel: { Conn },
    WAWebCmd: { Cmd },
    WAWebCollections: { Msg, Chat },
    WAWebWidFactory: { createWid },
    WAWebFindChatAction: { findOrCreateLatestChat: async (wid) => ({ chat: Chat.findOrAdd(toWid(wid)) }) },
    WAWebSendTextMsgChatAction: { sendTextMsgToChat },
    WAWebRegistrationUtils: {
      getNoiseKeyB64: async () => keys.noise,
      getIdentityKeyB64: async () => keys.identity,
      getADVSecretKey: async () => keys.adv,
      DEVICE_PLATFORM: 'Chrome',
    },
  };

  // Like the real page, the module system appears once the app has loaded its storage.
  openStorage().then(() => {
    deviceId = loadOrCreate('WABrowserId', () => randomHex(16));
    keys = loadOrCreate('WANoiseInfo', () => ({ noise: randomB64(32), identity: randomB64(32), adv: randomB64(32) }));
    window.require = function require(name) {
      if (!Object.prototype.hasOwnProperty.call(modules, name)) throw new Error(`Requiring unknown module "${name}"`);
      return modules[name];
    };
    const phone = linkedPhone();
    if (phone !== null) {
      Conn.wid = createWid(phone);
      Conn.pushname = storage.get('WASecretBundle').pushname || '';
      restoreHistory();
    }
    render();
    connect();
  });
})();
