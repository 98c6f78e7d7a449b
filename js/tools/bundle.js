'use strict';
// Builds the Lambda zip: the handler files and their runtime folder, the wasm packages, the bundled
// sample market as a snapshot (js/tools/snapshot.js), config/ (configuration per alias, functions,
// prices), a package.json, and production dependencies only (from package-lock.json). Node.js 24
// (runtime nodejs24.x) loads it as is: no transpile step. The synchronous `price` handler is the
// one exception: the zip's js/price.js is js/price.js with the runtime modules it requires joined
// into one file by esbuild (priceBundle), with the price module's wasm glue, whitespace and syntax
// minified, so that a cold start reads and compiles one smaller file instead of a dozen (measured
// with `npm run bench`: a few milliseconds of a cold start).
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
  files.set('js/price.js', priceBundle(root));
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

module.exports = { bundleFiles, priceBundle, joinedHandler, HANDLERS };
