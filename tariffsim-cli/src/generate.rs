//! `gen-market` and `gen-visits`: synthetic sample data built from published GB figures.
//!
//! The market starts from Ofgem's regional price cap (direct debit, incl. VAT) and derives the other
//! payment methods, Economy 7 rates and fixed tariffs from it; the visits follow DESNZ consumption
//! statistics. The domain tables are embedded from `data/domain/` at build time, so a seed alone
//! fixes the output. `docs/data.md` explains every derivation.

use anyhow::{Context, Result, anyhow, bail, ensure};
use chrono::{Months, NaiveDate, NaiveDateTime, TimeDelta};
use rand::distr::weighted::WeightedIndex;
use rand::seq::SliceRandom;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, LogNormal, Normal};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use std::path::{Path, PathBuf};
use tariffsim::market::{Economy7Rates, ElectricityRates, ExitFees, SingleRate};
use tariffsim::money::Millipence;
use tariffsim::scenario::Selection;
use tariffsim::visit::{VisitorFilters, write_visits_csv};
use tariffsim::{
    Change, Fuel, Market, Meter, PaymentMethod, RateCard, Region, Scenario, Tariff, TariffKind,
    Visit,
};

/// Generate a synthetic GB market from the published price cap (deterministic from `--seed`).
///
/// Every supplier gets a standard variable tariff at the cap in force at `--as-of` in all 14
/// regions and for the payment methods it sells, plus 1 to 5 fixed tariffs priced within about 10%
/// of that cap; a few closed fixes (not on sale, ending within the year) are added for visitors to
/// be on, priced on the cap of the quarter they were sold in. The only regional table is Jul-Sep
/// 2026's: other quarters are that table times the GB-average cap then / in Jul-Sep 2026.
#[derive(clap::Args, Debug, Clone)]
pub struct GenMarketArgs {
    /// Seed of the generator: the same seed gives the same file, byte for byte.
    #[arg(long, value_parser = crate::args::any_u64, allow_negative_numbers = true)]
    pub seed: u64,
    /// Where to write the market JSON.
    #[arg(long)]
    pub out: PathBuf,
    /// Market date (YYYY-MM-DD), 2024-12-01 to 2026-09-30 (the GB price-cap table covers Jan 2024
    /// to Sep 2026 and closed fixes were sold up to 11 months before): tariffs on sale are priced
    /// on the cap in force then, and fixes on sale end their term after it.
    #[arg(long, default_value = "2026-07-01", value_parser = crate::args::date)]
    pub as_of: NaiveDate,
    /// Number of suppliers, 1 to 18, taken largest first from the built-in list of GB suppliers.
    #[arg(long, default_value_t = 18, value_parser = crate::args::count, allow_negative_numbers = true)]
    pub suppliers: usize,
    /// Total number of tariffs: one variable tariff per supplier, about one closed fix per 20
    /// tariffs, and fixes on sale for the rest (1 to 5 per supplier).
    #[arg(long, default_value_t = 60, value_parser = crate::args::count, allow_negative_numbers = true)]
    pub tariffs: usize,
    /// Also write a sample scenario for this market here: a new supplier's 12-month fix 4% under
    /// the cap on direct debit, one small supplier gone, one variable tariff 2% cheaper.
    #[arg(long)]
    pub scenario_out: Option<PathBuf>,
}

/// Generate synthetic site visits for a market as a visits CSV (deterministic from `--seed`).
///
/// Regions, fuels, meters, payment methods and consumption follow DESNZ 2021 statistics; current
/// suppliers follow 2025 market shares; current tariffs and filters are drawn from the market.
#[derive(clap::Args, Debug, Clone)]
pub struct GenVisitsArgs {
    /// The market JSON the visitors' current tariffs are drawn from.
    #[arg(long)]
    pub market: PathBuf,
    /// Seed of the generator: the same seed and market give the same file, byte for byte.
    #[arg(long, value_parser = crate::args::any_u64, allow_negative_numbers = true)]
    pub seed: u64,
    /// Number of visits to write, 1 to 10,000,000 (about 1.3 GB of CSV; the visits are drawn and
    /// sorted in memory, about 2 GB at the most).
    #[arg(long, default_value_t = 20_000, value_parser = crate::args::visit_rows, allow_negative_numbers = true)]
    pub rows: usize,
    /// Where to write the visits CSV.
    #[arg(long)]
    pub out: PathBuf,
    /// First day of visits (YYYY-MM-DD, UTC). Default: the market's `as_of`.
    #[arg(long, value_parser = crate::args::date)]
    pub from: Option<NaiveDate>,
    /// Last day of visits, inclusive (YYYY-MM-DD, UTC). Default: the day before three months after
    /// `--from` (a quarter: 2026-07-01 gives 2026-09-30).
    #[arg(long, value_parser = crate::args::date)]
    pub to: Option<NaiveDate>,
}

/// The days `gen-visits` draws visits from: the flags, else the quarter from the market's date.
/// A visit's date decides what a visitor on a fix pays (the days left of it, its exit fee), so
/// the visits of a market dated otherwise than the sample's are dated with it.
///
/// # Errors
/// `[InvalidArgument]` when the quarter after `--from` cannot be reckoned (beyond year 262,143).
fn visit_days(
    as_of: NaiveDate,
    from: Option<NaiveDate>,
    to: Option<NaiveDate>,
) -> Result<(NaiveDate, NaiveDate)> {
    let from = from.unwrap_or(as_of);
    let to = match to {
        Some(to) => to,
        None => from
            .checked_add_months(chrono::Months::new(3))
            .and_then(|d| d.pred_opt())
            .ok_or_else(|| anyhow!("[InvalidArgument] --from {from}: give --to as well"))?,
    };
    Ok((from, to))
}

/// Runs `gen-market`: builds the market, checks it validates, writes it as pretty JSON.
///
/// # Errors
/// Arguments out of range, or a file that cannot be written.
pub fn gen_market(args: &GenMarketArgs) -> Result<()> {
    if let Some(scenario) = &args.scenario_out {
        crate::output::distinct(&[("--out", &args.out), ("--scenario-out", scenario)])?;
    }
    let market = build_market(args.seed, args.as_of, args.suppliers, args.tariffs)?;
    market
        .validate()
        .map_err(crate::inputs::coded)
        .context("[Internal] the generated market does not validate")?;
    let scenario = match &args.scenario_out {
        Some(path) => {
            let scenario = sample_scenario(&market)?;
            market
                .apply(&scenario)
                .map_err(crate::inputs::coded)
                .context("[Internal] the sample scenario does not fit the generated market")?;
            Some((path, scenario))
        }
        None => None,
    };
    // Both files are complete before either takes its name.
    let mut done = vec![write_json(&args.out, &market)?];
    if let Some((path, scenario)) = &scenario {
        done.push(write_json(path, scenario)?);
    }
    crate::output::commit_all(done)?;
    let suppliers = supplier_names(&market).len();
    eprintln!(
        "gen-market: wrote {} tariffs from {suppliers} suppliers to {}",
        market.tariffs.len(),
        args.out.display()
    );
    if let Some((path, scenario)) = &scenario {
        eprintln!(
            "gen-market: wrote a scenario of {} changes to {}",
            scenario.changes.len(),
            path.display()
        );
    }
    Ok(())
}

/// Runs `gen-visits`: reads the market, draws the visits, writes the CSV.
///
/// # Errors
/// An unreadable or invalid market, a bad date range, or a file that cannot be written.
pub fn gen_visits(args: &GenVisitsArgs) -> Result<()> {
    let market = crate::inputs::load_market(&args.market)?;
    let (from, to) = visit_days(market.as_of, args.from, args.to)?;
    visit_args(args.rows, from, to)?;
    fits_visits(&market).map_err(|e| anyhow!("{}: {e}", args.market.display()))?;
    let visits = build_visits(&market, args.seed, args.rows, from, to)?;
    let mut out = crate::output::Output::create(&args.out)?;
    write_visits_csv(&mut out, &visits)
        .with_context(|| format!("[WriteFailed] cannot write {}", args.out.display()))?;
    out.finish()?.commit()?;
    eprintln!(
        "gen-visits: wrote {} rows to {}",
        visits.len(),
        args.out.display()
    );
    Ok(())
}

/// Writes `value` as pretty JSON to a file still under its temporary name ([`crate::output`]).
fn write_json<T: serde::Serialize>(path: &Path, value: &T) -> Result<crate::output::Finished> {
    let mut json = serde_json::to_string_pretty(value)
        .with_context(|| format!("[Internal] cannot serialize {}", path.display()))?;
    json.push('\n');
    let mut out = crate::output::Output::create(path)?;
    out.write(json.as_bytes())?;
    out.finish()
}

// ---------------------------------------------------------------------------------------------
// Published figures, embedded.

const REGIONAL_CAP_CSV: &str = include_str!("../../data/domain/regional_cap_2026q3.csv");
const PAYMENT_METHODS_CSV: &str = include_str!("../../data/domain/payment_methods.csv");
const GB_PRICE_CAP_CSV: &str = include_str!("../../data/domain/gb_price_cap.csv");
const DESNZ_CSV: &str = include_str!("../../data/domain/desnz_consumption_2021.csv");

/// The first day of the quarter `regional_cap_2026q3.csv` is for: other quarters' regional caps
/// are it times the GB-average cap of that quarter / of this one.
const REGIONAL_CAP_QUARTER: NaiveDate = match NaiveDate::from_ymd_opt(2026, 7, 1) {
    Some(d) => d,
    None => panic!("REGIONAL_CAP_QUARTER is not a date"),
};

/// Closed fixes were sold this many months before the market date, at the least and at the most.
const CLOSED_SOLD_MONTHS_AGO: (u32, u32) = (2, 11);

/// Economy 7: share of consumption on the night register (Ofgem's GB average).
pub const E7_NIGHT_SHARE: f64 = 0.42;
/// Economy 7: night unit rate as a fraction of the single unit rate.
pub const E7_NIGHT_TO_SINGLE: f64 = 0.6;

fn read_csv<T: DeserializeOwned>(name: &str, text: &str) -> Result<Vec<T>> {
    csv::Reader::from_reader(text.as_bytes())
        .deserialize()
        .collect::<Result<Vec<T>, _>>()
        .with_context(|| format!("parsing the embedded data/domain/{name}"))
}

