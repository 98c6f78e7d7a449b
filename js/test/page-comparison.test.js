'use strict';
/* global document, window */
// The run page's comparison in real headless Chromium (Debian's chromium, driven by
// playwright-core) against the development server and folder storage: a run of the sample
// scenario (pasted as scenario JSON) shows the hypothetical tariff's figures with their 95%
// intervals, the run-level changes and the chart and table of the tariffs that lose or gain most,
// all equal to GET /api/runs/:id/summary and /comparison; the comparison CSV downloads. A run
// without a scenario, and one with the comparison turned off, show no comparison and no error.

const nodeTest = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { launchChromium } = require('./servers');

const { before, after } = nodeTest;
// No test waits for ever; the hooks close the browser and the server even after a failure.
const test = (name, fn) => nodeTest.test(name, { timeout: 180_000 }, fn);

/** The page's window, in code run in the page: Chart.js's global. @typedef {typeof window & {Chart: typeof import('chart.js').Chart}} PageWindow */

const ROOT = path.join(__dirname, '..', '..');
const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-page-comparison-'));
const CSV_HEADER_START = 'tariff_id,supplier,hypothetical,on_sale_before,on_sale_after,impressions_before,impressions_after,impressions_difference,page1_share_before,';
let app = null;
let endpoint;
let browser = null;

