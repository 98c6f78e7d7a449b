'use strict';
// Chunk computation off the calling thread: a small pool of worker threads
// (js/runtime/chunk-worker.js), so that the development server's event loop keeps serving
// requests (a synchronous `price` call) while runs compute. Tasks queue by environment, PROD first,
// so a PROD run is not slowed by DEV runs queued in the same process.
//
// In Lambda (AWS_LAMBDA_FUNCTION_NAME set) a process serves one invocation at a time: chunks are
// computed in the calling thread, without a pool. TARIFFSIM_WORKERS sets the pool's size
// (default: the available cores less one, at least one; 0 computes in the calling thread).

const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');
const { typed } = require('./errors');

const PRIORITY = Object.freeze({ PROD: 0, STAGING: 1, DEV: 2 });

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

class Pool {
  constructor(size) {
    this.size = size;
    this.workers = [];
    this.idle = [];
    this.queues = [[], [], []];
    this.tasks = new Map();
    this.nextId = 1;
  }

  spawn() {
    const worker = new Worker(path.join(__dirname, 'chunk-worker.js'));
    worker.unref();
    worker.current = null;
    worker.on('message', (msg) => this.settle(worker, msg));
    // A worker that dies (out of memory, a crash) fails its task and is replaced.
    worker.on('error', (e) => this.lost(worker, e));
    worker.on('exit', (code) => this.lost(worker, new Error(`a chunk worker exited with ${code}`)));
    this.workers.push(worker);
    this.idle.push(worker);
  }

  lost(worker, e) {
    const i = this.workers.indexOf(worker);
    if (i === -1) return;
    this.workers.splice(i, 1);
    this.idle = this.idle.filter((w) => w !== worker);
    if (worker.current !== null) {
      const task = this.tasks.get(worker.current);
      this.tasks.delete(worker.current);
      if (task) task.reject(e);
    }
    if (!this.closed) this.dispatch();
  }

  settle(worker, msg) {
    const task = this.tasks.get(msg.id);
    this.tasks.delete(msg.id);
    worker.current = null;
    worker.unref();
    this.idle.push(worker);
    if (task) {
      if (msg.error) {
        const e = typed(msg.error.name || 'Error', msg.error.message || 'a chunk worker failed');
        if (msg.error.code !== undefined) e.code = msg.error.code;
        task.reject(e);
      } else {
        const out = msg.out;
        out.csv = Buffer.from(out.csv.buffer, out.csv.byteOffset, out.csv.byteLength);
        task.resolve(out);
      }
    }
    this.dispatch();
  }

  dispatch() {
    while (this.workers.length < this.size && this.queued() > this.idle.length) this.spawn();
    while (this.idle.length > 0) {
      const queue = this.queues.find((q) => q.length > 0);
      if (!queue) return;
      const task = queue.shift();
      const worker = this.idle.pop();
      worker.current = task.id;
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
      const priority = PRIORITY[environment] === undefined ? PRIORITY.DEV : PRIORITY[environment];
      this.queues[priority].push({ id, message: { ...message, id }, resolve, reject });
      this.dispatch();
    });
  }

  async close() {
    this.closed = true;
    const all = this.workers.splice(0);
    await Promise.all(all.map((w) => w.terminate()));
  }
}

let pool = null;

/**
 * Computes chunk `index` of a stored run in a worker thread (or in this thread when the pool's
 * size is 0).
 * @param {{storage: object, location: string, endpoint?: string|null, runId: string, k: object,
 *   index: number, environment: string}} task
 */
async function computeInPool({ storage, location, endpoint, runId, k, index, environment }) {
  if (pool === null) {
    const size = poolSize();
    if (size === 0) return require('./compute').computeChunk(storage, runId, k, index);
    pool = new Pool(size);
  }
  return pool.run({ location, endpoint: endpoint || null, runId, index }, environment);
}

/** Stops the pool's threads (tests, benchmarks, shutdown). */
async function closeWorkers() {
  if (pool === null) return;
  const p = pool;
  pool = null;
  await p.close();
}

module.exports = { computeInPool, closeWorkers, poolSize };
