'use strict';
// The development server as its real clients use it: plain REST, and the AWS Lambda Invoke API
// through the AWS SDK for JavaScript v3 (LambdaClient, InvokeCommand) and boto3, unchanged but for
// the endpoint.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { promisify } = require('node:util');
// Clients run as child processes, asynchronously: the server answers from this process.
const execFile = promisify(require('node:child_process').execFile);

/** @typedef {Error & {$metadata: {httpStatusCode?: number}}} SdkError an error of the AWS SDK */

const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-server-'));
let app;
let endpoint;
let lambda;
let sdk;

before(async () => {
  Object.assign(process.env, {
    TARIFFSIM_STORAGE: storageDir,
    TARIFFSIM_LOG_LEVEL: 'INFO',
    // The server sweeps for unfinished runs at start only: a run goes on because it runs, not
    // because a sweep took it up (the runner thread's test).
    TARIFFSIM_SWEEP_MS: '3600000',
    AWS_ACCESS_KEY_ID: 'testing',
    AWS_SECRET_ACCESS_KEY: 'testing',
    AWS_REGION: 'eu-west-1',
  });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env.REDIS_URL;
  const { buildServer } = require('../server/server');
  app = buildServer();
  endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  sdk = require('@aws-sdk/client-lambda');
  lambda = new sdk.LambdaClient({ region: 'eu-west-1', endpoint, credentials: { accessKeyId: 'testing', secretAccessKey: 'testing' }, maxAttempts: 1 });
});

after(async () => {
  lambda.destroy();
  await require('../runtime/invoke').idle();
  await app.close();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

const PRICE = { market: 'sample', profile: { region: 'C', fuel: 'dual_fuel' }, page_size: 3 };
// State-changing requests need a JSON content type (the Invoke API also takes the SDKs' binary ones).
const JSON_TYPE = { 'content-type': 'application/json' };

async function invoke(params) {
  const out = await lambda.send(new sdk.InvokeCommand({ ...params, Payload: params.Payload === undefined ? undefined : Buffer.from(JSON.stringify(params.Payload)) }));
  const text = out.Payload ? Buffer.from(out.Payload).toString('utf8') : '';
  return { ...out, body: text ? JSON.parse(text) : null, log: out.LogResult ? Buffer.from(out.LogResult, 'base64').toString('utf8') : null };
}

test('REST: each lambda at POST /lambdas/<name>, errors as HTTP statuses', async () => {
  const ok = await fetch(`${endpoint}/lambdas/price`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify(PRICE) });
  assert.equal(ok.status, 200);
  const body = await ok.json();
  assert.equal(body.results[0].rows.length, 3);
  const bad = await fetch(`${endpoint}/lambdas/price`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ ...PRICE, profile: { region: 'Z' } }) });
  assert.equal(bad.status, 400);
  assert.deepEqual(Object.keys(await bad.json()).sort(), ['errorMessage', 'errorType']);
  const notJson = await fetch(`${endpoint}/lambdas/price`, { method: 'POST', headers: JSON_TYPE, body: '{not json' });
  assert.equal(notJson.status, 400);
  assert.equal((await notJson.json()).errorType, 'InvalidJson');
  const unknown = await fetch(`${endpoint}/lambdas/nope`, { method: 'POST', headers: JSON_TYPE, body: '{}' });
  assert.equal(unknown.status, 404);
  const unknownMarket = await fetch(`${endpoint}/lambdas/price`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ ...PRICE, market: 'elsewhere' }) });
  assert.equal(unknownMarket.status, 404);
  assert.equal((await unknownMarket.json()).errorType, 'UnknownMarket');
  // The status says whose fault it is: an answer too large is the caller's to fix (fewer rows); a
  // broken setting or stored snapshot is the deployment's, whatever its code starts with.
  const { statusOf } = require('../server/server');
  assert.deepEqual(['ResponseTooLarge', 'InvalidConfig', 'InvalidSnapshot', 'InvalidVisit'].map((name) => statusOf({ name })), [400, 500, 500, 400]);
});

