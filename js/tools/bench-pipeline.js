#!/usr/bin/env node
'use strict';
// npm run bench:pipeline: a 200-chunk fan-out run in development mode (in-process lambdas) with a
// real redis-server on loopback and folder storage, timed from the run-simulation call to the
// run-done message. The baseline is measured in the same run: the chunks' own work (each chunk
// computed in wasm and its outputs stored) in a plain loop with no pipeline. Overhead =
// wall / baseline - 1: what orchestration adds (invocations, pub/sub, run state, the merge).
// Target: at most 10%.
//
//   npm run bench:pipeline -- [--chunks 200] [--chunk-size 2000] [--page-size 10]

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { parseArgs } = require('node:util');
const { startRedis } = require('../test/servers');

async function main() {
  const { values } = parseArgs({
    options: {
      chunks: { type: 'string', default: '200' },
      'chunk-size': { type: 'string', default: '2000' },
      'page-size': { type: 'string', default: '10' },
    },
  });
  const chunks = Number(values.chunks);
  const chunkSize = Number(values['chunk-size']);
  const redis = await startRedis();
  const storage = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-bench-'));
  Object.assign(process.env, { REDIS_URL: redis.url, TARIFFSIM_STORAGE: storage, TARIFFSIM_LOG_LEVEL: process.env.TARIFFSIM_LOG_LEVEL || 'WARN' });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  const run = require('../run-simulation').handler;
  const { openStorage } = require('../runtime/storage');
  const { openBus, closeBuses } = require('../runtime/pubsub');
  const { watchRun } = require('../runtime/runs');
  const { idle } = require('../runtime/invoke');
  const { config } = require('../runtime/config');

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
  const ctx = { awsRequestId: 'bench', invokedFunctionArn: 'arn:aws:lambda:eu-west-1:000000000000:function:tariffsim-run-simulation:DEV' };

  // Warm-up run: the wasm module compiled and optimised, the inputs cached (a warm Lambda fleet).
  const warm = watchRun({ storage: store, bus, runId: 'warm-up', pollMs: 1000 });
  await run({ 'request-id': 'warm-up', spec: { ...spec, sample_size: 4 * chunkSize } }, ctx);
  await warm;
  await idle();

  // Baseline: the chunks' own work done one after another with no pipeline at all: each chunk
  // computed in wasm and its outputs stored, in a plain loop.
  const { withEngine } = require('../runtime/engine');
  const baselineDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-bench-baseline-'));
  const baseline = await (async () => {
    const data = path.join(__dirname, '..', '..', 'data');
    const runKey = withEngine(({ engine }) => {
      const market = engine.loadMarket(fs.readFileSync(path.join(data, spec.market)));
      const visits = engine.loadVisits(fs.readFileSync(path.join(data, spec.visits)));
      const scenario = fs.readFileSync(path.join(data, spec.scenario), 'utf8');
      const s = { ...spec, market: 'm', scenario: 's', visits: 'v' };
      return engine.prepareRun(JSON.stringify(s), market, scenario, visits).key;
    });
    let compute = 0;
    const t = performance.now();
    for (let i = 0; i < chunks; i += 1) {
      const c0 = performance.now();
      const out = withEngine(({ engine }) => engine.chunk(runKey, i));
      compute += performance.now() - c0;
      await fs.promises.writeFile(path.join(baselineDir, `${i}.csv`), out.impressions_csv);
      await fs.promises.writeFile(path.join(baselineDir, `${i}.json`), out.summary_json);
    }
    return { total: performance.now() - t, compute };
  })();
  fs.rmSync(baselineDir, { recursive: true, force: true });

  const runId = `bench-${Date.now()}`;
  const watcher = watchRun({ storage: store, bus, runId, pollMs: 1000 });
  const t0 = performance.now();
  await run({ 'request-id': runId, spec }, ctx);
  const final = await watcher;
  const wall = performance.now() - t0;
  await idle();
  if (final.status !== 'done') throw new Error(`the run ended ${final.status}: ${JSON.stringify(final)}`);
  const r = final.result;
  const base = baseline.total;
  const row = (label, ms) => `${label.padEnd(56)} ${ms.toFixed(0).padStart(10)} ${(ms / base).toFixed(3).padStart(8)}`;
  const lines = [
    `tariffsim pipeline bench: ${r.chunks} chunks x ${chunkSize} profiles (page size ${spec.page_size}), dev mode (one process), real redis-server, folder storage, budget ${config.forEnvironment('DEV').chunkBudget}`,
    '',
    `${'measurement'.padEnd(56)} ${'ms'.padStart(10)} ${'ratio'.padStart(8)}`,
    row("baseline: the chunks' own work in a plain loop", base),
    row('  of which computing in wasm', baseline.compute),
    row('pipeline: run-simulation call to run done (wall)', wall),
    row('  of which computing in wasm (sum over chunks)', r.compute_ms),
    row('  of which the final merge (impressions + summary)', r.merge_ms),
    '',
    `pipeline overhead: ${((wall / base - 1) * 100).toFixed(1)}% over the baseline (${(((wall - r.merge_ms) / base - 1) * 100).toFixed(1)}% before the merge); target at most 10%: ${wall / base - 1 <= 0.1 ? 'met' : 'NOT met'}`,
  ];
  process.stdout.write(`${lines.join('\n')}\n`);
  await closeBuses();
  await redis.stop();
  fs.rmSync(storage, { recursive: true, force: true });
}

main().catch((e) => {
  process.stderr.write(`${e.stack}\n`);
  process.exit(1);
});
