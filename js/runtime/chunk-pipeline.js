'use strict';
// simulate-chunk as a step of a fan-out run (input `{run_id, index}` from filter-population or
// from the chunk before it): compute the chunk from the run's stored inputs, store its outputs,
// record it as done exactly once, hand the concurrency slot to the next chunk, and let the last
// chunk to finish merge the run, exactly once.
//
// Delivery semantics (Lambda's asynchronous invocations arrive at least once and are retried twice
// on error): outputs are deterministic, so storing them twice stores the same bytes; `done/<i>` is
// created by one delivery only, and only that delivery counts, chains and may merge; a chunk that
// keeps failing (third attempt) fails the run, naming the chunk.

const { withEngine } = require('./engine');
const { invoke } = require('./invoke');
const { pipelineOf } = require('./pipeline');
const { topic } = require('./pubsub');
const { keys, json, readJson, failRun } = require('./runs');
const { codes, typed } = require('./errors');
const { recordUsage, collectUsage } = require('./usage');

/** Attempts of a chunk before the run fails: Lambda's first try and its two retries. */
const ATTEMPTS = 3;

/** Chunks of each run computing in this process now, and the most seen at once (tests, bench). */
const inFlight = new Map();
function enter(runId) {
  const e = inFlight.get(runId) || { now: 0, max: 0 };
  e.now += 1;
  e.max = Math.max(e.max, e.now);
  inFlight.set(runId, e);
}
function leave(runId) {
  inFlight.get(runId).now -= 1;
}
/** The most chunks of a run this process computed at once. */
function maxInFlight(runId) {
  return (inFlight.get(runId) || { max: 0 }).max;
}

/** Prepared runs of this warm instance: run id -> {generation, key, plan}. */
const prepared = new Map();

/** Preparations in progress, so that chunks arriving together read and parse the inputs once. */
const preparing = new Map();

async function preparedRun(storage, runId, k) {
  // Keyed by where the run is kept: one run id may exist in two environments' storage.
  const where = storage.url(k.base);
  const cached = prepared.get(where);
  const generation = withEngine((i) => i.generation);
  if (cached && cached.generation === generation && withEngine((i) => i.engine.hasRun(cached.key))) return cached;
  let pending = preparing.get(where);
  if (!pending) {
    pending = prepare(storage, runId, k).finally(() => preparing.delete(where));
    preparing.set(where, pending);
  }
  return pending;
}

async function prepare(storage, runId, k) {
  const plan = await readJson(storage, k.plan);
  if (plan === null) throw typed(codes.UnknownRun, `run ${runId} has no plan: filter-population has not run`);
  const [market, scenario, population] = await Promise.all([storage.get(k.market), storage.get(k.scenario), storage.get(k.population)]);
  if (market === null || population === null) throw typed(codes.InputNotFound, `run ${runId} lacks its stored inputs`);
  const entry = withEngine((instance) => {
    const { engine } = instance;
    const marketKey = engine.loadMarket(market);
    const visitsKey = engine.loadVisits(population);
    const run = engine.prepareRun(JSON.stringify(plan.chunk_spec), marketKey, scenario === null ? undefined : scenario.toString('utf8'), visitsKey);
    return { generation: instance.generation, key: run.key, plan };
  });
  if (prepared.size >= 8) prepared.delete(prepared.keys().next().value);
  prepared.set(storage.url(k.base), entry);
  return entry;
}

/** A merge claim older than this was abandoned (its merger died): take it over. */
const MERGE_LEASE_MS = 15 * 60_000;

/**
 * Merges the run when every chunk is done and nobody has: chunk outputs concatenated in chunk order
 * into impressions.csv, partial summaries merged into summary.json, then result.json and the
 * run-done message, exactly once. A merger that fails releases the claim, so the retry merges.
 * @returns {Promise<object|null>} the result when this call merged
 */
