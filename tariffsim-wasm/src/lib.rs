//! # tariffsim-wasm: the tariffsim core as a WebAssembly module for Node.js
//!
//! The Lambda handlers in `js/` call the pure core through this crate. It is glue only:
//!
//! - **The core's request and answer.** Profiles are the core's `ProfileInput`s (optional
//!   timestamp, night share as a fraction, kWh as numbers, defaults from the market's date), read
//!   from their JSON bytes (one copy). The answer is the core's `PriceResponse` with the market's
//!   cache key: in numbers ([`Engine::price_compact`], the `price` lambda's path: tariff indices and
//!   amounts, the market's text fetched once per compiled market from [`Engine::index_tables`], no
//!   JSON written here or parsed in JS), or, with the `full` feature, as JSON text (`priceJson`)
//!   or as plain JS objects through serde-wasm-bindgen (`price`). Markets, scenarios, run specs and
//!   visits cross as the formats the core already defines (JSON, CSV), as bytes; core types never
//!   cross.
//! - **Two builds.** With the default feature `full`: visits, runs, chunks, population filters and
//!   summaries too (`pkg/`, for simulate-chunk and the fan-out lambdas). Without it: only what
//!   pricing needs (`pkg-price/`, the price lambda's, a smaller module for cold starts). The price
//!   path is the same code in both: features never change results.
//! - **Typed errors.** Every error is a real JS `Error` whose `name` is the core's stable code
//!   (`UnknownRegion`, `InvalidMarketJson`, `NoSuchChunk`, ...) or one of this crate's own
//!   ([`codes`]); the Node.js Lambda runtime reports that `name` as `errorType`.
//! - **A warm cache in wasm memory.** An [`Engine`] keeps parsed markets and visits keyed by a
//!   content hash (XXH3-128 of the bytes), compiled hypothetical markets keyed by (market, scenario
//!   text), and prepared runs keyed by (spec, inputs). A warm call names its inputs by key and
//!   parses nothing. The cache is bounded (least recently used entries go first) and can always be
//!   rebuilt: after a trap the JS side throws the module away and starts a fresh one. A cold start
//!   need not parse a stored market either: a [`snapshot`] made from its JSON is decoded instead.
//!
//! ```js
//! const wasm = require('./pkg/tariffsim_wasm.js');
//! const engine = new wasm.Engine();
//! const key = engine.loadMarket(fs.readFileSync('market.json'));
//! // profiles, page size, tie seed, show the current tariff, whole of market
//! const out = engine.price(key, undefined, undefined, [{ region: 'C' }], 10, 0, false, true);
//! const text = engine.priceJson(key, undefined, undefined, Buffer.from('[{"region": "C"}]'), 10, 0, false, true);
//! out.results[0].rows[0]; // { rank: 1, tariff_id: ..., annual_cost_gbp: ..., ... }
//! ```

/// The allocator: Talc instead of the default dlmalloc, about 6 KB less code in the price module
/// and in what a cold start compiles (`npm run bench`), and no slower a warm call or a chunk.
#[cfg(all(not(target_feature = "atomics"), target_family = "wasm"))]
#[global_allocator]
static TALC: talc::wasm::WasmDynamicTalc = talc::wasm::new_wasm_dynamic_allocator();

#[cfg(feature = "full")]
use serde::Serialize;
use std::collections::HashMap;
use std::fmt::Display;
use std::rc::Rc;
#[cfg(feature = "full")]
use tariffsim::table::{FILTER_FIELDS, PROFILE_FIELDS, PricedTable, price_tables};
use tariffsim::table::{MarketInfo, PriceOptions, ProfileInput};
use tariffsim::visit::VisitorFilters;
use tariffsim::{
    Market, MarketError, MarketIndex, PageRules, Scenario, ScenarioError, Tariff, Visit, VisitError,
};
use tariffsim::{compact, snapshot};
use wasm_bindgen::prelude::*;

/// The text of a compiled market for [`Engine::index_tables`], written by hand rather than by a
/// serializer (a cold start compiles less): `{market, tariffs, hypothetical}`, `market` as the
/// `price` answer gives it (without its key), `tariffs` one `[id, supplier, name, kind, green,
/// switchable, hypothetical]` per tariff index, `hypothetical` the indices of the hypothetical
/// tariffs on sale. Tested against serde_json's text of the same values.
fn tables_text(index: &MarketIndex) -> String {
    let info = MarketInfo::of(index);
    let tariffs = &index.market().tariffs;
    let mut out = String::with_capacity(256 + 96 * tariffs.len());
    out.push_str("{\"market\":{\"as_of\":");
    push_json_date(&mut out, info.as_of);
    out.push_str(",\"tariffs_on_sale\":");
    push_uint(&mut out, info.tariffs_on_sale as u64);
    out.push_str(",\"hypothetical_tariffs\":[");
    for (i, id) in info.hypothetical_tariffs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_json_str(&mut out, id);
    }
    let typical = &info.typical_consumption;
    out.push_str("],\"typical_consumption\":{\"in_force_from\":");
    push_json_date(&mut out, typical.in_force_from);
    for (key, n) in [
        ("elec_kwh", typical.elec_kwh),
        ("e7_elec_kwh", typical.e7_elec_kwh),
        ("gas_kwh", typical.gas_kwh),
    ] {
        out.push_str(",\"");
        out.push_str(key);
        out.push_str("\":");
        push_uint(&mut out, u64::from(n));
    }
    out.push_str("}},\"tariffs\":[");
    for (i, t) in tariffs.iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        out.push('[');
        for (j, text) in [&t.id, &t.supplier, &t.name].into_iter().enumerate() {
            if j > 0 {
                out.push(',');
            }
            push_json_str(&mut out, text);
        }
        out.push_str(",\"");
        out.push_str(t.kind.as_str());
        out.push('"');
        for flag in [t.green, t.switchable, t.hypothetical] {
            out.push_str(if flag { ",true" } else { ",false" });
        }
        out.push(']');
    }
    out.push_str("],\"hypothetical\":[");
    for (i, t) in compact::hypothetical_tariffs(index).into_iter().enumerate() {
        if i > 0 {
            out.push(',');
        }
        push_uint(&mut out, u64::from(t));
    }
    out.push_str("]}");
    out
}

