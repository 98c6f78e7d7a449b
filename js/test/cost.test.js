'use strict';
// The cost model (js/runtime/cost.js) and the estimate (js/tools/cost.js) against a real run: the
// sample run (data/sample/run.json, 200,000 profiles in 20 chunks) through the fan-out pipeline in
// development mode, its usage as the pipeline records it (js/runtime/usage.js).

const { test, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

// The sample run writes about 220 MB of impressions: on a memory file system when there is room (a
// disk flushing someone else's writes makes timings noisy), else the temporary folder.
function roomy(dir) {
  try {
    const s = fs.statfsSync(dir);
    return s.bavail * s.bsize >= 2 * 1024 ** 3 ? dir : null;
  } catch {
    return null;
  }
}
const UNDER = roomy('/dev/shm') || os.tmpdir();
const storageDir = fs.mkdtempSync(path.join(UNDER, 'tariffsim-cost-run-'));

const cost = require('../runtime/cost');

const ROOT = path.resolve(__dirname, '..', '..');
const prices = cost.readPrices();

after(() => fs.rmSync(storageDir, { recursive: true, force: true }));

test('prices come from config/prices.json with their date and source', () => {
  assert.match(prices.date, /^\d{4}-\d{2}-\d{2}$/);
  assert.match(prices.source, /^https:\/\/aws\.amazon\.com\/lambda\/pricing\//);
  assert.equal(prices.requests_per_million, 0.2);
  assert.deepEqual(prices.gb_second, { x86_64: 0.0000166667, arm64: 0.0000133334 });
  assert.equal(prices.billing_granularity_ms, 1);
  assert.equal(prices.init_billed, true);
  assert.throws(() => cost.checkPrices({ ...prices, date: undefined }), /prices.date is missing/);
});

test('usageCost: requests, GB-seconds at the memory and architecture, INIT billed as duration', () => {
  // A million 1-second invocations at 1024 MB: $0.20 of requests and 1,000,000 GB-s.
  const usage = { invocations: { f: 1e6 }, billed_ms: { f: 1e9 }, init_ms: { f: 0 } };
  const x86 = cost.usageCost(usage, { memoryMb: 1024, arch: 'x86_64', prices });
  assert.ok(Math.abs(x86.requests_usd - 0.2) < 1e-9);
  assert.ok(Math.abs(x86.gb_seconds - 1e6) < 1e-6);
  assert.ok(Math.abs(x86.total_usd - (0.2 + 16.6667)) < 1e-6, `${x86.total_usd}`);
  const arm = cost.usageCost(usage, { memoryMb: 1024, arch: 'arm64', prices });
  assert.ok(Math.abs(arm.duration_usd - 13.3334) < 1e-6);
  // 512 MB halves the GB-seconds; INIT adds duration; with init_billed false it does not.
  const run = { invocations: { a: 2, b: 1 }, billed_ms: { a: 3000, b: 1000 }, init_ms: { a: 500, b: 0 }, memory_mb: { a: 512, b: 2048 } };
  const c = cost.usageCost(run, { arch: 'x86_64', prices });
  assert.equal(c.lambdas.a.gb_seconds, 3.5 * 0.5);
  assert.equal(c.lambdas.b.gb_seconds, 2);
  assert.equal(c.invocations, 3);
  assert.ok(Math.abs(c.total_usd - (3 * 0.2e-6 + 3.75 * 0.0000166667)) < 1e-12);
  const noInit = cost.usageCost(run, { arch: 'x86_64', prices: { ...prices, init_billed: false } });
  assert.equal(noInit.lambdas.a.gb_seconds, 1.5);
  // One memory for all overrides the record's.
  assert.equal(cost.usageCost(run, { memoryMb: 1024, arch: 'x86_64', prices }).lambdas.b.gb_seconds, 1);
  assert.throws(() => cost.usageCost({ invocations: { a: 1 }, billed_ms: { a: 1 } }, { arch: 'x86_64', prices }), /memory of a/);
  assert.throws(() => cost.usageCost(run, { arch: 'sparc', prices }), /arch must be/);
});

test('billed durations round up per invocation to the billing granularity', () => {
  assert.equal(cost.billedMs(0.2, prices), 1);
  assert.equal(cost.billedMs(10.01, prices), 11);
  assert.equal(cost.billedMs(10.01, { ...prices, billing_granularity_ms: 100 }), 100);
  assert.deepEqual([cost.lambdaArch('x64'), cost.lambdaArch('arm64')], ['x86_64', 'arm64']);
  assert.throws(() => cost.lambdaArch('ia32'));
  const usage = cost.emptyUsage();
  cost.addInvocation(usage, 'simulate-chunk', { durationMs: 10.2, initMs: 99.1, memoryMb: 1769 }, prices);
  cost.addInvocation(usage, 'simulate-chunk', { durationMs: 0.4 }, prices);
  assert.deepEqual(usage, {
    invocations: { 'run-simulation': 0, 'filter-population': 0, 'simulate-chunk': 2 },
    billed_ms: { 'run-simulation': 0, 'filter-population': 0, 'simulate-chunk': 12 },
    init_ms: { 'run-simulation': 0, 'filter-population': 0, 'simulate-chunk': 100 },
    memory_mb: { 'simulate-chunk': 1769 },
  });
});

test('the estimate model: chunks, budget, cold instances, CPU share below 1,769 MB, S3 merge', () => {
  /** @type {Parameters<typeof cost.estimateUsage>[0]} */
  const input = {
    chunkProfiles: [100, 100, 50],
    budget: 2,
    marketBytes: 0,
    populationBytes: 0,
    measured: { perProfileMs: 1, csvBytesPerProfile: 0, filterMs: 10, chunkPrepareMs: 5, initMs: { 'simulate-chunk': 20 } },
    io: { kind: 'folder', requestMs: 0, writeMBps: 1, readMBps: 1, invokeMs: 0 },
    memoryMb: 1769,
    prices,
  };
  const { usage } = cost.estimateUsage(input);
  assert.deepEqual(usage.invocations, { 'run-simulation': 1, 'filter-population': 1, 'simulate-chunk': 3 });
  // 250 profiles at 1 ms, two cold instances preparing the run (2 x 5 ms).
  assert.equal(usage.billed_ms['simulate-chunk'], 260);
  assert.equal(usage.init_ms['simulate-chunk'], 40);
  // At half a vCPU the computation takes twice as long.
  const half = cost.estimateUsage({ ...input, memoryMb: Math.round(1769 / 2) }).usage;
  assert.ok(Math.abs(half.billed_ms['simulate-chunk'] - 520) <= 3, `${half.billed_ms['simulate-chunk']}`);
  // On S3 the merge reads and writes every chunk's impressions; on a folder it renames a file.
  const bytes = { ...input, measured: { ...input.measured, csvBytesPerProfile: 1024 * 1024 / 100 } };
  const folder = cost.estimateUsage(bytes).parts['simulate-chunk'].io_ms;
  const s3 = cost.estimateUsage({ ...bytes, io: { ...bytes.io, kind: 's3' } }).parts['simulate-chunk'].io_ms;
  assert.ok(Math.abs(s3 - folder - 2 * 2.5 * 1000) < 1e-6, `${s3} - ${folder}`);
});

/**
 * The sample run through the development pipeline in a fresh node process (the monolith: every
 * lambda in one process, started cold), folder storage, the embedded bus, one chunk in flight.
 * In one process the lambdas share one event loop: an invocation's wall time would include the
 * computation of another that started meanwhile, which separate Lambda instances never see. So the
 * runner lets each invocation start when the one before it has returned, as one chunk in flight
 * does on Lambda. Chunks compute in the calling thread, as in Lambda (TARIFFSIM_WORKERS=0): the
 * development pool's threads run at a lower CPU priority, so any other process on the machine
 * would stretch their wall time, and the usage recorded, many times over (7x with both cores of a
 * 2-core machine busy), where the estimate, measured at normal priority, would not move.
 * Prints the run's result, with the usage the pipeline recorded.
 */
const RUNNER = `
const path = require('node:path');
const [storageDir, runId] = process.argv.slice(1);
Object.assign(process.env, { TARIFFSIM_STORAGE: storageDir, TARIFFSIM_CHUNK_BUDGET: '1', TARIFFSIM_WORKERS: '0', TARIFFSIM_LOG_LEVEL: 'WARN' });
const modules = ['run-simulation', 'filter-population', 'simulate-chunk'].map((m) => require(path.resolve('js', m)));
let queue = Promise.resolve();
for (const m of modules) {
  const handler = m.handler;
  m.handler = (event, context) => {
    const turn = queue.then(() => handler(event, context));
    queue = turn.catch(() => {});
    return turn;
  };
}
const { openStorage } = require('./js/runtime/storage');
const { openBus } = require('./js/runtime/pubsub');
const { watchRun } = require('./js/runtime/runs');
const { idle } = require('./js/runtime/invoke');
(async () => {
  const watcher = watchRun({ storage: openStorage(storageDir), bus: openBus(null), runId, pollMs: 1000, timeoutMs: 120000 });
  await modules[0].handler({ 'request-id': runId, spec: 'sample/run.json' }, { awsRequestId: runId, invokedFunctionArn: 'arn:aws:lambda:eu-west-2:123456789012:function:tariffsim-run-simulation:DEV' });
  const final = await watcher;
  await idle();
  process.stdout.write(JSON.stringify(final));
})().catch((e) => { process.stderr.write(e.stack); process.exit(1); });
`;

function actualRun(runId) {
  const out = spawnSync(process.execPath, ['-e', RUNNER, storageDir, runId], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH, TMPDIR: os.tmpdir() }, maxBuffer: 16 * 1024 * 1024 });
  assert.equal(out.status, 0, out.stderr);
  const final = JSON.parse(out.stdout);
  assert.equal(final.status, 'done', out.stdout);
  fs.rmSync(path.join(storageDir, 'runs', runId), { recursive: true, force: true });
  return final.result;
}

