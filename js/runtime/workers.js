'use strict';
// Chunk computation off the calling thread: a small pool of worker threads
// (js/runtime/chunk-worker.js), so that the development server's event loop keeps serving
// requests (a synchronous `price` call) while runs compute. Tasks queue by environment, PROD first,
// so a PROD run is not slowed by DEV runs queued in the same process; work of a DEV run that can
// wait (its merge) waits while PROD chunks are queued or computing (whenClear).
//
// In Lambda (AWS_LAMBDA_FUNCTION_NAME set) a process serves one invocation at a time: chunks are
// computed in the calling thread, without a pool. TARIFFSIM_WORKERS sets the pool's size
// (default: the available cores less one, at least one; 0 computes in the calling thread), and
// TARIFFSIM_WORKER_NICE their CPU priority and that of libuv's thread pool (default nice 10: below
// the thread serving requests).

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { typed } = require('./errors');

/** @typedef {Worker & {inFlight: Set<number>, computing: number | null}} ChunkWorker a chunk worker thread, with its tasks not settled and the one computing */

const PRIORITY = Object.freeze({ PROD: 0, STAGING: 1, DEV: 2 });
/** How long chunks of an environment wait after one of a higher environment came or went. */
const LINGER_MS = 100;
const priorityOf = (environment) => (PRIORITY[environment] === undefined ? PRIORITY.DEV : PRIORITY[environment]);

/** The pool's size for this process (0: compute in the calling thread). */
function poolSize(env = process.env) {
  if (env.TARIFFSIM_WORKERS !== undefined && env.TARIFFSIM_WORKERS !== '') {
    const n = Number(env.TARIFFSIM_WORKERS);
    if (!Number.isSafeInteger(n) || n < 0) throw new Error(`TARIFFSIM_WORKERS=${env.TARIFFSIM_WORKERS}: give a whole number from 0`);
    return n;
  }
  if (env.AWS_LAMBDA_FUNCTION_NAME) return 0;
  return Math.max(1, os.availableParallelism() - 1);
}


/**
 * The nice value of the pool's threads (TARIFFSIM_WORKER_NICE, 0 to 19, default 10): chunks
 * compute at a lower CPU priority than the thread serving requests (the development server's
 * `price` calls stay quick while runs compute, on a machine with few cores).
 */
function workerNice(env = process.env) {
  const text = env.TARIFFSIM_WORKER_NICE;
  if (text === undefined || text === '') return 10;
  const n = Number(text);
  if (!Number.isSafeInteger(n) || n < 0 || n > 19) throw new Error(`TARIFFSIM_WORKER_NICE=${text}: give a whole number from 0 to 19`);
  return n;
}

/**
 * Gives libuv's thread pool (the process's asynchronous file operations: a run's merge, its
 * records) the chunk workers' CPU priority. A run's file work is background work as its computing
 * is; at the default priority a pool thread woken for it can take the core of the thread serving
 * requests (`npm run bench:pipeline`'s price p99 while a run computes, 12 trials each: median
 * 11.6 ms at nice 0, 9.5 ms at nice 10). Linux only, where libuv names these threads
 * "libuv-worker" in /proc/self/task; best effort: elsewhere, or when refused, they run as they are.
 * @param {number} nice
 * @returns {boolean} whether it is settled: the threads were found (libuv starts them with the
 *   process's first file operation), or it cannot be done here
 */
function lowerFileThreads(nice) {
  let found = false;
  try {
    for (const tid of fs.readdirSync('/proc/self/task')) {
      if (fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim() !== 'libuv-worker') continue;
      found = true;
      os.setPriority(Number(tid), nice);
    }
  } catch {
    return true; // not Linux, or not allowed
  }
  return found;
}

class Pool {
  constructor(size) {
    this.size = size;
    this.workers = [];
    this.queues = [[], [], []];
    this.tasks = new Map();
    this.nextId = 1;
    // Tasks queued or computing (or storing), per priority, and when one last came or went.
    this.active = [0, 0, 0];
    this.lastSeen = [0, 0, 0];
    this.timer = null;
    this.fileThreadsLowered = false;
  }

