'use strict';
// The environment budget on a real redis-server that goes away: an acquire the caller gave up on
// (Redis unreachable for longer than the budget waits) must never take a slot later, when Redis
// answers again. Otherwise the budget holds "ghost" holders that nothing computes for, until their
// lease (60 s) runs out, and every run of the environment waits for them.
//
// Two ways Redis goes away: the redis-server process stopped (SIGSTOP: the connection stays up,
// commands already written wait in the socket and run at SIGCONT), and killed then started again
// on the same port (the client reconnects: commands it queued while offline are sent then).

const nodeTest = require('node:test');
const { before, after } = nodeTest;

const test = (name, fn) => nodeTest.test(name, { timeout: 60_000 }, fn);
const assert = require('node:assert/strict');
const { createClient } = require('redis');
const { startRedis } = require('./servers');
const { RedisBus } = require('../runtime/pubsub');
const { budgetOf } = require('../runtime/budget');

const LIMIT = 3;
const LEASE_MS = 60_000;
const WAIT_MS = 1000; // how long a budget command waits for Redis in these tests (60 s leases would wait 30 s)

const sleep = (ms) => new Promise((resolve) => setTimeout(resolve, ms));

let redis = null;
let check = null; // a client of the test's own, to look at the budget's sorted set
const buses = [];

before(async () => {
  redis = await startRedis();
});

after(async () => {
  await Promise.all(buses.map((b) => b.close()));
  if (check !== null) check.destroy();
  if (redis !== null) await redis.stop();
});

/** A budget of its own environment name on a bus of its own, its commands waiting WAIT_MS for Redis. */
function freshBudget(env) {
  const bus = new RedisBus(redis.url);
  buses.push(bus);
  const pipeline = /** @type {any} */ ({ bus, storage: { url: () => 'unused' } });
  const budget = /** @type {any} */ (budgetOf(pipeline, { env: { name: env }, config: { chunkBudget: LIMIT, leaseMs: LEASE_MS } }));
  budget.waitMs = WAIT_MS;
  return { bus, budget, key: `tariffsim:budget:${env}` };
}

async function checker() {
  if (check === null || !check.isReady) {
    if (check !== null) check.destroy();
    check = createClient({ url: redis.url });
    check.on('error', () => {});
    await check.connect();
  }
  return check;
}

/** The budget's holders, once the bus's client has sent everything it had (a PING behind it). */
async function holdersAfterFlush(bus, key) {
  const pub = await bus.commands();
  await pub.ping();
  await sleep(200); // a clean-up the budget sends once a late reply arrives
  await pub.ping();
  return (await checker()).zRange(key, 0, -1);
}

/** Every slot can be taken again (none held by a ghost), and given back. */
async function assertAllSlotsFree(budget, key) {
  const tokens = await Promise.all(Array.from({ length: LIMIT }, () => budget.acquire()));
  assert.ok(
    tokens.every((t) => t !== null),
    `all ${LIMIT} slots free again, got ${tokens.filter((t) => t !== null).length}`,
  );
  assert.equal(await budget.acquire(), null, 'the budget is full with them');
  await Promise.all(tokens.map((t) => budget.lease(t).release()));
  assert.deepEqual(await (await checker()).zRange(key, 0, -1), []);
}

test('acquires given up on while redis-server is stopped (SIGSTOP) take no slot when it goes on', async () => {
  const { bus, budget, key } = freshBudget('STOPPED');
  // Connected, and the budget works.
  const t = await budget.acquire();
  assert.notEqual(t, null);
  await budget.lease(t).release();

  await redis.signal('SIGSTOP');
  let results;
  let patient;
  try {
    const t0 = Date.now();
    results = await Promise.allSettled(Array.from({ length: LIMIT }, () => budget.acquire()));
    assert.ok(Date.now() - t0 < WAIT_MS + 2000, 'gave up after about waitMs');
    // Another caller asks now and waits until Redis goes on: it finds every slot free.
    budget.waitMs = 10_000;
    patient = budget.acquire();
    budget.waitMs = WAIT_MS;
    await sleep(100);
  } finally {
    await redis.signal('SIGCONT');
  }
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.equal(/** @type {PromiseRejectedResult} */ (r).reason.code, 'REDIS_UNREACHABLE');
  }
  const token = await patient;
  assert.notEqual(token, null, 'the caller asking after they gave up gets a slot');
  assert.equal(token.last, false, 'and the budget had every slot free');
  assert.deepEqual(await holdersAfterFlush(bus, key), [token.holder], 'no ghost holder once Redis answers again');
  await budget.lease(token).release();
  await assertAllSlotsFree(budget, key);
});

