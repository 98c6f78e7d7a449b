'use strict';
// Parity: the same chunk computed by the native command (`tariffsim chunk`) and by the wasm
// `simulate-chunk` handler is byte-identical, impressions CSV and summary JSON, on several run
// specs: different seeds, filters, scenarios, page sizes, click models and chunkings. And the
// `price` lambda (the lean wasm build) answers exactly as `tariffsim price --json` does, on the
// fixtures' price events and the mini market, under several seeds and page rules.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');
const { context, invoke, ROOT, FIXTURES } = require('./helpers');

const NATIVE = path.join(ROOT, 'target', 'release', 'tariffsim');
const work = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-parity-'));
const dataDir = path.join(work, 'data');
const nativeOut = path.join(work, 'native');
fs.mkdirSync(dataDir);
fs.mkdirSync(nativeOut);
for (const [name, from] of [
  ['market.json', path.join(ROOT, 'data', 'sample', 'market.json')],
  ['visits.csv', path.join(ROOT, 'data', 'sample', 'visits.csv')],
  ['scenario.json', path.join(ROOT, 'data', 'sample', 'scenario.json')],
  ['mini_market.json', path.join(FIXTURES, 'mini_market.json')],
  ['mini_visits.csv', path.join(FIXTURES, 'mini_visits.csv')],
  ['mini_scenario.json', path.join(FIXTURES, 'mini_scenario.json')],
]) {
  fs.copyFileSync(from, path.join(dataDir, name));
}
process.env.TARIFFSIM_DATA_DIR = dataDir;
process.env.TARIFFSIM_OUT_DIR = path.join(work, 'wasm');

const { handler } = require('../simulate-chunk');
const { handler: priceHandler } = require('../price');
const { fixture } = require('./helpers');

const sample = { market: 'market.json', visits: 'visits.csv' };
const SPECS = {
  'mini-quoting': { market: 'mini_market.json', scenario: 'mini_scenario.json', visits: 'mini_visits.csv', sample_size: 1000, chunk_size: 300, seed: 5, page_size: 4 },
  'sample-seed42-page10': { ...sample, sample_size: 2500, chunk_size: 1000, seed: 42, page_size: 10 },
  'sample-scenario-london-dd-page5': {
    ...sample, scenario: 'scenario.json', sample_size: 1500, chunk_size: 600, seed: 7, page_size: 5,
    filter: { regions: ['C'], fuels: ['dual_fuel'], payment_methods: ['direct_debit'] },
  },
  'sample-scenario-e7-page25-maxseed': {
    ...sample, scenario: 'scenario.json', sample_size: 999, chunk_size: 400, seed: 9007199254740991, page_size: 25,
    filter: { meters: ['economy7'] },
  },
  'sample-heavy-users-ctr-page3': {
    ...sample, scenario: 'scenario.json', sample_size: 1200, chunk_size: 1200, seed: 123456789, page_size: 3,
    filter: { elec_kwh: { min: 3500 } }, ctr_by_rank: [0.5, 0.3, 0.2],
  },
};

function native(specFile, index) {
  const csv = path.join(nativeOut, `${path.basename(specFile, '.json')}-${index}.csv`);
  const summary = path.join(nativeOut, `${path.basename(specFile, '.json')}-${index}.json`);
  execFileSync(NATIVE, ['chunk', specFile, '--index', String(index), '--impressions', csv, '--summary', summary], { stdio: ['ignore', 'ignore', 'pipe'] });
  return { csv: fs.readFileSync(csv), summary: fs.readFileSync(summary) };
}

test('the native command is built', () => {
  assert.ok(fs.existsSync(NATIVE), `${NATIVE} is missing: run cargo build --release (scripts/test-js does)`);
});

for (const [name, spec] of Object.entries(SPECS)) {
  test(`native and wasm chunks are byte-identical: ${name}`, async () => {
    const specFile = path.join(dataDir, `${name}.json`);
    fs.writeFileSync(specFile, `${JSON.stringify(spec, null, 2)}\n`);
    const chunks = Math.ceil(spec.sample_size / spec.chunk_size);
    let wasmAll = Buffer.alloc(0);
    for (let index = 0; index < chunks; index++) {
      const { result, error, output } = await invoke(handler, { spec: `${name}.json`, index, run_id: name }, context('context-simulate-chunk.json'));
      if (error) assert.fail(`${error.name}: ${error.message}\n${output}`);
      assert.equal(result.chunk_count, chunks);
      const wasmCsv = fs.readFileSync(result.impressions_file);
      const wasmSummary = fs.readFileSync(result.summary_file);
      const n = native(specFile, index);
      assert.ok(n.csv.length > 0 && wasmCsv.length > 0);
      assert.ok(wasmCsv.equals(n.csv), `chunk ${index}: impressions CSV differ (${wasmCsv.length} vs ${n.csv.length} bytes)`);
      assert.ok(wasmSummary.equals(n.summary), `chunk ${index}: summary JSON differ`);
      wasmAll = Buffer.concat([wasmAll, wasmCsv]);
    }
    if (name === 'mini-quoting') {
      // Chunks concatenated in order are the whole run's impressions file.
      const out = path.join(work, 'simulate-mini');
      execFileSync(NATIVE, ['simulate', '--quiet', '--out', out, specFile], { stdio: ['ignore', 'ignore', 'pipe'] });
      assert.ok(wasmAll.equals(fs.readFileSync(path.join(out, 'impressions.csv'))), 'concatenated chunks equal `tariffsim simulate`');
      assert.match(wasmAll.toString('utf8'), /"newco, ""quoted"" fix"/, 'fields that need quoting are quoted alike');
    }
  });
}

