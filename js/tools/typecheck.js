#!/usr/bin/env node
'use strict';
// npm run typecheck: `tsc --noEmit --checkJs` over js/ (tsconfig.json: JSDoc types, Node.js 24's
// types, the wasm package's .d.ts), as a ratchet while the code base is being typed.
//
//   npm run typecheck            fails on any type error in a file not listed in PENDING below;
//                                counts the errors of the listed files
//   npm run typecheck -- --all   prints every error, listed files too
//
// PENDING lists the files that still have type errors (JSDoc `{object}` where a shape is meant,
// untyped wasm calls, tests feeding deliberately bad input): take a file off once it is clean.
// Every file not listed is checked as tsconfig.json says, and must stay clean.

const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');

/** Files with type errors still to fix (none now: every file is checked). @type {ReadonlySet<string>} */
const PENDING = Object.freeze(new Set([]));

function main() {
  const all = process.argv.includes('--all');
  const tsc = path.join(ROOT, 'node_modules', '.bin', 'tsc');
  const out = spawnSync(tsc, ['-p', path.join(ROOT, 'tsconfig.json')], { cwd: ROOT, encoding: 'utf8', maxBuffer: 1 << 26 });
  if (out.error) throw out.error;
  const text = `${out.stdout}${out.stderr}`;
  // tsc prints `file(line,col): error TSxxxx: message` (and continuation lines for long messages).
  const errors = new Map();
  const other = [];
  let current = null;
  for (const line of text.split('\n')) {
    const m = /^(.+?)\(\d+,\d+\): error TS\d+: /.exec(line);
    if (m) {
      current = m[1];
      if (!errors.has(current)) errors.set(current, []);
      errors.get(current).push(line);
    } else if (/^\s/.test(line) && current !== null) {
      errors.get(current).push(line);
    } else if (line.trim() !== '') {
      current = null;
      other.push(line);
    }
  }
  if (other.length > 0 || (out.status !== 0 && errors.size === 0)) {
    process.stderr.write(`${text}\ntypecheck: tsc failed (status ${out.status})\n`);
    process.exit(1);
  }
  const count = (file) => errors.get(file).filter((l) => /: error TS/.test(l)).length;
  const problems = [];
  for (const file of [...errors.keys()].sort()) {
    if (all || !PENDING.has(file)) process.stdout.write(`${errors.get(file).join('\n')}\n`);
    if (!PENDING.has(file)) problems.push(`${file}: ${count(file)} type errors`);
  }
  const pending = [...PENDING].filter((f) => errors.has(f));
  const pendingErrors = pending.reduce((n, f) => n + count(f), 0);
  const clean = [...PENDING].filter((f) => !errors.has(f));
  const summary = `typecheck: ${errors.size - pending.length} files with errors outside PENDING; ${pendingErrors} errors in ${pending.length} files still being typed (js/tools/typecheck.js PENDING${clean.length ? `; clean now, take off the list: ${clean.join(', ')}` : ''})`;
  if (problems.length > 0) {
    process.stderr.write(`${problems.join('\n')}\n${summary}\n`);
    process.exit(1);
  }
  process.stdout.write(`${summary}\n`);
}

main();
