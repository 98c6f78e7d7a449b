//! Replay: a visitor on the virtual results table of a market.
//!
//! [`MarketIndex`] compiles a market into per-segment candidate lists of [`Quote`]s, each list
//! made on the first use of its segment, so a replay is a scan of one short list, an integer cost
//! per candidate, and a partial sort.
//!
//! ## Ties
//!
//! Tariffs of equal annual cost are ordered by a pseudo-random key drawn for each (run seed,
//! profile, tariff) ([`tie_key`]): never by id or by position in the market file, so identical
//! tariffs share impressions equally in expectation, and the same seed still gives the same bytes
//! anywhere (the key is integer arithmetic on the seed, the profile number and the tariff id).

use crate::domain::{Fuel, Meter, PaymentMethod, Region, Segment};
use crate::market::{Market, Tariff, TariffKind};
use crate::money::{Gbp, Millipence, div_round};
use crate::price::{DAYS_PER_YEAR, Quote, Usage};
use crate::visit::{Visit, VisitorFilters};
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashMap;
use std::sync::OnceLock;

const FIXED: u8 = 1;
const GREEN: u8 = 2;
const NO_EXIT_FEE: u8 = 4;
const SWITCHABLE: u8 = 8;

/// Ofgem's rule: no exit fee may be charged in the last 49 days of a fixed-term contract.
pub const EXIT_FEE_FREE_DAYS: i64 = 49;

/// No tariff (a profile whose current tariff is not excluded from its table).
const NO_TARIFF: u16 = u16::MAX;

/// The filter flags a visitor set, as a bit mask every shown tariff must carry.
pub fn filter_mask(f: &VisitorFilters) -> u8 {
    (if f.fixed_only { FIXED } else { 0 })
        | (if f.green_only { GREEN } else { 0 })
        | (if f.no_exit_fees { NO_EXIT_FEE } else { 0 })
        | (if f.switchable_only { SWITCHABLE } else { 0 })
}

/// The results page's own rules (the run spec's `show_current_tariff` and `whole_of_market`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct PageRules {
    /// Whether the visitor's own current tariff appears among the ranked rows. Default `false`:
    /// it is the baseline the saving is measured against, shown apart.
    pub show_current_tariff: bool,
    /// Whether tariffs the site cannot switch the visitor to are listed (whole of market) or only
    /// switchable ones. Default `true`.
    pub whole_of_market: bool,
}

impl Default for PageRules {
    fn default() -> Self {
        PageRules {
            show_current_tariff: false,
            whole_of_market: true,
        }
    }
}

/// SplitMix64's finaliser: a bijective mix of 64 bits, the same on every platform.
#[inline]
fn mix64(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
    z ^ (z >> 31)
}

/// The tie-break key of one profile of a run: every tariff's key for this profile is drawn from it.
pub fn tie_key(seed: u64, profile: u64) -> u64 {
    mix64(mix64(seed ^ 0x5851_f42d_4c95_7f2d) ^ profile.wrapping_mul(0x9e37_79b9_7f4a_7c15))
}

/// A tariff's own key: a hash of its id (FNV-1a, mixed), so the tie order depends on the tariff
/// only through a pseudo-random number, never on where its id sorts.
fn tariff_key(id: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in id.bytes() {
        h = (h ^ u64::from(b)).wrapping_mul(0x0000_0100_0000_01b3);
    }
    mix64(h)
}

/// The tie-break key of one profile of a `price` call: drawn from the seed and the visit's id
/// (`profile-N` when the request gives none), so that a visitor's table does not depend on how
/// requests are batched, and `tariffsim price` gives any of them.
pub fn visit_tie_key(seed: u64, visit_id: &str) -> u64 {
    tie_key(seed, tariff_key(visit_id))
}

/// The key of a visit's own draw among its supplier's equally cheap variable tariffs, when it names
/// the supplier but not the tariff: from the seed and the visit's id, so that it does not depend on
/// where the visit sits in a file or a request, nor on where a tariff's id sorts; a stream of its
/// own, apart from the ranking's ties.
fn visit_key(seed: u64, visit_id: &str) -> u64 {
    mix64(visit_tie_key(seed, visit_id) ^ 0x2545_f491_4f6c_dd1d)
}

