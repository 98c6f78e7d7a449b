'use strict';
// The development server's routes at their edges: run ids of every valid length on every run
// route, event streams that end when the server closes (and HEAD on them), typed answers for paths
// and methods no route serves, and damaged run folders answered with typed errors.

const nodeTest = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const { before, after } = nodeTest;
// No test waits for ever: a hang fails, naming the test.
const test = (name, fn) => nodeTest.test(name, { timeout: 60_000 }, fn);

const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-server-routes-'));
let app = null;
let endpoint;
let buildServer;

before(async () => {
  Object.assign(process.env, { TARIFFSIM_STORAGE: storageDir, TARIFFSIM_LOG_LEVEL: 'WARN', TARIFFSIM_SWEEP_MS: '3600000' });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env.REDIS_URL;
  ({ buildServer } = require('../server/server'));
  app = buildServer({ sweep: false });
  endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
});

after(async () => {
  await require('../runtime/invoke').idle();
  if (app) await app.close();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

const JSON_TYPE = { 'content-type': 'application/json' };
const SPEC = { market: 'sample/market.json', visits: 'sample/visits.csv', sample_size: 2000, chunk_size: 1000, seed: 3 };

/**
 * Reads a server-sent event stream until it ends or `until` returns true of the events so far.
 * @param {Response} res
 * @param {(events: {event: string, data: any}[]) => boolean} [until]
 * @returns {Promise<{event: string, data: any}[]>}
 */
async function readEvents(res, until = () => false) {
  const reader = res.body.getReader();
  const decoder = new TextDecoder();
  const events = [];
  let text = '';
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    text += decoder.decode(value, { stream: true });
    let cut;
    while ((cut = text.indexOf('\n\n')) >= 0) {
      const block = text.slice(0, cut);
      text = text.slice(cut + 2);
      const event = /^event: (.*)$/m.exec(block);
      const data = /^data: (.*)$/m.exec(block);
      events.push({ event: event ? event[1] : 'message', data: data ? JSON.parse(data[1]) : null });
    }
    if (until(events)) {
      await reader.cancel();
      break;
    }
  }
  return events;
}

/** A typed error body: {errorType, errorMessage} and nothing else, naming no absolute path. */
function assertTyped(body, errorType) {
  assert.deepEqual(Object.keys(body).sort(), ['errorMessage', 'errorType'], JSON.stringify(body));
  assert.equal(body.errorType, errorType, JSON.stringify(body));
  assert.doesNotMatch(body.errorMessage, new RegExp(storageDir.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')), 'no storage path');
  assert.doesNotMatch(body.errorMessage, /(^|[\s'"(])\/(tmp|work|home|root)\//, 'no absolute path');
}

test('run ids of 101 to 128 characters work on every run route; longer ones are a typed 400', async () => {
  const runId = `long-${'x'.repeat(115)}`;
  assert.equal(runId.length, 120);
  const started = await fetch(`${endpoint}/lambdas/run-simulation`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ 'request-id': runId, spec: SPEC }) });
  assert.equal(started.status, 200, await started.clone().text());
  assert.equal((await started.json()).run_id, runId);
  const state = await fetch(`${endpoint}/api/runs/${runId}`);
  assert.equal(state.status, 200, await state.clone().text());
  assert.equal((await state.json()).run_id, runId);
  const stream = await fetch(`${endpoint}/api/runs/${runId}/events`);
  assert.equal(stream.status, 200);
  const events = await readEvents(stream);
  const last = events[events.length - 1];
  assert.equal(last.event, 'end', JSON.stringify(events));
  assert.equal(last.data.status, 'done', JSON.stringify(last));
  const summary = await fetch(`${endpoint}/api/runs/${runId}/summary`);
  assert.equal(summary.status, 200);
  assert.ok(Array.isArray((await summary.json()).tariffs));
  const csv = await fetch(`${endpoint}/api/runs/${runId}/impressions.csv`);
  assert.equal(csv.status, 200);
  assert.ok((await csv.text()).startsWith('profile,visit_id,'));
  const cancel = await fetch(`${endpoint}/api/runs/${runId}/cancel`, { method: 'POST', headers: JSON_TYPE, body: '{}' });
  assert.equal(cancel.status, 200, await cancel.clone().text());
  assert.equal((await cancel.json()).status, 'done');
  // The longest valid id is a run id (of no run here); one character more is not.
  const longest = await fetch(`${endpoint}/api/runs/${'y'.repeat(128)}`);
  assert.equal(longest.status, 200);
  assert.equal((await longest.json()).status, 'unknown');
  const tooLong = await fetch(`${endpoint}/api/runs/${'y'.repeat(129)}/summary`);
  assert.equal(tooLong.status, 400);
  assertTyped(await tooLong.json(), 'InvalidRequest');
});

test('HEAD on an event stream answers its headers and ends', async () => {
  const head = await fetch(`${endpoint}/api/runs/nobody-runs-this/events`, { method: 'HEAD', signal: AbortSignal.timeout(5000) });
  assert.equal(head.status, 200);
  assert.equal(head.headers.get('content-type'), 'text/event-stream');
  assert.equal(await head.text(), '');
});

test('closing the server ends its open event streams at once', async () => {
  const other = buildServer({ sweep: false });
  const address = await other.listen({ host: '127.0.0.1', port: 0 });
  try {
    // A run that does not exist (waited for 30 s) and one that is running, followed.
    const runId = 'followed-while-closing';
    const started = await fetch(`${address}/lambdas/run-simulation`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ 'request-id': runId, spec: { ...SPEC, sample_size: 20000 } }) });
    assert.equal(started.status, 200);
    const streams = await Promise.all([`${address}/api/runs/nobody-started-this/events`, `${address}/api/runs/${runId}/events`].map((u) => fetch(u)));
    assert.deepEqual(streams.map((s) => s.status), [200, 200]);
    const reads = streams.map((s) => readEvents(s));
    const t0 = performance.now();
    await other.close();
    const closeMs = performance.now() - t0;
    assert.ok(closeMs < 3000, `the close took ${Math.round(closeMs)} ms`);
    const ended = await Promise.race([Promise.all(reads).then(() => true), new Promise((resolve) => setTimeout(() => resolve(false), 3000))]);
    assert.ok(ended, 'the streams ended with the close');
  } finally {
    await other.close();
  }
});

