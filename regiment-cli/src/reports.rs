//! `regiment reports` and `regiment report ID`: the reports the master took of workers before
//! it killed them, as a table, one whole, or as JSON.

use std::fmt::Write;
use std::process::ExitCode;

use regiment_core::KillReport;
use regiment_core::plumbing::control::Answer;

use crate::client::{Connection, Failure};
use crate::describe::{self, bytes};
use crate::output::{self, Format};
use crate::printable::printable;

/// Prints the reports the master keeps: a table, or JSON.
pub(crate) fn list(connection: &mut Connection, format: Format) -> Result<ExitCode, Failure> {
    let Answer::Reports { reports } = connection.answer()? else {
        return Err(Failure::Unexpected);
    };
    output::print(&reports, format, |r| table(r))
}

/// Prints one report whole: a header, then a row per thread; or JSON.
pub(crate) fn one(connection: &mut Connection, format: Format) -> Result<ExitCode, Failure> {
    let Answer::Report { report } = connection.answer()? else {
        return Err(Failure::Unexpected);
    };
    output::print(&*report, format, whole)
}

/// `ID  TIME  SLOT  PID  GEN  WHY  THREADS`, a row per report, oldest first.
fn table(reports: &[KillReport]) -> String {
    if reports.is_empty() {
        return "no kill reports: the master has killed no worker it could report on\n".into();
    }
    let mut rows = vec![["ID", "TIME", "SLOT", "PID", "GEN", "WHY", "THREADS"].map(String::from)];
    for r in reports {
        rows.push([
            r.id.to_string(),
            describe::rfc3339(r.at_ms),
            r.slot.to_string(),
            r.pid.to_string(),
            r.generation.to_string(),
            printable(&r.why).into_owned(),
            printable(&r.summary()).into_owned(),
        ]);
    }
    crate::columns::aligned(&rows)
}

/// The header of a report, then its threads.
fn whole(r: &KillReport) -> String {
    let mut out = String::new();
    let _ = writeln!(
        out,
        "kill report {} · {} · worker slot {} pid {} generation {} · {}",
        r.id,
        describe::rfc3339(r.at_ms),
        r.slot,
        r.pid,
        r.generation,
        printable(&r.why)
    );
    let rss = r.rss.map_or_else(|| "unknown".into(), bytes);
    let _ = writeln!(out, "rss {rss} · {}", printable(&r.summary()));
    if !r.complete {
        out.push_str("cut short: the kill went ahead with the threads read by then\n");
    }
    if r.threads_left_out > 0 {
        let _ = writeln!(out, "{} more threads not read", r.threads_left_out);
    }
    out.push('\n');
    let mut rows = vec![["TID", "NAME", "STATE", "SYSCALL", "WCHAN"].map(String::from)];
    for t in &r.threads {
        let or_dash = |s: &Option<String>| s.as_deref().map_or("-".into(), |s| printable(s).into());
        rows.push([
            t.tid.to_string(),
            printable(&t.name).into_owned(),
            printable(&t.state).into_owned(),
            or_dash(&t.syscall),
            or_dash(&t.wchan),
        ]);
    }
    out.push_str(&crate::columns::aligned(&rows));
    out.push_str(&requests(r));
    out.push_str(&stacks(r));
    out
}

/// The requests the worker had in flight, oldest first, if it answered.
fn requests(r: &KillReport) -> String {
    let mut out = String::new();
    if !r.worker_answered {
        out.push_str("\nthe worker did not answer: no requests in flight nor stacks\n");
        return out;
    }
    if r.requests.is_empty() && r.requests_left_out == 0 {
        out.push_str("\nno request in flight\n");
        return out;
    }
    out.push('\n');
    let mut rows = vec![["AGE", "METHOD", "PATH", "VERSION"].map(String::from)];
    for q in &r.requests {
        rows.push([
            format!("{:.1}s", q.age_ms as f64 / 1000.0),
            printable(&q.method).into_owned(),
            printable(&q.path).into_owned(),
            printable(&q.version).into_owned(),
        ]);
    }
    out.push_str(&crate::columns::aligned(&rows));
    if r.requests_left_out > 0 {
        let _ = writeln!(out, "{} more requests in flight", r.requests_left_out);
    }
    out
}

