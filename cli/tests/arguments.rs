//! How `ephemos` reads its arguments and environment, run as a user would against a
//! plaintext echo server that counts calls: numbers past a flag's limit are refused with
//! exit 2 and the limit (never a panic, an abort or a call), a load of 10^12 calls runs in
//! memory that does not grow, and `EPHEMOS_PROFILE` picks the profile as it does for a
//! client, with `--profile` winning.

mod run;

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use ephemos_test_support::FailingServer;

fn echo_proto() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../tests/support/proto/echo.proto")
}

/// A plaintext echo server (it answers every call OK) and a `connections.toml` whose
/// target `echo` points at a closed port, and at the server in its profile `local`.
struct Setup {
    dir: tempfile::TempDir,
    server: FailingServer,
    proto: String,
}

impl Setup {
    async fn start() -> Setup {
        let server = FailingServer::start([]).await;
        let closed = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap();
        let dir = tempfile::tempdir().unwrap();
        let toml = format!(
            r#"
[defaults]
identity = {{ source = "plaintext" }}
connect_timeout = "2s"

[targets.echo]
service = "echo.v1.Echo"
address = "{closed}"
retry = false

[targets.echo.profiles.local]
address = "{server}"

[targets.echo.profiles.elsewhere]
address = "{closed}"
"#,
            server = server.addr()
        );
        std::fs::write(dir.path().join("connections.toml"), toml).unwrap();
        Setup {
            dir,
            server,
            proto: echo_proto().to_str().unwrap().to_owned(),
        }
    }

    fn command(&self, args: &[&str], profile: Option<&str>) -> Command {
        run::command(self.dir.path(), args, profile)
    }

    /// Runs `ephemos ARGS` with `EPHEMOS_PROFILE` set to `profile` (or unset).
    async fn ephemos(&self, args: &[&str], profile: Option<&str>) -> Output {
        run::ephemos(self.dir.path(), args, profile).await
    }

