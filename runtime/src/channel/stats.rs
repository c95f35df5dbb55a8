//! [`ChannelStats`]: a snapshot of what a channel is doing and the settings in force,
//! including those learned at run time (a keepalive time doubled by a server, the
//! server's MAX_CONCURRENT_STREAMS), and what the retry layer did. Reading it takes no
//! lock a call takes; the pool issue adds pool totals (hits, misses, evictions).

use std::fmt;
use std::time::{Duration, SystemTime};

use ephemos_config::value::SpiffeId;

use crate::state::ConnectivityState;

/// A snapshot of a channel.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct ChannelStats {
    /// The target's name.
    pub target: String,
    /// The channel's aggregated state.
    pub state: ConnectivityState,
    /// One entry per connection (subchannel).
    pub connections: Vec<ConnectionStats>,
    /// The keepalive time new connections use (`None` when keepalive is off): the
    /// configured time, or a longer one after a server sent GOAWAY `too_many_pings`
    /// (gRFC A8 doubles it for the whole channel).
    pub keepalive_time: Option<Duration>,
    /// Whether a server made the channel double its keepalive time.
    pub keepalive_doubled: bool,
    /// The last SETTINGS_MAX_CONCURRENT_STREAMS a server of this channel sent.
    pub max_concurrent_streams: Option<u32>,
    /// Bytes held now in the retry buffers of this channel's uncommitted calls (at most
    /// 16 MiB; a call holds at most 256 KiB, and nothing once it commits).
    pub replay_buffer_bytes: usize,
    /// Attempts sent again without counting as attempts: never sent, or refused by the
    /// server before it processed them (gRFC A6 transparent retry).
    pub transparent_retries: u64,
    /// Attempts made by the methods' retry policies (each after a failed attempt).
    pub retries: u64,
    /// Hedged attempts sent beyond each call's first (the methods' hedging policies).
    pub hedges: u64,
    /// Calls whose retry the channel's retry throttling stopped.
    pub throttled: u64,
    /// The time calls waited in retry backoff (and server pushback), in all.
    pub retry_delay: Duration,
    /// Tokens in the retry throttling bucket, when `retry_throttling` is set.
    pub throttle_tokens: Option<f64>,
    /// Connections per endpoint (`pool.size`).
    pub pool_size: u32,
    /// The most connections per endpoint the pool grows to (`pool.max_size`).
    pub pool_max_size: u32,
    /// Attempts that found a READY connection at once.
    pub pool_hits: u64,
    /// Attempts that waited for a connection.
    pub pool_misses: u64,
    /// Connections opened because every connection of an endpoint was full (gRFC A105).
    pub pool_grown: u64,
    /// Connections cleanup closed: the pool shrank back, or one stayed unhealthy.
    pub pool_evictions: u64,
}

/// A snapshot of one connection of a channel.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub struct ConnectionStats {
    /// The endpoint it connects to, as configured.
    pub endpoint: String,
    /// Its state.
    pub state: ConnectivityState,
    /// What its health check says (`SERVING`, `NOT_SERVING`, ...), when `health_check`
    /// is set and it is connected.
    pub health: Option<String>,
    /// Calls in flight on it.
    pub in_flight: usize,
    /// Calls (attempts) started on it so far.
    pub calls: u64,
    /// Connections it has made so far.
    pub connects: u64,
    /// How long its current connection has been open.
    pub age: Option<Duration>,
    /// Time since a call last started or ended on it.
    pub idle_for: Duration,
    /// Its server's SETTINGS_MAX_CONCURRENT_STREAMS, while READY.
    pub max_concurrent_streams: Option<u32>,
    /// Its server's verified SPIFFE ID, while READY over TLS.
    pub server_id: Option<SpiffeId>,
    /// When its server's certificate ends, while READY over TLS.
    pub server_certificate_expiry: Option<SystemTime>,
    /// The SPIFFE ID this client presented on the connection, while READY over TLS.
    pub client_id: Option<SpiffeId>,
    /// The HTTP/2 settings its server has sent, as (identifier, value) with the latest
    /// value of each, while READY ([`http2_setting_name`] names them): every setting
    /// RFC 9113 defines, and the first eight others (a server cannot grow this).
    pub server_settings: Vec<(u16, u32)>,
    /// Why its last connection attempt failed, until one succeeds.
    pub last_error: Option<String>,
}

/// The name RFC 9113 (section 6.5.2) and RFC 8441 give an HTTP/2 setting's identifier.
pub fn http2_setting_name(id: u16) -> Option<&'static str> {
    Some(match id {
        0x1 => "HEADER_TABLE_SIZE",
        0x2 => "ENABLE_PUSH",
        0x3 => "MAX_CONCURRENT_STREAMS",
        0x4 => "INITIAL_WINDOW_SIZE",
        0x5 => "MAX_FRAME_SIZE",
        0x6 => "MAX_HEADER_LIST_SIZE",
        0x8 => "ENABLE_CONNECT_PROTOCOL",
        _ => return None,
    })
}

