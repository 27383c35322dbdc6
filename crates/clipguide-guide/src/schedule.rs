//! Guidance schedules as data: prompts with weights that change between keyframes, linear
//! ramps for cutn/cut_pow/weights, and the TOML file format holding a whole run.
//!
//! Malformed input is an error that names the field (and, for shorthand strings, the
//! column) together with the expected form; nothing is silently dropped.

use std::fmt;
use std::marker::PhantomData;
use std::path::Path;
use std::str::FromStr;

use serde::de::{self, IntoDeserializer, SeqAccess, Visitor};
use serde::{Deserialize, Deserializer, Serialize, Serializer};

use crate::augment::{CutoutStyle, Cutouts};
use crate::error::{GuideError, Result};
use crate::loss::{Distance, TvKind};
use crate::optim::LrSchedule;

/// Values that can be interpolated linearly between keyframes.
pub trait Interpolate: Copy {
    /// `a + (b - a)·t` for t in [0, 1].
    fn lerp(a: Self, b: Self, t: f64) -> Self;
}

impl Interpolate for f32 {
    fn lerp(a: Self, b: Self, t: f64) -> Self {
        (a as f64 + (b as f64 - a as f64) * t) as f32
    }
}

impl Interpolate for f64 {
    fn lerp(a: Self, b: Self, t: f64) -> Self {
        a + (b - a) * t
    }
}

/// Counts (e.g. cutn) interpolate and round to the nearest integer.
impl Interpolate for usize {
    fn lerp(a: Self, b: Self, t: f64) -> Self {
        (a as f64 + (b as f64 - a as f64) * t).round() as usize
    }
}

/// A value ramped over steps: linear between `(step, value)` points, held before the first
/// and after the last. In TOML either a number (constant) or `[[step, value], ...]`.
#[derive(Clone, Debug, PartialEq)]
pub struct Keyframes<T> {
    points: Vec<(usize, T)>,
}

impl<T: Interpolate> Keyframes<T> {
    /// The same value at every step.
    pub fn constant(value: T) -> Self {
        Self {
            points: vec![(0, value)],
        }
    }

    /// Keyframes from `(step, value)` points with strictly increasing steps.
    pub fn new(points: Vec<(usize, T)>) -> Result<Self> {
        validate_steps(points.iter().map(|p| p.0))
            .map_err(|problem| GuideError::invalid("keyframes", problem))?;
        Ok(Self { points })
    }

    /// The value at `step`.
    pub fn at(&self, step: usize) -> T {
        let after = self.points.partition_point(|p| p.0 <= step);
        if after == 0 {
            return self.points[0].1;
        }
        if after == self.points.len() {
            return self.points[after - 1].1;
        }
        let ((s0, v0), (s1, v1)) = (self.points[after - 1], self.points[after]);
        T::lerp(v0, v1, (step - s0) as f64 / (s1 - s0) as f64)
    }

    /// The `(step, value)` points.
    pub fn points(&self) -> &[(usize, T)] {
        &self.points
    }
}

fn validate_steps(steps: impl Iterator<Item = usize>) -> std::result::Result<(), String> {
    let mut previous: Option<usize> = None;
    let mut any = false;
    for s in steps {
        if let Some(p) = previous {
            if s <= p {
                return Err(format!(
                    "step {s} follows step {p}; expected [[step, value], ...] with strictly increasing steps"
                ));
            }
        }
        previous = Some(s);
        any = true;
    }
    if !any {
        return Err(
            "no keyframes; expected a number or [[step, value], ...] with at least one pair".into(),
        );
    }
    Ok(())
}

impl<T: Serialize> Serialize for Keyframes<T> {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        serializer.collect_seq(self.points.iter())
    }
}

struct KeyframesVisitor<T>(PhantomData<T>);

impl<'de, T: Deserialize<'de> + Interpolate> Visitor<'de> for KeyframesVisitor<T> {
    type Value = Keyframes<T>;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        f.write_str("a number or [[step, value], ...] with increasing steps")
    }

    fn visit_i64<E: de::Error>(self, v: i64) -> std::result::Result<Self::Value, E> {
        Ok(Keyframes::constant(T::deserialize(v.into_deserializer())?))
    }

    fn visit_u64<E: de::Error>(self, v: u64) -> std::result::Result<Self::Value, E> {
        Ok(Keyframes::constant(T::deserialize(v.into_deserializer())?))
    }

    fn visit_f64<E: de::Error>(self, v: f64) -> std::result::Result<Self::Value, E> {
        Ok(Keyframes::constant(T::deserialize(v.into_deserializer())?))
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut points: Vec<(usize, T)> = Vec::new();
        while let Some(p) = seq.next_element()? {
            points.push(p);
        }
        validate_steps(points.iter().map(|p| p.0)).map_err(de::Error::custom)?;
        Ok(Keyframes { points })
    }
}

impl<'de, T: Deserialize<'de> + Interpolate> Deserialize<'de> for Keyframes<T> {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(KeyframesVisitor(PhantomData))
    }
}

