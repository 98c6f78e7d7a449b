'use strict';
// References to input files (run specs, markets, scenarios, visits) under the data folder, and
// reading them: a missing file is InputNotFound, named relative to the repository or its folder
// (never by absolute path), and a UTF-8 byte-order mark, which editors on Windows write, is
// accepted and dropped.

const fs = require('node:fs');
const path = require('node:path');
const { codes, typed } = require('./errors');
const { publicPath } = require('./paths');

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

/** `bytes` without a leading UTF-8 byte-order mark (EF BB BF), if it has one. */
function withoutBom(bytes) {
  if (typeof bytes === 'string') return bytes.charCodeAt(0) === 0xfeff ? bytes.slice(1) : bytes;
  return bytes.length >= 3 && bytes[0] === 0xef && bytes[1] === 0xbb && bytes[2] === 0xbf ? bytes.subarray(3) : bytes;
}

/** The typed error for a file that cannot be read, naming it without its absolute path. */
function readError(e, file, what) {
  const name = publicPath(file);
  if (e.code === 'ENOENT' || e.code === 'ENOTDIR') return typed(codes.InputNotFound, `${what} ${name} does not exist`);
  if (e.code === 'EISDIR') return typed(codes.InvalidReference, `${what} ${name} is not a file`);
  if (typeof e.code === 'string') return typed(codes.InvalidReference, `${what} ${name} cannot be read (${e.code})`, { cause: e });
  return e;
}

/**
 * An input file's bytes, a UTF-8 byte-order mark dropped.
 * @param {string} file absolute path
 * @param {string} what for messages (`market`, `visits`, ...)
 * @returns {Buffer}
 */
function readInput(file, what) {
  try {
    return withoutBom(fs.readFileSync(file));
  } catch (e) {
    throw readError(e, file, what);
  }
}

module.exports = { inside, withoutBom, readInput, readError };
