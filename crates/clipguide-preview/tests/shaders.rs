//! Every WGSL file in the repository's `shaders/` folder parses and validates
//! with naga, without needing a GPU.

use std::path::PathBuf;

fn shader_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../shaders")
}

#[test]
fn every_shader_parses_and_validates() {
    let mut checked = Vec::new();
    for entry in std::fs::read_dir(shader_dir()).expect("shaders/ folder missing") {
        let path = entry.unwrap().path();
        if path.extension().is_none_or(|e| e != "wgsl") {
            continue;
        }
        let source = std::fs::read_to_string(&path).unwrap();
        let module = naga::front::wgsl::parse_str(&source)
            .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));
        naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .unwrap_or_else(|e| panic!("{}: {}", path.display(), e.emit_to_string(&source)));

        // The renderer builds every pipeline from these two entry points.
        let mut entry_points: Vec<(&str, naga::ShaderStage)> = module
            .entry_points
            .iter()
            .map(|e| (e.name.as_str(), e.stage))
            .collect();
        entry_points.sort_by_key(|(name, _)| *name);
        assert_eq!(
            entry_points,
            [
                ("fs_main", naga::ShaderStage::Fragment),
                ("vs_main", naga::ShaderStage::Vertex)
            ],
            "{}",
            path.display()
        );
        checked.push(path.file_name().unwrap().to_string_lossy().into_owned());
    }
    checked.sort();
    assert_eq!(checked, ["image.wgsl", "plot.wgsl", "text.wgsl"]);
}

#[test]
fn a_broken_shader_is_rejected() {
    // Guards the test above against a validator that accepts anything.
    let source = "@fragment fn fs_main() -> @location(0) vec4<f32> { return vec3<f32>(1.0); }";
    let rejected = match naga::front::wgsl::parse_str(source) {
        Err(_) => true,
        Ok(module) => naga::valid::Validator::new(
            naga::valid::ValidationFlags::all(),
            naga::valid::Capabilities::default(),
        )
        .validate(&module)
        .is_err(),
    };
    assert!(rejected);
}
