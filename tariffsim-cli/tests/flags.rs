//! Command lines as users type them: a bad flag value is one line with the code of its field and
//! status 1; a command line that cannot be parsed is one line `[InvalidUsage]` and status 2;
//! `--help` and `--version` are status 0, or 1 when they cannot be written.

use std::path::Path;
use std::process::Command;

mod common;
use common::{fixtures, tariffsim};

/// Checks one case; returns what is wrong with it, if anything.
fn check(args: &[&str], status: i32, expect: &[&str]) -> Option<String> {
    let out = tariffsim(args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    let mut wrong = Vec::new();
    if out.status.code() != Some(status) {
        wrong.push(format!("exit {:?}, not {status}", out.status.code()));
    }
    if stderr.lines().count() != 1 || !stderr.starts_with("tariffsim: error: ") {
        wrong.push("not one line `tariffsim: error: ...`".to_string());
    }
    for e in expect {
        if !stderr.contains(e) {
            wrong.push(format!("no {e:?}"));
        }
    }
    (!wrong.is_empty()).then(|| format!("{args:?}: {}: {stderr}", wrong.join(", ")))
}

/// Runs every case and reports every failing one, not just the first.
fn check_all(cases: &[(Vec<&str>, i32, Vec<&str>)]) {
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(args, status, expect)| check(args, *status, expect))
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn bad_flag_values_are_one_line_with_the_code_of_their_field() {
    let dir = tempfile::tempdir().unwrap();
    let m = fixtures().join("mini_market.json");
    let m = m.to_str().unwrap();
    let spec = fixtures().join("mini_run.json");
    let spec = spec.to_str().unwrap();
    let empty = dir.path().join("m_empty.json");
    std::fs::write(&empty, "").unwrap();
    let empty = empty.to_str().unwrap();
    let out = dir.path().join("x");
    let out = out.to_str().unwrap();
    let price = |more: &[&'static str]| {
        let mut v = vec!["price", "--market", m];
        v.extend(more);
        v
    };
    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            price(&["--region", "Z"]),
            1,
            vec!["[UnknownRegion] --region:", "\"Z\"", "GSP group letter"],
        ),
        (
            price(&["--region", "C", "--fuel", "oil"]),
            1,
            vec!["[InvalidVisit] --fuel:", "\"oil\"", "dual_fuel"],
        ),
        (
            price(&["--region", "C", "--meter", "e10"]),
            1,
            vec!["[InvalidVisit] --meter:", "economy7"],
        ),
        (
            price(&["--region", "C", "--payment-method", "cash"]),
            1,
            vec!["[InvalidVisit] --payment-method:", "prepayment"],
        ),
        // A negative number is a value, refused as a value.
        (
            price(&["--region", "C", "--elec-kwh", "-5"]),
            1,
            vec!["[InvalidVisit] --elec-kwh:", "-5", "kWh from 0"],
        ),
        (
            price(&["--region", "C", "--gas-kwh", "lots"]),
            1,
            vec!["[InvalidVisit] --gas-kwh:", "\"lots\" is not a number"],
        ),
        (
            price(&["--region", "C", "--night-share", "-0.1"]),
            1,
            vec!["[InvalidVisit] --night-share:", "from 0 to 1"],
        ),
        (
            price(&["--region", "C", "--visit-date", "soon"]),
            1,
            vec!["[InvalidVisit] --visit-date:"],
        ),
        (
            price(&["--region", "C", "--page-size", "0"]),
            1,
            vec!["[InvalidArgument] --page-size:", "from 1 to 4294967295"],
        ),
        (
            price(&["--region", "C", "--seed", "-1"]),
            1,
            vec!["[InvalidArgument] --seed:"],
        ),
        (
            price(&["--region", "C", "--whole-of-market", "maybe"]),
            1,
            vec!["[InvalidArgument]", "'maybe'", "true, false"],
        ),
        (
            vec!["simulate", spec, "--threads", "0"],
            1,
            vec!["[InvalidArgument] --threads:", "from 1 to 256"],
        ),
        (
            vec!["simulate", spec, "--threads", "100000"],
            1,
            vec!["[InvalidArgument] --threads:", "from 1 to 256"],
        ),
        (
            vec!["simulate", spec, "--sample-size", "-1"],
            1,
            vec!["[InvalidSampleSize] --sample-size:"],
        ),
        (
            vec!["simulate", spec, "--chunk-size", "ten"],
            1,
            vec!["[InvalidRunSpec] --chunk-size:"],
        ),
        (
            vec!["chunk", spec, "--index", "-1"],
            1,
            vec!["[NoSuchChunk] --index:", "numbered from 0"],
        ),
        (
            vec![
                "gen-market",
                "--seed",
                "1",
                "--out",
                out,
                "--suppliers",
                "0",
            ],
            1,
            vec!["[InvalidArgument] --suppliers:"],
        ),
        (
            vec![
                "gen-market",
                "--seed",
                "1",
                "--out",
                out,
                "--suppliers",
                "19",
            ],
            1,
            vec!["[InvalidArgument] --suppliers 19 is out of range"],
        ),
        (
            vec!["gen-market", "--seed", "1", "--out", out, "--tariffs", "7"],
            1,
            vec!["[InvalidArgument] --tariffs 7"],
        ),
        (
            vec!["gen-market", "--seed", "1", "--out", out, "--as-of", "July"],
            1,
            vec!["[InvalidArgument] --as-of:", "YYYY-MM-DD"],
        ),
        (
            vec!["gen-visits", "--market", empty, "--seed", "1", "--out", out],
            1,
            vec!["m_empty.json: [InvalidMarketJson]"],
        ),
        (
            vec![
                "gen-visits",
                "--market",
                m,
                "--seed",
                "1",
                "--out",
                out,
                "--rows",
                "0",
            ],
            1,
            vec!["[InvalidArgument] --rows:"],
        ),
        (
            vec![
                "gen-visits",
                "--market",
                m,
                "--seed",
                "1",
                "--out",
                out,
                "--from",
                "2026-09-01",
                "--to",
                "2026-08-01",
            ],
            1,
            vec!["[InvalidArgument] --from 2026-09-01 is after --to 2026-08-01"],
        ),
        (
            vec![
                "gen-visits",
                "--market",
                "/nonexistent.json",
                "--seed",
                "1",
                "--out",
                out,
            ],
            1,
            vec!["[ReadFailed] cannot read /nonexistent.json"],
        ),
    ];
    check_all(&cases);
    assert!(!Path::new(out).exists(), "no case wrote its output");
}

