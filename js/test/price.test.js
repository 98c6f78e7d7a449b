'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fixture, context, invoke, FIXTURES, ROOT } = require('./helpers');

// STAGING reads stored markets from its own folder (configuration per alias); DEV and PROD use
// the bundled sample market.
const stagingMarkets = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-markets-'));
fs.copyFileSync(path.join(FIXTURES, 'mini_market.json'), path.join(stagingMarkets, 'mini.json'));
process.env.TARIFFSIM_MARKETS_DIR_STAGING = stagingMarkets;
// The fault injection (debug_panic) is opt-in.
process.env.TARIFFSIM_DEBUG_HOOKS = '1';

const { handler } = require('../price');
const engine = require('../runtime/engine');

// The price lambda's own module (tariffsim-wasm/pkg-price).
const stats = () => engine.withEngine((i) => i.engine.stats(), 'price');

async function ok(event, ctx = context()) {
  const { result, error, output } = await invoke(handler, event, ctx);
  if (error) assert.fail(`expected a result, got ${error.name}: ${error.message}\n${output}`);
  return { result, output };
}

async function fails(event, name, ctx = context()) {
  const { error, output } = await invoke(handler, event, ctx);
  assert.ok(error, `expected ${name}, got a result for ${JSON.stringify(event).slice(0, 200)}`);
  assert.ok(error instanceof Error, 'a real Error');
  assert.equal(error.name, name, error.message);
  assert.match(output, /\[ERROR\] -- price failed after/);
  assert.ok(output.includes(`${name}: ${error.message.split('\n')[0]}`), 'the log has the stack headed by name and message');
  return error;
}

test('nothing but the handler, its runtime folder, the lambdas\' list and the lean wasm module is loaded on the sync path', () => {
  const loaded = Object.keys(require.cache).filter((f) => !f.startsWith(path.join(ROOT, 'js', 'test')));
  // The price build (pkg-price), never the full one (pkg).
  // config/functions.json is required as data (the esbuild bundle of the zip carries it).
  const allowed = (f) => f.startsWith(path.join(ROOT, 'js') + path.sep) || f === path.join(ROOT, 'tariffsim-wasm', 'pkg-price', 'tariffsim_price.js') || f === path.join(ROOT, 'config', 'functions.json');
  assert.deepEqual(loaded.filter((f) => !allowed(f)), []);
  assert.ok(!loaded.some((f) => f.includes('node_modules')));
});

test('prices the sample market: a ranked first page with costs and savings', async () => {
  const { result, output } = await ok(fixture('price-sample.json'), context('context-prod.json'));
  assert.match(output, /\[PROD\]\[web-7f3a9c\]\[INFO\] -- price done in/);
  assert.equal(result.market.as_of.length, 10);
  assert.match(result.market.key, /^m-[0-9a-f]{32}$/);
  assert.equal(result.results.length, 1);
  const [table] = result.results;
  assert.equal(table.visit_id, 'v-london-dd');
  assert.equal(table.rows.length, Math.min(10, table.eligible));
  assert.ok(table.eligible > 10, 'London dual fuel direct debit has more than a page of tariffs');
  assert.equal(typeof table.current_cost_gbp, 'number', 'British Gas has a variable tariff in London');
  table.rows.forEach((row, i) => {
    assert.equal(row.rank, i + 1);
    if (i > 0) assert.ok(row.annual_cost_gbp >= table.rows[i - 1].annual_cost_gbp);
    assert.equal(Math.round(row.saving_gbp * 100), Math.round(table.current_cost_gbp * 100) - Math.round(row.annual_cost_gbp * 100));
    assert.ok(['fixed', 'variable'].includes(row.kind));
  });
  assert.deepEqual(table.hypothetical, []);
});