/// Appends `s` as a JSON string (quotes, backslashes and control characters escaped).
fn push_json_str(out: &mut String, s: &str) {
    const HEX: &[u8; 16] = b"0123456789abcdef";
    out.push('"');
    let mut start = 0;
    for (i, b) in s.bytes().enumerate() {
        let escape = match b {
            b'"' => "\\\"",
            b'\\' => "\\\\",
            b'\n' => "\\n",
            b'\r' => "\\r",
            b'\t' => "\\t",
            0..=0x1f => "",
            _ => continue,
        };
        // An ASCII byte: `i` is a character boundary.
        out.push_str(&s[start..i]);
        if escape.is_empty() {
            out.push_str("\\u00");
            out.push(char::from(HEX[usize::from(b >> 4)]));
            out.push(char::from(HEX[usize::from(b & 0xf)]));
        } else {
            out.push_str(escape);
        }
        start = i + 1;
    }
    out.push_str(&s[start..]);
    out.push('"');
}

/// Appends a whole number in decimal.
fn push_uint(out: &mut String, mut n: u64) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    for &d in &digits[at..] {
        out.push(char::from(d));
    }
}

/// Appends a date as a JSON string, `"YYYY-MM-DD"` (chrono's text, which years outside 0 to 9999
/// get from chrono itself).
fn push_json_date(out: &mut String, date: chrono::NaiveDate) {
    use chrono::Datelike;
    let year = date.year();
    if !(0..=9999).contains(&year) {
        push_json_str(out, &date.to_string());
        return;
    }
    out.push('"');
    for (n, width) in [(year as u32, 4), (date.month(), 2), (date.day(), 2)] {
        if width == 2 {
            out.push('-');
        }
        let mut digits = [b'0'; 4];
        let mut v = n;
        for d in digits[..width].iter_mut().rev() {
            *d = b'0' + (v % 10) as u8;
            v /= 10;
        }
        for &d in &digits[..width] {
            out.push(char::from(d));
        }
    }
    out.push('"');
}

#[cfg(feature = "full")]
mod runs;

/// Error codes of the binding itself (the core's codes come from `tariffsim::Error::code`).
pub mod codes {
    /// A request of the wrong shape: a missing or unknown field, a value of the wrong type.
    pub const INVALID_REQUEST: &str = "InvalidRequest";
    /// A market key that is not (or no longer) in the cache: load the market again.
    pub const MARKET_NOT_LOADED: &str = "MarketNotLoaded";
    /// A visits key that is not (or no longer) in the cache: load the visits again.
    pub const VISITS_NOT_LOADED: &str = "VisitsNotLoaded";
    /// A run key that is not (or no longer) in the cache: prepare the run again.
    pub const RUN_NOT_PREPARED: &str = "RunNotPrepared";
    /// A hypothetical tariff list that is not valid JSON of tariffs.
    pub const INVALID_TARIFF: &str = "InvalidTariff";
    /// Bytes that are not a market snapshot of this version.
    pub const INVALID_SNAPSHOT: &str = "InvalidSnapshot";
    /// A file that is not UTF-8 text (as `tariffsim` says of the same file).
    pub const INVALID_ENCODING: &str = "InvalidEncoding";
}

/// Markets kept parsed at once.
const MARKETS_CACHED: usize = 8;
/// Compiled (hypothetical) markets kept at once.
const INDICES_CACHED: usize = 32;
/// Visits files kept parsed at once.
#[cfg(feature = "full")]
const VISITS_CACHED: usize = 4;
/// Prepared runs kept at once.
#[cfg(feature = "full")]
const RUNS_CACHED: usize = 4;

/// The global property where the panic hook leaves the last panic's message, for the JS side to
/// put into the error it reports after the trap.
pub const PANIC_MESSAGE_GLOBAL: &str = "__tariffsimPanicMessage";

#[wasm_bindgen(start)]
fn start() {
    std::panic::set_hook(Box::new(|info| {
        console_error_panic_hook::hook(info);
        let _ = js_sys::Reflect::set(
            &js_sys::global(),
            &JsValue::from_str(PANIC_MESSAGE_GLOBAL),
            &JsValue::from_str(&info.to_string()),
        );
    }));
}

/// A JS `Error` with `name` set to `code`.
///
/// The lean build (without `full`: the price lambda's module) leaves the message empty and never
/// formats it, so no error text or number formatting is compiled in: the price lambda hands a
/// call that failed there to the full build, whose error says the same in words.
fn js_error(code: &str, message: impl Display) -> JsValue {
    #[cfg(feature = "full")]
    let e = js_sys::Error::new(&message.to_string());
    #[cfg(not(feature = "full"))]
    let e = {
        let _ = message;
        js_sys::Error::new("")
    };
    e.set_name(code);
    e.into()
}

/// A JSON error of a document this side wrote again from the caller's object (an inline market,
/// a scenario): the field at fault named by its path under `what` (`market.tariffs[3].rates`),
/// without the line and column, which would point into that JSON, not the caller's. `code` is the
/// core's code for the error.
fn written_json_error(code: &str, what: &str, path: &str, message: &str) -> JsValue {
    let at = match path {
        "." | "" => String::new(),
        p if p.starts_with('[') => p.to_string(),
        p => format!(".{p}"),
    };
    js_error(code, format_args!("{what}{at}: {message}"))
}

/// A core error as a JS `Error` named by its stable code.
fn core_error(e: impl Into<tariffsim::Error>) -> JsValue {
    let e = e.into();
    js_error(e.code(), &e)
}

fn invalid_request(message: impl Display) -> JsValue {
    js_error(codes::INVALID_REQUEST, message)
}

#[cfg(feature = "full")]
fn to_js<T: Serialize>(value: &T) -> Result<JsValue, JsValue> {
    value
        .serialize(&serde_wasm_bindgen::Serializer::json_compatible())
        .map_err(|e| {
            js_error(
                "InternalError",
                format_args!("cannot convert the result: {e}"),
            )
        })
}

/// A content key: the kind's prefix and the XXH3-128 hash of the bytes, in hex.
fn content_key(prefix: &str, bytes: &[u8]) -> String {
    format!("{prefix}-{:032x}", xxhash_rust::xxh3::xxh3_128(bytes))
}

/// A small least-recently-used map from keys to shared values.
struct Cache<V> {
    capacity: usize,
    clock: u64,
    /// How many entries have been evicted so far: while it stands still, every key seen in the
    /// cache is still there.
    evicted: u32,
    entries: HashMap<String, (u64, V)>,
}

