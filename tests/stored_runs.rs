//! Yesterday's files: PNGs written by `clipguide generate` at commit 84caad7 (2026-12-06) still
//! read as the runs that made them. How each was made is in tests/fixtures/README.md
//! ("stored-runs"); the expected values below are those command lines, not this code's output.

use std::path::Path;

use clipguide_guide::png_meta::{png_text, PARAMS_KEY};
use clipguide_guide::{GenerateConfig, ParamKind};

fn stored(name: &str) -> (serde_json::Value, GenerateConfig) {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/stored-runs")
        .join(name);
    let png =
        std::fs::read(&path).unwrap_or_else(|e| panic!("missing fixture {}: {e}", path.display()));
    let text = png_text(&png, PARAMS_KEY)
        .unwrap()
        .unwrap_or_else(|| panic!("{name} has no parameters chunk"));
    let stored: serde_json::Value = serde_json::from_str(&text).unwrap();
    let config: GenerateConfig = serde_json::from_value(stored["config"].clone())
        .unwrap_or_else(|e| panic!("{name}: the stored run no longer reads: {e}"));
    config.validate().unwrap();
    (stored, config)
}

const JUDGE: [&str; 3] = [
    "a red circle in the center on a blue background",
    "a yellow square in the top left corner on a black background",
    "a white star in the top right corner on a purple background",
];

#[test]
fn pngs_from_an_earlier_build_read_as_the_runs_that_made_them() {
    let (header, readme) = stored("readme.png");
    assert_eq!(header["generator"], "clipguide");
    assert_eq!((readme.width, readme.height), (128, 128));
    assert_eq!(readme.schedule.steps, 150);
    assert_eq!(
        readme.schedule.prompts.texts(),
        vec!["a red circle on a blue background"]
    );
    for (i, prompt) in JUDGE.iter().enumerate() {
        for recipe in ["shapes", "discs", "fourier"] {
            let name = format!("judge{}-{recipe}.png", i + 1);
            let (_, c) = stored(&name);
            assert_eq!((c.width, c.height), (64, 64), "{name}");
            assert_eq!(c.schedule.seed, 0, "{name}");
            assert_eq!(c.schedule.prompts.texts(), vec![*prompt], "{name}");
            let (param, steps, outlines) = match recipe {
                "shapes" => (ParamKind::Primitives, 200, true),
                "discs" => (ParamKind::Primitives, 200, false),
                _ => (ParamKind::Fourier, 100, false),
            };
            assert_eq!(c.param, param, "{name}");
            assert_eq!(c.schedule.steps, steps, "{name}");
            assert_eq!(c.primitive_shapes, outlines, "{name}");
            if recipe != "fourier" {
                assert_eq!(c.starts, 9, "{name}: nine starts");
                assert!(c.palette.is_some(), "{name}: the built-in palette");
            }
        }
    }
}
