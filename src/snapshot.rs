//! Market snapshots: a parsed, validated market as compact bytes, so that a cold start does not
//! parse the market's JSON.
//!
//! A snapshot is a cache of a JSON file, never a source of truth: it records a key of the JSON it
//! was made from (the wasm binding's content key of the bytes), and a caller uses it only when the
//! JSON it is given has that key (otherwise it parses the JSON). It is made by this same module
//! from a market the core parsed and validated, and a caller validates the market it gives back
//! again ([`Market::validate`]). Format: a magic and version, the key, then the market's fields in declaration order,
//! little-endian; money as integer milli-pence, dates as days from the common era, vocabulary as
//! indices; last, the XXH3-64 checksum of all that: a damaged snapshot (a flipped bit that still
//! decodes to a plausible market) is refused, never priced. Any change to the market model changes `VERSION` (the encoder and decoder destructure
//! and build every struct whole, so a new field does not compile until it is handled here).

use crate::domain::{Fuel, PaymentMethod, Region};
use crate::market::{
    Economy7Rates, ElectricityRates, ExitFees, Market, RateCard, SingleRate, Tariff, TariffKind,
};
use crate::money::Millipence;
use chrono::{Datelike, NaiveDate};

const MAGIC: &[u8; 7] = b"TSIMMKT";
const VERSION: u8 = 2;
/// Bytes of the checksum that ends a snapshot.
const CHECKSUM: usize = 8;

struct Writer(Vec<u8>);

impl Writer {
    fn u8(&mut self, v: u8) {
        self.0.push(v);
    }
    fn bool(&mut self, v: bool) {
        self.u8(u8::from(v));
    }
    fn u32(&mut self, v: u32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i32(&mut self, v: i32) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn i64(&mut self, v: i64) {
        self.0.extend_from_slice(&v.to_le_bytes());
    }
    fn len(&mut self, n: usize) {
        self.u32(u32::try_from(n).expect("fewer than 2^32 items"));
    }
    fn str(&mut self, s: &str) {
        self.len(s.len());
        self.0.extend_from_slice(s.as_bytes());
    }
    fn money(&mut self, m: Millipence) {
        self.i64(m.0);
    }
    fn date(&mut self, d: NaiveDate) {
        self.i32(d.num_days_from_ce());
    }
    fn opt<T>(&mut self, v: Option<T>, f: impl FnOnce(&mut Self, T)) {
        match v {
            None => self.u8(0),
            Some(v) => {
                self.u8(1);
                f(self, v);
            }
        }
    }
    fn single(&mut self, r: &SingleRate) {
        let SingleRate {
            standing_p_per_day,
            unit_p_per_kwh,
        } = *r;
        self.money(standing_p_per_day);
        self.money(unit_p_per_kwh);
    }
    fn card(&mut self, c: &RateCard) {
        let RateCard {
            region,
            payment_method,
            electricity,
            gas,
        } = c;
        self.u8(region.index() as u8);
        self.u8(payment_method.index() as u8);
        self.opt(electricity.as_ref(), |w, e| {
            let ElectricityRates {
                standing_p_per_day,
                unit_p_per_kwh,
                economy7,
            } = e;
            w.money(*standing_p_per_day);
            w.money(*unit_p_per_kwh);
            w.opt(economy7.as_ref(), |w, e7| {
                let Economy7Rates {
                    standing_p_per_day,
                    day_p_per_kwh,
                    night_p_per_kwh,
                } = *e7;
                w.money(standing_p_per_day);
                w.money(day_p_per_kwh);
                w.money(night_p_per_kwh);
            });
        });
        self.opt(gas.as_ref(), |w, g| w.single(g));
    }
    fn tariff(&mut self, t: &Tariff) {
        let Tariff {
            id,
            supplier,
            name,
            kind,
            term_months,
            end_date,
            exit_fees_gbp,
            green,
            switchable,
            on_sale,
            hypothetical,
            fuels,
            dual_fuel_discount_gbp,
            rates,
        } = t;
        self.str(id);
        self.str(supplier);
        self.str(name);
        self.u8(match kind {
            TariffKind::Fixed => 0,
            TariffKind::Variable => 1,
        });
        self.opt(*term_months, Self::u32);
        self.opt(*end_date, Self::date);
        let ExitFees { electricity, gas } = *exit_fees_gbp;
        self.money(electricity);
        self.money(gas);
        self.bool(*green);
        self.bool(*switchable);
        self.bool(*on_sale);
        self.bool(*hypothetical);
        self.len(fuels.len());
        for f in fuels {
            self.u8(f.index() as u8);
        }
        self.money(*dual_fuel_discount_gbp);
        self.len(rates.len());
        for c in rates {
            self.card(c);
        }
    }
}

/// The snapshot of `market`, recorded as made from JSON whose key is `key`.
pub fn encode(key: &str, market: &Market) -> Vec<u8> {
    let Market {
        as_of,
        source,
        tariffs,
    } = market;
    let mut w = Writer(Vec::with_capacity(64 * 1024));
    w.0.extend_from_slice(MAGIC);
    w.u8(VERSION);
    w.str(key);
    w.date(*as_of);
    w.opt(source.as_deref(), Writer::str);
    w.len(tariffs.len());
    for t in tariffs {
        w.tariff(t);
    }
    let sum = xxhash_rust::xxh3::xxh3_64(&w.0);
    w.0.extend_from_slice(&sum.to_le_bytes());
    w.0
}

struct Reader<'a>(&'a [u8]);

