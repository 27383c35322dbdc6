//! The generation recipes for a model trained on this world, and the table that says which
//! recipe each model gets (as open_clip keeps per-weights settings in its registry).
//!
//! Why these and not the general [`Recipe::fourier`]: a small CLIP trained on flat drawings
//! knows colour, place and outline, but its pixel gradients are adversarial (a spectrum or
//! pixels paint colour noise it scores above a clean drawing). These recipes let its zero-shot
//! judgement choose (palette and outline sweeps, best of nine starts, contrasts between
//! placements) and leave the gradient only the primitive's size and fine position.
//! BENCHMARKS.md has the measurements.

use clipguide_guide::{GuideError, Param, PrimitivesSpec, Recipe, Result};

use crate::palette::Palette;
use crate::placement_contrasts;

/// The gradient recipe that suits the built-in model (trained on this world).
pub const BUILTIN_MODEL_RECIPE: &str = "shapes";

/// What `generate` runs the built-in model with unless told otherwise: not a gradient recipe
/// but a search of this world's drawings ([`crate::WorldSpace`], [`crate::WORLD_SEARCH`]).
pub const BUILTIN_DEFAULT_RECIPE: &str = "world";
/// One line on the `world` recipe, for `--help`.
pub const WORLD_RECIPE_SUMMARY: &str = "the built-in model chooses a drawing of its world (colours, shape, size, count, place, objects, backdrop, style) by coordinate search, 16 starts: the built-in model's default";

/// Steps per start of the palette recipes: nine starts of 40 come first.
pub const START_STEPS: usize = 40;
/// Cutouts per step of the palette recipes: every view is the whole image, so a few suffice.
pub const CUTN: usize = 8;
/// Edge of [`shapes`]: 1.5 px at 128 px, 0.8 px at the built-in model's 64.
pub const SHAPES_EDGE: f64 = 0.012;
/// Smallest radius of [`shapes`]: a little below the dataset's small objects (radius 0.1 of
/// the side).
pub const SHAPES_MIN_RADIUS: f64 = 0.08;

/// One primitive whose colour and the background's are chosen from the world's palette, nine
/// starts (one per cell of the 3×3 grid) of [`START_STEPS`] steps, whole-image views without
/// flips (so "left" stays left) and 6 px jitter, Adam at a constant 0.3, ending on the best
/// image seen, and a prompt that names a placement contrasted with its eight other placements.
/// For a model that knows colour and place but hardly outlines.
pub fn discs() -> Recipe {
    let mut r = Recipe::fourier();
    r.name = "discs";
    r.summary = "one palette disc, nine starts, whole-image views: for a small CLIP that knows colour and place only";
    r.steps = 200;
    r.param = Param::Primitives(PrimitivesSpec {
        count: 1,
        palette: Some(Palette::srgb()),
        ..PrimitivesSpec::new(1)
    });
    r.selection.starts = 9;
    r.selection.start_steps = START_STEPS;
    r.selection.keep_best = true;
    r.lr = clipguide_guide::LrSchedule::Constant { lr: 0.3 };
    r.cutouts.cutn = CUTN;
    r.cutouts.style.min_size_frac = 1.0;
    r.cutouts.style.flip_prob = 0.0;
    r.cutouts.style.jitter = 6;
    r.contrasts = Some(placement_contrasts);
    r
}

/// [`discs`] with each primitive's outline chosen by the model too, a sharp edge
/// ([`SHAPES_EDGE`]) and a smallest radius ([`SHAPES_MIN_RADIUS`]): the built-in model's recipe.
///
/// Why: such a model scores a disc low for "a white star", and the best-scoring image is then
/// a disc shrunk to a few pixels; with outlines to choose from it draws the star, but a ring's
/// band and a star's arms are thinner than the discs' soft edge, so no pixel reaches the colour
/// the prompt names unless the edge is sharp.
pub fn shapes() -> Recipe {
    let mut r = discs();
    r.name = "shapes";
    r.summary = "palette primitives whose outlines the model chooses: for a model that tells outlines apart (the built-in one)";
    if let Param::Primitives(spec) = &mut r.param {
        spec.outlines = true;
        spec.edge = SHAPES_EDGE;
        spec.min_radius = SHAPES_MIN_RADIUS;
    }
    r
}

/// Every recipe a run can start from: this world's and the general one.
pub fn all() -> Vec<Recipe> {
    vec![shapes(), discs(), Recipe::fourier()]
}

/// The recipe called `name`.
pub fn by_name(name: &str) -> Result<Recipe> {
    all().into_iter().find(|r| r.name == name).ok_or_else(|| {
        let names: Vec<&str> = all().iter().map(|r| r.name).collect();
        GuideError::invalid(
            "recipe",
            format!("`{name}`: expected one of {}", names.join(", ")),
        )
    })
}

/// The recipe for a model: the built-in model's ([`BUILTIN_MODEL_RECIPE`]) for it, the
/// general one for any other CLIP.
pub fn for_model(builtin: bool) -> Recipe {
    if builtin {
        by_name(BUILTIN_MODEL_RECIPE).expect("the built-in model's recipe is in the table")
    } else {
        Recipe::fourier()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clipguide_guide::PromptSchedule;

    #[test]
    fn shapes_is_discs_with_sharp_chosen_outlines() {
        let prompts = PromptSchedule::single("a red star").unwrap();
        let c = shapes().config(prompts.clone());
        c.validate().unwrap();
        let mut d = discs().config(prompts);
        let (cs, ds) = (c.param.primitives().unwrap(), d.param.primitives().unwrap());
        assert!(cs.outlines && !ds.outlines);
        assert!(cs.edge < ds.edge);
        assert!(cs.min_radius > ds.min_radius);
        d.param = c.param.clone();
        assert_eq!(c, d, "nothing else differs");
    }

    #[test]
    fn discs_is_one_palette_disc_with_nine_starts_and_placement_contrasts() {
        let c = discs().config(PromptSchedule::single("a red circle at the top").unwrap());
        c.validate().unwrap();
        let spec = c.param.primitives().unwrap();
        assert_eq!((spec.count, c.selection.starts), (1, 9));
        assert_eq!(spec.palette.as_deref(), Some(&Palette::srgb()[..]));
        let cut = c.schedule.cutouts_at(0);
        assert_eq!(
            (cut.style.min_size_frac, cut.style.flip_prob, cut.cutn),
            (1.0, 0.0, CUTN)
        );
        assert_eq!((c.width, c.height, c.schedule.steps), (256, 256, 200));
        assert_eq!(
            c.selection.contrasts.len(),
            8,
            "{:?}",
            c.selection.contrasts
        );
    }

    #[test]
    fn the_table_names_every_recipe_once_and_the_builtin_model_gets_shapes() {
        let names: Vec<&str> = all().iter().map(|r| r.name).collect();
        assert_eq!(names, ["shapes", "discs", "fourier"]);
        assert_eq!(for_model(true).name, "shapes");
        assert_eq!(for_model(false).name, "fourier");
        let e = by_name("vqgan").unwrap_err().to_string();
        assert!(
            e.contains("vqgan") && e.contains("shapes, discs, fourier"),
            "{e}"
        );
    }
}
