'use strict';
// Lambda `price` (synchronous, RequestResponse): price one or a few visitor profiles on a market,
// optionally with hypothetical tariffs, and return each profile's results table (annual costs and
// savings, first page) and where every hypothetical tariff ranks.
//
// Handler: js/price.handler
//
// Input:
//   {
//     "request-id": "optional, echoed in the logs",
//     "market": "sample",                       // a stored market's name, or the market JSON inline
//     "hypothetical_tariffs": [ {tariff} ],     // optional, in the market's tariff format
//     "scenario": { "changes": [ ... ] },       // optional, applied before the hypothetical tariffs
//     "profiles": [ { "region": "C", "fuel": "dual_fuel", "elec_kwh": 2700, ... } ],
//                                               // or "profile": { ... } for one
//     "page_size": 10,                          // rows returned per table, 1 to 1000
//     "seed": 0,                                // optional: the order of tariffs of equal cost is a
//                                               // pseudo-random draw from (seed, visit_id,
//                                               // tariff), never a tariff's id nor the profile's
//                                               // place; the same seed and visit, the same order
//     "show_current_tariff": false,             // optional: rank the visitor's own tariff too
//     "whole_of_market": true                   // optional: false lists only switchable tariffs
//   }
//
// Output: { "market": {key, as_of, tariffs_on_sale, hypothetical_tariffs},
//           "results": [ {visit_id, current_cost_gbp, eligible, rows: [...], hypothetical: [...]} ] }
//
// Only the handler, the runtime folder and the wasm module load on this path.

const path = require('node:path');
// The price lambda's own module (only what pricing needs: see engine.js) starts compiling first,
// on V8's background threads, while the rest of this module loads; the handler waits for it once.
const { withEngine, compileAhead, preload, priceAnswer, marketFromFile } = require('./runtime/engine');

const KIND = 'price';
// With TARIFFSIM_PRIME=1 (config.js; read here before the configuration loads) init compiles the
// module on this thread to prime it (below), and a compile on another thread would be wasted.
const compiled = process.env.TARIFFSIM_PRIME === '1' ? Promise.resolve() : compileAhead(KIND);

const { config: processConfig, SAMPLE_MARKET } = require('./runtime/config');
const { wrapHandler } = require('./runtime/wrap-handler');
const { createLogger } = require('./runtime/logging');
const { codes, typed } = require('./runtime/errors');
const { publicPath } = require('./runtime/paths');

const FIELDS = new Set(['request-id', 'requestId', 'market', 'hypothetical_tariffs', 'scenario', 'profiles', 'profile', 'page_size', 'seed', 'show_current_tariff', 'whole_of_market', 'debug_panic']);
const DEFAULT_PAGE_SIZE = 10;
const MAX_PAGE_SIZE = 1000;
const MARKET_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$/;

function invalid(message) {
  return typed(codes.InvalidRequest, message);
}

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

/** The file of a stored market. */
function storedMarketFile(name, config) {
  if (!MARKET_NAME.test(name)) {
    throw invalid(`market ${JSON.stringify(name)} is not a market name: use letters, digits, '.', '_' and '-'`);
  }
  if (config.marketsDir === null) {
    // A user-given name never reaches the prototype ("constructor", "toString", ...).
    const file = Object.hasOwn(config.builtinMarkets, name) ? config.builtinMarkets[name] : undefined;
    if (typeof file !== 'string') throw typed(codes.UnknownMarket, `there is no stored market ${JSON.stringify(name)}: the stored markets are ${Object.keys(config.builtinMarkets).join(', ')}`);
    return file;
  }
  return path.join(config.marketsDir, `${name}.json`);
}

