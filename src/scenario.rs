//! Hypothetical markets: a real market plus changes (see `schemas/scenario.schema.json`).

use crate::domain::{PaymentMethod, Region};
use crate::error::{MarketError, ScenarioError};
use crate::market::{ElectricityRates, MAX_TARIFFS, Market, RateCard, Tariff, TariffKind};
use crate::money::{Millipence, div_round};
use serde::{Deserialize, Serialize};

/// A named list of changes applied in order to a market.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Scenario {
    /// Short name, for reports.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// Free text.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// The changes, applied in order.
    pub changes: Vec<Change>,
}

/// One change to a market: an object whose `op` names the change, with that change's fields
/// (read by `ChangeVisitor`, written with the `op` tag).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Change {
    /// Add a tariff; it is marked hypothetical and on sale.
    AddTariff {
        /// The tariff, in the market's tariff format.
        tariff: Box<Tariff>,
    },
    /// Take a tariff off sale. It stays priceable as a visitor's current tariff.
    RemoveTariff {
        /// Tariff id.
        id: String,
    },
    /// Take every tariff of a supplier off sale (a supplier gone from the market).
    RemoveSupplier {
        /// Supplier name, as in the market.
        supplier: String,
    },
    /// Move standing charges and unit rates by a percentage.
    MovePrices {
        /// Percentage, e.g. `-5` for 5% cheaper; more than -100.
        percent: f64,
        /// Which rates move; everything when empty.
        #[serde(default)]
        select: Selection,
    },
    /// Set the rates of variable tariffs to a cap level, card by card.
    VariableToCap {
        /// Cap rate cards per region and payment method; cards the cap does not give stay as they are.
        cap: Vec<RateCard>,
        /// Only these regions (all when absent).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        regions: Option<Vec<Region>>,
    },
}

/// The `op` of a change.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Op {
    AddTariff,
    RemoveTariff,
    RemoveSupplier,
    MovePrices,
    VariableToCap,
}

/// The `op` values, as written.
const OPS: &[&str] = &[
    "add_tariff",
    "remove_tariff",
    "remove_supplier",
    "move_prices",
    "variable_to_cap",
];

impl<'de> Deserialize<'de> for Op {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Op, D::Error> {
        struct OpVisitor;
        impl serde::de::Visitor<'_> for OpVisitor {
            type Value = Op;
            fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str("variant identifier")
            }
            fn visit_str<E: serde::de::Error>(self, s: &str) -> Result<Op, E> {
                Ok(match s {
                    "add_tariff" => Op::AddTariff,
                    "remove_tariff" => Op::RemoveTariff,
                    "remove_supplier" => Op::RemoveSupplier,
                    "move_prices" => Op::MovePrices,
                    "variable_to_cap" => Op::VariableToCap,
                    _ => return Err(E::unknown_variant(s, OPS)),
                })
            }
        }
        d.deserialize_identifier(OpVisitor)
    }
}

impl Op {
    /// The fields a change of this kind has, beside `op`.
    fn fields(self) -> &'static [&'static str] {
        match self {
            Op::AddTariff => &["tariff"],
            Op::RemoveTariff => &["id"],
            Op::RemoveSupplier => &["supplier"],
            Op::MovePrices => &["percent", "select"],
            Op::VariableToCap => &["cap", "regions"],
        }
    }
}

/// Reads a change field by field as it comes, whatever the position of its `op`: each field name
/// belongs to one kind of change only, so every value is read straight into its type. (serde's
/// internally tagged enums buffer the object first, which for `add_tariff` compiled every tariff
/// reader a second time: about 50 KB of the price lambda's WebAssembly module.) The same
/// documents are accepted as with `#[serde(tag = "op", deny_unknown_fields)]`, with the same
/// messages for a missing `op`, an unknown `op`, an unknown or missing field.
struct ChangeVisitor;