impl<'a> Reader<'a> {
    fn take(&mut self, n: usize) -> Option<&'a [u8]> {
        if self.0.len() < n {
            return None;
        }
        let (head, tail) = self.0.split_at(n);
        self.0 = tail;
        Some(head)
    }
    fn u8(&mut self) -> Option<u8> {
        self.take(1).map(|b| b[0])
    }
    fn bool(&mut self) -> Option<bool> {
        match self.u8()? {
            0 => Some(false),
            1 => Some(true),
            _ => None,
        }
    }
    fn u32(&mut self) -> Option<u32> {
        Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i32(&mut self) -> Option<i32> {
        Some(i32::from_le_bytes(self.take(4)?.try_into().ok()?))
    }
    fn i64(&mut self) -> Option<i64> {
        Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
    }
    fn len(&mut self) -> Option<usize> {
        let n = self.u32()? as usize;
        // Every item takes at least a byte: a length past the end is corrupt, not an allocation.
        (n <= self.0.len()).then_some(n)
    }
    fn str(&mut self) -> Option<String> {
        let n = self.len()?;
        String::from_utf8(self.take(n)?.to_vec()).ok()
    }
    fn money(&mut self) -> Option<Millipence> {
        self.i64().map(Millipence)
    }
    fn date(&mut self) -> Option<NaiveDate> {
        NaiveDate::from_num_days_from_ce_opt(self.i32()?)
    }
    fn opt<T>(&mut self, f: impl FnOnce(&mut Self) -> Option<T>) -> Option<Option<T>> {
        match self.u8()? {
            0 => Some(None),
            1 => f(self).map(Some),
            _ => None,
        }
    }
    fn card(&mut self) -> Option<RateCard> {
        Some(RateCard {
            region: Region::all().nth(self.u8()? as usize)?,
            payment_method: *PaymentMethod::ALL.get(self.u8()? as usize)?,
            electricity: self.opt(|r| {
                Some(ElectricityRates {
                    standing_p_per_day: r.money()?,
                    unit_p_per_kwh: r.money()?,
                    economy7: r.opt(|r| {
                        Some(Economy7Rates {
                            standing_p_per_day: r.money()?,
                            day_p_per_kwh: r.money()?,
                            night_p_per_kwh: r.money()?,
                        })
                    })?,
                })
            })?,
            gas: self.opt(|r| {
                Some(SingleRate {
                    standing_p_per_day: r.money()?,
                    unit_p_per_kwh: r.money()?,
                })
            })?,
        })
    }
    fn tariff(&mut self) -> Option<Tariff> {
        Some(Tariff {
            id: self.str()?,
            supplier: self.str()?,
            name: self.str()?,
            kind: match self.u8()? {
                0 => TariffKind::Fixed,
                1 => TariffKind::Variable,
                _ => return None,
            },
            term_months: self.opt(Self::u32)?,
            end_date: self.opt(Self::date)?,
            exit_fees_gbp: ExitFees {
                electricity: self.money()?,
                gas: self.money()?,
            },
            green: self.bool()?,
            switchable: self.bool()?,
            on_sale: self.bool()?,
            hypothetical: self.bool()?,
            fuels: {
                let n = self.len()?;
                (0..n)
                    .map(|_| Fuel::ALL.get(self.u8()? as usize).copied())
                    .collect::<Option<_>>()?
            },
            dual_fuel_discount_gbp: self.money()?,
            rates: {
                let n = self.len()?;
                (0..n).map(|_| self.card()).collect::<Option<_>>()?
            },
        })
    }
}