function marketKey(instance, market, config) {
  if (typeof market === 'string') {
    const file = storedMarketFile(market, config);
    try {
      // The zip's own markets (no TARIFFSIM_MARKETS_DIR) are read-only: looked at once a second.
      return marketFromFile(instance, file, config.marketsDir === null);
    } catch (e) {
      if (e.name === codes.InputNotFound) throw typed(codes.UnknownMarket, `there is no stored market ${JSON.stringify(market)} (no ${publicPath(file)})`);
      throw e;
    }
  }
  if (isObject(market)) return instance.engine.loadInlineMarket(Buffer.from(JSON.stringify(market)));
  throw invalid('market must be a stored market name or a market object');
}

function work(input, request) {
  for (const field of Object.keys(input)) {
    if (!FIELDS.has(field)) throw invalid(`unknown field ${JSON.stringify(field)}: expected ${[...FIELDS].join(', ')}`);
  }
  const { config } = request;
  if (input.debug_panic !== undefined) {
    if (!config.debugHooks) throw invalid('debug_panic is refused: it is accepted in the DEV environment only, with TARIFFSIM_DEBUG_HOOKS=1');
    return withEngine((instance) => instance.wasm.debugPanic(String(input.debug_panic)), KIND);
  }
  if (input.market === undefined) throw invalid('market is missing: give a stored market name (e.g. "sample") or a market object');
  let profiles;
  if (input.profiles !== undefined) {
    if (input.profile !== undefined) throw invalid('give profiles or profile, not both');
    profiles = input.profiles;
    if (!Array.isArray(profiles) || profiles.length === 0) throw invalid('profiles must be a non-empty list of profile objects');
  } else if (input.profile !== undefined) {
    profiles = [input.profile];
  } else {
    throw invalid('profiles is missing: give a list of profiles, e.g. [{"region": "C"}]');
  }
  if (profiles.length > config.maxProfiles) throw invalid(`${profiles.length} profiles: at most ${config.maxProfiles} are priced in one request`);
  // A list in place of an object would be read field by field in order (serde): refused here.
  for (let i = 0; i < profiles.length; i += 1) {
    if (!isObject(profiles[i])) throw invalid(`${input.profiles === undefined ? 'profile' : `profiles[${i}]`} must be a profile object, e.g. {"region": "C"}`);
  }
  const pageSize = input.page_size === undefined ? DEFAULT_PAGE_SIZE : input.page_size;
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > MAX_PAGE_SIZE) throw invalid(`page_size must be a whole number from 1 to ${MAX_PAGE_SIZE}`);
  const seed = input.seed === undefined ? 0 : input.seed;
  if (!Number.isSafeInteger(seed) || seed < 0) throw invalid('seed must be a whole number from 0 to 2^53-1');
  const showCurrent = input.show_current_tariff === undefined ? false : input.show_current_tariff;
  const wholeOfMarket = input.whole_of_market === undefined ? true : input.whole_of_market;
  if (typeof showCurrent !== 'boolean') throw invalid('show_current_tariff must be true or false');
  if (typeof wholeOfMarket !== 'boolean') throw invalid('whole_of_market must be true or false');
  let hypothetical;
  if (input.hypothetical_tariffs !== undefined && input.hypothetical_tariffs !== null) {
    if (!Array.isArray(input.hypothetical_tariffs)) throw invalid('hypothetical_tariffs must be a list of tariffs');
    const at = input.hypothetical_tariffs.findIndex((t) => !isObject(t));
    if (at >= 0) throw invalid(`hypothetical_tariffs[${at}] must be a tariff object, in the market's tariff format`);
    if (input.hypothetical_tariffs.length > 0) hypothetical = Buffer.from(JSON.stringify(input.hypothetical_tariffs));
  }
  let scenario;
  if (input.scenario !== undefined && input.scenario !== null) {
    if (!isObject(input.scenario)) throw invalid('scenario must be a scenario object: {"changes": [...]}');
    scenario = Buffer.from(JSON.stringify(input.scenario));
  }
  const priced = (instance) => {
    const key = marketKey(instance, input.market, config);
    // Profiles in by their fields (or, in any other shape, as JSON), the answer out in numbers
    // (see engine.priceAnswer).
    const { answer: out, bytesAtMost } = priceAnswer(instance, { key, scenario, hypothetical, profiles, pageSize, seed, showCurrentTariff: showCurrent, wholeOfMarket });
    // A bound of the answer's size spares the wrapper serializing it, when the bound is in Lambda's limit.
    if (bytesAtMost <= request.config.maxPayloadBytes) request.responseBytes = bytesAtMost;
    if (request.log.enabled('DEBUG')) {
      request.log.debug(`priced ${profiles.length} profile(s) on market ${typeof input.market === 'string' ? input.market : 'inline'} (${key})`);
    }
    return out;
  };
  try {
    return withEngine(priced, KIND);
  } catch (e) {
    // The lean module's errors carry their code alone (no message text is compiled into it): the
    // full build (the same pricing, with messages and the JSON path of a field at fault) answers
    // the call instead, so every message is the one the other lambdas and `tariffsim price` give.
    // Only failed calls pay for loading it. JS errors and traps always have a message.
    if (!(e instanceof Error) || e.message !== '') throw e;
    return withEngine(priced, 'full');
  }
}

