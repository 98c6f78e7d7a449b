//! Runs: a run spec, its population, and chunk-addressable sampling and replay.
//!
//! Profile `j` of a run is population member `floor(u_j x P)` where `u_j` is the `j`-th 64-bit word
//! pair of a ChaCha8 stream seeded by the run's seed, so any chunk can be computed alone, anywhere,
//! and the chunks concatenated in order equal one pass. The population is taken in a canonical
//! order (by visit id, then by the whole visit), never in the order of the visits file: the same
//! visits exported in another order give the same run.

use crate::compare::{Comparison, MAX_COMPARE_PAGE_SIZE, TariffComparison};
use crate::domain::Fuel;
use crate::error::{Error, RunError};
use crate::market::Market;
use crate::money::Millipence;
use crate::replay::{CompiledProfile, MarketDelta, MarketIndex, PageRules, tie_key};
use crate::scenario::Scenario;
use crate::summary::{DEFAULT_CTR_BY_RANK, Summary};
use crate::visit::{PopulationFilter, Visit};
use rand_chacha::ChaCha8Rng;
use rand_chacha::rand_core::{RngCore, SeedableRng};
use serde::{Deserialize, Serialize};

/// Default profiles per chunk.
pub const DEFAULT_CHUNK_SIZE: u64 = 10_000;
/// Default results per page.
pub const DEFAULT_PAGE_SIZE: u16 = 10;
/// Largest page size accepted.
pub const MAX_PAGE_SIZE: u16 = 1_000;
/// Largest chunk size accepted (a chunk is held in memory).
pub const MAX_CHUNK_SIZE: u64 = 1_000_000;
/// Largest number of impression rows a chunk may produce (`chunk_size x page_size`): about 1 GB of
/// CSV, which a WebAssembly worker still holds comfortably.
pub const MAX_CHUNK_ROWS: u64 = 5_000_000;
/// Largest sample size accepted: ten billion profiles (hours of a 2-core machine; deployments set
/// lower limits per environment).
pub const MAX_SAMPLE_SIZE: u64 = 10_000_000_000;

fn default_chunk_size() -> u64 {
    DEFAULT_CHUNK_SIZE
}
fn default_page_size() -> u16 {
    DEFAULT_PAGE_SIZE
}
fn yes() -> bool {
    true
}
fn is_false(b: &bool) -> bool {
    !*b
}
fn is_true(b: &bool) -> bool {
    *b
}

/// What to simulate (see `schemas/run-spec.schema.json`). The `market`, `scenario` and `visits`
/// fields are references the caller resolves (file paths for the CLI, storage keys for Lambda).
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RunSpec {
    /// Reference to the market JSON.
    pub market: String,
    /// Reference to the scenario JSON, if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub scenario: Option<String>,
    /// Reference to the visits CSV.
    pub visits: String,
    /// Population filter.
    #[serde(default)]
    pub filter: PopulationFilter,
    /// Profiles to sample (with replacement) from the filtered population.
    pub sample_size: u64,
    /// Profiles per chunk.
    #[serde(default = "default_chunk_size")]
    pub chunk_size: u64,
    /// Seed of the sampler (use at most 2^53 so JavaScript keeps it exact).
    #[serde(default)]
    pub seed: u64,
    /// Results shown per table.
    #[serde(default = "default_page_size")]
    pub page_size: u16,
    /// Click-through rate by rank; defaults to [`DEFAULT_CTR_BY_RANK`].
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub ctr_by_rank: Option<Vec<f64>>,
    /// Whether the visitor's own current tariff appears among the ranked rows (default `false`:
    /// it is the baseline the saving is measured against, shown apart).
    #[serde(default, skip_serializing_if = "is_false")]
    pub show_current_tariff: bool,
    /// Whether tariffs the site cannot switch the visitor to are listed (default `true`, whole of
    /// market) or only switchable ones (`false`).
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub whole_of_market: bool,
    /// With a scenario: also replay every profile on the market before the scenario and write the
    /// paired comparison (default `true`; about twice the replay work). Ignored without a scenario.
    #[serde(default = "yes", skip_serializing_if = "is_true")]
    pub compare: bool,
}

