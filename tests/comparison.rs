//! The paired before/after comparison and the intervals, checked against a brute-force
//! computation over the same profiles, and the paired intervals against independent ones.

use std::collections::HashMap;
use tariffsim::replay::tie_key;
use tariffsim::stats::Estimate;
use tariffsim::{Market, MarketIndex, RunSpec, Scenario, Simulation, Summary, parse_visits_csv};

const MARKET: &str = include_str!("fixtures/mini_market.json");
const SCENARIO: &str = include_str!("fixtures/mini_scenario.json");
const VISITS: &[u8] = include_bytes!("fixtures/mini_visits.csv");

fn run(spec: &str) -> (Simulation, Summary) {
    let market = Market::from_json(MARKET).unwrap();
    let scenario = Scenario::from_json(SCENARIO).unwrap();
    let visits = parse_visits_csv(VISITS).unwrap();
    let spec = RunSpec::from_json(spec).unwrap();
    let sim = Simulation::new(&market, Some(&scenario), &visits, &spec).unwrap();
    let mut total = sim.empty_summary();
    // Merged in reverse chunk order: the counts do not care.
    for i in (0..sim.chunk_count()).rev() {
        total.merge(&sim.chunk(i).unwrap().summary).unwrap();
    }
    (sim, total)
}

const SPEC: &str = r#"{"market": "m", "visits": "v", "sample_size": 3000, "chunk_size": 700, "seed": 17, "page_size": 3}"#;

fn close(a: f64, b: f64) -> bool {
    (a - b).abs() <= 1e-9 * (1.0 + a.abs().max(b.abs()))
}

/// mean and standard error of the mean, two-pass, the error times `inflate`: the square root of
/// the run's variance inflation 1 + profiles / population (profiles drawn from visits that are a
/// sample of the visitors: `tariffsim::stats::inflation`).
fn brute(xs: &[f64], inflate: f64) -> (f64, f64) {
    let n = xs.len() as f64;
    let m = xs.iter().sum::<f64>() / n;
    let var = xs.iter().map(|x| (x - m) * (x - m)).sum::<f64>() / (n - 1.0);
    (m, (var / n).sqrt() * inflate)
}

