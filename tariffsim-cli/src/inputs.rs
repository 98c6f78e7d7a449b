//! Reading a run's inputs from files, with errors that name the file.

use anyhow::{Context, Result, anyhow};
use clap::Args;
use std::path::{Path, PathBuf};
use tariffsim::compare::MAX_COMPARE_PAGE_SIZE;
use tariffsim::run::{MAX_CHUNK_ROWS, MAX_CHUNK_SIZE, MAX_PAGE_SIZE};
use tariffsim::table::ProfileInput;
use tariffsim::visit::VisitorFilters;
use tariffsim::{Market, MarketIndex, RunError, RunSpec, Scenario, Simulation, Visit};

/// Turns a core error into an error that starts with its stable code.
pub fn coded(e: impl Into<tariffsim::Error>) -> anyhow::Error {
    let e = e.into();
    anyhow!("[{}] {e}", e.code())
}

/// A profile error from the `price` flags, naming the flag rather than the request field.
pub fn flag_error(e: tariffsim::VisitError) -> anyhow::Error {
    match &e {
        tariffsim::VisitError::InvalidProfile { field, problem, .. } => {
            let flag = match *field {
                "e7_night_share" => "night-share",
                "timestamp" => "visit-date",
                f => f,
            };
            anyhow!("[{}] --{}: {problem}", e.code(), flag.replace('_', "-"))
        }
        _ => coded(e),
    }
}

/// Values that replace the run spec's own. Each is checked as the spec's field is, and a value
/// that cannot be used is blamed on the flag, never on the spec file.
#[derive(Args, Debug, Default)]
pub struct SpecOverrides {
    /// Replace the spec's sample size: 1 to 10,000,000,000.
    #[arg(long, value_parser = crate::args::sample_size, allow_negative_numbers = true)]
    pub sample_size: Option<u64>,
    /// Replace the spec's chunk size: 1 to 1,000,000, and chunk size x page size at most
    /// 5,000,000.
    #[arg(long, value_parser = crate::args::run_chunk_size, allow_negative_numbers = true)]
    pub chunk_size: Option<u64>,
    /// Replace the spec's seed.
    #[arg(long, value_parser = crate::args::run_u64, allow_negative_numbers = true)]
    pub seed: Option<u64>,
    /// Replace the spec's page size: 1 to 1000 (at most 100 when the run compares with the market
    /// before its scenario), and chunk size x page size at most 5,000,000.
    #[arg(long, value_parser = crate::args::run_page_size, allow_negative_numbers = true)]
    pub page_size: Option<u16>,
}

/// A run spec and the parsed files it names.
pub struct Inputs {
    pub spec: RunSpec,
    pub market: Market,
    pub scenario: Option<Scenario>,
    pub visits: Vec<Visit>,
    /// The spec file, which errors about its fields name.
    spec_path: PathBuf,
    /// Whether the page size came from `--page-size` rather than the spec file.
    page_size_flag: bool,
}

/// Refuses chunk size x page size past the core's limit when a flag gave either: the message
/// names the flag (and the file, for the value it gave), where the core's would name the file
/// alone. A value out of range in the file is left to [`RunSpec::validate`], which names it.
fn check_chunk_rows(spec: &RunSpec, o: &SpecOverrides, spec_path: &Path) -> Result<()> {
    if o.chunk_size.is_none() && o.page_size.is_none() {
        return Ok(());
    }
    let (chunk, page) = (spec.chunk_size, u64::from(spec.page_size));
    if !(1..=MAX_CHUNK_SIZE).contains(&chunk)
        || !(1..=u64::from(MAX_PAGE_SIZE)).contains(&page)
        || chunk * page <= MAX_CHUNK_ROWS
    {
        return Ok(());
    }
    let from_file = |field: &str, value: u64| format!("{field} {value} of {}", spec_path.display());
    let (first, second, fix) = match (o.chunk_size, o.page_size) {
        (Some(_), Some(_)) => (
            format!("--chunk-size {chunk}"),
            format!("--page-size {page}"),
            format!("give --chunk-size {} or less", MAX_CHUNK_ROWS / page),
        ),
        (Some(_), None) => (
            format!("--chunk-size {chunk}"),
            from_file("page_size", page),
            format!("give --chunk-size {} or less", MAX_CHUNK_ROWS / page),
        ),
        _ => (
            format!("--page-size {page}"),
            from_file("chunk_size", chunk),
            format!(
                "give --page-size {} or less, or a smaller --chunk-size",
                MAX_CHUNK_ROWS / chunk
            ),
        ),
    };
    Err(anyhow!(
        "[InvalidRunSpec] {first} x {second} may write more than {MAX_CHUNK_ROWS} rows in one chunk: {fix}"
    ))
}

