//! Results tables in numbers: the `price` answer of [`crate::table`] with tariffs as indices into
//! the compiled market and money in milli-pence, for a binding that keeps each market's text (ids,
//! names, suppliers) on its own side and builds the answer there without parsing JSON.
//!
//! [`price_compact`] ranks exactly as [`price_tables`](crate::table::price_tables) does, and
//! [`CompactTable::expand`] gives the very [`PricedTable`] it gives (tested on the sample market):
//! the amounts in pounds come from [`CompactTable::row_gbp`] and friends, never from the binding.

use crate::domain::Fuel;
use crate::money::{Gbp, Millipence};
use crate::replay::{CurrentCost, MarketIndex, ResultRow, Shown, visit_tie_key};
use crate::table::{HypotheticalRank, PriceOptions, PricedTable};
use crate::visit::Visit;

/// One visitor's results table in numbers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CompactTable {
    /// The visit priced (its id as the answer gives it).
    pub visit_id: String,
    /// The fuels bought (a row's exit fee depends on them).
    pub fuel: Fuel,
    /// What staying put costs, when known.
    pub current: Option<CurrentCost>,
    /// Tariffs eligible (ranked), of which the first `page_size` are in `rows`.
    pub eligible: usize,
    /// The first rows of the table, cheapest first.
    pub rows: Vec<Shown>,
    /// For each hypothetical tariff on sale ([`hypothetical_tariffs`]), its row in the whole table
    /// when eligible.
    pub hypothetical: Vec<Option<Shown>>,
}

/// Indices of the hypothetical tariffs on sale, in market order: the tariffs every table reports
/// the rank of.
pub fn hypothetical_tariffs(index: &MarketIndex) -> Vec<u16> {
    index
        .market()
        .tariffs
        .iter()
        .enumerate()
        .filter(|(_, t)| t.hypothetical && t.on_sale)
        .map(|(i, _)| i as u16)
        .collect()
}

/// Prices visits on a compiled market as [`price_tables`](crate::table::price_tables) does (a
/// visit orders its ties with [`visit_tie_key`]`(seed, visit_id)`), in numbers.
pub fn price_compact(
    index: &MarketIndex,
    visits: &[Visit],
    options: &PriceOptions,
) -> Vec<CompactTable> {
    let hypothetical = hypothetical_tariffs(index);
    let (mut page, mut ranks) = (Vec::new(), Vec::new());
    visits
        .iter()
        .map(|v| {
            let p = index.compile(v, options.rules, options.seed);
            let eligible = index.page_and_ranks(
                &p,
                visit_tie_key(options.seed, &v.visit_id),
                options.page_size,
                &mut page,
                &hypothetical,
                &mut ranks,
            );
            CompactTable {
                visit_id: v.visit_id.clone(),
                fuel: v.fuel,
                current: index.current(v, options.seed),
                eligible,
                rows: page
                    .iter()
                    .enumerate()
                    .map(|(i, &(cost, _, tariff))| Shown {
                        tariff,
                        rank: (i + 1) as u16,
                        annual_cost: cost,
                    })
                    .collect(),
                hypothetical: ranks.clone(),
            }
        })
        .collect()
}

/// Milli-pence as pounds, rounded to the penny.
fn gbp(millipence: i64) -> f64 {
    Millipence(millipence).gbp().as_f64()
}

impl CompactTable {
    /// The cost of staying put, GBP, when known.
    pub fn current_cost_gbp(&self) -> Option<f64> {
        self.current.map(|c| gbp(c.annual_cost))
    }

    /// The exit fee owed for leaving now, GBP, when the current cost is known.
    pub fn switch_cost_gbp(&self) -> Option<f64> {
        self.current.map(|c| gbp(c.switch_cost))
    }

    /// A row's annual cost and its saving against staying put (when known), GBP.
    pub fn row_gbp(&self, row: &Shown) -> (f64, Option<f64>) {
        let cost = Millipence(row.annual_cost).round_to_pence();
        let saving = self
            .current
            .map(|c| Gbp(Millipence(c.annual_cost).round_to_pence() - cost).as_f64());
        (Gbp(cost).as_f64(), saving)
    }

