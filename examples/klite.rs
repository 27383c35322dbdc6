//! K-LITE with the built-in model: classify the shapes world's shapes and colours under words the
//! model never saw in training (synonyms such as "disc", "crimson"), with and without a short
//! definition written in its own vocabulary ("disc, a circle"), each with one template and with
//! the CLIP paper's 80-template ensemble; and, for reference, under the words it was trained on.
//!
//! Held-out scenes: seed 9100 (no other use), one object group, plain background.
//! Each synonym set k uses the k-th synonym of every class (cycling), so every synonym is used;
//! accuracy is averaged over the sets.
//!
//! `cargo run --release --example klite -- [IMAGES]` (default 300)

use candle_core::Device;
use clipguide_clip::Clip;
use clipguide_shapes::palette::Colour;
use clipguide_shapes::{SceneConfig, Shape, ShapesDataset};
use clipguide_zeroshot::prompts::{
    class_embeddings, image_embeddings, ClassPrompt, Templates, CLIP80,
};

/// (class word the model knows, [(synonym it never saw, definition in its vocabulary)]).
const SHAPES: [(&str, &[(&str, &str)]); 6] = [
    (
        "circle",
        &[
            ("disc", "a circle"),
            ("orb", "a round circle"),
            ("ball", "a circle"),
        ],
    ),
    (
        "square",
        &[
            ("box", "a square"),
            ("block", "a square"),
            ("tile", "a small square"),
        ],
    ),
    (
        "triangle",
        &[("pyramid", "a triangle"), ("wedge", "a triangle")],
    ),
    (
        "star",
        &[("pentagram", "a star"), ("asterisk", "a small star")],
    ),
    ("cross", &[("plus sign", "a cross"), ("plus", "a cross")]),
    (
        "ring",
        &[
            ("doughnut", "a ring"),
            ("hoop", "a ring"),
            ("bagel", "a ring"),
        ],
    ),
];

const COLOURS: [(&str, &[(&str, &str)]); 12] = [
    ("red", &[("crimson", "red"), ("scarlet", "red")]),
    ("green", &[("emerald", "green"), ("lime", "green")]),
    ("blue", &[("azure", "blue"), ("navy", "blue")]),
    ("yellow", &[("golden", "yellow"), ("lemon", "yellow")]),
    ("orange", &[("tangerine", "orange"), ("amber", "orange")]),
    ("purple", &[("violet", "purple"), ("lavender", "purple")]),
    ("white", &[("ivory", "white"), ("snow", "white")]),
    ("black", &[("ebony", "black"), ("jet", "black")]),
    ("pink", &[("rose", "pink"), ("salmon", "pink")]),
    ("cyan", &[("turquoise", "cyan"), ("aqua", "cyan")]),
    ("brown", &[("chocolate", "brown"), ("chestnut", "brown")]),
    ("gray", &[("silver", "gray"), ("ash", "gray")]),
];

#[derive(Clone, Copy)]
enum Naming {
    Trained,
    Synonym,
    SynonymDefined,
}

fn accuracy(
    clip: &Clip,
    images: &candle_core::Tensor,
    truth: &[usize],
    classes: &[ClassPrompt],
    templates: &Templates,
) -> Result<f32, Box<dyn std::error::Error>> {
    let text = class_embeddings(clip, classes, templates)?;
    let cos = images.matmul(&text.t()?)?.to_vec2::<f32>()?;
    let hits = cos
        .iter()
        .zip(truth)
        .filter(|(row, &t)| row.iter().all(|&v| v <= row[t]))
        .count();
    Ok(hits as f32 / truth.len() as f32)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let n: usize = std::env::args()
        .nth(1)
        .map(|a| a.parse())
        .transpose()?
        .unwrap_or(300);
    let clip = Clip::builtin(&Device::Cpu)?;
    let ds = ShapesDataset::with_config(9100, 64, SceneConfig::single_group())?;
    let (mut imgs, mut shape_truth, mut colour_truth) = (Vec::new(), Vec::new(), Vec::new());
    for i in 0..n {
        let (img, _, scene) = ds.get(i);
        let g = &scene.groups[0];
        shape_truth.push(Shape::ALL.iter().position(|s| *s == g.shape).unwrap());
        colour_truth.push(Colour::ALL.iter().position(|c| *c == g.colour).unwrap());
        imgs.push(img);
    }
    let images = image_embeddings(&clip, &imgs)?;
    let synonyms = SHAPES.iter().map(|s| s.1.len()).sum::<usize>()
        + COLOURS.iter().map(|c| c.1.len()).sum::<usize>();
    println!("{n} held-out scenes, {synonyms} synonyms\n");
    println!("| task | naming | one template | clip80 ensemble |");
    println!("|---|---|---|---|");
    for (task, table, single, truth) in [
        ("shape", &SHAPES[..], "a {}", &shape_truth),
        ("colour", &COLOURS[..], "a {} shape", &colour_truth),
    ] {
        let one = Templates::single(single)?;
        let ensemble = Templates::from_list(
            CLIP80
                .lines()
                .map(|t| t.replace("{}", single.trim_start_matches("a ")).to_string())
                .collect(),
        )?;
        for (name, naming) in [
            ("trained word", Naming::Trained),
            ("synonym", Naming::Synonym),
            ("synonym + definition", Naming::SynonymDefined),
        ] {
            let sets = match naming {
                Naming::Trained => 1,
                _ => table.iter().map(|c| c.1.len()).max().unwrap_or(1),
            };
            let mut acc = [0.0f32; 2];
            for k in 0..sets {
                let classes: Vec<ClassPrompt> = table
                    .iter()
                    .map(|(word, syns)| {
                        let (syn, def) = syns[k % syns.len()];
                        match naming {
                            Naming::Trained => ClassPrompt::new(word),
                            Naming::Synonym => ClassPrompt::new(syn),
                            Naming::SynonymDefined => ClassPrompt::with_definition(syn, def),
                        }
                    })
                    .collect();
                acc[0] += accuracy(&clip, &images, truth, &classes, &one)? / sets as f32;
                acc[1] += accuracy(&clip, &images, truth, &classes, &ensemble)? / sets as f32;
            }
            println!(
                "| {task} | {name} | {:.1}% | {:.1}% |",
                100.0 * acc[0],
                100.0 * acc[1]
            );
        }
    }
    Ok(())
}
