//! `tariffsim`: the native batch command. Reads files, runs the pure core on every core, writes
//! files. All simulation logic lives in the `tariffsim` library.

mod args;
mod bench;
mod generate;
mod inputs;
mod output;

use anyhow::{Context, Result};
use clap::{Args, CommandFactory, Parser, Subcommand};
use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};
use inputs::{Inputs, SpecOverrides};
use output::Output;
use rayon::prelude::*;
use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use tariffsim::money::{Gbp, mean_pence};
use tariffsim::table::{PriceOptions, price_tables};
use tariffsim::{PageRules, Summary};

/// Simulate how hypothetical energy tariffs would perform on a GB price-comparison results table.
#[derive(Parser, Debug)]
#[command(name = "tariffsim", version)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Run a whole simulation: sample profiles, replay them, write impressions CSV and summary JSON
    /// (and, with a scenario, the comparison with the market before it), print the headline.
    ///
    /// Once its inputs are read, the run removes the previous run's files (OUT/impressions.csv,
    /// the --impressions file, OUT/summary.json, OUT/comparison.json, OUT/comparison.csv), writes
    /// each file under a temporary name (`.NAME.tmp-PID`, removed on error; one a kill left is
    /// removed by the next run) and renames them into place only when every one is complete,
    /// summary.json last: when summary.json is there, every file beside it is complete and from
    /// the same run; a failed or interrupted run leaves none of them. Special files (`/dev/null`,
    /// a FIFO) are written directly.
    Simulate(SimulateArgs),
    /// Compute one chunk of a run (the unit a Lambda worker runs); chunks concatenated in order
    /// equal the `simulate` output.
    ///
    /// Files are written under a temporary name and renamed into place when complete, the summary
    /// last; the previous files are removed first.
    Chunk(ChunkArgs),
    /// Price one profile against a market and show its results table.
    Price(PriceArgs),
    /// Generate a market from the published price cap.
    ///
    /// Variable tariffs and fixes on sale are priced on the cap in force at --as-of. The only
    /// regional cap table is Jul-Sep 2026's (data/domain/regional_cap_2026q3.csv); another quarter's
    /// is that table times the GB-average cap of the quarter / of Jul-Sep 2026, per component
    /// (data/domain/gb_price_cap.csv). Closed fixes are priced the same way on the cap of the
    /// quarter they were sold in, whatever --as-of: within 10% of the cap then, not of the cap in
    /// force. --as-of must fall within that GB table, with the 11 months before it (when closed
    /// fixes were sold): dates outside are refused, never priced on another quarter's cap.
    GenMarket(generate::GenMarketArgs),
    /// Generate synthetic site visits that follow the published distributions.
    ///
    /// Every visitor's current supplier is drawn among the suppliers selling their payment method,
    /// so the market needs a supplier (a tariff that is not hypothetical) for each of direct debit,
    /// standard credit and prepayment.
    GenVisits(generate::GenVisitsArgs),
    /// Measure replay throughput, multi-core speedup, end-to-end speed and peak memory.
    Bench(bench::BenchArgs),
}

#[derive(Args, Debug)]
struct SimulateArgs {
    /// Run spec JSON; its market, scenario and visits paths are relative to the spec's folder.
    spec: PathBuf,
    /// Folder for impressions.csv, summary.json and, when the run compares, comparison.json and
    /// comparison.csv.
    #[arg(long, default_value = "out")]
    out: PathBuf,
    /// Write impressions here instead of OUT/impressions.csv (`/dev/null` to skip them).
    #[arg(long)]
    impressions: Option<PathBuf>,
    /// Worker threads, 1 to 256 (default: every core).
    #[arg(long, value_parser = args::threads, allow_negative_numbers = true)]
    threads: Option<u16>,
    /// No progress bar, headline or status line.
    #[arg(long, short)]
    quiet: bool,
    /// Print the process's peak resident memory (kB) to stderr at the end (Linux).
    #[arg(long, hide = true)]
    print_peak_rss: bool,
    #[command(flatten)]
    overrides: SpecOverrides,
}

