//! Hub download path against a loopback HTTP server that serves a fixture checkpoint in the
//! hub's URL layout (`/{owner}/{name}/resolve/{revision}/{file}` with ETag, X-Repo-Commit and
//! Range support, as the real hub does). One test function: HF_* variables are process-wide.

mod common;
use candle_core::Device;
use clipguide_clip::{hub, Clip};
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::PathBuf;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

const COMMIT: &str = "0123456789abcdef0123456789abcdef01234567";

fn etag(bytes: &[u8]) -> String {
    // FNV-1a, hex: any stable content hash works as an ETag.
    let mut h: u64 = 0xcbf29ce484222325;
    for b in bytes {
        h ^= *b as u64;
        h = h.wrapping_mul(0x100000001b3);
    }
    format!("{h:016x}")
}

type Repo = (&'static str, Vec<(&'static str, PathBuf)>);

/// Serves each repo's files under `/{repo}/resolve/main/`; returns the base URL and a request
/// counter.
fn serve(repos: Vec<Repo>) -> (String, Arc<AtomicUsize>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let count = Arc::new(AtomicUsize::new(0));
    let c2 = count.clone();
    std::thread::spawn(move || {
        // Bounded: a test makes a few dozen requests at most.
        for stream in listener.incoming().take(200) {
            let Ok(mut stream) = stream else { continue };
            c2.fetch_add(1, Ordering::SeqCst);
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut line = String::new();
            reader.read_line(&mut line).unwrap();
            let path = line.split_whitespace().nth(1).unwrap_or("").to_string();
            let mut range_start = 0usize;
            loop {
                let mut h = String::new();
                if reader.read_line(&mut h).unwrap() == 0 || h == "\r\n" {
                    break;
                }
                let lower = h.to_ascii_lowercase();
                if let Some(r) = lower.strip_prefix("range: bytes=") {
                    range_start = r.trim().split('-').next().unwrap().parse().unwrap_or(0);
                }
            }
            let body = repos.iter().find_map(|(repo, files)| {
                let prefix = format!("/{repo}/resolve/main/");
                path.strip_prefix(&prefix)
                    .and_then(|f| files.iter().find(|(n, _)| *n == f))
                    .map(|(_, p)| std::fs::read(p).unwrap())
            });
            let resp = match body {
                None => b"HTTP/1.1 404 Not Found\r\nContent-Length: 0\r\nConnection: close\r\n\r\n"
                    .to_vec(),
                Some(bytes) => {
                    let size = bytes.len();
                    let end = size - 1;
                    let part = &bytes[range_start.min(size)..];
                    let mut r = format!(
                        "HTTP/1.1 206 Partial Content\r\nETag: \"{}\"\r\nX-Repo-Commit: {COMMIT}\r\nContent-Range: bytes {range_start}-{end}/{size}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
                        etag(&bytes),
                        part.len()
                    )
                    .into_bytes();
                    r.extend_from_slice(part);
                    r
                }
            };
            let _ = stream.write_all(&resp);
            let _ = stream.flush();
            let mut sink = Vec::new();
            let _ = stream.read_to_end(&mut sink);
        }
    });
    (format!("http://{addr}"), count)
}

