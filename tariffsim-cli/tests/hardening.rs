//! Hardening of the `tariffsim` command: every write checked, every size limited, and a seeded
//! fuzz over mutated inputs that must always end in exit 0, or exit 1 with one line naming a code.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

mod common;
use common::{fixtures, tariffsim};

/// Exit 1 with one line on stderr, naming a stable code in brackets and each of `expect`.
fn fails(out: &Output, expect: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    for e in expect {
        assert!(stderr.contains(e), "stderr lacks {e:?}: {stderr}");
    }
}

fn write_spec(dir: &Path, name: &str, spec: &serde_json::Value) -> PathBuf {
    let p = dir.join(name);
    std::fs::write(&p, serde_json::to_vec_pretty(spec).unwrap()).unwrap();
    p
}

fn mini_spec(extra: serde_json::Value) -> serde_json::Value {
    let f = fixtures();
    let mut spec = serde_json::json!({
        "market": f.join("mini_market.json"),
        "visits": f.join("mini_visits.csv"),
        "sample_size": 500, "chunk_size": 100, "seed": 3, "page_size": 3,
    });
    for (k, v) in extra.as_object().unwrap() {
        spec[k] = v.clone();
    }
    spec
}

#[test]
fn a_full_disk_is_exit_1_naming_the_file() {
    if !Path::new("/dev/full").exists() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let spec = write_spec(dir.path(), "spec.json", &mini_spec(serde_json::json!({})));
    let s = spec.to_str().unwrap();
    let cases: [(&[&str], &str); 4] = [
        (
            &["chunk", s, "--index", "0", "--impressions", "/dev/full"],
            "/dev/full",
        ),
        (
            &[
                "chunk",
                s,
                "--index",
                "1",
                "--summary",
                "/dev/full",
                "--impressions",
                "/dev/null",
            ],
            "/dev/full",
        ),
        (
            &["simulate", s, "--quiet", "--impressions", "/dev/full"],
            "/dev/full",
        ),
        (
            &["simulate", s, "--quiet", "--out", "/dev/full/out"],
            "/dev/full",
        ),
    ];
    for (args, file) in cases {
        fails(&tariffsim(args), &["[WriteFailed]", file]);
    }
    // Standard output on a full device.
    let out = Command::new(env!("CARGO_BIN_EXE_tariffsim"))
        .args(["chunk", s, "--index", "0"])
        .stdout(std::fs::File::create("/dev/full").unwrap())
        .output()
        .unwrap();
    fails(&out, &["[WriteFailed]", "standard output"]);
}

