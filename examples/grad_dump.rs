use candle_core::{DType, Device, Tensor};
use candle_nn::{VarBuilder, VarMap};
use clipguide_clip::{l2_normalize, ClipConfig, ClipModel};
use std::collections::HashMap;
fn main() -> Result<(), Box<dyn std::error::Error>> {
    let dir = std::path::PathBuf::from(std::env::args().nth(1).unwrap());
    let dev = Device::Cpu;
    let cfg = ClipConfig::from_file(&dir.join("config.json"))?;
    let vm = VarMap::new();
    let model = ClipModel::new(&cfg, VarBuilder::from_varmap(&vm, DType::F32, &dev))?;
    let mut vm = vm;
    vm.load(dir.join("model.safetensors"))?;
    let inp = candle_core::safetensors::load("/tmp/gc/gin.safetensors", &dev)?;
    let ids = inp["input_ids"].to_dtype(DType::U32)?;
    let img = model.image_features(&inp["pixel_values"])?;
    let txt = model.text_features(&ids)?;
    let loss = ((l2_normalize(&img)? * &inp["w1"])?.sum_all()?
        + (l2_normalize(&txt)? * &inp["w2"])?.sum_all()?)?;
    println!("loss {}", loss.to_scalar::<f32>()?);
    let grads = loss.backward()?;
    let mut out: HashMap<String, Tensor> = HashMap::new();
    for (k, v) in vm.data().lock().unwrap().iter() {
        if let Some(g) = grads.get(v.as_tensor()) {
            out.insert(k.clone(), g.clone());
        }
    }
    candle_core::safetensors::save(&out, "/tmp/gc/grust.safetensors")?;
    Ok(())
}