/// Each thread's stack, innermost frame first: `#0 function (file:line)`.
fn stacks(r: &KillReport) -> String {
    let mut out = String::new();
    for t in r.threads.iter().filter(|t| !t.stack.is_empty()) {
        let _ = writeln!(out, "\nthread {} {}", t.tid, printable(&t.name));
        for (i, frame) in t.stack.iter().enumerate() {
            let _ = write!(out, "  #{i:<2} {}", printable(&frame.function));
            if let Some(file) = &frame.file {
                let _ = write!(out, " ({}", printable(file));
                if let Some(line) = frame.line {
                    let _ = write!(out, ":{line}");
                }
                out.push(')');
            }
            out.push('\n');
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn report() -> KillReport {
        serde_json::from_str(
            r#"{"id":3,"at_ms":1796632007081,"slot":1,"pid":4242,"generation":2,
                "why":"drain deadline","rss":52428800,"complete":false,"threads_left_out":0,
                "worker_answered":true,"requests_left_out":2,
                "requests":[{"method":"GET","path":"/slow","version":"HTTP/1.1","age_ms":5230}],
                "threads":[
                  {"tid":4242,"name":"app","state":"S (sleeping)","wchan":"do_epoll_wait",
                   "syscall":"epoll_wait"},
                  {"tid":4243,"name":"tokio-runtime-w","state":"S (sleeping)",
                   "wchan":"futex_wait_queue","syscall":"futex","stack":[
                     {"function":"std::thread::sleep","file":"library/std/src/thread/mod.rs",
                      "line":871},
                     {"function":"app::slow::{{closure}}","file":"src/main.rs","line":12},
                     {"function":"0x55d0c0ffee12"}]},
                  {"tid":4244,"name":"evil\u001b[2J","state":"R (running)","wchan":null,
                   "syscall":"running"}]}"#,
        )
        .unwrap()
    }

    #[test]
    fn the_table_has_a_row_per_report() {
        let text = table(&[report()]);
        let lines: Vec<&str> = text.lines().collect();
        assert_eq!(lines.len(), 2, "{text}");
        assert!(lines[0].starts_with("ID  TIME"), "{text}");
        assert_eq!(
            lines[1],
            "3   2026-12-07T08:26:47Z  1     4242  2    drain deadline  3 threads, 1 in \
             epoll_wait, 1 in futex, 1 running (cut short); 3 requests in flight, oldest GET \
             /slow for 5.2 s"
        );
        assert!(table(&[]).starts_with("no kill reports"));
    }

    #[test]
    fn a_report_shows_every_thread_with_names_escaped() {
        let text = whole(&report());
        assert!(text.starts_with(
            "kill report 3 · 2026-12-07T08:26:47Z · worker slot 1 pid 4242 generation 2 · \
             drain deadline\nrss 50.0 MiB · 3 threads"
        ));
        assert!(text.contains("cut short"), "{text}");
        assert!(
            text.contains("4243  tokio-runtime-w  S (sleeping)  futex       futex_wait_queue"),
            "{text}"
        );
        assert!(text.contains("evil\\u{1b}[2J"), "{text}");
        assert!(!text.contains('\u{1b}'));
    }

    #[test]
    fn a_report_shows_the_requests_in_flight_and_the_stacks_the_worker_gave() {
        let text = whole(&report());
        assert!(
            text.contains("AGE   METHOD  PATH   VERSION\n5.2s  GET     /slow  HTTP/1.1\n"),
            "{text}"
        );
        assert!(text.contains("2 more requests in flight"), "{text}");
        assert!(
            text.contains(
                "thread 4243 tokio-runtime-w\n  #0  std::thread::sleep \
                 (library/std/src/thread/mod.rs:871)\n  #1  app::slow::{{closure}} \
                 (src/main.rs:12)\n  #2  0x55d0c0ffee12\n"
            ),
            "{text}"
        );
        assert!(
            !text.contains("thread 4242"),
            "a thread without a stack: {text}"
        );
        let mut unanswered = report();
        unanswered.worker_answered = false;
        assert!(whole(&unanswered).contains("the worker did not answer"));
    }
}
