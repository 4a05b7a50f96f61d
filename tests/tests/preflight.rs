//! The preflight of an upgrade in place (issue 23), run as the old master runs it on the new
//! program: real regiment programs (`hello`, the fixture), a program that exits at once, and
//! options the new program refuses. The preflight binds nothing: every address it is given is
//! held here, as the old master holds them.

use std::ffi::OsString;
use std::os::unix::net::UnixListener;
use std::path::Path;

use regiment_core::plumbing::upgrade::{HANDOVER_VERSION, preflight};
use tests::cluster::CEILING;
use tests::scratch::ScratchDir;

const HELLO: &str = env!("CARGO_BIN_EXE_hello_under_test");
const FIXTURE: &str = env!("CARGO_BIN_EXE_fixture");
const EXIT_AT_ONCE: &str = env!("CARGO_BIN_EXE_exit_at_once_under_test");

/// What an old master holds: an application port, an admin port and a control socket, live.
struct Held {
    app: std::net::TcpListener,
    admin: std::net::TcpListener,
    _control: UnixListener,
    dir: ScratchDir,
}

impl Held {
    fn new(name: &str) -> Self {
        let dir = ScratchDir::new(name);
        Self {
            app: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            admin: std::net::TcpListener::bind("127.0.0.1:0").unwrap(),
            _control: UnixListener::bind(dir.join("control.sock")).unwrap(),
            dir,
        }
    }

    /// The variables that give a master these addresses, with `more`.
    fn env(&self, more: &[(&str, &str)]) -> Vec<(OsString, OsString)> {
        let app = self.app.local_addr().unwrap().to_string();
        let admin = self.admin.local_addr().unwrap().to_string();
        let control = self.dir.join("control.sock").display().to_string();
        let mut env: Vec<(OsString, OsString)> = [
            ("REGIMENT_BIND", app.as_str()),
            ("HELLO_BIND", app.as_str()),
            ("REGIMENT_ADMIN_BIND", admin.as_str()),
            ("REGIMENT_CONTROL_SOCKET", control.as_str()),
            ("REGIMENT_WORKERS", "2"),
        ]
        .iter()
        .map(|(k, v)| (k.into(), v.into()))
        .collect();
        env.extend(more.iter().map(|(k, v)| (k.into(), v.into())));
        env
    }
}

async fn run(program: &str, env: &[(OsString, OsString)], version: u32) -> Result<(), String> {
    preflight(Path::new(program), &[], env, version, CEILING).await
}

#[tokio::test]
async fn hello_and_the_fixture_pass_without_binding_what_the_old_master_holds() {
    let held = Held::new("preflight-pass");
    // A master that bound any of them would fail on the address in use, or on the control
    // socket of a live master: passing is binding nothing.
    for program in [HELLO, FIXTURE] {
        run(program, &held.env(&[]), HANDOVER_VERSION)
            .await
            .unwrap_or_else(|refusal| panic!("{program}: {refusal}"));
    }
}

#[tokio::test]
async fn a_program_that_exits_0_at_once_is_refused_with_its_output() {
    let refusal = run(EXIT_AT_ONCE, &[], HANDOVER_VERSION).await.unwrap_err();
    assert!(refusal.contains("exited 0 without confirming"), "{refusal}");
    assert!(
        refusal.contains("its last lines of output:\nexit_at_once_under_test: nothing to do\n"),
        "{refusal}"
    );
}

#[tokio::test]
async fn options_the_new_program_refuses_are_named_in_the_refusal() {
    let held = Held::new("preflight-options");
    let refusal = run(
        HELLO,
        &held.env(&[("REGIMENT_WORKERS", "zero")]),
        HANDOVER_VERSION,
    )
    .await
    .unwrap_err();
    assert!(
        refusal.contains("it ended with exit status: 1"),
        "{refusal}"
    );
    assert!(
        refusal.contains("REGIMENT_WORKERS") && refusal.contains("zero"),
        "{refusal}"
    );
}

#[tokio::test]
async fn a_version_the_new_program_does_not_read_is_refused_naming_both() {
    let held = Held::new("preflight-version");
    let newer = HANDOVER_VERSION + 1;
    let refusal = run(HELLO, &held.env(&[]), newer).await.unwrap_err();
    assert!(
        refusal.contains(&format!(
            "reads handover version {HANDOVER_VERSION}, not version {newer}"
        )),
        "{refusal}"
    );
}
