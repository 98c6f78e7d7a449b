'use strict';
// The durable state of a run, kept in storage under runs/<run-id>/ so that a late subscriber, a
// duplicate delivery or a Redis restart loses nothing:
//
//   spec.json            the run spec as given
//   inputs/              market.json, scenario.json, population.csv: the run's own copy of its inputs
//                        (the population already filtered), so chunks never see a file change
//   filter.lock          claimed by the filter-population working on the run (a lease)
//   plan.json            {chunks, population, sample_size, chunk_size, chunk_spec}
//   claims/<i>.json      who started chunk i and when (a lease: a stale claim is taken over)
//   chunks/<i>.csv       chunk i's impressions (the CSV header on chunk 0 only), on every storage
//   done/<i>.json        written once, by the first delivery of chunk i to finish: its counts and
//                        partial summary
//   progress.json        when the run last moved (a chunk done), for the stall timeout
//   attempts/<i>-<n>     failed attempts of chunk i
//   end.json             which end the run takes (`{status: done|failed|cancelled}`), created once
//                        (putIfAbsent) by whatever ends it first: the merge just before result.json,
//                        a failure or a cancel; only its creator writes its end's record (below)
//   failed.json          written once, when the run fails: the reason (and the chunk)
//   cancelled.json       written once, when the run is cancelled
//   merge.lock           claimed by exactly one merger (a lease)
//   impressions.csv      the run's impressions: the chunks concatenated in order, once
//   summary.json         the run's summary, chunk summaries merged
//   comparison.json/.csv the paired comparison with the market before the scenario (runs that
//                        compare: a scenario and `compare` not false)
//   result.json          written last: the run is done
//
// and, per environment, active/<ENV>/<run-id>.json: the runs not ended yet, and
// cleanup/<ENV>/<run-id>.json: the runs that ended failed or cancelled whose chunk objects (and
// what a merge cut short left) a sweep has yet to delete, once no chunk of them can still write
// (js/runtime/scheduler.js).

const { topic, requestPattern } = require('./pubsub');
const { scrubPaths } = require('./paths');

const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const pad = (i) => String(i).padStart(6, '0');

/** The storage keys of a run. */
function keys(runId) {
  const base = `runs/${runId}`;
  return {
    base,
    spec: `${base}/spec.json`,
    market: `${base}/inputs/market.json`,
    scenario: `${base}/inputs/scenario.json`,
    population: `${base}/inputs/population.csv`,
    plan: `${base}/plan.json`,
    filterLock: `${base}/filter.lock`,
    claimsDir: `${base}/claims`,
    claim: (i) => `${base}/claims/${pad(i)}.json`,
    chunkCsv: (i) => `${base}/chunks/${pad(i)}.csv`,
    doneDir: `${base}/done`,
    done: (i) => `${base}/done/${pad(i)}.json`,
    progress: `${base}/progress.json`,
    attemptsDir: `${base}/attempts`,
    attempt: (i, n) => `${base}/attempts/${pad(i)}-${n}`,
    failed: `${base}/failed.json`,
    cancelled: `${base}/cancelled.json`,
    end: `${base}/end.json`,
    mergeLock: `${base}/merge.lock`,
    impressions: `${base}/impressions.csv`,
    summary: `${base}/summary.json`,
    comparison: `${base}/comparison.json`,
    comparisonCsv: `${base}/comparison.csv`,
    result: `${base}/result.json`,
  };
}

const json = (value) => Buffer.from(`${JSON.stringify(value)}\n`);

async function readJson(storage, key) {
  const bytes = await storage.get(key);
  return bytes === null ? null : JSON.parse(bytes.toString('utf8'));
}

/** The record that a run of environment `env` has not ended (js/runtime/scheduler.js). */
const activeKey = (env, runId) => `active/${env}/${runId}.json`;

/**
 * The record that a run of environment `env` ended failed or cancelled and its chunk objects are
 * yet to be deleted (a sweep does, once no chunk of it can still write: js/runtime/scheduler.js).
 */
const cleanupKey = (env, runId) => `cleanup/${env}/${runId}.json`;

