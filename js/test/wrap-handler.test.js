'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { wrapHandler } = require('../runtime/wrap-handler');
const { loadConfig, LAMBDA_PAYLOAD_LIMIT } = require('../runtime/config');
const { createLogger } = require('../runtime/logging');
const { typed } = require('../runtime/errors');
const { context } = require('./helpers');

function harness(work, env = {}) {
  const lines = [];
  const logger = createLogger({ write: (t) => lines.push(t) });
  const handler = wrapHandler('echo', work, { config: loadConfig(env), logger });
  return { handler, lines };
}

const echo = (input, request) => ({ input, env: request.env.name, requestId: request.requestId, lambda: request.lambda });

test('decodes an object, JSON text and JSON bytes alike', async () => {
  const { handler } = harness(echo);
  const ctx = context();
  for (const event of [{ a: 1 }, '{"a":1}', Buffer.from('{"a":1}'), new TextEncoder().encode('{"a":1}')]) {
    const out = await handler(event, ctx);
    assert.deepEqual(out.input, { a: 1 });
  }
  assert.deepEqual((await handler(null, ctx)).input, {});
});

test('binds the environment from the alias and the request id from the input', async () => {
  const { handler, lines } = harness(echo);
  assert.equal((await handler({}, context('context-prod.json'))).env, 'PROD');
  assert.equal((await handler({}, context('context-staging.json'))).env, 'STAGING');
  assert.equal((await handler({}, context('context-unqualified.json'))).env, 'DEV');
  const out = await handler({ 'request-id': 'web-1' }, context('context-prod.json'));
  assert.equal(out.requestId, 'web-1');
  assert.equal((await handler({}, context('context-prod.json'))).requestId, '6f1c2b8e-0c1d-4a5e-9f00-000000000003');
  assert.match(lines.at(-2), /^\S+ \[PROD\]\[web-1\]\[INFO\] -- echo done in \d+\.\d\d ms\n$/);
});

test('input that is not a JSON object is a typed error', async () => {
  const { handler } = harness(echo);
  await assert.rejects(handler('{"a":', context()), { name: 'InvalidJson' });
  await assert.rejects(handler('[1,2]', context()), { name: 'InvalidRequest' });
  await assert.rejects(handler('"text"', context()), { name: 'InvalidRequest' });
  await assert.rejects(handler(42, context()), { name: 'InvalidRequest' });
});

test('a payload over 6 MB is refused before any work', async () => {
  let worked = false;
  const { handler } = harness(() => { worked = true; });
  const big = `{"blob":"${'x'.repeat(LAMBDA_PAYLOAD_LIMIT)}"}`;
  await assert.rejects(handler(big, context()), { name: 'PayloadTooLarge' });
  await assert.rejects(handler(Buffer.from(big), context()), { name: 'PayloadTooLarge' });
  await assert.rejects(handler({ blob: 'é'.repeat(LAMBDA_PAYLOAD_LIMIT / 2 + 1) }, context()), { name: 'PayloadTooLarge' });
  assert.equal(worked, false);
  const { handler: fine } = harness((input) => input.blob.length);
  const justUnder = { blob: 'x'.repeat(LAMBDA_PAYLOAD_LIMIT - 20) };
  assert.equal(await fine(justUnder, context()), LAMBDA_PAYLOAD_LIMIT - 20);
});

test('a result over 6 MB is a typed error, not a runtime failure', async () => {
  const { handler } = harness(() => ({ blob: 'x'.repeat(LAMBDA_PAYLOAD_LIMIT) }));
  await assert.rejects(handler({}, context()), { name: 'ResponseTooLarge' });
});

