//! The keys of a channel's per-call metrics, built once per method (and, for the
//! metrics labelled with a status, once per status the method ends with) instead of on
//! every call, as the `metrics` macros would: a key owns its labels, so building one
//! allocates, and six a call were a sixth of the runtime's own allocations.
//!
//! Each use still registers its key with the recorder in force at that moment, exactly
//! as the macros do, so a recorder installed after the channel was built (or a local one
//! in a test) sees every later call, and no recorder costs a lookup, not an allocation.

use std::collections::HashMap;
use std::sync::{Arc, OnceLock, PoisonError, RwLock};

use metrics::{Key, Level, Metadata, SharedString};
use tonic::Code;

use super::labels::status_name;
use super::names::{self, label};

/// What the runtime's metrics are registered with (the macros' own).
static METADATA: Metadata<'static> =
    Metadata::new(module_path!(), Level::INFO, Some(module_path!()));

/// Records `value` in the histogram `key` names, with the recorder in force.
pub(crate) fn record(key: &Key, value: f64) {
    metrics::with_recorder(|recorder| recorder.register_histogram(key, &METADATA)).record(value);
}

/// Adds `by` to the counter `key` names, with the recorder in force.
pub(crate) fn increment(key: &Key, by: u64) {
    metrics::with_recorder(|recorder| recorder.register_counter(key, &METADATA)).increment(by);
}

/// The keys of one method's calls on one channel.
#[derive(Debug)]
pub(crate) struct MethodKeys {
    /// The `grpc.method` label's value.
    method: SharedString,
    target: SharedString,
    /// A66 `attempt.started`.
    pub(crate) attempt_started: Key,
    /// A96, each recorded only when it is not zero.
    pub(crate) retries: Key,
    pub(crate) transparent_retries: Key,
    pub(crate) hedges: Key,
    pub(crate) retry_delay: Key,
    /// Indexed by the status code's number (0 to 16).
    by_status: [OnceLock<StatusKeys>; 17],
}

/// The keys labelled with one status too.
#[derive(Debug)]
pub(crate) struct StatusKeys {
    /// A66 `call.duration`.
    pub(crate) call_duration: Key,
    /// A66 `attempt.duration`.
    pub(crate) attempt_duration: Key,
    /// A66 `attempt.sent_total_compressed_message_size`.
    pub(crate) attempt_sent: Key,
    /// A66 `attempt.rcvd_total_compressed_message_size`.
    pub(crate) attempt_rcvd: Key,
}

impl MethodKeys {
    fn new(method: SharedString, target: SharedString) -> Self {
        let key = |name: &'static str| {
            Key::from_parts(
                name,
                [
                    (label::METHOD, method.clone()),
                    (label::TARGET, target.clone()),
                ]
                .as_slice(),
            )
        };
        Self {
            attempt_started: key(names::ATTEMPT_STARTED),
            retries: key(names::CALL_RETRIES),
            transparent_retries: key(names::CALL_TRANSPARENT_RETRIES),
            hedges: key(names::CALL_HEDGES),
            retry_delay: key(names::CALL_RETRY_DELAY),
            by_status: std::array::from_fn(|_| OnceLock::new()),
            method,
            target,
        }
    }

    /// The `grpc.method` label's value: `package.Service/Method`, or `other`.
    #[cfg(test)]
    pub(crate) fn method(&self) -> &str {
        &self.method
    }

    /// The keys for calls and attempts that ended with `code`.
    pub(crate) fn status(&self, code: Code) -> &StatusKeys {
        // Codes are 0 to 16; tonic maps any other number to UNKNOWN.
        let index = usize::try_from(i32::from(code)).map_or(2, |i| i.min(16));
        self.by_status[index].get_or_init(|| {
            let key = |name: &'static str| {
                Key::from_parts(
                    name,
                    [
                        (label::METHOD, self.method.clone()),
                        (label::TARGET, self.target.clone()),
                        (label::STATUS, SharedString::const_str(status_name(code))),
                    ]
                    .as_slice(),
                )
            };
            StatusKeys {
                call_duration: key(names::CALL_DURATION),
                attempt_duration: key(names::ATTEMPT_DURATION),
                attempt_sent: key(names::ATTEMPT_SENT_SIZE),
                attempt_rcvd: key(names::ATTEMPT_RCVD_SIZE),
            }
        })
    }
}