test('an inline market is priced exactly (hand-computed bills)', async () => {
  // By default the visitor's own tariff is the baseline, left off the table.
  const { result: hidden } = await ok(fixture('price-inline-market.json'));
  assert.equal(hidden.results[0].current_tariff_id, 'acme-svt');
  assert.deepEqual(hidden.results[0].rows.map((r) => r.tariff_id), ['acme-fix-12m']);
  const { result } = await ok({ ...fixture('price-inline-market.json'), show_current_tariff: true });
  const [table] = result.results;
  // acme-fix-12m: 365 x 50 + 2700 x 24 + 365 x 28 + 11500 x 6.5 = 168,020 p
  // acme-svt:     365 x 53 + 2700 x 26 + 365 x 30 + 11500 x 7   = 180,995 p (the current tariff)
  assert.equal(table.current_cost_gbp, 1809.95);
  assert.deepEqual(table.rows.map((r) => [r.rank, r.tariff_id, r.annual_cost_gbp, r.saving_gbp]), [
    [1, 'acme-fix-12m', 1680.2, 129.75],
    [2, 'acme-svt', 1809.95, 0],
  ]);
  const event = { ...fixture('price-inline-market.json'), show_current_tariff: true };
  event.profile.filters = { no_exit_fees: true };
  const { result: noFees } = await ok(event);
  assert.deepEqual(noFees.results[0].rows.map((r) => r.tariff_id), ['acme-svt']);
});

test('hypothetical tariffs: their rank in the whole list, on the page or not, and where not eligible', async () => {
  const { result } = await ok(fixture('price-hypothetical.json'));
  assert.deepEqual(result.market.hypothetical_tariffs, ['newco-fix-12m']);
  const byId = Object.fromEntries(result.results.map((t) => [t.visit_id, t]));
  for (const table of result.results) {
    assert.equal(table.rows.length, Math.min(5, table.eligible));
    const [h] = table.hypothetical;
    assert.equal(h.tariff_id, 'newco-fix-12m');
    if (h.on_page) {
      const row = table.rows[h.rank - 1];
      assert.equal(row.tariff_id, 'newco-fix-12m');
      assert.equal(row.hypothetical, true);
      assert.equal(row.annual_cost_gbp, h.annual_cost_gbp);
    } else {
      assert.ok(!table.rows.some((r) => r.tariff_id === 'newco-fix-12m'));
    }
  }
  // Cheap rates in London: first for a typical London household.
  assert.equal(byId['london-typical'].hypothetical[0].rank, 1);
  // No rate card in South Wales (K), and no prepayment card at all.
  assert.deepEqual(byId['wales-prepay'].hypothetical[0], { tariff_id: 'newco-fix-12m', eligible: false, rank: null, on_page: false, annual_cost_gbp: null, saving_gbp: null });
  // The London card has Economy 7 rates: 50 x 365 + 4200 x (0.5 x 29 + 0.5 x 14) = 108,550 p.
  assert.equal(byId['london-e7'].hypothetical[0].annual_cost_gbp, 1085.5);
});

test('a warm call parses nothing: markets and compiled markets come from the wasm cache', async () => {
  await ok(fixture('price-sample.json'));
  await ok(fixture('price-hypothetical.json'));
  await ok(fixture('price-inline-market.json'));
  const before = stats();
  for (let i = 0; i < 20; i++) {
    await ok(fixture('price-sample.json'));
    await ok(fixture('price-hypothetical.json'));
    await ok(fixture('price-inline-market.json'));
  }
  assert.deepEqual(stats(), before);
  assert.ok(before.markets_parsed >= 2 && before.indices_built >= 3);
});

test('a stored market that is not UTF-8 is InvalidEncoding, as tariffsim says of the same file', async () => {
  fs.writeFileSync(path.join(stagingMarkets, 'latin1.json'), Buffer.from('{"as_of": "2026-07-01", "source": "caf\xe9", "tariffs": []}', 'latin1'));
  const err = await fails({ market: 'latin1', profile: { region: 'C' } }, 'InvalidEncoding', context('context-staging.json'));
  assert.match(err.message, /not UTF-8 text \(byte 38 is not valid UTF-8\)/);
});

