//! The market with and without the scenario, side by side: every profile of a run is replayed on
//! the base market and on the scenario market (common random numbers: the same profiles, the same
//! tie keys), so differences are paired per profile and far tighter than two independent runs.
//!
//! Everything kept is an integer count or sum, so partial comparisons of a run's chunks merge
//! exactly in any order ([`Comparison::merge`]); shares, means, differences and their standard
//! errors ([`crate::stats`]) are derived when written ([`Comparison::finish`]).
//!
//! Per tariff the comparison keeps the joint rank histogram: how many profiles saw it at rank `b`
//! before and rank `a` after (0 = not on page 1). Impressions, rank-1 counts and clicks before
//! and after, and the paired differences with their variances, are all functions of it.

use crate::error::RunError;
use crate::stats::Estimate;
use serde::{Deserialize, Serialize};

/// Largest page size a comparison accepts (the joint histogram has `(page + 1)^2` cells).
pub const MAX_COMPARE_PAGE_SIZE: u16 = 100;

/// Paired per-profile sums of a money figure before and after, whole pence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct PairedSums {
    /// Profiles with the figure known both before and after.
    pub n: u64,
    /// Sum before, pence (wide: many profiles' large bills would overflow 64 bits).
    #[serde(with = "crate::stats::wide")]
    pub before: i128,
    /// Sum after, pence.
    #[serde(with = "crate::stats::wide")]
    pub after: i128,
    /// Sum of squares before, pence squared.
    #[serde(with = "crate::stats::wide")]
    pub before_sq: i128,
    /// Sum of squares after, pence squared.
    #[serde(with = "crate::stats::wide")]
    pub after_sq: i128,
    /// Sum of squares of (after - before), pence squared.
    #[serde(with = "crate::stats::wide")]
    pub diff_sq: i128,
}

impl PairedSums {
    /// Adds one profile's figures.
    pub fn add(&mut self, before: i64, after: i64) {
        self.n += 1;
        self.before += i128::from(before);
        self.after += i128::from(after);
        self.before_sq += i128::from(before) * i128::from(before);
        self.after_sq += i128::from(after) * i128::from(after);
        let d = i128::from(after) - i128::from(before);
        self.diff_sq += d * d;
    }

    fn merge(&mut self, o: &PairedSums) {
        self.n += o.n;
        self.before += o.before;
        self.after += o.after;
        self.before_sq += o.before_sq;
        self.after_sq += o.after_sq;
        self.diff_sq += o.diff_sq;
    }

    /// Means before, after and of the paired difference, in pounds (standard errors times
    /// `sqrt(inflation)`: [`crate::stats::inflation`]).
    fn change(&self, inflation: f64) -> Change {
        let gbp = |e: Estimate| e.divided(100.0);
        Change {
            before: gbp(Estimate::mean(
                self.n,
                self.before as f64,
                self.before_sq as f64,
                inflation,
            )),
            after: gbp(Estimate::mean(
                self.n,
                self.after as f64,
                self.after_sq as f64,
                inflation,
            )),
            difference: gbp(Estimate::mean(
                self.n,
                (self.after - self.before) as f64,
                self.diff_sq as f64,
                inflation,
            )),
        }
    }
}

impl Change {
    /// A tariff's figure before and after, and the difference: on a market where the tariff is not
    /// on sale (`on_sale`: before, after) it is the other side's figure, exactly as that side's (an
    /// interval below 0 would be a loss that cannot be; negated for a tariff withdrawn), else the
    /// `paired` difference.
    fn of(
        before: Estimate,
        after: Estimate,
        on_sale: (bool, bool),
        paired: impl FnOnce() -> Estimate,
    ) -> Change {
        let difference = match on_sale {
            (false, true) => after,
            (true, false) => Estimate {
                value: -before.value,
                se: before.se,
                ci95: before.ci95.map(|[low, high]| [-high, -low]),
            },
            _ => paired(),
        };
        Change {
            before,
            after,
            difference,
        }
    }
}

/// A figure before the scenario, after it, and the paired difference (after - before).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct Change {
    /// On the base market.
    pub before: Estimate,
    /// On the scenario market.
    pub after: Estimate,
    /// After - before, per profile, then averaged (its interval is the paired one).
    pub difference: Estimate,
}