/// The rank order of a tariff among equal costs for one profile.
#[inline]
fn tie_of(profile_key: u64, tariff_key: u64) -> u64 {
    mix64(profile_key ^ tariff_key)
}

/// What differs between a base market and its scenario market ([`MarketIndex::delta`]).
#[derive(Debug, Clone, Default)]
pub struct MarketDelta {
    /// Per segment, the base market's candidates the scenario market does not price alike.
    base_only: Vec<Vec<Candidate>>,
    /// Per segment, the tariffs the scenario market prices differently or alone.
    scenario_only: Vec<Vec<u16>>,
}

/// Whether row `a` (cost, tariff key, tariff) ranks above row `b` for the profile keyed
/// `profile_key`: cheaper first, ties in a pseudo-random order of (profile, tariff). A strict total
/// order on rows of distinct tariffs.
#[inline]
fn ranks_before(profile_key: u64, a: &(i64, u64, u16), b: &(i64, u64, u16)) -> bool {
    a.0 < b.0 || (a.0 == b.0 && (tie_of(profile_key, a.1), a.2) < (tie_of(profile_key, b.1), b.2))
}

/// Inserts `item` into the sorted run `scratch` of at most `page_size` rows (the dearest falls
/// off a full page). Equal costs are ordered by the profile's draw for each tariff, computed only
/// for the pairs that tie (the tariff key alone never decides: it is mixed with the profile's).
fn insert_ranked(
    scratch: &mut Vec<(i64, u64, u16)>,
    item: (i64, u64, u16),
    page_size: usize,
    profile_key: u64,
) {
    let before = |a: &(i64, u64, u16), b: &(i64, u64, u16)| ranks_before(profile_key, a, b);
    let mut at = scratch.len();
    if at == page_size {
        if !before(&item, &scratch[at - 1]) {
            return;
        }
        at -= 1;
    } else {
        scratch.push(item);
    }
    while at > 0 && before(&item, &scratch[at - 1]) {
        scratch[at] = scratch[at - 1];
        at -= 1;
    }
    scratch[at] = item;
}

#[derive(Debug, Clone, Copy)]
struct Candidate {
    quote: Quote,
    key: u64,
    tariff: u16,
    flags: u8,
}

/// A market compiled for replay: tariffs indexed, on-sale tariffs grouped by segment with their
/// quotes.
#[derive(Debug, Clone)]
pub struct MarketIndex {
    market: Market,
    /// Per [`Segment::index`], the candidates ([`MarketIndex::segment`]), built on first use.
    segments: Box<[OnceLock<Vec<Candidate>>]>,
    by_id: HashMap<String, u16>,
    variable_by_supplier: HashMap<String, Vec<u16>>,
    /// Each tariff's place in id order ([`MarketIndex::id_order`]), worked out on first use.
    id_order: OnceLock<Vec<u32>>,
}

/// A visit compiled against a market index: everything the hot loop needs, nothing else.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CompiledProfile {
    /// Dense segment index.
    pub segment: u16,
    /// Tariff flags every shown tariff must carry: the visitor's filters, and switchable when the
    /// page is not whole of market.
    pub mask: u8,
    /// Consumption to price.
    pub usage: Usage,
    /// Projected cost of staying on the current tariff for a year from the visit, milli-pence,
    /// when known.
    pub current_cost: Option<i64>,
    /// The exit fee leaving the current tariff costs at the visit's date, milli-pence (0 in the
    /// last 49 days of a fix, on a variable tariff, or when the current tariff is not known).
    pub switch_cost: i64,
    /// The tariff the current cost is measured on, left off the table; `u16::MAX` for none.
    pub hidden: u16,
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

/// What the visitor's current tariff costs them, as [`MarketIndex::current`] works it out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CurrentCost {
    /// Projected cost of staying put for a year from the visit, milli-pence.
    pub annual_cost: i64,
    /// The exit fee owed for leaving at the visit's date, milli-pence.
    pub switch_cost: i64,
    /// The tariff the cost was priced on (the current tariff, or the supplier's variable tariff
    /// when only the supplier is known).
    pub tariff: u16,
}

