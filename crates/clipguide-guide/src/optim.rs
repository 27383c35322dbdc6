//! Adam/AdamW over candle `Var`s, the one optimiser of generation and training: moments that
//! can be saved and restored (bit-exact `--resume`), per-parameter learning-rate multipliers, a
//! choice of which parameters decay, gradient-norm clipping, and learning-rate schedules as plain
//! data evaluated per step.

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{DType, Tensor, Var};
use serde::{Deserialize, Serialize};

use crate::error::{GuideError, Result};
use crate::schedule::Keyframes;

/// Which parameters the decoupled weight decay applies to.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum DecayScope {
    /// Every parameter (candle-nn's and PyTorch's `AdamW` default; what generation uses).
    #[default]
    All,
    /// Only parameters of rank 2 or more (weight matrices), not biases, norms or a temperature,
    /// as CLIP training customarily does.
    Matrices,
}

/// Adam hyper-parameters; `weight_decay > 0` makes it AdamW (decoupled decay).
#[derive(Clone, Copy, Debug, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields, default)]
pub struct AdamConfig {
    /// Learning rate (overridden per step by an [`LrSchedule`] if the loop uses one).
    pub lr: f64,
    /// First-moment decay.
    pub beta1: f64,
    /// Second-moment decay.
    pub beta2: f64,
    /// Denominator epsilon.
    pub eps: f64,
    /// Decoupled weight decay; 0 is plain Adam.
    pub weight_decay: f64,
    /// Which parameters `weight_decay` applies to.
    pub decay: DecayScope,
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            decay: DecayScope::All,
        }
    }
}

impl AdamConfig {
    /// Plain Adam with learning rate `lr`.
    pub fn adam(lr: f64) -> Self {
        Self {
            lr,
            ..Self::default()
        }
    }

    /// AdamW with learning rate `lr` and decoupled weight decay `weight_decay` on every
    /// parameter.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            weight_decay,
            ..Self::default()
        }
    }
}

/// Adam/AdamW with inspectable state.
///
/// The update is candle-nn's `AdamW` step, op for op (so generation is bit-identical to the
/// candle optimiser it replaces), written out here because candle keeps its moments private and
/// bit-exact `--resume` of training needs them saved beside the checkpoint. [`Adam::step`]
/// refuses to step when a parameter got no gradient, because candle silently drops gradients
/// through ops without a backward and an image would then stop changing without any error;
/// [`Adam::step_partial`] leaves such parameters alone instead (frozen or unused weights).
pub struct Adam {
    /// Parameter names, in the order of `vars`; the state is saved under these names.
    names: Vec<String>,
    vars: Vec<Var>,
    /// First moments, one per parameter.
    m: Vec<Var>,
    /// Second moments, one per parameter.
    v: Vec<Var>,
    /// Per-parameter learning-rate multipliers (1 unless set).
    lr_mult: Vec<f64>,
    config: AdamConfig,
    /// Completed steps: Adam's `t`, which the bias corrections use.
    steps: usize,
}

impl Adam {
    /// An optimiser over `vars` (e.g. [`crate::param::Parameterization::params`]); their state
    /// is named by position ("0", "1", ...).
    pub fn new(vars: Vec<Var>, config: AdamConfig) -> Result<Self> {
        Self::named(
            vars.into_iter()
                .enumerate()
                .map(|(i, v)| (i.to_string(), v))
                .collect(),
            config,
        )
    }

