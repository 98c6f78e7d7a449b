//! Pricing: the annual cost of a tariff for a household's consumption, in integer milli-pence.
//!
//! Annual cost = 365 x standing charge + kWh x unit rate, per fuel, from VAT-inclusive rates,
//! less any dual-fuel discount, and never below zero: a discount at most cancels the bill (prices
//! cut by a scenario, or a market's discount above a small user's charges, would otherwise give
//! a negative annual cost, which no supplier bills). Economy 7 splits electricity between the day and night registers
//! by the visitor's night share, or 42% night (Ofgem's GB average) when they do not know it.

use crate::domain::{Fuel, Meter};
use crate::market::RateCard;
use crate::money::{Millipence, div_round};

/// Days a year is billed for.
pub const DAYS_PER_YEAR: i64 = 365;
/// Basis points in one (shares are integer basis points).
pub const BASIS_POINTS: i64 = 10_000;
/// Night share of Economy 7 consumption when the visitor does not know theirs: 42% (Ofgem).
pub const DEFAULT_E7_NIGHT_SHARE_BP: u16 = 4_200;
/// Largest annual consumption accepted per fuel, kWh.
pub const MAX_KWH: u32 = 1_000_000;

/// A household's annual consumption.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Usage {
    /// Electricity, kWh a year (0 when not buying electricity).
    pub electricity_kwh: u32,
    /// Gas, kWh a year (0 when not buying gas).
    pub gas_kwh: u32,
    /// Share of electricity used at night, basis points (Economy 7 only).
    pub night_share_bp: u16,
}

/// A rate card reduced to what one fuel-and-meter choice pays: the formula of the hot path.
///
/// cost = max(0, fixed + round(kWh_e x ((1 - night) x day + night x night_rate)) + kWh_g x gas).
/// For a single-rate meter day = night, which makes the rounding exact.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Quote {
    /// Standing charges for the year less the dual-fuel discount.
    pub fixed: i64,
    /// Electricity day (or single) unit rate.
    pub day: i64,
    /// Electricity night unit rate (equals `day` for single-rate meters).
    pub night: i64,
    /// Gas unit rate.
    pub gas: i64,
}

impl Quote {
    /// Reduces a card to the quote for one fuel and meter; `None` when the card does not sell it
    /// (no electricity, no gas, or no Economy 7 rates for an E7 meter).
    pub fn new(card: &RateCard, fuel: Fuel, meter: Meter, discount: Millipence) -> Option<Quote> {
        let mut q = Quote {
            fixed: -discount.0,
            day: 0,
            night: 0,
            gas: 0,
        };
        if fuel.has_electricity() {
            let e = card.electricity.as_ref()?;
            match meter {
                Meter::SingleRate => {
                    q.fixed += DAYS_PER_YEAR * e.standing_p_per_day.0;
                    q.day = e.unit_p_per_kwh.0;
                    q.night = e.unit_p_per_kwh.0;
                }
                Meter::Economy7 => {
                    let e7 = e.economy7.as_ref()?;
                    q.fixed += DAYS_PER_YEAR * e7.standing_p_per_day.0;
                    q.day = e7.day_p_per_kwh.0;
                    q.night = e7.night_p_per_kwh.0;
                }
            }
        }
        if fuel.has_gas() {
            let g = card.gas.as_ref()?;
            q.fixed += DAYS_PER_YEAR * g.standing_p_per_day.0;
            q.gas = g.unit_p_per_kwh.0;
        }
        Some(q)
    }

    /// Annual cost in milli-pence, never below zero (a discount at most cancels the bill).
    #[inline]
    pub fn cost(&self, usage: &Usage) -> i64 {
        let night = usage.night_share_bp as i64;
        let e = usage.electricity_kwh as i64;
        let elec = div_round(
            e * ((BASIS_POINTS - night) * self.day + night * self.night),
            BASIS_POINTS,
        );
        (self.fixed + elec + usage.gas_kwh as i64 * self.gas).max(0)
    }
}