fn read(path: &Path) -> Result<String> {
    let bytes = read_bytes(path)?;
    String::from_utf8(bytes).map_err(|e| {
        anyhow!(
            "[InvalidEncoding] {} is not UTF-8 text (byte {} is not valid UTF-8): save it as UTF-8",
            path.display(),
            e.utf8_error().valid_up_to()
        )
    })
}

fn read_bytes(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).with_context(|| format!("[ReadFailed] cannot read {}", path.display()))
}

fn in_file(path: &Path) -> impl FnOnce(anyhow::Error) -> anyhow::Error + '_ {
    move |e| anyhow!("{}: {e}", path.display())
}

/// Reads and validates a market file.
pub fn load_market(path: &Path) -> Result<Market> {
    Market::from_json(&read(path)?)
        .map_err(coded)
        .map_err(in_file(path))
}

/// Reads a scenario file.
pub fn load_scenario(path: &Path) -> Result<Scenario> {
    Scenario::from_json(&read(path)?)
        .map_err(coded)
        .map_err(in_file(path))
}

/// Reads a market, applies an optional scenario, compiles it.
pub fn load_market_index(market: &Path, scenario: Option<&Path>) -> Result<MarketIndex> {
    let mut m = load_market(market)?;
    if let Some(s) = scenario {
        m = m
            .apply(&load_scenario(s)?)
            .map_err(coded)
            .map_err(in_file(s))?;
    }
    Ok(MarketIndex::new(m))
}

impl Inputs {
    /// Reads the spec and every file it names (paths relative to the spec's folder).
    pub fn load(spec_path: &Path, o: &SpecOverrides) -> Result<Inputs> {
        let mut spec = RunSpec::parse(&read(spec_path)?)
            .map_err(coded)
            .map_err(in_file(spec_path))?;
        spec.sample_size = o.sample_size.unwrap_or(spec.sample_size);
        spec.chunk_size = o.chunk_size.unwrap_or(spec.chunk_size);
        spec.seed = o.seed.unwrap_or(spec.seed);
        spec.page_size = o.page_size.unwrap_or(spec.page_size);
        // Each flag's own range is checked as it is parsed ([`crate::args`]); what is left to
        // check is how the values fit together.
        check_chunk_rows(&spec, o, spec_path)?;
        spec.validate().map_err(coded).map_err(in_file(spec_path))?;
        let dir = spec_path.parent().unwrap_or(Path::new("."));
        let resolve = |p: &str| -> PathBuf { dir.join(p) };
        let market = load_market(&resolve(&spec.market))?;
        let scenario = spec
            .scenario
            .as_deref()
            .map(|s| load_scenario(&resolve(s)))
            .transpose()?;
        let visits_path = resolve(&spec.visits);
        let bytes = read_bytes(&visits_path)?;
        let visits = tariffsim::parse_visits_csv(&bytes)
            .map_err(coded)
            .map_err(in_file(&visits_path))?;
        Ok(Inputs {
            spec,
            market,
            scenario,
            visits,
            spec_path: spec_path.to_path_buf(),
            page_size_flag: o.page_size.is_some(),
        })
    }

    /// Prepares the simulation.
    pub fn simulation(&self) -> Result<Simulation> {
        Simulation::new(
            &self.market,
            self.scenario.as_ref(),
            &self.visits,
            &self.spec,
        )
        .map_err(|e| {
            let file = match &e {
                tariffsim::Error::Scenario(_) => self.spec.scenario.clone().unwrap_or_default(),
                tariffsim::Error::Visit(_) => self.spec.visits.clone(),
                tariffsim::Error::Market(_) => self.spec.market.clone(),
                // A page size too large for a comparing run, given by the flag.
                tariffsim::Error::Run(RunError::InvalidField {
                    field: "page_size", ..
                }) if self.page_size_flag && self.spec.page_size > MAX_COMPARE_PAGE_SIZE => {
                    return anyhow!(
                        "[{}] --page-size {}: a run that compares with the base market shows at most \
                         {MAX_COMPARE_PAGE_SIZE} results a page: give --page-size {MAX_COMPARE_PAGE_SIZE} \
                         or less, or set compare to false in {}",
                        e.code(),
                        self.spec.page_size,
                        self.spec_path.display()
                    );
                }
                _ => self.spec_path.display().to_string(),
            };
            anyhow!("{file}: {}", coded(e))
        })
    }
}

