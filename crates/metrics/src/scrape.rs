//! `promhttp_metric_handler_*`: the `/metrics` handler's own counts, as Prometheus' Go
//! handler keeps them (the scrape being served is in flight, not yet counted).

use crate::exposition::Exposition;
use crate::primitives::{Counter, Gauge};

/// The status codes the Go handler counts, each shown from the start.
const CODES: [u16; 3] = [200, 500, 503];

static REQUESTS: [Counter; 3] = [const { Counter::new() }; 3];
static IN_FLIGHT: Gauge = Gauge::new();

/// One scrape being served: in flight until [`Scrape::done`] counts it (or it is dropped
/// unanswered, not counted).
#[derive(Debug)]
pub struct Scrape(());

impl Scrape {
    pub fn begin() -> Scrape {
        IN_FLIGHT.inc();
        Scrape(())
    }

    /// The scrape was answered with HTTP status `code`.
    pub fn done(self, code: u16) {
        if let Some(i) = CODES.iter().position(|c| *c == code) {
            REQUESTS[i].inc();
        }
    }
}

impl Drop for Scrape {
    fn drop(&mut self) {
        IN_FLIGHT.dec();
    }
}

pub(crate) fn render(out: &mut Exposition) {
    out.gauge_of(
        "promhttp_metric_handler_requests_in_flight",
        "Current number of scrapes being served.",
        &IN_FLIGHT,
    );
    let name = "promhttp_metric_handler_requests_total";
    out.family(
        name,
        "counter",
        "Total number of scrapes by HTTP status code.",
    );
    for (code, c) in CODES.iter().zip(&REQUESTS) {
        out.sample(name, &[("code", &code.to_string())], c.get() as f64);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_scrape_is_in_flight_then_counted() {
        let s = Scrape::begin();
        let mut out = Exposition::default();
        render(&mut out);
        assert!(out
            .0
            .contains("promhttp_metric_handler_requests_in_flight 1\n"));
        s.done(200);
        assert_eq!(IN_FLIGHT.get(), 0);
        assert_eq!(REQUESTS[0].get(), 1);
    }
}
