//! File-system facts the standard library does not give: whether this
//! process may write a path (as the kernel decides, read-only mounts
//! included), a file's size looked up relative to an open folder, and
//! whether a path is on a network file system.

use std::ffi::CStr;
use std::fs::File;
use std::io;
use std::os::fd::AsRawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::Path;

/// Whether this process may write `p` (access(2), for its real uid): the
/// OS's reason when it may not (`EROFS` on a read-only file system).
pub fn may_write(p: &Path) -> io::Result<()> {
    let c =
        std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a valid NUL-terminated path; access only reads it.
    if unsafe { libc::access(c.as_ptr(), libc::W_OK) } != 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

/// The size of the file at `rel` under the open folder `dir`; None when it
/// cannot be looked at. One lookup, without building a full path.
pub fn size_at(dir: &File, rel: &CStr) -> Option<u64> {
    // SAFETY: a zeroed stat filled by fstatat on a path relative to an open folder.
    let mut st: libc::stat = unsafe { std::mem::zeroed() };
    // SAFETY: `rel` is NUL-terminated and `st` is a live stat to fill.
    if unsafe { libc::fstatat(dir.as_raw_fd(), rel.as_ptr(), &mut st, 0) } == 0 {
        Some(st.st_size as u64)
    } else {
        None
    }
}

/// The network file system `p` is on (its type's name), None on a local
/// one: from statfs(2)'s magic number, and for a FUSE mount from the mount
/// table's type (`fuse.sshfs`, `fuse.glusterfs`...).
pub fn network_fs(p: &Path) -> io::Result<Option<String>> {
    let c =
        std::ffi::CString::new(p.as_os_str().as_bytes()).map_err(|e| io::Error::new(io::ErrorKind::InvalidInput, e))?;
    // SAFETY: a zeroed statfs filled by statfs on a valid NUL-terminated path.
    let mut st: libc::statfs = unsafe { std::mem::zeroed() };
    // SAFETY: `c` is NUL-terminated and `st` is a live statfs to fill.
    if unsafe { libc::statfs(c.as_ptr(), &mut st) } != 0 {
        return Err(io::Error::last_os_error());
    }
    // The magic is 32 bits; some platforms widen it with its sign.
    let magic = (st.f_type as u64) & 0xffff_ffff;
    if let Some(name) = network_magic(magic) {
        return Ok(Some(name.to_string()));
    }
    if magic == FUSE_MAGIC {
        let table = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let at = std::fs::canonicalize(p).unwrap_or_else(|_| p.to_path_buf());
        return Ok(mount_fstype(&table, &at).filter(|t| network_fstype(t)));
    }
    Ok(None)
}

const FUSE_MAGIC: u64 = 0x6573_5546;

/// The network (or cluster) file system whose statfs magic number is `magic`.
pub fn network_magic(magic: u64) -> Option<&'static str> {
    Some(match magic {
        0x6969 => "nfs",
        0x517b => "smbfs",
        0xff53_4d42 => "cifs",
        0xfe53_4d42 => "smb2",
        0x00c3_6400 => "ceph",
        0x0bd0_0bd0 => "lustre",
        0x4750_4653 => "gpfs",
        0x1983_0326 => "beegfs",
        0x5346_414f | 0x6b41_4653 => "afs",
        0x7375_7245 => "coda",
        0x564c => "ncpfs",
        0x0102_1997 => "9p",
        0x0116_1970 => "gfs2",
        0x7461_636f => "ocfs2",
        0xaad7_aaea => "panfs",
        0x2003_0528 => "pvfs2",
        _ => return None,
    })
}

/// Whether a mount table's file system type (`nfs4`, `fuse.sshfs`...) is a
/// network one.
pub fn network_fstype(fstype: &str) -> bool {
    const NETWORK: &[&str] = &[
        "nfs",
        "nfs4",
        "smbfs",
        "smb3",
        "cifs",
        "ceph",
        "lustre",
        "gpfs",
        "beegfs",
        "afs",
        "coda",
        "ncpfs",
        "9p",
        "gfs2",
        "ocfs2",
        "panfs",
        "pvfs2",
        "orangefs",
        "glusterfs",
        "sshfs",
        "ceph-fuse",
        "s3fs",
        "juicefs",
        "gcsfuse",
        "rclone",
        "davfs",
        "weka",
        "wekafs",
        "cvmfs",
    ];
    let name = fstype.strip_prefix("fuse.").or_else(|| fstype.strip_prefix("fuseblk.")).unwrap_or(fstype);
    NETWORK.contains(&name)
}

