//! The design card's prompts with the built-in model, offline: "sunflower oil painting",
//! 「ひまわりの油絵」, "Kyoto at the North Pole" and 「北極の京都」 at 256² through the `world`
//! recipe (as `clipguide generate` runs it), each printed with the model's own zero-shot reading
//! of the image it made (which object, which style) and, for the sunflowers, the colour-structure
//! test (yellow petals around a brown centre, `clipguide_shapes::find_sunflower`).
//!
//! `cargo run --release --example world_gallery -- [--model DIR] [--out docs]`

use std::path::PathBuf;
use std::sync::atomic::AtomicBool;

use candle_core::Device;
use clipguide_clip::Clip;
use clipguide_guide::{search, SearchSettings};
use clipguide_shapes::{draw_content, find_sunflower, ObjectKind, Style, WorldSpace, WORLD_SEARCH};

const PROMPTS: [(&str, &str); 4] = [
    ("sunflower-oil-painting", "sunflower oil painting"),
    ("himawari-no-aburae", "ひまわりの油絵"),
    ("kyoto-at-the-north-pole", "Kyoto at the North Pole"),
    ("hokkyoku-no-kyoto", "北極の京都"),
];

fn main() -> Result<(), Box<dyn std::error::Error>> {
    // SAFETY: first thing in main, before any thread starts.
    unsafe { clipguide_clip::tune_process() };
    let (mut model, mut out) = (None::<PathBuf>, PathBuf::from("docs"));
    let mut args = std::env::args().skip(1);
    while let Some(a) = args.next() {
        let mut value = || args.next().ok_or(format!("{a} needs a value"));
        match a.as_str() {
            "--model" => model = Some(value()?.into()),
            "--out" => out = value()?.into(),
            other => {
                return Err(format!(
                    "unknown argument {other}; usage: world_gallery [--model DIR] [--out DIR]"
                )
                .into())
            }
        }
    }
    let clip = match &model {
        Some(m) => Clip::load(m, &Device::Cpu)?,
        None => Clip::builtin(&Device::Cpu)?,
    };
    std::fs::create_dir_all(&out)?;
    let objects: Vec<String> = ObjectKind::ALL
        .iter()
        .map(|k| k.name().to_string())
        .collect();
    let styles: Vec<String> = Style::ALL.iter().map(|s| s.name().to_string()).collect();
    let never = AtomicBool::new(false);
    for (file, prompt) in PROMPTS {
        let t0 = std::time::Instant::now();
        let found = search(
            &clip,
            &[(prompt.to_string(), 1.0)],
            &WorldSpace,
            &SearchSettings { ..WORLD_SEARCH },
            &mut |_| {},
            &never,
        )?;
        let image = draw_content(&found.point, 256);
        let path = out.join(format!("{file}.png"));
        image.save(&path)?;
        let object = clip.classify(&image, &objects, "a picture of a {}")?;
        let style = clip.classify(&image, &styles, "{} of a picture")?;
        let sunflower = find_sunflower(&image);
        println!(
            "{prompt}\t{}\t{:.1}s\tobject: {} ({:.0} %), {} ({:.0} %)\tstyle: {} ({:.0} %)\tsunflower test: {}",
            path.display(),
            t0.elapsed().as_secs_f64(),
            object[0].0,
            100.0 * object[0].1,
            object[1].0,
            100.0 * object[1].1,
            style[0].0,
            100.0 * style[0].1,
            match sunflower {
                Some(s) => format!(
                    "found (centre radius {:.0} px, petals around {:.0} %)",
                    s.centre_radius,
                    100.0 * s.petal_coverage
                ),
                None => "not found".to_string(),
            }
        );
    }
    Ok(())
}
