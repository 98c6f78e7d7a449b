'use strict';
// What a run costs on AWS Lambda: a pure model (no clock, no environment; the two readers at the
// bottom are the only I/O, and only when called).
//
// Lambda bills each invocation a request and its duration times the function's memory, in
// GB-seconds (a GB is 1024 MB), at the architecture's price; since 2025-08-01 the INIT phase of a
// cold start (managed runtimes, zip packages) is billed as duration too. Prices live in
// config/prices.json with their date and source.
//
// A run's usage, measured (the pipeline records every invocation: js/runtime/usage.js) or estimated
// (`estimateUsage`, from figures measured on this build: js/tools/cost.js), has one shape:
//
//   usage = {
//     invocations: { <lambda>: n },          // requests
//     billed_ms:   { <lambda>: ms },         // sum over invocations of each one's billed duration
//                                            //   (rounded up to billing_granularity_ms: billedMs)
//     init_ms:     { <lambda>: ms },         // sum of INIT durations of the cold starts (each
//                                            //   rounded up likewise)
//     memory_mb?:  { <lambda>: mb },         // optional: the memory each lambda ran with
//                                            //   (context.memoryLimitInMB); else options.memoryMb
//   }
//
// and `usageCost(usage, {memoryMb, arch, prices})` prices it. Amounts are US dollars as floats
// (an estimate in fractions of a cent, not money that is compared or settled), summed in a fixed
// order (lambdas sorted by name).

const fs = require('node:fs');
const path = require('node:path');

/**
 * A run's usage, measured or estimated (the shape above).
 * @typedef {{invocations: Record<string, number>, billed_ms: Record<string, number>,
 *   init_ms: Record<string, number>, memory_mb?: Record<string, number>}} Usage
 */
/**
 * A price table: config/prices.json.
 * @typedef {{date: string, source: string, currency?: string, requests_per_million: number,
 *   gb_second: Record<string, number>, billing_granularity_ms: number, init_billed: boolean}} Prices
 */

/** The lambdas of a fan-out run, in the order they run. */
const RUN_LAMBDAS = Object.freeze(['run-simulation', 'filter-population', 'simulate-chunk']);
/** The architectures Lambda prices. */
const ARCHITECTURES = Object.freeze(['x86_64', 'arm64']);
/** Memory at which a function has one full vCPU (AWS: "at 1,769 MB, a function has the equivalent of one vCPU"). */
const ONE_VCPU_MB = 1769;

function fail(message) {
  const e = new Error(message);
  e.name = 'InvalidCostInput';
  return e;
}

function nonNegative(value, what) {
  if (typeof value !== 'number' || !Number.isFinite(value) || value < 0) throw fail(`${what} must be a number from 0, got ${JSON.stringify(value)}`);
  return value;
}

/**
 * Checks a price table (config/prices.json's shape).
 * @param {any} prices
 * @returns {Prices} the same table
 */
function checkPrices(prices) {
  if (prices === null || typeof prices !== 'object') throw fail('prices must be an object like config/prices.json');
  for (const field of ['date', 'source']) if (typeof prices[field] !== 'string' || prices[field] === '') throw fail(`prices.${field} is missing: a price says when and where it was read`);
  nonNegative(prices.requests_per_million, 'prices.requests_per_million');
  for (const arch of ARCHITECTURES) nonNegative(prices.gb_second && prices.gb_second[arch], `prices.gb_second.${arch}`);
  if (!Number.isSafeInteger(prices.billing_granularity_ms) || prices.billing_granularity_ms < 1) throw fail('prices.billing_granularity_ms must be a whole number from 1');
  if (typeof prices.init_billed !== 'boolean') throw fail('prices.init_billed must be true or false');
  return prices;
}

/**
 * The billed duration of one invocation (or one INIT phase): rounded up to the billing
 * granularity, at least one unit.
 * @param {number} durationMs
 * @param {{billing_granularity_ms: number}} prices
 */
function billedMs(durationMs, prices) {
  nonNegative(durationMs, 'duration');
  const g = prices.billing_granularity_ms;
  return Math.max(g, Math.ceil(durationMs / g) * g);
}

/**
 * An empty usage record for the run's lambdas.
 * @param {readonly string[]} [lambdas]
 * @returns {Usage}
 */
function emptyUsage(lambdas = RUN_LAMBDAS) {
  const zero = () => Object.fromEntries(lambdas.map((l) => [l, 0]));
  return { invocations: zero(), billed_ms: zero(), init_ms: zero() };
}