impl<V: Clone> Cache<V> {
    fn new(capacity: usize) -> Self {
        Cache {
            capacity,
            clock: 0,
            evicted: 0,
            entries: HashMap::new(),
        }
    }

    fn get(&mut self, key: &str) -> Option<V> {
        self.clock += 1;
        let now = self.clock;
        self.entries.get_mut(key).map(|(used, v)| {
            *used = now;
            v.clone()
        })
    }

    fn contains(&self, key: &str) -> bool {
        self.entries.contains_key(key)
    }

    fn insert(&mut self, key: String, value: V) {
        if self.entries.len() >= self.capacity && !self.entries.contains_key(&key) {
            self.evict_oldest();
        }
        self.clock += 1;
        self.entries.insert(key, (self.clock, value));
    }

    /// Drops the least recently used entry. Out of line: a cold start's first insert (V8
    /// compiles a wasm function whole, on its first call) compiles none of it, nor the drop of a
    /// compiled market.
    #[cold]
    #[inline(never)]
    fn evict_oldest(&mut self) {
        if let Some(oldest) = self
            .entries
            .iter()
            .min_by_key(|(_, (used, _))| *used)
            .map(|(k, _)| k.clone())
        {
            self.entries.remove(&oldest);
            self.evicted = self.evicted.wrapping_add(1);
        }
    }
}

/// The `price` answer as it crosses: the core's [`PriceResponse`] with the market's cache key.
#[cfg(feature = "full")]
#[derive(Debug, Serialize)]
struct PriceOut<'a> {
    market: MarketOut<'a>,
    results: &'a [PricedTable],
}

#[cfg(feature = "full")]
#[derive(Debug, Serialize)]
struct MarketOut<'a> {
    key: &'a str,
    #[serde(flatten)]
    info: &'a MarketInfo,
}

/// Refuses an object with a field not in `fields`, as `deny_unknown_fields` would: a misspelt
/// field is a mistake to report, not a default to apply (serde-wasm-bindgen ignores unknown
/// fields of JS objects).
#[cfg(feature = "full")]
fn check_fields(value: &JsValue, fields: &[&str], what: &str) -> Result<(), JsValue> {
    let Some(obj) = value.dyn_ref::<js_sys::Object>() else {
        return Ok(());
    };
    for key in js_sys::Object::keys(obj).iter() {
        let key = key.as_string().unwrap_or_default();
        if !fields.contains(&key.as_str()) {
            return Err(invalid_request(format_args!(
                "{what}: unknown field `{key}`, expected one of {}",
                fields.join(", ")
            )));
        }
    }
    Ok(())
}

/// A profile-level problem as a JS error named by the core's code.
fn profile_error(e: VisitError) -> JsValue {
    core_error(e)
}

/// The profiles of a price call from their JSON (UTF-8 bytes of a list of profile objects).
///
/// The lean build (without `full`) says only serde's message: the price lambda hands a failed call
/// to the full build, whose message names the field at fault.
fn profiles_from_json(json: &[u8]) -> Result<Vec<ProfileInput>, JsValue> {
    // Read as text, as every other JSON of the price call is: one instance of the parser, not two.
    let json = utf8(json, codes::INVALID_REQUEST, "profiles")?;
    serde_json::from_str(json).map_err(|e| {
        #[cfg(feature = "full")]
        {
            // Parse again, slowly, only to say where.
            let _ = e;
            let message = |e: serde_json::Error| {
                let message = e.to_string();
                match message.rfind(" at line ") {
                    Some(i) => message[..i].to_string(),
                    None => message,
                }
            };
            let mut de = serde_json::Deserializer::from_str(json);
            match serde_path_to_error::deserialize::<_, Vec<ProfileInput>>(&mut de) {
                Err(e) => {
                    let path = e.path().to_string();
                    let path = if path == "." { String::new() } else { path };
                    invalid_request(format_args!("profiles{path}: {}", message(e.into_inner())))
                }
                Ok(_) => invalid_request("profiles must be a list of profile objects"),
            }
        }
        #[cfg(not(feature = "full"))]
        {
            let _ = e;
            invalid_request("")
        }
    })
}

/// How many numbers describe one profile in [`profiles_from_fields`].
const PROFILE_NUMBERS: usize = 12;

/// The profiles of a price call from their fields, as the `price` lambda passes well-formed
/// profile objects (js/runtime/engine.js `profileFields`): no JSON to write in JS nor to parse
/// here, and none of serde_json's readers compiled on a cold start's first request. Per profile,
/// [`PROFILE_NUMBERS`] numbers: the lengths in UTF-16 code units of `visit_id`, `timestamp`,
/// `region`, `fuel`, `meter`, `payment_method`, `current_supplier` and `current_tariff`, each -1
/// when absent (`region` never is), their text one after another in `text`; `elec_kwh`, `gas_kwh`
/// and `e7_night_share`, NaN when absent; and the filters as bits (1 `fixed_only`, 2
/// `green_only`, 4 `no_exit_fees`, 8 `switchable_only`). The same profiles read from JSON are the
/// same [`ProfileInput`]s: a profile of any other shape (an unknown field, a value of the wrong
/// kind) goes through [`profiles_from_json`], whose error names the field at fault.
fn profiles_from_fields(fields: &[f64], text: &str) -> Result<Vec<ProfileInput>, JsValue> {
    let malformed = || js_error("InternalError", "the profiles' fields are malformed");
    if fields.len() % PROFILE_NUMBERS != 0 {
        return Err(malformed());
    }
    let mut chars = text.chars();
    let mut next_text = |units: f64| -> Result<Option<String>, JsValue> {
        if units == -1.0 {
            return Ok(None);
        }
        if !(units >= 0.0 && units.fract() == 0.0) {
            return Err(malformed());
        }
        let mut out = String::new();
        let mut taken = 0.0;
        while taken < units {
            let c = chars.next().ok_or_else(malformed)?;
            taken += c.len_utf16() as f64;
            out.push(c);
        }
        if taken == units {
            Ok(Some(out))
        } else {
            Err(malformed())
        }
    };
    let number = |x: f64| (!x.is_nan()).then_some(x);
    let profiles = fields
        .chunks_exact(PROFILE_NUMBERS)
        .map(|f| {
            let bits = f[11];
            if !(0.0..16.0).contains(&bits) || bits.fract() != 0.0 {
                return Err(malformed());
            }
            let bits = bits as u8;
            Ok(ProfileInput {
                visit_id: next_text(f[0])?,
                timestamp: next_text(f[1])?,
                region: next_text(f[2])?.ok_or_else(malformed)?,
                fuel: next_text(f[3])?,
                meter: next_text(f[4])?,
                payment_method: next_text(f[5])?,
                current_supplier: next_text(f[6])?,
                current_tariff: next_text(f[7])?,
                elec_kwh: number(f[8]),
                gas_kwh: number(f[9]),
                e7_night_share: number(f[10]),
                filters: VisitorFilters {
                    fixed_only: bits & 1 != 0,
                    green_only: bits & 2 != 0,
                    no_exit_fees: bits & 4 != 0,
                    switchable_only: bits & 8 != 0,
                },
            })
        })
        .collect::<Result<Vec<_>, _>>()?;
    if chars.next().is_some() {
        return Err(malformed());
    }
    Ok(profiles)
}

