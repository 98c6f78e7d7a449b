'use strict';
// The development server's routes at their edges: run ids of every valid length on every run
// route, event streams that end when the server closes (and HEAD on them), typed answers for paths
// and methods no route serves, damaged run folders answered with typed errors, and a
// run's outputs refused apart: no such run (404 UnknownRun), a run not done (409 RunNotDone with its
// state), a done run that does not compare (404 NoComparison).

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


/** A done run serves its summary and impressions, each read whole (a body left unread would hold the server's close up). */
async function assertDoneOutputs(runId) {
  const summary = await fetch(`${endpoint}/api/runs/${runId}/summary`);
  assert.equal(summary.status, 200);
  assert.ok(Array.isArray((await summary.json()).tariffs));
  const csv = await fetch(`${endpoint}/api/runs/${runId}/impressions.csv`);
  assert.equal(csv.status, 200);
  assert.ok((await csv.text()).startsWith('profile,visit_id,'));
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
  await assertDoneOutputs(runId);
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

// A run's outputs: summary, comparison, comparison.csv, impressions.csv.
const OUTPUTS = ['/summary', '/comparison', '/comparison.csv', '/impressions.csv'];

/**
 * Every output route of `runId` refused with 409 RunNotDone and the run's `state` (and `reason`,
 * when given), its state as GET /api/runs/<id> reports it.
 * @param {string} runId
 * @param {string[]} states the states the run may be in (one for a run that has ended)
 * @param {RegExp} [reason] the recorded reason of a failed or cancelled run
 */
async function assertNotDone(runId, states, reason) {
  for (const route of OUTPUTS) {
    const res = await fetch(`${endpoint}/api/runs/${runId}${route}`);
    const body = await res.json();
    assert.equal(res.status, 409, `${route}: ${JSON.stringify(body)}`);
    assert.match(res.headers.get('content-type'), /^application\/json/);
    assert.equal(body.errorType, 'RunNotDone', route);
    assert.ok(states.includes(body.state), `${route}: ${JSON.stringify(body)}`);
    const what = route === '/summary' ? 'summary' : route === '/impressions.csv' ? 'impressions' : 'comparison';
    assert.equal(body.errorMessage, `run ${runId} is ${body.state}: no ${what} (a run's outputs are its results only once it is done)`);
    if (reason) {
      assert.deepEqual(Object.keys(body).sort(), ['errorMessage', 'errorType', 'reason', 'state']);
      assert.match(body.reason, reason, route);
    } else {
      assert.deepEqual(Object.keys(body).sort(), ['errorMessage', 'errorType', 'state']);
    }
    assert.doesNotMatch(JSON.stringify(body), /(^|[\s'"(])\/(tmp|work|home|root)\//, 'no absolute path');
  }
}

test('an id that names no run: 404 UnknownRun on every output route', async () => {
  for (const route of OUTPUTS) {
    const res = await fetch(`${endpoint}/api/runs/nobody-ran-this${route}`);
    assert.equal(res.status, 404, route);
    const body = await res.json();
    assertTyped(body, 'UnknownRun');
    assert.match(body.errorMessage, /^no run nobody-ran-this in this server's storage/);
  }
  // As its state says.
  assert.equal((await (await fetch(`${endpoint}/api/runs/nobody-ran-this`)).json()).status, 'unknown');
});

test('a run that is not done (started or running, cancelled, failed): 409 RunNotDone with its state, and its reason once it ended', async () => {
  // Running, as storage has it (a plan, no result): every route says so.
  const stored = path.join(storageDir, 'runs', 'stored-running');
  fs.mkdirSync(stored, { recursive: true });
  fs.writeFileSync(path.join(stored, 'spec.json'), JSON.stringify(SPEC));
  fs.writeFileSync(path.join(stored, 'plan.json'), JSON.stringify({ chunks: 2, population: 10, sample_size: 2000, chunk_size: 1000 }));
  assert.equal((await (await fetch(`${endpoint}/api/runs/stored-running`)).json()).status, 'running');
  await assertNotDone('stored-running', ['running']);

  // A real run, asked at once (far from done), then cancelled with a reason.
  const runId = 'not-done-yet';
  const started = await fetch(`${endpoint}/lambdas/run-simulation`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ 'request-id': runId, spec: { ...SPEC, sample_size: 200000 } }) });
  assert.equal(started.status, 200, await started.clone().text());
  await assertNotDone(runId, ['started', 'running']);
  const cancel = await fetch(`${endpoint}/api/runs/${runId}/cancel`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ reason: 'wrong market' }) });
  assert.equal(cancel.status, 200, await cancel.clone().text());
  assert.equal((await cancel.json()).status, 'cancelled');
  await assertNotDone(runId, ['cancelled'], /^wrong market$/);

  // A run that fails (its visits do not exist), followed to its end.
  const failing = 'fails-on-its-visits';
  const failed = await fetch(`${endpoint}/lambdas/run-simulation`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ 'request-id': failing, spec: { ...SPEC, visits: 'no-such-visits.csv' } }) });
  assert.equal(failed.status, 200, await failed.clone().text());
  const events = await readEvents(await fetch(`${endpoint}/api/runs/${failing}/events`));
  assert.equal(events[events.length - 1].data.status, 'failed', JSON.stringify(events));
  const state = await (await fetch(`${endpoint}/api/runs/${failing}`)).json();
  await assertNotDone(failing, ['failed'], /no-such-visits\.csv does not exist/);
  const summary = await (await fetch(`${endpoint}/api/runs/${failing}/summary`)).json();
  assert.equal(summary.reason, state.failure.reason, 'the reason its state reports');
});

test('a done run that does not compare: its comparison routes answer 404 NoComparison; a done run missing an output is StorageReadFailed naming it', async () => {
  const runId = 'done-no-scenario';
  const started = await fetch(`${endpoint}/lambdas/run-simulation`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ 'request-id': runId, spec: SPEC }) });
  assert.equal(started.status, 200, await started.clone().text());
  const events = await readEvents(await fetch(`${endpoint}/api/runs/${runId}/events`));
  assert.equal(events[events.length - 1].data.status, 'done', JSON.stringify(events));
  for (const route of ['/comparison', '/comparison.csv']) {
    const res = await fetch(`${endpoint}/api/runs/${runId}${route}`);
    assert.equal(res.status, 404, route);
    const body = await res.json();
    assertTyped(body, 'NoComparison');
    assert.equal(body.errorMessage, `run ${runId} is done but has no comparison: it does not compare (no scenario, or compare: false)`);
  }
  // Read whole: a body left unread would hold the server's close up.
  await assertDoneOutputs(runId);

  // Done, and its result names a comparison storage does not hold; done without its summary.
  const lost = path.join(storageDir, 'runs', 'lost-outputs');
  fs.mkdirSync(lost, { recursive: true });
  fs.writeFileSync(path.join(lost, 'spec.json'), JSON.stringify(SPEC));
  fs.writeFileSync(path.join(lost, 'result.json'), JSON.stringify({ finished_at: new Date().toISOString(), profiles: 1, impressions: 1, comparison_url: '$TARIFFSIM_STORAGE/runs/lost-outputs/comparison.json' }));
  for (const [route, key] of [['/summary', 'summary.json'], ['/comparison', 'comparison.json'], ['/comparison.csv', 'comparison.csv']]) {
    const res = await fetch(`${endpoint}/api/runs/lost-outputs${route}`);
    assert.equal(res.status, 500, route);
    const body = await res.json();
    assertTyped(body, 'StorageReadFailed');
    assert.ok(body.errorMessage.includes(`runs/lost-outputs/${key}`), body.errorMessage);
  }
});