#[test]
fn command_lines_that_cannot_be_parsed_are_one_line_and_status_2() {
    let spec = fixtures().join("mini_run.json");
    let spec = spec.to_str().unwrap();
    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            vec!["simulate", spec, "--bogus"],
            2,
            vec!["[InvalidUsage]", "'--bogus'", "usage: tariffsim simulate"],
        ),
        (
            vec!["chunk", spec],
            2,
            vec![
                "[InvalidUsage]",
                "--index <INDEX>",
                "usage: tariffsim chunk",
            ],
        ),
        (
            vec!["chunk", spec, "--index"],
            2,
            vec!["[InvalidUsage]", "a value is required for '--index"],
        ),
        (
            vec!["simulat", spec],
            2,
            vec!["[InvalidUsage]", "'simulat'", "simulate"],
        ),
    ];
    check_all(&cases);
    // No command at all: the help, on standard error.
    let out = tariffsim(&[]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("Usage: tariffsim <COMMAND>"));
}

#[test]
fn help_and_version_are_status_0_or_1_when_they_cannot_be_written() {
    for args in [&["--help"][..], &["simulate", "--help"], &["--version"]] {
        let out = tariffsim(args);
        assert_eq!(out.status.code(), Some(0), "{args:?}");
        assert!(out.stderr.is_empty(), "{args:?}");
        let text = String::from_utf8(out.stdout).unwrap();
        assert!(
            text.starts_with("tariffsim") || text.contains("Usage:"),
            "{text}"
        );
        assert!(text.ends_with('\n'));
    }
    let help = tariffsim(&["simulate", "--help"]).stdout;
    let help = String::from_utf8(help).unwrap();
    assert!(
        help.contains("summary.json last"),
        "simulate --help says what a reader can rely on"
    );
    if !Path::new("/dev/full").exists() {
        return;
    }
    for args in [&["--help"][..], &["--version"]] {
        let out = Command::new(env!("CARGO_BIN_EXE_tariffsim"))
            .args(args)
            .stdout(std::fs::File::create("/dev/full").unwrap())
            .output()
            .unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(1), "{args:?}: {stderr}");
        assert_eq!(stderr.lines().count(), 1, "{stderr}");
        assert!(
            stderr.contains("[WriteFailed] cannot write to standard output"),
            "{stderr}"
        );
    }
}