/// The visits profiles describe, with the defaults of a market dated `as_of`.
fn visits_of(profiles: &[ProfileInput], as_of: chrono::NaiveDate) -> Result<Vec<Visit>, JsValue> {
    profiles
        .iter()
        .enumerate()
        .map(|(n, p)| p.to_visit(n, as_of))
        .collect::<Result<Vec<Visit>, _>>()
        .map_err(profile_error)
}

/// The price call's options from its arguments: the seed must be a whole number JS holds exactly.
fn price_options(
    page_size: u32,
    seed: f64,
    show_current_tariff: bool,
    whole_of_market: bool,
) -> Result<PriceOptions, JsValue> {
    check_page_size(page_size)?;
    if !(seed.is_finite() && seed >= 0.0 && seed.fract() == 0.0 && seed <= 9_007_199_254_740_991.0)
    {
        return Err(invalid_request(format_args!(
            "seed {seed} is not a whole number from 0 to 2^53-1 (9007199254740991)"
        )));
    }
    Ok(PriceOptions {
        page_size: page_size as usize,
        seed: seed as u64,
        rules: PageRules {
            show_current_tariff,
            whole_of_market,
        },
    })
}

/// Bytes as UTF-8 text, or an error with `code` naming `what`.
fn utf8<'a>(bytes: &'a [u8], code: &str, what: &str) -> Result<&'a str, JsValue> {
    std::str::from_utf8(bytes)
        .map_err(|e| js_error(code, format_args!("{what} is not UTF-8 text: {e}")))
}

/// Optional UTF-8 text passed as bytes.
fn optional_text<'a>(bytes: &'a Option<Box<[u8]>>, what: &str) -> Result<Option<&'a str>, JsValue> {
    bytes
        .as_deref()
        .map(|b| utf8(b, codes::INVALID_REQUEST, what))
        .transpose()
}

fn check_page_size(page_size: u32) -> Result<(), JsValue> {
    if page_size == 0 || page_size > u32::from(tariffsim::run::MAX_PAGE_SIZE) {
        return Err(invalid_request(format_args!(
            "page_size {page_size} is out of range: give 1 to {}",
            tariffsim::run::MAX_PAGE_SIZE
        )));
    }
    Ok(())
}

/// A compiled market and its serial number in this engine: the numbers [`Engine::price_compact`]
/// answers in refer to it, and [`Engine::index_tables`] gives its text once per serial.
struct Compiled {
    serial: u32,
    index: MarketIndex,
}

impl std::ops::Deref for Compiled {
    type Target = MarketIndex;

    fn deref(&self) -> &MarketIndex {
        &self.index
    }
}

/// The warm state of one wasm instance: parsed markets and visits, compiled hypothetical markets,
/// prepared runs. Create one at module scope and keep it for the life of the instance.
#[wasm_bindgen]
pub struct Engine {
    /// Loaded markets, compiled: the market as given is `index.market()`.
    markets: Cache<Rc<Compiled>>,
    indices: Cache<Rc<Compiled>>,
    /// Serial numbers given so far.
    serials: u32,
    /// The compiled market of the last [`Engine::price_compact`] call, and its visits' ids.
    last: Option<(Rc<Compiled>, Vec<String>)>,
    #[cfg(feature = "full")]
    visits: Cache<Rc<Vec<Visit>>>,
    #[cfg(feature = "full")]
    runs: Cache<Rc<tariffsim::Simulation>>,
    stats: Stats,
}

/// How much work the cache saved: what was parsed or built, as opposed to found.
#[derive(Debug, Clone, Copy, Default)]
struct Stats {
    markets_parsed: u64,
    markets_from_snapshot: u64,
    indices_built: u64,
    visits_parsed: u64,
    runs_prepared: u64,
}

impl Default for Engine {
    fn default() -> Self {
        Engine::new()
    }
}

impl Engine {
    fn compiled(&mut self, market: Market) -> Rc<Compiled> {
        self.serials += 1;
        self.stats.indices_built += 1;
        Rc::new(Compiled {
            serial: self.serials,
            index: MarketIndex::new(market),
        })
    }

    fn market(&mut self, key: &str) -> Result<Rc<Compiled>, JsValue> {
        self.markets.get(key).ok_or_else(|| {
            js_error(
                codes::MARKET_NOT_LOADED,
                format_args!("market {key} is not loaded: load it with loadMarket first"),
            )
        })
    }

    /// The compiled market for (market, scenario, hypothetical tariffs), from the cache or built.
    fn index(
        &mut self,
        market_key: &str,
        scenario: Option<&str>,
        hypothetical_tariffs: Option<&str>,
    ) -> Result<Rc<Compiled>, JsValue> {
        if scenario.is_none() && hypothetical_tariffs.is_none() {
            return self.market(market_key);
        }
        self.hypothetical_index(market_key, scenario, hypothetical_tariffs)
    }

