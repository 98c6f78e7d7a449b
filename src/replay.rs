//! Replay: a visitor on the virtual results table of a market.
//!
//! [`MarketIndex`] compiles a market once into per-segment candidate lists of [`Quote`]s, so a
//! replay is a scan of one short list, an integer cost per candidate, and a partial sort.

use crate::domain::{Fuel, Meter, PaymentMethod, Region, Segment};
use crate::market::{Market, Tariff, TariffKind};
use crate::money::{Gbp, Millipence, div_round};
use crate::price::{DAYS_PER_YEAR, Quote, Usage};
use crate::visit::{Visit, VisitorFilters};
use chrono::NaiveDate;
use serde::Serialize;
use std::collections::HashMap;

const FIXED: u8 = 1;
const GREEN: u8 = 2;
const NO_EXIT_FEE: u8 = 4;
const SWITCHABLE: u8 = 8;

/// The filter flags a visitor set, as a bit mask every shown tariff must carry.
pub fn filter_mask(f: &VisitorFilters) -> u8 {
    (if f.fixed_only { FIXED } else { 0 })
        | (if f.green_only { GREEN } else { 0 })
        | (if f.no_exit_fees { NO_EXIT_FEE } else { 0 })
        | (if f.switchable_only { SWITCHABLE } else { 0 })
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    quote: Quote,
    tie: u32,
    tariff: u16,
    flags: u8,
}

/// A market compiled for replay: tariffs indexed, on-sale tariffs grouped by segment with their
/// quotes, ties broken by tariff id.
#[derive(Debug, Clone)]
pub struct MarketIndex {
    market: Market,
    segments: Vec<Vec<Candidate>>,
    by_id: HashMap<String, u16>,
    variable_by_supplier: HashMap<String, Vec<u16>>,
    tie: Vec<u32>,
}

/// A visit compiled against a market index: everything the hot loop needs, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledProfile {
    /// Dense segment index.
    pub segment: u16,
    /// Visitor's filter mask.
    pub mask: u8,
    /// Consumption to price.
    pub usage: Usage,
    /// Projected cost of staying on the current tariff for a year, milli-pence, when known.
    pub current_cost: Option<i64>,
}

/// One row of a results table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Shown {
    /// Tariff index in [`MarketIndex::market`]'s tariffs.
    pub tariff: u16,
    /// 1-based rank.
    pub rank: u16,
    /// Annual cost, milli-pence.
    pub annual_cost: i64,
}

