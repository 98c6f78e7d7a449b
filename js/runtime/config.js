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
//   TARIFFSIM_DEBUG_HOOKS   1 turns on the DEV-only fault injection (`debug_panic`,
//                           TARIFFSIM_FAIL_CHUNKS); off unless set (never in STAGING or PROD)
//   TARIFFSIM_ALLOWED_HOSTS the development server's Host names besides loopback, comma-separated,
//                           each `name` (any port) or `name:port` (docs/server.md)
//   TARIFFSIM_LOG_LEVEL     TRACE, DEBUG, INFO (default), WARN, ERROR, FATAL;
//                           AWS_LAMBDA_LOG_LEVEL wins when Lambda sets it
//   AWS_LAMBDA_LOG_FORMAT   JSON for one JSON object per log line (set by Lambda's JSON log format)
//
// Fan-out runs (run-simulation -> filter-population -> simulate-chunk):
//   TARIFFSIM_STORAGE        where runs are kept: a folder, or s3://bucket/prefix
//                            (default: the output folder, TARIFFSIM_OUT_DIR)
//   TARIFFSIM_S3_ENDPOINT    an S3-compatible endpoint (e.g. a moto server) instead of AWS
//   REDIS_URL                Redis for pub/sub (default: the embedded in-process bus)
//   TARIFFSIM_CHUNK_BUDGET   chunks computing at once in the environment, over all its runs
//                            (default DEV 10, STAGING 50, PROD 200; js/runtime/budget.js)
//   TARIFFSIM_MAX_SAMPLE_SIZE  the largest sample_size a run may ask for (default DEV 2,000,000,
//                            STAGING 20,000,000, PROD 200,000,000): SampleSizeTooLarge above
//   TARIFFSIM_LEASE_MS       how long a chunk's budget slot and claim last without renewal
//                            (default 60000): a dead chunk's slot is free again after this
//   TARIFFSIM_STALL_MS       a run with no progress for this long of work fails as stalled (time
//                            when nothing ran it, a server down, does not count; default 900000)
//   TARIFFSIM_SWEEP_MS       how often the development server (and, at most, any invocation)
//                            looks for runs to resume or to fail as stalled (default 5000)
//   TARIFFSIM_MAX_DEPTH      longest chain of lambdas calling lambdas (default 8)
//   TARIFFSIM_LAMBDA_ENDPOINT  a Lambda-compatible endpoint for production-mode invoke
//   TARIFFSIM_ARN_PATTERN    ARN of a target, from {region} {account} {function} {target} {alias}
//                            (default arn:aws:lambda:{region}:{account}:function:{function}:{alias})
//   TARIFFSIM_FUNCTION_PREFIX  function name = prefix + target (default config/functions.json's, tariffsim-)
//   TARIFFSIM_RETRY_DELAYS_MS  in-process retries of a failed asynchronous call (default 50,100)
//   TARIFFSIM_FAIL_CHUNKS    DEV-only fault injection for tests: <run>:<chunk>:<times>,...
//   TARIFFSIM_PRIME         1: the price handler answers one request on the bundled sample market
//                           during init (js/price.js prime), so that its first real request finds
//                           the code compiled (about 0.4 ms instead of 6 on a 2-core machine) at
//                           the cost of up to a few ms more in all; for instances initialized ahead
//                           of their first request (provisioned concurrency). Off by default.
//   TARIFFSIM_CONFIG_FILE   the configuration per alias (default config/environments.json)
//   TARIFFSIM_SSM_ENDPOINT  an SSM-compatible endpoint for secret references (e.g. a moto server)
//
// The bundle's configuration per alias: config/environments.json (TARIFFSIM_CONFIG_FILE names
// another file) gives each environment's values under the names in FILE_SETTINGS (storage,
// redisUrl, chunkBudget, maxDepth, maxProfiles, logLevel, arnPattern, functionPrefix, ...). For
// each setting the first of these wins: NAME_<ENV>, NAME, the file's value for the environment, the
// built-in default. The "where" settings (storage, redisUrl, s3Endpoint, lambdaEndpoint, and the
// folders) are taken from the file only when the code runs in Lambda (AWS_LAMBDA_FUNCTION_NAME is
// set): in development the monolith keeps its local folder and embedded bus.
//
// Secrets are references in the file, never values: {"ssm": "/tariffsim/prod/redis-url"} (an SSM
// parameter, SecureString or String). Nothing here resolves them, so the synchronous `price` path
// never loads the AWS SDK nor waits on SSM: reading an unresolved setting throws SecretNotResolved,
// and `await resolveSecrets(settings)` returns the settings with the values, fetched with the AWS SDK
// on first use and cached for SECRET_TTL_MS. An environment variable for the setting overrides the
// reference, and then nothing is fetched. (docs/deploy.md)

