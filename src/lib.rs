//! # tariffsim: how would a hypothetical energy tariff perform on a given market?
//!
//! The simulation core, pure and deterministic: no I/O, no clock, no environment. It is compiled
//! natively (the `tariffsim` command) and to WebAssembly (the Lambda handlers) from the same code,
//! and gives the same bytes on both.
//!
//! ## The model
//!
//! - A [`Market`] is a set of [`Tariff`]s at a date. Each tariff has VAT-inclusive rate cards per
//!   region and payment method; it is available exactly where it has a card.
//! - A [`Scenario`] turns a market into a hypothetical one: tariffs added (marked hypothetical),
//!   tariffs or suppliers removed, prices moved by a percentage or variable tariffs set to a cap.
//! - A [`Visit`] is a recorded site visit: region, fuel, meter, payment method, consumption,
//!   current tariff and the filters the visitor set. A [`PopulationFilter`] selects visits.
//! - A [`RunSpec`] samples N profiles from the population with a seed. Profile j depends only on
//!   (seed, j), so the run splits into chunks that can be computed anywhere ([`Simulation::chunk`]).
//! - Replay puts each profile on a virtual results table of the hypothetical market: eligible
//!   tariffs priced ([`price`]), sorted by annual cost (ties in a seeded random order, see
//!   [`replay`]), first page kept. Each
//!   row shown is an impression; a [`Summary`] counts them per tariff and merges across chunks,
//!   with standard errors and 95% intervals ([`stats`]).
//! - With a scenario, every profile is also replayed on the market before it, with the same tie
//!   keys, and a [`compare::Comparison`] pairs the two per profile: what the change took from whom.
//!
//! Money is integer milli-pence throughout ([`money`]); floats appear only in derived outputs.
//!
//! ## Example
//!
//! ```
//! use tariffsim::{Market, RunSpec, Simulation, parse_visits_csv};
//!
//! let market = Market::from_json(include_str!("../tests/fixtures/mini_market.json"))?;
//! let visits = parse_visits_csv(include_bytes!("../tests/fixtures/mini_visits.csv"))?;
//! let spec = RunSpec::from_json(r#"{"market": "m", "visits": "v", "sample_size": 5, "chunk_size": 2, "seed": 7}"#)?;
//! let sim = Simulation::new(&market, None, &visits, &spec)?;
//! assert_eq!(sim.chunk_count(), 3);
//! let first = sim.chunk(0)?;
//! assert!(first.impressions_csv.starts_with(b"profile,visit_id,visit_date,rank"));
//! # Ok::<(), Box<dyn std::error::Error>>(())
//! ```

#![warn(clippy::print_stdout, clippy::print_stderr)]

pub mod compact;
pub mod compare;
pub mod consumption;
pub mod dates;
pub mod domain;
pub mod error;
pub mod market;
pub mod money;
pub mod price;
pub mod replay;
pub mod run;
pub mod scenario;
pub mod snapshot;
pub mod stats;
pub mod summary;
pub mod table;
pub mod visit;

pub use domain::{Fuel, Meter, PaymentMethod, Region};
pub use error::{Error, MarketError, RunError, ScenarioError, VisitError};
pub use market::{Market, RateCard, Tariff, TariffKind};
pub use replay::{MarketIndex, PageRules, ResultsTable};
pub use run::{
    ChunkOutput, IMPRESSIONS_CSV_HEADER, IMPRESSIONS_FORMAT_VERSION, RunSpec, Simulation,
};
pub use scenario::{Change, Scenario};
pub use summary::Summary;
pub use visit::{PopulationFilter, Visit, parse_visits_csv};