const handle = wrapHandler('price', work);

/** Whether `ready` has settled: from then on a call goes straight to the wrapped handler. */
let isReady = false;

/** The handler: the first calls wait for the module (compiled, instantiated, primed), then none. */
exports.handler = (event, context) => (isReady ? handle(event, context) : ready.then(() => handle(event, context)));

/**
 * With TARIFFSIM_PRIME=1, primes the module during a cold start's init: one request answered on
 * the bundled sample market by the same handler (its log lines dropped), so that V8 compiles the
 * wasm functions a request runs (lazily, on first call: most of a first request's time) and the
 * JavaScript around them before a caller waits. Where Lambda initializes an instance ahead of its
 * first request (provisioned concurrency), that request starts warm (about 0.4 ms instead of 6);
 * otherwise init plus first request take up to a few milliseconds more in all (`npm run bench`'s
 * primed row), hence off by default. Best effort: a failure here leaves the first request to do
 * the work and to report what fails. The engine's cache is keyed by content, so priming leaves no
 * trace in any answer.
 */
function prime() {
  try {
    // PROD's settings but its secret references (getters that throw until resolved: `price`
    // never reads them), on the bundled market.
    const prod = processConfig.forEnvironment('PROD');
    const settings = { marketsDir: null, builtinMarkets: { sample: SAMPLE_MARKET } };
    for (const key of Object.keys(prod)) if (!Object.hasOwn(prod.secretRefs, key) && !Object.hasOwn(settings, key)) settings[key] = prod[key];
    const config = { ...processConfig, forEnvironment: () => settings };
    const primer = wrapHandler('price', work, { config, logger: createLogger({ write: () => {} }) });
    const profile = { visit_id: 'prime', region: 'C', fuel: 'dual_fuel', meter: 'single_rate', payment_method: 'direct_debit', elec_kwh: 2700, gas_kwh: 11500, current_supplier: 'British Gas', filters: { fixed_only: false } };
    return primer({ market: 'sample', profiles: [profile], page_size: DEFAULT_PAGE_SIZE }, {}).then(() => undefined, () => undefined);
  } catch {
    // see above: the first request does the work
    return undefined;
  }
}
/**
 * Settles once the module is compiled and instantiated (never rejects: what failed fails again,
 * and is reported, on the first request).
 * @type {Promise<void>}
 */
const ready = compiled.then(() => {
  isReady = true;
});
exports.ready = ready;

// Priming runs during init itself, on this thread: Lambda freezes an instance between its init
// and its first request, so work left to the event loop would wait for that request.
if (processConfig.prime) {
  try {
    preload(KIND);
  } catch {
    // the first request reports it
  }
  prime();
}
