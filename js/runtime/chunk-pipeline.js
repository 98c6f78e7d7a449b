'use strict';
// simulate-chunk as a step of a fan-out run (input `{run_id, index, lease?}`, sent by the
// scheduler with a slot of the environment's budget): compute the chunk from the run's stored
// inputs, give the slot back and start the next chunk (js/runtime/scheduler.js), store the chunk's
// impressions as an object of their own, record it as done exactly once; the chunk that completes
// the run merges it, once. One algorithm on every storage: chunks are objects, merged once at the
// end; no chunk waits in memory for another.
//
// Delivery semantics (Lambda's asynchronous invocations arrive at least once and are retried twice
// on error): outputs are deterministic, so storing them twice stores the same bytes; `done/<i>` is
// created by one delivery only, and only that delivery counts and may merge; a chunk that keeps
// failing (third attempt) fails the run, naming the chunk; a write the storage refuses for good
// (a full disk, a quota, a read-only file system) fails the run at once, saying so.

const { pipelineOf } = require('./pipeline');
const { topic } = require('./pubsub');
const { keys, json, readJson, failRun, activeKey, endedHere, claimEnd, unclaimDone, removeLeftovers } = require('./runs');
const { codes, typed } = require('./errors');
const { publicPath, scrubPaths } = require('./paths');
const { recordUsage, collectUsage } = require('./usage');
const { budgetOf } = require('./budget');
const { computeInPool, mergeReportsInPool, whenClear, hold } = require('./workers');
const { track } = require('./invoke');
const { pumpQuietly, maybeSweep, claim, claimRecord, forget, planOf, unclaim } = require('./scheduler');

/** Attempts of a chunk before the run fails: Lambda's first try and its two retries. */
const ATTEMPTS = 3;

/** Chunks computing now and the most at once, per environment, in this process (tests, bench). */
const computing = new Map();
function enter(env) {
  const e = computing.get(env) || { now: 0, max: 0 };
  e.now += 1;
  e.max = Math.max(e.max, e.now);
  computing.set(env, e);
}
function leave(env) {
  computing.get(env).now -= 1;
}
/** The most chunks of an environment this process computed at once (since the last reset). */
function maxComputing(env) {
  return (computing.get(env) || { max: 0 }).max;
}
/** Starts counting the most at once again. */
function resetComputing(env) {
  const e = computing.get(env);
  if (e) e.max = e.now;
}

/** Errors of a storage write that a retry does not mend: the run fails at once, saying so. */
const FOR_GOOD = new Set(['ENOSPC', 'EDQUOT', 'EFBIG', 'EROFS', 'EACCES', 'EPERM']);
function refusedForGood(e) {
  for (let x = e, depth = 0; x && depth < 4; x = x.cause, depth += 1) {
    if (FOR_GOOD.has(x.code)) return x.code;
  }
  return null;
}

/** Fails the run for a storage write refused for good; returns whether `e` was one. */
async function failForStorage(storage, bus, runId, e, where, env) {
  const code = refusedForGood(e);
  if (code === null) return false;
  const hint = code === 'ENOSPC' || code === 'EDQUOT' ? 'free space in the run storage (or point TARIFFSIM_STORAGE elsewhere)' : 'let the process write to the run storage';
  await failRun(storage, bus, runId, {
    ...where,
    error_type: 'StorageFull',
    reason: `StorageFull: ${scrubPaths(e.message)}: ${hint}, then start the run again with a new request id`,
    environment: env,
  });
  return true;
}

/** In-process count of failed attempts, for when storage cannot record them. */
const attemptsSeen = new Map();