/// Four VAT-inclusive cap figures in pence, as published.
#[derive(Debug, Clone, Copy, PartialEq, Deserialize)]
struct CapRates {
    elec_unit_p_per_kwh: f64,
    elec_standing_p_per_day: f64,
    gas_unit_p_per_kwh: f64,
    gas_standing_p_per_day: f64,
}

impl CapRates {
    fn zip(self, o: CapRates, f: impl Fn(f64, f64) -> f64) -> CapRates {
        CapRates {
            elec_unit_p_per_kwh: f(self.elec_unit_p_per_kwh, o.elec_unit_p_per_kwh),
            elec_standing_p_per_day: f(self.elec_standing_p_per_day, o.elec_standing_p_per_day),
            gas_unit_p_per_kwh: f(self.gas_unit_p_per_kwh, o.gas_unit_p_per_kwh),
            gas_standing_p_per_day: f(self.gas_standing_p_per_day, o.gas_standing_p_per_day),
        }
    }

    fn map(self, f: impl Fn(f64) -> f64) -> CapRates {
        self.zip(self, |a, _| f(a))
    }

    fn check(self, what: &str) -> Result<CapRates> {
        let all = [
            self.elec_unit_p_per_kwh,
            self.elec_standing_p_per_day,
            self.gas_unit_p_per_kwh,
            self.gas_standing_p_per_day,
        ];
        ensure!(
            all.iter()
                .all(|x| x.is_finite() && *x > 0.0 && *x < 1_000.0),
            "{what}: rates must be positive numbers of pence"
        );
        Ok(self)
    }
}

#[derive(Debug, Deserialize)]
struct RegionalCapRow {
    gsp_letter: String,
    elec_unit_p_per_kwh: f64,
    elec_standing_p_per_day: f64,
    gas_unit_p_per_kwh: f64,
    gas_standing_p_per_day: f64,
}

#[derive(Debug, Clone, Deserialize)]
struct PaymentMethodRow {
    period_start: String,
    payment_method: PaymentMethod,
    elec_unit_p_per_kwh: f64,
    elec_standing_p_per_day: f64,
    gas_unit_p_per_kwh: f64,
    gas_standing_p_per_day: f64,
}

#[derive(Debug, Clone, Deserialize)]
struct GbCapRow {
    period_start: NaiveDate,
    period_end: NaiveDate,
    elec_unit_p_per_kwh: f64,
    elec_standing_p_per_day: f64,
    gas_unit_p_per_kwh: f64,
    gas_standing_p_per_day: f64,
}

impl GbCapRow {
    fn rates(&self) -> CapRates {
        CapRates {
            elec_unit_p_per_kwh: self.elec_unit_p_per_kwh,
            elec_standing_p_per_day: self.elec_standing_p_per_day,
            gas_unit_p_per_kwh: self.gas_unit_p_per_kwh,
            gas_standing_p_per_day: self.gas_standing_p_per_day,
        }
    }
}

#[derive(Debug, Clone, Deserialize)]
struct DesnzRow {
    region: String,
    elec_dom_std_meters_k: f64,
    elec_dom_e7_meters_k: f64,
    elec_std_median_kwh: f64,
    elec_e7_median_kwh: f64,
    gas_dom_meters_k: f64,
    gas_dom_median_kwh: f64,
}

/// The price cap by region and payment method, pence, rounded to 2 decimals as published.
#[derive(Debug, Clone)]
struct Cap {
    /// The cap in force at the market date: `rates[region.index()][payment_method.index()]`.
    rates: Vec<[CapRates; 3]>,
    /// The published regional direct-debit cap of [`REGIONAL_CAP_QUARTER`], by `region.index()`.
    table: Vec<CapRates>,
    /// Each payment method's rates to direct debit's at the market date, by `payment_method.index()`.
    ratios: [CapRates; 3],
    /// The published cap levels by payment method and period (`payment_methods.csv`).
    methods: Vec<PaymentMethodRow>,
    /// GB-average cap by quarter, oldest first and without gaps: it carries the regional table to
    /// other quarters.
    history: Vec<GbCapRow>,
}

fn round2(x: f64) -> f64 {
    (x * 100.0).round() / 100.0
}

/// `Jul-Sep 2026`: a cap period as a reader names it.
fn period_label(row: &GbCapRow) -> String {
    format!(
        "{}-{}",
        row.period_start.format("%b"),
        row.period_end.format("%b %Y")
    )
}

impl Cap {
    /// The published cap, in force in [`REGIONAL_CAP_QUARTER`]: regional direct-debit rates, other
    /// payment methods by the published ratios to direct debit.
    fn published() -> Result<Cap> {
        let regional: Vec<RegionalCapRow> = read_csv("regional_cap_2026q3.csv", REGIONAL_CAP_CSV)?;
        let methods: Vec<PaymentMethodRow> = read_csv("payment_methods.csv", PAYMENT_METHODS_CSV)?;
        let history: Vec<GbCapRow> = read_csv("gb_price_cap.csv", GB_PRICE_CAP_CSV)?;
        ensure!(
            !history.is_empty()
                && history.iter().all(|r| r.period_start <= r.period_end)
                && history
                    .windows(2)
                    .all(|w| w[0].period_end.succ_opt() == Some(w[1].period_start)),
            "the embedded data/domain/gb_price_cap.csv must list quarters oldest first, without gaps"
        );
        let mut table = Vec::with_capacity(Region::COUNT);
        for region in Region::all() {
            let row = regional
                .iter()
                .find(|r| r.gsp_letter.trim() == region.letter().to_string())
                .ok_or_else(|| anyhow!("regional_cap_2026q3.csv has no row for {region}"))?;
            table.push(
                CapRates {
                    elec_unit_p_per_kwh: row.elec_unit_p_per_kwh,
                    elec_standing_p_per_day: row.elec_standing_p_per_day,
                    gas_unit_p_per_kwh: row.gas_unit_p_per_kwh,
                    gas_standing_p_per_day: row.gas_standing_p_per_day,
                }
                .check("regional_cap_2026q3.csv")?,
            );
        }
        Cap {
            rates: Vec::new(),
            table,
            ratios: [CapRates {
                elec_unit_p_per_kwh: 1.0,
                elec_standing_p_per_day: 1.0,
                gas_unit_p_per_kwh: 1.0,
                gas_standing_p_per_day: 1.0,
            }; 3],
            methods,
            history,
        }
        .carried_to(REGIONAL_CAP_QUARTER)
    }

    /// Each payment method's rates to direct debit's on `date`, by `payment_method.index()`: those
    /// of the latest period of `payment_methods.csv` that started on or before `date` and lists the
    /// method and direct debit, else of the first that does (the table starts in 2025; prepayment
    /// is in it from Jul 2025 only).
    ///
    /// # Errors
    /// A method the table never lists with direct debit, or a level that is not a price.
    fn ratios_on(&self, date: NaiveDate) -> Result<[CapRates; 3]> {
        let rates = |period: &str, pm: PaymentMethod| {
            let r = self
                .methods
                .iter()
                .find(|r| r.period_start == period && r.payment_method == pm)
                .ok_or_else(|| anyhow!("payment_methods.csv has no {period} row for {pm}"))?;
            CapRates {
                elec_unit_p_per_kwh: r.elec_unit_p_per_kwh,
                elec_standing_p_per_day: r.elec_standing_p_per_day,
                gas_unit_p_per_kwh: r.gas_unit_p_per_kwh,
                gas_standing_p_per_day: r.gas_standing_p_per_day,
            }
            .check("payment_methods.csv")
        };
        let ratio = |pm: PaymentMethod| -> Result<CapRates> {
            let period = self.ratio_period(pm, date)?;
            Ok(rates(period, pm)?.zip(rates(period, PaymentMethod::DirectDebit)?, |x, d| x / d))
        };
        Ok([
            ratio(PaymentMethod::ALL[0])?,
            ratio(PaymentMethod::ALL[1])?,
            ratio(PaymentMethod::ALL[2])?,
        ])
    }

    /// The period of `payment_methods.csv` whose ratio to direct debit prices `pm` on `date` (see
    /// [`Cap::ratios_on`]).
    ///
    /// # Errors
    /// A method the table never lists with direct debit.
    fn ratio_period(&self, pm: PaymentMethod, date: NaiveDate) -> Result<&str> {
        let day = date.to_string();
        let listed = |period: &str, pm: PaymentMethod| {
            self.methods
                .iter()
                .any(|r| r.period_start == period && r.payment_method == pm)
        };
        let mut periods: Vec<&str> = self
            .methods
            .iter()
            .filter(|r| {
                r.payment_method == pm && listed(&r.period_start, PaymentMethod::DirectDebit)
            })
            .map(|r| r.period_start.as_str())
            .collect();
        periods.sort_unstable();
        periods
            .iter()
            .rev()
            .find(|p| **p <= day.as_str())
            .or(periods.first())
            .copied()
            .ok_or_else(|| {
                anyhow!("payment_methods.csv has no period listing {pm} and direct debit")
            })
    }

    /// `the 2025-07-01 ratios`, or each method's period where they differ, for the market's source.
    fn ratio_periods_text(&self, date: NaiveDate) -> Result<String> {
        let sc = self.ratio_period(PaymentMethod::StandardCredit, date)?;
        let pp = self.ratio_period(PaymentMethod::Prepayment, date)?;
        Ok(if sc == pp {
            format!("the {sc} ratios")
        } else {
            format!("the {sc} (standard credit) and {pp} (prepayment) ratios")
        })
    }

    /// The cap in force on `as_of`: the regional direct-debit table times the GB-average cap on
    /// `as_of` / in [`REGIONAL_CAP_QUARTER`], per component (exactly 1 within that quarter), rounded
    /// to 2 decimals; other payment methods by the published ratios to direct debit then
    /// ([`Cap::ratios_on`]).
    ///
    /// # Errors
    /// `as_of` outside `gb_price_cap.csv`.
    fn carried_to(mut self, as_of: NaiveDate) -> Result<Cap> {
        let scale = self.scale(as_of)?;
        self.ratios = self.ratios_on(as_of)?;
        self.rates = self
            .table
            .iter()
            .map(|&table| {
                let dd = table
                    .zip(scale, |d, s| round2(d * s))
                    .check("the regional cap carried to --as-of")?;
                Ok(self.ratios.map(|r| dd.zip(r, |d, r| round2(d * r))))
            })
            .collect::<Result<_>>()?;
        Ok(self)
    }

