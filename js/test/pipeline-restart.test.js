'use strict';
// The development server killed (SIGKILL) in the middle of a run and started again: the run is
// taken up where it stood and ends done, equal to the native command's output. And cancel through
// the server: its REST route (the page's button) and the Lambda Invoke API. A real redis-server
// carries the messages and the environment's budget; the server runs in its own process.

const nodeTest = require('node:test');
const { before, after } = nodeTest;

// No test waits for ever: each has a time limit (a hang fails, naming the test), and the hooks close
// every server, bus and subscription even when a test failed.
const test = (name, fn) => nodeTest.test(name, { timeout: 180_000 }, fn);
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');
const { freePort, startRedis, waitForPort } = require('./servers');

const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-restart-'));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-data-'));
let redis;
let server = null;
let endpoint;
let serverLog = '';

async function startServer() {
  const port = await freePort();
  endpoint = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [path.join(ROOT, 'js', 'server', 'main.js'), '--port', String(port)], {
    env: {
      ...process.env,
      TARIFFSIM_STORAGE: storageDir,
      TARIFFSIM_DATA_DIR: dataDir,
      REDIS_URL: redis.url,
      TARIFFSIM_LOG_LEVEL: 'WARN',
      TARIFFSIM_CHUNK_BUDGET: '2',
      TARIFFSIM_WORKERS: '1',
      TARIFFSIM_SWEEP_MS: '500',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
  await waitForPort(port);
}

async function stopServer(signal) {
  if (server === null) return;
  const s = server;
  server = null;
  if (s.exitCode !== null || s.signalCode !== null) return;
  const exited = new Promise((resolve) => s.once('exit', resolve));
  s.kill(signal);
  // A server that does not stop within 10 s is killed.
  const timer = setTimeout(() => s.kill('SIGKILL'), 10_000);
  await exited;
  clearTimeout(timer);
}

before(async () => {
  redis = await startRedis();
  for (const f of ['mini_market.json', 'mini_visits.csv', 'mini_scenario.json']) {
    fs.copyFileSync(path.join(ROOT, 'tests', 'fixtures', f), path.join(dataDir, f));
  }
  await startServer();
});

after(async () => {
  await stopServer('SIGTERM');
  await require('../runtime/pubsub').closeBuses();
  if (redis) await redis.stop();
  fs.rmSync(storageDir, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const spec = (extra = {}) => ({ market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 40000, chunk_size: 500, seed: 5, page_size: 3, ...extra });

async function post(route, body) {
  const res = await fetch(`${endpoint}${route}`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify(body) });
  return { status: res.status, body: await res.json() };
}

function native(s) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-native-'));
  const file = path.join(dataDir, `native-${process.pid}.json`);
  fs.writeFileSync(file, JSON.stringify(s));
  execFileSync(NATIVE, ['simulate', file, '--out', dir, '--quiet']);
  const out = { impressions: fs.readFileSync(path.join(dir, 'impressions.csv')), summary: fs.readFileSync(path.join(dir, 'summary.json'), 'utf8') };
  fs.rmSync(dir, { recursive: true, force: true });
  fs.rmSync(file);
  return out;
}

const helpers = () => {
  const { openStorage } = require('../runtime/storage');
  const { openBus } = require('../runtime/pubsub');
  const runs = require('../runtime/runs');
  return { storage: openStorage(storageDir), bus: openBus(redis.url), runs };
};

test('the dev server killed mid-run and started again: the run resumes and ends equal to native', async () => {
  const { storage, bus, runs } = helpers();
  const s = spec();
  let seen = 0;
  let killed = null;
  const unsubscribe = await bus.subscribe('tariffsim:simulate-chunk:killed-run', (msg) => {
    if (msg.event === 'chunk-done') seen += 1;
    if (seen === 5 && killed === null) killed = stopServer('SIGKILL');
  });
  const started = await post('/lambdas/run-simulation', { 'request-id': 'killed-run', spec: s });
  assert.equal(started.status, 200, JSON.stringify(started.body));
  // Killed after 5 chunks: the run is left unfinished, its claims and slots held by a dead process.
  const until = Date.now() + 60000;
  while (killed === null && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(killed !== null, `the server was killed mid-run (${seen} chunks seen): ${serverLog}`);
  await killed;
  await unsubscribe();
  const left = await runs.readState(storage, 'killed-run');
  assert.equal(left.status, 'running', 'left unfinished');
  assert.ok(left.done < left.chunks, `${left.done} of ${left.chunks}`);
  await startServer();
  const final = await runs.watchRun({ storage, bus, runId: 'killed-run', pollMs: 250, timeoutMs: 120000 });
  assert.equal(final.status, 'done', `${JSON.stringify(final)}\n${serverLog}`);
  assert.equal(final.done, final.chunks);
  const want = native(s);
  const k = runs.keys('killed-run');
  assert.ok((await storage.get(k.impressions)).equals(want.impressions), 'impressions equal native');
  assert.equal((await storage.get(k.summary)).toString('utf8'), want.summary);
});

test('the dev server down for longer than the stall time: its run is resumed, not failed as stalled, and the dead merger\'s file is removed', async () => {
  const { storage, bus, runs } = helpers();
  const s = spec({ sample_size: 20000, seed: 6 });
  const runId = 'down-long';
  const k = runs.keys(runId);
  let seen = 0;
  let killed = null;
  const unsubscribe = await bus.subscribe(`tariffsim:simulate-chunk:${runId}`, (msg) => {
    if (msg.event === 'chunk-done') seen += 1;
    if (seen === 3 && killed === null) killed = stopServer('SIGKILL');
  });
  const started = await post('/lambdas/run-simulation', { 'request-id': runId, spec: s });
  assert.equal(started.status, 200, JSON.stringify(started.body));
  const until = Date.now() + 60000;
  while (killed === null && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.ok(killed !== null, `the server was killed mid-run (${seen} chunks seen): ${serverLog}`);
  await killed;
  await unsubscribe();
  const left = await runs.readState(storage, runId);
  assert.equal(left.status, 'running', 'left unfinished');
  // The merge that followed the chunks left its temporary file, named by its dead writer.
  const dir = path.join(storageDir, 'runs', runId);
  const temporaries = () => fs.readdirSync(dir).filter((n) => /^impressions\.csv\..*\.tmp$/.test(n));
  assert.equal(temporaries().length, 1, fs.readdirSync(dir).join(' '));
  // The server stays down for an hour (the stall time is 15 minutes): every time the run recorded
  // is an hour older.
  const hour = 3600_000;
  const older = async (key, fields) => {
    const record = await runs.readJson(storage, key);
    if (record === null) return;
    for (const f of fields) if (record[f]) record[f] = new Date(Date.parse(record[f]) - hour).toISOString();
    await storage.put(key, runs.json(record));
  };
  await older(k.spec, ['started_at']);
  await older(k.progress, ['at', 'resumed_at']);
  await older(k.filterLock, ['at']);
  await older(k.mergeLock, ['at']);
  for (const key of await storage.list(k.claimsDir)) await older(key, ['at']);
  await startServer();
  const final = await runs.watchRun({ storage, bus, runId, pollMs: 250, timeoutMs: 120000 });
  assert.equal(final.status, 'done', `${JSON.stringify(final)}\n${serverLog}`);
  const want = native(s);
  assert.ok((await storage.get(k.impressions)).equals(want.impressions), 'impressions equal native');
  assert.equal((await storage.get(k.summary)).toString('utf8'), want.summary);
  assert.deepEqual(temporaries(), [], 'the dead merger\'s temporary file is removed');
});

test('cancel through the REST route and through the Invoke API', async () => {
  const { storage, bus, runs } = helpers();
  // REST, as the page's button does.
  const a = await post('/lambdas/run-simulation', { 'request-id': 'rest-cancel', spec: spec({ sample_size: 200000 }) });
  assert.equal(a.status, 200, JSON.stringify(a.body));
  assert.equal((await post('/api/runs/rest-cancel/cancel', { reason: 'wrong market', other: 1 })).status, 400);
  const cancelled = await post('/api/runs/rest-cancel/cancel', { reason: 'wrong market' });
  assert.equal(cancelled.status, 200, JSON.stringify(cancelled.body));
  assert.equal(cancelled.body.status, 'cancelled');
  const finalA = await runs.watchRun({ storage, bus, runId: 'rest-cancel', timeoutMs: 30000 });
  assert.equal(finalA.status, 'cancelled');
  // The body's reason is the one recorded.
  assert.equal(finalA.cancellation.reason, 'wrong market', JSON.stringify(finalA));
  // A cancelled run has no results to serve, whatever its merge had written: 409 RunNotDone.
  for (const route of ['summary', 'comparison', 'impressions.csv']) {
    const res = await fetch(`${endpoint}/api/runs/rest-cancel/${route}`);
    assert.equal(res.status, 409, route);
    const body = await res.json();
    assert.deepEqual([body.errorType, body.state, body.reason], ['RunNotDone', 'cancelled', 'wrong market'], route);
  }
  assert.equal((await post('/api/runs/no-such-run/cancel', {})).status, 404);

  // The Invoke API, with run-simulation's cancel input (an unchanged AWS SDK works).
  const sdk = require('@aws-sdk/client-lambda');
  const client = new sdk.LambdaClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const b = await post('/lambdas/run-simulation', { 'request-id': 'invoke-cancel', spec: spec({ sample_size: 200000 }) });
  assert.equal(b.status, 200);
  const out = await client.send(new sdk.InvokeCommand({ FunctionName: 'tariffsim-run-simulation', Payload: Buffer.from(JSON.stringify({ cancel: 'invoke-cancel', reason: 'by sdk' })) }));
  assert.equal(out.FunctionError, undefined, Buffer.from(out.Payload).toString());
  assert.equal(JSON.parse(Buffer.from(out.Payload).toString()).status, 'cancelled');
  const finalB = await runs.watchRun({ storage, bus, runId: 'invoke-cancel', timeoutMs: 30000 });
  assert.equal(finalB.status, 'cancelled');
  assert.equal(finalB.cancellation.reason, 'by sdk');
  client.destroy();
});

test('an accepted Event outlives its server: the next server on the storage runs it', async () => {
  const { storage, bus, runs } = helpers();
  const journalDir = path.join(storageDir, 'dev-server-events');
  const kept = () => (fs.existsSync(journalDir) ? fs.readdirSync(journalDir, { recursive: true }).filter((n) => String(n).endsWith('.json')) : []);
  // An Event answered 202 by a server killed before running it: its kept file, as the server
  // wrote it, under a process that is gone.
  await stopServer('SIGKILL');
  const dead = spawn(process.execPath, ['-e', '0']);
  await new Promise((resolve) => dead.once('exit', resolve));
  const host = require('../runtime/budget').self().host;
  const orphan = path.join(journalDir, `${host}:${dead.pid}:0badc0de:1`);
  fs.mkdirSync(orphan, { recursive: true });
  const event = JSON.stringify({ 'request-id': 'orphan-event', spec: spec() });
  const arn = 'arn:aws:lambda:eu-west-2:000000000000:function:tariffsim-run-simulation';
  fs.writeFileSync(path.join(orphan, '1.json'), JSON.stringify({ target: 'run-simulation', event, arn, delays: [50, 100], requestId: 'orphan-event' }));
  assert.equal((await runs.readState(storage, 'orphan-event')).status, 'unknown', 'the run does not exist yet');
  // The next server takes it up, and the run it starts ends done.
  await startServer();
  const final = await runs.watchRun({ storage, bus, runId: 'orphan-event', pollMs: 250, timeoutMs: 120000 });
  assert.equal(final.status, 'done', `${JSON.stringify(final)}\n${serverLog}`);
  assert.ok(!fs.existsSync(orphan), 'the dead server\'s folder is gone');

  // An Event through the Invoke API is kept while it runs and forgotten once it has finished.
  const sdk = require('@aws-sdk/client-lambda');
  const client = new sdk.LambdaClient({ region: 'eu-west-2', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' } });
  const out = await client.send(new sdk.InvokeCommand({ FunctionName: 'tariffsim-run-simulation', InvocationType: 'Event', Payload: Buffer.from(JSON.stringify({ 'request-id': 'kept-event', spec: spec() })) }));
  assert.equal(out.StatusCode, 202);
  const second = await runs.watchRun({ storage, bus, runId: 'kept-event', pollMs: 250, timeoutMs: 120000 });
  assert.equal(second.status, 'done');
  const until = Date.now() + 10000;
  while (kept().length > 0 && Date.now() < until) await new Promise((resolve) => setTimeout(resolve, 50));
  assert.deepEqual(kept(), [], 'no Event is kept once finished');
  client.destroy();

  // A server that dies while another runs on the same storage: the running one takes its Events
  // up at its next sweep (TARIFFSIM_SWEEP_MS, 500 ms here).
  const late = path.join(journalDir, `${host}:${dead.pid}:0badc0de:2`);
  fs.mkdirSync(late, { recursive: true });
  fs.writeFileSync(path.join(late, '1.json'), JSON.stringify({ target: 'run-simulation', event: JSON.stringify({ 'request-id': 'late-event', spec: spec() }), arn, delays: [50, 100], requestId: 'late-event' }));
  const third = await runs.watchRun({ storage, bus, runId: 'late-event', pollMs: 250, timeoutMs: 120000 });
  assert.equal(third.status, 'done');
});
