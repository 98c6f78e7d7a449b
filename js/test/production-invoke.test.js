'use strict';
// Production-mode `invoke` (the AWS SDK v3, InvocationType Event, ARNs built from the caller's
// alias) against a Lambda-compatible endpoint: the dev server, started as its own process with
// AWS_LAMBDA_FUNCTION_NAME set, so that every lambda-to-lambda call of a whole fan-out run goes
// out through the Invoke API and back in. A real redis-server carries the run's messages.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { freePort, startRedis, waitForPort } = require('./servers');

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-prod-'));
let redis;
let server;
let endpoint;
let serverLog = '';

before(async () => {
  redis = await startRedis();
  const port = await freePort();
  endpoint = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [path.join(ROOT, 'js', 'server', 'main.js'), '--port', String(port)], {
    env: {
      ...process.env,
      AWS_LAMBDA_FUNCTION_NAME: 'tariffsim-dev-server',
      AWS_ACCESS_KEY_ID: 'testing',
      AWS_SECRET_ACCESS_KEY: 'testing',
      AWS_REGION: 'eu-west-1',
      TARIFFSIM_LAMBDA_ENDPOINT: endpoint,
      TARIFFSIM_STORAGE: storageDir,
      REDIS_URL: redis.url,
      TARIFFSIM_LOG_LEVEL: 'INFO',
      TARIFFSIM_CHUNK_BUDGET_PROD: '4',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
  await waitForPort(port);
});

after(async () => {
  if (server) {
    const exited = new Promise((resolve) => server.once('exit', resolve));
    server.kill('SIGTERM');
    await exited;
  }
  await require('../runtime/pubsub').closeBuses();
  await redis.stop();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

test('a whole fan-out run through the Invoke API: PROD calls PROD, output equals native', async () => {
  const sdk = require('@aws-sdk/client-lambda');
  const client = new sdk.LambdaClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const spec = { market: 'sample/market.json', scenario: 'sample/scenario.json', visits: 'sample/visits.csv', sample_size: 12000, chunk_size: 1000, seed: 5, page_size: 10 };
  const { watchRun } = require('../runtime/runs');
  const { openStorage } = require('../runtime/storage');
  const { openBus } = require('../runtime/pubsub');
  const seen = [];
  const bus = openBus(redis.url);
  const unsubscribe = await bus.subscribe('tariffsim:*:prod-run', (msg, channel) => seen.push(`${channel} ${msg.event}`));
  const watcher = watchRun({ storage: openStorage(storageDir), bus, runId: 'prod-run', pollMs: 500, timeoutMs: 60000 });
  const out = await client.send(
    new sdk.InvokeCommand({ FunctionName: 'arn:aws:lambda:eu-west-1:123456789012:function:tariffsim-run-simulation:PROD', Payload: Buffer.from(JSON.stringify({ 'request-id': 'prod-run', spec })) }),
  );
  assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload).toString());
  assert.equal(JSON.parse(Buffer.from(out.Payload).toString()).status, 'started');
  const final = /** @type {{status: string}} */ (await watcher);
  await unsubscribe();
  client.destroy();
  assert.equal(final.status, 'done', `${JSON.stringify(final)}\n${serverLog.slice(-3000)}`);

  // Every hop went through the Invoke API, to the PROD alias of the target. The server's log
  // reaches this process through a pipe: the last chunk's line may arrive just after run-done.
  const hopLines = () => serverLog.split('\n').filter((l) => / \[PROD\]\[prod-run\]\[INFO\] -- (filter-population|simulate-chunk) done/.test(l));
  for (let waited = 0; hopLines().length < 13 && waited < 5000; waited += 50) await new Promise((r) => setTimeout(r, 50));
  const hops = hopLines();
  assert.equal(hops.filter((l) => l.includes('filter-population done')).length, 1);
  assert.equal(hops.filter((l) => l.includes('simulate-chunk done')).length, 12);
  assert.ok(!/\[(DEV|STAGING)\]\[prod-run\]/.test(serverLog), 'PROD never calls another environment');
  assert.ok(seen.includes('tariffsim:run-simulation:prod-run run-done'));

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-native-'));
  const file = path.join(ROOT, 'data', `.spec-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify({ ...spec, market: 'sample/market.json' }));
  try {
    execFileSync(NATIVE, ['simulate', file, '--out', dir, '--quiet']);
  } finally {
    fs.rmSync(file);
  }
  const runDir = path.join(storageDir, 'runs', 'prod-run');
  assert.ok(fs.readFileSync(path.join(runDir, 'impressions.csv')).equals(fs.readFileSync(path.join(dir, 'impressions.csv'))));
  assert.equal(fs.readFileSync(path.join(runDir, 'summary.json'), 'utf8'), fs.readFileSync(path.join(dir, 'summary.json'), 'utf8'));
  fs.rmSync(dir, { recursive: true, force: true });
});
