//! Training behaviour through the public API: bit-exact resume, HF-layout checkpoints that load
//! back, folder datasets, and that optimisation actually lowers the contrastive loss.

use candle_core::Device;
use clipguide_clip::{Clip, ClipModel};
use clipguide_train::trainer::{DataSource, TrainConfig, Trainer};

fn tiny_config(steps: usize) -> TrainConfig {
    TrainConfig {
        steps,
        batch: 6,
        image_size: 32,
        warmup: 2,
        checkpoint_every: 1000,
        ..TrainConfig::default()
    }
}

#[test]
fn resume_is_bit_exact() {
    let dev = Device::Cpu;
    let straight = tempfile::tempdir().unwrap();
    let split = tempfile::tempdir().unwrap();
    let mut t = Trainer::new(tiny_config(4), DataSource::shapes(3, 32).unwrap(), &dev).unwrap();
    for _ in 0..4 {
        t.train_step().unwrap();
    }
    t.save(straight.path()).unwrap();

    let mut t = Trainer::new(tiny_config(4), DataSource::shapes(3, 32).unwrap(), &dev).unwrap();
    for _ in 0..2 {
        t.train_step().unwrap();
    }
    t.save(split.path()).unwrap();
    drop(t);
    // What the CLI rebuilds the data from on --resume: the saved run's size and seed.
    let saved = Trainer::saved_config(split.path()).unwrap();
    assert_eq!((saved.image_size, saved.steps), (32, 4));
    let mut t =
        Trainer::resume(split.path(), DataSource::shapes(3, 32).unwrap(), &dev, None).unwrap();
    assert_eq!(t.step_index(), 2);
    for _ in 0..2 {
        t.train_step().unwrap();
    }
    t.save(split.path()).unwrap();
    let a = std::fs::read(straight.path().join("model.safetensors")).unwrap();
    let b = std::fs::read(split.path().join("model.safetensors")).unwrap();
    assert!(a == b, "resumed weights differ from an uninterrupted run");

    // The checkpoint is an ordinary HF-layout folder that the model crate loads.
    let clip = Clip::load(split.path(), &dev).unwrap();
    let e = clip
        .embed_texts(&["a red circle on a blue background"])
        .unwrap();
    assert_eq!(e.dims(), &[1, 128]);
    let cfg: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(split.path().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(cfg["model_type"], "clip");
}

#[test]
fn training_lowers_the_loss_and_seeds_matter() {
    let dev = Device::Cpu;
    // Six fixed pairs seen every step: a model that learns at all drives the loss down.
    let data = tempfile::tempdir().unwrap();
    clipguide_shapes::write_dataset(data.path(), 6, 5, 32).unwrap();
    let mut cfg = tiny_config(80);
    cfg.lr = 1e-3;
    cfg.augment.noise_std = 0.0;
    let mut t = Trainer::new(cfg.clone(), DataSource::folder(data.path()).unwrap(), &dev).unwrap();
    let first: Vec<f32> = (0..3).map(|_| t.train_step().unwrap().loss).collect();
    let mut last = vec![];
    for _ in 3..80 {
        last.push(t.train_step().unwrap().loss);
    }
    eprintln!("losses: {first:?} … {:?}", &last[last.len() - 5..]);
    let early = first.iter().sum::<f32>() / 3.0;
    let late = last[last.len() - 5..].iter().sum::<f32>() / 5.0;
    assert!(late < early * 0.7, "loss did not fall: {early} → {late}");

    // Same seed, same initial weights; another seed, other weights.
    let w = |seed: u64| {
        let mut c = tiny_config(1);
        c.seed = seed;
        let t = Trainer::new(c, DataSource::shapes(5, 32).unwrap(), &dev).unwrap();
        let dir = tempfile::tempdir().unwrap();
        t.save(dir.path()).unwrap();
        std::fs::read(dir.path().join("model.safetensors")).unwrap()
    };
    assert!(w(1) == w(1));
    assert!(w(1) != w(2));
}

#[test]
fn trains_from_a_folder_of_pairs() {
    let dev = Device::Cpu;
    let data = tempfile::tempdir().unwrap();
    clipguide_shapes::write_dataset(data.path(), 8, 1, 40).unwrap();
    let src = DataSource::folder(data.path()).unwrap();
    let mut t = Trainer::new(tiny_config(1), src, &dev).unwrap();
    let s = t.train_step().unwrap();
    assert!(s.loss.is_finite());

    // image + .txt pairs work too; an empty folder is a clear error.
    let pairs = tempfile::tempdir().unwrap();
    for i in 0..3 {
        image::RgbImage::from_pixel(20, 30, image::Rgb([i * 80, 0, 0]))
            .save(pairs.path().join(format!("{i}.png")))
            .unwrap();
        std::fs::write(
            pairs.path().join(format!("{i}.txt")),
            format!("caption {i}\n"),
        )
        .unwrap();
    }
    assert!(
        matches!(DataSource::folder(pairs.path()).unwrap(), DataSource::Folder(p) if p.len() == 3)
    );
    let empty = tempfile::tempdir().unwrap();
    let e = DataSource::folder(empty.path()).err().unwrap().to_string();
    assert!(e.contains("captions.jsonl"), "{e}");
    let _ = ClipModel::load; // the loader used by Clip::load above
}
