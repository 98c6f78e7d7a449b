'use strict';
// Lambda `simulate-chunk`: one chunk of a run, the same unit as the native command
// `tariffsim chunk SPEC --index I`, with byte-identical output. The chunk's impressions CSV and
// partial summary JSON are written to the output folder (the run's storage: a local folder for
// now), and the response carries the partial summary and where the files are.
//
// Handler: js/simulate-chunk.handler
//
// As a step of a fan-out run (from filter-population or the chunk before it), the input is just
// { "run_id": "...", "index": i, "lease"?: {...} }: the chunk reads the run's stored inputs and
// records itself done (runtime/chunk-pipeline.js); `lease` is the slot of the environment's budget
// the scheduler took for it (without one, the chunk takes a slot or leaves the chunk for later).
//
// Standalone input:
//   {
//     "request-id": "optional",
//     "spec": "sample/run.json",     // a run spec file under TARIFFSIM_DATA_DIR, whose market,
//                                    // scenario and visits are relative to its folder (as for the
//                                    // CLI); or the run spec inline, its references relative to
//                                    // TARIFFSIM_DATA_DIR
//     "index": 0,                    // the chunk, from 0
//     "run_id": "optional",          // names the output folder (default: the request id)
//     "inline_impressions": false    // also return the CSV text in the response (small chunks)
//   }
//
// Output: { index, chunk_count, population, profiles, impressions,
//           impressions_file, summary_file, summary, impressions_csv? }
//   impressions_file: <TARIFFSIM_OUT_DIR>/<run_id>/chunk-<index>.csv (the header on chunk 0 only;
//                     the index in 6 digits: chunk-000003.csv)
//   summary_file:     <TARIFFSIM_OUT_DIR>/<run_id>/chunk-<index>.summary.json

const fs = require('node:fs');
const path = require('node:path');
const { wrapHandler } = require('./runtime/wrap-handler');
const { withEngine, marketFromFile, visitsFromFile, textFromFile } = require('./runtime/engine');
const { codes, typed } = require('./runtime/errors');
const { inside } = require('./runtime/inputs');
const { runChunk } = require('./runtime/chunk-pipeline');

const FIELDS = new Set(['request-id', 'requestId', 'spec', 'index', 'run_id', 'inline_impressions', 'depth', 'lease']);
const RUN_ID = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

function invalid(message) {
  return typed(codes.InvalidRequest, message);
}

/** Writes a file whole or not at all (a reader never sees half a chunk). */
function writeAtomically(file, data) {
  fs.mkdirSync(path.dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.tmp`;
  fs.writeFileSync(tmp, data);
  fs.renameSync(tmp, file);
}

function work(input, request) {
  for (const field of Object.keys(input)) {
    if (!FIELDS.has(field)) throw invalid(`unknown field ${JSON.stringify(field)}: expected ${[...FIELDS].join(', ')}`);
  }
  const { config } = request;
  const index = input.index;
  if (!Number.isSafeInteger(index) || index < 0) throw invalid('index must be a whole number from 0');
  const runId = input.run_id === undefined ? request.requestId : input.run_id;
  if (typeof runId !== 'string' || !RUN_ID.test(runId)) throw invalid("run_id must be 1 to 128 letters, digits, '.', '_' or '-', starting with a letter or digit");
  // Without a spec, the chunk is a step of a stored fan-out run (see runtime/chunk-pipeline.js).
  if (input.spec === undefined && input.run_id !== undefined) {
    if (input.lease !== undefined && (input.lease === null || typeof input.lease !== 'object' || Array.isArray(input.lease))) throw invalid('lease must be the budget slot the scheduler gave');
    return runChunk({ run_id: runId, index, lease: input.lease }, request);
  }
  if (input.inline_impressions !== undefined && typeof input.inline_impressions !== 'boolean') throw invalid('inline_impressions must be true or false');
  const root = config.dataDir;

  return withEngine((instance) => {
    const { engine } = instance;
    let specText;
    let base;
    if (typeof input.spec === 'string') {
      const file = inside(root, root, input.spec, 'spec');
      specText = textFromFile(instance, file, 'run spec');
      base = path.dirname(file);
    } else if (input.spec !== null && typeof input.spec === 'object' && !Array.isArray(input.spec)) {
      specText = JSON.stringify(input.spec);
      base = root;
    } else {
      throw invalid('spec must be a run spec file under the data folder or a run spec object');
    }
    const refs = engine.runSpec(specText);
    const marketKey = marketFromFile(instance, inside(root, base, refs.market, 'market'));
    const scenarioText = refs.scenario == null ? undefined : textFromFile(instance, inside(root, base, refs.scenario, 'scenario'), 'scenario');
    const visitsKey = visitsFromFile(instance, inside(root, base, refs.visits, 'visits'));
    const run = engine.prepareRun(specText, marketKey, scenarioText, visitsKey);
    const out = engine.chunk(run.key, index);

    const name = `chunk-${String(index).padStart(6, '0')}`;
    const impressionsFile = path.join(config.outDir, runId, `${name}.csv`);
    const summaryFile = path.join(config.outDir, runId, `${name}.summary.json`);
    writeAtomically(impressionsFile, out.impressions_csv);
    writeAtomically(summaryFile, out.summary_json);
    request.log.info(`chunk ${index} of ${run.chunk_count}: ${out.profiles} profiles, ${out.impressions} impressions -> ${impressionsFile}`);

    const result = {
      index,
      chunk_count: run.chunk_count,
      population: run.population,
      profiles: out.profiles,
      impressions: out.impressions,
      impressions_file: impressionsFile,
      impressions_bytes: out.impressions_csv.byteLength,
      summary_file: summaryFile,
      summary: JSON.parse(out.summary_json),
    };
    if (input.inline_impressions) {
      result.impressions_csv = Buffer.from(out.impressions_csv.buffer, out.impressions_csv.byteOffset, out.impressions_csv.byteLength).toString('utf8');
    }
    return result;
  });
}

exports.handler = wrapHandler('simulate-chunk', work);