/// One tariff before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct TariffComparison {
    /// Tariff id.
    pub id: String,
    /// Supplier.
    pub supplier: String,
    /// Added by the scenario.
    pub hypothetical: bool,
    /// On sale on the base market.
    pub on_sale_before: bool,
    /// On sale on the scenario market.
    pub on_sale_after: bool,
    /// Joint rank histogram: `[rank before, rank after, profiles]`, 0 = not on page 1, only the
    /// cells with profiles, sorted.
    pub joint_ranks: Vec<[u64; 3]>,
    /// Derived: impressions before and after.
    #[serde(default)]
    pub impressions_before: u64,
    /// Derived.
    #[serde(default)]
    pub impressions_after: u64,
    /// Derived: after - before.
    #[serde(default)]
    pub impressions_difference: i64,
    /// Derived: share of profiles that saw it on page 1.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub page1_share: Option<Change>,
    /// Derived: share of profiles that saw it first.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub rank1_share: Option<Change>,
    /// Derived: expected clicks over the run (totals: per-profile means times the profiles).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub expected_clicks: Option<Change>,
}

/// The run before and after.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Comparison {
    /// Results per table.
    pub page_size: u16,
    /// Profiles replayed (each on both markets).
    pub profiles: u64,
    /// Visits the profiles were drawn from, as in the summary ([`crate::stats::inflation`]).
    #[serde(default)]
    pub population: u64,
    /// Profiles whose first result (the best available tariff) differs after the scenario,
    /// including gaining or losing every result.
    pub best_tariff_changed: u64,
    /// The best available saving (current cost - the cheapest result, pence) of the profiles with
    /// a current cost and a result on both markets.
    pub best_saving: PairedSums,
    /// Every tariff on sale before or after, sorted by id.
    pub tariffs: Vec<TariffComparison>,
    /// Derived: share of profiles whose best tariff changed.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub best_tariff_changed_share: Option<Estimate>,
    /// Derived: mean best available saving before, after and the paired difference, GBP.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mean_best_saving_gbp: Option<Change>,
}

impl TariffComparison {
    /// A tariff with no profiles yet.
    pub fn empty(id: &str, supplier: &str, hypothetical: bool, before: bool, after: bool) -> Self {
        TariffComparison {
            id: id.to_string(),
            supplier: supplier.to_string(),
            hypothetical,
            on_sale_before: before,
            on_sale_after: after,
            joint_ranks: Vec::new(),
            impressions_before: 0,
            impressions_after: 0,
            impressions_difference: 0,
            page1_share: None,
            rank1_share: None,
            expected_clicks: None,
        }
    }

    /// Sets the joint histogram from a dense `(page + 1) x (page + 1)` table, before-major.
    pub fn set_joint(&mut self, dense: &[u64], page: usize) {
        let w = page as u64 + 1;
        self.joint_ranks = dense
            .iter()
            .enumerate()
            .filter(|&(_, &n)| n > 0)
            .map(|(i, &n)| [i as u64 / w, i as u64 % w, n])
            .collect();
    }

    fn merge(&mut self, o: &TariffComparison) {
        let mut all = std::mem::take(&mut self.joint_ranks);
        all.extend_from_slice(&o.joint_ranks);
        all.sort_unstable();
        let mut out: Vec<[u64; 3]> = Vec::with_capacity(all.len());
        for c in all {
            match out.last_mut() {
                Some(last) if last[0] == c[0] && last[1] == c[1] => last[2] += c[2],
                _ => out.push(c),
            }
        }
        self.joint_ranks = out;
    }

