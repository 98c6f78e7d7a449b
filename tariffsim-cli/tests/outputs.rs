//! Output files as a reader finds them: only complete, never two runs side by side, never a
//! temporary file under an output's name; special files written through.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

mod common;
use common::{fixtures, ok, tariffsim};

/// Exit 1, one line, the code and the file named.
fn fails(out: &Output, expect: &[&str]) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert_eq!(stderr.lines().count(), 1, "one line: {stderr}");
    for e in expect {
        assert!(stderr.contains(e), "stderr lacks {e:?}: {stderr}");
    }
}

/// A run spec in `dir` on the fixtures: the mini market with its scenario, so a run writes all
/// four files.
fn spec(dir: &Path, scenario: bool) -> PathBuf {
    let f = fixtures();
    let mut spec = serde_json::json!({
        "market": f.join("mini_market.json"),
        "visits": f.join("mini_visits.csv"),
        "sample_size": 500, "chunk_size": 100, "seed": 3, "page_size": 3,
    });
    if scenario {
        spec["scenario"] = f.join("mini_scenario.json").to_str().unwrap().into();
    }
    let path = dir.join(if scenario { "spec-s.json" } else { "spec.json" });
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    path
}

/// The names in a folder, sorted.
fn names(dir: &Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .map(|r| {
            r.map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
                .collect()
        })
        .unwrap_or_default();
    v.sort();
    v
}

const RUN_FILES: [&str; 4] = [
    "comparison.csv",
    "comparison.json",
    "impressions.csv",
    "summary.json",
];

fn simulate(spec: &Path, out: &Path, more: &[&str]) -> Output {
    let mut args = vec![
        "simulate",
        spec.to_str().unwrap(),
        "--quiet",
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend(more);
    tariffsim(&args)
}

#[test]
fn a_run_replaces_every_file_of_the_previous_one() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    ok(simulate(&spec(dir.path(), true), &out, &[]));
    assert_eq!(names(&out), RUN_FILES);
    let first = std::fs::read(out.join("summary.json")).unwrap();
    // A run without a scenario has no comparison: the previous run's is gone, not left beside it.
    ok(simulate(&spec(dir.path(), false), &out, &["--seed", "4"]));
    assert_eq!(names(&out), ["impressions.csv", "summary.json"]);
    assert_ne!(std::fs::read(out.join("summary.json")).unwrap(), first);
    // Impressions sent elsewhere: the folder's impressions.csv, of another run, is gone too.
    ok(simulate(
        &spec(dir.path(), false),
        &out,
        &["--impressions", "/dev/null"],
    ));
    assert_eq!(names(&out), ["summary.json"]);
}

#[test]
fn an_interrupted_run_leaves_no_output_only_a_hidden_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = spec(dir.path(), true);
    ok(simulate(&s, &out, &[]));
    assert_eq!(names(&out), RUN_FILES);
    // A run long enough to be killed while it writes its impressions.
    let mut child = Command::new(env!("CARGO_BIN_EXE_tariffsim"))
        .args(["simulate", s.to_str().unwrap(), "--quiet", "--threads", "1"])
        .args(["--sample-size", "50000000", "--out", out.to_str().unwrap()])
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let tmp = format!(".impressions.csv.tmp-{}", child.id());
    let start = Instant::now();
    while !(out.join(&tmp).metadata().is_ok_and(|m| m.len() > 0)) {
        assert!(
            start.elapsed() < Duration::from_secs(60),
            "no {tmp} in {:?}",
            names(&out)
        );
        assert!(child.try_wait().unwrap().is_none(), "the run ended early");
        std::thread::sleep(Duration::from_millis(5));
    }
    child.kill().unwrap();
    child.wait().unwrap();
    // Nothing a reader could take for a finished run: the previous run's files went when this run
    // started writing, and this run's impressions never took their name.
    assert_eq!(names(&out), [tmp]);
    // The next run is not confused by the leftover, and finishes as usual.
    ok(simulate(&s, &out, &[]));
    // and removes it, its process being gone.
    assert_eq!(names(&out), RUN_FILES);
}

