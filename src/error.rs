//! Errors, one enum per concern. Every error has a stable PascalCase [`code`](Error::code) that
//! the wasm binding uses as the JS `Error.name` and the Lambda handlers as `errorType`; messages
//! are lowercase and say what to fix.

/// Where and why a JSON document failed to parse.
#[derive(Debug)]
pub(crate) struct JsonError {
    path: String,
    line: usize,
    column: usize,
    message: String,
}

/// Parses JSON, keeping the path of the field at fault (serde_json alone gives line and column).
pub(crate) fn from_json<'de, T: serde::Deserialize<'de>>(json: &'de str) -> Result<T, JsonError> {
    // A UTF-8 byte-order mark (some Windows editors write one) is not part of the document.
    let json = json.strip_prefix('\u{feff}').unwrap_or(json);
    // The fast path; only a document that fails is parsed again to find the field at fault.
    #[cfg(feature = "json-paths")]
    {
        let plain = |path: String, e: serde_json::Error| {
            let message = e.to_string();
            // serde_json appends " at line L column C"; the error says where already.
            let message = message
                .rfind(" at line ")
                .map_or(message.clone(), |i| message[..i].to_string());
            JsonError {
                path,
                line: e.line(),
                column: e.column(),
                message,
            }
        };
        if let Ok(value) = serde_json::from_str(json) {
            return Ok(value);
        }
        let mut de = serde_json::Deserializer::from_str(json);
        let value = serde_path_to_error::deserialize(&mut de)
            .map_err(|e| plain(e.path().to_string(), e.into_inner()))?;
        de.end().map_err(|e| plain(".".into(), e))?;
        Ok(value)
    }
    // Without paths, no message either: only where (the lean price module's errors carry their
    // code alone; the full build words them).
    #[cfg(not(feature = "json-paths"))]
    serde_json::from_str(json).map_err(|e| JsonError {
        path: String::new(),
        line: e.line(),
        column: e.column(),
        message: String::new(),
    })
}

/// A market that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum MarketError {
    /// Malformed JSON or a field of the wrong shape.
    #[error("market JSON is invalid at line {line}, column {column}, field {path}: {message}")]
    Json {
        /// Path of the field at fault, e.g. `tariffs[3].rates[0].region` (`.` for the document).
        path: String,
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// What serde said.
        message: String,
    },
    /// Two tariffs share an id.
    #[error("tariff id {id:?} appears twice: give every tariff a unique id")]
    DuplicateTariff {
        /// The repeated id.
        id: String,
    },
    /// A tariff that breaks a rule the schema cannot express.
    #[error("tariff {id:?}, field {field}: {problem}")]
    InvalidTariff {
        /// Tariff id.
        id: String,
        /// The field at fault, e.g. `rates[3].gas`.
        field: String,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// More tariffs than the replay can index.
    #[error("the market has {count} tariffs: at most 65535 are supported")]
    TooManyTariffs {
        /// Number of tariffs.
        count: usize,
    },
}

impl MarketError {
    pub(crate) fn json(e: JsonError) -> Self {
        MarketError::Json {
            path: e.path,
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }

    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            MarketError::Json { .. } => "InvalidMarketJson",
            MarketError::DuplicateTariff { .. } => "DuplicateTariff",
            MarketError::InvalidTariff { .. } => "InvalidTariff",
            MarketError::TooManyTariffs { .. } => "TooManyTariffs",
        }
    }
}

/// A scenario that cannot be applied to its market.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum ScenarioError {
    /// Malformed JSON or a field of the wrong shape.
    #[error("scenario JSON is invalid at line {line}, column {column}, field {path}: {message}")]
    Json {
        /// Path of the field at fault (`.` for the document).
        path: String,
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// What serde said.
        message: String,
    },
    /// A change names a tariff the market does not have.
    #[error(
        "changes[{change}] names tariff {id:?}, which is not in the market: check the id against the market's tariffs"
    )]
    UnknownTariff {
        /// Index of the change.
        change: usize,
        /// The id given.
        id: String,
    },
    /// A change names a supplier the market does not have.
    #[error(
        "changes[{change}] names supplier {supplier:?}, which has no tariff in the market: check the spelling"
    )]
    UnknownSupplier {
        /// Index of the change.
        change: usize,
        /// The name given.
        supplier: String,
    },
    /// An added tariff that is itself invalid, or clashes with an existing id.
    #[error("changes[{change}] adds an invalid tariff: {source}")]
    InvalidAddedTariff {
        /// Index of the change.
        change: usize,
        /// Why the tariff is invalid.
        source: MarketError,
    },
    /// A hypothetical tariff of a `price` call that is itself invalid, or clashes with a tariff of
    /// the market (or of the scenario) by id.
    #[error("hypothetical_tariffs[{index}] is an invalid tariff: {source}")]
    InvalidHypotheticalTariff {
        /// Its position in the call's `hypothetical_tariffs`.
        index: usize,
        /// Why the tariff is invalid.
        source: MarketError,
    },
    /// The changes leave the market with more tariffs than the replay can index.
    #[error(
        "the changes leave the market with {count} tariffs: at most 65535 are supported; add fewer tariffs or remove some"
    )]
    TooManyTariffs {
        /// Number of tariffs after the changes.
        count: usize,
    },
    /// A price move that makes no sense.
    #[error("changes[{change}]: {problem}")]
    InvalidChange {
        /// Index of the change.
        change: usize,
        /// What is wrong and how to fix it.
        problem: String,
    },
}