test('Invoke API with the AWS SDK v3: RequestResponse, aliases, executed version', async () => {
  for (const [FunctionName, Qualifier, env] of [
    ['tariffsim-price', undefined, 'DEV'],
    ['price', undefined, 'DEV'],
    ['tariffsim-price:PROD', undefined, 'PROD'],
    ['tariffsim-price', 'STAGING', 'STAGING'],
    ['arn:aws:lambda:eu-west-1:123456789012:function:tariffsim-price:PROD', undefined, 'PROD'],
  ]) {
    const out = await invoke({ FunctionName, Qualifier, Payload: PRICE, LogType: 'Tail' });
    assert.equal(out.StatusCode, 200, FunctionName);
    assert.equal(out.FunctionError, undefined);
    assert.equal(out.ExecutedVersion, '$LATEST');
    assert.equal(out.body.results[0].rows[0].rank, 1);
    assert.match(out.log, new RegExp(`\\[${env}\\]\\[[^\\]]+\\]\\[INFO\\] -- price`), `${FunctionName} runs as ${env}`);
  }
});

test('Invoke API: a function error is a 200 with X-Amz-Function-Error and the error body', async () => {
  const out = await invoke({ FunctionName: 'tariffsim-price', Payload: { ...PRICE, profile: { region: 'Z' } }, LogType: 'Tail' });
  assert.equal(out.StatusCode, 200);
  assert.equal(out.FunctionError, 'Unhandled');
  assert.equal(out.body.errorType, 'UnknownRegion');
  assert.match(out.body.errorMessage, /unknown region "Z"/);
  assert.ok(Array.isArray(out.body.stackTrace));
  assert.match(out.log, /\[ERROR\] -- price failed/);
  assert.ok(Buffer.byteLength(out.log) <= 4096);
});

test('Invoke API: unknown function, DryRun, Event', async () => {
  await assert.rejects(invoke({ FunctionName: 'tariffsim-nope', Payload: {} }), (/** @type {SdkError} */ e) => e.name === 'ResourceNotFoundException' && e.$metadata.httpStatusCode === 404);
  const dry = await invoke({ FunctionName: 'tariffsim-price', InvocationType: 'DryRun', Payload: PRICE });
  assert.equal(dry.StatusCode, 204);
  const spec = { market: 'sample/market.json', visits: 'sample/visits.csv', sample_size: 3000, chunk_size: 1000, seed: 1 };
  const event = await invoke({ FunctionName: 'tariffsim-run-simulation', InvocationType: 'Event', Payload: { 'request-id': 'event-run', spec } });
  assert.equal(event.StatusCode, 202);
  assert.equal(event.body, null);
  // It ran in the background: the run finishes.
  const { readState, watchRun } = require('../runtime/runs');
  const { openStorage } = require('../runtime/storage');
  const { openBus } = require('../runtime/pubsub');
  const final = /** @type {{status: string}} */ (await watchRun({ storage: openStorage(storageDir), bus: openBus(null), runId: 'event-run', pollMs: 100, timeoutMs: 30000 }));
  assert.equal(final.status, 'done', JSON.stringify(await readState(openStorage(storageDir), 'event-run')));
  // An Event is kept on disk before its 202 (server/event-journal.js): one that cannot be kept is
  // not accepted (500), and does not run.
  const kept = path.join(storageDir, 'dev-server-events');
  const [own] = fs.readdirSync(kept);
  fs.rmSync(path.join(kept, own), { recursive: true, force: true });
  fs.writeFileSync(path.join(kept, own), 'not a folder');
  await assert.rejects(invoke({ FunctionName: 'tariffsim-run-simulation', InvocationType: 'Event', Payload: { 'request-id': 'unkept-run', spec } }), (/** @type {SdkError} */ e) => e.name === 'ServiceException' && e.$metadata.httpStatusCode === 500 && /could not be kept/.test(e.message));
  fs.rmSync(path.join(kept, own));
  await new Promise((resolve) => setTimeout(resolve, 200));
  assert.equal((await readState(openStorage(storageDir), 'unkept-run')).status, 'unknown');
});

