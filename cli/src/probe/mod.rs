//! `ephemos probe`: connects to a target with exactly the settings and identity its
//! clients use, and reports each step: name resolution, TCP connect time, the state
//! changes of the channel, the TLS peer (SPIFFE ID, certificate end), the server's
//! HTTP/2 settings, its health (grpc.health.v1 Check) and a few round trips.
//!
//! Everything after resolution and the bare TCP connect goes through an
//! `ephemos::Channel` built from the resolved target, so the probe sees what a service
//! would: its pool, its authorization of the server's SPIFFE ID, its timeouts.

mod health;
mod reach;
mod report;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use ephemos::{Channel, ConnectivityState};
use ephemos_config::model::IdentitySource;

use report::Report;

use crate::Format;

/// Runs the probe of `target` and returns the text to print and whether it passed.
pub(crate) fn run(
    file: &Path,
    target: &str,
    profile: Option<&crate::target::Profile>,
    timeout: Duration,
    format: Format,
    color: bool,
) -> Result<(String, bool), String> {
    let checked = crate::target::load_clean(file, color)?;
    let resolved = crate::target::select(&checked, file, target, profile)?;
    let config = resolved.config.clone();
    let runtime = crate::runtime()?;
    let profile = profile.map(crate::target::Profile::name);
    let report = runtime.block_on(probe(config, profile, timeout));
    let passed = report.passed();
    let text = match format {
        Format::Text => report.text(),
        Format::Json => format!("{}\n", report.json()),
    };
    Ok((text, passed))
}

async fn probe(config: ephemos::TargetConfig, profile: Option<&str>, timeout: Duration) -> Report {
    let mut report = Report::new(&config, profile);
    if matches!(config.identity.source, IdentitySource::Dev { .. }) {
        report.note(
            "the target uses the `dev` identity: this process mints its own CA, which no \
             server in another process trusts; give the target a `spiffe` or `files` identity",
        );
    }
    let connect_timeout = config.connection.connect_timeout.min(timeout);
    for endpoint in config.endpoints.iter() {
        let resolution = reach::resolve(endpoint).await;
        for address in resolution.addresses.iter().take(3) {
            report
                .tcp
                .push(reach::tcp_connect(address, connect_timeout).await);
        }
        report.resolution.push(resolution);
    }

    let channel = match Channel::from_target(&config).connect_lazy() {
        Ok(channel) => channel,
        Err(error) => {
            report.fail(error.to_string());
            return report;
        }
    };
    let started = Instant::now();
    let states = Arc::new(Mutex::new(vec![(Duration::ZERO, channel.state())]));
    let recorder = tokio::spawn(record_states(
        channel.state_watcher(),
        states.clone(),
        started,
    ));

    match tokio::time::timeout(timeout, channel.connect()).await {
        Err(_) => report.fail(format!(
            "no connection was READY within {} (--timeout)",
            humantime::format_duration(timeout)
        )),
        Ok(Err(error)) => report.fail(error.to_string()),
        Ok(Ok(())) => {
            report.ready_after = Some(started.elapsed());
            report.health = health::check(&channel, config.service.as_deref(), timeout).await;
            report.round_trips = health::round_trips(&channel, 5, timeout).await;
            report.connections = channel
                .stats()
                .connections
                .into_iter()
                .filter(|c| c.state == ConnectivityState::Ready)
                .collect();
            report.judge_health();
        }
    }
    // Let the recorder see the state the channel is in now (a watcher can miss a state
    // that lasted less than its wake-up, never the one it settles in).
    let settled = || {
        states
            .lock()
            .map(|s| s.last().map(|(_, state)| *state) == Some(channel.state()))
            .unwrap_or(true)
    };
    for _ in 0..50 {
        if settled() {
            break;
        }
        tokio::time::sleep(Duration::from_millis(2)).await;
    }
    recorder.abort();
    report.states = states.lock().map(|s| s.clone()).unwrap_or_default();
    report
}

/// Records each state the channel passes through, with the time since the probe began.
async fn record_states(
    mut watcher: ephemos::StateWatcher,
    states: Arc<Mutex<Vec<(Duration, ConnectivityState)>>>,
    started: Instant,
) {
    let mut state = watcher.state();
    while state != ConnectivityState::Shutdown {
        state = watcher.wait_for_state_change(state).await;
        if let Ok(mut states) = states.lock() {
            states.push((started.elapsed(), state));
        }
    }
}
