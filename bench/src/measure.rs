//! One measurement: C callers share one client for a fixed time after a warm-up; every
//! call's latency, the calls per second, and the client process's CPU time per call
//! (user + system, from `/proc/self/stat`, so every thread of the client counts); with
//! `--features count-allocations`, its heap allocations per call.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use ephemos_test_support::pb::EchoRequest;

use crate::clients::Client;

/// The call a cell makes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Load {
    /// Unary, with this many bytes each way.
    Unary(u32),
    /// Server streaming: this many replies of 64 bytes.
    ServerStream(u32),
}

impl Load {
    /// Its name in the output.
    pub(crate) fn name(self) -> String {
        match self {
            Load::Unary(64) => "unary_64B".to_owned(),
            Load::Unary(65536) => "unary_64KiB".to_owned(),
            Load::Unary(n) => format!("unary_{n}B"),
            Load::ServerStream(n) => format!("server_stream_{n}x64B"),
        }
    }

    pub(crate) fn request(self) -> EchoRequest {
        match self {
            Load::Unary(size) => EchoRequest {
                message: "bench".into(),
                count: 0,
                reply_padding: size,
                padding: vec![7; size as usize],
            },
            Load::ServerStream(count) => EchoRequest {
                message: "bench".into(),
                count,
                reply_padding: 64,
                padding: vec![7; 64],
            },
        }
    }
}

/// What one measurement found.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Sample {
    pub(crate) calls_per_sec: f64,
    pub(crate) p50_us: f64,
    pub(crate) p99_us: f64,
    pub(crate) cpu_us_per_call: f64,
    /// Heap allocations of the client process per call (with `count-allocations`).
    pub(crate) allocations_per_call: Option<f64>,
    pub(crate) errors: usize,
}

/// Heap allocations this process has made so far, when they are counted.
fn allocations() -> Option<f64> {
    #[cfg(feature = "count-allocations")]
    {
        Some(crate::ALLOCATOR.stats().allocations as f64)
    }
    #[cfg(not(feature = "count-allocations"))]
    {
        None
    }
}

/// The client process's CPU time so far (all threads), in microseconds.
fn cpu_us() -> f64 {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    // Fields after the command name (which may hold spaces) start at state (field 3).
    let after = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<f64>().ok())
            .unwrap_or(0.0)
    };
    // utime is field 14, stime 15; `fields[0]` is field 3. Linux counts in 1/100 s.
    (ticks(11) + ticks(12)) * 10_000.0
}

/// The peak resident set of this process so far, in MiB (`VmHWM`).
pub(crate) fn peak_rss_mib() -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("VmHWM:"))
                .and_then(|l| l.split_whitespace().nth(1))
                .and_then(|kb| kb.parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb / 1024.0)
}

async fn one(client: &Client, load: Load) -> bool {
    match load {
        Load::Unary(_) => client.unary(load.request()).await.is_ok(),
        Load::ServerStream(n) => client
            .server_stream(load.request())
            .await
            .is_ok_and(|replies| replies == n as usize),
    }
}

/// Every caller's latencies and its count of failed calls, together.
async fn join(callers: Vec<tokio::task::JoinHandle<(Vec<u32>, usize)>>) -> (Vec<u32>, usize) {
    let (mut latencies, mut errors) = (Vec::new(), 0);
    for caller in callers {
        if let Ok((l, e)) = caller.await {
            latencies.extend(l);
            errors += e;
        }
    }
    (latencies, errors)
}

/// How long a measurement lasts.
#[derive(Debug, Clone, Copy)]
pub(crate) enum Length {
    /// Call for `warmup`, then for `duration`, measuring the latter.
    Timed {
        warmup: Duration,
        duration: Duration,
    },
    /// Each caller makes this many calls, all measured.
    Calls(usize),
}

/// Runs `concurrency` callers for `length`.
pub(crate) async fn run(client: &Client, load: Load, concurrency: usize, length: Length) -> Sample {
    let (warmup, calls) = match length {
        Length::Timed { warmup, .. } => (Some(warmup), usize::MAX),
        Length::Calls(calls) => (None, calls),
    };
    let measuring = Arc::new(AtomicBool::new(warmup.is_none()));
    let stop = Arc::new(AtomicBool::new(false));
    let callers: Vec<_> = (0..concurrency)
        .map(|_| {
            let (client, measuring, stop) = (client.clone(), measuring.clone(), stop.clone());
            tokio::spawn(async move {
                let mut latencies = Vec::with_capacity(4096);
                let mut errors = 0;
                while !stop.load(Ordering::Relaxed) && latencies.len() < calls {
                    let started = Instant::now();
                    let ok = one(&client, load).await;
                    if measuring.load(Ordering::Relaxed) && !stop.load(Ordering::Relaxed) {
                        latencies.push(started.elapsed().as_micros() as u32);
                        errors += usize::from(!ok);
                    }
                }
                (latencies, errors)
            })
        })
        .collect();
    if let Some(warmup) = warmup {
        tokio::time::sleep(warmup).await;
    }
    let cpu_before = cpu_us();
    let allocations_before = allocations();
    let started = Instant::now();
    measuring.store(true, Ordering::Relaxed);
    let ((mut latencies, errors), elapsed, cpu, allocated) = match length {
        Length::Timed { duration, .. } => {
            tokio::time::sleep(duration).await;
            stop.store(true, Ordering::Relaxed);
            let (elapsed, cpu, allocated) =
                (started.elapsed(), cpu_us() - cpu_before, allocations());
            (join(callers).await, elapsed, cpu, allocated)
        }
        Length::Calls(_) => {
            let joined = join(callers).await;
            (
                joined,
                started.elapsed(),
                cpu_us() - cpu_before,
                allocations(),
            )
        }
    };
    let allocated = allocated.zip(allocations_before).map(|(a, b)| a - b);
    latencies.sort_unstable();
    let quantile = |q: f64| -> f64 {
        if latencies.is_empty() {
            return 0.0;
        }
        let rank = ((q * latencies.len() as f64).ceil() as usize).clamp(1, latencies.len());
        f64::from(latencies[rank - 1])
    };
    let calls = latencies.len().max(1) as f64;
    Sample {
        calls_per_sec: latencies.len() as f64 / elapsed.as_secs_f64(),
        p50_us: quantile(0.5),
        p99_us: quantile(0.99),
        cpu_us_per_call: cpu / calls,
        allocations_per_call: allocated.map(|a| (a / calls).round()),
        errors,
    }
}