/** Records a failed attempt of a chunk; the last allowed attempt fails the run (unless it is done). */
async function countFailure(storage, bus, runId, k, index, e, env) {
  if (await failForStorage(storage, bus, runId, e, { lambda: 'simulate-chunk', chunk: index }, env)) return;
  const seenKey = `${storage.url(k.base)}|${index}`;
  let failures;
  try {
    failures = (await storage.list(k.attemptsDir)).filter((key) => key.includes(`/${String(index).padStart(6, '0')}-`)).length + 1;
    await storage.put(k.attempt(index, failures), json({ error_type: e.name, message: scrubPaths(e.message) }));
  } catch (e2) {
    if (await failForStorage(storage, bus, runId, e2, { lambda: 'simulate-chunk', chunk: index }, env)) return;
    failures = (attemptsSeen.get(seenKey) || 0) + 1;
  }
  attemptsSeen.set(seenKey, failures);
  if (failures >= ATTEMPTS && (await storage.get(k.result)) === null) {
    await failRun(storage, bus, runId, { lambda: 'simulate-chunk', chunk: index, attempts: failures, reason: `${e.name}: ${e.message}`, error_type: e.name, environment: env });
  }
}

/** A done record's partial summary: read from storage, text; handed over in this process, bytes. */
const summaryOf = (record) => (record.summary !== undefined ? record.summary : record.summaryBytes);

/** A merge claim older than this was abandoned (its merger died): take it over. */
const MERGE_LEASE_MS = 15 * 60_000;

/** Runs the run has seen end, per process: their chunks stop at once. */
const endedRuns = new Set();

/**
 * Whether merges follow the chunks: in development the lambdas run in this process, which outlives
 * them, so a run's merge starts with its first chunk and streams each chunk into impressions.csv
 * as soon as it (and every chunk before it) is done, and the chunk that completes the run finishes
 * it. In Lambda a process serves one invocation and is frozen between them: the chunk that
 * completes the run merges it all. The same merge either way (mergeRun: the chunk objects streamed
 * in order into putStream, under merge.lock), started earlier.
 */
const follows = () => !process.env.AWS_LAMBDA_FUNCTION_NAME;

/** How often a follower looks for a chunk done by another process (its own are signalled). */
const FOLLOW_POLL_MS = 250;

/** Merges following a run's chunks in this process: where the run is kept -> follower. */
const followers = new Map();

/**
 * Per run, chunks done in this process: a count, who waits for the next one, and the chunk the
 * run's follower waits for (`want`), whose done record is handed to it (`handed`) rather than read
 * back from storage.
 */
const doneSignals = new Map();
function signalsOf(where) {
  let s = doneSignals.get(where);
  if (!s) {
    s = { seq: 0, waiters: new Set(), want: null, handed: null };
    doneSignals.set(where, s);
  }
  return s;
}
function signalDone(where, index, record) {
  const s = doneSignals.get(where);
  if (!s) return;
  s.seq += 1;
  if (s.want === index) s.handed = { index, record };
  for (const wake of s.waiters) wake();
  s.waiters.clear();
}
/** Resolves true at the next chunk done here, false after `ms` without one. */
function nextDone(where, ms) {
  const s = signalsOf(where);
  return new Promise((resolve) => {
    const wake = () => {
      clearTimeout(timer);
      resolve(true);
    };
    const timer = setTimeout(() => {
      s.waiters.delete(wake);
      resolve(false);
    }, ms);
    s.waiters.add(wake);
  });
}

/** Thrown into a follower's stream when its run ends another way (failed, cancelled). */
class RunEnded extends Error {}

/**
 * Claims merge.lock, taking over one its merger abandoned (older than the merge lease, or held by
 * a process of this host that is gone).
 */
async function claimMerge(request, k) {
  const { storage } = pipelineOf(request);
  // Taken over atomically when stale: of two mergers that find it stale, one merges.
  const claimed = await claim(storage, k.mergeLock, request.config.mergeLeaseMs || MERGE_LEASE_MS);
  // A merge (re)started: what mergers that are gone left half-written is removed (never the file
  // of a writer that is alive).
  if (claimed) await storage.removeStaleTemporaries(k.impressions).catch(() => {});
  return claimed;
}

/**
 * The run's impressions, chunk by chunk in chunk order, each chunk's object read from storage (one
 * read ahead while the one before is written; on a folder into two buffers used in turn, so that
 * a merge allocates nothing per chunk): `counts[i]` is chunk i's done record. With `waitFor(i)`
 * ({record}), a chunk not done yet is waited for (see follow). After the last chunk, a run that has
 * ended meanwhile (failed, cancelled) ends the stream with RunEnded: its impressions.csv is never
 * put in place.
 */