#[test]
fn stacked_price_moves_are_a_typed_error_not_negative_costs() {
    let dir = tempfile::tempdir().unwrap();
    let change = serde_json::json!({"op": "move_prices", "percent": 1000});
    let scenario = serde_json::json!({"changes": vec![change; 12]});
    let path = dir.path().join("scenario.json");
    std::fs::write(&path, scenario.to_string()).unwrap();
    let m = fixtures().join("mini_market.json");
    let out = tariffsim(&[
        "price",
        "--market",
        m.to_str().unwrap(),
        "--scenario",
        path.to_str().unwrap(),
        "--region",
        "C",
    ]);
    fails(
        &out,
        &["[InvalidScenarioChange]", "changes[", "100000 p limit"],
    );
    // Within the limit, every cost stays positive.
    let scenario = serde_json::json!({"changes": vec![serde_json::json!({"op": "move_prices", "percent": 1000}); 3]});
    std::fs::write(&path, scenario.to_string()).unwrap();
    let out = tariffsim(&[
        "price",
        "--market",
        m.to_str().unwrap(),
        "--scenario",
        path.to_str().unwrap(),
        "--region",
        "C",
        "--json",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    for r in v["results"][0]["rows"].as_array().unwrap() {
        assert!(r["annual_cost_gbp"].as_f64().unwrap() > 0.0);
    }
}

#[test]
fn limits_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let long_visits = d.join("long.csv");
    std::fs::write(
        &long_visits,
        format!(
            "visit_id,timestamp,region,fuel,meter,payment_method,elec_kwh,gas_kwh\n{},2026-07-01,C,dual_fuel,single_rate,direct_debit,2500,9500\n",
            "v".repeat(10 << 20)
        ),
    )
    .unwrap();
    let deep = d.join("deep.json");
    std::fs::write(
        &deep,
        format!("{}{}", "[".repeat(10_000), "]".repeat(10_000)),
    )
    .unwrap();
    let cases: Vec<(serde_json::Value, Vec<&str>, &[&str])> = vec![
        (
            serde_json::json!({"chunk_size": 10_000_000}),
            vec![],
            &["[InvalidRunSpec]", "chunk_size"],
        ),
        (
            serde_json::json!({"chunk_size": 1_000_000, "page_size": 1000}),
            vec![],
            &["[InvalidRunSpec]", "rows in one chunk"],
        ),
        (
            serde_json::json!({"sample_size": 1_000_000_000_000_000u64}),
            vec![],
            &["sample_size", "ask for fewer"],
        ),
        (
            serde_json::json!({"visits": long_visits}),
            vec![],
            &["[InvalidVisit]", "visit_id", "longer than 256 bytes"],
        ),
        (
            serde_json::json!({"market": deep}),
            vec![],
            &["[InvalidMarketJson]"],
        ),
    ];
    for (i, (extra, more, expect)) in cases.into_iter().enumerate() {
        let spec = write_spec(d, &format!("spec{i}.json"), &mini_spec(extra));
        let mut args = vec![
            "simulate",
            spec.to_str().unwrap(),
            "--quiet",
            "--impressions",
            "/dev/null",
        ];
        args.extend(more);
        let out_dir = d.join(format!("out{i}"));
        args.extend(["--out", out_dir.to_str().unwrap()]);
        fails(&tariffsim(&args), expect);
    }
    let spec = write_spec(d, "ok.json", &mini_spec(serde_json::json!({})));
    let out = tariffsim(&["simulate", spec.to_str().unwrap(), "--threads", "100000"]);
    fails(&out, &["[InvalidArgument] --threads", "from 1 to 256"]);
}

#[test]
fn a_comparing_runs_page_size_over_100_names_its_file_or_its_flag() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let scenario = fixtures().join("mini_scenario.json");
    let spec = write_spec(
        d,
        "comparing.json",
        &mini_spec(serde_json::json!({"scenario": scenario, "page_size": 101})),
    );
    let s = spec.to_str().unwrap();
    let out = d.join("out");
    let o = out.to_str().unwrap();
    // From the file: the file, as every error about a field of it.
    let from_file = tariffsim(&["simulate", s, "--quiet", "--out", o]);
    fails(
        &from_file,
        &[
            "tariffsim: error: ",
            "comparing.json: [InvalidRunSpec] run spec field page_size: a run that compares with the base market shows at most 100 results a page",
        ],
    );
    let stderr = String::from_utf8_lossy(&from_file.stderr);
    assert!(!stderr.contains("error: run spec:"), "{stderr}");
    // From the flag: the flag.
    let spec = write_spec(
        d,
        "comparing10.json",
        &mini_spec(serde_json::json!({"scenario": scenario, "page_size": 10})),
    );
    let s = spec.to_str().unwrap();
    for args in [
        &["simulate", s, "--quiet", "--out", o, "--page-size", "101"][..],
        &["chunk", s, "--index", "0", "--page-size", "101"],
    ] {
        let out = tariffsim(args);
        fails(
            &out,
            &[
                "tariffsim: error: [InvalidRunSpec] --page-size 101: a run that compares with the base market shows at most 100 results a page: give --page-size 100 or less, or set compare to false in ",
            ],
        );
        assert!(
            String::from_utf8_lossy(&out.stderr).ends_with("comparing10.json\n"),
            "{args:?}"
        );
    }
    // Within the limit, the run compares.
    let ok = tariffsim(&["simulate", s, "--quiet", "--out", o, "--page-size", "100"]);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stderr)
    );
    assert!(out.join("comparison.json").exists());
}

