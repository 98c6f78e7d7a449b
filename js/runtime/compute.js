'use strict';
// Computing one chunk of a stored run: the run's stored inputs prepared once per warm instance (or
// worker thread), then the chunk computed in wasm and its impressions stored as its object. Used in the calling thread (Lambda: one
// invocation per process, nothing else to keep responsive) or in a worker thread of the pool
// (js/runtime/workers.js: the development server, whose event loop serves other requests).

const { withEngine } = require('./engine');
const { readJson } = require('./runs');
const { codes, typed } = require('./errors');

/** Prepared runs of this instance: where the run is kept -> {generation, key, plan}. */
const prepared = new Map();

/** Preparations in progress, so that chunks arriving together read and parse the inputs once. */
const preparing = new Map();

async function prepare(storage, runId, k) {
  const plan = await readJson(storage, k.plan);
  if (plan === null) throw typed(codes.UnknownRun, `run ${runId} has no plan: filter-population has not run`);
  const [market, scenario, population] = await Promise.all([storage.get(k.market), storage.get(k.scenario), storage.get(k.population)]);
  if (market === null || population === null) throw typed(codes.InputNotFound, `run ${runId} lacks its stored inputs`);
  const entry = withEngine((instance) => {
    const { engine } = instance;
    const marketKey = engine.loadMarket(market);
    const visitsKey = engine.loadVisits(population);
    const run = engine.prepareRun(JSON.stringify(plan.chunk_spec), marketKey, scenario === null ? undefined : scenario.toString('utf8'), visitsKey);
    return { generation: instance.generation, key: run.key, plan };
  });
  if (prepared.size >= 8) prepared.delete(prepared.keys().next().value);
  prepared.set(storage.url(k.base), entry);
  return entry;
}

/**
 * The prepared run (inputs read and parsed once per instance; again after a trap).
 * @returns {Promise<{generation: number, key: string, plan: {chunks: number} & Record<string, any>}>}
 */
async function preparedRun(storage, runId, k) {
  // Keyed by where the run is kept: one run id may exist in two environments' storage.
  const where = storage.url(k.base);
  const cached = prepared.get(where);
  const generation = withEngine((i) => i.generation);
  if (cached && cached.generation === generation && withEngine((i) => i.engine.hasRun(cached.key))) return cached;
  let pending = preparing.get(where);
  if (!pending) {
    pending = prepare(storage, runId, k).finally(() => preparing.delete(where));
    preparing.set(where, pending);
  }
  return pending;
}

/**
 * Computes chunk `index` of a stored run.
 * @returns {Promise<{csv: Uint8Array, summary_json: string, profiles: number, impressions: number, compute_ms: number, chunks: number}>}
 */
async function computeChunk(storage, runId, k, index) {
  const run = await preparedRun(storage, runId, k);
  if (index >= run.plan.chunks) throw typed(codes.InvalidRequest, `chunk ${index} does not exist: the run has ${run.plan.chunks}`);
  const started = performance.now();
  const out = withEngine(({ engine }) => engine.chunk(run.key, index));
  return {
    csv: out.impressions_csv,
    summary_json: out.summary_json,
    profiles: out.profiles,
    impressions: out.impressions,
    compute_ms: performance.now() - started,
    chunks: run.plan.chunks,
  };
}

/**
 * Computes chunk `index` of a stored run and stores its impressions as the chunk's object
 * (`chunks/<i>.csv`) where it computed them, while they are fresh: the bytes never cross to
 * another thread. A failed write is thrown as storage threw it (a full disk fails the run).
 * `onComputed` is called between the two (a worker takes its next chunk while this one stores).
 * @returns {Promise<{summary: Uint8Array, summaryLiteral: Uint8Array, profiles: number, impressions: number, compute_ms: number, chunks: number, bytes: number}>}
 */
async function computeAndStoreChunk(storage, runId, k, index, onComputed = () => {}) {
  const out = await computeChunk(storage, runId, k, index);
  onComputed();
  const csv = out.csv;
  const bytes = Buffer.from(csv.buffer, csv.byteOffset, csv.byteLength);
  // On a folder, written in this thread at once (see FolderStorage.putSync).
  if (storage.putSync) storage.putSync(k.chunkCsv(index), bytes);
  else await storage.put(k.chunkCsv(index), bytes);
  // The partial summary as bytes (off the JavaScript heap of the thread that records the chunk
  // done and merges: 41 KB strings by the hundred made its young-generation collections slow), as
  // it is and as a JSON string literal for the done record.
  const encoder = new TextEncoder();
  return {
    summary: encoder.encode(out.summary_json),
    summaryLiteral: encoder.encode(JSON.stringify(out.summary_json)),
    profiles: out.profiles,
    impressions: out.impressions,
    compute_ms: out.compute_ms,
    chunks: out.chunks,
    bytes: csv.byteLength,
  };
}

/**
 * filter-population's computation: the market and visits read, the population filtered, and the
 * chunks' run prepared from it (which checks the spec and the scenario against the market: a
 * run that cannot go fails here, not in every chunk). In a worker thread of the pool in the
 * development server (workers.planInPool: its event loop serves requests meanwhile; the first
 * run of a process takes it about 300 ms, later ones 50), in the calling thread in Lambda.
 * @param {{market: Uint8Array, scenario: string | null, visits: Uint8Array, spec: Record<string, any>}} inputs
 * @returns {{population: {csv: Uint8Array, count: number}, chunkSpec: Record<string, any>, chunks: number}}
 */
function planPopulation({ market, scenario, visits, spec }) {
  return withEngine(({ engine }) => {
    const marketKey = engine.loadMarket(market);
    const visitsKey = engine.loadVisits(visits);
    const population = engine.filterPopulation(visitsKey, JSON.stringify(spec.filter || {}));
    /** @type {Record<string, any>} */
    const chunkSpec = { ...spec, market: 'market.json', visits: 'population.csv', filter: {} };
    if (scenario !== null) chunkSpec.scenario = 'scenario.json';
    else delete chunkSpec.scenario;
    const run = engine.prepareRun(JSON.stringify(chunkSpec), marketKey, scenario === null ? undefined : scenario, engine.loadVisits(population.csv));
    return { population: { csv: population.csv, count: population.count }, chunkSpec, chunks: run.chunk_count };
  });
}

module.exports = { computeChunk, computeAndStoreChunk, preparedRun, planPopulation };
