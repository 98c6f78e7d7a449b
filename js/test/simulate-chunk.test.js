'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { fixture, context, invoke, FIXTURES } = require('./helpers');

const outDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-chunks-'));
process.env.TARIFFSIM_DATA_DIR = FIXTURES;
process.env.TARIFFSIM_OUT_DIR = outDir;

const { handler } = require('../simulate-chunk');
const engine = require('../runtime/engine');

const ctx = () => context('context-simulate-chunk.json');

async function ok(event) {
  const { result, error, output } = await invoke(handler, event, ctx());
  if (error) assert.fail(`expected a result, got ${error.name}: ${error.message}\n${output}`);
  return { result, output };
}

async function fails(event, name) {
  const { error, output } = await invoke(handler, event, ctx());
  assert.ok(error, `expected ${name}, got a result`);
  assert.equal(error.name, name, error.message);
  assert.match(output, /\[ERROR\] -- simulate-chunk failed after/);
  return error;
}

test('chunk 0 of an inline spec: the header, the impressions, the partial summary, the files', async () => {
  const { result, output } = await ok(fixture('simulate-chunk-mini.json'));
  assert.match(output, /\[DEV\]\[run-mini-1\]\[INFO\] -- chunk 0 of 3: 20 profiles/);
  assert.equal(result.index, 0);
  assert.equal(result.chunk_count, 3);
  assert.equal(result.profiles, 20);
  assert.equal(result.impressions_file, path.join(outDir, 'mini', 'chunk-000000.csv'));
  const csv = fs.readFileSync(result.impressions_file, 'utf8');
  assert.equal(csv, result.impressions_csv);
  assert.equal(Buffer.byteLength(csv), result.impressions_bytes);
  const lines = csv.trimEnd().split('\n');
  // Impressions format 2 (docs/formats.md).
  assert.equal(lines[0], 'profile,visit_id,visit_date,rank,tariff_id,supplier,hypothetical,kind,green,switchable,exit_fee_gbp,annual_cost_gbp,current_cost_gbp,saving_gbp,switch_cost_gbp,region,fuel,meter,payment_method,fixed_only,green_only,no_exit_fees,switchable_only,filters_set,format_version');
  assert.equal(lines.length - 1, result.impressions);
  assert.ok(lines.slice(1).every((l) => Number(l.split(',')[3]) <= 3), 'page size 3 (rank: the fourth column)');
  const summaryText = fs.readFileSync(result.summary_file, 'utf8');
  assert.deepEqual(JSON.parse(summaryText), result.summary);
  assert.equal(result.summary.profiles, 20);
  assert.equal(result.summary.impressions, result.impressions);
  assert.ok(summaryText.endsWith('}\n'));
});

test('later chunks have no header; the last one is short', async () => {
  const event = fixture('simulate-chunk-mini.json');
  event.index = 2;
  delete event.inline_impressions;
  const { result } = await ok(event);
  assert.equal(result.profiles, 10);
  assert.equal(result.impressions_csv, undefined);
  assert.match(fs.readFileSync(result.impressions_file, 'utf8'), /^\d+,v\d,/);
});

test('a spec file: references relative to its folder, as for the CLI', async () => {
  const { result } = await ok({ spec: 'mini_run.json', index: 1, run_id: 'from-file' });
  assert.equal(result.chunk_count, 4);
  assert.equal(result.profiles, 300);
  assert.ok(result.summary.tariffs.some((t) => t.hypothetical), 'mini_scenario adds a hypothetical tariff');
});

test('a warm chunk worker prepares a run once', async () => {
  await ok({ spec: 'mini_run.json', index: 0, run_id: 'warm' });
  const before = engine.withEngine((i) => i.engine.stats());
  for (let index = 0; index < 4; index++) await ok({ spec: 'mini_run.json', index, run_id: 'warm' });
  assert.deepEqual(engine.withEngine((i) => i.engine.stats()), before);
});

test('error paths are typed', async () => {
  await fails(fixture('simulate-chunk-no-such-chunk.json'), 'NoSuchChunk');
  await fails(fixture('simulate-chunk-escape.json'), 'InvalidReference');
  await fails({ spec: '/etc/passwd', index: 0 }, 'InvalidReference');
  await fails({ spec: 'no_such_run.json', index: 0 }, 'InputNotFound');
  await fails({ spec: { market: 'mini_market.json', visits: 'missing.csv', sample_size: 5 }, index: 0 }, 'InputNotFound');
  await fails({ spec: { market: 'mini_market.json', visits: 'mini_visits.csv', sample_size: 0 }, index: 0 }, 'InvalidSampleSize');
  await fails({ spec: { market: 'mini_market.json', visits: 'mini_visits.csv', sample_size: 5, chunk_size: 0 }, index: 0 }, 'InvalidRunSpec');
  await fails({ spec: { market: 'mini_market.json', visits: 'mini_visits.csv', sample_size: 5, colour: 1 }, index: 0 }, 'InvalidRunSpecJson');
  await fails({ spec: { market: 'mini_market.json', visits: 'mini_visits.csv', sample_size: 5, filter: { regions: ['P'] } }, index: 0 }, 'EmptyPopulation');
  await fails({ spec: { market: 'mini_visits.csv', visits: 'mini_visits.csv', sample_size: 5 }, index: 0 }, 'InvalidMarketJson');
  await fails({ spec: { market: 'mini_market.json', visits: 'mini_market.json', sample_size: 5 }, index: 0 }, 'InvalidVisitsCsv');
  await fails({ spec: 'mini_run.json', index: -1 }, 'InvalidRequest');
  await fails({ spec: 'mini_run.json', index: 1.5 }, 'InvalidRequest');
  await fails({ spec: 'mini_run.json', index: 0, run_id: '../x' }, 'InvalidRequest');
  await fails({ spec: 'mini_run.json', index: 0, extra: true }, 'InvalidRequest');
  await fails({ spec: 42, index: 0 }, 'InvalidRequest');
});
