use super::*;
use crate::settings::Stall;

/// A small deterministic generator, so curves are the same on every run.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }

    /// Roughly normal: the sum of 12 uniforms.
    fn normal(&mut self) -> f64 {
        (0..12).map(|_| self.next()).sum::<f64>() - 6.0
    }
}

fn sitter() -> Babysitter {
    Babysitter::new(&RulesConfig::default(), 0.0).unwrap()
}

#[test]
fn a_healthy_noisy_run_of_10000_steps_fires_nothing() {
    let mut b = sitter();
    let mut rng = Rng(42);
    let mut alerts = Vec::new();
    for step in 0..10_000i64 {
        let t = step as f64 * 0.01 * (1.0 + 0.2 * rng.next());
        let level = 2.0 * (-(step as f64) / 2000.0).exp() + 0.1;
        let mut loss = level * (1.0 + 0.15 * rng.normal());
        if rng.next() < 0.01 {
            loss *= 3.0; // an ordinary spike
        }
        let mut values = vec![("loss".to_string(), loss), ("grad_norm".to_string(), 1.0 + rng.next())];
        values.push(("tokens_per_s".to_string(), 5000.0 * (1.0 + 0.1 * rng.normal())));
        if step % 100 == 0 {
            values.push(("val_loss".to_string(), level * (1.0 + 0.05 * rng.normal())));
        }
        alerts.extend(b.on_log(step, t, &values));
        b.on_activity(t);
        alerts.extend(b.on_tick(t + 0.005));
    }
    assert!(alerts.is_empty(), "{alerts:#?}");
}

#[test]
fn a_nan_fires_nonfinite_with_evidence_and_asks_to_stop() {
    let mut b = sitter();
    for step in 0..500 {
        assert!(b.on_log(step, step as f64, &[("loss".into(), 1.0)]).is_empty());
    }
    let alerts = b.on_log(500, 500.0, &[("loss".into(), f64::NAN)]);
    assert_eq!(alerts.len(), 1);
    let a = &alerts[0];
    assert_eq!((a.rule.as_str(), a.action), ("nonfinite", Action::Stop));
    assert_eq!(a.message, "loss is NaN at step 500");
    assert_eq!(a.evidence["recent"].as_array().unwrap().len(), RECENT);
    let event = serde_json::to_value(a.to_event(1.0)).unwrap();
    assert_eq!(event["data"]["rule"], "nonfinite");
    assert_eq!(event["data"]["value"], "NaN");
    // It fires once per metric.
    assert!(b.on_log(501, 501.0, &[("loss".into(), f64::NAN)]).is_empty());
}

#[test]
fn a_diverging_loss_is_caught_within_a_few_points() {
    let mut b = sitter();
    let mut fired_at = None;
    for step in 0..400i64 {
        let loss = if step < 300 { 1.0 / (1.0 + step as f64 / 50.0) } else { 0.2 * 1.3f64.powi((step - 300) as i32) };
        if let Some(a) = b.on_log(step, step as f64, &[("train/loss".into(), loss)]).into_iter().next() {
            assert_eq!((a.rule.as_str(), a.action), ("diverge", Action::Stop));
            fired_at = Some(step);
            break;
        }
    }
    let at = fired_at.expect("diverge fired");
    assert!((300..330).contains(&at), "fired at {at}");
}

#[test]
fn silence_much_longer_than_the_cadence_is_a_stall() {
    let cfg = RulesConfig { stall: Stall { floor: 1.0, ..Stall::default() }, ..RulesConfig::default() };
    let mut b = Babysitter::new(&cfg, 0.0).unwrap();
    for step in 0..50 {
        let t = step as f64 * 0.05;
        b.on_log(step, t, &[("loss".into(), 1.0)]);
        b.on_activity(t);
    }
    assert!((b.stall_limit() - 1.0).abs() < 1e-9, "{}", b.stall_limit());
    assert!(b.on_tick(2.45 + 0.9).is_empty());
    let alerts = b.on_tick(2.45 + 1.5);
    assert_eq!(alerts.len(), 1);
    assert_eq!(alerts[0].rule, "stall");
    assert!(alerts[0].message.starts_with("no metric and no output for 2s"), "{}", alerts[0].message);
    assert!(b.on_tick(10.0).is_empty(), "a stall fires once");
    b.on_activity(11.0);
    assert_eq!(b.on_tick(13.0).len(), 1, "and again after it recovered and stalled anew");
}

#[test]
fn before_the_cadence_is_known_only_the_ceiling_applies() {
    let mut b = sitter();
    assert!(b.on_tick(1000.0).is_empty());
    assert_eq!(b.on_tick(1801.0).len(), 1);
}

