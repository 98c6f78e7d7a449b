'use strict';
// One concurrency budget per environment, over every run: a leased semaphore whose slots are held
// by the chunks computing now. `chunkBudget` (DEV 10, STAGING 50, PROD 200) is the number of slots;
// a DEV run can never take PROD's, and ten DEV runs share DEV's.
//
// - With Redis (REDIS_URL): a sorted set `tariffsim:budget:<ENV>` of holders scored by the time
//   their lease ends, changed only by Lua scripts on Redis's own clock (atomic). An acquire whose
//   caller gave up (Redis unreachable for longer than it waits) never takes a slot later: what of
//   it is still queued in the client is dropped, and its holder is removed right behind what was
//   sent (RedisBudget.acquire), so no "ghost" holds a slot for a lease after an outage.
// - Without: in the run storage, a key per slot and lease window, `budget/<ENV>/<slot>-<window>`,
//   created with putIfAbsent (O_EXCL on a folder, If-None-Match on S3). A holder owns its slot for
//   the window it took it in and claims the next window while it still holds the current one;
//   keys of past windows are dead (and deleted as they are seen).
//
// A lease lasts `leaseMs` (TARIFFSIM_LEASE_MS, default 60 s) and is renewed while its chunk
// computes (every leaseMs / 4 where the thread is free to); a holder that dies frees its slot when
// its lease runs out. Holders are named `<host>:<pid>:<boot>:<n>`, so that a process starting on
// the same host can free at once the slots of a process that died there (`freeDead`).

const crypto = require('node:crypto');
const os = require('node:os');

const HOST = os.hostname().replace(/[^A-Za-z0-9._-]/g, '_');
const BOOT = crypto.randomBytes(4).toString('hex');
let counter = 0;

/** A fresh holder name of this process. */
function holderName() {
  counter += 1;
  return `${HOST}:${process.pid}:${BOOT}:${counter}`;
}

/** Whether a holder name (or a {host, pid, boot} record) is a process of this host that is gone. */
function deadLocal(holder) {
  let host;
  let pid;
  let boot;
  if (typeof holder === 'string') [host, pid, boot] = holder.split(':');
  else if (holder && typeof holder === 'object') ({ host, pid, boot } = holder);
  pid = Number(pid);
  if (host !== HOST || !Number.isSafeInteger(pid) || pid <= 0) return false;
  if (pid === process.pid) return boot !== BOOT;
  try {
    process.kill(pid, 0);
    return false;
  } catch (e) {
    return e.code === 'ESRCH';
  }
}

/** Holders of this process that gave their slot back (the newest; a retry may carry one). */
const givenBack = new Set();
function noteReleased(holder) {
  if (givenBack.size > 4096) givenBack.delete(givenBack.values().next().value);
  givenBack.add(holder);
}

/**
 * Whether a token is this process's own, taken moments ago (less than a quarter of the lease) and
 * not given back: it is valid and needs no renewal yet, without asking the budget's store (the
 * scheduler hands a slot to a chunk of the same process a few milliseconds after taking it).
 */
function freshHere(token, leaseMs) {
  return (
    typeof token.holder === 'string' &&
    token.holder.startsWith(`${HOST}:${process.pid}:${BOOT}:`) &&
    Number.isFinite(token.at) &&
    Date.now() - token.at < leaseMs / 4 &&
    !givenBack.has(token.holder)
  );
}

/** Who this process is, for claims and locks. */
function self() {
  return { host: HOST, pid: process.pid, boot: BOOT };
}

