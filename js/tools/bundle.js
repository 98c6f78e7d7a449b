'use strict';
// Builds the Lambda zip: the handler files and their runtime folder, the wasm packages, the bundled
// sample market as a snapshot (js/tools/snapshot.js), config/ (configuration per alias, functions,
// prices), a package.json, and production dependencies only (from package-lock.json). Node.js 24
// (runtime nodejs24.x) loads it as is: no transpile step. The synchronous `price` handler is the
// one exception: js/price.js with the runtime modules it requires is joined into one file by
// esbuild (priceBundle: js/price.bundle.js, with the price module's wasm glue, whitespace and
// syntax minified), and the zip's js/price.js is a small loader that compiles it with the V8 code
// cache the build made for it (js/price.bundle.<hash>.cache, codeCache), so that a cold start neither
// parses nor compiles the functions a request runs (measured with `npm run bench`: about 6 ms of a
// cold start; docs/lambda.md).
//
//   npm run bundle [-- OUT.zip]        (default dist/tariffsim-lambda.zip)
//
// Handlers: js/price.handler, js/simulate-chunk.handler, js/run-simulation.handler,
// js/filter-population.handler. Reproducible: the same sources give the same bytes (see zip.js);
// the zip's SHA-256 is printed.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');
const { createZip } = require('./zip');
const { commandLine } = require('./cli');
const { snapshotOfFile } = require('./snapshot');

const ROOT = path.resolve(__dirname, '..', '..');
/** The functions deploy creates, with their runtime and handlers: the zip serves every one. */
const FUNCTIONS = JSON.parse(fs.readFileSync(path.join(ROOT, 'config', 'functions.json'), 'utf8'));
/** The handler strings of the lambdas the zip serves. */
const HANDLERS = Object.freeze(Object.values(FUNCTIONS.functions).map((f) => f.handler));

function walk(dir, keep) {
  const out = [];
  for (const entry of fs.readdirSync(dir, { withFileTypes: true })) {
    const full = path.join(dir, entry.name);
    if (entry.isDirectory()) out.push(...walk(full, keep));
    else if (entry.isFile() && keep(full)) out.push(full);
  }
  return out;
}

const rel = (file) => path.relative(ROOT, file).split(path.sep).join('/');

/**
 * js/price.js and the runtime modules it requires as one CommonJS file, to stand in the zip at
 * js/price.js. The modules keep their meaning: each one's `__dirname` is js/runtime (where they
 * all live; price.js itself does not use it), so paths they build from it (the task root, the wasm
 * packages) are the same. The price module's glue comes in (engine.js requires it by a literal
 * path); the full module's glue (required by a computed path, never on the price path), node
 * builtins and the AWS SDK (loaded lazily) stay outside. Reproducible: the same sources give the
 * same bytes.
 * @param {string} [root]
 * @returns {Buffer}
 */
function priceBundle(root = ROOT) {
  return joinedHandler({ entryPoints: [path.join(root, 'js', 'price.js')], absWorkingDir: root });
}

/**
 * A handler and the runtime modules it requires as one CommonJS file, as the zip's js/price.js is
 * made (priceBundle; `npm run bench` joins its JS-kernel handler the same way): esbuild, for
 * Node.js 24, the AWS SDK left outside, each module's `__dirname` js/runtime, whitespace and syntax
 * minified. Reproducible.
 * @param {Record<string, unknown>} input esbuild's entry: `entryPoints` and `absWorkingDir`, or `stdin`
 * @returns {Buffer}
 */
function joinedHandler(input) {
  const esbuild = require('esbuild');
  const out = esbuild.buildSync({
    ...input,
    bundle: true,
    platform: 'node',
    format: 'cjs',
    target: 'node24',
    external: ['@aws-sdk/*'],
    banner: { js: "'use strict';\nconst __bundleDir = __dirname + require('node:path').sep + 'runtime';" },
    define: { __dirname: '__bundleDir' },
    legalComments: 'none',
    // Whitespace and syntax only (names stay, for stack traces): V8 reads a third less source at a
    // cold start (measured: about 0.6 ms of one on a 2-core machine).
    minifyWhitespace: true,
    minifySyntax: true,
    logLevel: 'silent',
    write: false,
  });
  return Buffer.from(out.outputFiles[0].contents);
}

/** Where the zip keeps the price handler joined (priceBundle), for its loader (js/price.js). */
const PRICE_BUNDLE = 'js/price.bundle.js';

