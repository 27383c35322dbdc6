//! The built-in world's recipes under a user's overrides: what `clipguide generate` runs for a
//! given model and flags (the CLI maps each flag to the `Overrides` field of the same name).

use clipguide_guide::{
    plan_run, ContrastChoice, GenerateConfig, Overrides, PaletteChoice, Param, PromptSchedule,
    Recipe, Start,
};
use clipguide_shapes::palette::Palette;
use clipguide_shapes::recipe::{self, for_model};

fn prompts(p: &str) -> Option<PromptSchedule> {
    Some(PromptSchedule::single(p).unwrap())
}

fn plan(recipe: &Recipe, o: Overrides) -> GenerateConfig {
    plan_run(recipe, Start::Recipe, &o).unwrap()
}

fn with(p: &str) -> Overrides {
    Overrides {
        prompts: prompts(p),
        ..Overrides::default()
    }
}

#[test]
fn the_recipe_follows_the_model_and_overrides_change_single_settings() {
    let builtin = plan(&for_model(true), with("a red circle"));
    let spec = builtin.param.primitives().expect("primitives");
    assert_eq!(builtin.selection.starts, 9);
    assert_eq!(spec.palette, Some(Palette::srgb()));
    assert!(spec.outlines, "the built-in model's recipe is shapes");
    assert_eq!(builtin.schedule.steps, 200);
    assert!(builtin.selection.keep_best);
    let hub = plan(&for_model(false), with("a red circle"));
    assert_eq!(hub.param, Param::Fourier { decay: 1.5 });
    assert_eq!((hub.selection.starts, hub.selection.keep_best), (1, false));
    assert_eq!(hub.schedule.steps, 300);

    let kept = plan(
        &for_model(false),
        Overrides {
            keep_best: Some(true),
            ..with("x")
        },
    );
    assert!(kept.selection.keep_best);
    let last = plan(
        &for_model(true),
        Overrides {
            keep_best: Some(false),
            ..with("x")
        },
    );
    assert!(!last.selection.keep_best);

    let discs = plan(&recipe::discs(), with("x"));
    assert!(
        !discs.param.primitives().unwrap().outlines,
        "discs draws discs only"
    );
    // Another parameterisation starts from its own defaults: no palette, no outlines.
    let px = plan(
        &for_model(true),
        Overrides {
            param: Some("pixels".into()),
            ..with("x")
        },
    );
    assert_eq!(px.param, Param::Pixels);
    assert_eq!(px.selection.starts, 9, "the recipe's other settings stay");
    // The same kind keeps the recipe's settings.
    let same = plan(
        &for_model(true),
        Overrides {
            param: Some("primitives".into()),
            ..with("x")
        },
    );
    assert_eq!(same.param, builtin.param);

    let placed = plan(
        &for_model(true),
        with("a red circle at the top on a blue background"),
    );
    assert_eq!(
        placed.selection.contrasts.len(),
        8,
        "{:?}",
        placed.selection.contrasts
    );
    assert!(placed
        .selection
        .contrasts
        .contains(&"a red circle in the center on a blue background".to_string()));
    assert!(
        builtin.selection.contrasts.is_empty(),
        "no placement, nothing to contrast"
    );
    let hub_placed = plan(&for_model(false), with("a red circle at the top"));
    assert!(
        hub_placed.selection.contrasts.is_empty(),
        "contrasts belong to the world's recipes"
    );
    let none = plan(
        &for_model(true),
        Overrides {
            contrasts: ContrastChoice::None,
            ..with("a red circle at the top")
        },
    );
    assert!(none.selection.contrasts.is_empty());
    let own = plan(
        &for_model(false),
        Overrides {
            contrasts: ContrastChoice::These(vec!["a blue circle".into(), "a star".into()]),
            ..with("a red circle at the top")
        },
    );
    assert_eq!(own.selection.contrasts, ["a blue circle", "a star"]);

    let short = plan(
        &for_model(true),
        Overrides {
            steps: Some(30),
            ..with("x")
        },
    );
    assert_eq!(
        short.selection.start_steps, 15,
        "a short run gives its starts half"
    );
    let own = plan(
        &for_model(true),
        Overrides {
            starts: Some(4),
            start_steps: Some(7),
            ..with("x")
        },
    );
    assert_eq!((own.selection.starts, own.selection.start_steps), (4, 7));
    let e = plan_run(
        &for_model(true),
        Start::Recipe,
        &Overrides {
            steps: Some(30),
            start_steps: Some(30),
            ..with("x")
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("start_steps"), "{e}");
}

#[test]
fn primitives_settings_apply_to_primitives_only_and_name_themselves() {
    let o = Overrides {
        param: Some("primitives".into()),
        palette: Some(PaletteChoice::parse("#000000,#ffffff", &[]).unwrap()),
        outlines: Some(true),
        edge: Some(0.02),
        min_radius: Some(0.05),
        primitives: Some(3),
        ..with("x")
    };
    let c = plan(&for_model(false), o);
    let spec = c.param.primitives().unwrap();
    assert_eq!(spec.palette, Some(vec![[0, 0, 0], [255, 255, 255]]));
    assert!(spec.outlines);
    assert_eq!((spec.edge, spec.min_radius, spec.count), (0.02, 0.05, 3));
    for (o, setting) in [
        (
            Overrides {
                palette: Some(PaletteChoice::Any),
                ..with("x")
            },
            "palette",
        ),
        (
            Overrides {
                outlines: Some(true),
                ..with("x")
            },
            "outline choice",
        ),
        (
            Overrides {
                edge: Some(0.02),
                ..with("x")
            },
            "primitive edge",
        ),
        (
            Overrides {
                primitives: Some(2),
                ..with("x")
            },
            "primitives count",
        ),
    ] {
        let e = plan_run(&for_model(false), Start::Recipe, &o)
            .unwrap_err()
            .to_string();
        assert!(
            e.contains(setting) && e.contains("primitives parameterisation"),
            "{e}"
        );
    }
    let e = plan_run(
        &for_model(true),
        Start::Recipe,
        &Overrides {
            decay: Some(1.0),
            ..with("x")
        },
    )
    .unwrap_err()
    .to_string();
    assert!(e.contains("decay") && e.contains("fourier"), "{e}");
    // Out-of-range values are refused by the config's own checks, which name the field.
    let e = plan_run(
        &for_model(true),
        Start::Recipe,
        &Overrides {
            edge: Some(0.0),
            ..with("x")
        },
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("primitive edge") && e.contains("(0, 0.5]"),
        "{e}"
    );
}

#[test]
fn palettes_parse_and_bad_colours_are_named() {
    let builtin = Palette::srgb();
    assert_eq!(
        PaletteChoice::parse("builtin", &builtin).unwrap(),
        PaletteChoice::Colours(builtin.clone())
    );
    assert_eq!(
        PaletteChoice::parse("any", &builtin).unwrap(),
        PaletteChoice::Any
    );
    assert_eq!(
        PaletteChoice::parse("#ff0000, #00Ff10", &builtin).unwrap(),
        PaletteChoice::Colours(vec![[255, 0, 0], [0, 255, 16]])
    );
    for bad in ["red", "#ff00", "#gg0000", "#ff0000,", "#ff0000ff"] {
        let e = PaletteChoice::parse(bad, &builtin).unwrap_err().to_string();
        assert!(e.contains("palette") && e.contains("#dc1e1e"), "{bad}: {e}");
    }
}

#[test]
fn a_stored_run_keeps_its_contrasts_until_its_prompts_change() {
    let stored = plan(&for_model(true), with("a red circle at the top"));
    assert_eq!(stored.selection.contrasts.len(), 8);
    let remade = plan_run(
        &for_model(true),
        Start::Stored(stored.clone()),
        &Overrides::default(),
    )
    .unwrap();
    assert_eq!(remade, stored, "nothing given, nothing changes");
    let renamed = plan_run(
        &for_model(true),
        Start::Stored(stored.clone()),
        &with("a blue square at the bottom"),
    )
    .unwrap();
    assert!(
        renamed
            .selection
            .contrasts
            .iter()
            .all(|c| c.starts_with("a blue square")),
        "{:?}",
        renamed.selection.contrasts
    );
    let e = plan_run(&for_model(true), Start::Recipe, &Overrides::default()).unwrap_err();
    assert!(e.to_string().contains("prompt"), "{e}");
}
