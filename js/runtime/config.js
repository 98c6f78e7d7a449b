'use strict';
// Configuration, read from the environment once at module scope and chosen per alias: a variable
// NAME_<ENV> (e.g. TARIFFSIM_MARKETS_DIR_PROD) wins over NAME for requests of that environment, so
// one function with DEV, STAGING and PROD aliases can point each at its own folders.
//
//   TARIFFSIM_MARKETS_DIR   stored markets for `price`, one <name>.json each, optionally with a
//                           <name>.json.snapshot (or the snapshot alone; js/tools/snapshot.js)
//                           (default: the bundled data/sample/market.json as market "sample")
//   TARIFFSIM_DATA_DIR      where simulate-chunk resolves run specs and their inputs (default: data/)
//   TARIFFSIM_OUT_DIR       where simulate-chunk writes impressions and summaries
//                           (default: $TMPDIR/tariffsim/out; Lambda can write only under /tmp)
//   TARIFFSIM_MAX_PROFILES  most profiles in one `price` request (default 100)
//   TARIFFSIM_DEBUG_HOOKS   0 turns off the DEV-only fault injection (`debug_panic`)
//   TARIFFSIM_LOG_LEVEL     TRACE, DEBUG, INFO (default), WARN, ERROR, FATAL;
//                           AWS_LAMBDA_LOG_LEVEL wins when Lambda sets it
//   AWS_LAMBDA_LOG_FORMAT   JSON for one JSON object per log line (set by Lambda's JSON log format)
//
// Fan-out runs (run-simulation -> filter-population -> simulate-chunk):
//   TARIFFSIM_STORAGE        where runs are kept: a folder, or s3://bucket/prefix
//                            (default: the output folder, TARIFFSIM_OUT_DIR)
//   TARIFFSIM_S3_ENDPOINT    an S3-compatible endpoint (e.g. a moto server) instead of AWS
//   REDIS_URL                Redis for pub/sub (default: the embedded in-process bus)
//   TARIFFSIM_CHUNK_BUDGET   chunks of a run in flight at once (default DEV 10, STAGING 50, PROD 200)
//   TARIFFSIM_MAX_DEPTH      longest chain of lambdas calling lambdas (default 8)
//   TARIFFSIM_LAMBDA_ENDPOINT  a Lambda-compatible endpoint for production-mode invoke
//   TARIFFSIM_ARN_PATTERN    ARN of a target, from {region} {account} {function} {target} {alias}
//                            (default arn:aws:lambda:{region}:{account}:function:{function}:{alias})
//   TARIFFSIM_FUNCTION_PREFIX  function name = prefix + target (default tariffsim-)
//   TARIFFSIM_RETRY_DELAYS_MS  in-process retries of a failed asynchronous call (default 50,100)
//   TARIFFSIM_FAIL_CHUNKS    DEV-only fault injection for tests: <run>:<chunk>:<times>,...
//   TARIFFSIM_WASM_TIERING_BUDGET
//                           V8's --wasm-tiering-budget, which the price handler sets before the
//                           module compiles (default 50000000; 0 leaves V8's own): a cold start
//                           then runs on the baseline compiler instead of optimising code it runs
//                           once, which roughly halves the first request

const path = require('node:path');
const { ENVIRONMENTS } = require('./environment');

/** The repository root, which is also the root of the Lambda zip. */
const ROOT = path.resolve(__dirname, '..', '..');
/** Lambda's limit for a synchronous request and for a response: 6 MB. */
const LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024;
/** Chunks of one run in flight at once, per environment: DEV can never starve PROD. */
const CHUNK_BUDGET = Object.freeze({ DEV: 10, STAGING: 50, PROD: 200 });
/** The market every deployment has, bundled in the zip. */
const SAMPLE_MARKET = path.join(ROOT, 'data', 'sample', 'market.json');

function setting(env, key, name) {
  const own = env[`${key}_${name}`];
  if (own !== undefined && own !== '') return own;
  const shared = env[key];
  return shared !== undefined && shared !== '' ? shared : undefined;
}

function positiveInt(value, fallback, key) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new Error(`${key}=${value}: give a whole number from 1`);
  return n;
}