const fs = require('node:fs');
const path = require('node:path');
const { ENVIRONMENTS } = require('./environment');
const { DEFAULT_REGION, FUNCTION_PREFIX } = require('./functions');

/** The repository root, which is also the root of the Lambda zip. */
const { ROOT, fromRoot } = require('./paths');
/** Lambda's limit for a synchronous request and for a response: 6 MB. */
const LAMBDA_PAYLOAD_LIMIT = 6 * 1024 * 1024;
/** Chunks of one run in flight at once, per environment: DEV can never starve PROD. */
const CHUNK_BUDGET = Object.freeze({ DEV: 10, STAGING: 50, PROD: 200 });
/** The largest sample a run may ask for, per environment. */
const MAX_SAMPLE_SIZE = Object.freeze({ DEV: 2_000_000, STAGING: 20_000_000, PROD: 200_000_000 });
/** The market every deployment has, bundled in the zip. */
const SAMPLE_MARKET = fromRoot('data', 'sample', 'market.json');
/** The bundle's configuration per alias. */
const ENVIRONMENTS_FILE = fromRoot('config', 'environments.json');
/** How long a resolved secret is used before it is fetched again. */
const SECRET_TTL_MS = 5 * 60 * 1000;

/**
 * The settings the file may give, with the environment variable that overrides each and whether
 * it says where things are (taken from the file only in Lambda).
 */
const FILE_SETTINGS = Object.freeze({
  marketsDir: { variable: 'TARIFFSIM_MARKETS_DIR', where: true },
  dataDir: { variable: 'TARIFFSIM_DATA_DIR', where: true },
  outDir: { variable: 'TARIFFSIM_OUT_DIR', where: true },
  storage: { variable: 'TARIFFSIM_STORAGE', where: true },
  s3Endpoint: { variable: 'TARIFFSIM_S3_ENDPOINT', where: true },
  redisUrl: { variable: 'REDIS_URL', where: true },
  lambdaEndpoint: { variable: 'TARIFFSIM_LAMBDA_ENDPOINT', where: true },
  maxProfiles: { variable: 'TARIFFSIM_MAX_PROFILES', where: false },
  logLevel: { variable: 'TARIFFSIM_LOG_LEVEL', where: false },
  chunkBudget: { variable: 'TARIFFSIM_CHUNK_BUDGET', where: false },
  maxSampleSize: { variable: 'TARIFFSIM_MAX_SAMPLE_SIZE', where: false },
  maxDepth: { variable: 'TARIFFSIM_MAX_DEPTH', where: false },
  arnPattern: { variable: 'TARIFFSIM_ARN_PATTERN', where: false },
  functionPrefix: { variable: 'TARIFFSIM_FUNCTION_PREFIX', where: false },
  retryDelaysMs: { variable: 'TARIFFSIM_RETRY_DELAYS_MS', where: false },
});

class ConfigError extends Error {
  constructor(code, message) {
    super(message);
    Object.defineProperty(this, 'name', { value: code, writable: true, configurable: true });
  }
}

