//! Yesterday's trainer state: the `trainer_state.json` that phase 5 of the shipped built-in
//! model was saved with (2026-12-07, before `made_up_words` existed) still reads, as the run its
//! command line describes (BENCHMARKS.md, "Phase 5"), with every later setting at its
//! "as before" value so `--resume` replays that run.

use std::path::Path;

use clipguide_train::trainer::{Objective, Trainer};

#[test]
fn the_phase5_trainer_state_reads_as_its_command_line() {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/phase5-state");
    let c = Trainer::saved_config(&dir)
        .unwrap_or_else(|e| panic!("the phase 5 state no longer reads: {e}"));
    // --steps 600 --batch 128 --lr 2e-4 --warmup 20 --checkpoint-every 100
    assert_eq!(
        (c.steps, c.batch, c.warmup, c.checkpoint_every),
        (600, 128, 20, 100)
    );
    assert_eq!(c.lr, 2e-4);
    // --hard-negatives 0.5 --singles 0.5 --colour-negatives 1.0 --size-negatives 1.0 --hard-japanese 0.4
    let h = &c.hard_negatives;
    assert_eq!(
        (h.fraction, h.singles, h.colour_weight, h.size_weight),
        (0.5, 0.5, 1.0, 1.0)
    );
    assert_eq!(h.japanese, 0.4);
    // --aux-weight 5 --noise 0 --blur 0 --shift 0 --jitter 0, no PGD
    assert_eq!(c.aux_weight, 5.0);
    let a = &c.augment;
    assert_eq!(
        (a.noise_std, a.blur_prob, a.max_shift, a.colour_jitter),
        (0.0, 0.0, 0, 0.0)
    );
    assert_eq!(a.pgd_steps, 0);
    // --varied-drawing 0.6 --pictures 0.6 --picture-pairs 0.8 --japanese 0.4 --styled 0.3
    let w = &c.world;
    assert_eq!(
        (
            w.varied_drawing,
            w.pictures,
            w.picture_pairs,
            w.japanese,
            w.styled
        ),
        (0.6, 0.6, 0.8, 0.4, 0.3)
    );
    assert_eq!(c.objective, Objective::InfoNce);
    assert_eq!(c.made_up_words, 0.0, "settings added later read as off");
}