#[test]
fn comparison_and_intervals_match_a_brute_force_computation() {
    let (sim, total) = run(SPEC);
    let mut total = total;
    total.finish();
    let cmp = total
        .comparison
        .clone()
        .expect("a run with a scenario compares");
    let spec = sim.spec().clone();
    let ctr = total.ctr_by_rank.clone();
    let market = Market::from_json(MARKET).unwrap();
    let before = MarketIndex::new(market.clone());
    let after = MarketIndex::new(
        market
            .apply(&Scenario::from_json(SCENARIO).unwrap())
            .unwrap(),
    );
    // The members as the run draws them (its population in canonical order).
    let population = sim.population();
    assert_eq!(total.population, population.len() as u64);
    let inflate = (1.0 + total.profiles as f64 / population.len() as f64).sqrt();
    assert!(inflate > 1.0);
    let page = spec.page_size as usize;
    // Per tariff: per-profile page-1 indicators and clicks, before and after.
    let mut per: HashMap<String, [Vec<f64>; 4]> = HashMap::new();
    for t in &cmp.tariffs {
        per.insert(t.id.clone(), Default::default());
    }
    let (mut best_b, mut best_a, mut changed) = (Vec::new(), Vec::new(), 0u64);
    let n = spec.sample_size;
    for (j, member) in sim.sample(0..n) {
        let v = &population[member];
        let key = tie_key(spec.seed, j);
        let tb = before.results(v, spec.page_rules(), spec.seed, key);
        let ta = after.results(v, spec.page_rules(), spec.seed, key);
        for (id, xs) in per.iter_mut() {
            let rank = |rows: &[tariffsim::replay::ResultRow]| {
                rows.iter()
                    .take(page)
                    .position(|r| &r.tariff_id == id)
                    .map(|r| r + 1)
            };
            let (rb, ra) = (rank(&tb.rows), rank(&ta.rows));
            xs[0].push(f64::from(u8::from(rb.is_some())));
            xs[1].push(f64::from(u8::from(ra.is_some())));
            xs[2].push(rb.map_or(0.0, |r| ctr[r - 1]));
            xs[3].push(ra.map_or(0.0, |r| ctr[r - 1]));
        }
        changed += u64::from(
            tb.rows.first().map(|r| &r.tariff_id) != ta.rows.first().map(|r| &r.tariff_id),
        );
        if let (Some(b), Some(a), Some(cb), Some(ca)) = (
            tb.rows.first(),
            ta.rows.first(),
            tb.current_cost_gbp,
            ta.current_cost_gbp,
        ) {
            best_b.push(((cb - b.annual_cost_gbp) * 100.0).round());
            best_a.push(((ca - a.annual_cost_gbp) * 100.0).round());
        }
    }
    assert_eq!(cmp.best_tariff_changed, changed);
    let mut checked = 0;
    for t in &cmp.tariffs {
        let xs = &per[&t.id];
        let p1 = t.page1_share.unwrap();
        let clicks = t.expected_clicks.unwrap();
        // Not on sale on one side: its share there is 0 exactly, with no interval above 0.
        for (on_sale, side) in [(t.on_sale_before, p1.before), (t.on_sale_after, p1.after)] {
            if !on_sale {
                assert_eq!((side.value, side.ci95), (0.0, Some([0.0, 0.0])), "{}", t.id);
            }
        }
        let (mb, sb) = brute(&xs[0], inflate);
        let (ma, sa) = brute(&xs[1], inflate);
        assert!(
            close(p1.before.value, mb) && close(p1.after.value, ma),
            "{}",
            t.id
        );
        // The share's binomial SE uses n, the brute force n - 1: equal up to sqrt(n / (n - 1)).
        let k = ((n as f64 - 1.0) / n as f64).sqrt();
        assert!(
            close(p1.before.se.unwrap(), sb * k) && close(p1.after.se.unwrap(), sa * k),
            "{}",
            t.id
        );
        let d: Vec<f64> = xs[1].iter().zip(&xs[0]).map(|(a, b)| a - b).collect();
        let (md, sd) = brute(&d, inflate);
        assert!(close(p1.difference.value, md), "{}", t.id);
        match (t.on_sale_before, t.on_sale_after) {
            // On sale on one side only: the difference is that side's share, interval and all.
            (false, _) => assert_eq!(p1.difference, p1.after, "{}", t.id),
            (_, false) => {
                let [low, high] = p1.before.ci95.unwrap();
                assert_eq!(p1.difference.ci95, Some([-high, -low]), "{}", t.id);
            }
            _ => {
                assert!(close(p1.difference.se.unwrap(), sd), "{}", t.id);
                let [low, high] = p1.difference.ci95.unwrap();
                assert!(
                    low < md && md < high && (-1.0..=1.0).contains(&low),
                    "{}",
                    t.id
                );
            }
        }
        let (cb, scb) = brute(&xs[2], inflate);
        let (ca, sca) = brute(&xs[3], inflate);
        let nf = n as f64;
        // Clicks come only from the profiles on whose page 1 the tariff was: with fewer than two
        // visits' worth of them, no standard error nor interval.
        let shown = |i: &[usize]| {
            (0..xs[0].len())
                .filter(|&j| i.iter().any(|&x| xs[x][j] > 0.0))
                .count()
        };
        // `inflate` is the standard errors' factor, the square root of the variance's.
        let se_of =
            |count: usize, se: f64| (count as f64 / (inflate * inflate) >= 2.0).then_some(se);
        let close_se = |got: Option<f64>, want: Option<f64>| match (got, want) {
            (Some(a), Some(b)) => close(a, b),
            (a, b) => a.is_none() && b.is_none(),
        };
        assert!(close(clicks.before.value, cb * nf));
        assert!(
            close_se(clicks.before.se, se_of(shown(&[0]), scb * nf)),
            "{}",
            t.id
        );
        assert!(close(clicks.after.value, ca * nf));
        assert!(
            close_se(clicks.after.se, se_of(shown(&[1]), sca * nf)),
            "{}",
            t.id
        );
        let dc: Vec<f64> = xs[3].iter().zip(&xs[2]).map(|(a, b)| a - b).collect();
        let (mdc, sdc) = brute(&dc, inflate);
        assert!(close(clicks.difference.value, mdc * nf));
        if t.on_sale_before && t.on_sale_after && shown(&[0, 1]) == 0 {
            // On no profile's page 1, before or after: nothing bounds a change, no interval.
            assert_eq!((clicks.difference.se, clicks.difference.ci95), (None, None));
        } else if t.on_sale_before && t.on_sale_after {
            // The paired standard error, however few profiles changed; an interval about the
            // difference that is never a point: Student's t at the changed profiles' degrees of
            // freedom, or with fewer than two visits' worth of them what unseen changes could make
            // (Estimate::paired_total).
            assert!(close_se(clicks.difference.se, Some(sdc * nf)), "{}", t.id);
            let [low, high] = clicks.difference.ci95.unwrap();
            assert!(
                low <= mdc * nf && mdc * nf <= high && low < high,
                "{}",
                t.id
            );
            let changed = dc.iter().filter(|x| **x != 0.0).count();
            if changed == 0 {
                assert!(
                    low < 0.0 && high > 0.0,
                    "{}: no change seen, either way possible",
                    t.id
                );
            }
        }
        // On sale after only (an added tariff): its clicks difference is its clicks after,
        // interval and all (never below 0).
        if !t.on_sale_before {
            assert_eq!(clicks.difference, clicks.after, "{}", t.id);
        }
        // The summary's own intervals (scenario market) agree with the comparison's "after".
        if let Some(s) = total.tariffs.iter().find(|s| s.id == t.id) {
            let i = s.intervals.unwrap();
            assert!(
                close(i.page1_share.se.unwrap(), p1.after.se.unwrap())
                    && close_se(i.expected_clicks.se, clicks.after.se)
            );
        }
        checked += 1;
    }
    assert!(checked >= 4);
    let s = cmp.mean_best_saving_gbp.unwrap();
    let (mb, sb) = brute(&best_b, inflate);
    let (ma, sa) = brute(&best_a, inflate);
    let d: Vec<f64> = best_a.iter().zip(&best_b).map(|(a, b)| a - b).collect();
    let (md, sd) = brute(&d, inflate);
    assert!(close(s.before.value, mb / 100.0) && close(s.before.se.unwrap(), sb / 100.0));
    assert!(close(s.after.value, ma / 100.0) && close(s.after.se.unwrap(), sa / 100.0));
    assert!(close(s.difference.value, md / 100.0) && close(s.difference.se.unwrap(), sd / 100.0));
}