/**
 * Adds one invocation to a usage record (how a recorder builds one).
 * @param {Usage} usage from emptyUsage
 * @param {string} lambda
 * @param {{durationMs: number, initMs?: number, memoryMb?: number}} invocation
 * @param {Prices} prices
 */
function addInvocation(usage, lambda, { durationMs, initMs = 0, memoryMb }, prices) {
  usage.invocations[lambda] = (usage.invocations[lambda] || 0) + 1;
  usage.billed_ms[lambda] = (usage.billed_ms[lambda] || 0) + billedMs(durationMs, prices);
  usage.init_ms[lambda] = (usage.init_ms[lambda] || 0) + (initMs > 0 ? billedMs(initMs, prices) : 0);
  if (memoryMb !== undefined) {
    usage.memory_mb = usage.memory_mb || {};
    usage.memory_mb[lambda] = memoryMb;
  }
  return usage;
}

function memoryFor(lambda, usage, memoryMb) {
  let mb;
  if (typeof memoryMb === 'number') mb = memoryMb;
  else if (memoryMb && typeof memoryMb === 'object' && memoryMb[lambda] !== undefined) mb = memoryMb[lambda];
  else if (usage.memory_mb && usage.memory_mb[lambda] !== undefined) mb = usage.memory_mb[lambda];
  if (!Number.isSafeInteger(mb) || mb < 128 || mb > 10240) throw fail(`the memory of ${lambda} is ${JSON.stringify(mb)}: give memoryMb (128 to 10240 MB), one number or one per lambda`);
  return mb;
}

/**
 * The Lambda cost of a usage record.
 * @param {{invocations: Record<string, number>, billed_ms: Record<string, number>,
 *   init_ms?: Record<string, number>, memory_mb?: Record<string, number>}} usage
 * @param {{memoryMb?: number|Record<string, number>, arch?: string, prices?: Prices}} options
 *   `memoryMb`: one size for every lambda, or one per lambda (default: usage.memory_mb); `arch`:
 *   x86_64 or arm64; `prices` are needed
 * @returns {{arch: string, currency: string, prices_date: string, invocations: number,
 *   billed_ms: number, init_ms: number, gb_seconds: number, requests_usd: number,
 *   duration_usd: number, total_usd: number, lambdas: Record<string, {invocations: number, billed_ms: number,
 *   init_ms: number, memory_mb: number, gb_seconds: number, requests_usd: number, duration_usd: number,
 *   total_usd: number}>}}
 */
function usageCost(usage, { memoryMb, arch, prices } = {}) {
  checkPrices(prices);
  if (!ARCHITECTURES.includes(arch)) throw fail(`arch must be one of ${ARCHITECTURES.join(', ')}, got ${JSON.stringify(arch)}`);
  if (usage === null || typeof usage !== 'object' || typeof usage.invocations !== 'object' || typeof usage.billed_ms !== 'object') {
    throw fail('usage must be {invocations: {lambda: n}, billed_ms: {lambda: ms}, init_ms: {lambda: ms}}');
  }
  const perGbSecond = prices.gb_second[arch];
  const perRequest = prices.requests_per_million / 1e6;
  const names = [...new Set([...Object.keys(usage.invocations), ...Object.keys(usage.billed_ms), ...Object.keys(usage.init_ms || {})])].sort();
  const out = {
    arch,
    currency: prices.currency || 'USD',
    prices_date: prices.date,
    invocations: 0,
    billed_ms: 0,
    init_ms: 0,
    gb_seconds: 0,
    requests_usd: 0,
    duration_usd: 0,
    total_usd: 0,
    lambdas: {},
  };
  for (const lambda of names) {
    const invocations = nonNegative(usage.invocations[lambda] || 0, `usage.invocations[${lambda}]`);
    const billed = nonNegative(usage.billed_ms[lambda] || 0, `usage.billed_ms[${lambda}]`);
    const init = prices.init_billed ? nonNegative((usage.init_ms && usage.init_ms[lambda]) || 0, `usage.init_ms[${lambda}]`) : 0;
    if (invocations === 0 && billed === 0 && init === 0) continue;
    const mb = memoryFor(lambda, usage, memoryMb);
    const gbSeconds = ((billed + init) / 1000) * (mb / 1024);
    const requestsUsd = invocations * perRequest;
    const durationUsd = gbSeconds * perGbSecond;
    out.lambdas[lambda] = {
      invocations,
      billed_ms: billed,
      init_ms: init,
      memory_mb: mb,
      gb_seconds: gbSeconds,
      requests_usd: requestsUsd,
      duration_usd: durationUsd,
      total_usd: requestsUsd + durationUsd,
    };
    out.invocations += invocations;
    out.billed_ms += billed;
    out.init_ms += init;
    out.gb_seconds += gbSeconds;
    out.requests_usd += requestsUsd;
    out.duration_usd += durationUsd;
  }
  out.total_usd = out.requests_usd + out.duration_usd;
  return out;
}

