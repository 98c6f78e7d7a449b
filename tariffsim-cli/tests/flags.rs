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
fn run_flags_out_of_range_are_blamed_on_the_flag_not_the_spec() {
    let dir = tempfile::tempdir().unwrap();
    let spec = fixtures().join("mini_run.json");
    let spec = spec.to_str().unwrap();
    // The mini run with its scenario (so it compares) and chunks of a million profiles.
    let mut big_chunks: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("mini_run.json")).unwrap()).unwrap();
    for file in ["market", "scenario", "visits"] {
        let name = big_chunks[file].as_str().unwrap().to_string();
        big_chunks[file] = fixtures().join(name).to_str().unwrap().into();
    }
    big_chunks["chunk_size"] = 1_000_000.into();
    let big_chunks_path = dir.path().join("big_chunks.json");
    std::fs::write(&big_chunks_path, big_chunks.to_string()).unwrap();
    let big = big_chunks_path.to_str().unwrap();
    let out = dir.path().join("out");
    let out = out.to_str().unwrap();
    let run = |more: &[&'static str]| {
        let mut v = vec!["simulate", spec, "--quiet", "--out", out];
        v.extend(more);
        v
    };
    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            run(&["--sample-size", "20000000000"]),
            1,
            vec![
                "tariffsim: error: [InvalidSampleSize] --sample-size: \"20000000000\"",
                "from 1 to 10000000000",
            ],
        ),
        (
            vec![
                "chunk",
                spec,
                "--index",
                "0",
                "--sample-size",
                "99999999999",
            ],
            1,
            vec![
                "error: [InvalidSampleSize] --sample-size:",
                "from 1 to 10000000000",
            ],
        ),
        (
            run(&["--chunk-size", "2000000"]),
            1,
            vec![
                "error: [InvalidRunSpec] --chunk-size: \"2000000\"",
                "from 1 to 1000000",
            ],
        ),
        // Values in range that do not fit together: the flags, and what to give them.
        (
            run(&["--chunk-size", "1000000", "--page-size", "10"]),
            1,
            vec![
                "error: [InvalidRunSpec] --chunk-size 1000000 x --page-size 10 may write more than 5000000 rows in one chunk",
                "give --chunk-size 500000 or less",
            ],
        ),
        (
            run(&["--chunk-size", "1000000", "--page-size", "4"]),
            0,
            vec![],
        ),
        (
            vec![
                "simulate",
                big,
                "--quiet",
                "--out",
                out,
                "--page-size",
                "10",
            ],
            1,
            vec![
                "error: [InvalidRunSpec] --page-size 10 x chunk_size 1000000 of ",
                "big_chunks.json may write more than 5000000 rows",
                "give --page-size 5 or less",
            ],
        ),
        // The mini run compares: at most 100 results a page.
        (
            run(&["--page-size", "101"]),
            1,
            vec![
                "error: [InvalidRunSpec] --page-size 101: a run that compares with the base market shows at most 100 results a page",
                "give --page-size 100 or less, or set compare to false in ",
                "mini_run.json",
            ],
        ),
        (
            vec!["bench", "--spec", spec, "--profiles", "0", "--no-memory"],
            1,
            vec![
                "error: [InvalidSampleSize] --profiles:",
                "from 1 to 10000000000",
            ],
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(args, status, expect)| {
            if *status == 0 {
                let o = tariffsim(args);
                return (!o.status.success())
                    .then(|| format!("{args:?}: {}", String::from_utf8_lossy(&o.stderr)));
            }
            let stderr = String::from_utf8_lossy(&tariffsim(args).stderr).to_string();
            // The spec file is not what is wrong: no `FILE: ... run spec field ...`.
            check(args, *status, expect).or_else(|| {
                stderr
                    .contains("run spec field")
                    .then(|| format!("{args:?}: blames the spec: {stderr}"))
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
}

#[test]
fn gen_visits_says_what_the_market_lacks_and_bounds_its_rows() {
    let dir = tempfile::tempdir().unwrap();
    // The mini market sells direct debit and prepayment only.
    let mini = fixtures().join("mini_market.json");
    let mini = mini.to_str().unwrap();
    let mut market: serde_json::Value =
        serde_json::from_slice(&std::fs::read(fixtures().join("mini_market.json")).unwrap())
            .unwrap();
    for t in market["tariffs"].as_array_mut().unwrap() {
        t["rates"]
            .as_array_mut()
            .unwrap()
            .retain(|c| c["payment_method"] == "direct_debit");
    }
    let dd_only = dir.path().join("dd_only.json");
    std::fs::write(&dd_only, market.to_string()).unwrap();
    let dd_only = dd_only.to_str().unwrap();
    for t in market["tariffs"].as_array_mut().unwrap() {
        t["hypothetical"] = true.into();
    }
    let hypothetical = dir.path().join("hypothetical.json");
    std::fs::write(&hypothetical, market.to_string()).unwrap();
    let hypothetical = hypothetical.to_str().unwrap();
    let out = dir.path().join("visits.csv");
    let out = out.to_str().unwrap();
    fn gen_visits<'a>(market: &'a str, out: &'a str, more: &[&'a str]) -> Vec<&'a str> {
        let mut v = vec![
            "gen-visits",
            "--market",
            market,
            "--seed",
            "1",
            "--out",
            out,
        ];
        v.extend(more);
        v
    }
    let cases: Vec<(Vec<&str>, i32, Vec<&str>)> = vec![
        (
            gen_visits(mini, out, &[]),
            1,
            vec![
                "mini_market.json: [InvalidArgument] no supplier in the market sells standard_credit:",
                "13% of visitors",
                "give standard_credit rates to at least one tariff",
            ],
        ),
        (
            gen_visits(dd_only, out, &["--rows", "5"]),
            1,
            vec![
                "dd_only.json: [InvalidArgument] no supplier in the market sells standard_credit or prepayment:",
                "give standard_credit and prepayment rates",
            ],
        ),
        (
            gen_visits(hypothetical, out, &[]),
            1,
            vec![
                "hypothetical.json: [InvalidArgument] the market has no suppliers",
                "not hypothetical",
            ],
        ),
        (
            gen_visits(mini, out, &["--rows", "10000001"]),
            1,
            vec![
                "[InvalidArgument] --rows: \"10000001\"",
                "from 1 to 10000000",
            ],
        ),
        (
            gen_visits(mini, out, &["--rows", "4294967295"]),
            1,
            vec!["[InvalidArgument] --rows:", "from 1 to 10000000"],
        ),
    ];
    let wrong: Vec<String> = cases
        .iter()
        .filter_map(|(args, status, expect)| {
            let stderr = String::from_utf8_lossy(&tariffsim(args).stderr).to_string();
            check(args, *status, expect).or_else(|| {
                stderr
                    .contains("weights")
                    .then(|| format!("{args:?}: the sampler's words: {stderr}"))
            })
        })
        .collect();
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    assert!(!Path::new(out).exists(), "no case wrote its output");
    let help = String::from_utf8(tariffsim(&["gen-visits", "--help"]).stdout).unwrap();
    assert!(help.contains("1 to 10,000,000"), "{help}");
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
            vec![
                "[InvalidUsage]",
                "a value is required for '--index",
                "usage: tariffsim chunk",
            ],
        ),
        // A flag without its value at the end of the line: the usage, as for an unknown flag.
        (
            vec!["simulate", spec, "--seed"],
            2,
            vec![
                "[InvalidUsage]",
                "a value is required for '--seed",
                "; usage: tariffsim simulate [OPTIONS] <SPEC> (--help lists the flags)",
            ],
        ),
        (
            vec!["simulate", spec, "--page-size", "--quiet"],
            2,
            vec![
                "[InvalidUsage]",
                "a value is required for '--page-size",
                "usage: tariffsim simulate",
            ],
        ),
        (
            vec!["gen-visits", "--seed", "1", "--out", "x.csv", "--market"],
            2,
            vec![
                "[InvalidUsage]",
                "a value is required for '--market",
                "usage: tariffsim gen-visits",
            ],
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
