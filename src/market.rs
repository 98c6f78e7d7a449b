//! Markets and tariffs as published: the JSON model (see `schemas/market.schema.json`).

use crate::domain::{Fuel, Meter, PaymentMethod, Region};
use crate::error::MarketError;
use crate::money::{self, Millipence};
use crate::price::Usage;
use chrono::NaiveDate;
use serde::{Deserialize, Serialize};
use std::collections::HashSet;

/// Longest id, supplier or tariff name accepted, bytes.
pub const MAX_TEXT_LEN: usize = 256;

/// The most tariffs a market may have, after any scenario too: the replay indexes them with
/// `u16`, `u16::MAX` meaning none.
pub const MAX_TARIFFS: usize = u16::MAX as usize;

/// A set of tariffs on sale at a date.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Market {
    /// The date the market describes; savings project a year from it.
    #[serde(with = "crate::dates::date")]
    pub as_of: NaiveDate,
    /// Free text describing where the market came from.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub source: Option<String>,
    /// The tariffs, in any order; ids are unique.
    pub tariffs: Vec<Tariff>,
}

/// Fixed price for a term, or variable (the supplier's standard variable tariff, capped).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum TariffKind {
    /// Prices fixed until `end_date` or for `term_months`.
    Fixed,
    /// Prices move with the cap; a supplier's variable tariff is where its fixes roll onto.
    Variable,
}

impl TariffKind {
    /// The text used in JSON and CSV: `fixed` or `variable`.
    pub fn as_str(self) -> &'static str {
        match self {
            TariffKind::Fixed => "fixed",
            TariffKind::Variable => "variable",
        }
    }
}

/// Exit fees per fuel, charged when leaving a fixed tariff early.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ExitFees {
    /// Fee for the electricity supply, GBP.
    #[serde(with = "money::pounds", default)]
    pub electricity: Millipence,
    /// Fee for the gas supply, GBP.
    #[serde(with = "money::pounds", default)]
    pub gas: Millipence,
}

/// One tariff of one supplier.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Tariff {
    /// Unique id (stable across markets; scenarios and visits refer to it).
    pub id: String,
    /// Supplier name; a supplier's variable tariff is found by this name.
    pub supplier: String,
    /// Tariff name as shown on the results table.
    pub name: String,
    /// Fixed or variable.
    pub kind: TariffKind,
    /// Length of a fix in months (fixed tariffs).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub term_months: Option<u32>,
    /// The date prices stop being fixed for customers on it now; a fix that ends within a year of
    /// the market date rolls onto the supplier's variable tariff for the rest of the year.
    #[serde(
        with = "crate::dates::opt_date",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub end_date: Option<NaiveDate>,
    /// Exit fees per fuel (fixed tariffs).
    #[serde(default, skip_serializing_if = "is_default")]
    pub exit_fees_gbp: ExitFees,
    /// Renewable electricity.
    #[serde(default)]
    pub green: bool,
    /// The site can switch a visitor to it (otherwise the result links to the supplier).
    #[serde(default = "yes")]
    pub switchable: bool,
    /// Listed on the results table. Tariffs not on sale (closed or removed by a scenario) are only
    /// priced as a visitor's current tariff.
    #[serde(default = "yes")]
    pub on_sale: bool,
    /// Added by a scenario: not on the real market.
    #[serde(default)]
    pub hypothetical: bool,
    /// The fuel choices it is sold for (`electricity`, `gas`, `dual_fuel`).
    pub fuels: Vec<Fuel>,
    /// Annual amount off a dual-fuel bill, GBP.
    #[serde(with = "money::pounds", default, skip_serializing_if = "is_default")]
    pub dual_fuel_discount_gbp: Millipence,
    /// Rates where the tariff is available: one card per region and payment method. A tariff is
    /// available exactly where it has a card.
    pub rates: Vec<RateCard>,
}

fn yes() -> bool {
    true
}

fn is_default<T: Default + PartialEq>(v: &T) -> bool {
    *v == T::default()
}

