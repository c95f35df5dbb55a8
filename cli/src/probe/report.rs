//! What a probe learned, its verdict, and how it is printed (text for people, one JSON
//! object for tools).

use std::time::{Duration, SystemTime};

use ephemos::{ConnectionStats, ConnectivityState, TargetConfig};
use serde_json::{Value, json};

use crate::duration_text::{millis, ms};

use super::health::{Answer, Health};
use super::reach::{Resolution, TcpConnect};

/// The facts of one probe, in the order they were learned.
pub(crate) struct Report {
    target: String,
    profile: Option<String>,
    identity: String,
    authorization: String,
    notes: Vec<String>,
    /// Each endpoint's resolution.
    pub(crate) resolution: Vec<Resolution>,
    /// Bare socket connects to the resolved addresses.
    pub(crate) tcp: Vec<TcpConnect>,
    /// The channel's states, with the time since the probe began.
    pub(crate) states: Vec<(Duration, ConnectivityState)>,
    /// When the first connection was READY.
    pub(crate) ready_after: Option<Duration>,
    /// The READY connections once the checks were done.
    pub(crate) connections: Vec<ConnectionStats>,
    /// The health answers.
    pub(crate) health: Vec<Health>,
    /// Timed Checks.
    pub(crate) round_trips: Vec<Duration>,
    verdict: Option<Result<String, String>>,
}

impl Report {
    /// An empty report of a target.
    pub(crate) fn new(config: &TargetConfig, profile: Option<&str>) -> Report {
        Report {
            target: config.name.to_string(),
            profile: profile.map(str::to_owned),
            identity: config.identity.source.to_string(),
            authorization: config.server_authorization.to_string(),
            notes: Vec::new(),
            resolution: Vec::new(),
            tcp: Vec::new(),
            states: Vec::new(),
            ready_after: None,
            connections: Vec::new(),
            health: Vec::new(),
            round_trips: Vec::new(),
            verdict: None,
        }
    }

    /// Adds a remark printed before the facts.
    pub(crate) fn note(&mut self, note: &str) {
        self.notes.push(note.to_owned());
    }

    /// The probe failed for this reason (the first reason stands).
    pub(crate) fn fail(&mut self, reason: String) {
        if !matches!(self.verdict, Some(Err(_))) {
            self.verdict = Some(Err(reason));
        }
    }

    /// Decides from the health answers: SERVING passes, and so does a server without a
    /// health service that answered; the target's own service decides when the server
    /// knows it, else the whole server's status does.
    pub(crate) fn judge_health(&mut self) {
        if let Some(failed) = self
            .health
            .iter()
            .find(|h| matches!(h.answer, Answer::Failed { .. }))
        {
            let reason = format!(
                "health check of {}: {}",
                service_name(&failed.service),
                failed.answer
            );
            self.fail(reason);
            return;
        }
        let whole = self.health.first().map(|h| &h.answer);
        let decisive = self
            .health
            .iter()
            .rev()
            .find(|h| h.answer != Answer::UnknownService);
        let verdict = match (whole, decisive) {
            (Some(Answer::NoHealthService), _) => {
                Ok("answered (the server has no health service)".to_owned())
            }
            (
                _,
                Some(Health {
                    service,
                    answer: Answer::Status(status),
                }),
            ) if status == "SERVING" => Ok(format!("SERVING ({})", service_name(service))),
            (_, Some(Health { service, answer })) => Err(format!(
                "{} is {answer}, not SERVING",
                service_name(service)
            )),
            (_, None) => Err("the server knows neither the target's service nor \"\"".to_owned()),
        };
        match verdict {
            Ok(summary) => self.verdict = Some(Ok(summary)),
            Err(reason) => self.fail(reason),
        }
    }

    /// Whether the target passed.
    pub(crate) fn passed(&self) -> bool {
        matches!(self.verdict, Some(Ok(_)))
    }

