'use strict';
// The development server's asynchronous lambdas run on a thread of their own, the runner
// (js/server/runner-thread.js): a run's orchestration (its records, budget leases, messages,
// in-process invocations and the merge's file work, several milliseconds of CPU per chunk) then
// never holds up the thread serving requests, and a synchronous `price` call answers while a run
// computes as it does idle (docs/pipeline.md, `npm run bench:pipeline`). The runner shares the
// process's environment (SHARE_ENV), its storage and its bus (the embedded bus is bridged between
// threads: js/runtime/pubsub.js). In Lambda there is no runner: every invocation has its process.
//
// One runner per process, started on first use and shared by the servers of the process; it
// stops when the last of them closes.

const path = require('node:path');
const { Worker, SHARE_ENV } = require('node:worker_threads');
const { typed } = require('../runtime/errors');
const { setRemoteIdle } = require('../runtime/invoke');
const { bridgeThreads } = require('../runtime/pubsub');

class Runner {
  constructor() {
    // This thread hears the runner's messages on the embedded bus from the start.
    bridgeThreads();
    this.worker = new Worker(path.join(__dirname, 'runner-thread.js'), { env: SHARE_ENV });
    // The thread keeps the process alive only while a call waits for its answer: a server that
    // is never closed (a test's) does not hold its process (its listening socket does, if any).
    this.worker.unref();
    this.calls = new Map();
    this.nextId = 1;
    this.dead = null;
    this.worker.on('message', (m) => {
      if (m.eventDone !== undefined) {
        const finished = events.get(m.eventDone);
        events.delete(m.eventDone);
        if (finished !== undefined && finished.done) finished.done();
        this.holdProcess();
        return;
      }
      const call = this.calls.get(m.id);
      if (!call) return;
      this.calls.delete(m.id);
      this.holdProcess();
      call.settle(m);
    });
    const lost = (e) => {
      if (this.dead) return;
      this.dead = e;
      for (const call of this.calls.values()) call.settle({ error: { name: 'InternalError', message: `the runner thread stopped: ${e.message}` } });
      this.calls.clear();
      if (current !== this) return; // closed
      // It died (a crash, not a close): a new runner takes its place, and its sweep takes up the
      // runs this one left (their claims name a thread that is gone: budget.js deadLocal). The
      // Events it had not finished go to the new one, as Lambda retries an event whose invocation
      // crashed; one that every delivery saw a runner die with is dropped after as many tries as
      // Lambda makes (1 + the retries), with a line on standard error.
      current = null;
      process.stderr.write(`tariffsim: the runner thread stopped (${e.message}); a new one starts\n`);
      for (const [id, pending] of events) {
        if (pending.deliveries > pending.message.delays.length) {
          events.delete(id);
          if (pending.done) pending.done();
          process.stderr.write(`tariffsim: an Event for ${pending.message.target} (request ${pending.message.requestId}) was dropped: a runner thread stopped during each of its ${pending.deliveries} deliveries (it, or another Event then running, stopped it)\n`);
        }
      }
      if (sweeping || events.size > 0) {
        restartTimer = setTimeout(() => {
          restartTimer = null;
          if (current === null && (sweeping || events.size > 0)) start();
        }, RESTART_MS);
        // Events waiting hold the process until the new runner has them; a sweep alone does not.
        if (events.size === 0) restartTimer.unref();
      }
    };
    this.worker.on('error', lost);
    this.worker.on('exit', (code) => lost(new Error(`it exited with ${code}`)));
  }

  /** Holds the process while a call waits for its answer or an Event is not finished. */
  holdProcess() {
    if (this.calls.size > 0 || events.size > 0) this.worker.ref();
    else this.worker.unref();
  }

  /** Posts a message and resolves with its answer ({result, tail} or rejects with its error). */
  call(message) {
    if (this.dead) return Promise.reject(typed('InternalError', `the runner thread stopped: ${this.dead.message}`));
    return new Promise((resolve, reject) => {
      const id = this.nextId++;
      this.worker.ref();
      this.calls.set(id, {
        settle: (m) => {
          if (!m.error) {
            resolve(m);
            return;
          }
          const { name, message: text, stack, ...fields } = m.error;
          const e = Object.assign(typed(name || 'Error', text || 'the runner failed'), fields);
          if (typeof stack === 'string') e.stack = stack;
          e.tail = m.tail || '';
          reject(e);
        },
      });
      this.worker.postMessage({ ...message, id });
    });
  }

