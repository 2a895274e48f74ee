//! The store's clock: what every machine sharing a store agrees on.

/// The store's clock as of a read: the one clock all machines share.
#[derive(Debug, Clone, Copy)]
pub struct Clock {
    /// The store's time at the read (Doppler's `Date`), Unix seconds.
    server: Option<i64>,
    /// This machine's time at the read.
    local: i64,
    at: std::time::Instant,
}

impl Clock {
    pub(crate) fn of(server: Option<i64>) -> Clock {
        Clock {
            server,
            local: crate::token::now(),
            at: std::time::Instant::now(),
        }
    }

    /// The store's time now (its time at the read plus the monotonic time since), else this
    /// machine's clock when the store gave none.
    pub fn now(&self) -> i64 {
        match self.server {
            Some(s) => s + self.at.elapsed().as_secs() as i64,
            None => crate::token::now(),
        }
    }

    /// Whether the store gave its time.
    pub fn is_shared(&self) -> bool {
        self.server.is_some()
    }

    /// How far the store's clock is ahead of this machine's (negative: behind), seconds.
    pub fn skew(&self) -> i64 {
        self.server.map_or(0, |s| s - self.local)
    }
}
