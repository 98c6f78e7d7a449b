'use strict';
// A minimal, deterministic zip writer (and reader, for the smoke test's own checks): entries sorted
// by path, a fixed timestamp (1980-01-01 00:00), fixed Unix modes (0644 files, 0755 folders), no
// extra fields, raw deflate at level 9. The same files give the same bytes, so an unchanged build
// uploads the same code and publishes no new Lambda version.

const zlib = require('node:zlib');

const CRC_TABLE = (() => {
  const table = new Uint32Array(256);
  for (let n = 0; n < 256; n++) {
    let c = n;
    for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
    table[n] = c >>> 0;
  }
  return table;
})();

function crc32(bytes) {
  let c = 0xffffffff;
  for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
  return (c ^ 0xffffffff) >>> 0;
}

const DOS_TIME = 0; // 00:00:00
const DOS_DATE = (0 << 9) | (1 << 5) | 1; // 1980-01-01
const FILE_MODE = 0o100644;
const DIR_MODE = 0o040755;

/**
 * A zip of `files` (Map or object of path -> Buffer), with a folder entry for every folder.
 * @param {Map<string, Buffer>} files paths use '/'
 * @returns {Buffer}
 */
function createZip(files) {
  const entries = new Map();
  for (const [name, data] of files) {
    if (name.startsWith('/') || name.split('/').includes('..')) throw new Error(`bad zip path ${name}`);
    const parts = name.split('/');
    for (let i = 1; i < parts.length; i++) entries.set(`${parts.slice(0, i).join('/')}/`, null);
    entries.set(name, Buffer.from(data));
  }
  const names = [...entries.keys()].sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const locals = [];
  const centrals = [];
  let offset = 0;
  for (const name of names) {
    const data = entries.get(name);
    const isDir = data === null;
    const nameBytes = Buffer.from(name, 'utf8');
    const raw = isDir ? Buffer.alloc(0) : data;
    const deflated = isDir ? raw : zlib.deflateRawSync(raw, { level: 9 });
    const stored = isDir || deflated.length >= raw.length;
    const body = stored ? raw : deflated;
    const method = stored ? 0 : 8;
    const crc = isDir ? 0 : crc32(raw);
    const local = Buffer.alloc(30);
    local.writeUInt32LE(0x04034b50, 0);
    local.writeUInt16LE(20, 4); // version needed
    local.writeUInt16LE(0x0800, 6); // UTF-8 names
    local.writeUInt16LE(method, 8);
    local.writeUInt16LE(DOS_TIME, 10);
    local.writeUInt16LE(DOS_DATE, 12);
    local.writeUInt32LE(crc, 14);
    local.writeUInt32LE(body.length, 18);
    local.writeUInt32LE(raw.length, 22);
    local.writeUInt16LE(nameBytes.length, 26);
    local.writeUInt16LE(0, 28);
    locals.push(local, nameBytes, body);
    const central = Buffer.alloc(46);
    central.writeUInt32LE(0x02014b50, 0);
    central.writeUInt16LE((3 << 8) | 20, 4); // made by Unix, 2.0
    central.writeUInt16LE(20, 6);
    central.writeUInt16LE(0x0800, 8);
    central.writeUInt16LE(method, 10);
    central.writeUInt16LE(DOS_TIME, 12);
    central.writeUInt16LE(DOS_DATE, 14);
    central.writeUInt32LE(crc, 16);
    central.writeUInt32LE(body.length, 20);
    central.writeUInt32LE(raw.length, 24);
    central.writeUInt16LE(nameBytes.length, 28);
    central.writeUInt16LE(0, 30); // extra
    central.writeUInt16LE(0, 32); // comment
    central.writeUInt16LE(0, 34); // disk
    central.writeUInt16LE(0, 36); // internal attributes
    central.writeUInt32LE((((isDir ? DIR_MODE : FILE_MODE) << 16) | (isDir ? 0x10 : 0)) >>> 0, 38);
    central.writeUInt32LE(offset, 42);
    centrals.push(central, nameBytes);
    offset += local.length + nameBytes.length + body.length;
  }
  const centralSize = centrals.reduce((n, b) => n + b.length, 0);
  const end = Buffer.alloc(22);
  end.writeUInt32LE(0x06054b50, 0);
  end.writeUInt16LE(names.length, 8);
  end.writeUInt16LE(names.length, 10);
  end.writeUInt32LE(centralSize, 12);
  end.writeUInt32LE(offset, 16);
  return Buffer.concat([...locals, ...centrals, end]);
}

/**
 * The entries of a zip written by createZip: [{name, mode, data}] (data null for folders).
 * @param {Buffer} zip
 */
function readZip(zip) {
  const end = zip.lastIndexOf(Buffer.from([0x50, 0x4b, 0x05, 0x06]));
  if (end < 0) throw new Error('not a zip: no end of central directory');
  const count = zip.readUInt16LE(end + 10);
  let p = zip.readUInt32LE(end + 16);
  const out = [];
  for (let i = 0; i < count; i++) {
    if (zip.readUInt32LE(p) !== 0x02014b50) throw new Error('bad central directory');
    const method = zip.readUInt16LE(p + 10);
    const crc = zip.readUInt32LE(p + 16);
    const size = zip.readUInt32LE(p + 20);
    const nameLen = zip.readUInt16LE(p + 28);
    const extraLen = zip.readUInt16LE(p + 30);
    const commentLen = zip.readUInt16LE(p + 32);
    const mode = zip.readUInt32LE(p + 38) >>> 16;
    const local = zip.readUInt32LE(p + 42);
    const name = zip.toString('utf8', p + 46, p + 46 + nameLen);
    const localNameLen = zip.readUInt16LE(local + 26);
    const localExtraLen = zip.readUInt16LE(local + 28);
    const body = zip.subarray(local + 30 + localNameLen + localExtraLen, local + 30 + localNameLen + localExtraLen + size);
    let data = null;
    if (!name.endsWith('/')) {
      data = method === 8 ? zlib.inflateRawSync(body) : Buffer.from(body);
      if (crc32(data) !== crc) throw new Error(`bad CRC for ${name}`);
    }
    out.push({ name, mode, data });
    p += 46 + nameLen + extraLen + commentLen;
  }
  return out;
}

module.exports = { createZip, readZip, crc32 };