    /// The cap in force at the market date.
    fn get(&self, region: Region, pm: PaymentMethod) -> CapRates {
        self.rates[region.index()][pm.index()]
    }

    /// The GB-average cap period `date` falls in.
    fn period(&self, date: NaiveDate) -> Result<&GbCapRow> {
        self.history
            .iter()
            .find(|r| r.period_start <= date && date <= r.period_end)
            .ok_or_else(|| {
                let (first, last) = self.market_dates();
                anyhow!(
                    "[InvalidArgument] the GB price cap of {date} is not in data/domain/gb_price_cap.csv: give an --as-of from {first} to {last}"
                )
            })
    }

    /// GB-average cap on `date` relative to the quarter of the regional table, per component.
    fn scale(&self, date: NaiveDate) -> Result<CapRates> {
        let then = self.period(date)?.rates();
        let table = self.period(REGIONAL_CAP_QUARTER)?.rates();
        Ok(then.zip(table, |x, y| x / y))
    }

    /// The regional direct-debit cap in force on `date`, unrounded: the regional table times the
    /// GB-average cap then / in the table's quarter.
    fn direct_debit_on(&self, region: Region, date: NaiveDate) -> Result<CapRates> {
        Ok(self.table[region.index()].zip(self.scale(date)?, |c, s| c * s))
    }

    /// The market dates the tables price: the GB cap is known on the date and on the day closed
    /// fixes were sold, up to [`CLOSED_SOLD_MONTHS_AGO`] months before it.
    fn market_dates(&self) -> (NaiveDate, NaiveDate) {
        let (Some(first), Some(last)) = (self.history.first(), self.history.last()) else {
            return (NaiveDate::MAX, NaiveDate::MIN);
        };
        let from = first
            .period_start
            .checked_add_months(Months::new(CLOSED_SOLD_MONTHS_AGO.1))
            .unwrap_or(NaiveDate::MAX);
        (from, last.period_end)
    }

    /// `Ok` if `as_of` is within [`Cap::market_dates`].
    fn check_market_date(&self, as_of: NaiveDate) -> Result<()> {
        let (from, to) = self.market_dates();
        ensure!(
            (from..=to).contains(&as_of),
            "[InvalidArgument] --as-of {as_of} is outside the price-cap data: give {from} to {to} \
             (data/domain/gb_price_cap.csv runs from {} to {to} and closed fixes were sold up to \
             {} months before --as-of)",
            self.history.first().map_or(from, |r| r.period_start),
            CLOSED_SOLD_MONTHS_AGO.1,
        );
        Ok(())
    }
}

/// Economy 7 day and night unit rates for a single unit rate: night = 0.6 x single, and day such
/// that a 58/42 day/night split costs the same as the single rate (to the rounding).
pub fn economy7_rates(single_p_per_kwh: f64) -> (f64, f64) {
    let night = round2(E7_NIGHT_TO_SINGLE * single_p_per_kwh);
    let day = round2((single_p_per_kwh - E7_NIGHT_SHARE * night) / (1.0 - E7_NIGHT_SHARE));
    (day, night)
}

fn pence(x: f64) -> Result<Millipence> {
    Millipence::from_pence_f64(round2(x)).ok_or_else(|| anyhow!("{x} is not a number of pence"))
}

fn pounds(x: f64) -> Result<Millipence> {
    Millipence::from_pounds_f64(x).ok_or_else(|| anyhow!("{x} is not a number of pounds"))
}

/// What a rate card sells.
#[derive(Debug, Clone, Copy)]
struct Sells {
    electricity: bool,
    gas: bool,
    economy7: bool,
}

impl Sells {
    const ALL: Sells = Sells {
        electricity: true,
        gas: true,
        economy7: true,
    };

    fn fuels(self) -> Vec<Fuel> {
        match (self.electricity, self.gas) {
            (true, true) => vec![Fuel::Electricity, Fuel::Gas, Fuel::DualFuel],
            (true, false) => vec![Fuel::Electricity],
            _ => vec![Fuel::Gas],
        }
    }
}

fn rate_card(region: Region, pm: PaymentMethod, r: CapRates, sells: Sells) -> Result<RateCard> {
    let electricity = if sells.electricity {
        let economy7 = if sells.economy7 {
            let (day, night) = economy7_rates(round2(r.elec_unit_p_per_kwh));
            Some(Economy7Rates {
                standing_p_per_day: pence(r.elec_standing_p_per_day)?,
                day_p_per_kwh: pence(day)?,
                night_p_per_kwh: pence(night)?,
            })
        } else {
            None
        };
        Some(ElectricityRates {
            standing_p_per_day: pence(r.elec_standing_p_per_day)?,
            unit_p_per_kwh: pence(r.elec_unit_p_per_kwh)?,
            economy7,
        })
    } else {
        None
    };
    let gas = if sells.gas {
        Some(SingleRate {
            standing_p_per_day: pence(r.gas_standing_p_per_day)?,
            unit_p_per_kwh: pence(r.gas_unit_p_per_kwh)?,
        })
    } else {
        None
    };
    Ok(RateCard {
        region,
        payment_method: pm,
        electricity,
        gas,
    })
}

// ---------------------------------------------------------------------------------------------
// Suppliers.

/// A GB supplier as the generator sees it.
#[derive(Debug, Clone, Copy)]
pub struct SupplierSpec {
    /// Name as shown on the results table.
    pub name: &'static str,
    /// Id prefix of its tariffs.
    pub slug: &'static str,
    /// Share of GB domestic customers, percent (2025, rounded; small suppliers estimated).
    pub share_pct: f64,
    /// Name of its standard variable tariff.
    svt_name: &'static str,
    /// Sells only renewable electricity: every tariff is green.
    green_brand: bool,
    /// The site can switch visitors to it.
    partner: bool,
    /// Its fixes are sold to prepayment customers only.
    prepayment_fixes: bool,
    /// The payment methods it sells at all: every tariff of it is offered for these only.
    payment_methods: &'static [PaymentMethod],
}

const ALL_METHODS: &[PaymentMethod] = PaymentMethod::ALL;
const DD_ONLY: &[PaymentMethod] = &[PaymentMethod::DirectDebit];
const DD_AND_SC: &[PaymentMethod] = &[PaymentMethod::DirectDebit, PaymentMethod::StandardCredit];
const DD_AND_PPM: &[PaymentMethod] = &[PaymentMethod::DirectDebit, PaymentMethod::Prepayment];
const PPM_ONLY: &[PaymentMethod] = &[PaymentMethod::Prepayment];

const fn supplier(
    name: &'static str,
    slug: &'static str,
    share_pct: f64,
    svt_name: &'static str,
    green_brand: bool,
    partner: bool,
) -> SupplierSpec {
    SupplierSpec {
        name,
        slug,
        share_pct,
        svt_name,
        green_brand,
        partner,
        prepayment_fixes: false,
        payment_methods: ALL_METHODS,
    }
}

/// A supplier that sells only some payment methods.
const fn selling(methods: &'static [PaymentMethod], spec: SupplierSpec) -> SupplierSpec {
    SupplierSpec {
        payment_methods: methods,
        ..spec
    }
}

/// The 18 suppliers, largest first. The six large shares are the 2025 figures of the domain notes;
/// the twelve small ones share the remaining ~7% by rough size. Names are real brands, but their
/// tariffs here are made up.
pub const SUPPLIERS: [SupplierSpec; 18] = [
    supplier(
        "Octopus Energy",
        "octopus-energy",
        24.0,
        "Flexible Octopus",
        true,
        true,
    ),
    supplier(
        "British Gas",
        "british-gas",
        20.0,
        "British Gas Standard Variable",
        false,
        true,
    ),
    supplier("E.ON Next", "eon-next", 17.0, "Next Flex", false, true),
    supplier("OVO", "ovo", 13.0, "OVO Simpler Energy", false, true),
    supplier("EDF", "edf", 11.0, "EDF Standard Variable", false, true),
    supplier(
        "ScottishPower",
        "scottishpower",
        8.0,
        "ScottishPower Standard Variable",
        false,
        true,
    ),
    selling(
        DD_AND_SC,
        supplier(
            "Utility Warehouse",
            "utility-warehouse",
            1.5,
            "UW Value",
            false,
            false,
        ),
    ),
    selling(
        DD_AND_PPM,
        supplier("So Energy", "so-energy", 0.9, "So Flex", true, true),
    ),
    supplier(
        "Co-op Energy",
        "co-op-energy",
        0.8,
        "Co-op Standard Variable",
        false,
        true,
    ),
    SupplierSpec {
        prepayment_fixes: true,
        payment_methods: PPM_ONLY,
        ..supplier(
            "Boost Energy",
            "boost-energy",
            0.8,
            "Boost Smart Pay As You Go",
            false,
            true,
        )
    },
    selling(
        DD_ONLY,
        supplier(
            "Outfox the Market",
            "outfox-the-market",
            0.6,
            "Outfox Variable",
            true,
            true,
        ),
    ),
    supplier(
        "Sainsbury's Energy",
        "sainsburys-energy",
        0.5,
        "Sainsbury's Standard Variable",
        false,
        true,
    ),
    supplier(
        "Ecotricity",
        "ecotricity",
        0.5,
        "Ecotricity Green Electricity and Gas",
        true,
        true,
    ),
    selling(
        DD_AND_SC,
        supplier(
            "Good Energy",
            "good-energy",
            0.4,
            "Good Energy Standard Variable",
            true,
            false,
        ),
    ),
    selling(
        DD_ONLY,
        supplier(
            "Fuse Energy",
            "fuse-energy",
            0.4,
            "Fuse Variable",
            false,
            true,
        ),
    ),
    supplier("Ebico", "ebico", 0.2, "Ebico Living", false, true),
    selling(
        DD_AND_SC,
        supplier(
            "Rebel Energy",
            "rebel-energy",
            0.2,
            "Rebel Standard Variable",
            true,
            true,
        ),
    ),
    selling(
        DD_ONLY,
        supplier(
            "Tomato Energy",
            "tomato-energy",
            0.1,
            "Tomato Variable",
            false,
            true,
        ),
    ),
];

/// Market share of a supplier by name, percent; suppliers not in [`SUPPLIERS`] get 0.5%.
pub fn supplier_share(name: &str) -> f64 {
    SUPPLIERS
        .iter()
        .find(|s| s.name == name)
        .map_or(0.5, |s| s.share_pct)
}