/**
 * The V8 flags the Lambda Node.js runtime starts node with (its bootstrap, /var/runtime/bootstrap:
 * `--expose-gc --max-http-header-size 81920` and heap sizes from the function's memory). V8 takes a
 * code cache only from a V8 of the same version with the same flags (the heap sizes aside): the
 * cache is made with these, and `npm run bench` and `npm run smoke` start node with them too.
 * @param {number} memoryMb the function's memory (config/functions.json)
 * @returns {string[]}
 */
function lambdaNodeFlags(memoryMb) {
  const newSpace = Math.floor(memoryMb / 10);
  return ['--expose-gc', '--max-http-header-size=81920', `--max-semi-space-size=${Math.floor(newSpace / 2)}`, `--max-old-space-size=${memoryMb - newSpace}`];
}

/**
 * A joined handler as its loader compiles it: one function of CommonJS's five parameters.
 * @param {Buffer} joined
 * @returns {Buffer}
 */
function wrappedForLoader(joined) {
  return Buffer.concat([Buffer.from('(function (exports, require, module, __filename, __dirname) {'), joined, Buffer.from('\n})')]);
}

/**
 * The file name of the code cache of a joined handler: `<stem>.bundle.<hash>.cache`, by the SHA-256
 * of the source it is made from.
 * V8 checks a cache's version, flags and the source's length, not (in release builds) its bytes
 * nor the source's: a name by the source's hash keeps a cache from ever meeting another source,
 * and the zip's CRC-32 of each file (checked as Lambda unzips it) keeps its bytes whole.
 * @param {Buffer} joined wrappedForLoader's
 * @param {string} [stem] the handler's
 * @returns {string}
 */
function codeCacheName(joined, stem = 'price') {
  return `${stem}.bundle.${crypto.createHash('sha256').update(joined).digest('hex').slice(0, 16)}.cache`;
}

/**
 * The zip's js/price.js: compiles js/price.bundle.js with its code cache (V8 bytecode of every
 * function a request runs, made by the build: codeCache) and runs it as this module. The cache is
 * read only by the V8 it was made by (the whole version string: V8's own check leaves out the
 * suffix Node.js gives its patched V8). A cache that is not read (another V8, missing, unreadable)
 * or that V8 rejects (other V8 flags) costs its file read at most: V8 then compiles the source as
 * usual, and one line on stderr (in the function's log) says so, since a cold start then takes a
 * few milliseconds more. `codeCache` says which: accepted, rejected, other-v8, missing, unreadable.
 * @param {string} bundleName the joined handler's file name, in the loader's folder
 * @param {string} cacheName codeCacheName's, in the loader's folder
 * @returns {string}
 */
const codeCacheLoader = (bundleName, cacheName) => `'use strict';
// A handler joined with its runtime modules by js/tools/bundle.js (${bundleName}), compiled with
// the V8 code cache the build made for it (${cacheName}).
const fs = require('node:fs');
const vm = require('node:vm');
const MADE_BY = { node: '${process.version}', v8: '${process.versions.v8}' };
const file = \`\${__dirname}/${bundleName}\`;
let cachedData;
let state = 'accepted';
let cannot = '';
if (process.versions.v8 !== MADE_BY.v8) {
  state = 'other-v8';
} else {
  try {
    cachedData = fs.readFileSync(\`\${__dirname}/${cacheName}\`);
  } catch (e) {
    state = e.code === 'ENOENT' ? 'missing' : 'unreadable';
    cannot = e.code;
  }
}
const script = new vm.Script(fs.readFileSync(file, 'utf8'), { filename: file, cachedData });
if (cachedData !== undefined && script.cachedDataRejected) state = 'rejected';
exports.codeCache = state;
if (state !== 'accepted') {
  const why = {
    'other-v8': 'it was made for another V8',
    missing: 'it is missing',
    unreadable: \`it cannot be read: \${cannot}\`,
    rejected: 'V8 rejected it: node runs with other V8 flags than Lambda\\'s runtime gives it, from NODE_OPTIONS say',
  }[state];
  process.stderr.write(\`tariffsim: js/${bundleName} compiled without its code cache (\${why}; it was made by Node.js \${MADE_BY.node}, V8 \${MADE_BY.v8}, with the V8 flags of Lambda's runtime: --expose-gc; this is Node.js \${process.version}, V8 \${process.versions.v8}): a cold start takes a few milliseconds more\\n\`);
}
script.runInThisContext()(exports, require, module, file, __dirname);
`;

/** The request a code cache is made with (codeCache): one typical profile on the bundled market. */
const WARM_UP = { market: 'sample', profiles: [{ visit_id: 'code-cache', region: 'C', fuel: 'dual_fuel', meter: 'single_rate', payment_method: 'direct_debit', elec_kwh: 2700, gas_kwh: 11500, current_supplier: 'British Gas', filters: { fixed_only: false } }], page_size: 10 };