impl<'de> serde::de::Visitor<'de> for ChangeVisitor {
    type Value = Change;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a change: an object with an op")
    }

    fn visit_map<A: serde::de::MapAccess<'de>>(self, mut map: A) -> Result<Change, A::Error> {
        use serde::de::Error;
        fn once<E: Error, T>(slot: &mut Option<T>, value: T, name: &'static str) -> Result<(), E> {
            if slot.replace(value).is_some() {
                return Err(E::duplicate_field(name));
            }
            Ok(())
        }
        let mut op: Option<Op> = None;
        let mut tariff: Option<Box<Tariff>> = None;
        let mut id: Option<String> = None;
        let mut supplier: Option<String> = None;
        let mut percent: Option<f64> = None;
        let mut select: Option<Selection> = None;
        let mut cap: Option<Vec<RateCard>> = None;
        let mut regions: Option<Option<Vec<Region>>> = None;
        // The fields in the order given (a field of no change at all by its name), to name the
        // first that this kind of change does not have.
        let mut seen: Vec<std::borrow::Cow<'de, str>> = Vec::new();
        while let Some(key) = map.next_key::<std::borrow::Cow<'de, str>>()? {
            seen.push(key.clone());
            match key.as_ref() {
                "op" => once(&mut op, map.next_value()?, "op")?,
                "tariff" => once(&mut tariff, map.next_value()?, "tariff")?,
                "id" => once(&mut id, map.next_value()?, "id")?,
                "supplier" => once(&mut supplier, map.next_value()?, "supplier")?,
                "percent" => once(&mut percent, map.next_value()?, "percent")?,
                "select" => once(&mut select, map.next_value()?, "select")?,
                "cap" => once(&mut cap, map.next_value()?, "cap")?,
                "regions" => once(&mut regions, map.next_value()?, "regions")?,
                _ => {
                    map.next_value::<serde::de::IgnoredAny>()?;
                }
            }
        }
        let op = op.ok_or_else(|| A::Error::missing_field("op"))?;
        // A field of another kind of change is as unknown to this one as a field of none.
        if let Some(name) = seen
            .iter()
            .find(|name| *name != "op" && !op.fields().contains(&name.as_ref()))
        {
            return Err(A::Error::unknown_field(name, op.fields()));
        }
        Ok(match op {
            Op::AddTariff => Change::AddTariff {
                tariff: tariff.ok_or_else(|| A::Error::missing_field("tariff"))?,
            },
            Op::RemoveTariff => Change::RemoveTariff {
                id: id.ok_or_else(|| A::Error::missing_field("id"))?,
            },
            Op::RemoveSupplier => Change::RemoveSupplier {
                supplier: supplier.ok_or_else(|| A::Error::missing_field("supplier"))?,
            },
            Op::MovePrices => Change::MovePrices {
                percent: percent.ok_or_else(|| A::Error::missing_field("percent"))?,
                select: select.unwrap_or_default(),
            },
            Op::VariableToCap => Change::VariableToCap {
                cap: cap.ok_or_else(|| A::Error::missing_field("cap"))?,
                regions: regions.flatten(),
            },
        })
    }
}

impl<'de> Deserialize<'de> for Change {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Change, D::Error> {
        d.deserialize_map(ChangeVisitor)
    }
}

/// Which tariffs and rate cards a price move applies to. Every given criterion must hold.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Selection {
    /// Only these tariff ids.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tariffs: Option<Vec<String>>,
    /// Only these suppliers.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub suppliers: Option<Vec<String>>,
    /// Only fixed or only variable tariffs.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<TariffKind>,
    /// Only rate cards of these regions.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub regions: Option<Vec<Region>>,
    /// Only rate cards of these payment methods.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub payment_methods: Option<Vec<PaymentMethod>>,
}

fn within<T: PartialEq>(list: &Option<Vec<T>>, value: &T) -> bool {
    list.as_ref().is_none_or(|l| l.contains(value))
}

impl Selection {
    fn tariff(&self, t: &Tariff) -> bool {
        within(&self.tariffs, &t.id)
            && within(&self.suppliers, &t.supplier)
            && self.kind.is_none_or(|k| k == t.kind)
    }
    fn card(&self, c: &RateCard) -> bool {
        within(&self.regions, &c.region) && within(&self.payment_methods, &c.payment_method)
    }
}