    /// The exit fee a tariff charges this visitor, GBP.
    pub fn exit_fee_gbp(&self, index: &MarketIndex, tariff: u16) -> f64 {
        index.tariff(tariff).exit_fee(self.fuel).gbp().as_f64()
    }

    /// The table as [`price_tables`](crate::table::price_tables) gives it, with the market's text.
    pub fn expand(&self, index: &MarketIndex, page_size: usize) -> PricedTable {
        let hypothetical = hypothetical_tariffs(index);
        PricedTable {
            visit_id: self.visit_id.clone(),
            current_cost_gbp: self.current_cost_gbp(),
            current_tariff_id: self.current.map(|c| index.tariff(c.tariff).id.clone()),
            switch_cost_gbp: self.switch_cost_gbp(),
            eligible: self.eligible,
            rows: self
                .rows
                .iter()
                .map(|r| {
                    let t = index.tariff(r.tariff);
                    let (annual_cost_gbp, saving_gbp) = self.row_gbp(r);
                    ResultRow {
                        rank: u32::from(r.rank),
                        tariff_id: t.id.clone(),
                        supplier: t.supplier.clone(),
                        name: t.name.clone(),
                        kind: t.kind,
                        green: t.green,
                        switchable: t.switchable,
                        hypothetical: t.hypothetical,
                        exit_fee_gbp: self.exit_fee_gbp(index, r.tariff),
                        annual_cost_gbp,
                        saving_gbp,
                    }
                })
                .collect(),
            hypothetical: hypothetical
                .iter()
                .zip(&self.hypothetical)
                .map(|(&t, row)| {
                    let money = row.as_ref().map(|r| self.row_gbp(r));
                    HypotheticalRank {
                        tariff_id: index.tariff(t).id.clone(),
                        eligible: row.is_some(),
                        rank: row.map(|r| u32::from(r.rank)),
                        on_page: row.is_some_and(|r| usize::from(r.rank) <= page_size),
                        annual_cost_gbp: money.map(|m| m.0),
                        saving_gbp: money.and_then(|m| m.1),
                    }
                })
                .collect(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::table::{ProfileInput, price_tables};
    use crate::{Market, PageRules, Scenario, parse_visits_csv};

    /// Every sample visit, on the sample market with the sample scenario's hypothetical tariffs,
    /// under each page rule and a few seeds and page sizes: the same tables as `price_tables`.
    #[test]
    fn expands_to_the_tables_price_tables_gives() {
        let market = Market::from_json(include_str!("../data/sample/market.json")).unwrap();
        let scenario = Scenario::from_json(include_str!("../data/sample/scenario.json")).unwrap();
        let mut visits = parse_visits_csv(include_bytes!("../data/sample/visits.csv")).unwrap();
        visits.truncate(2000);
        let as_of = market.as_of;
        visits.push(
            ProfileInput {
                region: "C".into(),
                current_tariff: Some("no-such-tariff".into()),
                ..ProfileInput::default()
            }
            .to_visit(visits.len(), as_of)
            .unwrap(),
        );
        for index in [
            MarketIndex::new(market.clone()),
            MarketIndex::new(market.apply(&scenario).unwrap()),
        ] {
            for (k, (page_size, seed)) in [(10, 0), (3, 7), (usize::MAX, 1 << 40)]
                .into_iter()
                .enumerate()
            {
                let options = PriceOptions {
                    page_size,
                    seed,
                    rules: PageRules {
                        show_current_tariff: k == 1,
                        whole_of_market: k != 2,
                    },
                };
                let want = price_tables(&index, &visits, &options).results;
                let got: Vec<PricedTable> = price_compact(&index, &visits, &options)
                    .iter()
                    .map(|t| t.expand(&index, page_size))
                    .collect();
                assert_eq!(got, want, "page size {page_size}, seed {seed}");
            }
        }
    }
}