// The child that makes a code cache: compiles the joined handler as its loader does, answers the
// warm-up request twice (the first call waits for the module, later ones do not), then writes the
// cache of the script, which now holds the functions those calls ran, to a file (stdout has the
// handler's log lines).
const MAKE_CODE_CACHE = `
const fs = require('node:fs');
const vm = require('node:vm');
const [file, name, event, out] = process.argv.slice(1);
// One instant for every log line: whether two lines fall in the same millisecond changes the cache.
Date.now = () => 1767225600000;
// Named as in Lambda's task root, not by this temporary folder: the cache holds the script's name.
const script = new vm.Script(fs.readFileSync(file, 'utf8'), { filename: name });
const mod = { exports: {} };
script.runInThisContext()(mod.exports, require, mod, file, require('node:path').dirname(file));
const context = { awsRequestId: 'code-cache', functionName: 'tariffsim-price', invokedFunctionArn: 'arn:aws:lambda:eu-west-2:000000000000:function:tariffsim-price:PROD', getRemainingTimeInMillis: () => 10000 };
const call = () => mod.exports.handler(JSON.parse(event), context);
call().then(call).then((answer) => {
  if (!answer || !Array.isArray(answer.results) || answer.results.length === 0) throw new Error('the warm-up request had no answer');
  fs.writeFileSync(out, script.createCachedData());
}).catch((e) => { process.stderr.write(String((e && e.stack) || e)); process.exitCode = 1; });
`;

/**
 * V8 flags that make a code cache the same bytes every time and that V8 leaves out of the flags a
 * cache must match (checked: a cache made with them is accepted without them): a fixed seed for
 * the hash of strings, and no garbage collection or tiering up on other threads, whose timing
 * changes bits of the cache otherwise. With these and one instant for the warm-up's log lines
 * (MAKE_CODE_CACHE), 16 builds on a machine kept busy gave one cache; with the seed alone, 3
 * different ones in 12.
 */
const DETERMINISTIC = ['--random-seed=1', '--single-threaded-gc', '--no-concurrent-recompilation', '--no-concurrent-sparkplug'];

/**
 * The V8 code cache of a joined handler in a task root, made after it answered `event`: the
 * bytecode of every function those requests ran, for its loader to compile it with. Made by this
 * node (the scripts run the project's Node.js 24, as the runtime is) with Lambda's V8 flags, in a
 * clean environment, and with DETERMINISTIC, so that the same sources give the same bytes.
 * @param {Map<string, Buffer>} files the task root: zip path -> bytes (node_modules/ is not needed)
 * @param {string} bundle the joined handler's path in it (wrappedForLoader)
 * @param {object} event
 * @returns {Buffer}
 */
function codeCache(files, bundle, event) {
  const { spawnSync } = require('node:child_process');
  const task = fs.mkdtempSync(path.join(require('node:os').tmpdir(), 'tariffsim-code-cache-'));
  try {
    for (const [name, data] of files) {
      if (name.startsWith('node_modules/')) continue;
      fs.mkdirSync(path.dirname(path.join(task, name)), { recursive: true });
      fs.writeFileSync(path.join(task, name), data);
    }
    const flags = [...lambdaNodeFlags(FUNCTIONS.functions.price.memoryMb), ...DETERMINISTIC];
    const cache = path.join(task, 'code-cache');
    const out = spawnSync(process.execPath, [...flags, '-e', MAKE_CODE_CACHE, path.join(task, bundle), `/var/task/${bundle}`, JSON.stringify(event), cache], {
      cwd: task,
      // The same variables, whatever the caller's (their number shows in the cache).
      env: { PATH: process.env.PATH ?? '', LAMBDA_TASK_ROOT: task, AWS_LAMBDA_FUNCTION_NAME: 'tariffsim-price' },
      stdio: ['ignore', 'ignore', 'pipe'],
      encoding: 'utf8',
    });
    if (out.status !== 0 || !fs.existsSync(cache)) {
      throw new Error(`the code cache of ${bundle} could not be made (exit ${out.status}): ${out.stderr.trim().split('\n').slice(-5).join('\n')}`);
    }
    return fs.readFileSync(cache);
  } finally {
    fs.rmSync(task, { recursive: true, force: true });
  }
}