/**
 * Moves a run that has ended (its end in storage) off its environment's active list: a run that
 * failed or was cancelled onto the list of runs to clean first (its chunk objects stay until no
 * chunk of it can still write). Throws when storage refuses the record to clean (the run stays
 * active: the next sweep moves it).
 * @param {import('./pipeline').Storage} storage
 * @param {string} env
 * @param {string} runId
 * @param {RunState['status']} status
 */
async function leaveActive(storage, env, runId, status) {
  if (status === 'failed' || status === 'cancelled') {
    await storage.put(cleanupKey(env, runId), json({ run_id: runId, environment: env, status, at: new Date().toISOString() }));
  }
  await storage.delete(activeKey(env, runId)).catch(() => {});
}

/**
 * @typedef {{run_id: string, status: 'unknown'|'started'|'running'|'done'|'failed'|'cancelled',
 *   chunks: number|null, done: number, profiles: number, impressions: number,
 *   failure?: {reason: string} & Record<string, any>, cancellation?: {reason: string} & Record<string, any>,
 *   result?: Record<string, any>}} RunState where a run stands (failed.json, cancelled.json, result.json as kept)
 */

/**
 * Where a run stands: from storage, and from what the bus remembers of its end when storage could
 * not keep it (a full disk).
 * @param {import('./pipeline').Storage} storage
 * @param {string} runId
 * @param {{bus?: import('./pipeline').Bus}} [options]
 * @returns {Promise<RunState>} (profiles and impressions are counted once the run is done)
 */
async function readState(storage, runId, options = {}) {
  const k = keys(runId);
  const [spec, plan, failedStored, cancelledStored, result, endRecord] = await Promise.all([
    storage.get(k.spec),
    readJson(storage, k.plan),
    readJson(storage, k.failed),
    readJson(storage, k.cancelled),
    readJson(storage, k.result),
    readJson(storage, k.end),
  ]);
  const bus = options.bus;
  let end;
  if (endRecord !== null && (endRecord.status === 'failed' || endRecord.status === 'cancelled')) {
    // end.json is the run's one end, created once: a failure or cancel it names is the end, even
    // when its record (failed.json, cancelled.json) could not be stored and Redis has forgotten it
    // (restarted without persistence): end.json carries the record as well.
    const what = endRecord.status;
    let record = what === 'failed' ? failedStored : cancelledStored;
    if (!record && bus) record = await bus.recall(runId, what);
    if (!record) record = endRecord.record || { reason: `the run ${what === 'failed' ? 'failed' : 'was cancelled'} (its record could not be stored)`, at: endRecord.at };
    end = { status: what, record };
  } else {
    const failed = failedStored || (!result && bus ? await bus.recall(runId, 'failed') : null);
    const cancelled = cancelledStored || (!result && !failed && bus ? await bus.recall(runId, 'cancelled') : null);
    // A run takes one end (end.json); should two be kept (a run kept before end.json, or a failure
    // only Redis could keep), the first wins: a result never overrides an end recorded before it.
    end = firstEnd(failed, cancelled);
  }
  const doneFirst = result !== null && (end === null || Date.parse(result.finished_at) < Date.parse(end.record.at));
  /** @type {RunState} */
  const state = { run_id: runId, status: 'unknown', chunks: plan ? plan.chunks : null, done: 0, profiles: 0, impressions: 0 };
  if (spec === null && end === null) return state;
  state.status = plan ? 'running' : 'started';
  if (plan) {
    state.done = (await storage.list(k.doneDir)).length;
    if (result) {
      state.profiles = result.profiles;
      state.impressions = result.impressions;
    }
  }
  if (doneFirst) {
    state.status = 'done';
    state.result = result;
  } else if (end !== null && end.status === 'failed') {
    state.status = 'failed';
    state.failure = end.record;
  } else if (end !== null) {
    state.status = 'cancelled';
    state.cancellation = end.record;
  }
  return state;
}

/** Of a failure and a cancellation (either may be null), the one recorded first (a failure on a tie). */
function firstEnd(failed, cancelled) {
  if (failed && cancelled) {
    return Date.parse(cancelled.at) < Date.parse(failed.at) ? { status: 'cancelled', record: cancelled } : { status: 'failed', record: failed };
  }
  if (failed) return { status: 'failed', record: failed };
  if (cancelled) return { status: 'cancelled', record: cancelled };
  return null;
}

/** Whether a status is an end: done, failed or cancelled. */
const ended = (status) => status === 'done' || status === 'failed' || status === 'cancelled';