    fn finish(&mut self, profiles: u64, inflation: f64, ctr: &[f64]) {
        let ctr_at = |r: u64| {
            if r == 0 {
                0.0
            } else {
                ctr.get(r as usize - 1).copied().unwrap_or(0.0)
            }
        };
        let (mut before, mut after, mut both) = (0u64, 0u64, 0u64);
        let (mut r1b, mut r1a, mut r1both) = (0u64, 0u64, 0u64);
        let (mut cb, mut cb2, mut ca, mut ca2, mut cd2) = (0.0, 0.0, 0.0, 0.0, 0.0);
        // The profiles whose click-through rate went up, and down, and by how much in all; the
        // largest rate the tariff was seen at, before or after (the largest change of one
        // profile's rate: from off page 1 to there).
        let (mut up, mut down, mut bound) = ((0u64, 0.0), (0u64, 0.0), 0.0f64);
        for &[b, a, n] in &self.joint_ranks {
            let nf = n as f64;
            before += if b > 0 { n } else { 0 };
            after += if a > 0 { n } else { 0 };
            both += if a > 0 && b > 0 { n } else { 0 };
            r1b += if b == 1 { n } else { 0 };
            r1a += if a == 1 { n } else { 0 };
            r1both += if a == 1 && b == 1 { n } else { 0 };
            let (xb, xa) = (ctr_at(b), ctr_at(a));
            cb += nf * xb;
            cb2 += nf * xb * xb;
            ca += nf * xa;
            ca2 += nf * xa * xa;
            cd2 += nf * (xa - xb) * (xa - xb);
            if xa > xb {
                up = (up.0 + n, up.1 + nf * (xa - xb));
            } else if xa < xb {
                down = (down.0 + n, down.1 + nf * (xb - xa));
            }
            if n > 0 {
                bound = bound.max(xa.max(xb));
            }
        }
        self.impressions_before = before;
        self.impressions_after = after;
        self.impressions_difference = after as i64 - before as i64;
        // An indicator's difference is -1, 0 or 1: its square is 1 where exactly one side shows.
        // On a market where the tariff is not on sale, its share is 0 exactly, not an estimate
        // with an interval above 0.
        let (on_before, on_after) = (self.on_sale_before, self.on_sale_after);
        let share = |k: u64, on_sale: bool| {
            if on_sale {
                Estimate::share(k, profiles, inflation)
            } else {
                Estimate::exact(0.0)
            }
        };
        let share_change = |b: u64, a: u64, both: u64| {
            let (before, after) = (share(b, on_before), share(a, on_after));
            let paired = || Estimate::share_difference(a - both, b - both, profiles, inflation);
            Change::of(before, after, (on_before, on_after), paired)
        };
        self.page1_share = Some(share_change(before, after, both));
        self.rank1_share = Some(share_change(r1b, r1a, r1both));
        // Clicks come only from profiles that saw the tariff on page 1 (Estimate::mean_of); their
        // difference only from profiles whose rank changed it (Estimate::paired_total).
        self.expected_clicks = Some(Change::of(
            Estimate::total(profiles, cb, cb2, inflation, before).non_negative(),
            Estimate::total(profiles, ca, ca2, inflation, after).non_negative(),
            (on_before, on_after),
            || Estimate::paired_total(profiles, ca - cb, cd2, inflation, up, down, bound),
        ));
    }
}

impl Comparison {
    /// An empty comparison of these tariffs, already sorted by id, of profiles drawn from
    /// `population` visits.
    pub fn empty(page_size: u16, population: u64, tariffs: Vec<TariffComparison>) -> Comparison {
        Comparison {
            page_size,
            profiles: 0,
            population,
            best_tariff_changed: 0,
            best_saving: PairedSums::default(),
            tariffs,
            best_tariff_changed_share: None,
            mean_best_saving_gbp: None,
        }
    }

    /// Adds another partial comparison of the same run.
    ///
    /// # Errors
    /// [`RunError::SummaryMismatch`] when the page size or the tariffs differ.
    pub fn merge(&mut self, o: &Comparison) -> Result<(), RunError> {
        let populations_differ =
            self.population != o.population && self.population != 0 && o.population != 0;
        if self.page_size != o.page_size
            || populations_differ
            || self.tariffs.len() != o.tariffs.len()
        {
            return Err(RunError::SummaryMismatch {
                problem: "comparisons of different runs: merge chunks of one run only".into(),
            });
        }
        // As the summary's: 0 (not recorded) takes the other's.
        self.population = self.population.max(o.population);
        self.profiles += o.profiles;
        self.best_tariff_changed += o.best_tariff_changed;
        self.best_saving.merge(&o.best_saving);
        for (a, b) in self.tariffs.iter_mut().zip(&o.tariffs) {
            if a.id != b.id {
                return Err(RunError::SummaryMismatch {
                    problem: format!("tariff {:?} against {:?}", a.id, b.id),
                });
            }
            a.merge(b);
        }
        Ok(())
    }