impl RunSpec {
    /// Parses and validates a run spec.
    ///
    /// # Errors
    /// [`RunError::Json`], or [`RunError::InvalidField`] from [`RunSpec::validate`].
    pub fn from_json(json: &str) -> Result<RunSpec, RunError> {
        let spec = RunSpec::parse(json)?;
        spec.validate()?;
        Ok(spec)
    }

    /// Parses a run spec without validating the numbers (to override some first).
    ///
    /// # Errors
    /// [`RunError::Json`] with line, column and field.
    pub fn parse(json: &str) -> Result<RunSpec, RunError> {
        crate::error::from_json(json).map_err(RunError::json)
    }

    /// Checks the numbers: sample size, chunk size and page size above zero and within limits,
    /// click-through rates between 0 and 1.
    ///
    /// # Errors
    /// [`RunError::InvalidField`] naming the field.
    pub fn validate(&self) -> Result<(), RunError> {
        let bad = |field, problem: String| Err(RunError::InvalidField { field, problem });
        if self.sample_size == 0 {
            return bad(
                "sample_size",
                "sample_size is 0: ask for at least one profile".into(),
            );
        }
        if self.sample_size > MAX_SAMPLE_SIZE {
            return bad(
                "sample_size",
                format!(
                    "sample_size {} is more than the {MAX_SAMPLE_SIZE} profiles a run may sample: ask for fewer",
                    self.sample_size
                ),
            );
        }
        if self.chunk_size == 0 || self.chunk_size > MAX_CHUNK_SIZE {
            return bad(
                "chunk_size",
                format!("chunk_size must be from 1 to {MAX_CHUNK_SIZE}"),
            );
        }
        if self.page_size == 0 || self.page_size > MAX_PAGE_SIZE {
            return bad(
                "page_size",
                format!("page_size must be from 1 to {MAX_PAGE_SIZE}"),
            );
        }
        if self.chunk_size * u64::from(self.page_size) > MAX_CHUNK_ROWS {
            return bad(
                "chunk_size",
                format!(
                    "chunk_size {} x page_size {} may write more than {MAX_CHUNK_ROWS} rows in one chunk: use smaller chunks",
                    self.chunk_size, self.page_size
                ),
            );
        }
        if let Some(ctr) = &self.ctr_by_rank
            && ctr.iter().any(|c| !(0.0..=1.0).contains(c))
        {
            return bad(
                "ctr_by_rank",
                "click-through rates must be numbers from 0 to 1".into(),
            );
        }
        Ok(())
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.sample_size.div_ceil(self.chunk_size)
    }

    /// The results page's rules.
    pub fn page_rules(&self) -> PageRules {
        PageRules {
            show_current_tariff: self.show_current_tariff,
            whole_of_market: self.whole_of_market,
        }
    }

    /// The profile numbers of chunk `i`.
    pub fn chunk_range(&self, i: u64) -> std::ops::Range<u64> {
        let start = i.saturating_mul(self.chunk_size).min(self.sample_size);
        start..(start.saturating_add(self.chunk_size)).min(self.sample_size)
    }
}

/// The version of the impressions CSV format, written in its last column (`format_version`).
/// Version 1 (no such column) had 13 columns; version 2 added the visit date, the tariff's kind,
/// green and switchable flags and exit fee, the switch cost, and the visitor's filters.
pub const IMPRESSIONS_FORMAT_VERSION: u32 = 2;

/// The header of the impressions CSV.
pub const IMPRESSIONS_CSV_HEADER: &str = "profile,visit_id,visit_date,rank,tariff_id,supplier,hypothetical,kind,green,switchable,exit_fee_gbp,annual_cost_gbp,current_cost_gbp,saving_gbp,switch_cost_gbp,region,fuel,meter,payment_method,fixed_only,green_only,no_exit_fees,switchable_only,filters_set,format_version\n";

