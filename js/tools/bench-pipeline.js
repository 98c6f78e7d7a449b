#!/usr/bin/env node
'use strict';
// npm run bench:pipeline: fan-out runs in development mode (in-process lambdas, chunks computed in
// the worker-thread pool) with a real redis-server on loopback and folder storage. Figures are
// printed, not asserted (issue 12's targets are printed beside them):
//
// 1. Overhead: a 200-chunk run timed from the run-simulation call to the run-done message, against
//    a baseline measured in the same command: the chunks' own work (each chunk computed in wasm and
//    its outputs stored) in a plain loop with no pipeline. Overhead = wall / baseline - 1, the
//    median of --repeat runs (default 5). Target: at most 10%.
// 2. Environment budget: 5 DEV runs at once; the most chunks computing at once (holding a slot of
//    DEV's budget) over all of them. Target: at most the budget.
// 3. PROD alongside 5 DEV runs: a PROD run's wall time while 5 DEV runs go, against the same run
//    alone. Target: at most 1.2x.
// 4. The development server's responsiveness: p99 of sequential `price` calls through its REST
//    route (POST /lambdas/price) while a run computes, against the same calls idle. Target: at
//    most 2x.
//
//   npm run bench:pipeline -- [--chunks 200] [--chunk-size 2000] [--page-size 10] [--repeat 5]
//                             [--budget 4] [--calls 300]

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { startRedis } = require('../test/servers');

const median = (xs) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)];
const quantile = (xs, q) => {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.ceil(q * s.length) - 1)];
};