/**
 * The configuration for every environment, from environment variables.
 * @param {Record<string, string|undefined>} [env]
 */
function loadConfig(env = process.env) {
  const byName = {};
  for (const name of ENVIRONMENTS) {
    const get = (key) => setting(env, key, name);
    const marketsDir = get('TARIFFSIM_MARKETS_DIR');
    byName[name] = Object.freeze({
      environment: name,
      root: ROOT,
      marketsDir: marketsDir ? path.resolve(marketsDir) : null,
      builtinMarkets: marketsDir ? Object.freeze({}) : Object.freeze({ sample: SAMPLE_MARKET }),
      dataDir: path.resolve(get('TARIFFSIM_DATA_DIR') || path.join(ROOT, 'data')),
      outDir: path.resolve(get('TARIFFSIM_OUT_DIR') || path.join(env.TMPDIR || '/tmp', 'tariffsim', 'out')),
      maxPayloadBytes: LAMBDA_PAYLOAD_LIMIT,
      maxProfiles: positiveInt(get('TARIFFSIM_MAX_PROFILES'), 100, 'TARIFFSIM_MAX_PROFILES'),
      debugHooks: name === 'DEV' && get('TARIFFSIM_DEBUG_HOOKS') !== '0',
      logLevel: (env.AWS_LAMBDA_LOG_LEVEL || get('TARIFFSIM_LOG_LEVEL') || 'INFO').toUpperCase(),
      storage: get('TARIFFSIM_STORAGE') || path.resolve(get('TARIFFSIM_OUT_DIR') || path.join(env.TMPDIR || '/tmp', 'tariffsim', 'out')),
      s3Endpoint: get('TARIFFSIM_S3_ENDPOINT') || null,
      redisUrl: get('REDIS_URL') || null,
      chunkBudget: positiveInt(get('TARIFFSIM_CHUNK_BUDGET'), CHUNK_BUDGET[name], 'TARIFFSIM_CHUNK_BUDGET'),
      maxDepth: positiveInt(get('TARIFFSIM_MAX_DEPTH'), 8, 'TARIFFSIM_MAX_DEPTH'),
      lambdaEndpoint: get('TARIFFSIM_LAMBDA_ENDPOINT') || null,
      arnPattern: get('TARIFFSIM_ARN_PATTERN') || null,
      functionPrefix: get('TARIFFSIM_FUNCTION_PREFIX') || 'tariffsim-',
      retryDelaysMs: (get('TARIFFSIM_RETRY_DELAYS_MS') || '50,100').split(',').map((x) => positiveInt(x.trim(), 50, 'TARIFFSIM_RETRY_DELAYS_MS')),
      failChunks: name === 'DEV' ? get('TARIFFSIM_FAIL_CHUNKS') || null : null,
    });
  }
  const logFormat = (env.AWS_LAMBDA_LOG_FORMAT || env.TARIFFSIM_LOG_FORMAT || 'text').toUpperCase() === 'JSON' ? 'json' : 'text';
  const budget = env.TARIFFSIM_WASM_TIERING_BUDGET === undefined || env.TARIFFSIM_WASM_TIERING_BUDGET === '' ? 50000000 : Number(env.TARIFFSIM_WASM_TIERING_BUDGET);
  if (!Number.isSafeInteger(budget) || budget < 0) throw new Error(`TARIFFSIM_WASM_TIERING_BUDGET=${env.TARIFFSIM_WASM_TIERING_BUDGET}: give a whole number, 0 for V8's default`);
  return Object.freeze({
    /** V8's wasm tiering budget to set before compiling the module (0: leave V8's). */
    wasmTieringBudget: budget,
    /** The settings for requests of environment `name` (DEV for anything unknown). */
    forEnvironment: (name) => byName[name] || byName.DEV,
    logFormat,
    /** In Lambda a record's lines are joined by CR, so CloudWatch keeps a stack as one event. */
    lineBreak: env.AWS_LAMBDA_FUNCTION_NAME ? '\r' : '\n',
  });
}

/** The configuration of this process. */
const config = loadConfig();

module.exports = { ROOT, LAMBDA_PAYLOAD_LIMIT, SAMPLE_MARKET, loadConfig, config };