test('a stored market that changes on disk is parsed again; other aliases have their own markets', async () => {
  const staging = context('context-staging.json');
  const { result } = await ok({ market: 'mini', profile: { region: 'C' } }, staging);
  const key = result.market.key;
  await fails({ market: 'sample', profile: { region: 'C' } }, 'UnknownMarket', staging);
  await fails({ market: 'mini', profile: { region: 'C' } }, 'UnknownMarket', context('context-prod.json'));
  const file = path.join(stagingMarkets, 'mini.json');
  const market = JSON.parse(fs.readFileSync(file, 'utf8'));
  market.source = 'edited';
  fs.writeFileSync(file, JSON.stringify(market));
  const { result: again } = await ok({ market: 'mini', profile: { region: 'C' } }, staging);
  assert.notEqual(again.market.key, key);
});

test('a visitor\'s table does not depend on how requests are batched: ties are drawn from the seed and the visit id', async () => {
  const visitor = { visit_id: 'web-42', region: 'C' };
  const alone = (await ok({ market: 'sample', profiles: [visitor], page_size: 40, seed: 3 })).result.results[0];
  const second = (await ok({ market: 'sample', profiles: [{ visit_id: 'web-41', region: 'A' }, visitor], page_size: 40, seed: 3 })).result.results[1];
  assert.deepEqual(second, alone);
  // The sample market has tariffs of equal cost for this visitor: another id draws another order.
  const costs = alone.rows.map((r) => r.annual_cost_gbp);
  assert.ok(new Set(costs).size < costs.length, 'ties on the page');
  const other = (await ok({ market: 'sample', profiles: [{ ...visitor, visit_id: 'web-43' }], page_size: 40, seed: 3 })).result.results[0];
  assert.notDeepEqual(other.rows.map((r) => r.tariff_id), alone.rows.map((r) => r.tariff_id));
});

