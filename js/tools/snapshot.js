'use strict';
// Writes market snapshots: `<market.json>.snapshot` next to each market file given, so that a cold
// start decodes the market instead of parsing its JSON. A snapshot records the content key of the
// JSON it was made from and is ignored when the JSON changes; the bundle makes one for the bundled
// sample market. For stored markets in TARIFFSIM_MARKETS_DIR run this after each change:
//
//   node js/tools/snapshot.js markets/*.json

const fs = require('node:fs');
const { withEngine } = require('../runtime/engine');
const { withoutBom } = require('../runtime/inputs');

/** The snapshot bytes of a market file (the market is parsed and validated by the core first). */
function snapshotOfFile(file) {
  // Keyed as the handlers key the file: a UTF-8 byte-order mark is not part of the market (inputs.js).
  return withEngine(({ engine }) => Buffer.from(engine.marketSnapshot(engine.loadMarket(withoutBom(fs.readFileSync(file))))));
}

if (require.main === module) {
  const usage = 'usage: node js/tools/snapshot.js MARKET.json...   (writes MARKET.json.snapshot next to each)';
  const parsed = require('./cli').commandLine(process.argv.slice(2), {}, usage, { positionals: true });
  if (parsed.exit !== undefined) process.exit(parsed.exit);
  if (parsed.positionals.length === 0) {
    process.stderr.write(`give at least one market file\n${usage}\n`);
    process.exit(2);
  }
  for (const file of parsed.positionals) {
    const snap = snapshotOfFile(file);
    fs.writeFileSync(`${file}.snapshot`, snap);
    process.stdout.write(`${file}.snapshot: ${snap.length} bytes\n`);
  }
}

module.exports = { snapshotOfFile };