async function* chunkObjects(storage, bus, runId, k, plan, counts, waitFor = null) {
  const buffers = [{}, {}];
  const fetch = (i) => {
    const p = (async () => {
      if (waitFor !== null) counts[i] = (await waitFor(i)).record;
      const bytes = storage.readInto ? await storage.readInto(k.chunkCsv(i), buffers[i % 2]) : await storage.get(k.chunkCsv(i));
      if (bytes === null) throw typed(codes.InputNotFound, `chunk ${i} of run ${runId} is done but its impressions are missing`);
      return bytes;
    })();
    p.catch(() => {});
    return p;
  };
  let next = fetch(0);
  for (let i = 0; i < plan.chunks; i += 1) {
    const bytes = await next;
    // Chunk i+1 is read into the other buffer while chunk i is written; chunk i's buffer is read
    // into again only once the consumer asks for chunk i+1 (it has written chunk i).
    if (i + 1 < plan.chunks) next = fetch(i + 1);
    yield bytes;
  }
  if (await endedRun(storage, bus, k, runId, { fresh: true })) throw new RunEnded(`run ${runId} has ended`);
}

/**
 * Starts a merge that follows the run's chunks (development: see `follows`), unless one is
 * following it here already or another process holds merge.lock: impressions.csv streamed from the
 * chunk objects as they are done, in order. The chunk that completes the run adopts it in mergeRun
 * (summary, result, run-done under its own invocation); a follower that nobody adopts (the last
 * chunk was done elsewhere) finishes by itself. A follower whose run ends another way stops and
 * releases merge.lock; one that fails releases it for mergeRun to merge from the start.
 */
function follow(request, runId, plan) {
  const { storage, bus } = pipelineOf(request);
  const k = keys(runId);
  const where = storage.url(k.base);
  if (followers.has(where)) return;
  const follower = { counts: new Array(plan.chunks), streamed: null, adopted: false, reports: null };
  followers.set(where, follower);
  // Until the run is merged, its environment's merge comes before those of the environments
  // served after it (a PROD run's merge does not share the disk with five DEV merges).
  const unhold = hold(request.env.name);
  const signals = signalsOf(where);
  let quiet = true;
  const waitFor = async (i) => {
    // A merge of a lower environment waits while a higher one's chunks compute here (PROD first).
    await whenClear(request.env.name);
    signals.want = i;
    try {
      for (;;) {
        const seq = signals.seq;
        const record = signals.handed === null ? await readJson(storage, k.done(i)) : null;
        const handed = signals.handed;
        if (handed !== null && handed.index === i) return handed;
        if (record !== null) return { record };
        // No chunk done here for a while: has the run ended (failed, cancelled)?
        if (quiet && (await endedRun(storage, bus, k, runId))) throw new RunEnded(`run ${runId} has ended`);
        quiet = signals.seq === seq && !(await nextDone(where, FOLLOW_POLL_MS));
      }
    } finally {
      signals.want = null;
      signals.handed = null;
    }
  };
  // Once the last chunk's done record is in, its summaries are merged at once, while the last
  // impressions are still being written and flushed.
  const lastRecord = plan.chunks - 1;
  const waitForAll = async (i) => {
    const got = await waitFor(i);
    if (i === lastRecord) {
      // (Once counts[i] is set, after this returns.) In a worker thread: not on the event loop.
      setImmediate(() => {
        follower.reports = mergeReportsInPool(
          follower.counts.map(summaryOf),
          request.env.name,
        );
        // mergeRun merges them again when this failed, and says what is wrong.
        follower.reports.catch(() => {});
      });
    }
    return got;
  };
  const work = (async () => {
    if (!(await claimMerge(request, k))) return false;
    // The claim is renewed while the merge follows (a long run must not look abandoned).
    const renewal = setInterval(() => storage.put(k.mergeLock, claimRecord()).catch(() => {}), 60_000);
    renewal.unref();
    try {
      await storage.putStream(k.impressions, chunkObjects(storage, bus, runId, k, plan, follower.counts, waitForAll));
      return true;
    } catch (e) {
      await storage.delete(k.mergeLock).catch(() => {});
      if (!(e instanceof RunEnded) && !(await failForStorage(storage, bus, runId, e, { lambda: 'simulate-chunk', step: 'merge' }, request.env.name))) {
        request.log.warn(`the merge following run ${runId} stopped (the run's last chunk merges it): ${e.name}: ${e.message}`);
      }
      return false;
    } finally {
      clearInterval(renewal);
    }
  })().finally(unhold);
  follower.streamed = work;
  const finished = work
    .then(async (streamed) => {
      if (!streamed || follower.adopted) return;
      // Every chunk is in impressions.csv: the chunk that completes the run adopts the merge
      // (mergeRun); when it was done by another process, nobody here does: finish it.
      await new Promise((resolve) => setTimeout(resolve, 2000).unref());
      if (!follower.adopted) await mergeRun(request, runId);
    })
    .catch((e) => request.log.warn(`merge of run ${runId}: ${e.name}: ${e.message}`))
    .finally(() => {
      if (followers.get(where) === follower) followers.delete(where);
      doneSignals.delete(where);
    });
  track(finished);
}