  /**
   * A lambda's handler run on the runner, as a RequestResponse invocation.
   * @returns {Promise<{result: unknown, tail: string}>} its answer and the tail of its log lines
   *   (a failure is thrown, with its `tail`)
   */
  async invoke(target, event, context) {
    const { result, tail } = await this.call({ kind: 'invoke', target, event, context });
    return { result, tail };
  }

  /**
   * A lambda's handler run on the runner as an Event: in the background, retried as Lambda retries,
   * every attempt and delivery with the request id the caller was answered with. It is kept here
   * until the runner says it finished, so that one accepted in the instant its runner dies is run
   * by the next (accepted is never lost; the server's journal keeps it across processes:
   * event-journal.js). `done` is called once it has finished, or was dropped.
   * @param {() => void} [done]
   */
  event(target, event, arn, delays, requestId, done) {
    const id = nextEventId++;
    events.set(id, { message: { kind: 'event', eventId: id, target, event, arn, delays, requestId }, deliveries: 0, done });
    this.deliver(id);
  }

  /** Posts a pending Event to this runner. */
  deliver(id) {
    const pending = events.get(id);
    if (pending === undefined || this.dead) return;
    pending.deliveries += 1;
    this.worker.ref();
    this.worker.postMessage(pending.message);
  }

  /** Resolves when the runner has no invocation running (nor work one left running). */
  idle() {
    return this.dead ? Promise.resolve() : this.call({ kind: 'idle' });
  }

  /**
   * Takes up unfinished runs now and every TARIFFSIM_SWEEP_MS (scheduler.startSweeping); a runner
   * started after this one stopped (a crash) sweeps too, and so resumes the runs it left.
   */
  sweep() {
    sweeping = true;
    return this.call({ kind: 'sweep' });
  }

  async close() {
    if (!this.dead) await this.call({ kind: 'close' }).catch(() => {});
    await this.worker.terminate();
  }
}

let current = null;
let users = 0;
/**
 * Events accepted (answered 202) that no runner has finished yet, by id: {message, deliveries}.
 * Kept by the process, not by a runner, so that the runner replacing one that died gets them.
 * @type {Map<number, {message: {kind: 'event', eventId: number, target: string, event: unknown, arn: string, delays: number[], requestId: string}, deliveries: number, done?: () => void}>}
 */
const events = new Map();
let nextEventId = 1;
/** Whether the process's runner sweeps (a server asked it to). */
let sweeping = false;
/** How long after a runner died a new one starts (one a request needs starts at once). */
const RESTART_MS = 1000;
/** The pending start of a runner after one died, if any. */
let restartTimer = null;

/** Starts the process's runner. */
function start() {
  current = new Runner();
  const runner = current;
  setRemoteIdle(() => (current === runner ? runner.idle() : Promise.resolve()));
  if (sweeping) runner.sweep().catch(() => {});
  for (const id of events.keys()) runner.deliver(id);
  return runner;
}

/**
 * The process's runner, started when needed; `release()` it when done. `release` resolves true
 * when it stopped the runner (it was the last user): the Events it ran stopped with it.
 */
function acquireRunner() {
  users += 1;
  let released = false;
  return {
    get: () => current || start(),
    release: async () => {
      if (released) return false;
      released = true;
      users -= 1;
      if (users > 0) return false;
      // The last user gone: a close stops what runs, Events too, as a process's end does (the
      // next server's sweep takes up the runs they started, and the Events its server's journal
      // kept); none is left in memory, and no runner starts again (one may be due after a crash).
      const runner = current;
      current = null;
      sweeping = false;
      events.clear();
      if (restartTimer !== null) clearTimeout(restartTimer);
      restartTimer = null;
      setRemoteIdle(null);
      if (runner !== null) await runner.close();
      return true;
    },
  };
}

/** The process's runner thread (a Worker), or null: for tests and diagnostics. */
function runnerThread() {
  return current && current.worker;
}

module.exports = { acquireRunner, runnerThread };
