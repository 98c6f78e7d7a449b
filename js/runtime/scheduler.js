'use strict';
// Which chunk computes next, in an environment, over all its runs; and the runs that need help.
//
// - Active runs: `active/<ENV>/<run-id>.json` in the run storage, written when a run starts and
//   deleted when it ends (done, failed, cancelled).
// - pump(request): while the environment's budget (js/runtime/budget.js) has a free slot and an
//   active run has a chunk nobody has started, takes the slot, claims the chunk
//   (`runs/<id>/claims/<i>.json`, putIfAbsent) and invokes simulate-chunk with the slot's lease.
//   Runs are served in turn, so concurrent runs of an environment share its budget. Called when a
//   run is planned and whenever a chunk has computed (its slot just freed).
// - Runs to clean: `cleanup/<ENV>/<run-id>.json`, written when a run ends failed or cancelled (as
//   it leaves the active list) and deleted once a sweep has deleted its chunk objects (cleanUpRun).
// - sweep(request): every active run of the environment: one that ended leaves the list; one that
//   made no progress for `stallMs` of work (time a claim or lock of it was renewed, not time when
//   nothing ran: see resumeRun) fails as stalled (RunStalled); otherwise its work is taken up
//   again (filter-population when it has no plan and nobody holds its claim, chunks whose claim is
//   stale, the merge when every chunk is done), then pump. The development server sweeps when it
//   starts and every `sweepMs`; any invocation of the fan-out lambdas sweeps at most once per
//   `sweepMs` per process. A claim or lock is stale when not renewed for its lease (a chunk renews
//   its claim while it waits for a worker and computes), or at once when its holder was a process
//   of this host that is gone (a dev server killed and started again). Then every run to clean:
//   once no chunk of it can still write (no claim of it live, its end older than a lease, no live
//   merge lock), its chunk objects and what a merge cut short left are deleted, and it leaves
//   that list: cleaned once.

const { budgetOf, deadLocal, self } = require('./budget');
const { invoke } = require('./invoke');
const { pipelineOf } = require('./pipeline');
const { topic } = require('./pubsub');
const { keys, activeKey, cleanupKey, leaveActive, json, readJson, readState, ended, failRun, keepEnd, endedHere, removeLeftovers } = require('./runs');

/** Per process: where each run's next unclaimed chunk probably is (run storage url -> index). */
const cursors = new Map();
/** Per process: chunks whose claim was given back (run storage url -> indices), started first. */
const givenBack = new Map();
/** Per process: plans read (run storage url -> plan). */
const plans = new Map();
/** Per environment: which run is served first next (round robin). */
const turns = new Map();

async function planOf(storage, runId) {
  const where = storage.url(keys(runId).base);
  let plan = plans.get(where);
  if (plan === undefined) {
    plan = await readJson(storage, keys(runId).plan);
    if (plan === null) return null;
    if (plans.size > 256) plans.delete(plans.keys().next().value);
    plans.set(where, plan);
  }
  return plan;
}

/** Records a run as active in its environment (idempotent). */
async function registerRun(storage, env, runId) {
  await storage.put(activeKey(env, runId), json({ run_id: runId, environment: env, at: new Date().toISOString() }));
}

/** The active runs of an environment (their ids). */
async function activeRuns(storage, env) {
  const prefix = `active/${env}/`;
  return (await storage.list(`active/${env}`)).map((key) => key.slice(prefix.length).replace(/\.json$/, ''));
}

/** The runs of an environment that ended failed or cancelled and are yet to be cleaned (their ids). */
async function runsToClean(storage, env) {
  const prefix = `cleanup/${env}/`;
  return (await storage.list(`cleanup/${env}`)).map((key) => key.slice(prefix.length).replace(/\.json$/, ''));
}

/**
 * Why a claim or lock record is stale, or null when it is not: 'dead' (its holder was a process of
 * this host that is gone), 'expired' (not renewed for `leaseMs`), 'missing' (no record, or one
 * without a time).
 * @returns {'dead'|'expired'|'missing'|null}
 */