impl Scenario {
    /// Parses a scenario from JSON (it is checked against a market by [`Market::apply`]).
    ///
    /// # Errors
    /// [`ScenarioError::Json`] with line and column.
    pub fn from_json(json: &str) -> Result<Scenario, ScenarioError> {
        crate::error::from_json(json).map_err(ScenarioError::json)
    }
}

/// Largest rate a scenario may move a price to, milli-pence: the 100,000 p a market may give.
pub const MAX_RATE: i64 = 100_000 * crate::money::MILLIPENCE_PER_PENNY;

/// Moves one rate by `factor_bp` (basis points of the old rate), checked: `None` when the result
/// leaves 0..=[`MAX_RATE`].
fn move_rate(rate: &mut Millipence, factor_bp: i64) -> Option<()> {
    let moved = div_round(rate.0.checked_mul(factor_bp)?, 10_000);
    (0..=MAX_RATE).contains(&moved).then(|| rate.0 = moved)
}

/// `rate` moved as `from` moved to `to` (`rate x to / from`, to the milli-penny), checked as
/// [`move_rate`]; `to` itself when `from` is 0 (no move to scale by).
fn scale_rate(rate: Millipence, from: Millipence, to: Millipence) -> Option<Millipence> {
    if from.0 <= 0 {
        return Some(to);
    }
    let moved =
        crate::money::div_round_i128(i128::from(rate.0) * i128::from(to.0), i128::from(from.0));
    let moved = i64::try_from(moved).ok()?;
    (0..=MAX_RATE).contains(&moved).then_some(Millipence(moved))
}

/// Electricity rates on a cap that gives single-rate figures only: the single rates become the
/// cap's, and Economy 7 rates, where the card has them, move in proportion (the standing charge as
/// the single standing charge moved, day and night as the single unit rate moved), so that a
/// tariff's E7 price follows the cap with the day/night structure it had. `None` when a moved rate
/// leaves 0..=[`MAX_RATE`].
fn cap_single_rate(e: &mut ElectricityRates, standing: Millipence, unit: Millipence) -> Option<()> {
    if let Some(e7) = e.economy7.as_mut() {
        e7.standing_p_per_day = scale_rate(e7.standing_p_per_day, e.standing_p_per_day, standing)?;
        e7.day_p_per_kwh = scale_rate(e7.day_p_per_kwh, e.unit_p_per_kwh, unit)?;
        e7.night_p_per_kwh = scale_rate(e7.night_p_per_kwh, e.unit_p_per_kwh, unit)?;
    }
    e.standing_p_per_day = standing;
    e.unit_p_per_kwh = unit;
    Some(())
}

fn move_card(card: &mut RateCard, factor_bp: i64) -> Option<()> {
    if let Some(e) = card.electricity.as_mut() {
        move_rate(&mut e.standing_p_per_day, factor_bp)?;
        move_rate(&mut e.unit_p_per_kwh, factor_bp)?;
        if let Some(e7) = e.economy7.as_mut() {
            move_rate(&mut e7.standing_p_per_day, factor_bp)?;
            move_rate(&mut e7.day_p_per_kwh, factor_bp)?;
            move_rate(&mut e7.night_p_per_kwh, factor_bp)?;
        }
    }
    if let Some(g) = card.gas.as_mut() {
        move_rate(&mut g.standing_p_per_day, factor_bp)?;
        move_rate(&mut g.unit_p_per_kwh, factor_bp)?;
    }
    Some(())
}

