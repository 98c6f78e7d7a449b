#!/usr/bin/env node
'use strict';
// npm run promote: moves STAGING to the version DEV points to, or PROD to the version STAGING
// points to, for one, several or all functions; or rolls an alias back.
//
//   npm run promote -- --to STAGING|PROD (--functions a,b | --all) [--version N] [--dry-run]
//                      [--endpoint URL] [--region R]
//   npm run promote -- --rollback --to DEV|STAGING|PROD (--functions a,b | --all) [--dry-run] ...
//
// It first shows what would change (with --dry-run it stops there), then moves each alias with
// UpdateAlias and the RevisionId it read when it made the plan: if anyone moved the alias since
// (two people promoting at once), Lambda refuses the update (PreconditionFailedException) and
// nothing is silently overwritten; run it again to see the new state.
//
// Refused, with nothing changed: --to DEV (deploy moves DEV); a --version that is not the one the
// previous stage points to; a previous stage that splits traffic between versions; a rollback with
// no previous version recorded.
//
// Rollback: each move records the version the alias pointed to before in the alias description
// ({"previous": "3", "via": "promote", ...}); --rollback moves the alias back to it (and records the
// version it leaves, so a second --rollback undoes the first).

const { commandLine } = require('./cli');
const { STAGES, DeployError, loadFunctions, selectFunctions, clients, aliasDescription, parseAliasDescription } = require('./deploy');

/** The stage a stage is promoted from. */
function previousStage(to) {
  const i = STAGES.indexOf(to);
  if (i < 0) throw new DeployError('UnknownStage', `--to ${to}: give STAGING or PROD`);
  if (i === 0) throw new DeployError('Refused', 'DEV is not promoted to: npm run deploy moves it');
  return STAGES[i - 1];
}

const isNotFound = (e) => e && (e.name === 'ResourceNotFoundException' || (e.$metadata && e.$metadata.httpStatusCode === 404));

async function getAlias(lambdaClient, functionName, name) {
  const { GetAliasCommand } = require('@aws-sdk/client-lambda');
  try {
    return await lambdaClient.send(new GetAliasCommand({ FunctionName: functionName, Name: name }));
  } catch (e) {
    if (isNotFound(e)) return null;
    throw e;
  }
}

/** A version's commit (its description), or null when the version does not exist. */
async function versionInfo(lambdaClient, functionName, version, cache) {
  const key = `${functionName}:${version}`;
  if (!cache.has(key)) {
    const { GetFunctionConfigurationCommand } = require('@aws-sdk/client-lambda');
    try {
      const c = await lambdaClient.send(new GetFunctionConfigurationCommand({ FunctionName: functionName, Qualifier: String(version) }));
      cache.set(key, { version: String(version), commit: c.Description || '' });
    } catch (e) {
      if (!isNotFound(e)) throw e;
      cache.set(key, null);
    }
  }
  return cache.get(key);
}

/**
 * One function's step of a plan.
 * @typedef {{function: string, target: string, alias: string, action: string, current: any,
 *   wanted: any, revisionId: string|null, reason: string, description?: string}} Step
 */

/**
 * What a promotion (or rollback) would change, read from Lambda; changes nothing.
 * @param {import('@aws-sdk/client-lambda').LambdaClient} lambdaClient
 * @param {{to: string, functions: ReturnType<typeof loadFunctions>['functions'], version?: string, rollback?: boolean}} options
 * @returns {Promise<{to: string, from: string|null, rollback: boolean, steps: Step[], refused: Step[]}>}
 *   steps: {function, alias, action: 'move'|'create'|'none'|'refuse', current, target, revisionId, reason}
 */