/// One chunk's output: impressions CSV rows (the header only on chunk 0) and a partial summary.
#[derive(Debug, Clone, PartialEq)]
pub struct ChunkOutput {
    /// Chunk index.
    pub index: u64,
    /// CSV bytes; chunk outputs concatenated in order form the run's impressions file.
    pub impressions_csv: Vec<u8>,
    /// Partial summary, to merge with [`Summary::merge`].
    pub summary: Summary,
}

/// A prepared run: hypothetical market compiled, population filtered and compiled. Immutable and
/// `Sync`: chunks can be computed from many threads at once.
#[derive(Debug, Clone)]
pub struct Simulation {
    spec: RunSpec,
    index: MarketIndex,
    /// The market before the scenario, the profiles compiled on it and what differs between the
    /// two markets, when the run compares.
    base: Option<(MarketIndex, Vec<CompiledProfile>, MarketDelta)>,
    /// Tariffs of the comparison (on sale before or after), sorted by id.
    compare_order: Vec<u16>,
    population: Vec<Visit>,
    profiles: Vec<CompiledProfile>,
    summary_order: Vec<u16>,
    ctr: Vec<f64>,
    csv: CsvParts,
}

impl Simulation {
    /// Prepares a run from parsed inputs.
    ///
    /// # Errors
    /// An invalid spec, a scenario that does not fit the market, an empty population.
    pub fn new(
        market: &Market,
        scenario: Option<&Scenario>,
        visits: &[Visit],
        spec: &RunSpec,
    ) -> Result<Simulation, Error> {
        spec.validate()?;
        market.validate()?;
        let base_market = market;
        let market = match scenario {
            Some(s) => market.apply(s)?,
            None => market.clone(),
        };
        let index = MarketIndex::new(market);
        let population = canonical_order(spec.filter.apply(visits)?.into_iter().cloned().collect());
        let rules = spec.page_rules();
        let profiles: Vec<CompiledProfile> = population
            .iter()
            .map(|v| index.compile(v, rules, spec.seed))
            .collect();
        let compares = scenario.is_some() && spec.compare;
        if compares && spec.page_size > MAX_COMPARE_PAGE_SIZE {
            return Err(RunError::InvalidField {
                field: "page_size",
                problem: format!(
                    "a run that compares with the base market shows at most {MAX_COMPARE_PAGE_SIZE} results a page: lower page_size or set compare to false"
                ),
            }
            .into());
        }
        // A scenario only appends tariffs, so a tariff has the same index on both markets.
        let base = compares.then(|| {
            let base = MarketIndex::new(base_market.clone());
            let compiled = population
                .iter()
                .map(|v| base.compile(v, rules, spec.seed))
                .collect();
            let delta = base.delta(&index);
            (base, compiled, delta)
        });
        let mut compare_order: Vec<u16> = match &base {
            Some((b, _, _)) => (0..index.market().tariffs.len() as u16)
                .filter(|&t| {
                    index.tariff(t).on_sale
                        || (usize::from(t) < b.market().tariffs.len() && b.tariff(t).on_sale)
                })
                .collect(),
            None => Vec::new(),
        };
        compare_order.sort_by_key(|&t| index.id_order()[t as usize]);
        let mut summary_order: Vec<u16> = (0..index.market().tariffs.len() as u16)
            .filter(|&t| index.tariff(t).on_sale)
            .collect();
        summary_order.sort_by_key(|&t| index.id_order()[t as usize]);
        let ctr = spec
            .ctr_by_rank
            .clone()
            .unwrap_or_else(|| DEFAULT_CTR_BY_RANK.to_vec());
        let csv = CsvParts::new(&index, &population, &profiles);
        Ok(Simulation {
            spec: spec.clone(),
            index,
            base,
            compare_order,
            population,
            profiles,
            summary_order,
            ctr,
            csv,
        })
    }

    /// The run spec.
    pub fn spec(&self) -> &RunSpec {
        &self.spec
    }

    /// The compiled hypothetical market.
    pub fn index(&self) -> &MarketIndex {
        &self.index
    }

    /// Visits in the filtered population.
    pub fn population_size(&self) -> usize {
        self.population.len()
    }

    /// The filtered population in the order [`Simulation::sample`] draws members from.
    pub fn population(&self) -> &[Visit] {
        &self.population
    }

