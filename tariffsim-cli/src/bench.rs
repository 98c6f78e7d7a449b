//! `tariffsim bench`: prints throughput, speedup and memory figures, each next to a baseline
//! measured in the same run (this machine kind is noisy; ratios travel, absolute numbers less so).

use crate::inputs::{Inputs, SpecOverrides};
use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::ProgressBar;
use rayon::prelude::*;
use std::hint::black_box;
use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;
use tariffsim::Simulation;

#[derive(Args, Debug)]
pub struct BenchArgs {
    /// Run spec to measure (its market, scenario, visits and filter).
    #[arg(long, default_value = "data/sample/run.json")]
    spec: PathBuf,
    /// Profiles replayed per measurement, 1 to 10,000,000,000.
    #[arg(long, default_value_t = 2_000_000, value_parser = crate::args::sample_size, allow_negative_numbers = true)]
    profiles: u64,
    /// Repeats of each measurement; the best is reported.
    #[arg(long, default_value_t = 3, allow_negative_numbers = true)]
    repeats: u32,
    /// Sample sizes of the peak-memory comparison (a small and a large run, impressions to /dev/null).
    #[arg(long, num_args = 2, default_values_t = [1_000_000u64, 10_000_000u64], allow_negative_numbers = true)]
    memory: Vec<u64>,
    /// Skip the peak-memory comparison.
    #[arg(long)]
    no_memory: bool,
}

fn best_secs(repeats: u32, mut f: impl FnMut()) -> f64 {
    (0..repeats.max(1))
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn in_pool<T: Send>(threads: usize, f: impl FnOnce() -> T + Send) -> T {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
        .install(f)
}

fn replay_all(sim: &Simulation) {
    (0..sim.chunk_count()).into_par_iter().for_each(|i| {
        black_box(sim.replay_chunk(i, |_, _, _, _, _, _| {}).expect("chunk"));
    });
}

fn sample_all(sim: &Simulation) {
    (0..sim.chunk_count()).into_par_iter().for_each(|i| {
        let range = sim.chunk_profiles(i).expect("chunk");
        black_box(sim.sample(range).fold(0usize, |a, (_, m)| a ^ m));
    });
}

fn simulate_all(sim: &Simulation) -> u64 {
    let mut bytes = 0u64;
    crate::run_chunks(
        sim,
        rayon::current_num_threads(),
        &ProgressBar::hidden(),
        |csv| {
            bytes += black_box(csv.len()) as u64;
            Ok(())
        },
    )
    .expect("simulate");
    bytes
}

/// Peak resident memory of this process in kB (Linux `VmHWM`).
pub fn peak_rss_kb() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    status
        .lines()
        .find_map(|l| l.strip_prefix("VmHWM:"))
        .and_then(|v| v.split_whitespace().next()?.parse().ok())
}

