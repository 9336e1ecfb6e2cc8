//! Shared by the benches: criterion measuring the benchmark thread's **CPU time**
//! (`CLOCK_THREAD_CPUTIME_ID`), so figures are per core even when other processes share the
//! machine.

use cpu_time::ThreadTime;
use criterion::measurement::{Measurement, ValueFormatter, WallTime};
use criterion::Criterion;

/// Criterion measurement of the current thread's CPU time, in nanoseconds.
pub struct ThreadCpu(WallTime);

impl Measurement for ThreadCpu {
    type Intermediate = ThreadTime;
    type Value = f64;

    fn start(&self) -> ThreadTime {
        ThreadTime::now()
    }
    fn end(&self, start: ThreadTime) -> f64 {
        start.elapsed().as_nanos() as f64
    }
    fn add(&self, a: &f64, b: &f64) -> f64 {
        a + b
    }
    fn zero(&self) -> f64 {
        0.0
    }
    fn to_f64(&self, v: &f64) -> f64 {
        *v
    }
    fn formatter(&self) -> &dyn ValueFormatter {
        // Values are nanoseconds, exactly what the wall-time formatter expects.
        self.0.formatter()
    }
}

/// Criterion timing CPU time.
pub fn cpu() -> Criterion<ThreadCpu> {
    Criterion::default().with_measurement(ThreadCpu(WallTime))
}