    /// The header of comparison.csv: one row per tariff, every figure before, after and the
    /// paired difference, each with its standard error and 95% interval.
    pub const CSV_HEADER: &'static str = "tariff_id,supplier,hypothetical,on_sale_before,on_sale_after,impressions_before,impressions_after,impressions_difference,page1_share_before,page1_share_before_se,page1_share_before_lo,page1_share_before_hi,page1_share_after,page1_share_after_se,page1_share_after_lo,page1_share_after_hi,page1_share_difference,page1_share_difference_se,page1_share_difference_lo,page1_share_difference_hi,rank1_share_before,rank1_share_before_se,rank1_share_before_lo,rank1_share_before_hi,rank1_share_after,rank1_share_after_se,rank1_share_after_lo,rank1_share_after_hi,rank1_share_difference,rank1_share_difference_se,rank1_share_difference_lo,rank1_share_difference_hi,expected_clicks_before,expected_clicks_before_se,expected_clicks_before_lo,expected_clicks_before_hi,expected_clicks_after,expected_clicks_after_se,expected_clicks_after_lo,expected_clicks_after_hi,expected_clicks_difference,expected_clicks_difference_se,expected_clicks_difference_lo,expected_clicks_difference_hi\n";

    /// comparison.csv ([`Comparison::CSV_HEADER`]), derived fields computed with `ctr`: what R
    /// reads with `read.csv` as is.
    pub fn to_csv(&self, ctr: &[f64]) -> String {
        let mut c = self.clone();
        c.finish(ctr);
        let mut w = csv::WriterBuilder::new()
            .terminator(csv::Terminator::Any(b'\n'))
            .has_headers(false)
            .from_writer(Vec::new());
        let b = |x: bool| if x { "TRUE" } else { "FALSE" }.to_string();
        for t in &c.tariffs {
            let mut row = vec![
                t.id.clone(),
                t.supplier.clone(),
                b(t.hypothetical),
                b(t.on_sale_before),
                b(t.on_sale_after),
                t.impressions_before.to_string(),
                t.impressions_after.to_string(),
                t.impressions_difference.to_string(),
            ];
            for change in [t.page1_share, t.rank1_share, t.expected_clicks]
                .into_iter()
                .flatten()
            {
                for e in [change.before, change.after, change.difference] {
                    // R's missing value where there is no standard error (a mean of one profile).
                    let [low, high] = e.ci95.map_or([None, None], |[l, h]| [Some(l), Some(h)]);
                    row.extend([Some(e.value), e.se, low, high].map(|x| {
                        x.map_or_else(
                            || "NA".to_string(),
                            |x| format!("{}", (x * 1e9).round() / 1e9),
                        )
                    }));
                }
            }
            w.write_record(&row).expect("writing to memory");
        }
        let body = w.into_inner().expect("writing to memory");
        let mut out = Self::CSV_HEADER.to_string();
        out.push_str(&String::from_utf8(body).expect("CSV of UTF-8 text"));
        out
    }

    /// Drops the derived fields (a partial comparison carries counts only).
    pub fn clear_derived(&mut self) {
        self.best_tariff_changed_share = None;
        self.mean_best_saving_gbp = None;
        for t in &mut self.tariffs {
            t.impressions_before = 0;
            t.impressions_after = 0;
            t.impressions_difference = 0;
            t.page1_share = None;
            t.rank1_share = None;
            t.expected_clicks = None;
        }
    }

    /// Computes the derived fields from the counts.
    pub fn finish(&mut self, ctr: &[f64]) {
        let n = self.profiles;
        let k = crate::stats::inflation(n, self.population);
        for t in &mut self.tariffs {
            t.finish(n, k, ctr);
        }
        self.best_tariff_changed_share = Some(Estimate::share(self.best_tariff_changed, n, k));
        // No mean of no values: absent when no profile had a current cost and a result on both.
        self.mean_best_saving_gbp = (self.best_saving.n > 0).then(|| self.best_saving.change(k));
    }
}
