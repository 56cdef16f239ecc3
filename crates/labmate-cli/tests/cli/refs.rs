//! Naming a run: a full id always means that run; any other reference that
//! fits two runs, by whatever rule, is refused with the candidates.

use crate::common::{TestLab, stderr, stdout};

/// A finished run with this name (or none); its id.
fn finished(lab: &TestLab, name: Option<&str>) -> String {
    let mut args = vec!["run"];
    if let Some(n) = name {
        args.extend(["--name", n]);
    }
    args.extend(["--", "true"]);
    let out = lab.run(&args);
    assert!(out.status.success(), "{}", stderr(&out));
    TestLab::started_id(&out)
}

fn handle(id: &str) -> &str {
    &id[id.len() - 4..]
}

/// Runs `labmate ARGS`, expects exit 2, and returns stderr.
fn refused(lab: &TestLab, args: &[&str]) -> String {
    let out = lab.run(args);
    assert_eq!(out.status.code(), Some(2), "labmate {args:?}: {}{}", stdout(&out), stderr(&out));
    stderr(&out)
}

#[test]
fn a_name_equal_to_another_runs_handle_is_ambiguous() {
    let lab = TestLab::new();
    let a = finished(&lab, None);
    let b = finished(&lab, Some(handle(&a)));

    for cmd in
        [&["show", handle(&a)][..], &["stop", handle(&a)], &["metrics", handle(&a)], &["compare", handle(&a), &b]]
    {
        let err = refused(&lab, cmd);
        assert!(err.contains(&format!("run '{}' is ambiguous; it matches 2 runs", handle(&a))), "{cmd:?}: {err}");
        assert!(err.contains(&format!("{a}: last 4 characters")), "{cmd:?}: {err}");
        assert!(err.contains(&format!("{b} (named '{}'): name", handle(&a))), "{cmd:?}: {err}");
    }
    // Each full id still names its own run.
    assert_eq!(lab.show(&a)["id"], a);
    assert_eq!(lab.show(&b)["id"], b);
}

#[test]
fn a_name_that_is_an_id_prefix_is_ambiguous_and_a_full_id_always_wins() {
    let lab = TestLab::new();
    let a = finished(&lab, None);
    // Ids of runs made within days share their first time characters.
    let prefix = a[..4].to_string();
    let c = finished(&lab, Some(&prefix));
    let err = refused(&lab, &["show", &prefix]);
    assert!(err.contains(&format!("{a}: id prefix")), "{err}");
    assert!(err.contains(&format!("{c} (named '{prefix}'): name, id prefix")), "{err}");
    // Without `r-`, the prefix matches both runs too.
    let err = refused(&lab, &["show", &prefix[2..]]);
    assert!(
        err.contains(&format!("{a}: id prefix")) && err.contains(&format!("{c} (named '{prefix}'): id prefix")),
        "{err}"
    );

    // A run named with another run's full id does not take that id over.
    let d = finished(&lab, Some(&a));
    assert_eq!(lab.show(&a)["id"], a);
    let out = lab.run(&["show", &a]);
    assert!(out.status.success() && stdout(&out).starts_with(&format!("run      {a}")), "{}", stdout(&out));
    assert_eq!(lab.show(&d)["id"], d);
}

#[test]
fn stop_refuses_an_ambiguous_reference_and_stops_nothing() {
    let lab = TestLab::new();
    let out = lab.run(&["run", "--detach", "--", "sleep", "30"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let running = stdout(&out).trim().to_string();
    let other = finished(&lab, Some(handle(&running)));

    let err = refused(&lab, &["stop", handle(&running)]);
    assert!(
        err.contains(&format!("{running}: last 4 characters")) && err.contains(&format!("{other} (named")),
        "{err}"
    );
    assert_eq!(lab.show(&running)["status"], "running");

    let out = lab.run(&["stop", &running]);
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(lab.show(&running)["status"], "stopped");
    assert_eq!(lab.show(&other)["status"], "finished");
}