/**
 * Merges a run whose chunks are all done, unless it is merged or being merged: the chunk objects
 * concatenated in chunk order into impressions.csv (streamed: one chunk in memory at a time), the
 * partial summaries merged into summary.json, then result.json and the run-done message, exactly
 * once; then the chunk objects, merged, are deleted. A merge following the run in this process
 * (development) is adopted: its impressions.csv is awaited rather than written again. A merger
 * that fails releases the claim, so that a retry merges; a write the storage refuses for good
 * fails the run. A run that has ended another way (failed, cancelled) is never merged: it is read
 * before the merge starts, after the impressions are streamed, and the end is claimed (end.json)
 * just before result.json is written, so that a failure or cancel recorded first always wins.
 * @returns {Promise<object|null>} the result when this call merged
 */
async function mergeRun(request, runId) {
  const { storage, bus } = pipelineOf(request);
  const env = request.env.name;
  const k = keys(runId);
  const plan = await planOf(storage, runId);
  if (plan === null || (await storage.get(k.result)) !== null) return null;
  const done = await storage.list(k.doneDir);
  if (done.length !== plan.chunks) return null;
  const where = storage.url(k.base);
  if (await endedRun(storage, bus, k, runId, { fresh: true })) {
    request.log.info(`run ${runId} has ended: not merged`);
    return null;
  }
  const started = performance.now();
  const follower = followers.get(storage.url(k.base));
  let counts = null;
  let reports = null;
  if (follower && !follower.adopted) {
    // One adopter: the first caller here takes the follower's merge.lock over.
    follower.adopted = true;
    if (await follower.streamed) ({ counts, reports } = follower);
  } else if (follower) {
    return null;
  }
  if (counts === null && !(await claimMerge(request, k))) return null;
  let claimedDone = false;
  try {
    if (counts === null) {
      counts = await Promise.all(done.map((key) => readJson(storage, key)));
      await storage.putStream(k.impressions, chunkObjects(storage, bus, runId, k, plan, counts));
    }
    // summary.json, and comparison.json/.csv when the run compares (empty strings otherwise).
    const merged = reports ? await reports.catch(() => null) : null;
    const [summary, comparison, comparisonCsv] = merged || (await mergeReportsInPool(counts.map(summaryOf), env));
    // Written (and flushed) side by side.
    await Promise.all([
      storage.put(k.summary, Buffer.from(summary)),
      ...(comparison ? [storage.put(k.comparison, Buffer.from(comparison)), storage.put(k.comparisonCsv, Buffer.from(comparisonCsv))] : []),
    ]);
    const result = {
      run_id: runId,
      chunks: plan.chunks,
      profiles: counts.reduce((a, d) => a + d.profiles, 0),
      impressions: counts.reduce((a, d) => a + d.impressions, 0),
      compute_ms: counts.reduce((a, d) => a + d.compute_ms, 0),
      own_ms: counts.reduce((a, d) => a + d.own_ms, 0),
      // The merge's time once every chunk was done (a merge that followed the chunks: its tail).
      merge_ms: performance.now() - started,
      // Where the outputs are, without the machine's absolute path (a folder: $TARIFFSIM_STORAGE/...).
      impressions_url: publicPath(storage.url(k.impressions)),
      summary_url: publicPath(storage.url(k.summary)),
      ...(comparison ? { comparison_url: publicPath(storage.url(k.comparison)), comparison_csv_url: publicPath(storage.url(k.comparisonCsv)) } : {}),
      finished_at: new Date().toISOString(),
    };
    // A sweep is not a lambda of the run: its own time is not the run's.
    Object.assign(result, await collectUsage(storage, runId, request.lambda === 'sweep' ? null : request));
    // The run's end is taken once: a failure or cancel recorded before this (end.json, or only in
    // Redis when storage could not keep it) wins, and the run is not done.
    if ((await endedRun(storage, bus, k, runId, { fresh: true })) || !(await claimEnd(storage, runId, 'done'))) {
      endedRuns.add(where);
      await storage.delete(k.mergeLock).catch(() => {});
      request.log.info(`run ${runId} ended while it was merged: not done`);
      return null;
    }
    claimedDone = true;
    if (!(await storage.putIfAbsent(k.result, json(result)))) return null;
    await bus.publish(topic('run-simulation', runId), { event: 'run-done', ...result });
    await storage.delete(activeKey(env, runId)).catch(() => {});
    endedRuns.add(storage.url(k.base));
    forget(storage, runId);
    request.log.info(`run ${runId} done: ${result.profiles} profiles, ${result.impressions} impressions in ${plan.chunks} chunks`);
    // The chunk objects are in impressions.csv: deleted, they cost neither space nor a write-back.
    for (let i = 0; i < plan.chunks; i += 1) await storage.delete(k.chunkCsv(i)).catch(() => {});
    // So are the half-written records of writers that were killed (never a live writer's).
    await removeLeftovers(storage, k);
    return result;
  } catch (e) {
    // result.json was not written: the run's end is not taken (a failure may record it).
    if (claimedDone) await unclaimDone(storage, runId).catch(() => {});
    await storage.delete(k.mergeLock).catch(() => {});
    // A retry merges from the start.
    if (follower && followers.get(where) === follower) followers.delete(where);
    if (e instanceof RunEnded) {
      request.log.info(`run ${runId} ended while it was merged: not done`);
      return null;
    }
    if (await failForStorage(storage, bus, runId, e, { lambda: 'simulate-chunk', step: 'merge' }, env)) return null;
    throw e;
  }
}

