'use strict';
// The run page: builds a run spec from the form, starts it through the run-simulation lambda,
// follows it over server-sent events and draws the hypothetical tariff's rank distribution with
// its intervals and, when the run compares with the market before its scenario, the tariffs that
// lose or gain most (paired differences with 95% intervals). /?run=<id> follows a run already started.

const $ = (id) => document.getElementById(id);
const REGIONS = 'ABCDEFGHJKLMNP'.split('');
let market = null;
let chart = null;
let cmpChart = null;

function showError(field, message) {
  const el = document.querySelector(`.error[data-for="${field}"]`);
  if (el) el.textContent = message || '';
}

function clearErrors() {
  document.querySelectorAll('.error').forEach((el) => {
    el.textContent = '';
  });
}

/** The field an error belongs to, from its type and message. */
function fieldOf(err) {
  const t = err.errorType || '';
  const m = err.errorMessage || '';
  if (t === 'InvalidSampleSize' || /sample_size/.test(m)) return 'sample_size';
  if (t === 'EmptyPopulation' || /filter/.test(m)) return 'filter';
  if (/Tariff|Scenario|tariff|scenario|changes\[/.test(t + m)) return 'tariff';
  if (/market/i.test(t + m)) return 'market';
  return 'form';
}

async function loadMarket() {
  const res = await fetch('/api/markets/sample');
  market = await res.json();
  $('market').options[0].textContent = `sample (${market.tariffs.length} tariffs, ${market.as_of})`;
  for (const t of market.tariffs) $('base-tariff').add(new Option(`${t.supplier}: ${t.name}`, t.id));
  const base = market.tariffs.find((t) => t.kind === 'variable');
  if (base) $('base-tariff').value = base.id;
  for (const r of REGIONS) $('region').add(new Option(r, r));
}

/** An input error that belongs next to a field of the form. */
function fieldError(field, message) {
  return Object.assign(new Error(message), { field });
}

function slug(text) {
  return text.toLowerCase().replace(/[^a-z0-9]+/g, '-').replace(/^-|-$/g, '') || 'hypothetical';
}

/** The scenario: the hypothetical tariff added (and repriced when built from the form). */
async function scenario() {
  if (document.querySelector('input[name="tariff-mode"]:checked').value === 'json') {
    let tariff;
    try {
      tariff = JSON.parse($('tariff-json-text').value);
    } catch (e) {
      throw fieldError('tariff', `the tariff is not JSON: ${e.message}`);
    }
    if (tariff === null || typeof tariff !== 'object' || Array.isArray(tariff)) throw fieldError('tariff', 'paste one tariff or scenario object');
    if (Array.isArray(tariff.changes)) {
      // A whole scenario (like data/sample/scenario.json): its first added tariff is the one shown.
      const added = tariff.changes.find((c) => c && c.op === 'add_tariff' && c.tariff);
      return { name: tariff.name, tariffId: added ? added.tariff.id : null, changes: tariff.changes };
    }
    return { tariffId: tariff.id, changes: [{ op: 'add_tariff', tariff }] };
  }
  const percent = Number($('percent').value);
  if (!Number.isFinite(percent) || percent <= -100) throw fieldError('tariff', 'give a price change above -100%');
  const supplier = $('supplier').value.trim();
  const name = $('tariff-name').value.trim();
  if (!supplier || !name) throw fieldError('tariff', 'give the supplier and the tariff name');
  const base = await (await fetch(`/api/markets/sample/tariffs/${encodeURIComponent($('base-tariff').value)}`)).json();
  const id = `${slug(supplier)}-${slug(name)}`;
  const tariff = { ...base, id, supplier, name, kind: 'fixed', term_months: 12, green: $('green').checked, switchable: true, on_sale: true };
  delete tariff.end_date;
  delete tariff.hypothetical;
  if ($('no-exit-fees').checked) delete tariff.exit_fees_gbp;
  const changes = [{ op: 'add_tariff', tariff }];
  if (percent !== 0) changes.push({ op: 'move_prices', percent, select: { tariffs: [id] } });
  return { tariffId: id, changes };
}

function filter() {
  const f = {};
  if ($('region').value) f.regions = [$('region').value];
  if ($('fuel').value) f.fuels = [$('fuel').value];
  if ($('payment').value) f.payment_methods = [$('payment').value];
  return f;
}

function setProgress(state) {
  const pct = state.chunks ? Math.floor((100 * state.done) / state.chunks) : 0;
  $('progress').value = pct;
  $('progress-text').textContent = `${pct}%`;
  $('status').textContent = `${state.status}: ${state.done} of ${state.chunks ?? '?'} chunks`;
}

/** A number in en-GB style with a fixed number of digits; `sign` shows + on positive values. */
function fmt(v, digits, sign = false) {
  return new Intl.NumberFormat('en-GB', { minimumFractionDigits: digits, maximumFractionDigits: digits, signDisplay: sign ? 'exceptZero' : 'auto' }).format(v);
}
const pct = (v, sign = false) => `${fmt(100 * v, 2, sign)}%`;
const gbp = (v, sign = false) => (sign && v > 0 ? '+' : v < 0 ? '-' : '') + `£${fmt(Math.abs(v), 2)}`;
/**
 * "(95% CI lo to hi)" of an estimate {value, se, ci95}, each bound formatted by `f`; a mean of a
 * single profile, or of fewer than two visits' worth, has no interval (se and ci95 are null).
 */
const ci = (e, f) => (e ? (e.ci95 ? `(95% CI ${f(e.ci95[0])} to ${f(e.ci95[1])})` : '(no interval: too few visits)') : '');
/** An estimate's interval bounds, [null, null] when it has none. */
const bounds = (e, scale = 1) => (e.ci95 ? [e.ci95[0] * scale, e.ci95[1] * scale] : [null, null]);

/** Puts an estimate's figures on an element too (data-value, data-lo, data-hi) for scripts and tests. */
function setEstimate(el, text, value, lo, hi) {
  el.textContent = text;
  Object.assign(el.dataset, { value: String(value), lo: lo === null ? '' : String(lo), hi: hi === null ? '' : String(hi) });
}

async function getJson(url) {
  const res = await fetch(url);
  const body = await res.json().catch(() => ({}));
  if (!res.ok) throw new Error(`${body.errorType || res.status}: ${body.errorMessage || url}`);
  return body;
}

/** One hypothetical tariff: its rank histogram and its figures with their 95% intervals. */
function showTariff(t) {
  $('summary-tariff').textContent = `${t.supplier} (${t.id})`;
  const hist = t.rank_histogram;
  if (chart) chart.destroy();
  chart = new Chart($('rank-chart'), {
    type: 'bar',
    data: { labels: hist.map((_, i) => `#${i + 1}`), datasets: [{ label: 'impressions by rank', data: hist, backgroundColor: '#2f6feb' }] },
    options: { animation: false, responsive: false, scales: { y: { beginAtZero: true } } },
  });
  const iv = t.intervals || {};
  $('s-impressions').textContent = t.impressions.toLocaleString('en-GB');
  $('s-page1').textContent = `${(100 * t.page1_share).toFixed(2)}%`;
  $('s-page1-ci').textContent = ci(iv.page1_share, (v) => pct(v));
  $('s-rank1').textContent = `${(100 * t.rank1_share).toFixed(2)}%`;
  $('s-rank1-ci').textContent = ci(iv.rank1_share, (v) => pct(v));
  $('s-clicks').textContent = t.expected_clicks.toFixed(1);
  $('s-clicks-ci').textContent = ci(iv.expected_clicks, (v) => fmt(v, 1));
  $('s-saving').textContent = t.mean_saving_gbp !== null ? gbp(t.mean_saving_gbp) : '-';
  $('s-saving-ci').textContent = t.mean_saving_gbp !== null ? ci(iv.mean_saving_gbp, (v) => gbp(v)) : '';
}

async function showSummary(runId, tariffId, final) {
  const id = encodeURIComponent(runId);
  const summary = await getJson(`/api/runs/${id}/summary`);
  const shown = summary.tariffs.filter((x) => x.hypothetical || x.id === tariffId);
  const first = shown.find((x) => x.id === tariffId) || shown[0];
  const pick = $('summary-pick');
  pick.length = 0;
  for (const t of shown) pick.add(new Option(`${t.supplier}: ${t.name || t.id}`, t.id));
  $('summary-pick-label').classList.toggle('hidden', shown.length < 2);
  pick.onchange = () => showTariff(shown.find((x) => x.id === pick.value));
  $('hypothetical').classList.toggle('hidden', !first);
  $('no-hypothetical').classList.toggle('hidden', !!first);
  if (first) {
    pick.value = first.id;
    showTariff(first);
  } else {
    if (chart) chart.destroy();
    chart = null;
    $('summary-tariff').textContent = `run ${runId}`;
    $('summary-profiles').textContent = `${summary.profiles.toLocaleString('en-GB')} profiles, ${summary.impressions.toLocaleString('en-GB')} impressions over ${summary.tariffs.length} tariffs.`;
  }
  $('download').href = `/api/runs/${id}/impressions.csv`;
  $('summary').classList.remove('hidden');
  // Only runs that compare have a comparison (their result names it): no request, no 404 otherwise.
  if (final && final.result && final.result.comparison_url) await showComparison(runId);
  else $('comparison').classList.add('hidden');
  document.body.dataset.state = 'done';
}

/**
 * Per tariff of a comparison, the measure's before, after and paired difference with its 95%
 * interval. Impressions are exact counts; their interval is the page-1 share difference's (one
 * impression per profile at most) times the profiles.
 */
function measureOf(t, measure, profiles) {
  if (measure === 'impressions') {
    const [lo, hi] = bounds(t.page1_share.difference, profiles);
    return { before: t.impressions_before, after: t.impressions_after, value: t.impressions_difference, lo, hi };
  }
  const e = t.expected_clicks;
  const [lo, hi] = bounds(e.difference);
  return { before: e.before.value, after: e.after.value, value: e.difference.value, lo, hi };
}

/** The existing tariffs (not the hypothetical ones) that lose or gain most, most lost first. */
function movers(comparison, measure, count = 12) {
  return comparison.tariffs
    .filter((t) => !t.hypothetical)
    .map((t) => ({ t, ...measureOf(t, measure, comparison.profiles) }))
    .filter((r) => r.value !== 0)
    .sort((a, b) => Math.abs(b.value) - Math.abs(a.value) || (a.t.id < b.t.id ? -1 : 1))
    .slice(0, count)
    .sort((a, b) => a.value - b.value || (a.t.id < b.t.id ? -1 : 1));
}

function drawMovers(comparison) {
  const measure = $('cmp-measure').value;
  const digits = measure === 'impressions' ? 0 : 1;
  const rows = movers(comparison, measure);
  if (cmpChart) cmpChart.destroy();
  cmpChart = new Chart($('cmp-chart'), {
    type: 'bar',
    data: {
      labels: rows.map((r) => r.t.id),
      datasets: [
        { label: '95% interval', data: rows.map((r) => [r.lo, r.hi]), backgroundColor: '#1b1f24', barPercentage: 0.12, grouped: false, order: 0 },
        { label: `difference in ${$('cmp-measure').selectedOptions[0].textContent}`, data: rows.map((r) => r.value), backgroundColor: rows.map((r) => (r.value < 0 ? '#cf222e' : '#1a7f37')), grouped: false, order: 1 },
      ],
    },
    options: { indexAxis: 'y', animation: false, responsive: false, scales: { x: { title: { display: true, text: 'after - before' } } } },
  });
  const body = $('cmp-table').tBodies[0];
  body.textContent = '';
  for (const r of rows) {
    const tr = body.insertRow();
    Object.assign(tr.dataset, { id: r.t.id, value: String(r.value), lo: r.lo === null ? '' : String(r.lo), hi: r.hi === null ? '' : String(r.hi) });
    const interval = r.lo === null ? 'none (too few visits)' : `${fmt(r.lo, digits, true)} to ${fmt(r.hi, digits, true)}`;
    for (const text of [`${r.t.supplier}: ${r.t.id}`, fmt(r.before, digits), fmt(r.after, digits), fmt(r.value, digits, true), interval]) tr.insertCell().textContent = text;
  }
}

async function showComparison(runId) {
  const id = encodeURIComponent(runId);
  const c = await getJson(`/api/runs/${id}/comparison`);
  $('c-profiles').textContent = c.profiles.toLocaleString('en-GB');
  const s = c.mean_best_saving_gbp;
  // Absent when no profile had a current cost and a result on both markets.
  if (s) setEstimate($('c-saving'), `${gbp(s.before.value)} before, ${gbp(s.after.value)} after: ${gbp(s.difference.value, true)} ${ci(s.difference, (v) => gbp(v, true))}`, s.difference.value, ...bounds(s.difference));
  else setEstimate($('c-saving'), 'none: no profile had a current cost and a result on both markets', '', null, null);
  const b = c.best_tariff_changed_share;
  setEstimate($('c-best-changed'), `${pct(b.value)} ${ci(b, (v) => pct(v))}`, b.value, ...bounds(b));
  const added = c.tariffs.filter((t) => t.hypothetical);
  $('c-hypothetical').textContent = added.length
    ? added.map((t) => `${t.supplier} (${t.id}): ${fmt(t.impressions_difference, 0, true)} impressions, ${fmt(t.expected_clicks.difference.value, 1, true)} expected clicks ${ci(t.expected_clicks.difference, (v) => fmt(v, 1, true))}`).join('; ')
    : 'none';
  $('cmp-measure').onchange = () => drawMovers(c);
  drawMovers(c);
  $('cmp-download').href = `/api/runs/${id}/comparison.csv`;
  $('comparison').classList.remove('hidden');
}

async function start(event) {
  event.preventDefault();
  clearErrors();
  $('summary').classList.add('hidden');
  $('comparison').classList.add('hidden');
  const sampleSize = Number($('sample-size').value);
  let sc;
  try {
    sc = await scenario();
  } catch (e) {
    showError(e.field || 'form', e.message);
    return;
  }
  const spec = {
    market: market.market,
    visits: market.visits,
    scenario: { name: sc.name || 'page', changes: sc.changes },
    filter: filter(),
    sample_size: Number.isInteger(sampleSize) ? sampleSize : -1,
    chunk_size: Math.max(1000, Math.ceil(Math.max(sampleSize, 1) / 50)),
    seed: 1,
    page_size: 10,
    ...($('compare').checked ? {} : { compare: false }),
  };
  $('start').disabled = true;
  try {
    const res = await fetch('/lambdas/run-simulation', { method: 'POST', headers: { 'content-type': 'application/json' }, body: JSON.stringify({ spec }) });
    const body = await res.json();
    if (!res.ok) {
      showError(fieldOf(body), body.errorMessage);
      return;
    }
    follow(body.run_id, sc.tariffId);
  } finally {
    $('start').disabled = false;
  }
}

/** Asks the server to cancel the run; the run's events say when it has ended. */
async function cancelRun(runId) {
  $('cancel').disabled = true;
  const res = await fetch(`/api/runs/${encodeURIComponent(runId)}/cancel`, { method: 'POST', headers: { 'content-type': 'application/json' }, body: '{}' });
  if (!res.ok) {
    const err = await res.json().catch(() => ({}));
    showError('form', `${err.errorType || res.status}: ${err.errorMessage || 'the run could not be cancelled'}`);
    $('cancel').disabled = false;
  }
}

/** How many times in a row the page opens a run's event stream again after it was refused. */
const REOPENS = 5;
/** How long it waits before it does (the server may be restarting). */
const REOPEN_MS = 2000;

/** A run's final state as the page shows it (an `end` event's, or the REST state's). */
function showEnd(runId, tariffId, final) {
  setProgress(final);
  $('cancel').classList.add('hidden');
  if (final.status === 'done') {
    showSummary(runId, tariffId, final).catch((err) => {
      showError('form', err.message);
      document.body.dataset.state = 'failed';
    });
  } else if (final.status === 'cancelled') {
    const reason = (final.cancellation || {}).reason;
    if (reason) $('status').textContent += ` (${reason})`;
    document.body.dataset.state = 'cancelled';
  } else if (final.status === 'unknown') {
    // The server found no such run in its wait (`unknownRunMs`): not a failure of a run.
    showError('form', final.reason || `there is no run ${runId}`);
    document.body.dataset.state = 'unknown';
  } else {
    const failure = final.failure || {};
    showError(fieldOf({ errorType: failure.error_type, errorMessage: failure.reason }), failure.reason || final.status);
    document.body.dataset.state = 'failed';
  }
}

/**
 * A typed error that ends following the run: shown with its type; `unknown` when the server says
 * there is no such run (a 400 for an id that is not a run id, a 404), else `failed`.
 */
function showStop(err, status) {
  $('cancel').classList.add('hidden');
  showError('form', `${err.errorType || status}: ${err.errorMessage || 'the run could not be followed'}`);
  document.body.dataset.errorType = err.errorType || String(status);
  document.body.dataset.state = status === 400 || status === 404 ? 'unknown' : 'failed';
}

/** Counts the runs followed: a stream of a run the page no longer follows stops. */
let following = 0;

function follow(runId, tariffId) {
  following += 1;
  $('run-id').textContent = runId;
  // The address follows the run: reloading or sharing it shows the same run.
  history.replaceState(null, '', `?run=${encodeURIComponent(runId)}`);
  $('cancel').disabled = false;
  $('cancel').classList.remove('hidden');
  $('cancel').onclick = () => cancelRun(runId);
  $('progress-section').classList.remove('hidden');
  document.body.dataset.state = 'running';
  delete document.body.dataset.errorType;
  setProgress({ status: 'started', done: 0, chunks: null });
  listen(runId, tariffId, REOPENS, following);
}

/**
 * Follows a run's events. A dropped stream is reopened by the browser itself (readyState
 * CONNECTING: a server restarting); one refused for good (CLOSED: an answer that is not a stream,
 * such as a 400 for a bad id) is not, and the page asks the run's state instead: a typed error or
 * an ended run is shown as final; a run still going is followed again, `reopens` more times.
 */
function listen(runId, tariffId, reopens, which) {
  if (which !== following) return;
  const events = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`);
  const mine = () => {
    if (which === following) return true;
    events.close();
    return false;
  };
  events.addEventListener('state', (e) => {
    if (!mine()) return;
    reopens = REOPENS;
    setProgress(JSON.parse(e.data));
  });
  events.addEventListener('end', (e) => {
    events.close();
    if (!mine()) return;
    showEnd(runId, tariffId, JSON.parse(e.data));
  });
  events.addEventListener('failure', (e) => {
    events.close();
    if (!mine()) return;
    const err = JSON.parse(e.data);
    $('cancel').classList.add('hidden');
    showError('form', `${err.errorType}: ${err.errorMessage}`);
    document.body.dataset.errorType = err.errorType;
    document.body.dataset.state = 'failed';
  });
  events.addEventListener('error', async () => {
    if (!mine() || events.readyState !== EventSource.CLOSED) return; // the browser reconnects
    events.close();
    const again = () => setTimeout(() => listen(runId, tariffId, reopens - 1, which), REOPEN_MS);
    let res;
    let body;
    try {
      res = await fetch(`/api/runs/${encodeURIComponent(runId)}`);
      body = await res.json().catch(() => ({}));
      if (which !== following) return;
    } catch {
      if (which !== following) return;
      // The server cannot be reached (restarting): try again.
      if (reopens > 0) again();
      else showStop({ errorType: 'Unreachable', errorMessage: 'the server could not be reached to follow the run' }, 0);
      return;
    }
    if (res.status === 503 && reopens > 0) {
      again(); // a server closing
      return;
    }
    if (!res.ok) {
      showStop(body, res.status);
      return;
    }
    // Ended, or not found after every try (the stream says when a run stays unknown, once open).
    if (body.status === 'done' || body.status === 'failed' || body.status === 'cancelled' || (body.status === 'unknown' && reopens <= 0)) {
      showEnd(runId, tariffId, body);
      return;
    }
    if (body.status !== 'unknown') setProgress(body);
    if (reopens > 0) again();
    else showStop({ errorType: 'EventsRefused', errorMessage: `the run's events could not be followed (it was ${body.status} when last read)` }, res.status);
  });
}

document.querySelectorAll('input[name="tariff-mode"]').forEach((r) =>
  r.addEventListener('change', () => {
    const json = document.querySelector('input[name="tariff-mode"]:checked').value === 'json';
    $('tariff-form').classList.toggle('hidden', json);
    $('tariff-json').classList.toggle('hidden', !json);
  }),
);
$('run-form').addEventListener('submit', start);
loadMarket().then(() => {
  document.body.dataset.ready = 'true';
  const runId = new URLSearchParams(location.search).get('run');
  if (runId) follow(runId, null);
});