fn or_dash<T: fmt::Display>(value: &Option<T>) -> String {
    value
        .as_ref()
        .map_or_else(|| "-".to_owned(), ToString::to_string)
}

impl fmt::Display for ChannelStats {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let keepalive = match self.keepalive_time {
            None => "off".to_owned(),
            Some(time) if self.keepalive_doubled => format!("{time:?} (doubled by a server)"),
            Some(time) => format!("{time:?}"),
        };
        writeln!(f, "channel `{}`: {}", self.target, self.state)?;
        writeln!(
            f,
            "  pool {} per endpoint (up to {}), {} connections, hits {}, misses {}, grown {}, evicted {}",
            self.pool_size,
            self.pool_max_size,
            self.connections.len(),
            self.pool_hits,
            self.pool_misses,
            self.pool_grown,
            self.pool_evictions
        )?;
        writeln!(
            f,
            "  keepalive {keepalive}, server max streams {}, replay buffers {} bytes",
            or_dash(&self.max_concurrent_streams),
            self.replay_buffer_bytes,
        )?;
        let throttle = self
            .throttle_tokens
            .map_or_else(String::new, |t| format!(", throttle tokens {t}"));
        writeln!(
            f,
            "  retries {} (waited {:?}), hedges {}, transparent retries {}, throttled {}{throttle}",
            self.retries, self.retry_delay, self.hedges, self.transparent_retries, self.throttled
        )?;
        writeln!(
            f,
            "  {:<24} {:<18} {:<12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>11}  server",
            "endpoint",
            "state",
            "health",
            "in flight",
            "calls",
            "connects",
            "age",
            "idle for",
            "max streams"
        )?;
        for c in &self.connections {
            writeln!(
                f,
                "  {:<24} {:<18} {:<12} {:>9} {:>8} {:>8} {:>8} {:>8} {:>11}  {}",
                c.endpoint,
                c.state.to_string(),
                or_dash(&c.health),
                c.in_flight,
                c.calls,
                c.connects,
                c.age
                    .map_or_else(|| "-".to_owned(), |a| format!("{:.1}s", a.as_secs_f64())),
                format!("{:.1}s", c.idle_for.as_secs_f64()),
                or_dash(&c.max_concurrent_streams),
                or_dash(&c.server_id)
            )?;
            if let Some(error) = &c.last_error {
                writeln!(f, "    last error: {error}")?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn displays_as_a_table() {
        let stats = ChannelStats {
            target: "echo".into(),
            state: ConnectivityState::Ready,
            connections: vec![ConnectionStats {
                endpoint: "127.0.0.1:1".into(),
                state: ConnectivityState::Ready,
                health: Some("SERVING".into()),
                in_flight: 2,
                calls: 7,
                connects: 1,
                age: Some(Duration::from_secs(3)),
                idle_for: Duration::from_millis(1500),
                max_concurrent_streams: Some(100),
                server_id: None,
                server_certificate_expiry: None,
                client_id: None,
                server_settings: vec![(3, 100)],
                last_error: Some("refused".into()),
            }],
            keepalive_time: Some(Duration::from_secs(20)),
            keepalive_doubled: true,
            max_concurrent_streams: Some(100),
            replay_buffer_bytes: 0,
            transparent_retries: 3,
            retries: 4,
            hedges: 2,
            throttled: 1,
            retry_delay: Duration::from_millis(250),
            throttle_tokens: Some(7.5),
            pool_size: 1,
            pool_max_size: 2,
            pool_hits: 9,
            pool_misses: 1,
            pool_grown: 1,
            pool_evictions: 1,
        };
        let text = stats.to_string();
        assert!(text.contains("channel `echo`: READY"), "{text}");
        assert!(
            text.contains("keepalive 20s (doubled by a server)"),
            "{text}"
        );
        assert!(text.contains("127.0.0.1:1"), "{text}");
        assert!(
            text.contains(
                "pool 1 per endpoint (up to 2), 1 connections, hits 9, misses 1, grown 1, evicted 1"
            ),
            "{text}"
        );
        assert!(
            text.contains(
                "retries 4 (waited 250ms), hedges 2, transparent retries 3, throttled 1, throttle tokens 7.5"
            ),
            "{text}"
        );
        assert!(text.contains("last error: refused"), "{text}");
        let row = text.lines().find(|l| l.contains("127.0.0.1:1")).unwrap();
        let cells: Vec<&str> = row.split_whitespace().collect();
        assert_eq!(
            cells,
            [
                "127.0.0.1:1",
                "READY",
                "SERVING",
                "2",
                "7",
                "1",
                "3.0s",
                "1.5s",
                "100",
                "-"
            ],
            "{text}"
        );
    }
}
