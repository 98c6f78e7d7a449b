'use strict';
/* global document, window, MutationObserver */
// The run page in real headless Chromium while its development server restarts mid-run: the
// server (its own process, folder storage, the embedded bus) is stopped with SIGTERM, which ends
// the page's event stream at once, and started again on the same port; the page reconnects and
// follows the run, taken up by the new server, to its end.

const nodeTest = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { freePort, waitForPort, launchChromium } = require('./servers');

const { before, after } = nodeTest;
// No test waits for ever; the hooks close the browser and the server even after a failure.
const test = (name, fn) => nodeTest.test(name, { timeout: 180_000 }, fn);

const ROOT = path.resolve(__dirname, '..', '..');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-page-restart-'));
let server = null;
let serverLog = '';
let port;
let endpoint;
let browser = null;

async function startServer() {
  server = spawn(process.execPath, [path.join(ROOT, 'js', 'server', 'main.js'), '--port', String(port)], {
    env: {
      ...process.env,
      TARIFFSIM_STORAGE: storageDir,
      TARIFFSIM_LOG_LEVEL: 'WARN',
      TARIFFSIM_CHUNK_BUDGET: '1',
      TARIFFSIM_WORKERS: '1',
      // The claims a stopped server left are taken over soon, by the next server's sweeps.
      TARIFFSIM_LEASE_MS: '2000',
      TARIFFSIM_SWEEP_MS: '500',
      REDIS_URL: '',
    },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  server.stdout.on('data', (d) => (serverLog += d));
  server.stderr.on('data', (d) => (serverLog += d));
  await waitForPort(port);
}

/** Stops the server with `signal`; resolves with how long it took to exit (killed after 20 s). */
async function stopServer(signal) {
  if (server === null) return 0;
  const s = server;
  server = null;
  if (s.exitCode !== null || s.signalCode !== null) return 0;
  const started = performance.now();
  const exited = new Promise((resolve) => s.once('exit', resolve));
  s.kill(signal);
  const timer = setTimeout(() => s.kill('SIGKILL'), 20_000);
  await exited;
  clearTimeout(timer);
  return performance.now() - started;
}

before(async () => {
  delete process.env.REDIS_URL;
  port = await freePort();
  endpoint = `http://127.0.0.1:${port}`;
  await startServer();
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  await stopServer('SIGKILL');
  fs.rmSync(storageDir, { recursive: true, force: true });
});

test('the server restarted mid-run (SIGTERM, at once though the page follows a run): the page follows the run to its end', async () => {
  const page = await browser.newPage();
  const states = [];
  await page.exposeFunction('recordState', (s) => states.push(s));
  await page.goto(endpoint);
  await page.waitForSelector('body[data-ready="true"]');
  await page.evaluate(() => {
    new MutationObserver(() => /** @type {any} */ (window).recordState(document.body.dataset.state)).observe(document.body, { attributes: true, attributeFilter: ['data-state'] });
  });
  await page.fill('#sample-size', '100000');
  await page.click('#start');
  await page.waitForSelector('body[data-state="running"]', { timeout: 30_000 });
  await page.waitForFunction(() => /^running: [1-9]\d* of \d+ chunks$/.test(document.getElementById('status').textContent), null, { timeout: 60_000 });
  const runId = await page.textContent('#run-id');
  const before = await page.textContent('#status');
  const [, done, chunks] = /(\d+) of (\d+)/.exec(before).map(Number);
  assert.ok(done < chunks, `mid-run: ${before}`);

  const stopMs = await stopServer('SIGTERM');
  assert.ok(stopMs < 5000, `the server stopped in ${Math.round(stopMs)} ms while the page followed a run\n${serverLog}`);
  await new Promise((resolve) => setTimeout(resolve, 1000));
  await startServer();

  await page.waitForSelector('body[data-state="done"]', { timeout: 150_000 });
  assert.match(await page.textContent('#status'), /^done: (\d+) of \1 chunks$/);
  assert.equal(await page.textContent('#progress-text'), '100%');
  assert.equal(await page.textContent('.error[data-for="form"]'), '', 'no error shown');
  assert.deepEqual([...new Set(states)], ['running', 'done'], `the page went ${states.join(', ')}`);
  const state = await (await fetch(`${endpoint}/api/runs/${runId}`)).json();
  assert.equal(state.status, 'done');
  await page.close();
});