#[test]
fn a_bad_input_leaves_the_previous_run_alone() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = spec(dir.path(), true);
    ok(simulate(&s, &out, &[]));
    let before: Vec<Vec<u8>> = RUN_FILES
        .iter()
        .map(|n| std::fs::read(out.join(n)).unwrap())
        .collect();
    fails(
        &simulate(&s, &out, &["--chunk-size", "0"]),
        &["[InvalidRunSpec]"],
    );
    let after: Vec<Vec<u8>> = RUN_FILES
        .iter()
        .map(|n| std::fs::read(out.join(n)).unwrap())
        .collect();
    assert!(
        before == after,
        "a run refused before it writes changes nothing"
    );
}

#[test]
fn special_files_are_written_through_never_replaced() {
    let dir = tempfile::tempdir().unwrap();
    let s = spec(dir.path(), false);
    let s = s.to_str().unwrap();
    let whole = ok(tariffsim(&["chunk", s, "--index", "1"])).stdout;
    assert!(!whole.is_empty());
    let fifo = dir.path().join("fifo");
    let made = Command::new("mkfifo").arg(&fifo).status();
    if !made.is_ok_and(|s| s.success()) {
        eprintln!("skipped: no mkfifo");
        return;
    }
    let reader = {
        let fifo = fifo.clone();
        std::thread::spawn(move || std::fs::read(fifo).unwrap())
    };
    ok(tariffsim(&[
        "chunk",
        s,
        "--index",
        "1",
        "--impressions",
        fifo.to_str().unwrap(),
    ]));
    assert_eq!(reader.join().unwrap(), whole);
    use std::os::unix::fs::FileTypeExt;
    assert!(fifo.metadata().unwrap().file_type().is_fifo());
    assert_eq!(names(dir.path()), ["fifo", "spec.json"]);
    // /dev/null through a link is written through too, and the link is left alone.
    let link = dir.path().join("null");
    std::os::unix::fs::symlink("/dev/null", &link).unwrap();
    ok(tariffsim(&[
        "chunk",
        s,
        "--index",
        "1",
        "--impressions",
        link.to_str().unwrap(),
    ]));
    assert!(link.symlink_metadata().unwrap().file_type().is_symlink());
    assert!(
        Path::new("/dev/null")
            .metadata()
            .unwrap()
            .file_type()
            .is_char_device()
    );
}

#[test]
fn generators_write_complete_files_only() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let market = d.join("new/market.json");
    let scenario = d.join("new/scenario.json");
    ok(tariffsim(&[
        "gen-market",
        "--seed",
        "1",
        "--out",
        market.to_str().unwrap(),
        "--scenario-out",
        scenario.to_str().unwrap(),
    ]));
    assert_eq!(names(&d.join("new")), ["market.json", "scenario.json"]);
    let visits = d.join("new/visits.csv");
    ok(tariffsim(&[
        "gen-visits",
        "--market",
        market.to_str().unwrap(),
        "--seed",
        "2",
        "--rows",
        "50",
        "--out",
        visits.to_str().unwrap(),
    ]));
    assert_eq!(
        std::fs::read_to_string(&visits).unwrap().lines().count(),
        51
    );
    // A write that fails leaves the earlier file whole and no temporary file (the folder is
    // replaced by a file, so nothing can be created in it).
    let blocked = d.join("blocked");
    std::fs::write(&blocked, "x").unwrap();
    fails(
        &tariffsim(&[
            "gen-market",
            "--seed",
            "1",
            "--out",
            blocked.join("m.json").to_str().unwrap(),
        ]),
        &["[WriteFailed]", "blocked"],
    );
    assert_eq!(
        names(d),
        ["blocked", "new"],
        "nothing but the files written"
    );
    assert_eq!(
        names(&d.join("new")),
        ["market.json", "scenario.json", "visits.csv"]
    );
}

/// A small tmpfs mounted for one test (needs root; the test is skipped without it), unmounted on
/// drop.
struct SmallDisk(PathBuf);

impl SmallDisk {
    fn mount(at: &Path, size: &str) -> Option<SmallDisk> {
        std::fs::create_dir_all(at).unwrap();
        let status = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(at)
            .stderr(Stdio::null())
            .status()
            .ok()?;
        status.success().then(|| SmallDisk(at.to_path_buf()))
    }
}

