/*
 * The simulated WhatsApp Web page. It offers, under the same names and with the same shapes, the
 * modules and members that whatsapp-web.js 1.34 (src/Client.js inject() and attachEventListeners(),
 * src/util/Injected/AuthStore/AuthStore.js, src/util/Injected/Utils.js) reads from the real page
 * on the paths of linking, ready, receiving, sending a text, logout and reconnect — and nothing of
 * our own invention. It keeps its link and its messages in IndexedDB and talks to the simulator over
 * one WebSocket (frames internal to the simulator). simulator/README.md is the contract.
 */
(function () {
  'use strict';

  const config = document.currentScript.dataset;
  const PING_INTERVAL_MS = Number(config.pingIntervalMs);
  const PING_TIMEOUT_MS = Number(config.pingTimeoutMs);
  const SYNC_DELAY_MS = Number(config.syncDelayMs);
  const VERSION = config.version;
  const WITHOUT = new Set((config.without || '').split(',').filter(Boolean));
  const RETRY_MAX_MS = 30000;
  const DEVICE_PLATFORM = 1; // CompanionWebClientType: Chrome
  const HISTORY_LIMIT = 1000;

  // --- Backbone-like events, models and collections ---------------------------------------------

  function hidden(target, name, value) {
    Object.defineProperty(target, name, { value, writable: true, configurable: true, enumerable: false });
  }

  const names = (events) => String(events).split(/\s+/).filter(Boolean);

  class Events {
    constructor() { hidden(this, '_handlers', new Map()); }

    on(events, callback, context) { return this._listen(events, callback, context, false); }

    once(events, callback, context) { return this._listen(events, callback, context, true); }

    _listen(events, callback, context, once) {
      for (const event of names(events)) {
        if (!this._handlers.has(event)) this._handlers.set(event, []);
        this._handlers.get(event).push({ callback, context, once });
      }
      return this;
    }

    off(events, callback) {
      if (events === undefined) { this._handlers.clear(); return this; }
      for (const event of names(events)) {
        const list = this._handlers.get(event) || [];
        this._handlers.set(event, callback ? list.filter((h) => h.callback !== callback) : []);
      }
      return this;
    }

    trigger(event, ...args) {
      const list = this._handlers.get(event);
      if (!list || !list.length) return this;
      for (const handler of [...list]) {
        if (handler.once) this._handlers.set(event, this._handlers.get(event).filter((h) => h !== handler));
        try {
          const result = handler.callback.apply(handler.context || this, args);
          if (result && typeof result.catch === 'function') result.catch((err) => console.error(`${event} listener failed`, err));
        } catch (err) { console.error(`${event} listener failed`, err); }
      }
      return this;
    }
  }

  // Plain data of a model, as `serialize()` on the real models gives it: wids stay objects
  // ({server, user, _serialized}), nothing of the model machinery comes along.
  function plain(value) {
    if (value === null || typeof value !== 'object') return value;
    if (value instanceof Wid) return { server: value.server, user: value.user, _serialized: value._serialized };
    if (value instanceof MsgKey) {
      const key = { fromMe: value.fromMe, remote: plain(value.remote), id: value.id, _serialized: value._serialized };
      if (value.participant) key.participant = plain(value.participant);
      return key;
    }
    if (value instanceof Model) return value.serialize();
    if (value instanceof Collection) return undefined;
    if (Array.isArray(value)) return value.map(plain);
    if (ArrayBuffer.isView(value)) return Array.from(value);
    const out = {};
    for (const [key, item] of Object.entries(value)) if (item !== undefined) out[key] = plain(item);
    return out;
  }

  class Model extends Events {
    constructor(attributes) {
      super();
      hidden(this, '_collections', new Set());
      Object.assign(this, attributes);
    }

    // Changes are applied first, then announced: `change:<attr>` (model, value, previous), then `change`.
    set(attributes) {
      const changed = [];
      for (const [key, value] of Object.entries(attributes)) {
        const previous = this[key];
        if (previous === value) continue;
        this[key] = value;
        changed.push([key, value, previous]);
      }
      for (const [key, value, previous] of changed) this.trigger(`change:${key}`, this, value, previous);
      if (changed.length) this.trigger('change', this);
      return this;
    }

    serialize() {
      const out = {};
      for (const [key, value] of Object.entries(this)) if (value !== undefined) out[key] = plain(value);
      return out;
    }

    // Model events reach every collection the model is in, as in Backbone.
    trigger(event, ...args) {
      super.trigger(event, ...args);
      for (const collection of this._collections) collection.trigger(event, ...args);
      return this;
    }
  }

  class Collection extends Events {
    constructor(modelClass) {
      super();
      hidden(this, '_byId', new Map());
      this.modelClass = modelClass;
    }

    get length() { return this._byId.size; }

    get(id) {
      if (id === undefined || id === null) return undefined;
      return this._byId.get(typeof id === 'string' ? id : id._serialized);
    }

    // Adding a model whose id is already there keeps the one there and fires nothing (Backbone).
    add(model, { silent = false } = {}) {
      const item = model instanceof Model ? model : new this.modelClass(model);
      const existing = this.get(item.id);
      if (existing) return existing;
      this._byId.set(item.id._serialized, item);
      item._collections.add(this);
      if (!silent) this.trigger('add', item, this, {});
      return item;
    }

    remove(model) {
      const item = this.get(model && model.id ? model.id : model);
      if (!item) return undefined;
      this._byId.delete(item.id._serialized);
      item._collections.delete(this);
      this.trigger('remove', item, this, {});
      return item;
    }

    getModelsArray() { return [...this._byId.values()]; }

    toArray() { return this.getModelsArray(); }

    forEach(fn) { this.getModelsArray().forEach(fn); }

    filter(fn) { return this.getModelsArray().filter(fn); }

    map(fn) { return this.getModelsArray().map(fn); }

    reset() {
      for (const item of this._byId.values()) item._collections.delete(this);
      this._byId.clear();
    }
  }

  // --- ids: Wid and MsgKey ------------------------------------------------------------------------

  const WID = /^(?:[0-9]{1,20}(?:-[0-9]{1,20})?@(?:c\.us|lid|g\.us|newsletter|s\.whatsapp\.net)|status@broadcast)$/;

  class Wid {
    constructor(serialized) {
      const at = serialized.indexOf('@');
      this.server = serialized.slice(at + 1);
      this.user = serialized.slice(0, at);
      this._serialized = serialized;
    }

    isUser() { return this.server === 'c.us' || this.server === 'lid'; }

    isLid() { return this.server === 'lid'; }

    isGroup() { return this.server === 'g.us'; }

    isBroadcast() { return this.server === 'broadcast'; }

    isStatus() { return this.user === 'status' && this.server === 'broadcast'; }

    isNewsletter() { return this.server === 'newsletter'; }

    equals(other) { return Boolean(other) && this._serialized === (typeof other === 'string' ? other : other._serialized); }

    toString() { return this._serialized; }

    toJSON() { return this._serialized; }
  }

  function createWid(id) {
    if (id instanceof Wid) return id;
    let text = typeof id === 'string' ? id : id && id._serialized;
    if (typeof text === 'string' && !text.includes('@')) text = `${text}@c.us`;
    if (typeof text !== 'string' || !WID.test(text)) throw new Error(`invalid wid: ${JSON.stringify(id)}`);
    return new Wid(text);
  }

  function asUserWidOrThrow(id) {
    const wid = createWid(id);
    if (!wid.isUser()) throw new Error(`not a user wid: ${wid._serialized}`);
    return wid;
  }

  function randomBytes(n) { const bytes = new Uint8Array(n); crypto.getRandomValues(bytes); return bytes; }
  function randomHex(n) { return [...randomBytes(n)].map((b) => b.toString(16).padStart(2, '0')).join(''); }
  function encodeB64(bytes) {
    const view = bytes instanceof ArrayBuffer ? new Uint8Array(bytes) : new Uint8Array(bytes.buffer, bytes.byteOffset, bytes.byteLength);
    let text = '';
    for (const byte of view) text += String.fromCharCode(byte);
    return btoa(text);
  }
  function decodeB64(text) { return Uint8Array.from(atob(text), (c) => c.charCodeAt(0)); }

  class MsgKey {
    // As whatsapp-web.js builds one: {from, to, id, participant, selfDir: 'out'}; or {fromMe, remote, id, participant}.
    constructor({ from, to, id, participant, selfDir, fromMe, remote }) {
      if (!id) throw new Error('MsgKey needs an id');
      const own = selfDir !== undefined ? selfDir === 'out' : Boolean(fromMe);
      this.fromMe = own;
      this.remote = createWid(remote !== undefined ? remote : own ? to : from);
      this.id = String(id);
      if (participant) this.participant = createWid(participant);
      this._serialized = [String(own), this.remote._serialized, this.id]
        .concat(this.participant ? [this.participant._serialized] : []).join('_');
    }

    static async newId() { return `3EB0${randomHex(9).toUpperCase()}`; }

    static fromString(serialized) {
      const [fromMe, remote, id, participant] = String(serialized).split('_');
      return new MsgKey({ fromMe: fromMe === 'true', remote, id, participant });
    }

    equals(other) { return Boolean(other) && this._serialized === (typeof other === 'string' ? other : other._serialized); }

    toString() { return this._serialized; }
  }

  const keyOf = (plainKey) => new MsgKey(plainKey);

  // --- the models of the app -----------------------------------------------------------------------

  const MEDIA_TYPES = new Set(['image', 'video', 'audio', 'ptt', 'document', 'sticker']);

  class MsgModel extends Model {
    get isStatusV3() { return this.id.remote.isStatus(); }

    get isEphemeral() { return false; }

    get mediaObject() { return MEDIA_TYPES.has(this.type) && this.directPath ? { type: this.type, mimetype: this.mimetype } : undefined; }

    unsafe() { return this; }

    canReply() { return this.type !== 'revoked' && !this.id.remote.isNewsletter(); }

    // What a quoted reply to this message carries (merged into the reply by the sender).
    msgContextInfo() {
      return {
        quotedMsg: { type: this.type, body: this.body },
        quotedStanzaID: this.id.id,
        quotedParticipant: this.author || this.from,
        quotedRemoteJid: this.id.remote,
      };
    }

    updateAck(ack) { this.set({ ack }); }
  }

  class ChatModel extends Model {
    constructor(attributes) {
      super(attributes);
      hidden(this, 'msgs', new Collection(MsgModel));
    }

    get formattedTitle() { return this.name || (this.id.isUser() ? `+${this.id.user}` : this.id.user); }

    get isGroup() { return this.id.isGroup(); }
  }

  class MsgCollection extends Collection {
    constructor() { super(MsgModel); }

    // Messages by serialized key, from memory or from the page's own storage.
    async getMessagesById(ids) {
      const messages = [];
      for (const id of ids || []) {
        const found = this.get(id) || (storedMessages.has(id) ? restoreMessage(storedMessages.get(id)) : undefined);
        if (found) messages.push(found);
      }
      return { messages };
    }
  }

  class ChatCollection extends Collection {
    constructor() { super(ChatModel); }

    findOrAdd(wid) {
      const id = createWid(wid);
      let chat = this.get(id);
      if (!chat) {
        chat = new ChatModel({
          id, name: '', t: Math.floor(Date.now() / 1000), unreadCount: 0, archive: false, isReadOnly: false,
          mute: { expiration: 0 }, pin: 0,
        });
        if (id.isGroup()) {
          chat.groupMetadata = new Model({ id, subject: `Group ${id.user}`, participants: [], announce: false, isLidAddressingMode: false });
        }
        this.add(chat);
        render();
      }
      return chat;
    }
  }

  const Msg = new MsgCollection();
  const Chat = new ChatCollection();
  const GroupMetadata = Object.assign(new Collection(Model), { update: async () => undefined });
  const Socket = new Model({ state: 'UNLAUNCHED', hasSynced: false });
  const Conn = new Model({ ref: null, pushname: '', platform: '', battery: null, plugged: null });
  const Cmd = new Events();
  const Stream = new Model({ available: false });
  let me = null; // { pn: Wid, lid: Wid } once linked

  // --- the browser's own storage -------------------------------------------------------------------

  // IndexedDB, as WhatsApp keeps its keys: a transaction is on disk once it completes, so a browser
  // killed right after linking still comes back linked (Chromium batches localStorage writes for a
  // minute or more). Reads come from a copy loaded before the page starts; writes go through.
  // 'msgs' holds every message the page received or sent (the last HISTORY_LIMIT); 'contacts' the
  // LID → phone number map the service told it.
  const DB_NAME = 'wawc';
  const USER = 'user';
  const MSGS = 'msgs';
  const CONTACTS = 'contacts';
  const cached = new Map();
  const storedMessages = new Map();
  const lidToPn = new Map();
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
      const request = indexedDB.open(DB_NAME, 3);
      request.onupgradeneeded = () => {
        for (const store of [USER, MSGS, CONTACTS]) {
          if (!request.result.objectStoreNames.contains(store)) request.result.createObjectStore(store);
        }
      };
      request.onerror = () => reject(request.error);
      request.onsuccess = () => {
        db = request.result;
        readAll(USER, (key, value) => cached.set(key, value))
          .then(() => readAll(MSGS, (key, value) => storedMessages.set(key, value)))
          .then(() => readAll(CONTACTS, (key, value) => lidToPn.set(key, value)))
          .then(resolve, reject);
      };
    });
  }

  // The link is written with 'strict' durability (flushed to the disk); messages with the default,
  // which a killed browser keeps too (the data is with the OS once the transaction completes) and
  // which does not cost a flush per message.
  function write(store, key, value) {
    return new Promise((resolve) => {
      const tx = db.transaction(store, 'readwrite', { durability: store === USER ? 'strict' : 'default' });
      if (value === null) tx.objectStore(store).delete(key);
      else tx.objectStore(store).put(value, key);
      tx.oncomplete = () => resolve();
      tx.onerror = () => resolve();
    });
  }

  function clearStores(...stores) {
    return new Promise((resolve) => {
      const tx = db.transaction(stores, 'readwrite', { durability: 'strict' });
      for (const store of stores) tx.objectStore(store).clear();
      tx.oncomplete = () => resolve();
      tx.onerror = () => resolve();
    });
  }

  const storage = {
    get(key) { return cached.has(key) ? cached.get(key) : null; },
    set(key, value) { cached.set(key, value); return write(USER, key, value); },
    remove(key) { cached.delete(key); return write(USER, key, null); },
  };

  // Resolves once the message is on disk: only then is it acknowledged to the service, and only
  // then does a message of ours go out.
  function remember(model) {
    const data = model.serialize();
    if (model.decrypt) data.decrypt = model.decrypt;
    storedMessages.set(model.id._serialized, data);
    return write(MSGS, model.id._serialized, data);
  }

  function loadOrCreate(key, create) {
    let value = storage.get(key);
    if (value === null) { value = create(); storage.set(key, value); }
    return value;
  }

  // --- turning stored and wire data into models ---------------------------------------------------

  const WID_FIELDS = ['from', 'to', 'author'];

  function modelOf(data, extra) {
    const attributes = Object.assign({}, data, extra);
    attributes.id = keyOf(data.id || data.key);
    delete attributes.key;
    delete attributes.decrypt;
    for (const field of WID_FIELDS) if (attributes[field]) attributes[field] = createWid(attributes[field]);
    const model = new MsgModel(attributes);
    if (data.decrypt) hidden(model, 'decrypt', data.decrypt);
    return model;
  }

  // A message from the page's storage goes back into its chat and into Msg, without an `add` event.
  function restoreMessage(data) {
    const model = modelOf(data, { isNewMsg: false });
    if (model.type === 'ciphertext' && model.decrypt) { model.body = model.decrypt.body; model.type = model.decrypt.type; }
    const chat = Chat.findOrAdd(model.id.remote);
    chat.msgs.add(model, { silent: true });
    return Msg.add(model, { silent: true });
  }

  function restoreHistory() {
    const saved = [...storedMessages.values()].sort((a, b) => a.t - b.t);
    const stale = saved.splice(0, Math.max(0, saved.length - HISTORY_LIMIT));
    for (const old of stale) { storedMessages.delete(old.id._serialized); write(MSGS, old.id._serialized, null); }
    for (const data of saved) restoreMessage(data);
  }

  // --- linking --------------------------------------------------------------------------------------

  // Generated once per browser profile (at boot, below); logout forgets the link, not the identity.
  let deviceId = null;
  let keys = null;

  function linkedPhone() {
    const bundle = storage.get('WASecretBundle');
    return bundle && bundle.deviceId === deviceId ? bundle.wid : null;
  }

  function setMe(wid, lid) {
    me = { pn: createWid(`${wid}@c.us`), lid: lid ? createWid(`${lid}@lid`) : null };
  }

  function rememberLink({ wid, lid, pushname, platform }) {
    storage.set('WASecretBundle', { deviceId, wid, lid: lid || null, pushname: pushname || '', platform: platform || '' });
    storage.set('last-wid-md', `${wid}@c.us`);
  }

  // --- state changes -------------------------------------------------------------------------------

  function setState(state, { silent = false } = {}) {
    if (Socket.state === state) return;
    transmit({ type: 'state', state });
    if (silent) Socket.state = state;
    else Socket.set({ state });
    render();
  }

  function onRef(ref) {
    Conn.set({ ref });
    setState('UNPAIRED');
    render(); // a rotation keeps the state: the QR still has to show the new ref
  }

  function onIdle() { setState('UNPAIRED_IDLE'); }

  function onPaired(frame) {
    rememberLink(frame);
    setState('PAIRING');
    hello();
  }

  let syncTimer = null;

  function onConnected(frame) {
    rememberLink(frame);
    setMe(frame.wid, frame.lid);
    Conn.set({ pushname: frame.pushname || '', platform: frame.platform || '' });
    retryDelay = PING_INTERVAL_MS;
    setState('CONNECTED');
    resendPending();
  }

  // The offline messages are in: WhatsApp Web has synced (once per page load).
  function onSynced() {
    if (Socket.hasSynced || syncTimer !== null) return;
    Cmd.trigger('offline_progress_update_from_bridge');
    syncTimer = setTimeout(() => { offlineProgress = 100; Socket.set({ hasSynced: true }); }, SYNC_DELAY_MS);
  }

  // The phone unlinked this page (`logout_from_bridge`), or the page logged itself out (`logout`):
  // its storage is cleared, then it reloads to a fresh QR like WhatsApp Web (`?post_logout=1`).
  async function logOut(event) {
    Cmd.trigger(event);
    closeSocket();
    me = null;
    storedMessages.clear();
    lidToPn.clear();
    Msg.reset();
    Chat.reset();
    cached.delete('WASecretBundle');
    cached.delete('last-wid-md');
    await Promise.all([storage.remove('WASecretBundle'), storage.remove('last-wid-md'), clearStores(MSGS, CONTACTS)]);
    location.replace('/?post_logout=1');
  }

  // --- incoming ------------------------------------------------------------------------------------

  function learnContacts(contacts) {
    for (const { lid, pn } of contacts || []) {
      if (lidToPn.get(lid) === pn) continue;
      lidToPn.set(lid, pn);
      write(CONTACTS, lid, pn);
    }
  }

  function onIncoming(frame) {
    learnContacts(frame.contacts);
    let stored;
    if (frame.op === 'add') stored = receive(frame.msg);
    else if (frame.op === 'revoke') stored = revoke(frame);
    else if (frame.op === 'edit') stored = edit(frame);
    else if (frame.op === 'reaction') stored = react(frame);
    else stored = Promise.resolve();
    stored.then(() => transmit({ type: 'ack', seq: frame.seq }));
  }

  function receive(data) {
    const model = modelOf(data, { isNewMsg: true, ack: data.ack || 1, self: data.self || 'in', star: false, isForwarded: false,
      forwardingScore: 0, mentionedJidList: [], groupMentions: [], links: [] });
    if (Msg.get(model.id)) return Promise.resolve(); // the collection keeps one model per key
    const chat = Chat.findOrAdd(model.id.remote);
    chat.msgs.add(model, { silent: true });
    Msg.add(model);
    if (!model.id.fromMe) { chat.lastReceivedKey = model.id; chat.set({ t: model.t, unreadCount: chat.unreadCount + 1 }); }
    if (model.type === 'ciphertext' && model.decrypt) {
      const { type, body, after_ms: afterMs } = model.decrypt;
      setTimeout(() => {
        if (model.type !== 'ciphertext') return;
        model.body = body;
        model.set({ type });
        remember(model);
      }, afterMs);
    }
    return remember(model);
  }

  function revoke({ target }) {
    const model = Msg.get(keyOf(target)._serialized);
    if (!model) return Promise.resolve();
    model.set({ type: 'revoked', subtype: 'sender_revoke', body: '', caption: undefined });
    return remember(model);
  }

  function edit({ target, key, body, t }) {
    const model = Msg.get(keyOf(target)._serialized);
    if (!model) return Promise.resolve();
    const field = model.mediaObject ? 'caption' : 'body';
    model.set({ latestEditMsgKey: keyOf(key), latestEditSenderTimestampMs: t * 1000, [field]: body });
    return remember(model);
  }

  // Reactions are not messages on WhatsApp Web: they go to the reactions table.
  function react({ target, key, body, t }) {
    const parent = keyOf(target);
    const from = parent.participant || parent.remote;
    return Promise.resolve(reactionTable.reactionTableMode.bulkUpsert([{
      id: keyOf(key), reactionParentKey: parent, reactionText: body, reactionTimestamp: t * 1000, from,
      author: parent.participant, read: false, orphan: 0, orphanReason: null,
    }]));
  }

  // Patched by whoever hooks reactions (whatsapp-web.js wraps bulkUpsert): the page calls it through here.
  const reactions = new Map();
  const reactionTable = {
    reactionTableMode: {
      bulkUpsert: async (rows) => { for (const row of rows) reactions.set(row.id._serialized, row); return rows; },
    },
  };

  // --- sending -------------------------------------------------------------------------------------

  const sending = new Map(); // key → {resolve} of the send results waiting for the service
  const requests = new Map(); // req → key
  let nextRequest = 1;

  // WAWebSendMsgChatAction.addAndSendMsgToChat(chat, msgData) → [msgPromise, sendResultPromise].
  // The message is added to its chat and Msg (an `add` event, id.fromMe) and stored; then it goes
  // out, now or when the page is next connected. A key the page already holds is refused.
  function addAndSendMsgToChat(chat, data) {
    if (!chat || !(chat.id instanceof Wid)) {
      const refused = Promise.reject(new Error('addAndSendMsgToChat needs a chat model'));
      return [refused, refused];
    }
    if (!(data && data.id instanceof MsgKey)) {
      const refused = Promise.reject(new Error('addAndSendMsgToChat needs a message with a MsgKey id'));
      return [refused, refused];
    }
    if (Msg.get(data.id._serialized) || storedMessages.has(data.id._serialized)) {
      const refused = Promise.reject(new Error(`a message with key ${data.id._serialized} already exists`));
      return [refused, refused];
    }
    const model = new MsgModel(Object.assign({ ack: 0, isNewMsg: true, type: 'chat' }, data));
    chat.msgs.add(model, { silent: true });
    Msg.add(model);
    chat.set({ t: model.t });
    const stored = remember(model).then(() => model);
    const result = stored.then(() => new Promise((resolve) => {
      sending.set(model.id._serialized, resolve);
      transmitMessage(model, false);
    }));
    return [stored, result];
  }

  function transmitMessage(model, resend) {
    if (Socket.state !== 'CONNECTED' || !isOpen()) return; // goes out when the page is connected again
    const req = nextRequest++;
    requests.set(req, model.id._serialized);
    transmit({ type: 'send', req, id: model.id.id, chat: model.id.remote._serialized, body: String(model.body || ''), resend });
  }

  // After a reconnect (or a restart of the page) what is stored and was never acknowledged goes out again.
  function resendPending() {
    for (const model of Msg.getModelsArray()) {
      if (model.id.fromMe && model.self === 'out' && model.local && model.ack === 0) transmitMessage(model, true);
    }
  }

  function onSent({ req, t }) {
    const key = requests.get(req);
    requests.delete(req);
    const model = key && Msg.get(key);
    if (!model) return;
    if (model.ack < 1) { model.set({ ack: 1 }); remember(model); }
    const resolve = sending.get(key);
    sending.delete(key);
    if (resolve) resolve({ messageSendResult: 'OK', t });
  }

  function onSendError({ req, error }) {
    const key = requests.get(req);
    requests.delete(req);
    const resolve = key && sending.get(key);
    sending.delete(key);
    if (resolve) resolve({ messageSendResult: 'ERROR_UNKNOWN', error });
  }

  // --- the connection ------------------------------------------------------------------------------
  // One socket at a time. When it closes or stops answering, the page goes to TIMEOUT and retries
  // by itself with a growing delay, as WhatsApp Web does.

  let socket = null;
  let heartbeat = null;
  let retryTimer = null;
  let retryDelay = PING_INTERVAL_MS;
  let offlineProgress = 0;
  // When the oldest unanswered ping went out (null: none outstanding). Measured per ping rather
  // than from the last pong, so a background tab whose timers Chromium throttles does not time out.
  let awaitingPongSince = null;
  let answered = false; // the service has sent something other than a pong on this socket

  function isOpen() { return socket !== null && socket.readyState === WebSocket.OPEN; }

  function transmit(frame) { if (isOpen()) socket.send(JSON.stringify(frame)); }

  // The device's name for the phone's list of linked devices, as WhatsApp Web registers it (whatsapp-web.js's
  // deviceName/browserName options replace WAWebMiscBrowserUtils.info to set it).
  function browserInfo() {
    try { const info = window.require('WAWebMiscBrowserUtils').info(); return { name: String(info.name || ''), os: String(info.os || '') }; } catch (e) { return null; }
  }

  function hello() { transmit({ type: 'hello', keys: { noise: keys.noise, identity: keys.identity, adv: keys.adv }, wid: linkedPhone(), browser: browserInfo() }); }

  function ping() {
    if (awaitingPongSince === null) awaitingPongSince = Date.now();
    transmit({ type: 'ping' });
  }

  function connect() {
    clearTimeout(retryTimer);
    retryTimer = null;
    setState('OPENING');
    const scheme = location.protocol === 'https:' ? 'wss' : 'ws';
    socket = new WebSocket(`${scheme}://${location.host}/_sim/ws?device=${encodeURIComponent(deviceId)}`);
    answered = false;
    awaitingPongSince = Date.now(); // opening counts as a ping: no answer, no connection
    heartbeat = setInterval(beat, PING_INTERVAL_MS);
    socket.onopen = () => { hello(); ping(); };
    socket.onmessage = (event) => dispatch(JSON.parse(event.data));
    socket.onclose = () => giveUp({ silent: false });
  }

  function onPong() {
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

  function closeSocket() {
    clearInterval(heartbeat);
    clearTimeout(retryTimer);
    retryTimer = null;
    if (socket === null) return;
    const dead = socket;
    socket = null;
    dead.onclose = null;
    dead.close();
    requests.clear(); // sends in flight stay pending and go out again after the reconnect
  }

  function giveUp({ silent }) {
    if (socket === null) return;
    closeSocket();
    if (Socket.state === 'CONFLICT') return;
    setState('TIMEOUT', { silent });
    retryTimer = setTimeout(connect, retryDelay);
    retryDelay = Math.min(retryDelay * 2, RETRY_MAX_MS);
  }

  function dispatch(frame) {
    if (frame.type !== 'pong') answered = true;
    switch (frame.type) {
      case 'pong': onPong(); break;
      case 'ref': onRef(frame.ref); break;
      case 'idle': onIdle(); break;
      case 'paired': onPaired(frame); break;
      case 'connected': onConnected(frame); break;
      case 'synced': onSynced(); break;
      case 'msg': onIncoming(frame); break;
      case 'sent': onSent(frame); break;
      case 'send-error': onSendError(frame); break;
      case 'logout': logOut('logout_from_bridge'); break;
      case 'conflict': closeSocket(); setState('CONFLICT'); break;
      default: console.warn('unknown frame from the simulator', frame);
    }
  }

  // --- the DOM (what a person sees; drivers read the modules) --------------------------------------

  function element(tag, attributes = {}, text = '') {
    const node = document.createElement(tag);
    for (const [name, value] of Object.entries(attributes)) node.setAttribute(name, value);
    if (text) node.textContent = text;
    return node;
  }

  function qrPayload() { return [Conn.ref, keys.noise, keys.identity, keys.adv, DEVICE_PLATFORM].join(','); }

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
    if (Socket.state === 'CONNECTED' && me) {
      const pane = element('div', { id: 'pane-side', 'aria-label': 'Chat list' });
      pane.append(element('div', { class: 'header' }, `${Conn.pushname || me.pn.user} (+${me.pn.user})`));
      const chats = Chat.getModelsArray();
      if (!chats.length) pane.append(element('div', { class: 'empty' }, 'No chats yet'));
      for (const chat of chats) pane.append(element('div', { class: 'chat', role: 'row' }, chat.formattedTitle));
      return pane;
    }
    const messages = {
      UNLAUNCHED: 'Loading…',
      OPENING: 'Loading your chats…',
      PAIRING: 'Logging in…',
      UNPAIRED: 'Loading a QR code…',
      UNPAIRED_IDLE: 'Click to reload QR code',
      TIMEOUT: 'Computer not connected. Trying to reach your phone…',
      CONFLICT: 'WhatsApp is open in another window. Click "Use here" to use WhatsApp in this window.',
    };
    const bad = Socket.state === 'TIMEOUT' || Socket.state === 'CONFLICT';
    if (Socket.state === 'UNPAIRED_IDLE') { // like WhatsApp Web: a click asks for new codes
      const reload = element('button', { class: 'status', type: 'button' }, messages.UNPAIRED_IDLE);
      reload.onclick = () => modules.WAWebCmd.Cmd.refreshQR();
      return reload;
    }
    return element('div', { class: bad ? 'status bad' : 'status' }, messages[Socket.state] || Socket.state);
  }

  function render() {
    const app = document.getElementById('app');
    if (!app) return;
    const next = view();
    if (next !== null) app.replaceChildren(next);
  }

  // --- the module system ---------------------------------------------------------------------------

  const LINK = /\bhttps?:\/\/[^\s<>"']+/gi;

  function getPhoneNumber(wid) {
    const pn = lidToPn.get(createWid(wid)._serialized);
    return pn ? createWid(pn) : undefined;
  }

  function getCurrentLid(wid) {
    const pn = createWid(wid)._serialized;
    for (const [lid, known] of lidToPn) if (known === pn) return createWid(lid);
    return undefined;
  }

  function noiseInfo() {
    return { staticKeyPair: { pubKey: decodeB64(keys.noise), privKey: decodeB64(keys.noisePriv) } };
  }

  const modules = {
    WAWebSocketModel: { Socket },
    WAWebConnModel: { Conn },
    WAWebCmd: {
      Cmd: Object.assign(Cmd, {
        refreshQR() { if (Socket.state === 'UNPAIRED_IDLE') transmit({ type: 'refresh' }); },
      }),
    },
    WAWebStreamModel: { Stream: Object.assign(Stream, { markAvailable() { Stream.set({ available: true }); }, markUnavailable() { Stream.set({ available: false }); } }) },
    WAWebOfflineHandler: { OfflineMessageHandler: { getOfflineDeliveryProgress: () => offlineProgress } },
    WAWebAltDeviceLinkingApi: {
      setPairingType() {},
      initializeAltDeviceLinking: async () => { throw new Error('pairing by code is not simulated: scan the QR'); },
      startAltLinkingFlow: async () => { throw new Error('pairing by code is not simulated: scan the QR'); },
      initializeQRLinking: async () => undefined,
    },
    WABase64: { encodeB64, decodeB64 },
    WAWebCompanionRegClientUtils: { DEVICE_PLATFORM },
    WAWebAdvSignatureApi: {},
    WAWebUserPrefsInfoStore: { waNoiseInfo: { get: async () => noiseInfo() } },
    WAWebSignalStoreApi: {
      waSignalStore: {
        getRegistrationInfo: async () => ({
          registrationId: keys.registrationId,
          identityKeyPair: { pubKey: decodeB64(keys.identity), privKey: decodeB64(keys.identityPriv) },
        }),
      },
    },
    WAWebUserPrefsMultiDevice: { getADVSecretKey: () => keys.adv },
    WAWebUserPrefsMeUser: {
      getMaybeMePnUser: () => (me ? me.pn : undefined),
      getMaybeMeLidUser: () => (me && me.lid ? me.lid : undefined),
    },
    WAWebMiscBrowserUtils: { info: () => ({ name: 'Chrome', os: 'Linux', version: navigator.userAgent }) },
    WAWebCollections: { Msg, Chat, GroupMetadata },
    WAWebWidFactory: { createWid, asUserWidOrThrow },
    WAWebMsgKey: MsgKey,
    WAWebFindChatAction: { findOrCreateLatestChat: async (wid) => ({ chat: Chat.findOrAdd(createWid(wid)) }) },
    WAWebSendMsgChatAction: { addAndSendMsgToChat },
    WAWebChatGetters: {
      getIsNewsletter: (chat) => chat.id.isNewsletter(),
      getIsBroadcast: (chat) => chat.id.isBroadcast(),
      getIsGroup: (chat) => chat.id.isGroup(),
    },
    WAWebGetEphemeralFieldsMsgActionsUtils: { getEphemeralFields: () => ({}) },
    WAWebMsgReply: { canReplyMsg: (msg) => msg.canReply() },
    WAWebUpdateUnreadChatAction: { sendSeen: async ({ chat }) => { chat.set({ unreadCount: 0 }); } },
    WALinkify: {
      findLink: (text) => { const m = String(text || '').match(LINK); return m ? { href: m[0], url: m[0] } : null; },
      findLinks: (text) => (String(text || '').match(LINK) || []).map((href) => ({ href, url: href })),
    },
    WAWebLinkPreviewChatAction: { getLinkPreview: async () => null },
    WAWebApiContact: { getPhoneNumber, getCurrentLid },
    WAWebLidMigrationUtils: { toPn: getPhoneNumber },
    WAWebSyncGatingUtils: { isPlaceholderMessageResendEnabled: () => false },
    WAWebNonMessageDataRequestPlaceholderMessageResendUtils: { handlePlaceholderMsgsSeen: async () => undefined },
    WAWebCallCollection: Object.assign(new Events(), { calls: new Map() }),
    WAWebAddonReactionTableMode: reactionTable,
  };

  // Socket.logout(): this page unlinks itself. Socket.takeover(): after CONFLICT, use WhatsApp here.
  Object.assign(Socket, {
    logout() { transmit({ type: 'logout' }); return logOut('logout'); },
    takeover() { if (Socket.state === 'CONFLICT') connect(); },
  });

  // Like the real page, the module system appears once the app has loaded its storage, and
  // window.Debug.VERSION with it (whatsapp-web.js waits for that before it touches a module).
  openStorage().then(() => {
    deviceId = loadOrCreate('WABrowserId', () => randomHex(16));
    keys = loadOrCreate('WANoiseInfo', () => ({}));
    if (!keys.noisePriv) {
      // Profiles from before the simulator kept private keys get them now (the public ones stay).
      keys = Object.assign({
        noise: encodeB64(randomBytes(32)), identity: encodeB64(randomBytes(32)), adv: encodeB64(randomBytes(32)),
      }, keys, {
        noisePriv: encodeB64(randomBytes(32)), identityPriv: encodeB64(randomBytes(32)),
        registrationId: 1 + Math.floor(Math.random() * 16380),
      });
      storage.set('WANoiseInfo', keys);
    }
    for (const name of WITHOUT) delete modules[name];
    window.require = function require(name) {
      if (!Object.prototype.hasOwnProperty.call(modules, name)) throw new Error(`Requiring unknown module "${name}"`);
      return modules[name];
    };
    window.Debug = { VERSION };
    const phone = linkedPhone();
    if (phone !== null) {
      const bundle = storage.get('WASecretBundle');
      setMe(phone, bundle.lid);
      Conn.set({ pushname: bundle.pushname || '', platform: bundle.platform || '' });
      restoreHistory();
    }
    render();
    connect();
  });
})();
