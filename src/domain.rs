//! The fixed vocabulary of the GB retail energy market: regions, fuels, meters, payment methods.

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// One of the 14 GB electricity distribution regions, named by its GSP group letter.
///
/// Gas has its own network areas, but comparison sites and Ofgem's cap both price gas by the
/// electricity region the home is in, so one region serves both fuels.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct Region(u8);

/// Static facts about a region: GSP letter, MPAN distributor id, Ofgem cap name, common name.
#[derive(Debug, Clone, Copy)]
pub struct RegionInfo {
    /// GSP group letter (`A`..`P`, no `I`, `O`).
    pub letter: char,
    /// MPAN distributor id (10..23).
    pub distributor_id: u8,
    /// The name Ofgem's cap tables use.
    pub ofgem_cap_name: &'static str,
    /// The name visitors know.
    pub common_name: &'static str,
}

/// The 14 regions in distributor-id order (K = South Wales, L = South West).
pub const REGIONS: [RegionInfo; 14] = [
    RegionInfo {
        letter: 'A',
        distributor_id: 10,
        ofgem_cap_name: "Eastern",
        common_name: "East of England",
    },
    RegionInfo {
        letter: 'B',
        distributor_id: 11,
        ofgem_cap_name: "East Midlands",
        common_name: "East Midlands",
    },
    RegionInfo {
        letter: 'C',
        distributor_id: 12,
        ofgem_cap_name: "London",
        common_name: "London",
    },
    RegionInfo {
        letter: 'D',
        distributor_id: 13,
        ofgem_cap_name: "N Wales and Mersey",
        common_name: "Merseyside & North Wales",
    },
    RegionInfo {
        letter: 'E',
        distributor_id: 14,
        ofgem_cap_name: "Midlands",
        common_name: "West Midlands",
    },
    RegionInfo {
        letter: 'F',
        distributor_id: 15,
        ofgem_cap_name: "Northern",
        common_name: "North East",
    },
    RegionInfo {
        letter: 'G',
        distributor_id: 16,
        ofgem_cap_name: "North West",
        common_name: "North West",
    },
    RegionInfo {
        letter: 'P',
        distributor_id: 17,
        ofgem_cap_name: "Northern Scotland",
        common_name: "North Scotland",
    },
    RegionInfo {
        letter: 'N',
        distributor_id: 18,
        ofgem_cap_name: "Southern Scotland",
        common_name: "South Scotland",
    },
    RegionInfo {
        letter: 'J',
        distributor_id: 19,
        ofgem_cap_name: "South East",
        common_name: "South East",
    },
    RegionInfo {
        letter: 'H',
        distributor_id: 20,
        ofgem_cap_name: "Southern",
        common_name: "Southern",
    },
    RegionInfo {
        letter: 'K',
        distributor_id: 21,
        ofgem_cap_name: "South Wales",
        common_name: "South Wales",
    },
    RegionInfo {
        letter: 'L',
        distributor_id: 22,
        ofgem_cap_name: "Southern Western",
        common_name: "South West",
    },
    RegionInfo {
        letter: 'M',
        distributor_id: 23,
        ofgem_cap_name: "Yorkshire",
        common_name: "Yorkshire",
    },
];

impl Region {
    /// Number of regions.
    pub const COUNT: usize = 14;

    /// All regions in distributor-id order.
    pub fn all() -> impl Iterator<Item = Region> {
        (0..Self::COUNT as u8).map(Region)
    }

    /// The region with this GSP group letter (case-insensitive).
    pub fn from_letter(letter: char) -> Option<Region> {
        let upper = letter.to_ascii_uppercase();
        REGIONS
            .iter()
            .position(|r| r.letter == upper)
            .map(|i| Region(i as u8))
    }

    /// Dense index 0..14, for tables.
    pub fn index(self) -> usize {
        self.0 as usize
    }

    /// Static facts about this region.
    pub fn info(self) -> &'static RegionInfo {
        &REGIONS[self.index()]
    }

    /// GSP group letter.
    pub fn letter(self) -> char {
        self.info().letter
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.letter())
    }
}

/// Error for a string that names no region, fuel, meter or payment method.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} {value:?}: expected one of {expected}")]
pub struct UnknownValue {
    /// Which vocabulary (e.g. "region").
    pub kind: &'static str,
    /// The value given.
    pub value: String,
    /// The accepted values, comma-separated.
    pub expected: &'static str,
}

impl FromStr for Region {
    type Err = UnknownValue;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || UnknownValue {
            kind: "region",
            value: s.to_string(),
            expected: "a GSP group letter A, B, C, D, E, F, G, H, J, K, L, M, N, P",
        };
        let mut chars = s.trim().chars();
        match (chars.next(), chars.next()) {
            (Some(c), None) => Region::from_letter(c).ok_or_else(unknown),
            _ => Err(unknown()),
        }
    }
}

impl Serialize for Region {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        let mut buf = [0u8; 4];
        s.serialize_str(self.letter().encode_utf8(&mut buf))
    }
}