async function maybeMerge(storage, bus, runId, k, plan, request) {
  if ((await storage.get(k.result)) !== null) return null;
  const done = await storage.list(k.doneDir);
  if (done.length !== plan.chunks) return null;
  if (storage.writeAt && !(await appendFollowing(storage, k, plan, request))) return null;
  if (!(await storage.putIfAbsent(k.mergeLock, json({ at: Date.now() })))) {
    // A merger that died without releasing its claim (a timeout, say) is taken over after a lease.
    const lock = await readJson(storage, k.mergeLock);
    if (lock !== null && typeof lock.at === 'number' && Date.now() - lock.at < MERGE_LEASE_MS) return null;
    await storage.delete(k.mergeLock);
    if (!(await storage.putIfAbsent(k.mergeLock, json({ at: Date.now() })))) return null;
  }
  try {
    const started = performance.now();
    const counts = await Promise.all(done.map((key) => readJson(storage, key)));
    const summary = withEngine(({ wasm }) => wasm.mergeSummaries(counts.map((c) => c.summary)));
    if (storage.writeAt) {
      // Idempotent, for a merge retried after a later step failed.
      if ((await storage.get(k.appended(plan.chunks - 1))) !== null && (await storage.exists(k.partial))) await storage.rename(k.partial, k.impressions);
    } else {
      async function* impressions() {
        for (let i = 0; i < plan.chunks; i += 1) yield await storage.get(k.chunkCsv(i));
      }
      await storage.putStream(k.impressions, impressions());
    }
    await storage.put(k.summary, Buffer.from(summary));
    const result = {
      run_id: runId,
      chunks: plan.chunks,
      profiles: counts.reduce((a, d) => a + d.profiles, 0),
      impressions: counts.reduce((a, d) => a + d.impressions, 0),
      compute_ms: counts.reduce((a, d) => a + d.compute_ms, 0),
      own_ms: counts.reduce((a, d) => a + d.own_ms, 0),
      merge_ms: performance.now() - started,
      impressions_url: storage.url(k.impressions),
      summary_url: storage.url(k.summary),
      finished_at: new Date().toISOString(),
    };
    Object.assign(result, await collectUsage(storage, runId, request));
    if (!(await storage.putIfAbsent(k.result, json(result)))) return null;
    await bus.publish(topic('run-simulation', runId), { event: 'run-done', ...result });
    request.log.info(`run ${runId} done: ${result.profiles} profiles, ${result.impressions} impressions in ${plan.chunks} chunks`);
    return result;
  } catch (e) {
    await storage.delete(k.mergeLock);
    throw e;
  }
}

/**
 * On a folder, chunks that finished before their predecessor was appended, waiting in memory: a
 * folder is the development store, where every lambda runs in one process. Should that process die,
 * the appender computes a missing chunk again (chunks are deterministic).
 */
const parked = new Map();

/** A claim to append a chunk older than this was abandoned (its appender died): take it over. */
const APPEND_LEASE_MS = 60_000;

async function endOf(storage, k, i) {
  if (i < 0) return 0;
  const a = await readJson(storage, k.appended(i));
  return a === null ? null : a.end;
}

/**
 * On a folder, a chunk whose predecessor is already in the run's impressions file goes straight in
 * after it, from memory: the impressions are written once, in chunk order, as the run goes (a
 * chunk is appended at its known offset, so appending it again after a crash is harmless).
 * @returns {Promise<boolean>} whether it went in (else the caller stores the chunk's own file)
 */
async function appendDirect(storage, k, index, csv) {
  if (!storage.writeAt) return false;
  const offset = await endOf(storage, k, index - 1);
  if (offset === null) return false;
  if (!(await storage.putIfAbsent(k.appendClaim(index), json({ at: Date.now() })))) return false;
  await releasingClaim(storage, k, index, async () => {
    await storage.writeAt(k.partial, offset, csv);
    await storage.put(k.appended(index), json({ end: offset + csv.length }));
  });
  return true;
}

/**
 * Appends every done chunk not yet in the impressions file, in order, reading each from its own
 * file (or computing it again, if its appender died before finishing). Returns whether all are in.
 */
/** How far each run's impressions file is known (to this process) to be assembled. */
const appendedUpTo = new Map();

/** The number of chunks in the impressions file: from what this process saw, checked forward. */
async function appendedCount(storage, k) {
  let n = appendedUpTo.get(storage.url(k.base));
  if (n === undefined) n = (await storage.list(k.appendedDir)).length;
  while ((await storage.get(k.appended(n))) !== null) n += 1;
  appendedUpTo.set(storage.url(k.base), n);
  return n;
}

