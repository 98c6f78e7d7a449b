//! Pricing rebuilds Ofgem's published typical bill from each quarter's published cap rates, at the
//! typical consumption in force (GB average, direct debit, dual fuel), to within GBP 1.

use tariffsim::market::{ElectricityRates, RateCard, SingleRate};
use tariffsim::money::Millipence;
use tariffsim::price::{Usage, annual_cost};
use tariffsim::{Fuel, Meter, PaymentMethod, Region};

#[derive(serde::Deserialize)]
struct CapRow {
    period_start: String,
    elec_unit_p_per_kwh: f64,
    elec_standing_p_per_day: f64,
    gas_unit_p_per_kwh: f64,
    gas_standing_p_per_day: f64,
    tdcv_elec_kwh: u32,
    tdcv_gas_kwh: u32,
}

#[derive(serde::Deserialize)]
struct BillRow {
    period_start: String,
    typical_bill_gbp: i64,
}

fn rows<T: serde::de::DeserializeOwned>(csv: &str) -> Vec<T> {
    csv::Reader::from_reader(csv.as_bytes())
        .deserialize()
        .collect::<Result<_, _>>()
        .unwrap()
}

fn mp(p: f64) -> Millipence {
    Millipence::from_pence_f64(p).unwrap()
}

#[test]
fn every_quarter_rebuilds_the_published_typical_bill_within_one_pound() {
    let caps: Vec<CapRow> = rows(include_str!("../data/domain/gb_price_cap.csv"));
    let bills: Vec<BillRow> = rows(include_str!("fixtures/ofgem_typical_bills.csv"));
    assert_eq!(
        caps.len(),
        bills.len(),
        "one published bill per cap quarter"
    );
    for (cap, bill) in caps.iter().zip(&bills) {
        assert_eq!(cap.period_start, bill.period_start);
        let card = RateCard {
            region: Region::from_letter('C').unwrap(),
            payment_method: PaymentMethod::DirectDebit,
            electricity: Some(ElectricityRates {
                standing_p_per_day: mp(cap.elec_standing_p_per_day),
                unit_p_per_kwh: mp(cap.elec_unit_p_per_kwh),
                economy7: None,
            }),
            gas: Some(SingleRate {
                standing_p_per_day: mp(cap.gas_standing_p_per_day),
                unit_p_per_kwh: mp(cap.gas_unit_p_per_kwh),
            }),
        };
        let usage = Usage {
            electricity_kwh: cap.tdcv_elec_kwh,
            gas_kwh: cap.tdcv_gas_kwh,
            night_share_bp: 0,
        };
        let cost = annual_cost(
            &card,
            Fuel::DualFuel,
            Meter::SingleRate,
            &usage,
            Millipence::ZERO,
        )
        .unwrap();
        // Ofgem publishes whole pounds computed from unrounded rates: compare to the milli-penny.
        let diff = (cost.0 - bill.typical_bill_gbp * 100_000).abs();
        assert!(
            diff <= 100_000,
            "{}: rebuilt {} against published £{} (off by {diff} milli-pence)",
            cap.period_start,
            cost.gbp(),
            bill.typical_bill_gbp
        );
    }
}
