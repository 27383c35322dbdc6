//! Without a display the window reports an error the caller can print, instead
//! of panicking. Its own test binary: winit allows one event loop per process.
#![cfg(all(feature = "window", target_os = "linux"))]

use std::sync::mpsc::{channel, sync_channel};

use clipguide_preview::{spawn_preview, PreviewError};

#[test]
fn no_display_is_a_typed_error() {
    std::env::remove_var("DISPLAY");
    std::env::remove_var("WAYLAND_DISPLAY");
    std::env::remove_var("WAYLAND_SOCKET");
    let (_frame_tx, frame_rx) = sync_channel(1);
    let (control_tx, _control_rx) = channel();
    match spawn_preview(frame_rx, control_tx) {
        Err(err @ PreviewError::NoDisplay(_)) => {
            assert!(err.to_string().contains("DISPLAY"), "{err}");
        }
        Err(other) => panic!("expected NoDisplay, got {other}"),
        Ok(_) => panic!("a window opened without a display"),
    }
}