/// The VAT-inclusive rates of one tariff in one region for one payment method.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct RateCard {
    /// Region (GSP letter).
    pub region: Region,
    /// Payment method.
    pub payment_method: PaymentMethod,
    /// Electricity rates, when the tariff sells electricity.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub electricity: Option<ElectricityRates>,
    /// Gas rates, when the tariff sells gas.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub gas: Option<SingleRate>,
}

/// A standing charge and one unit rate.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SingleRate {
    /// Standing charge, pence per day, VAT included.
    #[serde(with = "money::pence")]
    pub standing_p_per_day: Millipence,
    /// Unit rate, pence per kWh, VAT included.
    #[serde(with = "money::pence")]
    pub unit_p_per_kwh: Millipence,
}

/// Economy 7 rates: day and night registers.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Economy7Rates {
    /// Standing charge, pence per day.
    #[serde(with = "money::pence")]
    pub standing_p_per_day: Millipence,
    /// Day unit rate, pence per kWh.
    #[serde(with = "money::pence")]
    pub day_p_per_kwh: Millipence,
    /// Night unit rate, pence per kWh.
    #[serde(with = "money::pence")]
    pub night_p_per_kwh: Millipence,
}

/// Electricity rates: single-rate, and Economy 7 when offered to E7 meters.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct ElectricityRates {
    /// Standing charge for a single-rate meter, pence per day.
    #[serde(with = "money::pence")]
    pub standing_p_per_day: Millipence,
    /// Unit rate for a single-rate meter, pence per kWh.
    #[serde(with = "money::pence")]
    pub unit_p_per_kwh: Millipence,
    /// Economy 7 rates; without them the tariff is not offered to E7 meters.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub economy7: Option<Economy7Rates>,
}

impl Market {
    /// Parses and validates a market from JSON.
    ///
    /// # Errors
    /// [`MarketError::Json`] with the line and column for malformed JSON or a wrong field, and the
    /// validation errors of [`Market::validate`].
    pub fn from_json(json: &str) -> Result<Market, MarketError> {
        let market: Market = crate::error::from_json(json).map_err(MarketError::json)?;
        market.validate()?;
        Ok(market)
    }

    /// Checks what the JSON shape cannot: unique ids, a term for each fix, a rate card for each
    /// fuel sold, one card per region and payment method.
    ///
    /// # Errors
    /// The first problem found, naming the tariff and the field.
    pub fn validate(&self) -> Result<(), MarketError> {
        let mut ids = HashSet::new();
        for t in &self.tariffs {
            t.validate()?;
            if !ids.insert(t.id.as_str()) {
                return Err(MarketError::DuplicateTariff { id: t.id.clone() });
            }
        }
        if self.tariffs.len() > MAX_TARIFFS {
            return Err(MarketError::TooManyTariffs {
                count: self.tariffs.len(),
            });
        }
        Ok(())
    }

    /// A list of tariffs in the market's tariff format (a `price` call's hypothetical tariffs).
    ///
    /// # Errors
    /// [`MarketError::Json`], naming the tariff and field at fault (`[1].supplier`).
    pub fn tariffs_from_json(json: &str) -> Result<Vec<Tariff>, MarketError> {
        crate::error::from_json(json).map_err(MarketError::json)
    }

    /// The tariff with this id.
    pub fn tariff(&self, id: &str) -> Option<&Tariff> {
        self.tariffs.iter().find(|t| t.id == id)
    }
}

