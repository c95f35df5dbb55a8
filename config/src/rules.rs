//! The rules a connection setting's value must follow (docs/design.md section 4), one function
//! per rule, shared by the `connections.toml` reader and by settings given in code (the
//! runtime's `ChannelBuilder::connection`): the same rule and the same words, wherever a
//! value comes from. [`ConnectionConfig::problems`] checks a whole configuration.

use std::ops::RangeInclusive;
use std::time::Duration;

use crate::model::ConnectionConfig;
use crate::value::{InvalidValue, format_duration};

/// The least interval between keepalive pings (gRFC A8): servers answer more frequent
/// pings with GOAWAY `too_many_pings`.
pub const MIN_KEEPALIVE_TIME: Duration = Duration::from_secs(10);
/// The shortest idle timeout (grpc-go's floor).
pub const MIN_IDLE_TIMEOUT: Duration = Duration::from_secs(1);
/// RFC 9113: a flow-control window is from 65535 bytes to 2^31 - 1.
pub const HTTP2_WINDOW: RangeInclusive<u32> = 65_535..=0x7fff_ffff;
/// RFC 9113: SETTINGS_MAX_FRAME_SIZE is from 16 KiB to 16 MiB - 1.
pub const HTTP2_MAX_FRAME_SIZE: RangeInclusive<u32> = 16_384..=16_777_215;
/// A gRPC message's length prefix is 32 bits.
pub const MESSAGE_SIZE: RangeInclusive<u32> = 1..=u32::MAX;

pub(crate) const HTTP2_WINDOW_WHY: &str =
    "an HTTP/2 window is from 65535 bytes to 2GiB - 1 (RFC 9113)";
pub(crate) const HTTP2_MAX_FRAME_SIZE_WHY: &str =
    "an HTTP/2 frame is from 16KiB to 16MiB - 1 (RFC 9113)";
pub(crate) const MESSAGE_SIZE_WHY: &str =
    "a gRPC message is from 1 byte to 4GiB - 1 (its length prefix is 32 bits)";

/// The floors that keep a client polite to its servers. [`Floors::GRPC`] is what the file
/// and every production build enforce; tests of a runtime may lower them (the `ephemos`
/// crate's `testing` feature does, as grpc-go's tests lower its own keepalive floor).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Floors {
    /// The least keepalive time.
    pub keepalive_time: Duration,
    /// The least idle timeout.
    pub idle_timeout: Duration,
}

impl Floors {
    /// gRFC A8's 10 s keepalive floor and grpc-go's 1 s idle-timeout floor.
    pub const GRPC: Floors = Floors {
        keepalive_time: MIN_KEEPALIVE_TIME,
        idle_timeout: MIN_IDLE_TIMEOUT,
    };
}

/// A duration gRPC can carry: at most grpc-go's largest (`i64` nanoseconds).
pub fn duration_fits_grpc(value: Duration) -> Result<(), InvalidValue> {
    if value <= crate::value::MAX_DURATION {
        return Ok(());
    }
    Err(InvalidValue::new(
        "duration too long",
        format!(
            "gRPC durations are at most {}s (about 292 years)",
            crate::value::MAX_DURATION.as_secs()
        ),
    ))
}

/// A duration of at least `at_least` (greater than 0 when `at_least` is 0) that gRPC can
/// carry.
pub fn duration_at_least(value: Duration, at_least: Duration) -> Result<(), InvalidValue> {
    duration_fits_grpc(value)?;
    let ok = if at_least.is_zero() {
        !value.is_zero()
    } else {
        value >= at_least
    };
    if ok {
        return Ok(());
    }
    let help = if at_least.is_zero() {
        "it must be greater than 0".to_owned()
    } else {
        format!("it must be at least {}", format_duration(at_least))
    };
    Err(InvalidValue::new("too short", help))
}

/// The keepalive time: at least the floor (gRFC A8's 10 s).
pub fn keepalive_time(value: Duration, floor: Duration) -> Result<(), InvalidValue> {
    duration_fits_grpc(value)?;
    if value >= floor && !value.is_zero() {
        return Ok(());
    }
    let floor = format_duration(floor);
    Err(InvalidValue::new(
        format!("keepalive pings more often than every {floor}"),
        format!(
            "gRFC A8 sets a {floor} floor (servers answer faster pings with GOAWAY); write at least \"{floor}\""
        ),
    ))
}