fn supplier_names(market: &Market) -> Vec<&str> {
    let mut names: Vec<&str> = Vec::new();
    for t in market.tariffs.iter().filter(|t| !t.hypothetical) {
        if !names.contains(&t.supplier.as_str()) {
            names.push(&t.supplier);
        }
    }
    names
}

// ---------------------------------------------------------------------------------------------
// The market.

/// Fixed-tariff products: id part, name part, weight. The first is every supplier's first fix.
const FIX_VARIANTS: [(&str, &str, f64); 6] = [
    ("fix", "Fixed", 3.0),
    ("green-fix", "Green Fixed", 2.0),
    ("fix-saver", "Fixed Saver", 2.0),
    ("online-fix", "Online Fixed", 2.0),
    ("price-guarantee", "Price Guarantee", 1.0),
    ("green-electricity-fix", "Green Electricity Fixed", 1.0),
];
/// Terms in months and their weights.
const FIX_TERMS: [(u32, f64); 3] = [(12, 5.0), (18, 2.0), (24, 3.0)];
/// Exit fee per fuel, GBP, and its weight.
const EXIT_FEES: [(f64, f64); 4] = [(0.0, 45.0), (15.0, 10.0), (25.0, 25.0), (30.0, 20.0)];
/// Dual-fuel discounts, GBP a year.
const DUAL_FUEL_DISCOUNTS: [f64; 3] = [25.0, 30.0, 50.0];

/// The largest price difference of a fix from the cap, per component.
const MAX_FIX_DEVIATION: f64 = 0.10;

fn weighted<T: Copy>(rng: &mut ChaCha8Rng, items: &[(T, f64)]) -> Result<T> {
    let index = WeightedIndex::new(items.iter().map(|i| i.1)).context("bad weights")?;
    Ok(items[index.sample(rng)].0)
}

fn normal(rng: &mut ChaCha8Rng, mean: f64, sd: f64) -> Result<f64> {
    Ok(Normal::new(mean, sd).context("bad normal")?.sample(rng))
}

/// `date` plus `months`, within the dates tariffsim reads (up to 9999-12-31): a market whose end
/// dates pass it would be refused by every command that reads it.
fn add_months(date: NaiveDate, months: u32) -> Result<NaiveDate> {
    date.checked_add_months(Months::new(months))
        .filter(|d| chrono::Datelike::year(d) <= 9999)
        .ok_or_else(|| {
            anyhow!("[InvalidArgument] {date} plus {months} months is after 9999-12-31, the last date tariffsim reads: give an earlier --as-of")
        })
}

/// Builds the market (see [`GenMarketArgs`]).
///
/// # Errors
/// Supplier or tariff counts out of range.
pub fn build_market(
    seed: u64,
    as_of: NaiveDate,
    suppliers: usize,
    tariffs: usize,
) -> Result<Market> {
    ensure!(
        (1..=SUPPLIERS.len()).contains(&suppliers),
        "[InvalidArgument] --suppliers {suppliers} is out of range: give 1 to {}",
        SUPPLIERS.len()
    );
    let specs = &SUPPLIERS[..suppliers];
    let closed = (tariffs / 20).clamp(1, suppliers.min(6));
    let (lo, hi) = (2 * suppliers + closed, 6 * suppliers + closed);
    if !(lo..=hi).contains(&tariffs) {
        bail!(
            "[InvalidArgument] --tariffs {tariffs} does not fit {suppliers} suppliers: each has one variable tariff \
             and 1 to 5 fixes on sale, plus {closed} closed fixes, so give {lo} to {hi}"
        );
    }
    let cap = Cap::published()?;
    cap.check_market_date(as_of)?;
    let cap = cap.carried_to(as_of)?;
    let mut rng = ChaCha8Rng::seed_from_u64(seed);

    // Fixes on sale per supplier: one each, then up to three for the large suppliers (5% share or
    // more), then the rest drawn by sqrt(share), at most five each.
    let mut fixes = vec![1usize; suppliers];
    let mut left = tariffs - suppliers - closed - suppliers;
    for _ in 0..2 {
        for (n, spec) in fixes.iter_mut().zip(specs) {
            if left > 0 && spec.share_pct >= 5.0 {
                *n += 1;
                left -= 1;
            }
        }
    }
    for _ in 0..left {
        let weights: Vec<f64> = specs
            .iter()
            .zip(&fixes)
            .map(|(s, &n)| if n < 5 { s.share_pct.sqrt() } else { 0.0 })
            .collect();
        let i = WeightedIndex::new(&weights)
            .context("no supplier has room for another fix")?
            .sample(&mut rng);
        fixes[i] += 1;
    }
    // Closed fixes go to the (up to) six largest suppliers, at most one each.
    let mut order: Vec<usize> = (0..suppliers.min(6)).collect();
    order.shuffle(&mut rng);
    let mut closed_for = vec![0usize; suppliers];
    for &s in order.iter().take(closed) {
        closed_for[s] = 1;
    }

    let mut out = Vec::with_capacity(tariffs);
    for (s, spec) in specs.iter().enumerate() {
        out.push(variable_tariff(spec, &cap)?);
        let mut used: Vec<(usize, u32)> = Vec::new();
        for k in 0..fixes[s] {
            let (variant, term) = if k == 0 {
                (0, 12)
            } else {
                let mut free = Vec::new();
                for (v, variant) in FIX_VARIANTS.iter().enumerate() {
                    for &(term, tw) in &FIX_TERMS {
                        if !used.contains(&(v, term)) {
                            free.push(((v, term), variant.2 * tw));
                        }
                    }
                }
                weighted(&mut rng, &free)?
            };
            used.push((variant, term));
            out.push(fixed_tariff(spec, &cap, as_of, variant, term, &mut rng)?);
        }
        let mut ago: Vec<u32> = (CLOSED_SOLD_MONTHS_AGO.0..=CLOSED_SOLD_MONTHS_AGO.1).collect();
        ago.shuffle(&mut rng);
        for &months_ago in ago.iter().take(closed_for[s]) {
            out.push(closed_fix(spec, &cap, as_of, months_ago, &mut rng)?);
        }
    }
    let table_period = cap.period(REGIONAL_CAP_QUARTER)?;
    let as_of_period = cap.period(as_of)?;
    let ratio_periods = cap.ratio_periods_text(as_of)?;
    let table = "data/domain/regional_cap_2026q3.csv, direct debit, incl. 5% VAT";
    let svt_cap = if std::ptr::eq(table_period, as_of_period) {
        format!("{} ({table})", period_label(table_period))
    } else {
        format!(
            "{}: the {} regional cap ({table}) x the GB-average cap of {} / {} per component \
             (gb_price_cap.csv)",
            period_label(as_of_period),
            period_label(table_period),
            period_label(as_of_period),
            period_label(table_period),
        )
    };
    let market = Market {
        as_of,
        source: Some(format!(
            "synthetic market: tariffsim gen-market --seed {seed} --as-of {as_of} --suppliers {suppliers} --tariffs {tariffs}. \
             Standard variable tariffs at the Ofgem price cap for {svt_cap}; standard credit and prepayment = direct debit x {ratio_periods} \
             per fuel and per standing/unit rate (payment_methods.csv); Economy 7 night = {E7_NIGHT_TO_SINGLE} x \
             single unit rate, day = (single - {E7_NIGHT_SHARE} x night) / {:.2}, so a {}/{} day/night split costs the \
             single rate, same standing charge. Fixes within {}% of the cap; closed fixes scaled by the GB-average \
             cap of the quarter they were sold in (gb_price_cap.csv). Suppliers are real brands with 2025 market \
             shares; their tariffs here are made up. Rates rounded to 2 decimals of a penny. See docs/data.md.",
            1.0 - E7_NIGHT_SHARE,
            ((1.0 - E7_NIGHT_SHARE) * 100.0).round(),
            (E7_NIGHT_SHARE * 100.0).round(),
            (MAX_FIX_DEVIATION * 100.0).round(),
        )),
        tariffs: out,
    };
    market
        .validate()
        .map_err(crate::inputs::coded)
        .context("[Internal] the generated market is invalid")?;
    Ok(market)
}

fn variable_tariff(spec: &SupplierSpec, cap: &Cap) -> Result<Tariff> {
    let mut rates = Vec::with_capacity(Region::COUNT * 3);
    for region in Region::all() {
        for &pm in spec.payment_methods {
            rates.push(rate_card(region, pm, cap.get(region, pm), Sells::ALL)?);
        }
    }
    Ok(Tariff {
        id: format!("{}-svt", spec.slug),
        supplier: spec.name.to_string(),
        name: spec.svt_name.to_string(),
        kind: TariffKind::Variable,
        term_months: None,
        end_date: None,
        exit_fees_gbp: ExitFees::default(),
        green: spec.green_brand,
        switchable: spec.partner,
        on_sale: true,
        hypothetical: false,
        fuels: Sells::ALL.fuels(),
        dual_fuel_discount_gbp: Millipence::ZERO,
        rates,
    })
}

/// Price factors of a fix relative to the cap: a level for the tariff, then a spread per component.
fn fix_factors(rng: &mut ChaCha8Rng, level: f64) -> Result<CapRates> {
    let clip = |x: f64| x.clamp(-MAX_FIX_DEVIATION, MAX_FIX_DEVIATION);
    Ok(CapRates {
        elec_unit_p_per_kwh: 1.0 + clip(level + normal(rng, 0.0, 0.015)?),
        elec_standing_p_per_day: 1.0 + clip(level + normal(rng, 0.0, 0.04)?),
        gas_unit_p_per_kwh: 1.0 + clip(level + normal(rng, 0.0, 0.02)?),
        gas_standing_p_per_day: 1.0 + clip(level + normal(rng, 0.0, 0.04)?),
    })
}

/// Standard deviation of a fix's regional level around its national level.
const REGIONAL_SPREAD: f64 = 0.025;

/// A fix's factors in one region: its national factors moved by one regional level, within the
/// 10% band around the cap.
fn regional_factors(rng: &mut ChaCha8Rng, national: CapRates) -> Result<CapRates> {
    let shift = normal(rng, 0.0, REGIONAL_SPREAD)?;
    Ok(national.map(|f| (f + shift).clamp(1.0 - MAX_FIX_DEVIATION, 1.0 + MAX_FIX_DEVIATION)))
}

