'use strict';
// The environment a request runs in, from the alias at the end of the invoked function's ARN:
// arn:aws:lambda:<region>:<account>:function:<name>[:<qualifier>]. DEV, STAGING and PROD are
// aliases; anything else (no qualifier, $LATEST, a version number, another alias) is DEV.

const { codes, typed } = require('./errors');

/** The environments, lowest first. */
const ENVIRONMENTS = Object.freeze(['DEV', 'STAGING', 'PROD']);

const byArn = new Map();

/**
 * The environment of an invocation.
 * @param {{invokedFunctionArn?: string, functionName?: string}} [context] the Lambda context
 * @returns {{name: 'DEV'|'STAGING'|'PROD', alias: string|null, functionName: string|null, arn: string|null}}
 */
function environmentOf(context) {
  const arn = context && typeof context.invokedFunctionArn === 'string' ? context.invokedFunctionArn : null;
  if (arn !== null) {
    const known = byArn.get(arn);
    if (known) return known;
  }
  const parts = arn ? arn.split(':') : [];
  const functionName = parts.length >= 7 && parts[5] === 'function' ? parts[6] : (context && context.functionName) || null;
  const alias = parts.length === 8 && parts[5] === 'function' ? parts[7] : null;
  const name = alias === 'STAGING' || alias === 'PROD' ? alias : 'DEV';
  const env = Object.freeze({ name, alias, functionName, arn });
  if (arn !== null && byArn.size < 64) byArn.set(arn, env);
  return env;
}

const REQUEST_ID = /^[\x21-\x7e]{1,200}$/;

/**
 * The request id: the input's `request-id` or `requestId` when given (a caller's id follows the
 * work through every lambda), else the Lambda request id.
 * @param {Record<string, any>} input the decoded input
 * @param {{awsRequestId?: string}} [context]
 * @returns {string}
 */
function requestIdOf(input, context) {
  const given = input['request-id'] !== undefined ? input['request-id'] : input.requestId;
  if (given !== undefined) {
    if (typeof given !== 'string' || !REQUEST_ID.test(given)) {
      throw typed(codes.InvalidRequest, 'request-id must be 1 to 200 printable characters without spaces');
    }
    return given;
  }
  return (context && context.awsRequestId) || 'no-request-id';
}

module.exports = { ENVIRONMENTS, environmentOf, requestIdOf };
