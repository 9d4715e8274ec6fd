//! `/metrics`: Prometheus counters (DESIGN.md §5). Counts only: no ids, no names, no labels
//! that could single out a person or a case.

use std::fmt::Write;
use std::sync::atomic::{AtomicU64, Ordering};

/// The server's counters.
#[derive(Debug, Default)]
pub struct Metrics {
    /// Requests answered, by status class.
    pub responses_2xx: AtomicU64,
    /// Client errors answered.
    pub responses_4xx: AtomicU64,
    /// Server errors answered.
    pub responses_5xx: AtomicU64,
    /// Mutations received in pushes.
    pub mutations: AtomicU64,
    /// Mutations rejected.
    pub mutations_rejected: AtomicU64,
    /// Mutations that conflicted.
    pub mutations_conflicted: AtomicU64,
    /// Pull pages served.
    pub pull_pages: AtomicU64,
    /// Changes served in pull pages.
    pub changes_served: AtomicU64,
    /// Logins refused for a wrong username or password.
    pub login_failures: AtomicU64,
    /// Logins refused because a username or a client address is over its limit.
    pub logins_rate_limited: AtomicU64,
}

impl Metrics {
    /// Adds `n` to a counter.
    pub fn add(counter: &AtomicU64, n: u64) {
        counter.fetch_add(n, Ordering::Relaxed);
    }

    /// The Prometheus text exposition.
    #[must_use]
    pub fn render(&self) -> String {
        let mut out = String::new();
        let mut counter = |name: &str, help: &str, samples: &[(&str, &AtomicU64)]| {
            let _ = writeln!(out, "# HELP {name} {help}");
            let _ = writeln!(out, "# TYPE {name} counter");
            for (labels, value) in samples {
                let _ = writeln!(out, "{name}{labels} {}", value.load(Ordering::Relaxed));
            }
        };
        counter(
            "donghanh_http_responses_total",
            "HTTP responses by status class.",
            &[
                ("{class=\"2xx\"}", &self.responses_2xx),
                ("{class=\"4xx\"}", &self.responses_4xx),
                ("{class=\"5xx\"}", &self.responses_5xx),
            ],
        );
        counter(
            "donghanh_mutations_total",
            "Pushed mutations by outcome.",
            &[
                ("{outcome=\"received\"}", &self.mutations),
                ("{outcome=\"rejected\"}", &self.mutations_rejected),
                ("{outcome=\"conflict\"}", &self.mutations_conflicted),
            ],
        );
        counter(
            "donghanh_pull_pages_total",
            "Pull pages served.",
            &[("", &self.pull_pages)],
        );
        counter(
            "donghanh_changes_served_total",
            "Changes served in pull pages.",
            &[("", &self.changes_served)],
        );
        counter(
            "donghanh_login_refusals_total",
            "Logins refused, by reason.",
            &[
                ("{reason=\"wrong_credentials\"}", &self.login_failures),
                ("{reason=\"rate_limited\"}", &self.logins_rate_limited),
            ],
        );
        out
    }
}