function isSecretRef(value) {
  return value !== null && typeof value === 'object' && !Array.isArray(value) && Object.keys(value).length === 1 && typeof value.ssm === 'string';
}

/**
 * The configuration file as messages name it: relative to the task root when it lies there
 * (`config/environments.json`), else by the variable that named it, never by absolute path (an
 * init error reaches the caller).
 * @param {string} file absolute path
 */
function shownFile(file) {
  const rel = path.relative(ROOT, file);
  return rel !== '' && !rel.startsWith('..') && !path.isAbsolute(rel) ? rel.split(path.sep).join('/') : '$TARIFFSIM_CONFIG_FILE';
}

/**
 * The file's settings per environment, checked: known environments and settings only, values of
 * the right kind, secrets as references.
 * @returns {Record<string, Record<string, unknown>>}
 */
function readEnvironmentsFile(file) {
  let parsed;
  let text;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch (e) {
    throw new ConfigError('InvalidConfig', `${shownFile(file)} cannot be read (${e.code || e.name})`);
  }
  try {
    parsed = JSON.parse(text);
  } catch (e) {
    throw new ConfigError('InvalidConfig', `${shownFile(file)} is not JSON: ${e.message}`);
  }
  // The file as messages name it, made only for a message.
  const invalid = (message) => new ConfigError('InvalidConfig', `${shownFile(file)}: ${message}`);
  const envs = parsed && parsed.environments;
  if (envs === null || typeof envs !== 'object' || Array.isArray(envs)) throw invalid(`give {"environments": {"DEV": {...}, "STAGING": {...}, "PROD": {...}}}`);
  for (const [name, values] of Object.entries(envs)) {
    if (!ENVIRONMENTS.includes(name)) throw invalid(`unknown environment ${JSON.stringify(name)}: the environments are ${ENVIRONMENTS.join(', ')}`);
    for (const [key, value] of Object.entries(values)) {
      if (!Object.hasOwn(FILE_SETTINGS, key)) throw invalid(`${name}.${key} is not a setting: the settings are ${Object.keys(FILE_SETTINGS).join(', ')}`);
      if (isSecretRef(value)) {
        if (!value.ssm.startsWith('/')) throw invalid(`${name}.${key}: an SSM parameter name starts with '/'`);
        continue;
      }
      const ok = key === 'retryDelaysMs' ? Array.isArray(value) && value.every(Number.isSafeInteger) : typeof value === 'string' || (typeof value === 'number' && Number.isSafeInteger(value));
      if (!ok) throw invalid(`${name}.${key} must be ${key === 'retryDelaysMs' ? 'a list of whole numbers' : 'a string, a whole number or {"ssm": "/parameter/name"}'}`);
    }
  }
  return envs;
}

function setting(env, key, name) {
  const own = env[`${key}_${name}`];
  if (own !== undefined && own !== '') return own;
  const shared = env[key];
  return shared !== undefined && shared !== '' ? shared : undefined;
}

/**
 * A whole number from 1, or `fallback` when not given.
 * @param {string|undefined} value
 * @param {number} fallback
 * @param {() => string} source where the value came from, for the message (`TARIFFSIM_MAX_DEPTH_PROD`,
 *   `config/environments.json PROD.maxDepth`)
 */
function positiveInt(value, fallback, source) {
  if (value === undefined) return fallback;
  const n = Number(value);
  if (!Number.isSafeInteger(n) || n < 1) throw new ConfigError('InvalidConfig', `${source()}=${value}: give a whole number from 1`);
  return n;
}

/** Names of the variables this module reads begin so (TMPDIR aside). */
const VARIABLE_PREFIXES = ['TARIFFSIM_', 'REDIS_URL', 'AWS_'];

/**
 * The variables of `env` this module reads, as a plain object: every read of `process.env` is a
 * call into the host (loadConfig makes about a hundred, most for variables that are not set).
 * @param {Record<string, string|undefined>} env
 * @returns {Record<string, string|undefined>}
 */