/** Per run, when this process last read that it had not ended. */
const checkedOpen = new Map();
/** A run read as not ended is read again after this long (an end another process recorded). */
const ENDED_RECHECK_MS = 250;

/**
 * Whether the run has ended (failed, cancelled or done): an end this process saw is known at once;
 * an end another process recorded (a cancel from the watch command) is read from storage (and the
 * bus), at most every ENDED_RECHECK_MS per run (`fresh`: now, as the merge does before it starts
 * and before it takes the run's end).
 */
async function endedRun(storage, bus, k, runId, { fresh = false } = {}) {
  const where = storage.url(k.base);
  if (endedRuns.has(where) || endedHere.has(where)) return true;
  const checked = checkedOpen.get(where);
  if (!fresh && checked !== undefined && Date.now() - checked < ENDED_RECHECK_MS) return false;
  const [failed, cancelled, endRecord] = await Promise.all([storage.get(k.failed), storage.get(k.cancelled), readJson(storage, k.end).catch(() => null)]);
  // end.json names a failure or cancel even when its record could not be stored.
  let end = failed !== null || cancelled !== null || (endRecord !== null && endRecord.status !== 'done');
  // A failure storage could not keep (a full disk) is remembered by the bus.
  if (!end) end = (await bus.recall(runId, 'failed')) !== null || (await bus.recall(runId, 'cancelled')) !== null;
  if (end) endedRuns.add(where);
  else {
    if (checkedOpen.size > 1024) checkedOpen.delete(checkedOpen.keys().next().value);
    checkedOpen.set(where, Date.now());
  }
  return end;
}