    /// [`Engine::index`] with a scenario or hypothetical tariffs. Out of line: a cold start's first
    /// call on the market as it is compiles (V8 compiles a wasm function on its first call) none of
    /// the scenario and tariff readers.
    #[inline(never)]
    fn hypothetical_index(
        &mut self,
        market_key: &str,
        scenario: Option<&str>,
        hypothetical_tariffs: Option<&str>,
    ) -> Result<Rc<Compiled>, JsValue> {
        let key = format!(
            "{market_key}/{}/{}",
            content_key("s", scenario.unwrap_or_default().as_bytes()),
            content_key("h", hypothetical_tariffs.unwrap_or_default().as_bytes())
        );
        if let Some(index) = self.indices.get(&key) {
            return Ok(index);
        }
        let base = self.market(market_key)?;
        let scenario = scenario
            .map(Scenario::from_json)
            .transpose()
            .map_err(|e| match e {
                ScenarioError::Json { path, message, .. } => {
                    written_json_error("InvalidScenarioJson", "scenario", &path, &message)
                }
                other => core_error(other),
            })?;
        let added: Vec<Tariff> = match hypothetical_tariffs {
            Some(json) => Market::tariffs_from_json(json).map_err(|e| match e {
                // The path names the tariff and its field (`[1].supplier`); the line and column
                // would point into JSON this side wrote, not the caller's.
                MarketError::Json { path, message, .. } if path.starts_with('[') => js_error(
                    codes::INVALID_TARIFF,
                    format_args!("hypothetical_tariffs{path}: {message}"),
                ),
                MarketError::Json { message, .. } => js_error(
                    codes::INVALID_TARIFF,
                    format_args!(
                        "hypothetical_tariffs is not a list of tariffs in the market format: {message}"
                    ),
                ),
                other => core_error(other),
            })?,
            None => Vec::new(),
        };
        let market = base
            .market()
            .apply_with_tariffs(scenario.as_ref(), &added)
            .map_err(core_error)?;
        let index = self.compiled(market);
        self.indices.insert(key, index.clone());
        Ok(index)
    }

    /// Prices visits on the compiled market and hands the result to `emit` (to JS objects or text).
    #[cfg(feature = "full")]
    fn priced<R>(
        &mut self,
        market_key: &str,
        scenario: Option<&str>,
        hypothetical_tariffs: Option<&str>,
        profiles: &[ProfileInput],
        options: &PriceOptions,
        emit: impl FnOnce(&PriceOut) -> R,
    ) -> Result<R, JsValue> {
        let index = self.index(market_key, scenario, hypothetical_tariffs)?;
        let visits = visits_of(profiles, index.market().as_of)?;
        let answer = price_tables(&index, &visits, options);
        Ok(emit(&PriceOut {
            market: MarketOut {
                key: market_key,
                info: &answer.market,
            },
            results: &answer.results,
        }))
    }

    fn insert_market(&mut self, key: String, market: Market) {
        let index = self.compiled(market);
        self.markets.insert(key, index);
    }

    /// [`Engine::load_market`] for Rust callers.
    ///
    /// # Errors
    /// As [`Engine::load_market`].
    pub fn load_market_bytes(&mut self, json: &[u8]) -> Result<String, JsValue> {
        let key = content_key("m", json);
        if !self.markets.contains(&key) {
            let json = std::str::from_utf8(json).map_err(|e| {
                js_error(
                    codes::INVALID_ENCODING,
                    format_args!(
                        "the market is not UTF-8 text (byte {} is not valid UTF-8): save it as UTF-8",
                        e.valid_up_to()
                    ),
                )
            })?;
            let market = Market::from_json(json).map_err(core_error)?;
            self.stats.markets_parsed += 1;
            self.insert_market(key.clone(), market);
        }
        Ok(key)
    }
}

#[wasm_bindgen]
impl Engine {
    /// An empty engine.
    #[wasm_bindgen(constructor)]
    pub fn new() -> Engine {
        Engine {
            markets: Cache::new(MARKETS_CACHED),
            indices: Cache::new(INDICES_CACHED),
            serials: 0,
            last: None,
            #[cfg(feature = "full")]
            visits: Cache::new(VISITS_CACHED),
            #[cfg(feature = "full")]
            runs: Cache::new(RUNS_CACHED),
            stats: Stats::default(),
        }
    }

    /// Parses and validates a market (JSON, the format of `schemas/market.schema.json`: UTF-8
    /// bytes, e.g. the `Buffer` a file read gives, or a string) and keeps it; returns its key, a
    /// hash of the bytes. Bytes already loaded are not parsed again. Bytes cross in one copy; a
    /// string is copied a character at a time, which for a large market costs milliseconds.
    ///
    /// # Errors
    /// `InvalidMarketJson`, `DuplicateTariff`, `InvalidTariff`, `TooManyTariffs`;
    /// `InvalidRequest` for something neither bytes nor a string.
    ///
    /// `snapshot`, when given, is a [`snapshot`] of the same market (`marketSnapshot`):
    /// if it was made from JSON with this key it is decoded instead of parsing the JSON (a cold
    /// start then costs a hash and a copy instead of a parse); otherwise it is ignored.
    #[wasm_bindgen(js_name = loadMarket)]
    pub fn load_market(
        &mut self,
        json: JsValue,
        snapshot: Option<Box<[u8]>>,
    ) -> Result<String, JsValue> {
        let bytes = match json.dyn_ref::<js_sys::Uint8Array>() {
            Some(array) => array.to_vec(),
            None => json
                .as_string()
                .ok_or_else(|| invalid_request("a market must be JSON bytes or text"))?
                .into_bytes(),
        };
        if let Some(snapshot) = snapshot {
            let key = content_key("m", &bytes);
            if self.markets.contains(&key) {
                return Ok(key);
            }
            if let Some((made_for, market)) = snapshot::decode(&snapshot)
                && made_for == key
                && market.validate().is_ok()
            {
                self.stats.markets_from_snapshot += 1;
                self.insert_market(key.clone(), market);
                return Ok(key);
            }
        }
        self.load_market_bytes(&bytes)
    }

    /// [`Engine::load_market`] for a market the caller gave inline, as the JSON its handler wrote
    /// again from the caller's object: a field at fault is named by its path under `market`
    /// (`market.tariffs[3].rates`), without a line and column in JSON the caller never saw.
    ///
    /// # Errors
    /// As [`Engine::load_market`].
    #[wasm_bindgen(js_name = loadInlineMarket)]
    pub fn load_inline_market(&mut self, json: &[u8]) -> Result<String, JsValue> {
        let key = content_key("m", json);
        if !self.markets.contains(&key) {
            let text = std::str::from_utf8(json)
                .map_err(|_| invalid_request("an inline market must be UTF-8 JSON"))?;
            let market = Market::from_json(text).map_err(|e| match e {
                MarketError::Json { path, message, .. } => {
                    written_json_error("InvalidMarketJson", "market", &path, &message)
                }
                other => core_error(other),
            })?;
            self.stats.markets_parsed += 1;
            self.insert_market(key.clone(), market);
        }
        Ok(key)
    }