function staleness(record, leaseMs) {
  if (record === null) return 'missing';
  if (record.holder && deadLocal(record.holder)) return 'dead';
  const at = Date.parse(record.at);
  if (!Number.isFinite(at)) return 'missing';
  return Date.now() - at > leaseMs ? 'expired' : null;
}

/** Whether a claim or lock record is stale: older than `leaseMs`, or its holder died here. */
function stale(record, leaseMs) {
  return staleness(record, leaseMs) !== null;
}

/** Claim records made by this process so far. */
let claimsMade = 0;

/**
 * A claim, lock or lease record of this process, unlike any other record (its `serial`): two
 * calls of one process within a millisecond, taking over the same stale claim, write different
 * bytes (another ETag on S3), so that exactly one of them wins.
 */
function claimRecord() {
  claimsMade += 1;
  return json({ at: new Date().toISOString(), holder: self(), serial: claimsMade });
}

/** A stored claim or lock: its bytes and its record (null when unreadable). */
async function readClaim(storage, key) {
  const bytes = await storage.get(key).catch(() => null);
  if (bytes === null) return null;
  let record = null;
  try {
    record = JSON.parse(bytes.toString('utf8'));
  } catch {
    // unreadable: stale ('missing')
  }
  return { bytes, record: record !== null && typeof record === 'object' ? record : {} };
}

/**
 * Claims `key` (putIfAbsent), taking it over when the claim there is stale: atomically
 * (storage.takeOver), so that of two callers that both find the same stale claim exactly one wins.
 * @returns {Promise<boolean>}
 */
async function claim(storage, key, leaseMs) {
  if (await storage.putIfAbsent(key, claimRecord())) return true;
  const current = await readClaim(storage, key);
  // Gone meanwhile (given back, or being taken over): one more plain claim.
  if (current === null) return storage.putIfAbsent(key, claimRecord());
  if (!stale(current.record, leaseMs)) return false;
  return storage.takeOver(key, current.bytes, claimRecord());
}

/** The next chunk of a run nobody has started, claimed; null when there is none. */
async function claimNext(storage, runId, leaseMs) {
  const k = keys(runId);
  const where = storage.url(k.base);
  // A run this process saw end whose end storage could not keep stays active until a sweep
  // stores it (runs.js keepEnd): none of its chunks starts meanwhile.
  if (endedHere.has(where)) return null;
  const plan = await planOf(storage, runId);
  if (plan === null) return null;
  // Chunks given back behind the cursor first (the cursor only moves forward).
  const back = givenBack.get(where);
  while (back && back.size > 0) {
    const j = back.values().next().value;
    back.delete(j);
    if (await storage.putIfAbsent(k.claim(j), claimRecord())) return j;
  }
  if (!cursors.has(where)) {
    // A process new to the run starts at the first gap in the claims.
    const claimed = new Set((await storage.list(k.claimsDir)).map((key) => Number(/(\d+)\.json$/.exec(key)[1])));
    let gap = 0;
    while (claimed.has(gap)) gap += 1;
    if (!cursors.has(where)) cursors.set(where, gap);
  }
  // Each index is taken from the cursor before its claim is written: pumps of this process running
  // side by side never try the same chunk (only another process's claim can be there first).
  for (;;) {
    const i = cursors.get(where);
    // A sweep reset the cursor meanwhile: look for the first gap again.
    if (i === undefined) return claimNext(storage, runId, leaseMs);
    if (i >= plan.chunks) return null;
    cursors.set(where, i + 1);
    if (await storage.putIfAbsent(k.claim(i), claimRecord())) return i;
  }
}

/**
 * Gives a chunk's claim back (its invocation could not be made, or it found no slot): the claim
 * deleted and the chunk noted, so that this process's next pump starts it (another process's
 * sweep finds the gap).
 */
async function unclaim(storage, runId, index) {
  const k = keys(runId);
  await storage.delete(k.claim(index)).catch(() => {});
  const where = storage.url(k.base);
  if (!givenBack.has(where)) givenBack.set(where, new Set());
  givenBack.get(where).add(index);
}

