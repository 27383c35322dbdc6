//! Yesterday's files: PNGs written by `clipguide generate` at commit 84caad7 (2026-12-06) still
//! read as the runs that made them. How each was made is in tests/fixtures/README.md
//! ("stored-runs"); the expected values below are those command lines, not this code's output.

use std::path::Path;

use clipguide_guide::png_meta::{png_text, PARAMS_KEY};
use clipguide_guide::{GenerateConfig, Param, StoredRun};

/// The fixture's JSON header and its run in today's terms; every fixture is format 1.
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
    let run = StoredRun::from_png(&path)
        .unwrap_or_else(|e| panic!("{name}: the stored run no longer reads: {e}"));
    assert!(
        matches!(run, StoredRun::V1(_)),
        "{name} was written in format 1"
    );
    let config = run.into_config();
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
            let (param, steps) = (c.param.name(), c.schedule.steps);
            match recipe {
                "shapes" | "discs" => {
                    assert_eq!((param, steps), ("primitives", 200), "{name}");
                    let spec = c.param.primitives().unwrap();
                    assert_eq!(spec.outlines, recipe == "shapes", "{name}");
                    assert_eq!(spec.count, 1, "{name}: one primitive");
                    assert_eq!(
                        spec.palette.as_ref().map(Vec::len),
                        Some(12),
                        "{name}: the built-in palette"
                    );
                    let edge = if recipe == "shapes" { 0.012 } else { 0.03 };
                    assert_eq!(spec.edge, edge, "{name}");
                    assert_eq!(c.selection.starts, 9, "{name}: nine starts");
                    assert_eq!(c.selection.start_steps, 40, "{name}");
                    assert!(c.selection.keep_best, "{name}");
                }
                _ => assert_eq!(c.param, Param::Fourier { decay: 1.5 }, "{name}"),
            }
            if recipe == "fourier" {
                assert_eq!(steps, 100, "{name}");
            }
        }
    }
}

/// Each fixture's stored run is the run today's recipes make of the command line that first
/// made it (tests/fixtures/README.md): the same settings, so the same image on that machine.
#[test]
fn each_stored_run_is_what_todays_recipes_make_of_its_command_line() {
    use clipguide_guide::{plan_run, Overrides, PromptSchedule, Start};
    use clipguide_shapes::recipe;
    let planned = |recipe: &clipguide_guide::Recipe, prompt: &str, size, steps| {
        let o = Overrides {
            prompts: Some(PromptSchedule::single(prompt).unwrap()),
            size: Some((size, size)),
            steps,
            ..Overrides::default()
        };
        plan_run(recipe, Start::Recipe, &o).unwrap()
    };
    let (_, readme) = stored("readme.png");
    let want = planned(
        &recipe::for_model(true),
        "a red circle on a blue background",
        128,
        Some(150),
    );
    assert_eq!(readme, want, "readme.png");
    for (i, prompt) in JUDGE.iter().enumerate() {
        for name in ["shapes", "discs", "fourier"] {
            let file = format!("judge{}-{name}.png", i + 1);
            let steps = (name == "fourier").then_some(100);
            let want = planned(&recipe::by_name(name).unwrap(), prompt, 64, steps);
            assert_eq!(stored(&file).1, want, "{file}");
        }
    }
}