    /// Loads a market from its [`snapshot`] alone, under the key of the JSON it was made from, for
    /// a deployment that ships the snapshot instead of the JSON (the Lambda zip does): no JSON is
    /// read, hashed or parsed. The snapshot was made from a market the core validated, and the
    /// market is validated again.
    ///
    /// # Errors
    /// `InvalidSnapshot` for bytes that are not a snapshot of this version; the market's validation
    /// errors.
    #[wasm_bindgen(js_name = loadMarketSnapshot)]
    pub fn load_market_snapshot(&mut self, snapshot: &[u8]) -> Result<String, JsValue> {
        let (key, market) = snapshot::decode(snapshot).ok_or_else(|| {
            js_error(
                codes::INVALID_SNAPSHOT,
                "not a market snapshot of this version: make it again with js/tools/snapshot.js",
            )
        })?;
        if !self.markets.contains(&key) {
            market.validate().map_err(core_error)?;
            self.stats.markets_from_snapshot += 1;
            self.insert_market(key.clone(), market);
        }
        Ok(key)
    }

    /// The [`snapshot`] of a loaded market, to store next to its JSON (`<file>.snapshot`) so that
    /// cold starts skip parsing it.
    ///
    /// # Errors
    /// `MarketNotLoaded`.
    #[cfg(feature = "full")]
    #[wasm_bindgen(js_name = marketSnapshot)]
    pub fn market_snapshot(&mut self, key: &str) -> Result<Vec<u8>, JsValue> {
        let market = self.market(key)?;
        Ok(snapshot::encode(key, market.market()))
    }

    /// What this engine has parsed or built so far: `{markets_parsed, markets_from_snapshot,
    /// indices_built, visits_parsed, runs_prepared}` (a warm call adds nothing).
    pub fn stats(&self) -> Result<JsValue, JsValue> {
        // Field by field (no serializer: the price build carries none).
        let Stats {
            markets_parsed,
            markets_from_snapshot,
            indices_built,
            visits_parsed,
            runs_prepared,
        } = self.stats;
        let obj = js_sys::Object::new();
        for (key, n) in [
            ("markets_parsed", markets_parsed),
            ("markets_from_snapshot", markets_from_snapshot),
            ("indices_built", indices_built),
            ("visits_parsed", visits_parsed),
            ("runs_prepared", runs_prepared),
        ] {
            js_sys::Reflect::set(&obj, &JsValue::from_str(key), &JsValue::from_f64(n as f64))?;
        }
        Ok(obj.into())
    }

    /// Prices profiles as `priceJson` does, answering in numbers: the `price` lambda's
    /// path, which builds the answer in JS from them and from [`Engine::index_tables`] (fetched once
    /// per compiled market), with no JSON to write here or to parse there. Returns a
    /// `Float64Array`: the compiled market's serial number, the number of profiles, then per
    /// profile: current cost (GBP, NaN when unknown), current tariff (index, -1 when unknown),
    /// switch cost (GBP, NaN), eligible tariffs, rows on the page, whether the visit id is the
    /// profile's `visit_id` as given (1, else 0: ask [`Engine::last_visit_ids`]), then per row: tariff index,
    /// annual cost, saving (NaN when unknown), exit fee; then per hypothetical tariff of
    /// [`Engine::index_tables`]: rank (0 when not eligible), annual cost, saving (NaN when unknown or
    /// not eligible), on the page (1 or 0). Visit ids: [`Engine::last_visit_ids`].
    ///
    /// # Errors
    /// As `priceJson`: `MarketNotLoaded`; `InvalidRequest` naming the profile and field at fault;
    /// `UnknownRegion`, `InvalidVisit`; the scenario's and hypothetical tariffs' errors.
    #[allow(
        clippy::too_many_arguments,
        reason = "JS callers pass the price call's options as plain arguments"
    )]
    #[wasm_bindgen(js_name = priceCompact)]
    pub fn price_compact(
        &mut self,
        market_key: &str,
        scenario: Option<Box<[u8]>>,
        hypothetical_tariffs: Option<Box<[u8]>>,
        profiles_json: &[u8],
        page_size: u32,
        seed: f64,
        show_current_tariff: bool,
        whole_of_market: bool,
    ) -> Result<Vec<f64>, JsValue> {
        let options = price_options(page_size, seed, show_current_tariff, whole_of_market)?;
        let inputs = profiles_from_json(profiles_json)?;
        self.compact(
            market_key,
            &scenario,
            &hypothetical_tariffs,
            &inputs,
            &options,
        )
    }

    /// As [`Engine::price_compact`], the profiles given by their fields (`profileFields` in
    /// js/runtime/engine.js) instead of their JSON: the `price` lambda's
    /// path for well-formed profile objects.
    ///
    /// # Errors
    /// As [`Engine::price_compact`], and `InternalError` for fields that are not in that form.
    #[allow(
        clippy::too_many_arguments,
        reason = "JS callers pass the price call's options as plain arguments"
    )]
    #[wasm_bindgen(js_name = priceFields)]
    pub fn price_fields(
        &mut self,
        market_key: &str,
        scenario: Option<Box<[u8]>>,
        hypothetical_tariffs: Option<Box<[u8]>>,
        fields: &[f64],
        text: &str,
        page_size: u32,
        seed: f64,
        show_current_tariff: bool,
        whole_of_market: bool,
    ) -> Result<Vec<f64>, JsValue> {
        let options = price_options(page_size, seed, show_current_tariff, whole_of_market)?;
        let inputs = profiles_from_fields(fields, text)?;
        self.compact(
            market_key,
            &scenario,
            &hypothetical_tariffs,
            &inputs,
            &options,
        )
    }
}