/** The files of the bundle: zip path -> bytes. */
function bundleFiles(root = ROOT) {
  const files = new Map();
  const add = (file) => files.set(path.relative(root, file).split(path.sep).join('/'), fs.readFileSync(file));
  const jsDir = path.join(root, 'js');
  for (const file of walk(jsDir, (f) => f.endsWith('.js'))) {
    // Not the tests, the build tools or the development server: only the lambdas and their runtime.
    const top = path.relative(jsDir, file).split(path.sep)[0];
    if (top === 'test' || top === 'tools' || top === 'server') continue;
    add(file);
  }
  // js/price.bundle.js: the handler joined; js/price.js: its loader; the code cache (named by the
  // source's hash) is made below, once the rest of the task root is known.
  const joined = wrappedForLoader(priceBundle(root));
  const cacheName = codeCacheName(joined);
  files.set(PRICE_BUNDLE, joined);
  files.set('js/price.js', Buffer.from(codeCacheLoader(PRICE_BUNDLE.slice('js/'.length), cacheName)));
  // The wasm builds: the full one (pkg/) and the price lambda's lean one (pkg-price/, engine.js).
  /** @type {[string, string[]][]} */
  const builds = [['pkg', ['tariffsim_wasm.js', 'tariffsim_wasm_bg.wasm']], ['pkg-price', ['tariffsim_price.js', 'tariffsim_price_bg.wasm']]];
  for (const [dir, names] of builds) {
    for (const name of names) {
      const file = path.join(root, 'tariffsim-wasm', dir, name);
      if (!fs.existsSync(file)) throw new Error(`${rel(file)} is missing: run scripts/build-wasm first`);
      add(file);
    }
  }
  // The configuration per alias (config/environments.json), the functions and the prices: read at
  // run time, so each alias finds its own settings in the very zip it runs. References to secrets
  // only, never their values (js/test/deploy.test.js checks).
  for (const file of walk(path.join(root, 'config'), (f) => f.endsWith('.json'))) add(file);
  // The bundled market "sample" as its snapshot only: a cold start decodes it instead of reading,
  // hashing and parsing 700 KB of JSON (the JSON stays in the repository).
  files.set('data/sample/market.json.snapshot', snapshotOfFile(path.join(root, 'data', 'sample', 'market.json')));

  const manifest = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const lock = JSON.parse(fs.readFileSync(path.join(root, 'package-lock.json'), 'utf8'));
  const production = Object.entries(lock.packages || {}).filter(([p, info]) => p.startsWith('node_modules/') && !info.dev && !info.optional);
  for (const [p] of production) {
    for (const file of walk(path.join(root, p), () => true)) add(file);
  }
  const bundled = {
    name: manifest.name,
    version: manifest.version,
    private: true,
    description: manifest.description,
    license: manifest.license,
    engines: manifest.engines,
    dependencies: manifest.dependencies || {},
  };
  files.set('package.json', Buffer.from(`${JSON.stringify(bundled, null, 2)}\n`));
  files.set(`js/${cacheName}`, codeCache(files, PRICE_BUNDLE, WARM_UP));
  return files;
}

const USAGE = 'usage: npm run bundle [-- OUT.zip]   (default dist/tariffsim-lambda.zip)';

function main() {
  const parsed = commandLine(process.argv.slice(2), {}, USAGE, { positionals: true });
  if (parsed.exit !== undefined) process.exit(parsed.exit);
  if (parsed.positionals.length > 1) {
    process.stderr.write(`one output file at most\n${USAGE}\n`);
    process.exit(2);
  }
  const out = path.resolve(parsed.positionals[0] || path.join(ROOT, 'dist', 'tariffsim-lambda.zip'));
  const files = bundleFiles();
  const zip = createZip(files);
  fs.mkdirSync(path.dirname(out), { recursive: true });
  fs.writeFileSync(out, zip);
  const sha = crypto.createHash('sha256').update(zip).digest('hex');
  const raw = [...files.values()].reduce((n, b) => n + b.length, 0);
  process.stdout.write(`${path.relative(process.cwd(), out) || out}: ${files.size} files, ${raw} bytes unzipped, ${zip.length} bytes zipped, sha256 ${sha}\n`);
  process.stdout.write(`handlers: ${HANDLERS.join(', ')} (runtime ${FUNCTIONS.runtime})\n`);
}

if (require.main === module) main();

/** The node flags Lambda's runtime starts the price function's node with (lambdaNodeFlags). */
const PRICE_NODE_FLAGS = Object.freeze(lambdaNodeFlags(FUNCTIONS.functions.price.memoryMb));

module.exports = { bundleFiles, priceBundle, joinedHandler, wrappedForLoader, codeCache, codeCacheName, codeCacheLoader, lambdaNodeFlags, PRICE_NODE_FLAGS, HANDLERS };