/** The topics of a run, for callers who want to tap in. */
function topicsOf(runId) {
  return {
    pattern: requestPattern(runId),
    run: topic('run-simulation', runId),
    population: topic('filter-population', runId),
    chunks: topic('simulate-chunk', runId),
  };
}

/** Runs this process saw end (where the run is kept): its chunks need not read storage to know. */
const endedHere = new Set();

/**
 * Claims the run's end for `status` (end.json, putIfAbsent, with the end's record when given: what
 * readState reports should failed.json or cancelled.json not be stored): 'created' when this call
 * created it, 'same' when it names the same end already (a second failure, or a merge taken up
 * again after its merger died), 'other' when the run took another end first.
 * @returns {Promise<'created'|'same'|'other'>}
 */
async function claimEndAs(storage, runId, status, record = null) {
  const k = keys(runId);
  if (await storage.putIfAbsent(k.end, json({ status, at: new Date().toISOString(), ...(record ? { record } : {}) }))) return 'created';
  const current = await readJson(storage, k.end).catch(() => null);
  return current !== null && current.status === status ? 'same' : 'other';
}

/**
 * Claims the run's end for `status` (see claimEndAs): true when this call created it or it names
 * the same end already, false when the run took another end first.
 * @param {import('./pipeline').Storage} storage
 * @param {string} runId
 * @param {'done'|'failed'|'cancelled'} status
 */
async function claimEnd(storage, runId, status) {
  return (await claimEndAs(storage, runId, status)) !== 'other';
}

/**
 * Removes what writers of the run that are gone (killed mid-write) left half-written: the merge's
 * impressions.csv and the temporaries of its records (done/, claims/, ...). Never a live writer's.
 */
async function removeLeftovers(storage, k) {
  await storage.removeStaleTemporaries(k.impressions).catch(() => {});
  for (const dir of [k.base, k.claimsDir, k.doneDir, `${k.base}/chunks`, k.attemptsDir, `${k.base}/usage`, `${k.base}/usage/batch`]) {
    await storage.removeDeadTemporaries(dir).catch(() => {});
  }
}

/** Gives back a claim of the run's end as done (its merge failed before result.json was written). */
async function unclaimDone(storage, runId) {
  const k = keys(runId);
  const current = await readJson(storage, k.end).catch(() => null);
  if (current !== null && current.status === 'done' && (await storage.get(k.result)) === null) await storage.delete(k.end);
}

/**
 * Records a run's end (failed.json or cancelled.json) once and says so on its topic, unless the run
 * took another end first (end.json: a merge that has decided the run is done, an earlier failure
 * or cancel). When storage cannot keep the record (a full disk, say), the bus remembers it (Redis,
 * and this process), the message still goes out (with `stored: false`) and readState still
 * reports it.
 * @returns {Promise<boolean>} whether this call recorded it
 */
async function endRun(storage, bus, runId, what, event, record) {
  const k = keys(runId);
  const at = new Date().toISOString();
  let first;
  let stored = true;
  // Whether storage holds the run's end (end.json): only then does the run leave the active list.
  let endKept = false;
  let claimed;
  try {
    claimed = await claimEndAs(storage, runId, what, { ...record, at });
    endKept = claimed !== 'other';
    const recorded = claimed !== 'other' && (await storage.putIfAbsent(what === 'failed' ? k.failed : k.cancelled, json({ ...record, at })));
    // The end is said once, by the call that stores its record; when end.json was there already
    // (its claimer died, or storage refused its record), only if the bus has not heard of it.
    first = recorded && (claimed === 'created' || (await bus.recall(runId, what)) === null);
  } catch (e) {
    stored = false;
    record = { ...record, stored: false, storage_error: scrubPaths(`${e.name}: ${e.message}`) };
    const remembered = await bus.remember(runId, what, { ...record, at });
    first = claimed === 'created' || (claimed === undefined && remembered);
  }
  if (claimed === 'other') {
    // Ended another way first; a merge that claimed it done keeps the run active until result.json.
    const end = await readJson(storage, k.end).catch(() => null);
    if (end !== null && end.status !== 'done') endedHere.add(storage.url(k.base));
    return false;
  }
  if (endedHere.size > 10_000) endedHere.clear();
  endedHere.add(storage.url(k.base));
  if (first) {
    await bus.publish(topic('run-simulation', runId), { event, run_id: runId, ...record, at });
    if (stored) await bus.remember(runId, what, { ...record, at }).catch(() => {});
    // Whatever writers killed mid-write left is not needed any more.
    await removeLeftovers(storage, k);
  }
  // The run is no longer active (nobody starts its chunks any more) once its end is in storage;
  // an end only the bus and this process keep leaves it active: a sweep stores it (keepEnd). Its
  // chunk objects are deleted by a sweep once no chunk of it can still write (cleanup/).
  if (record.environment && endKept) await leaveActive(storage, record.environment, runId, what).catch(() => {});
  return first;
}