function variablesOf(env) {
  const out = { TMPDIR: env.TMPDIR };
  for (const name of Object.keys(env)) {
    if (VARIABLE_PREFIXES.some((p) => name.startsWith(p))) out[name] = env[name];
  }
  return out;
}

/** The file setting each variable gives: variable name -> setting. */
const SETTING_OF = new Map(Object.entries(FILE_SETTINGS).map(([key, { variable }]) => [variable, key]));

/** Settings whose value is a secret reference, kept out of sight until resolved. */
const unresolved = new WeakMap();

/**
 * The configuration for every environment, from environment variables and the bundle's file. The
 * file is read and checked here; each environment's settings are made on its first use
 * (`forEnvironment`), so a lambda reads only the settings of the aliases it serves.
 * @param {Record<string, string|undefined>} [env]
 * @param {{file?: string|null, deployed?: boolean}} [options] `file`: the configuration per alias
 *   (default TARIFFSIM_CONFIG_FILE, else config/environments.json when it exists; null: none);
 *   `deployed`: take the "where" settings from the file (default: running in Lambda)
 */
function loadConfig(env = process.env, options = {}) {
  env = variablesOf(env);
  let file = options.file;
  if (file === undefined) file = env.TARIFFSIM_CONFIG_FILE || (fs.existsSync(ENVIRONMENTS_FILE) ? ENVIRONMENTS_FILE : null);
  // Absolute (the bundle's own file is already: no path.resolve, whose first call a cold start
  // pays for, on the price lambda's path).
  if (file && file !== ENVIRONMENTS_FILE) file = path.resolve(file);
  const fromFile = file ? readEnvironmentsFile(file) : {};
  const deployed = options.deployed === undefined ? Boolean(env.AWS_LAMBDA_FUNCTION_NAME) : options.deployed;
  /**
   * One environment's settings, made on its first request: a cold start reads the variables and
   * the file of the one environment it serves, not of all three.
   * @param {string} name
   */
  const settingsOf = (name) => {
    const own = fromFile[name] || {};
    const refs = {};
    /** Where each setting read came from, for messages: the variable, or the file and its key. */
    const sources = {};
    // A setting: its environment variable (NAME_<ENV>, then NAME), else the file, else undefined.
    const get = (key) => {
      const fromEnv = setting(env, key, name);
      if (fromEnv !== undefined) {
        const ownName = `${key}_${name}`;
        sources[key] = env[ownName] !== undefined && env[ownName] !== '' ? ownName : key;
        return fromEnv;
      }
      const fileKey = SETTING_OF.get(key);
      if (fileKey === undefined || !Object.hasOwn(own, fileKey) || (FILE_SETTINGS[fileKey].where && !deployed)) return undefined;
      // (The file's name as messages give it is made only for a message: see `source`.)
      sources[key] = `${name}.${fileKey}`;
      const value = own[fileKey];
      if (isSecretRef(value)) {
        refs[fileKey] = value;
        return undefined;
      }
      if (Array.isArray(value)) return value.join(',');
      // A folder in the file is relative to the task root (the root of the zip).
      return fileKey.endsWith('Dir') ? path.resolve(ROOT, String(value)) : String(value);
    };
    /** Where a setting read came from, as a message names it. */
    const source = (key) => (sources[key].startsWith(`${name}.`) ? `${shownFile(/** @type {string} */ (file))} ${sources[key]}` : sources[key]);
    /** A whole-number setting, or its default. */
    const count = (key, fallback) => positiveInt(get(key), fallback, () => source(key));
    const folder = (key) => {
      const value = get(key);
      return value === undefined ? undefined : path.resolve(value);
    };
    const marketsDir = folder('TARIFFSIM_MARKETS_DIR');
    const outDir = folder('TARIFFSIM_OUT_DIR') || (env.TMPDIR === undefined && path.sep === '/' ? '/tmp/tariffsim/out' : path.resolve(env.TMPDIR || '/tmp', 'tariffsim', 'out'));
    const settings = {
      environment: name,
      root: ROOT,
      marketsDir: marketsDir || null,
      builtinMarkets: marketsDir ? Object.freeze({}) : Object.freeze({ sample: SAMPLE_MARKET }),
      dataDir: folder('TARIFFSIM_DATA_DIR') || fromRoot('data'),
      outDir,
      maxPayloadBytes: LAMBDA_PAYLOAD_LIMIT,
      maxProfiles: count('TARIFFSIM_MAX_PROFILES', 100),
      debugHooks: name === 'DEV' && get('TARIFFSIM_DEBUG_HOOKS') === '1',
      logLevel: (env.AWS_LAMBDA_LOG_LEVEL || get('TARIFFSIM_LOG_LEVEL') || 'INFO').toUpperCase(),
      storage: get('TARIFFSIM_STORAGE') || outDir,
      s3Endpoint: get('TARIFFSIM_S3_ENDPOINT') || null,
      redisUrl: get('REDIS_URL') || null,
      chunkBudget: count('TARIFFSIM_CHUNK_BUDGET', CHUNK_BUDGET[name]),
      maxSampleSize: count('TARIFFSIM_MAX_SAMPLE_SIZE', MAX_SAMPLE_SIZE[name]),
      leaseMs: count('TARIFFSIM_LEASE_MS', 60_000),
      stallMs: count('TARIFFSIM_STALL_MS', 900_000),
      sweepMs: count('TARIFFSIM_SWEEP_MS', 5_000),
      maxDepth: count('TARIFFSIM_MAX_DEPTH', 8),
      lambdaEndpoint: get('TARIFFSIM_LAMBDA_ENDPOINT') || null,
      arnPattern: get('TARIFFSIM_ARN_PATTERN') || null,
      functionPrefix: get('TARIFFSIM_FUNCTION_PREFIX') || FUNCTION_PREFIX,
      retryDelaysMs: (get('TARIFFSIM_RETRY_DELAYS_MS') || '50,100').split(',').map((x) => positiveInt(x.trim(), 50, () => source('TARIFFSIM_RETRY_DELAYS_MS'))),
      failChunks: name === 'DEV' ? get('TARIFFSIM_FAIL_CHUNKS') || null : null,
    };
    // A setting given by reference reads as an error until resolved: never a silent default.
    for (const [key, ref] of Object.entries(refs)) {
      delete settings[key];
      Object.defineProperty(settings, key, {
        enumerable: true,
        get() {
          throw new ConfigError('SecretNotResolved', `setting ${key} of ${name} is the SSM parameter ${ref.ssm}: resolve it first (await resolveSecrets(settings)) or set ${FILE_SETTINGS[key].variable}_${name}`);
        },
      });
    }
    /** The settings' secret references: setting -> {ssm}. */
    Object.defineProperty(settings, 'secretRefs', { value: Object.freeze(refs), enumerable: false });
    const frozen = Object.freeze(settings);
    if (Object.keys(refs).length > 0) {
      const plain = {};
      for (const key of Object.keys(settings)) if (!Object.hasOwn(refs, key)) plain[key] = settings[key];
      unresolved.set(frozen, { plain, refs, env });
    }
    return frozen;
  };
  /** Each environment's settings once made. */
  const byName = new Map();
  const logFormat = (env.AWS_LAMBDA_LOG_FORMAT || env.TARIFFSIM_LOG_FORMAT || 'text').toUpperCase() === 'JSON' ? 'json' : 'text';
  return Object.freeze({
    /** Whether the price handler primes itself during init (TARIFFSIM_PRIME=1). */
    prime: env.TARIFFSIM_PRIME === '1',
    /**
     * The settings for requests of environment `name` (DEV for anything unknown), made on first
     * use: a setting with a bad value (TARIFFSIM_MAX_DEPTH=x) throws InvalidConfig, naming it.
     */
    forEnvironment: (name) => {
      const known = ENVIRONMENTS.includes(name) ? name : 'DEV';
      let settings = byName.get(known);
      if (settings === undefined) {
        settings = settingsOf(known);
        byName.set(known, settings);
      }
      return settings;
    },
    logFormat,
    /** In Lambda a record's lines are joined by CR, so CloudWatch keeps a stack as one event. */
    lineBreak: env.AWS_LAMBDA_FUNCTION_NAME ? '\r' : '\n',
    /** The file the per-alias values came from (null: none). */
    file: file || null,
    /** Host names the development server answers besides loopback (TARIFFSIM_ALLOWED_HOSTS). */
    allowedHosts: Object.freeze((env.TARIFFSIM_ALLOWED_HOSTS || '').split(',').map((h) => h.trim().toLowerCase()).filter(Boolean)),
  });
}