fn exit_fees(rng: &mut ChaCha8Rng, gas: bool) -> Result<ExitFees> {
    let fee = weighted(rng, &EXIT_FEES)?;
    Ok(ExitFees {
        electricity: pounds(fee)?,
        gas: if gas { pounds(fee)? } else { Millipence::ZERO },
    })
}

fn fixed_tariff(
    spec: &SupplierSpec,
    cap: &Cap,
    as_of: NaiveDate,
    variant: usize,
    term: u32,
    rng: &mut ChaCha8Rng,
) -> Result<Tariff> {
    let (id_part, name_part, _) = FIX_VARIANTS[variant];
    let electricity_only = id_part == "green-electricity-fix";
    let green = spec.green_brand || id_part.starts_with("green") || rng.random_bool(0.1);
    let premium = match id_part {
        "fix-saver" | "online-fix" => -0.01,
        "price-guarantee" => 0.02,
        _ => 0.0,
    };
    let level = (normal(rng, -0.035, 0.04)? + premium + 0.01 * f64::from(term - 12) / 6.0)
        .clamp(-MAX_FIX_DEVIATION, MAX_FIX_DEVIATION);
    let factors = fix_factors(rng, level)?;
    let mut methods: Vec<PaymentMethod> = if spec.prepayment_fixes {
        vec![PaymentMethod::Prepayment]
    } else {
        let r: f64 = rng.random();
        if r < 0.80 {
            vec![PaymentMethod::DirectDebit]
        } else if r < 0.92 {
            vec![PaymentMethod::DirectDebit, PaymentMethod::Prepayment]
        } else {
            PaymentMethod::ALL.to_vec()
        }
    };
    // Only what the supplier sells at all.
    methods.retain(|m| spec.payment_methods.contains(m));
    if methods.is_empty() {
        methods.push(spec.payment_methods[0]);
    }
    let mut regions: Vec<Region> = Region::all().collect();
    if rng.random_bool(0.08) {
        if rng.random_bool(0.5) {
            // England and Wales only.
            regions.retain(|r| !matches!(r.letter(), 'N' | 'P'));
        } else {
            regions.shuffle(rng);
            regions.truncate(rng.random_range(9..=12));
            regions.sort();
        }
    }
    let sells = Sells {
        electricity: true,
        gas: !electricity_only,
        economy7: rng.random_bool(0.85),
    };
    let exit_fees_gbp = exit_fees(rng, sells.gas)?;
    let switchable = spec.partner && rng.random_bool(0.93);
    let dual_fuel_discount_gbp = if sells.gas && rng.random_bool(0.15) {
        pounds(DUAL_FUEL_DISCOUNTS[rng.random_range(0..DUAL_FUEL_DISCOUNTS.len())])?
    } else {
        Millipence::ZERO
    };
    let mut rates = Vec::with_capacity(regions.len() * methods.len());
    for &region in &regions {
        // Fixes are priced region by region (wholesale hedges and network costs differ), so a
        // fix's level against the regional cap moves from region to region and no fix is the
        // cheapest everywhere.
        let regional = regional_factors(rng, factors)?;
        for &pm in &methods {
            let r = cap.get(region, pm).zip(regional, |c, f| c * f);
            rates.push(rate_card(region, pm, r, sells)?);
        }
    }
    Ok(Tariff {
        id: format!("{}-{id_part}-{term}m", spec.slug),
        supplier: spec.name.to_string(),
        name: format!("{} {name_part} {term}M", spec.name),
        kind: TariffKind::Fixed,
        term_months: Some(term),
        end_date: Some(add_months(as_of, term)?),
        exit_fees_gbp,
        green,
        switchable,
        on_sale: true,
        hypothetical: false,
        fuels: sells.fuels(),
        dual_fuel_discount_gbp,
        rates,
    })
}

/// A 12-month fix sold `months_ago` months before the market date and since withdrawn: priced on
/// the cap of the quarter it was sold in (the regional table times the GB-average cap then / in the
/// table's quarter, whatever the market date), ending within the coming year.
fn closed_fix(
    spec: &SupplierSpec,
    cap: &Cap,
    as_of: NaiveDate,
    months_ago: u32,
    rng: &mut ChaCha8Rng,
) -> Result<Tariff> {
    let sold = as_of
        .checked_sub_months(Months::new(months_ago))
        .ok_or_else(|| {
            anyhow!("[InvalidArgument] {as_of} minus {months_ago} months is out of range")
        })?;
    let level = normal(rng, -0.03, 0.03)?.clamp(-MAX_FIX_DEVIATION, MAX_FIX_DEVIATION);
    let factors = fix_factors(rng, level)?;
    let exit_fees_gbp = exit_fees(rng, true)?;
    let mut rates = Vec::with_capacity(Region::COUNT);
    for region in Region::all() {
        let pm = PaymentMethod::DirectDebit;
        let r = cap
            .direct_debit_on(region, sold)?
            .zip(factors, |c, f| c * f);
        rates.push(rate_card(region, pm, r, Sells::ALL)?);
    }
    let stamp = sold.format("%b%y").to_string().to_lowercase();
    Ok(Tariff {
        id: format!("{}-fix-12m-{stamp}", spec.slug),
        supplier: spec.name.to_string(),
        name: format!("{} Fixed 12M ({})", spec.name, sold.format("%b %Y")),
        kind: TariffKind::Fixed,
        term_months: Some(12),
        end_date: Some(add_months(sold, 12)?),
        exit_fees_gbp,
        green: spec.green_brand,
        switchable: spec.partner,
        on_sale: false,
        hypothetical: false,
        fuels: Sells::ALL.fuels(),
        dual_fuel_discount_gbp: Millipence::ZERO,
        rates,
    })
}

/// The sample scenario for a generated market: "NewCo Energy" launches a 12-month fix 4% under
/// the cap in force at the market's date on direct debit in every region, a small supplier leaves, one large supplier's variable
/// tariff gets 2% cheaper.
///
/// # Errors
/// A market without the suppliers the scenario names.
pub fn sample_scenario(market: &Market) -> Result<Scenario> {
    let cap = Cap::published()?.carried_to(market.as_of)?;
    let period = period_label(cap.period(market.as_of)?);
    let pm = PaymentMethod::DirectDebit;
    let rates = Region::all()
        .map(|region| {
            rate_card(
                region,
                pm,
                cap.get(region, pm).map(|c| c * 0.96),
                Sells::ALL,
            )
        })
        .collect::<Result<Vec<_>>>()?;
    let newco = Tariff {
        id: "newco-fix-12m".into(),
        supplier: "NewCo Energy".into(),
        name: "NewCo Fixed 12M".into(),
        kind: TariffKind::Fixed,
        term_months: Some(12),
        end_date: Some(add_months(market.as_of, 12)?),
        exit_fees_gbp: ExitFees::default(),
        green: true,
        switchable: true,
        on_sale: true,
        hypothetical: true,
        fuels: Sells::ALL.fuels(),
        dual_fuel_discount_gbp: Millipence::ZERO,
        rates,
    };
    let suppliers = supplier_names(market);
    let gone = ["Outfox the Market", "Tomato Energy"]
        .into_iter()
        .find(|s| suppliers.contains(s))
        .or(suppliers.last().copied().filter(|_| suppliers.len() > 1))
        .ok_or_else(|| {
            anyhow!(
                "[InvalidArgument] the sample scenario removes a supplier: give --suppliers 2 or more with --scenario-out"
            )
        })?;
    let mover = market
        .tariffs
        .iter()
        .filter(|t| t.kind == TariffKind::Variable && t.supplier != gone && !t.hypothetical)
        .find(|t| t.supplier == "E.ON Next")
        .or_else(|| {
            market
                .tariffs
                .iter()
                .find(|t| t.kind == TariffKind::Variable && t.supplier != gone)
        })
        .ok_or_else(|| anyhow!("the market has no variable tariff to move"))?;
    Ok(Scenario {
        name: Some("newco-launch".into()),
        description: Some(format!(
            "NewCo Energy launches a green 12-month fix 4% under the {period} cap on direct \
             debit in every region, with no exit fees; {gone} leaves the market; {} cuts its \
             standard variable tariff by 2%.",
            mover.supplier
        )),
        changes: vec![
            Change::AddTariff {
                tariff: Box::new(newco),
            },
            Change::RemoveSupplier {
                supplier: gone.to_string(),
            },
            Change::MovePrices {
                percent: -2.0,
                select: Selection {
                    tariffs: Some(vec![mover.id.clone()]),
                    ..Selection::default()
                },
            },
        ],
    })
}

// ---------------------------------------------------------------------------------------------
// Visits.

/// DESNZ regions and the GSP regions their homes are in, with the share of each (see docs/data.md).
/// North West and Wales share region D (Merseyside & North Wales); the South East is split between
/// J (South East) and H (Southern); Scotland between N (South) and P (North).
pub const DESNZ_TO_GSP: [(&str, &[(char, f64)]); 11] = [
    ("North East", &[('F', 1.0)]),
    ("North West", &[('G', 0.7), ('D', 0.3)]),
    ("Yorkshire and The Humber", &[('M', 1.0)]),
    ("East Midlands", &[('B', 1.0)]),
    ("West Midlands", &[('E', 1.0)]),
    ("East", &[('A', 1.0)]),
    ("London", &[('C', 1.0)]),
    ("South East", &[('J', 0.5), ('H', 0.5)]),
    ("South West", &[('L', 1.0)]),
    ("Wales", &[('K', 0.7), ('D', 0.3)]),
    ("Scotland (inc unallocated)", &[('N', 0.72), ('P', 0.28)]),
];