/**
 * Stores the end of a run that has ended (readState) when storage does not hold it yet (an end
 * only the bus kept, or end.json without its record): true once storage holds it (result.json, or
 * end.json naming it), false while storage still refuses (the run stays active: the next sweep
 * tries again). Says nothing on the run's topic: the end was said when it was taken.
 * @param {import('./pipeline').Storage} storage
 * @param {string} runId
 * @param {RunState} state
 */
async function keepEnd(storage, runId, state) {
  const k = keys(runId);
  if (state.status === 'done') return true;
  if (state.status !== 'failed' && state.status !== 'cancelled') return false;
  const what = state.status;
  const record = { ...(what === 'failed' ? state.failure : state.cancellation) };
  // Kept now: what said it was not is dropped.
  delete record.stored;
  delete record.storage_error;
  try {
    // Another end first ('other'): storage holds that one.
    if ((await claimEndAs(storage, runId, what, record)) === 'other') {
      const end = await readJson(storage, k.end);
      return end !== null && end.status !== 'done';
    }
    await storage.putIfAbsent(what === 'failed' ? k.failed : k.cancelled, json(record)).catch(() => {});
    return true;
  } catch {
    return false;
  }
}

/**
 * Marks a run failed (once) and says so on its topic (`run-failed`).
 * @param {{reason: string, error_type?: string, lambda?: string, chunk?: number, attempts?: number, environment?: string}} failure
 * @returns {Promise<boolean>} whether this call marked it
 */
async function failRun(storage, bus, runId, failure) {
  // Stored state names files relative to the repository, never by absolute path.
  if (typeof failure.reason === 'string') failure = { ...failure, reason: scrubPaths(failure.reason) };
  return endRun(storage, bus, runId, 'failed', 'run-failed', failure);
}

/**
 * Cancels a run (once): its chunks start no new work; says so on its topic (`cancelled`).
 * @param {{reason?: string, by?: string, environment?: string}} cancellation
 * @returns {Promise<boolean>} whether this call cancelled it
 */
async function cancelRun(storage, bus, runId, cancellation) {
  return endRun(storage, bus, runId, 'cancelled', 'cancelled', { reason: 'cancelled on request', ...cancellation });
}

/** The messages that end a run. */
const ENDS = new Set(['run-done', 'run-failed', 'cancelled']);

/**
 * Waits for a run to end, calling `onProgress(state)` on every change: reads where the run stands
 * first (a late subscriber misses nothing), then follows its topics. Subscribes before reading, so
 * no message falls between the two. Without `onProgress`, only the messages that end a run (and
 * the polls) make it read the run's state. With `unknownMs` > 0, a run that has been `unknown` at
 * every reading for that long since the watch began (no such run in this storage: a wrong id, or
 * another storage) ends the watch with its state, status `unknown` and a `reason`; a run seen once
 * is followed to its end. (0, the default: waited for, however long: a run may be started later.)
 * A read that fails (storage unreachable for a moment) is tried again at the next message or poll;
 * with `unreadableMs` > 0, storage whose reads have failed (the latest one failed, none succeeded)
 * for that long (since the watch began, or since the last read that succeeded) ends the watch with
 * status `unreadable` and the last read's `error`. (0, the default: tried again however long.)
 * @param {{storage: import('./pipeline').Storage, bus: import('./pipeline').Bus, runId: string,
 *   onProgress?: (state: RunState) => void, timeoutMs?: number, pollMs?: number, signal?: AbortSignal,
 *   unknownMs?: number, unreadableMs?: number}} options
 * @returns {Promise<RunState | {run_id: string, status: 'timeout', last?: {status: RunState['status'], done: number,
 *   chunks: number|null}, error?: string} | {run_id: string, status: 'unreadable', error: string, last?: {status: RunState['status'],
 *   done: number, chunks: number|null}} | {run_id: string, status: 'aborted'}>} the final state (status 'done', 'failed' or 'cancelled';
 *   'unknown' with `reason` (see unknownMs); 'timeout', with `last`: the last state read; 'unreadable' (see unreadableMs),
 *   or 'aborted')
 */