    /// Number of chunks.
    pub fn chunk_count(&self) -> u64 {
        self.spec.chunk_count()
    }

    /// An empty summary for this run.
    pub fn empty_summary(&self) -> Summary {
        let mut s = Summary::empty(
            self.spec.page_size,
            self.ctr.clone(),
            self.population.len() as u64,
            self.summary_order.iter().map(|&t| {
                let tariff = self.index.tariff(t);
                (
                    tariff.id.as_str(),
                    tariff.supplier.as_str(),
                    tariff.hypothetical,
                )
            }),
        );
        if let Some((base, _, _)) = &self.base {
            let tariffs = self
                .compare_order
                .iter()
                .map(|&t| {
                    let after = self.index.tariff(t);
                    let before =
                        usize::from(t) < base.market().tariffs.len() && base.tariff(t).on_sale;
                    TariffComparison::empty(
                        &after.id,
                        &after.supplier,
                        after.hypothetical,
                        before,
                        after.on_sale,
                    )
                })
                .collect();
            s.comparison = Some(Comparison::empty(
                self.spec.page_size,
                self.population.len() as u64,
                tariffs,
            ));
        }
        s
    }

    /// Whether the run replays every profile on the base market too.
    pub fn compares(&self) -> bool {
        self.base.is_some()
    }

    fn check_chunk(&self, i: u64) -> Result<std::ops::Range<u64>, RunError> {
        if i >= self.chunk_count() {
            return Err(RunError::NoSuchChunk {
                index: i,
                count: self.chunk_count(),
            });
        }
        Ok(self.spec.chunk_range(i))
    }

    /// The population members drawn for profile numbers `range`, as `(profile, member)`.
    ///
    /// Profile j draws the j-th pair of 32-bit words of the ChaCha8 stream seeded by the run's seed
    /// and maps it to `floor(u x P)` (Lemire's multiply: no rejection, so every profile uses the same
    /// number of words and any range can start anywhere in the stream).
    pub fn sample(
        &self,
        range: std::ops::Range<u64>,
    ) -> impl Iterator<Item = (u64, usize)> + use<> {
        let mut rng = ChaCha8Rng::seed_from_u64(self.spec.seed);
        rng.set_word_pos(u128::from(range.start) * 2);
        let population = self.profiles.len() as u128;
        range.map(move |j| {
            (
                j,
                ((u128::from(rng.next_u64()) * population) >> 64) as usize,
            )
        })
    }

    /// The profile numbers of chunk `i`.
    ///
    /// # Errors
    /// [`RunError::NoSuchChunk`].
    pub fn chunk_profiles(&self, i: u64) -> Result<std::ops::Range<u64>, RunError> {
        self.check_chunk(i)
    }