test('error paths are typed errors whose name is the code', async () => {
  const region = await fails(fixture('price-unknown-region.json'), 'UnknownRegion');
  assert.match(region.message, /^profiles\[1\]\.region: unknown region "Z"/);
  const shape = await fails(fixture('price-bad-shape.json'), 'InvalidRequest');
  assert.equal(shape.message, 'profiles[0].elec_kwh: invalid type: string "2700 kWh", expected f64');
  await fails(fixture('price-unknown-market.json'), 'UnknownMarket');
  await fails({ market: 'sample', profile: { region: 'C', elec_kwh: -1 } }, 'InvalidVisit');
  await fails({ market: 'sample', profile: { region: 'C', meter: 'economy9' } }, 'InvalidVisit');
  await fails({ market: 'sample', profile: { region: 'C', colour: 'blue' } }, 'InvalidRequest');
  await fails({ market: 'sample', profile: { region: 'C' }, page: 3 }, 'InvalidRequest');
  await fails({ market: 'sample', profile: { region: 'C' }, page_size: 0 }, 'InvalidRequest');
  await fails({ market: 'sample', profiles: [] }, 'InvalidRequest');
  await fails({ market: 'sample' }, 'InvalidRequest');
  await fails({ market: '../secrets', profile: { region: 'C' } }, 'InvalidRequest');
  await fails({ market: 'sample', profiles: Array.from({ length: 101 }, () => ({ region: 'C' })) }, 'InvalidRequest');
  // A list where an object goes would be read field by field in order: refused, naming its place.
  const list = await fails({ market: 'sample', profiles: [{ region: 'C' }, ['C', 'dual_fuel', 2700]] }, 'InvalidRequest');
  assert.equal(list.message, 'profiles[1] must be a profile object, e.g. {"region": "C"}');
  assert.equal((await fails({ market: 'sample', profile: null }, 'InvalidRequest')).message, 'profile must be a profile object, e.g. {"region": "C"}');
  const tariffList = await fails({ ...fixture('price-hypothetical.json'), hypothetical_tariffs: [['x']] }, 'InvalidRequest');
  assert.equal(tariffList.message, "hypothetical_tariffs[0] must be a tariff object, in the market's tariff format");
  // JSON the handler wrote again from the caller's objects: a field is named by its path in the
  // request, never by a line and column of that JSON.
  const inline = await fails({ market: { as_of: '2026-07-01', tariffs: 'none' }, profile: { region: 'C' } }, 'InvalidMarketJson');
  assert.equal(inline.message, 'market.tariffs: invalid type: string "none", expected a sequence');
  const change = await fails({ market: 'sample', profile: { region: 'C' }, scenario: { changes: [{ op: 'move_prices', percent: 'five' }] } }, 'InvalidScenarioJson');
  assert.match(change.message, /^scenario\.changes\[0\](\.percent)?: /);
  assert.doesNotMatch(change.message, /line|column/);
  await fails({ market: 'sample', profile: { region: 'C' }, scenario: { changes: [{ op: 'remove_tariff', id: 'nope' }] } }, 'UnknownTariff');
  const dup = fixture('price-hypothetical.json');
  dup.hypothetical_tariffs[0].id = 'octopus-energy-svt';
  const clash = await fails(dup, 'InvalidTariff');
  // Named by its place in the call's hypothetical_tariffs, never as a scenario change.
  assert.match(clash.message, /^hypothetical_tariffs\[0\] is an invalid tariff: tariff id "octopus-energy-svt" appears twice/);
  const second = fixture('price-hypothetical.json');
  second.scenario = { changes: [{ op: 'remove_supplier', supplier: 'Outfox the Market' }] };
  second.hypothetical_tariffs = [second.hypothetical_tariffs[0], { id: 'half-a-tariff' }];
  const shapeOfSecond = await fails(second, 'InvalidTariff');
  assert.match(shapeOfSecond.message, /^hypothetical_tariffs\[1\]: missing field `supplier`$/);
  await fails('{"market": "sample", ', 'InvalidJson');
  await fails({ market: 'sample', profile: { region: 'C' }, blob: 'x'.repeat(6 * 1024 * 1024) }, 'PayloadTooLarge');
});

test('fault injection is refused outside DEV', async () => {
  await fails(fixture('price-debug-panic.json'), 'InvalidRequest', context('context-prod.json'));
  await fails(fixture('price-debug-panic.json'), 'InvalidRequest', context('context-staging.json'));
});

test('after a panic the next request is served by a fresh module', async () => {
  const { result: before } = await ok(fixture('price-sample.json'));
  const generation = engine.generation();
  const trap = await fails(fixture('price-debug-panic.json'), 'WasmTrap', context('context-dev.json'));
  assert.match(trap.message, /debug panic requested: fault injection from a test/);
  assert.ok(trap.cause instanceof WebAssembly.RuntimeError);
  const { result: after } = await ok(fixture('price-sample.json'));
  assert.equal(engine.generation(), generation + 1);
  assert.deepEqual(after, before);
  assert.equal(stats().markets_parsed, 1, 'the fresh module rebuilt its cache');
});