async function planPromotion(lambdaClient, { to, functions, version, rollback = false }) {
  const from = rollback ? null : previousStage(to);
  if (rollback && !STAGES.includes(to)) throw new DeployError('UnknownStage', `--to ${to}: give DEV, STAGING or PROD`);
  // A rollback goes to the version the alias recorded, never to one given.
  if (rollback && version !== undefined) throw new DeployError('InvalidArguments', '--rollback goes back to the version the alias recorded: leave out --version');
  const cache = new Map();
  const steps = [];
  for (const f of functions) {
    const step = { function: f.name, target: f.target, alias: to, action: 'none', current: null, wanted: null, revisionId: null, reason: '' };
    steps.push(step);
    const alias = await getAlias(lambdaClient, f.name, to);
    if (alias) {
      step.current = await versionInfo(lambdaClient, f.name, alias.FunctionVersion, cache);
      step.revisionId = alias.RevisionId;
      step.description = alias.Description;
    }
    let wanted;
    if (rollback) {
      const recorded = alias && parseAliasDescription(alias.Description);
      if (!alias || !recorded || !recorded.previous) {
        Object.assign(step, { action: 'refuse', reason: `${to} has no previous version recorded: nothing to roll back to` });
        continue;
      }
      wanted = recorded.previous;
      // Only a published version (a number): never $LATEST, the unpublished code.
      if (!/^[1-9][0-9]*$/.test(String(wanted))) {
        Object.assign(step, { action: 'refuse', reason: `${to}'s recorded previous version ${JSON.stringify(wanted)} is not a published version: nothing to roll back to` });
        continue;
      }
    } else {
      const source = await getAlias(lambdaClient, f.name, from);
      if (!source) {
        Object.assign(step, { action: 'refuse', reason: `${f.name} has no ${from} alias: ${from === 'DEV' ? 'deploy it first' : `promote it to ${from} first`}` });
        continue;
      }
      const weights = source.RoutingConfig && source.RoutingConfig.AdditionalVersionWeights;
      if (weights && Object.keys(weights).length > 0) {
        Object.assign(step, { action: 'refuse', reason: `${from} splits traffic between versions ${source.FunctionVersion} and ${Object.keys(weights).join(', ')}: settle it first` });
        continue;
      }
      if (version !== undefined && String(version) !== source.FunctionVersion) {
        Object.assign(step, { action: 'refuse', reason: `version ${version} is not on ${from} (${from} is at version ${source.FunctionVersion}): ${from === 'DEV' ? 'deploy it' : `promote it to ${from}`} first` });
        continue;
      }
      wanted = source.FunctionVersion;
    }
    step.wanted = await versionInfo(lambdaClient, f.name, wanted, cache);
    if (step.wanted === null) {
      Object.assign(step, { action: 'refuse', reason: `version ${wanted} of ${f.name} does not exist` });
    } else if (!alias) {
      Object.assign(step, { action: 'create', reason: `${to} does not exist yet` });
    } else if (alias.FunctionVersion === step.wanted.version) {
      Object.assign(step, { action: 'none', reason: rollback ? `${to} is at version ${wanted} already` : `${to} is at ${from}'s version already` });
    } else {
      step.action = 'move';
    }
  }
  return { to, from, rollback, steps, refused: steps.filter((s) => s.action === 'refuse') };
}

const short = (v) => (v ? `${v.version} (${v.commit ? v.commit.slice(0, 12) : 'no commit'})` : '-');

/** The plan as lines for people. */
function describePlan(plan, dryRun) {
  const head = plan.rollback ? `roll ${plan.to} back` : `promote to ${plan.to} (the versions ${plan.from} points to)`;
  const lines = [`${head}${dryRun ? ': dry run, nothing changes' : ''}`];
  const width = Math.max(...plan.steps.map((s) => s.function.length));
  for (const s of plan.steps) {
    const name = s.function.padEnd(width);
    if (s.action === 'move' || s.action === 'create') lines.push(`  ${name}  ${plan.to} ${short(s.current)} -> ${short(s.wanted)}${s.action === 'create' ? ' (new alias)' : ''}`);
    else if (s.action === 'none') lines.push(`  ${name}  ${plan.to} ${short(s.current)}: nothing to do (${s.reason})`);
    else lines.push(`  ${name}  REFUSED: ${s.reason}`);
  }
  return lines;
}

/**
 * Applies a plan: each alias moved only if nobody moved it since the plan was made (RevisionId).
 * Refuses the whole plan when any step is refused.
 * @param {import('@aws-sdk/client-lambda').LambdaClient} lambdaClient
 * @param {Awaited<ReturnType<typeof planPromotion>>} plan
 * @param {{log?: (line: string) => void}} [options]
 * @returns {Promise<{moved: object[]}>}
 */