/// A channel's method keys, by method. The methods are those generated clients call
/// (gRFC A66 labels any other path `other`), so the map stays small.
#[derive(Debug)]
pub(crate) struct ChannelKeys {
    target: SharedString,
    /// foldhash, not SipHash: a path is hashed on every call, and the map's keys are the
    /// generated clients' methods, not something a peer chooses.
    by_method: RwLock<HashMap<Box<str>, Arc<MethodKeys>, foldhash::fast::RandomState>>,
    other: Arc<MethodKeys>,
}

impl ChannelKeys {
    pub(crate) fn new(target: SharedString) -> Self {
        Self {
            other: Arc::new(MethodKeys::new(
                SharedString::const_str("other"),
                target.clone(),
            )),
            target,
            by_method: RwLock::default(),
        }
    }

    /// The keys of `method` (`package.Service/Method`), made on its first call.
    pub(crate) fn method(&self, method: &str) -> Arc<MethodKeys> {
        if let Some(keys) = self
            .by_method
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .get(method)
        {
            return keys.clone();
        }
        self.by_method
            .write()
            .unwrap_or_else(PoisonError::into_inner)
            .entry(method.into())
            .or_insert_with(|| {
                Arc::new(MethodKeys::new(
                    SharedString::from(Arc::<str>::from(method)),
                    self.target.clone(),
                ))
            })
            .clone()
    }

    /// The keys of calls that are not a generated client's method.
    pub(crate) fn other(&self) -> Arc<MethodKeys> {
        self.other.clone()
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Mutex;
    use std::sync::atomic::{AtomicU64, Ordering};

    use metrics::{Counter, Gauge, Histogram, KeyName, Recorder, Unit};

    use super::*;

    /// Every key registered with it, and one shared counter for all of them.
    #[derive(Default)]
    struct Seen {
        keys: Mutex<Vec<String>>,
        count: Arc<AtomicU64>,
    }

    impl Seen {
        fn saw(&self, key: &Key) {
            let labels: Vec<String> = key
                .labels()
                .map(|l| format!("{}={}", l.key(), l.value()))
                .collect();
            let text = format!("{}{{{}}}", key.name(), labels.join(","));
            self.keys.lock().unwrap().push(text);
        }
    }

    impl Recorder for Seen {
        fn describe_counter(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_gauge(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn describe_histogram(&self, _: KeyName, _: Option<Unit>, _: SharedString) {}
        fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
            self.saw(key);
            Counter::from_arc(self.count.clone())
        }
        fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
            self.saw(key);
            Gauge::noop()
        }
        fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
            self.saw(key);
            Histogram::noop()
        }
    }

    #[test]
    fn a_recorder_installed_after_the_keys_were_built_sees_every_later_use() {
        let channel = ChannelKeys::new(SharedString::const_str("echo"));
        let method = channel.method("echo.v1.Echo/Unary");
        // No recorder yet: nothing is recorded, nothing fails.
        increment(&method.attempt_started, 1);
        record(&method.status(Code::Ok).call_duration, 0.25);

        let seen = Seen::default();
        metrics::with_local_recorder(&seen, || {
            increment(&method.attempt_started, 1);
            record(&method.status(Code::Unavailable).attempt_duration, 0.5);
            increment(&channel.other().attempt_started, 2);
        });
        assert_eq!(
            *seen.keys.lock().unwrap(),
            [
                "grpc.client.attempt.started{grpc.method=echo.v1.Echo/Unary,grpc.target=echo}",
                "grpc.client.attempt.duration{grpc.method=echo.v1.Echo/Unary,grpc.target=echo,\
                 grpc.status=UNAVAILABLE}",
                "grpc.client.attempt.started{grpc.method=other,grpc.target=echo}",
            ]
        );
        assert_eq!(seen.count.load(Ordering::SeqCst), 3);
        // The method's keys are made once.
        assert!(Arc::ptr_eq(&method, &channel.method("echo.v1.Echo/Unary")));
    }
}
