'use strict';
// Rewrites wasm-bindgen's Node.js glue (scripts/build-wasm runs it on each package) into a factory:
// `require(glue)(module)` instantiates a compiled WebAssembly.Module and returns the bindings, each
// call a fresh instance with its own state. wasm-bindgen's own glue reads and compiles the .wasm
// synchronously when it is required, once per evaluation; with the factory, js/runtime/engine.js
// decides: the price handler compiles its module off the main thread (WebAssembly.compile) while
// its cold start goes on, and an instance discarded after a trap is replaced without compiling the
// module again. The package's .d.ts moves to `<name>_exports.d.ts` and `<name>.d.ts` types the
// factory.
//
//   node js/tools/wasm-glue.js tariffsim-wasm/pkg/tariffsim_wasm.js

const fs = require('node:fs');
const path = require('node:path');

/** The end of wasm-bindgen's glue for `--target nodejs` (0.2.130): read, compile, instantiate. */
const TAIL = /\nconst wasmPath = `\$\{__dirname\}\/([\w.-]+_bg\.wasm)`;\nconst wasmBytes = require\('fs'\)\.readFileSync\(wasmPath\);\nconst wasmModule = new WebAssembly\.Module\(wasmBytes\);\nlet wasmInstance = new WebAssembly\.Instance\(wasmModule, __wbg_get_imports\(\)\);\nlet wasm = wasmInstance\.exports;\nwasm\.__wbindgen_start\(\);\n*$/;

/**
 * The factory form of a glue file's text.
 * @param {string} text wasm-bindgen's glue
 * @param {string} name the package's name (`tariffsim_price`), for the comment
 * @returns {string}
 */
function factoryOf(text, name) {
  const tail = TAIL.exec(text);
  if (tail === null) throw new Error(`${name}.js: not the wasm-bindgen Node.js glue this tool knows (its last lines read and compile the .wasm): check js/tools/wasm-glue.js against the wasm-bindgen version`);
  if (/\bmodule\.exports\b|\brequire\(|__dirname/.test(text.slice(0, tail.index))) throw new Error(`${name}.js: the glue uses module.exports, require or __dirname before its last lines: js/tools/wasm-glue.js cannot wrap it`);
  const body = text.slice(0, tail.index).replace(/^\/\* @ts-self-types="[^"]*" \*\/\n/, '');
  return [
    "'use strict';",
    `// wasm-bindgen's glue for ${tail[1]}, made a factory by js/tools/wasm-glue.js (scripts/build-wasm):`,
    '// require(this)(compiledModule) gives a fresh instance\'s bindings.',
    '/* @ts-self-types="./' + name + '.d.ts" */',
    'module.exports = function instantiate(wasmModule) {',
    'const exports = {};',
    body,
    'let wasm = new WebAssembly.Instance(wasmModule, __wbg_get_imports()).exports;',
    'wasm.__wbindgen_start();',
    'return exports;',
    '};',
    '',
  ].join('\n');
}

/** Rewrites `file` (and its .d.ts) in place; a file already rewritten is left as it is. */
function rewrite(file) {
  const name = path.basename(file, '.js');
  const dir = path.dirname(file);
  const text = fs.readFileSync(file, 'utf8');
  if (text.startsWith("'use strict';\n// wasm-bindgen's glue for")) return;
  const out = factoryOf(text, name);
  const types = path.join(dir, `${name}.d.ts`);
  fs.renameSync(types, path.join(dir, `${name}_exports.d.ts`));
  fs.writeFileSync(types, [
    '/* Made by js/tools/wasm-glue.js: the glue is a factory of instances (see the .js). */',
    `declare function instantiate(wasmModule: WebAssembly.Module): typeof import('./${name}_exports');`,
    'export = instantiate;',
    '',
  ].join('\n'));
  fs.writeFileSync(file, out);
}

if (require.main === module) {
  const files = process.argv.slice(2);
  if (files.length === 0 || files.some((f) => f.startsWith('-'))) {
    process.stderr.write('usage: node js/tools/wasm-glue.js GLUE.js...   (rewrites each in place)\n');
    process.exit(2);
  }
  for (const file of files) rewrite(file);
}

module.exports = { factoryOf, rewrite };