test('Invoke API: payloads over 6 MB (RequestResponse) or 1 MB (Event) are refused with 413', async () => {
  const big = { ...PRICE, pad: 'x'.repeat(6 * 1024 * 1024) };
  await assert.rejects(invoke({ FunctionName: 'tariffsim-price', Payload: big }), (/** @type {SdkError} */ e) => e.name === 'RequestTooLargeException' && e.$metadata.httpStatusCode === 413);
  const medium = { ...PRICE, pad: 'x'.repeat(1024 * 1024 + 10) };
  await assert.rejects(invoke({ FunctionName: 'tariffsim-price', InvocationType: 'Event', Payload: medium }), (/** @type {SdkError} */ e) => e.name === 'RequestTooLargeException');
  // Refused as soon as the limit is passed: a client streaming 100 MB without a Content-Length gets
  // its answer without the server reading it all.
  const started = performance.now();
  let sent = 0;
  const stream = new ReadableStream({
    pull(controller) {
      if (sent >= 100 * 1024 * 1024) return controller.close();
      sent += 1024 * 1024;
      controller.enqueue(new Uint8Array(1024 * 1024));
    },
  });
  // Node's fetch sends a stream body only with `duplex: 'half'`, which the DOM's RequestInit lacks.
  const init = /** @type {RequestInit} */ ({ method: 'POST', body: stream, duplex: 'half' });
  const res = await fetch(`${endpoint}/2015-03-31/functions/tariffsim-price/invocations`, init).catch((e) => e);
  if (res instanceof Response) assert.equal(res.status, 413);
  assert.ok(sent < 100 * 1024 * 1024, `the server stopped reading after ${sent} bytes`);
  assert.ok(performance.now() - started < 10000);
});

test('Invoke API with boto3 (Python), unchanged but for the endpoint', async () => {
  const script = `
import base64, json, sys, boto3, botocore
c = boto3.client("lambda", region_name="eu-west-1", endpoint_url=sys.argv[1],
                 aws_access_key_id="testing", aws_secret_access_key="testing",
                 config=botocore.config.Config(retries={"max_attempts": 0}))
out = {}
r = c.invoke(FunctionName="tariffsim-price", Qualifier="PROD", Payload=${JSON.stringify(JSON.stringify(PRICE))}, LogType="Tail")
out["status"] = r["StatusCode"]; out["rows"] = len(json.loads(r["Payload"].read())["results"][0]["rows"])
out["log"] = base64.b64decode(r["LogResult"]).decode()
r = c.invoke(FunctionName="tariffsim-price", Payload=json.dumps({"market": "sample", "profile": {"region": "Z"}}))
out["error"] = r.get("FunctionError"); out["errorType"] = json.loads(r["Payload"].read())["errorType"]
out["dry"] = c.invoke(FunctionName="tariffsim-price", InvocationType="DryRun", Payload=b"{}")["StatusCode"]
try:
    c.invoke(FunctionName="nope", Payload=b"{}")
except c.exceptions.ResourceNotFoundException:
    out["missing"] = "ResourceNotFoundException"
print(json.dumps(out))
`;
  const out = JSON.parse((await execFile('python3', ['-c', script, endpoint])).stdout);
  assert.equal(out.status, 200);
  assert.equal(out.rows, 3);
  assert.match(out.log, /\[PROD\]/);
  assert.equal(out.error, 'Unhandled');
  assert.equal(out.errorType, 'UnknownRegion');
  assert.equal(out.dry, 204);
  assert.equal(out.missing, 'ResourceNotFoundException');
});

test("the Ruby web app's call, SigV4-signed, from Ruby", async () => {
  const script = path.join(__dirname, '..', '..', 'examples', 'ruby', 'invoke_with_sigv4.rb');
  const out = JSON.parse((await execFile('ruby', [script, endpoint])).stdout);
  assert.equal(out.status, 200);
  assert.equal(out.results[0].rows[0].rank, 1);
  assert.ok(out.results[0].rows[0].annual_cost_gbp > 0);
});

