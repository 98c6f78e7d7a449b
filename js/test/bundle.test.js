'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { bundleFiles } = require('../tools/bundle');
const { createZip, readZip, crc32 } = require('../tools/zip');

test('the zip is reproducible: the same sources give the same bytes', () => {
  const a = createZip(bundleFiles());
  const b = createZip(bundleFiles());
  assert.ok(a.equals(b));
  const reordered = new Map([...bundleFiles()].reverse());
  assert.ok(createZip(reordered).equals(a), 'file order does not matter');
});

test('the zip holds the handlers, the runtime, the wasm package and the sample market\'s snapshot, not tests or tools', () => {
  const names = readZip(createZip(bundleFiles())).filter((e) => e.data !== null).map((e) => e.name);
  for (const must of ['package.json', 'js/price.js', 'js/simulate-chunk.js', 'js/runtime/wrap-handler.js', 'js/runtime/engine.js', 'js/runtime/config.js', 'js/runtime/logging.js', 'js/runtime/environment.js', 'tariffsim-wasm/pkg/tariffsim_wasm.js', 'tariffsim-wasm/pkg/tariffsim_wasm_bg.wasm', 'data/sample/market.json.snapshot']) {
    assert.ok(names.includes(must), must);
  }
  assert.ok(!names.some((n) => n.startsWith('js/test/') || n.startsWith('js/tools/') || n.startsWith('js/server/')));
  assert.ok(!names.some((n) => n.startsWith('node_modules/binaryen')), 'no dev dependencies');
  const pkg = JSON.parse(readZip(createZip(bundleFiles())).find((e) => e.name === 'package.json').data);
  assert.equal(pkg.type, undefined, 'CommonJS, as the Node.js 24 runtime loads it');
  assert.equal(pkg.devDependencies, undefined);
});