test('native and wasm refuse the same missing chunk', async () => {
  const specFile = path.join(dataDir, 'mini-quoting.json');
  const { error } = await invoke(handler, { spec: 'mini-quoting.json', index: 4 }, context('context-simulate-chunk.json'));
  assert.equal(error.name, 'NoSuchChunk');
  assert.throws(() => native(specFile, 4), (/** @type {Error & {stderr?: Buffer}} */ e) => /NoSuchChunk/.test(String(e.stderr)));
});

// ---- price: `tariffsim price --json` against the price lambda --------------------------------

/** The CLI's flags for one profile of a price request (the CLI names its profile `cli`). */
function profileFlags(p) {
  const flags = ['--region', p.region];
  const opt = { visit_id: '--visit-id', fuel: '--fuel', meter: '--meter', payment_method: '--payment-method', elec_kwh: '--elec-kwh', gas_kwh: '--gas-kwh', e7_night_share: '--night-share', timestamp: '--visit-date', current_supplier: '--current-supplier', current_tariff: '--current-tariff' };
  for (const [field, flag] of Object.entries(opt)) if (p[field] !== undefined) flags.push(flag, String(p[field]));
  for (const f of ['fixed_only', 'green_only', 'no_exit_fees', 'switchable_only']) if (p.filters && p.filters[f]) flags.push(`--${f.replace(/_/g, '-')}`);
  return flags;
}

/** `tariffsim price --json` for one profile of `event`: the market as a file, hypothetical tariffs as the scenario's last `add_tariff` changes. */
function nativePrice(event, profile, options) {
  // The stored market `sample` is data/sample/market.json (config.js); an inline one is written out.
  const market = event.market === 'sample' ? path.join(ROOT, 'data', 'sample', 'market.json') : path.join(work, 'price-market.json');
  if (typeof event.market !== 'string') fs.writeFileSync(market, JSON.stringify(event.market));
  const args = ['price', '--json', '--market', market, '--page-size', String(options.page_size), '--seed', String(options.seed), '--whole-of-market', String(options.whole_of_market)];
  if (options.show_current_tariff) args.push('--show-current-tariff');
  const changes = [...((event.scenario && event.scenario.changes) || []), ...(event.hypothetical_tariffs || []).map((tariff) => ({ op: 'add_tariff', tariff }))];
  if (changes.length > 0) {
    const scenario = path.join(work, 'price-scenario.json');
    fs.writeFileSync(scenario, JSON.stringify({ ...(event.scenario || {}), changes }));
    args.push('--scenario', scenario);
  }
  return JSON.parse(execFileSync(NATIVE, [...args, ...profileFlags(profile)], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'pipe'] }));
}

const PRICE_EVENTS = {
  'price-sample.json': fixture('price-sample.json'),
  'price-hypothetical.json': fixture('price-hypothetical.json'),
  'price-inline-market.json': fixture('price-inline-market.json'),
  'mini market, dated visits': {
    market: JSON.parse(fs.readFileSync(path.join(FIXTURES, 'mini_market.json'), 'utf8')),
    scenario: JSON.parse(fs.readFileSync(path.join(FIXTURES, 'mini_scenario.json'), 'utf8')),
    profiles: fs.readFileSync(path.join(FIXTURES, 'mini_visits.csv'), 'utf8').trimEnd().split('\n').slice(1, 13).map((line) => {
      // The mini visits as profiles (no quoted fields in their first rows).
      const [, timestamp, region, fuel, meter, pm, elec, gas, night, supplier, tariff, fixed, green, noExit, switchable] = line.split(',');
      const p = { timestamp, region, fuel, payment_method: pm, filters: { fixed_only: fixed === 'true', green_only: green === 'true', no_exit_fees: noExit === 'true', switchable_only: switchable === 'true' } };
      if (meter) p.meter = meter;
      if (elec) p.elec_kwh = Number(elec);
      if (gas) p.gas_kwh = Number(gas);
      if (night) p.e7_night_share = Number(night);
      if (supplier) p.current_supplier = supplier;
      if (tariff) p.current_tariff = tariff;
      return p;
    }),
  },
};

for (const [name, event] of Object.entries(PRICE_EVENTS)) {
  test(`tariffsim price --json and the price lambda give the same answer: ${name}`, async () => {
    const profiles = event.profiles || [event.profile];
    const rules = [
      { seed: event.seed || 0, show_current_tariff: false, whole_of_market: true, page_size: event.page_size || 10 },
      { seed: 9007199254740991, show_current_tariff: true, whole_of_market: true, page_size: 1000 },
      { seed: 77, show_current_tariff: false, whole_of_market: false, page_size: 3 },
    ];
    for (const options of rules) {
      for (const profile of profiles) {
        // The profile's own id, or none (then `profile-1` on both sides): ties are drawn from it.
        const one = { ...profile };
        const request = { ...event, ...options, profiles: [one] };
        delete request.profile;
        const { result, error, output } = await invoke(priceHandler, request, context('context-prod.json'));
        if (error) assert.fail(`${error.name}: ${error.message}\n${output}`);
        assert.match(result.market.key, /^m-[0-9a-f]{32}$/);
        delete result.market.key;
        assert.deepStrictEqual(result, nativePrice(event, one, options), `${JSON.stringify(options)} ${JSON.stringify(profile).slice(0, 120)}`);
      }
    }
  });
}
