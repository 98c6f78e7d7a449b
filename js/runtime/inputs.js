'use strict';
// References to input files (run specs, markets, scenarios, visits) under the data folder.

const path = require('node:path');
const { codes, typed } = require('./errors');

/**
 * `ref` resolved against `base`, refused unless it stays inside `root`.
 * @param {string} root the data folder
 * @param {string} base the folder `ref` is relative to
 * @param {unknown} ref
 * @param {string} what for messages
 */
function inside(root, base, ref, what) {
  if (typeof ref !== 'string' || ref === '' || ref.includes('\0')) throw typed(codes.InvalidRequest, `${what} must be a non-empty path`);
  if (path.isAbsolute(ref)) throw typed(codes.InvalidReference, `${what} ${ref} is absolute: give a path relative to the data folder`);
  const file = path.resolve(base, ref);
  const rel = path.relative(root, file);
  if (rel === '' || rel.startsWith('..') || path.isAbsolute(rel)) {
    throw typed(codes.InvalidReference, `${what} ${ref} is outside the data folder`);
  }
  return file;
}

module.exports = { inside };