impl MarketIndex {
    /// Compiles a (validated) market. A segment's candidates are priced on its first use (a
    /// `price` call needs one or two of the [`Segment::COUNT`]; a run, those of its visitors), so
    /// compiling costs only the lookups by id and supplier.
    pub fn new(market: Market) -> MarketIndex {
        // Validated markets and the markets of scenarios never exceed it (Market::apply).
        debug_assert!(market.tariffs.len() <= crate::market::MAX_TARIFFS);
        let by_id = market
            .tariffs
            .iter()
            .enumerate()
            .map(|(i, t)| (t.id.clone(), i as u16))
            .collect();
        let mut variable_by_supplier: HashMap<String, Vec<u16>> = HashMap::new();
        for (i, t) in market.tariffs.iter().enumerate() {
            if t.kind == TariffKind::Variable && !t.hypothetical {
                variable_by_supplier
                    .entry(t.supplier.clone())
                    .or_default()
                    .push(i as u16);
            }
        }
        MarketIndex {
            market,
            segments: (0..Segment::COUNT).map(|_| OnceLock::new()).collect(),
            by_id,
            variable_by_supplier,
            id_order: OnceLock::new(),
        }
    }

    /// The candidates of segment `i` (a [`Segment::index`]), in tariff order: each tariff on sale
    /// with a quote for the segment (a rate card for its region and payment method, rates for its
    /// fuel and meter), once.
    fn segment(&self, i: usize) -> &[Candidate] {
        self.segments[i].get_or_init(|| {
            let seg = Segment::from_index(i).expect("a segment index");
            if !seg.fuel.has_electricity() && seg.meter != Meter::SingleRate {
                return Vec::new();
            }
            let mut out = Vec::new();
            for (i, t) in self.market.tariffs.iter().enumerate() {
                // A fuel listed twice still gives one candidate: the order within a segment never
                // decides a rank, and each tariff is there once.
                if !t.on_sale || !t.fuels.contains(&seg.fuel) {
                    continue;
                }
                let Some(card) = t.card(seg.region, seg.payment_method) else {
                    continue;
                };
                let discount = if seg.fuel == Fuel::DualFuel {
                    t.dual_fuel_discount_gbp
                } else {
                    Millipence::ZERO
                };
                let Some(quote) = Quote::new(card, seg.fuel, seg.meter, discount) else {
                    continue;
                };
                let flags = (if t.kind == TariffKind::Fixed {
                    FIXED
                } else {
                    0
                }) | (if t.green { GREEN } else { 0 })
                    | (if t.has_exit_fee(seg.fuel) {
                        0
                    } else {
                        NO_EXIT_FEE
                    })
                    | (if t.switchable { SWITCHABLE } else { 0 });
                out.push(Candidate {
                    quote,
                    key: tariff_key(&t.id),
                    tariff: i as u16,
                    flags,
                });
            }
            // In tariff order, each tariff once: `delta` searches segments by tariff.
            debug_assert!(out.is_sorted_by_key(|c| c.tariff));
            out
        })
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

    /// Position of each tariff when sorted by id, by tariff index (the order summaries list
    /// tariffs in; it never decides a rank).
    pub fn id_order(&self) -> &[u32] {
        self.id_order.get_or_init(|| {
            let tariffs = &self.market.tariffs;
            let mut order: Vec<usize> = (0..tariffs.len()).collect();
            order.sort_by(|&a, &b| tariffs[a].id.cmp(&tariffs[b].id));
            let mut id_order = vec![0u32; tariffs.len()];
            for (rank, &i) in order.iter().enumerate() {
                id_order[i] = rank as u32;
            }
            id_order
        })
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

    /// The supplier's variable tariff for this visitor: the one sold to them, and when a supplier
    /// has several, the cheapest for them; among equally cheap ones, a pseudo-random draw for this
    /// visit (`key`, [`visit_key`]), never the first by id or by file position.
    fn supplier_variable(
        &self,
        supplier: &str,
        v: &Visit,
        meter: Meter,
        key: u64,
    ) -> Option<(u16, Quote)> {
        let usage = v.usage();
        self.variable_by_supplier
            .get(supplier)?
            .iter()
            .filter_map(|&t| {
                self.quote_of(t, v.region, v.payment_method, v.fuel, meter)
                    .map(|q| (t, q))
            })
            .min_by_key(|&(t, q)| (q.cost(&usage), tie_of(key, tariff_key(&self.tariff(t).id))))
    }

    /// What staying put costs the visitor: a year of the current tariff from the visit's date,
    /// where a fix that ends within that year rolls onto its supplier's variable tariff for the
    /// rest of it, and the exit fee owed for leaving now (none in the last 49 days of a fix). Falls
    /// back to the current supplier's variable tariff when the tariff is not known; `None` when
    /// neither is in the market for the visitor's region and payment method. `seed` is the run's
    /// (or the `price` call's): it draws among a supplier's equally cheap variable tariffs.
    pub fn current(&self, v: &Visit, seed: u64) -> Option<CurrentCost> {
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
                .supplier_variable(supplier, v, meter, visit_key(seed, &v.visit_id))
                .map(|(t, q)| CurrentCost {
                    annual_cost: q.cost(&usage),
                    switch_cost: 0,
                    tariff: t,
                });
        };
        let tariff = self.tariff(t);
        let cost = quote.cost(&usage);
        let visited = v.timestamp.date();
        let exit_fee = tariff.exit_fee(v.fuel).0;
        let (annual_cost, switch_cost) = match (tariff.kind, tariff.end_date) {
            (TariffKind::Fixed, Some(end)) => {
                let days = days_left(visited, end);
                let fee = if days > EXIT_FEE_FREE_DAYS {
                    exit_fee
                } else {
                    0
                };
                let cost = if days >= DAYS_PER_YEAR {
                    cost
                } else {
                    // Only the cost counts here: equally cheap tariffs cost the same.
                    match self.supplier_variable(&tariff.supplier, v, meter, 0) {
                        Some((_, svt)) => div_round(
                            cost * days + svt.cost(&usage) * (DAYS_PER_YEAR - days),
                            DAYS_PER_YEAR,
                        ),
                        None => cost,
                    }
                };
                (cost, fee)
            }
            // A fix whose end is not known is taken to run past the year, fee and all.
            (TariffKind::Fixed, None) => (cost, exit_fee),
            (TariffKind::Variable, _) => (cost, 0),
        };
        Some(CurrentCost {
            annual_cost,
            switch_cost,
            tariff: t,
        })
    }

    /// The projected cost of staying put for a year from the visit's date ([`MarketIndex::current`]).
    pub fn current_cost(&self, v: &Visit) -> Option<i64> {
        // The cost is the same whichever of equally cheap tariffs is drawn.
        self.current(v, 0).map(|c| c.annual_cost)
    }

    /// Compiles a visit for replay under the page's rules, with the run's `seed` ([`MarketIndex::current`]).
    pub fn compile(&self, v: &Visit, rules: PageRules, seed: u64) -> CompiledProfile {
        let seg = Segment {
            region: v.region,
            payment_method: v.payment_method,
            fuel: v.fuel,
            meter: v.pricing_meter(),
        };
        let current = self.current(v, seed);
        CompiledProfile {
            segment: seg.index() as u16,
            mask: filter_mask(&v.filters) | if rules.whole_of_market { 0 } else { SWITCHABLE },
            usage: v.usage(),
            current_cost: current.map(|c| c.annual_cost),
            switch_cost: current.map_or(0, |c| c.switch_cost),
            hidden: match current {
                Some(c) if !rules.show_current_tariff => c.tariff,
                _ => NO_TARIFF,
            },
        }
    }

    /// Replays one profile: calls `eligible` for every eligible tariff and leaves the first
    /// `page_size` of them in `scratch`, ranked, as `(annual cost, tariff key, tariff)`.
    /// `profile_key` is the profile's [`tie_key`]. Returns how many are shown.
    ///
    /// The page is kept by insertion into a sorted run of at most `page_size` (a results page
    /// is short and segments hold a few dozen tariffs, so this beats a select-then-sort).
    #[inline]
    pub fn replay(
        &self,
        p: &CompiledProfile,
        profile_key: u64,
        page_size: usize,
        scratch: &mut Vec<(i64, u64, u16)>,
        mut eligible: impl FnMut(u16),
    ) -> usize {
        scratch.clear();
        if page_size == 0 {
            return 0;
        }
        for c in self.segment(p.segment as usize) {
            if c.flags & p.mask != p.mask || c.tariff == p.hidden {
                continue;
            }
            eligible(c.tariff);
            insert_ranked(
                scratch,
                (c.quote.cost(&p.usage), c.key, c.tariff),
                page_size,
                profile_key,
            );
        }
        scratch.len()
    }

    /// A results table's page and the ranks of some tariffs in the whole table, in one pass:
    /// `page` gets the first `page_size` rows, ranked as [`MarketIndex::replay`] ranks them;
    /// `ranks[i]` gets `tracked[i]`'s row (its 1-based rank in the whole table) when it is
    /// eligible. Returns the number of eligible tariffs. The whole table is never sorted: a
    /// tracked tariff's rank is one plus the number of eligible rows ranked before it.
    pub fn page_and_ranks(
        &self,
        p: &CompiledProfile,
        profile_key: u64,
        page_size: usize,
        page: &mut Vec<(i64, u64, u16)>,
        tracked: &[u16],
        ranks: &mut Vec<Option<Shown>>,
    ) -> usize {
        page.clear();
        ranks.clear();
        ranks.resize(tracked.len(), None);
        let candidates = self.segment(p.segment as usize);
        let shown = |c: &&Candidate| c.flags & p.mask == p.mask && c.tariff != p.hidden;
        // The rows of the tracked tariffs, by their place in `tracked`.
        let mut found = Vec::new();
        let mut eligible = 0;
        for c in candidates.iter().filter(shown) {
            eligible += 1;
            let row = (c.quote.cost(&p.usage), c.key, c.tariff);
            if page_size > 0 {
                insert_ranked(page, row, page_size, profile_key);
            }
            if let Some(i) = tracked.iter().position(|&t| t == c.tariff) {
                found.push((i, row, 1));
            }
        }
        if !found.is_empty() {
            for c in candidates.iter().filter(shown) {
                let row = (c.quote.cost(&p.usage), c.key, c.tariff);
                for (_, tracked_row, rank) in &mut found {
                    *rank += usize::from(ranks_before(profile_key, &row, tracked_row));
                }
            }
            for (i, (cost, _, tariff), rank) in found {
                ranks[i] = Some(Shown {
                    tariff,
                    rank: rank as u16,
                    annual_cost: cost,
                });
            }
        }
        eligible
    }

    /// What differs between this market and `scenario`'s, segment by segment: the candidates only
    /// this market has (a tariff the scenario removed, or a price it moved), and the tariffs whose
    /// quotes only the scenario has (added or moved). A scenario only appends tariffs, so a
    /// tariff has the same index on both.
    pub fn delta(&self, scenario: &MarketIndex) -> MarketDelta {
        let same = |a: &Candidate, list: &[Candidate]| {
            list.binary_search_by_key(&a.tariff, |o| o.tariff)
                .is_ok_and(|k| list[k].quote == a.quote)
        };
        let (mut base_only, mut scenario_only) = (Vec::new(), Vec::new());
        for i in 0..Segment::COUNT {
            let (mine, theirs) = (self.segment(i), scenario.segment(i));
            base_only.push(mine.iter().filter(|c| !same(c, theirs)).copied().collect());
            scenario_only.push(
                theirs
                    .iter()
                    .filter(|c| !same(c, mine))
                    .map(|c| c.tariff)
                    .collect(),
            );
        }
        MarketDelta {
            base_only,
            scenario_only,
        }
    }

    /// The number of extra rows a replay on the scenario market must keep for
    /// [`MarketIndex::replay_from_scenario`] to rebuild this market's page from it: the
    /// scenario-only candidates of the profile's segment.
    pub fn extra_rows(delta: &MarketDelta, p: &CompiledProfile) -> usize {
        delta.scenario_only[p.segment as usize].len()
    }

    /// Replays `p` on this (base) market from the same profile's replay on the scenario market,
    /// `(its compiled profile, ranked)`, `ranked` being the scenario's first
    /// `page_size + extra_rows` rows: the rows both markets price
    /// alike keep their order, and only the candidates this market alone has are priced and
    /// ranked in. Equal to [`MarketIndex::replay`] on this market, at a fraction of its cost.
    /// `None` when the two profiles hide different tariffs (then replay in full).
    pub fn replay_from_scenario(
        &self,
        p: &CompiledProfile,
        (scenario_profile, ranked): (&CompiledProfile, &[(i64, u64, u16)]),
        profile_key: u64,
        page_size: usize,
        delta: &MarketDelta,
        scratch: &mut Vec<(i64, u64, u16)>,
    ) -> Option<usize> {
        if p.hidden != scenario_profile.hidden || p.mask != scenario_profile.mask {
            return None;
        }
        scratch.clear();
        if page_size == 0 {
            return Some(0);
        }
        let seg = p.segment as usize;
        let scenario_only = &delta.scenario_only[seg];
        // The first `page_size` shared rows: at most `extra_rows` scenario-only rows precede them.
        scratch.extend(
            ranked
                .iter()
                .filter(|r| !scenario_only.contains(&r.2))
                .take(page_size)
                .copied(),
        );
        for c in &delta.base_only[seg] {
            if c.flags & p.mask != p.mask || c.tariff == p.hidden {
                continue;
            }
            insert_ranked(
                scratch,
                (c.quote.cost(&p.usage), c.key, c.tariff),
                page_size,
                profile_key,
            );
        }
        Some(scratch.len())
    }

    /// The whole results table for one visit (every eligible tariff, ranked), for the `price`
    /// call with `seed`; `profile_key` orders ties ([`tie_key`]).
    pub fn results(
        &self,
        v: &Visit,
        rules: PageRules,
        seed: u64,
        profile_key: u64,
    ) -> ResultsTable {
        let p = self.compile(v, rules, seed);
        let mut scratch = Vec::new();
        let n = self.replay(&p, profile_key, usize::MAX, &mut scratch, |_| {});
        let current = p.current_cost.map(|c| Millipence(c).round_to_pence());
        let rows = scratch[..n]
            .iter()
            .enumerate()
            .map(|(i, &(cost, _, t))| {
                let tariff = self.tariff(t);
                let cost = Millipence(cost).round_to_pence();
                ResultRow {
                    rank: i as u32 + 1,
                    tariff_id: tariff.id.clone(),
                    supplier: tariff.supplier.clone(),
                    name: tariff.name.clone(),
                    kind: tariff.kind,
                    green: tariff.green,
                    switchable: tariff.switchable,
                    hypothetical: tariff.hypothetical,
                    exit_fee_gbp: tariff.exit_fee(v.fuel).gbp().as_f64(),
                    annual_cost_gbp: Gbp(cost).as_f64(),
                    saving_gbp: current.map(|c| Gbp(c - cost).as_f64()),
                }
            })
            .collect();
        ResultsTable {
            visit_id: v.visit_id.clone(),
            current_cost_gbp: current.map(|c| Gbp(c).as_f64()),
            current_tariff_id: self
                .current(v, seed)
                .map(|c| self.tariff(c.tariff).id.clone()),
            switch_cost_gbp: p
                .current_cost
                .map(|_| Millipence(p.switch_cost).gbp().as_f64()),
            rows,
        }
    }
}

fn days_left(from: NaiveDate, end: NaiveDate) -> i64 {
    (end - from).num_days().clamp(0, DAYS_PER_YEAR)
}

/// A ranked results table for one visitor.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct ResultsTable {
    /// The visit priced.
    pub visit_id: String,
    /// Projected cost of staying put for a year from the visit, GBP, when known.
    pub current_cost_gbp: Option<f64>,
    /// The tariff the current cost is priced on, when known (the visitor's tariff, or their
    /// supplier's variable tariff when only the supplier is known).
    pub current_tariff_id: Option<String>,
    /// The exit fee leaving the current tariff costs at the visit's date, GBP, when the current
    /// cost is known (0 in the last 49 days of a fix).
    pub switch_cost_gbp: Option<f64>,
    /// Every eligible tariff, cheapest first, ties in a seeded random order.
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
    /// The exit fee this tariff charges the visitor for their fuels, GBP.
    pub exit_fee_gbp: f64,
    /// Annual cost, GBP.
    pub annual_cost_gbp: f64,
    /// Saving against staying put, GBP (negative when dearer), when the current cost is known.
    pub saving_gbp: Option<f64>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::market::ExitFees;
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
    fn a_supplier_only_visit_is_put_on_one_of_equally_cheap_variable_tariffs_by_a_seeded_draw() {
        // Beta Power sells a second variable tariff, the same in all but its id: neither may be
        // everyone's baseline (and so hidden from everyone's table) by where its id sorts.
        let mut market = index().market().clone();
        let mut twin = market.tariff("beta-svt").unwrap().clone();
        twin.id = "beta-svt-twin".into();
        market.tariffs.push(twin);
        let ix = MarketIndex::new(market);
        let picks = |seed: u64| -> Vec<String> {
            (0..200)
                .map(|i| {
                    let v = visit(&format!(
                        "v{i},2026-07-01,A,dual_fuel,single_rate,direct_debit,2700,11500,,Beta Power,,,,,"
                    ));
                    let c = ix.current(&v, seed).unwrap();
                    assert_eq!(Some(c.annual_cost), ix.current_cost(&v));
                    ix.tariff(c.tariff).id.clone()
                })
                .collect()
        };
        let a = picks(7);
        let twins = a.iter().filter(|id| *id == "beta-svt-twin").count();
        assert!((60..=140).contains(&twins), "{twins} of 200 on the twin");
        assert_eq!(a, picks(7), "the same seed, the same draws");
        assert_ne!(a, picks(8), "another seed, other draws");
    }

