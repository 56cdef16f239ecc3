//! `labmate plot` and `labmate profile` through the real binary.

use crate::common::{TestLab, stderr, stdout};

fn lab_with_curves() -> TestLab {
    let lab = TestLab::new();
    lab.write("labmate.toml", "[rules.nonfinite]\nenabled = false\n");
    for (lr, seed) in [(0.1, 0), (0.1, 1), (0.3, 0), (0.3, 1)] {
        let script = format!(
            "import math\nfor i in range(300):\n    v = float('nan') if i == 150 else (1 + {seed}) * math.exp(-i * {lr} / 30)\n    print('##labmate {{\"step\": %d, \"loss\": %r, \"span/forward\": 0.002, \"span/optimizer\": %r}}' % (i, v, 0.004 if {lr} > 0.2 else 0.001))\n"
        );
        let path = lab.write(&format!("t{lr}{seed}.py"), &script);
        let out = lab.run(&[
            "run",
            "--name",
            &format!("lr{lr}-s{seed}"),
            "--config",
            &format!("lr={lr}"),
            "--config",
            &format!("seed={seed}"),
            "--",
            "python3",
            path.to_str().unwrap(),
        ]);
        assert!(out.status.success(), "{}", stderr(&out));
    }
    lab
}

#[test]
fn plots_are_svg_or_png_with_labels_and_marks() {
    let lab = lab_with_curves();
    let out = lab.run(&["plot", "lr0.1-s0", "lr0.3-s0", "--metric", "loss", "--log-y", "-o", "curves.svg"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let svg = std::fs::read_to_string(lab.path().join("curves.svg")).unwrap();
    assert!(svg.starts_with("<svg") || svg.contains("<svg"), "not an SVG");
    for text in ["lr0.1-s0", "lr0.3-s0", "loss", "step"] {
        assert!(svg.contains(text), "the SVG lacks {text}");
    }
    assert!(svg.contains("NaN"), "the NaN at step 150 is marked and explained");

    let out = lab.run(&[
        "plot",
        "--where",
        "config.lr > 0",
        "--metric",
        "loss",
        "--group-by",
        "config.lr",
        "-o",
        "groups.png",
    ]);
    assert!(out.status.success(), "{}", stderr(&out));
    let png = std::fs::read(lab.path().join("groups.png")).unwrap();
    assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    let width = u32::from_be_bytes(png[16..20].try_into().unwrap());
    assert_eq!(width, 900);

    let out = lab.run(&["plot", "lr0.1-s0", "--metric", "los", "-o", "x.svg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains("did you mean 'metrics.loss.last'"), "{}", stderr(&out));
    let out = lab.run(&["plot", "lr0.1-s0", "--metric", "loss", "-o", "x.jpg"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(stderr(&out).contains(".svg or .png"), "{}", stderr(&out));
}

#[test]
fn profile_shows_where_step_time_goes_and_what_changed() {
    let lab = lab_with_curves();
    let p = lab.json(&["profile", "lr0.3-s0", "--baseline", "lr0.1-s0", "--json"]);
    let spans = p["spans"].as_array().unwrap();
    assert_eq!(spans[0]["name"], "optimizer", "the biggest span first");
    assert!((spans[0]["share"].as_f64().unwrap() - 4.0 / 6.0).abs() < 1e-9);
    assert!((spans[0]["p95_s"].as_f64().unwrap() - 0.004).abs() < 1e-12);
    assert_eq!(spans[0]["steps"], 300);
    let change = p["vs_baseline"].as_array().unwrap().iter().find(|c| c["name"] == "optimizer").unwrap();
    assert!((change["change"].as_f64().unwrap() - 3.0).abs() < 1e-9, "4x slower: +300%");
    let text = stdout(&lab.run(&["profile", "lr0.3-s0", "--baseline", "lr0.1-s0"]));
    assert!(text.contains("optimizer: 1ms -> 4ms per step (+300%, slower)"), "{text}");
}