    /// An optimiser over named parameters; [`Adam::state`] keys their moments by these names.
    /// Give them in a stable order (e.g. sorted by name): the order fixes the summation order of
    /// [`clip_grad_norm`] and thus bit-exact resumes.
    pub fn named(named: Vec<(String, Var)>, config: AdamConfig) -> Result<Self> {
        if named.is_empty() {
            return Err(GuideError::invalid(
                "optimiser parameters",
                "no variables to optimise",
            ));
        }
        let (names, vars): (Vec<String>, Vec<Var>) = named.into_iter().unzip();
        let zeros = |vars: &[Var]| -> Result<Vec<Var>> {
            Ok(vars
                .iter()
                .map(|v| Var::zeros(v.shape(), v.dtype(), v.device()))
                .collect::<candle_core::Result<_>>()?)
        };
        Ok(Self {
            m: zeros(&vars)?,
            v: zeros(&vars)?,
            lr_mult: vec![1.0; names.len()],
            names,
            vars,
            config,
            steps: 0,
        })
    }

    /// Multiplies the learning rate of every parameter whose name satisfies `pick` by `mult`.
    pub fn set_lr_multiplier(&mut self, pick: impl Fn(&str) -> bool, mult: f64) {
        for (name, m) in self.names.iter().zip(self.lr_mult.iter_mut()) {
            if pick(name) {
                *m = mult;
            }
        }
    }

    /// One update from `grads` (the result of `loss.backward()`). Fails without changing
    /// anything if any parameter has no gradient.
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        let missing = self
            .vars
            .iter()
            .filter(|v| grads.get(v.as_tensor()).is_none())
            .count();
        if missing > 0 {
            return Err(GuideError::MissingGradient {
                missing,
                total: self.vars.len(),
            });
        }
        self.step_partial(grads)
    }

    /// One update of the parameters that have a gradient in `grads`; the others keep their
    /// values and moments (the step count still advances for all).
    pub fn step_partial(&mut self, grads: &GradStore) -> Result<()> {
        self.steps += 1;
        let c = self.config;
        let t = self.steps as i32;
        let scale_m = 1f64 / (1f64 - c.beta1.powi(t));
        let scale_v = 1f64 / (1f64 - c.beta2.powi(t));
        for (((theta, m), v), mult) in self
            .vars
            .iter()
            .zip(&self.m)
            .zip(&self.v)
            .zip(&self.lr_mult)
        {
            let Some(g) = grads.get(theta.as_tensor()) else {
                continue;
            };
            let lr = c.lr * mult;
            let decay = match c.decay {
                DecayScope::Matrices if theta.rank() < 2 => 0.0,
                _ => c.weight_decay,
            };
            let next_m = ((m.as_tensor() * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let next_v = ((v.as_tensor() * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let m_hat = (&next_m * scale_m)?;
            let v_hat = (&next_v * scale_v)?;
            let next_theta = (theta.as_tensor() * (1f64 - lr * decay))?;
            let adjusted_grad = (m_hat / (v_hat.sqrt()? + c.eps)?)?;
            let next_theta = (next_theta - (adjusted_grad * lr)?)?;
            m.set(&next_m)?;
            v.set(&next_v)?;
            theta.set(&next_theta)?;
        }
        Ok(())
    }

    /// Current learning rate (before per-parameter multipliers).
    pub fn lr(&self) -> f64 {
        self.config.lr
    }

    /// Sets the learning rate for the following steps (e.g. from [`LrSchedule::at`]).
    pub fn set_lr(&mut self, lr: f64) {
        self.config.lr = lr;
    }

    /// Number of steps so far.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// The hyper-parameters (with the current learning rate).
    pub fn config(&self) -> &AdamConfig {
        &self.config
    }

    /// The optimised parameters, in the order given.
    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Moments and step count: `m.{name}` and `v.{name}` per parameter and `t` (u32 scalar),
    /// e.g. for `candle_core::safetensors::save`.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut s = HashMap::new();
        for ((name, m), v) in self.names.iter().zip(&self.m).zip(&self.v) {
            s.insert(format!("m.{name}"), m.as_tensor().clone());
            s.insert(format!("v.{name}"), v.as_tensor().clone());
        }
        s.insert(
            "t".into(),
            Tensor::new(self.steps as u32, self.m[0].device()).expect("scalar"),
        );
        s
    }

    /// Restores what [`Adam::state`] returned (extra entries are ignored).
    pub fn load_state(&mut self, s: &HashMap<String, Tensor>) -> Result<()> {
        let get = |k: String| {
            s.get(&k).cloned().ok_or_else(|| {
                GuideError::invalid(
                    "optimiser state",
                    format!("{k} is missing: the state was saved for other parameters"),
                )
            })
        };
        for ((name, m), v) in self.names.iter().zip(&self.m).zip(&self.v) {
            m.set(&get(format!("m.{name}"))?)?;
            v.set(&get(format!("v.{name}"))?)?;
        }
        self.steps = get("t".into())?.to_scalar::<u32>()? as usize;
        Ok(())
    }
}

/// Scales the gradients of `vars` so that their global L2 norm is at most `max_norm` (0 turns
/// clipping off), and returns the norm before scaling. Per-tensor sums of squares are taken in
/// the gradient's dtype and added up in f64 in the order of `vars`.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += g
                .sqr()?
                .sum_all()?
                .to_dtype(DType::F64)?
                .to_scalar::<f64>()?;
        }
    }
    let norm = total.sqrt();
    if max_norm > 0.0 && norm > max_norm {
        let f = max_norm / (norm + 1e-6);
        for v in vars {
            if let Some(g) = grads.get(v.as_tensor()) {
                let scaled = (g * f)?;
                grads.insert(v.as_tensor(), scaled);
            }
        }
    }
    Ok(norm)
}

