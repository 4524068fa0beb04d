#!/usr/bin/env node
// Render DiceBear avatars to SVG files for scripts/pair_sources.py (called by scripts/fetch_data.py).
//
//   node scripts/dicebear_render.mjs PREFIX schema STYLE...   # print each style's color options (JSON)
//   node scripts/dicebear_render.mjs PREFIX render JOB.json   # write the SVGs a job file lists
//
// PREFIX is the folder given to `npm install --prefix` (it holds node_modules/@dicebear/...).
// A job is {"style", "seeds": [...], "out", "color_options", "line_options" (or null)}: for every
// seed it writes OUT/color/SEED.svg and, when line_options is given, OUT/line/SEED.svg, the same
// seed with those options (colors set to white or kept dark). DiceBear's PRNG draws once per option
// whatever the list of colors holds, so both files of a seed have the same shapes. Files that exist
// are kept, so a rerun is cheap.
import fs from 'node:fs';
import path from 'node:path';
import { pathToFileURL } from 'node:url';

async function load(prefix, name) {
  const dir = path.join(prefix, 'node_modules', '@dicebear', name);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  const entry = typeof pkg.exports === 'string' ? pkg.exports : pkg.main;
  return import(pathToFileURL(path.join(dir, entry)).href);
}

function writeIfMissing(file, text) {
  if (fs.existsSync(file)) return false;
  const tmp = `${file}.tmp`;
  fs.writeFileSync(tmp, text);
  fs.renameSync(tmp, file);
  return true;
}

async function main() {
  const [prefix, command, ...rest] = process.argv.slice(2);
  if (!prefix || !['schema', 'render'].includes(command)) {
    console.error('usage: dicebear_render.mjs PREFIX schema STYLE... | PREFIX render JOB.json');
    process.exit(2);
  }
  if (command === 'schema') {
    const out = {};
    for (const name of rest) {
      const style = await load(prefix, name);
      const props = style.schema.properties || {};
      out[name] = {};
      for (const [key, value] of Object.entries(props)) {
        if (key.endsWith('Color') && Array.isArray(value.default)) out[name][key] = value.default;
      }
    }
    process.stdout.write(JSON.stringify(out) + '\n');
    return;
  }
  const job = JSON.parse(fs.readFileSync(rest[0], 'utf8'));
  const { createAvatar } = await load(prefix, 'core');
  const style = await load(prefix, job.style);
  fs.mkdirSync(path.join(job.out, 'color'), { recursive: true });
  if (job.line_options) fs.mkdirSync(path.join(job.out, 'line'), { recursive: true });
  let written = 0;
  for (const seed of job.seeds) {
    const colorFile = path.join(job.out, 'color', `${seed}.svg`);
    if (!fs.existsSync(colorFile)) {
      written += writeIfMissing(colorFile, createAvatar(style, { seed, ...job.color_options }).toString());
    }
    if (job.line_options) {
      const lineFile = path.join(job.out, 'line', `${seed}.svg`);
      if (!fs.existsSync(lineFile)) {
        written += writeIfMissing(lineFile, createAvatar(style, { seed, ...job.line_options }).toString());
      }
    }
  }
  process.stdout.write(JSON.stringify({ style: job.style, seeds: job.seeds.length, written }) + '\n');
}

main().catch((err) => {
  console.error(err && err.stack ? err.stack : String(err));
  process.exit(1);
});
