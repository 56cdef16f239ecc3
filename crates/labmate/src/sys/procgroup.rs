//! A run's process group, as the OS sees it: who is in it (from `/proc`),
//! whether a recorded group is still the run's, and ending it.
//!
//! A run's command leads a process group of its own; everything it starts
//! stays in that group unless it leaves on purpose (`setsid`). The group's
//! id is the leader's pid, which Linux never hands out again while any
//! process of the group lives, nor while the leader is unreaped: so the
//! supervisor, which has not yet reaped the command, may signal the group
//! freely. A reader looking at a recorded group later cannot know whether
//! the id was free in between and taken by another group: for it, a process
//! is the run's only when the group's leader is the very process recorded
//! (same start time, same boot) or gone, and the process carries the run's
//! id in its environment (`LABMATE_RUN_ID`, which everything the command
//! starts inherits).

use std::fs;
use std::os::unix::process::ExitStatusExt;
use std::process::ExitStatus;
use std::time::{Duration, Instant};

/// A run's process group as recorded when its command started.
#[derive(Debug, Clone, PartialEq)]
pub struct Group {
    pub pgid: i32,
    /// The leader's start time after boot, in clock ticks (`/proc/PID/stat`).
    pub leader_start: Option<u64>,
    /// The boot the leader started in (`/proc/sys/kernel/random/boot_id`).
    pub boot_id: Option<String>,
    /// For a group read from a run's records: only processes whose
    /// environment holds `LABMATE_RUN_ID=<this>` are the run's. None for the
    /// supervisor's own, unreaped command, whose group is its own.
    pub run_id: Option<String>,
}

/// One process, from `/proc/PID/stat`.
#[derive(Debug, Clone, PartialEq)]
pub struct Stat {
    pub state: char,
    pub pgrp: i32,
    /// utime + stime, in clock ticks.
    pub ticks: u64,
    /// Start time after boot, in clock ticks.
    pub start: u64,
}

/// How ending a group went.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Ended {
    /// Live processes found in the group.
    pub found: usize,
    /// Of those, the ones still there after the grace period, sent SIGKILL.
    pub killed: usize,
}

impl Group {
    /// The group of a command that was just started as `pid` (its own leader).
    pub fn of_leader(pid: i32) -> Group {
        Group { pgid: pid, leader_start: stat(pid).map(|s| s.start), boot_id: boot_id(), run_id: None }
    }

    /// The group recorded for run `run_id` (its `start` record).
    pub fn recorded(run_id: &str, pgid: i32, leader_start: Option<u64>, boot_id: Option<String>) -> Group {
        Group { pgid, leader_start, boot_id, run_id: Some(run_id.to_string()) }
    }

    /// Whether the group is still the recorded one (see the module header).
    fn is_ours(&self) -> bool {
        if self.pgid <= 1 {
            return false;
        }
        if let (Some(recorded), Some(now)) = (&self.boot_id, boot_id()) {
            if *recorded != now {
                return false;
            }
        }
        match (stat(self.pgid), self.leader_start) {
            (Some(leader), Some(start)) => leader.start == start,
            (Some(_), None) => self.run_id.is_none(), // no start time recorded: only our own child
            (None, _) => true,                        // the leader is gone: members are checked one by one
        }
    }

    /// Whether a process of the group belongs to the run (see the module header).
    fn carries_run(&self, pid: i32) -> bool {
        let Some(id) = &self.run_id else { return true };
        let want = format!("LABMATE_RUN_ID={id}");
        fs::read(format!("/proc/{pid}/environ")).is_ok_and(|env| env.split(|b| *b == 0).any(|v| v == want.as_bytes()))
    }

    /// The live processes of the group (zombies are not), when it is still
    /// the run's; empty otherwise.
    pub fn members(&self) -> Vec<i32> {
        if !self.is_ours() {
            return Vec::new();
        }
        processes()
            .filter(|(pid, s)| s.pgrp == self.pgid && s.state != 'Z' && self.carries_run(*pid))
            .map(|(pid, _)| pid)
            .collect()
    }