    /// `ephemos call echo Unary -d {"message": "x"} --proto echo.proto EXTRA...`.
    fn call_args<'a>(&'a self, extra: &[&'a str]) -> Vec<&'a str> {
        let mut args = vec![
            "call",
            "echo",
            "Unary",
            "-d",
            r#"{"message": "x"}"#,
            "--proto",
            &self.proto,
        ];
        args.extend_from_slice(extra);
        args
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn numbers_past_a_flags_limit_exit_2_naming_the_flag_and_the_limit() {
    let setup = Setup::start().await;
    let cases: [(&[&str], &str); 6] = [
        (
            &["--repeat", "1000000000001"],
            "invalid value '1000000000001' for '--repeat <REPEAT>': 1000000000001 is not in 1..=1000000000000",
        ),
        (
            &["--repeat", "18446744073709551615"],
            "for '--repeat <REPEAT>': 18446744073709551615 is not in 1..=1000000000000",
        ),
        (
            &["--repeat", "0"],
            "for '--repeat <REPEAT>': 0 is not in 1..=1000000000000",
        ),
        (
            &["--concurrency", "18446744073709551615", "--repeat", "2"],
            "for '--concurrency <CONCURRENCY>': 18446744073709551615 is not in 1..=10000",
        ),
        (
            &["--timeout", "12000y"],
            "invalid value '12000y' for '--timeout <TIMEOUT>': at most 99999999h",
        ),
        (
            &["--timeout", "100000000h"],
            "for '--timeout <TIMEOUT>': at most 99999999h",
        ),
    ];
    for (extra, expected) in cases {
        let output = setup.ephemos(&setup.call_args(extra), Some("local")).await;
        let stderr = run::stderr(&output);
        assert_eq!(output.status.code(), Some(2), "{extra:?}: {stderr}");
        assert!(stderr.contains(expected), "{extra:?}: {stderr}");
    }
    let output = setup
        .ephemos(&["probe", "echo", "--timeout", "12000y"], Some("local"))
        .await;
    let stderr = run::stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("for '--timeout <TIMEOUT>': at most 99999999h"),
        "{stderr}"
    );
    assert_eq!(setup.server.calls(), 0, "nothing was called");

    // The longest deadline gRPC carries is a deadline like any other.
    let output = setup
        .ephemos(&setup.call_args(&["--timeout", "99999999h"]), Some("local"))
        .await;
    assert_eq!(output.status.code(), Some(0), "{}", run::stderr(&output));
    assert_eq!(setup.server.calls(), 1);
}

/// The resident memory of a process, in KiB.
fn resident_kib(pid: u32) -> u64 {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap();
    status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|value| value.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_load_of_a_trillion_calls_runs_in_memory_that_does_not_grow() {
    let setup = Setup::start().await;
    let mut child = setup
        .command(
            &setup.call_args(&["--repeat", "1000000000000", "--concurrency", "4"]),
            Some("local"),
        )
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let pid = child.id();
    // Waits until the server has counted `calls`, checking the load still runs.
    let wait_for = |calls: usize, child: &mut std::process::Child| {
        let started = Instant::now();
        while setup.server.calls() < calls {
            if let Some(status) = child.try_wait().unwrap() {
                let mut stderr = String::new();
                std::io::Read::read_to_string(child.stderr.as_mut().unwrap(), &mut stderr).unwrap();
                panic!(
                    "the load ended ({status}) after {} calls: {stderr}",
                    setup.server.calls()
                );
            }
            assert!(
                started.elapsed() < Duration::from_secs(300),
                "{} calls",
                setup.server.calls()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    };
    let measure = tokio::task::block_in_place(|| {
        wait_for(2_000, &mut child);
        let warm = resident_kib(pid);
        wait_for(42_000, &mut child);
        (warm, resident_kib(pid))
    });
    child.kill().unwrap();
    child.wait().unwrap();
    let (warm, later) = measure;
    // 40,000 calls kept one record each would be over 2 MiB.
    assert!(
        later < warm + 1024,
        "resident memory grew from {warm} KiB to {later} KiB over 40,000 calls"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn ephemos_profile_picks_the_profile_as_for_a_client_and_the_flag_wins() {
    let setup = Setup::start().await;
    // The target's own address is closed; its profile `local` is the server.
    let output = setup.ephemos(&setup.call_args(&[]), Some("local")).await;
    assert_eq!(output.status.code(), Some(0), "{}", run::stdout(&output));
    assert_eq!(setup.server.calls(), 1, "counted at the server");

    let output = setup
        .ephemos(&setup.call_args(&["--profile", "elsewhere"]), Some("local"))
        .await;
    let stdout = run::stdout(&output);
    assert_eq!(output.status.code(), Some(1), "{stdout}");
    assert!(stdout.contains("cannot connect to"), "{stdout}");

    for unset in [None, Some("")] {
        let output = setup.ephemos(&setup.call_args(&[]), unset).await;
        assert_eq!(output.status.code(), Some(1), "{unset:?}");
    }
    assert_eq!(
        setup.server.calls(),
        1,
        "only the profile `local` reached it"
    );

    let output = setup.ephemos(&["probe", "echo"], Some("local")).await;
    let stdout = run::stdout(&output);
    assert_eq!(output.status.code(), Some(0), "{stdout}");
    assert!(
        stdout.starts_with("probe of `echo` in profile `local`"),
        "{stdout}"
    );

    let output = setup
        .ephemos(&["render", "echo", "--format", "json"], Some("local"))
        .await;
    let rendered: serde_json::Value = serde_json::from_slice(&output.stdout).unwrap();
    assert_eq!(rendered["profile"], "local");
    assert_eq!(
        rendered["dial"]["endpoints"][0],
        setup.server.addr().to_string()
    );

    let output = setup.ephemos(&setup.call_args(&[]), Some("nope")).await;
    let stderr = run::stderr(&output);
    assert_eq!(output.status.code(), Some(2), "{stderr}");
    assert!(
        stderr.contains("no profile `nope` (named by EPHEMOS_PROFILE; --profile overrides it"),
        "{stderr}"
    );
    assert!(
        stderr.contains("the profiles are: local, elsewhere"),
        "{stderr}"
    );
}