/// The connection backoff's multiplier: at least 1.
pub fn backoff_multiplier(value: f64) -> Result<(), InvalidValue> {
    if value >= 1.0 {
        return Ok(());
    }
    Err(InvalidValue::new(
        format!("{value} is less than 1"),
        "the multiplier must be at least 1 (1.6 is gRPC's default)",
    ))
}

/// The connection backoff's jitter: a fraction from 0 to 1.
pub fn backoff_jitter(value: f64) -> Result<(), InvalidValue> {
    if (0.0..=1.0).contains(&value) {
        return Ok(());
    }
    Err(InvalidValue::new(
        format!("{value} is outside 0..=1"),
        "jitter is a fraction from 0 to 1 (0.2 is gRPC's default)",
    ))
}

/// The backoff's maximum is at least its base.
pub fn backoff_max_at_least_base(base: Duration, max: Duration) -> Result<(), InvalidValue> {
    if max >= base {
        return Ok(());
    }
    Err(InvalidValue::new(
        format!(
            "max {} < base {}",
            format_duration(max),
            format_duration(base)
        ),
        "the backoff grows from `base` up to `max`: make max >= base",
    ))
}

/// A size in bytes within `range`; `why` explains the range.
pub fn size_in(value: u64, range: RangeInclusive<u32>, why: &str) -> Result<u32, InvalidValue> {
    match u32::try_from(value) {
        Ok(n) if range.contains(&n) => Ok(n),
        _ => Err(InvalidValue::new("size out of range", why)),
    }
}

/// The largest pool: more connections to one endpoint stop helping long before this.
pub const MAX_POOL_SIZE: u32 = 64;

/// A setting of a configuration given in code that breaks a rule.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettingProblem {
    /// The setting, as its key is written in `connections.toml` (`http2.max_frame_size`).
    pub setting: &'static str,
    /// The value given.
    pub value: String,
    /// What is wrong and how to write it.
    pub problem: InvalidValue,
}

impl std::fmt::Display for SettingProblem {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "`{} = {}`: {} ({})",
            self.setting, self.value, self.problem.problem, self.problem.help
        )
    }
}

/// The problems of a configuration given in code, gathered one check at a time.
#[derive(Debug, Default)]
pub(crate) struct Problems(pub(crate) Vec<SettingProblem>);

impl Problems {
    /// Keeps `result`'s problem, if it has one, for `setting` given `value`.
    pub(crate) fn check(
        &mut self,
        setting: &'static str,
        value: String,
        result: Result<(), InvalidValue>,
    ) {
        if let Err(problem) = result {
            self.0.push(SettingProblem {
                setting,
                value,
                problem,
            });
        }
    }
}