test('the lean build answers in numbers exactly what the full build answers in JSON (features never change results)', () => {
  const marketJson = fs.readFileSync(path.join(ROOT, 'data', 'sample', 'market.json'));
  const [header, ...lines] = fs.readFileSync(path.join(ROOT, 'data', 'sample', 'visits.csv'), 'utf8').trimEnd().split('\n');
  const cols = header.split(',');
  const profiles = lines.slice(0, 400).map((line) => {
    const r = Object.fromEntries(line.split(',').map((v, i) => [cols[i], v]));
    const p = { visit_id: r.visit_id, timestamp: r.timestamp, region: r.region, fuel: r.fuel, payment_method: r.payment_method };
    if (r.meter) p.meter = r.meter;
    if (r.elec_kwh) p.elec_kwh = Number(r.elec_kwh);
    if (r.gas_kwh) p.gas_kwh = Number(r.gas_kwh);
    if (r.current_supplier) p.current_supplier = r.current_supplier;
    if (r.current_tariff) p.current_tariff = r.current_tariff;
    p.filters = { fixed_only: r.fixed_only === 'true', green_only: r.green_only === 'true', no_exit_fees: r.no_exit_fees === 'true', switchable_only: r.switchable_only === 'true' };
    return p;
  });
  // Not the sample scenario's own added tariff (newco-fix-12m): another id.
  const hypothetical = Buffer.from(JSON.stringify(fixture('price-hypothetical.json').hypothetical_tariffs.map((t) => ({ ...t, id: 'newco-fix-24m' }))));
  const scenario = fs.readFileSync(path.join(ROOT, 'data', 'sample', 'scenario.json'));
  /** @type {Array<[Buffer | undefined, Buffer | undefined, number, number, boolean, boolean]>} */
  const cases = [
    [undefined, undefined, 10, 0, false, true],
    [undefined, hypothetical, 3, 99, true, true],
    [scenario, hypothetical, 1000, 2 ** 53 - 1, false, false],
    [scenario, undefined, 1, 5, true, false],
  ];
  for (const [scenarioJson, hypotheticalJson, pageSize, seed, showCurrentTariff, wholeOfMarket] of cases) {
    for (let i = 0; i < profiles.length; i += 50) {
      const profilesJson = Buffer.from(JSON.stringify(profiles.slice(i, i + 50)));
      const want = engine.withEngine(({ engine: e }) => JSON.parse(e.priceJson(e.loadMarket(marketJson), scenarioJson, hypotheticalJson, profilesJson, pageSize, seed, showCurrentTariff, wholeOfMarket)));
      const { answer, bytesAtMost } = engine.withEngine((instance) => engine.priceAnswer(instance, { key: instance.engine.loadMarket(marketJson), scenario: scenarioJson, hypothetical: hypotheticalJson, profiles: profiles.slice(i, i + 50), profilesJson, pageSize, seed, showCurrentTariff, wholeOfMarket }), 'price');
      assert.deepStrictEqual(answer, want);
      assert.equal(JSON.stringify(answer), JSON.stringify(want), 'fields in the same order');
      assert.ok(Buffer.byteLength(JSON.stringify(answer)) <= bytesAtMost, 'the size bound holds');
    }
  }
});