fn peak_rss_of_run(spec: &PathBuf, sample_size: u64) -> Result<u64> {
    let dir = std::env::temp_dir().join(format!("tariffsim-bench-{}", std::process::id()));
    let out = Command::new(std::env::current_exe()?)
        .args([
            "simulate",
            "--quiet",
            "--print-peak-rss",
            "--impressions",
            "/dev/null",
            "--sample-size",
        ])
        .arg(sample_size.to_string())
        .arg("--out")
        .arg(&dir)
        .arg(spec)
        .output()
        .context("cannot run tariffsim simulate")?;
    let _ = std::fs::remove_dir_all(&dir);
    if !out.status.success() {
        bail!("simulate failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    String::from_utf8_lossy(&out.stderr)
        .lines()
        .find_map(|l| l.strip_prefix("peak_rss_kb ")?.trim().parse().ok())
        .context("simulate did not report its peak memory")
}

pub fn run(a: &BenchArgs) -> Result<()> {
    let overrides = SpecOverrides {
        sample_size: Some(a.profiles),
        ..Default::default()
    };
    let mut inputs = Inputs::load(&a.spec, &overrides)?;
    let sim = inputs.simulation()?;
    // The same run replayed on the scenario market only (no paired comparison with the base).
    inputs.spec.compare = false;
    let sim_alone = inputs.simulation()?;
    let cores = rayon::current_num_threads();
    let n = a.profiles as f64;
    println!(
        "tariffsim bench: {} ({} tariffs, population {}), {} profiles, page size {}, best of {}, {} cores",
        a.spec.display(),
        sim.index().market().tariffs.len(),
        sim.population_size(),
        a.profiles,
        sim.spec().page_size,
        a.repeats,
        cores
    );

    let sample_1 = best_secs(a.repeats, || in_pool(1, || sample_all(&sim)));
    let replay_1 = best_secs(a.repeats, || in_pool(1, || replay_all(&sim)));
    let alone_1 = best_secs(a.repeats, || in_pool(1, || replay_all(&sim_alone)));
    let replay_n = best_secs(a.repeats, || in_pool(cores, || replay_all(&sim)));
    let mut bytes = 0;
    let simulate_n = best_secs(a.repeats, || bytes = in_pool(cores, || simulate_all(&sim)));

    println!();
    println!("{:<44} {:>14} {:>12}", "measurement", "profiles/s", "ratio");
    println!(
        "{:<44} {:>14.0} {:>12}",
        "baseline: sampling only, 1 thread",
        n / sample_1,
        "1.00"
    );
    println!(
        "{:<44} {:>14.0} {:>11.2}x",
        if sim.compares() {
            "replay + comparison with the base, 1 thread"
        } else {
            "replay (price, rank, summary), 1 thread"
        },
        n / replay_1,
        sample_1 / replay_1
    );
    if sim.compares() {
        println!(
            "{:<44} {:>14.0} {:>11.2}x  (of replay with the comparison; target <= 2.20x: {})",
            "replay, scenario only (compare: false), 1 thread",
            n / alone_1,
            alone_1 / replay_1,
            if replay_1 / alone_1 <= 2.2 {
                "met"
            } else {
                "NOT met"
            }
        );
        println!(
            "{:<44} {:>14} {:>11.2}x  (cost per profile, comparison on / off)",
            "comparison cost",
            "",
            replay_1 / alone_1
        );
    }
    println!(
        "{:<44} {:>14.0} {:>11.2}x  (speedup over 1 thread)",
        format!("replay, {cores} threads"),
        n / replay_n,
        replay_1 / replay_n
    );
    println!(
        "{:<44} {:>14.0} {:>11.2}x  (of replay on {cores} threads; {:.0} MB/s of CSV)",
        format!("simulate incl. impressions CSV, {cores} threads"),
        n / simulate_n,
        replay_n / simulate_n,
        bytes as f64 / simulate_n / 1e6
    );
    // The per-core target is for the replay itself: with a comparison, the scenario-only row.
    let plain_1 = if sim.compares() { alone_1 } else { replay_1 };
    println!(
        "target: replay >= 1,000,000 profiles/s per core: {}",
        if n / plain_1 >= 1e6 { "met" } else { "NOT met" }
    );

    if !a.no_memory {
        let (small, large) = (a.memory[0], a.memory[1]);
        let rss_small = peak_rss_of_run(&a.spec, small)?;
        let rss_large = peak_rss_of_run(&a.spec, large)?;
        println!();
        println!("peak memory of `simulate` (impressions to /dev/null):");
        println!("  {small:>12} profiles: {:>8} kB  (baseline)", rss_small);
        println!(
            "  {large:>12} profiles: {:>8} kB  {:.3}x",
            rss_large,
            rss_large as f64 / rss_small as f64
        );
        println!(
            "target: flat within 10%: {}",
            if (rss_large as f64) <= rss_small as f64 * 1.10 {
                "met"
            } else {
                "NOT met"
            }
        );
    }
    Ok(())
}
