'use strict';
// The durable state of a run, kept in storage under runs/<run-id>/ so that a late subscriber, a
// duplicate delivery or a Redis restart loses nothing:
//
//   spec.json            the run spec as given
//   inputs/              market.json, scenario.json, population.csv: the run's own copy of its inputs
//                        (the population already filtered), so chunks never see a file change
//   plan.json            {chunks, population, sample_size, chunk_size, budget}
//   chunks/<i>.csv       chunk i's impressions (the CSV header on chunk 0 only); on a folder only
//                        when the chunk could not go straight into merge/impressions.partial
//   merge/               on a folder, the run's impressions assembled in chunk order while the run
//                        goes on: appended/<i>.json (chunk i is in; its end offset), claims/<i>.json
//                        (who appends chunk i), impressions.partial
//   chunks/<i>.json      chunk i's partial summary
//   done/<i>.json        written once, by the first delivery of chunk i to finish: its counts
//   attempts/<i>-<n>     failed attempts of chunk i
//   failed.json          written once, when the run fails: the reason and the chunk
//   merge.lock           claimed by exactly one merger
//   impressions.csv      the run's impressions, chunks concatenated in order
//   summary.json         the run's summary, chunk summaries merged
//   result.json          written last: the run is done

const { topic, requestPattern } = require('./pubsub');

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
    chunkCsv: (i) => `${base}/chunks/${pad(i)}.csv`,
    chunkSummary: (i) => `${base}/chunks/${pad(i)}.json`,
    doneDir: `${base}/done`,
    done: (i) => `${base}/done/${pad(i)}.json`,
    attempt: (i, n) => `${base}/attempts/${pad(i)}-${n}`,
    failed: `${base}/failed.json`,
    mergeLock: `${base}/merge.lock`,
    appendedDir: `${base}/merge/appended`,
    appended: (i) => `${base}/merge/appended/${pad(i)}.json`,
    appendClaim: (i) => `${base}/merge/claims/${pad(i)}.json`,
    partial: `${base}/merge/impressions.partial`,
    impressions: `${base}/impressions.csv`,
    summary: `${base}/summary.json`,
    result: `${base}/result.json`,
  };
}

const json = (value) => Buffer.from(`${JSON.stringify(value)}\n`);

async function readJson(storage, key) {
  const bytes = await storage.get(key);
  return bytes === null ? null : JSON.parse(bytes.toString('utf8'));
}

/**
 * Where a run stands, from storage alone.
 * @returns {Promise<{run_id: string, status: 'unknown'|'started'|'running'|'done'|'failed',
 *   chunks: number|null, done: number, profiles: number, impressions: number, failure?: object,
 *   result?: object}>} (profiles and impressions are counted once the run is done)
 */
async function readState(storage, runId) {
  const k = keys(runId);
  const [spec, plan, failed, result] = await Promise.all([
    storage.get(k.spec),
    readJson(storage, k.plan),
    readJson(storage, k.failed),
    readJson(storage, k.result),
  ]);
  const state = { run_id: runId, status: 'unknown', chunks: plan ? plan.chunks : null, done: 0, profiles: 0, impressions: 0 };
  if (spec === null) return state;
  state.status = plan ? 'running' : 'started';
  if (plan) {
    state.done = (await storage.list(k.doneDir)).length;
    if (result) {
      state.profiles = result.profiles;
      state.impressions = result.impressions;
    }
  }
  if (failed) {
    state.status = 'failed';
    state.failure = failed;
  } else if (result) {
    state.status = 'done';
    state.result = result;
  }
  return state;
}

/** The topics of a run, for callers who want to tap in. */
function topicsOf(runId) {
  return {
    pattern: requestPattern(runId),
    run: topic('run-simulation', runId),
    population: topic('filter-population', runId),
    chunks: topic('simulate-chunk', runId),
  };
}

/**
 * Marks a run failed (once) and says so on its topic.
 * @returns {Promise<boolean>} whether this call marked it
 */
async function failRun(storage, bus, runId, failure) {
  const first = await storage.putIfAbsent(keys(runId).failed, json({ ...failure, at: new Date().toISOString() }));
  if (first) await bus.publish(topic('run-simulation', runId), { event: 'run-failed', run_id: runId, ...failure });
  return first;
}

/**
 * Waits for a run to end, calling `onProgress(state)` on every change: reads where the run stands
 * first (a late subscriber misses nothing), then follows its topics. Subscribes before reading, so
 * no message falls between the two.
 * @param {{storage: object, bus: object, runId: string, onProgress?: (state: object) => void,
 *   timeoutMs?: number, pollMs?: number, signal?: AbortSignal}} options
 * @returns {Promise<object>} the final state (status 'done' or 'failed'; 'timeout' or 'aborted')
 */
async function watchRun({ storage, bus, runId, onProgress = () => {}, timeoutMs = 0, pollMs = 1000, signal = null }) {
  if (!RUN_ID.test(runId)) throw new Error(`run id ${JSON.stringify(runId)} is not a valid request id`);
  let last = null;
  let settle;
  const ended = new Promise((resolve) => {
    settle = resolve;
  });
  let checking = Promise.resolve();
  let queued = false;
  let stopped = false;
  let lastError = null;
  // Messages can come faster than state can be read: at most one read waits behind the running one.
  const check = () => {
    if (queued) return checking;
    queued = true;
    checking = checking.then(async () => {
      queued = false;
      if (stopped) return;
      let state;
      try {
        state = await readState(storage, runId);
      } catch (e) {
        // Storage unreachable for a moment: try again at the next message or poll.
        lastError = e;
        return;
      }
      const key = `${state.status}:${state.done}:${state.chunks}`;
      if (key !== last) {
        last = key;
        onProgress(state);
      }
      if (state.status === 'done' || state.status === 'failed') settle(state);
    });
    return checking;
  };
  // Messages can be lost (Redis restarting, nobody subscribed yet): poll slowly as well, from the
  // start, so that a Redis that is down delays nothing but the messages.
  const poll = setInterval(check, pollMs);
  const timer = timeoutMs > 0 ? setTimeout(() => settle({ run_id: runId, status: 'timeout', ...(lastError ? { error: lastError.message } : {}) }), timeoutMs) : null;
  const onAbort = () => settle({ run_id: runId, status: 'aborted' });
  if (signal) {
    if (signal.aborted) onAbort();
    else signal.addEventListener('abort', onAbort, { once: true });
  }
  const subscribed = bus.subscribe(requestPattern(runId), () => {
    check();
  });
  subscribed.catch(() => {});
  try {
    await check();
    return await ended;
  } finally {
    stopped = true;
    clearInterval(poll);
    if (timer) clearTimeout(timer);
    if (signal) signal.removeEventListener('abort', onAbort);
    // Unsubscribes once the subscription is made (at once, or when Redis is back).
    subscribed.then((unsubscribe) => unsubscribe()).catch(() => {});
  }
}

module.exports = { RUN_ID, keys, json, readJson, readState, topicsOf, failRun, watchRun };