impl Engine {
    /// [`Engine::price_compact`]'s answer for profiles read either way.
    fn compact(
        &mut self,
        market_key: &str,
        scenario: &Option<Box<[u8]>>,
        hypothetical_tariffs: &Option<Box<[u8]>>,
        inputs: &[ProfileInput],
        options: &PriceOptions,
    ) -> Result<Vec<f64>, JsValue> {
        let index = self.index(
            market_key,
            optional_text(scenario, "the scenario")?,
            optional_text(hypothetical_tariffs, "hypothetical_tariffs")?,
        )?;
        let visits = visits_of(inputs, index.market().as_of)?;
        let tables = compact::price_compact(&index, &visits, options);
        let opt = |x: Option<f64>| x.unwrap_or(f64::NAN);
        let hypothetical = tables.first().map_or(0, |t| t.hypothetical.len());
        let per_table = 6 + 4 * (options.page_size.min(64) + hypothetical);
        let mut out = Vec::with_capacity(2 + tables.len() * per_table);
        out.push(f64::from(index.serial));
        out.push(tables.len() as f64);
        for (t, input) in tables.iter().zip(inputs) {
            out.push(opt(t.current_cost_gbp()));
            out.push(t.current.map_or(-1.0, |c| f64::from(c.tariff)));
            out.push(opt(t.switch_cost_gbp()));
            out.push(t.eligible as f64);
            out.push(t.rows.len() as f64);
            // 1 when the visit id is the profile's own, as given: the caller has it already and
            // asks for the ids (lastVisitIds) only when one was defaulted or trimmed.
            out.push(f64::from(u8::from(
                input.visit_id.as_deref() == Some(t.visit_id.as_str()),
            )));
            for r in &t.rows {
                let (cost, saving) = t.row_gbp(r);
                out.extend([
                    f64::from(r.tariff),
                    cost,
                    opt(saving),
                    t.exit_fee_gbp(&index, r.tariff),
                ]);
            }
            for h in &t.hypothetical {
                match h {
                    Some(r) => {
                        let (cost, saving) = t.row_gbp(r);
                        let on_page = usize::from(r.rank) <= options.page_size;
                        out.extend([
                            f64::from(r.rank),
                            cost,
                            opt(saving),
                            f64::from(u8::from(on_page)),
                        ]);
                    }
                    None => out.extend([0.0, f64::NAN, f64::NAN, 0.0]),
                }
            }
        }
        let ids = tables.into_iter().map(|t| t.visit_id).collect();
        self.last = Some((index, ids));
        Ok(out)
    }
}

#[wasm_bindgen]
impl Engine {
    /// The visit ids of the last [`Engine::price_compact`] call, in profile order.
    #[wasm_bindgen(js_name = lastVisitIds)]
    pub fn last_visit_ids(&mut self) -> Vec<String> {
        self.last
            .as_mut()
            .map_or_else(Vec::new, |(_, ids)| std::mem::take(ids))
    }

    /// The text of the compiled market numbered `serial` (the last [`Engine::price_compact`] call's):
    /// JSON of `{market, tariffs, hypothetical}`, `market` as the `price` answer gives it (without
    /// its key), `tariffs` one `[id, supplier, name, kind, green, switchable, hypothetical]` per
    /// tariff index, `hypothetical` the indices of the hypothetical tariffs on sale.
    ///
    /// # Errors
    /// `MarketNotLoaded` when `serial` is not the last call's.
    #[wasm_bindgen(js_name = indexTables)]
    pub fn index_tables(&self, serial: u32) -> Result<String, JsValue> {
        let Some((index, _)) = self.last.as_ref().filter(|(c, _)| c.serial == serial) else {
            return Err(js_error(
                codes::MARKET_NOT_LOADED,
                format_args!("compiled market {serial} is not the last one priced: price again"),
            ));
        };
        Ok(tables_text(index))
    }

    /// Whether a market key is in the cache.
    #[wasm_bindgen(js_name = hasMarket)]
    pub fn has_market(&self, key: &str) -> bool {
        self.markets.contains(key)
    }

    /// How many loaded markets have left the cache so far: while it stands still, a market once
    /// loaded is still loaded (a warm call checks that without passing the key).
    #[wasm_bindgen(js_name = marketsEvicted)]
    pub fn markets_evicted(&self) -> u32 {
        self.markets.evicted
    }

    /// Prices profiles on a loaded market, optionally made hypothetical by a scenario (JSON text)
    /// and by hypothetical tariffs (JSON text of a list of tariffs in the market format, added as
    /// hypothetical). `profiles` is a list of profile objects (the core's `ProfileInput`). Returns
    /// `{market, results}`: per profile every eligible tariff is ranked, the first `page_size` rows
    /// are returned, and each hypothetical tariff's rank in the whole list is reported.
    ///
    /// # Errors
    /// `MarketNotLoaded`; `InvalidRequest` for a profile of the wrong shape; `UnknownRegion`,
    /// `InvalidVisit`; the scenario's errors (`InvalidScenarioJson`, `UnknownTariff`, ...);
    /// `InvalidTariff` for a bad hypothetical tariff.
    #[allow(
        clippy::too_many_arguments,
        reason = "JS callers pass the price call's options as plain arguments"
    )]
    #[cfg(feature = "full")]
    pub fn price(
        &mut self,
        market_key: &str,
        scenario: Option<Box<[u8]>>,
        hypothetical_tariffs: Option<Box<[u8]>>,
        profiles: JsValue,
        page_size: u32,
        seed: f64,
        show_current_tariff: bool,
        whole_of_market: bool,
    ) -> Result<JsValue, JsValue> {
        let options = price_options(page_size, seed, show_current_tariff, whole_of_market)?;
        let profiles: js_sys::Array = profiles
            .dyn_into()
            .map_err(|_| invalid_request("profiles must be a list of profile objects"))?;
        let mut inputs = Vec::with_capacity(profiles.length() as usize);
        for (n, p) in profiles.iter().enumerate() {
            check_fields(&p, PROFILE_FIELDS, &format!("profiles[{n}]"))?;
            if let Ok(filters) = js_sys::Reflect::get(&p, &JsValue::from_str("filters")) {
                check_fields(&filters, FILTER_FIELDS, &format!("profiles[{n}].filters"))?;
            }
            let input: ProfileInput = serde_wasm_bindgen::from_value(p).map_err(|e| {
                let e = e.to_string();
                invalid_request(format_args!(
                    "profiles[{n}]: {}",
                    e.trim_start_matches("Error: ")
                ))
            })?;
            inputs.push(input);
        }
        self.priced(
            market_key,
            optional_text(&scenario, "the scenario")?,
            optional_text(&hypothetical_tariffs, "hypothetical_tariffs")?,
            &inputs,
            &options,
            |out| to_js(out),
        )?
    }

    /// [`Engine::price`] with JSON in and out: `profiles_json` is the UTF-8 JSON of the list of
    /// profiles (bytes: a `Buffer` is copied in one go, where a JS string is copied a character at a
    /// time) and the result is the JSON text of `{market, results}`. The handlers' hot path: one
    /// copy each way instead of a JS call per field.
    ///
    /// # Errors
    /// As [`Engine::price`]; `InvalidRequest` names the profile and field at fault.
    #[allow(
        clippy::too_many_arguments,
        reason = "JS callers pass the price call's options as plain arguments"
    )]
    #[cfg(feature = "full")]
    #[wasm_bindgen(js_name = priceJson)]
    pub fn price_json(
        &mut self,
        market_key: &str,
        scenario: Option<Box<[u8]>>,
        hypothetical_tariffs: Option<Box<[u8]>>,
        profiles_json: &[u8],
        page_size: u32,
        seed: f64,
        show_current_tariff: bool,
        whole_of_market: bool,
    ) -> Result<String, JsValue> {
        let options = price_options(page_size, seed, show_current_tariff, whole_of_market)?;
        let inputs = profiles_from_json(profiles_json)?;
        self.priced(
            market_key,
            optional_text(&scenario, "the scenario")?,
            optional_text(&hypothetical_tariffs, "hypothetical_tariffs")?,
            &inputs,
            &options,
            |out| serde_json::to_string(out).map_err(|e| js_error("InternalError", e)),
        )?
    }
}

