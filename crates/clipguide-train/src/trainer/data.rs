//! Where the training pairs come from ([`DataSource`]) and how a step's batch is drawn: from
//! streams seeded by (seed, step), so that resuming at any step replays it.

use super::augment::augment;
use super::error::{Result, TrainError};
use super::heads::aux_labels;
use super::Trainer;
use candle_core::Tensor;
use clipguide_clip::Padding;
use clipguide_shapes::{SceneConfig, ShapesDataset, WorldMix};
use image::RgbImage;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use std::path::{Path, PathBuf};

/// Where the data comes from.
pub enum DataSource {
    /// Procedural shapes, streamed (item i of `seed` is rendered on demand).
    Shapes(ShapesDataset),
    /// A folder of image + caption pairs (`captions.jsonl` with {"file","captions"} or
    /// `name.png` + `name.txt`).
    Folder(Vec<(PathBuf, Vec<String>)>),
}

impl DataSource {
    pub fn shapes(seed: u64, size: u32) -> Result<Self> {
        Ok(Self::Shapes(ShapesDataset::with_config(
            seed,
            size,
            SceneConfig::default(),
        )?))
    }

    /// Reads a folder of pairs: captions.jsonl, or image files with a same-named .txt.
    pub fn folder(dir: &Path) -> Result<Self> {
        let jsonl = dir.join(clipguide_shapes::CAPTIONS_FILE);
        let mut pairs = vec![];
        if jsonl.exists() {
            for rec in clipguide_shapes::read_captions(&jsonl)? {
                pairs.push((dir.join(&rec.file), rec.captions));
            }
        } else {
            let rd = std::fs::read_dir(dir).map_err(|e| TrainError::Io {
                path: dir.to_path_buf(),
                source: e,
            })?;
            let mut files: Vec<PathBuf> = rd.filter_map(|e| e.ok().map(|e| e.path())).collect();
            files.sort();
            for f in files {
                let ext = f
                    .extension()
                    .and_then(|e| e.to_str())
                    .unwrap_or("")
                    .to_ascii_lowercase();
                if !["png", "jpg", "jpeg", "webp", "bmp"].contains(&ext.as_str()) {
                    continue;
                }
                if let Ok(t) = std::fs::read_to_string(f.with_extension("txt")) {
                    let caps: Vec<String> = t
                        .lines()
                        .map(str::trim)
                        .filter(|l| !l.is_empty())
                        .map(String::from)
                        .collect();
                    if !caps.is_empty() {
                        pairs.push((f, caps));
                    }
                }
            }
        }
        if pairs.is_empty() {
            return Err(TrainError::Invalid(format!(
                "{}: no image/caption pairs found. Provide captions.jsonl (lines of {{\"file\": ..., \"captions\": [...]}}) or image files with a .txt caption file of the same name.",
                dir.display()
            )));
        }
        Ok(Self::Folder(pairs))
    }

    fn item(&self, index: usize, size: usize, mix: &WorldMix) -> Result<(RgbImage, Vec<String>)> {
        match self {
            Self::Shapes(ds) => {
                let item = ds.world_item(index, mix);
                Ok((item.image, item.captions))
            }
            Self::Folder(pairs) => {
                let (path, caps) = &pairs[index % pairs.len()];
                let img = clipguide_clip::load_image(path)?;
                let p = clipguide_clip::ImageProcessor::for_size(size);
                Ok((p.resize_and_crop(&img), caps.clone()))
            }
        }
    }
}

/// A generator that depends only on (seed, step, stream): resuming at any step replays it.
fn rng_for(seed: u64, step: usize, stream: u64) -> ChaCha8Rng {
    let mut r = ChaCha8Rng::seed_from_u64(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) ^ step as u64);
    r.set_stream(stream);
    r
}

impl Trainer {
    /// Pixels [B,3,S,S] in [0,1], token ids, and the aux labels of the batch's last items
    /// (the hard negatives).
    pub(super) fn batch(&self, step: usize) -> Result<(Tensor, Tensor, Vec<[u32; 3]>)> {
        let c = &self.config;
        let mut rng = rng_for(c.seed, step, 1);
        let s = c.image_size;
        let mut pixels = Vec::with_capacity(c.batch * 3 * s * s);
        let mut caps = Vec::with_capacity(c.batch);
        // Hard negatives come from their own stream, so the ordinary items stay those of a run
        // without them.
        let hard = match &self.data {
            DataSource::Shapes(_) => {
                let mut hrng = rng_for(c.seed, step, 2);
                let hn = &c.hard_negatives;
                let items = hn.items(hn.count(c.batch), &mut hrng);
                items
                    .into_iter()
                    .map(|item| {
                        let language = hn.language(&mut hrng);
                        let captions = item.captions(language, &mut hrng);
                        (
                            c.world.draw(&item.scene, s as u32, &mut hrng),
                            captions,
                            aux_labels(&item.scene),
                        )
                    })
                    .collect::<Vec<_>>()
            }
            DataSource::Folder(_) => vec![],
        };
        let labels: Vec<[u32; 3]> = hard.iter().filter_map(|h| h.2).collect();
        let plain = c.batch - hard.len();
        for k in 0..plain {
            let (img, captions) = self.data.item(step * c.batch + k, s, &c.world)?;
            pixels.extend(augment(&img, &c.augment, &mut rng));
            caps.push(captions[rng.random_range(0..captions.len())].clone());
        }
        for (img, captions, _) in hard {
            pixels.extend(augment(&img, &c.augment, &mut rng));
            caps.push(captions[rng.random_range(0..captions.len())].clone());
        }
        if c.made_up_words > 0.0 {
            // Their own stream: images and caption choices stay those of a run without them.
            let mut mrng = rng_for(c.seed, step, 3);
            for cap in caps.iter_mut() {
                if mrng.random_bool(c.made_up_words) {
                    *cap = clipguide_shapes::with_made_up_words(cap, &mut mrng);
                }
            }
        }
        let px = Tensor::from_vec(pixels, (c.batch, 3, s, s), &self.device)?;
        let ids = self
            .tokenizer
            .encode_batch(&caps, Padding::Longest, &self.device)?
            .ids;
        Ok((px, ids, labels))
    }
}
