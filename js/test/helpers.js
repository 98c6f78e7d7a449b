'use strict';
// Shared by the JS tests: fixtures, Lambda-like contexts, captured log lines.

const fs = require('node:fs');
const path = require('node:path');
const { redirectStdout } = require('../runtime/logging');

const ROOT = path.resolve(__dirname, '..', '..');
const FIXTURES = path.join(ROOT, 'tests', 'fixtures');
const LAMBDA_FIXTURES = path.join(FIXTURES, 'lambda');

/** A JSON fixture from tests/fixtures/lambda. */
function fixture(name) {
  return JSON.parse(fs.readFileSync(path.join(LAMBDA_FIXTURES, name), 'utf8'));
}

/** A context as Lambda passes it: the fixture's fields plus the methods. */
function context(name = 'context-dev.json', overrides = {}) {
  const started = Date.now();
  return {
    ...fixture(name),
    ...overrides,
    getRemainingTimeInMillis: () => Math.max(0, 30000 - (Date.now() - started)),
  };
}

/** Runs `fn` (sync or async) while collecting what is written to standard output. */
async function captureStdout(fn) {
  const lines = [];
  const original = process.stdout.write;
  process.stdout.write = (chunk, ...rest) => {
    lines.push(String(chunk));
    const cb = rest.find((r) => typeof r === 'function');
    if (cb) cb();
    return true;
  };
  // The loggers write with one system call, not through process.stdout (runtime/logging.js).
  redirectStdout((text) => lines.push(text));
  let result;
  let error;
  try {
    result = await fn();
  } catch (e) {
    error = e;
  } finally {
    process.stdout.write = original;
    redirectStdout(null);
  }
  return { result, error, output: lines.join('') };
}

/** Calls a handler as Lambda does and returns {result, error, output}. */
function invoke(handler, event, ctx = context()) {
  return captureStdout(() => handler(event, ctx));
}

module.exports = { ROOT, FIXTURES, LAMBDA_FIXTURES, fixture, context, captureStdout, invoke };
