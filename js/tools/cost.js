#!/usr/bin/env node
'use strict';
// npm run cost: what a run will cost on AWS Lambda, before it starts.
//
//   npm run cost -- --spec data/sample/run.json [--memory MB] [--arch x86_64|arm64]
//                   [--env DEV|STAGING|PROD] [--budget N] [--io s3|folder] [--json]
//                   [--request-ms MS] [--write-mbps MBPS] [--read-mbps MBPS] [--invoke-ms MS]
//
// Measured here, on this build, through js/runtime/engine.js (the code the lambdas run): one chunk
// of the spec (time per profile, CSV bytes per profile), filter-population's work on the spec's
// visits, a chunk instance preparing the run, merging summaries, and the cold start of each
// handler module in a fresh node process. Storage and invoke figures: measured on a local folder
// (--io folder), or, for S3 and the Lambda Invoke API (--io s3, the default), the assumptions in
// S3_ASSUMED (override them with the flags). The model is js/runtime/cost.js; prices are
// config/prices.json; memory is config/functions.json's, or --memory for every lambda.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { parseArgs } = require('node:util');
const cost = require('../runtime/cost');

const ROOT = path.resolve(__dirname, '..', '..');
/** Handler modules of the run's lambdas. */
const MODULES = Object.freeze({ 'run-simulation': 'js/run-simulation.js', 'filter-population': 'js/filter-population.js', 'simulate-chunk': 'js/simulate-chunk.js' });
/**
 * S3 and Invoke from inside Lambda, same region: assumptions, not measurements (replace them with
 * what a real run's usage shows). A small-object request ~20 ms; one stream ~80 MB/s up, ~90 MB/s
 * down; an asynchronous Invoke ~25 ms.
 */
const S3_ASSUMED = Object.freeze({ kind: 's3', requestMs: 20, writeMBps: 80, readMBps: 90, invokeMs: 25 });

const median = (xs) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.floor(s.length / 2)];
};

function timed(fn) {
  const t = performance.now();
  const value = fn();
  return { ms: performance.now() - t, value };
}

function readSpec(specFile) {
  const file = path.resolve(specFile);
  const spec = JSON.parse(fs.readFileSync(file, 'utf8'));
  const base = path.dirname(file);
  const market = fs.readFileSync(path.resolve(base, spec.market));
  const visits = fs.readFileSync(path.resolve(base, spec.visits));
  let scenario;
  if (spec.scenario !== null && typeof spec.scenario === 'object') scenario = JSON.stringify(spec.scenario);
  else if (typeof spec.scenario === 'string') scenario = fs.readFileSync(path.resolve(base, spec.scenario), 'utf8');
  return { file, spec, market, visits, scenario };
}

/**
 * A probe, run in a fresh node process so that what it measures first is cold, as on a new Lambda
 * instance (no wasm code tiered up yet):
 *   filter: filter-population's work on the spec: market and visits loaded, the population
 *           filtered and the run prepared; writes the population CSV to `populationFile`
 *   chunk:  a new simulate-chunk instance: the market and population loaded and the run prepared
 *           (cold), its first chunk computed (cold), the same chunk `repeat` times more (warm),
 *           and the preparation again in a fresh Engine (warm code)
 */
