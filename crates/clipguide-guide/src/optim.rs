//! Adam/AdamW over candle `Var`s, refusing to step when a parameter got no gradient, and
//! learning-rate schedules as plain data evaluated per step.

use candle_core::backprop::GradStore;
use candle_core::Var;
use candle_nn::{Optimizer, ParamsAdamW};
use serde::{Deserialize, Serialize};

use crate::error::{GuideError, Result};
use crate::schedule::Keyframes;

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
}

impl Default for AdamConfig {
    fn default() -> Self {
        Self {
            lr: 0.05,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
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

    /// AdamW with learning rate `lr` and decoupled weight decay `weight_decay`.
    pub fn adamw(lr: f64, weight_decay: f64) -> Self {
        Self {
            lr,
            weight_decay,
            ..Self::default()
        }
    }
}

/// Adam/AdamW. The update itself is candle_nn's `AdamW` (with decay 0 it is exactly Adam);
/// this wrapper adds the check that every parameter received a gradient, because candle
/// silently drops gradients through ops without a backward and the image would then stop
/// changing without any error.
pub struct Adam {
    inner: candle_nn::AdamW,
    vars: Vec<Var>,
    steps: usize,
}

impl Adam {
    /// An optimiser over `vars` (e.g. [`crate::param::Parameterization::params`]).
    pub fn new(vars: Vec<Var>, config: AdamConfig) -> Result<Self> {
        if vars.is_empty() {
            return Err(GuideError::invalid(
                "optimiser parameters",
                "no variables to optimise",
            ));
        }
        let params = ParamsAdamW {
            lr: config.lr,
            beta1: config.beta1,
            beta2: config.beta2,
            eps: config.eps,
            weight_decay: config.weight_decay,
        };
        Ok(Self {
            inner: candle_nn::AdamW::new(vars.clone(), params)?,
            vars,
            steps: 0,
        })
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
        self.inner.step(grads)?;
        self.steps += 1;
        Ok(())
    }

    /// Current learning rate.
    pub fn lr(&self) -> f64 {
        self.inner.learning_rate()
    }

    /// Sets the learning rate for the following steps (e.g. from [`LrSchedule::at`]).
    pub fn set_lr(&mut self, lr: f64) {
        self.inner.set_learning_rate(lr)
    }

    /// Number of successful steps so far.
    pub fn steps(&self) -> usize {
        self.steps
    }
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
}
