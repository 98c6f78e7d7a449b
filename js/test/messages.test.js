'use strict';
// The message contract: every message real runs publish on a real redis-server (a run that ends
// done, one that fails, one that is cancelled) is valid against its JSON Schema in
// schemas/messages/ and goes out on the topic that schema names.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const Ajv2020 = require('ajv/dist/2020').default;
const addFormats = require('ajv-formats').default;
const { startRedis } = require('./servers');

const ROOT = path.resolve(__dirname, '..', '..');
const SCHEMAS = path.join(ROOT, 'schemas', 'messages');
const EVENTS = ['started', 'planned', 'chunk-done', 'run-done', 'run-failed', 'cancelled', 'resumed'];
/** The types a run that nobody's process dies in publishes (resumed needs a dead process: schema only). */
const PUBLISHED = EVENTS.filter((e) => e !== 'resumed');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-messages-'));
const dataDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-messages-data-'));

let redis;
let listener;
let m; // modules, required once the environment is set
/** Every message heard on tariffsim:*, in order: {channel, text}. */
const heard = [];
const waiting = [];

/** Resolves when a message `event` has been heard on `channel`. */
function heardOn(channel, event) {
  return /** @type {Promise<void>} */ (
    new Promise((resolve) => {
    const check = () => heard.some((h) => h.channel === channel && JSON.parse(h.text).event === event);
      if (check()) resolve();
      else waiting.push({ check, resolve });
    })
  );
}

/** The schemas, compiled: validate(message) per event, the topic pattern per event. */
function loadSchemas() {
  const ajv = new Ajv2020({ allErrors: true, strict: true });
  addFormats(ajv);
  for (const keyword of ['x-topic', 'x-topics', 'x-publisher']) ajv.addKeyword(keyword);
  for (const file of fs.readdirSync(SCHEMAS)) ajv.addSchema(JSON.parse(fs.readFileSync(path.join(SCHEMAS, file), 'utf8')));
  const any = ajv.getSchema('message.schema.json');
  const byEvent = Object.fromEntries(
    EVENTS.map((event) => {
      const file = `${event}.schema.json`;
      const schema = JSON.parse(fs.readFileSync(path.join(SCHEMAS, file), 'utf8'));
      return [event, { validate: ajv.getSchema(file), topic: schema['x-topic'] }];
    }),
  );
  return { ajv, any, byEvent, index: JSON.parse(fs.readFileSync(path.join(SCHEMAS, 'message.schema.json'), 'utf8')) };
}

before(async () => {
  redis = await startRedis();
  for (const f of ['mini_market.json', 'mini_visits.csv', 'mini_scenario.json']) {
    fs.copyFileSync(path.join(ROOT, 'tests', 'fixtures', f), path.join(dataDir, f));
  }
  Object.assign(process.env, {
    REDIS_URL: redis.url,
    TARIFFSIM_STORAGE: storageDir,
    TARIFFSIM_DATA_DIR: dataDir,
    TARIFFSIM_CHUNK_BUDGET: '3',
    TARIFFSIM_RETRY_DELAYS_MS: '5,10',
    TARIFFSIM_FAIL_CHUNKS: 'msg-failed:1:0',
    TARIFFSIM_DEBUG_HOOKS: '1',
    TARIFFSIM_LOG_LEVEL: 'FATAL',
  });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  // A listener of its own, as another language's client would be: raw text off Redis.
  const { createClient } = require('redis');
  listener = createClient({ url: redis.url });
  await listener.connect();
  await listener.pSubscribe('tariffsim:*', (text, channel) => {
    heard.push({ channel, text });
    for (const w of waiting.splice(0)) {
      if (w.check()) w.resolve();
      else waiting.push(w);
    }
  });
  m = {
    run: require('../run-simulation').handler,
    invoke: require('../runtime/invoke'),
    runs: require('../runtime/runs'),
    pubsub: require('../runtime/pubsub'),
    storage: require('../runtime/storage').openStorage(storageDir),
  };
});

after(async () => {
  if (m) {
    await m.invoke.idle();
    await m.pubsub.closeBuses();
  }
  if (listener) await listener.quit();
  await redis.stop();
  fs.rmSync(storageDir, { recursive: true, force: true });
  fs.rmSync(dataDir, { recursive: true, force: true });
});

const context = (id) => ({ awsRequestId: id, invokedFunctionArn: 'arn:aws:lambda:eu-west-2:123456789012:function:tariffsim-run-simulation:DEV' });
const spec = (extra = {}) => ({ market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 1500, chunk_size: 250, seed: 4, page_size: 3, ...extra });
const runTopic = (runId) => `tariffsim:run-simulation:${runId}`;

