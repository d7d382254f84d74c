//! Where authdb gets the time from.

use std::fmt;

use chrono::{DateTime, Duration, Utc};
use parking_lot::Mutex;

/// A source of the current time. authdb reads it for every expiry decision and timestamp.
///
/// The default is [`SystemClock`]; tests inject a [`ManualClock`] through
/// [`Builder::clock`](crate::Builder::clock).
pub trait Clock: Send + Sync {
    /// The current time.
    fn now(&self) -> DateTime<Utc>;
}

/// The operating system's wall clock (`Utc::now()`).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now(&self) -> DateTime<Utc> {
        Utc::now()
    }
}

/// A clock that stands still until it is told to move. Made for tests.
///
/// ```
/// use authdb::{Clock, ManualClock};
/// use chrono::{Duration, TimeZone, Utc};
///
/// let clock = ManualClock::new(Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap());
/// clock.advance(Duration::hours(1));
/// assert_eq!(clock.now(), Utc.with_ymd_and_hms(2030, 1, 1, 1, 0, 0).unwrap());
/// ```
pub struct ManualClock {
    now: Mutex<DateTime<Utc>>,
}

impl ManualClock {
    /// A clock showing `at`.
    #[must_use]
    pub fn new(at: DateTime<Utc>) -> Self {
        Self {
            now: Mutex::new(at),
        }
    }

    /// Sets the time to `at` (it may go backwards).
    pub fn set(&self, at: DateTime<Utc>) {
        *self.now.lock() = at;
    }

    /// Moves the time by `d` (negative moves it back). Saturates at chrono's range.
    pub fn advance(&self, d: Duration) {
        let mut now = self.now.lock();
        *now = now.checked_add_signed(d).unwrap_or(*now);
    }
}

impl Clock for ManualClock {
    fn now(&self) -> DateTime<Utc> {
        *self.now.lock()
    }
}

impl fmt::Debug for ManualClock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("ManualClock")
            .field("now", &self.now())
            .finish()
    }
}
