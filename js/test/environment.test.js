'use strict';
const test = require('node:test');
const assert = require('node:assert/strict');
const { environmentOf, requestIdOf } = require('../runtime/environment');
const { fixture } = require('./helpers');

test('the environment is the alias at the end of the invoked ARN', () => {
  assert.equal(environmentOf(fixture('context-dev.json')).name, 'DEV');
  assert.equal(environmentOf(fixture('context-staging.json')).name, 'STAGING');
  const prod = environmentOf(fixture('context-prod.json'));
  assert.equal(prod.name, 'PROD');
  assert.equal(prod.alias, 'PROD');
  assert.equal(prod.functionName, 'tariffsim-price');
});

test('anything else is DEV: no qualifier, $LATEST, a version, another alias, lower case, no context', () => {
  const base = 'arn:aws:lambda:eu-west-2:123456789012:function:tariffsim-price';
  const unqualified = environmentOf(fixture('context-unqualified.json'));
  assert.equal(unqualified.name, 'DEV');
  assert.equal(unqualified.alias, null);
  for (const q of ['$LATEST', '7', 'QA', 'prod', 'Staging']) {
    assert.equal(environmentOf({ invokedFunctionArn: `${base}:${q}` }).name, 'DEV', q);
  }
  assert.equal(environmentOf(undefined).name, 'DEV');
  assert.equal(environmentOf({}).name, 'DEV');
  assert.equal(environmentOf({ invokedFunctionArn: 'not an arn:PROD' }).name, 'DEV');
});

test('the request id is the input\'s request-id, then requestId, then the Lambda request id', () => {
  const ctx = { awsRequestId: 'lambda-1' };
  assert.equal(requestIdOf({ 'request-id': 'a', requestId: 'b' }, ctx), 'a');
  assert.equal(requestIdOf({ requestId: 'b' }, ctx), 'b');
  assert.equal(requestIdOf({}, ctx), 'lambda-1');
  assert.equal(requestIdOf({}, undefined), 'no-request-id');
});

test('a request id that cannot tag a log line is a typed error', () => {
  for (const bad of [42, '', 'has space', 'x'.repeat(201), 'line\nbreak']) {
    assert.throws(() => requestIdOf({ 'request-id': bad }, {}), { name: 'InvalidRequest' });
  }
});