/// One prompt: text, weight (negative pushes away) and an optional step from which it stops.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct PromptSpec {
    /// The text given to CLIP.
    pub text: String,
    /// Loss weight; 1 by default.
    #[serde(default = "one")]
    pub weight: f32,
    /// The prompt contributes nothing from this step on.
    #[serde(default)]
    pub stop: Option<usize>,
}

/// Serde default for weights.
pub(crate) fn one() -> f32 {
    1.0
}

const PROMPT_FORM: &str =
    "text[:weight[:stop]], e.g. `a red circle:1.5:200`; every `:` starts a field, so write \\: for a colon inside the text";

/// Splits at separators not preceded by a backslash; returns (piece, char offset of piece).
/// `\` before the separator is kept, so the piece can be split again or unescaped later.
fn split_unescaped(s: &str, sep: char) -> Vec<(String, usize)> {
    let mut pieces = vec![(String::new(), 0)];
    let mut chars = s.chars().enumerate().peekable();
    while let Some((i, c)) = chars.next() {
        if c == '\\' && chars.peek().map(|&(_, n)| n) == Some(sep) {
            let (_, n) = chars.next().expect("peeked");
            pieces.last_mut().expect("non-empty").0.push('\\');
            pieces.last_mut().expect("non-empty").0.push(n);
        } else if c == sep {
            pieces.push((String::new(), i + 1));
        } else {
            pieces.last_mut().expect("non-empty").0.push(c);
        }
    }
    pieces
}

struct ParseCtx<'a> {
    input: &'a str,
    offset: usize,
    /// Inside a schedule segment, where `\|` is a literal bar.
    in_schedule: bool,
}

impl ParseCtx<'_> {
    fn err(
        &self,
        column: usize,
        field: &'static str,
        found: &str,
        expected: &'static str,
    ) -> GuideError {
        GuideError::Parse {
            input: self.input.to_string(),
            column: self.offset + column + 1,
            field,
            found: found.trim().to_string(),
            expected,
        }
    }

    /// `text[:weight[:stop]]`: every unescaped colon starts the next field, so the text
    /// is read one way only and anything else is refused.
    fn prompt(&self, s: &str) -> Result<PromptSpec> {
        let pieces = split_unescaped(s, ':');
        let mut text = pieces[0].0.replace("\\:", ":");
        if self.in_schedule {
            text = text.replace("\\|", "|");
        }
        let text = text.trim().to_string();
        if text.is_empty() {
            return Err(self.err(pieces[0].1, "text", "", PROMPT_FORM));
        }
        let weight = match pieces.get(1) {
            Some(w) => self.weight(w)?,
            None => 1.0,
        };
        let stop = pieces.get(2).map(|s| self.stop(s)).transpose()?;
        if let Some(extra) = pieces.get(3) {
            return Err(self.err(extra.1, "field after stop", &extra.0, PROMPT_FORM));
        }
        Ok(PromptSpec { text, weight, stop })
    }

    fn weight(&self, (s, col): &(String, usize)) -> Result<f32> {
        match s.trim().parse::<f32>() {
            Ok(w) if w.is_finite() => Ok(w),
            _ => Err(self.err(
                *col,
                "weight",
                s,
                "a finite number such as 1, 0.5 or -1 (write \\: for a colon inside the text)",
            )),
        }
    }

    fn stop(&self, (s, col): &(String, usize)) -> Result<usize> {
        s.trim().parse::<usize>().map_err(|_| {
            self.err(
                *col,
                "stop",
                s,
                "a non-negative integer step (write \\: for a colon inside the text)",
            )
        })
    }
}

impl PromptSpec {
    /// Parses `text[:weight[:stop]]`. Every unescaped colon starts the next field: a weight
    /// that is not a finite number, a stop that is not a step, or a fourth field is an
    /// error naming its column. `\:` is a literal colon.
    pub fn parse(s: &str) -> Result<Self> {
        ParseCtx {
            input: s,
            offset: 0,
            in_schedule: false,
        }
        .prompt(s)
    }
}

impl FromStr for PromptSpec {
    type Err = GuideError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

/// Prompts that change over the run. At each keyframe a set of prompts has weights; in
/// between, each prompt's weight is interpolated linearly (a prompt absent from a keyframe
/// has weight 0 there); after the last keyframe the weights hold.
#[derive(Clone, Debug, PartialEq)]
pub struct PromptSchedule {
    keyframes: Vec<(usize, Vec<PromptSpec>)>,
    texts: Vec<String>,
}

/// One entry of the table form in TOML: a prompt with the step of its keyframe.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct PromptEntry {
    #[serde(default)]
    step: usize,
    text: String,
    #[serde(default = "one")]
    weight: f32,
    #[serde(default)]
    stop: Option<usize>,
}

const SCHEDULE_FORM: &str =
    "step:text[:weight[:stop]] segments separated by |, steps in time order, e.g. `0:a red circle|150:a blue square`";