function probe(kind, specFile, populationFile, repeat) {
  const { withEngine } = require('../runtime/engine');
  const { spec, market, visits, scenario } = readSpec(specFile);
  const forChunks = { ...spec, market: 'market.json', visits: 'population.csv', filter: {} };
  if (scenario !== undefined) forChunks.scenario = 'scenario.json';
  else delete forChunks.scenario;
  return withEngine(({ wasm, engine }) => {
    if (kind === 'filter') {
      const t = timed(() => {
        const m = engine.loadMarket(market);
        const population = engine.filterPopulation(engine.loadVisits(visits), JSON.stringify(spec.filter || {}));
        const plan = engine.prepareRun(JSON.stringify(forChunks), m, scenario, engine.loadVisits(population.csv));
        return { population, plan };
      });
      fs.writeFileSync(populationFile, t.value.population.csv);
      return { filterMs: t.ms, chunks: t.value.plan.chunk_count, population: t.value.plan.population, populationBytes: t.value.population.csv.length };
    }
    const population = fs.readFileSync(populationFile);
    const chunkSize = Math.min(spec.chunk_size || 10000, spec.sample_size);
    const sampleSpec = JSON.stringify({ ...forChunks, sample_size: chunkSize, chunk_size: chunkSize });
    const prepare = (e) => e.prepareRun(sampleSpec, e.loadMarket(market), scenario, e.loadVisits(population));
    const cold = timed(() => prepare(engine));
    const run = cold.value;
    const first = timed(() => engine.chunk(run.key, 0));
    const out = first.value;
    const warm = Array.from({ length: repeat }, () => timed(() => engine.chunk(run.key, 0)).ms);
    // The same preparation once the code is warm, in a fresh Engine (nothing cached).
    const again = new wasm.Engine();
    const warmPrepareMs = timed(() => prepare(again)).ms;
    again.free();
    const summaries = Array.from({ length: 20 }, () => out.summary_json);
    const mergeMs = timed(() => wasm.mergeSummaries(summaries)).ms;
    return {
      sampleProfiles: out.profiles,
      coldPrepareMs: cold.ms,
      warmPrepareMs,
      firstChunkMs: first.ms,
      chunkMs: median(warm),
      csvBytesPerProfile: out.impressions_csv.byteLength / out.profiles,
      mergePerChunkMs: mergeMs / summaries.length,
    };
  });
}

function runProbe(kind, specFile, populationFile, repeat) {
  const out = spawnSync(process.execPath, [__filename, '--probe', kind, '--spec', specFile, '--population', populationFile, '--repeat', String(repeat)], {
    cwd: ROOT,
    env: { PATH: process.env.PATH, TARIFFSIM_LOG_LEVEL: 'ERROR' },
    encoding: 'utf8',
    maxBuffer: 16 * 1024 * 1024,
  });
  if (out.status !== 0) throw new Error(`measuring ${kind} on ${specFile} failed: ${out.stderr}`);
  return JSON.parse(out.stdout);
}

/**
 * Measures the engine's work for a run spec on this build, through js/runtime/engine.js (the code
 * the lambdas run), each lambda's first work cold in a fresh process.
 * @param {string} specFile a run spec (its market, scenario and visits relative to its folder)
 * @param {{repeat?: number, coldRuns?: number}} [options] `repeat`: warm chunks measured in a
 *   probe; `coldRuns`: fresh processes per probe (medians are used)
 */
