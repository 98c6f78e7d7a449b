'use strict';
// Payload fuzz for every lambda (price, run-simulation, filter-population, simulate-chunk), over
// plain REST and the Lambda Invoke API of the development server: the fixtures of
// tests/fixtures/lambda mutated by fast-check (a value replaced by an odd one, a field removed or
// added, the JSON text cut or spoiled, nesting piled up, numbers beyond 2^53). For every case:
//
//   - no 5xx: a status (REST) or function error type (Invoke API) the server maps to 4xx, the one
//     exception being 508 RecursionLimit, the documented guard against lambdas calling lambdas in
//     a loop (a `depth` the caller set);
//   - no trap: the wasm instance of the process is never thrown away;
//   - the next valid call answers as it did before the fuzz.
//
// Bounded and reproducible: a fixed number of cases per lambda and interface
// (TARIFFSIM_FUZZ_RUNS, default 100) from a fixed seed (TARIFFSIM_FUZZ_SEED); a failure prints
// the seed and the path that replays it. Cases tried and their outcomes are printed as
// diagnostics.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const http = require('node:http');
const os = require('node:os');
const path = require('node:path');
const fc = require('fast-check');
const { FIXTURES, LAMBDA_FIXTURES, fixture } = require('./helpers');

const SEED = Number(process.env.TARIFFSIM_FUZZ_SEED || 1302);
const RUNS = Number(process.env.TARIFFSIM_FUZZ_RUNS || 100);
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-fuzz-'));
const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-fuzz-out-'));
let app;
let port;
let engine;
let statusOf;

/** The fan-out run every run-simulation, filter-population and run-mode chunk case refers to. */
const RUN_ID = 'fuzz-run';
const SPEC = fixture('simulate-chunk-mini.json').spec;

before(async () => {
  Object.assign(process.env, {
    TARIFFSIM_STORAGE: storageDir,
    TARIFFSIM_OUT_DIR: outDir,
    TARIFFSIM_DATA_DIR: FIXTURES,
    TARIFFSIM_LOG_LEVEL: 'FATAL',
  });
  delete process.env.TARIFFSIM_DEBUG_HOOKS;
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env.REDIS_URL;
  const server = require('../server/server');
  statusOf = server.statusOf;
  engine = require('../runtime/engine');
  app = server.buildServer();
  const endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  port = Number(new URL(endpoint).port);
  // The run the fan-out cases name, started and finished before the fuzz.
  const started = await send('rest', 'run-simulation', JSON.stringify({ 'request-id': RUN_ID, spec: SPEC }));
  assert.equal(started.status, 200, started.text);
  const { watchRun } = require('../runtime/runs');
  const { openStorage } = require('../runtime/storage');
  const { openBus } = require('../runtime/pubsub');
  const final = /** @type {{status: string}} */ (await watchRun({ storage: openStorage(storageDir), bus: openBus(null), runId: RUN_ID, pollMs: 50, timeoutMs: 60000 }));
  assert.equal(final.status, 'done', JSON.stringify(final));
});

after(async () => {
  await require('../runtime/invoke').idle();
  await app.close();
  fs.rmSync(storageDir, { recursive: true, force: true });
  fs.rmSync(outDir, { recursive: true, force: true });
});

const keepAlive = new http.Agent({ keepAlive: true, maxSockets: 1 });

/** One call: over REST (`POST /lambdas/<name>`) or the Invoke API, the body sent as given. */
function send(via, name, body) {
  const urlPath = via === 'rest' ? `/lambdas/${name}` : `/2015-03-31/functions/tariffsim-${name}/invocations`;
  const headers = { 'content-type': via === 'rest' ? 'application/json' : 'application/octet-stream', 'content-length': Buffer.byteLength(body) };
  return new Promise((resolve, reject) => {
    const req = http.request({ host: '127.0.0.1', port, method: 'POST', path: urlPath, headers, agent: keepAlive }, (res) => {
      const chunks = [];
      res.on('data', (c) => chunks.push(c));
      res.on('end', () => {
        const text = Buffer.concat(chunks).toString('utf8');
        let json;
        try {
          json = JSON.parse(text);
        } catch {
          json = undefined;
        }
        resolve({ status: res.statusCode, headers: res.headers, text, json });
      });
    });
    req.on('error', reject);
    req.end(body);
  });
}

// --- the mutations -----------------------------------------------------------------------------

