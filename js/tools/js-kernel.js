'use strict';
// The benchmark's baseline: the `price` kernel (pricing and ranking) written in plain JavaScript, as
// a team without WebAssembly would write it. It follows the core's rules (integer milli-pence,
// Economy 7 split, dual-fuel discount, typical consumption in force at the market's date, ties in a
// seeded pseudo-random order per (seed, profile, tariff), the visitor's own tariff left off the
// table unless shown, a fix rolling onto its supplier's variable tariff from the visit's date, its
// exit fee waived in its last 49 days) so that it does the same work and gives the same answers;
// js/test/js-kernel.test.js checks that it does. The tie keys are 64-bit integer arithmetic, done
// with BigInt (and only for pairs of equal cost, as the core does). It is not part of the Lambda
// bundle.

const fs = require('node:fs');
const path = require('node:path');

const DAYS = 365;
const BP = 10000;
const DEFAULT_NIGHT_BP = 4200;
const FIXED = 1;
const GREEN = 2;
const NO_EXIT_FEE = 4;
const SWITCHABLE = 8;
const DAY_MS = 86400000;
const ymd = (s) => Date.parse(`${s}T00:00:00Z`);
const EXIT_FEE_FREE_DAYS = 49;
const M64 = (1n << 64n) - 1n;

/** SplitMix64's finaliser (replay.rs mix64). */
function mix64(z) {
  z = ((z ^ (z >> 30n)) * 0xbf58476d1ce4e5b9n) & M64;
  z = ((z ^ (z >> 27n)) * 0x94d049bb133111ebn) & M64;
  return z ^ (z >> 31n);
}
/** A profile's tie key (replay.rs tie_key). */
const tieKey = (seed, profile) => mix64(mix64(BigInt(seed) ^ 0x5851f42d4c957f2dn) ^ ((BigInt(profile) * 0x9e3779b97f4a7c15n) & M64));
/** A tariff's key: FNV-1a of its id's UTF-8 bytes, mixed (replay.rs tariff_key). */
function tariffKey(id) {
  let h = 0xcbf29ce484222325n;
  for (const b of Buffer.from(id, 'utf8')) h = ((h ^ BigInt(b)) * 0x100000001b3n) & M64;
  return mix64(h);
}
const tieOf = (profileKey, key) => mix64(profileKey ^ key);

/** Typical consumption by date (data/domain/tdcv.csv, the core's table), newest first. */
const TDCV = (() => {
  const [header, ...lines] = fs.readFileSync(path.join(__dirname, '..', '..', 'data', 'domain', 'tdcv.csv'), 'utf8').trimEnd().split('\n');
  const cols = header.split(',');
  return lines.map((l) => {
    const r = Object.fromEntries(l.split(',').map((x, i) => [cols[i], x]));
    return { from: ymd(r.in_force_from), fromText: r.in_force_from, elec: Number(r.elec_medium), e7: Number(r.e7_medium), gas: Number(r.gas_medium) };
  }).sort((a, b) => b.from - a.from);
})();
const typicalAt = (date) => TDCV.find((v) => v.from <= date) || TDCV[TDCV.length - 1];

const mp = (pence) => Math.round(pence * 1000);
const mpPounds = (gbp) => Math.round(gbp * 100 * 1000);
const divRound = (n, d) => (n >= 0 ? Math.floor((n + Math.floor(d / 2)) / d) : -Math.floor((-n + Math.floor(d / 2)) / d));
const hasElec = (fuel) => fuel === 'electricity' || fuel === 'dual_fuel';
const hasGas = (fuel) => fuel === 'gas' || fuel === 'dual_fuel';

function compileCard(card) {
  const e = card.electricity;
  const g = card.gas;
  return {
    elec: e ? { standing: mp(e.standing_p_per_day), unit: mp(e.unit_p_per_kwh) } : null,
    e7: e && e.economy7 ? { standing: mp(e.economy7.standing_p_per_day), day: mp(e.economy7.day_p_per_kwh), night: mp(e.economy7.night_p_per_kwh) } : null,
    gas: g ? { standing: mp(g.standing_p_per_day), unit: mp(g.unit_p_per_kwh) } : null,
  };
}