/** Lambda's name for a Node.js `process.arch` ('x64' -> 'x86_64', 'arm64' -> 'arm64'). */
function lambdaArch(nodeArch) {
  if (nodeArch === 'arm64') return 'arm64';
  if (nodeArch === 'x64') return 'x86_64';
  throw fail(`Lambda runs x64 or arm64, not ${JSON.stringify(nodeArch)}`);
}

/**
 * How much slower CPU-bound work runs at `memoryMb` than on one full core: Lambda gives CPU in
 * proportion to memory, one vCPU at 1,769 MB; the engine is single-threaded, so more than one
 * vCPU does not make it faster.
 */
function cpuSlowdown(memoryMb) {
  return Math.max(1, ONE_VCPU_MB / memoryMb);
}

/**
 * What the pipeline waits for in each invocation, as storage round trips (requests made one after
 * another; requests made together count once), bytes and invokes, per storage kind: a mirror of
 * run-simulation.js, filter-population.js and runtime/chunk-pipeline.js (keep it in step; the
 * estimate-against-actual test in js/test/cost.test.js notices when it drifts). On every storage a
 * chunk stores its own object and the merge appends the chunks, in order, into the run's object; on
 * S3 the merge reads every chunk back after the last one. On a folder in development the merge
 * follows the chunks as they finish, in the background (docs/pipeline.md), so its copying is charged
 * to no invocation: the folder figures below count the merge's round trips only (not yet modelled:
 * that background copying, and the worker hand-off; the test allows 35%).
 */
const PIPELINE = Object.freeze({
  // spec claimed; usage recorded; invokes filter-population
  'run-simulation': { roundTrips: 2, invokes: 1 },
  // spec, plan, market, scenario, population, plan claimed, usage; invokes the first `budget` chunks
  'filter-population': { roundTrips: 7 },
  // done marker, list done, usage, and on a folder: predecessor's end, append claim, appended
  // marker, list appended, next done? (done? and failed? are read while the chunk computes)
  chunk: { s3: { roundTrips: 3 }, folder: { roundTrips: 8 } },
  // a new instance prepares the run: plan, then market, scenario and population together
  coldChunk: { roundTrips: 2 },
  // result?, list done, lock, done markers (together), summary, list usage, usage records
  // (together), result; on a folder the impressions are renamed (1), on S3 each chunk's object is
  // read in turn and the run's written
  merge: { s3: { roundTrips: 8, perChunk: 1, copies: true }, folder: { roundTrips: 9, perChunk: 0, copies: false } },
});

/**
 * A run's usage, estimated before it starts. Every duration is built from figures measured on this
 * build (`measured`) and the storage and invoke figures of where it runs (`io`); see docs/deploy.md.
 *
 * `chunkProfiles`: profiles of each chunk; `budget`: chunks in flight at once (the environment's
 * chunkBudget); `instances`: execution environments per lambda, each preparing the run and
 * starting cold once (default 1, 1, min(budget, chunks)).
 * @param {{
 *   chunkProfiles: number[],
 *   budget: number,
 *   marketBytes: number, populationBytes: number,
 *   measured: {perProfileMs: number, csvBytesPerProfile: number, filterMs: number,
 *              chunkPrepareMs: number, mergePerChunkMs?: number, handlerMs?: number,
 *              initMs: Record<string, number>},
 *   io: {kind: 's3'|'folder', requestMs: number, writeMBps: number, readMBps: number, invokeMs: number},
 *   memoryMb: number|Record<string, number>,
 *   instances?: Record<string, number>,
 *   prices: Prices,
 * }} input
 * @returns {{usage: Usage, parts: Record<string, {compute_ms: number, io_ms: number, invoke_ms: number}>}}
 */