/**
 * Starts chunks while the environment's budget has slots and its active runs have work.
 * @param {import('./pipeline').RunRequest} request the calling lambda's request (its environment, configuration, depth)
 * @returns {Promise<number>} how many chunks it started
 */
async function pump(request) {
  const pipeline = pipelineOf(request);
  const { storage } = pipeline;
  const env = request.env.name;
  const budget = budgetOf(pipeline, request);
  let started = 0;
  // Runs this pump failed because storage refused their claims for good.
  const refused = new Set();
  for (;;) {
    const runs = (await activeRuns(storage, env)).filter((runId) => !refused.has(runId));
    if (runs.length === 0) return started;
    const token = await budget.acquire();
    if (token === null) return started;
    let work = null;
    const first = (turns.get(env) || 0) % runs.length;
    for (let n = 0; n < runs.length && work === null; n += 1) {
      const runId = runs[(first + n) % runs.length];
      let index;
      try {
        index = await claimNext(storage, runId, request.config.leaseMs);
      } catch (e) {
        // The slot was taken for this chunk: given back whatever happens (else the budget loses a
        // slot for good, with nothing computing in it).
        await budget.lease(token).release().catch(() => {});
        // A claim storage refuses for good (a read-only file system, a full disk) fails the run,
        // as any write of its chunks does; other runs are served on.
        const { failForStorage } = require('./chunk-pipeline');
        if (!(await failForStorage(storage, pipeline.bus, runId, e, { lambda: request.lambda }, env))) throw e;
        refused.add(runId);
        break;
      }
      if (index !== null) {
        work = { runId, index };
        turns.set(env, (first + n + 1) % runs.length);
      }
    }
    if (refused.size > 0 && work === null) continue;
    if (work === null) {
      await budget.lease(token).release();
      return started;
    }
    try {
      await invoke('simulate-chunk', { 'request-id': work.runId, run_id: work.runId, index: work.index, lease: token }, request, { handOff: true });
      started += 1;
    } catch (e) {
      await budget.lease(token).release();
      await unclaim(storage, work.runId, work.index);
      throw e;
    }
    // That was the budget's last free slot: no other is free now (the next pump comes when one is).
    if (token.last) return started;
  }
}

/** Runs pump, logging rather than throwing (it runs beside a lambda's own work). */
function pumpQuietly(request) {
  return pump(request).catch((e) => {
    request.log.warn(`could not start more chunks: ${e.name}: ${e.message}`);
    return 0;
  });
}

/**
 * The run's stall clock (see resumeRun): `at`, when it last moved (its progress record: a chunk
 * done, the plan, or a sweep's take-up moved on by the time nobody worked; else its start), and
 * `resumedAt`, when a sweep last took it up (work meant to go on from then).
 */
async function stallClock(storage, runId) {
  const k = keys(runId);
  const progress = await readJson(storage, k.progress).catch(() => null);
  const resumed = progress ? Date.parse(progress.resumed_at) : NaN;
  let at = progress ? Date.parse(progress.at) : NaN;
  if (!Number.isFinite(at)) {
    const spec = await readJson(storage, k.spec).catch(() => null);
    at = spec && Number.isFinite(Date.parse(spec.started_at)) ? Date.parse(spec.started_at) : Date.now();
  }
  return { at, resumedAt: Number.isFinite(resumed) ? resumed : at };
}

/**
 * The records of whoever works (or worked) on a run's current step, with their keys: filter.lock
 * while it has no plan, merge.lock once every chunk is done, else the claims of the chunks not done.
 */
