//! Flag values and command-line errors.
//!
//! Flag values are parsed by the functions here, which refuse a value with the stable code of the
//! field it fills (the code the core gives the same mistake in a file), and [`report`] turns every
//! clap error into the command's one-line `tariffsim: error: [Code] ...` form.

use clap::error::{ContextKind, ContextValue, ErrorKind};
use std::ffi::OsString;
use std::fmt;
use std::io::Write;
use std::process::ExitCode;
use tariffsim::run::{MAX_CHUNK_SIZE, MAX_PAGE_SIZE, MAX_SAMPLE_SIZE};

/// Most visits `gen-visits` writes: ten million rows, about 1.3 GB of CSV drawn in about 2 GB of
/// memory (the visits are sorted by time before they are written).
pub const MAX_VISIT_ROWS: usize = 10_000_000;

/// A flag value that cannot be used: the stable code and what to fix.
#[derive(Debug)]
pub struct FlagError {
    code: &'static str,
    problem: String,
}

impl fmt::Display for FlagError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.problem)
    }
}

impl std::error::Error for FlagError {}

/// The code of a flag value without a field in the core's files (`--threads`, the generators'
/// sizes and dates) and of a value clap itself refuses.
pub const INVALID_ARGUMENT: &str = "InvalidArgument";
/// The code of a command line that cannot be parsed: an unknown flag or command, a missing one.
pub const INVALID_USAGE: &str = "InvalidUsage";

/// A whole number from `min` to `max`, refused with `code`.
fn whole(s: &str, min: u64, max: u64, code: &'static str) -> Result<u64, FlagError> {
    s.trim()
        .parse::<u64>()
        .ok()
        .filter(|n| (min..=max).contains(n))
        .ok_or_else(|| FlagError {
            code,
            problem: if max == u64::MAX {
                format!("{s:?} is not a whole number of {min} or more")
            } else {
                format!("{s:?} is not a whole number from {min} to {max}")
            },
        })
}

/// `--threads`: 1 to 256.
pub fn threads(s: &str) -> Result<u16, FlagError> {
    whole(s, 1, 256, INVALID_ARGUMENT).map(|n| n as u16)
}

/// `chunk --index`: a chunk number, from 0 (past the last chunk is refused once the run is known).
pub fn chunk_index(s: &str) -> Result<u64, FlagError> {
    whole(s, 0, u64::MAX, "NoSuchChunk").map_err(|e| FlagError {
        problem: format!("{s:?} is not a chunk number: chunks are numbered from 0"),
        ..e
    })
}

/// `--sample-size` (and `bench --profiles`): 1 to the core's limit, 10^10 (code of the spec's
/// field), so a value out of range is blamed on the flag, never on the spec file.
pub fn sample_size(s: &str) -> Result<u64, FlagError> {
    whole(s, 1, MAX_SAMPLE_SIZE, "InvalidSampleSize")
}

/// `--seed` of a run: any whole number (code of the spec's field).
pub fn run_u64(s: &str) -> Result<u64, FlagError> {
    whole(s, 0, u64::MAX, "InvalidRunSpec")
}

/// `--chunk-size` of a run: 1 to 1,000,000 (code of the spec's field); chunk size x page size is
/// checked with the spec ([`crate::inputs::Inputs::load`]).
pub fn run_chunk_size(s: &str) -> Result<u64, FlagError> {
    whole(s, 1, MAX_CHUNK_SIZE, "InvalidRunSpec")
}

/// `--page-size` of a run: 1 to 1000 (at most 100 when the run compares: checked with the spec).
pub fn run_page_size(s: &str) -> Result<u16, FlagError> {
    whole(s, 1, MAX_PAGE_SIZE.into(), "InvalidRunSpec").map(|n| n as u16)
}

/// A whole number of a flag without a field in a file (`price --seed`, `gen-market --seed`).
pub fn any_u64(s: &str) -> Result<u64, FlagError> {
    whole(s, 0, u64::MAX, INVALID_ARGUMENT)
}

/// A count from 1 (`price --page-size`, `gen-market --suppliers`).
pub fn count(s: &str) -> Result<usize, FlagError> {
    whole(s, 1, u32::MAX.into(), INVALID_ARGUMENT).map(|n| n as usize)
}

/// `gen-visits --rows`: 1 to [`MAX_VISIT_ROWS`].
pub fn visit_rows(s: &str) -> Result<usize, FlagError> {
    whole(s, 1, MAX_VISIT_ROWS as u64, INVALID_ARGUMENT).map(|n| n as usize)
}

/// A number of a visitor's profile (`--elec-kwh`, `--night-share`): any number here, its range is
/// the core's to check (`[InvalidVisit]`, as in a visits file).
pub fn profile_number(s: &str) -> Result<f64, FlagError> {
    s.trim()
        .parse::<f64>()
        .ok()
        .filter(|x| x.is_finite())
        .ok_or_else(|| FlagError {
            code: "InvalidVisit",
            problem: format!("{s:?} is not a number"),
        })
}

/// A date, YYYY-MM-DD (the generators' dates).
pub fn date(s: &str) -> Result<chrono::NaiveDate, FlagError> {
    chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d").map_err(|e| FlagError {
        code: INVALID_ARGUMENT,
        problem: format!("{s:?} is not a date: use YYYY-MM-DD ({e})"),
    })
}

