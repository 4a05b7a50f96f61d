//! The live view: ratatui draws the frame on the alternate screen, redrawn as statuses come
//! in (about once a second) and as keys are pressed; the terminal is given back as it was when
//! the view ends, by `q` (or Ctrl-C, which raw mode delivers as a key).

use std::io;
use std::path::Path;
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Style, Stylize};
use ratatui::text::Line;
use ratatui::widgets::{Block, Paragraph, Row, Table};
use ratatui::{DefaultTerminal, Frame};

use regiment_core::Status;

use super::frame::{self, COLUMNS, WorkerRow};
use super::history::{History, Reading};
use super::keys::{Prompt, Step};
use super::pane::Pane;
use super::poll::{self, Polled};
use super::reports::Told;
use super::{MIN_SIZE, act};

/// How long a key is waited for before the view looks for new statuses.
const TICK: Duration = Duration::from_millis(100);

/// What the view shows besides the frame.
struct View {
    history: History,
    pane: Pane,
    /// The kill reports already in the pane.
    told: Told,
    prompt: Prompt,
    /// Why the master does not answer now, since when.
    trouble: Option<(SystemTime, String)>,
}

/// Shows the view until `q`, starting from `first`.
pub(crate) fn run(socket: &Path, wait: Duration, first: Status) -> io::Result<()> {
    let mut view = View {
        history: History::default(),
        pane: Pane::default(),
        told: Told::default(),
        prompt: Prompt::default(),
        trouble: None,
    };
    view.pane.seed(&first);
    view.history.push(Reading {
        status: first,
        at: Instant::now(),
    });
    let (polled, polls) = mpsc::channel();
    poll::start(socket.to_owned(), wait, polled);
    let (said, acts) = mpsc::channel::<String>();
    let mut terminal = ratatui::try_init()?;
    let outcome = (|| -> io::Result<()> {
        loop {
            while let Ok(p) = polls.try_recv() {
                view.take(p);
            }
            while let Ok(line) = acts.try_recv() {
                view.pane.push(Some(SystemTime::now()), &line);
            }
            draw_on(&mut terminal, &view)?;
            if !event::poll(TICK)? {
                continue;
            }
            let Event::Key(key) = event::read()? else {
                continue;
            };
            if key.kind != KeyEventKind::Press {
                continue;
            }
            if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
                return Ok(());
            }
            let slots = view.history.latest().map_or(0, |r| r.status.workers_wanted);
            match view.prompt.press(key.code, slots) {
                Step::Nothing => {}
                Step::Quit => return Ok(()),
                Step::Do(act) => {
                    view.pane
                        .push(Some(SystemTime::now()), &format!("asked: {}", act.what()));
                    act::start(act, socket.to_owned(), wait, said.clone());
                }
            }
        }
    })();
    ratatui::restore();
    outcome
}

impl View {
    fn take(&mut self, polled: Polled) {
        match polled {
            Polled::Answered(status, at, wall) => {
                if let Some((since, _)) = self.trouble.take() {
                    let down = wall.duration_since(since).unwrap_or_default();
                    self.pane.push(
                        Some(wall),
                        &format!(
                            "the master answers again, after {}",
                            crate::describe::duration(
                                u64::try_from(down.as_millis()).unwrap_or(u64::MAX)
                            )
                        ),
                    );
                }
                if let Some(before) = self.history.latest() {
                    self.pane.observe(&before.status, &status, wall);
                }
                self.history.push(Reading {
                    status: *status,
                    at,
                });
            }
            Polled::Reports(reports) => self.told.tell(&reports, &mut self.pane),
            Polled::Failed(why) => {
                if self.trouble.is_none() {
                    self.pane.push(Some(SystemTime::now()), &why);
                }
                let since = self.trouble.take().map_or_else(SystemTime::now, |t| t.0);
                self.trouble = Some((since, why));
            }
        }
    }
}

fn draw_on(terminal: &mut DefaultTerminal, view: &View) -> io::Result<()> {
    terminal.draw(|f| draw(f, view)).map(|_| ())
}

fn draw(f: &mut Frame<'_>, view: &View) {
    let area = f.area();
    if area.width < MIN_SIZE.0 || area.height < MIN_SIZE.1 {
        f.render_widget(
            Paragraph::new(format!(
                "the terminal is {}x{}; top needs at least {}x{}: enlarge it (q quits)",
                area.width, area.height, MIN_SIZE.0, MIN_SIZE.1
            )),
            area,
        );
        return;
    }
    let frame = frame::frame(&view.history, SystemTime::now());
    let mut header: Vec<Line<'_>> = Vec::new();
    if let Some((since, why)) = &view.trouble {
        let since = humantime::format_rfc3339_seconds(*since).to_string();
        header.push(
            Line::from(format!(
                "master unreachable since {} UTC, asking again every second: {why}",
                since.get(11..19).unwrap_or("?")
            ))
            .style(Style::new().fg(Color::Red).bold()),
        );
    }
    header.extend(frame.header.iter().map(|l| Line::from(l.as_str())));
    let header_height = u16::try_from(header.len()).unwrap_or(u16::MAX);
    // The table takes what its rows need, leaving the events a few lines at least.
    let table_height = u16::try_from(frame.rows.len() + 1)
        .unwrap_or(u16::MAX)
        .min(area.height.saturating_sub(header_height + 1 + 1 + 5));
    let [top, table, events, footer] = Layout::vertical([
        Constraint::Length(header_height + 1),
        Constraint::Length(table_height),
        Constraint::Min(3),
        Constraint::Length(1),
    ])
    .areas(area);
    f.render_widget(Paragraph::new(header), top);
    draw_table(f, &frame.rows, table);
    let inner = events.height.saturating_sub(2) as usize;
    let lines: Vec<Line<'_>> = view
        .pane
        .newest(inner)
        .map(|e| Line::from(e.line()))
        .collect();
    f.render_widget(
        Paragraph::new(lines).block(Block::bordered().title(" events (UTC) ")),
        events,
    );
    let slots = view.history.latest().map_or(0, |r| r.status.workers_wanted);
    let prompt = Line::from(view.prompt.line(slots));
    let prompt = match view.prompt {
        Prompt::Idle => prompt.dim(),
        _ => prompt.bold().fg(Color::Yellow),
    };
    f.render_widget(Paragraph::new(prompt), footer);
}

fn draw_table(f: &mut Frame<'_>, rows: &[WorkerRow], area: Rect) {
    let widths = (0..COLUMNS.len()).map(|i| {
        let widest = rows
            .iter()
            .map(|r| r[i].chars().count())
            .chain([COLUMNS[i].len()])
            .max()
            .unwrap_or(0);
        if i + 1 == COLUMNS.len() {
            Constraint::Min(11)
        } else {
            Constraint::Length(u16::try_from(widest).unwrap_or(u16::MAX))
        }
    });
    let table = Table::new(
        rows.iter().map(|r| Row::new(r.iter().map(String::as_str))),
        widths,
    )
    .header(Row::new(COLUMNS).bold())
    .column_spacing(2);
    f.render_widget(table, area);
}