// Resolved secrets of this process: parameter name -> {value, at} (or the fetch in flight).
const secrets = new Map();
let ssmClient = null;

function defaultFetch(env) {
  return async (name) => {
    const sdk = require('@aws-sdk/client-ssm');
    if (ssmClient === null) {
      const endpoint = env.TARIFFSIM_SSM_ENDPOINT;
      ssmClient = new sdk.SSMClient({ region: env.AWS_REGION || DEFAULT_REGION, ...(endpoint ? { endpoint } : {}) });
    }
    try {
      const out = await ssmClient.send(new sdk.GetParameterCommand({ Name: name, WithDecryption: true }));
      return out.Parameter.Value;
    } catch (e) {
      throw new ConfigError('SecretNotFound', `SSM parameter ${name} could not be read (${e.name}: ${e.message}): create it, or give the role ssm:GetParameter on it`);
    }
  };
}

/**
 * The settings with their secret references resolved (the same object when there are none).
 * Each parameter is fetched once and kept for `ttlMs`; concurrent callers share one fetch.
 * @template {object} S
 * @param {S} settings from `config.forEnvironment(name)`
 * @param {{fetch?: (name: string) => Promise<string>, ttlMs?: number, now?: () => number}} [options]
 * @returns {Promise<S>} settings of the same shape
 */