/**
 * One chunk of a stored run.
 * @param {{run_id: string, index: number, lease?: object}} input
 * @param {import('./pipeline').RunRequest} request from wrapHandler
 */
async function runChunk(input, request) {
  const pipeline = pipelineOf(request);
  const { storage, bus } = pipeline;
  const env = request.env.name;
  const runId = input.run_id;
  const index = input.index;
  const k = keys(runId);
  const budget = budgetOf(pipeline, request);
  let lease = input.lease ? budget.lease(input.lease) : null;
  // A retried delivery carries the slot its first attempt gave back: it takes a fresh one.
  if (lease !== null && !(await lease.valid().catch(() => false))) lease = null;
  let pumping = null;
  const release = async () => {
    if (lease === null) return;
    const l = lease;
    lease = null;
    await l.release().catch((e) => request.log.warn(`could not release a budget slot: ${e.message}`));
  };
  let known = true;
  try {
    const [plan, doneAlready, isEnded] = await Promise.all([planOf(storage, runId), storage.get(k.done(index)), endedRun(storage, bus, k, runId)]);
    if (plan === null) {
      known = false;
      throw typed(codes.UnknownRun, `run ${runId} has no plan: filter-population has not run`);
    }
    if (index >= plan.chunks) {
      known = false;
      throw typed(codes.InvalidRequest, `chunk ${index} does not exist: the run has ${plan.chunks}`);
    }
    if (doneAlready !== null) {
      // A duplicate delivery (Lambda delivers at least once), or a retry after a failed merge:
      // finish what the first delivery could not (a no-op when it did).
      await release();
      pumping = pumpQuietly(request);
      request.log.info(`chunk ${index} of run ${runId} is done already: duplicate delivery ignored`);
      const merged = (await mergeRun(request, runId)) !== null;
      return { run_id: runId, index, duplicate: true, merged };
    }
    if (isEnded) {
      await release();
      pumping = pumpQuietly(request);
      request.log.info(`run ${runId} has ended: chunk ${index} not started`);
      return { run_id: runId, index, skipped: 'run ended' };
    }
    if (lease === null) {
      // Called without a slot (by hand, or an old message): take one, or leave the chunk to the
      // scheduler, which starts it when a slot frees.
      const token = await budget.acquire();
      if (token === null) {
        await unclaim(storage, runId, index);
        request.log.info(`chunk ${index} of run ${runId}: the ${env} budget is in use; the scheduler starts it later`);
        return { run_id: runId, index, deferred: true };
      }
      lease = budget.lease(token);
      try {
        await storage.put(k.claim(index), claimRecord());
      } catch (e) {
        // Counted as the chunk's failure: a write storage refuses for good fails the run.
        await countFailure(storage, bus, runId, k, index, e, env);
        throw e;
      }
    }
    return await computeAndStore(request, { runId, index, k, plan, lease, release, setPumping: (p) => (pumping = p) });
  } catch (e) {
    await release();
    throw e;
  } finally {
    if (pumping !== null) await pumping;
    if (known) await recordUsage(storage, runId, request);
    await maybeSweep(request);
  }
}

