'use strict';
// The Ruby web app's side of a run (examples/ruby/run_client.rb) against the dev server and a real
// redis-server (REDIS_URL set): it starts the run through the Invoke API (Event, SigV4-signed),
// follows it on Redis and prints the headline `tariffsim simulate` gives for the same spec; a
// late subscriber, a client without Redis and a failed run.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');
const { spawn, execFile: execFileCb, execFileSync } = require('node:child_process');
const { freePort, startRedis, waitForPort } = require('./servers');

const execFile = promisify(execFileCb);
const ROOT = path.resolve(__dirname, '..', '..');
const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
const CLIENT = path.join(ROOT, 'examples', 'ruby', 'run_client.rb');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-ruby-'));
const workDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-ruby-spec-'));
// 12 chunks of the sample market, four at a time (paths under the server's data folder, data/).
const SPEC = { market: 'sample/market.json', scenario: 'sample/scenario.json', visits: 'sample/visits.csv', sample_size: 6000, chunk_size: 500, seed: 11, page_size: 10 };
const specFile = path.join(workDir, 'spec.json');

let redis;
let server;
let endpoint;
let serverLog = '';

before(async () => {
  fs.writeFileSync(specFile, JSON.stringify(SPEC));
  redis = await startRedis();
  const port = await freePort();
  endpoint = `http://127.0.0.1:${port}`;
  server = spawn(process.execPath, [path.join(ROOT, 'js', 'server', 'main.js'), '--port', String(port)], {
    env: {
      ...process.env,
      REDIS_URL: redis.url,
      TARIFFSIM_STORAGE: storageDir,
      TARIFFSIM_CHUNK_BUDGET: '4',
      TARIFFSIM_RETRY_DELAYS_MS: '5,10',
      TARIFFSIM_FAIL_CHUNKS: 'ruby-fails:2:0',
      TARIFFSIM_DEBUG_HOOKS: '1',
      TARIFFSIM_LOG_LEVEL: 'WARN',
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
  await redis.stop();
  fs.rmSync(storageDir, { recursive: true, force: true });
  fs.rmSync(workDir, { recursive: true, force: true });
});

/** Runs the Ruby client to its end: {code, stdout, stderr}. */
async function client(requestId, { redisUrl = redis.url, spec = specFile } = {}) {
  const args = [CLIENT, '--endpoint', endpoint, '--redis', redisUrl, '--request-id', requestId, '--timeout', '300', spec];
  try {
    const { stdout, stderr } = await execFile('ruby', args, { env: { ...process.env, REDIS_URL: redisUrl } });
    return { code: 0, stdout, stderr };
  } catch (e) {
    if (typeof e.code !== 'number') throw e;
    return { code: e.code, stdout: e.stdout, stderr: e.stderr };
  }
}

/** What the client must print for a run of SPEC, from the native command's summary.json. */
function expectedHeadline(requestId) {
  const out = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-ruby-native-'));
  const nativeSpec = path.join(out, 'spec.json');
  const data = path.join(ROOT, 'data');
  fs.writeFileSync(nativeSpec, JSON.stringify({ ...SPEC, market: path.join(data, SPEC.market), scenario: path.join(data, SPEC.scenario), visits: path.join(data, SPEC.visits) }));
  try {
    execFileSync(NATIVE, ['simulate', nativeSpec, '--out', out, '--quiet']);
    const summary = JSON.parse(fs.readFileSync(path.join(out, 'summary.json'), 'utf8'));
    const thousands = (n) => String(n).replace(/\B(?=(\d{3})+(?!\d))/g, ',');
    // To `digits` decimals, halves up, from the shortest decimal form (as the client rounds).
    const decimals = (x, digits) => {
      const text = String(x).includes('e') ? x.toFixed(digits + 6) : String(x);
      const [int, frac = ''] = text.split('.');
      const scaled = (BigInt(int + frac.padEnd(digits + 1, '0').slice(0, digits + 1)) + 5n) / 10n;
      const s = scaled.toString().padStart(digits + 1, '0');
      return `${s.slice(0, -digits)}.${s.slice(-digits)}`;
    };
    const hypothetical = summary.tariffs.filter((t) => t.hypothetical);
    assert.ok(hypothetical.length > 0, 'the sample scenario adds a hypothetical tariff');
    return [
      `run ${requestId} done: ${thousands(summary.profiles)} profiles, ${thousands(summary.impressions)} impressions`,
      ...hypothetical.map((t) => `${t.id} (${t.supplier}): ${thousands(t.impressions)} impressions, page-1 share ${decimals(100 * t.page1_share, 2)}%, expected clicks ${decimals(t.expected_clicks, 1)}`),
    ];
  } finally {
    fs.rmSync(out, { recursive: true, force: true });
  }
}

const lines = (text) => text.split('\n').filter((l) => l !== '');
const bars = (stderr) => lines(stderr).filter((l) => /^\[[#-]+\] \d+\/\d+ chunks$/.test(l));

test('the Ruby client starts a run, draws its progress from chunk-done messages and prints the headline simulate gives', async () => {
  const out = await client('ruby-run-1');
  assert.equal(out.code, 0, `${out.stderr}\n${serverLog.slice(-3000)}`);
  assert.deepEqual(lines(out.stdout), expectedHeadline('ruby-run-1'));
  // Subscribed before the run started: planned draws the empty bar, and the first chunk-done (at
  // most four chunks in flight of 12) shows before the run ends.
  const progress = bars(out.stderr);
  assert.ok(progress[0].endsWith(' 0/12 chunks'), out.stderr);
  assert.ok(progress.some((line) => / ([1-9]|1[01])\/12 chunks$/.test(line)), out.stderr);
  assert.ok(progress.at(-1).endsWith(' 12/12 chunks'), progress.at(-1));
  assert.doesNotMatch(out.stderr, /unreachable/);
});

test('a late subscriber (the run is over before it subscribes) reads the run from its stored state', async () => {
  // Same request id and spec: starting the run again is harmless and nothing more is published.
  const out = await client('ruby-run-1');
  assert.equal(out.code, 0, out.stderr);
  assert.deepEqual(lines(out.stdout), expectedHeadline('ruby-run-1'));
  assert.deepEqual(bars(out.stderr), ['[##############################] 12/12 chunks']);
});

test('without Redis the client follows the run from its stored state', async () => {
  const closed = await freePort();
  const out = await client('ruby-run-no-redis', { redisUrl: `redis://127.0.0.1:${closed}` });
  assert.equal(out.code, 0, out.stderr);
  assert.match(out.stderr, /Redis at redis:\/\/127\.0\.0\.1:\d+ is unreachable .*: following the run's stored state/);
  assert.deepEqual(lines(out.stdout), expectedHeadline('ruby-run-no-redis'));
});

test('a failed run: a clear message and exit status 1', async () => {
  const out = await client('ruby-fails');
  assert.equal(out.code, 1, out.stderr);
  assert.equal(out.stdout, '');
  assert.match(out.stderr, /run ruby-fails failed \(chunk 2\): \S+/);
});

test('bad arguments: usage and exit status 2', async () => {
  const none = await execFile('ruby', [CLIENT]).catch((e) => e);
  assert.equal(none.code, 2);
  assert.match(none.stderr, /usage: ruby run_client\.rb/);
  const flag = await execFile('ruby', [CLIENT, '--no-such-flag', specFile]).catch((e) => e);
  assert.equal(flag.code, 2);
});