before(async () => {
  Object.assign(process.env, { TARIFFSIM_STORAGE: storageDir, TARIFFSIM_LOG_LEVEL: 'WARN' });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env.REDIS_URL;
  const { buildServer } = require('../server/server');
  app = buildServer();
  endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  await require('../runtime/invoke').idle();
  if (app) await app.close();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

/** A page that records console errors, uncaught errors and the URLs it requests. */
async function openPage(url = endpoint) {
  const page = await browser.newPage();
  const problems = [];
  const requests = [];
  // (The browser's own request for /favicon.ico, which the page does not have, is no error of the page.)
  page.on('console', (msg) => msg.type() === 'error' && !/favicon\.ico$/.test(msg.location().url) && problems.push(`console: ${msg.text()} ${msg.location().url}`));
  page.on('pageerror', (err) => problems.push(`pageerror: ${err.message}`));
  page.on('request', (req) => requests.push(req.url()));
  await page.goto(url);
  await page.waitForSelector('body[data-ready="true"]');
  return { page, problems, requests };
}

async function getJson(url) {
  const res = await fetch(`${endpoint}${url}`);
  assert.equal(res.status, 200, `GET ${url}`);
  return res.json();
}

/** Every number in a text but the 95 of "95% CI" ("(95% CI 13.69% to 13.99%)" -> [13.69, 13.99]; "-£1,234.50" -> [-1234.5]). */
function numbers(text) {
  return (text.replace(/95% CI/g, '').match(/[-+]?£?[\d,]*\.?\d+/g) || []).map((s) => Number(s.replace(/[£,]/g, '')));
}

/** `actual` is `expected` shown with `digits` decimals. */
function shown(actual, expected, digits, what) {
  assert.ok(Math.abs(actual - expected) <= 0.5 * 10 ** -digits + 1e-9, `${what}: the page shows ${actual}, the API says ${expected}`);
}

async function errorsOnPage(page) {
  return page.evaluate(() => [...document.querySelectorAll('.error')].map((el) => el.textContent).join(''));
}

test('a run of the sample scenario shows the hypothetical tariff with intervals and the comparison, as the API has them', async () => {
  const { page, problems } = await openPage();
  await page.fill('#sample-size', '3000');
  await page.check('input[name="tariff-mode"][value="json"]');
  await page.fill('#tariff-json-text', fs.readFileSync(path.join(ROOT, 'data/sample/scenario.json'), 'utf8'));
  await page.click('#start');
  await page.waitForSelector('body[data-state="done"]', { timeout: 150_000 });
  assert.equal(await errorsOnPage(page), '');
  const runId = await page.textContent('#run-id');
  assert.match(page.url(), new RegExp(`\\?run=${runId}$`), 'the address names the run');
  const summary = await getJson(`/api/runs/${runId}/summary`);
  const cmp = await getJson(`/api/runs/${runId}/comparison`);
  assert.equal(cmp.profiles, 3000);

  // The hypothetical tariff: rank histogram, page-1 share and expected clicks with their intervals.
  const h = summary.tariffs.find((t) => t.id === 'newco-fix-12m');
  assert.ok(h && h.hypothetical && h.impressions > 0);
  assert.match(await page.textContent('#summary-tariff'), /NewCo Energy \(newco-fix-12m\)/);
  const hist = await page.evaluate(() => /** @type {PageWindow} */ (window).Chart.getChart(/** @type {HTMLCanvasElement} */ (document.getElementById('rank-chart'))).data.datasets[0].data);
  assert.deepEqual(hist, h.rank_histogram);
  shown(numbers(await page.textContent('#s-page1'))[0], 100 * h.page1_share, 2, 'page-1 share');
  const [p1lo, p1hi] = numbers(await page.textContent('#s-page1-ci'));
  shown(p1lo, 100 * h.intervals.page1_share.ci95[0], 2, 'page-1 share, low bound');
  shown(p1hi, 100 * h.intervals.page1_share.ci95[1], 2, 'page-1 share, high bound');
  assert.ok(p1lo < 100 * h.page1_share && 100 * h.page1_share < p1hi);
  shown(numbers(await page.textContent('#s-clicks'))[0], h.expected_clicks, 1, 'expected clicks');
  const [clo, chi] = numbers(await page.textContent('#s-clicks-ci'));
  shown(clo, h.intervals.expected_clicks.ci95[0], 1, 'expected clicks, low bound');
  shown(chi, h.intervals.expected_clicks.ci95[1], 1, 'expected clicks, high bound');
  assert.match(await page.textContent('#s-rank1-ci'), /^\(95% CI \d+\.\d\d% to \d+\.\d\d%\)$/);

  // The run-level changes, their figures on the elements as the API has them.
  assert.equal(await page.isVisible('#comparison'), true);
  const saving = cmp.mean_best_saving_gbp.difference;
  const savingEl = await page.evaluate(() => ({ ...document.getElementById('c-saving').dataset, text: document.getElementById('c-saving').textContent }));
  assert.deepEqual([Number(savingEl.value), Number(savingEl.lo), Number(savingEl.hi)], [saving.value, ...saving.ci95]);
  const savingShown = numbers(savingEl.text);
  shown(savingShown[0], cmp.mean_best_saving_gbp.before.value, 2, 'mean best saving before');
  shown(savingShown[1], cmp.mean_best_saving_gbp.after.value, 2, 'mean best saving after');
  shown(savingShown[2], saving.value, 2, 'mean best saving change');
  shown(savingShown[3], saving.ci95[0], 2, 'mean best saving change, low bound');
  shown(savingShown[4], saving.ci95[1], 2, 'mean best saving change, high bound');
  const changed = cmp.best_tariff_changed_share;
  const changedEl = await page.evaluate(() => ({ ...document.getElementById('c-best-changed').dataset, text: document.getElementById('c-best-changed').textContent }));
  assert.deepEqual([Number(changedEl.value), Number(changedEl.lo), Number(changedEl.hi)], [changed.value, ...changed.ci95]);
  const changedShown = numbers(changedEl.text);
  shown(changedShown[0], 100 * changed.value, 2, 'best tariff changed');
  shown(changedShown[1], 100 * changed.ci95[0], 2, 'best tariff changed, low bound');
  shown(changedShown[2], 100 * changed.ci95[1], 2, 'best tariff changed, high bound');
  assert.ok(changed.value > 0, 'the sample scenario changes some profiles\' best tariff');
  assert.match(await page.textContent('#c-hypothetical'), /newco-fix-12m/);

  // The tariffs that lose or gain most: the existing tariffs with the largest paired differences.
  const expected = (measure) =>
    cmp.tariffs
      .filter((t) => !t.hypothetical)
      .map((t) =>
        measure === 'impressions'
          ? { id: t.id, value: t.impressions_difference, lo: t.page1_share.difference.ci95[0] * cmp.profiles, hi: t.page1_share.difference.ci95[1] * cmp.profiles }
          : // Fewer than two visits' worth of profiles that could click: no interval (null).
            { id: t.id, value: t.expected_clicks.difference.value, lo: t.expected_clicks.difference.ci95?.[0] ?? null, hi: t.expected_clicks.difference.ci95?.[1] ?? null },
      )
      .filter((r) => r.value !== 0)
      .sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || (a.id < b.id ? -1 : 1))
      .slice(0, 12)
      .sort((a, b) => a.value - b.value || (a.id < b.id ? -1 : 1));
  const onPage = () =>
    page.evaluate(() => {
      const canvas = /** @type {HTMLCanvasElement} */ (document.getElementById('cmp-chart'));
      const c = /** @type {PageWindow} */ (window).Chart.getChart(canvas);
      const px = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
      let painted = 0;
      for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted += 1;
      return {
        labels: c.data.labels,
        intervals: c.data.datasets.find((d) => /interval/.test(d.label)).data,
        differences: c.data.datasets.find((d) => /difference/.test(d.label)).data,
        rows: [.../** @type {NodeListOf<HTMLTableRowElement>} */ (document.querySelectorAll('#cmp-table tbody tr'))].map((tr) => ({ ...tr.dataset, cells: [...tr.cells].map((td) => td.textContent) })),
        painted,
      };
    });
  for (const measure of ['expected_clicks', 'impressions']) {
    await page.selectOption('#cmp-measure', measure);
    const want = expected(measure);
    const got = await onPage();
    assert.ok(want.length >= 5, `${measure}: tariffs lose or gain`);
    assert.ok(want[0].value < 0, `${measure}: some tariff loses to the new one`);
    assert.deepEqual(got.labels, want.map((r) => r.id), `${measure}: the chart's tariffs`);
    assert.deepEqual(got.differences, want.map((r) => r.value), `${measure}: the chart's differences`);
    assert.deepEqual(got.intervals, want.map((r) => [r.lo, r.hi]), `${measure}: the chart's intervals`);
    assert.deepEqual(got.rows.map((r) => [r.id, Number(r.value), Number(r.lo), Number(r.hi)]), want.map((r) => [r.id, r.value, r.lo, r.hi]), `${measure}: the table`);
    for (const [i, r] of want.entries()) {
      assert.ok(r.lo <= r.value && r.value <= r.hi, `${measure} ${r.id}: the interval holds the difference`);
      const digits = measure === 'impressions' ? 0 : 1;
      shown(numbers(got.rows[i].cells[3])[0], r.value, digits, `${measure} ${r.id}: difference`);
      const [lo, hi] = numbers(got.rows[i].cells[4]);
      shown(lo, r.lo, digits, `${measure} ${r.id}: low bound`);
      shown(hi, r.hi, digits, `${measure} ${r.id}: high bound`);
    }
    assert.ok(got.painted > 1000, `${measure}: the canvas has a chart on it`);
  }
  // Outfox the Market leaves the market in the sample scenario: it loses every impression it had.
  const outfox = cmp.tariffs.filter((t) => t.supplier === 'Outfox the Market');
  assert.ok(outfox.length > 0 && outfox.every((t) => t.on_sale_before && !t.on_sale_after && t.impressions_after === 0));

  // The comparison CSV: the link downloads it, one row per tariff of comparison.json.
  const href = await page.getAttribute('#cmp-download', 'href');
  assert.equal(href, `/api/runs/${runId}/comparison.csv`);
  const csv = await page.evaluate(async (url) => {
    const res = await fetch(url);
    return { status: res.status, type: res.headers.get('content-type'), disposition: res.headers.get('content-disposition'), text: await res.text() };
  }, href);
  assert.equal(csv.status, 200);
  assert.match(csv.type, /^text\/csv/);
  assert.match(csv.disposition, /attachment; filename=".*-comparison\.csv"/);
  const lines = csv.text.trim().split('\n');
  assert.ok(lines[0].startsWith(CSV_HEADER_START), lines[0]);
  assert.ok(lines[0].endsWith(',expected_clicks_difference_lo,expected_clicks_difference_hi'), lines[0]);
  assert.equal(lines.length, 1 + cmp.tariffs.length);
  assert.deepEqual(lines.slice(1).map((l) => l.split(',')[0]), cmp.tariffs.map((t) => t.id));

  assert.deepEqual(problems, []);
  await page.screenshot({ path: path.join(os.tmpdir(), 'tariffsim-page-comparison.png'), fullPage: true });
  await page.close();
});

test('a run without a scenario shows its summary, no comparison section and no error', async () => {
  const sample = await getJson('/api/markets/sample');
  const spec = { market: sample.market, visits: sample.visits, filter: {}, sample_size: 2000, chunk_size: 1000, seed: 3, page_size: 10 };
  const res = await fetch(`${endpoint}/lambdas/run-simulation`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ spec }) });
  const started = await res.json();
  assert.equal(res.status, 200, JSON.stringify(started));
  const { page, problems, requests } = await openPage(`${endpoint}/?run=${started.run_id}`);
  await page.waitForSelector('body[data-state="done"]', { timeout: 150_000 });
  assert.equal(await page.textContent('#run-id'), started.run_id);
  assert.equal(await page.isVisible('#summary'), true);
  assert.equal(await page.isVisible('#no-hypothetical'), true);
  assert.equal(await page.isVisible('#hypothetical'), false);
  assert.equal(await page.isVisible('#comparison'), false);
  assert.match(await page.textContent('#summary-profiles'), /^2,000 profiles/);
  assert.equal(await errorsOnPage(page), '');
  assert.deepEqual(problems, []);
  assert.deepEqual(requests.filter((u) => /comparison/.test(u)), [], 'the page asks for no comparison');
  for (const route of ['comparison', 'comparison.csv']) assert.equal((await fetch(`${endpoint}/api/runs/${started.run_id}/${route}`)).status, 404);
  await page.close();
});

test('a run from the form with the comparison turned off shows the tariff and no comparison', async () => {
  const { page, problems, requests } = await openPage();
  await page.fill('#sample-size', '2000');
  await page.uncheck('#compare');
  await page.click('#start');
  await page.waitForSelector('body[data-state="done"]', { timeout: 150_000 });
  const runId = await page.textContent('#run-id');
  assert.equal(await page.isVisible('#hypothetical'), true);
  assert.match(await page.textContent('#summary-tariff'), /NewCo Energy/);
  assert.match(await page.textContent('#s-page1-ci'), /^\(95% CI \d+\.\d\d% to \d+\.\d\d%\)$/);
  assert.equal(await page.isVisible('#comparison'), false);
  assert.equal(await errorsOnPage(page), '');
  assert.deepEqual(problems, []);
  assert.deepEqual(requests.filter((u) => /comparison/.test(u)), []);
  assert.equal((await fetch(`${endpoint}/api/runs/${runId}/comparison`)).status, 404);
  await page.close();
});
