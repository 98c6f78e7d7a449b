'use strict';
// The benchmark compares the wasm `price` with a plain JavaScript kernel; the comparison is fair
// only if both do the same work and give the same answers. They must agree exactly.

const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const kernel = require('../tools/js-kernel');
const { withEngine } = require('../runtime/engine');
const { fixture, ROOT, FIXTURES } = require('./helpers');

function visitsAsProfiles(csvFile, limit) {
  const [header, ...rows] = fs.readFileSync(csvFile, 'utf8').trimEnd().split('\n');
  const cols = header.split(',');
  return rows.slice(0, limit).map((line) => {
    const r = Object.fromEntries(line.split(',').map((v, i) => [cols[i], v]));
    const p = { visit_id: r.visit_id, region: r.region, fuel: r.fuel, payment_method: r.payment_method, filters: {} };
    if (r.meter) p.meter = r.meter;
    if (r.elec_kwh) p.elec_kwh = Number(r.elec_kwh);
    if (r.gas_kwh) p.gas_kwh = Number(r.gas_kwh);
    if (r.e7_night_share) p.e7_night_share = Number(r.e7_night_share);
    if (r.current_supplier) p.current_supplier = r.current_supplier;
    if (r.current_tariff) p.current_tariff = r.current_tariff;
    for (const f of ['fixed_only', 'green_only', 'no_exit_fees', 'switchable_only']) p.filters[f] = r[f] === 'true';
    return p;
  });
}

function agree(marketJson, hypothetical, profiles, pageSize, options = {}) {
  const { seed = 0, show_current_tariff: showCurrent = false, whole_of_market: wholeOfMarket = true } = options;
  const js = kernel.price(kernel.compileMarket(JSON.parse(marketJson), hypothetical), profiles, pageSize, options);
  const wasm = withEngine(({ engine }) => engine.price(engine.loadMarket(Buffer.from(marketJson)), undefined, hypothetical.length ? Buffer.from(JSON.stringify(hypothetical)) : undefined, profiles, pageSize, seed, showCurrent, wholeOfMarket)).results;
  assert.equal(js.length, wasm.length);
  for (let i = 0; i < js.length; i++) assert.deepEqual(js[i], wasm[i], `profile ${i} (${profiles[i].visit_id})`);
}

test('the JS kernel agrees with the core on 3,000 sample visits, with a hypothetical tariff', () => {
  const market = fs.readFileSync(path.join(ROOT, 'data', 'sample', 'market.json'), 'utf8');
  const profiles = visitsAsProfiles(path.join(ROOT, 'data', 'sample', 'visits.csv'), 3000).filter((p) => !p.visit_id.includes('"'));
  const { hypothetical_tariffs: hypothetical } = fixture('price-hypothetical.json');
  for (let i = 0; i < profiles.length; i += 100) agree(market, hypothetical, profiles.slice(i, i + 100), 10);
  agree(market, [], profiles.slice(0, 100), 1000);
});

test('the JS kernel ranks ties and applies the page rules as the core does (seeds, current tariff, whole of market)', () => {
  const market = fs.readFileSync(path.join(ROOT, 'data', 'sample', 'market.json'), 'utf8');
  const profiles = visitsAsProfiles(path.join(ROOT, 'data', 'sample', 'visits.csv'), 600).filter((p) => !p.visit_id.includes('"'));
  // Identical twins of a tariff: every profile that sees one sees a tie.
  const parsed = JSON.parse(market);
  const twins = parsed.tariffs.slice(0, 3).map((t) => ({ ...t, id: `${t.id}-twin` }));
  const options = [
    { seed: 12345 },
    { seed: 2 ** 53 - 1, show_current_tariff: true },
    { seed: 7, whole_of_market: false },
  ];
  for (const [k, o] of options.entries()) {
    for (let i = 0; i < profiles.length; i += 100) agree(market, twins, profiles.slice(i, i + 100), k === 0 ? 1000 : 10, o);
  }
  // Visits on other dates (a fix rolling over sooner, its exit fee waived), default consumption.
  const dated = profiles.slice(0, 200).map((p, i) => ({ ...p, timestamp: `2026-${String(1 + (i % 12)).padStart(2, '0')}-15T10:00:00Z`, elec_kwh: i % 3 ? p.elec_kwh : undefined }));
  agree(market, [], dated, 10, { show_current_tariff: false });
});

test('the JS kernel agrees with the core on the mini market (fixes rolling onto variable tariffs)', () => {
  const market = fs.readFileSync(path.join(FIXTURES, 'mini_market.json'), 'utf8');
  agree(market, [], visitsAsProfiles(path.join(FIXTURES, 'mini_visits.csv'), 100), 3);
});

test('the JS kernel and the core agree where a dual-fuel discount exceeds the bill: the cost is 0, never negative', () => {
  const market = fs.readFileSync(path.join(ROOT, 'data', 'sample', 'market.json'), 'utf8');
  const parsed = JSON.parse(market);
  // Discounts of £400 to £600 against small bills, and visits through the year (fixes roll over).
  for (const [i, t] of parsed.tariffs.entries()) t.dual_fuel_discount_gbp = 400 + (i % 3) * 100;
  const profiles = visitsAsProfiles(path.join(ROOT, 'data', 'sample', 'visits.csv'), 300)
    .filter((p) => !p.visit_id.includes('"'))
    .map((p, i) => ({ ...p, fuel: 'dual_fuel', elec_kwh: 200 + i, gas_kwh: 300 + i, timestamp: `2026-${String(1 + (i % 12)).padStart(2, '0')}-15T10:00:00Z` }));
  const text = JSON.stringify(parsed);
  for (let i = 0; i < profiles.length; i += 100) agree(text, [], profiles.slice(i, i + 100), 1000);
  const rows = kernel.price(kernel.compileMarket(parsed, []), profiles, 1000).flatMap((r) => r.rows);
  assert.ok(rows.some((r) => r.annual_cost_gbp === 0), 'some bills are cancelled');
  assert.ok(rows.every((r) => r.annual_cost_gbp >= 0));
});

test('the JS kernel and the core put a supplier-only visitor on the same one of two equally cheap variable tariffs (a seeded draw, not the id)', () => {
  const market = JSON.parse(fs.readFileSync(path.join(FIXTURES, 'mini_market.json'), 'utf8'));
  const svt = market.tariffs.find((t) => t.id === 'beta-svt');
  market.tariffs.push({ ...svt, id: 'beta-svt-twin' });
  const json = JSON.stringify(market);
  const profiles = Array.from({ length: 120 }, (_, i) => ({ visit_id: `v${i}`, region: 'A', current_supplier: 'Beta Power' }));
  for (const seed of [0, 5]) agree(json, [], profiles, 3, { seed, show_current_tariff: false });
  // Either twin is some visitors' baseline (and so left off their table), never the same one for all.
  const current = kernel.price(kernel.compileMarket(JSON.parse(json), []), profiles, 3, { seed: 5 }).map((r) => r.current_tariff_id);
  assert.ok(current.includes('beta-svt') && current.includes('beta-svt-twin'), String(new Set(current)));
});