impl ConnectionConfig {
    /// Every rule this configuration breaks, with the file's words; empty when it is
    /// valid. Settings read from `connections.toml` already passed these checks; this is
    /// for settings written in code.
    pub fn problems(&self, floors: &Floors) -> Vec<SettingProblem> {
        let mut problems = Problems::default();
        let mut check = |setting, value, result| problems.check(setting, value, result);
        let d = |d: Duration| format!("{:?}", format_duration(d));
        check(
            "connect_timeout",
            d(self.connect_timeout),
            duration_at_least(self.connect_timeout, Duration::ZERO),
        );
        let b = &self.backoff;
        check(
            "backoff.base",
            d(b.base_delay),
            duration_at_least(b.base_delay, Duration::ZERO),
        );
        check(
            "backoff.multiplier",
            b.multiplier.to_string(),
            backoff_multiplier(b.multiplier),
        );
        check(
            "backoff.jitter",
            b.jitter.to_string(),
            backoff_jitter(b.jitter),
        );
        check(
            "backoff.max",
            d(b.max_delay),
            duration_at_least(b.max_delay, Duration::ZERO)
                .and_then(|()| backoff_max_at_least_base(b.base_delay, b.max_delay)),
        );
        if let Some(k) = &self.keepalive {
            check(
                "keepalive.time",
                d(k.time),
                keepalive_time(k.time, floors.keepalive_time),
            );
            check(
                "keepalive.timeout",
                d(k.timeout),
                duration_at_least(k.timeout, Duration::ZERO),
            );
        }
        if let Some(idle) = self.idle_timeout {
            check(
                "idle_timeout",
                d(idle),
                duration_at_least(idle, floors.idle_timeout.max(Duration::from_nanos(1))),
            );
        }
        let sizes = [
            (
                "max_message_size.send",
                self.max_message_size.send,
                MESSAGE_SIZE,
                MESSAGE_SIZE_WHY,
            ),
            (
                "max_message_size.recv",
                self.max_message_size.recv,
                MESSAGE_SIZE,
                MESSAGE_SIZE_WHY,
            ),
            (
                "http2.stream_window",
                self.http2.stream_window,
                HTTP2_WINDOW,
                HTTP2_WINDOW_WHY,
            ),
            (
                "http2.connection_window",
                self.http2.connection_window,
                HTTP2_WINDOW,
                HTTP2_WINDOW_WHY,
            ),
            (
                "http2.max_frame_size",
                self.http2.max_frame_size,
                HTTP2_MAX_FRAME_SIZE,
                HTTP2_MAX_FRAME_SIZE_WHY,
            ),
        ];
        for (setting, value, range, why) in sizes {
            check(
                setting,
                value.to_string(),
                size_in(u64::from(value), range, why).map(|_| ()),
            );
        }
        problems.0
    }
}

impl crate::model::PoolConfig {
    /// Every rule these pool settings break, in `connections.toml`'s words.
    pub fn problems(&self) -> Vec<SettingProblem> {
        let mut problems = Vec::new();
        if let Err(problem) = size_in(
            u64::from(self.size),
            1..=MAX_POOL_SIZE,
            "connections per endpoint",
        ) {
            problems.push(SettingProblem {
                setting: "pool.size",
                value: self.size.to_string(),
                problem,
            });
        }
        if self.max_size < self.size {
            problems.push(SettingProblem {
                setting: "pool.max_size",
                value: self.max_size.to_string(),
                problem: InvalidValue::new(
                    format!("max_size {} < size {}", self.max_size, self.size),
                    "the pool grows from `size` up to `max_size`: make max_size >= size",
                ),
            });
        }
        problems
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::preset::Preset;

    #[test]
    fn every_preset_is_valid() {
        for preset in [
            Preset::Production,
            Preset::Development,
            Preset::HighThroughput,
        ] {
            assert_eq!(preset.connection_config().problems(&Floors::GRPC), []);
        }
    }

    #[test]
    fn each_rule_names_its_setting_with_the_file_words() {
        let mut config = Preset::Production.connection_config();
        config.http2.max_frame_size = 1;
        config.backoff.jitter = 2.0;
        config.backoff.max_delay = Duration::from_millis(10);
        config.keepalive.as_mut().unwrap().time = Duration::from_secs(1);
        config.idle_timeout = Some(Duration::from_millis(5));
        let problems = config.problems(&Floors::GRPC);
        let settings: Vec<_> = problems.iter().map(|p| p.setting).collect();
        assert_eq!(
            settings,
            [
                "backoff.jitter",
                "backoff.max",
                "keepalive.time",
                "idle_timeout",
                "http2.max_frame_size"
            ]
        );
        let frame = problems.last().unwrap().to_string();
        assert_eq!(
            frame,
            "`http2.max_frame_size = 1`: size out of range (an HTTP/2 frame is from 16KiB to 16MiB - 1 (RFC 9113))"
        );
        assert!(problems[2].to_string().contains("gRFC A8 sets a 10s floor"));
    }

    #[test]
    fn lower_floors_accept_what_the_grpc_floors_refuse() {
        let mut config = Preset::Production.connection_config();
        config.keepalive.as_mut().unwrap().time = Duration::from_millis(200);
        config.idle_timeout = Some(Duration::from_millis(100));
        assert_eq!(config.problems(&Floors::GRPC).len(), 2);
        let lenient = Floors {
            keepalive_time: Duration::from_millis(1),
            idle_timeout: Duration::from_millis(1),
        };
        assert_eq!(config.problems(&lenient), []);
    }
}
