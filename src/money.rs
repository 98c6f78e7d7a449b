//! Integer money. Every amount is a whole number of milli-pence (1/1000 p), so sums never depend on
//! the order they are added in and native and wasm builds agree to the bit.

use serde::{Deserialize, Deserializer, Serialize, Serializer};
use std::fmt;

/// Milli-pence per penny.
pub const MILLIPENCE_PER_PENNY: i64 = 1_000;
/// Milli-pence per pound.
pub const MILLIPENCE_PER_POUND: i64 = 100_000;

/// An amount of money or a price, in milli-pence.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Millipence(pub i64);

impl Millipence {
    /// Zero.
    pub const ZERO: Millipence = Millipence(0);

    /// From a decimal amount of pence, rounded to the nearest milli-penny; `None` if not finite or
    /// too large to be a price.
    pub fn from_pence_f64(pence: f64) -> Option<Millipence> {
        let mp = (pence * MILLIPENCE_PER_PENNY as f64).round();
        (mp.is_finite() && mp.abs() < 1e15).then_some(Millipence(mp as i64))
    }

    /// From a decimal amount of pounds, rounded to the nearest milli-penny.
    pub fn from_pounds_f64(pounds: f64) -> Option<Millipence> {
        Self::from_pence_f64(pounds * 100.0)
    }

    /// Decimal pence (for JSON output of rates).
    pub fn as_pence_f64(self) -> f64 {
        self.0 as f64 / MILLIPENCE_PER_PENNY as f64
    }

    /// Decimal pounds (for JSON output of fees).
    pub fn as_pounds_f64(self) -> f64 {
        self.0 as f64 / MILLIPENCE_PER_POUND as f64
    }

    /// Whole pence, rounded half away from zero.
    pub fn round_to_pence(self) -> i64 {
        div_round(self.0, MILLIPENCE_PER_PENNY)
    }

    /// Formats as pounds with two decimals, e.g. `1234.56` or `-3.05`, rounded to the penny.
    pub fn gbp(self) -> Gbp {
        Gbp(self.round_to_pence())
    }
}

/// Integer division rounded half away from zero.
pub fn div_round(numerator: i64, denominator: i64) -> i64 {
    debug_assert!(denominator > 0);
    if numerator >= 0 {
        (numerator + denominator / 2) / denominator
    } else {
        -((-numerator + denominator / 2) / denominator)
    }
}

/// Integer division of an `i128` rounded half away from zero.
pub fn div_round_i128(numerator: i128, denominator: i128) -> i128 {
    debug_assert!(denominator > 0);
    if numerator >= 0 {
        (numerator + denominator / 2) / denominator
    } else {
        -((-numerator + denominator / 2) / denominator)
    }
}

/// The mean of `count` whole-pence amounts summing to `total`, rounded half away from zero. The
/// mean of `i64` amounts is itself one, whatever the sum.
///
/// # Panics
/// When `count` is 0.
pub fn mean_pence(total: i128, count: u64) -> Gbp {
    let mean = div_round_i128(total, i128::from(count));
    Gbp(i64::try_from(mean).expect("a mean of i64 amounts fits in i64"))
}

/// Whole pence displayed as pounds with two decimals.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Gbp(pub i64);

impl fmt::Display for Gbp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let sign = if self.0 < 0 { "-" } else { "" };
        let p = self.0.unsigned_abs();
        write!(f, "{sign}{}.{:02}", p / 100, p % 100)
    }
}

impl Gbp {
    /// As a JSON-friendly decimal number of pounds.
    pub fn as_f64(self) -> f64 {
        self.0 as f64 / 100.0
    }
}

/// Serde adapter: a non-negative rate written in JSON as decimal pence.
pub mod pence {
    use super::*;

    /// Serializes milli-pence as decimal pence.
    pub fn serialize<S: Serializer>(v: &Millipence, s: S) -> Result<S::Ok, S::Error> {
        v.as_pence_f64().serialize(s)
    }

    /// Deserializes decimal pence (at most three decimals are kept), refusing negatives.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millipence, D::Error> {
        let x = f64::deserialize(d)?;
        if !(0.0..=100_000.0).contains(&x) {
            return Err(serde::de::Error::custom(format!(
                "rate {x} is out of range: give pence as a number from 0 to 100000"
            )));
        }
        Millipence::from_pence_f64(x)
            .ok_or_else(|| serde::de::Error::custom("rate is not a number"))
    }
}

/// Serde adapter: a non-negative amount written in JSON as decimal pounds.
pub mod pounds {
    use super::*;

    /// Serializes milli-pence as decimal pounds.
    pub fn serialize<S: Serializer>(v: &Millipence, s: S) -> Result<S::Ok, S::Error> {
        v.as_pounds_f64().serialize(s)
    }

    /// Deserializes decimal pounds, refusing negatives.
    pub fn deserialize<'de, D: Deserializer<'de>>(d: D) -> Result<Millipence, D::Error> {
        let x = f64::deserialize(d)?;
        if !(0.0..=100_000.0).contains(&x) {
            return Err(serde::de::Error::custom(format!(
                "amount {x} is out of range: give pounds as a number from 0 to 100000"
            )));
        }
        Millipence::from_pounds_f64(x)
            .ok_or_else(|| serde::de::Error::custom("amount is not a number"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn decimal_pence_round_trip_exactly() {
        for p in [26.38, 0.0, 7.33, 60.99, 24.862, 100.0] {
            let mp = Millipence::from_pence_f64(p).unwrap();
            assert_eq!(mp.as_pence_f64(), p);
        }
        assert_eq!(
            Millipence::from_pence_f64(26.38).unwrap(),
            Millipence(26_380)
        );
    }

    #[test]
    fn rounding_is_half_away_from_zero() {
        assert_eq!(div_round(1_500, 1_000), 2);
        assert_eq!(div_round(1_499, 1_000), 1);
        assert_eq!(div_round(-1_500, 1_000), -2);
        assert_eq!(Millipence(192_880_750).gbp().to_string(), "1928.81");
        assert_eq!(Millipence(-305_000).gbp().to_string(), "-3.05");
        assert_eq!(Millipence(-4_000).gbp().to_string(), "-0.04");
    }
}