function estimateUsage(input) {
  const { chunkProfiles, budget, measured, io, memoryMb, prices } = input;
  if (!Array.isArray(chunkProfiles) || chunkProfiles.length === 0) throw fail('chunkProfiles must list the profiles of each chunk');
  if (!Number.isSafeInteger(budget) || budget < 1) throw fail('budget must be a whole number from 1');
  if (io.kind !== 's3' && io.kind !== 'folder') throw fail(`io.kind must be s3 or folder, got ${JSON.stringify(io.kind)}`);
  checkPrices(prices);
  const chunks = chunkProfiles.length;
  const handlerMs = measured.handlerMs || 0;
  const mb = (bytes) => bytes / (1024 * 1024);
  const write = (bytes) => (mb(bytes) / io.writeMBps) * 1000;
  const read = (bytes) => (mb(bytes) / io.readMBps) * 1000;
  const trips = (n) => n * io.requestMs;
  const slow = (lambda) => cpuSlowdown(memoryFor(lambda, {}, memoryMb));
  const instances = {
    'run-simulation': 1,
    'filter-population': 1,
    'simulate-chunk': Math.min(budget, chunks),
    ...(input.instances || {}),
  };
  const usage = { ...emptyUsage(), memory_mb: Object.fromEntries(RUN_LAMBDAS.map((l) => [l, memoryFor(l, {}, memoryMb)])) };
  const parts = Object.fromEntries(RUN_LAMBDAS.map((l) => [l, { compute_ms: 0, io_ms: 0, invoke_ms: 0 }]));
  const invocation = (lambda, { compute = 0, ioMs = 0, invokes = 0 }) => {
    const c = (compute + handlerMs) * slow(lambda);
    const i = invokes * io.invokeMs;
    parts[lambda].compute_ms += c;
    parts[lambda].io_ms += ioMs;
    parts[lambda].invoke_ms += i;
    addInvocation(usage, lambda, { durationMs: c + ioMs + i }, prices);
  };

  invocation('run-simulation', { ioMs: trips(PIPELINE['run-simulation'].roundTrips), invokes: PIPELINE['run-simulation'].invokes });
  invocation('filter-population', {
    compute: measured.filterMs,
    ioMs: trips(PIPELINE['filter-population'].roundTrips) + write(input.marketBytes + input.populationBytes),
    invokes: Math.min(budget, chunks),
  });
  const csvBytes = chunkProfiles.map((n) => n * measured.csvBytesPerProfile);
  const totalCsv = csvBytes.reduce((a, b) => a + b, 0);
  const merge = PIPELINE.merge[io.kind];
  for (let i = 0; i < chunks; i += 1) {
    const cold = i < instances['simulate-chunk'];
    const last = i === chunks - 1;
    let compute = chunkProfiles[i] * measured.perProfileMs;
    let ioMs = trips(PIPELINE.chunk[io.kind].roundTrips) + write(csvBytes[i]);
    if (cold) {
      compute += measured.chunkPrepareMs;
      ioMs += trips(PIPELINE.coldChunk.roundTrips) + read(input.marketBytes + input.populationBytes);
    }
    if (last) {
      // The last chunk to finish merges the run.
      compute += chunks * (measured.mergePerChunkMs || 0);
      ioMs += trips(merge.roundTrips + merge.perChunk * chunks) + (merge.copies ? read(totalCsv) + write(totalCsv) : 0);
    }
    invocation('simulate-chunk', { compute, ioMs, invokes: i + budget < chunks ? 1 : 0 });
  }
  // INIT is taken as measured on a full core, not slowed down by memory (an assumption, not a
  // measurement on Lambda: docs/deploy.md).
  for (const lambda of RUN_LAMBDAS) {
    const init = measured.initMs[lambda] || 0;
    if (init > 0 && instances[lambda] > 0) usage.init_ms[lambda] += instances[lambda] * billedMs(init, prices);
  }
  return { usage, parts };
}

// The two readers: config/prices.json and config/functions.json (in the zip, next to js/).

const CONFIG_DIR = path.join(__dirname, '..', '..', 'config');

/** The price table (config/prices.json unless told), checked. */
function readPrices(file = path.join(CONFIG_DIR, 'prices.json')) {
  return checkPrices(JSON.parse(fs.readFileSync(file, 'utf8')));
}

/** The configured memory of each lambda (config/functions.json unless told): {lambda: mb}. */
function readMemory(file = path.join(CONFIG_DIR, 'functions.json')) {
  const { functions } = JSON.parse(fs.readFileSync(file, 'utf8'));
  return Object.fromEntries(Object.entries(functions).map(([name, f]) => [name, f.memoryMb]));
}

module.exports = {
  RUN_LAMBDAS,
  ARCHITECTURES,
  ONE_VCPU_MB,
  PIPELINE,
  checkPrices,
  billedMs,
  emptyUsage,
  addInvocation,
  usageCost,
  lambdaArch,
  cpuSlowdown,
  estimateUsage,
  readPrices,
  readMemory,
};