#[test]
fn paired_differences_are_tighter_than_two_independent_runs() {
    let (_, mut total) = run(SPEC);
    total.finish();
    let cmp = total.comparison.unwrap();
    let mut tighter = 0;
    for t in &cmp.tariffs {
        let p1 = t.page1_share.unwrap();
        if p1.before.value == 0.0 || p1.after.value == 0.0 {
            continue;
        }
        // Two independent runs: the variance of a difference is the sum of the variances.
        let independent = (p1.before.se.unwrap().powi(2) + p1.after.se.unwrap().powi(2)).sqrt();
        assert!(
            p1.difference.se.unwrap() < independent,
            "{}: {:?}",
            t.id,
            p1
        );
        tighter += 1;
    }
    assert!(tighter >= 2, "tariffs on both markets: {tighter}");
    let s = cmp.mean_best_saving_gbp.unwrap();
    assert!(
        s.difference.se.unwrap()
            < (s.before.se.unwrap().powi(2) + s.after.se.unwrap().powi(2)).sqrt()
    );
}

#[test]
fn the_comparison_merges_in_any_order_and_is_optional() {
    let (sim, reversed) = run(SPEC);
    let mut forward = sim.empty_summary();
    for i in 0..sim.chunk_count() {
        forward.merge(&sim.chunk(i).unwrap().summary).unwrap();
    }
    assert_eq!(forward.to_json(), reversed.to_json());
    assert_eq!(forward.comparison_json(), reversed.comparison_json());
    assert!(!forward.report_json().contains("joint_ranks"));
    let (_, off) = run(&SPEC.replace("\"page_size\": 3}", "\"page_size\": 3, \"compare\": false}"));
    assert!(off.comparison.is_none() && off.comparison_json().is_none());
    // Without the comparison the scenario market's summary is the same.
    assert_eq!(off.report_json(), forward.report_json());
    let e = Estimate::share(0, 10, 1.0);
    assert_eq!(e.value, 0.0);
}

#[test]
fn the_base_page_rebuilt_from_the_scenario_replay_equals_a_full_replay() {
    use tariffsim::PageRules;
    let market = Market::from_json(include_str!("../data/sample/market.json")).unwrap();
    let scenario = Scenario::from_json(include_str!("../data/sample/scenario.json")).unwrap();
    let visits = parse_visits_csv(include_bytes!("../data/sample/visits.csv")).unwrap();
    let base = MarketIndex::new(market.clone());
    let after = MarketIndex::new(market.apply(&scenario).unwrap());
    let delta = base.delta(&after);
    let (mut ranked, mut rebuilt, mut full) = (Vec::new(), Vec::new(), Vec::new());
    let mut checked = 0;
    for rules in [
        PageRules::default(),
        PageRules {
            show_current_tariff: true,
            whole_of_market: false,
        },
    ] {
        for page in [1usize, 3, 10] {
            for (j, v) in visits.iter().enumerate().step_by(7) {
                let key = tie_key(3, j as u64);
                let (pb, pa) = (base.compile(v, rules, 3), after.compile(v, rules, 3));
                let extra = MarketIndex::extra_rows(&delta, &pa);
                let kept = after.replay(&pa, key, page + extra, &mut ranked, |_| {});
                let n = base.replay(&pb, key, page, &mut full, |_| {});
                if let Some(m) = base.replay_from_scenario(
                    &pb,
                    (&pa, &ranked[..kept]),
                    key,
                    page,
                    &delta,
                    &mut rebuilt,
                ) {
                    assert_eq!(rebuilt[..m], full[..n], "visit {} page {page}", v.visit_id);
                    checked += 1;
                }
            }
        }
    }
    assert!(checked > 10_000, "{checked}");
}