async function main() {
  const { values } = parseArgs({
    options: {
      chunks: { type: 'string', default: '200' },
      'chunk-size': { type: 'string', default: '2000' },
      'page-size': { type: 'string', default: '10' },
      repeat: { type: 'string', default: '5' },
      budget: { type: 'string', default: '4' },
      calls: { type: 'string', default: '300' },
    },
  });
  const chunks = Number(values.chunks);
  const chunkSize = Number(values['chunk-size']);
  const repeat = Math.max(1, Number(values.repeat));
  const devBudget = Number(values.budget);
  const calls = Number(values.calls);
  const redis = await startRedis();
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-bench-'));
  Object.assign(process.env, {
    REDIS_URL: redis.url,
    TARIFFSIM_STORAGE: storage,
    TARIFFSIM_LOG_LEVEL: process.env.TARIFFSIM_LOG_LEVEL || 'WARN',
    TARIFFSIM_CHUNK_BUDGET_DEV: String(devBudget),
  });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  const run = require('../run-simulation').handler;
  const { openStorage } = require('../runtime/storage');
  const { openBus, closeBuses } = require('../runtime/pubsub');
  const { watchRun } = require('../runtime/runs');
  const { idle } = require('../runtime/invoke');
  const { config } = require('../runtime/config');
  const { maxComputing, resetComputing } = require('../runtime/chunk-pipeline');
  const { poolSize, closeWorkers } = require('../runtime/workers');
  const { buildServer } = require('../server/server');

  const spec = {
    market: 'sample/market.json',
    scenario: 'sample/scenario.json',
    visits: 'sample/visits.csv',
    sample_size: chunks * chunkSize,
    chunk_size: chunkSize,
    seed: 42,
    page_size: Number(values['page-size']),
  };
  const store = openStorage(storage);
  const bus = openBus(process.env.REDIS_URL);
  const ctx = (env = 'DEV') => ({ awsRequestId: `bench-${Math.random().toString(36).slice(2)}`, invokedFunctionArn: `arn:aws:lambda:eu-west-1:000000000000:function:tariffsim-run-simulation:${env}` });
  let n = 0;
  /** One run to its end: wall ms from the call to the end. */
  const timedRun = async (s, env = 'DEV') => {
    n += 1;
    const runId = `bench-${env.toLowerCase()}-${Date.now()}-${n}`;
    const watcher = watchRun({ storage: store, bus, runId, pollMs: 1000 });
    const t0 = performance.now();
    await run({ 'request-id': runId, spec: s }, ctx(env));
    const final = await watcher;
    const wall = performance.now() - t0;
    if (final.status !== 'done') throw new Error(`run ${runId} ended ${final.status}: ${JSON.stringify(final)}`);
    return { wall, result: final.result };
  };

  // Warm-up run: the wasm module compiled and optimised in the workers, the inputs cached.
  await timedRun({ ...spec, sample_size: 8 * chunkSize });
  await idle();

  // 1. Baseline: the chunks' own work done one after another with no pipeline at all: each chunk
  // computed in wasm and its outputs stored, in a plain loop.
  const { withEngine } = require('../runtime/engine');
  const data = path.join(__dirname, '..', '..', 'data');
  const runKey = withEngine(({ engine }) => {
    const market = engine.loadMarket(fs.readFileSync(path.join(data, spec.market)));
    const visits = engine.loadVisits(fs.readFileSync(path.join(data, spec.visits)));
    const scenario = fs.readFileSync(path.join(data, spec.scenario), 'utf8');
    const s = { ...spec, market: 'm', scenario: 's', visits: 'v' };
    return engine.prepareRun(JSON.stringify(s), market, scenario, visits).key;
  });
  const baselineOnce = async () => {
    const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-bench-baseline-'));
    let compute = 0;
    const t = performance.now();
    for (let i = 0; i < chunks; i += 1) {
      const c0 = performance.now();
      const out = withEngine(({ engine }) => engine.chunk(runKey, i));
      compute += performance.now() - c0;
      await fs.promises.writeFile(path.join(dir, `${i}.csv`), out.impressions_csv);
      await fs.promises.writeFile(path.join(dir, `${i}.json`), out.summary_json);
    }
    const total = performance.now() - t;
    fs.rmSync(dir, { recursive: true, force: true });
    return { total, compute };
  };
  const bases = [];
  const walls = [];
  const results = [];
  for (let i = 0; i < repeat; i += 1) {
    bases.push(await baselineOnce());
    const r = await timedRun(spec);
    walls.push(r.wall);
    results.push(r.result);
    await idle();
  }
  const base = median(bases.map((b) => b.total));
  const baseCompute = median(bases.map((b) => b.compute));
  const wall = median(walls);
  const r = results[walls.indexOf(wall)];
  const overheads = walls.map((w, i) => w / bases[i].total - 1);

  // 2. Environment budget: 5 DEV runs at once.
  const small = { ...spec, sample_size: 40 * chunkSize };
  resetComputing('DEV');
  const t5 = performance.now();
  await Promise.all([0, 1, 2, 3, 4].map(() => timedRun(small)));
  const fiveMs = performance.now() - t5;
  const most = maxComputing('DEV');
  await idle();

  // 3. PROD alongside 5 DEV runs.
  const prodSpec = { ...spec, sample_size: 40 * chunkSize };
  const prodAlone = median([await timedRun(prodSpec, 'PROD'), await timedRun(prodSpec, 'PROD'), await timedRun(prodSpec, 'PROD')].map((x) => x.wall));
  await idle();
  const devLoad = Promise.all([0, 1, 2, 3, 4].map(() => timedRun({ ...spec, sample_size: 80 * chunkSize })));
  await new Promise((resolve) => setTimeout(resolve, 300));
  const prodBusy = (await timedRun(prodSpec, 'PROD')).wall;
  await devLoad;
  await idle();

  // 4. price p99 through the dev server's REST route, idle and while a run computes.
  const app = buildServer({ sweep: false });
  const address = await app.listen({ host: '127.0.0.1', port: 0 });
  const body = JSON.stringify({ market: 'sample', profile: { region: 'C', fuel: 'dual_fuel', payment_method: 'direct_debit' }, page_size: 10 });
  const priceCalls = async (count, until = () => false) => {
    const times = [];
    for (let i = 0; i < count && !until(); i += 1) {
      const t = performance.now();
      const res = await fetch(`${address}/lambdas/price`, { method: 'POST', headers: { 'content-type': 'application/json' }, body });
      await res.arrayBuffer();
      if (!res.ok) throw new Error(`price answered ${res.status}`);
      times.push(performance.now() - t);
    }
    return times;
  };
  await priceCalls(50);
  const idleTimes = await priceCalls(calls);
  let running = true;
  const busyRun = timedRun({ ...spec, sample_size: 100 * chunkSize }).finally(() => {
    running = false;
  });
  await new Promise((resolve) => setTimeout(resolve, 200));
  const busyTimes = await priceCalls(calls, () => !running);
  await busyRun;
  await idle();
  await app.close();

  const row = (label, ms) => `${label.padEnd(56)} ${ms.toFixed(0).padStart(10)} ${(ms / base).toFixed(3).padStart(8)}`;
  const overhead = wall / base - 1;
  const p99Idle = quantile(idleTimes, 0.99);
  const p99Busy = quantile(busyTimes, 0.99);
  const lines = [
    `tariffsim pipeline bench: ${r.chunks} chunks x ${chunkSize} profiles (page size ${spec.page_size}), dev mode (one process, ${poolSize()} chunk worker thread(s), ${os.availableParallelism()} cores), real redis-server, folder storage, DEV budget ${config.forEnvironment('DEV').chunkBudget}`,
    '',
    `${'measurement (medians of ' + repeat + ')'}`.padEnd(56) + ` ${'ms'.padStart(10)} ${'ratio'.padStart(8)}`,
    row("baseline: the chunks' own work in a plain loop", base),
    row('  of which computing in wasm', baseCompute),
    row('pipeline: run-simulation call to run done (wall)', wall),
    row('  of which computing in wasm (sum over chunks)', r.compute_ms),
    row('  of which the final merge (impressions + summary)', r.merge_ms),
    '',
    `pipeline overhead: ${(overhead * 100).toFixed(1)}% over the baseline, median of ${repeat} (each: ${overheads.map((o) => `${(o * 100).toFixed(1)}%`).join(', ')}); target at most 10%: ${overhead <= 0.1 ? 'met' : 'NOT met'}`,
    `environment budget: 5 DEV runs at once, at most ${most} chunks computing (budget ${devBudget}); ${most <= devBudget ? 'met' : 'NOT met'} (5 x ${small.sample_size / chunkSize} chunks in ${fiveMs.toFixed(0)} ms)`,
    `PROD alongside 5 DEV runs: ${prodBusy.toFixed(0)} ms vs ${prodAlone.toFixed(0)} ms alone (${(prodBusy / prodAlone).toFixed(2)} x); target at most 1.2: ${prodBusy / prodAlone <= 1.2 ? 'met' : 'NOT met'}`,
    `price p99 while a run computes: ${p99Busy.toFixed(1)} ms vs ${p99Idle.toFixed(1)} ms idle (${busyTimes.length} and ${idleTimes.length} calls; ${(p99Busy / p99Idle).toFixed(2)} x); target at most 2x: ${p99Busy <= 2 * p99Idle ? 'met' : 'NOT met'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  await closeWorkers();
  await closeBuses();
  await redis.stop();
  fs.rmSync(storage, { recursive: true, force: true });
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