    #[test]
    fn a_fix_ending_within_the_year_rolls_onto_the_supplier_variable_from_the_visit_date() {
        let ix = index();
        // beta-fix-old ends 2026-10-01. (visit date, days on the fix): the roll-over counts from
        // the visit, not from the market's date (2026-07-01).
        for (date, days) in [
            ("2026-07-01", 92),
            ("2026-08-01", 61),
            ("2026-09-30", 1),
            ("2026-10-01", 0),
            ("2026-12-25", 0),
            ("2025-09-01", 365),
        ] {
            let v = visit(&format!(
                "v,{date},A,dual_fuel,single_rate,direct_debit,2700,11500,,Beta Power,beta-fix-old,,,,"
            ));
            let (fix, svt) = (cost(&ix, "beta-fix-old", &v), cost(&ix, "beta-svt", &v));
            assert!(fix < svt);
            assert_eq!(
                ix.current_cost(&v),
                Some(div_round(fix * days + svt * (365 - days), 365)),
                "visit on {date}"
            );
        }
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
    fn exit_fees_are_waived_in_the_last_49_days_of_a_fix() {
        let mut m = Market::from_json(include_str!("../tests/fixtures/mini_market.json")).unwrap();
        let t = m
            .tariffs
            .iter_mut()
            .find(|t| t.id == "beta-fix-old")
            .unwrap();
        t.exit_fees_gbp = ExitFees {
            electricity: Millipence(3_000_000),
            gas: Millipence(2_000_000),
        };
        let ix = MarketIndex::new(m);
        // Ends 2026-10-01: 49 days before is 2026-08-13. (visit date, fuel, fee in milli-pence)
        for (date, fuel, fee) in [
            ("2026-07-01", "dual_fuel", 5_000_000),
            ("2026-07-01", "electricity", 3_000_000),
            ("2026-07-01", "gas", 2_000_000),
            ("2026-08-12", "dual_fuel", 5_000_000),
            ("2026-08-13", "dual_fuel", 0),
            ("2026-09-30", "dual_fuel", 0),
            ("2026-11-01", "dual_fuel", 0),
        ] {
            let meter = if fuel == "gas" { "" } else { "single_rate" };
            let v = visit(&format!(
                "v,{date},A,{fuel},{meter},direct_debit,2700,11500,,Beta Power,beta-fix-old,,,,"
            ));
            assert_eq!(
                ix.current(&v, 0).unwrap().switch_cost,
                fee,
                "{fuel} visit on {date}"
            );
        }
        // A variable tariff, or a current tariff that is not known, costs nothing to leave.
        let v = visit(
            "v,2026-07-01,A,dual_fuel,single_rate,direct_debit,2700,11500,,Beta Power,beta-svt,,,,",
        );
        assert_eq!(ix.current(&v, 0).unwrap().switch_cost, 0);
        let v =
            visit("v,2026-07-01,A,dual_fuel,single_rate,direct_debit,2700,11500,,Beta Power,,,,,");
        assert_eq!(ix.current(&v, 0).unwrap().switch_cost, 0);
    }

    fn ids(ix: &MarketIndex, row: &str, rules: PageRules) -> Vec<String> {
        let mut rows = ix.results(&visit(row), rules, 0, 0).rows;
        // Ties come in a seeded random order: compare as (cost, id) to test membership and order.
        rows.sort_by(|a, b| {
            a.annual_cost_gbp
                .total_cmp(&b.annual_cost_gbp)
                .then(a.tariff_id.cmp(&b.tariff_id))
        });
        rows.into_iter().map(|r| r.tariff_id).collect()
    }

    #[test]
    fn filters_restrict_the_table() {
        let ix = index();
        let r = PageRules::default();
        let all = ids(
            &ix,
            "v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,,,,",
            r,
        );
        assert_eq!(all, ["alpha-fix12", "gamma-green", "alpha-svt", "beta-svt"]);
        let cases: [(&str, &[&str]); 5] = [
            (
                "v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,true,,,",
                &["alpha-fix12", "gamma-green"],
            ),
            (
                "v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,true,,true,",
                &["gamma-green"],
            ),
            (
                "v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,,,,true",
                &["alpha-fix12", "gamma-green", "alpha-svt"],
            ),
            // Gas-only: gamma-green sells no gas; prepayment: only the variables have cards.
            (
                "v,2026-07-01,C,gas,,direct_debit,,9000,,,,,,,",
                &["alpha-fix12", "alpha-svt", "beta-svt"],
            ),
            (
                "v,2026-07-01,C,gas,,prepayment,,9000,,,,,,,",
                &["alpha-svt", "beta-svt"],
            ),
        ];
        for (row, want) in cases {
            assert_eq!(ids(&ix, row, r), want, "{row}");
        }
    }

    #[test]
    fn the_page_rules_hide_the_current_tariff_and_non_switchable_ones() {
        let ix = index();
        let row = "v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,Alpha Energy,alpha-svt,,,,";
        let rules = |show_current_tariff, whole_of_market| PageRules {
            show_current_tariff,
            whole_of_market,
        };
        let cases: [(PageRules, &[&str]); 4] = [
            (
                rules(false, true),
                &["alpha-fix12", "gamma-green", "beta-svt"],
            ),
            (
                rules(true, true),
                &["alpha-fix12", "gamma-green", "alpha-svt", "beta-svt"],
            ),
            (
                rules(true, false),
                &["alpha-fix12", "gamma-green", "alpha-svt"],
            ),
            (rules(false, false), &["alpha-fix12", "gamma-green"]),
        ];
        for (r, want) in cases {
            assert_eq!(ids(&ix, row, r), want, "{r:?}");
        }
        // Only the supplier known: its variable tariff is the baseline, and it is what is hidden.
        let row = "v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,Beta Power,,,,,";
        assert_eq!(
            ids(&ix, row, PageRules::default()),
            ["alpha-fix12", "gamma-green", "alpha-svt"]
        );
    }

    #[test]
    fn replay_keeps_the_cheapest_page_in_order_with_seeded_ties() {
        let ix = index();
        let p = ix.compile(
            &visit("v,2026-07-01,C,dual_fuel,single_rate,direct_debit,2700,11500,,,,,,,"),
            PageRules::default(),
            1,
        );
        let mut scratch = Vec::new();
        let mut seen = Vec::new();
        let shown = ix.replay(&p, tie_key(1, 0), 3, &mut scratch, |t| seen.push(t));
        assert_eq!(shown, 3);
        assert_eq!(seen.len(), 4, "every eligible tariff is counted");
        // alpha-svt and beta-svt cost the same: over profiles, each takes the third place (and the
        // other falls off the page) about half the time, whatever their ids.
        let mut third = HashMap::new();
        for j in 0..2_000 {
            ix.replay(&p, tie_key(1, j), 3, &mut scratch, |_| {});
            let page: Vec<&str> = scratch[..3]
                .iter()
                .map(|&(_, _, t)| ix.tariff(t).id.as_str())
                .collect();
            assert_eq!(page[..2], ["alpha-fix12", "gamma-green"]);
            *third.entry(page[2]).or_insert(0) += 1;
        }
        let (a, b) = (third["alpha-svt"], third["beta-svt"]);
        assert_eq!(a + b, 2_000);
        assert!((900..=1_100).contains(&a), "alpha-svt third {a} of 2000");
        // The same key gives the same order.
        ix.replay(&p, tie_key(1, 7), 4, &mut scratch, |_| {});
        let once = scratch.clone();
        ix.replay(&p, tie_key(1, 7), 4, &mut scratch, |_| {});
        assert_eq!(once, scratch);
    }
}