// ARGV: limit, leaseMs, holder. Returns the free slots there were, the one taken included (0: none).
// Idempotent: a try whose answer was lost with its connection may have taken the slot already; the
// next try of the same acquire (same holder) finds it and keeps it.
const ACQUIRE = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now)
local held = redis.call('ZCARD', KEYS[1])
if redis.call('ZSCORE', KEYS[1], ARGV[3]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  return math.max(1, tonumber(ARGV[1]) - held + 1)
end
if held < tonumber(ARGV[1]) then
  redis.call('ZADD', KEYS[1], now + tonumber(ARGV[2]), ARGV[3])
  return tonumber(ARGV[1]) - held
end
return 0`;

const RENEW = `
local t = redis.call('TIME')
local now = tonumber(t[1]) * 1000 + math.floor(tonumber(t[2]) / 1000)
return redis.call('ZADD', KEYS[1], 'XX', 'CH', now + tonumber(ARGV[1]), ARGV[2])`;

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));
/** A pause that does not keep the process alive (background clean-up). */
const idle = (ms) => new Promise((resolve) => setTimeout(resolve, ms).unref());

class RedisBudget {
  constructor(bus, env, limit, leaseMs) {
    this.bus = bus;
    this.env = env;
    this.limit = limit;
    this.leaseMs = leaseMs;
    this.key = `tariffsim:budget:${env}`;
    // How long a budget command waits for an unreachable Redis (a restart) before it fails.
    this.waitMs = Math.min(30_000, Math.max(2000, Math.floor(leaseMs / 2)));
    /** Since when every acquire of this process failed to reach Redis, and why (null: it answers). */
    this.down = null;
  }

  /**
   * Whether the budget cannot be reached: `{since, error}` when every acquire since `since` (ms)
   * failed to reach Redis, null when the last one was answered. A sweep counts that time against
   * a run that cannot start a chunk for it (scheduler.js): Redis down for good ends the run.
   * @returns {{since: number, error: string} | null}
   */
  unreachable() {
    return this.down;
  }

  /**
   * `command(redis)`, tried again while Redis cannot be reached (the client reconnects by itself)
   * for up to waitMs: a Redis restart must not fail the chunks nor stop the scheduler. An error
   * Redis answered (ErrorReply) is thrown at once.
   */
  async run(command) {
    const { ErrorReply } = require('redis');
    const until = Date.now() + this.waitMs;
    for (let delay = 50; ; delay = Math.min(delay * 2, 1000)) {
      let timer;
      const left = until - Date.now();
      const timeout = new Promise((_, reject) => {
        timer = setTimeout(() => reject(Object.assign(new Error(`Redis unreachable for ${this.waitMs} ms`), { code: 'REDIS_UNREACHABLE' })), Math.max(1, left));
      });
      try {
        return await Promise.race([this.bus.commands().then(command), timeout]);
      } catch (e) {
        if (e instanceof ErrorReply || e.code === 'REDIS_UNREACHABLE' || Date.now() + delay >= until) throw e;
      } finally {
        clearTimeout(timer);
      }
      await sleep(delay);
    }
  }

  /**
   * A slot, or null when every slot is held. Throws when Redis cannot be reached for waitMs; the
   * acquire given up on then takes no slot, whenever Redis answers again:
   * - its tries still queued in the client (sent only once it reconnects) are dropped (abort);
   * - a try already sent (Redis stopped, or slow, with the command on the wire) may run later:
   *   its holder is removed (ZREM), sent on the same connection right behind it, which Redis
   *   runs after it; so a late ACQUIRE's slot is gone again in the same breath, before any
   *   command sent after this one gave up.
   */
  async acquire() {
    const holder = holderName();
    const args = { keys: [this.key], arguments: [String(this.limit), String(this.leaseMs), holder] };
    const abandon = new AbortController();
    let client = null;
    let got;
    const tried = Date.now();
    try {
      got = await this.run((redis) => {
        client = redis;
        return redis.withAbortSignal(abandon.signal).eval(ACQUIRE, args);
      });
    } catch (e) {
      abandon.abort();
      if (client !== null) this.forget(client, holder);
      const { ErrorReply } = require('redis');
      if (!(e instanceof ErrorReply) && this.down === null) this.down = { since: tried, error: e.message };
      throw e;
    }
    this.down = null;
    if (!(Number(got) >= 1)) return null;
    // `last`: this took the last free slot (the scheduler need not ask for another now).
    return { kind: 'redis', env: this.env, holder, at: Date.now(), last: Number(got) === 1 };
  }

  /** The lease a token stands for: renew it while working, release it when done. */
  lease(token) {
    let released = false;
    return {
      token,
      /** Whether the slot is still this lease's (a retried delivery may carry one given back). */
      valid: async () => freshHere(token, this.leaseMs) || (await this.run((redis) => redis.zScore(this.key, token.holder))) !== null,
      renew: async () => {
        if (released || freshHere(token, this.leaseMs)) return true;
        await this.run((redis) => redis.eval(RENEW, { keys: [this.key], arguments: [String(this.leaseMs), token.holder] }));
        return true;
      },
      release: async () => {
        if (released) return;
        released = true;
        noteReleased(token.holder);
        await this.run((redis) => redis.zRem(this.key, token.holder));
      },
    };
  }

  /**
   * Removes `holder` from the budget, in the background, on `client` (the connection its ACQUIRE
   * was sent on: Redis runs one connection's commands in order). Queued while Redis is down; tried
   * again when the connection broke under it (the ACQUIRE may have run before that). Gives up once
   * the client is closed, or on an error Redis answered.
   */
  forget(client, holder) {
    const { ErrorReply } = require('redis');
    const drop = async () => {
      for (let tries = 0, delay = 50; tries < 8 && client.isOpen; tries += 1, delay = Math.min(delay * 2, 2000)) {
        try {
          await client.zRem(this.key, holder);
          return;
        } catch (e) {
          if (e instanceof ErrorReply) return;
        }
        await idle(delay);
      }
    };
    drop().catch(() => {});
  }

  /** Frees the slots of holders that died on this host; returns how many. */
  async freeDead() {
    const holders = await this.run((redis) => redis.zRange(this.key, 0, -1));
    const dead = holders.filter(deadLocal);
    if (dead.length > 0) await this.run((redis) => redis.zRem(this.key, dead));
    return dead.length;
  }
}

const pad = (i) => String(i).padStart(6, '0');

class StorageBudget {
  constructor(storage, env, limit, leaseMs) {
    this.storage = storage;
    this.env = env;
    this.limit = limit;
    this.window = leaseMs;
    this.dir = `budget/${env}`;
  }

  /** Never unreachable as a budget: storage that fails is the run's failure (see runChunk). */
  unreachable() {
    return null;
  }

  key(slot, window) {
    return `${this.dir}/${pad(slot)}-${window}`;
  }

  parse(key) {
    const m = /\/(\d+)-(\d+)$/.exec(key);
    return m ? { slot: Number(m[1]), window: Number(m[2]) } : null;
  }

  async acquire() {
    const now = Date.now();
    const w = Math.floor(now / this.window);
    const late = now - w * this.window > this.window / 2;
    const taken = new Set();
    const past = [];
    for (const key of await this.storage.list(this.dir)) {
      const p = this.parse(key);
      if (p === null) continue;
      if (p.window >= w) taken.add(p.slot);
      else past.push(key);
    }
    // Keys of past windows are dead: delete a few as they are seen.
    for (const key of past.slice(0, 16)) this.storage.delete(key).catch(() => {});
    const free = [];
    for (let s = 0; s < this.limit; s += 1) if (!taken.has(s)) free.push(s);
    // Start at a random free slot: callers racing for slots rarely pick the same one.
    for (let tries = 0; tries < 3 && free.length > 0; tries += 1) {
      const slot = free.splice(Math.floor(Math.random() * free.length), 1)[0];
      const holder = holderName();
      const body = Buffer.from(JSON.stringify({ holder }));
      if (!(await this.storage.putIfAbsent(this.key(slot, w), body))) continue;
      const windows = [w];
      if (late) {
        if (!(await this.storage.putIfAbsent(this.key(slot, w + 1), body))) {
          await this.storage.delete(this.key(slot, w));
          continue;
        }
        windows.push(w + 1);
      }
      return { kind: 'storage', env: this.env, holder, slot, windows, at: Date.now(), last: free.length === 0 };
    }
    return null;
  }

  lease(token) {
    let released = false;
    const windows = [...token.windows];
    const body = Buffer.from(JSON.stringify({ holder: token.holder }));
    const holds = async (w) => {
      const bytes = await this.storage.get(this.key(token.slot, w));
      return bytes !== null && JSON.parse(bytes.toString('utf8')).holder === token.holder;
    };
    return {
      token,
      valid: async () => freshHere(token, this.window) || holds(Math.floor(Date.now() / this.window)).catch(() => false),
      // While it holds the current window, claims the next one in the current one's second half.
      renew: async () => {
        if (released) return true;
        const now = Date.now();
        const w = Math.floor(now / this.window);
        if (!windows.includes(w)) return false;
        if (now - w * this.window > this.window / 2 && !windows.includes(w + 1)) {
          if (!(await this.storage.putIfAbsent(this.key(token.slot, w + 1), body))) return false;
          windows.push(w + 1);
        }
        return true;
      },
      release: async () => {
        if (released) return;
        released = true;
        noteReleased(token.holder);
        await Promise.all(windows.map((x) => this.storage.delete(this.key(token.slot, x))));
      },
    };
  }

  async freeDead() {
    let freed = 0;
    for (const key of await this.storage.list(this.dir)) {
      const bytes = await this.storage.get(key).catch(() => null);
      if (bytes === null) continue;
      let holder;
      try {
        ({ holder } = JSON.parse(bytes.toString('utf8')));
      } catch {
        continue;
      }
      if (deadLocal(holder)) {
        await this.storage.delete(key);
        freed += 1;
      }
    }
    return freed;
  }
}

const budgets = new Map();

/**
 * The budget of a request's environment (Redis when the bus is Redis, else the run storage).
 * @param {import('./pipeline').Pipeline} pipeline
 * @param {{env: {name: string}, config: {chunkBudget: number, leaseMs?: number}}} request
 */
function budgetOf(pipeline, request) {
  const env = request.env.name;
  const limit = request.config.chunkBudget;
  const leaseMs = request.config.leaseMs || 60_000;
  const where = pipeline.bus.kind === 'redis' ? /** @type {InstanceType<typeof import('./pubsub').RedisBus>} */ (pipeline.bus).url : pipeline.storage.url('budget');
  const key = `${where}|${env}|${limit}|${leaseMs}`;
  let b = budgets.get(key);
  if (!b) {
    b = pipeline.bus.kind === 'redis' ? new RedisBudget(/** @type {InstanceType<typeof import('./pubsub').RedisBus>} */ (pipeline.bus), env, limit, leaseMs) : new StorageBudget(pipeline.storage, env, limit, leaseMs);
    budgets.set(key, b);
  }
  return b;
}

module.exports = { budgetOf, deadLocal, self, holderName };
