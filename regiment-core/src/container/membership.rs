//! `/proc/self/cgroup`: the cgroup this process is in, in each hierarchy (cgroups(7)).
//!
//! One line per hierarchy, `hierarchy-ID:controller-list:cgroup-path`. cgroup v2 is the line
//! `0::/path` (no controller list); a cgroup v1 hierarchy names its controllers,
//! `4:memory:/docker/8e10...` or `9:cpu,cpuacct:/...`, or a name, `1:name=systemd:/`. The path
//! is relative to the root of the hierarchy as this process's cgroup namespace sees it: `/`
//! inside a container with a cgroup namespace, the whole path on a host.
//!
//! ```ignore
//! let lines = parse("4:memory:/docker/8e10\n0::/\n")?;
//! assert_eq!(lines[0].path, Path::new("/docker/8e10"));
//! assert!(lines[1].is_unified());
//! ```

use std::path::PathBuf;

/// One line of `/proc/self/cgroup`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Membership {
    pub hierarchy_id: u32,
    /// The controllers of a v1 hierarchy (`memory`; `cpu`, `cpuacct`; `name=systemd`); none
    /// for v2.
    pub controllers: Vec<String>,
    pub path: PathBuf,
}

impl Membership {
    /// The line of the cgroup v2 (unified) hierarchy.
    pub(crate) fn is_unified(&self) -> bool {
        self.hierarchy_id == 0 && self.controllers.is_empty()
    }

    /// Whether this v1 hierarchy carries `controller`.
    pub(crate) fn has_controller(&self, controller: &str) -> bool {
        self.controllers.iter().any(|c| c == controller)
    }
}

/// The lines of `/proc/self/cgroup`, or what is wrong with one.
pub(crate) fn parse(text: &str) -> Result<Vec<Membership>, String> {
    text.lines()
        .filter(|line| !line.is_empty())
        .map(|line| {
            // Three fields at most: a path may hold colons of its own, as containerd's
            // systemd paths do (`kubepods-burstable-pod....slice:cri-containerd:6ef1...`).
            let mut fields = line.splitn(3, ':');
            let (Some(id), Some(controllers), Some(path)) =
                (fields.next(), fields.next(), fields.next())
            else {
                return Err(format!("a line without three fields: {line:?}"));
            };
            let hierarchy_id = id
                .parse()
                .map_err(|_| format!("a hierarchy id that is not a number: {line:?}"))?;
            if !path.starts_with('/') {
                return Err(format!("a cgroup path that is not absolute: {line:?}"));
            }
            Ok(Membership {
                hierarchy_id,
                controllers: controllers
                    .split(',')
                    .filter(|c| !c.is_empty())
                    .map(str::to_owned)
                    .collect(),
                path: PathBuf::from(path),
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    #[test]
    fn reads_v1_and_v2_lines() {
        // This machine's /proc/self/cgroup (tests/fixtures/cgroup/hybrid), shortened.
        let lines = parse(
            "9:name=systemd:/\n4:memory:/process_api/de35e3616d1b4bea243746f5054eea19\n1:cpu:/\n0::/\n",
        )
        .unwrap();
        assert_eq!(lines.len(), 4);
        assert!(lines[0].has_controller("name=systemd") && !lines[0].is_unified());
        assert!(lines[1].has_controller("memory"));
        assert_eq!(
            lines[1].path,
            Path::new("/process_api/de35e3616d1b4bea243746f5054eea19")
        );
        assert!(lines[2].has_controller("cpu") && !lines[2].has_controller("cpuacct"));
        assert!(lines[3].is_unified());
        assert_eq!(lines[3].path, Path::new("/"));
    }

    #[test]
    fn a_path_keeps_its_colons_and_a_controller_list_is_split() {
        // containerd under systemd on cgroup v1 (duckdb/duckdb#16608).
        let line = "9:cpu,cpuacct:/system.slice/containerd.service/kubepods-burstable-podb96a7488_3ee1_4bdc_9c98_155cc887b417.slice:cri-containerd:6ef14b5a76df7b5d24285e3a04ccbc6fd323620272b3787b5dc440fc1b75d294";
        let lines = parse(line).unwrap();
        assert!(lines[0].has_controller("cpu") && lines[0].has_controller("cpuacct"));
        assert!(lines[0].path.to_str().unwrap().ends_with(
            ".slice:cri-containerd:6ef14b5a76df7b5d24285e3a04ccbc6fd323620272b3787b5dc440fc1b75d294"
        ));
    }

    #[test]
    fn a_line_that_is_not_one_is_refused_by_what_is_wrong() {
        assert!(parse("0:/").unwrap_err().contains("three fields"));
        assert!(parse("x::/").unwrap_err().contains("not a number"));
        assert!(parse("0::relative").unwrap_err().contains("not absolute"));
        assert_eq!(parse("").unwrap(), vec![]);
    }
}
