//! The deterministic simulation (issue 6): thousands of seeds in CI, more on demand.
//!
//! - `DONGHANH_SIM_SEEDS=N` runs N seeds (default 2,000, split over two threads);
//! - `DONGHANH_SIM_FIRST=S` starts at seed S (default 1), so long runs can cover new ground;
//! - `DONGHANH_SIM_SEED=S` replays one seed and prints its trace.

#![allow(clippy::expect_used, clippy::print_stdout, clippy::panic)]

use donghanh_sim::{Options, Outcome, run};

fn env_u64(name: &str) -> Option<u64> {
    std::env::var(name).ok().map(|v| {
        v.parse()
            .unwrap_or_else(|_| panic!("{name} must be a number, not {v:?}"))
    })
}

#[test]
fn every_seed_keeps_every_invariant() {
    let options = Options::default();
    if let Some(seed) = env_u64("DONGHANH_SIM_SEED") {
        match run(seed, &options) {
            Ok(out) => {
                for line in &out.trace {
                    println!("  {line}");
                }
                let out = Outcome {
                    trace: Vec::new(),
                    ..out
                };
                println!("seed {seed}: ok {out:?}");
            }
            Err(f) => panic!("{f}"),
        }
        return;
    }
    let seeds = env_u64("DONGHANH_SIM_SEEDS").unwrap_or(2_000);
    let first = env_u64("DONGHANH_SIM_FIRST").unwrap_or(1);
    let started = std::time::Instant::now();
    let threads = 2;
    let results: Vec<Result<Outcome, String>> = std::thread::scope(|s| {
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                let options = options.clone();
                s.spawn(move || {
                    let mut total = Outcome::default();
                    let mut seed = first + t;
                    while seed < first + seeds {
                        match run(seed, &options) {
                            Ok(out) => total.add(&out),
                            Err(f) => return Err(f.to_string()),
                        }
                        seed += threads;
                    }
                    Ok(total)
                })
            })
            .collect();
        handles
            .into_iter()
            .map(|h| h.join().expect("a simulation thread"))
            .collect()
    });
    let mut total = Outcome::default();
    for r in results {
        match r {
            Ok(out) => total.add(&out),
            Err(failure) => panic!("{failure}"),
        }
    }
    println!(
        "simulation: {seeds} seeds from {first} in {:.1} s: {} steps, {} sync rounds ({} failed on a fault), \
         {} exchanges, {} faults injected {:?}, {} server restarts, {} mutations ({} rejected), \
         {} reassignments, {} purges, {} revocations, {} conflicts resolved",
        started.elapsed().as_secs_f64(),
        total.steps,
        total.syncs,
        total.failed_syncs,
        total.exchanges,
        total.fault_total(),
        total.faults,
        total.restarts,
        total.mutations,
        total.rejected,
        total.reassignments,
        total.purges,
        total.revocations,
        total.resolved
    );
    // The faults and the work really happened (a simulation that injects nothing proves nothing).
    assert!(total.fault_total() > seeds, "{total:?}");
    assert!(
        total.purges > 0 && total.reassignments > 0 && total.restarts > 0,
        "{total:?}"
    );
}

#[test]
fn a_seed_replays_exactly() {
    let options = Options::default();
    for seed in [7, 4242] {
        let a = run(seed, &options).unwrap_or_else(|f| panic!("{f}"));
        let b = run(seed, &options).unwrap_or_else(|f| panic!("{f}"));
        assert_eq!(a, b, "seed {seed} ran two ways");
        assert!(a.fault_total() > 0, "{a:?}");
    }
}
