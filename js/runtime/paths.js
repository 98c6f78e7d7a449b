'use strict';
// What replies and stored state may say about files: never an absolute path of the machine.
//
// A file under the repository (the task root in Lambda) is named relative to it, as
// `data/sample/market.json` or `js/price.js` (stack traces too); a file under one of the configured
// folders that lies outside the repository by the folder's variable (`$TARIFFSIM_DATA_DIR/x.json`,
// `$TARIFFSIM_STORAGE/runs/r/plan.json`); the temporary folder as `$TMPDIR`, the home folder as `~`.

const path = require('node:path');

/** The repository root, which is also the root of the Lambda zip. */
const ROOT = path.dirname(path.dirname(__dirname));

/**
 * A file or folder under the root, by its parts (`fromRoot('config', 'functions.json')`): joined
 * with the separator, no more. path.join normalizes its whole result character by character, which
 * a cold start's JavaScript does slowly (interpreted, the first time): parts known to be plain
 * names need none of it.
 * @param {...string} parts
 */
const fromRoot = (...parts) => [ROOT, ...parts].join(path.sep);

/** The folders a configured setting may name, with the variable that names them. */
const FOLDERS = Object.freeze([
  ['dataDir', 'TARIFFSIM_DATA_DIR'],
  ['marketsDir', 'TARIFFSIM_MARKETS_DIR'],
  ['outDir', 'TARIFFSIM_OUT_DIR'],
  ['storage', 'TARIFFSIM_STORAGE'],
]);

let roots = null;

function within(dir, parent) {
  return dir === parent || dir.startsWith(parent + path.sep);
}

/**
 * The roots to hide, longest first: [absolute folder, label]. Read from the process's configuration
 * once (it is read once too); `extra` adds folders (tests, tools).
 */
function rootsOf() {
  if (roots !== null) return roots;
  const found = new Map([[ROOT, '']]);
  // The configuration is loaded lazily: paths.js is required by errors.js, which config.js's users
  // load first.
  const { config } = require('./config');
  const { ENVIRONMENTS } = require('./environment');
  for (const env of ENVIRONMENTS) {
    let settings;
    try {
      settings = config.forEnvironment(env);
    } catch {
      continue; // a setting with a bad value (InvalidConfig, reported where it is used)
    }
    for (const [key, variable] of FOLDERS) {
      let value;
      try {
        value = settings[key];
      } catch {
        continue; // a secret reference not resolved yet: not a folder of this machine
      }
      if (typeof value !== 'string' || value === '' || /^[a-z][a-z0-9+.-]*:\/\//i.test(value)) continue;
      const dir = path.resolve(value);
      if (within(dir, ROOT) || found.has(dir)) continue;
      found.set(dir, `$${variable}`);
    }
  }
  // node:os only now: a cold start that never reports an error does not load it.
  const os = require('node:os');
  const tmp = path.resolve(os.tmpdir());
  if (!found.has(tmp) && tmp !== path.sep) found.set(tmp, '$TMPDIR');
  const home = os.homedir();
  if (home && home !== path.sep && !found.has(home)) found.set(home, '~');
  roots = [...found.entries()].sort((a, b) => b[0].length - a[0].length);
  return roots;
}

/** A file as replies may name it: relative to the repository, or under a labelled folder. */
function publicPath(file) {
  if (typeof file !== 'string' || !path.isAbsolute(file)) return file;
  const abs = path.resolve(file);
  for (const [dir, label] of rootsOf()) {
    if (!within(abs, dir)) continue;
    const rel = path.relative(dir, abs).split(path.sep).join('/');
    if (label === '') return rel === '' ? '.' : rel;
    return rel === '' ? label : `${label}/${rel}`;
  }
  // Elsewhere on the machine: the file's name only.
  return path.basename(abs);
}

const PATH_END = /[^\s'"`(),:;<>[\]{}|]*/y;

/**
 * `text` with every absolute path under a known root replaced by its public form (see
 * publicPath): for error messages and stack traces.
 */
function scrubPaths(text) {
  if (typeof text !== 'string' || text === '') return text;
  let out = text;
  for (const [dir] of rootsOf()) {
    let at = out.indexOf(dir);
    while (at !== -1) {
      const after = out[at + dir.length];
      // Only whole folder names: /a/b must not match /a/bc.
      if (after === undefined || after === path.sep || !/[A-Za-z0-9._-]/.test(after)) {
        PATH_END.lastIndex = at + dir.length;
        const m = PATH_END.exec(out);
        const end = at + dir.length + (m ? m[0].length : 0);
        const replacement = publicPath(out.slice(at, end));
        out = out.slice(0, at) + replacement + out.slice(end);
        at = out.indexOf(dir, at + replacement.length);
      } else {
        at = out.indexOf(dir, at + dir.length);
      }
    }
  }
  // file:// URLs of the same paths lose their scheme with it.
  return out.replace(/file:\/\/(?=[^/])/g, '');
}

/** `err` with its message and stack scrubbed of absolute paths (in place; returned). */
function scrubError(err) {
  if (err === null || typeof err !== 'object') return err;
  try {
    if (typeof err.message === 'string') {
      const message = scrubPaths(err.message);
      if (message !== err.message) Object.defineProperty(err, 'message', { value: message, writable: true, configurable: true, enumerable: false });
    }
    if (typeof err.stack === 'string') {
      const stack = scrubPaths(err.stack);
      if (stack !== err.stack) Object.defineProperty(err, 'stack', { value: stack, writable: true, configurable: true, enumerable: false });
    }
  } catch {
    // A frozen error keeps what it says.
  }
  return err;
}

module.exports = { ROOT, fromRoot, publicPath, scrubPaths, scrubError };