test('profiles in the form the JSON reads go to the module by their fields, the same profiles to the core; any other form by their JSON', () => {
  const { profileFields } = engine;
  // Every field, absent, null or given; text beyond the BMP; -0 (its JSON reads 0).
  const plain = [
    { region: 'C' },
    { visit_id: 'v 😀', timestamp: null, region: 'A', fuel: 'electricity', meter: 'economy7', payment_method: 'prepayment', elec_kwh: 3100.5, gas_kwh: -0, e7_night_share: 0.4, current_supplier: 'Sô Énergie', current_tariff: null, filters: { fixed_only: true, switchable_only: false } },
    { region: 'P', elec_kwh: null, filters: { green_only: true, no_exit_fees: true } },
    { region: 'N', filters: {} },
  ];
  const given = profileFields(plain);
  assert.ok(given !== null);
  assert.equal(given.fields.length, 12 * plain.length);
  assert.deepEqual([...given.fields.subarray(0, 12)], [-1, -1, 1, -1, -1, -1, -1, -1, NaN, NaN, NaN, 0]);
  assert.ok(Object.is(given.fields[12 + 9], 0), '-0 passes as 0');
  assert.equal(given.fields[12 + 11], 1 | 0 | 0 | 0);
  assert.equal(given.fields[24 + 11], 2 | 4);
  assert.equal(given.text, 'Cv 😀Aelectricityeconomy7prepaymentSô ÉnergiePN');
  // Anything JSON would not read as a profile, or would read only to refuse: by its JSON.
  for (const odd of [
    { region: 'C', colour: 'blue' },
    {},
    { region: null },
    { region: 7 },
    { region: 'C', elec_kwh: '2700' },
    { region: 'C', gas_kwh: true },
    { region: 'C', current_supplier: 'lone \ud800' },
    { region: 'C', filters: null },
    { region: 'C', filters: [true] },
    { region: 'C', filters: { fixed_only: 'yes' } },
    { region: 'C', filters: { fixed_only: null } },
    { region: 'C', filters: { cheapest: true } },
    { region: 'C', fixed_only: true },
    { region: 'C', filters: { region: 'C' } },
    Object.create({ region: 'C' }),
    Object.assign(Object.create({ elec_kwh: 99999 }), { region: 'C' }),
    Object.assign(new Date(0), { region: 'C' }),
    Object.assign([], { region: 'C' }),
    { region: 'C', toJSON: () => ({ region: 'A' }) },
    { region: 'C', filters: new Date(0) },
    { region: 'C', filters: Object.assign(Object.create({ toJSON: () => ({ green_only: true }) }), { fixed_only: true }) },
  ]) {
    assert.equal(profileFields([{ region: 'C' }, odd]), null, JSON.stringify(odd));
  }
  // The module answers the fields exactly as it answers their JSON, on the sample visits.
  const marketJson = fs.readFileSync(path.join(ROOT, 'data', 'sample', 'market.json'));
  const [header, ...lines] = fs.readFileSync(path.join(ROOT, 'data', 'sample', 'visits.csv'), 'utf8').trimEnd().split('\n').slice(0, 301);
  const cols = header.split(',');
  const profiles = lines.map((line) => {
    const r = Object.fromEntries(line.split(',').map((x, i) => [cols[i], x]));
    const p = { visit_id: r.visit_id, timestamp: r.timestamp, region: r.region, fuel: r.fuel, payment_method: r.payment_method, filters: { fixed_only: r.fixed_only === 'true', switchable_only: r.switchable_only === 'true' } };
    if (r.meter) p.meter = r.meter;
    if (r.elec_kwh) p.elec_kwh = Number(r.elec_kwh) / 3;
    if (r.gas_kwh) p.gas_kwh = Number(r.gas_kwh) * 1.1;
    if (r.e7_night_share) p.e7_night_share = Number(r.e7_night_share);
    if (r.current_supplier) p.current_supplier = r.current_supplier;
    if (r.current_tariff) p.current_tariff = r.current_tariff;
    return p;
  });
  engine.withEngine(({ engine: e }) => {
    const key = e.loadMarket(marketJson);
    for (let i = 0; i < profiles.length; i += 100) {
      const batch = profiles.slice(i, i + 100);
      const { fields, text } = /** @type {{fields: Float64Array, text: string}} */ (profileFields(batch));
      const byFields = [...e.priceFields(key, undefined, undefined, fields, text, 10, 7, true, true)];
      const byJson = [...e.priceCompact(key, undefined, undefined, Buffer.from(JSON.stringify(batch)), 10, 7, true, true)];
      // The compiled market's serial aside (one per call), every number the same.
      assert.deepEqual(byFields.slice(1), byJson.slice(1));
      assert.deepEqual(e.lastVisitIds(), batch.map((p) => p.visit_id));
    }
    // Numbers of 16 or 17 digits read alike both ways (serde_json's float_roundtrip): a kWh
    // figure a hair below .5, a night share likewise, a figure a hair over the bound.
    for (const odd of [{ elec_kwh: 90.49999999999999, fuel: 'electricity' }, { elec_kwh: 20000, meter: 'economy7', e7_night_share: 0.0013499999999999999 }, { elec_kwh: 1000000.0000000001 }]) {
      const batch = [{ region: 'C', ...odd }];
      const { fields, text } = /** @type {{fields: Float64Array, text: string}} */ (profileFields(batch));
      const json = Buffer.from(JSON.stringify(batch));
      const run = (/** @type {() => Float64Array} */ f) => {
        try {
          return [...f()].slice(1);
        } catch (err) {
          return /** @type {Error} */ (err).name;
        }
      };
      assert.deepEqual(run(() => e.priceFields(key, undefined, undefined, fields, text, 10, 0, false, true)), run(() => e.priceCompact(key, undefined, undefined, json, 10, 0, false, true)), JSON.stringify(odd));
    }
    // Fields that are not in that form are refused, not misread.
    assert.throws(() => e.priceFields(key, undefined, undefined, new Float64Array(11), '', 10, 0, false, true), (/** @type {Error} */ err) => err.name === 'InternalError');
    assert.throws(() => e.priceFields(key, undefined, undefined, new Float64Array([-1, -1, 2, -1, -1, -1, -1, -1, NaN, NaN, NaN, 0]), 'C', 10, 0, false, true), (/** @type {Error} */ err) => err.name === 'InternalError');
  }, 'price');
});