async function appendFollowing(storage, k, plan, request) {
  for (;;) {
    const n = await appendedCount(storage, k);
    if (n >= plan.chunks) return true;
    if ((await storage.get(k.done(n))) === null) return false;
    if (!(await storage.putIfAbsent(k.appendClaim(n), json({ at: Date.now() })))) {
      const claim = await readJson(storage, k.appendClaim(n));
      if (claim !== null && Date.now() - claim.at < APPEND_LEASE_MS) return false;
      await storage.delete(k.appendClaim(n));
      continue;
    }
    const offset = await endOf(storage, k, n - 1);
    const runId = k.base.slice('runs/'.length);
    let csv = parked.get(storage.url(k.chunkCsv(n))) || (await storage.get(k.chunkCsv(n)));
    parked.delete(storage.url(k.chunkCsv(n)));
    if (csv === null) {
      const run = await preparedRun(storage, runId, k);
      const out = withEngine(({ engine }) => engine.chunk(run.key, n));
      csv = Buffer.from(out.impressions_csv.buffer, out.impressions_csv.byteOffset, out.impressions_csv.byteLength);
      request.log.warn(`chunk ${n} recomputed for the merge: its appender did not finish`);
    }
    await releasingClaim(storage, k, n, async () => {
      await storage.writeAt(k.partial, offset, csv);
      await storage.put(k.appended(n), json({ end: offset + csv.length }));
    });
  }
}

/** Runs an append; if it fails, gives the claim back so that a retry can append the chunk. */
async function releasingClaim(storage, k, i, append) {
  try {
    await append();
  } catch (e) {
    await storage.delete(k.appendClaim(i)).catch(() => {});
    throw e;
  }
}

/** Records a failed attempt of a chunk; the last allowed attempt fails the run (unless it is done). */
async function countFailure(storage, bus, runId, k, index, e) {
  const failures = (await storage.list(`${k.base}/attempts`)).filter((key) => key.includes(`/${String(index).padStart(6, '0')}-`)).length + 1;
  await storage.put(k.attempt(index, failures), json({ error_type: e.name, message: e.message }));
  if (failures >= ATTEMPTS && (await storage.get(k.result)) === null) {
    await failRun(storage, bus, runId, { lambda: 'simulate-chunk', chunk: index, attempts: failures, reason: `${e.name}: ${e.message}`, error_type: e.name });
  }
}

/** Starts the chunk `budget` places after this one (which ignores the call if it is done). */
async function handOff(runId, plan, index, request) {
  const next = index + plan.budget;
  if (next < plan.chunks) await invoke('simulate-chunk', { run_id: runId, index: next }, request, { handOff: true });
}

/**
 * One chunk of a stored run.
 * @param {{run_id: string, index: number}} input
 * @param {object} request from wrapHandler
 */
async function runChunk(input, request) {
  enter(input.run_id);
  let known = true;
  try {
    return await chunkStep(input, request);
  } catch (e) {
    known = e.name !== codes.UnknownRun;
    throw e;
  } finally {
    if (!request.slotReleased) leave(input.run_id);
    if (known) await recordUsage(pipelineOf(request).storage, input.run_id, request);
  }
}