#[test]
fn downloads_from_a_hub_layout_server_then_reuses_the_cache() {
    let fx = common::fixture("tiny-clip-quickgelu");
    let home = tempfile::tempdir().unwrap();
    let oc = common::fixture("openclip/oc-quickgelu");
    let ls = common::fixture("openclip/oc-gelu-ls");
    let rinna = common::fixture("rinna/tiny-clip");
    // A DFN-like repo: its published config omits quick_gelu.
    let silent = tempfile::tempdir().unwrap();
    let silent_cfg = silent.path().join("open_clip_config.json");
    let cfg = std::fs::read_to_string(ls.join("open_clip_config.json")).unwrap();
    std::fs::write(&silent_cfg, cfg.replace("\"quick_gelu\": false,", "")).unwrap();
    let (url, count) = serve(vec![
        (
            "clipguide-test/tiny-clip",
            vec![
                ("config.json", fx.join("config.json")),
                ("model.safetensors", fx.join("model.safetensors")),
            ],
        ),
        (
            "clipguide-test/oc-tiny",
            vec![
                ("open_clip_config.json", oc.join("open_clip_config.json")),
                (
                    "open_clip_model.safetensors",
                    oc.join("open_clip_model.safetensors"),
                ),
            ],
        ),
        (
            "rinna/japanese-clip-vit-b-16",
            vec![
                ("config.json", rinna.join("config.json")),
                ("pytorch_model.bin", rinna.join("pytorch_model.bin")),
            ],
        ),
        (
            "rinna/japanese-roberta-base",
            vec![
                ("spiece.model", rinna.join("spiece.model")),
                (
                    "special_tokens_map.json",
                    rinna.join("special_tokens_map.json"),
                ),
                ("tokenizer_config.json", rinna.join("tokenizer_config.json")),
            ],
        ),
        (
            "apple/DFN5B-CLIP-ViT-H-14-378",
            vec![
                ("open_clip_config.json", silent_cfg.clone()),
                (
                    "open_clip_pytorch_model.bin",
                    ls.join("open_clip_pytorch_model.bin"),
                ),
            ],
        ),
    ]);
    std::env::set_var("HF_HOME", home.path());
    std::env::set_var("HF_ENDPOINT", &url);
    std::env::remove_var("HF_HUB_OFFLINE");

    // Download: files land in the standard cache layout and load like a local folder.
    let dir = hub::resolve("clipguide-test/tiny-clip", false).unwrap();
    assert!(
        dir.starts_with(
            home.path()
                .join("hub/models--clipguide-test--tiny-clip/snapshots")
        ),
        "{}",
        dir.display()
    );
    assert_eq!(
        std::fs::read(dir.join("model.safetensors")).unwrap(),
        std::fs::read(fx.join("model.safetensors")).unwrap()
    );
    let served = count.load(Ordering::SeqCst);
    assert!(
        served >= 4,
        "expected probe + download requests, saw {served}"
    );
    let clip = Clip::load(&dir, &Device::Cpu).unwrap();
    let local = Clip::load(&fx, &Device::Cpu).unwrap();
    let a = clip.embed_texts(&["a red circle"]).unwrap();
    let b = local.embed_texts(&["a red circle"]).unwrap();
    common::assert_close("hub vs local", &a, &b, 0.0);

    // Second resolve: served from the cache, no required file fetched again.
    let before = count.load(Ordering::SeqCst);
    let again = hub::resolve("clipguide-test/tiny-clip", false).unwrap();
    assert_eq!(again, dir);
    let after = count.load(Ordering::SeqCst);
    // Only the optional files (absent on the server: 404) are asked for again.
    assert!(
        after - before <= 5,
        "{} requests for a cached model",
        after - before
    );

    // An OpenCLIP repo (only open_clip_config.json + weights) loads from its own files.
    let oc_dir = hub::resolve("clipguide-test/oc-tiny", false).unwrap();
    assert!(oc_dir.join("open_clip_model.safetensors").exists());
    assert!(!oc_dir.join("config.json").exists());
    let from_hub = Clip::load(&oc_dir, &Device::Cpu).unwrap();
    let local = Clip::load(&oc, &Device::Cpu).unwrap();
    let texts = ["sunflower oil painting", "a photo of a cat"];
    common::assert_close(
        "OpenCLIP hub vs local",
        &from_hub.embed_texts(&texts).unwrap(),
        &local.embed_texts(&texts).unwrap(),
        0.0,
    );
    // The torch .bin of a repo known to be trained with QuickGELU: the table applies, and says so.
    let dfn = hub::resolve("apple/DFN5B-CLIP-ViT-H-14-378", false).unwrap();
    let (clip, notes) = Clip::load_with(
        &dfn,
        &Device::Cpu,
        &clipguide_clip::OpenClipOptions::default(),
    )
    .unwrap();
    assert_eq!(
        clip.model.config().vision.hidden_act,
        clipguide_clip::Activation::QuickGelu
    );
    assert!(
        notes
            .iter()
            .any(|n| n.contains("apple/DFN5B-CLIP-ViT-H-14-378") && n.contains("overridden: gelu")),
        "{notes:?}"
    );

    // rinna's repo has no tokenizer: the hub path fetches rinna/japanese-roberta-base's.
    let jp = hub::resolve("rinna/japanese-clip-vit-b-16", false).unwrap();
    assert!(!jp.join("spiece.model").exists());
    let from_hub = Clip::load(&jp, &Device::Cpu).unwrap();
    let local = Clip::load(&rinna, &Device::Cpu).unwrap();
    let texts = ["ひまわりの油絵", "犬の写真"];
    common::assert_close(
        "rinna hub vs local",
        &from_hub.embed_texts(&texts).unwrap(),
        &local.embed_texts(&texts).unwrap(),
        0.0,
    );

    // Offline mode: the cache answers, and a repo that is not cached fails with a clear message.
    std::env::set_var("HF_HUB_OFFLINE", "1");
    let before = count.load(Ordering::SeqCst);
    assert_eq!(
        hub::resolve("clipguide-test/tiny-clip", false).unwrap(),
        dir
    );
    assert_eq!(
        hub::resolve("clipguide-test/oc-tiny", false).unwrap(),
        oc_dir
    );
    assert_eq!(
        count.load(Ordering::SeqCst),
        before,
        "offline mode touched the network"
    );
    let e = hub::resolve("clipguide-test/not-cached", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("HF_HUB_OFFLINE") && e.contains("config.json"),
        "{e}"
    );
    std::env::remove_var("HF_HUB_OFFLINE");

    // A repo the server does not have: an error naming the repo and the file.
    let e = hub::resolve("clipguide-test/missing", false)
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("clipguide-test/missing")
            && e.contains("config.json")
            && e.contains("open_clip_config.json"),
        "{e}"
    );
}