test('the zip\'s price handler runs from its code cache with Lambda\'s V8 flags; without them, or with a cache from another V8, cut, unreadable or missing, it answers the same and says so once on stderr', () => {
  const { spawnSync } = require('node:child_process');
  const { PRICE_NODE_FLAGS, codeCacheName } = require('../tools/bundle');
  const files = bundleFiles();
  const cacheFile = `js/${codeCacheName(files.get('js/price.bundle.js'))}`;
  for (const name of ['js/price.js', 'js/price.bundle.js', cacheFile]) assert.ok(files.has(name), name);
  // The loader's vm.Script has no loader for import(): the joined handler must not call it.
  assert.doesNotMatch(files.get('js/price.bundle.js').toString(), /\bimport\s*\(/);
  assert.deepEqual([...files.keys()].filter((n) => n.endsWith('.cache')), [cacheFile], 'one code cache, named by its source');
  const cache = files.get(cacheFile);
  const task = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-code-cache-test-'));
  try {
    for (const [name, data] of files) {
      if (name.startsWith('node_modules/')) continue;
      fs.mkdirSync(path.dirname(path.join(task, name)), { recursive: true });
      fs.writeFileSync(path.join(task, name), data);
    }
    const event = fs.readFileSync(path.join(__dirname, '..', '..', 'tests', 'fixtures', 'lambda', 'price-sample.json'), 'utf8');
    const script = `const m = require(${JSON.stringify(path.join(task, 'js', 'price.js'))});
      m.handler(${event}, {}).then((r) => process.stderr.write('RESULT ' + JSON.stringify({ codeCache: m.codeCache, answer: r }) + '\\n'));`;
    const run = (flags) => {
      const out = spawnSync(process.execPath, [...flags, '-e', script], { cwd: task, encoding: 'utf8', env: { PATH: process.env.PATH, TARIFFSIM_LOG_LEVEL: 'ERROR' } });
      const line = out.stderr.split('\n').find((l) => l.startsWith('RESULT '));
      assert.ok(line, out.stderr);
      const warnings = out.stderr.split('\n').filter((l) => l.startsWith('tariffsim: js/price.bundle.js compiled without its code cache'));
      return { ...JSON.parse(line.slice(7)), warnings };
    };
    const cached = run(PRICE_NODE_FLAGS);
    assert.equal(cached.codeCache, 'accepted');
    assert.deepEqual(cached.warnings, []);
    assert.equal(cached.answer.results[0].rows.length, 10);
    // Node without --expose-gc: other V8 flags, so V8 rejects the cache and compiles the source.
    const plain = run([]);
    assert.equal(plain.codeCache, 'rejected');
    assert.equal(plain.warnings.length, 1);
    assert.match(plain.warnings[0], /V8 rejected it: node runs with other V8 flags than Lambda's runtime gives it, from NODE_OPTIONS say; it was made by Node\.js v24\.[0-9.]+, V8 [^,]+, with the V8 flags of Lambda's runtime: --expose-gc; this is Node\.js /);
    assert.deepEqual(plain.answer, cached.answer);
    // Another V8's cache (its header's version hash differs) and a cut one: rejected, the same
    // answer. (V8 does not check the bytes beyond its header in release builds: the zip's CRC-32
    // does, and the name by the source's hash keeps a cache to its source.)
    const otherVersion = Buffer.from(cache);
    for (let i = 4; i < 8; i += 1) otherVersion[i] ^= 0x5a;
    for (const bytes of [otherVersion, cache.subarray(0, cache.length >> 1), cache.subarray(0, 8)]) {
      fs.writeFileSync(path.join(task, cacheFile), bytes);
      const r = run(PRICE_NODE_FLAGS);
      assert.equal(r.codeCache, 'rejected', `${bytes.length} bytes`);
      assert.equal(r.warnings.length, 1);
      assert.deepEqual(r.answer, cached.answer);
    }
    // A folder in its place: unreadable. None: missing.
    fs.rmSync(path.join(task, cacheFile));
    fs.mkdirSync(path.join(task, cacheFile));
    const unreadable = run(PRICE_NODE_FLAGS);
    assert.equal(unreadable.codeCache, 'unreadable');
    assert.match(unreadable.warnings[0], /\(it cannot be read: EISDIR; /);
    assert.deepEqual(unreadable.answer, cached.answer);
    fs.rmSync(path.join(task, cacheFile), { recursive: true });
    const missing = run(PRICE_NODE_FLAGS);
    assert.equal(missing.codeCache, 'missing');
    assert.match(missing.warnings[0], /\(it is missing; /);
    assert.deepEqual(missing.answer, cached.answer);
    // Made by another V8 (Node.js's suffix counts, which V8's own check leaves out): not even read.
    fs.writeFileSync(path.join(task, cacheFile), cache);
    const loader = path.join(task, 'js', 'price.js');
    fs.writeFileSync(loader, fs.readFileSync(loader, 'utf8').replace(`v8: '${process.versions.v8}'`, `v8: '${process.versions.v8}-other'`));
    const other = run(PRICE_NODE_FLAGS);
    assert.equal(other.codeCache, 'other-v8');
    assert.match(other.warnings[0], /\(it was made for another V8; it was made by Node\.js v24\.[0-9.]+, V8 [^ ]+-other, /);
    assert.deepEqual(other.answer, cached.answer);
  } finally {
    fs.rmSync(task, { recursive: true, force: true });
  }
});

test('entries have fixed times and Unix modes, and round-trip', () => {
  const files = new Map([['a/b.txt', Buffer.from('hello hello hello hello')], ['c.bin', Buffer.from([0, 1, 2])]]);
  const entries = readZip(createZip(files));
  assert.deepEqual(entries.map((e) => [e.name, e.mode.toString(8)]), [['a/', '40755'], ['a/b.txt', '100644'], ['c.bin', '100644']]);
  assert.equal(entries[1].data.toString(), 'hello hello hello hello');
  assert.equal(crc32(Buffer.from('123456789')), 0xcbf43926);
});

test('every tool answers --help with its usage and refuses an unknown flag (exit 2), doing nothing else', () => {
  const { spawnSync } = require('node:child_process');
  const tools = ['bundle', 'smoke-zip', 'snapshot', 'bench', 'bench-pipeline', 'bench-server', 'cost', 'deploy', 'promote', 'watch'];
  const cwd = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-tools-'));
  try {
    for (const tool of tools) {
      const file = path.join(__dirname, '..', 'tools', `${tool}.js`);
      const help = spawnSync(process.execPath, [file, '--help'], { cwd, encoding: 'utf8', timeout: 30_000 });
      assert.equal(help.status, 0, `${tool} --help: ${help.stderr}`);
      assert.match(help.stdout, /^usage: /, `${tool} --help`);
      const bad = spawnSync(process.execPath, [file, '--no-such-flag'], { cwd, encoding: 'utf8', timeout: 30_000 });
      assert.equal(bad.status, 2, `${tool} --no-such-flag: ${bad.stdout}${bad.stderr}`);
      assert.match(bad.stderr, /--no-such-flag[\s\S]*usage: /, `${tool} --no-such-flag`);
    }
    // Nothing was written where they ran (a flag is never taken for a file name).
    assert.deepEqual(fs.readdirSync(cwd), []);
  } finally {
    fs.rmSync(cwd, { recursive: true, force: true });
  }
});

test('npm run bench refuses a count out of its range (--calls, --cold, --profiles): exit 2, one line naming the flag and its range, nothing run', () => {
  const { spawnSync } = require('node:child_process');
  const bench = path.join(__dirname, '..', 'tools', 'bench.js');
  /** @type {Array<[string[], RegExp]>} */
  const cases = [
    [['--calls', '1000001'], /^bench: --calls "1000001": give a whole number, 1 to 1000000 /],
    [['--calls', 'many'], /^bench: --calls "many": give a whole number, 1 to 1000000 /],
    [['--cold', '1001'], /^bench: --cold "1001": give a whole number, 1 to 1000 /],
    [['--cold', '0'], /^bench: --cold "0": give a whole number, 1 to 1000 /],
    [['--profiles', '10000001'], /^bench: --profiles "10000001": give a whole number, 1 to 10000000 /],
    [['--profiles', '1e12', '--only', 'replay'], /^bench: --profiles "1e12": give a whole number, 1 to 10000000 /],
  ];
  for (const [args, message] of cases) {
    // Refused before anything is measured: a bench that ran would print its heading on stdout.
    const r = spawnSync(process.execPath, [bench, ...args], { encoding: 'utf8', timeout: 30_000 });
    assert.equal(r.status, 2, `${args.join(' ')}: ${r.signal ? `killed by ${r.signal} ` : ''}${r.stderr}`);
    assert.match(r.stderr, message, args.join(' '));
    assert.equal(r.stderr.trim().split('\n').length, 1, r.stderr);
    assert.equal(r.stdout, '', `${args.join(' ')}: nothing measured`);
  }
  // The ranges are documented in the usage.
  const help = spawnSync(process.execPath, [bench, '--help'], { encoding: 'utf8', timeout: 30_000 });
  assert.match(help.stdout, /--calls N .*1 to 1,000,000/);
  assert.match(help.stdout, /--cold N .*1 to 1,000/);
  assert.match(help.stdout, /--profiles N .*1 to 10,000,000/);
});

test('the smoke test fails a zip that cannot serve every function of config/functions.json, and leaves nothing behind', () => {
  const { smoke } = require('../tools/smoke-zip');
  const files = bundleFiles();
  files.delete('js/filter-population.js');
  for (const name of [...files.keys()]) if (name.startsWith('node_modules/redis/')) files.delete(name);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'tariffsim-broken-zip-'));
  try {
    const zip = path.join(dir, 'broken.zip');
    fs.writeFileSync(zip, createZip(files));
    const before = fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tariffsim-smoke-')).length;
    assert.throws(() => smoke(zip), (/** @type {Error} */ e) => /^smoke: from the task root: filter-population: Error: Cannot find module .*; redis: MODULE_NOT_FOUND$/.test(e.message));
    assert.equal(fs.readdirSync(os.tmpdir()).filter((n) => n.startsWith('tariffsim-smoke-')).length, before, 'its folder is removed');
  } finally {
    fs.rmSync(dir, { recursive: true, force: true });
  }
});