test('TARIFFSIM_PRIME=1: the handler primes itself during init (before `ready` settles), silently, and answers as it does unprimed', () => {
  const { spawnSync } = require('node:child_process');
  const event = JSON.stringify(fixture('price-sample.json'));
  // One child per setting: require the handler, then answer the sample request. Priming leaves
  // the sample market loaded and its code compiled before the request (the engine's stats say so),
  // writes no log line, and changes nothing in the answer.
  const script = `
    const { handler, ready } = require(${JSON.stringify(path.join(ROOT, 'js', 'price.js'))});
    const { withEngine } = require(${JSON.stringify(path.join(ROOT, 'js', 'runtime', 'engine.js'))});
    ready.then(() => {
      const before = withEngine((i) => i.engine.stats(), 'price');
      return handler(${event}, { invokedFunctionArn: 'arn:aws:lambda:eu-west-2:1:function:tariffsim-price:PROD' })
        .then((r) => process.stderr.write('ANSWER ' + JSON.stringify({ before, answer: r }) + '\\n'));
    });`;
  const run = (prime, more = {}) => {
    const out = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, TARIFFSIM_PRIME: prime, TARIFFSIM_LOG_LEVEL: 'INFO', ...more } });
    assert.equal(out.status, 0, out.stderr);
    const line = out.stderr.split('\n').find((l) => l.startsWith('ANSWER '));
    assert.ok(line, out.stderr);
    return { ...JSON.parse(line.slice(7)), stdout: out.stdout };
  };
  const primed = run('1');
  const plain = run('0');
  assert.deepEqual(primed.answer, plain.answer);
  assert.ok(primed.before.indices_built >= 1, JSON.stringify(primed.before));
  assert.equal(plain.before.indices_built, 0, JSON.stringify(plain.before));
  // As deployed (config/environments.json read as in Lambda: PROD's Redis URL is an SSM reference,
  // a setting that throws until resolved), it primes all the same.
  const deployed = run('1', { AWS_LAMBDA_FUNCTION_NAME: 'tariffsim-price' });
  assert.ok(deployed.before.indices_built >= 1, JSON.stringify(deployed.before));
  assert.deepEqual(deployed.answer, plain.answer);
  // The one log line of each is the request's own (one line per record in Lambda: CR inside).
  for (const r of [primed, plain, deployed]) assert.deepEqual(r.stdout.trim().split('\n').map((l) => /\[INFO\] -- price done in/.test(l)), [true]);
});