    /// Sends `sig` to the group when it is still the run's: to the whole
    /// group for the supervisor's own command, else to each of the run's
    /// processes in it.
    pub fn signal(&self, sig: i32) -> bool {
        if !self.is_ours() {
            return false;
        }
        if self.run_id.is_none() {
            // SAFETY: sending a signal has no memory effects.
            return unsafe { libc::kill(-self.pgid, sig) == 0 };
        }
        let members = self.members();
        for &pid in &members {
            // SAFETY: as above.
            unsafe { libc::kill(pid, sig) };
        }
        !members.is_empty()
    }

    /// Ends what lives of the group: SIGTERM, then SIGKILL to whatever is
    /// left after `grace`. Waits until no live process is left (or a little
    /// after the SIGKILL, for processes the kernel has yet to take down).
    pub fn end(&self, grace: Duration) -> Ended {
        let found = self.members().len();
        if found == 0 {
            return Ended::default();
        }
        self.signal(libc::SIGTERM);
        let left = self.wait_gone(grace);
        if left == 0 {
            return Ended { found, killed: 0 };
        }
        self.signal(libc::SIGKILL);
        self.wait_gone(Duration::from_secs(5));
        Ended { found, killed: left }
    }

    /// Waits up to `limit` for the group to empty; returns how many live on.
    fn wait_gone(&self, limit: Duration) -> usize {
        let deadline = Instant::now() + limit;
        loop {
            let left = self.members().len();
            if left == 0 || Instant::now() >= deadline {
                return left;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// How this process's child `pid` exited, once it has (`wait` blocks until
/// then), leaving it unreaped: its pid, and so its group's id, stays taken
/// until it is reaped, so that the group can be dealt with safely first.
pub fn exit_status(pid: i32, wait: bool) -> std::io::Result<Option<ExitStatus>> {
    let flags = libc::WEXITED | libc::WNOWAIT | if wait { 0 } else { libc::WNOHANG };
    loop {
        // SAFETY: waitid fills the zeroed siginfo.
        let mut info: libc::siginfo_t = unsafe { std::mem::zeroed() };
        if unsafe { libc::waitid(libc::P_PID, pid as libc::id_t, &mut info, flags) } == 0 {
            // SAFETY: waitid filled it; si_pid is 0 when nothing has exited (WNOHANG).
            if unsafe { info.si_pid() } == 0 {
                return Ok(None);
            }
            // SAFETY: as above, for a child that exited.
            let status = unsafe { info.si_status() };
            // The raw form wait(2) gives: the code in the second byte, or the signal.
            let raw = match info.si_code {
                libc::CLD_EXITED => (status & 0xff) << 8,
                libc::CLD_DUMPED => status | 0x80,
                _ => status,
            };
            return Ok(Some(ExitStatus::from_raw(raw)));
        }
        let e = std::io::Error::last_os_error();
        if e.kind() != std::io::ErrorKind::Interrupted {
            return Err(e);
        }
    }
}

/// Every process `/proc` lists, with its stat (those that exit meanwhile are skipped).
pub fn processes() -> impl Iterator<Item = (i32, Stat)> {
    fs::read_dir("/proc")
        .into_iter()
        .flatten()
        .flatten()
        .filter_map(|e| e.file_name().to_str().and_then(|s| s.parse::<i32>().ok()))
        .filter_map(|pid| stat(pid).map(|s| (pid, s)))
}

pub fn stat(pid: i32) -> Option<Stat> {
    parse_stat(&fs::read_to_string(format!("/proc/{pid}/stat")).ok()?)
}

/// Parses `/proc/<pid>/stat`. The command name (field 2) may hold spaces and
/// parentheses, so the fixed fields start after the last `)`.
pub fn parse_stat(line: &str) -> Option<Stat> {
    let rest = &line[line.rfind(')')? + 1..];
    // rest[0] is field 3 (state), so field n is rest[n - 3].
    let f: Vec<&str> = rest.split_whitespace().collect();
    let num = |n: usize| f.get(n - 3)?.parse::<u64>().ok();
    Some(Stat {
        state: f.first()?.chars().next()?,
        pgrp: f.get(5 - 3)?.parse().ok()?,
        ticks: num(14)?.checked_add(num(15)?)?,
        start: num(22)?,
    })
}

pub fn boot_id() -> Option<String> {
    let id = fs::read_to_string("/proc/sys/kernel/random/boot_id").ok()?;
    Some(id.trim().to_string()).filter(|s| !s.is_empty())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::process::CommandExt;
    use std::process::Command;

    #[test]
    fn stat_parses_a_comm_with_spaces_and_parens() {
        let line = "4242 (my (weird) prog) S 1 4242 4242 0 -1 4194560 100 0 0 0 7 3 0 0 20 0 1 0 987 1000 10 18446744073709551615";
        assert_eq!(parse_stat(line), Some(Stat { state: 'S', pgrp: 4242, ticks: 10, start: 987 }));
    }

    #[test]
    fn a_recorded_group_counts_only_the_runs_own_processes() {
        let mut leader = Command::new("sh")
            .args(["-c", "sleep 30 >/dev/null & echo $!"])
            .env("LABMATE_RUN_ID", "r-0000000mine")
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let own = Group::of_leader(leader.id() as i32);
        leader.wait().unwrap();
        let mut out = String::new();
        std::io::Read::read_to_string(&mut leader.stdout.take().unwrap(), &mut out).unwrap();
        let sleep: i32 = out.trim().parse().unwrap();
        let mine = Group::recorded("r-0000000mine", own.pgid, own.leader_start, own.boot_id.clone());
        let theirs = Group::recorded("r-000000other", own.pgid, own.leader_start, own.boot_id.clone());
        assert_eq!(mine.members(), vec![sleep]);
        assert!(theirs.members().is_empty(), "another run's id names none of these");
        assert!(!theirs.signal(libc::SIGKILL));
        assert_eq!(mine.end(Duration::from_millis(500)).found, 1);
        assert!(mine.members().is_empty());
    }

    #[test]
    fn a_group_is_ended_leftovers_and_all_and_a_reused_id_is_left_alone() {
        // A leader that exits at once, leaving a member that ignores SIGTERM.
        // The member says `ready` once it does (and then lets go of the pipe),
        // so that a busy machine cannot make SIGTERM come first.
        let mut leader = Command::new("sh")
            .args(["-c", "sh -c 'trap \"\" TERM; echo ready; exec >/dev/null; while :; do sleep 0.05; done' & echo $!"])
            .stdout(std::process::Stdio::piped())
            .process_group(0)
            .spawn()
            .unwrap();
        let group = Group::of_leader(leader.id() as i32);
        assert!(group.leader_start.is_some());
        leader.wait().unwrap();
        let mut said = String::new();
        std::io::Read::read_to_string(&mut leader.stdout.take().unwrap(), &mut said).unwrap();
        assert!(said.lines().any(|l| l == "ready"), "{said}");
        let member: i32 = said.lines().find_map(|l| l.parse().ok()).unwrap();
        assert!(group.members().contains(&member));

        // Recorded with another start time, the same id is somebody else's.
        let stranger = Group { leader_start: Some(1), ..group.clone() };
        let alive = Command::new("sleep").arg("30").process_group(0).spawn().unwrap();
        let other = Group { pgid: alive.id() as i32, ..stranger };
        assert!(other.members().is_empty());
        assert!(!other.signal(libc::SIGKILL));

        // The member (and the `sleep` it may be in) ignore SIGTERM: SIGKILL ends them.
        let ended = group.end(Duration::from_millis(200));
        assert!(ended.found >= 1 && ended.killed >= 1, "{ended:?}");
        assert!(group.members().is_empty());
        let mut alive = alive;
        alive.kill().unwrap();
        alive.wait().unwrap();
    }
}