impl MarketIndex {
    /// Compiles a (validated) market.
    pub fn new(market: Market) -> MarketIndex {
        let n = market.tariffs.len();
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| market.tariffs[a].id.cmp(&market.tariffs[b].id));
        let mut tie = vec![0u32; n];
        for (rank, &i) in order.iter().enumerate() {
            tie[i] = rank as u32;
        }
        let by_id = market
            .tariffs
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i as u16))
            .collect();
        let mut variable_by_supplier: HashMap<String, Vec<u16>> = HashMap::new();
        for &i in &order {
            let t = &market.tariffs[i];
            if t.kind == TariffKind::Variable && !t.hypothetical {
                variable_by_supplier
                    .entry(t.supplier.clone())
                    .or_default()
                    .push(i as u16);
            }
        }
        let mut segments = vec![Vec::new(); Segment::COUNT];
        for (i, t) in market.tariffs.iter().enumerate().filter(|(_, t)| t.on_sale) {
            for card in &t.rates {
                for &fuel in t.fuels.iter() {
                    let discount = if fuel == Fuel::DualFuel {
                        t.dual_fuel_discount_gbp
                    } else {
                        Millipence::ZERO
                    };
                    let meters: &[Meter] = if fuel.has_electricity() {
                        Meter::ALL
                    } else {
                        &[Meter::SingleRate]
                    };
                    for &meter in meters {
                        let Some(quote) = Quote::new(card, fuel, meter, discount) else {
                            continue;
                        };
                        let flags = (if t.kind == TariffKind::Fixed {
                            FIXED
                        } else {
                            0
                        }) | (if t.green { GREEN } else { 0 })
                            | (if t.has_exit_fee(fuel) { 0 } else { NO_EXIT_FEE })
                            | (if t.switchable { SWITCHABLE } else { 0 });
                        let seg = Segment {
                            region: card.region,
                            payment_method: card.payment_method,
                            fuel,
                            meter,
                        };
                        segments[seg.index()].push(Candidate {
                            quote,
                            tie: tie[i],
                            tariff: i as u16,
                            flags,
                        });
                    }
                }
            }
        }
        for s in &mut segments {
            s.sort_by_key(|c| c.tie);
            s.dedup_by_key(|c| c.tariff);
        }
        MarketIndex {
            market,
            segments,
            by_id,
            variable_by_supplier,
            tie,
        }
    }

    /// The compiled market.
    pub fn market(&self) -> &Market {
        &self.market
    }

    /// Tariff by index.
    pub fn tariff(&self, i: u16) -> &Tariff {
        &self.market.tariffs[i as usize]
    }

    /// Index of the tariff with this id.
    pub fn tariff_index(&self, id: &str) -> Option<u16> {
        self.by_id.get(id).copied()
    }

    /// Position of each tariff when sorted by id (the tie-break), by tariff index.
    pub fn id_order(&self) -> &[u32] {
        &self.tie
    }

    fn quote_of(
        &self,
        t: u16,
        region: Region,
        pm: PaymentMethod,
        fuel: Fuel,
        meter: Meter,
    ) -> Option<Quote> {
        let tariff = self.tariff(t);
        if !tariff.fuels.contains(&fuel) {
            return None;
        }
        let discount = if fuel == Fuel::DualFuel {
            tariff.dual_fuel_discount_gbp
        } else {
            Millipence::ZERO
        };
        Quote::new(tariff.card(region, pm)?, fuel, meter, discount)
    }

    fn supplier_variable(&self, supplier: &str, v: &Visit, meter: Meter) -> Option<(u16, Quote)> {
        self.variable_by_supplier
            .get(supplier)?
            .iter()
            .find_map(|&t| {
                self.quote_of(t, v.region, v.payment_method, v.fuel, meter)
                    .map(|q| (t, q))
            })
    }

    /// The projected cost of staying put for a year from the market date: the visitor's current
    /// tariff, where a fix that ends within the year rolls onto its supplier's variable tariff for
    /// the rest of it. Falls back to the current supplier's variable tariff when the tariff is not
    /// known; `None` when neither is in the market for the visitor's region and payment method.
    pub fn current_cost(&self, v: &Visit) -> Option<i64> {
        let usage = v.usage();
        let meter = v.pricing_meter();
        let current = v
            .current_tariff
            .as_deref()
            .and_then(|id| self.tariff_index(id))
            .and_then(|t| {
                self.quote_of(t, v.region, v.payment_method, v.fuel, meter)
                    .map(|q| (t, q))
            });
        let Some((t, quote)) = current else {
            let supplier = v.current_supplier.as_deref()?;
            return self
                .supplier_variable(supplier, v, meter)
                .map(|(_, q)| q.cost(&usage));
        };
        let tariff = self.tariff(t);
        let cost = quote.cost(&usage);
        match (tariff.kind, tariff.end_date) {
            (TariffKind::Fixed, Some(end)) => {
                let days = days_left(self.market.as_of, end);
                if days >= DAYS_PER_YEAR {
                    return Some(cost);
                }
                match self.supplier_variable(&tariff.supplier, v, meter) {
                    Some((_, svt)) => {
                        let rolled = svt.cost(&usage);
                        Some(div_round(
                            cost * days + rolled * (DAYS_PER_YEAR - days),
                            DAYS_PER_YEAR,
                        ))
                    }
                    None => Some(cost),
                }
            }
            _ => Some(cost),
        }
    }

    /// Compiles a visit for replay.
    pub fn compile(&self, v: &Visit) -> CompiledProfile {
        let seg = Segment {
            region: v.region,
            payment_method: v.payment_method,
            fuel: v.fuel,
            meter: v.pricing_meter(),
        };
        CompiledProfile {
            segment: seg.index() as u16,
            mask: filter_mask(&v.filters),
            usage: v.usage(),
            current_cost: self.current_cost(v),
        }
    }

    /// Replays one profile: fills `scratch` with every eligible tariff as `(annual cost, tie)`,
    /// calls `eligible` for each, and leaves the first `page_size` sorted at the front. Returns how
    /// many are shown.
    #[inline]
    pub fn replay(
        &self,
        p: &CompiledProfile,
        page_size: usize,
        scratch: &mut Vec<(i64, u32, u16)>,
        mut eligible: impl FnMut(u16),
    ) -> usize {
        scratch.clear();
        for c in &self.segments[p.segment as usize] {
            if c.flags & p.mask == p.mask {
                scratch.push((c.quote.cost(&p.usage), c.tie, c.tariff));
                eligible(c.tariff);
            }
        }
        let shown = page_size.min(scratch.len());
        if shown == 0 {
            return 0;
        }
        if scratch.len() > shown {
            scratch.select_nth_unstable(shown - 1);
        }
        scratch[..shown].sort_unstable();
        shown
    }

    /// The whole results table for one visit (every eligible tariff, ranked), for the `price` call.
    pub fn results(&self, v: &Visit) -> ResultsTable {
        let p = self.compile(v);
        let mut scratch = Vec::new();
        let n = self.replay(&p, usize::MAX, &mut scratch, |_| {});
        let rows = scratch[..n]
            .iter()
            .enumerate()
            .map(|(i, &(cost, _, t))| {
                let tariff = self.tariff(t);
                let cost = Millipence(cost).round_to_pence();
                let current = p.current_cost.map(|c| Millipence(c).round_to_pence());
                ResultRow {
                    rank: i as u32 + 1,
                    tariff_id: tariff.id.clone(),
                    supplier: tariff.supplier.clone(),
                    name: tariff.name.clone(),
                    kind: tariff.kind,
                    green: tariff.green,
                    switchable: tariff.switchable,
                    hypothetical: tariff.hypothetical,
                    annual_cost_gbp: Gbp(cost).as_f64(),
                    saving_gbp: current.map(|c| Gbp(c - cost).as_f64()),
                }
            })
            .collect();
        ResultsTable {
            visit_id: v.visit_id.clone(),
            current_cost_gbp: p.current_cost.map(|c| Millipence(c).gbp().as_f64()),
            rows,
        }
    }
}