impl Drop for SmallDisk {
    fn drop(&mut self) {
        let _ = Command::new("umount").arg(&self.0).status();
    }
}

#[test]
fn a_full_disk_is_exit_1_and_leaves_no_file_of_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let Some(disk) = SmallDisk::mount(&dir.path().join("disk"), "256k") else {
        eprintln!("skipped: cannot mount a tmpfs (not root)");
        return;
    };
    let out = disk.0.join("out");
    let s = spec(dir.path(), true);
    ok(simulate(&s, &out, &[]));
    assert_eq!(names(&out), RUN_FILES);
    // The impressions fill the disk.
    fails(
        &simulate(&s, &out, &["--sample-size", "100000"]),
        &["[WriteFailed]", "impressions.csv"],
    );
    assert!(names(&out).is_empty(), "left {:?}", names(&out));
    // Impressions skipped, the summary fills the disk: no cut-off summary.json.
    {
        use std::io::Write;
        let mut filler = std::fs::File::create(disk.0.join("filler")).unwrap();
        while filler.write_all(&[0u8; 4096]).is_ok() {}
    }
    fails(
        &simulate(&s, &out, &["--impressions", "/dev/null"]),
        &["[WriteFailed]", "out/"],
    );
    assert!(names(&out).is_empty(), "left {:?}", names(&out));
    // The chunk command and the generators the same.
    let chunk_summary = out.join("chunk.json");
    fails(
        &tariffsim(&[
            "chunk",
            s.to_str().unwrap(),
            "--index",
            "0",
            "--summary",
            chunk_summary.to_str().unwrap(),
            "--impressions",
            "/dev/null",
        ]),
        &["[WriteFailed]", "chunk.json"],
    );
    fails(
        &tariffsim(&[
            "gen-market",
            "--seed",
            "1",
            "--out",
            out.join("m.json").to_str().unwrap(),
        ]),
        &["[WriteFailed]", "m.json"],
    );
    assert!(names(&out).is_empty(), "left {:?}", names(&out));
}