impl PromptSchedule {
    /// Builds from `(step, prompt)` entries in time order; entries with the same step form
    /// one keyframe. A step earlier than the one before it, or the same text twice in one
    /// keyframe, is an error.
    pub fn from_entries(entries: Vec<(usize, PromptSpec)>) -> Result<Self> {
        if entries.is_empty() {
            return Err(GuideError::invalid(
                "prompts",
                format!("no prompts; expected {SCHEDULE_FORM}"),
            ));
        }
        let mut texts: Vec<String> = Vec::new();
        let mut keyframes: Vec<(usize, Vec<PromptSpec>)> = Vec::new();
        for (step, prompt) in entries {
            if !texts.contains(&prompt.text) {
                texts.push(prompt.text.clone());
            }
            match keyframes.last_mut() {
                Some(k) if step < k.0 => {
                    return Err(GuideError::invalid(
                        "prompts",
                        format!(
                            "`{}` at step {step} comes after a keyframe at step {}; list keyframes in time order",
                            prompt.text, k.0
                        ),
                    ))
                }
                Some(k) if k.0 == step && k.1.iter().any(|p| p.text == prompt.text) => {
                    return Err(GuideError::invalid(
                        "prompts",
                        format!(
                            "`{}` appears twice at step {step}; give each text once per keyframe",
                            prompt.text
                        ),
                    ))
                }
                Some(k) if k.0 == step => k.1.push(prompt),
                _ => keyframes.push((step, vec![prompt])),
            }
        }
        Ok(Self { keyframes, texts })
    }

    /// One prompt, `text[:weight[:stop]]`, for the whole run.
    pub fn single(prompt: &str) -> Result<Self> {
        Self::from_entries(vec![(0, PromptSpec::parse(prompt)?)])
    }

    /// Parses the shorthand `0:a red circle|0:bokeh:0.5|150:a blue square`: segments split
    /// at `|` (`\|` is a literal bar), each `step:text[:weight[:stop]]` with the step
    /// required and never smaller than the previous segment's.
    pub fn parse(s: &str) -> Result<Self> {
        let mut entries: Vec<(usize, PromptSpec)> = Vec::new();
        for (segment, start) in split_unescaped(s, '|') {
            let ctx = ParseCtx {
                input: s,
                offset: start,
                in_schedule: true,
            };
            if segment.trim().is_empty() {
                return Err(ctx.err(0, "prompt", "", SCHEDULE_FORM));
            }
            let pieces = split_unescaped(&segment, ':');
            let first = pieces[0].0.trim();
            let step = match first.parse::<usize>() {
                Ok(step) if pieces.len() > 1 => step,
                _ => return Err(ctx.err(0, "step", first, SCHEDULE_FORM)),
            };
            if entries.last().is_some_and(|e| step < e.0) {
                return Err(ctx.err(0, "step", first, SCHEDULE_FORM));
            }
            let rest_start = pieces[1].1;
            let rest: String = segment.chars().skip(rest_start).collect();
            let prompt = ParseCtx {
                input: s,
                offset: start + rest_start,
                in_schedule: true,
            }
            .prompt(&rest)?;
            entries.push((step, prompt));
        }
        Self::from_entries(entries).map_err(|e| match e {
            GuideError::InvalidArgument { what, problem } => {
                GuideError::invalid(what, format!("in `{s}`: {problem}"))
            }
            other => other,
        })
    }

    /// Checks that no keyframe or stop lies beyond the last step of a `steps`-step run
    /// (a keyframe at `steps` itself is the end point of a ramp, so it is allowed). For what
    /// the user typed, not in `validate`: a run stopped early is stored with fewer steps than
    /// its keyframes reach, and must still re-make.
    pub fn check_within(&self, steps: usize) -> Result<()> {
        for (step, prompts) in &self.keyframes {
            if *step > steps {
                return Err(GuideError::invalid(
                    "prompts",
                    format!("a keyframe at step {step} lies beyond the run's {steps} steps"),
                ));
            }
            if let Some(p) = prompts.iter().find(|p| p.stop.is_some_and(|t| t > steps)) {
                return Err(GuideError::invalid(
                    "prompts",
                    format!(
                        "`{}` stops at step {} but the run has {steps} steps",
                        p.text,
                        p.stop.unwrap_or_default()
                    ),
                ));
            }
        }
        Ok(())
    }

    /// Every distinct prompt text, in order of first appearance (to embed them once).
    pub fn texts(&self) -> Vec<&str> {
        self.texts.iter().map(String::as_str).collect()
    }

    /// The keyframes, sorted by step.
    pub fn keyframes(&self) -> &[(usize, Vec<PromptSpec>)] {
        &self.keyframes
    }

