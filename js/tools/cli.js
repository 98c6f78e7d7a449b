'use strict';
// The command-line tools' shared front: node:util's parseArgs, `--help`, and a usage line on a bad
// flag (exit status 2).

const { parseArgs } = require('node:util');

/**
 * Parses `argv` against `options` (parseArgs options; `--help`/`-h` is added).
 * @param {string[]} argv
 * @param {Record<string, {type: 'string'|'boolean', short?: string, multiple?: boolean, default?: string|boolean}>} options
 * @param {string} usage
 * @param {{positionals?: boolean}} [more] `positionals`: arguments besides the flags are allowed
 * @returns {{exit?: undefined, values: Record<string, any>, positionals: string[]} |
 *   {exit: number, values?: undefined, positionals?: undefined}} the parsed flags, or the exit
 *   status when the usage was printed instead
 */
function commandLine(argv, options, usage, more = {}) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: { ...options, help: { type: 'boolean', short: 'h' } }, allowPositionals: Boolean(more.positionals) });
  } catch (e) {
    process.stderr.write(`${e.message}\n${usage}\n`);
    return { exit: 2 };
  }
  if (parsed.values.help) {
    process.stdout.write(`${usage}\n`);
    return { exit: 0 };
  }
  return parsed;
}

module.exports = { commandLine };