    /// The report for people.
    pub(crate) fn text(&self) -> String {
        let mut out = format!(
            "probe of `{}`{}\n",
            self.target,
            self.profile
                .as_ref()
                .map(|p| format!(" in profile `{p}`"))
                .unwrap_or_default()
        );
        let mut line = |label: &str, text: String| {
            out.push_str(&format!("  {label:<18} {text}\n"));
        };
        line("identity", self.identity.clone());
        line("accepts servers", self.authorization.clone());
        for note in &self.notes {
            line("note", note.clone());
        }
        for r in &self.resolution {
            let result = match &r.error {
                Some(error) => format!("failed: {error}"),
                None => r
                    .addresses
                    .iter()
                    .map(ToString::to_string)
                    .collect::<Vec<_>>()
                    .join(", "),
            };
            line(
                "resolution",
                format!("{} -> {result} ({}, {})", r.endpoint, r.method, ms(r.took)),
            );
        }
        for t in &self.tcp {
            line(
                "tcp connect",
                match &t.error {
                    None => format!("{} in {}", t.address, ms(t.took)),
                    Some(error) => format!("{} failed after {}: {error}", t.address, ms(t.took)),
                },
            );
        }
        let states = self
            .states
            .iter()
            .map(|(at, state)| format!("{state} (+{})", ms(*at)))
            .collect::<Vec<_>>()
            .join(" -> ");
        line("states", states);
        if let Some(at) = self.ready_after {
            line("ready after", ms(at));
        }
        // One connection shows what the server sent; the others are alike.
        if let Some(c) = self.connections.first() {
            line(
                "connection",
                format!(
                    "{} ({} connection(s) READY)",
                    c.endpoint,
                    self.connections.len()
                ),
            );
            if let Some(id) = &c.server_id {
                line("  server id", id.to_string());
            }
            if let Some(end) = c.server_certificate_expiry {
                line("  certificate", expiry(end));
            }
            if let Some(id) = &c.client_id {
                line("  client id", id.to_string());
            }
            if c.server_id.is_none() {
                line("  tls", "none (plaintext)".to_owned());
            }
            let settings = c
                .server_settings
                .iter()
                .map(|(id, value)| format!("{}={value}", setting_name(*id)))
                .collect::<Vec<_>>()
                .join(" ");
            line("  http/2 settings", settings);
        }
        for h in &self.health {
            line(
                "health",
                format!("{}: {}", service_name(&h.service), h.answer),
            );
        }
        if !self.round_trips.is_empty() {
            line(
                "round trips",
                format!(
                    "{} Checks: {}",
                    self.round_trips.len(),
                    self.round_trips
                        .iter()
                        .map(|d| ms(*d))
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            );
        }
        match &self.verdict {
            Some(Ok(summary)) => out.push_str(&format!("ok: {summary}\n")),
            Some(Err(reason)) => out.push_str(&format!("error: {reason}\n")),
            None => out.push_str("error: the probe ended without a verdict\n"),
        }
        out
    }

    /// The report for tools: one object.
    pub(crate) fn json(&self) -> Value {
        json!({
            "target": self.target,
            "profile": self.profile,
            "identity": self.identity,
            "server_authorization": self.authorization,
            "notes": self.notes,
            "resolution": self.resolution.iter().map(|r| json!({
                "endpoint": r.endpoint,
                "method": r.method,
                "addresses": r.addresses.iter().map(ToString::to_string).collect::<Vec<_>>(),
                "millis": millis(r.took),
                "error": r.error,
            })).collect::<Vec<_>>(),
            "tcp_connect": self.tcp.iter().map(|t| json!({
                "address": t.address,
                "millis": millis(t.took),
                "error": t.error,
            })).collect::<Vec<_>>(),
            "states": self.states.iter().map(|(at, state)| json!({
                "state": state.to_string(),
                "at_millis": millis(*at),
            })).collect::<Vec<_>>(),
            "ready_after_millis": self.ready_after.map(millis),
            "connections": self.connections.iter().map(|c| json!({
                "endpoint": c.endpoint,
                "server_id": c.server_id.as_ref().map(ToString::to_string),
                "server_certificate_expiry": c.server_certificate_expiry
                    .map(|t| humantime::format_rfc3339_seconds(t).to_string()),
                "client_id": c.client_id.as_ref().map(ToString::to_string),
                "http2_settings": c.server_settings.iter()
                    .map(|(id, value)| (setting_name(*id), json!(value)))
                    .collect::<serde_json::Map<_, _>>(),
            })).collect::<Vec<_>>(),
            "health": self.health.iter().map(|h| json!({
                "service": h.service,
                "status": h.answer.to_string(),
            })).collect::<Vec<_>>(),
            "round_trip_millis": self.round_trips.iter().map(|d| millis(*d)).collect::<Vec<_>>(),
            "ok": self.passed(),
            "summary": self.verdict.as_ref().and_then(|v| v.as_ref().ok()),
            "error": match &self.verdict {
                Some(Err(reason)) => Some(reason.as_str()),
                Some(Ok(_)) => None,
                None => Some("the probe ended without a verdict"),
            },
        })
    }
}

fn service_name(service: &str) -> String {
    if service.is_empty() {
        "the whole server (\"\")".to_owned()
    } else {
        format!("`{service}`")
    }
}

fn setting_name(id: u16) -> String {
    ephemos::http2_setting_name(id).map_or_else(|| format!("0x{id:x}"), str::to_owned)
}

fn expiry(end: SystemTime) -> String {
    let stamp = humantime::format_rfc3339_seconds(end);
    match end.duration_since(SystemTime::now()) {
        Ok(left) => format!(
            "ends {stamp} (in {})",
            humantime::format_duration(Duration::from_secs(left.as_secs()))
        ),
        Err(_) => format!("ended {stamp} (expired)"),
    }
}
