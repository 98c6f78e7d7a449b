'use strict';
// The benchmark's baseline: the `price` kernel (pricing and ranking) written in plain JavaScript, as
// a team without WebAssembly would write it. It follows the core's rules (integer milli-pence,
// Economy 7 split, dual-fuel discount, ties by tariff id, a fix rolling onto its supplier's variable
// tariff) so that it does the same work and gives the same answers; js/test/js-kernel.test.js checks
// that it does. It is not part of the Lambda bundle.

const DAYS = 365;
const BP = 10000;
const DEFAULT_NIGHT_BP = 4200;
const FIXED = 1;
const GREEN = 2;
const NO_EXIT_FEE = 4;
const SWITCHABLE = 8;
const DAY_MS = 86400000;

const mp = (pence) => Math.round(pence * 1000);
const mpPounds = (gbp) => Math.round(gbp * 100 * 1000);
const divRound = (n, d) => (n >= 0 ? Math.floor((n + Math.floor(d / 2)) / d) : -Math.floor((-n + Math.floor(d / 2)) / d));
const hasElec = (fuel) => fuel === 'electricity' || fuel === 'dual_fuel';
const hasGas = (fuel) => fuel === 'gas' || fuel === 'dual_fuel';
const ymd = (s) => Date.parse(`${s}T00:00:00Z`);

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
    cards,
  };
}

/** A market (parsed JSON) ready to price, with hypothetical tariffs added. */
function compileMarket(market, hypotheticalTariffs = []) {
  const tariffs = market.tariffs.map((t) => compileTariff(t, false)).concat(hypotheticalTariffs.map((t) => compileTariff(t, true)));
  const byId = new Map(tariffs.map((t) => [t.id, t]));
  const sorted = [...tariffs].sort((a, b) => (a.id < b.id ? -1 : a.id > b.id ? 1 : 0));
  sorted.forEach((t, i) => { t.tie = i; });
  const variableBySupplier = new Map();
  for (const t of sorted) {
    if (t.kind === 'variable' && !t.hypothetical) {
      if (!variableBySupplier.has(t.supplier)) variableBySupplier.set(t.supplier, []);
      variableBySupplier.get(t.supplier).push(t);
    }
  }
  return { asOf: ymd(market.as_of), tariffs, onSale: tariffs.filter((t) => t.onSale), hypothetical: tariffs.filter((t) => t.hypothetical && t.onSale), byId, variableBySupplier };
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

const cost = (q, u) => q.fixed + divRound(u.elec * ((BP - u.night) * q.day + u.night * q.night), BP) + u.gas * q.gas;

function profileOf(p, n) {
  const fuel = p.fuel || 'dual_fuel';
  const meter = p.meter || 'single_rate';
  const e7 = meter === 'economy7';
  const elecKwh = p.elec_kwh === undefined ? (hasElec(fuel) ? (e7 ? 3900 : 2700) : 0) : Math.round(p.elec_kwh);
  const gasKwh = p.gas_kwh === undefined ? (hasGas(fuel) ? 11500 : 0) : Math.round(p.gas_kwh);
  const f = p.filters || {};
  return {
    visitId: p.visit_id || `profile-${n + 1}`,
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
    currentSupplier: p.current_supplier || null,
    currentTariff: p.current_tariff || null,
  };
}

function supplierVariable(m, supplier, v) {
  for (const t of m.variableBySupplier.get(supplier) || []) {
    const q = quote(t, v.region, v.pm, v.fuel, v.meter);
    if (q) return q;
  }
  return null;
}

function currentCost(m, v) {
  const t = v.currentTariff ? m.byId.get(v.currentTariff) : undefined;
  const q = t ? quote(t, v.region, v.pm, v.fuel, v.meter) : null;
  if (!q) {
    if (!v.currentSupplier) return null;
    const s = supplierVariable(m, v.currentSupplier, v);
    return s ? cost(s, v.usage) : null;
  }
  const c = cost(q, v.usage);
  if (t.kind === 'fixed' && t.endDate !== null) {
    const days = Math.min(Math.max(Math.round((t.endDate - m.asOf) / DAY_MS), 0), DAYS);
    if (days >= DAYS) return c;
    const s = supplierVariable(m, t.supplier, v);
    return s ? divRound(c * days + cost(s, v.usage) * (DAYS - days), DAYS) : c;
  }
  return c;
}

function flags(t, fuel) {
  const exit = (hasElec(fuel) && t.exitElec > 0) || (hasGas(fuel) && t.exitGas > 0);
  return (t.kind === 'fixed' ? FIXED : 0) | (t.green ? GREEN : 0) | (exit ? 0 : NO_EXIT_FEE) | (t.switchable ? SWITCHABLE : 0);
}

/** Every eligible tariff for one profile, cheapest first (ties by id): [{t, cost}] in milli-pence. */
function rank(m, v) {
  const list = [];
  for (const t of m.onSale) {
    const q = quote(t, v.region, v.pm, v.fuel, v.meter);
    if (q && (flags(t, v.fuel) & v.mask) === v.mask) list.push({ t, cost: cost(q, v.usage) });
  }
  list.sort((a, b) => a.cost - b.cost || a.t.tie - b.t.tie);
  return list;
}

/** The `price` result for profiles (as in the request), in the shape the wasm binding returns. */
function price(m, profiles, pageSize) {
  return profiles.map((p, n) => {
    const v = profileOf(p, n);
    const current = currentCost(m, v);
    const currentPence = current === null ? null : divRound(current, 1000);
    const list = rank(m, v);
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
        annual_cost_gbp: pence / 100,
        saving_gbp: currentPence === null ? null : (currentPence - pence) / 100,
      };
    });
    return {
      visit_id: v.visitId,
      current_cost_gbp: currentPence === null ? null : currentPence / 100,
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
  for (const v of visits) impressions += Math.min(rank(m, v).length, pageSize);
  return impressions;
}

module.exports = { compileMarket, price, profileOf, replay };
