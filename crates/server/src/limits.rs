//! Per-connection rate limits: two token buckets (messages and bytes).
//!
//! Buckets refill continuously from a monotonic clock, so a connection may burst up to
//! the bucket size and then sustain the refill rate. A refused request takes nothing
//! from either bucket, so a client that waits is served again.

use tokio::time::Instant;

/// A token bucket: `capacity` tokens, refilled at `per_second`.
#[derive(Debug, Clone)]
pub struct TokenBucket {
    capacity: f64,
    per_second: f64,
    tokens: f64,
    updated: Instant,
}

impl TokenBucket {
    /// A full bucket.
    pub fn new(capacity: u64, per_second: u64, now: Instant) -> Self {
        Self {
            capacity: capacity as f64,
            per_second: per_second as f64,
            tokens: capacity as f64,
            updated: now,
        }
    }

    fn refill(&mut self, now: Instant) {
        let elapsed = now.saturating_duration_since(self.updated).as_secs_f64();
        self.tokens = (self.tokens + elapsed * self.per_second).min(self.capacity);
        self.updated = now;
    }

    /// True if `n` tokens are available now.
    pub fn has(&mut self, n: u64, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= n as f64
    }

    /// True if the bucket has refilled to its capacity by `now` (nothing spent is owed).
    pub fn is_full(&mut self, now: Instant) -> bool {
        self.refill(now);
        self.tokens >= self.capacity
    }

    /// Takes `n` tokens (call after `has`).
    pub fn take(&mut self, n: u64) {
        self.tokens -= n as f64;
    }
}

/// What a request costs.
#[derive(Debug, Clone, Copy)]
pub struct Cost {
    /// Message tokens (1 for `msg`, 0 for `chunk`).
    pub messages: u64,
    /// Byte tokens.
    pub bytes: u64,
}

/// The two buckets of one connection.
#[derive(Debug, Clone)]
pub struct RateLimiter {
    messages: TokenBucket,
    bytes: TokenBucket,
}

impl RateLimiter {
    /// Full buckets sized from the configuration.
    pub fn new(config: &crate::ServeConfig, now: Instant) -> Self {
        Self {
            messages: TokenBucket::new(
                u64::from(config.message_burst),
                u64::from(config.messages_per_second),
                now,
            ),
            bytes: TokenBucket::new(config.byte_burst, config.bytes_per_second, now),
        }
    }

    /// Takes `cost` if both buckets can pay it; otherwise takes nothing and says no.
    pub fn try_spend(&mut self, cost: Cost, now: Instant) -> bool {
        if self.messages.has(cost.messages, now) && self.bytes.has(cost.bytes, now) {
            self.messages.take(cost.messages);
            self.bytes.take(cost.bytes);
            true
        } else {
            false
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn bucket_allows_burst_then_refills_at_rate() {
        let t0 = Instant::now();
        let mut b = TokenBucket::new(3, 2, t0);
        for _ in 0..3 {
            assert!(b.has(1, t0));
            b.take(1);
        }
        assert!(!b.has(1, t0));
        assert!(!b.has(1, t0 + Duration::from_millis(400)));
        assert!(b.has(1, t0 + Duration::from_millis(500)));
        // Never more than the capacity, however long it waited.
        assert!(!b.has(4, t0 + Duration::from_secs(100)));
        assert!(b.has(3, t0 + Duration::from_secs(100)));
    }

    #[test]
    fn a_refused_spend_takes_nothing() {
        let t0 = Instant::now();
        let mut r = RateLimiter {
            messages: TokenBucket::new(10, 1, t0),
            bytes: TokenBucket::new(100, 1, t0),
        };
        assert!(!r.try_spend(
            Cost {
                messages: 1,
                bytes: 101
            },
            t0
        ));
        assert!(r.try_spend(
            Cost {
                messages: 10,
                bytes: 100
            },
            t0
        ));
        assert!(!r.try_spend(
            Cost {
                messages: 1,
                bytes: 0
            },
            t0
        ));
    }
}
