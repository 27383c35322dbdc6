//! AdamW with inspectable state. candle-nn's AdamW keeps its moments private, and bit-exact
//! `--resume` needs them saved beside the checkpoint, so this small copy exposes them.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};
use std::collections::HashMap;

#[derive(Debug, Clone, Copy)]
pub struct AdamWConfig {
    pub lr: f64,
    pub beta1: f64,
    pub beta2: f64,
    pub eps: f64,
    pub weight_decay: f64,
}

impl Default for AdamWConfig {
    fn default() -> Self {
        Self {
            lr: 1e-3,
            beta1: 0.9,
            beta2: 0.98,
            eps: 1e-6,
            weight_decay: 0.05,
        }
    }
}

pub struct AdamW {
    /// Parameter names, in the order of `vars`; state is saved under these names.
    names: Vec<String>,
    vars: Vec<Var>,
    m: Vec<Var>,
    v: Vec<Var>,
    t: usize,
    cfg: AdamWConfig,
    /// Per-parameter learning-rate multipliers (1 unless set).
    lr_mult: Vec<f64>,
}

impl AdamW {
    /// `named` must be in a stable order (sorted by name): it fixes the summation order of the
    /// gradient norm and thus bit-exact resumes.
    pub fn new(named: Vec<(String, Var)>, cfg: AdamWConfig) -> Result<Self> {
        let (names, vars): (Vec<String>, Vec<Var>) = named.into_iter().unzip();
        let m = vars
            .iter()
            .map(|v| Var::zeros(v.shape(), v.dtype(), v.device()))
            .collect::<Result<_>>()?;
        let v2 = vars
            .iter()
            .map(|v| Var::zeros(v.shape(), v.dtype(), v.device()))
            .collect::<Result<_>>()?;
        let lr_mult = vec![1.0; names.len()];
        Ok(Self {
            lr_mult,
            names,
            vars,
            m,
            v: v2,
            t: 0,
            cfg,
        })
    }

    /// Multiplies the learning rate of every parameter whose name satisfies `pick`.
    pub fn set_lr_multiplier(&mut self, pick: impl Fn(&str) -> bool, mult: f64) {
        for (name, m) in self.names.iter().zip(self.lr_mult.iter_mut()) {
            if pick(name) {
                *m = mult;
            }
        }
    }

    pub fn set_lr(&mut self, lr: f64) {
        self.cfg.lr = lr;
    }

    /// Parameters without a gradient are left alone (e.g. unused token embeddings rows still get
    /// a zero gradient through index_select; whole tensors can be absent when frozen).
    pub fn step(&mut self, grads: &GradStore) -> Result<()> {
        self.t += 1;
        let c = self.cfg;
        let bc1 = 1.0 - c.beta1.powi(self.t as i32);
        let bc2 = 1.0 - c.beta2.powi(self.t as i32);
        for (((var, m), v), mult) in self
            .vars
            .iter()
            .zip(&self.m)
            .zip(&self.v)
            .zip(&self.lr_mult)
        {
            let lr = c.lr * mult;
            let Some(g) = grads.get(var.as_tensor()) else {
                continue;
            };
            let nm = ((m.as_tensor() * c.beta1)? + (g * (1.0 - c.beta1))?)?;
            let nv = ((v.as_tensor() * c.beta2)? + (g.sqr()? * (1.0 - c.beta2))?)?;
            let update = ((&nm / bc1)? / ((&nv / bc2)?.sqrt()? + c.eps)?)?;
            // Decay only matrices (weights), as is customary: not biases, norms or the temperature.
            let decay = if var.rank() >= 2 { c.weight_decay } else { 0.0 };
            let new = ((var.as_tensor() * (1.0 - lr * decay))? - (update * lr)?)?;
            m.set(&nm)?;
            v.set(&nv)?;
            var.set(&new)?;
        }
        Ok(())
    }

    pub fn vars(&self) -> &[Var] {
        &self.vars
    }

    /// Moments and step count, keyed by parameter name.
    pub fn state(&self) -> HashMap<String, Tensor> {
        let mut s = HashMap::new();
        for ((name, m), v) in self.names.iter().zip(&self.m).zip(&self.v) {
            s.insert(format!("m.{name}"), m.as_tensor().clone());
            s.insert(format!("v.{name}"), v.as_tensor().clone());
        }
        s.insert(
            "t".into(),
            Tensor::new(self.t as u32, self.m[0].device()).expect("scalar"),
        );
        s
    }

    pub fn load_state(&mut self, s: &HashMap<String, Tensor>) -> Result<()> {
        for ((name, m), v) in self.names.iter().zip(&self.m).zip(&self.v) {
            let get = |k: String| {
                s.get(&k)
                    .cloned()
                    .ok_or_else(|| candle_core::Error::Msg(format!("trainer state lacks {k}: the checkpoint was written by another model shape")))
            };
            m.set(&get(format!("m.{name}"))?)?;
            v.set(&get(format!("v.{name}"))?)?;
        }
        self.t = s
            .get("t")
            .ok_or_else(|| candle_core::Error::Msg("trainer state lacks t".into()))?
            .to_scalar::<u32>()? as usize;
        Ok(())
    }
}

/// Scales all gradients so their global L2 norm is at most `max_norm`.
pub fn clip_grad_norm(grads: &mut GradStore, vars: &[Var], max_norm: f64) -> Result<f64> {
    let mut total = 0f64;
    for v in vars {
        if let Some(g) = grads.get(v.as_tensor()) {
            total += g.sqr()?.sum_all()?.to_scalar::<f32>()? as f64;
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