test('paths and methods no route serves: typed 404 UnknownRoute, 405 MethodNotAllowed with Allow, before the content-type refusal', async () => {
  const missing = await fetch(`${endpoint}/api/runs`);
  assert.equal(missing.status, 404);
  assert.match(missing.headers.get('content-type'), /^application\/json/);
  assertTyped(await missing.json(), 'UnknownRoute');
  const nowhere = await fetch(`${endpoint}/no/such/page?x=1`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: 'x' });
  assert.equal(nowhere.status, 404);
  assertTyped(await nowhere.json(), 'UnknownRoute');
  const del = await fetch(`${endpoint}/api/runs/x`, { method: 'DELETE' });
  assert.equal(del.status, 405);
  assert.equal(del.headers.get('allow'), 'GET, HEAD');
  assertTyped(await del.json(), 'MethodNotAllowed');
  const post = await fetch(`${endpoint}/api/runs/x/summary`, { method: 'POST', headers: JSON_TYPE, body: '{}' });
  assert.equal(post.status, 405);
  assert.equal(post.headers.get('allow'), 'GET, HEAD');
  const get = await fetch(`${endpoint}/lambdas/price`);
  assert.equal(get.status, 405);
  assert.equal(get.headers.get('allow'), 'POST');
  assertTyped(await get.json(), 'MethodNotAllowed');
  // The Invoke API's prefix answers as AWS does: a typed AWS error.
  const op = await fetch(`${endpoint}/2015-03-31/functions/tariffsim-price/nothing`, { method: 'POST', headers: JSON_TYPE, body: '{}' });
  assert.equal(op.status, 404);
  assert.equal(op.headers.get('x-amzn-errortype'), 'UnknownOperationException');
  // The Host and Origin checks still come first.
  const foreign = await fetch(`${endpoint}/api/runs`, { headers: { origin: 'http://evil.example' } });
  assert.equal(foreign.status, 403);
  assertTyped(await foreign.json(), 'CrossOriginRequest');
  // A served path and method with the wrong content type is still refused.
  const form = await fetch(`${endpoint}/lambdas/price`, { method: 'POST', headers: { 'content-type': 'text/plain' }, body: '{}' });
  assert.equal(form.status, 415);
});

test('a damaged run folder: typed StorageReadFailed errors naming no path, and an event stream that says so at once', async () => {
  const broken = path.join(storageDir, 'runs', 'damaged-run');
  fs.mkdirSync(broken, { recursive: true });
  fs.writeFileSync(path.join(broken, 'spec.json'), JSON.stringify(SPEC));
  fs.writeFileSync(path.join(broken, 'result.json'), '{broken');
  for (const route of ['', '/summary', '/impressions.csv', '/comparison']) {
    const res = await fetch(`${endpoint}/api/runs/damaged-run${route}`);
    assert.equal(res.status, 500, route);
    const body = await res.json();
    assertTyped(body, 'StorageReadFailed');
    assert.match(body.errorMessage, /runs\/damaged-run\/result\.json/, 'names the stored key');
  }
  const t0 = performance.now();
  const stream = await fetch(`${endpoint}/api/runs/damaged-run/events`, { signal: AbortSignal.timeout(5000) });
  assert.equal(stream.status, 200);
  assert.ok(performance.now() - t0 < 2000, 'the headers come at once');
  const events = await readEvents(stream);
  assert.deepEqual(events.map((e) => e.event), ['failure']);
  assertTyped(events[0].data, 'StorageReadFailed');

  // Done (result.json) but its impressions missing.
  const lost = path.join(storageDir, 'runs', 'lost-impressions');
  fs.mkdirSync(lost, { recursive: true });
  fs.writeFileSync(path.join(lost, 'spec.json'), JSON.stringify(SPEC));
  fs.writeFileSync(path.join(lost, 'result.json'), JSON.stringify({ finished_at: new Date().toISOString(), profiles: 1, impressions: 1 }));
  const csv = await fetch(`${endpoint}/api/runs/lost-impressions/impressions.csv`);
  assert.equal(csv.status, 500);
  const body = await csv.json();
  assertTyped(body, 'StorageReadFailed');
  assert.doesNotMatch(body.errorMessage, /ENOENT|\$TARIFFSIM_STORAGE/);
  assert.match(body.errorMessage, /runs\/lost-impressions\/impressions\.csv/);
});