/** The mean of two usage records of the same lambdas. */
function meanUsage(a, b) {
  const mean = (x, y) => Object.fromEntries(Object.keys(x).map((k) => [k, (x[k] + y[k]) / 2]));
  return { invocations: a.invocations, billed_ms: mean(a.billed_ms, b.billed_ms), init_ms: mean(a.init_ms, b.init_ms), memory_mb: a.memory_mb };
}

// The estimate prices a chunk's compute and its storage writes; in the pipeline a chunk also writes
// its claim and done records, which the model leaves out: the estimate is about 0.85 of the actual,
// 0.75 to 0.95 with one or both cores of a 2-core machine taken by another process. The bound says
// the model stays within a third of what a run really uses.
test('the estimate and the actual usage of the sample run agree within 35%', async (t) => {
  const tool = require('../tools/cost');
  const spec = path.join(ROOT, 'data', 'sample', 'run.json');
  // On a shared machine a burst of someone else's work skews one side: up to five tries (a
  // clean-clone CI run read 0.51, then 0.75, where a quiet machine reads 0.88 to 0.99).
  const tries = [];
  for (let attempt = 1; attempt <= 5; attempt += 1) {
    // Measured just before and just after the run, so that both sides see the same machine.
    const measure = async () => {
      const measured = tool.measureEngine(spec, { coldRuns: 1 });
      const io = await tool.measureFolder({ bytes: measured.csvBytesPerProfile * measured.chunkProfiles[0], chunks: measured.chunkProfiles.length, under: UNDER });
      // One process: one INIT (charged by the pipeline to the first lambda that records usage,
      // run-simulation); filter-population runs cold; the chunks' instance is the same process,
      // which prepares the run once with code filter-population has warmed.
      const init = tool.measureInit({ repeat: 1 })['run-simulation'];
      return tool.estimate({ spec, measured: { ...measured, chunkPrepareMs: measured.chunkPrepareWarmMs }, io, budget: 1, memoryMb: cost.ONE_VCPU_MB, initMs: { 'run-simulation': init } });
    };
    const before = await measure();
    const result = actualRun(`cost-${attempt}`);
    const afterwards = await measure();
    const estimate = { usage: meanUsage(before.usage, afterwards.usage) };
    // What the pipeline recorded, on this machine's full core: priced as 1,769 MB (one vCPU).
    const actual = cost.usageCost(result.usage, { memoryMb: cost.ONE_VCPU_MB, arch: 'x86_64', prices });
    const est = cost.usageCost(estimate.usage, { arch: 'x86_64', prices });
    assert.deepEqual(estimate.usage.invocations, result.usage.invocations, 'one run-simulation, one filter-population, one invocation per chunk');
    const total = est.total_usd / actual.total_usd;
    const billed = est.billed_ms / actual.billed_ms;
    tries.push({ attempt, estimate: { billed_ms: estimate.usage.billed_ms, init_ms: estimate.usage.init_ms, usd: est.total_usd }, actual: { billed_ms: result.usage.billed_ms, init_ms: result.usage.init_ms, usd: actual.total_usd }, total, billed });
    t.diagnostic(JSON.stringify(tries.at(-1)));
    if (Math.abs(total - 1) <= 0.35 && Math.abs(billed - 1) <= 0.35) return;
  }
  assert.fail(`the estimate and the actual differ by more than 35% in every try: ${JSON.stringify(tries)}`);
});