/// The flag an error is about, e.g. `--threads` (clap says `--threads <THREADS>`).
fn flag(e: &clap::Error) -> Option<String> {
    match e.get(ContextKind::InvalidArg)? {
        ContextValue::String(s) => Some(s.split(' ').next().unwrap_or(s).to_string()),
        _ => None,
    }
}

/// Clap's message on one line: its lines up to the usage, trimmed, joined by "; ", and the usage.
fn one_line(e: &clap::Error) -> String {
    let text = e.render().to_string();
    let mut parts = Vec::new();
    let mut usage = None;
    for line in text.lines().map(str::trim).filter(|l| !l.is_empty()) {
        if let Some(u) = line.strip_prefix("Usage:") {
            usage = Some(u.trim().to_string());
            break;
        }
        if line.starts_with("For more information") {
            break;
        }
        parts.push(line.strip_prefix("error:").unwrap_or(line).trim());
    }
    let mut out = parts.join("; ");
    if let Some(u) = usage {
        out.push_str(&format!("; usage: {u} (--help lists the flags)"));
    }
    out
}

/// `e` with the usage of the command `argv` names (`tariffsim simulate [OPTIONS] <SPEC>`), which
/// clap leaves out of some errors: a flag given without its value (`--seed` at the end) is
/// reported without it, an unknown flag with it.
fn with_usage(mut e: clap::Error, cmd: &mut clap::Command, argv: &[OsString]) -> clap::Error {
    if e.get(ContextKind::Usage).is_none() {
        cmd.build();
        let usage = match argv.get(1).and_then(|name| cmd.find_subcommand_mut(name)) {
            Some(sub) => sub.render_usage(),
            None => cmd.render_usage(),
        };
        e.insert(ContextKind::Usage, ContextValue::StyledStr(usage));
    }
    e
}

/// Reports a clap error as the command does every error, and says how to exit:
///
/// - `--help`, `--version`: printed on standard output, status 0 (1 if it cannot be written);
/// - no command at all: the help on standard error, status 2;
/// - a flag value that cannot be used: one line with the code of the field, status 1;
/// - any other command line clap cannot parse: one line `[InvalidUsage]` with the usage of the
///   command (`cmd`, the command line `argv` parsed), status 2.
pub fn report(e: clap::Error, cmd: &mut clap::Command, argv: &[OsString]) -> ExitCode {
    match e.kind() {
        ErrorKind::DisplayHelp | ErrorKind::DisplayVersion => {
            match e.print().and_then(|()| std::io::stdout().flush()) {
                Ok(()) => ExitCode::SUCCESS,
                Err(io) => {
                    eprintln!(
                        "tariffsim: error: [WriteFailed] cannot write to standard output: {io}"
                    );
                    ExitCode::FAILURE
                }
            }
        }
        ErrorKind::DisplayHelpOnMissingArgumentOrSubcommand => {
            let _ = e.print();
            ExitCode::from(2)
        }
        _ if matches!(e.get(ContextKind::InvalidValue), Some(ContextValue::String(v)) if !v.is_empty()) =>
        {
            let coded = std::error::Error::source(&e).and_then(|s| s.downcast_ref::<FlagError>());
            let line = match (coded, flag(&e)) {
                (Some(f), Some(flag)) => format!("[{}] {flag}: {f}", f.code),
                (Some(f), None) => format!("[{}] {f}", f.code),
                (None, _) => format!("[{INVALID_ARGUMENT}] {}", one_line(&e)),
            };
            eprintln!("tariffsim: error: {line}");
            ExitCode::FAILURE
        }
        _ => {
            let e = with_usage(e, cmd, argv);
            eprintln!("tariffsim: error: [{INVALID_USAGE}] {}", one_line(&e));
            ExitCode::from(2)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_are_refused_with_their_range_and_code() {
        assert_eq!(threads("256").unwrap(), 256);
        let e = threads("0").unwrap_err();
        assert_eq!(e.code, INVALID_ARGUMENT);
        assert!(e.to_string().contains("from 1 to 256"), "{e}");
        assert_eq!(chunk_index("-1").unwrap_err().code, "NoSuchChunk");
        assert_eq!(sample_size("1e3").unwrap_err().code, "InvalidSampleSize");
        assert_eq!(sample_size("10000000000").unwrap(), MAX_SAMPLE_SIZE);
        let e = sample_size("10000000001").unwrap_err();
        assert!(e.to_string().contains("from 1 to 10000000000"), "{e}");
        assert!(run_chunk_size("1000001").is_err());
        assert_eq!(visit_rows("10000000").unwrap(), MAX_VISIT_ROWS);
        let e = visit_rows("10000001").unwrap_err();
        assert_eq!(e.code, INVALID_ARGUMENT);
        assert!(e.to_string().contains("from 1 to 10000000"), "{e}");
        assert_eq!(run_page_size("70000").unwrap_err().code, "InvalidRunSpec");
        assert_eq!(profile_number("-5").unwrap(), -5.0);
        assert_eq!(profile_number("NaN").unwrap_err().code, "InvalidVisit");
        assert_eq!(count("0").unwrap_err().code, INVALID_ARGUMENT);
    }
}
