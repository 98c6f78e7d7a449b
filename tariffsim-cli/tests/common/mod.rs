//! What the command-line tests share: the fixtures folder and running the built `tariffsim`.
#![allow(dead_code)] // each test file uses some of these

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The repository's `tests/fixtures`.
pub fn fixtures() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("../tests/fixtures")
        .canonicalize()
        .unwrap()
}

/// Runs the built `tariffsim` with `args`.
pub fn tariffsim(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_tariffsim"))
        .args(args)
        .output()
        .expect("run tariffsim")
}

/// `out`, after checking the command succeeded.
pub fn ok(out: Output) -> Output {
    assert!(
        out.status.success(),
        "tariffsim failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    out
}
