//! Opens the live preview window and feeds it a fake optimisation (a drifting
//! pattern) for a few seconds: `cargo run -p clipguide-preview --example live_preview [steps]`.

use std::sync::mpsc::{channel, sync_channel};
use std::time::Duration;

use clipguide_preview::{spawn_preview, Control, Filter, PreviewFrame, RgbImage};

fn main() {
    let steps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(300);
    let (frame_tx, frame_rx) = sync_channel(1);
    let (control_tx, control_rx) = channel();
    let window = match spawn_preview(frame_rx, control_tx) {
        Ok(window) => Some(window),
        Err(e) => {
            eprintln!("running without preview: {e}");
            None
        }
    };

    let mut history = Vec::new();
    let mut paused = false;
    let mut step = 0;
    while step < steps {
        for control in control_rx.try_iter() {
            println!("control: {control:?}");
            match control {
                Control::TogglePause => paused = !paused,
                Control::SaveFrame => println!("(would save frame {step})"),
                Control::Stop => return,
            }
        }
        if paused {
            std::thread::sleep(Duration::from_millis(20));
            continue;
        }
        // Stand-in for an optimisation step.
        std::thread::sleep(Duration::from_millis(20));
        let t = step as f32 * 0.05;
        let image = RgbImage::from_fn(64, 64, |x, y| {
            let v = ((x as f32 * 0.2 + t).sin() * (y as f32 * 0.15 - t).cos() + 1.0) * 120.0;
            image::Rgb([v as u8, (255.0 - v) as u8, 128])
        });
        history.push(0.2 + 0.1 * (1.0 - (-t / 4.0).exp()));
        let frame = PreviewFrame {
            cutouts: vec![image::imageops::crop_imm(&image, 8, 8, 32, 32).to_image()],
            image,
            step,
            similarity: *history.last().unwrap(),
            history: history.clone(),
            filter: Filter::Nearest,
        };
        // Never wait for the window: if it has not taken the last frame, skip this one.
        let _ = frame_tx.try_send(frame);
        step += 1;
    }
    println!("finished {step} steps");
    if let Some(window) = window {
        window.wait();
    }
}
