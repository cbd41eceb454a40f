//! Flow control for a stream sent to a peer: how many bytes may be unacknowledged.
//!
//! The algorithm follows capnweb's (a BBR-like estimate of the bandwidth-delay product);
//! nothing of it is visible on the wire. Sizes are the lengths of the `stream` messages'
//! text, as capnweb counts them. Every write is sent first; the writer then waits while
//! the bytes in flight are at or above the window.
//!
//! One deliberate difference: capnweb starts at 256 KiB and may shrink to 64 KiB. Where
//! the cost of a message is processing rather than latency (loopback, a fast LAN), the
//! estimate converges to about one message in flight, so sender and receiver take turns
//! instead of working at once; measured on loopback, that halves throughput. capwire
//! starts at 4 MiB and never goes below 2 MiB (a couple dozen 64 KiB chunks), which keeps
//! both ends busy and still bounds what a slow reader makes either side hold. And it never
//! goes above 64 MiB (capnweb: 1 GiB), so that a sender stays within a receiver's
//! default `max_stream_buffer`.

use std::time::{Duration, Instant};

/// The window a stream starts with.
pub(crate) const INITIAL_WINDOW: f64 = 4.0 * 1024.0 * 1024.0;
const MIN_WINDOW: f64 = 2.0 * 1024.0 * 1024.0;
/// capnweb allows 1 GiB; capwire stays well under a receiver's default
/// `max_stream_buffer` (128 MiB), which is 64 MiB in flight per round trip: 640 MB/s at
/// 100 ms.
const MAX_WINDOW: f64 = 64.0 * 1024.0 * 1024.0;
const STARTUP_GROWTH: f64 = 2.0;
const STEADY_GROWTH: f64 = 1.25;
const DECAY: f64 = 0.9;
/// Rounds without real growth that end the startup phase.
const STARTUP_ROUNDS: u32 = 3;

/// What the controller remembers of one write until its acknowledgement.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sent {
    seq: u64,
    size: u64,
    at: Instant,
    /// Bytes delivered, and when the last of them was, as of this send (`None` before the
    /// first acknowledgement).
    delivered: Option<(u64, Instant)>,
    window: f64,
    filled_window: bool,
}

#[derive(Debug)]
pub(crate) struct FlowController {
    window: f64,
    in_flight: u64,
    delivered: u64,
    last_ack: Option<Instant>,
    /// Delivered total and time at the first acknowledgement: the baseline of estimates
    /// for writes sent before it.
    first_ack: Option<(u64, Instant)>,
    min_rtt: Option<Duration>,
    startup: bool,
    rounds_without_growth: u32,
    round_start_seq: u64,
    round_start_window: f64,
    next_seq: u64,
}

impl Default for FlowController {
    fn default() -> Self {
        FlowController {
            window: INITIAL_WINDOW,
            in_flight: 0,
            delivered: 0,
            last_ack: None,
            first_ack: None,
            min_rtt: None,
            startup: true,
            rounds_without_growth: 0,
            round_start_seq: 0,
            round_start_window: INITIAL_WINDOW,
            next_seq: 0,
        }
    }
}

impl FlowController {
    /// Records a write of `size` bytes sent at `now`.
    pub(crate) fn on_send(&mut self, size: usize, now: Instant) -> Sent {
        let size = size as u64;
        self.in_flight += size;
        let sent = Sent {
            seq: self.next_seq,
            size,
            at: now,
            delivered: self.last_ack.map(|t| (self.delivered, t)),
            window: self.window,
            filled_window: self.in_flight as f64 >= self.window,
        };
        self.next_seq += 1;
        sent
    }

    /// A write failed: its bytes are no longer in flight, and nothing is learned.
    pub(crate) fn on_reject(&mut self, sent: &Sent) {
        self.in_flight = self.in_flight.saturating_sub(sent.size);
    }