    /// `(text, weight)` of every prompt with a non-zero weight at `step`, in [`Self::texts`]
    /// order. A prompt's `stop` is taken from its entry in the latest keyframe at or before
    /// `step` (or the first keyframe, before it starts).
    pub fn at(&self, step: usize) -> Vec<(String, f32)> {
        let after = self.keyframes.partition_point(|k| k.0 <= step);
        let current = &self.keyframes[after.saturating_sub(1)];
        let next = self.keyframes.get(after).filter(|_| after > 0);
        let weight_in = |k: &(usize, Vec<PromptSpec>), text: &str| {
            k.1.iter()
                .find(|p| p.text == text)
                .map(|p| p.weight)
                .unwrap_or(0.0)
        };
        self.texts
            .iter()
            .filter_map(|text| {
                let stopped = current
                    .1
                    .iter()
                    .find(|p| &p.text == text)
                    .and_then(|p| p.stop)
                    .is_some_and(|stop| step >= stop);
                let w0 = weight_in(current, text);
                let w = match next {
                    Some(k1) if !stopped => {
                        let t = (step - current.0) as f64 / (k1.0 - current.0) as f64;
                        f32::lerp(w0, weight_in(k1, text), t)
                    }
                    _ if stopped => 0.0,
                    _ => w0,
                };
                (w != 0.0).then(|| (text.clone(), w))
            })
            .collect()
    }
}

impl FromStr for PromptSchedule {
    type Err = GuideError;
    fn from_str(s: &str) -> Result<Self> {
        Self::parse(s)
    }
}

struct PromptScheduleVisitor;

impl<'de> Visitor<'de> for PromptScheduleVisitor {
    type Value = PromptSchedule;

    fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
        write!(
            f,
            "a string of {SCHEDULE_FORM}, or an array of {{ step, text, weight, stop }} tables"
        )
    }

    fn visit_str<E: de::Error>(self, v: &str) -> std::result::Result<Self::Value, E> {
        PromptSchedule::parse(v).map_err(E::custom)
    }

    fn visit_seq<A: SeqAccess<'de>>(
        self,
        mut seq: A,
    ) -> std::result::Result<Self::Value, A::Error> {
        let mut entries = Vec::new();
        while let Some(e) = seq.next_element::<PromptEntry>()? {
            entries.push((
                e.step,
                PromptSpec {
                    text: e.text,
                    weight: e.weight,
                    stop: e.stop,
                },
            ));
        }
        PromptSchedule::from_entries(entries).map_err(de::Error::custom)
    }
}

/// Serialised as the table form (`[{ step, text, weight, stop }, ...]`), which the
/// deserialiser reads back to an equal schedule.
impl Serialize for PromptSchedule {
    fn serialize<S: Serializer>(&self, serializer: S) -> std::result::Result<S::Ok, S::Error> {
        #[derive(Serialize)]
        struct Entry<'a> {
            step: usize,
            text: &'a str,
            weight: f32,
            #[serde(skip_serializing_if = "Option::is_none")]
            stop: Option<usize>,
        }
        serializer.collect_seq(self.keyframes.iter().flat_map(|(step, prompts)| {
            prompts.iter().map(move |p| Entry {
                step: *step,
                text: &p.text,
                weight: p.weight,
                stop: p.stop,
            })
        }))
    }
}

impl<'de> Deserialize<'de> for PromptSchedule {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> std::result::Result<Self, D::Error> {
        deserializer.deserialize_any(PromptScheduleVisitor)
    }
}

fn default_one() -> Keyframes<f32> {
    Keyframes::constant(1.0)
}
fn default_zero() -> Keyframes<f32> {
    Keyframes::constant(0.0)
}
fn default_cutn() -> Keyframes<usize> {
    Keyframes::constant(Cutouts::default().cutn)
}
fn default_cut_pow() -> Keyframes<f32> {
    Keyframes::constant(Cutouts::default().cut_pow)
}
fn default_lr() -> LrSchedule {
    LrSchedule::Constant { lr: 0.05 }
}
fn default_range_bounds() -> [f64; 2] {
    [-4.0, 4.0]
}

/// A whole run as one TOML file (see `schedules/example.toml`). Every ramp is a
/// [`Keyframes`]: a number or `[[step, value], ...]`.
///
/// Files (and stored runs) written before `cutn` and `cut_pow` had one home gave them in the
/// `[cutouts]` table, overridden by a top-level ramp; they still read that way
/// ([`GuideScheduleFile`]), and are written in today's form.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(try_from = "GuideScheduleFile")]
pub struct GuideSchedule {
    /// Optimisation steps.
    pub steps: usize,
    /// Seed of the ChaCha8 stream for init, cutouts and noise.
    #[serde(default)]
    pub seed: u64,
    /// The prompts over time (shorthand string or table array).
    pub prompts: PromptSchedule,
    /// Embedding distance for the prompt losses.
    #[serde(default)]
    pub distance: Distance,
    /// How each cutout is cut and augmented.
    pub cutouts: CutoutStyle,
    /// Cutouts per step: a number or a ramp.
    pub cutn: Keyframes<usize>,
    /// Cutout size bias (above 1 favours small cutouts): a number or a ramp.
    pub cut_pow: Keyframes<f32>,
    /// Learning rate per step.
    #[serde(default = "default_lr")]
    pub lr: LrSchedule,
    /// AdamW decoupled weight decay (0 = Adam).
    #[serde(default)]
    pub weight_decay: f64,
    /// Multiplier of all prompt losses.
    #[serde(default = "default_one")]
    pub guidance_weight: Keyframes<f32>,
    /// Total-variation weight on the RGB image.
    #[serde(default = "default_zero")]
    pub tv_weight: Keyframes<f32>,
    /// Absolute or squared total variation.
    #[serde(default)]
    pub tv_kind: TvKind,
    /// Range-penalty weight on the logits.
    #[serde(default = "default_zero")]
    pub range_weight: Keyframes<f32>,
    /// `[lo, hi]` for the range penalty on the logits.
    #[serde(default = "default_range_bounds")]
    pub range_bounds: [f64; 2],
}