    /// Replays chunk `i`, counting into a summary and handing each impression to `sink` as
    /// `(profile number, population member, tariff, rank, annual cost, current cost)`, money in
    /// whole pence (costs are rounded to the penny before savings are taken, so every figure of an
    /// impression adds up as printed).
    ///
    /// # Errors
    /// [`RunError::NoSuchChunk`].
    pub fn replay_chunk(
        &self,
        i: u64,
        mut sink: impl FnMut(u64, usize, u16, u16, i64, Option<i64>),
    ) -> Result<Summary, RunError> {
        let range = self.check_chunk(i)?;
        let n_tariffs = self.index.market().tariffs.len();
        let page = self.spec.page_size as usize;
        let mut eligible = vec![0u64; n_tariffs];
        let mut hist = vec![0u64; n_tariffs * page];
        let mut saving_total = vec![0i128; n_tariffs];
        let mut saving_sq = vec![0i128; n_tariffs];
        let mut saving_count = vec![0u64; n_tariffs];
        let (mut with_results, mut with_current, mut impressions) = (0u64, 0u64, 0u64);
        let mut scratch = Vec::with_capacity(64);
        // The comparison: the joint rank histogram per tariff, (page + 1)^2 cells, before-major.
        let w = page + 1;
        let mut cmp = self.base.as_ref().map(|_| CompareScratch {
            joint: vec![0u64; n_tariffs * w * w],
            rank_before: vec![0u16; n_tariffs],
            scratch: Vec::with_capacity(64),
            changed: 0,
            best: Default::default(),
        });
        for (j, member) in self.sample(range.clone()) {
            let p = &self.profiles[member];
            let key = tie_key(self.spec.seed, j);
            // A run that compares keeps a few rows more on the scenario market: the base market's
            // page is rebuilt from them (MarketIndex::replay_from_scenario).
            let extra = match &self.base {
                Some((_, _, delta)) => MarketIndex::extra_rows(delta, p),
                None => 0,
            };
            let kept = self.index.replay(p, key, page + extra, &mut scratch, |t| {
                eligible[t as usize] += 1
            });
            let shown = kept.min(page);
            with_results += u64::from(shown > 0);
            with_current += u64::from(p.current_cost.is_some());
            impressions += shown as u64;
            let current = p.current_cost.map(|c| Millipence(c).round_to_pence());
            for (r, &(cost, _, t)) in scratch[..shown].iter().enumerate() {
                hist[t as usize * page + r] += 1;
                let cost = Millipence(cost).round_to_pence();
                if let Some(current) = current {
                    let saving = current - cost;
                    saving_total[t as usize] += i128::from(saving);
                    saving_sq[t as usize] += i128::from(saving) * i128::from(saving);
                    saving_count[t as usize] += 1;
                }
                sink(j, member, t, r as u16 + 1, cost, current);
            }
            if let (Some(c), Some((base, base_profiles, delta))) = (cmp.as_mut(), &self.base) {
                let pb = &base_profiles[member];
                let shown_b = base
                    .replay_from_scenario(
                        pb,
                        (p, &scratch[..kept]),
                        key,
                        page,
                        delta,
                        &mut c.scratch,
                    )
                    .unwrap_or_else(|| base.replay(pb, key, page, &mut c.scratch, |_| {}));
                for (r, &(_, _, t)) in c.scratch[..shown_b].iter().enumerate() {
                    c.rank_before[t as usize] = r as u16 + 1;
                }
                for (r, &(_, _, t)) in scratch[..shown].iter().enumerate() {
                    let rb = std::mem::replace(&mut c.rank_before[t as usize], u16::MAX);
                    let rb = if rb == u16::MAX { 0 } else { usize::from(rb) };
                    c.joint[t as usize * w * w + rb * w + r + 1] += 1;
                }
                for &(_, _, t) in &c.scratch[..shown_b] {
                    let rb = std::mem::take(&mut c.rank_before[t as usize]);
                    if rb != u16::MAX {
                        c.joint[t as usize * w * w + usize::from(rb) * w] += 1;
                    }
                }
                for &(_, _, t) in &scratch[..shown] {
                    c.rank_before[t as usize] = 0;
                }
                let best_b = c.scratch[..shown_b].first();
                let best_a = scratch[..shown].first();
                c.changed += u64::from(best_b.map(|b| b.2) != best_a.map(|a| a.2));
                if let (Some(cb), Some(ca), Some(cur_b), Some(cur_a)) =
                    (best_b, best_a, pb.current_cost, p.current_cost)
                {
                    let pence = |m: i64| Millipence(m).round_to_pence();
                    c.best
                        .add(pence(cur_b) - pence(cb.0), pence(cur_a) - pence(ca.0));
                }
            }
        }
        let mut summary = self.empty_summary();
        summary.profiles = range.end - range.start;
        summary.profiles_with_results = with_results;
        summary.profiles_with_current_cost = with_current;
        summary.impressions = impressions;
        for (s, &t) in summary.tariffs.iter_mut().zip(&self.summary_order) {
            let t = t as usize;
            s.eligible = eligible[t];
            s.impressions = hist[t * page..(t + 1) * page].iter().sum();
            s.rank_histogram
                .copy_from_slice(&hist[t * page..(t + 1) * page]);
            s.saving_total_pence = saving_total[t];
            s.saving_sq_total_pence2 = saving_sq[t];
            s.saving_count = saving_count[t];
        }
        if let (Some(c), Some(out)) = (cmp, summary.comparison.as_mut()) {
            out.profiles = range.end - range.start;
            out.best_tariff_changed = c.changed;
            out.best_saving = c.best;
            for (tc, &t) in out.tariffs.iter_mut().zip(&self.compare_order) {
                let t = t as usize;
                tc.set_joint(&c.joint[t * w * w..(t + 1) * w * w], page);
            }
        }
        Ok(summary)
    }

