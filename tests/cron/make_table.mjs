// Cron vectors from the real cron-parser copies that Node BullMQ uses (dockyard's reference for
// src/dockyard/cron.py).
//
//   node tests/cron/make_table.mjs table tests/cron/cron_table.json   write the committed table
//   node tests/cron/make_table.mjs eval < cases.json                  answer ad-hoc cases (tests)
//
// cron-parser is loaded from the dependency trees of the two BullMQ packages in
// tests/interop/node_modules (bullmq5 = BullMQ 5.62.0 -> cron-parser 4.9.0, bullmq6 = BullMQ 6.7.0
// -> cron-parser 5.10.3), so the versions are exactly the ones BullMQ resolves.
//
// A sequence is computed the way a BullMQ worker advances a scheduler: every next time comes from a
// fresh parse whose currentDate is the previous result (job-scheduler.ts defaultRepeatStrategy),
// with the scheduler's tz (and endDate when given). A next() that throws ends the sequence.
//
// eval input: {"cases": [{"pattern": str, "tz": str, "base": ms, "steps": n, "end": ms?}]}
// eval output: [{"v4": {"ok": bool, "error"?: str, "seq"?: [ms...]}, "v5": {...}}]

import { createRequire } from 'node:module';
import { readFileSync, writeFileSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const NODE_MODULES = join(here, '..', 'interop', 'node_modules');

function loadFrom(bullmqAlias) {
  const req = createRequire(join(NODE_MODULES, bullmqAlias, 'package.json'));
  const main = req.resolve('cron-parser');
  const pkgPath = join(main.slice(0, main.lastIndexOf('cron-parser') + 'cron-parser'.length), 'package.json');
  const version = JSON.parse(readFileSync(pkgPath, 'utf8')).version;
  return { mod: req('cron-parser'), version, luxon: req('luxon') };
}

const v4 = loadFrom('bullmq5');
const v5 = loadFrom('bullmq6');

function parse(lib, pattern, options) {
  if (typeof lib.mod.parseExpression === 'function') {
    return lib.mod.parseExpression(pattern, options); // 4.x API (BullMQ 5)
  }
  return lib.mod.CronExpressionParser.parse(pattern, options); // 5.x API (BullMQ 6)
}

// One BullMQ-style run: `steps` successive next() values, each from a fresh parse.
function run(lib, pattern, tz, base, steps, end) {
  try {
    parse(lib, pattern, { currentDate: new Date(base), tz });
  } catch (err) {
    return { ok: false, error: String(err && err.message ? err.message : err) };
  }
  const seq = [];
  let current = base;
  for (let i = 0; i < steps; i++) {
    const options = { currentDate: new Date(current), tz };
    if (end !== undefined && end !== null) options.endDate = new Date(end);
    let next;
    try {
      next = parse(lib, pattern, options).next().getTime();
    } catch {
      break;
    }
    seq.push(next);
    current = next;
  }
  return { ok: true, seq };
}

function evalCases(cases) {
  return cases.map((c) => ({
    v4: run(v4, c.pattern, c.tz, c.base, c.steps ?? 6, c.end),
    v5: run(v5, c.pattern, c.tz, c.base, c.steps ?? 6, c.end),
  }));
}

// ---------------------------------------------------------------------------------------------
// The committed table.

const STEPS = 6;

const ZONES = [
  'UTC',
  'Europe/Paris',
  'Europe/Rome',
  'America/New_York',
  'Australia/Lord_Howe', // 30-minute DST
  'Asia/Kolkata', // +05:30, no DST
  'Pacific/Chatham', // +12:45/+13:45, changes at 02:45/03:45 local
  'America/Santiago', // changes at local midnight
];

// Each pattern has a class that decides which bases and how many steps it gets (the real
// cron-parser 4.9 is slow: luxon resolves every step through Intl):
//   S fires several times a day: bases just around every offset change, 6 steps
//   D fires once a day or so: a base 26 h before every change (3 steps) and 10 min after (2)
//   R fires on some days: 26 h before every change (2 steps), general bases (3)
//   Y fires once a year or less: general bases, 2 steps
const PATTERNS = [
  ['* * * * *', 'S'],
  ['*/15 * * * *', 'S'],
  ['*/30 * * * *', 'S'],
  ['0 * * * *', 'S'],
  ['0 */1 * * *', 'S'],
  ['30 * * * *', 'S'],
  ['5/15 * * * *', 'S'],
  ['0 */2 * * *', 'S'],
  ['0,30 1-3 * * *', 'S'],
  ['30 1,2 * * *', 'S'],
  ['15 2,3 * * *', 'S'],
  ['*/20 2-3 * * *', 'S'],
  ['* 2 * * *', 'S'],
  ['0 0-11,12-23 * * *', 'S'],
  ['@hourly', 'S'],
  ['* * * * * *', 'S'],
  ['*/10 * * * * *', 'S'],
  ['30 */5 * * * *', 'S'],
  ['15,45 0 * * * *', 'S'],
  ['0 0 * * *', 'D'],
  ['30 0 * * *', 'D'],
  ['0 1 * * *', 'D'],
  ['30 1 * * *', 'D'],
  ['45 1 * * *', 'D'],
  ['0 2 * * *', 'D'],
  ['15 2 * * *', 'D'],
  ['30 2 * * *', 'D'],
  ['45 2 * * *', 'D'],
  ['50 2 * * *', 'D'],
  ['0 3 * * *', 'D'],
  ['50 3 * * *', 'D'],
  ['0 9 * * *', 'D'],
  ['59 23 * * *', 'D'],
  ['0 22 * * 1-5', 'D'],
  ['0 9 * * MON-FRI', 'D'],
  ['0 15 3 * * *', 'D'],
  ['0 0 2 * * *', 'D'],
  ['59 59 1 * * *', 'D'],
  ['0 30 2 * * *', 'D'],
  ['@daily', 'D'],
  ['0 0 * * 0', 'R'],
  ['0 0 * * 7', 'R'],
  ['0 0 * * 6,0', 'R'],
  ['0 0 ? * SUN', 'R'],
  ['0 0 1 * *', 'R'],
  ['0 0 L * *', 'R'],
  ['0 12 1,L * *', 'R'],
  ['0 0 31 * *', 'R'],
  ['0 0 */2 * *', 'R'],
  ['0 0 1-10/3 * *', 'R'],
  ['0 0 * JAN,JUL *', 'R'],
  ['0 0 13 * 5', 'R'],
  ['0 6 1-7 * MON', 'R'],
  ['0 0 1,15 * 3', 'R'],
  ['0 12 * * 5L', 'R'],
  ['0 12 * * 1L,FRIL', 'R'],
  ['0 12 * * 1#2', 'R'],
  ['0 12 * * FRI#5', 'R'],
  ['0 30 2 ? * 0#1', 'R'],
  ['@monthly', 'R'],
  ['@weekly', 'R'],
  ['0 0 29 2 *', 'Y'],
  ['0 0 1 1 *', 'Y'],
  ['@yearly', 'Y'],
  ['0 0 0 29 2 *', 'Y'],
];

function transitions(luxon, zone, fromIso, toIso) {
  const { DateTime } = luxon;
  const off = (ms) => DateTime.fromMillis(ms, { zone }).offset;
  const out = [];
  const start = Date.parse(fromIso);
  const stop = Date.parse(toIso);
  const hour = 3600 * 1000;
  for (let t = start; t < stop; t += hour) {
    if (off(t) !== off(t + hour)) {
      let lo = t;
      let hi = t + hour; // off(lo) != off(hi); find the first ms with the new offset, to the second
      while (hi - lo > 1000) {
        const mid = lo + Math.floor((hi - lo) / 2000) * 1000;
        if (off(mid) === off(lo)) lo = mid;
        else hi = mid;
      }
      out.push(hi);
    }
  }
  return out;
}

// The bases (epoch ms) a pattern of class `cls` gets in `zone`, with the number of steps.
function casesFor(zone, cls) {
  const { DateTime } = v4.luxon;
  const local = (obj) => DateTime.fromObject(obj, { zone }).toMillis();
  const general = [
    local({ year: 2025, month: 1, day: 31, hour: 23, minute: 59, second: 59, millisecond: 500 }),
    local({ year: 2025, month: 12, day: 31, hour: 23, minute: 30 }),
    local({ year: 2028, month: 2, day: 28, hour: 23 }),
  ];
  const changes = ZONE_CHANGES.get(zone);
  const out = [];
  const at = (deltas, steps) => {
    for (const t of changes) for (const d of deltas) out.push([t + d, steps]);
  };
  if (cls === 'S') {
    at([-25 * 60e3, 10 * 60e3], 6);
    general.forEach((g) => out.push([g, 6]));
  } else if (cls === 'S6') {
    at([-5e3, -25 * 60e3], 6);
    general.forEach((g) => out.push([g, 6]));
  } else if (cls === 'D') {
    at([-26 * 3600e3], 3);
    at([10 * 60e3], 2);
    general.forEach((g) => out.push([g, 3]));
  } else if (cls === 'R') {
    at([-26 * 3600e3], 2);
    general.forEach((g) => out.push([g, 3]));
  } else {
    general.forEach((g) => out.push([g, 2]));
  }
  return out;
}

const ZONE_CHANGES = new Map(
  ZONES.map((zone) => [zone, transitions(v4.luxon, zone, '2025-01-01T00:00:00Z', '2027-01-01T00:00:00Z')]),
);

// Patterns whose acceptance matters: dockyard must refuse whatever either version refuses.
const PARSE_PROBES = [
  '@annually', '@midnight', '@minutely', '@weekdays', '', '5', '0 9 * *', '* * * * * * *',
  'H * * * *', '0 0 * * MON#2', '0 0 * * 1#6', '0 0 * * 1#0', '0 0 * * 1,2#2', '0 0 * * L',
  '0 0 L/2 * *', '0 0 5L * *', '0 0 * * 8', '60 * * * *', '0 24 * * *', '0 0 0 * *', '0 0 32 * *',
  '0 0 * 13 *', '0 0 * 0 *', '0 0 * MON *', '0 0 * * JAN', '0 0 * 1JAN *', '*/0 * * * *', '5- * * * *',
  '0- * * * *', '*-5 * * * *', '1-2-3 * * * *', '5-1 * * * *', '? * * * *', '0 0 ? * ?',
  '0 0 * * *,?', '0 0 30 2 *', '0 0 30 2 1', '0 0 31 4,6 *', '0 0 1-31 * 1', '0 0 15 * 1-7',
  '0 0 * * 1-7/4', '0 0 * * 2-7/2', '0 0 1 * 5#3', '0 0 * * *#2', '0 0 * * 5L#2', '0 0 * * 12L',
  '0 0 * * MONL', '0 0 L,15 * *', '0 0 * * 0-7', '0 0 * * */1', '0 0 * * 0,7', '0 0-23,5 * * *', '0 0 1,1 * *', '٣ * * * *', '0\t0 * * *',
];

function buildTable(outPath) {
  const cases = []; // [pattern index, zone index, base, first ms, seconds between fires...]
  const differences = [];
  PATTERNS.forEach(([pattern, cls], pi) => {
    const began = Date.now();
    const kind = cls === 'S' && pattern.split(/\s+/).length === 6 ? 'S6' : cls;
    ZONES.forEach((zone, zi) => {
      for (const [base, steps] of casesFor(zone, kind)) {
        const a = run(v4, pattern, zone, base, steps);
        const b = run(v5, pattern, zone, base, steps);
        if (!a.ok || !b.ok) throw new Error(`table pattern refused: ${pattern} ${a.error || b.error}`);
        cases.push([pi, zi, base, ...encode(a.seq)]);
        if (JSON.stringify(a.seq) !== JSON.stringify(b.seq)) {
          differences.push({ pattern, tz: zone, base, v4: a.seq, v5: b.seq });
        }
      }
    });
    process.stderr.write(`${pattern} (${kind}): ${Date.now() - began} ms\n`);
  });
  const bounded = [];
  for (const [pattern, tz, base, end] of [
    ['0 9 * * *', 'Europe/Paris', Date.parse('2026-03-01T00:00:00Z'), Date.parse('2026-03-03T08:00:00Z')],
    ['0 9 * * *', 'Europe/Paris', Date.parse('2026-03-01T00:00:00Z'), Date.parse('2026-03-03T07:59:59.999Z')],
    ['*/10 * * * * *', 'UTC', Date.parse('2026-03-01T00:00:00Z'), Date.parse('2026-03-01T00:00:30Z')],
    ['0 0 29 2 *', 'UTC', Date.parse('2026-03-01T00:00:00Z'), Date.parse('2028-02-29T00:00:00Z')],
    ['0 0 29 2 *', 'UTC', Date.parse('2026-03-01T00:00:00Z'), Date.parse('2028-02-28T23:59:59Z')],
  ]) {
    bounded.push({ pattern, tz, base, end, v4: run(v4, pattern, tz, base, STEPS, end).seq, v5: run(v5, pattern, tz, base, STEPS, end).seq });
  }
  const parseProbes = PARSE_PROBES.map((pattern) => {
    const base = Date.parse('2025-01-01T00:00:00Z');
    const a = run(v4, pattern, 'UTC', base, 1);
    const b = run(v5, pattern, 'UTC', base, 1);
    return { pattern, v4: a.ok ? (a.seq.length ? 'ok' : 'no next') : a.error, v5: b.ok ? (b.seq.length ? 'ok' : 'no next') : b.error };
  });
  const table = {
    about: 'Generated by tests/cron/make_table.mjs. cases: [pattern index, zone index, base ms, first fire ms, seconds to each further fire]; every fire from a fresh parse at the previous one (as BullMQ does), with cron-parser 4.9.0. differences: where 5.10.3 gives another sequence.',
    cron_parser: { bullmq5: v4.version, bullmq6: v5.version },
    node: process.versions.node,
    icu_tz: process.versions.tz,
    patterns: PATTERNS.map(([p]) => p),
    zones: ZONES,
    changes: Object.fromEntries(ZONE_CHANGES),
    cases,
    differences,
    bounded,
    parse_probes: parseProbes,
  };
  writeFileSync(outPath, JSON.stringify(table) + '\n');
  process.stderr.write(`${cases.length} cases, ${differences.length} differences\n`);
}

function encode(seq) {
  if (seq.length === 0) return [];
  const out = [seq[0]];
  for (let i = 1; i < seq.length; i++) out.push((seq[i] - seq[i - 1]) / 1000);
  return out;
}

const mode = process.argv[2];
if (mode === 'table') {
  buildTable(process.argv[3] || join(here, 'cron_table.json'));
} else if (mode === 'eval') {
  const input = JSON.parse(readFileSync(0, 'utf8'));
  process.stdout.write(JSON.stringify(evalCases(input.cases)) + '\n');
} else {
  process.stderr.write('usage: make_table.mjs table [out.json] | eval < cases.json\n');
  process.exit(2);
}
