'use strict';
// Typed errors. The `name` of an error is its public, stable code: the Node.js Lambda runtime
// reports it as `errorType`, next to `errorMessage`. The wasm module throws errors of the same kind
// (a JS `Error` whose name is the core's code); these are the codes of the JS side.

/** Codes thrown by the JS side of the handlers. */
const codes = Object.freeze({
  /** The input is not JSON. */
  InvalidJson: 'InvalidJson',
  /** The input has the wrong shape: a missing or unknown field, a value of the wrong type. */
  InvalidRequest: 'InvalidRequest',
  /** The input's JSON is nested deeper than MAX_NESTING levels (wrap-handler.js). */
  NestingTooDeep: 'NestingTooDeep',
  /** The input is larger than Lambda accepts (6 MB). */
  PayloadTooLarge: 'PayloadTooLarge',
  /** The result is larger than Lambda can return (6 MB). */
  ResponseTooLarge: 'ResponseTooLarge',
  /** A stored market name that names no market. */
  UnknownMarket: 'UnknownMarket',
  /** A reference (spec, market, scenario, visits, output) outside its folder or not a file. */
  InvalidReference: 'InvalidReference',
  /** A referenced file that does not exist. */
  InputNotFound: 'InputNotFound',
  /** The wasm module trapped (a panic: a bug); the next request gets a fresh module. */
  WasmTrap: 'WasmTrap',
  /** A run id that names no run. */
  UnknownRun: 'UnknownRun',
  /** A run id that is taken by a run with another spec. */
  RunExists: 'RunExists',
  /** A chain of lambdas calling lambdas deeper than the environment allows (a loop). */
  RecursionLimit: 'RecursionLimit',
  /** An asynchronous invocation the Lambda service did not accept. */
  InvokeFailed: 'InvokeFailed',
  /** A failure injected by a test (development only, TARIFFSIM_FAIL_CHUNKS). */
  InjectedFault: 'InjectedFault',
  /** A run's sample_size above its environment's limit (maxSampleSize). */
  SampleSizeTooLarge: 'SampleSizeTooLarge',
  /** A run failed because storage refused a write for good (a full disk, a quota, read-only). */
  StorageFull: 'StorageFull',
  /** A run failed because it made no progress for the stall timeout (TARIFFSIM_STALL_MS). */
  RunStalled: 'RunStalled',
  /** A write to run storage failed or was cut short (the key names the object). */
  StorageWriteFailed: 'StorageWriteFailed',
  /** A read from run storage failed for another reason than the object's absence. */
  StorageReadFailed: 'StorageReadFailed',
  /** The development server: a Host name it does not serve (DNS rebinding). */
  HostNotAllowed: 'HostNotAllowed',
  /** The development server: a request from a web page of another origin. */
  CrossOriginRequest: 'CrossOriginRequest',
  /** The development server: a state-changing request without a JSON content type. */
  UnsupportedMediaType: 'UnsupportedMediaType',
  /** Something was thrown that is not an Error. */
  InternalError: 'InternalError',
});

/** An Error whose `name` is a stable code. */
class TariffsimError extends Error {
  /**
   * @param {string} code the public code, e.g. `InvalidRequest`
   * @param {string} message lowercase, saying what to fix
   * @param {{cause?: unknown}} [options]
   */
  constructor(code, message, options) {
    super(message, options);
    Object.defineProperty(this, 'name', { value: code, writable: true, configurable: true });
    // The stack's first line was written with the default name; give it the code.
    if (typeof this.stack === 'string') this.stack = `${code}: ${message}${this.stack.slice(this.stack.indexOf('\n'))}`;
  }
}

/** Shorthand: `typed('InvalidRequest', 'page_size must be ...')`. */
function typed(code, message, options) {
  return new TariffsimError(code, message, options);
}

/** Whatever was thrown, as an Error with a name. */
function asError(thrown) {
  if (thrown instanceof Error) return thrown;
  if (thrown && typeof thrown === 'object' && typeof thrown.name === 'string' && typeof thrown.message === 'string') {
    return typed(thrown.name, thrown.message);
  }
  return typed(codes.InternalError, `a non-error value was thrown: ${String(thrown)}`);
}

module.exports = { codes, TariffsimError, typed, asError };