    /// A write was acknowledged at `now`.
    pub(crate) fn on_ack(&mut self, sent: &Sent, now: Instant) {
        self.in_flight = self.in_flight.saturating_sub(sent.size);
        self.delivered += sent.size;
        let rtt = now.saturating_duration_since(sent.at);
        self.min_rtt = Some(self.min_rtt.map_or(rtt, |m| m.min(rtt)));
        let Some(first) = self.first_ack else {
            // The first acknowledgement only sets the baseline.
            self.first_ack = Some((self.delivered, now));
            self.last_ack = Some(now);
            return;
        };
        let (base_delivered, base_time) = sent.delivered.unwrap_or(first);
        let elapsed = now.saturating_duration_since(base_time).as_secs_f64();
        let min_rtt = self.min_rtt.unwrap_or_default().as_secs_f64();
        // Zero intervals teach nothing (and would make the estimate NaN or infinite).
        if elapsed > 0.0 && min_rtt > 0.0 {
            let bandwidth = self.delivered.saturating_sub(base_delivered) as f64 / elapsed;
            let growth = if self.startup {
                STARTUP_GROWTH
            } else {
                STEADY_GROWTH
            };
            let mut candidate = (bandwidth * min_rtt * growth).min(sent.window * growth);
            candidate = if sent.filled_window {
                candidate.max(sent.window * DECAY)
            } else {
                // A sender that is not keeping the link full gets no smaller window.
                candidate.max(self.window)
            };
            self.window = candidate.clamp(MIN_WINDOW, MAX_WINDOW);
        }
        if sent.seq >= self.round_start_seq {
            if self.window > self.round_start_window * STEADY_GROWTH {
                self.rounds_without_growth = 0;
            } else {
                self.rounds_without_growth += 1;
                if self.rounds_without_growth >= STARTUP_ROUNDS {
                    self.startup = false;
                }
            }
            self.round_start_seq = self.next_seq;
            self.round_start_window = self.window;
        }
        self.last_ack = Some(now);
    }

    /// Whether another write may be sent now.
    pub(crate) fn open(&self) -> bool {
        (self.in_flight as f64) < self.window
    }

    pub(crate) fn in_flight(&self) -> u64 {
        self.in_flight
    }

    #[cfg(test)]
    fn window(&self) -> f64 {
        self.window
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const CHUNK: usize = 64 * 1024;

    #[test]
    fn the_window_closes_once_the_initial_window_is_in_flight() {
        let mut flow = FlowController::default();
        let now = Instant::now();
        let mut sent = 0;
        while flow.open() {
            flow.on_send(CHUNK, now);
            sent += 1;
        }
        assert_eq!(sent, 64, "4 MiB of 64 KiB writes");
        assert_eq!(flow.in_flight(), 64 * CHUNK as u64);
    }

    #[test]
    fn a_fast_link_with_delay_grows_the_window_and_a_slow_reader_shrinks_it() {
        let mut flow = FlowController::default();
        let start = Instant::now();
        let rtt = Duration::from_millis(20);
        // A link that acknowledges every write one RTT later, at 1 GB/s: the window grows
        // towards the bandwidth-delay product (20 MB).
        let mut clock = start;
        let mut pending = std::collections::VecDeque::new();
        for _ in 0..2000 {
            while flow.open() {
                pending.push_back(flow.on_send(CHUNK, clock));
            }
            let sent = pending.pop_front().expect("something in flight");
            clock = clock.max(sent.at + rtt) + Duration::from_micros(65);
            flow.on_ack(&sent, clock);
        }
        let grown = flow.window();
        assert!(grown > INITIAL_WINDOW * 2.0, "window grew to {grown}");
        assert!(grown <= MAX_WINDOW);
        // Now the reader takes one write per 100 ms: the window decays by a tenth per
        // window acknowledged, towards the minimum.
        for _ in 0..20_000 {
            while flow.open() {
                pending.push_back(flow.on_send(CHUNK, clock));
            }
            let sent = pending.pop_front().expect("something in flight");
            clock += Duration::from_millis(100);
            flow.on_ack(&sent, clock);
        }
        let decayed = flow.window();
        assert!(
            (MIN_WINDOW..INITIAL_WINDOW).contains(&decayed),
            "window decayed to {decayed}"
        );
    }

    #[test]
    fn zero_intervals_leave_the_window_finite() {
        let mut flow = FlowController::default();
        let now = Instant::now();
        let a = flow.on_send(CHUNK, now);
        let b = flow.on_send(CHUNK, now);
        flow.on_ack(&a, now);
        flow.on_ack(&b, now);
        assert!(flow.window().is_finite());
        assert_eq!(flow.window(), INITIAL_WINDOW);
        assert_eq!(flow.in_flight(), 0);
    }

    #[test]
    fn a_rejected_write_leaves_flight() {
        let mut flow = FlowController::default();
        let sent = flow.on_send(CHUNK, Instant::now());
        flow.on_reject(&sent);
        assert_eq!(flow.in_flight(), 0);
    }
}