#[test]
fn a_mean_of_one_profile_has_no_standard_error_rather_than_zero() {
    // A run of a single profile: a share has its binomial interval, but a mean of one value (the
    // clicks per profile, the paired differences) has no sample variance. Its se and interval are
    // null in JSON and NA in the CSV, not a 0 that reads as certainty.
    let dir = tempfile::tempdir().unwrap();
    let spec_path = spec(dir.path(), true);
    let mut one: serde_json::Value =
        serde_json::from_slice(&std::fs::read(&spec_path).unwrap()).unwrap();
    one["sample_size"] = 1.into();
    std::fs::write(&spec_path, serde_json::to_vec(&one).unwrap()).unwrap();
    let out = dir.path().join("out");
    let run = ok(tariffsim(&[
        "simulate",
        spec_path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let headline = String::from_utf8_lossy(&run.stdout);
    assert!(
        headline.contains("no interval: too few visits"),
        "{headline}"
    );

    let summary: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("summary.json")).unwrap()).unwrap();
    let iv = &summary["tariffs"][0]["intervals"];
    assert!(iv["page1_share"]["se"].is_number(), "{iv}");
    assert!(iv["page1_share"]["ci95"].is_array(), "{iv}");
    assert!(iv["expected_clicks"]["se"].is_null(), "{iv}");
    assert!(iv["expected_clicks"]["ci95"].is_null(), "{iv}");

    let comparison: serde_json::Value =
        serde_json::from_slice(&std::fs::read(out.join("comparison.json")).unwrap()).unwrap();
    let d = &comparison["tariffs"][0]["page1_share"]["difference"];
    assert!(
        d["value"].is_number() && d["se"].is_null() && d["ci95"].is_null(),
        "{d}"
    );

    let csv = std::fs::read_to_string(out.join("comparison.csv")).unwrap();
    let mut lines = csv.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let row: Vec<&str> = lines.next().unwrap().split(',').collect();
    let col = |name: &str| row[header.iter().position(|h| *h == name).unwrap()];
    for name in [
        "page1_share_difference_se",
        "page1_share_difference_lo",
        "page1_share_difference_hi",
        "expected_clicks_after_se",
    ] {
        assert_eq!(col(name), "NA", "{name}");
    }
    assert_ne!(col("page1_share_after_se"), "NA");
    assert_ne!(col("page1_share_difference"), "NA");
}

#[test]
fn the_headline_says_what_the_run_knows_without_a_minus_zero() {
    // Visitors whose current tariff is unknown: no best saving to average, but the share whose
    // best tariff changed is still the run's news.
    let dir = tempfile::tempdir().unwrap();
    let f = fixtures();
    let visits = std::fs::read_to_string(f.join("mini_visits.csv")).unwrap();
    let mut lines = visits.lines();
    let header: Vec<&str> = lines.next().unwrap().split(',').collect();
    let blank = |name: &str| header.iter().position(|h| *h == name).unwrap();
    let (supplier, tariff) = (blank("current_supplier"), blank("current_tariff"));
    let mut unknown = header.join(",") + "\n";
    for line in lines {
        let mut cells: Vec<&str> = line.split(',').collect();
        cells[supplier] = "";
        cells[tariff] = "";
        unknown += &(cells.join(",") + "\n");
    }
    std::fs::write(dir.path().join("visits.csv"), unknown).unwrap();
    let spec = serde_json::json!({
        "market": f.join("mini_market.json"), "scenario": f.join("mini_scenario.json"),
        "visits": dir.path().join("visits.csv"), "sample_size": 1000, "seed": 5, "page_size": 4,
    });
    let path = dir.path().join("spec.json");
    std::fs::write(&path, serde_json::to_vec(&spec).unwrap()).unwrap();
    let out = dir.path().join("out");
    let run = ok(tariffsim(&[
        "simulate",
        path.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]));
    let headline = String::from_utf8_lossy(&run.stdout);
    assert!(
        headline.contains("\n  best tariff changed for "),
        "{headline}"
    );
    assert!(
        !headline.contains("mean best available saving"),
        "{headline}"
    );
    // No "-0": a loss that rounds to no click is not listed.
    assert!(!headline.contains(": -0 clicks"), "{headline}");
}

#[test]
fn two_outputs_naming_one_file_are_refused_before_anything_is_written() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let s = spec(dir.path(), true);
    ok(simulate(&s, &out, &[]));
    let before: Vec<Vec<u8>> = RUN_FILES
        .iter()
        .map(|n| std::fs::read(out.join(n)).unwrap())
        .collect();
    let same = out.join("sub/../summary.json");
    fails(
        &simulate(&s, &out, &["--impressions", same.to_str().unwrap()]),
        &[
            "[InvalidArgument]",
            "summary.json and --impressions are the same file",
        ],
    );
    let after: Vec<Vec<u8>> = RUN_FILES
        .iter()
        .map(|n| std::fs::read(out.join(n)).unwrap())
        .collect();
    assert!(before == after, "the previous run is left as it was");
    let one = dir.path().join("one.out");
    fails(
        &tariffsim(&[
            "chunk",
            s.to_str().unwrap(),
            "--index",
            "0",
            "--impressions",
            one.to_str().unwrap(),
            "--summary",
            one.to_str().unwrap(),
        ]),
        &["--summary and --impressions are the same file"],
    );
    assert!(!one.exists());
    fails(
        &tariffsim(&[
            "gen-market",
            "--seed",
            "1",
            "--out",
            one.to_str().unwrap(),
            "--scenario-out",
            one.to_str().unwrap(),
        ]),
        &["--scenario-out and --out are the same file"],
    );
    assert!(!one.exists());
    // A market dated past the price-cap data (its end dates would pass 9999-12-31 too) is not
    // written.
    fails(
        &tariffsim(&[
            "gen-market",
            "--seed",
            "1",
            "--out",
            one.to_str().unwrap(),
            "--as-of",
            "9999-12-31",
        ]),
        &[
            "[InvalidArgument]",
            "--as-of 9999-12-31",
            "give 2024-12-01 to 2026-09-30",
        ],
    );
    assert!(!one.exists());
}