/// The version of this crate (and of the core it was built with).
#[wasm_bindgen]
pub fn version() -> String {
    env!("CARGO_PKG_VERSION").to_string()
}

/// Panics with `message`: fault injection for testing that the JS side recovers from a trap. It
/// only ever runs when a caller asks for it (the handlers accept it in the DEV environment only).
#[wasm_bindgen(js_name = debugPanic)]
pub fn debug_panic(message: &str) {
    panic!("debug panic requested: {message}");
}

#[cfg(test)]
mod tables_text_tests {
    use super::*;

    /// The hand-written text reads as the very values serde_json writes for the same market: on
    /// the sample market with the sample scenario's hypothetical tariffs, and with names holding
    /// quotes, backslashes, control characters and non-ASCII text.
    #[test]
    fn tables_text_is_the_serde_json_text_of_the_same_values() {
        let market = Market::from_json(include_str!("../../data/sample/market.json")).unwrap();
        let scenario =
            Scenario::from_json(include_str!("../../data/sample/scenario.json")).unwrap();
        let mut odd = market.apply(&scenario).unwrap();
        odd.tariffs[0].name = "Fix \"12\" \\ tab\there\nnew line \u{1}\u{1f} é € 𝄞".into();
        odd.tariffs[1].supplier = "\u{7f}\u{0}/".into();
        for m in [market.clone(), market.apply(&scenario).unwrap(), odd] {
            let index = MarketIndex::new(m);
            #[derive(Serialize)]
            struct Tables<'a, T> {
                market: &'a MarketInfo,
                tariffs: Vec<T>,
                hypothetical: Vec<u16>,
            }
            let tariffs: Vec<_> = index
                .market()
                .tariffs
                .iter()
                .map(|t| {
                    (
                        &t.id,
                        &t.supplier,
                        &t.name,
                        t.kind,
                        t.green,
                        t.switchable,
                        t.hypothetical,
                    )
                })
                .collect();
            let want = serde_json::to_value(Tables {
                market: &price_tables(&index, &[], &PriceOptions::default()).market,
                tariffs,
                hypothetical: compact::hypothetical_tariffs(&index),
            })
            .unwrap();
            let text = tables_text(&index);
            let got: serde_json::Value = serde_json::from_str(&text).unwrap();
            assert_eq!(got, want, "{text}");
        }
    }
}

#[cfg(test)]
mod profile_fields_tests {
    use super::*;

    /// `profiles`' fields as js/runtime/engine.js `profileFields` lays them out.
    fn fields_of(profiles: &[ProfileInput]) -> (Vec<f64>, String) {
        let mut fields = Vec::new();
        let mut text = String::new();
        for p in profiles {
            let texts = [
                &p.visit_id,
                &p.timestamp,
                &Some(p.region.clone()),
                &p.fuel,
                &p.meter,
                &p.payment_method,
                &p.current_supplier,
                &p.current_tariff,
            ];
            for t in texts {
                match t {
                    Some(t) => {
                        fields.push(t.encode_utf16().count() as f64);
                        text.push_str(t);
                    }
                    None => fields.push(-1.0),
                }
            }
            for x in [p.elec_kwh, p.gas_kwh, p.e7_night_share] {
                fields.push(x.unwrap_or(f64::NAN));
            }
            let f = p.filters;
            fields.push(f64::from(
                u8::from(f.fixed_only)
                    | u8::from(f.green_only) << 1
                    | u8::from(f.no_exit_fees) << 2
                    | u8::from(f.switchable_only) << 3,
            ));
        }
        (fields, text)
    }

    /// Profiles read from their fields are the profiles read from their JSON: every field present
    /// or absent, text with non-ASCII characters and characters beyond the BMP (two UTF-16 code
    /// units each), empty text, and every filter alone.
    #[test]
    fn fields_read_as_the_json_reads() {
        let json = r#"[
            {"region": "C"},
            {"visit_id": "v-1", "timestamp": "2026-07-01T10:00:00Z", "region": "A", "fuel": "electricity",
             "meter": "economy7", "payment_method": "prepayment", "elec_kwh": 3100.5, "gas_kwh": 0,
             "e7_night_share": 0.4, "current_supplier": "Sô Énergie 𝄞", "current_tariff": "",
             "filters": {"fixed_only": true}},
            {"visit_id": "😀😀", "region": "P", "current_supplier": "British Gas", "filters": {"green_only": true}},
            {"region": "N", "elec_kwh": 1e-7, "gas_kwh": 12000, "filters": {"no_exit_fees": true}},
            {"region": "M", "filters": {"switchable_only": true, "fixed_only": true, "green_only": true, "no_exit_fees": true}}
        ]"#;
        let want: Vec<ProfileInput> = serde_json::from_str(json).unwrap();
        let (fields, text) = fields_of(&want);
        let got = profiles_from_fields(&fields, &text).unwrap();
        assert_eq!(got, want);
        assert_eq!(got.len(), 5);
        assert!(profiles_from_fields(&[], "").unwrap().is_empty());
    }
}
