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

test('a damaged snapshot next to its JSON is never priced, and one that cannot be read is passed over', () => {
  // One bit flipped in the rates: the market still decodes, so only the checksum tells.
  const damaged = path.join(dir, 'damaged.json');
  fs.copyFileSync(sample, damaged);
  const snapshot = snapshotOfFile(sample);
  snapshot[Math.floor(snapshot.length / 2)] ^= 1;
  fs.writeFileSync(`${damaged}.snapshot`, snapshot);
  const expectedKey = withEngine(({ engine }) => engine.loadMarket(fs.readFileSync(sample)));
  const expected = price(expectedKey);
  // A fresh engine, as after a cold start (the one above already holds the key).
  const wasm = withEngine((i) => i.wasm);
  const cold = new wasm.Engine();
  const key = cold.loadMarket(fs.readFileSync(damaged), snapshot);
  assert.equal(key, expectedKey);
  assert.deepEqual([cold.stats().markets_parsed, cold.stats().markets_from_snapshot], [1, 0]);
  assert.equal(cold.priceJson(key, undefined, undefined, profiles, 5, 0, false, true), expected);
  assert.throws(() => cold.loadMarketSnapshot(snapshot), { name: 'InvalidSnapshot' });
  cold.free();
  // `<name>.json.snapshot` a folder: the JSON is parsed, no raw EISDIR.
  const folder = path.join(dir, 'folder.json');
  fs.copyFileSync(mini, folder);
  fs.mkdirSync(`${folder}.snapshot`);
  assert.equal(marketFromFile(withEngine((i) => i), folder), withEngine(({ engine }) => engine.loadMarket(fs.readFileSync(mini))));
});

test('a market folder inside the task root is looked at on every call; only bundled markets are taken as unchanged for a second', () => {
  fs.mkdirSync(path.join(ROOT, 'target'), { recursive: true });
  const inside = fs.mkdtempSync(path.join(ROOT, 'target', 'markets-in-task-root-'));
  try {
    const file = path.join(inside, 'm.json');
    const market = JSON.parse(fs.readFileSync(mini, 'utf8'));
    fs.writeFileSync(file, JSON.stringify(market));
    const first = marketFromFile(withEngine((i) => i), file);
    market.source = 'edited at once';
    fs.writeFileSync(file, JSON.stringify(market));
    const second = marketFromFile(withEngine((i) => i), file);
    assert.notEqual(second, first, 'the edit shows on the next call');
    market.source = 'edited again';
    fs.writeFileSync(file, JSON.stringify(market));
    // As a bundled market (read-only in Lambda) the same file is not looked at again so soon.
    const bundled = marketFromFile(withEngine((i) => i), file, true);
    market.source = 'edited a third time';
    fs.writeFileSync(file, JSON.stringify(market));
    assert.equal(marketFromFile(withEngine((i) => i), file, true), bundled);
  } finally {
    fs.rmSync(inside, { recursive: true, force: true });
  }
});

test('a market file that starts with a byte-order mark gets a snapshot that is used', () => {
  const bom = path.join(dir, 'bom.json');
  fs.writeFileSync(bom, Buffer.concat([Buffer.from([0xef, 0xbb, 0xbf]), fs.readFileSync(mini)]));
  fs.writeFileSync(`${bom}.snapshot`, snapshotOfFile(bom));
  const wasm = withEngine((i) => i.wasm);
  const instance = { ...withEngine((i) => i), engine: new wasm.Engine(), files: new Map(), recent: new Map() };
  marketFromFile(instance, bom);
  assert.deepEqual([instance.engine.stats().markets_from_snapshot, instance.engine.stats().markets_parsed], [1, 0]);
  instance.engine.free();
});