impl<'de> Deserialize<'de> for Region {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        let s = <std::borrow::Cow<'de, str>>::deserialize(d)?;
        s.parse().map_err(serde::de::Error::custom)
    }
}

macro_rules! vocabulary {
    ($(#[$meta:meta])* $name:ident, $kind:literal, $expected:literal, { $($(#[$vmeta:meta])* $variant:ident = $text:literal),+ $(,)? }) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        pub enum $name {
            $($(#[$vmeta])* #[serde(rename = $text)] $variant),+
        }

        impl $name {
            /// All values in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The text used in JSON and CSV.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),+ }
            }

            /// Dense index, for tables.
            pub fn index(self) -> usize {
                self as usize
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl FromStr for $name {
            type Err = UnknownValue;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                match s.trim() {
                    $($text => Ok($name::$variant),)+
                    _ => Err(UnknownValue { kind: $kind, value: s.to_string(), expected: $expected }),
                }
            }
        }
    };
}

vocabulary!(
    /// What the visitor wants to buy.
    Fuel, "fuel", "electricity, gas, dual_fuel", {
        /// Electricity only.
        Electricity = "electricity",
        /// Gas only.
        Gas = "gas",
        /// Electricity and gas from the same supplier.
        DualFuel = "dual_fuel",
    }
);

vocabulary!(
    /// The electricity meter: one register, or Economy 7 day/night registers.
    Meter, "meter", "single_rate, economy7", {
        /// One unit rate all day.
        SingleRate = "single_rate",
        /// Economy 7: a cheaper night register (7 hours) and a day register.
        Economy7 = "economy7",
    }
);

vocabulary!(
    /// How the visitor pays; the price cap differs by payment method.
    PaymentMethod, "payment method", "direct_debit, standard_credit, prepayment", {
        /// Monthly or quarterly direct debit.
        DirectDebit = "direct_debit",
        /// Paying on receipt of a bill.
        StandardCredit = "standard_credit",
        /// A prepayment meter.
        Prepayment = "prepayment",
    }
);

impl Fuel {
    /// Whether this fuel choice includes electricity.
    pub fn has_electricity(self) -> bool {
        matches!(self, Fuel::Electricity | Fuel::DualFuel)
    }
    /// Whether this fuel choice includes gas.
    pub fn has_gas(self) -> bool {
        matches!(self, Fuel::Gas | Fuel::DualFuel)
    }
}

/// A market segment: the tariffs a visitor can be shown depend on these four facts only.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Segment {
    /// Region.
    pub region: Region,
    /// Payment method.
    pub payment_method: PaymentMethod,
    /// Fuel.
    pub fuel: Fuel,
    /// Meter (`SingleRate` for gas-only visitors).
    pub meter: Meter,
}

impl Segment {
    /// Number of distinct segments.
    pub const COUNT: usize = Region::COUNT * 3 * 3 * 2;

    /// Dense index 0..COUNT.
    pub fn index(self) -> usize {
        ((self.region.index() * 3 + self.payment_method.index()) * 3 + self.fuel.index()) * 2
            + self.meter.index()
    }

    /// The segment of a dense index (the inverse of [`Segment::index`]); `None` from `COUNT` on.
    pub fn from_index(i: usize) -> Option<Segment> {
        if i >= Self::COUNT {
            return None;
        }
        Some(Segment {
            region: Region((i / 18) as u8),
            payment_method: PaymentMethod::ALL[i / 6 % 3],
            fuel: Fuel::ALL[i / 2 % 3],
            meter: Meter::ALL[i % 2],
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn regions_round_trip_and_k_is_south_wales() {
        for r in Region::all() {
            assert_eq!(r.letter().to_string().parse::<Region>().unwrap(), r);
        }
        assert_eq!(
            Region::from_letter('K').unwrap().info().common_name,
            "South Wales"
        );
        assert_eq!(Region::from_letter('L').unwrap().info().distributor_id, 22);
        assert!("I".parse::<Region>().is_err());
        assert!("AB".parse::<Region>().is_err());
    }

    #[test]
    fn segment_indices_are_dense_and_distinct() {
        let mut seen = vec![false; Segment::COUNT];
        for region in Region::all() {
            for &payment_method in PaymentMethod::ALL {
                for &fuel in Fuel::ALL {
                    for &meter in Meter::ALL {
                        let i = Segment {
                            region,
                            payment_method,
                            fuel,
                            meter,
                        }
                        .index();
                        assert!(!seen[i]);
                        seen[i] = true;
                        let back = Segment::from_index(i).unwrap();
                        assert_eq!(
                            (back.region, back.payment_method, back.fuel, back.meter),
                            (region, payment_method, fuel, meter)
                        );
                    }
                }
            }
        }
        assert!(seen.iter().all(|&s| s));
        assert!(Segment::from_index(Segment::COUNT).is_none());
    }

    #[test]
    fn vocabulary_errors_list_the_choices() {
        let e = "weekly".parse::<PaymentMethod>().unwrap_err();
        assert!(e.to_string().contains("direct_debit"), "{e}");
    }
}