impl Market {
    /// The hypothetical market: this market with the scenario's changes applied in order.
    ///
    /// # Errors
    /// [`ScenarioError::UnknownTariff`] or [`ScenarioError::UnknownSupplier`] for a change naming
    /// what the market lacks, [`ScenarioError::InvalidAddedTariff`] for a bad or clashing added
    /// tariff, [`ScenarioError::InvalidChange`] for a percentage of -100 or less,
    /// [`ScenarioError::TooManyTariffs`] when the market ends with more than [`MAX_TARIFFS`].
    pub fn apply(&self, scenario: &Scenario) -> Result<Market, ScenarioError> {
        let mut market = self.clone();
        for (change, c) in scenario.changes.iter().enumerate() {
            market.apply_change(change, c)?;
        }
        market.check_count()?;
        Ok(market)
    }

    /// The market of a `price` call: the scenario's changes (if any), then each of `added` as an
    /// added hypothetical tariff, as if the scenario ended with `add_tariff` changes.
    ///
    /// # Errors
    /// As [`Market::apply`]; an added tariff's problems are
    /// [`ScenarioError::InvalidHypotheticalTariff`], naming its place in `added`.
    pub fn apply_with_tariffs(
        &self,
        scenario: Option<&Scenario>,
        added: &[Tariff],
    ) -> Result<Market, ScenarioError> {
        let mut market = self.clone();
        let changes = scenario.map_or(&[][..], |s| &s.changes[..]);
        for (change, c) in changes.iter().enumerate() {
            market.apply_change(change, c)?;
        }
        for (k, t) in added.iter().enumerate() {
            let c = Change::AddTariff {
                tariff: Box::new(t.clone()),
            };
            market
                .apply_change(changes.len() + k, &c)
                .map_err(|e| match e {
                    ScenarioError::InvalidAddedTariff { source, .. } => {
                        ScenarioError::InvalidHypotheticalTariff { index: k, source }
                    }
                    other => other,
                })?;
        }
        market.check_count()?;
        Ok(market)
    }

    /// Whether the market after changes still fits the replay's index ([`MAX_TARIFFS`]).
    fn check_count(&self) -> Result<(), ScenarioError> {
        if self.tariffs.len() > MAX_TARIFFS {
            return Err(ScenarioError::TooManyTariffs {
                count: self.tariffs.len(),
            });
        }
        Ok(())
    }