async function chunkStep(input, request) {
  const { storage, bus } = pipelineOf(request);
  const runId = input.run_id;
  const index = input.index;
  const k = keys(runId);
  // Whether this delivery is a duplicate, or the run failed, is read while the chunk computes (a
  // duplicate then wastes one computation; a fresh chunk waits for no I/O before computing).
  const before = Promise.all([storage.get(k.done(index)), storage.get(k.failed)]);
  before.catch(() => {});
  const duplicate = async () => {
    request.log.info(`chunk ${index} of run ${runId} is done already: duplicate delivery ignored`);
    // A retry after a failed hand-off or a failed merge lands here: finish what the first
    // delivery could not (both are no-ops when it did).
    const plan = await readJson(storage, k.plan);
    if (plan === null) return { run_id: runId, index, duplicate: true, merged: false };
    const next = index + plan.budget;
    if ((await storage.get(k.result)) === null && next < plan.chunks && (await storage.get(k.done(next))) === null) {
      await handOff(runId, plan, index, request);
    }
    const allIn = storage.writeAt ? await appendFollowing(storage, k, plan, request) : true;
    const merged = allIn && (await maybeMerge(storage, bus, runId, k, plan, request)) !== null;
    return { run_id: runId, index, duplicate: true, merged };
  };
  const started = performance.now();
  // A request for a chunk the run does not have is the caller's mistake, not a failing chunk.
  let run;
  try {
    run = await preparedRun(storage, runId, k);
  } catch (e) {
    if (e.name !== codes.UnknownRun) await countFailure(storage, bus, runId, k, index, e);
    throw e;
  }
  if (index >= run.plan.chunks) throw typed(codes.InvalidRequest, `chunk ${index} does not exist: the run has ${run.plan.chunks}`);
  let outcome;
  try {
    const out = withEngine(({ engine }) => engine.chunk(run.key, index));
    const computeMs = performance.now() - started;
    const [doneAlready, failed] = await before;
    if (doneAlready !== null) outcome = { duplicate: true };
    else if (failed !== null) outcome = { failed: true };
    else outcome = { run, out, computeMs };
  } catch (e) {
    await countFailure(storage, bus, runId, k, index, e);
    throw e;
  }
  // Outside the failure count: finishing a duplicate's hand-off or merge is not the chunk failing.
  if (outcome.duplicate) return duplicate();
  if (outcome.failed) {
    request.log.warn(`run ${runId} has failed: chunk ${index} dropped`);
    return { run_id: runId, index, skipped: 'run failed' };
  }
  try {
    const { out, computeMs } = outcome;
    faultHook(request, runId, index);
    // Hand the slot on as soon as the computation is done: at most `budget` chunks of a run compute
    // at once, and the next one computes while this one stores its outputs.
    leave(runId);
    request.slotReleased = true;
    await handOff(runId, run.plan, index, request);
    const csv = Buffer.from(out.impressions_csv.buffer, out.impressions_csv.byteOffset, out.impressions_csv.byteLength);
    if (storage.writeAt) {
      // In place, in chunk order: straight in after its predecessor, or parked in memory for
      // whoever appends the predecessor to take.
      if (!(await appendDirect(storage, k, index, csv))) parked.set(storage.url(k.chunkCsv(index)), csv);
    } else {
      await storage.put(k.chunkCsv(index), csv);
    }
    // The chunk's own work: its inputs prepared, the chunk computed, its outputs stored.
    outcome = { run, out, computeMs, ownMs: performance.now() - started };
  } catch (e) {
    await countFailure(storage, bus, runId, k, index, e);
    throw e;
  }

  const { out, computeMs, ownMs } = outcome;
  const counts = { index, profiles: out.profiles, impressions: out.impressions, compute_ms: computeMs, own_ms: ownMs };
  // The done marker carries the chunk's partial summary: one write records both.
  if (!(await storage.putIfAbsent(k.done(index), json({ ...counts, summary: out.summary_json })))) {
    return { run_id: runId, index, duplicate: true };
  }
  const done = (await storage.list(k.doneDir)).length;
  await bus.publish(topic('simulate-chunk', runId), { event: 'chunk-done', run_id: runId, ...counts, done, chunks: run.plan.chunks });
  // Chunks that finished before their predecessor went in are appended by whoever comes next.
  const allIn = storage.writeAt ? await appendFollowing(storage, k, run.plan, request) : done === run.plan.chunks;
  const merged = allIn && (await maybeMerge(storage, bus, runId, k, run.plan, request)) !== null;
  return { run_id: runId, ...counts, done, chunks: run.plan.chunks, merged };
}

/**
 * Development-only fault injection for tests: TARIFFSIM_FAIL_CHUNKS="<run-id>:<index>:<times>,..."
 * makes chunk <index> of that run fail its first <times> attempts (0 = always).
 */
const failures = new Map();
function faultHook(request, runId, index) {
  const spec = request.config.failChunks;
  if (!spec || !request.config.debugHooks) return;
  for (const item of spec.split(',')) {
    const [run, chunk, times] = item.split(':');
    if (run === runId && Number(chunk) === index) {
      const key = `${run}:${chunk}`;
      const seen = (failures.get(key) || 0) + 1;
      failures.set(key, seen);
      if (Number(times) === 0 || seen <= Number(times)) {
        throw typed(codes.InjectedFault, `injected failure of chunk ${index} (attempt ${seen})`);
      }
    }
  }
}

module.exports = { runChunk, maxInFlight, ATTEMPTS };