    /// Computes chunk `i`: its impressions CSV (with the header when `i` is 0) and partial summary.
    ///
    /// # Errors
    /// [`RunError::NoSuchChunk`].
    pub fn chunk(&self, i: u64) -> Result<ChunkOutput, RunError> {
        let mut impressions_csv = Vec::new();
        let summary = self.chunk_into(i, &mut impressions_csv)?;
        Ok(ChunkOutput {
            index: i,
            impressions_csv,
            summary,
        })
    }

    /// Like [`Simulation::chunk`], appending the CSV to `out`, so a batch runner can reuse its
    /// buffers (memory then stays flat however many chunks a run has).
    ///
    /// # Errors
    /// [`RunError::NoSuchChunk`].
    pub fn chunk_into(&self, i: u64, out: &mut Vec<u8>) -> Result<Summary, RunError> {
        let range = self.check_chunk(i)?;
        let rows = (range.end - range.start) as usize * self.spec.page_size as usize;
        out.reserve(IMPRESSIONS_CSV_HEADER.len() + rows.min(1 << 20) * 192);
        if i == 0 {
            out.extend_from_slice(IMPRESSIONS_CSV_HEADER.as_bytes());
        }
        let mut int = itoa::Buffer::new();
        self.replay_chunk(i, |j, member, t, rank, cost, current| {
            let m = &self.csv.members[member];
            out.extend_from_slice(int.format(j).as_bytes());
            out.extend_from_slice(&m.prefix);
            out.extend_from_slice(int.format(rank).as_bytes());
            out.push(b',');
            out.extend_from_slice(&self.csv.tariffs[t as usize][m.fuel]);
            push_gbp(out, &mut int, Some(cost));
            out.push(b',');
            push_gbp(out, &mut int, current);
            out.push(b',');
            push_gbp(out, &mut int, current.map(|c| c - cost));
            out.extend_from_slice(&m.suffix);
        })
    }
}

/// The comparison's per-chunk working state.
struct CompareScratch {
    joint: Vec<u64>,
    rank_before: Vec<u16>,
    scratch: Vec<(i64, u64, u16)>,
    changed: u64,
    best: crate::compare::PairedSums,
}

/// The parts of an impressions row that depend only on the visit or only on the tariff, escaped
/// once by the csv crate when the run is prepared, so a row is a few copies and number formats.
#[derive(Debug, Clone, Default)]
struct CsvParts {
    /// Per population member.
    members: Vec<MemberParts>,
    /// Per tariff and fuel choice (the exit fee depends on the fuels bought):
    /// `tariff_id,supplier,hypothetical,kind,green,switchable,exit_fee_gbp,`.
    tariffs: Vec<[Box<[u8]>; 3]>,
}

#[derive(Debug, Clone)]
struct MemberParts {
    /// `,visit_id,visit_date,`
    prefix: Box<[u8]>,
    /// `,switch_cost_gbp,region,fuel,meter,payment_method,fixed_only,green_only,no_exit_fees,switchable_only,filters_set,format_version\n`
    suffix: Box<[u8]>,
    /// The visitor's fuel choice, as an index into [`CsvParts::tariffs`].
    fuel: usize,
}

fn csv_bool(b: bool) -> &'static str {
    if b { "TRUE" } else { "FALSE" }
}