test('a broken zip: a price module that is missing fails the init; one that does not compile is a typed InternalError on every call (compiled once)', () => {
  const { spawnSync } = require('node:child_process');
  const { bundleFiles } = require('../tools/bundle');
  const task = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-broken-'));
  try {
    for (const [name, data] of bundleFiles()) {
      fs.mkdirSync(path.dirname(path.join(task, name)), { recursive: true });
      fs.writeFileSync(path.join(task, name), data);
    }
    const wasm = path.join(task, 'tariffsim-wasm', 'pkg-price', 'tariffsim_price_bg.wasm');
    const event = JSON.stringify(fixture('price-sample.json'));
    // Two calls; each answer's error (name, message) on stderr, and how often a module compiled.
    const script = `
      let compiles = 0;
      const compile = WebAssembly.compile;
      WebAssembly.compile = (b) => { compiles += 1; return compile(b); };
      const Module = WebAssembly.Module;
      WebAssembly.Module = function (b) { compiles += 1; return new Module(b); };
      const { handler } = require(${JSON.stringify(path.join(task, 'js', 'price.js'))});
      const call = () => handler(${event}, {}).then(() => ({ ok: true }), (e) => ({ name: e.name, message: e.message }));
      call().then((a) => call().then((b) => process.stderr.write('RESULT ' + JSON.stringify({ a, b, compiles }) + '\\n')));`;
    const run = () => spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', env: { ...process.env, TARIFFSIM_PRIME: '0' } });
    const result = (out) => {
      const line = out.stderr.split('\n').find((l) => l.startsWith('RESULT '));
      assert.ok(line, out.stderr);
      return JSON.parse(line.slice(7));
    };
    assert.deepEqual(result(run()), { a: { ok: true }, b: { ok: true }, compiles: 1 });
    fs.writeFileSync(wasm, fs.readFileSync(wasm).subarray(0, 1000));
    const cut = result(run());
    for (const e of [cut.a, cut.b]) {
      assert.equal(e.name, 'InternalError', e.message);
      assert.match(e.message, /the price wasm module .*tariffsim_price_bg\.wasm could not be loaded \(CompileError: /);
    }
    assert.equal(cut.compiles, 1, 'a module that does not compile is not compiled again');
    // One that compiles but does not instantiate with the price glue (the full build's): typed too.
    fs.copyFileSync(path.join(ROOT, 'tariffsim-wasm', 'pkg', 'tariffsim_wasm_bg.wasm'), wasm);
    const other = result(run());
    for (const e of [other.a, other.b]) {
      assert.equal(e.name, 'InternalError', e.message);
      assert.match(e.message, /the price wasm module .*tariffsim_price_bg\.wasm could not be instantiated \((LinkError|TypeError): /);
    }
    fs.rmSync(wasm);
    const missing = run();
    assert.notEqual(missing.status, 0);
    assert.match(missing.stderr, /InternalError: the price wasm module .*tariffsim_price_bg\.wasm could not be loaded \(Error: ENOENT/);
  } finally {
    fs.rmSync(task, { recursive: true, force: true });
  }
});

test('the answer docs/lambda.md shows is the handler\'s answer to the request it names', async () => {
  const doc = fs.readFileSync(path.join(ROOT, 'docs', 'lambda.md'), 'utf8');
  const at = doc.indexOf('The answer:\n\n```json\n');
  assert.ok(at > 0, 'docs/lambda.md has its sample answer');
  const text = doc.slice(at + 'The answer:\n\n```json\n'.length, doc.indexOf('```', at + 20));
  const shown = JSON.parse(text);
  // As the page says: price-hypothetical.json's tariff, one London profile, page size 3.
  const event = { ...fixture('price-hypothetical.json'), profiles: [{ visit_id: 'london-1', region: 'C', current_supplier: 'British Gas' }], page_size: 3 };
  const { result } = await ok(event);
  assert.deepEqual(shown.market, result.market);
  const [got] = result.results;
  const [want] = shown.results;
  for (const key of Object.keys(want)) if (key !== 'rows') assert.deepEqual(want[key], got[key], key);
  assert.deepEqual(want.rows[0], got.rows[0]);
  assert.equal(want.rows[1].tariff_id, got.rows[1].tariff_id);
});
