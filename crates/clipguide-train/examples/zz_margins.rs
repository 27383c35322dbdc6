use clipguide_train::judge::{judge, JudgeTarget};
use clipguide_train::shapes::{SceneConfig, ShapesDataset};
fn main() {
    let mut min_region = f32::MAX; let mut min_ratio = f32::MAX; let mut min_border = f32::MAX; let mut max_cov = 0f32; let mut min_cov = f32::MAX;
    for (seed, cfg) in [(1u64, SceneConfig::default()), (2, SceneConfig::single_group())] {
        for size in [32u32, 64, 128] {
        let ds = ShapesDataset::with_config(seed, size, cfg).unwrap();
        for i in 0..400 {
            let (img, _, scene) = ds.get(i);
            for (gi, g) in scene.groups.iter().enumerate() {
                if scene.groups.iter().filter(|o| o.colour == g.colour).count() > 1 { continue; }
                let v = judge(&img, &JudgeTarget::from_group(&scene, gi).unwrap());
                if !v.pass || v.object_in_region < 2.0 * v.object_elsewhere { println!("LOW size {size} {i} g{gi} {scene:?} {v:?}"); }
                min_region = min_region.min(v.object_in_region);
                min_ratio = min_ratio.min(v.object_in_region / v.object_elsewhere.max(1e-6));
                min_border = min_border.min(v.background_border);
                max_cov = max_cov.max(v.object_coverage); min_cov = min_cov.min(v.object_coverage);
            }
        }}
    }
    println!("min_region {min_region} min_ratio {min_ratio} min_border {min_border} cov {min_cov}..{max_cov}");
}
