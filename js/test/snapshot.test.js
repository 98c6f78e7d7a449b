'use strict';
// Market snapshots spare a cold start the JSON parse; they must never change an answer.
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { withEngine, marketFromFile } = require('../runtime/engine');
const { snapshotOfFile } = require('../tools/snapshot');
const { FIXTURES, ROOT } = require('./helpers');

const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-snapshots-'));
const mini = path.join(FIXTURES, 'mini_market.json');
const sample = path.join(ROOT, 'data', 'sample', 'market.json');
const stats = () => withEngine(({ engine }) => engine.stats());
const profiles = Buffer.from(JSON.stringify([{ region: 'C', current_supplier: 'Alpha Energy' }, { region: 'A', fuel: 'electricity', meter: 'economy7' }]));
const price = (key) => withEngine(({ engine }) => engine.priceJson(key, undefined, undefined, profiles, 5, 0, false, true));

test('a snapshot shipped alone is the market, under the key of the JSON it came from', () => {
  const expectedKey = withEngine(({ engine }) => engine.loadMarket(fs.readFileSync(sample)));
  const expected = price(expectedKey);
  fs.writeFileSync(path.join(dir, 'sample.json.snapshot'), snapshotOfFile(sample));
  assert.equal(marketFromFile(withEngine((i) => i), path.join(dir, 'sample.json')), expectedKey);
  assert.equal(price(expectedKey), expected);
});

test('decoding a snapshot gives the same answers as parsing the JSON', () => {
  const miniKey = withEngine(({ engine }) => engine.loadMarket(fs.readFileSync(mini)));
  const parsed = price(miniKey);
  // A second engine instance, as after a cold start: only the snapshot.
  const wasm = withEngine((i) => i.wasm);
  const cold = new wasm.Engine();
  const key = cold.loadMarketSnapshot(snapshotOfFile(mini));
  assert.equal(key, miniKey);
  assert.equal(cold.stats().markets_from_snapshot, 1);
  assert.equal(cold.stats().markets_parsed, 0);
  assert.equal(cold.priceJson(key, undefined, undefined, profiles, 5, 0, false, true), parsed);
  cold.free();
});

test('a stale snapshot next to its JSON is ignored; a damaged one alone is a typed error', () => {
  const both = path.join(dir, 'edited.json');
  const market = JSON.parse(fs.readFileSync(mini, 'utf8'));
  market.source = 'edited after the snapshot was made';
  fs.writeFileSync(both, JSON.stringify(market));
  fs.writeFileSync(`${both}.snapshot`, snapshotOfFile(mini));
  const before = stats();
  const key = marketFromFile(withEngine((i) => i), both);
  assert.equal(stats().markets_parsed, before.markets_parsed + 1, 'the JSON was parsed');
  assert.equal(stats().markets_from_snapshot, before.markets_from_snapshot);
  assert.equal(key, withEngine(({ engine }) => engine.loadMarket(Buffer.from(JSON.stringify(market)))));
  fs.writeFileSync(path.join(dir, 'broken.json.snapshot'), Buffer.from('not a snapshot'));
  assert.throws(() => marketFromFile(withEngine((i) => i), path.join(dir, 'broken.json')), { name: 'InvalidSnapshot' });
});