/** A number written into the JSON text as is (JavaScript could not hold it exactly). */
const raw = (text) => `@@raw:${text}@@`;
const RAW_NUMBERS = ['9223372036854775808', '9007199254740993', '18446744073709551616', '-9223372036854775809', '1e400', '-1e400', '1e-400', '123456789012345678901234567890', '0.1e1', '-0'];
const deepValue = (n) => raw('['.repeat(n) + ']'.repeat(n));
/** @type {unknown[]} */
const NASTY = [
  null, true, false, 0, -1, 1, 0.5, -0.5, 2 ** 31, 2 ** 32 + 1, 2 ** 53 - 1, 1e308, -1e308, 5e-324,
  '', ' ', 'constructor', '__proto__', 'toString', 'hasOwnProperty', 'prototype', '%25', '%', '..', '../../Cargo.toml', '/etc/passwd',
  'mini_market.json', 'mini_visits.csv', 'mini_run.json', 'bad', 'lambda', 'sample', 'C', 'Z', 'dual_fuel', 'PROD', RUN_ID,
  '\u0000', '\ud800', '\u202e', 'é', 'x'.repeat(300), 'y'.repeat(70000), [], {}, [[[]]], [null], { __proto__: null, constructor: 1 },
];
/** Values a field may well hold, for tweaks that keep a payload plausible and reach the core. */
const DOMAIN = ['A', 'C', 'P', 'electricity', 'gas', 'dual_fuel', 'single_rate', 'economy7', 'direct_debit', 'prepayment', 'on_receipt_of_bill', 'fixed', 'variable', 'British Gas', 'Octopus Energy', 'octopus-energy-svt', '2026-07-01', '2026-02-30', '1999-01-01T00:00:00Z', 'mini_scenario.json', 'sample'];
const FACTORS = [0, -1, 0.001, 0.5, 2, 10, 1000, 1e6];
const KEYS = ['depth', 'request-id', 'requestId', 'spec', 'index', 'run_id', 'market', 'profile', 'profiles', 'page_size', 'scenario', 'hypothetical_tariffs', 'inline_impressions', 'debug_panic', '__proto__', 'constructor', 'sample_size', 'chunk_size', 'seed', 'filter', 'changes', 'region', 'tariffs'];

const nasty = fc.oneof(
  { weight: 6, arbitrary: fc.constantFrom(...NASTY) },
  { weight: 2, arbitrary: fc.string({ maxLength: 12 }) },
  { weight: 2, arbitrary: fc.integer({ min: -1000, max: 100000 }) },
  { weight: 2, arbitrary: fc.double({ min: -1e7, max: 1e7, noNaN: true }) },
  { weight: 2, arbitrary: fc.jsonValue({ maxDepth: 3 }) },
  { weight: 2, arbitrary: fc.constantFrom(...RAW_NUMBERS).map(raw) },
  { weight: 1, arbitrary: fc.constantFrom(63, 64, 65, 200, 10000).map(deepValue) },
);

const mutation = fc.oneof(
  { weight: 4, arbitrary: fc.record({ kind: fc.constant('tweak'), at: fc.nat(), pick: fc.nat() }) },
  { weight: 6, arbitrary: fc.record({ kind: fc.constant('replace'), at: fc.nat(), value: nasty }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('delete'), at: fc.nat() }) },
  { weight: 2, arbitrary: fc.record({ kind: fc.constant('add'), at: fc.nat(), key: fc.oneof(fc.constantFrom(...KEYS), fc.string({ maxLength: 6 })), value: nasty }) },
  { weight: 1, arbitrary: fc.record({ kind: fc.constant('wrap'), at: fc.nat(), inArray: fc.boolean() }) },
  {
    weight: 3,
    arbitrary: fc.record({
      kind: fc.constant('text'),
      op: fc.constantFrom('truncate', 'insert', 'delete-char', 'bom', 'garbage', 'empty', 'top-level', 'duplicate-key'),
      at: fc.nat(),
      chars: fc.constantFrom('{', '}', '[', ']', ',', ':', '"', '\\', '0', '-', 'e', ' ', '\u0000', 'null', '\u00e9', '\ufeff'),
    }),
  },
);

/** Every path into a JSON value, the root ([]) first. */
function pathsOf(value, at = [], out = []) {
  out.push(at);
  if (Array.isArray(value)) value.forEach((v, i) => pathsOf(v, [...at, i], out));
  else if (value !== null && typeof value === 'object') for (const k of Object.keys(value)) pathsOf(value[k], [...at, k], out);
  return out;
}