/// Log-normal sigma of annual consumption (fitted to DESNZ 2021 mean/median).
pub const SIGMA_ELEC: f64 = 0.69;
/// Same, Economy 7 electricity.
pub const SIGMA_E7: f64 = 0.78;
/// Same, gas.
pub const SIGMA_GAS: f64 = 0.52;
/// Bounds of drawn consumption (redrawn outside them), kWh a year: standard electricity, E7
/// electricity, gas.
const KWH_BOUNDS: [(f64, f64); 3] = [(250.0, 25_000.0), (300.0, 35_000.0), (1_000.0, 60_000.0)];
/// Visitors with gas at home: dual fuel, electricity only, gas only.
const FUEL_WITH_GAS: [(Fuel, f64); 3] = [
    (Fuel::DualFuel, 0.88),
    (Fuel::Electricity, 0.06),
    (Fuel::Gas, 0.06),
];
/// Payment methods: direct debit, standard credit, prepayment.
const PAYMENT_MIX: [(PaymentMethod, f64); 3] = [
    (PaymentMethod::DirectDebit, 0.70),
    (PaymentMethod::StandardCredit, 0.13),
    (PaymentMethod::Prepayment, 0.17),
];
/// E7 probability of homes with gas, relative to the regional E7 share.
const E7_WITH_GAS_RELATIVE: f64 = 0.55;
/// Largest E7 probability of homes without gas.
const E7_WITHOUT_GAS_MAX: f64 = 0.95;
/// Share of E7 visitors who know their night share; its mean, sd and bounds.
const NIGHT_SHARE_KNOWN: f64 = 0.30;
const NIGHT_SHARE: (f64, f64, f64, f64) = (0.42, 0.08, 0.2, 0.7);
/// Current tariff: unknown, on a fix (else the variable tariff).
const CURRENT_UNKNOWN: f64 = 0.10;
const CURRENT_FIXED: f64 = 0.35;
/// Filters: fixed only, green only, no exit fees, switchable only.
const FILTER_RATES: [f64; 4] = [0.15, 0.10, 0.08, 0.30];

/// One GSP region's part of one DESNZ region.
struct Cell {
    region: Region,
    gas_share: f64,
    e7_with_gas: f64,
    e7_without_gas: f64,
    elec: LogNormal<f64>,
    e7: LogNormal<f64>,
    gas: LogNormal<f64>,
}

fn cells() -> Result<(Vec<Cell>, Vec<f64>)> {
    let rows: Vec<DesnzRow> = read_csv("desnz_consumption_2021.csv", DESNZ_CSV)?;
    let mut cells = Vec::new();
    let mut weights = Vec::new();
    for (name, split) in DESNZ_TO_GSP {
        let row = rows
            .iter()
            .find(|r| r.region == name)
            .ok_or_else(|| anyhow!("desnz_consumption_2021.csv has no row {name:?}"))?;
        let meters = row.elec_dom_std_meters_k + row.elec_dom_e7_meters_k;
        ensure!(
            meters > 0.0,
            "desnz_consumption_2021.csv: no meters in {name}"
        );
        let gas_share = (row.gas_dom_meters_k / meters).min(0.97);
        let e7_share = row.elec_dom_e7_meters_k / meters;
        // Split the regional E7 share between homes with and without gas, keeping its average.
        let mut with_gas = E7_WITH_GAS_RELATIVE * e7_share;
        let mut without_gas = (e7_share - with_gas * gas_share) / (1.0 - gas_share);
        if without_gas > E7_WITHOUT_GAS_MAX {
            without_gas = E7_WITHOUT_GAS_MAX;
            with_gas = (e7_share - without_gas * (1.0 - gas_share)) / gas_share;
        }
        let lognormal = |median: f64, sigma: f64| {
            LogNormal::new(median.ln(), sigma)
                .with_context(|| format!("bad median {median} for {name}"))
        };
        for &(letter, share) in split {
            let region = Region::from_letter(letter)
                .ok_or_else(|| anyhow!("{letter} is not a GSP letter"))?;
            cells.push(Cell {
                region,
                gas_share,
                e7_with_gas: with_gas,
                e7_without_gas: without_gas,
                elec: lognormal(row.elec_std_median_kwh, SIGMA_ELEC)?,
                e7: lognormal(row.elec_e7_median_kwh, SIGMA_E7)?,
                gas: lognormal(row.gas_dom_median_kwh, SIGMA_GAS)?,
            });
            weights.push(meters * share);
        }
    }
    Ok((cells, weights))
}

/// Draws a consumption within bounds: redrawn when outside them (a truncated log-normal), clipped
/// after 100 tries.
fn kwh(rng: &mut ChaCha8Rng, d: &LogNormal<f64>, bounds: (f64, f64)) -> u32 {
    let mut x = d.sample(rng);
    for _ in 0..100 {
        if (bounds.0..=bounds.1).contains(&x) {
            break;
        }
        x = d.sample(rng);
    }
    x.clamp(bounds.0, bounds.1).round() as u32
}

/// Checks `gen-visits`' own flags: the number of rows and the days.
///
/// # Errors
/// `[InvalidArgument]` naming the flag.
fn visit_args(rows: usize, from: NaiveDate, to: NaiveDate) -> Result<()> {
    ensure!(
        rows > 0,
        "[InvalidArgument] --rows is 0: ask for at least one visit"
    );
    ensure!(
        rows <= crate::args::MAX_VISIT_ROWS,
        "[InvalidArgument] --rows {rows} is more than the {} visits gen-visits writes: ask for fewer",
        crate::args::MAX_VISIT_ROWS
    );
    ensure!(
        from <= to,
        "[InvalidArgument] --from {from} is after --to {to}: give the first day first"
    );
    Ok(())
}

/// Whether `supplier` sells to visitors paying by `pm`: a tariff of theirs, not hypothetical, has
/// rates for it.
fn sells(market: &Market, supplier: &str, pm: PaymentMethod) -> bool {
    market.tariffs.iter().any(|t| {
        t.supplier == supplier && !t.hypothetical && t.rates.iter().any(|c| c.payment_method == pm)
    })
}

/// Checks that visits can be drawn for `market`: every visitor gets a current supplier, drawn
/// among the suppliers selling their payment method, so the market needs a supplier (a tariff
/// that is not hypothetical) for each of the three.
///
/// # Errors
/// `[InvalidArgument]` saying what the market lacks.
pub fn fits_visits(market: &Market) -> Result<()> {
    let suppliers = supplier_names(market);
    ensure!(
        !suppliers.is_empty(),
        "[InvalidArgument] the market has no suppliers (hypothetical tariffs aside), so visitors \
         have no current supplier to be drawn from: give it at least one tariff that is not hypothetical"
    );
    let missing: Vec<(PaymentMethod, f64)> = PAYMENT_MIX
        .iter()
        .copied()
        .filter(|&(pm, _)| !suppliers.iter().any(|s| sells(market, s, pm)))
        .collect();
    if !missing.is_empty() {
        let names: Vec<&str> = missing.iter().map(|(pm, _)| pm.as_str()).collect();
        let share: f64 = missing.iter().map(|(_, p)| p).sum();
        let method = if missing.len() == 1 {
            "that payment method"
        } else {
            "those payment methods"
        };
        bail!(
            "[InvalidArgument] no supplier in the market sells {}: gen-visits gives {:.0}% of visitors \
             {method}, each with a current supplier selling it; give {} rates to at least one tariff \
             that is not hypothetical",
            names.join(" or "),
            share * 100.0,
            names.join(" and ")
        );
    }
    Ok(())
}

/// Builds `rows` visits for a market between two dates (see [`GenVisitsArgs`]), in time order with
/// ids `v000001`, `v000002`, ...
///
/// # Errors
/// `to` before `from`, no rows or more than [`crate::args::MAX_VISIT_ROWS`] asked for, or a
/// market without a supplier for some payment method ([`fits_visits`]).
pub fn build_visits(
    market: &Market,
    seed: u64,
    rows: usize,
    from: NaiveDate,
    to: NaiveDate,
) -> Result<Vec<Visit>> {
    visit_args(rows, from, to)?;
    let start: NaiveDateTime = from.and_time(chrono::NaiveTime::MIN);
    let span = (to - from + TimeDelta::days(1)).num_seconds();
    let (cells, weights) = cells()?;
    let cell_index = WeightedIndex::new(&weights).context("bad region weights")?;
    fits_visits(market)?;
    let suppliers = supplier_names(market);
    // A visitor's supplier is drawn by market share among the suppliers selling their payment
    // method (a supplier selling only direct debit has no prepayment customers).
    let supplier_index: Vec<WeightedIndex<f64>> = PaymentMethod::ALL
        .iter()
        .map(|&pm| {
            WeightedIndex::new(suppliers.iter().map(|s| {
                if sells(market, s, pm) {
                    supplier_share(s)
                } else {
                    0.0
                }
            }))
            .with_context(|| format!("[Internal] no supplier weights for {pm}"))
        })
        .collect::<Result<_>>()?;
    let (night_mean, night_sd, night_lo, night_hi) = NIGHT_SHARE;
    let night = Normal::new(night_mean, night_sd).context("bad night share")?;

    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    let mut visits = Vec::with_capacity(rows);
    for _ in 0..rows {
        let cell = &cells[cell_index.sample(&mut rng)];
        let has_gas = rng.random_bool(cell.gas_share);
        let e7_home = rng.random_bool(if has_gas {
            cell.e7_with_gas
        } else {
            cell.e7_without_gas
        });
        let fuel = if has_gas {
            weighted(&mut rng, &FUEL_WITH_GAS)?
        } else {
            Fuel::Electricity
        };
        let meter = if fuel.has_electricity() && e7_home {
            Meter::Economy7
        } else {
            Meter::SingleRate
        };
        let payment_method = weighted(&mut rng, &PAYMENT_MIX)?;
        let elec_kwh = match (fuel.has_electricity(), meter) {
            (false, _) => 0,
            (true, Meter::SingleRate) => kwh(&mut rng, &cell.elec, KWH_BOUNDS[0]),
            (true, Meter::Economy7) => kwh(&mut rng, &cell.e7, KWH_BOUNDS[1]),
        };
        let gas_kwh = if fuel.has_gas() {
            kwh(&mut rng, &cell.gas, KWH_BOUNDS[2])
        } else {
            0
        };
        let e7_night_share_bp = if meter == Meter::Economy7 && rng.random_bool(NIGHT_SHARE_KNOWN) {
            let share = night.sample(&mut rng).clamp(night_lo, night_hi);
            Some(((share * 100.0).round() * 100.0) as u16)
        } else {
            None
        };
        let supplier = suppliers[supplier_index[payment_method.index()].sample(&mut rng)];
        let mut visit = Visit {
            visit_id: String::new(),
            timestamp: start,
            region: cell.region,
            fuel,
            meter,
            payment_method,
            elec_kwh,
            gas_kwh,
            e7_night_share_bp,
            current_supplier: Some(supplier.to_string()),
            current_tariff: None,
            filters: VisitorFilters::default(),
        };
        visit.current_tariff = current_tariff(market, &visit, &mut rng);
        let [fixed, green, no_fees, switchable] = FILTER_RATES.map(|p| rng.random_bool(p));
        visit.filters = VisitorFilters {
            fixed_only: fixed,
            green_only: green,
            no_exit_fees: no_fees,
            switchable_only: switchable,
        };
        visit.timestamp = start + TimeDelta::seconds(rng.random_range(0..span));
        visits.push(visit);
    }
    visits.sort_by_key(|v| v.timestamp);
    let width = rows.to_string().len().max(6);
    for (i, v) in visits.iter_mut().enumerate() {
        v.visit_id = format!("v{:0width$}", i + 1);
    }
    Ok(visits)
}

