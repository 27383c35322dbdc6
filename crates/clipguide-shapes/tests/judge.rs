//! The colour-layout judge on real renders: dataset images pass, wrong images fail.

use clipguide_shapes::judge::{judge, judge_suite, parse_prompt, JudgeTarget};
use clipguide_shapes::palette::Colour;
use clipguide_shapes::{render, Placement, SceneConfig, ShapesDataset, Size};
use image::{Rgb, RgbImage};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

#[test]
fn rendered_dataset_scenes_pass_for_each_uniquely_coloured_group() {
    let mut checked = 0;
    for (seed, config) in [
        (1u64, SceneConfig::default()),
        (2, SceneConfig::single_group()),
    ] {
        let ds = ShapesDataset::with_config(seed, 64, config).unwrap();
        for i in 0..250 {
            let (img, _, scene) = ds.get(i);
            for (g_index, g) in scene.groups.iter().enumerate() {
                // Two groups sharing a colour make "this colour is in that cell" ambiguous.
                if scene.groups.iter().filter(|o| o.colour == g.colour).count() > 1 {
                    continue;
                }
                let target = JudgeTarget::from_group(&scene, g_index).unwrap();
                let v = judge(&img, &target);
                assert!(v.pass, "item {i} group {g_index}: {scene:?}\n{v:?}");
                checked += 1;
            }
        }
    }
    assert!(checked >= 550, "only {checked} groups judged");
}

#[test]
fn captions_of_single_object_scenes_parse_to_their_scene() {
    let ds = ShapesDataset::with_config(4, 64, SceneConfig::single_group()).unwrap();
    for i in 0..200 {
        let (scene, caps) = ds.describe(i);
        let g = scene.groups[0];
        for c in &caps {
            let t = parse_prompt(c).unwrap_or_else(|| panic!("cannot parse {c:?}"));
            assert_eq!(t.object, g.colour, "{c}");
            assert_eq!(t.background, scene.background, "{c}");
            assert_eq!(t.shape, Some(g.shape), "{c}");
            if let Some(p) = t.placement {
                assert_eq!(p, g.placement, "{c}");
            }
            if let Some(n) = t.count {
                assert_eq!(n, g.count, "{c}");
            }
        }
    }
}

#[test]
fn suite_reference_renders_pass_at_several_sizes() {
    for prompt in judge_suite() {
        let target = parse_prompt(prompt).unwrap();
        for size in [64, 224] {
            let v = judge(&render(&target.to_scene(), size), &target);
            assert!(v.pass, "{prompt} at {size}: {v:?}");
        }
    }
}

#[test]
fn swapped_colours_fail() {
    for prompt in judge_suite() {
        let target = parse_prompt(prompt).unwrap();
        let mut scene = target.to_scene();
        scene.background = target.object;
        scene.groups[0].colour = target.background;
        let v = judge(&render(&scene, 64), &target);
        assert!(!v.pass, "{prompt} passed with swapped colours: {v:?}");
        assert!(!v.background_ok);
    }
}

#[test]
fn object_in_any_wrong_place_fails() {
    for prompt in judge_suite() {
        let target = parse_prompt(prompt).unwrap();
        for wrong in Placement::ALL {
            if Some(wrong) == target.placement {
                continue;
            }
            let mut scene = target.to_scene();
            scene.groups[0].placement = wrong;
            let v = judge(&render(&scene, 64), &target);
            assert!(
                !v.pass,
                "{prompt} passed with the object at {wrong:?}: {v:?}"
            );
            assert!(v.object_ok && v.background_ok && !v.placement_ok, "{v:?}");
        }
    }
}

#[test]
fn wrong_object_colour_and_missing_object_fail() {
    let target = parse_prompt("a red circle in the center on a blue background").unwrap();
    let mut scene = target.to_scene();
    scene.groups[0].colour = Colour::Green;
    assert!(!judge(&render(&scene, 64), &target).pass);
    scene.groups.clear();
    let v = judge(&render(&scene, 64), &target);
    assert!(!v.pass && !v.object_ok);
    // A flood of the object colour inside a thin background frame is not "a circle".
    let mut img = RgbImage::from_pixel(64, 64, Rgb(Colour::Red.rgb()));
    for (x, y, p) in img.enumerate_pixels_mut() {
        if x < 4 || y < 4 || x >= 60 || y >= 60 {
            *p = Rgb(Colour::Blue.rgb());
        }
    }
    assert!(!judge(&img, &target).pass);
}

#[test]
fn uniform_noise_fails_every_suite_prompt() {
    let mut rng = ChaCha8Rng::seed_from_u64(0);
    let mut img = RgbImage::new(64, 64);
    for p in img.pixels_mut() {
        *p = Rgb([rng.random(), rng.random(), rng.random()]);
    }
    for prompt in judge_suite() {
        let v = judge(&img, &parse_prompt(prompt).unwrap());
        assert!(!v.pass, "noise passed {prompt}: {v:?}");
    }
}

#[test]
fn prompt_without_placement_accepts_any_place() {
    let target = parse_prompt("a red circle on a blue background").unwrap();
    assert_eq!(target.placement, None);
    for place in [
        Placement::TopLeft,
        Placement::Center,
        Placement::BottomRight,
    ] {
        let mut scene = target.to_scene();
        scene.groups[0].placement = place;
        let v = judge(&render(&scene, 64), &target);
        assert!(v.pass, "{place:?}: {v:?}");
        assert_eq!(v.best_cell, place);
    }
}

#[test]
fn degenerate_images_do_not_panic() {
    let target = parse_prompt("a red circle on a blue background").unwrap();
    assert!(!judge(&RgbImage::new(0, 0), &target).pass);
    assert!(!judge(&RgbImage::new(1, 1), &target).pass);
}

#[test]
fn a_bigger_blob_of_the_object_colour_elsewhere_fails() {
    // The asked-for cell does hold a red circle, but most red is in the opposite corner.
    let target = parse_prompt("a red circle in the top left corner on a blue background").unwrap();
    let mut scene = target.to_scene();
    scene.groups[0].size = Size::Small;
    let mut decoy = scene.groups[0];
    decoy.size = Size::Large;
    decoy.placement = Placement::BottomRight;
    scene.groups.push(decoy);
    let v = judge(&render(&scene, 64), &target);
    assert!(v.object_in_region > 0.15, "{v:?}");
    assert!(!v.placement_ok && !v.pass, "{v:?}");
    // Without the decoy the same image passes.
    scene.groups.pop();
    assert!(judge(&render(&scene, 64), &target).pass);
}