impl CsvParts {
    fn new(index: &MarketIndex, population: &[Visit], profiles: &[CompiledProfile]) -> CsvParts {
        let members = population
            .iter()
            .zip(profiles)
            .map(|(v, p)| {
                let f = &v.filters;
                let switch_cost = p
                    .current_cost
                    .map(|_| Millipence(p.switch_cost).gbp().to_string());
                MemberParts {
                    prefix: [
                        &b","[..],
                        &csv_field(&v.visit_id),
                        b",",
                        v.timestamp.date().to_string().as_bytes(),
                        b",",
                    ]
                    .concat()
                    .into(),
                    suffix: format!(
                        ",{},{},{},{},{},{},{},{},{},{},{}\n",
                        switch_cost.as_deref().unwrap_or("NA"),
                        v.region,
                        v.fuel,
                        v.pricing_meter(),
                        v.payment_method,
                        csv_bool(f.fixed_only),
                        csv_bool(f.green_only),
                        csv_bool(f.no_exit_fees),
                        csv_bool(f.switchable_only),
                        csv_bool(
                            f.fixed_only || f.green_only || f.no_exit_fees || f.switchable_only
                        ),
                        IMPRESSIONS_FORMAT_VERSION,
                    )
                    .into_bytes()
                    .into(),
                    fuel: v.fuel.index(),
                }
            })
            .collect();
        let tariffs = index
            .market()
            .tariffs
            .iter()
            .map(|t| {
                [Fuel::Electricity, Fuel::Gas, Fuel::DualFuel].map(|fuel| {
                    [
                        &csv_field(&t.id)[..],
                        b",",
                        &csv_field(&t.supplier),
                        format!(
                            ",{},{},{},{},{},",
                            csv_bool(t.hypothetical),
                            t.kind.as_str(),
                            csv_bool(t.green),
                            csv_bool(t.switchable),
                            t.exit_fee(fuel).gbp(),
                        )
                        .as_bytes(),
                    ]
                    .concat()
                    .into_boxed_slice()
                })
            })
            .collect();
        CsvParts { members, tariffs }
    }
}

/// One CSV field, quoted and escaped as the csv crate writes it.
fn csv_field(s: &str) -> Vec<u8> {
    let mut w = csv::WriterBuilder::new()
        .terminator(csv::Terminator::Any(b'\n'))
        .from_writer(Vec::new());
    w.write_record([s]).expect("writing to memory");
    let mut v = w.into_inner().expect("writing to memory");
    v.pop();
    v
}

/// Whole pence as pounds with two decimals (`1234.56`, `-0.05`), or `NA`; the same text as
/// [`Gbp`](crate::money::Gbp)'s `Display`.
fn push_gbp(out: &mut Vec<u8>, int: &mut itoa::Buffer, pence: Option<i64>) {
    let Some(p) = pence else {
        out.extend_from_slice(b"NA");
        return;
    };
    if p < 0 {
        out.push(b'-');
    }
    let a = p.unsigned_abs();
    out.extend_from_slice(int.format(a / 100).as_bytes());
    let c = (a % 100) as u8;
    out.extend_from_slice(&[b'.', b'0' + c / 10, b'0' + c % 10]);
}

/// A population in its canonical order, the order runs draw members from: by visit id, then (for
/// repeated ids) by the whole visit as JSON. Sorting is adaptive, so a population stored in this
/// order (as the pipeline stores its filtered visits) is checked in one pass.
pub fn canonical_order(mut population: Vec<Visit>) -> Vec<Visit> {
    let whole = |v: &Visit| serde_json::to_string(v).expect("a visit serializes");
    population.sort_by(|a, b| {
        a.visit_id
            .cmp(&b.visit_id)
            .then_with(|| whole(a).cmp(&whole(b)))
    });
    population
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::money::Gbp;

    #[test]
    fn money_text_matches_display() {
        let mut int = itoa::Buffer::new();
        for p in [0i64, 5, -5, 99, 100, -100, 123_456, -4, 100_000_007] {
            let mut out = Vec::new();
            push_gbp(&mut out, &mut int, Some(p));
            assert_eq!(String::from_utf8(out).unwrap(), Gbp(p).to_string());
        }
    }

    #[test]
    fn fields_are_escaped_by_the_csv_rules() {
        assert_eq!(csv_field("plain"), b"plain");
        assert_eq!(csv_field("E.ON, Next"), b"\"E.ON, Next\"");
        assert_eq!(csv_field("say \"hi\""), b"\"say \"\"hi\"\"\"");
    }
}
