'use strict';
// The set-up the pipeline's test files share: development mode with a real redis-server, folder
// storage and the mini data set, torn down whatever a test did (lambdas idle, workers and buses
// closed, redis stopped, folders removed).

const { after } = require('node:test');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { startRedis } = require('./servers');

const ROOT = path.resolve(__dirname, '..', '..');

/**
 * The pipeline of a test file in development mode. `await pipe.start()` first thing in the file's
 * `before` (root-level hooks run concurrently: the file's requires must wait for the environment)
 * starts a redis-server and sets the process's environment to it, to fresh storage and data
 * folders (the mini market, visits and scenario) and to `env`, without AWS_LAMBDA_FUNCTION_NAME;
 * the file then requires the handlers and runtime modules. The tear-down is registered here.
 * @param {string} name for the folders' names
 * @param {Record<string, string>} env the file's settings
 * @returns {{storageDir: string, dataDir: string, redis: {url: string, stop: () => Promise<void>} | null, start: () => Promise<void>}}
 */
function devPipeline(name, env) {
  /** @type {{storageDir: string, dataDir: string, redis: {url: string, stop: () => Promise<void>} | null, start: () => Promise<void>}} */
  const pipe = {
    storageDir: fs.mkdtempSync(path.join(os.tmpdir(), `tariffsim-${name}-`)),
    dataDir: fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-data-')),
    redis: null,
    start: async () => {
      pipe.redis = await startRedis();
      for (const f of ['mini_market.json', 'mini_visits.csv', 'mini_scenario.json']) {
        fs.copyFileSync(path.join(ROOT, 'tests', 'fixtures', f), path.join(pipe.dataDir, f));
      }
      Object.assign(process.env, { REDIS_URL: pipe.redis.url, TARIFFSIM_STORAGE: pipe.storageDir, TARIFFSIM_DATA_DIR: pipe.dataDir, ...env });
      delete process.env.AWS_LAMBDA_FUNCTION_NAME;
    },
  };
  after(async () => {
    await require('../runtime/invoke').idle();
    await require('../runtime/workers').closeWorkers();
    await require('../runtime/pubsub').closeBuses();
    if (pipe.redis) await pipe.redis.stop();
    fs.rmSync(pipe.storageDir, { recursive: true, force: true });
    fs.rmSync(pipe.dataDir, { recursive: true, force: true });
  });
  return pipe;
}

/** Waits until `fn()` is true (checked every 20 ms), failing after `ms`. */
async function until(fn, what, ms = 30000) {
  const end = Date.now() + ms;
  while (!(await fn())) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((resolve) => setTimeout(resolve, 20));
  }
}

/**
 * Every message of a run on `bus`, as [event, message], from now on.
 * @param {{subscribe: (pattern: string, fn: (msg: any) => void) => Promise<() => unknown>}} bus
 * @param {string} runId
 */
async function listen(bus, runId) {
  /** @type {Array<[string, any]>} */
  const seen = [];
  const unsubscribe = await bus.subscribe(require('../runtime/pubsub').requestPattern(runId), (msg) => seen.push([msg.event, msg]));
  return {
    seen,
    /** The events heard, in order. */
    events: () => seen.map(([e]) => e),
    /** How many times `event` was heard. */
    count: (/** @type {string} */ event) => seen.filter(([e]) => e === event).length,
    stop: async () => {
      await unsubscribe();
    },
  };
}

/**
 * The handlers and runtime modules a pipeline test drives, required once `pipe.start()` has set
 * the environment, with the storage the handlers use (a test's writes and faults go where theirs
 * do).
 */
async function pipelineModules() {
  const scheduler = require('../runtime/scheduler');
  const pipeline = require('../runtime/pipeline');
  return {
    run: require('../run-simulation').handler,
    invoke: require('../runtime/invoke'),
    runs: require('../runtime/runs'),
    pubsub: require('../runtime/pubsub'),
    pipeline,
    chunks: require('../runtime/chunk-pipeline'),
    scheduler,
    budget: require('../runtime/budget'),
    storage: pipeline.pipelineOf(await scheduler.systemRequest('DEV')).storage,
  };
}

module.exports = { devPipeline, until, listen, pipelineModules };