#[derive(Args, Debug)]
struct ChunkArgs {
    /// Run spec JSON.
    spec: PathBuf,
    /// Chunk number, from 0.
    #[arg(long, value_parser = args::chunk_index, allow_negative_numbers = true)]
    index: u64,
    /// Write the chunk's impressions CSV here (default: standard output). Chunk 0 carries the header.
    #[arg(long)]
    impressions: Option<PathBuf>,
    /// Write the chunk's partial summary JSON here.
    #[arg(long)]
    summary: Option<PathBuf>,
    #[command(flatten)]
    overrides: SpecOverrides,
}

#[derive(Args, Debug)]
struct PriceArgs {
    /// Market JSON.
    #[arg(long)]
    market: PathBuf,
    /// Scenario JSON to apply first.
    #[arg(long)]
    scenario: Option<PathBuf>,
    /// Results shown, 1 or more (default: all eligible tariffs).
    #[arg(long, value_parser = args::count, allow_negative_numbers = true)]
    page_size: Option<usize>,
    /// Print JSON instead of a table (the `price` Lambda's answer, less its cache key).
    #[arg(long)]
    json: bool,
    /// Seed of the tie order: tariffs of equal annual cost are ranked in a pseudo-random order
    /// drawn from (seed, visit id, tariff), never by id, so identical tariffs are equally likely to come
    /// first; the same seed always gives the same order.
    #[arg(long, default_value_t = 0, value_parser = args::any_u64, allow_negative_numbers = true)]
    seed: u64,
    /// Rank the visitor's current tariff too (by default it is the baseline, shown apart).
    #[arg(long)]
    show_current_tariff: bool,
    /// List tariffs the site cannot switch the visitor to (whole of market); `false` lists only
    /// switchable ones.
    #[arg(long, default_value_t = true, action = clap::ArgAction::Set, value_name = "BOOL")]
    whole_of_market: bool,
    #[command(flatten)]
    profile: inputs::ProfileArgs,
}

