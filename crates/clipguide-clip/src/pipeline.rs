//! `Clip`: a model with its tokenizer and image processor, and the everyday operations on top
//! (embed, similarity, zero-shot classification) that the CLI and examples call.

use crate::error::{ClipError, Result};
use crate::model::{cosine_matrix, ClipModel, Family};
use crate::openclip::OpenClipOptions;
use crate::ops::Precision;
use crate::preprocess::ImageProcessor;
use crate::tokenizer::{ClipTokenizer, Padding};
use candle_core::{Device, Tensor, D};
use image::RgbImage;
use std::path::Path;

#[derive(Debug, Clone)]
pub struct Clip {
    pub model: ClipModel,
    pub tokenizer: ClipTokenizer,
    pub processor: ImageProcessor,
    /// The precision [`Self::embed_images`] runs at: `F32` when loaded; `F16` or `Bf16` for
    /// indexing and evaluating many images on CPUs with AVX512-FP16 or AVX512-BF16 (see
    /// [`Precision`]). Gradients, and so
    /// generation's guidance, are always f32.
    pub embed_precision: Precision,
}

/// Cosines, logits and per-image softmax over texts.
#[derive(Debug, Clone)]
pub struct Similarity {
    /// [images][texts]
    pub cosine: Vec<Vec<f32>>,
    pub logits: Vec<Vec<f32>>,
    pub probs: Vec<Vec<f32>>,
}

impl Clip {
    /// Loads a checkpoint folder in either layout (see `hub::resolve` for hub ids).
    pub fn load(dir: &Path, device: &Device) -> Result<Self> {
        Ok(Self::load_with(dir, device, &OpenClipOptions::default())?.0)
    }

    /// As [`Self::load`], with what the caller knows about an OpenCLIP checkpoint (an activation
    /// override, the hub id); also returns lines worth telling the user (which layout was used,
    /// which activation an OpenCLIP config implied).
    pub fn load_with(
        dir: &Path,
        device: &Device,
        opts: &OpenClipOptions,
    ) -> Result<(Self, Vec<String>)> {
        let (mut model, family, note) = ClipModel::load_with(dir, device, opts)?;
        let mut notes: Vec<String> = note.into_iter().collect();
        let (tokenizer, processor) = match family {
            Family::Transformers => (
                ClipTokenizer::for_checkpoint(dir)?,
                ImageProcessor::for_checkpoint(dir, model.config().vision.image_size),
            ),
            Family::OpenClip(oc) => {
                notes.push(format!("OpenCLIP checkpoint: {}", oc.activation.describe()));
                (oc.tokenizer(dir)?, oc.processor)
            }
            Family::Rinna(rc) => {
                let tok = crate::rinna::tokenizer(dir)?;
                if tok.vocab_size() > rc.bert.vocab_size {
                    return Err(ClipError::BadConfig {
                        path: dir.join("config.json"),
                        detail: format!(
                            "the tokenizer has {} pieces but text_config.vocab_size is {}: this spiece.model belongs to another model (rinna's use rinna/japanese-roberta-base's)",
                            tok.vocab_size(),
                            rc.bert.vocab_size
                        ),
                    });
                }
                model.set_text_pad_id(tok.pad_id());
                (tok, crate::rinna::processor(rc.clip.vision.image_size))
            }
        };
        Ok((
            Self {
                model,
                tokenizer,
                processor,
                embed_precision: Precision::F32,
            },
            notes,
        ))
    }

    /// Opens an image file as this checkpoint's reference pipeline sees it
    /// ([`ImageProcessor::load_image`]).
    pub fn load_image(&self, path: &Path) -> Result<RgbImage> {
        self.processor.load_image(path)
    }

    /// An image file for embedding among many: large JPEGs decoded at a reduced scale
    /// ([`ImageProcessor::load_image_reduced`]).
    pub fn load_image_reduced(&self, path: &Path) -> Result<RgbImage> {
        self.processor.load_image_reduced(path)
    }

    pub fn device(&self) -> &Device {
        self.model.device()
    }

    /// Projected text embeddings [N, P]. Pads to the longest prompt: CLIP's causal mask makes the
    /// EOS state independent of later positions, and BERT's attention mask leaves padding out, so
    /// this equals padding to 77, for less work.
    pub fn embed_texts<S: AsRef<str>>(&self, texts: &[S]) -> Result<Tensor> {
        if texts.is_empty() {
            return Err(ClipError::BadInput {
                detail: "no texts given: pass at least one".into(),
            });
        }
        let batch = self
            .tokenizer
            .encode_batch(texts, Padding::Longest, self.device())?;
        self.model.text_features(&batch.ids)
    }

    /// Projected image embeddings [N, P], at [`Self::embed_precision`].
    pub fn embed_images(&self, images: &[RgbImage]) -> Result<Tensor> {
        let px = self.processor.preprocess_batch(images, self.device())?;
        self.model.image_features_with(&px, self.embed_precision)
    }

    pub fn similarity(&self, image_embeds: &Tensor, text_embeds: &Tensor) -> Result<Similarity> {
        let cos = cosine_matrix(image_embeds, text_embeds)?;
        let logits = (&cos * self.model.logit_scale()? as f64)?;
        let probs = candle_nn::ops::softmax(&logits, D::Minus1)?;
        Ok(Similarity {
            cosine: cos.to_vec2()?,
            logits: logits.to_vec2()?,
            probs: probs.to_vec2()?,
        })
    }

    /// Zero-shot classification: labels ranked by probability (label, prob), best first.
    pub fn classify(
        &self,
        image: &RgbImage,
        labels: &[String],
        template: &str,
    ) -> Result<Vec<(String, f32)>> {
        if !template.contains("{}") {
            return Err(ClipError::BadInput {
                detail: format!("template {template:?} has no {{}} placeholder for the label, e.g. \"a photo of a {{}}\""),
            });
        }
        let prompts: Vec<String> = labels.iter().map(|l| template.replace("{}", l)).collect();
        let t = self.embed_texts(&prompts)?;
        let i = self.embed_images(std::slice::from_ref(image))?;
        let sim = self.similarity(&i, &t)?;
        let mut ranked: Vec<(String, f32)> = labels
            .iter()
            .cloned()
            .zip(sim.probs[0].iter().copied())
            .collect();
        ranked.sort_by(|a, b| b.1.total_cmp(&a.1));
        Ok(ranked)
    }
}