  /**
   * Whether a task of `priority` waits: a task of a higher priority is queued or in a worker, or
   * came or went in the last LINGER_MS (its run's next chunk is on its way: the scheduler starts
   * them one after another), so a PROD run's chunks never queue behind DEV's.
   * @returns {number} how long it waits at least (0: it may go)
   */
  waitsFor(priority) {
    const now = Date.now();
    let wait = 0;
    for (let p = 0; p < priority; p += 1) {
      if (this.active[p] > 0) return LINGER_MS;
      wait = Math.max(wait, this.lastSeen[p] + LINGER_MS - now);
    }
    return wait;
  }

  done(task) {
    this.active[task.priority] -= 1;
    this.lastSeen[task.priority] = Date.now();
    wakeClear();
  }

  spawn() {
    const worker = /** @type {ChunkWorker} */ (new Worker(path.join(__dirname, 'chunk-worker.js'), { workerData: { nice: workerNice() } }));
    worker.unref();
    // Its tasks not settled, and the one computing (a worker takes its next task once the one
    // before has computed: that one's store is asynchronous, and the thread computes meanwhile).
    worker.inFlight = new Set();
    worker.computing = null;
    worker.on('message', (msg) => this.settle(worker, msg));
    // A worker that dies (out of memory, a crash) fails its tasks and is replaced.
    worker.on('error', (e) => this.lost(worker, e));
    worker.on('exit', (code) => this.lost(worker, new Error(`a chunk worker exited with ${code}`)));
    this.workers.push(worker);
  }

  lost(worker, e) {
    const i = this.workers.indexOf(worker);
    if (i === -1) return;
    this.workers.splice(i, 1);
    for (const id of worker.inFlight) {
      const task = this.tasks.get(id);
      this.tasks.delete(id);
      if (task) {
        this.done(task);
        task.reject(e);
      }
    }
    worker.inFlight.clear();
    worker.computing = null;
    if (!this.closed) this.dispatch();
  }

  settle(worker, msg) {
    if (msg.computed) {
      if (worker.computing === msg.id) worker.computing = null;
      this.dispatch();
      return;
    }
    if (worker.computing === msg.id) worker.computing = null;
    const task = this.tasks.get(msg.id);
    this.tasks.delete(msg.id);
    worker.inFlight.delete(msg.id);
    if (worker.inFlight.size === 0) worker.unref();
    if (task) {
      this.done(task);
      if (msg.error) {
        // The system's code (ENOSPC, ...) comes back as the cause: it decides whether the run fails.
        const cause = msg.error.systemCode ? Object.assign(new Error(msg.error.systemCode), { code: msg.error.systemCode }) : undefined;
        const e = /** @type {Error & {code?: unknown}} */ (typed(msg.error.name || 'Error', msg.error.message || 'a chunk worker failed', cause ? { cause } : undefined));
        if (msg.error.code !== undefined) e.code = msg.error.code;
        // Where it was thrown: the worker's stack, under this thread's.
        if (typeof msg.error.stack === 'string' && typeof e.stack === 'string') e.stack = `${e.stack}\n    --- in the chunk worker:\n${msg.error.stack}`;
        task.reject(e);
      } else {
        task.resolve(msg.out);
      }
    }
    this.dispatch();
  }

  /** A worker computing nothing (the one with the fewest tasks storing), or null. */
  free() {
    let best = null;
    for (const w of this.workers) if (w.computing === null && (best === null || w.inFlight.size < best.inFlight.size)) best = w;
    return best;
  }

  dispatch() {
    if (!this.fileThreadsLowered) this.fileThreadsLowered = workerNice() === 0 || lowerFileThreads(workerNice());
    while (this.workers.length < this.size && this.queued() > 0 && this.workers.every((w) => w.computing !== null)) this.spawn();
    for (;;) {
      const queue = this.queues.find((q) => q.length > 0);
      if (!queue) return;
      const worker = this.free();
      if (worker === null) return;
      const wait = this.waitsFor(this.queues.indexOf(queue));
      if (wait > 0) {
        if (this.timer === null) {
          this.timer = setTimeout(() => {
            this.timer = null;
            this.dispatch();
          }, wait);
        }
        return;
      }
      const task = queue.shift();
      worker.inFlight.add(task.id);
      worker.computing = task.id;
      worker.ref();
      this.tasks.set(task.id, task);
      worker.postMessage(task.message);
    }
  }

  queued() {
    return this.queues.reduce((n, q) => n + q.length, 0);
  }