function compileTariff(t, hypothetical) {
  const cards = new Map();
  for (const c of t.rates) cards.set(`${c.region}|${c.payment_method}`, compileCard(c));
  const exit = t.exit_fees_gbp || {};
  return {
    id: t.id,
    supplier: t.supplier,
    name: t.name,
    kind: t.kind,
    green: Boolean(t.green),
    switchable: t.switchable !== false,
    onSale: hypothetical || t.on_sale !== false,
    hypothetical: hypothetical || Boolean(t.hypothetical),
    fuels: new Set(t.fuels),
    discount: mpPounds(t.dual_fuel_discount_gbp || 0),
    exitElec: mpPounds(exit.electricity || 0),
    exitGas: mpPounds(exit.gas || 0),
    endDate: t.end_date ? ymd(t.end_date) : null,
    key: tariffKey(t.id),
    cards,
  };
}

/** A market (parsed JSON) ready to price, with hypothetical tariffs added. */
function compileMarket(market, hypotheticalTariffs = []) {
  const tariffs = market.tariffs.map((t) => compileTariff(t, false)).concat(hypotheticalTariffs.map((t) => compileTariff(t, true)));
  tariffs.forEach((t, i) => { t.index = i; });
  const byId = new Map(tariffs.map((t) => [t.id, t]));
  const sorted = [...tariffs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  const variableBySupplier = new Map();
  for (const t of sorted) {
    if (t.kind === 'variable' && !t.hypothetical) {
      if (!variableBySupplier.has(t.supplier)) variableBySupplier.set(t.supplier, []);
      variableBySupplier.get(t.supplier).push(t);
    }
  }
  return { asOf: ymd(market.as_of), typical: typicalAt(ymd(market.as_of)), tariffs, onSale: tariffs.filter((t) => t.onSale), hypothetical: tariffs.filter((t) => t.hypothetical && t.onSale), byId, variableBySupplier };
}

function quote(t, region, pm, fuel, meter) {
  if (!t.fuels.has(fuel)) return null;
  const card = t.cards.get(`${region}|${pm}`);
  if (!card) return null;
  const q = { fixed: fuel === 'dual_fuel' ? -t.discount : 0, day: 0, night: 0, gas: 0 };
  if (hasElec(fuel)) {
    if (meter === 'single_rate') {
      if (!card.elec) return null;
      q.fixed += DAYS * card.elec.standing;
      q.day = card.elec.unit;
      q.night = card.elec.unit;
    } else {
      if (!card.e7) return null;
      q.fixed += DAYS * card.e7.standing;
      q.day = card.e7.day;
      q.night = card.e7.night;
    }
  }
  if (hasGas(fuel)) {
    if (!card.gas) return null;
    q.fixed += DAYS * card.gas.standing;
    q.gas = card.gas.unit;
  }
  return q;
}

// Never below zero, as the core's Quote::cost: a discount at most cancels the bill.
const cost = (q, u) => Math.max(0, q.fixed + divRound(u.elec * ((BP - u.night) * q.day + u.night * q.night), BP) + u.gas * q.gas);

/** A visit's date from its timestamp (RFC 3339 or a date), as milliseconds at midnight UTC. */
function visitDate(timestamp, asOf) {
  if (timestamp === undefined) return asOf;
  const t = Date.parse(/^\d{4}-\d{2}-\d{2}$/.test(timestamp.trim()) ? `${timestamp.trim()}T00:00:00Z` : timestamp);
  return t - (((t % DAY_MS) + DAY_MS) % DAY_MS);
}

/**
 * A profile (as in the request) ready to price on market `m`: `n` is its position in the request,
 * `seed` the tie seed; `m.typical` gives the default consumption.
 */
function profileOf(p, n, m = { typical: TDCV[0], asOf: TDCV[0].from }, seed = 0) {
  const fuel = p.fuel || 'dual_fuel';
  const meter = p.meter || 'single_rate';
  const e7 = meter === 'economy7';
  const typical = m.typical;
  const elecKwh = p.elec_kwh === undefined ? (hasElec(fuel) ? (e7 ? typical.e7 : typical.elec) : 0) : Math.round(p.elec_kwh);
  const gasKwh = p.gas_kwh === undefined ? (hasGas(fuel) ? typical.gas : 0) : Math.round(p.gas_kwh);
  const f = p.filters || {};
  const text = (s) => (s === undefined || s === null || s.trim() === '' ? null : s.trim());
  const visitId = text(p.visit_id) || `profile-${n + 1}`;
  return {
    visitId,
    date: visitDate(p.timestamp, m.asOf),
    // The ties' order (replay.rs visit_tie_key), and the draw among a supplier's equally cheap
    // variable tariffs, a stream of its own (replay.rs visit_key).
    tieKey: tieKey(seed, tariffKey(visitId)),
    visitKey: mix64(tieKey(seed, tariffKey(visitId)) ^ 0x2545f4914f6cdd1dn),
    region: p.region,
    fuel,
    meter: hasElec(fuel) ? meter : 'single_rate',
    pm: p.payment_method || 'direct_debit',
    usage: {
      elec: hasElec(fuel) ? elecKwh : 0,
      gas: hasGas(fuel) ? gasKwh : 0,
      night: e7 && hasElec(fuel) ? (p.e7_night_share === undefined ? DEFAULT_NIGHT_BP : Math.round(p.e7_night_share * BP)) : 0,
    },
    mask: (f.fixed_only ? FIXED : 0) | (f.green_only ? GREEN : 0) | (f.no_exit_fees ? NO_EXIT_FEE : 0) | (f.switchable_only ? SWITCHABLE : 0),
    currentSupplier: text(p.current_supplier),
    currentTariff: text(p.current_tariff),
  };
}

/** The supplier's variable tariff for the visitor: the cheapest for them, ties by a draw from `key`. */
function supplierVariable(m, supplier, v, key) {
  let best = null;
  for (const t of m.variableBySupplier.get(supplier) || []) {
    const q = quote(t, v.region, v.pm, v.fuel, v.meter);
    if (!q) continue;
    const c = cost(q, v.usage);
    if (best === null || c < best.cost || (c === best.cost && tieOf(key, t.key) < tieOf(key, best.t.key))) best = { t, q, cost: c };
  }
  return best;
}

const exitFee = (t, fuel) => (hasElec(fuel) ? t.exitElec : 0) + (hasGas(fuel) ? t.exitGas : 0);

/** What staying put costs: `{cost, switchCost, t}` in milli-pence, or null when unknown. */
function currentCost(m, v) {
  const t = v.currentTariff ? m.byId.get(v.currentTariff) : undefined;
  const q = t ? quote(t, v.region, v.pm, v.fuel, v.meter) : null;
  if (!q) {
    if (!v.currentSupplier) return null;
    const s = supplierVariable(m, v.currentSupplier, v, v.visitKey);
    return s ? { cost: s.cost, switchCost: 0, t: s.t } : null;
  }
  const c = cost(q, v.usage);
  if (t.kind === 'fixed' && t.endDate !== null) {
    const days = Math.min(Math.max(Math.round((t.endDate - v.date) / DAY_MS), 0), DAYS);
    const switchCost = days > EXIT_FEE_FREE_DAYS ? exitFee(t, v.fuel) : 0;
    if (days >= DAYS) return { cost: c, switchCost, t };
    // Only the cost counts here: equally cheap tariffs cost the same.
    const s = supplierVariable(m, t.supplier, v, 0n);
    return { cost: s ? divRound(c * days + s.cost * (DAYS - days), DAYS) : c, switchCost, t };
  }
  return { cost: c, switchCost: t.kind === 'fixed' ? exitFee(t, v.fuel) : 0, t };
}

function flags(t, fuel) {
  const exit = (hasElec(fuel) && t.exitElec > 0) || (hasGas(fuel) && t.exitGas > 0);
  return (t.kind === 'fixed' ? FIXED : 0) | (t.green ? GREEN : 0) | (exit ? 0 : NO_EXIT_FEE) | (t.switchable ? SWITCHABLE : 0);
}

/**
 * Every eligible tariff for one profile, cheapest first, ties in the profile's seeded order:
 * [{t, cost}] in milli-pence. `hidden` is left off (the visitor's own tariff); `mask` adds the
 * page's switchable rule.
 */
function rank(m, v, hidden = null, mask = v.mask) {
  const list = [];
  for (const t of m.onSale) {
    if (t === hidden) continue;
    const q = quote(t, v.region, v.pm, v.fuel, v.meter);
    if (q && (flags(t, v.fuel) & mask) === mask) list.push({ t, cost: cost(q, v.usage) });
  }
  list.sort((a, b) => {
    if (a.cost !== b.cost) return a.cost - b.cost;
    const x = tieOf(v.tieKey, a.t.key);
    const y = tieOf(v.tieKey, b.t.key);
    return x < y ? -1 : x > y ? 1 : a.t.index - b.t.index;
  });
  return list;
}

/**
 * The `price` result for profiles (as in the request), in the shape the wasm binding returns:
 * `options` are the request's `seed`, `show_current_tariff` and `whole_of_market`.
 */
function price(m, profiles, pageSize, options = {}) {
  const { seed = 0, show_current_tariff: showCurrent = false, whole_of_market: wholeOfMarket = true } = options;
  return profiles.map((p, n) => {
    const v = profileOf(p, n, m, seed);
    const current = currentCost(m, v);
    const currentPence = current === null ? null : divRound(current.cost, 1000);
    const list = rank(m, v, current !== null && !showCurrent ? current.t : null, v.mask | (wholeOfMarket ? 0 : SWITCHABLE));
    const rows = list.map(({ t, cost: c }, i) => {
      const pence = divRound(c, 1000);
      return {
        rank: i + 1,
        tariff_id: t.id,
        supplier: t.supplier,
        name: t.name,
        kind: t.kind,
        green: t.green,
        switchable: t.switchable,
        hypothetical: t.hypothetical,
        exit_fee_gbp: divRound(exitFee(t, v.fuel), 1000) / 100,
        annual_cost_gbp: pence / 100,
        saving_gbp: currentPence === null ? null : (currentPence - pence) / 100,
      };
    });
    return {
      visit_id: v.visitId,
      current_cost_gbp: currentPence === null ? null : currentPence / 100,
      current_tariff_id: current === null ? null : current.t.id,
      switch_cost_gbp: current === null ? null : divRound(current.switchCost, 1000) / 100,
      eligible: rows.length,
      rows: rows.slice(0, pageSize),
      hypothetical: m.hypothetical.map((t) => {
        const row = rows.find((r) => r.tariff_id === t.id);
        return {
          tariff_id: t.id,
          eligible: Boolean(row),
          rank: row ? row.rank : null,
          on_page: Boolean(row) && row.rank <= pageSize,
          annual_cost_gbp: row ? row.annual_cost_gbp : null,
          saving_gbp: row ? row.saving_gbp : null,
        };
      }),
    };
  });
}

/** Replays compiled profiles (from profileOf) the way a chunk does, without output: ranks each and counts the first page. */
function replay(m, visits, pageSize) {
  let impressions = 0;
  for (const v of visits) {
    const current = currentCost(m, v);
    impressions += Math.min(rank(m, v, current === null ? null : current.t).length, pageSize);
  }
  return impressions;
}

module.exports = { compileMarket, price, profileOf, replay };