async function holdersOf(storage, runId, state, leaseMs) {
  const k = keys(runId);
  const read = async (key) => ({ key, record: await readJson(storage, key).catch(() => null) });
  if (state.status === 'started') return { step: 'filter-population', held: [await read(k.filterLock)] };
  if (state.done === state.chunks) {
    const lock = await read(k.mergeLock);
    // No lock yet: the chunk that completed the run may be on its way to take it, its claim still
    // fresh (claims stay after their chunk is done). Read from the last chunk down: chunks are
    // started in order, so the one that completed a run is usually among the last.
    let completing = false;
    if (lock.record === null) {
      const index = (key) => Number((/(\d+)\.json$/.exec(key) || [0, -1])[1]);
      const claims = (await storage.list(k.claimsDir)).filter((key) => index(key) >= 0).sort((a, b) => index(b) - index(a));
      for (const key of claims) {
        if (!stale((await read(key)).record, leaseMs)) {
          completing = true;
          break;
        }
      }
    }
    return { step: 'merge', held: [lock], completing };
  }
  const done = new Set((await storage.list(k.doneDir)).map((key) => Number(/(\d+)\.json$/.exec(key)[1])));
  const held = [];
  for (const key of await storage.list(k.claimsDir)) {
    if (!done.has(Number(/(\d+)\.json$/.exec(key)[1]))) held.push(await read(key));
  }
  return { step: 'chunks', held, done: done.size };
}

/**
 * Takes up the work of one run again (see the file's comment). A run that can be taken up is: the
 * stall clock (progress.json) counts only the time something worked on the run, or was meant to
 * (a claim or lock renewed, as a chunk renews its claim while it waits and computes), never the
 * time after its last holder stopped renewing (a server that was down, a sweep not yet come). A
 * sweep that takes the run up after such a gap moves the clock on by the gap. A run whose lambdas
 * keep dying still stalls: the time they worked adds up.
 * @returns {Promise<string>} what it found: 'ended', 'stalled', 'filtering', 'merging', 'running'
 */
