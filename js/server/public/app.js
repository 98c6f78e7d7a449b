'use strict';
// The run page: builds a run spec from the form, starts it through the run-simulation lambda,
// follows it over server-sent events and draws the hypothetical tariff's rank distribution.

const $ = (id) => document.getElementById(id);
const REGIONS = 'ABCDEFGHJKLMNP'.split('');
let market = null;
let chart = null;

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
      throw { field: 'tariff', message: `the tariff is not JSON: ${e.message}` };
    }
    if (tariff === null || typeof tariff !== 'object' || Array.isArray(tariff)) throw { field: 'tariff', message: 'paste one tariff object' };
    return { tariffId: tariff.id, changes: [{ op: 'add_tariff', tariff }] };
  }
  const percent = Number($('percent').value);
  if (!Number.isFinite(percent) || percent <= -100) throw { field: 'tariff', message: 'give a price change above -100%' };
  const supplier = $('supplier').value.trim();
  const name = $('tariff-name').value.trim();
  if (!supplier || !name) throw { field: 'tariff', message: 'give the supplier and the tariff name' };
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

async function showSummary(runId, tariffId) {
  const summary = await (await fetch(`/api/runs/${encodeURIComponent(runId)}/summary`)).json();
  const t = summary.tariffs.find((x) => x.id === tariffId) || summary.tariffs.find((x) => x.hypothetical);
  $('summary-tariff').textContent = t ? `${t.supplier} (${t.id})` : tariffId;
  const hist = t ? t.rank_histogram : [];
  if (chart) chart.destroy();
  chart = new Chart($('rank-chart'), {
    type: 'bar',
    data: { labels: hist.map((_, i) => `#${i + 1}`), datasets: [{ label: 'impressions by rank', data: hist, backgroundColor: '#2f6feb' }] },
    options: { animation: false, responsive: false, scales: { y: { beginAtZero: true } } },
  });
  $('s-impressions').textContent = t ? t.impressions.toLocaleString('en-GB') : '0';
  $('s-page1').textContent = t ? `${(100 * t.page1_share).toFixed(2)}%` : '-';
  $('s-rank1').textContent = t ? `${(100 * t.rank1_share).toFixed(2)}%` : '-';
  $('s-clicks').textContent = t ? t.expected_clicks.toFixed(1) : '-';
  $('s-saving').textContent = t && t.mean_saving_gbp !== null ? `£${t.mean_saving_gbp.toFixed(2)}` : '-';
  $('download').href = `/api/runs/${encodeURIComponent(runId)}/impressions.csv`;
  $('summary').classList.remove('hidden');
  document.body.dataset.state = 'done';
}

async function start(event) {
  event.preventDefault();
  clearErrors();
  $('summary').classList.add('hidden');
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
    scenario: { name: 'page', changes: sc.changes },
    filter: filter(),
    sample_size: Number.isInteger(sampleSize) ? sampleSize : -1,
    chunk_size: Math.max(1000, Math.ceil(Math.max(sampleSize, 1) / 50)),
    seed: 1,
    page_size: 10,
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

function follow(runId, tariffId) {
  $('run-id').textContent = runId;
  $('cancel').disabled = false;
  $('cancel').classList.remove('hidden');
  $('cancel').onclick = () => cancelRun(runId);
  $('progress-section').classList.remove('hidden');
  document.body.dataset.state = 'running';
  setProgress({ status: 'started', done: 0, chunks: null });
  const events = new EventSource(`/api/runs/${encodeURIComponent(runId)}/events`);
  events.addEventListener('state', (e) => setProgress(JSON.parse(e.data)));
  events.addEventListener('end', (e) => {
    events.close();
    const final = JSON.parse(e.data);
    setProgress(final);
    $('cancel').classList.add('hidden');
    if (final.status === 'done') showSummary(runId, tariffId);
    else if (final.status === 'cancelled') {
      const reason = (final.cancellation || {}).reason;
      if (reason) $('status').textContent += ` (${reason})`;
      document.body.dataset.state = 'cancelled';
    } else {
      const failure = final.failure || {};
      showError(fieldOf({ errorType: failure.error_type, errorMessage: failure.reason }), failure.reason || final.status);
      document.body.dataset.state = 'failed';
    }
  });
  events.addEventListener('failure', (e) => {
    events.close();
    const err = JSON.parse(e.data);
    showError('form', `${err.errorType}: ${err.errorMessage}`);
    document.body.dataset.state = 'failed';
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
});