/// Annual cost of a rate card for a fuel, meter and usage, less a discount; `None` when the card
/// does not sell that fuel and meter.
pub fn annual_cost(
    card: &RateCard,
    fuel: Fuel,
    meter: Meter,
    usage: &Usage,
    discount: Millipence,
) -> Option<Millipence> {
    Quote::new(card, fuel, meter, discount).map(|q| Millipence(q.cost(usage)))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{PaymentMethod, Region};
    use crate::market::{Economy7Rates, ElectricityRates, SingleRate};

    fn mp(p: f64) -> Millipence {
        Millipence::from_pence_f64(p).unwrap()
    }

    fn card() -> RateCard {
        RateCard {
            region: Region::from_letter('C').unwrap(),
            payment_method: PaymentMethod::DirectDebit,
            electricity: Some(ElectricityRates {
                standing_p_per_day: mp(53.35),
                unit_p_per_kwh: mp(28.62),
                economy7: Some(Economy7Rates {
                    standing_p_per_day: mp(53.35),
                    day_p_per_kwh: mp(33.0),
                    night_p_per_kwh: mp(18.0),
                }),
            }),
            gas: Some(SingleRate {
                standing_p_per_day: mp(29.60),
                unit_p_per_kwh: mp(7.42),
            }),
        }
    }

    #[test]
    fn dual_fuel_typical_bill_jan_2024() {
        let u = Usage {
            electricity_kwh: 2_700,
            gas_kwh: 11_500,
            night_share_bp: 0,
        };
        let cost = annual_cost(
            &card(),
            Fuel::DualFuel,
            Meter::SingleRate,
            &u,
            Millipence::ZERO,
        )
        .unwrap();
        // 2700 x 28.62 + 365 x 53.35 + 11500 x 7.42 + 365 x 29.60 = 192,880.75 p
        assert_eq!(cost, Millipence(192_880_750));
    }

    #[test]
    fn economy7_splits_by_night_share_and_rounds() {
        let u = Usage {
            electricity_kwh: 1_001,
            gas_kwh: 0,
            night_share_bp: DEFAULT_E7_NIGHT_SHARE_BP,
        };
        let cost = annual_cost(
            &card(),
            Fuel::Electricity,
            Meter::Economy7,
            &u,
            Millipence::ZERO,
        )
        .unwrap();
        // 365 x 53.35 + 1001 x (0.58 x 33 + 0.42 x 18) p = 19,472.75 + 26,726.70 p
        assert_eq!(cost, Millipence(19_472_750 + 26_726_700));
    }

    #[test]
    fn discount_applies_and_missing_rates_mean_not_sold() {
        let u = Usage {
            electricity_kwh: 100,
            gas_kwh: 100,
            night_share_bp: 0,
        };
        let full = annual_cost(
            &card(),
            Fuel::DualFuel,
            Meter::SingleRate,
            &u,
            Millipence::ZERO,
        )
        .unwrap();
        let less = annual_cost(
            &card(),
            Fuel::DualFuel,
            Meter::SingleRate,
            &u,
            Millipence(5_000_000),
        )
        .unwrap();
        assert_eq!(full.0 - less.0, 5_000_000);
        // A discount above the bill cancels it, no more: no annual cost is negative.
        let over = annual_cost(
            &card(),
            Fuel::DualFuel,
            Meter::SingleRate,
            &u,
            Millipence(full.0 + 1_000),
        )
        .unwrap();
        assert_eq!(over, Millipence::ZERO);
        let mut c = card();
        c.gas = None;
        assert!(annual_cost(&c, Fuel::DualFuel, Meter::SingleRate, &u, Millipence::ZERO).is_none());
        assert!(
            annual_cost(
                &c,
                Fuel::Electricity,
                Meter::SingleRate,
                &u,
                Millipence::ZERO
            )
            .is_some()
        );
    }
}