async function resolveSecrets(settings, options = {}) {
  const pending = unresolved.get(settings);
  if (pending === undefined) return settings;
  const fetch = options.fetch || defaultFetch(pending.env);
  const ttl = options.ttlMs === undefined ? SECRET_TTL_MS : options.ttlMs;
  const now = options.now || Date.now;
  const values = {};
  await Promise.all(
    Object.entries(pending.refs).map(async ([key, ref]) => {
      let entry = secrets.get(ref.ssm);
      if (entry === undefined || (entry.at !== null && now() - entry.at >= ttl)) {
        const promise = fetch(ref.ssm).then(
          (value) => {
            secrets.set(ref.ssm, { value, at: now(), promise: null });
            return value;
          },
          (e) => {
            secrets.delete(ref.ssm);
            throw e;
          },
        );
        entry = { value: undefined, at: null, promise };
        secrets.set(ref.ssm, entry);
      }
      values[key] = entry.promise ? await entry.promise : entry.value;
    }),
  );
  const resolved = { ...pending.plain, ...values };
  Object.defineProperty(resolved, 'secretRefs', { value: Object.freeze({}), enumerable: false });
  return /** @type {S} */ (Object.freeze(resolved));
}

/** The configuration of this process. */
const config = loadConfig();

module.exports = { ROOT, LAMBDA_PAYLOAD_LIMIT, SAMPLE_MARKET, ENVIRONMENTS_FILE, FILE_SETTINGS, SECRET_TTL_MS, loadConfig, resolveSecrets, config };