test('errors are logged with their stack and rethrown as they are, name intact', async () => {
  const thrown = typed('UnknownRegion', 'profiles[0].region: unknown region "Z"');
  const { handler, lines } = harness(() => { throw thrown; });
  const err = await handler({ requestId: 'r-9' }, context('context-staging.json')).then(() => null, (e) => e);
  assert.equal(err, thrown);
  assert.equal(err.name, 'UnknownRegion');
  const record = lines.at(-1);
  assert.match(record, /^\S+ \[STAGING\]\[r-9\]\[ERROR\] -- echo failed after \d+\.\d\d ms\nUnknownRegion: profiles\[0\]\.region: unknown region "Z"\n {4}at /);
});

test('async work and non-Error throws', async () => {
  const { handler } = harness(async (input) => { await new Promise((r) => setImmediate(r)); return input.x * 2; });
  assert.equal(await handler({ x: 21 }, context()), 42);
  const { handler: bad } = harness(() => { throw 'a string'; }); // eslint-disable-line no-throw-literal
  await assert.rejects(bad({}, context()), (e) => e instanceof Error && e.name === 'InternalError');
});

test('configuration follows the alias: NAME_<ENV> wins over NAME', () => {
  const cfg = loadConfig({ TARIFFSIM_MARKETS_DIR: '/srv/markets', TARIFFSIM_MARKETS_DIR_PROD: '/srv/prod-markets', TARIFFSIM_MAX_PROFILES_STAGING: '5' });
  assert.equal(cfg.forEnvironment('DEV').marketsDir, '/srv/markets');
  assert.equal(cfg.forEnvironment('PROD').marketsDir, '/srv/prod-markets');
  assert.equal(cfg.forEnvironment('STAGING').maxProfiles, 5);
  assert.equal(cfg.forEnvironment('PROD').maxProfiles, 100);
  // Fault injection is opt-in, and DEV-only even then.
  assert.equal(cfg.forEnvironment('DEV').debugHooks, false);
  assert.equal(loadConfig({ TARIFFSIM_DEBUG_HOOKS: '1' }).forEnvironment('DEV').debugHooks, true);
  assert.equal(loadConfig({ TARIFFSIM_DEBUG_HOOKS: '1' }).forEnvironment('PROD').debugHooks, false);
  assert.equal(loadConfig({ TARIFFSIM_DEBUG_HOOKS: 'yes' }).forEnvironment('DEV').debugHooks, false);
  assert.equal(cfg.forEnvironment('nonsense').environment, 'DEV');
  assert.equal(loadConfig({}).forEnvironment('DEV').builtinMarkets.sample.endsWith('data/sample/market.json'), true);
  assert.equal(loadConfig({ AWS_LAMBDA_LOG_FORMAT: 'JSON' }).logFormat, 'json');
  assert.equal(loadConfig({ AWS_LAMBDA_FUNCTION_NAME: 'f' }).lineBreak, '\r');
  // A bad value is refused when its environment's settings are first asked for.
  const many = loadConfig({ TARIFFSIM_MAX_PROFILES: 'many' });
  assert.throws(() => many.forEnvironment('PROD'), (/** @type {Error} */ e) => e.name === 'InvalidConfig' && /TARIFFSIM_MAX_PROFILES=many/.test(e.message));
});

test('a setting with a bad value is a typed InvalidConfig for that environment only, logged', async () => {
  // Each environment's settings are made on its first request: a bad value for one alias fails
  // that alias's requests with a clear error, not the init of every lambda of the function.
  const { handler, lines } = harness(echo, { TARIFFSIM_MAX_DEPTH_PROD: 'eight' });
  assert.equal((await handler({}, context('context-staging.json'))).env, 'STAGING');
  await assert.rejects(handler({}, context('context-prod.json')), (/** @type {Error} */ e) => e.name === 'InvalidConfig' && e.message === 'TARIFFSIM_MAX_DEPTH_PROD=eight: give a whole number from 1');
  assert.match(lines.at(-1), /\[PROD\]\[6f1c2b8e-0c1d-4a5e-9f00-000000000003\]\[ERROR\] -- echo failed after [\d.]+ ms\nInvalidConfig: TARIFFSIM_MAX_DEPTH_PROD=eight/);
  // and again on the next request: nothing half-made is kept
  await assert.rejects(handler({}, context('context-prod.json')), (/** @type {Error} */ e) => e.name === 'InvalidConfig');
});