/// The visitor's current tariff: unknown, one of the supplier's fixes (closed ones included) sold
/// where and how they buy, or the supplier's variable tariff.
fn current_tariff(market: &Market, v: &Visit, rng: &mut ChaCha8Rng) -> Option<String> {
    let supplier = v.current_supplier.as_deref()?;
    let r: f64 = rng.random();
    if r < CURRENT_UNKNOWN {
        return None;
    }
    let sells = |t: &Tariff| {
        t.supplier == supplier
            && !t.hypothetical
            && t.annual_cost(
                v.region,
                v.payment_method,
                v.fuel,
                v.pricing_meter(),
                &v.usage(),
            )
            .is_some()
    };
    if r < CURRENT_UNKNOWN + CURRENT_FIXED {
        let fixes: Vec<&Tariff> = market
            .tariffs
            .iter()
            .filter(|t| t.kind == TariffKind::Fixed && sells(t))
            .collect();
        if !fixes.is_empty() {
            return Some(fixes[rng.random_range(0..fixes.len())].id.clone());
        }
    }
    market
        .tariffs
        .iter()
        .find(|t| t.kind == TariffKind::Variable && sells(t))
        .map(|t| t.id.clone())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    fn as_of() -> NaiveDate {
        NaiveDate::from_ymd_opt(2026, 7, 1).unwrap()
    }

    fn market() -> Market {
        build_market(1, as_of(), 18, 60).unwrap()
    }

    fn visits(market: &Market, rows: usize) -> Vec<Visit> {
        build_visits(
            market,
            2,
            rows,
            as_of(),
            NaiveDate::from_ymd_opt(2026, 9, 30).unwrap(),
        )
        .unwrap()
    }

    fn median(mut xs: Vec<u32>) -> f64 {
        xs.sort_unstable();
        f64::from(xs[xs.len() / 2])
    }

    fn share(n: usize, of: usize) -> f64 {
        n as f64 / of as f64
    }

    #[test]
    fn market_round_trips_and_has_the_asked_shape() {
        let m = market();
        let json = serde_json::to_string_pretty(&m).unwrap();
        let back = Market::from_json(&json).unwrap();
        assert_eq!(back, m);
        assert_eq!(m.tariffs.len(), 60);
        assert_eq!(supplier_names(&m).len(), 18);
        let variable = m
            .tariffs
            .iter()
            .filter(|t| t.kind == TariffKind::Variable)
            .count();
        assert_eq!(variable, 18);
        let closed: Vec<&Tariff> = m.tariffs.iter().filter(|t| !t.on_sale).collect();
        assert_eq!(closed.len(), 3);
        for t in closed {
            let end = t.end_date.unwrap();
            assert!(
                end > as_of() && end < add_months(as_of(), 12).unwrap(),
                "{end}"
            );
        }
        for s in supplier_names(&m) {
            let fixes = m
                .tariffs
                .iter()
                .filter(|t| t.supplier == s && t.kind == TariffKind::Fixed && t.on_sale)
                .count();
            assert!((1..=5).contains(&fixes), "{s} has {fixes} fixes");
        }
        let ids: HashSet<&str> = m.tariffs.iter().map(|t| t.id.as_str()).collect();
        assert!(ids.contains("octopus-energy-fix-12m"));
        assert!(ids.contains("octopus-energy-svt"));
        assert!(ids.iter().all(|id| {
            id.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        }));
        // Variety that the tables need.
        let fixes: Vec<&Tariff> = m
            .tariffs
            .iter()
            .filter(|t| t.kind == TariffKind::Fixed)
            .collect();
        assert!(fixes.iter().any(|t| t.fuels == vec![Fuel::Electricity]));
        assert!(fixes.iter().any(|t| t.green) && fixes.iter().any(|t| !t.green));
        assert!(fixes.iter().any(|t| !t.switchable));
        assert!(fixes.iter().any(|t| t.exit_fees_gbp == ExitFees::default()));
        assert!(
            fixes
                .iter()
                .any(|t| t.exit_fees_gbp.electricity > Millipence::ZERO)
        );
        assert!(
            fixes
                .iter()
                .any(|t| t.dual_fuel_discount_gbp > Millipence::ZERO)
        );
        assert!(fixes.iter().any(|t| t.rates.len() < Region::COUNT));
        let dd_only = fixes
            .iter()
            .filter(|t| {
                t.rates
                    .iter()
                    .all(|c| c.payment_method == PaymentMethod::DirectDebit)
            })
            .count();
        assert!(
            dd_only * 10 >= fixes.len() * 6,
            "{dd_only} of {}",
            fixes.len()
        );
    }

    #[test]
    fn variable_tariffs_are_the_regional_cap() {
        let m = market();
        let csv: Vec<RegionalCapRow> =
            read_csv("regional_cap_2026q3.csv", REGIONAL_CAP_CSV).unwrap();
        assert_eq!(csv.len(), 14);
        let mp = |p: f64| Millipence::from_pence_f64(p).unwrap();
        for t in m.tariffs.iter().filter(|t| t.kind == TariffKind::Variable) {
            let spec = SUPPLIERS.iter().find(|s| s.name == t.supplier).unwrap();
            assert_eq!(t.rates.len(), 14 * spec.payment_methods.len(), "{}", t.id);
            if !spec.payment_methods.contains(&PaymentMethod::DirectDebit) {
                continue;
            }
            for row in &csv {
                let region: Region = row.gsp_letter.parse().unwrap();
                let card = t.card(region, PaymentMethod::DirectDebit).unwrap();
                let e = card.electricity.unwrap();
                let g = card.gas.unwrap();
                assert_eq!(e.unit_p_per_kwh, mp(row.elec_unit_p_per_kwh));
                assert_eq!(e.standing_p_per_day, mp(row.elec_standing_p_per_day));
                assert_eq!(g.unit_p_per_kwh, mp(row.gas_unit_p_per_kwh));
                assert_eq!(g.standing_p_per_day, mp(row.gas_standing_p_per_day));
            }
        }
        // London dual fuel on direct debit at the Jul-Sep 2026 TDCV (2,500 / 9,500 kWh):
        // 365 x (44.78 + 29.52) + 2500 x 26.35 + 9500 x 7.50 = 164,244.5 p.
        let svt = m.tariff("british-gas-svt").unwrap();
        let usage = tariffsim::price::Usage {
            electricity_kwh: 2_500,
            gas_kwh: 9_500,
            night_share_bp: 0,
        };
        let cost = svt
            .annual_cost(
                Region::from_letter('C').unwrap(),
                PaymentMethod::DirectDebit,
                Fuel::DualFuel,
                Meter::SingleRate,
                &usage,
            )
            .unwrap();
        assert_eq!(cost, Millipence(164_244_500));
    }

    #[test]
    fn payment_methods_and_economy7_follow_the_derivations() {
        let m = market();
        let svt = m.tariff("edf-svt").unwrap();
        let c = Region::from_letter('C').unwrap();
        let dd = svt.card(c, PaymentMethod::DirectDebit).unwrap();
        let sc = svt.card(c, PaymentMethod::StandardCredit).unwrap();
        let ppm = svt.card(c, PaymentMethod::Prepayment).unwrap();
        let unit = |card: &RateCard| card.electricity.unwrap().unit_p_per_kwh.as_pence_f64();
        let standing = |card: &RateCard| card.gas.unwrap().standing_p_per_day.as_pence_f64();
        // London elec unit 26.35 x 27.18/25.73 = 27.83; x 24.92/25.73 = 25.52.
        assert_eq!(unit(sc), 27.83);
        assert_eq!(unit(ppm), 25.52);
        // Gas standing: SC 29.52 x 37.70/29.82 = 37.32; prepayment levelised with DD.
        assert_eq!(standing(sc), 37.32);
        assert_eq!(standing(ppm), standing(dd));
        for card in &svt.rates {
            let e = card.electricity.unwrap();
            let e7 = e.economy7.unwrap();
            let single = e.unit_p_per_kwh.as_pence_f64();
            let (day, night) = (
                e7.day_p_per_kwh.as_pence_f64(),
                e7.night_p_per_kwh.as_pence_f64(),
            );
            assert!(((1.0 - E7_NIGHT_SHARE) * day + E7_NIGHT_SHARE * night - single).abs() < 0.01);
            assert!((night / single - E7_NIGHT_TO_SINGLE).abs() < 0.001);
            assert!(day > single && night < single);
        }
    }

    #[test]
    fn fixes_stay_within_ten_percent_of_the_cap() {
        let m = market();
        let cap = Cap::published().unwrap();
        let mut levels = Vec::new();
        for t in m
            .tariffs
            .iter()
            .filter(|t| t.kind == TariffKind::Fixed && t.on_sale)
        {
            for card in &t.rates {
                let c = cap.get(card.region, card.payment_method);
                let e = card.electricity.unwrap();
                let ratio = e.unit_p_per_kwh.as_pence_f64() / c.elec_unit_p_per_kwh;
                assert!((0.895..=1.105).contains(&ratio), "{} {ratio}", t.id);
                levels.push(ratio);
                if let Some(g) = card.gas {
                    let ratio = g.standing_p_per_day.as_pence_f64() / c.gas_standing_p_per_day;
                    assert!((0.895..=1.105).contains(&ratio), "{} {ratio}", t.id);
                }
            }
        }
        let below = levels.iter().filter(|&&r| r < 1.0).count();
        assert!(below > levels.len() / 2 && below < levels.len(), "{below}");
    }

    #[test]
    fn the_cap_is_the_table_within_its_quarter_and_carried_by_the_gb_cap_outside_it() {
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        let published = Cap::published().unwrap();
        // Anywhere in Jul-Sep 2026 the ratio is exactly 1: the default market is the table.
        let august = Cap::published()
            .unwrap()
            .carried_to(d("2026-08-15"))
            .unwrap();
        assert_eq!(august.rates, published.rates);
        // Jan-Mar 2026: London direct debit 7.50 x 5.93 / 7.33 = 6.07 p/kWh gas.
        let january = Cap::published()
            .unwrap()
            .carried_to(d("2026-01-01"))
            .unwrap();
        let c = Region::from_letter('C').unwrap();
        let dd = january.get(c, PaymentMethod::DirectDebit);
        assert_eq!(dd.gas_unit_p_per_kwh, 6.07);
        assert_eq!(dd.elec_unit_p_per_kwh, 27.94);
        // Closed fixes: the cap they were sold under, whatever the market date.
        let sold = d("2025-09-01");
        assert_eq!(
            january.direct_debit_on(c, sold).unwrap(),
            published.direct_debit_on(c, sold).unwrap()
        );
        assert!(
            (published
                .direct_debit_on(c, sold)
                .unwrap()
                .gas_unit_p_per_kwh
                - 6.4768)
                .abs()
                < 1e-3
        );
        // Dates the GB table does not cover are refused, not priced at a ratio of 1.
        assert_eq!(published.market_dates(), (d("2024-12-01"), d("2026-09-30")));
        for bad in ["2024-11-30", "2026-10-01"] {
            let e = published.check_market_date(d(bad)).unwrap_err().to_string();
            assert!(e.contains("give 2024-12-01 to 2026-09-30"), "{e}");
            assert!(build_market(1, d(bad), 18, 60).is_err());
        }
        assert!(published.clone().carried_to(d("2023-12-31")).is_err());
        assert!(published.direct_debit_on(c, d("2023-12-31")).is_err());
    }

    #[test]
    fn argument_errors_say_what_to_give() {
        let e = build_market(1, as_of(), 19, 60).unwrap_err();
        assert!(e.to_string().contains("give 1 to 18"), "{e}");
        let e = build_market(1, as_of(), 18, 200).unwrap_err();
        assert!(e.to_string().contains("give 42 to 114"), "{e}");
        let small = build_market(1, as_of(), 2, 5).unwrap();
        assert_eq!(small.tariffs.len(), 5);
        let e = build_visits(&small, 1, 10, as_of(), as_of().pred_opt().unwrap()).unwrap_err();
        assert!(e.to_string().contains("after"), "{e}");
    }

    #[test]
    fn visits_follow_the_published_distributions() {
        let m = market();
        let vs = visits(&m, 20_000);
        assert_eq!(vs.len(), 20_000);
        assert_eq!(vs[0].visit_id, "v000001");
        assert!(vs.windows(2).all(|w| w[0].timestamp <= w[1].timestamp));
        for v in &vs {
            v.validate().unwrap();
        }
        let n = vs.len();
        let with_elec: Vec<&Visit> = vs.iter().filter(|v| v.fuel.has_electricity()).collect();
        let e7 = with_elec
            .iter()
            .filter(|v| v.meter == Meter::Economy7)
            .count();
        let e7_share = share(e7, with_elec.len());
        assert!((0.115..=0.145).contains(&e7_share), "E7 {e7_share}");
        let elec_only_e7 = share(
            with_elec
                .iter()
                .filter(|v| v.fuel == Fuel::Electricity && v.meter == Meter::Economy7)
                .count(),
            with_elec
                .iter()
                .filter(|v| v.fuel == Fuel::Electricity)
                .count(),
        );
        assert!(
            elec_only_e7 > 2.0 * e7_share,
            "E7 among electricity only {elec_only_e7}"
        );
        let pm = |p| share(vs.iter().filter(|v| v.payment_method == p).count(), n);
        assert!((pm(PaymentMethod::DirectDebit) - 0.70).abs() < 0.015);
        assert!((pm(PaymentMethod::StandardCredit) - 0.13).abs() < 0.01);
        assert!((pm(PaymentMethod::Prepayment) - 0.17).abs() < 0.01);
        let dual = share(vs.iter().filter(|v| v.fuel == Fuel::DualFuel).count(), n);
        assert!((0.68..=0.78).contains(&dual), "dual fuel {dual}");
        let std_elec: Vec<u32> = with_elec
            .iter()
            .filter(|v| v.meter == Meter::SingleRate)
            .map(|v| v.elec_kwh)
            .collect();
        let e7_elec: Vec<u32> = with_elec
            .iter()
            .filter(|v| v.meter == Meter::Economy7)
            .map(|v| v.elec_kwh)
            .collect();
        let gas: Vec<u32> = vs
            .iter()
            .filter(|v| v.fuel.has_gas())
            .map(|v| v.gas_kwh)
            .collect();
        // DESNZ 2021 GB medians: 2,613 (standard), 3,597 (E7), 10,676 (gas).
        let close = |x: f64, target: f64, tol: f64| (x / target - 1.0).abs() < tol;
        assert!(close(median(std_elec), 2_613.0, 0.04), "std median");
        assert!(close(median(e7_elec), 3_597.0, 0.05), "E7 median");
        assert!(close(median(gas), 10_676.0, 0.04), "gas median");
        let known = vs.iter().filter(|v| v.e7_night_share_bp.is_some()).count();
        assert!(
            (0.25..=0.35).contains(&share(known, e7)),
            "night share known"
        );
        assert!(
            vs.iter()
                .filter_map(|v| v.e7_night_share_bp)
                .all(|bp| (2_000..=7_000).contains(&bp))
        );
        let london = share(vs.iter().filter(|v| v.region.letter() == 'C').count(), n);
        assert!((0.10..=0.14).contains(&london), "London {london}");
        let octopus = share(
            vs.iter()
                .filter(|v| v.current_supplier.as_deref() == Some("Octopus Energy"))
                .count(),
            n,
        );
        assert!((0.22..=0.26).contains(&octopus), "Octopus {octopus}");
        let filter =
            |f: fn(&VisitorFilters) -> bool| share(vs.iter().filter(|v| f(&v.filters)).count(), n);
        assert!((filter(|f| f.fixed_only) - 0.15).abs() < 0.01);
        assert!((filter(|f| f.switchable_only) - 0.30).abs() < 0.015);
    }

    #[test]
    fn current_tariffs_are_the_visitors_own_and_priceable() {
        let m = market();
        let vs = visits(&m, 5_000);
        let (mut unknown, mut fixed, mut variable, mut closed) = (0, 0, 0, 0);
        for v in &vs {
            let Some(id) = &v.current_tariff else {
                unknown += 1;
                continue;
            };
            let t = m.tariff(id).unwrap();
            assert_eq!(Some(&t.supplier), v.current_supplier.as_ref());
            assert!(
                t.annual_cost(
                    v.region,
                    v.payment_method,
                    v.fuel,
                    v.pricing_meter(),
                    &v.usage()
                )
                .is_some(),
                "{} cannot be priced on {id}",
                v.visit_id
            );
            match t.kind {
                TariffKind::Fixed => fixed += 1,
                TariffKind::Variable => variable += 1,
            }
            closed += usize::from(!t.on_sale);
        }
        let n = vs.len();
        assert!(
            (share(unknown, n) - 0.10).abs() < 0.015,
            "unknown {unknown}"
        );
        // Fixes are mostly direct debit only, so fewer than 35% of all visitors can be on one.
        assert!((0.20..=0.35).contains(&share(fixed, n)), "fixed {fixed}");
        assert!(variable > fixed && closed > 0);
    }

    #[test]
    fn fixes_vary_by_region_and_tariffs_keep_to_their_suppliers_payment_methods() {
        let m = market();
        // The cheapest fix for a typical dual-fuel direct-debit home is not the same everywhere.
        let usage = tariffsim::price::Usage {
            electricity_kwh: 2_500,
            gas_kwh: 9_500,
            night_share_bp: 0,
        };
        let mut cheapest = HashSet::new();
        for region in Region::all() {
            let best = m
                .tariffs
                .iter()
                .filter(|t| t.kind == TariffKind::Fixed && t.on_sale)
                .filter_map(|t| {
                    t.annual_cost(
                        region,
                        PaymentMethod::DirectDebit,
                        Fuel::DualFuel,
                        Meter::SingleRate,
                        &usage,
                    )
                    .map(|c| (c, t.id.as_str()))
                })
                .min()
                .unwrap();
            cheapest.insert(best.1);
        }
        assert!(
            cheapest.len() >= 3,
            "cheapest fixes by region: {cheapest:?}"
        );
        for t in &m.tariffs {
            let spec = SUPPLIERS.iter().find(|s| s.name == t.supplier).unwrap();
            for card in &t.rates {
                assert!(
                    spec.payment_methods.contains(&card.payment_method),
                    "{} is offered for {}, which {} does not sell",
                    t.id,
                    card.payment_method,
                    t.supplier
                );
            }
        }
    }

    #[test]
    fn same_seed_same_bytes() {
        let a = build_market(7, as_of(), 18, 60).unwrap();
        let b = build_market(7, as_of(), 18, 60).unwrap();
        let c = build_market(8, as_of(), 18, 60).unwrap();
        let json = |m: &Market| serde_json::to_string_pretty(m).unwrap();
        assert_eq!(json(&a), json(&b));
        assert_ne!(json(&a), json(&c));
        let csv = |seed| {
            let to = NaiveDate::from_ymd_opt(2026, 9, 30).unwrap();
            let mut out = Vec::new();
            write_visits_csv(&mut out, &build_visits(&a, seed, 500, as_of(), to).unwrap()).unwrap();
            out
        };
        assert_eq!(csv(3), csv(3));
        assert_ne!(csv(3), csv(4));
    }

    #[test]
    fn sample_scenario_applies() {
        let m = market();
        let s = sample_scenario(&m).unwrap();
        let h = m.apply(&s).unwrap();
        let newco = h.tariff("newco-fix-12m").unwrap();
        assert!(newco.hypothetical && newco.on_sale);
        assert_eq!(newco.rates.len(), 14);
        assert!(
            h.tariffs
                .iter()
                .filter(|t| t.supplier == "Outfox the Market")
                .all(|t| !t.on_sale)
        );
        let c = Region::from_letter('C').unwrap();
        let unit = newco.card(c, PaymentMethod::DirectDebit).unwrap();
        // 26.35 x 0.96 = 25.296 -> 25.30 p/kWh.
        assert_eq!(unit.electricity.unwrap().unit_p_per_kwh, Millipence(25_300));
        let json = serde_json::to_string_pretty(&s).unwrap();
        assert_eq!(Scenario::from_json(&json).unwrap(), s);
    }
}