/// One visitor, from flags. Left out, a field takes the core's default (the same as the `price`
/// Lambda's): dual fuel, single-rate, direct debit, the typical consumption in force at the
/// market's date, a visit on the market's date. Values are checked by the core, as the `price`
/// Lambda's are, and refused with its codes (`[UnknownRegion]`, `[InvalidVisit]`).
#[derive(Args, Debug)]
pub struct ProfileArgs {
    /// The visit's id, which with --seed draws the order of tariffs of equal cost [default:
    /// profile-1, as the price Lambda names the first profile of a request without ids].
    #[arg(long)]
    pub visit_id: Option<String>,
    /// Region, as a GSP group letter (A-P, e.g. C for London).
    #[arg(long)]
    pub region: String,
    /// electricity, gas or dual_fuel [default: dual_fuel].
    #[arg(long)]
    pub fuel: Option<String>,
    /// single_rate or economy7 [default: single_rate].
    #[arg(long)]
    pub meter: Option<String>,
    /// direct_debit, standard_credit or prepayment [default: direct_debit].
    #[arg(long)]
    pub payment_method: Option<String>,
    /// Annual electricity kWh, rounded to the whole kWh: at least 0.5 for a fuel bought, at most
    /// 1,000,000 [default: Ofgem's typical consumption in force at the
    /// market's date, e.g. 2,500, or 3,400 for Economy 7, from July 2026].
    #[arg(long, value_parser = crate::args::profile_number, allow_negative_numbers = true)]
    pub elec_kwh: Option<f64>,
    /// Annual gas kWh, rounded likewise [default: Ofgem's typical consumption at the market's date, e.g.
    /// 9,500].
    #[arg(long, value_parser = crate::args::profile_number, allow_negative_numbers = true)]
    pub gas_kwh: Option<f64>,
    /// Economy 7 night share, 0 to 1 [default: 0.42].
    #[arg(long, value_parser = crate::args::profile_number, allow_negative_numbers = true)]
    pub night_share: Option<f64>,
    /// Date (and time) of the visit, RFC 3339 or YYYY-MM-DD: a current fix rolls over, and its
    /// exit fee is waived in its last 49 days, counting from it [default: the market's date].
    #[arg(long)]
    pub visit_date: Option<String>,
    /// Current supplier name.
    #[arg(long)]
    pub current_supplier: Option<String>,
    /// Current tariff id.
    #[arg(long)]
    pub current_tariff: Option<String>,
    /// Show fixed tariffs only.
    #[arg(long)]
    pub fixed_only: bool,
    /// Show green tariffs only.
    #[arg(long)]
    pub green_only: bool,
    /// Hide tariffs with exit fees.
    #[arg(long)]
    pub no_exit_fees: bool,
    /// Only tariffs the site can switch you to.
    #[arg(long)]
    pub switchable_only: bool,
}

impl ProfileArgs {
    /// The `price` request's profile these flags describe.
    pub fn profile(&self) -> ProfileInput {
        let text = |v: Option<String>| v;
        ProfileInput {
            visit_id: self.visit_id.clone(),
            timestamp: text(self.visit_date.clone()),
            region: self.region.clone(),
            fuel: self.fuel.clone(),
            meter: self.meter.clone(),
            payment_method: self.payment_method.clone(),
            elec_kwh: self.elec_kwh,
            gas_kwh: self.gas_kwh,
            e7_night_share: self.night_share,
            current_supplier: self.current_supplier.clone(),
            current_tariff: self.current_tariff.clone(),
            filters: VisitorFilters {
                fixed_only: self.fixed_only,
                green_only: self.green_only,
                no_exit_fees: self.no_exit_fees,
                switchable_only: self.switchable_only,
            },
        }
    }
}