#[test]
fn a_throughput_drop_fires_slowdown() {
    let mut b = sitter();
    let mut t = 0.0;
    let mut alerts = Vec::new();
    for step in 0..10_000i64 {
        t += if step < 6000 { 0.01 } else { 0.05 };
        alerts.extend(b.on_log(step, t, &[("loss".into(), 1.0)]));
    }
    assert_eq!(alerts.len(), 1, "{alerts:#?}");
    assert_eq!(alerts[0].rule, "slowdown");
    assert!(alerts[0].message.starts_with("throughput fell to 20 steps/s from 100 steps/s"), "{}", alerts[0].message);
}

#[test]
fn user_rules_respect_after_and_for() {
    let cfg = RulesConfig {
        custom: vec!["val_loss > 5 after step 1000 => stop".into(), "grad_norm > 100 for 3 => alert".into()],
        ..RulesConfig::default()
    };
    let mut b = Babysitter::new(&cfg, 0.0).unwrap();
    assert!(b.on_log(500, 1.0, &[("val_loss".into(), 9.0)]).is_empty());
    let a = b.on_log(1000, 2.0, &[("val_loss".into(), 9.0)]);
    assert_eq!((a.len(), a[0].action), (1, Action::Stop));
    assert_eq!(a[0].message, "rule `val_loss > 5 after step 1000 => stop` held at step 1000 (val_loss = 9)");
    let g = |b: &mut Babysitter, s, v| b.on_log(s, 3.0, &[("grad_norm".into(), v)]);
    assert!(g(&mut b, 1, 200.0).is_empty());
    assert!(g(&mut b, 2, 200.0).is_empty());
    assert!(g(&mut b, 3, 50.0).is_empty());
    assert!(g(&mut b, 4, 200.0).is_empty());
    assert!(g(&mut b, 5, 200.0).is_empty());
    assert_eq!(g(&mut b, 6, 200.0).len(), 1);

    let bad = RulesConfig { custom: vec!["loss >> 1 => stop".into()], ..RulesConfig::default() };
    let e = Babysitter::new(&bad, 0.0).err().unwrap().to_string();
    assert!(e.contains("column 7"), "{e}");
}

#[test]
fn crashes_carry_their_traceback_and_oom_is_told_apart() {
    let mut b = sitter();
    let tail = "Traceback (most recent call last):\n  File \"t.py\", line 1, in <module>\nValueError: bad\n";
    let exit = |code, tail| Exit { exit_code: code, signal: None, stopped: false, tail, memory_high: false };
    let a = b.on_exit(&exit(Some(1), tail));
    assert_eq!(a[0].rule, "crash");
    assert_eq!(a[0].message, "crashed (exit code 1): ValueError: bad");
    assert_eq!(a[0].evidence["lines"].as_array().unwrap().len(), 3);
    assert!(b.on_exit(&exit(Some(0), "")).is_empty());
    assert!(b.on_exit(&Exit { stopped: true, ..exit(Some(143), "") }).is_empty());
    let a = b.on_exit(&exit(Some(1), "torch.OutOfMemoryError: CUDA out of memory.\n"));
    assert_eq!(a[0].rule, "oom");
    let a = b.on_exit(&Exit { exit_code: None, signal: Some(9), stopped: false, tail: "", memory_high: true });
    assert_eq!(a[0].rule, "oom");
}

#[test]
fn rules_config_reads_toml_with_durations() {
    let cfg: RulesConfig = toml::from_str(
        "custom = [\"loss > 9 => stop\"]\n[stall]\nfloor = \"2s\"\nceiling = 60\n[diverge]\nenabled = false\n",
    )
    .unwrap();
    assert_eq!((cfg.stall.floor, cfg.stall.ceiling, cfg.diverge.enabled), (2.0, 60.0, false));
    let e = toml::from_str::<RulesConfig>("[stall]\nflor = 2\n").unwrap_err().to_string();
    assert!(e.contains("unknown field `flor`"), "{e}");
}

#[test]
fn a_loss_term_that_switches_on_late_is_not_a_divergence() {
    let mut b = sitter();
    let mut alerts = Vec::new();
    for step in 0..2000i64 {
        let aux = if step < 1000 { 0.0 } else { 0.5 / (1.0 + (step - 1000) as f64 / 100.0) };
        alerts.extend(b.on_log(step, step as f64, &[("aux_loss".into(), aux)]));
    }
    assert!(alerts.is_empty(), "{alerts:#?}");
}