fn main() -> ExitCode {
    let argv: Vec<std::ffi::OsString> = std::env::args_os().collect();
    let cli = match Cli::try_parse_from(&argv) {
        Ok(cli) => cli,
        Err(e) => return args::report(e, &mut Cli::command(), &argv),
    };
    let result = match cli.command {
        Command::Simulate(a) => simulate(a),
        Command::Chunk(a) => chunk(a),
        Command::Price(a) => price(a),
        Command::GenMarket(a) => generate::gen_market(&a),
        Command::GenVisits(a) => generate::gen_visits(&a),
        Command::Bench(a) => bench::run(&a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            let message = format!("{e:#}");
            // Every error the command foresees carries its code; one that does not is a bug.
            let code = if has_code(&message) {
                ""
            } else {
                "[Internal] "
            };
            eprintln!("tariffsim: error: {code}{}", message.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

/// Whether an error message carries a stable code: `[` PascalCase `]`.
fn has_code(message: &str) -> bool {
    message.split('[').skip(1).any(|rest| {
        rest.split_once(']').is_some_and(|(code, _)| {
            code.starts_with(|c: char| c.is_ascii_uppercase())
                && code.chars().all(|c| c.is_ascii_alphanumeric())
        })
    })
}

/// Runs every chunk of a prepared simulation on `threads` threads, handing each chunk's
/// impressions CSV to `each` in chunk order. Memory is bounded by a window of `2 x threads`
/// chunks whose buffers are reused from one window to the next.
pub(crate) fn run_chunks(
    sim: &tariffsim::Simulation,
    threads: usize,
    progress: &ProgressBar,
    mut each: impl FnMut(&[u8]) -> Result<()>,
) -> Result<Summary> {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()?;
    let mut total = sim.empty_summary();
    let count = sim.chunk_count();
    let window = (threads as u64 * 2).max(1);
    let mut buffers: Vec<Vec<u8>> = (0..window).map(|_| Vec::new()).collect();
    let mut start = 0;
    while start < count {
        let end = (start + window).min(count);
        let summaries: Vec<Summary> = pool.install(|| {
            buffers[..(end - start) as usize]
                .par_iter_mut()
                .enumerate()
                .map(|(k, buf)| {
                    let i = start + k as u64;
                    buf.clear();
                    let summary = sim.chunk_into(i, buf);
                    let range = sim.spec().chunk_range(i);
                    progress.inc(range.end - range.start);
                    summary
                })
                .collect::<Result<_, _>>()
        })?;
        for (buf, summary) in buffers.iter().zip(&summaries) {
            total.merge(summary)?;
            each(buf)?;
        }
        start = end;
    }
    Ok(total)
}

fn progress_bar(total: u64, quiet: bool) -> ProgressBar {
    if quiet {
        return ProgressBar::hidden();
    }
    let bar = ProgressBar::with_draw_target(Some(total), ProgressDrawTarget::stderr());
    bar.set_style(
        ProgressStyle::with_template("{spinner} [{elapsed_precise}] {wide_bar} {human_pos}/{human_len} profiles ({per_sec}, {eta})")
            .expect("valid template"),
    );
    bar
}

fn simulate(a: SimulateArgs) -> Result<()> {
    let inputs = Inputs::load(&a.spec, &a.overrides)?;
    let sim = inputs.simulation()?;
    let threads = a
        .threads
        .map_or_else(rayon::current_num_threads, usize::from)
        .max(1);
    let impressions_path = a
        .impressions
        .clone()
        .unwrap_or_else(|| a.out.join("impressions.csv"));
    let summary_path = a.out.join("summary.json");
    let comparison_paths = [a.out.join("comparison.json"), a.out.join("comparison.csv")];
    output::distinct(&[
        ("--impressions", &impressions_path),
        ("summary.json", &summary_path),
        ("comparison.json", &comparison_paths[0]),
        ("comparison.csv", &comparison_paths[1]),
    ])?;
    // The previous run's files go before this run writes anything, its summary first: a reader
    // never finds files of two runs side by side, nor files of a run that did not finish.
    let stale_impressions = a.out.join("impressions.csv");
    for path in std::iter::once(&summary_path)
        .chain(&comparison_paths)
        .chain([&impressions_path, &stale_impressions])
    {
        output::remove_stale(path)?;
    }
    let mut out = Output::create(&impressions_path)?;
    let bar = progress_bar(sim.spec().sample_size, a.quiet);
    let summary = run_chunks(&sim, threads, &bar, |csv| out.write(csv))?;
    let mut done = vec![out.finish()?];
    bar.finish_and_clear();
    for (path, text) in comparison_paths
        .iter()
        .zip([summary.comparison_json(), summary.comparison_csv()])
    {
        if let Some(text) = text {
            let mut out = Output::create(path)?;
            out.write(text.as_bytes())?;
            done.push(out.finish()?);
        }
    }
    let mut out = Output::create(&summary_path)?;
    out.write(summary.report_json().as_bytes())?;
    done.push(out.finish()?);
    output::commit_all(done)?;
    if !a.quiet {
        write_stdout(headline(&summary).as_bytes())?;
        eprintln!(
            "tariffsim: {} profiles from a population of {} in {} chunks on {threads} threads: {} impressions -> {}, summary -> {}",
            summary.profiles,
            sim.population_size(),
            sim.chunk_count(),
            summary.impressions,
            impressions_path.display(),
            summary_path.display()
        );
    }
    if a.print_peak_rss {
        eprintln!("peak_rss_kb {}", bench::peak_rss_kb().unwrap_or(0));
    }
    Ok(())
}

/// An amount of pounds (already rounded to the penny by the core) as a reader expects it: the
/// sign before the £ (`-£27.55`, not `£-27.55`).
fn pounds_text(x: f64) -> String {
    if x < 0.0 {
        format!("-£{:.2}", -x)
    } else {
        format!("£{x:.2}")
    }
}

/// What an analyst reads first: each hypothetical tariff's page-1 share and clicks with their
/// intervals and, when the run compares, what the change did to the market.
fn headline(summary: &Summary) -> String {
    use std::fmt::Write as _;
    let mut summary = summary.clone();
    summary.finish();
    let mut out = String::new();
    // Figures rounded as the outputs round them: half away from zero (`f64::round`), never
    // half-to-even as `{:.2}` would on the binary value; no "-0".
    let fixed = |x: f64, digits: i32| {
        let f = 10f64.powi(digits);
        let r = (x * f).round() / f;
        format!("{:.*}", digits as usize, if r == 0.0 { 0.0 } else { r })
    };
    let signed = |x: f64, digits: i32| {
        let t = fixed(x, digits);
        if t.starts_with('-') {
            t
        } else {
            format!("+{t}")
        }
    };
    // Pounds from whole pence, the sign before the £.
    let pounds = |p: Gbp| {
        if p.0 < 0 {
            format!("-£{}", Gbp(-p.0))
        } else {
            format!("£{p}")
        }
    };
    // "95% CI low to high" of an estimate, or why there is none (a mean of a single profile, or of
    // fewer than two visits' worth).
    let ci = |e: &tariffsim::stats::Estimate, f: &dyn Fn(f64) -> String| match e.ci95 {
        Some([low, high]) => format!("95% CI {} to {}", f(low), f(high)),
        None => "no interval: too few visits".to_string(),
    };
    let pct = |e: &tariffsim::stats::Estimate| match e.ci95 {
        Some([low, high]) => format!(
            "{}% (95% CI {}-{}%)",
            fixed(100.0 * e.value, 2),
            fixed(100.0 * low, 2),
            fixed(100.0 * high, 2)
        ),
        None => format!(
            "{}% ({})",
            fixed(100.0 * e.value, 2),
            ci(e, &|x| x.to_string())
        ),
    };
    let num = |e: &tariffsim::stats::Estimate| {
        format!("{} ({})", fixed(e.value, 0), ci(e, &|x| fixed(x, 0)))
    };
    for t in summary.tariffs.iter().filter(|t| t.hypothetical) {
        let Some(i) = &t.intervals else { continue };
        let _ = writeln!(
            out,
            "{} ({}, hypothetical): page-1 share {}, expected clicks {}",
            t.id,
            t.supplier,
            pct(&i.page1_share),
            num(&i.expected_clicks)
        );
    }
    if let Some(c) = &summary.comparison {
        let _ = writeln!(
            out,
            "against the market without the scenario, on the same {} profile{}:",
            c.profiles,
            if c.profiles == 1 { "" } else { "s" }
        );
        // The means from the integer sums, to the penny as summary.json rounds them.
        let saving = c.mean_best_saving_gbp.as_ref().map(|s| {
            let b = &c.best_saving;
            let change = mean_pence(b.after - b.before, b.n);
            format!(
                "mean best available saving {} -> {} (change {}{} GBP, {})",
                pounds(mean_pence(b.before, b.n)),
                pounds(mean_pence(b.after, b.n)),
                if change.0 < 0 { "" } else { "+" },
                change,
                ci(&s.difference, &|x| signed(x, 2))
            )
        });
        let changed = c
            .best_tariff_changed_share
            .as_ref()
            .map(|e| format!("best tariff changed for {}", pct(e)));
        let parts: Vec<String> = saving.into_iter().chain(changed).collect();
        if !parts.is_empty() {
            let _ = writeln!(out, "  {}", parts.join("; "));
        }
        // Tariffs that lose at least one click as printed (a loss that rounds to 0 is none).
        let mut losers: Vec<_> = c
            .tariffs
            .iter()
            .filter_map(|t| t.expected_clicks.map(|e| (t, e.difference)))
            .filter(|(_, d)| d.value.round() < 0.0)
            .collect();
        losers.sort_by(|a, b| a.1.value.total_cmp(&b.1.value).then(a.0.id.cmp(&b.0.id)));
        if !losers.is_empty() {
            let _ = writeln!(out, "  losing most clicks:");
        }
        for (t, d) in losers.iter().take(5) {
            let _ = writeln!(
                out,
                "    {} ({}): {} clicks ({})",
                t.id,
                t.supplier,
                signed(d.value, 0),
                ci(d, &|x| signed(x, 0))
            );
        }
    }
    out
}

fn chunk(a: ChunkArgs) -> Result<()> {
    let inputs = Inputs::load(&a.spec, &a.overrides)?;
    let sim = inputs.simulation()?;
    let out = sim.chunk(a.index).map_err(inputs::coded)?;
    if let (Some(i), Some(s)) = (&a.impressions, &a.summary) {
        output::distinct(&[("--impressions", i), ("--summary", s)])?;
    }
    for path in a.summary.iter().chain(&a.impressions) {
        output::remove_stale(path)?;
    }
    let mut done = Vec::new();
    match &a.impressions {
        Some(p) => {
            let mut file = Output::create(p)?;
            file.write(&out.impressions_csv)?;
            done.push(file.finish()?);
        }
        None => write_stdout(&out.impressions_csv)?,
    }
    if let Some(p) = &a.summary {
        let mut file = Output::create(p)?;
        file.write(out.summary.to_json().as_bytes())?;
        done.push(file.finish()?);
    }
    output::commit_all(done)
}

fn price(a: PriceArgs) -> Result<()> {
    let index = inputs::load_market_index(&a.market, a.scenario.as_deref())?;
    let visit = a
        .profile
        .profile()
        .to_visit(0, index.market().as_of)
        .map_err(inputs::flag_error)?;
    let options = PriceOptions {
        page_size: a.page_size.unwrap_or(usize::MAX),
        seed: a.seed,
        rules: PageRules {
            show_current_tariff: a.show_current_tariff,
            whole_of_market: a.whole_of_market,
        },
    };
    let answer = price_tables(&index, std::slice::from_ref(&visit), &options);
    let mut text = Vec::new();
    if a.json {
        serde_json::to_writer_pretty(&mut text, &answer)?;
        text.push(b'\n');
    } else {
        let table = &answer.results[0];
        let mut t = comfy_table::Table::new();
        t.set_header([
            "rank",
            "supplier",
            "tariff",
            "kind",
            "annual cost",
            "saving",
            "",
        ]);
        for r in &table.rows {
            let mut flags = Vec::new();
            if r.green {
                flags.push("green".to_string());
            }
            if r.hypothetical {
                flags.push("hypothetical".into());
            }
            if !r.switchable {
                flags.push("not switchable".into());
            }
            if r.exit_fee_gbp > 0.0 {
                flags.push(format!("exit fee {}", pounds_text(r.exit_fee_gbp)));
            }
            t.add_row([
                r.rank.to_string(),
                r.supplier.clone(),
                r.name.clone(),
                r.kind.as_str().to_string(),
                pounds_text(r.annual_cost_gbp),
                r.saving_gbp.map_or("-".into(), pounds_text),
                flags.join(", "),
            ]);
        }
        writeln!(text, "{t}")?;
        let eligible = table.eligible;
        match (table.current_cost_gbp, &table.current_tariff_id) {
            (Some(c), Some(id)) => {
                write!(text, "staying put ({id}) costs {} a year", pounds_text(c))?;
                if let Some(fee) = table.switch_cost_gbp.filter(|&f| f > 0.0) {
                    write!(text, ", {} to leave now", pounds_text(fee))?;
                }
                writeln!(text, "; {eligible} tariffs eligible")?;
            }
            _ => writeln!(text, "current cost unknown; {eligible} tariffs eligible")?,
        }
    }
    write_stdout(&text)
}

/// Writes all of `bytes` to standard output and flushes it; a failed write is an error.
fn write_stdout(bytes: &[u8]) -> Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(bytes)
        .and_then(|()| out.flush())
        .context("[WriteFailed] cannot write to standard output")
}