test('npm run cost prints both architectures for the sample run', () => {
  const out = spawnSync(process.execPath, [path.join(ROOT, 'js', 'tools', 'cost.js'), '--spec', 'data/sample/run.json', '--memory', '1024'], { cwd: ROOT, encoding: 'utf8', env: { PATH: process.env.PATH } });
  assert.equal(out.status, 0, out.stderr);
  assert.match(out.stdout, /200000 profiles .* 20 chunks, 10 in flight \(DEV's chunkBudget\)/);
  const row = out.stdout.split('\n').find((l) => l.startsWith('simulate-chunk'));
  assert.match(row, /^simulate-chunk +20 +1024 /);
  const totals = out.stdout.split('\n').find((l) => l.startsWith('total')).match(/\$([0-9.]+) +\$([0-9.]+)$/);
  assert.ok(totals, out.stdout);
  const [x86, arm] = [Number(totals[1]), Number(totals[2])];
  assert.ok(x86 > 0 && arm < x86, `${x86} ${arm}`);
  const bad = spawnSync(process.execPath, [path.join(ROOT, 'js', 'tools', 'cost.js'), '--spec', 'data/sample/run.json', '--arch', 'ppc'], { cwd: ROOT, encoding: 'utf8' });
  assert.equal(bad.status, 2);
});

test('npm run cost refuses an environment that is not DEV, STAGING or PROD (it would price DEV\'s budget under another name)', () => {
  const { spawnSync } = require('node:child_process');
  const out = spawnSync(process.execPath, [require('node:path').join(__dirname, '..', 'tools', 'cost.js'), '--spec', 'tests/fixtures/mini_run.json', '--env', 'PRD'], { cwd: require('node:path').join(__dirname, '..', '..'), encoding: 'utf8' });
  assert.equal(out.status, 2, out.stderr);
  assert.equal(out.stderr, '--env PRD: give DEV, STAGING, PROD\n');
});