#[test]
fn json_with_a_byte_order_mark_is_read() {
    let dir = tempfile::tempdir().unwrap();
    let market = std::fs::read(fixtures().join("mini_market.json")).unwrap();
    let bom = dir.path().join("bom.json");
    std::fs::write(&bom, [&b"\xef\xbb\xbf"[..], &market].concat()).unwrap();
    let out = tariffsim(&["price", "--market", bom.to_str().unwrap(), "--region", "C"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// A small deterministic generator (SplitMix64), so a failing case is reproducible by its number.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn below(&mut self, n: usize) -> usize {
        (self.next() % n as u64) as usize
    }
}

/// One random edit of a text: a byte flipped, a span deleted or repeated, a number replaced by an
/// extreme, a token inserted.
fn mutate(rng: &mut Rng, text: &[u8]) -> Vec<u8> {
    const TOKENS: &[&str] = &[
        "-1",
        "1e308",
        "NaN",
        "18446744073709551616",
        "9007199254740993",
        "null",
        "\"\"",
        "[]",
        "{}",
        "\"__proto__\"",
        "\u{feff}",
        "\0",
        "\"\\ud800\"",
        "-0",
        "0.0000001",
        ",",
        "\"",
        "\n",
        "Z",
        "economy7",
        "true",
        "9999999999",
    ];
    let mut t = text.to_vec();
    for _ in 0..=rng.below(3) {
        if t.is_empty() {
            t.extend_from_slice(b"{}");
        }
        let at = rng.below(t.len());
        match rng.below(5) {
            0 => t[at] = rng.next() as u8,
            1 => {
                let end = (at + 1 + rng.below(64)).min(t.len());
                t.drain(at..end);
            }
            2 => {
                let end = (at + 1 + rng.below(64)).min(t.len());
                let span = t[at..end].to_vec();
                t.splice(at..at, span);
            }
            3 => {
                // Replace the number (or token) under `at` with an extreme.
                let start = (0..at)
                    .rev()
                    .find(|&i| !t[i].is_ascii_digit() && t[i] != b'.')
                    .map_or(0, |i| i + 1);
                let end = (at..t.len())
                    .find(|&i| !t[i].is_ascii_digit() && t[i] != b'.')
                    .unwrap_or(t.len());
                let tok = TOKENS[rng.below(TOKENS.len())].as_bytes();
                t.splice(start..end.max(start), tok.iter().copied());
            }
            _ => {
                let tok = TOKENS[rng.below(TOKENS.len())].as_bytes();
                t.splice(at..at, tok.iter().copied());
            }
        }
    }
    t
}

#[test]
fn fuzz_the_command_with_mutated_inputs() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let f = fixtures();
    let market = std::fs::read(f.join("mini_market.json")).unwrap();
    let scenario = std::fs::read(f.join("mini_scenario.json")).unwrap();
    let visits = std::fs::read(f.join("mini_visits.csv")).unwrap();
    let spec = serde_json::to_vec(&serde_json::json!({
        "market": "market.json", "scenario": "scenario.json", "visits": "visits.csv",
        "sample_size": 300, "chunk_size": 70, "seed": 5, "page_size": 4,
    }))
    .unwrap();
    let cases: u64 = std::env::var("TARIFFSIM_FUZZ_CASES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(240);
    let (mut exit0, mut exit1) = (0u64, 0u64);
    let mut codes = std::collections::BTreeMap::<String, u64>::new();
    for case in 0..cases {
        let mut rng = Rng(0x7a41_f00d ^ case);
        let mut files = [
            ("market.json", market.clone()),
            ("scenario.json", scenario.clone()),
            ("visits.csv", visits.clone()),
            ("spec.json", spec.clone()),
        ];
        let target = rng.below(files.len());
        files[target].1 = mutate(&mut rng, &files[target].1);
        for (name, bytes) in &files {
            std::fs::write(d.join(name), bytes).unwrap();
        }
        let out_dir = d.join("out");
        let spec_path = d.join("spec.json");
        let m = d.join("market.json");
        let s = d.join("scenario.json");
        let args: Vec<&str> = match rng.below(3) {
            0 => vec![
                "simulate",
                spec_path.to_str().unwrap(),
                "--quiet",
                "--out",
                out_dir.to_str().unwrap(),
            ],
            1 => vec![
                "chunk",
                spec_path.to_str().unwrap(),
                "--index",
                "1",
                "--impressions",
                "/dev/null",
            ],
            _ => vec![
                "price",
                "--market",
                m.to_str().unwrap(),
                "--scenario",
                s.to_str().unwrap(),
                "--region",
                "C",
                "--current-supplier",
                "Alpha Energy",
                "--json",
            ],
        };
        let out = tariffsim(&args);
        let stderr = String::from_utf8_lossy(&out.stderr);
        let what = format!("case {case} ({} mutated, {})", files[target].0, args[0]);
        match out.status.code() {
            Some(0) => exit0 += 1,
            Some(1) => {
                exit1 += 1;
                assert_eq!(stderr.lines().count(), 1, "{what}: one line: {stderr}");
                let code = stderr
                    .split('[')
                    .nth(1)
                    .and_then(|r| r.split(']').next())
                    .unwrap_or_else(|| panic!("{what}: no [Code] in {stderr}"));
                *codes.entry(code.to_string()).or_default() += 1;
            }
            other => panic!("{what}: exit {other:?} (a panic is 101, an abort a signal): {stderr}"),
        }
    }
    eprintln!("cli fuzz: {cases} cases, {exit0} exit 0, {exit1} exit 1 by code {codes:?}");
    assert_eq!(exit0 + exit1, cases);
}
