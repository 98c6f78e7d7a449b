'use strict';
/* global document */
// The run page's Cancel button in real headless Chromium (Debian's chromium, driven by
// playwright-core), against the development server and folder storage: a run is started from the
// form, its chunks cannot compute (this test holds every slot of DEV's budget, as runs of other
// users would), the button is clicked, and the page, the REST state and the stored state all say
// cancelled; no chunk of the run computes afterwards, even once the budget is free again.

const nodeTest = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { launchChromium } = require('./servers');

const { before, after } = nodeTest;
// No test waits for ever; the hooks close the browser, the slots and the server even after a failure.
const test = (name, fn) => nodeTest.test(name, { timeout: 120_000 }, fn);

const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-page-cancel-'));
const BUDGET = 2;
let app = null;
let endpoint;
let browser = null;
let held = [];
let m;

before(async () => {
  Object.assign(process.env, {
    TARIFFSIM_STORAGE: storageDir,
    TARIFFSIM_LOG_LEVEL: 'WARN',
    TARIFFSIM_CHUNK_BUDGET: String(BUDGET),
    // The slots this test holds stay held for the whole test.
    TARIFFSIM_LEASE_MS: '600000',
    TARIFFSIM_WORKERS: '1',
  });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env.REDIS_URL;
  m = {
    scheduler: require('../runtime/scheduler'),
    budget: require('../runtime/budget'),
    pipeline: require('../runtime/pipeline'),
    runs: require('../runtime/runs'),
    invoke: require('../runtime/invoke'),
  };
  const { buildServer } = require('../server/server');
  app = buildServer({ sweep: false });
  endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  for (const lease of held) await lease.release().catch(() => {});
  if (m) await m.invoke.idle();
  if (app) await app.close();
  await require('../runtime/workers').closeWorkers();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

/** The development environment's request, storage and budget, as the lambdas see them. */
async function dev() {
  const request = await m.scheduler.systemRequest('DEV');
  const pipeline = m.pipeline.pipelineOf(request);
  return { request, storage: pipeline.storage, budget: m.budget.budgetOf(pipeline, request) };
}

test('the Cancel button cancels the run: the page, the REST state and storage say cancelled, no chunk computes', async () => {
  // Every slot of DEV's budget is held: the run is planned but none of its chunks can start.
  const { request, storage, budget } = await dev();
  for (let i = 0; i < BUDGET; i += 1) {
    const token = await budget.acquire();
    assert.ok(token, `slot ${i} of ${BUDGET} taken`);
    held.push(budget.lease(token));
  }
  assert.equal(await budget.acquire(), null, 'the budget is all held');

  const page = await browser.newPage();
  await page.goto(endpoint);
  await page.waitForSelector('body[data-ready="true"]');
  await page.fill('#sample-size', '40000');
  await page.click('#start');
  await page.waitForSelector('body[data-state="running"]', { timeout: 30_000 });
  // Planned: the page knows how many chunks there are, and none is done.
  await page.waitForFunction(() => /^running: 0 of \d+ chunks$/.test(document.getElementById('status').textContent), null, { timeout: 30_000 });
  const runId = await page.textContent('#run-id');
  assert.ok(m.runs.RUN_ID.test(runId), `run id ${runId}`);
  assert.equal(await page.isVisible('#cancel'), true, 'the Cancel button is shown while the run goes');
  assert.equal(await page.isEnabled('#cancel'), true);
  const chunks = Number(/of (\d+) chunks/.exec(await page.textContent('#status'))[1]);
  assert.ok(chunks > 1, `${chunks} chunks planned`);

  await page.click('#cancel');
  await page.waitForSelector('body[data-state="cancelled"]', { timeout: 30_000 });
  assert.match(await page.textContent('#status'), /^cancelled: 0 of \d+ chunks \(cancelled on request\)$/);
  assert.equal(await page.isVisible('#cancel'), false, 'the button goes once the run has ended');
  assert.equal(await page.isVisible('#summary'), false, 'no result');
  assert.equal(await page.textContent('.error[data-for="form"]'), '', 'no error shown');

  // The REST state and the stored state agree.
  const state = await (await fetch(`${endpoint}/api/runs/${runId}`)).json();
  assert.equal(state.status, 'cancelled', JSON.stringify(state));
  assert.equal(state.cancellation.reason, 'cancelled on request');
  const k = m.runs.keys(runId);
  assert.notEqual(await storage.get(k.cancelled), null, 'cancelled.json stored');
  assert.deepEqual(await m.scheduler.activeRuns(storage, 'DEV'), [], 'no longer an active run');

  // The budget frees: the scheduler starts none of the cancelled run's chunks.
  for (const lease of held) await lease.release();
  held = [];
  await m.scheduler.sweep(request);
  await m.invoke.idle();
  assert.deepEqual(await storage.list(k.doneDir), [], 'no chunk computed');
  assert.deepEqual(await storage.list(k.claimsDir), [], 'no chunk started');
  assert.equal(await storage.get(k.impressions), null, 'no merge');

  // Cancelling it again (the REST route the button calls) answers where it stands.
  const again = await fetch(`${endpoint}/api/runs/${runId}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  assert.equal(again.status, 200);
  assert.equal((await again.json()).status, 'cancelled');
  await page.close();
});