/// Learning rate as a function of the step, as data (e.g. `{ kind = "cosine", lr = 0.05,
/// total = 300 }` in a schedule file).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum LrSchedule {
    /// The same rate throughout.
    Constant {
        /// Rate.
        lr: f64,
    },
    /// `lr · gamma^(step / every)`.
    Step {
        /// Initial rate.
        lr: f64,
        /// Steps between decays (at least 1).
        every: usize,
        /// Factor per decay.
        gamma: f64,
    },
    /// Half a cosine from `lr` at step 0 to `min_lr` at `total`, then `min_lr`.
    Cosine {
        /// Initial rate.
        lr: f64,
        /// Length of the decay (at least 1).
        total: usize,
        /// Final rate.
        #[serde(default)]
        min_lr: f64,
    },
    /// Linear ramp to `lr` over `warmup` steps (`lr·(step+1)/warmup`, so step 0 already
    /// moves), then a cosine from `lr` to `min_lr` ending at `total`.
    WarmupCosine {
        /// Peak rate.
        lr: f64,
        /// Warm-up length.
        warmup: usize,
        /// Step at which the cosine reaches `min_lr` (above `warmup`).
        total: usize,
        /// Final rate.
        #[serde(default)]
        min_lr: f64,
    },
    /// Linear interpolation between `[step, lr]` keyframes.
    Keyframes {
        /// The keyframes.
        points: Keyframes<f64>,
    },
}

fn half_cosine(from: f64, to: f64, t: f64) -> f64 {
    to + (from - to) * 0.5 * (1.0 + (std::f64::consts::PI * t.clamp(0.0, 1.0)).cos())
}

impl LrSchedule {
    /// The learning rate at `step` (0-based).
    pub fn at(&self, step: usize) -> f64 {
        match self {
            LrSchedule::Constant { lr } => *lr,
            LrSchedule::Step { lr, every, gamma } => {
                lr * gamma.powi((step / (*every).max(1)) as i32)
            }
            LrSchedule::Cosine { lr, total, min_lr } => {
                half_cosine(*lr, *min_lr, step as f64 / (*total).max(1) as f64)
            }
            LrSchedule::WarmupCosine {
                lr,
                warmup,
                total,
                min_lr,
            } => {
                if step < *warmup {
                    lr * (step + 1) as f64 / *warmup as f64
                } else {
                    let span = total.saturating_sub(*warmup).max(1);
                    half_cosine(*lr, *min_lr, (step - warmup) as f64 / span as f64)
                }
            }
            LrSchedule::Keyframes { points } => points.at(step),
        }
    }

