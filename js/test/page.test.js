'use strict';
// The run page in real headless Chromium (Debian's chromium, driven by playwright-core): start a
// run, see the progress reach 100%, see the chart and the summary, download the impressions; and
// invalid input shown next to its field.

const { test, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { launchChromium } = require('./servers');

/**
 * The page's window, in code run in the page: Chart.js's global, and what a test exposes to it.
 * @typedef {typeof window & {Chart: typeof import('chart.js').Chart, recordProgress: (value: number) => void}} PageWindow
 */

const storageDir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-page-'));
let app;
let endpoint;
let browser;

before(async () => {
  Object.assign(process.env, { TARIFFSIM_STORAGE: storageDir, TARIFFSIM_LOG_LEVEL: 'WARN' });
  delete process.env.AWS_LAMBDA_FUNCTION_NAME;
  delete process.env.REDIS_URL;
  const { buildServer } = require('../server/server');
  // A run that does not exist is given up on after 2 s (default 30 s).
  app = buildServer({ unknownRunMs: 2000 });
  endpoint = await app.listen({ host: '127.0.0.1', port: 0 });
  browser = await launchChromium();
});

after(async () => {
  if (browser) await browser.close();
  await require('../runtime/invoke').idle();
  await app.close();
  fs.rmSync(storageDir, { recursive: true, force: true });
});

test('start a run, watch the progress reach 100%, see the chart and the summary', async () => {
  const page = await browser.newPage();
  const progress = [];
  await page.exposeFunction('recordProgress', (v) => progress.push(v));
  await page.goto(endpoint);
  await page.waitForSelector('body[data-ready="true"]');
  // Record every value the progress bar takes.
  await page.evaluate(() => {
    const win = /** @type {PageWindow} */ (window);
    const bar = /** @type {HTMLProgressElement} */ (document.getElementById('progress'));
    new MutationObserver(() => win.recordProgress(bar.value)).observe(bar, { attributes: true, attributeFilter: ['value'] });
    const set = Object.getOwnPropertyDescriptor(HTMLProgressElement.prototype, 'value').set;
    Object.defineProperty(bar, 'value', { set(v) { set.call(bar, v); win.recordProgress(v); }, get() { return bar.getAttribute('value') === null ? 0 : Number(bar.getAttribute('value')); } });
  });
  await page.fill('#sample-size', '30000');
  await page.fill('#percent', '-6');
  await page.selectOption('#payment', 'direct_debit');
  await page.click('#start');
  await page.waitForSelector('body[data-state="done"]', { timeout: 60000 });
  assert.equal(await page.textContent('#progress-text'), '100%');
  assert.ok(progress.includes(100), `progress went ${progress.join(', ')}`);
  assert.ok(progress.some((v) => v > 0 && v < 100) || progress.length >= 2, `progress moved: ${progress.join(', ')}`);
  // The chart is drawn: ten bars and pixels on the canvas.
  const chart = await page.evaluate(() => {
    const c = /** @type {PageWindow} */ (window).Chart.getChart(/** @type {HTMLCanvasElement} */ (document.getElementById('rank-chart')));
    const ctx = /** @type {HTMLCanvasElement} */ (document.getElementById('rank-chart')).getContext('2d');
    const px = ctx.getImageData(0, 0, 800, 300).data;
    let painted = 0;
    for (let i = 3; i < px.length; i += 4) if (px[i] > 0) painted += 1;
    return { bars: c.data.datasets[0].data.length, total: /** @type {number[]} */ (c.data.datasets[0].data).reduce((a, b) => a + b, 0), painted };
  });
  assert.equal(chart.bars, 10);
  assert.ok(chart.total > 0, 'the hypothetical tariff got impressions');
  assert.ok(chart.painted > 1000, 'the canvas has a chart on it');
  assert.match(await page.textContent('#summary-tariff'), /NewCo Energy/);
  assert.equal(Number((await page.textContent('#s-impressions')).replace(/,/g, '')), chart.total);
  assert.match(await page.textContent('#s-page1'), /^\d+\.\d\d%$/);
  assert.match(await page.textContent('#s-saving'), /^-?£[\d,]+\.\d\d$/);
  const href = await page.getAttribute('#download', 'href');
  const csv = await page.evaluate(async (url) => (await fetch(url)).text(), href);
  assert.ok(csv.startsWith('profile,visit_id,visit_date,rank,tariff_id'));
  assert.ok(csv.includes('NewCo Energy'));
  await page.screenshot({ path: path.join(os.tmpdir(), 'tariffsim-page.png') });
  await page.close();
});

test('invalid input is shown next to its field', async () => {
  const page = await browser.newPage();
  await page.goto(endpoint);
  await page.waitForSelector('body[data-ready="true"]');
  await page.fill('#sample-size', '0');
  await page.click('#start');
  await page.waitForFunction(() => document.querySelector('.error[data-for="sample_size"]').textContent.length > 0);
  assert.match(await page.textContent('.error[data-for="sample_size"]'), /sample_size/);
  assert.doesNotMatch(await page.textContent('body'), /at .*\.js:\d+/, 'no stack trace on the page');

  await page.fill('#sample-size', '1000');
  await page.check('input[name="tariff-mode"][value="json"]');
  await page.fill('#tariff-json-text', '{"id": "x", "supplier": "X"');
  await page.click('#start');
  await page.waitForFunction(() => document.querySelector('.error[data-for="tariff"]').textContent.length > 0);
  assert.match(await page.textContent('.error[data-for="tariff"]'), /not JSON/);

  await page.fill('#tariff-json-text', '{"id": "x", "supplier": "X", "name": "X", "kind": "fixed", "fuels": ["gas"], "rates": []}');
  await page.click('#start');
  await page.waitForFunction(() => document.querySelector('.error[data-for="tariff"]').textContent.length > 0);
  assert.match(await page.textContent('.error[data-for="tariff"]'), /term_months/);

  await page.check('input[name="tariff-mode"][value="form"]');
  await page.selectOption('#region', 'P');
  await page.selectOption('#fuel', 'gas');
  await page.selectOption('#payment', 'standard_credit');
  await page.fill('#sample-size', '100');
  await page.evaluate(() => {
    // A population the sample visits do not have: fails in filter-population, asynchronously.
    /** @type {HTMLSelectElement} */ (document.getElementById('region')).add(new Option('none', 'Q'));
  });
  await page.selectOption('#region', 'Q');
  await page.click('#start');
  await page.waitForFunction(() => document.querySelector('.error[data-for="filter"]').textContent.length > 0 || document.querySelector('.error[data-for="form"]').textContent.length > 0);
  const msg = (await page.textContent('.error[data-for="filter"]')) + (await page.textContent('.error[data-for="form"]'));
  assert.match(msg, /region|population/i);
  await page.close();
});

test('an address naming no run says there is none, and stops waiting', async () => {
  const page = await browser.newPage();
  await page.goto(`${endpoint}/?run=no-such-run`);
  await page.waitForSelector('body[data-state="unknown"]', { timeout: 15000 });
  assert.match(await page.textContent('.error[data-for="form"]'), /no run no-such-run in this storage after 2 s: check the run id/);
  assert.equal(await page.isHidden('#cancel'), true, 'nothing to cancel');
  await page.close();
});

test('an address whose event stream is refused (not a run id) ends in a typed error, not "running" for ever', async () => {
  const page = await browser.newPage();
  await page.goto(`${endpoint}/?run=bad%20id`);
  await page.waitForSelector('body[data-state="unknown"]', { timeout: 15000 });
  assert.equal(await page.getAttribute('body', 'data-error-type'), 'InvalidRequest');
  assert.match(await page.textContent('.error[data-for="form"]'), /^InvalidRequest: a run id is 1 to 128/);
  assert.equal(await page.isHidden('#cancel'), true, 'nothing to cancel');
  await page.close();
});

test('a run whose folder is damaged ends in a typed failure on the page', async () => {
  const dir = path.join(storageDir, 'runs', 'damaged-page-run');
  fs.mkdirSync(dir, { recursive: true });
  fs.writeFileSync(path.join(dir, 'spec.json'), '{}');
  fs.writeFileSync(path.join(dir, 'result.json'), '{broken');
  const page = await browser.newPage();
  await page.goto(`${endpoint}/?run=damaged-page-run`);
  await page.waitForSelector('body[data-state="failed"]', { timeout: 15000 });
  assert.equal(await page.getAttribute('body', 'data-error-type'), 'StorageReadFailed');
  assert.match(await page.textContent('.error[data-for="form"]'), /^StorageReadFailed: the stored record runs\/damaged-page-run\/result\.json is damaged/);
  assert.equal(await page.isHidden('#cancel'), true, 'nothing to cancel');
  await page.close();
});