    fn apply_change(&mut self, change: usize, c: &Change) -> Result<(), ScenarioError> {
        let unknown_tariff = |id: &str| ScenarioError::UnknownTariff {
            change,
            id: id.to_string(),
        };
        let unknown_supplier = |s: &str| ScenarioError::UnknownSupplier {
            change,
            supplier: s.to_string(),
        };
        match c {
            Change::AddTariff { tariff } => {
                let mut t = (**tariff).clone();
                t.hypothetical = true;
                t.on_sale = true;
                t.validate()
                    .map_err(|source| ScenarioError::InvalidAddedTariff { change, source })?;
                if self.tariff(&t.id).is_some() {
                    let source = MarketError::DuplicateTariff { id: t.id.clone() };
                    return Err(ScenarioError::InvalidAddedTariff { change, source });
                }
                self.tariffs.push(t);
            }
            Change::RemoveTariff { id } => {
                let t = self
                    .tariffs
                    .iter_mut()
                    .find(|t| &t.id == id)
                    .ok_or_else(|| unknown_tariff(id))?;
                t.on_sale = false;
            }
            Change::RemoveSupplier { supplier } => {
                let mut found = false;
                for t in self.tariffs.iter_mut().filter(|t| &t.supplier == supplier) {
                    t.on_sale = false;
                    found = true;
                }
                if !found {
                    return Err(unknown_supplier(supplier));
                }
            }
            Change::MovePrices { percent, select } => {
                // Applied to the hundredth of a percent: the range holds for the value used
                // (-99.999 would move every rate by -100.00%, to 0).
                if !percent.is_finite()
                    || (percent * 100.0).round() <= -10_000.0
                    || (percent * 100.0).round() > 100_000.0
                {
                    return Err(ScenarioError::InvalidChange {
                        change,
                        problem: format!(
                            "percent {percent} is out of range: give a number above -100 and at most 1000 (applied to the hundredth)"
                        ),
                    });
                }
                for id in select.tariffs.iter().flatten() {
                    self.tariff(id).ok_or_else(|| unknown_tariff(id))?;
                }
                for s in select.suppliers.iter().flatten() {
                    if !self.tariffs.iter().any(|t| &t.supplier == s) {
                        return Err(unknown_supplier(s));
                    }
                }
                let factor_bp = 10_000 + (percent * 100.0).round() as i64;
                for t in self.tariffs.iter_mut().filter(|t| select.tariff(t)) {
                    for card in t.rates.iter_mut().filter(|c| select.card(c)) {
                        if move_card(card, factor_bp).is_none() {
                            return Err(ScenarioError::InvalidChange {
                                change,
                                problem: format!(
                                    "moving prices by {percent}% takes a rate of tariff {:?} ({} {}) above the 100000 p limit: move prices by less",
                                    t.id, card.region, card.payment_method
                                ),
                            });
                        }
                    }
                }
            }
            Change::VariableToCap { cap, regions } => {
                if cap.is_empty() {
                    return Err(ScenarioError::InvalidChange {
                        change,
                        problem:
                            "cap has no rate cards: give one card per region and payment method"
                                .into(),
                    });
                }
                // Two cards for one region and payment method: which one applies would be the
                // file's order's choice.
                for (i, a) in cap.iter().enumerate() {
                    if cap[..i]
                        .iter()
                        .any(|b| b.region == a.region && b.payment_method == a.payment_method)
                    {
                        return Err(ScenarioError::InvalidChange {
                            change,
                            problem: format!(
                                "cap has two cards for region {} and {}: give one card per region and payment method",
                                a.region, a.payment_method
                            ),
                        });
                    }
                }
                for t in self
                    .tariffs
                    .iter_mut()
                    .filter(|t| t.kind == TariffKind::Variable)
                {
                    for card in t.rates.iter_mut().filter(|c| within(regions, &c.region)) {
                        let Some(level) = cap.iter().find(|l| {
                            l.region == card.region && l.payment_method == card.payment_method
                        }) else {
                            continue;
                        };
                        if let (Some(e), Some(le)) =
                            (card.electricity.as_mut(), level.electricity.as_ref())
                        {
                            if le.economy7.is_some() {
                                e.standing_p_per_day = le.standing_p_per_day;
                                e.unit_p_per_kwh = le.unit_p_per_kwh;
                                e.economy7 = le.economy7;
                            } else if cap_single_rate(e, le.standing_p_per_day, le.unit_p_per_kwh)
                                .is_none()
                            {
                                return Err(ScenarioError::InvalidChange {
                                    change,
                                    problem: format!(
                                        "the cap moves the Economy 7 rates of tariff {:?} ({} {}) above the 100000 p limit, in proportion to its single rates: give the cap's E7 rates",
                                        t.id, card.region, card.payment_method
                                    ),
                                });
                            }
                        }
                        if let (Some(g), Some(lg)) = (card.gas.as_mut(), level.gas.as_ref()) {
                            *g = *lg;
                        }
                    }
                }
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn market() -> Market {
        Market::from_json(include_str!("../tests/fixtures/mini_market.json")).unwrap()
    }

    #[test]
    fn unknown_tariff_and_supplier_are_named() {
        let m = market();
        let s = Scenario::from_json(r#"{"changes":[{"op":"remove_tariff","id":"nope"}]}"#).unwrap();
        let e = m.apply(&s).unwrap_err();
        assert_eq!(e.code(), "UnknownTariff");
        assert!(e.to_string().contains("\"nope\""));
        let s =
            Scenario::from_json(r#"{"changes":[{"op":"remove_supplier","supplier":"Nobody"}]}"#)
                .unwrap();
        assert_eq!(m.apply(&s).unwrap_err().code(), "UnknownSupplier");
    }

    #[test]
    fn remove_supplier_takes_tariffs_off_sale_but_keeps_them() {
        let m = market();
        let s = Scenario::from_json(
            r#"{"changes":[{"op":"remove_supplier","supplier":"Alpha Energy"}]}"#,
        )
        .unwrap();
        let h = m.apply(&s).unwrap();
        assert_eq!(h.tariffs.len(), m.tariffs.len());
        assert!(
            h.tariffs
                .iter()
                .filter(|t| t.supplier == "Alpha Energy")
                .all(|t| !t.on_sale)
        );
    }

    #[test]
    fn move_prices_by_percent_per_region() {
        let m = market();
        let s = Scenario::from_json(
            r#"{"changes":[{"op":"move_prices","percent":10,"select":{"tariffs":["alpha-svt"],"regions":["C"]}}]}"#,
        )
        .unwrap();
        let h = m.apply(&s).unwrap();
        let before = m.tariff("alpha-svt").unwrap();
        let after = h.tariff("alpha-svt").unwrap();
        for (b, a) in before.rates.iter().zip(&after.rates) {
            let (bu, au) = (
                b.electricity.unwrap().unit_p_per_kwh.0,
                a.electricity.unwrap().unit_p_per_kwh.0,
            );
            if b.region.letter() == 'C' {
                assert_eq!(au, div_round(bu * 11, 10));
            } else {
                assert_eq!(au, bu);
            }
        }
    }

    #[test]
    fn changes_never_leave_more_tariffs_than_the_index_holds() {
        // A market at the limit is valid; one tariff more, from a scenario or as a hypothetical
        // tariff of a `price` call, is refused (the index would wrap and name the wrong tariff).
        let mut m = market();
        let base = m.tariffs[0].clone();
        m.tariffs = (0..MAX_TARIFFS)
            .map(|i| Tariff {
                id: format!("t{i}"),
                ..base.clone()
            })
            .collect();
        assert!(m.validate().is_ok());
        let added = Tariff {
            id: "one-more".into(),
            ..base
        };
        let e = m
            .apply_with_tariffs(None, std::slice::from_ref(&added))
            .unwrap_err();
        assert_eq!(e.code(), "TooManyTariffs");
        assert!(e.to_string().contains("65536 tariffs"), "{e}");
        let s = Scenario {
            name: None,
            description: None,
            changes: vec![Change::AddTariff {
                tariff: Box::new(added),
            }],
        };
        assert_eq!(m.apply(&s).unwrap_err().code(), "TooManyTariffs");
    }

    #[test]
    fn added_tariffs_are_hypothetical_and_unique() {
        let m = market();
        let mut t = m.tariff("alpha-fix12").unwrap().clone();
        t.id = "new-fix".into();
        let s = Scenario {
            name: None,
            description: None,
            changes: vec![Change::AddTariff {
                tariff: Box::new(t.clone()),
            }],
        };
        let h = m.apply(&s).unwrap();
        assert!(h.tariff("new-fix").unwrap().hypothetical);
        t.id = "alpha-fix12".into();
        let s = Scenario {
            name: None,
            description: None,
            changes: vec![Change::AddTariff {
                tariff: Box::new(t),
            }],
        };
        assert!(matches!(
            m.apply(&s).unwrap_err(),
            ScenarioError::InvalidAddedTariff { .. }
        ));
    }
}

#[cfg(test)]
mod cap_tests {
    use super::*;

    #[test]
    fn a_percent_is_in_range_as_applied_and_a_cap_has_one_card_per_region_and_payment() {
        let m = Market::from_json(include_str!("../tests/fixtures/mini_market.json")).unwrap();
        for percent in ["-99.999", "-100", "1000.006"] {
            let s = Scenario::from_json(&format!(
                r#"{{"changes":[{{"op":"move_prices","percent":{percent}}}]}}"#
            ))
            .unwrap();
            assert!(
                matches!(m.apply(&s), Err(ScenarioError::InvalidChange { .. })),
                "{percent}"
            );
        }
        let ok = Scenario::from_json(r#"{"changes":[{"op":"move_prices","percent":-99.99}]}"#);
        assert!(m.apply(&ok.unwrap()).is_ok());
        let card = |unit: f64| {
            format!(
                r#"{{"region":"C","payment_method":"direct_debit","electricity":{{"standing_p_per_day":50,"unit_p_per_kwh":{unit}}}}}"#
            )
        };
        let twice = Scenario::from_json(&format!(
            r#"{{"changes":[{{"op":"variable_to_cap","cap":[{},{}]}}]}}"#,
            card(20.0),
            card(90.0)
        ))
        .unwrap();
        let e = m.apply(&twice).unwrap_err().to_string();
        assert!(e.contains("two cards for region C and direct_debit"), "{e}");
    }

    #[test]
    fn variable_to_cap_sets_only_variable_tariffs_in_the_given_regions() {
        let m = Market::from_json(include_str!("../tests/fixtures/mini_market.json")).unwrap();
        let s = Scenario::from_json(
            r#"{"changes":[{"op":"variable_to_cap","regions":["A"],"cap":[
                {"region":"A","payment_method":"direct_debit",
                 "electricity":{"standing_p_per_day":53.94,"unit_p_per_kwh":26.38},
                 "gas":{"standing_p_per_day":28.70,"unit_p_per_kwh":7.26}}]}]}"#,
        )
        .unwrap();
        let h = m.apply(&s).unwrap();
        let card = |m: &Market, id: &str, r: char| {
            *m.tariff(id)
                .unwrap()
                .card(Region::from_letter(r).unwrap(), PaymentMethod::DirectDebit)
                .unwrap()
        };
        let a = card(&h, "alpha-svt", 'A');
        assert_eq!(a.electricity.unwrap().unit_p_per_kwh, Millipence(26_380));
        assert_eq!(a.gas.unwrap().standing_p_per_day, Millipence(28_700));
        // The cap gives no E7 rates: the card's move in proportion to its single rates.
        let (old, new) = (
            card(&m, "alpha-svt", 'A').electricity.unwrap(),
            a.electricity.unwrap(),
        );
        let (old7, new7) = (old.economy7.unwrap(), new.economy7.unwrap());
        let moved = |rate: Millipence, from: Millipence, to: Millipence| {
            Millipence(crate::money::div_round(rate.0 * to.0, from.0))
        };
        assert_eq!(
            new7.day_p_per_kwh,
            moved(old7.day_p_per_kwh, old.unit_p_per_kwh, new.unit_p_per_kwh)
        );
        assert_eq!(
            new7.night_p_per_kwh,
            moved(old7.night_p_per_kwh, old.unit_p_per_kwh, new.unit_p_per_kwh)
        );
        assert_eq!(
            new7.standing_p_per_day,
            moved(
                old7.standing_p_per_day,
                old.standing_p_per_day,
                new.standing_p_per_day
            )
        );
        assert_ne!(new7, old7, "E7 rates follow the cap");
        assert_eq!(
            card(&h, "alpha-svt", 'C'),
            card(&m, "alpha-svt", 'C'),
            "other regions untouched"
        );
        assert_eq!(
            card(&h, "alpha-fix12", 'A'),
            card(&m, "alpha-fix12", 'A'),
            "fixes untouched"
        );
        let bad =
            Scenario::from_json(r#"{"changes":[{"op":"move_prices","percent":-100}]}"#).unwrap();
        assert_eq!(m.apply(&bad).unwrap_err().code(), "InvalidScenarioChange");
    }
}

#[cfg(test)]
mod reader_tests {
    use super::*;

    /// The change as serde's internally tagged enum read it before [`ChangeVisitor`].
    #[derive(Debug, Deserialize)]
    #[serde(tag = "op", rename_all = "snake_case", deny_unknown_fields)]
    enum Tagged {
        AddTariff {
            tariff: Box<Tariff>,
        },
        RemoveTariff {
            id: String,
        },
        RemoveSupplier {
            supplier: String,
        },
        MovePrices {
            percent: f64,
            #[serde(default)]
            select: Selection,
        },
        VariableToCap {
            cap: Vec<RateCard>,
            #[serde(default)]
            regions: Option<Vec<Region>>,
        },
    }

    impl From<Tagged> for Change {
        fn from(t: Tagged) -> Change {
            match t {
                Tagged::AddTariff { tariff } => Change::AddTariff { tariff },
                Tagged::RemoveTariff { id } => Change::RemoveTariff { id },
                Tagged::RemoveSupplier { supplier } => Change::RemoveSupplier { supplier },
                Tagged::MovePrices { percent, select } => Change::MovePrices { percent, select },
                Tagged::VariableToCap { cap, regions } => Change::VariableToCap { cap, regions },
            }
        }
    }

    /// serde_json's message without its position (the positions differ: the old reader buffered
    /// the object and reported at its end).
    fn message(e: serde_json::Error) -> String {
        let m = e.to_string();
        m.rfind(" at line ")
            .map_or(m.clone(), |i| m[..i].to_string())
    }

    #[test]
    fn changes_read_as_the_tagged_enum_read_them() {
        let tariff = r#"{"id":"x","supplier":"S","name":"X","kind":"fixed","term_months":12,"fuels":["dual_fuel"],"rates":[]}"#;
        let card = r#"{"region":"C","payment_method":"direct_debit","electricity":{"standing_p_per_day":50,"unit_p_per_kwh":25}}"#;
        let cases = [
            format!(r#"{{"op":"add_tariff","tariff":{tariff}}}"#),
            format!(r#"{{"tariff":{tariff},"op":"add_tariff"}}"#),
            r#"{"op":"remove_tariff","id":"a"}"#.to_string(),
            r#"{"id":"a","op":"remove_tariff"}"#.to_string(),
            r#"{"op":"remove_supplier","supplier":"S"}"#.to_string(),
            r#"{"op":"move_prices","percent":-5}"#.to_string(),
            r#"{"select":{"kind":"fixed","regions":["A","C"]},"percent":3.5,"op":"move_prices"}"#
                .to_string(),
            format!(r#"{{"op":"variable_to_cap","cap":[{card}]}}"#),
            format!(r#"{{"op":"variable_to_cap","cap":[{card}],"regions":null}}"#),
            format!(r#"{{"regions":["C"],"op":"variable_to_cap","cap":[{card}]}}"#),
            // Refused, each for its reason.
            r#"{"id":"a"}"#.to_string(),
            r#"{"op":"rename_tariff","id":"a"}"#.to_string(),
            r#"{"op":"remove_tariff"}"#.to_string(),
            r#"{"op":"remove_tariff","id":"a","colour":"red"}"#.to_string(),
            r#"{"op":"remove_tariff","id":"a","supplier":"S"}"#.to_string(),
            r#"{"supplier":"S","op":"remove_tariff","id":"a"}"#.to_string(),
            r#"{"op":"remove_tariff","id":"a","id":"b"}"#.to_string(),
            r#"{"op":"move_prices","percent":"five"}"#.to_string(),
            r#"{"op":"move_prices","percent":-5,"select":null}"#.to_string(),
            r#"{"op":"move_prices","percent":-5,"select":{"colour":1}}"#.to_string(),
            r#"{"op":"move_prices"}"#.to_string(),
            r#"{"op":7,"id":"a"}"#.to_string(),
            r#"{"op":"add_tariff","tariff":{"id":"x"}}"#.to_string(),
            r#""remove_tariff""#.to_string(),
        ];
        for json in &cases {
            let old = serde_json::from_str::<Tagged>(json);
            let new = serde_json::from_str::<Change>(json);
            match (old, new) {
                (Ok(old), Ok(new)) => assert_eq!(Change::from(old), new, "{json}"),
                (Err(old), Err(new)) => {
                    // The same message, except that the old reader could not say what it expected
                    // of a value that was not an object.
                    if json.starts_with('{') {
                        assert_eq!(message(old), message(new), "{json}");
                    }
                }
                (old, new) => panic!("{json}: before {old:?}, now {new:?}"),
            }
        }
    }
}