function measureEngine(specFile, { repeat = 5, coldRuns = 3 } = {}) {
  const { spec, market } = readSpec(specFile);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-cost-'));
  try {
    const populationFile = path.join(dir, 'population.csv');
    // Each probe `coldRuns` times in a fresh process, each figure the median.
    const runs = (kind) => Array.from({ length: coldRuns }, () => runProbe(kind, specFile, populationFile, repeat));
    const pick = (list) => Object.fromEntries(Object.keys(list[0]).map((k) => [k, typeof list[0][k] === 'number' ? median(list.map((x) => x[k])) : list[0][k]]));
    const filter = pick(runs('filter'));
    const chunk = pick(runs('chunk'));
    const chunkSize = spec.chunk_size || 10000;
    const chunkProfiles = [];
    for (let left = spec.sample_size; left > 0; left -= chunkSize) chunkProfiles.push(Math.min(chunkSize, left));
    if (chunkProfiles.length !== filter.chunks) throw new Error(`the engine plans ${filter.chunks} chunks, the estimate ${chunkProfiles.length}`);
    const perProfileMs = chunk.chunkMs / chunk.sampleProfiles;
    return {
      chunkProfiles,
      population: filter.population,
      marketBytes: market.length,
      populationBytes: filter.populationBytes,
      sampleProfiles: chunk.sampleProfiles,
      perProfileMs,
      csvBytesPerProfile: chunk.csvBytesPerProfile,
      filterMs: filter.filterMs,
      // What a new instance adds to its first chunk: preparing the run, and code not yet tiered up.
      chunkPrepareMs: chunk.coldPrepareMs + Math.max(0, chunk.firstChunkMs - chunk.chunkMs),
      // The same where the preparation's code is warm already (a process that ran
      // filter-population first: the development monolith).
      chunkPrepareWarmMs: chunk.warmPrepareMs + Math.max(0, chunk.firstChunkMs - chunk.chunkMs),
      mergePerChunkMs: chunk.mergePerChunkMs,
    };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The cold start of each run lambda: a fresh node process, from its start to the handler module
 * loaded (what Lambda bills as INIT, less its own runtime bootstrap), median of `repeat`.
 */
function measureInit({ repeat = 3 } = {}) {
  const initMs = {};
  for (const [lambda, file] of Object.entries(MODULES)) {
    const runs = [];
    for (let i = 0; i < repeat; i += 1) {
      const out = spawnSync(process.execPath, ['-e', `require(${JSON.stringify(path.join(ROOT, file))}); process.stdout.write(String(performance.now()))`], {
        cwd: ROOT,
        env: { PATH: process.env.PATH, TARIFFSIM_LOG_LEVEL: 'ERROR' },
        encoding: 'utf8',
      });
      if (out.status !== 0) throw new Error(`cold start of ${file} failed: ${out.stderr}`);
      runs.push(Number(out.stdout));
    }
    initMs[lambda] = median(runs);
  }
  return initMs;
}

/**
 * Storage figures of a local folder, measured through the pipeline's own FolderStorage
 * (js/runtime/storage.js): a small-object request; writing `chunks` chunks of `bytes` the way a run
 * assembles its impressions (writeAt, one after the other into one file: sustained writing is
 * slower than a burst); reading a chunk back. `under`: the file system to measure (default: the
 * temporary folder).
 * @returns {Promise<{kind: 'folder', requestMs: number, writeMBps: number, readMBps: number, invokeMs: number}>}
 */
async function measureFolder({ bytes = 8 * 1024 * 1024, chunks = 10, under = os.tmpdir() } = {}) {
  const { openStorage } = require('../runtime/storage');
  const dir = fs.mkdtempSync(path.join(under, 'tariffsim-cost-'));
  const storage = openStorage(dir);
  const time = async (fn) => {
    const t = performance.now();
    await fn();
    return performance.now() - t;
  };
  try {
    const small = Buffer.from('{"index":0}\n');
    const n = 50;
    const smallMs = await time(async () => {
      for (let i = 0; i < n; i += 1) {
        await storage.put(`probe/s${i}.json`, small);
        await storage.get(`probe/s${i}.json`);
      }
    });
    const big = Buffer.alloc(Math.max(1024 * 1024, Math.round(bytes)), 'x');
    const mb = big.length / (1024 * 1024);
    const count = Math.max(2, Math.min(20, chunks));
    const writeMs = await time(async () => {
      for (let i = 0; i < count; i += 1) {
        if (storage.writeAt) await storage.writeAt('probe/impressions.csv', i * big.length, big);
        else await storage.put(`probe/c${i}.csv`, big);
      }
    });
    await storage.put('probe/chunk.csv', big);
    const readMs = await time(() => storage.get('probe/chunk.csv'));
    return { kind: 'folder', requestMs: smallMs / (2 * n), writeMBps: (count * mb) / (writeMs / 1000), readMBps: mb / (readMs / 1000), invokeMs: 0.05 };
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * The estimate of a run: measured figures, usage (js/runtime/cost.js) and its cost per architecture.
 * @param {{spec: string, memoryMb?: number|Record<string, number>, budget: number,
 *   io: Parameters<typeof cost.estimateUsage>[0]['io'], instances?: Record<string, number>,
 *   prices?: import('../runtime/cost').Prices, repeat?: number, measured?: ReturnType<typeof measureEngine>,
 *   initMs?: Record<string, number>}} options `measured`, `initMs`: figures measured before (tests)
 */
function estimate(options) {
  const prices = options.prices || cost.readPrices();
  const engine = options.measured || measureEngine(options.spec, { repeat: options.repeat });
  const initMs = options.initMs || measureInit({ repeat: options.repeat });
  const configured = cost.readMemory();
  const memoryMb = typeof options.memoryMb === 'number' ? Object.fromEntries(cost.RUN_LAMBDAS.map((l) => [l, options.memoryMb])) : { ...configured, ...(options.memoryMb || {}) };
  const { usage, parts } = cost.estimateUsage({
    chunkProfiles: engine.chunkProfiles,
    budget: options.budget,
    marketBytes: engine.marketBytes,
    populationBytes: engine.populationBytes,
    measured: { ...engine, initMs },
    io: options.io,
    memoryMb,
    instances: options.instances,
    prices,
  });
  const costs = Object.fromEntries(cost.ARCHITECTURES.map((arch) => [arch, cost.usageCost(usage, { arch, prices })]));
  return { measured: { ...engine, initMs }, usage, parts, costs, prices, memoryMb, budget: options.budget, io: options.io };
}

const usd = (x) => `$${x.toFixed(6)}`;

/** The estimate as a table. */
function table(e) {
  const lines = [];
  const pad = (s, n) => String(s).padStart(n);
  lines.push(`${'lambda'.padEnd(18)} ${pad('invocations', 11)} ${pad('memory MB', 9)} ${pad('billed ms', 10)} ${pad('init ms', 8)} ${pad('GB-s', 9)} ${pad('x86_64', 11)} ${pad('arm64', 11)}`);
  for (const lambda of cost.RUN_LAMBDAS) {
    const x = e.costs.x86_64.lambdas[lambda];
    const a = e.costs.arm64.lambdas[lambda];
    if (!x) continue;
    lines.push(`${lambda.padEnd(18)} ${pad(x.invocations, 11)} ${pad(x.memory_mb, 9)} ${pad(x.billed_ms, 10)} ${pad(x.init_ms, 8)} ${pad(x.gb_seconds.toFixed(3), 9)} ${pad(usd(x.total_usd), 11)} ${pad(usd(a.total_usd), 11)}`);
  }
  const x = e.costs.x86_64;
  const a = e.costs.arm64;
  lines.push(`${'total'.padEnd(18)} ${pad(x.invocations, 11)} ${pad('', 9)} ${pad(x.billed_ms, 10)} ${pad(x.init_ms, 8)} ${pad(x.gb_seconds.toFixed(3), 9)} ${pad(usd(x.total_usd), 11)} ${pad(usd(a.total_usd), 11)}`);
  lines.push(`  of which requests ${usd(x.requests_usd)}, duration ${usd(x.duration_usd)} (x86_64) / ${usd(a.duration_usd)} (arm64)`);
  return lines.join('\n');
}

const USAGE = 'usage: npm run cost -- --spec RUN.json [--memory MB] [--arch x86_64|arm64] [--env DEV|STAGING|PROD] [--budget N] [--io s3|folder]\n                          [--request-ms MS] [--write-mbps MB/S] [--read-mbps MB/S] [--invoke-ms MS] [--json]';

async function main(argv = process.argv.slice(2)) {
  let values;
  try {
    ({ values } = parseArgs({
      args: argv,
      options: {
        spec: { type: 'string' },
        memory: { type: 'string' },
        arch: { type: 'string' },
        env: { type: 'string', default: 'DEV' },
        budget: { type: 'string' },
        io: { type: 'string', default: 's3' },
        'request-ms': { type: 'string' },
        'write-mbps': { type: 'string' },
        'read-mbps': { type: 'string' },
        'invoke-ms': { type: 'string' },
        json: { type: 'boolean', default: false },
        help: { type: 'boolean', short: 'h' },
        probe: { type: 'string' },
        population: { type: 'string' },
        repeat: { type: 'string', default: '5' },
      },
    }));
  } catch (e) {
    process.stderr.write(`${e.message}\n${USAGE}\n`);
    return 2;
  }
  if (values.probe) {
    process.stdout.write(JSON.stringify(probe(values.probe, values.spec, values.population, Number(values.repeat))));
    return 0;
  }
  if (values.help) {
    process.stdout.write(`${USAGE}\n`);
    return 0;
  }
  if (!values.spec) {
    process.stderr.write(`--spec is missing\n${USAGE}\n`);
    return 2;
  }
  if (values.arch && !cost.ARCHITECTURES.includes(values.arch)) {
    process.stderr.write(`--arch ${values.arch}: give x86_64 or arm64\n`);
    return 2;
  }
  if (!['s3', 'folder'].includes(values.io)) {
    process.stderr.write(`--io ${values.io}: give s3 or folder\n`);
    return 2;
  }
  const env = values.env.toUpperCase();
  const { ENVIRONMENTS } = require('../runtime/environment');
  if (!ENVIRONMENTS.includes(env)) {
    process.stderr.write(`--env ${values.env}: give ${ENVIRONMENTS.join(', ')}\n`);
    return 2;
  }
  const { config } = require('../runtime/config');
  const budget = values.budget ? Number(values.budget) : config.forEnvironment(env).chunkBudget;
  const measured = measureEngine(values.spec);
  const chunkBytes = measured.csvBytesPerProfile * measured.chunkProfiles[0];
  const io = { ...(values.io === 's3' ? S3_ASSUMED : await measureFolder({ bytes: chunkBytes, chunks: measured.chunkProfiles.length })) };
  for (const [flag, key] of [['request-ms', 'requestMs'], ['write-mbps', 'writeMBps'], ['read-mbps', 'readMBps'], ['invoke-ms', 'invokeMs']]) {
    if (values[flag] !== undefined) io[key] = Number(values[flag]);
  }
  const e = estimate({ spec: values.spec, measured, memoryMb: values.memory ? Number(values.memory) : undefined, budget, io });
  if (values.json) {
    process.stdout.write(`${JSON.stringify({ spec: values.spec, environment: env, budget, io, measured: e.measured, usage: e.usage, parts: e.parts, cost: values.arch ? e.costs[values.arch] : e.costs }, null, 2)}\n`);
    return 0;
  }
  const m = e.measured;
  const out = [];
  out.push(`run ${values.spec}: ${m.chunkProfiles.reduce((a, b) => a + b, 0)} profiles from a population of ${m.population}, ${m.chunkProfiles.length} chunks, ${budget} in flight (${env}'s chunkBudget)`);
  out.push(`measured on this build (node ${process.version}, ${process.arch}, one core): ${(m.perProfileMs * 1000).toFixed(2)} µs and ${Math.round(m.csvBytesPerProfile)} CSV bytes per profile (a chunk of ${m.sampleProfiles}), filter-population ${m.filterMs.toFixed(0)} ms, chunk instance prepare ${m.chunkPrepareMs.toFixed(0)} ms`);
  out.push(`  cold start to handler loaded: ${Object.entries(m.initMs).map(([l, ms]) => `${l} ${ms.toFixed(0)} ms`).join(', ')}`);
  out.push(`storage and invoke (${values.io === 's3' ? 'S3 and Lambda Invoke: assumed' : 'local folder: measured'}): ${io.requestMs.toFixed(2)} ms a request, write ${io.writeMBps.toFixed(0)} MB/s, read ${io.readMBps.toFixed(0)} MB/s, invoke ${io.invokeMs} ms`);
  out.push(`prices of ${e.prices.date} (${e.prices.source.split(' ')[0]}); below 1,769 MB the engine's CPU time grows as 1769/memory; arm64 is priced with the same durations (not measured on Graviton)`);
  out.push('');
  out.push(table(e));
  if (values.arch) out.push(`\n${values.arch}: ${usd(e.costs[values.arch].total_usd)}`);
  process.stdout.write(`${out.join('\n')}\n`);
  return 0;
}

if (require.main === module) {
  main().then(
    (code) => {
      process.exitCode = code;
    },
    (e) => {
      process.stderr.write(`cost: ${e.message}\n`);
      process.exitCode = 1;
    },
  );
}

module.exports = { measureEngine, measureInit, measureFolder, estimate, table, S3_ASSUMED };