async function computeAndStore(request, { runId, index, k, plan, lease, release, setPumping }) {
  const { storage, bus } = pipelineOf(request);
  const env = request.env.name;
  const started = performance.now();
  let out;
  // The budget slot and the chunk's claim are renewed while the chunk waits for a worker and
  // computes (in a worker thread: this thread is free), so that neither looks abandoned to a sweep
  // (docs/pipeline.md: nothing is computed twice).
  const renewal = setInterval(() => {
    lease.renew().catch(() => {});
    storage.put(k.claim(index), claimRecord()).catch(() => {});
  }, Math.max(250, Math.floor(request.config.leaseMs / 4)));
  renewal.unref();
  enter(env);
  try {
    // A lease that cannot be renewed (Redis down longer than its wait) does not fail the chunk:
    // the slot's lease still runs, and the run must end.
    await lease.renew().catch((e) => request.log.warn(`could not renew a budget slot: ${e.message}`));
    await faultHook(request, runId, index);
    out = await computeInPool({
      storage,
      location: request.config.storage,
      endpoint: request.config.s3Endpoint,
      runId,
      k,
      index,
      environment: env,
    });
  } catch (e) {
    clearInterval(renewal);
    leave(env);
    await release();
    await countFailure(storage, bus, runId, k, index, e, env);
    throw e;
  }
  clearInterval(renewal);
  leave(env);
  // The slot is free as soon as the chunk is computed and its impressions stored: the next chunk
  // computes while this one records itself done.
  await release();
  setPumping(pumpQuietly(request));
  const counts = { index, profiles: out.profiles, impressions: out.impressions, compute_ms: out.compute_ms, own_ms: 0 };
  let record;
  try {
    // The chunk's own work: its inputs prepared, the chunk computed, its impressions stored.
    counts.own_ms = performance.now() - started;
    // The done marker carries the chunk's partial summary: one write records both. It is
    // json({...counts, summary}), put together from the summary's bytes (see compute.js).
    const bytes = (u8) => Buffer.from(u8.buffer, u8.byteOffset, u8.byteLength);
    const marker = Buffer.concat([Buffer.from(`${JSON.stringify(counts).slice(0, -1)},"summary":`), bytes(out.summaryLiteral), Buffer.from('}\n')]);
    record = { ...counts, summaryBytes: bytes(out.summary) };
    if (!(await storage.putIfAbsent(k.done(index), marker))) {
      return { run_id: runId, index, duplicate: true };
    }
  } catch (e) {
    await countFailure(storage, bus, runId, k, index, e, env);
    throw e;
  }
  const where = storage.url(k.base);
  // A run that ended while this chunk computed (failed, cancelled) keeps the chunk's outputs, and
  // no merge follows.
  const isEnded = await endedRun(storage, bus, k, runId);
  if (follows() && plan.chunks > 1 && !isEnded) follow(request, runId, plan);
  signalDone(where, index, record);
  await noteProgress(storage, k);
  const done = (await storage.list(k.doneDir)).length;
  await bus.publish(topic('simulate-chunk', runId), { event: 'chunk-done', run_id: runId, ...counts, done, chunks: plan.chunks });
  const merged = done === plan.chunks && !isEnded && (await mergeRun(request, runId)) !== null;
  return { run_id: runId, ...counts, done, chunks: plan.chunks, merged };
}

/** Per run, when this process last recorded progress: at most once a second. */
const progressNoted = new Map();
async function noteProgress(storage, k) {
  const where = storage.url(k.base);
  const now = Date.now();
  if (now - (progressNoted.get(where) || 0) < 1000) return;
  progressNoted.set(where, now);
  if (progressNoted.size > 1024) progressNoted.delete(progressNoted.keys().next().value);
  await storage.put(k.progress, json({ at: new Date(now).toISOString() })).catch(() => {});
}

/**
 * Development-only fault injection for tests (TARIFFSIM_DEBUG_HOOKS=1 and
 * TARIFFSIM_FAIL_CHUNKS="<run-id>:<index>:<times>,..."): chunk <index> of that run fails its first
 * <times> attempts (0 = always). `<run-id>:slow:<ms>`: every chunk of that run holds its budget slot
 * <ms> longer before it computes (chunks that overlap whatever the machine's speed).
 */
const failures = new Map();
async function faultHook(request, runId, index) {
  const spec = request.config.failChunks;
  if (!spec || !request.config.debugHooks) return;
  for (const item of spec.split(',')) {
    const [run, chunk, times] = item.split(':');
    if (run !== runId) continue;
    if (chunk === 'slow') {
      await new Promise((resolve) => setTimeout(resolve, Number(times) || 0));
    } else if (Number(chunk) === index) {
      const key = `${run}:${chunk}`;
      const seen = (failures.get(key) || 0) + 1;
      failures.set(key, seen);
      if (Number(times) === 0 || seen <= Number(times)) {
        throw typed(codes.InjectedFault, `injected failure of chunk ${index} (attempt ${seen})`);
      }
    }
  }
}

module.exports = { runChunk, mergeRun, maxComputing, resetComputing, refusedForGood, failForStorage, ATTEMPTS };