impl Tariff {
    /// Checks one tariff; see [`Market::validate`].
    ///
    /// # Errors
    /// The first problem found.
    pub fn validate(&self) -> Result<(), MarketError> {
        let invalid = |field: &str, problem: String| MarketError::InvalidTariff {
            id: self.id.clone(),
            field: field.to_string(),
            problem,
        };
        if self.id.trim().is_empty() {
            return Err(MarketError::InvalidTariff {
                id: String::new(),
                field: "id".into(),
                problem: "a tariff needs a non-empty id".into(),
            });
        }
        for (field, text) in [
            ("id", &self.id),
            ("supplier", &self.supplier),
            ("name", &self.name),
        ] {
            if text.len() > MAX_TEXT_LEN {
                let mut id: String = self.id.chars().take(40).collect();
                if id.len() < self.id.len() {
                    id.push_str("...");
                }
                return Err(MarketError::InvalidTariff {
                    id,
                    field: field.to_string(),
                    problem: format!("longer than {MAX_TEXT_LEN} bytes: shorten it"),
                });
            }
        }
        if self.supplier.trim().is_empty() {
            return Err(invalid("supplier", "give the supplier's name".into()));
        }
        if self.fuels.is_empty() {
            return Err(invalid(
                "fuels",
                "list at least one of electricity, gas, dual_fuel".into(),
            ));
        }
        if self.kind == TariffKind::Fixed && self.term_months.is_none() && self.end_date.is_none() {
            return Err(invalid(
                "term_months",
                "a fixed tariff needs term_months or end_date".into(),
            ));
        }
        let needs_elec = self.fuels.iter().any(|f| f.has_electricity());
        let needs_gas = self.fuels.iter().any(|f| f.has_gas());
        const _: () = assert!(Region::COUNT * PaymentMethod::ALL.len() <= 128);
        // One bit per (region, payment method): a tariff has at most a few dozen cards, and a
        // cold start validates every tariff of a market.
        let mut seen = 0u128;
        for (i, card) in self.rates.iter().enumerate() {
            let bit = 1u128
                << (card.region.index() * PaymentMethod::ALL.len() + card.payment_method.index());
            if seen & bit != 0 {
                return Err(invalid(
                    &format!("rates[{i}]"),
                    format!(
                        "a second rate card for region {} and {}: give one card per region and payment method",
                        card.region, card.payment_method
                    ),
                ));
            }
            seen |= bit;
            if needs_elec && card.electricity.is_none() {
                return Err(invalid(
                    &format!("rates[{i}].electricity"),
                    "the tariff sells electricity but this card has no electricity rates".into(),
                ));
            }
            if needs_gas && card.gas.is_none() {
                return Err(invalid(
                    &format!("rates[{i}].gas"),
                    "the tariff sells gas but this card has no gas rates".into(),
                ));
            }
        }
        Ok(())
    }

    /// The rate card for a region and payment method, if the tariff is available there.
    pub fn card(&self, region: Region, payment_method: PaymentMethod) -> Option<&RateCard> {
        self.rates
            .iter()
            .find(|c| c.region == region && c.payment_method == payment_method)
    }

    /// Whether the tariff charges an exit fee on any fuel of this fuel choice.
    pub fn has_exit_fee(&self, fuel: Fuel) -> bool {
        (fuel.has_electricity() && self.exit_fees_gbp.electricity > Millipence::ZERO)
            || (fuel.has_gas() && self.exit_fees_gbp.gas > Millipence::ZERO)
    }

    /// The exit fee this tariff charges for leaving early, summed over the fuels of a fuel choice.
    pub fn exit_fee(&self, fuel: Fuel) -> Millipence {
        let e = if fuel.has_electricity() {
            self.exit_fees_gbp.electricity.0
        } else {
            0
        };
        let g = if fuel.has_gas() {
            self.exit_fees_gbp.gas.0
        } else {
            0
        };
        Millipence(e + g)
    }

    /// Annual cost of this tariff for a usage, or `None` when it is not sold for that fuel, meter,
    /// region and payment method.
    pub fn annual_cost(
        &self,
        region: Region,
        payment_method: PaymentMethod,
        fuel: Fuel,
        meter: Meter,
        usage: &Usage,
    ) -> Option<Millipence> {
        if !self.fuels.contains(&fuel) {
            return None;
        }
        let card = self.card(region, payment_method)?;
        let discount = if fuel == Fuel::DualFuel {
            self.dual_fuel_discount_gbp
        } else {
            Millipence::ZERO
        };
        crate::price::annual_cost(card, fuel, meter, usage, discount)
    }
}
