//! The old master's side of the preflight, with real programs: `/bin/true` executed through
//! its descriptor, and shell scripts (executed by path). The end-to-end tests run regiment
//! programs (tests/tests/preflight.rs).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;

use super::*;
use crate::test_support::scratch_dir;

const VERSION: u32 = 1;

fn script(dir: &Path, name: &str, body: &str) -> Program {
    let path = dir.join(name);
    let tmp = dir.join(format!("{name}.tmp"));
    std::fs::write(&tmp, format!("#!/bin/sh\n{body}\n")).unwrap();
    std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::rename(&tmp, &path).unwrap();
    Program::open(&path).unwrap()
}

async fn preflight(program: &Program, bound: Duration) -> Result<(), Refusal> {
    let mut attempts = 0;
    loop {
        let result = Preflight {
            program,
            argv0: "app",
            args: &[OsString::from("--flag")],
            extra_env: &[("PREFLIGHT_TEST".into(), "given".into())],
            version: VERSION,
            bound,
        }
        .run()
        .await;
        match result {
            // A file just written is busy while a test running in parallel forks with its
            // write descriptor (close-on-exec, but not closed before that child's exec).
            Err(r) if r.why.contains("Text file busy") && attempts < 50 => {
                attempts += 1;
                tokio::time::sleep(Duration::from_millis(20)).await;
            }
            other => return other,
        }
    }
}

const LONG: Duration = Duration::from_secs(60);

#[tokio::test]
async fn a_program_that_says_it_reads_the_version_and_exits_0_passes() {
    let dir = scratch_dir("preflight-pass");
    // It is given the version, the master's arguments and the extra variables.
    let program = script(
        &dir,
        "app",
        "[ \"$1\" = --flag ] && [ \"$PREFLIGHT_TEST\" = given ] || exit 9\n\
         echo starting\n\
         echo \"regiment preflight: ok, this program reads handover version ${REGIMENT_PREFLIGHT%%:*}\"",
    );
    preflight(&program, LONG).await.unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_program_that_exits_0_at_once_is_refused_for_not_reaching_serve() {
    let program = Program::open(Path::new("/bin/true")).unwrap();
    assert!(program.fd().is_some(), "executed through its descriptor");
    let refusal = preflight(&program, LONG).await.unwrap_err();
    assert!(
        refusal.why.contains("exited 0 without confirming"),
        "{refusal}"
    );
    assert!(
        refusal.to_string().ends_with("; it wrote nothing"),
        "{refusal}"
    );
    assert!(
        refusal
            .to_string()
            .starts_with("the new program /bin/true failed its preflight")
    );
}

#[tokio::test]
async fn a_failing_program_is_refused_with_its_status_and_last_lines_of_both_streams() {
    let dir = scratch_dir("preflight-fails");
    let program = script(
        &dir,
        "app",
        "i=0; while [ $i -lt 30 ]; do echo \"out $i\"; i=$((i+1)); done\n\
         echo 'error: invalid value for REGIMENT_WORKERS' >&2\n\
         exit 3",
    );
    let refusal = preflight(&program, LONG).await.unwrap_err();
    assert!(refusal.why.contains("exit status: 3"), "{refusal}");
    let lines: Vec<&str> = refusal.output.lines().collect();
    assert_eq!(lines.len(), 20, "{refusal}");
    assert_eq!(lines[0], "out 11");
    assert_eq!(lines[19], "error: invalid value for REGIMENT_WORKERS");
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_program_past_its_bound_is_killed_with_what_it_started() {
    let dir = scratch_dir("preflight-hangs");
    let program = script(&dir, "app", "sleep 1000 &\necho \"started $!\"\nwait");
    let refusal = preflight(&program, Duration::from_secs(5))
        .await
        .unwrap_err();
    assert!(
        refusal.why.contains("did not finish within 5s: killed"),
        "{refusal}"
    );
    let started: u32 = refusal
        .output
        .trim()
        .strip_prefix("started ")
        .and_then(|pid| pid.parse().ok())
        .unwrap_or_else(|| panic!("{refusal}"));
    // Its group was killed: the process it started is gone, or a zombie its parent left.
    let deadline = std::time::Instant::now() + LONG;
    while std::fs::read_to_string(format!("/proc/{started}/stat")).is_ok_and(|stat| {
        !stat
            .rsplit(')')
            .next()
            .unwrap_or("")
            .trim_start()
            .starts_with('Z')
    }) {
        assert!(
            std::time::Instant::now() < deadline,
            "pid {started} lives on"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test]
async fn a_program_that_cannot_start_is_refused_saying_so() {
    let dir = scratch_dir("preflight-cannot-start");
    let program = script(&dir, "app", "");
    std::fs::write(dir.join("app"), "#!/nonexistent/interpreter\n").unwrap();
    let refusal = preflight(&program, LONG).await.unwrap_err();
    assert!(refusal.why.starts_with("it cannot be started"), "{refusal}");
    std::fs::remove_dir_all(&dir).unwrap();
}
