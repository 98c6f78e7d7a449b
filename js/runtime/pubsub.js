'use strict';
// Pub/sub for progress and completion. Topics carry the lambda and the request id:
//
//   tariffsim:<lambda>:<request-id>        e.g. tariffsim:simulate-chunk:run-42
//
// so anyone can tap in by pattern (`tariffsim:*:run-42` for a whole run). Messages are JSON.
// Without REDIS_URL the bus is embedded in the process (the development default); with it, a real
// Redis (node-redis, loaded only then). Pub/sub is best effort by nature (Redis drops what nobody
// hears): the durable run state in storage is the truth, messages are the signal.

const { EventEmitter } = require('node:events');
const { BroadcastChannel } = require('node:worker_threads');

/** The topic of a lambda's messages for a request. */
function topic(lambda, requestId) {
  return `tariffsim:${lambda}:${requestId}`;
}

/** The pattern matching every topic of a request. */
function requestPattern(requestId) {
  return `tariffsim:*:${requestId}`;
}

function patternToRegExp(pattern) {
  const escaped = pattern.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${escaped}$`);
}

/**
 * The embedded bus is the process's, whichever thread publishes (the dev server's runner thread
 * runs the runs, its own thread serves the page: js/server/runner.js): a thread's messages and
 * remembered ends reach the other threads' through a BroadcastChannel, opened once per thread by
 * the first embedded bus (or by bridgeThreads) and never keeping a thread alive.
 */
let bridge = null;
function bridgeThreads() {
  if (bridge !== null) return bridge;
  bridge = new BroadcastChannel('tariffsim:embedded-bus');
  bridge.unref();
  bridge.onmessage = (/** @type {MessageEvent} */ event) => {
    const m = event.data;
    if (m.remember !== undefined) {
      if (!MEMORY.has(m.remember)) MEMORY.set(m.remember, m.record);
      return;
    }
    const bus = buses.get('');
    if (bus instanceof EmbeddedBus) bus.emitter.emit('message', m.channel, m.text);
  };
  return bridge;
}

class EmbeddedBus {
  constructor() {
    this.emitter = new EventEmitter();
    this.emitter.setMaxListeners(0);
    this.kind = 'embedded';
    this.bridge = bridgeThreads();
  }

  async publish(channel, message) {
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    // Delivered asynchronously, as Redis would; to this thread's subscribers and the others'.
    queueMicrotask(() => this.emitter.emit('message', channel, text));
    this.bridge.postMessage({ channel, text });
    return true;
  }

  /**
   * Calls `onMessage(message, channel)` for every message on topics matching `pattern`.
   * @returns {Promise<() => Promise<void>>} unsubscribe
   */
  async subscribe(pattern, onMessage) {
    const re = patternToRegExp(pattern);
    const listener = (channel, text) => {
      if (re.test(channel)) onMessage(parse(text), channel);
    };
    this.emitter.on('message', listener);
    return async () => {
      this.emitter.off('message', listener);
    };
  }

  /** Remembers a run's end (a failure or a cancellation) next to storage, for when storage cannot keep it. */
  async remember(runId, what, record) {
    const key = `${runId}|${what}`;
    if (MEMORY.has(key)) return false;
    MEMORY.set(key, record);
    this.bridge.postMessage({ remember: key, record });
    return true;
  }

  async recall(runId, what) {
    return MEMORY.get(`${runId}|${what}`) || null;
  }

  /** No Redis commands: the embedded bus has none (callers fall back to storage). */
  async commands() {
    return null;
  }

  async close() {}
}

function parse(text) {
  try {
    return JSON.parse(text);
  } catch {
    return { event: 'unparsable', text };
  }
}

class RedisBus {
  constructor(url) {
    this.url = url;
    this.kind = 'redis';
    this.pub = null;
    // Every subscription's own connection, connected or still connecting: close() ends them all.
    this.subscribers = new Set();
  }

  client() {
    const { createClient } = require('redis');
    const c = createClient({
      url: this.url,
      // Reconnect for ever, quickly at first: a Redis restart must not lose a run.
      socket: { reconnectStrategy: (retries) => Math.min(50 * 2 ** retries, 2000) },
    });
    c.on('error', () => {}); // reconnects by itself; errors of commands reach their callers
    return c;
  }

  async publisher() {
    if (this.pub === null) {
      this.pub = this.client();
      this.pubReady = this.pub.connect();
    }
    await this.pubReady;
    return this.pub;
  }

  /**
   * Publishes, best effort: a message is a signal, never worth failing a lambda for (the run state
   * is in storage). Gives up after `timeoutMs` while Redis is unreachable.
   * @returns {Promise<boolean>} whether Redis took it
   */
  async publish(channel, message, timeoutMs = 2000) {
    const text = typeof message === 'string' ? message : JSON.stringify(message);
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(false), timeoutMs);
    });
    try {
      return await Promise.race([this.publisher().then((pub) => pub.publish(channel, text)).then(() => true), timeout]);
    } catch {
      return false;
    } finally {
      clearTimeout(timer);
    }
  }

  /** The connected command client (the publisher's connection), for the environment budget. */
  async commands() {
    return this.publisher();
  }

  /**
   * Remembers a run's end (a failure or a cancellation) in Redis, for 7 days, as well as in this
   * process: what storage could not keep (a full disk) is still reported by readState.
   * @returns {Promise<boolean>} whether this call remembered it first
   */
  async remember(runId, what, record, timeoutMs = 2000) {
    const key = `${runId}|${what}`;
    const first = !MEMORY.has(key);
    if (first) MEMORY.set(key, record);
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    try {
      const set = this.publisher().then((pub) => pub.set(`tariffsim:state:${runId}:${what}`, JSON.stringify(record), { NX: true, EX: 7 * 24 * 3600 }));
      const answer = await Promise.race([set, timeout]);
      return answer === null ? first : answer === 'OK';
    } catch {
      return first;
    } finally {
      clearTimeout(timer);
    }
  }

  async recall(runId, what, timeoutMs = 2000) {
    const key = `${runId}|${what}`;
    let timer;
    const timeout = new Promise((resolve) => {
      timer = setTimeout(() => resolve(null), timeoutMs);
    });
    try {
      const text = await Promise.race([this.publisher().then((pub) => pub.get(`tariffsim:state:${runId}:${what}`)), timeout]);
      if (text) return JSON.parse(text);
    } catch {
      // Redis unreachable: what this process knows.
    } finally {
      clearTimeout(timer);
    }
    return MEMORY.get(key) || null;
  }

  /**
   * Calls `onMessage(message, channel)` for every message on topics matching `pattern`, on a
   * connection of its own. Waits for Redis while it is down (until close()).
   * @returns {Promise<() => Promise<void>>} unsubscribe: ends the connection at once (never waits
   *   for a Redis that is down)
   */
  async subscribe(pattern, onMessage) {
    const sub = this.client();
    this.subscribers.add(sub);
    const end = () => {
      this.subscribers.delete(sub);
      try {
        sub.destroy();
      } catch {
        // closed already
      }
    };
    try {
      await sub.connect();
      await sub.pSubscribe(pattern, (text, channel) => onMessage(parse(text), channel));
    } catch (e) {
      end();
      throw e;
    }
    return async () => end();
  }

  /** Ends every connection of this bus: the publisher (its commands answered first, 1 s at most) and every subscription. */
  async close() {
    for (const sub of this.subscribers) {
      try {
        sub.destroy();
      } catch {
        // closed already
      }
    }
    this.subscribers.clear();
    if (this.pub !== null) {
      const pub = this.pub;
      const ready = this.pubReady;
      this.pub = null;
      let timer;
      const timeout = new Promise((resolve) => {
        timer = setTimeout(resolve, 1000);
      });
      await Promise.race([ready.then(() => pub.close()).catch(() => {}), timeout]);
      clearTimeout(timer);
      try {
        pub.destroy();
      } catch {
        // closed already
      }
    }
  }
}

/** Run ends remembered by this process (Redis buses share it: it outlives a bus being closed). */
const MEMORY = new Map();

const buses = new Map();

/**
 * The bus for a Redis URL (one per URL per process), or the embedded bus when the URL is empty.
 * @param {string|undefined|null} redisUrl
 */
function openBus(redisUrl) {
  const key = redisUrl || '';
  let bus = buses.get(key);
  if (!bus) {
    bus = key ? new RedisBus(key) : new EmbeddedBus();
    buses.set(key, bus);
  }
  return bus;
}

/** Closes every bus this process opened (tests, shutdown). */
async function closeBuses() {
  const all = [...buses.values()];
  buses.clear();
  await Promise.all(all.map((b) => b.close()));
}

module.exports = { topic, requestPattern, openBus, closeBuses, bridgeThreads, EmbeddedBus, RedisBus };