test('acquires given up on while redis-server is down (killed, started again) take no slot after the client reconnects', async () => {
  const { bus, budget, key } = freshBudget('RESTARTED');
  const t = await budget.acquire();
  assert.notEqual(t, null);
  await budget.lease(t).release();

  await redis.kill();
  const pub = await bus.commands();
  for (let i = 0; i < 100 && pub.isReady; i += 1) await sleep(20); // the client has seen it go
  const given = Promise.allSettled(Array.from({ length: LIMIT }, () => budget.acquire()));
  // Another caller asks while those still wait, and waits longer (until Redis is back): the
  // acquires given up on must not be sent before it on reconnect and fill the budget.
  await sleep(WAIT_MS / 4);
  budget.waitMs = 10_000;
  const patient = budget.acquire();
  budget.waitMs = WAIT_MS;
  const results = await given;
  for (const r of results) {
    assert.equal(r.status, 'rejected');
    assert.equal(/** @type {PromiseRejectedResult} */ (r).reason.code, 'REDIS_UNREACHABLE');
  }
  await redis.start();

  const token = await patient;
  assert.notEqual(token, null, 'the caller still waiting gets a slot: none is taken by one given up on');
  assert.deepEqual(await holdersAfterFlush(bus, key), [token.holder], 'no ghost holder once the client has reconnected');
  await budget.lease(token).release();
  await assertAllSlotsFree(budget, key);
});

test('an acquire outlasting a short outage still gets its slot, and only one', async () => {
  const { bus, budget, key } = freshBudget('SHORT');
  const t = await budget.acquire();
  assert.notEqual(t, null);
  await budget.lease(t).release();

  await redis.signal('SIGSTOP');
  const pending = budget.acquire();
  await sleep(WAIT_MS / 4);
  await redis.signal('SIGCONT');
  const token = await pending;
  assert.notEqual(token, null, 'Redis answered within waitMs: the slot is the caller\'s');
  assert.deepEqual(await holdersAfterFlush(bus, key), [token.holder]);
  await budget.lease(token).release();
  assert.deepEqual(await (await checker()).zRange(key, 0, -1), []);
});

test('a try of an acquire whose answer was lost (its connection broke) is not a ghost when the acquire tries again', async () => {
  const { bus, budget, key } = freshBudget('LOST');
  const pub = await bus.commands();
  // The ACQUIRE that takes the last slot runs on Redis, then its answer is lost as when the
  // connection breaks; the budget tries again with the same holder, and finds the budget full.
  let lost = 0;
  let calls = 0;
  const flakyEval = (client) => async (script, options) => {
    const reply = await client.eval(script, options);
    calls += 1;
    if (calls === LIMIT) {
      lost += 1;
      throw Object.assign(new Error('Socket closed unexpectedly'), { name: 'SocketClosedUnexpectedlyError' });
    }
    return reply;
  };
  const flaky = /** @type {any} */ ({
    eval: flakyEval(pub),
    withAbortSignal: (signal) => ({ eval: flakyEval(pub.withAbortSignal(signal)) }),
  });
  bus.commands = async () => flaky;
  const tokens = [];
  try {
    for (let i = 0; i < LIMIT; i += 1) tokens.push(await budget.acquire());
  } finally {
    delete bus.commands;
  }
  assert.equal(lost, 1);
  assert.ok(
    tokens.every((t) => t !== null),
    'every slot taken once, the retried one included',
  );
  assert.equal(tokens[LIMIT - 1].last, true);
  assert.deepEqual((await (await checker()).zRange(key, 0, -1)).sort(), tokens.map((t) => t.holder).sort());
  await Promise.all(tokens.map((t) => budget.lease(t).release()));
  assert.deepEqual(await (await checker()).zRange(key, 0, -1), []);
});