/// The key a snapshot was made for and its market; `None` for bytes that are not a snapshot of
/// this version or whose checksum does not match (the caller then parses the JSON). The market is as it was encoded: validate it
/// before use.
pub fn decode(bytes: &[u8]) -> Option<(String, Market)> {
    let (body, sum) = bytes.split_at_checked(bytes.len().checked_sub(CHECKSUM)?)?;
    if xxhash_rust::xxh3::xxh3_64(body).to_le_bytes() != sum {
        return None;
    }
    let mut r = Reader(body);
    if r.take(MAGIC.len())? != MAGIC || r.u8()? != VERSION {
        return None;
    }
    let key = r.str()?;
    let as_of = r.date()?;
    let source = r.opt(Reader::str)?;
    let n = r.len()?;
    let tariffs = (0..n).map(|_| r.tariff()).collect::<Option<_>>()?;
    r.0.is_empty().then_some((
        key,
        Market {
            as_of,
            source,
            tariffs,
        },
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_the_fixture_and_refuses_damage() {
        let json = include_str!("../tests/fixtures/mini_market.json");
        let market = Market::from_json(json).unwrap();
        let bytes = encode("m-1", &market);
        let (key, back) = decode(&bytes).unwrap();
        assert_eq!(key, "m-1");
        assert_eq!(back, market);
        for cut in [0, 7, 8, bytes.len() / 2, bytes.len() - 1] {
            assert!(decode(&bytes[..cut]).is_none(), "cut at {cut}");
        }
        let mut longer = bytes.clone();
        longer.push(0);
        assert!(decode(&longer).is_none());
        let mut other_version = bytes.clone();
        other_version[7] = VERSION + 1;
        assert!(decode(&other_version).is_none());
        // Any one bit flipped anywhere is refused, though many such snapshots would still decode
        // to a plausible market (another date, another rate).
        for at in 0..bytes.len() {
            for bit in [0, 3, 7] {
                let mut damaged = bytes.clone();
                damaged[at] ^= 1 << bit;
                assert!(decode(&damaged).is_none(), "bit {bit} of byte {at}");
            }
        }
    }

    #[test]
    fn round_trips_the_sample_market_and_a_hypothetical_one() {
        let market = Market::from_json(include_str!("../data/sample/market.json")).unwrap();
        let (_, back) = decode(&encode("m-sample", &market)).unwrap();
        assert_eq!(back, market);
        back.validate().unwrap();
        let scenario =
            crate::Scenario::from_json(include_str!("../tests/fixtures/mini_scenario.json"))
                .unwrap();
        let mini = Market::from_json(include_str!("../tests/fixtures/mini_market.json")).unwrap();
        let hypothetical = mini.apply(&scenario).unwrap();
        assert!(hypothetical.tariffs.iter().any(|t| t.hypothetical));
        let (key, back) = decode(&encode("", &hypothetical)).unwrap();
        assert_eq!((key.as_str(), back), ("", hypothetical));
    }
}