impl GuideSchedule {
    /// `steps` steps of `prompts` with every other field at the file format's default.
    pub fn new(steps: usize, prompts: PromptSchedule) -> Self {
        Self {
            steps,
            seed: 0,
            prompts,
            distance: Distance::default(),
            cutouts: CutoutStyle::default(),
            cutn: default_cutn(),
            cut_pow: default_cut_pow(),
            lr: default_lr(),
            weight_decay: 0.0,
            guidance_weight: default_one(),
            tv_weight: default_zero(),
            tv_kind: TvKind::default(),
            range_weight: default_zero(),
            range_bounds: default_range_bounds(),
        }
    }

    /// Parses and validates a schedule from TOML text.
    pub fn from_toml_str(s: &str) -> Result<Self> {
        Self::parse_named(s, "<string>")
    }

    /// Reads, parses and validates a schedule file.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let name = path.display().to_string();
        let text = std::fs::read_to_string(path).map_err(|source| GuideError::Io {
            path: name.clone(),
            source,
        })?;
        Self::parse_named(&text, &name)
    }

    fn parse_named(s: &str, name: &str) -> Result<Self> {
        let schedule: Self = toml::from_str(s).map_err(|source| GuideError::Toml {
            path: name.to_string(),
            source,
        })?;
        schedule.validate()?;
        // A file is typed by the user, so its keyframes must fit its run (see
        // `PromptSchedule::check_within` for why `validate` does not check this).
        schedule.prompts.check_within(schedule.steps)?;
        Ok(schedule)
    }

    /// Checks values that TOML types alone cannot, naming the field at fault.
    pub fn validate(&self) -> Result<()> {
        if self.steps == 0 {
            return Err(GuideError::invalid("steps", "must be at least 1"));
        }
        self.lr.validate()?;
        self.cutouts.validate()?;
        if let Some((step, _)) = self
            .cut_pow
            .points()
            .iter()
            .find(|p| !(p.1.is_finite() && p.1 > 0.0))
        {
            return Err(GuideError::invalid(
                "cut_pow",
                format!("the keyframe at step {step} must be a positive number"),
            ));
        }
        let [lo, hi] = self.range_bounds;
        if lo.partial_cmp(&hi) != Some(std::cmp::Ordering::Less) {
            return Err(GuideError::invalid(
                "range_bounds",
                format!("[{lo}, {hi}]: expected [lo, hi] with lo < hi"),
            ));
        }
        if self.cutn.points().iter().any(|p| p.1 == 0) {
            return Err(GuideError::invalid(
                "cutn",
                "every keyframe needs at least 1 cutout",
            ));
        }
        Ok(())
    }

    /// The cutout settings at `step`, with `cutn` and `cut_pow` from their ramps.
    pub fn cutouts_at(&self, step: usize) -> Cutouts {
        Cutouts {
            cutn: self.cutn.at(step),
            cut_pow: self.cut_pow.at(step),
            style: self.cutouts.clone(),
        }
    }
}

/// [`GuideSchedule`] as files spell it, today's form and the one before: `cutn` / `cut_pow`
/// in the `[cutouts]` table, where a top-level ramp overrides them.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct GuideScheduleFile {
    steps: usize,
    #[serde(default)]
    seed: u64,
    prompts: PromptSchedule,
    #[serde(default)]
    distance: Distance,
    #[serde(default)]
    cutouts: CutoutsTable,
    #[serde(default)]
    cutn: Option<Keyframes<usize>>,
    #[serde(default)]
    cut_pow: Option<Keyframes<f32>>,
    #[serde(default = "default_lr")]
    lr: LrSchedule,
    #[serde(default)]
    weight_decay: f64,
    #[serde(default = "default_one")]
    guidance_weight: Keyframes<f32>,
    #[serde(default = "default_zero")]
    tv_weight: Keyframes<f32>,
    #[serde(default)]
    tv_kind: TvKind,
    #[serde(default = "default_zero")]
    range_weight: Keyframes<f32>,
    #[serde(default = "default_range_bounds")]
    range_bounds: [f64; 2],
}