test('a bad setting is named where it was given: the variable for the alias, or the file and its key, never by absolute path', () => {
  const fs = require('node:fs');
  const os = require('node:os');
  const path = require('node:path');
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-config-'));
  try {
    const file = path.join(dir, 'environments.json');
    fs.writeFileSync(file, JSON.stringify({ environments: { PROD: { maxProfiles: 'x', retryDelaysMs: [50, 0] } } }));
    const cfg = loadConfig({ TARIFFSIM_CONFIG_FILE: file });
    assert.throws(() => cfg.forEnvironment('PROD'), (/** @type {Error} */ e) => e.name === 'InvalidConfig' && e.message === '$TARIFFSIM_CONFIG_FILE PROD.maxProfiles=x: give a whole number from 1');
    // A variable wins over the file, and is named when it is the one at fault.
    const over = loadConfig({ TARIFFSIM_CONFIG_FILE: file, TARIFFSIM_MAX_PROFILES: '5' });
    assert.throws(() => over.forEnvironment('PROD'), (/** @type {Error} */ e) => e.message === '$TARIFFSIM_CONFIG_FILE PROD.retryDelaysMs=0: give a whole number from 1');
    assert.throws(() => loadConfig({ TARIFFSIM_MAX_PROFILES: 'many' }).forEnvironment('STAGING'), (/** @type {Error} */ e) => e.message === 'TARIFFSIM_MAX_PROFILES=many: give a whole number from 1');
    // A file that cannot be read or parsed: named without its absolute path.
    fs.writeFileSync(file, '{"environments": ');
    assert.throws(() => loadConfig({ TARIFFSIM_CONFIG_FILE: file }), (/** @type {Error} */ e) => e.name === 'InvalidConfig' && e.message.startsWith('$TARIFFSIM_CONFIG_FILE is not JSON: ') && !e.message.includes(dir));
    assert.throws(() => loadConfig({ TARIFFSIM_CONFIG_FILE: path.join(dir, 'none.json') }), (/** @type {Error} */ e) => e.message === '$TARIFFSIM_CONFIG_FILE cannot be read (ENOENT)');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});

test('an object input over the payload limit is refused however its numbers are written', async () => {
  // 250,000 numbers of 25 characters (the longest JavaScript writes) and their commas: 6.5 MB.
  const { handler } = harness(echo);
  const numbers = Array(250_000).fill(-0.0000012345678901234567);
  assert.equal(JSON.stringify(-0.0000012345678901234567).length, 25);
  await assert.rejects(handler({ numbers }, context()), (/** @type {Error} */ e) => e.name === 'PayloadTooLarge');
});

test('an in-process caller\'s values JSON cannot hold are typed errors naming the field', async () => {
  const { handler } = harness(echo);
  for (const [input, message] of [
    [{ seed: 10n }, 'seed is a bigint, which JSON cannot hold'],
    [{ profile: { region: () => 'C' } }, 'profile.region is a function, which JSON cannot hold'],
    [{ list: [1, Symbol('x')] }, 'list[1] is a symbol, which JSON cannot hold'],
    [{ page_size: NaN }, 'page_size is NaN, which JSON cannot hold: give a number'],
    [{ elec_kwh: -Infinity }, 'elec_kwh is a number too large for a double (it reads as -Infinity): give a finite number'],
  ]) {
    await assert.rejects(handler(input, context()), (/** @type {Error} */ e) => e.name === 'InvalidRequest' && e.message === message);
  }
  // undefined is left out, as JSON.stringify leaves it.
  assert.deepEqual((await handler({ a: 1, b: undefined }, context())).input, { a: 1, b: undefined });
});
