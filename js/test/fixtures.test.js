'use strict';
// Every sample event and context in tests/fixtures/lambda is valid JSON, and every event gives the
// outcome it was written for when a handler is called with it the way Lambda calls it.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { LAMBDA_FIXTURES, FIXTURES, fixture, context, invoke } = require('./helpers');

process.env.TARIFFSIM_DATA_DIR = FIXTURES;
process.env.TARIFFSIM_DEBUG_HOOKS = '1'; // price-debug-panic.json
process.env.TARIFFSIM_OUT_DIR = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-fixtures-'));
const price = require('../price').handler;
const simulateChunk = require('../simulate-chunk').handler;

const EXPECTED = {
  'price-sample.json': [price, null],
  'price-hypothetical.json': [price, null],
  'price-inline-market.json': [price, null],
  'price-unknown-region.json': [price, 'UnknownRegion'],
  'price-bad-shape.json': [price, 'InvalidRequest'],
  'price-unknown-market.json': [price, 'UnknownMarket'],
  'price-debug-panic.json': [price, 'WasmTrap'],
  'simulate-chunk-mini.json': [simulateChunk, null],
  'simulate-chunk-no-such-chunk.json': [simulateChunk, 'NoSuchChunk'],
  'simulate-chunk-escape.json': [simulateChunk, 'InvalidReference'],
};

test('every fixture is JSON and round-trips', () => {
  for (const name of fs.readdirSync(LAMBDA_FIXTURES)) {
    const text = fs.readFileSync(path.join(LAMBDA_FIXTURES, name), 'utf8');
    const value = JSON.parse(text);
    assert.deepEqual(JSON.parse(JSON.stringify(value)), value, name);
  }
});

test('every event fixture is covered here', () => {
  const events = fs.readdirSync(LAMBDA_FIXTURES).filter((n) => !n.startsWith('context-'));
  assert.deepEqual(events.sort(), Object.keys(EXPECTED).sort());
});

test('contexts carry what the handlers read', () => {
  for (const name of fs.readdirSync(LAMBDA_FIXTURES).filter((n) => n.startsWith('context-'))) {
    const ctx = fixture(name);
    assert.match(ctx.invokedFunctionArn, /^arn:aws:lambda:[a-z0-9-]+:\d{12}:function:[A-Za-z0-9_-]+(:[A-Za-z0-9$_-]+)?$/, name);
    assert.match(ctx.awsRequestId, /^[0-9a-f-]{36}$/, name);
  }
});

for (const [name, [handler, expected]] of Object.entries(EXPECTED)) {
  test(`${name} -> ${expected || 'a result'}`, async () => {
    const { result, error } = await invoke(handler, fixture(name), context('context-dev.json'));
    if (expected === null) {
      assert.equal(error, undefined, error && `${error.name}: ${error.message}`);
      assert.ok(result && typeof result === 'object');
      assert.doesNotThrow(() => JSON.stringify(result));
    } else {
      assert.ok(error instanceof Error);
      assert.equal(error.name, expected);
    }
  });
}