fn days_left(as_of: NaiveDate, end: NaiveDate) -> i64 {
    (end - as_of).num_days().clamp(0, DAYS_PER_YEAR)
}

/// A ranked results table for one visitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultsTable {
    /// The visit priced.
    pub visit_id: String,
    /// Projected cost of staying put, GBP, when known.
    pub current_cost_gbp: Option<f64>,
    /// Every eligible tariff, cheapest first.
    pub rows: Vec<ResultRow>,
}

/// One row of a results table.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultRow {
    /// 1-based rank.
    pub rank: u32,
    /// Tariff id.
    pub tariff_id: String,
    /// Supplier.
    pub supplier: String,
    /// Tariff name.
    pub name: String,
    /// Fixed or variable.
    pub kind: TariffKind,
    /// Green flag.
    pub green: bool,
    /// Site can switch the visitor.
    pub switchable: bool,
    /// Added by a scenario.
    pub hypothetical: bool,
    /// Annual cost, GBP.
    pub annual_cost_gbp: f64,
    /// Saving against staying put, GBP (negative when dearer), when the current cost is known.
    pub saving_gbp: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::visit::parse_visits_csv;

    fn index() -> MarketIndex {
        MarketIndex::new(
            Market::from_json(include_str!("../tests/fixtures/mini_market.json")).unwrap(),
        )
    }

    fn visit(row: &str) -> Visit {
        let csv = format!(
            "visit_id,timestamp,region,fuel,meter,payment_method,elec_kwh,gas_kwh,e7_night_share,current_supplier,current_tariff,fixed_only,green_only,no_exit_fees,switchable_only\n{row}\n"
        );
        parse_visits_csv(csv.as_bytes()).unwrap().remove(0)
    }

    fn cost(ix: &MarketIndex, id: &str, v: &Visit) -> i64 {
        let t = ix.tariff(ix.tariff_index(id).unwrap());
        t.annual_cost(
            v.region,
            v.payment_method,
            v.fuel,
            v.pricing_meter(),
            &v.usage(),
        )
        .unwrap()
        .0
    }

    #[test]
    fn a_fix_ending_within_the_year_rolls_onto_the_supplier_variable() {
        let ix = index();
        // beta-fix-old ends 2026-10-01: 92 days on the fix, 273 on beta-svt.
        let v = visit(
            "v,2026-07-01,A,dual_fuel,single_rate,direct_debit,2700,11500,,Beta Power,beta-fix-old,,,,",
        );
        let (fix, svt) = (cost(&ix, "beta-fix-old", &v), cost(&ix, "beta-svt", &v));
        assert!(fix < svt);
        assert_eq!(
            ix.current_cost(&v),
            Some(div_round(fix * 92 + svt * 273, 365))
        );
        // A fix running past the year is priced as it is.
        let v = visit(
            "v,2026-07-01,A,dual_fuel,single_rate,direct_debit,2700,11500,,Alpha Energy,alpha-fix12,,,,",
        );
        assert_eq!(ix.current_cost(&v), Some(cost(&ix, "alpha-fix12", &v)));
        // Unknown tariff: the supplier's variable tariff; unknown supplier: no current cost.
        let v =
            visit("v,2026-07-01,A,dual_fuel,single_rate,direct_debit,2700,11500,,Beta Power,,,,,");
        assert_eq!(ix.current_cost(&v), Some(cost(&ix, "beta-svt", &v)));
        let v = visit("v,2026-07-01,A,dual_fuel,single_rate,direct_debit,2700,11500,,Nobody,,,,,");
        assert_eq!(ix.current_cost(&v), None);
    }

    #[test]
    fn filters_restrict_the_table() {
        let ix = index();
        let ids = |row: &str| -> Vec<String> {
            ix.results(&visit(row))
                .rows
                .into_iter()
                .map(|r| r.tariff_id)
                .collect()
        };
        let all = ids("v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,,,,");
        assert_eq!(all, ["alpha-fix12", "gamma-green", "alpha-svt", "beta-svt"]);
        assert_eq!(
            ids("v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,true,,,"),
            ["alpha-fix12", "gamma-green"]
        );
        assert_eq!(
            ids("v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,true,,true,"),
            ["gamma-green"]
        );
        assert_eq!(
            ids("v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,,,,true"),
            ["alpha-fix12", "gamma-green", "alpha-svt"]
        );
        // Gas-only: gamma-green sells no gas; prepayment: only the variables have cards.
        assert_eq!(
            ids("v,2026-07-01,C,gas,,direct_debit,,9000,,,,,,,"),
            ["alpha-fix12", "alpha-svt", "beta-svt"]
        );
        assert_eq!(
            ids("v,2026-07-01,C,gas,,prepayment,,9000,,,,,,,"),
            ["alpha-svt", "beta-svt"]
        );
    }

    #[test]
    fn replay_keeps_the_cheapest_page_in_order_with_ties_by_id() {
        let ix = index();
        let p = ix.compile(&visit(
            "v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,,,,",
        ));
        let mut scratch = Vec::new();
        let mut seen = Vec::new();
        let shown = ix.replay(&p, 3, &mut scratch, |t| seen.push(t));
        assert_eq!(shown, 3);
        assert_eq!(seen.len(), 4, "every eligible tariff is counted");
        let page: Vec<&str> = scratch[..3]
            .iter()
            .map(|&(_, _, t)| ix.tariff(t).id.as_str())
            .collect();
        assert_eq!(page, ["alpha-fix12", "gamma-green", "alpha-svt"]);
        assert_eq!(
            scratch[2].0, scratch[3].0,
            "alpha-svt and beta-svt cost the same; the id breaks the tie"
        );
    }
}
