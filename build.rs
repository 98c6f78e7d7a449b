//! Turns the embedded TDCV table (`data/domain/tdcv.csv`) into a constant (`$OUT_DIR/tdcv.rs`,
//! included by `src/consumption.rs`): the table stays data, and a cold start of the price lambda
//! neither compiles nor runs a reader for it.
//!
//! The CSV is our own: a header, then one vintage a line, the free-text `note` column last (so a
//! line splits into the header's number of fields with any comma of the note kept in it). Only the
//! medium values are used. A malformed table fails the build, naming the line.

// The build reads what cargo tells it in the environment; the core (src/) never does.
#![allow(clippy::disallowed_methods)]

use std::fmt::Write as _;
use std::path::Path;

fn main() {
    let manifest = std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR");
    let csv = Path::new(&manifest).join("data/domain/tdcv.csv");
    println!("cargo::rerun-if-changed={}", csv.display());
    let text = std::fs::read_to_string(&csv).unwrap_or_else(|e| panic!("{}: {e}", csv.display()));
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    let headers: Vec<&str> = lines
        .next()
        .expect("tdcv.csv: no header")
        .split(',')
        .map(str::trim)
        .collect();
    let col = |name: &str| {
        headers
            .iter()
            .position(|h| *h == name)
            .unwrap_or_else(|| panic!("tdcv.csv lacks column {name}"))
    };
    let (date, elec, e7, gas) = (
        col("in_force_from"),
        col("elec_medium"),
        col("e7_medium"),
        col("gas_medium"),
    );
    let mut rows: Vec<((i32, u32, u32), [u32; 3])> = lines
        .map(|line| {
            let r: Vec<&str> = line.splitn(headers.len(), ',').map(str::trim).collect();
            let kwh = |i: usize| {
                r.get(i)
                    .filter(|v| !v.is_empty() && v.bytes().all(|c| c.is_ascii_digit()))
                    .and_then(|v| v.parse::<u32>().ok())
                    .unwrap_or_else(|| {
                        panic!(
                            "tdcv.csv: {line:?}: column {} is not a whole number of kWh",
                            headers[i]
                        )
                    })
            };
            // YYYY-MM-DD exactly (a date that does not exist fails in src/consumption.rs's const fn).
            let text = r[date].as_bytes();
            let digits = |a: usize, b: usize| text[a..b].iter().all(u8::is_ascii_digit);
            let well_formed = text.len() == 10
                && text[4] == b'-'
                && text[7] == b'-'
                && digits(0, 4)
                && digits(5, 7)
                && digits(8, 10);
            assert!(
                well_formed,
                "tdcv.csv: {line:?}: in_force_from is not a YYYY-MM-DD date"
            );
            let number = |a: usize, b: usize| r[date][a..b].parse::<u32>().expect("digits");
            let (y, m, d) = (number(0, 4), number(5, 7), number(8, 10));
            ((y as i32, m, d), [kwh(elec), kwh(e7), kwh(gas)])
        })
        .collect();
    assert!(!rows.is_empty(), "tdcv.csv: no vintage");
    rows.sort_by_key(|r| r.0);
    if let Some(w) = rows.windows(2).find(|w| w[0].0 == w[1].0) {
        panic!("tdcv.csv: two vintages in force from {:?}", w[0].0);
    }
    let mut out = String::from("[\n");
    for ((y, m, d), [e, e7, g]) in rows {
        writeln!(
            out,
            "    TypicalConsumption {{ in_force_from: date({y}, {m}, {d}), electricity_kwh: {e}, economy7_kwh: {e7}, gas_kwh: {g} }},"
        )
        .expect("write to a String");
    }
    out.push(']');
    let dest = Path::new(&std::env::var("OUT_DIR").expect("cargo sets OUT_DIR")).join("tdcv.rs");
    std::fs::write(&dest, out).unwrap_or_else(|e| panic!("{}: {e}", dest.display()));
}
