//! The user and group workers run as ([`crate::Builder::worker_user`],
//! [`crate::Builder::worker_group`]), resolved once in the master when it is built. The switch
//! itself happens in each child between fork and exec (`master::driver::worker_process`).

use std::collections::BTreeMap;
use std::ffi::OsString;
use std::fmt;

use nix::unistd::{Gid, Group, Uid, User};

use crate::error::{Error, Result};

/// A user or group as an option gave it: a name, or a number (all digits).
#[derive(Debug, Clone)]
pub(crate) struct Requested {
    /// `worker_user`, `REGIMENT_WORKER_USER`, ...: the name errors give.
    pub option: &'static str,
    pub value: String,
}

/// The ids a child switches to before exec.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Ids {
    pub uid: libc::uid_t,
    pub gid: libc::gid_t,
}

/// Who workers run as, and what their environment says about it.
#[derive(Debug, Clone)]
pub(crate) struct WorkerIdentity {
    pub ids: Ids,
    /// `HOME`, `USER` and `LOGNAME` of the workers' user, replacing the master's (which would
    /// name root and its home); `None` when the user does not change (only the group does).
    login_vars: Option<Vec<(OsString, OsString)>>,
    /// For the log line at start: `user nobody (uid 65534), group nogroup (gid 65534)`.
    description: String,
}

/// The master's own credentials, the only input of [`resolve_for`] besides the options.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Master {
    pub uid: Uid,
    pub gid: Gid,
    /// Whether it may switch users at all (effective uid 0).
    pub privileged: bool,
}

impl Master {
    pub(crate) fn current() -> Self {
        Self {
            uid: nix::unistd::getuid(),
            gid: nix::unistd::getgid(),
            privileged: nix::unistd::geteuid().is_root(),
        }
    }
}

/// Resolves the options in the user and group databases. `None`: workers run as the master
/// does (no option given, or a master that is not root asked for its own user and group).
pub(crate) fn resolve(
    user: Option<Requested>,
    group: Option<Requested>,
) -> Result<Option<WorkerIdentity>> {
    resolve_for(Master::current(), user, group)
}

pub(crate) fn resolve_for(
    master: Master,
    user: Option<Requested>,
    group: Option<Requested>,
) -> Result<Option<WorkerIdentity>> {
    if user.is_none() && group.is_none() {
        return Ok(None);
    }
    // The option beside what it resolved to, for the errors below.
    let account = user
        .as_ref()
        .map(|u| lookup_user(u).map(|found| (u, found)))
        .transpose()?;
    let (gid, group_name) = match (&group, &account) {
        (Some(g), _) => lookup_group(g)?,
        (None, Some((_, (_, Some(entry))))) => (entry.gid, group_name(entry.gid)),
        (None, Some((u, (uid, None)))) => {
            return Err(Error::invalid(
                u.option,
                &u.value,
                format!(
                    "a user with an entry in the user database, or a group given as well \
                     (worker_group, REGIMENT_WORKER_GROUP): uid {uid} has no entry, so no \
                     primary group"
                ),
            ));
        }
        (None, None) => (master.gid, group_name(master.gid)),
    };
    let uid = account.as_ref().map_or(master.uid, |(_, (uid, _))| *uid);

    if !master.privileged {
        if uid == master.uid && gid == master.gid {
            return Ok(None);
        }
        // The option that asks for what the master cannot do.
        let refused = match (&account, &group) {
            (Some((u, _)), _) if uid != master.uid => u,
            (_, Some(g)) => g,
            (Some((u, _)), None) => u,
            (None, None) => return Ok(None),
        };
        return Err(Error::invalid(
            refused.option,
            &refused.value,
            format!(
                "the master's own user and group (uid {}, gid {}): only a master started as \
                 root can run its workers as another user or group",
                master.uid, master.gid
            ),
        ));
    }

    let user_part = match &account {
        Some((_, (uid, Some(entry)))) => format!("user {} (uid {uid})", entry.name),
        Some((_, (uid, None))) => format!("uid {uid}"),
        None => format!("the master's user (uid {uid})"),
    };
    let group_part = match group_name {
        Some(name) => format!("group {name} (gid {gid})"),
        None => format!("gid {gid}"),
    };
    let login_vars = account.map(|(_, (_, entry))| match entry {
        Some(u) => vec![
            ("HOME".into(), u.dir.into_os_string()),
            ("USER".into(), u.name.clone().into()),
            ("LOGNAME".into(), u.name.into()),
        ],
        // A uid with no entry has no name or home: the master's would be wrong, so none.
        None => Vec::new(),
    });
    Ok(Some(WorkerIdentity {
        ids: Ids {
            uid: uid.as_raw(),
            gid: gid.as_raw(),
        },
        login_vars,
        description: format!("{user_part}, {group_part}"),
    }))
}

impl WorkerIdentity {
    /// Replaces the login variables in `vars` with the workers' user's, when the user changes.
    pub(crate) fn set_login_vars(&self, vars: &mut BTreeMap<OsString, OsString>) {
        if let Some(login) = &self.login_vars {
            for name in ["HOME", "USER", "LOGNAME"] {
                vars.remove(std::ffi::OsStr::new(name));
            }
            vars.extend(login.iter().cloned());
        }
    }
}

#[cfg(test)]
impl WorkerIdentity {
    /// Any ids, even ones no option resolves to: for tests of the switch itself.
    pub(crate) fn from_ids(ids: Ids) -> Self {
        Self {
            ids,
            login_vars: None,
            description: format!("uid {}, gid {}", ids.uid, ids.gid),
        }
    }
}

impl fmt::Display for WorkerIdentity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.description)
    }
}