async function watchRun({ storage, bus, runId, onProgress = null, timeoutMs = 0, pollMs = 1000, signal = null, unknownMs = 0, unreadableMs = 0 }) {
  if (!RUN_ID.test(runId)) throw new Error(`run id ${JSON.stringify(runId)} is not a valid request id`);
  let last = null;
  let settle;
  const finished = new Promise((resolve) => {
    settle = resolve;
  });
  let checking = Promise.resolve();
  let queued = false;
  let stopped = false;
  let lastError = null;
  let seen = null;
  const began = Date.now();
  let known = false;
  // When a read last succeeded (the watch's start until one has), and whether the latest read failed.
  let readAt = began;
  let failing = false;
  const lastSeen = () => (seen ? { last: { status: seen.status, done: seen.done, chunks: seen.chunks } } : {});
  // Storage that has refused every read for unreadableMs: the watch gives up, with the last error.
  const unreadable = () => {
    if (unreadableMs > 0 && failing && Date.now() - readAt >= unreadableMs) {
      settle({ run_id: runId, status: 'unreadable', error: lastError && lastError.message ? lastError.message : String(lastError), ...lastSeen() });
    }
  };
  // Messages can come faster than state can be read: at most one read waits behind the running one.
  const check = () => {
    if (queued) return checking;
    queued = true;
    checking = checking.then(async () => {
      queued = false;
      if (stopped) return;
      let state;
      try {
        state = await readState(storage, runId, { bus });
      } catch (e) {
        // Storage unreachable for a moment: try again at the next message or poll (for at most
        // unreadableMs since the last read that succeeded, when given).
        lastError = e;
        failing = true;
        unreadable();
        return;
      }
      failing = false;
      readAt = Date.now();
      seen = state;
      const key = `${state.status}:${state.done}:${state.chunks}`;
      if (key !== last) {
        last = key;
        if (onProgress) onProgress(state);
      }
      if (ended(state.status)) settle(state);
      if (state.status !== 'unknown') known = true;
      else if (!known && unknownMs > 0 && Date.now() - began >= unknownMs) {
        settle({ ...state, reason: `no run ${runId} in this storage after ${Math.round(unknownMs / 1000)} s: check the run id (and that it was started on this server's storage)` });
      }
    });
    return checking;
  };
  // Messages can be lost (Redis restarting, nobody subscribed yet): poll slowly as well, from the
  // start, so that a Redis that is down delays nothing but the messages.
  // A poll also ends a watch on storage that keeps failing, should a read after a failure take long.
  const poll = setInterval(() => {
    unreadable();
    check();
  }, pollMs);
  const timer = timeoutMs > 0 ? setTimeout(() => settle({ run_id: runId, status: 'timeout', ...lastSeen(), ...(lastError ? { error: lastError.message } : {}) }), timeoutMs) : null;
  const onAbort = () => settle({ run_id: runId, status: 'aborted' });
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  // Every message is a reason to read where the run stands, for whoever shows progress; a caller
  // that only waits for the end reads at the messages that end a run (and at the polls).
  const subscribed = bus.subscribe(requestPattern(runId), (message) => {
    if (onProgress || !message || ENDS.has(message.event)) check();
  });
  subscribed.catch(() => {});
  try {
    await check();
    return await finished;
  } finally {
    stopped = true;
    clearInterval(poll);
    if (timer) clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
    // Unsubscribes once the subscription is made (at once, or when Redis is back).
    subscribed.then((unsubscribe) => unsubscribe()).catch(() => {});
  }
}

module.exports = { RUN_ID, keys, activeKey, cleanupKey, leaveActive, json, readJson, readState, ended, topicsOf, failRun, cancelRun, claimEnd, unclaimDone, keepEnd, removeLeftovers, watchRun, endedHere };