/// The `[cutouts]` table: [`CutoutStyle`], plus the `cutn` and `cut_pow` of older files.
#[derive(Deserialize, Default)]
#[serde(deny_unknown_fields)]
struct CutoutsTable {
    cutn: Option<usize>,
    cut_pow: Option<f32>,
    min_size_frac: Option<f32>,
    out_size: Option<usize>,
    flip_prob: Option<f32>,
    jitter: Option<usize>,
    noise_std: Option<f32>,
}

impl TryFrom<GuideScheduleFile> for GuideSchedule {
    type Error = String;
    fn try_from(f: GuideScheduleFile) -> std::result::Result<Self, String> {
        let t = f.cutouts;
        let d = CutoutStyle::default();
        let cutouts = CutoutStyle {
            min_size_frac: t.min_size_frac.unwrap_or(d.min_size_frac),
            out_size: t.out_size.unwrap_or(d.out_size),
            flip_prob: t.flip_prob.unwrap_or(d.flip_prob),
            jitter: t.jitter.unwrap_or(d.jitter),
            noise_std: t.noise_std.unwrap_or(d.noise_std),
        };
        fn or_table<T: Interpolate>(
            ramp: Option<Keyframes<T>>,
            table: Option<T>,
            default: fn() -> Keyframes<T>,
        ) -> Keyframes<T> {
            ramp.or(table.map(Keyframes::constant))
                .unwrap_or_else(default)
        }
        Ok(Self {
            steps: f.steps,
            seed: f.seed,
            prompts: f.prompts,
            distance: f.distance,
            cutouts,
            cutn: or_table(f.cutn, t.cutn, default_cutn),
            cut_pow: or_table(f.cut_pow, t.cut_pow, default_cut_pow),
            lr: f.lr,
            weight_decay: f.weight_decay,
            guidance_weight: f.guidance_weight,
            tv_weight: f.tv_weight,
            tv_kind: f.tv_kind,
            range_weight: f.range_weight,
            range_bounds: f.range_bounds,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn spec(text: &str, weight: f32, stop: Option<usize>) -> PromptSpec {
        PromptSpec {
            text: text.into(),
            weight,
            stop,
        }
    }

    fn parse_err<T: fmt::Debug>(result: Result<T>) -> (usize, &'static str) {
        match result {
            Err(GuideError::Parse { column, field, .. }) => (column, field),
            other => panic!("expected a parse error, got {other:?}"),
        }
    }

    #[test]
    fn prompt_suffixes_are_weight_and_stop() {
        assert_eq!(
            PromptSpec::parse("a red circle").unwrap(),
            spec("a red circle", 1.0, None)
        );
        assert_eq!(
            PromptSpec::parse("a red circle:1.5").unwrap(),
            spec("a red circle", 1.5, None)
        );
        assert_eq!(
            PromptSpec::parse(" ugly : -0.5 : 200 ").unwrap(),
            spec("ugly", -0.5, Some(200))
        );
        assert_eq!(
            PromptSpec::parse("at 3\\:00:0.5").unwrap(),
            spec("at 3:00", 0.5, None)
        );
        assert_eq!(
            PromptSpec::parse("1e-1 things:1e-1").unwrap(),
            spec("1e-1 things", 0.1, None)
        );
        assert_eq!(
            PromptSpec::parse("ratio 16\\:9 poster:2:10").unwrap(),
            spec("ratio 16:9 poster", 2.0, Some(10))
        );
    }

    /// Every unescaped colon starts a field, so text that is not a weight or a step after a
    /// colon is refused rather than read as part of the prompt.
    #[test]
    fn malformed_prompts_name_field_and_column() {
        let cases: &[(&str, (usize, &str))] = &[
            ("a:1.2.3", (3, "weight")),
            ("a:1:-3", (5, "stop")),
            ("at 3:00:1.5", (9, "stop")),
            (":2", (1, "text")),
            ("a:1e999", (3, "weight")),
            ("a red circle:abc", (14, "weight")),
            ("a red circle:nan", (14, "weight")),
            ("a red circle:inf", (14, "weight")),
            ("a red circle:", (14, "weight")),
            ("note: be bold", (6, "weight")),
            ("ratio 16:9 poster:2:10", (10, "weight")),
            ("a:1:2:3", (7, "field after stop")),
            ("a:1:2.5", (5, "stop")),
        ];
        for (input, expected) in cases {
            assert_eq!(parse_err(PromptSpec::parse(input)), *expected, "{input}");
        }
        let msg = PromptSpec::parse("a:1:-3").unwrap_err().to_string();
        assert!(
            msg.contains("column 5")
                && msg.contains("stop")
                && msg.contains("non-negative integer"),
            "{msg}"
        );
        let msg = PromptSpec::parse("a red circle:abc")
            .unwrap_err()
            .to_string();
        assert!(msg.contains("`abc`") && msg.contains("\\:"), "{msg}");
    }

    #[test]
    fn schedule_interpolates_between_keyframes() {
        let s = PromptSchedule::parse("0:a red circle|150:a blue square").unwrap();
        assert_eq!(s.texts(), vec!["a red circle", "a blue square"]);
        assert_eq!(s.at(0), vec![("a red circle".to_string(), 1.0)]);
        assert_eq!(
            s.at(75),
            vec![
                ("a red circle".to_string(), 0.5),
                ("a blue square".to_string(), 0.5)
            ]
        );
        assert_eq!(s.at(150), vec![("a blue square".to_string(), 1.0)]);
        assert_eq!(s.at(10_000), vec![("a blue square".to_string(), 1.0)]);
        let bar = PromptSchedule::parse("0:this \\| that\\: yes|5:b").unwrap();
        assert_eq!(bar.texts(), vec!["this | that: yes", "b"]);
    }

    #[test]
    fn schedule_groups_keyframes_and_applies_stop() {
        let s = PromptSchedule::parse("0:a:1:50|0:c:-1|100:b:2|100:c:-1").unwrap();
        assert_eq!(s.keyframes().len(), 2);
        assert_eq!(s.keyframes()[0].0, 0);
        assert_eq!(s.texts(), vec!["a", "c", "b"]);
        // Step 20: a 1 → 0 (0.8), c constant -1, b 0 → 2 (0.4).
        let at20 = s.at(20);
        assert_eq!(at20.len(), 3);
        assert!(
            (at20[0].1 - 0.8).abs() < 1e-6
                && (at20[1].1 + 1.0).abs() < 1e-6
                && (at20[2].1 - 0.4).abs() < 1e-6
        );
        // From step 50 prompt a has stopped.
        assert!(s.at(50).iter().all(|(t, _)| t != "a"));
        assert!(s.at(49).iter().any(|(t, _)| t == "a"));
        // A schedule that starts late holds its first keyframe before it.
        let late = PromptSchedule::parse("10:x:2").unwrap();
        assert_eq!(late.at(0), vec![("x".to_string(), 2.0)]);
    }

    #[test]
    fn malformed_schedules_are_errors() {
        let cases: &[(&str, (usize, &str))] = &[
            ("0:a||150:b", (5, "prompt")),
            ("0:a|1.5:b", (5, "step")),
            ("0:a|150:", (9, "text")),
            ("x:y|zz", (1, "step")),
            ("0:a|zz", (5, "step")),
            ("a red circle", (1, "step")),
            ("150:a|0:b", (7, "step")),
            ("0:a:nan", (5, "weight")),
            ("0:a:1:x", (7, "stop")),
        ];
        for (input, expected) in cases {
            assert_eq!(
                parse_err(PromptSchedule::parse(input)),
                *expected,
                "{input}"
            );
        }
        let dup = PromptSchedule::parse("0:a|0:a:2").unwrap_err().to_string();
        assert!(dup.contains("twice at step 0"), "{dup}");
        let order = PromptSchedule::from_entries(vec![
            (5, spec("a", 1.0, None)),
            (0, spec("b", 1.0, None)),
        ])
        .unwrap_err()
        .to_string();
        assert!(order.contains("time order"), "{order}");
    }

    #[test]
    fn keyframes_and_stops_must_lie_within_the_run() {
        let within = |p: &str| PromptSchedule::parse(p).unwrap().check_within(100);
        assert!(
            within("0:a|100:b").is_ok(),
            "a keyframe at the last step ends a ramp"
        );
        let msg = within("0:a|101:b").unwrap_err().to_string();
        assert!(
            msg.contains("step 101") && msg.contains("100 steps"),
            "{msg}"
        );
        let msg = within("0:a:1:150").unwrap_err().to_string();
        assert!(msg.contains("stops at step 150"), "{msg}");
        // A stored run that stopped early validates with its later keyframes.
        let stopped = GuideSchedule::new(100, PromptSchedule::parse("0:a|150:b").unwrap());
        assert!(stopped.validate().is_ok());
    }

    #[test]
    fn keyframes_interpolate_and_round() {
        let k = Keyframes::new(vec![(10, 32usize), (20, 16)]).unwrap();
        assert_eq!(
            (k.at(0), k.at(10), k.at(15), k.at(16), k.at(99)),
            (32, 32, 24, 22, 16)
        );
        let f = Keyframes::new(vec![(0, 0.0f32), (4, 1.0)]).unwrap();
        assert_eq!(f.at(1), 0.25);
        assert!(Keyframes::<f32>::new(vec![(5, 1.0), (5, 2.0)]).is_err());
        assert!(Keyframes::<f32>::new(vec![]).is_err());
    }

    #[test]
    fn example_file_parses() {
        let s = GuideSchedule::from_toml_str(include_str!("../schedules/example.toml")).unwrap();
        assert_eq!(s.steps, 300);
        assert_eq!(
            s.prompts.texts(),
            vec!["a red circle", "bokeh: soft background", "a blue square"]
        );
        assert_eq!(s.cutouts_at(0).cutn, 32);
        assert_eq!(s.cutouts_at(200).cutn, 16);
        assert_eq!(s.cutouts_at(0).style.out_size, 224);
        assert!((s.lr.at(19) - 0.05).abs() < 1e-12);
        assert!(s.tv_weight.at(50) > 0.0 && s.tv_weight.at(0) == 0.0);
        let from_file = GuideSchedule::from_file(concat!(
            env!("CARGO_MANIFEST_DIR"),
            "/schedules/example.toml"
        ))
        .unwrap();
        assert_eq!(from_file.prompts, s.prompts);
    }

    #[test]
    fn table_form_of_prompts_parses() {
        let s = GuideSchedule::from_toml_str(
            "steps = 10\n[[prompts]]\ntext = \"a: b\"\nweight = 2\n[[prompts]]\nstep = 5\ntext = \"c\"\nstop = 8\n",
        )
        .unwrap();
        assert_eq!(s.prompts.keyframes()[0].1, vec![spec("a: b", 2.0, None)]);
        assert_eq!(s.prompts.keyframes()[1], (5, vec![spec("c", 1.0, Some(8))]));
    }

    #[test]
    fn malformed_files_name_the_field() {
        let cases = [
            ("steps = 10\nprompts = \"0:a\"\ncutn = \"many\"\n", "cutn"),
            (
                "steps = 10\nprompts = \"0:a\"\ncut_pow = [[10, 1.0], [5, 2.0]]\n",
                "strictly increasing",
            ),
            ("steps = 10\nprompts = \"0:a\"\ncutnn = 3\n", "cutnn"),
            ("steps = 10\nprompts = \"0:a:1.2.3\"\n", "weight"),
            ("steps = 10\nprompts = \"0:a\"\ncutn = 2.5\n", "cutn"),
            ("steps = 0\nprompts = \"0:a\"\n", "steps"),
            ("steps = 10\n", "prompts"),
            ("steps = 10\nprompts = \"a\"\n", "step `a`"),
            (
                "steps = 10\nprompts = \"0:a|20:b\"\n",
                "beyond the run's 10 steps",
            ),
            (
                "steps = 10\n[[prompts]]\nstep = 5\ntext = \"a\"\n[[prompts]]\ntext = \"b\"\n",
                "time order",
            ),
            (
                "steps = 10\nprompts = \"0:a\"\nlr = { kind = \"cosine\", lr = 0.1, total = 0 }\n",
                "lr.total",
            ),
            (
                "steps = 10\nprompts = \"0:a\"\n[cutouts]\ncut_pow = -1.0\n",
                "cut_pow",
            ),
        ];
        for (text, needle) in cases {
            let msg = GuideSchedule::from_toml_str(text).unwrap_err().to_string();
            assert!(
                msg.contains(needle),
                "error for {text:?} should mention {needle}: {msg}"
            );
        }
    }

    #[test]
    fn the_older_cutouts_table_still_reads_and_a_ramp_overrides_it() {
        let old = GuideSchedule::from_toml_str(
            "steps = 10\nprompts = \"0:a\"\n[cutouts]\ncutn = 8\ncut_pow = 2.0\njitter = 6\n",
        )
        .unwrap();
        assert_eq!(
            (old.cutn.at(0), old.cut_pow.at(9), old.cutouts.jitter),
            (8, 2.0, 6)
        );
        let ramped = GuideSchedule::from_toml_str(
            "steps = 10\nprompts = \"0:a\"\ncutn = [[0, 4], [10, 2]]\n[cutouts]\ncutn = 8\n",
        )
        .unwrap();
        assert_eq!((ramped.cutn.at(0), ramped.cutn.at(10)), (4, 2));
        // Written in today's form: the count lives at the top level only.
        let json = serde_json::to_value(&old).unwrap();
        assert!(json["cutouts"].get("cutn").is_none(), "{json}");
        assert_eq!(json["cutn"], serde_json::json!([[0, 8]]));
        let defaults = GuideSchedule::from_toml_str("steps = 3\nprompts = \"0:a\"\n").unwrap();
        assert_eq!(defaults, GuideSchedule::new(3, defaults.prompts.clone()));
    }

    #[test]
    fn schedules_round_trip_through_json_and_toml() {
        let s = GuideSchedule::from_toml_str(include_str!("../schedules/example.toml")).unwrap();
        let json = serde_json::to_string(&s).unwrap();
        let back: GuideSchedule = serde_json::from_str(&json).unwrap();
        assert_eq!(back.prompts, s.prompts);
        assert_eq!(back.cutn, s.cutn);
        assert_eq!(back.lr, s.lr);
        assert_eq!(back.cutouts, s.cutouts);
        assert_eq!(back, s);
        let toml_text = toml::to_string(&s).unwrap();
        let again = GuideSchedule::from_toml_str(&toml_text).unwrap();
        assert_eq!(again.prompts, s.prompts);
        assert_eq!(again.tv_weight, s.tv_weight);
        // The stop of a prompt survives (the example's bokeh prompt stops at 200).
        assert!(json.contains("\"stop\":200"), "{json}");
    }
}