function setAt(root, at, value) {
  if (at.length === 0) return value;
  let parent = root;
  for (const k of at.slice(0, -1)) parent = parent[k];
  parent[at[at.length - 1]] = value;
  return root;
}

function getAt(root, at) {
  return at.reduce((v, k) => v[k], root);
}

/** `base` with one mutation, as the JSON text sent. */
function apply(base, m) {
  let value = structuredClone(base);
  const paths = pathsOf(value);
  const at = paths[m.at % paths.length];
  if (m.kind === 'replace') value = setAt(value, at, m.value);
  else if (m.kind === 'delete') {
    if (at.length === 0) value = {};
    else {
      const parent = getAt(value, at.slice(0, -1));
      if (Array.isArray(parent)) parent.splice(at[at.length - 1], 1);
      else delete parent[at[at.length - 1]];
    }
  } else if (m.kind === 'add') {
    const objects = paths.filter((p) => {
      const v = getAt(value, p);
      return v !== null && typeof v === 'object' && !Array.isArray(v);
    });
    if (objects.length === 0) value = {};
    const target = objects.length === 0 ? value : getAt(value, objects[m.at % objects.length]);
    Object.defineProperty(target, m.key, { value: m.value, enumerable: true, writable: true, configurable: true });
  } else if (m.kind === 'tweak') {
    // A value of the same kind: a number scaled, a string from the domain, a boolean flipped.
    const v = getAt(value, at);
    if (typeof v === 'number') value = setAt(value, at, v * FACTORS[m.pick % FACTORS.length] + (m.pick % 3 === 0 ? 1 : 0));
    else if (typeof v === 'string') value = setAt(value, at, DOMAIN[m.pick % DOMAIN.length]);
    else if (typeof v === 'boolean') value = setAt(value, at, !v);
    else if (Array.isArray(v) && v.length > 0) value = setAt(value, at, m.pick % 2 === 0 ? [] : [...v, ...v]);
  } else if (m.kind === 'wrap') {
    const v = getAt(value, at);
    value = setAt(value, at, m.inArray ? [v] : { value: v });
  }
  let text = JSON.stringify(value).replace(/"@@raw:([^@]*)@@"/g, '$1');
  if (m.kind === 'text') {
    const i = text.length === 0 ? 0 : m.at % text.length;
    if (m.op === 'truncate') text = text.slice(0, i);
    else if (m.op === 'insert') text = text.slice(0, i) + m.chars + text.slice(i);
    else if (m.op === 'delete-char') text = text.slice(0, i) + text.slice(i + 1);
    else if (m.op === 'bom') text = `\ufeff${text}`;
    else if (m.op === 'garbage') text = `${text}${m.chars}`;
    else if (m.op === 'empty') text = m.at % 2 === 0 ? '' : '   ';
    else if (m.op === 'top-level') text = ['[]', '"text"', '42', 'null', 'true', `[${text}]`][m.at % 6];
    else if (m.op === 'duplicate-key') text = text.replace(/^\{/, `{"${KEYS[m.at % KEYS.length]}": ${JSON.stringify(m.chars)}, `);
  }
  return text;
}

// --- the lambdas -------------------------------------------------------------------------------

const byName = (prefix) =>
  fs
    .readdirSync(LAMBDA_FIXTURES)
    .filter((f) => f.startsWith(prefix))
    .sort()
    .map((f) => fixture(f));

/**
 * Per lambda: the payloads mutated, the valid call made after every case and what it must answer,
 * and `tame`, which keeps a case from starting an unbounded run (a run-simulation case changing
 * its spec keeps the fuzz run's id, so a valid but different spec is RunExists, never a new run).
 */
const LAMBDAS = {
  price: {
    bases: byName('price-'),
    valid: fixture('price-sample.json'),
    same: (a, b) => assert.deepEqual(a, b),
  },
  'simulate-chunk': {
    bases: [...byName('simulate-chunk-'), { run_id: RUN_ID, index: 1 }],
    valid: fixture('simulate-chunk-mini.json'),
    same: (a, b) => {
      assert.equal(a.impressions_csv, b.impressions_csv);
      assert.deepEqual(a.summary, b.summary);
    },
  },
  'run-simulation': {
    bases: [
      { 'request-id': RUN_ID, spec: SPEC },
      { 'request-id': RUN_ID, spec: SPEC, depth: 0 },
    ],
    valid: { 'request-id': RUN_ID, spec: SPEC },
    same: (a, b) => assert.deepEqual(a, b),
    oneMutation: true,
  },
  'filter-population': {
    bases: [{ run_id: RUN_ID }, { run_id: RUN_ID, 'request-id': 'fuzz-filter', depth: 1 }],
    valid: { run_id: RUN_ID },
    same: (a, b) => assert.deepEqual(a, b),
  },
};

/** A typed outcome, or throws when the case broke a rule. */
function outcome(res, via) {
  if (via === 'rest') {
    if (res.status === 200) return '200';
    const type = res.json && res.json.errorType;
    assert.ok(typeof type === 'string', `an error without a type: ${res.status} ${res.text.slice(0, 300)}`);
    assert.notEqual(type, 'WasmTrap', res.text);
    if (res.status === 508) assert.equal(type, 'RecursionLimit');
    else assert.ok(res.status >= 400 && res.status < 500, `${res.status} ${res.text.slice(0, 500)}`);
    return `${res.status} ${type}`;
  }
  if (res.status !== 200) {
    assert.ok(res.status >= 400 && res.status < 500, `${res.status} ${res.text.slice(0, 500)}`);
    return `${res.status} ${res.headers['x-amzn-errortype']}`;
  }
  if (res.headers['x-amz-function-error'] === undefined) return '200';
  const type = res.json.errorType;
  assert.notEqual(type, 'WasmTrap', res.text);
  const status = statusOf({ name: type });
  assert.ok((status >= 400 && status < 500) || type === 'RecursionLimit', `function error ${type} (${status}): ${res.text.slice(0, 500)}`);
  return `error ${type}`;
}

const tally = [];

for (const [name, lambda] of Object.entries(LAMBDAS)) {
  for (const via of ['rest', 'invoke']) {
    test(`fuzz ${name} over ${via === 'rest' ? 'REST' : 'the Invoke API'}: no 5xx, no trap, the next valid call answers`, async (t) => {
      const reference = await send(via, name, JSON.stringify(lambda.valid));
      assert.equal(reference.status, 200, reference.text);
      assert.equal(reference.headers['x-amz-function-error'], undefined, reference.text);
      const generation = engine.generation();
      const outcomes = new Map();
      let cases = 0;
      const caseArb = fc.record({
        base: fc.nat({ max: lambda.bases.length - 1 }),
        mutations: fc.array(mutation, { minLength: 1, maxLength: lambda.oneMutation ? 1 : 2 }),
      });
      await fc.assert(
        fc.asyncProperty(caseArb, async ({ base, mutations }) => {
          let value = lambda.bases[base];
          let text = JSON.stringify(value);
          for (const m of mutations) {
            text = apply(value, m);
            try {
              value = JSON.parse(text);
              // A value piled up too deep for this harness's own recursion is mutated no further.
              // (Required here, not at the top: the runtime reads its configuration once, in before().)
              require('../runtime/wrap-handler').checkJsonValue(value, 'the case', 200);
            } catch (e) {
              if (e.name === 'NestingTooDeep') break;
              value = {};
            }
          }
          cases += 1;
          const res = await send(via, name, text);
          const got = outcome(res, via);
          outcomes.set(got, (outcomes.get(got) || 0) + 1);
          assert.equal(engine.generation(), generation, `the wasm instance was discarded: ${res.text.slice(0, 500)}`);
          const next = await send(via, name, JSON.stringify(lambda.valid));
          assert.equal(next.status, 200, next.text);
          assert.equal(next.headers['x-amz-function-error'], undefined, next.text);
          lambda.same(next.json, reference.json);
        }),
        { seed: SEED, numRuns: RUNS, endOnFailure: false },
      );
      const counts = Object.fromEntries([...outcomes.entries()].sort((a, b) => b[1] - a[1]));
      tally.push({ lambda: name, via, cases, counts });
      t.diagnostic(`${name} via ${via}: ${cases} cases (seed ${SEED}): ${JSON.stringify(counts)}`);
    });
  }
}

test('fuzz totals', (t) => {
  const total = tally.reduce((n, x) => n + x.cases, 0);
  const ok = tally.reduce((n, x) => n + (x.counts['200'] || 0), 0);
  t.diagnostic(`lambda payload fuzz: ${total} cases over ${tally.length} lambda x interface pairs, seed ${SEED}: ${ok} answered 200, ${total - ok} typed client errors, 0 5xx (508 RecursionLimit counted apart), 0 traps`);
  assert.equal(tally.length, Object.keys(LAMBDAS).length * 2);
});