async function resumeRun(request, runId) {
  const pipeline = pipelineOf(request);
  const { storage, bus } = pipeline;
  const env = request.env.name;
  const k = keys(runId);
  const state = await readState(storage, runId, { bus });
  if (ended(state.status) || state.status === 'unknown') {
    // An end only the bus and this process keep (storage refused it) is stored first: the run
    // leaves the list only once storage holds its end, or a restart of both would lose it. A run
    // that failed or was cancelled goes onto the list of runs to clean (cleanUpRun) as it leaves.
    if (state.status === 'unknown' || (await keepEnd(storage, runId, state))) {
      await leaveActive(storage, env, runId, state.status).catch((e) => request.log.warn(`run ${runId} stays active (it is not on the list to clean): ${e.name}: ${e.message}`));
    }
    return 'ended';
  }
  const leaseMs = request.config.leaseMs;
  const lockLeaseMs = (step) => (step === 'merge' ? request.config.mergeLeaseMs || 15 * 60_000 : leaseMs);
  const { step, held, done, completing } = await holdersOf(storage, runId, state, leaseMs);
  const now = Date.now();
  const clock = await stallClock(storage, runId);
  // Until when someone worked on the run: now while a holder is alive, else the last renewal of a
  // claim or lock, or the last take-up.
  // No chunk of the run can start while the environment's budget cannot be reached (Redis down):
  // that time counts as work once the clock has moved past the outage's start, so a budget gone
  // for good stalls the run (it ends, saying why) and one that comes back lets it go on.
  const down = step === 'chunks' && held.length === 0 ? budgetOf(pipeline, request).unreachable() : null;
  const waitingOnBudget = down !== null && Math.max(clock.at, clock.resumedAt) >= down.since;
  const live = completing === true || waitingOnBudget || held.some(({ record }) => !stale(record, lockLeaseMs(step)));
  const renewed = held.map(({ record }) => Date.parse(record && record.at)).filter(Number.isFinite);
  // A take-up of filter-population or the merge counts as work for a lease after it, as a claim
  // would: a step taken up again and again that stops at once without progress (a merge that
  // finds it has nothing to do) runs the stall clock rather than keep the run going for ever.
  const takenUp = step === 'chunks' ? clock.resumedAt : clock.resumedAt + leaseMs;
  const workedUntil = live ? now : Math.min(now, Math.max(clock.at, takenUp, ...renewed));
  const busy = Math.max(0, workedUntil - clock.at);
  if (busy > request.config.stallMs) {
    const minutes = (request.config.stallMs / 60000).toFixed(1);
    const why = waitingOnBudget
      ? `no chunk could start: the ${env} budget's Redis (REDIS_URL) cannot be reached (${down.error}); start it, then start the run again with a new request id`
      : 'its lambdas keep dying or timing out; look at their logs, then start the run again with a new request id';
    await failRun(storage, bus, runId, {
      lambda: 'sweep',
      error_type: 'RunStalled',
      reason: `RunStalled: no progress for ${Math.round(busy / 1000)} s of work (the limit is ${minutes} min, TARIFFSIM_STALL_MS) with ${state.done} of ${state.chunks ?? '?'} chunks done: ${why}`,
      environment: env,
    });
    return 'stalled';
  }
  // Taken up after a time nobody worked on it: the stall clock skips that time.
  const restartClock = async () => {
    if (now - workedUntil > 1000) await storage.put(k.progress, json({ at: new Date(now - busy).toISOString(), resumed_at: new Date(now).toISOString() })).catch(() => {});
  };
  if (step === 'filter-population') {
    // No plan: filter-population died (or is still at work, holding its claim). A run started
    // again moments after its first start (concurrent starts of one id) has its filter-population
    // on the way (no claim yet): not taken up here (a sweep does, should it never come).
    const starting = request.lambda === 'run-simulation' && held[0].record === null && now - clock.at < leaseMs;
    if (!live && !starting) {
      await restartClock();
      await bus.publish(topic('run-simulation', runId), { event: 'resumed', run_id: runId, step: 'filter-population' });
      await invoke('filter-population', { 'request-id': runId, run_id: runId }, request);
    }
    return 'filtering';
  }
  if (step === 'merge') {
    // Every chunk done, no result: the merger died (its lock goes stale, or it never took it and
    // its chunk's claim went stale) or has not finished.
    if (!live) {
      await restartClock();
      await bus.publish(topic('run-simulation', runId), { event: 'resumed', run_id: runId, step: 'merge' });
      const { mergeRun } = require('./chunk-pipeline');
      await mergeRun(request, runId);
    }
    return 'merging';
  }
  // Chunks whose claim is stale and not done: free them for pump.
  const plan = await planOf(storage, runId);
  const why = { dead: 0, expired: 0, missing: 0 };
  for (const { key, record } of held) {
    const reason = staleness(record, leaseMs);
    // (A claim gone meanwhile was given back: the pump finds the gap.)
    if (reason === null || record === null) continue;
    // Read again just before: a claim renewed meanwhile is not taken from its chunk. Then taken
    // over atomically (another sweep may free the same claim, and the chunk may be claimed again
    // at once: a plain delete here could remove that new claim), and given back for pump.
    const again = await readClaim(storage, key);
    if (again === null || staleness(again.record, leaseMs) === null) continue;
    if (!(await storage.takeOver(key, again.bytes, claimRecord()))) continue;
    await storage.delete(key);
    why[reason] += 1;
  }
  const freed = why.dead + why.expired + why.missing;
  // Claims given back, or freed here: the next pump looks for the first gap again.
  cursors.delete(storage.url(k.base));
  if (freed > 0) {
    await restartClock();
    await bus.publish(topic('run-simulation', runId), { event: 'resumed', run_id: runId, step: 'chunks', chunks: freed, done, of: plan.chunks });
    const parts = [];
    if (why.dead > 0) parts.push(`${why.dead} whose process on this host is gone`);
    if (why.expired > 0) parts.push(`${why.expired} whose claim was not renewed for ${Math.round(leaseMs / 1000)} s (TARIFFSIM_LEASE_MS: its process died, hangs or cannot reach the storage)`);
    if (why.missing > 0) parts.push(`${why.missing} whose claim has no time`);
    request.log.warn(`run ${runId}: ${freed} chunk(s) not done are started again: ${parts.join('; ')}`);
  } else if (!live && held.length === 0 && now - workedUntil > 1000) {
    // Nothing claimed (its chunks wait for the budget, or were given back): not stalled by that.
    await restartClock();
  }
  return 'running';
}