async function applyPromotion(lambdaClient, plan, { log = () => {} } = {}) {
  const l = require('@aws-sdk/client-lambda');
  if (plan.refused.length > 0) {
    throw new DeployError('Refused', `promotion refused, nothing changed: ${plan.refused.map((s) => `${s.function}: ${s.reason}`).join('; ')}`);
  }
  const moved = [];
  for (const s of plan.steps) {
    if (s.action !== 'move' && s.action !== 'create') continue;
    const description = aliasDescription({ previous: s.current ? s.current.version : null, via: plan.rollback ? 'rollback' : `promote from ${plan.from}`, commit: s.wanted.commit });
    try {
      if (s.action === 'create') {
        await lambdaClient.send(new l.CreateAliasCommand({ FunctionName: s.function, Name: plan.to, FunctionVersion: s.wanted.version, Description: description }));
      } else {
        await lambdaClient.send(new l.UpdateAliasCommand({ FunctionName: s.function, Name: plan.to, FunctionVersion: s.wanted.version, RevisionId: s.revisionId, Description: description }));
      }
    } catch (e) {
      if (e.name === 'PreconditionFailedException' || e.name === 'ResourceConflictException' || e.name === 'ConflictException') {
        const done = moved.length ? ` (already moved: ${moved.map((m) => `${m.function} -> ${m.version}`).join(', ')})` : '';
        throw new DeployError('StaleAlias', `${s.function}:${plan.to} changed since the plan was made (someone else promoted?): not moved${done}; run promote again to see where it stands`);
      }
      throw e;
    }
    moved.push({ function: s.function, from: s.current ? s.current.version : null, version: s.wanted.version });
    log(`  ${s.function}: ${plan.to} -> ${s.wanted.version}`);
  }
  return { moved };
}

/**
 * Plans, shows and (unless dryRun) applies a promotion or rollback.
 * @param {{to: string, functions?: string[]|'all', version?: string, rollback?: boolean,
 *   dryRun?: boolean, endpoint?: string, region?: string, file?: string, clients?: import('./deploy').Clients,
 *   log?: (line: string) => void}} options
 */
async function promote(options) {
  const log = options.log || ((line) => process.stdout.write(`${line}\n`));
  const to = String(options.to || '').toUpperCase();
  const cfg = loadFunctions({ file: options.file, region: options.region });
  if (options.functions === undefined) throw new DeployError('NoFunctions', 'name the functions (--functions a,b) or give --all');
  const functions = selectFunctions(cfg, options.functions);
  const c = options.clients || clients({ region: cfg.region, endpoint: options.endpoint });
  try {
    const plan = await planPromotion(c.lambda, { to, functions, version: options.version, rollback: options.rollback });
    for (const line of describePlan(plan, options.dryRun)) log(line);
    if (plan.refused.length > 0) {
      const e = new DeployError('Refused', `refused for ${plan.refused.length} of ${plan.steps.length} functions (see the plan): nothing changed`);
      e.refused = plan.refused;
      throw e;
    }
    if (options.dryRun) return { plan, moved: [] };
    const { moved } = await applyPromotion(c.lambda, plan, { log });
    log(moved.length === 0 ? 'nothing to do' : `moved ${moved.length} alias${moved.length === 1 ? '' : 'es'}`);
    return { plan, moved };
  } finally {
    if (!options.clients) c.close();
  }
}

const USAGE = 'usage: npm run promote -- --to STAGING|PROD (--functions a,b | --all) [--version N] [--dry-run] [--endpoint URL] [--region R]\n       npm run promote -- --rollback --to DEV|STAGING|PROD (--functions a,b | --all) [--dry-run] [--endpoint URL] [--region R]';

async function main(argv = process.argv.slice(2)) {
  const parsed = commandLine(argv, {
        to: { type: 'string' },
        functions: { type: 'string' },
        all: { type: 'boolean', default: false },
        version: { type: 'string' },
        'dry-run': { type: 'boolean', default: false },
        rollback: { type: 'boolean', default: false },
        endpoint: { type: 'string' },
        region: { type: 'string' },
        help: { type: 'boolean', short: 'h' },
  }, USAGE);
  if (parsed.exit !== undefined) return parsed.exit;
  const { values } = parsed;
  if (!values.to || values.all === (values.functions !== undefined)) {
    process.stderr.write(`give --to, and either --functions or --all\n${USAGE}\n`);
    return 2;
  }
  try {
    await promote({
      to: values.to,
      functions: values.all ? 'all' : values.functions.split(',').map((s) => s.trim()),
      version: values.version,
      rollback: values.rollback,
      dryRun: values['dry-run'],
      endpoint: values.endpoint,
      region: values.region,
    });
    return 0;
  } catch (e) {
    process.stderr.write(`promote failed: ${e.name}: ${e.message}\n`);
    return 1;
  }
}

if (require.main === module) main().then((code) => (process.exitCode = code));

module.exports = { previousStage, planPromotion, applyPromotion, describePlan, promote, main };