/// The file system type of the mount holding `path` in a
/// `/proc/self/mountinfo` table: the longest mount point above it.
fn mount_fstype(table: &str, path: &Path) -> Option<String> {
    let mut best: Option<(usize, &str)> = None;
    for line in table.lines() {
        let Some((head, tail)) = line.split_once(" - ") else { continue };
        let (Some(point), Some(fstype)) = (head.split(' ').nth(4), tail.split(' ').next()) else { continue };
        let point = unescape_mount(point);
        if path.starts_with(&point) && best.is_none_or(|(len, _)| point.len() >= len) {
            best = Some((point.len(), fstype));
        }
    }
    best.map(|(_, t)| t.to_string())
}

/// A mount point as the kernel writes it: space, tab, newline and
/// backslash as octal escapes.
fn unescape_mount(field: &str) -> String {
    let mut out = Vec::with_capacity(field.len());
    let b = field.as_bytes();
    let mut i = 0;
    while i < b.len() {
        let octal = b.get(i + 1..i + 4).filter(|d| b[i] == b'\\' && d.iter().all(|c| (b'0'..=b'7').contains(c)));
        match octal {
            Some(d) => {
                out.push((d[0] - b'0') * 64 + (d[1] - b'0') * 8 + (d[2] - b'0'));
                i += 4;
            }
            None => {
                out.push(b[i]);
                i += 1;
            }
        }
    }
    String::from_utf8_lossy(&out).into_owned()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn network_file_systems_are_told_by_their_magic_number() {
        let table: &[(u64, Option<&str>)] = &[
            (0x6969, Some("nfs")),
            (0xff53_4d42, Some("cifs")),
            (0xfe53_4d42, Some("smb2")),
            (0x517b, Some("smbfs")),
            (0x0bd0_0bd0, Some("lustre")),
            (0x4750_4653, Some("gpfs")),
            (0x00c3_6400, Some("ceph")),
            (0x1983_0326, Some("beegfs")),
            (0x0102_1997, Some("9p")),
            // Local ones: ext4, xfs, btrfs, tmpfs, overlayfs, zfs; and FUSE, which the mount table tells.
            (0xef53, None),
            (0x5846_5342, None),
            (0x9123_683e, None),
            (0x0102_1994, None),
            (0x794c_7630, None),
            (0x2fc1_2fc1, None),
            (FUSE_MAGIC, None),
        ];
        for (magic, name) in table {
            assert_eq!(network_magic(*magic), *name, "{magic:#x}");
        }
    }

    #[test]
    fn network_file_systems_are_told_by_their_mount_type() {
        let table = [
            ("nfs", true),
            ("nfs4", true),
            ("cifs", true),
            ("smb3", true),
            ("lustre", true),
            ("gpfs", true),
            ("ceph", true),
            ("beegfs", true),
            ("fuse.sshfs", true),
            ("fuse.glusterfs", true),
            ("fuse.ceph-fuse", true),
            ("ext4", false),
            ("xfs", false),
            ("btrfs", false),
            ("tmpfs", false),
            ("overlay", false),
            ("zfs", false),
            ("fuse.portal", false),
            ("fuseblk", false),
        ];
        for (name, network) in table {
            assert_eq!(network_fstype(name), network, "{name}");
        }
    }

    #[test]
    fn the_mount_holding_a_path_is_the_longest_mount_point_above_it() {
        let table = "\
22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw
40 22 0:50 / /home rw,relatime shared:20 - nfs4 server:/home rw,vers=4.2
41 40 0:51 / /home/me/my\\040lab rw shared:21 - fuse.sshfs me@host:/lab rw
42 22 0:52 / /homework rw shared:22 - xfs /dev/sdb1 rw
";
        let at = |p: &str| mount_fstype(table, Path::new(p));
        assert_eq!(at("/home/me/proj/.labmate").as_deref(), Some("nfs4"));
        assert_eq!(at("/home/me/my lab/.labmate").as_deref(), Some("fuse.sshfs"));
        assert_eq!(at("/homework/.labmate").as_deref(), Some("xfs"));
        assert_eq!(at("/tmp/x").as_deref(), Some("ext4"));
    }
}