/// A user name or a number (all digits), and its database entry if there is one.
fn lookup_user(r: &Requested) -> Result<(Uid, Option<User>)> {
    let v = r.value.trim();
    let failed = |e: nix::Error| {
        Error::invalid(
            r.option,
            &r.value,
            format!("a user the user database can look up (it failed: {e})"),
        )
    };
    if let Some(uid) = number(v) {
        let uid = Uid::from_raw(uid);
        return Ok((uid, User::from_uid(uid).map_err(failed)?));
    }
    match User::from_name(v).map_err(failed)? {
        Some(u) => Ok((u.uid, Some(u))),
        None => Err(Error::invalid(
            r.option,
            &r.value,
            "the name of a user of this system (see `getent passwd`) or a numeric uid",
        )),
    }
}

/// A group name or a number (all digits), and the group's name if it has one.
fn lookup_group(r: &Requested) -> Result<(Gid, Option<String>)> {
    let v = r.value.trim();
    if let Some(gid) = number(v) {
        let gid = Gid::from_raw(gid);
        return Ok((gid, group_name(gid)));
    }
    match Group::from_name(v) {
        Ok(Some(g)) => Ok((g.gid, Some(g.name))),
        Ok(None) => Err(Error::invalid(
            r.option,
            &r.value,
            "the name of a group of this system (see `getent group`) or a numeric gid",
        )),
        Err(e) => Err(Error::invalid(
            r.option,
            &r.value,
            format!("a group the group database can look up (it failed: {e})"),
        )),
    }
}

/// An id given as digits. `u32::MAX` is not an id: to setuid and setgid it means "unchanged".
fn number(v: &str) -> Option<u32> {
    if v.is_empty() || !v.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    v.parse().ok().filter(|n| *n != u32::MAX)
}

fn group_name(gid: Gid) -> Option<String> {
    Group::from_gid(gid).ok().flatten().map(|g| g.name)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn user(v: &str) -> Option<Requested> {
        Some(Requested {
            option: "worker_user",
            value: v.into(),
        })
    }
    fn group(v: &str) -> Option<Requested> {
        Some(Requested {
            option: "worker_group",
            value: v.into(),
        })
    }
    const ROOT: Master = Master {
        uid: Uid::from_raw(0),
        gid: Gid::from_raw(0),
        privileged: true,
    };
    const ALICE: Master = Master {
        uid: Uid::from_raw(4242),
        gid: Gid::from_raw(4242),
        privileged: false,
    };

    fn err(master: Master, u: Option<Requested>, g: Option<Requested>) -> String {
        resolve_for(master, u, g).unwrap_err().to_string()
    }

    #[test]
    fn a_user_without_a_group_runs_in_its_primary_group_with_its_login_variables() {
        let id = resolve_for(ROOT, user("root"), None).unwrap().unwrap();
        assert_eq!(id.ids, Ids { uid: 0, gid: 0 });
        let mut vars = BTreeMap::from([("HOME".into(), "/elsewhere".into())]);
        id.set_login_vars(&mut vars);
        assert_eq!(vars.get(std::ffi::OsStr::new("USER")), Some(&"root".into()));
        assert_ne!(
            vars.get(std::ffi::OsStr::new("HOME")),
            Some(&"/elsewhere".into())
        );
        assert!(
            id.to_string().starts_with("user root (uid 0), group "),
            "{id}"
        );
        // By number, the same user.
        let by_uid = resolve_for(ROOT, user("0"), None).unwrap().unwrap();
        assert_eq!(by_uid.ids, id.ids);
    }

    #[test]
    fn unknown_names_are_refused_naming_the_option_and_the_value() {
        let e = err(ROOT, user("no-such-user-regiment"), None);
        assert!(
            e.contains("`worker_user`")
                && e.contains("\"no-such-user-regiment\"")
                && e.contains("numeric uid"),
            "{e}"
        );
        let e = err(ROOT, user("root"), group("no-such-group-regiment"));
        assert!(
            e.contains("`worker_group`") && e.contains("\"no-such-group-regiment\""),
            "{e}"
        );
        // A uid with no entry has no primary group: a group must be given.
        let e = err(ROOT, user("3999999999"), None);
        assert!(
            e.contains("`worker_user`") && e.contains("no primary group"),
            "{e}"
        );
        let id = resolve_for(ROOT, user("3999999999"), group("3999999998"))
            .unwrap()
            .unwrap();
        assert_eq!(
            id.ids,
            Ids {
                uid: 3_999_999_999,
                gid: 3_999_999_998
            }
        );
        // Nor the master's login variables: they would name root.
        let mut vars = BTreeMap::from([("HOME".into(), "/root".into())]);
        id.set_login_vars(&mut vars);
        assert!(vars.is_empty(), "{vars:?}");
        // -1 means "unchanged" to setuid: not an id.
        assert!(err(ROOT, user("4294967295"), group("0")).contains("`worker_user`"));
    }

    #[test]
    fn a_master_that_is_not_root_runs_workers_only_as_itself() {
        let e = err(ALICE, user("root"), None);
        assert!(
            e.contains("`worker_user`") && e.contains("uid 4242") && e.contains("root"),
            "{e}"
        );
        let e = err(ALICE, None, group("0"));
        assert!(e.contains("`worker_group`"), "{e}");
        // Its own user and group: nothing to switch.
        assert!(
            resolve_for(ALICE, user("4242"), group("4242"))
                .unwrap()
                .is_none()
        );
    }

    #[test]
    fn a_group_alone_keeps_the_masters_user_and_environment() {
        let id = resolve_for(ROOT, None, group("0")).unwrap().unwrap();
        assert_eq!(id.ids, Ids { uid: 0, gid: 0 });
        let mut vars = BTreeMap::from([("HOME".into(), "/root".into())]);
        id.set_login_vars(&mut vars);
        assert_eq!(vars.len(), 1);
    }
}