/** A chunk claim's index (-1 for a key that is not one). */
const claimIndex = (key) => Number((/(\d+)\.json$/.exec(key) || [0, -1])[1]);

/**
 * Cleans a run that ended failed or cancelled (on the list `cleanup/<ENV>/`), once no chunk of it
 * can still write: its end older than a lease (a pump that had not seen the end claims within
 * that), no claim of its chunks live (chunks computing at the moment of a cancel finish and store
 * their objects; claims are renewed while their chunk waits and computes; a claim is stale as
 * the sweep's take-up judges it: not renewed for the lease, or its holder a process of this host
 * that is gone) and no live merge lock (a merge following the chunks stops, and releases it, when
 * the run ends). Then its chunk objects, the merge outputs put in place by a merge the end cut
 * short (impressions.csv, summary.json, comparison.json/.csv, unless a result was stored), the
 * unfinished uploads (S3) and temporaries (a folder) of writers that are gone are deleted, and the
 * run leaves the list: cleaned once. What an analyst or the run page reads stays: spec.json,
 * plan.json, end.json, failed.json or cancelled.json, done/, attempts/, claims/, usage/,
 * progress.json, inputs/.
 * @returns {Promise<'cleaning'|'cleaned'>} 'cleaning' while a chunk or merge of it may still write
 */
async function cleanUpRun(request, runId) {
  const { storage } = pipelineOf(request);
  const env = request.env.name;
  const k = keys(runId);
  const leaseMs = request.config.leaseMs;
  /** @returns {Promise<'cleaned'>} */
  const leave = async () => {
    await storage.delete(cleanupKey(env, runId));
    forget(storage, runId);
    return 'cleaned';
  };
  const [end, result] = await Promise.all([readJson(storage, k.end), storage.get(k.result)]);
  // Not a failed or cancelled run (or one whose result is stored): its merge deleted its chunks.
  if (end === null || (end.status !== 'failed' && end.status !== 'cancelled') || result !== null) return leave();
  if (Date.now() - Date.parse(end.at) <= leaseMs) return 'cleaning';
  // From the last chunk down: the chunks still computing are usually among the last claimed.
  const claims = (await storage.list(k.claimsDir)).filter((key) => claimIndex(key) >= 0).sort((a, b) => claimIndex(b) - claimIndex(a));
  for (const key of claims) {
    if (!stale(await readJson(storage, key).catch(() => null), leaseMs)) return 'cleaning';
  }
  if (!stale(await readJson(storage, k.mergeLock).catch(() => null), request.config.mergeLeaseMs || 15 * 60_000)) return 'cleaning';
  // The temporaries of writers that are gone first: a folder they kept is removed with the rest.
  await removeLeftovers(storage, k);
  // (Refused, say by a policy without s3:AbortMultipartUpload: a lifecycle rule aborts them.)
  await storage.abandonStreams(k.impressions).catch((e) => request.log.warn(`run ${runId}: the unfinished uploads of its impressions were not aborted: ${e.name}: ${e.message}`));
  const objects = await storage.list(`${k.base}/chunks`);
  await storage.deleteAll([...objects, k.impressions, k.summary, k.comparison, k.comparisonCsv]);
  request.log.info(`run ${runId} (${end.status}): ${objects.length} chunk object(s) deleted`);
  return leave();
}

const lastSweep = new Map();

/**
 * Sweeps an environment: every active run resumed, failed as stalled or dropped from the list,
 * then pump, then the runs to clean (cleanUpRun). Never throws (it runs beside other work);
 * returns what it found per run.
 * @param {import('./pipeline').RunRequest} request a request of the environment (see systemRequest)
 * @param {{freeDead?: boolean}} [options] first free the budget slots of dead local holders
 */