test('Invoke API: a payload that is not JSON is a 400 InvalidRequestContentException; bad run ids are 400s', async () => {
  const res = await fetch(`${endpoint}/2015-03-31/functions/tariffsim-price/invocations`, { method: 'POST', headers: JSON_TYPE, body: '{not json' });
  assert.equal(res.status, 400);
  assert.equal(res.headers.get('x-amzn-errortype'), 'InvalidRequestContentException');
  // An alias in the name and another as Qualifier: refused, as Lambda does, never run as either.
  const clash = await fetch(`${endpoint}/2015-03-31/functions/tariffsim-price:PROD/invocations?Qualifier=STAGING`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify(PRICE) });
  assert.equal(clash.status, 400);
  assert.equal(clash.headers.get('x-amzn-errortype'), 'InvalidParameterValueException');
  const same = await fetch(`${endpoint}/2015-03-31/functions/tariffsim-price:PROD/invocations?Qualifier=PROD`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify(PRICE) });
  assert.equal(same.status, 200);
  const ev = await fetch(`${endpoint}/2015-03-31/functions/tariffsim-price/invocations`, { method: 'POST', body: 'nope', headers: { ...JSON_TYPE, 'x-amz-invocation-type': 'Event' } });
  assert.equal(ev.status, 400);
  const bad = await fetch(`${endpoint}/api/runs/..%2Fetc`);
  assert.equal(bad.status, 400);
  const unknown = await fetch(`${endpoint}/api/runs/never-started/summary`);
  assert.equal(unknown.status, 404);
});

test('the run events stream stops watching when its client goes away', async () => {
  const { EmbeddedBus } = require('../runtime/pubsub');
  const bus = require('../runtime/pubsub').openBus(null);
  assert.ok(bus instanceof EmbeddedBus);
  const before = bus.emitter.listenerCount('message');
  const controllers = [1, 2, 3].map(() => new AbortController());
  const reads = controllers.map(async (c) => {
    const res = await fetch(`${endpoint}/api/runs/nobody-started-this/events`, { signal: c.signal });
    const reader = res.body.getReader();
    await reader.read();
    return reader;
  });
  await Promise.all(reads);
  assert.equal(bus.emitter.listenerCount('message'), before + 3);
  controllers.forEach((c) => c.abort());
  for (let i = 0; i < 50 && bus.emitter.listenerCount('message') > before; i += 1) await new Promise((r) => setTimeout(r, 50));
  assert.equal(bus.emitter.listenerCount('message'), before, 'no watcher left behind');
});

test('a run started through the server runs on the runner thread: it goes on while this thread is blocked, and its messages reach this thread on the embedded bus', async () => {
  const { openBus } = require('../runtime/pubsub');
  const { keys } = require('../runtime/runs');
  const runId = 'runner-run';
  const seen = [];
  let ended;
  const end = new Promise((resolve) => {
    ended = resolve;
  });
  const unsubscribe = await openBus(null).subscribe(`tariffsim:*:${runId}`, (/** @type {{event: string}} */ m) => {
    seen.push(m.event);
    if (m.event === 'run-done' || m.event === 'run-failed') ended(m);
  });
  try {
    const spec = { market: 'sample/market.json', visits: 'sample/visits.csv', sample_size: 12000, chunk_size: 1000, seed: 2 };
    const res = await fetch(`${endpoint}/lambdas/run-simulation`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify({ 'request-id': runId, spec }) });
    assert.equal(res.status, 200, await res.clone().text());
    // This thread blocks (no event loop turn) until a chunk is recorded done: only a run on another
    // thread can get there (on this one it would wait for ever; the test gives up after 60 s).
    const doneDir = path.join(storageDir, keys(runId).doneDir);
    const until = Date.now() + 60_000;
    let chunksDone = 0;
    while (chunksDone === 0 && Date.now() < until) {
      try {
        chunksDone = fs.readdirSync(doneDir).filter((f) => !f.endsWith('.tmp')).length;
      } catch {
        // not made yet
      }
    }
    assert.ok(chunksDone > 0, 'no chunk was done while the serving thread was blocked');
    // price is answered on this thread meanwhile.
    const priced = await fetch(`${endpoint}/lambdas/price`, { method: 'POST', headers: JSON_TYPE, body: JSON.stringify(PRICE) });
    assert.equal(priced.status, 200);
    const last = /** @type {{event: string}} */ (await end);
    assert.equal(last.event, 'run-done', JSON.stringify(last));
    assert.ok(seen.includes('chunk-done'), seen.join(' '));
  } finally {
    await unsubscribe();
  }
});