  run(message, environment) {
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      const priority = priorityOf(environment);
      this.active[priority] += 1;
      this.lastSeen[priority] = Date.now();
      this.queues[priority].push({ id, priority, message: { ...message, id }, resolve, reject });
      this.dispatch();
    });
  }

  async close() {
    this.closed = true;
    if (this.timer !== null) clearTimeout(this.timer);
    const all = this.workers.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}

let pool = null;

/**
 * Computes chunk `index` of a stored run and stores its impressions as the chunk's object, in a
 * worker thread (or in this thread when the pool's size is 0).
 * @param {{storage: import('./pipeline').Storage, location: string, endpoint?: string|null, runId: string, k: object,
 *   index: number, environment: string}} task
 */
async function computeInPool({ storage, location, endpoint, runId, k, index, environment }) {
  if (pool === null) {
    const size = poolSize();
    if (size === 0) return require('./compute').computeAndStoreChunk(storage, runId, k, index);
    pool = new Pool(size);
  }
  return pool.run({ location, endpoint: endpoint || null, runId, index }, environment);
}

/**
 * Resolves when no chunk of an environment served before `environment` (PROD before STAGING before
 * DEV) is queued or computing in this process's pool, and no merge of one is going on here
 * (`hold`): at once when none is.
 * A run's own work that can wait (a DEV merge following its chunks) waits for it, so that a PROD
 * run in the same process shares neither the disk nor the event loop with it.
 * @param {string} environment
 * @returns {Promise<void>}
 */
function whenClear(environment) {
  const priority = priorityOf(environment);
  if (!busyAbove(priority)) return Promise.resolve();
  return new Promise((resolve) => clearWaiters.push({ priority, resolve }));
}

/** Work other than chunks that holds an environment's priority (a PROD run's merge), per priority. */
const held = [0, 0, 0];
/** Who waits in whenClear. */
let clearWaiters = [];

function busyAbove(priority) {
  for (let p = 0; p < priority; p += 1) if (held[p] > 0 || (pool !== null && pool.active[p] > 0)) return true;
  return false;
}

/** Wakes the waiters of whenClear whose environment is clear now. */
function wakeClear() {
  if (clearWaiters.length === 0) return;
  const still = [];
  for (const w of clearWaiters) {
    if (busyAbove(w.priority)) still.push(w);
    else w.resolve();
  }
  clearWaiters = still;
}

/**
 * Marks work of an environment going on in this process besides its chunks (a run's merge): while
 * it goes on, whenClear holds back the environments served after it.
 * @param {string} environment
 * @returns {() => void} ends it (once)
 */
function hold(environment) {
  const priority = priorityOf(environment);
  held[priority] += 1;
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    held[priority] -= 1;
    wakeClear();
  };
}

/**
 * A run's partial summaries (text or UTF-8 bytes) merged into its report files
 * ([summary.json, comparison.json, comparison.csv]), in a worker thread when there is a pool (the
 * thread serving requests is not blocked for it), queued behind chunks of higher environments.
 * @param {Array<string|Uint8Array>} summaries
 * @param {string} environment
 * @returns {Promise<string[]>}
 */
async function mergeReportsInPool(summaries, environment) {
  if (pool === null && poolSize() === 0) {
    const decoder = new TextDecoder();
    const { withEngine } = require('./engine');
    return withEngine(({ wasm }) => wasm.mergeReports(summaries.map((x) => (typeof x === 'string' ? x : decoder.decode(x)))));
  }
  if (pool === null) pool = new Pool(poolSize());
  return pool.run({ kind: 'mergeReports', summaries }, environment);
}

/**
 * filter-population's computation (compute.planPopulation) in a worker thread when there is a
 * pool, so that a run's start does not hold up the requests this thread serves; queued like a
 * chunk of its environment.
 * @param {{market: Uint8Array, scenario: string | null, visits: Uint8Array, spec: Record<string, any>}} plan
 * @param {string} environment
 * @returns {Promise<ReturnType<typeof import('./compute').planPopulation>>}
 */
async function planInPool(plan, environment) {
  if (pool === null && poolSize() === 0) return require('./compute').planPopulation(plan);
  if (pool === null) pool = new Pool(poolSize());
  return pool.run({ kind: 'plan', plan }, environment);
}

/** Stops the pool's threads (tests, benchmarks, shutdown). */
async function closeWorkers() {
  if (pool === null) return;
  const p = pool;
  pool = null;
  wakeClear();
  await p.close();
}

module.exports = { computeInPool, mergeReportsInPool, planInPool, closeWorkers, poolSize, whenClear, hold };