impl ScenarioError {
    pub(crate) fn json(e: JsonError) -> Self {
        ScenarioError::Json {
            path: e.path,
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }

    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            ScenarioError::Json { .. } => "InvalidScenarioJson",
            ScenarioError::UnknownTariff { .. } => "UnknownTariff",
            ScenarioError::UnknownSupplier { .. } => "UnknownSupplier",
            ScenarioError::InvalidAddedTariff { .. } => "InvalidTariff",
            ScenarioError::InvalidHypotheticalTariff { .. } => "InvalidTariff",
            ScenarioError::InvalidChange { .. } => "InvalidScenarioChange",
            ScenarioError::TooManyTariffs { .. } => "TooManyTariffs",
        }
    }
}

/// A visits file, a profile or a population that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum VisitError {
    /// The CSV cannot be read (bad quoting, wrong number of fields, not UTF-8, missing column).
    #[error("visits CSV, line {line}: {message}")]
    Csv {
        /// Line (1-based, the header is line 1).
        line: u64,
        /// What is wrong.
        message: String,
    },
    /// A field with a value that is not allowed.
    #[error("{}field {field}: {problem}", at_line(*line))]
    InvalidField {
        /// Line (1-based, the header is line 1; 0 for a profile that did not come from a file).
        line: u64,
        /// Column name.
        field: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A field of a profile given to the `price` call (not from a file) with a value that is not
    /// allowed.
    #[error("profiles[{index}].{field}: {problem}")]
    InvalidProfile {
        /// Position of the profile in the request, from 0.
        index: usize,
        /// Field name.
        field: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// The population filter kept no visit.
    #[error(
        "the population filter keeps none of the {visits} visits: widen the filter or check the visits file"
    )]
    EmptyPopulation {
        /// Visits before filtering.
        visits: usize,
    },
}

fn at_line(line: u64) -> String {
    if line == 0 {
        "profile, ".to_string()
    } else {
        format!("visits CSV, line {line}, ")
    }
}

impl VisitError {
    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            VisitError::Csv { .. } => "InvalidVisitsCsv",
            VisitError::InvalidField {
                field: "region", ..
            } => "UnknownRegion",
            VisitError::InvalidField { .. } => "InvalidVisit",
            VisitError::InvalidProfile {
                field: "region", ..
            } => "UnknownRegion",
            VisitError::InvalidProfile { .. } => "InvalidVisit",
            VisitError::EmptyPopulation { .. } => "EmptyPopulation",
        }
    }
}

/// A run spec that cannot be run.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum RunError {
    /// Malformed JSON or a field of the wrong shape.
    #[error("run spec JSON is invalid at line {line}, column {column}, field {path}: {message}")]
    Json {
        /// Path of the field at fault (`.` for the document).
        path: String,
        /// Line (1-based).
        line: usize,
        /// Column (1-based).
        column: usize,
        /// What serde said.
        message: String,
    },
    /// A field with a value that is not allowed.
    #[error("run spec field {field}: {problem}")]
    InvalidField {
        /// Field name.
        field: &'static str,
        /// What is wrong and how to fix it.
        problem: String,
    },
    /// A chunk index past the last chunk.
    #[error("chunk {index} does not exist: the run has {count} chunks, numbered from 0")]
    NoSuchChunk {
        /// Index asked for.
        index: u64,
        /// Number of chunks.
        count: u64,
    },
    /// Partial summaries from different runs cannot be merged.
    #[error("summaries do not match: {problem}")]
    SummaryMismatch {
        /// What differs.
        problem: String,
    },
}

impl RunError {
    pub(crate) fn json(e: JsonError) -> Self {
        RunError::Json {
            path: e.path,
            line: e.line,
            column: e.column,
            message: e.message,
        }
    }

    /// Stable error code.
    pub fn code(&self) -> &'static str {
        match self {
            RunError::Json { .. } => "InvalidRunSpecJson",
            RunError::InvalidField {
                field: "sample_size",
                ..
            } => "InvalidSampleSize",
            RunError::InvalidField { .. } => "InvalidRunSpec",
            RunError::NoSuchChunk { .. } => "NoSuchChunk",
            RunError::SummaryMismatch { .. } => "SummaryMismatch",
        }
    }
}

/// Any error of the core.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[non_exhaustive]
pub enum Error {
    /// See [`MarketError`].
    #[error(transparent)]
    Market(#[from] MarketError),
    /// See [`ScenarioError`].
    #[error(transparent)]
    Scenario(#[from] ScenarioError),
    /// See [`VisitError`].
    #[error(transparent)]
    Visit(#[from] VisitError),
    /// See [`RunError`].
    #[error(transparent)]
    Run(#[from] RunError),
}

impl Error {
    /// Stable PascalCase error code (JS `Error.name`, Lambda `errorType`).
    pub fn code(&self) -> &'static str {
        match self {
            Error::Market(e) => e.code(),
            Error::Scenario(e) => e.code(),
            Error::Visit(e) => e.code(),
            Error::Run(e) => e.code(),
        }
    }
}