test('every message of a done, a failed and a cancelled run matches its schema and topic', async () => {
  const { any, byEvent, index } = loadSchemas();

  // Done: started, planned, a chunk-done per chunk, run-done.
  const done = await m.run({ 'request-id': 'msg-done', spec: spec() }, context('msg-done'));
  assert.equal(done.status, 'started');
  await heardOn(runTopic('msg-done'), 'run-done');
  // Failed: chunk 1 fails every time (the DEV fault hook), the third failure fails the run.
  await m.run({ 'request-id': 'msg-failed', spec: spec() }, context('msg-failed'));
  await heardOn(runTopic('msg-failed'), 'run-failed');
  // Cancelled at once: a run of 400 chunks, three at a time, is far from its end.
  await m.run({ 'request-id': 'msg-cancelled', spec: spec({ sample_size: 100000 }) }, context('msg-cancelled'));
  const cancelled = await m.run({ 'request-id': 'cancel-1', cancel: 'msg-cancelled', reason: 'testing the contract' }, context('cancel-1'));
  assert.equal(cancelled.status, 'cancelled', JSON.stringify(cancelled));
  await heardOn(runTopic('msg-cancelled'), 'cancelled');
  await m.invoke.idle();

  const problems = [];
  const seen = new Map();
  for (const { channel, text } of heard) {
    let message;
    try {
      message = JSON.parse(text);
    } catch {
      problems.push(`${channel}: not JSON: ${text.slice(0, 100)}`);
      continue;
    }
    const kind = byEvent[message.event];
    if (!kind) {
      problems.push(`${channel}: event ${JSON.stringify(message.event)} has no schema`);
      continue;
    }
    seen.set(message.event, (seen.get(message.event) || 0) + 1);
    if (!kind.validate(message)) problems.push(`${channel} ${message.event}: ${JSON.stringify(kind.validate.errors)} in ${text}`);
    if (!any(message)) problems.push(`${channel} ${message.event}: not valid against message.schema.json`);
    const want = kind.topic.replace('{request-id}', message.run_id);
    if (channel !== want) problems.push(`${message.event} went out on ${channel}, its schema says ${want}`);
  }
  assert.deepEqual(problems, []);
  assert.deepEqual(PUBLISHED.filter((e) => !seen.has(e)), [], 'every message type was published and checked');
  assert.deepEqual(index['x-topics'], Object.fromEntries(EVENTS.map((e) => [e, byEvent[e].topic])), 'the index lists every topic');

  // The done run: one chunk-done per chunk, counted up to the plan's chunks.
  const ofRun = (runId) => heard.filter((h) => h.channel.endsWith(`:${runId}`)).map((h) => JSON.parse(h.text));
  const doneRun = ofRun('msg-done');
  const planned = doneRun.find((x) => x.event === 'planned');
  const chunkDone = doneRun.filter((x) => x.event === 'chunk-done');
  assert.equal(planned.chunks, 6);
  assert.deepEqual(chunkDone.map((x) => x.index).sort((a, b) => a - b), [0, 1, 2, 3, 4, 5]);
  assert.equal(Math.max(...chunkDone.map((x) => x.done)), planned.chunks);
  assert.equal(doneRun.filter((x) => x.event === 'run-done').length, 1);
  assert.equal(doneRun[0].event, 'started');
  const failed = ofRun('msg-failed').find((x) => x.event === 'run-failed');
  assert.equal(failed.chunk, 1);
});

test('the schemas refuse what breaks the contract', () => {
  const { byEvent } = loadSchemas();
  const ok = { event: 'chunk-done', run_id: 'r1', index: 0, profiles: 250, impressions: 750, compute_ms: 1.5, own_ms: 2, done: 1, chunks: 6 };
  assert.ok(byEvent['chunk-done'].validate(ok), JSON.stringify(byEvent['chunk-done'].validate.errors));
  const bad = [
    { ...ok, done: undefined },
    { ...ok, index: -1 },
    { ...ok, run_id: '../etc' },
    { ...ok, event: 'chunk_done' },
    { ...ok, surprise: true },
  ];
  for (const message of bad) assert.equal(byEvent['chunk-done'].validate(JSON.parse(JSON.stringify(message))), false, JSON.stringify(message));
  assert.equal(byEvent['run-failed'].validate({ event: 'run-failed', run_id: 'r1', reason: 'x', at: 'yesterday' }), false);
  // resumed goes out when a run's process died (the sweep): its shape, as js/runtime/scheduler.js publishes it.
  assert.ok(byEvent.resumed.validate({ event: 'resumed', run_id: 'r1', step: 'chunks', chunks: 2, done: 3, of: 6 }));
  assert.ok(byEvent.resumed.validate({ event: 'resumed', run_id: 'r1', step: 'merge' }));
  assert.equal(byEvent.resumed.validate({ event: 'resumed', run_id: 'r1', step: 'lunch' }), false);
});