async function sweep(request, options = {}) {
  const pipeline = pipelineOf(request);
  const found = {};
  try {
    if (options.freeDead) await budgetOf(pipeline, request).freeDead();
    for (const runId of await activeRuns(pipeline.storage, request.env.name)) {
      try {
        found[runId] = await resumeRun(request, runId);
      } catch (e) {
        // A take-over storage refuses for good (a read-only file system) fails the run, as every
        // write of a run does, rather than be tried again at every sweep.
        const { failForStorage } = require('./chunk-pipeline');
        if (await failForStorage(pipeline.storage, pipeline.bus, runId, e, { lambda: 'sweep' }, request.env.name).catch(() => false)) found[runId] = 'failed';
        else request.log.warn(`sweep: run ${runId}: ${e.name}: ${e.message}`);
      }
    }
    await pumpQuietly(request);
    // Runs that ended failed or cancelled: their chunk objects deleted once nothing can write them.
    for (const runId of await runsToClean(pipeline.storage, request.env.name)) {
      try {
        const cleaned = await cleanUpRun(request, runId);
        if (!(runId in found)) found[runId] = cleaned;
      } catch (e) {
        request.log.warn(`sweep: cleaning run ${runId}: ${e.name}: ${e.message}`);
      }
    }
  } catch (e) {
    request.log.warn(`sweep of ${request.env.name} failed: ${e.name}: ${e.message}`);
  }
  return found;
}

/** Sweeps the request's environment unless this process did so in the last `sweepMs`. */
function maybeSweep(request) {
  const key = `${request.config.storage}|${request.env.name}`;
  const last = lastSweep.get(key) || 0;
  if (Date.now() - last < request.config.sweepMs) return Promise.resolve(null);
  lastSweep.set(key, Date.now());
  return sweep(request);
}

/**
 * A request of an environment for work nobody asked for (the development server's sweeps): its
 * settings (secrets resolved), a logger, the environment's alias (so invocations go to its own).
 * @param {'DEV'|'STAGING'|'PROD'} name
 * @returns {Promise<import('./pipeline').RunRequest>}
 */
async function systemRequest(name) {
  const { config, resolveSecrets } = require('./config');
  const { createLogger } = require('./logging');
  const settings = await resolveSecrets(config.forEnvironment(name));
  const log = createLogger({ format: config.logFormat, lineBreak: config.lineBreak }).bind(name, 'sweep', settings.logLevel);
  const arn = `arn:aws:lambda:${process.env.AWS_REGION || 'eu-west-1'}:000000000000:function:tariffsim-sweep:${name}`;
  return { lambda: 'sweep', env: { name, alias: name, functionName: 'tariffsim-sweep', arn }, requestId: 'sweep', depth: 0, config: settings, log, context: {}, started: require('./usage').now() };
}

/**
 * Sweeps every environment now and then every `sweepMs` (the development server). The first
 * sweep frees the budget slots of holders that died on this host.
 * @returns {() => void} stops it
 */
function startSweeping() {
  const { ENVIRONMENTS } = require('./environment');
  const { config } = require('./config');
  let stopped = false;
  let timer = null;
  let first = true;
  const round = async () => {
    for (const name of ENVIRONMENTS) {
      if (stopped) return;
      try {
        await sweep(await systemRequest(/** @type {'DEV'|'STAGING'|'PROD'} */ (name)), { freeDead: first });
      } catch {
        // logged by sweep; a setting that cannot be resolved waits for the next round
      }
    }
    first = false;
    if (!stopped) {
      timer = setTimeout(round, config.forEnvironment('DEV').sweepMs);
      timer.unref();
    }
  };
  const started = round();
  return async () => {
    stopped = true;
    if (timer) clearTimeout(timer);
    await started.catch(() => {});
  };
}

/** Forgets what this process remembers of a run (its plan, its cursor). */
function forget(storage, runId) {
  const where = storage.url(keys(runId).base);
  plans.delete(where);
  cursors.delete(where);
  givenBack.delete(where);
}

module.exports = { systemRequest, startSweeping, registerRun, activeRuns, runsToClean, cleanUpRun, pump, pumpQuietly, unclaim, sweep, maybeSweep, resumeRun, claim, readClaim, stale, staleness, claimRecord, forget, planOf };