    /// Checks the parameters, naming the one at fault.
    pub fn validate(&self) -> Result<()> {
        let bad = |what: &'static str, problem: String| Err(GuideError::invalid(what, problem));
        match self {
            LrSchedule::Step { every: 0, .. } => bad("lr.every", "must be at least 1 step".into()),
            LrSchedule::Cosine { total: 0, .. } => {
                bad("lr.total", "must be at least 1 step".into())
            }
            LrSchedule::WarmupCosine { warmup, total, .. } if total <= warmup => bad(
                "lr.total",
                format!("{total} must be greater than warmup {warmup}"),
            ),
            _ => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device, Tensor};

    #[test]
    fn first_adam_step_moves_by_lr_against_the_gradient_sign() -> Result<()> {
        let x = Var::from_tensor(&Tensor::new(&[1.0f64, -2.0], &Device::Cpu)?)?;
        let mut opt = Adam::new(vec![x.clone()], AdamConfig::adam(0.1))?;
        let loss = (x.as_tensor() * Tensor::new(&[3.0f64, -0.5], &Device::Cpu)?)?.sum_all()?;
        opt.step(&loss.backward()?)?;
        // m̂ = g and v̂ = g², so the first update is lr·g/(|g| + eps).
        let got = x.as_tensor().to_vec1::<f64>()?;
        assert!(
            (got[0] - (1.0 - 0.1)).abs() < 1e-7 && (got[1] - (-2.0 + 0.1)).abs() < 1e-7,
            "{got:?}"
        );
        assert_eq!(opt.steps(), 1);
        Ok(())
    }

    #[test]
    fn adam_minimises_a_quadratic_and_adamw_decays() -> Result<()> {
        let target = Tensor::new(&[5.0f64, -3.0], &Device::Cpu)?;
        let x = Var::zeros(2, DType::F64, &Device::Cpu)?;
        let mut opt = Adam::new(vec![x.clone()], AdamConfig::adam(0.1))?;
        for _ in 0..600 {
            let loss = (x.as_tensor() - &target)?.sqr()?.sum_all()?;
            opt.step(&loss.backward()?)?;
        }
        let got = x.as_tensor().to_vec1::<f64>()?;
        assert!(
            (got[0] - 5.0).abs() < 0.05 && (got[1] + 3.0).abs() < 0.05,
            "{got:?}"
        );

        // Decoupled decay: θ ← θ(1 − lr·wd) − lr·g/(|g|+eps) on the first step.
        let y = Var::from_tensor(&Tensor::new(&[2.0f64], &Device::Cpu)?)?;
        let mut opt = Adam::new(vec![y.clone()], AdamConfig::adamw(0.1, 0.5))?;
        opt.step(&y.as_tensor().sum_all()?.backward()?)?;
        let got = y.as_tensor().to_vec1::<f64>()?[0];
        assert!((got - (2.0 * (1.0 - 0.05) - 0.1)).abs() < 1e-7, "{got}");
        Ok(())
    }

    #[test]
    fn missing_gradient_is_an_error_and_changes_nothing() -> Result<()> {
        let a = Var::from_tensor(&Tensor::new(&[1.0f64], &Device::Cpu)?)?;
        let b = Var::from_tensor(&Tensor::new(&[1.0f64], &Device::Cpu)?)?;
        let mut opt = Adam::new(vec![a.clone(), b.clone()], AdamConfig::adam(0.1))?;
        let grads = a.as_tensor().sqr()?.sum_all()?.backward()?;
        let err = opt.step(&grads).unwrap_err();
        assert!(
            matches!(
                err,
                GuideError::MissingGradient {
                    missing: 1,
                    total: 2
                }
            ),
            "{err}"
        );
        assert_eq!(a.as_tensor().to_vec1::<f64>()?, vec![1.0]);
        assert_eq!(opt.steps(), 0);
        Ok(())
    }

    #[test]
    fn lr_schedules_hit_their_landmarks() {
        let close = |a: f64, b: f64| assert!((a - b).abs() < 1e-12, "{a} vs {b}");
        close(LrSchedule::Constant { lr: 0.3 }.at(1000), 0.3);
        let s = LrSchedule::Step {
            lr: 1.0,
            every: 10,
            gamma: 0.5,
        };
        close(s.at(9), 1.0);
        close(s.at(10), 0.5);
        close(s.at(25), 0.25);
        let c = LrSchedule::Cosine {
            lr: 1.0,
            total: 100,
            min_lr: 0.1,
        };
        close(c.at(0), 1.0);
        close(c.at(50), 0.55);
        close(c.at(100), 0.1);
        close(c.at(500), 0.1);
        let w = LrSchedule::WarmupCosine {
            lr: 1.0,
            warmup: 4,
            total: 104,
            min_lr: 0.0,
        };
        close(w.at(0), 0.25);
        close(w.at(3), 1.0);
        close(w.at(4), 1.0);
        close(w.at(54), 0.5);
        close(w.at(104), 0.0);
    }

    #[test]
    fn lr_schedules_parse_and_validate() {
        #[derive(Deserialize)]
        struct File {
            lr: LrSchedule,
        }
        let f: File =
            toml::from_str("lr = { kind = \"warmup_cosine\", lr = 0.1, warmup = 10, total = 100 }")
                .unwrap();
        assert_eq!(
            f.lr,
            LrSchedule::WarmupCosine {
                lr: 0.1,
                warmup: 10,
                total: 100,
                min_lr: 0.0
            }
        );
        let f: File =
            toml::from_str("lr = { kind = \"keyframes\", points = [[0, 0.1], [10, 0.3]] }")
                .unwrap();
        assert!((f.lr.at(5) - 0.2).abs() < 1e-12);
        assert!(toml::from_str::<File>("lr = { kind = \"exponential\", lr = 0.1 }").is_err());
        let bad = LrSchedule::WarmupCosine {
            lr: 0.1,
            warmup: 10,
            total: 10,
            min_lr: 0.0,
        };
        assert!(bad.validate().unwrap_err().to_string().contains("lr.total"));
        assert!(LrSchedule::Step {
            lr: 0.1,
            every: 0,
            gamma: 0.5
        }
        .validate()
        .is_err());
    }

    /// Two f32 parameters (a matrix and a vector) with deterministic values, and a loss that
    /// gives both a gradient that changes from step to step.
    fn f32_params() -> candle_core::Result<(Var, Var)> {
        let dev = Device::Cpu;
        let a = (Tensor::arange(0f32, 12.0, &dev)?.reshape((3, 4))?.sin()? * 1.7)?;
        let b = (Tensor::arange(1f32, 6.0, &dev)?.cos()? * 0.9)?;
        Ok((Var::from_tensor(&a)?, Var::from_tensor(&b)?))
    }

    fn f32_loss(a: &Var, b: &Var, step: usize) -> candle_core::Result<Tensor> {
        (a.as_tensor().sqr()?.sum_all()? * (step as f64 + 1.0))? + b.as_tensor().sin()?.sum_all()?
    }

    fn bits(v: &Var) -> Vec<u32> {
        let x: Vec<f32> = v.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        x.into_iter().map(f32::to_bits).collect()
    }

    /// Generation used candle-nn's `AdamW` before this type existed; the same steps must give
    /// the same bits, so images made before still re-make exactly.
    #[test]
    fn matches_candle_adamw_bit_for_bit() -> Result<()> {
        use candle_nn::Optimizer;
        for cfg in [AdamConfig::adam(0.05), AdamConfig::adamw(0.07, 0.3)] {
            let (a, b) = f32_params()?;
            let (ca, cb) = f32_params()?;
            let mut ours = Adam::new(vec![a.clone(), b.clone()], cfg)?;
            let params = candle_nn::ParamsAdamW {
                lr: cfg.lr,
                beta1: cfg.beta1,
                beta2: cfg.beta2,
                eps: cfg.eps,
                weight_decay: cfg.weight_decay,
            };
            let mut theirs = candle_nn::AdamW::new(vec![ca.clone(), cb.clone()], params)?;
            for (step, lr) in [0.05, 0.02, 0.2, 0.01].into_iter().enumerate() {
                ours.set_lr(lr);
                theirs.set_learning_rate(lr);
                ours.step(&f32_loss(&a, &b, step)?.backward()?)?;
                theirs.step(&f32_loss(&ca, &cb, step)?.backward()?)?;
                assert_eq!(bits(&a), bits(&ca), "{cfg:?} step {step}");
                assert_eq!(bits(&b), bits(&cb), "{cfg:?} step {step}");
            }
        }
        Ok(())
    }

    /// The trainer's update before the two optimisers became one: bias corrections as
    /// divisions, decay on matrices only, per-parameter rate multipliers. Same bits.
    #[test]
    fn matrices_scope_and_multipliers_match_the_former_training_update() -> Result<()> {
        let cfg = AdamConfig {
            lr: 2e-3,
            beta2: 0.98,
            eps: 1e-6,
            weight_decay: 0.05,
            decay: DecayScope::Matrices,
            ..AdamConfig::default()
        };
        let (a, b) = f32_params()?;
        let mut opt = Adam::named(vec![("a".into(), a.clone()), ("b".into(), b.clone())], cfg)?;
        opt.set_lr_multiplier(|n| n == "b", 3.0);
        let (ra, rb) = f32_params()?;
        let zeros = |v: &Var| Tensor::zeros(v.shape(), v.dtype(), v.device());
        let mut moments = [(zeros(&ra)?, zeros(&ra)?), (zeros(&rb)?, zeros(&rb)?)];
        for t in 1..=4usize {
            let step = t - 1;
            opt.step(&f32_loss(&a, &b, step)?.backward()?)?;
            let grads = f32_loss(&ra, &rb, step)?.backward()?;
            let bc1 = 1.0 - cfg.beta1.powi(t as i32);
            let bc2 = 1.0 - cfg.beta2.powi(t as i32);
            for ((var, mult), (m, v)) in [(&ra, 1.0), (&rb, 3.0)].into_iter().zip(&mut moments) {
                let g = grads.get(var.as_tensor()).expect("gradient");
                let lr = cfg.lr * mult;
                let nm = ((&*m * cfg.beta1)? + (g * (1.0 - cfg.beta1))?)?;
                let nv = ((&*v * cfg.beta2)? + (g.sqr()? * (1.0 - cfg.beta2))?)?;
                let update = ((&nm / bc1)? / ((&nv / bc2)?.sqrt()? + cfg.eps)?)?;
                let decay = if var.rank() >= 2 {
                    cfg.weight_decay
                } else {
                    0.0
                };
                var.set(&((var.as_tensor() * (1.0 - lr * decay))? - (update * lr)?)?)?;
                (*m, *v) = (nm, nv);
            }
            assert_eq!(bits(&a), bits(&ra), "step {t}");
            assert_eq!(bits(&b), bits(&rb), "step {t}");
        }
        Ok(())
    }

    /// Saving the moments after two steps and restoring them into a fresh optimiser continues
    /// exactly as an uninterrupted run; the state is keyed `m.NAME`, `v.NAME` and `t`.
    #[test]
    fn state_round_trip_resumes_bit_exactly() -> Result<()> {
        let cfg = AdamConfig::adamw(0.05, 0.1);
        let named = |a: &Var, b: &Var| vec![("w".to_string(), a.clone()), ("b".into(), b.clone())];
        let (a, b) = f32_params()?;
        let mut straight = Adam::named(named(&a, &b), cfg)?;
        for step in 0..4 {
            straight.step(&f32_loss(&a, &b, step)?.backward()?)?;
        }
        let (ra, rb) = f32_params()?;
        let mut first = Adam::named(named(&ra, &rb), cfg)?;
        for step in 0..2 {
            first.step(&f32_loss(&ra, &rb, step)?.backward()?)?;
        }
        let state = first.state();
        let mut keys: Vec<&str> = state.keys().map(String::as_str).collect();
        keys.sort();
        assert_eq!(keys, ["m.b", "m.w", "t", "v.b", "v.w"]);
        let mut resumed = Adam::named(named(&ra, &rb), cfg)?;
        resumed.load_state(&state)?;
        assert_eq!(resumed.steps(), 2);
        for step in 2..4 {
            resumed.step(&f32_loss(&ra, &rb, step)?.backward()?)?;
        }
        assert_eq!(bits(&a), bits(&ra));
        assert_eq!(bits(&b), bits(&rb));

        let mut other = Adam::named(vec![("x".into(), ra.clone())], cfg)?;
        let err = other.load_state(&state).unwrap_err().to_string();
        assert!(err.contains("m.x"), "{err}");
        Ok(())
    }

    /// `step_partial` leaves a parameter without a gradient (and its moments) alone and moves
    /// the others; `Matrices` does not decay vectors.
    #[test]
    fn partial_steps_skip_parameters_without_gradient() -> Result<()> {
        let (a, b) = f32_params()?;
        let before = bits(&b);
        let cfg = AdamConfig {
            decay: DecayScope::Matrices,
            ..AdamConfig::adamw(0.1, 0.5)
        };
        let mut opt = Adam::named(vec![("a".into(), a.clone()), ("b".into(), b.clone())], cfg)?;
        let grads = a.as_tensor().sqr()?.sum_all()?.backward()?;
        assert!(opt.step(&grads).is_err());
        opt.step_partial(&grads)?;
        assert_eq!(bits(&b), before);
        assert_eq!(opt.state()["m.b"].sum_all()?.to_scalar::<f32>()?, 0.0);
        assert_eq!(opt.steps(), 1);

        // A zero gradient leaves a vector unchanged when only matrices decay.
        let grads = (b.as_tensor().sum_all()? * 0.0)?.backward()?;
        opt.step_partial(&grads)?;
        assert_eq!(bits(&b), before);
        Ok(())
    }

    #[test]
    fn clip_grad_norm_scales_to_the_limit() -> Result<()> {
        let x = Var::from_tensor(&Tensor::new(&[1.0f32, 2.0], &Device::Cpu)?)?;
        let y = Var::from_tensor(&Tensor::new(&[3.0f64], &Device::Cpu)?)?;
        let loss = ((x.as_tensor() * Tensor::new(&[3.0f32, 4.0], &Device::Cpu)?)?
            .sum_all()?
            .to_dtype(DType::F64)?
            + (y.as_tensor() * 12.0)?.sum_all()?)?;
        let mut grads = loss.backward()?;
        let vars = [x.clone(), y.clone()];
        let norm = clip_grad_norm(&mut grads, &vars, 0.0)?;
        assert!((norm - 13.0).abs() < 1e-9, "{norm}");
        let norm = clip_grad_norm(&mut grads, &vars, 1.0)?;
        assert!((norm - 13.0).abs() < 1e-9, "{norm}");
        let gx = grads.get(x.as_tensor()).unwrap().to_vec1::<f32>()?;
        let gy = grads.get(y.as_tensor()).unwrap().to_vec1::<f64>()?;
        let after = (gx.iter().map(|g| (*g as f64).powi(2)).sum::<f64>() + gy[0] * gy[0]).sqrt();
        assert!((after - 1.0).abs() < 1e-5, "{after}");
        Ok(())
    }
}
