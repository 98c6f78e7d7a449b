'use strict';
// The lambdas of tariffsim, from config/functions.json (the file `npm run deploy` creates the
// functions from, shipped in the zip): their names, handlers, the function-name prefix and the
// default region. The runtime, the dev server and the tools read them here, never from a copy.

const path = require('node:path');
const { ROOT, fromRoot } = require('./paths');

/** config/functions.json. */
const FUNCTIONS_FILE = fromRoot('config', 'functions.json');

// Required rather than read, so the price handler's esbuild bundle carries it (no file read at a
// cold start); the zip still ships the file for the other handlers and the tools.
const raw = require('../../config/functions.json');

/** The region when nothing else says (AWS_REGION, an ARN): eu-west-2. */
const DEFAULT_REGION = /** @type {string} */ (raw.region);
/** Function name = prefix + lambda (`tariffsim-price`); TARIFFSIM_FUNCTION_PREFIX overrides it per environment. */
const FUNCTION_PREFIX = /** @type {string} */ (raw.functionPrefix);
/** The lambdas, by their target name (`price`, `run-simulation`, `filter-population`, `simulate-chunk`). */
const LAMBDAS = Object.freeze(Object.keys(raw.functions));
/** Each lambda's handler string as Lambda takes it (`js/price.handler`). */
const HANDLERS = Object.freeze(Object.fromEntries(LAMBDAS.map((name) => [name, /** @type {string} */ (raw.functions[name].handler)])));

/**
 * Where a lambda's handler is: the module's absolute path and the export's name.
 * @param {string} lambda one of LAMBDAS
 * @returns {{file: string, name: string}}
 */
function handlerLocation(lambda) {
  const handler = HANDLERS[lambda];
  if (handler === undefined) throw new Error(`no lambda called ${JSON.stringify(lambda)}: the lambdas are ${LAMBDAS.join(', ')}`);
  const dot = handler.lastIndexOf('.');
  return { file: path.join(ROOT, handler.slice(0, dot)), name: handler.slice(dot + 1) };
}

/**
 * The function name of a lambda.
 * @param {string} lambda
 * @param {string} [prefix] default FUNCTION_PREFIX
 */
function functionName(lambda, prefix = FUNCTION_PREFIX) {
  return `${prefix}${lambda}`;
}

/**
 * The lambda a function name means (`tariffsim-price` or `price`), or null.
 * @param {string} name
 * @param {string} [prefix] default FUNCTION_PREFIX
 * @returns {string|null}
 */
function lambdaOf(name, prefix = FUNCTION_PREFIX) {
  const lambda = prefix && name.startsWith(prefix) ? name.slice(prefix.length) : name;
  return LAMBDAS.includes(lambda) ? lambda : null;
}

module.exports = { FUNCTIONS_FILE, DEFAULT_REGION, FUNCTION_PREFIX, LAMBDAS, HANDLERS, handlerLocation, functionName, lambdaOf };
